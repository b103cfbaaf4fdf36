# secret-manager-functions on GCP: two Cloud Run functions (2nd gen) sharing one source.
#
#   Git host --HTTPS--> webhook (HTTP, entry point "webhook")
#                         | verified delivery
#                         v
#   Cloud Scheduler --> Pub/Sub topic --> resync (CloudEvent, entry point "resync")
#                                           | Secret Manager / Parameter Manager
#
# Build the source first: infra/gcp/build.sh (writes ../../build/gcp-function).

locals {
  labels = { app = "secret-manager-functions" }
  # Entry points in handlers/gcp/main.py (tests/gcp/test_infra.py checks they exist).
  webhook_entry_point = "webhook"
  resync_entry_point  = "resync"
  common_env = {
    SMF_CONFIG_YAML      = file(var.config_path)
    GOOGLE_CLOUD_PROJECT = var.project_id
    LOG_LEVEL            = "INFO"
  }
}

resource "google_project_service" "apis" {
  for_each = toset([
    "secretmanager.googleapis.com",
    "parametermanager.googleapis.com",
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "eventarc.googleapis.com",
    "pubsub.googleapis.com",
    "cloudscheduler.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

# --- identities ---------------------------------------------------------------------------
resource "google_service_account" "sync" {
  account_id   = "${var.name}-sync"
  display_name = "secret-manager-functions: writes secrets and parameters"
}

resource "google_service_account" "trigger" {
  account_id   = "${var.name}-trigger"
  display_name = "secret-manager-functions: Eventarc trigger identity (invokes resync)"
}

# Least privilege: exactly the calls the stores make (core/stores/gcp_*.py). No IAM policy
# permissions, no access to other services' data.
resource "google_project_iam_custom_role" "secret_sync" {
  role_id     = replace("${var.name}_secret_sync", "-", "_")
  title       = "secret-manager-functions secret sync"
  description = "Create, version, label, disable/destroy and delete secrets; list parameters and versions."
  permissions = concat([
    "secretmanager.secrets.create",
    "secretmanager.secrets.delete",
    "secretmanager.secrets.get",
    "secretmanager.secrets.list",
    "secretmanager.secrets.update",
    "secretmanager.versions.add",
    "secretmanager.versions.access",
    "secretmanager.versions.destroy",
    "secretmanager.versions.disable",
    "secretmanager.versions.get",
    "secretmanager.versions.list",
    ], var.parameter_manager ? [
    "parametermanager.parameters.create",
    "parametermanager.parameters.delete",
    "parametermanager.parameters.get",
    "parametermanager.parameters.list",
    "parametermanager.parameters.update",
    "parametermanager.parameterVersions.create",
    "parametermanager.parameterVersions.delete",
    "parametermanager.parameterVersions.get",
    "parametermanager.parameterVersions.list",
    "parametermanager.parameterVersions.render",
  ] : [])
}

resource "google_project_iam_member" "sync_role" {
  project = var.project_id
  role    = google_project_iam_custom_role.secret_sync.id
  member  = "serviceAccount:${google_service_account.sync.email}"
}

resource "google_project_iam_member" "sync_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.sync.email}"
}

# The webhook publishes hand-offs to the topic (and only to it).
resource "google_pubsub_topic_iam_member" "sync_publish" {
  topic  = google_pubsub_topic.sync.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.sync.email}"
}

resource "google_project_iam_member" "trigger_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_service_iam_member" "trigger_invokes_resync" {
  location = var.region
  service  = google_cloudfunctions2_function.resync.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

# --- secrets the functions read -------------------------------------------------------------
resource "random_password" "webhook" {
  length  = 48
  special = false
}

resource "google_secret_manager_secret" "webhook" {
  secret_id = "${var.name}-webhook-secret"
  labels    = local.labels
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "webhook" {
  secret      = google_secret_manager_secret.webhook.id
  secret_data = random_password.webhook.result
}

resource "random_password" "fingerprint" {
  length  = 48
  special = false
}

resource "google_secret_manager_secret" "fingerprint" {
  secret_id = "${var.name}-fingerprint-key"
  labels    = local.labels
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "fingerprint" {
  secret      = google_secret_manager_secret.fingerprint.id
  secret_data = random_password.fingerprint.result
}

# The age key's value is added by an operator (gcloud secrets versions add), never kept in state.
resource "google_secret_manager_secret" "age_key" {
  secret_id = var.age_key_secret_id
  labels    = local.labels
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_iam_member" "read_runtime_secrets" {
  for_each = {
    webhook     = google_secret_manager_secret.webhook.secret_id
    fingerprint = google_secret_manager_secret.fingerprint.secret_id
    age_key     = google_secret_manager_secret.age_key.secret_id
  }
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.sync.email}"
}

resource "google_secret_manager_secret_iam_member" "read_git_token" {
  count     = var.git_token_secret_id == "" ? 0 : 1
  secret_id = var.git_token_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.sync.email}"
}

# --- source ---------------------------------------------------------------------------------
resource "google_storage_bucket" "source" {
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  force_destroy               = true
  labels                      = local.labels
}

data "archive_file" "source" {
  type        = "zip"
  source_dir  = var.source_dir
  output_path = "${path.module}/.build/gcp-function.zip"
}

resource "google_storage_bucket_object" "source" {
  name   = "gcp-function-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

# --- Pub/Sub and the schedule ---------------------------------------------------------------
resource "google_pubsub_topic" "sync" {
  name                       = "${var.name}-sync"
  labels                     = local.labels
  message_retention_duration = "86400s"
  depends_on                 = [google_project_service.apis]
}

resource "google_cloud_scheduler_job" "resync" {
  name      = "${var.name}-resync"
  schedule  = var.schedule
  time_zone = var.time_zone
  pubsub_target {
    topic_name = google_pubsub_topic.sync.id
    data       = base64encode(jsonencode({ kind = "resync", drift = true }))
  }
  depends_on = [google_project_service.apis]
}

# --- the functions --------------------------------------------------------------------------
resource "google_cloudfunctions2_function" "webhook" {
  name     = "${var.name}-webhook"
  location = var.region
  labels   = local.labels

  build_config {
    runtime     = "python311"
    entry_point = local.webhook_entry_point
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = "512Mi"
    timeout_seconds                  = var.webhook_timeout_seconds
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = 1
    service_account_email            = google_service_account.sync.email
    ingress_settings                 = "ALLOW_ALL"
    environment_variables = merge(local.common_env, {
      SMF_HANDOFF_TOPIC = google_pubsub_topic.sync.id
    })
    secret_environment_variables {
      key        = "WEBHOOK_SECRET"
      project_id = var.project_id
      secret     = google_secret_manager_secret.webhook.secret_id
      version    = "latest"
    }
  }

  depends_on = [google_project_service.apis, google_secret_manager_secret_iam_member.read_runtime_secrets]
}

# Git hosts call the webhook without Google credentials; the HMAC signature is the check.
resource "google_cloud_run_service_iam_member" "webhook_public" {
  location = var.region
  service  = google_cloudfunctions2_function.webhook.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloudfunctions2_function" "resync" {
  name     = "${var.name}-resync"
  location = var.region
  labels   = local.labels

  build_config {
    runtime     = "python311"
    entry_point = local.resync_entry_point
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = "1Gi"
    timeout_seconds                  = var.resync_timeout_seconds
    max_instance_count               = 1 # one sync at a time: ordering by commit stays simple
    max_instance_request_concurrency = 1
    service_account_email            = google_service_account.sync.email
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    environment_variables            = local.common_env
    secret_environment_variables {
      key        = "WEBHOOK_SECRET"
      project_id = var.project_id
      secret     = google_secret_manager_secret.webhook.secret_id
      version    = "latest"
    }
    secret_environment_variables {
      key        = "SMF_FINGERPRINT_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.fingerprint.secret_id
      version    = "latest"
    }
    secret_environment_variables {
      key        = "SOPS_AGE_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.age_key.secret_id
      version    = "latest"
    }
    dynamic "secret_environment_variables" {
      for_each = var.git_token_secret_id == "" ? [] : [var.git_token_secret_id]
      content {
        key        = "GIT_TOKEN"
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic          = google_pubsub_topic.sync.id
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.trigger.email
  }

  depends_on = [google_project_service.apis, google_secret_manager_secret_iam_member.read_runtime_secrets]
}
