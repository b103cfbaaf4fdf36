output "function_app_name" {
  value = azurerm_function_app_flex_consumption.app.name
}

output "webhook_url" {
  description = "Point the Git host's push webhook here (content type application/json)."
  value       = "https://${azurerm_function_app_flex_consumption.app.default_hostname}/api/${local.webhook_route}"
}

output "principal_id" {
  description = "The app's managed identity (holds the two role assignments)."
  value       = azurerm_function_app_flex_consumption.app.identity[0].principal_id
}

output "functions" {
  value = local.functions
}

output "queue_name" {
  value = azurerm_storage_queue.sync.name
}

output "application_insights_name" {
  description = "Logs and traces of every invocation (portal: Application Insights > Logs)."
  value       = azurerm_application_insights.app.name
}
