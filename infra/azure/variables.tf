variable "subscription_id" {
  description = "Subscription to deploy into."
  type        = string
}

variable "resource_group_name" {
  description = "Existing resource group for the Function App and its storage."
  type        = string
}

variable "location" {
  description = "Azure region with Flex Consumption (e.g. westeurope, eastus)."
  type        = string
}

variable "name" {
  description = "Function App name (globally unique; also the prefix of its storage account)."
  type        = string
  default     = "secret-manager-functions"
}

variable "key_vault_id" {
  description = "Resource id of the Key Vault secrets are written to (RBAC authorization enabled)."
  type        = string
}

variable "key_vault_uri" {
  description = "https://<vault>.vault.azure.net/ of that vault (for the Key Vault references below)."
  type        = string
}

variable "app_configuration_id" {
  description = "Resource id of the App Configuration store configs are written to."
  type        = string
}

variable "config_yaml" {
  description = "The SecretManagerConfig document(s), passed to the app as SMF_CONFIG."
  type        = string
}

variable "webhook_secret_name" {
  description = "Key Vault secret holding the Git webhook secret (read through a Key Vault reference)."
  type        = string
  default     = "smf-webhook-secret"
}

variable "fingerprint_key_name" {
  description = "Key Vault secret the app creates on its first run (32 random bytes) and reuses as the fingerprint HMAC key."
  type        = string
  default     = "smf-fingerprint-key"
}

variable "resync_schedule" {
  description = "NCRONTAB schedule of the resync timer (six fields, with seconds)."
  type        = string
  default     = "0 */30 * * * *"
}

variable "webhook_mode" {
  description = "auto (inline small pushes, queue the rest), inline or queue."
  type        = string
  default     = "auto"
  validation {
    condition     = contains(["auto", "inline", "queue"], var.webhook_mode)
    error_message = "webhook_mode must be auto, inline or queue."
  }
}

variable "maximum_instance_count" {
  description = "Flex Consumption scale-out limit, and so the cap on concurrent fan-out work items (one queue message per instance, host.json)."
  type        = number
  default     = 10
}

variable "instance_memory_in_mb" {
  description = "Flex Consumption instance size (2048 or 4096)."
  type        = number
  default     = 2048
}

variable "log_retention_days" {
  description = "Days the Log Analytics workspace and Application Insights keep logs and traces."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for the resources created here."
  type        = map(string)
  default     = {}
}

variable "alert_action_group_ids" {
  description = "Azure Monitor action group ids the example sync alert notifies; empty: the alert fires in the portal only."
  type        = list(string)
  default     = []
}
