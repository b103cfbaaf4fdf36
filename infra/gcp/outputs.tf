output "webhook_url" {
  description = "Payload URL to configure in the Git host (content type application/json)."
  value       = google_cloudfunctions2_function.webhook.service_config[0].uri
}

output "webhook_secret_id" {
  description = "Secret holding the webhook secret: read it once to configure the Git host."
  value       = google_secret_manager_secret.webhook.secret_id
}

output "service_account" {
  value = google_service_account.sync.email
}

output "topic" {
  value = google_pubsub_topic.sync.id
}
