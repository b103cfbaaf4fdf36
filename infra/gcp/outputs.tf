output "webhook_url" {
  description = "Payload URL to configure in the Git host (content type application/json)."
  value       = google_cloudfunctions2_function.webhook.service_config[0].uri
}

output "webhook_secret_id" {
  description = "Secret holding the webhook secret: read it once to configure the Git host."
  value       = google_secret_manager_secret.webhook.secret_id
}

output "service_account" {
  description = "The sync worker's identity (writes secrets and parameters)."
  value       = google_service_account.sync.email
}

output "webhook_service_account" {
  description = "The public webhook's identity (publishes to the topic, reads the webhook secret)."
  value       = google_service_account.webhook.email
}

output "dead_letter_subscription" {
  description = "Where queued syncs that failed max_delivery_attempts times wait (gcloud pubsub subscriptions pull)."
  value       = google_pubsub_subscription.dead_letter.name
}

output "topic" {
  value = google_pubsub_topic.sync.id
}
