variable "project_id" {
  description = "Project that holds the functions, the secrets and the parameters."
  type        = string
}

variable "region" {
  description = "Region of the functions, the scheduler job and the source bucket."
  type        = string
  default     = "europe-west1"
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "smf"
}

variable "config_path" {
  description = "The SecretManagerConfig YAML (one or more documents) the functions sync."
  type        = string
}

variable "source_dir" {
  description = "The function source assembled by infra/gcp/build.sh (main.py, core/, requirements.txt)."
  type        = string
  default     = "../../build/gcp-function"
}

variable "schedule" {
  description = "Cron schedule of the full resync (drift check), in time_zone."
  type        = string
  default     = "*/30 * * * *"
}

variable "time_zone" {
  type    = string
  default = "Etc/UTC"
}

variable "age_key_secret_id" {
  description = "Secret Manager secret holding the SOPS age identity (AGE-SECRET-KEY-...), created with its value before the first apply (docs/gcp.md); Terraform only reads its metadata."
  type        = string
  default     = "smf-sops-age-key"
}

variable "git_token_secret_id" {
  description = "Optional existing secret holding a Git token for private HTTPS repositories (empty: none)."
  type        = string
  default     = ""
}

variable "parameter_manager" {
  description = "Grant Parameter Manager permissions (configs.store: ParameterManager)."
  type        = bool
  default     = true
}

variable "webhook_timeout_seconds" {
  type    = number
  default = 60
}

variable "resync_timeout_seconds" {
  description = "Timeout of the resync function (Pub/Sub-triggered 2nd gen functions allow up to 540 s)."
  type        = number
  default     = 540
}

variable "max_instances" {
  type    = number
  default = 3
}

variable "fingerprint_key_name" {
  description = "Secret the resync function creates on its first run (32 random bytes) and reuses as the fingerprint HMAC key."
  type        = string
  default     = "smf-fingerprint-key"
}

variable "max_delivery_attempts" {
  description = "Deliveries of one queued sync or work item before it goes to the dead-letter topic (Pub/Sub allows 5-100). A push that finds the single resync instance busy is answered 429 and counts as a delivery, so a fanned-out run needs the maximum."
  type        = number
  default     = 100
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub's bounds)."
  }
}

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) the example sync alert notifies; empty: the alert shows in the console only."
  type        = list(string)
  default     = []
}

variable "runstate_location" {
  description = "Firestore location of the run-state database (default: var.region; set it where Firestore has no regional location)."
  type        = string
  default     = null
}
