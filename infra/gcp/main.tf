# secret-manager-functions on GCP: two Cloud Run functions (2nd gen) sharing one source.
#
#   Git host --HTTPS--> webhook (HTTP, entry point "webhook", service account "webhook":
#                         |      may only publish to the topic and read the webhook secret)
#                         | verified delivery, answered 202 once queued
#                         v
#   Cloud Scheduler --> Pub/Sub topic --push subscription (bounded retries)--> resync
#                         (100 failed deliveries --> dead-letter topic)       (CloudEvent,
#                                                  service account "sync": Secret Manager /
#                                                  Parameter Manager)
#
# Git hosts do not redeliver a failed webhook: the webhook queues first and the subscription
# retries (exponential backoff) up to var.max_delivery_attempts, then parks the message on the
# dead-letter topic, where the "dead-letter" subscription keeps it for 7 days.
#
# Before the first apply (docs/gcp.md "Deploy"): build the source (infra/gcp/build.sh) and
# create the age-key secret WITH its value (gcloud secrets create ... --data-file): Terraform
# only reads it (data source), so the key never enters the state, and a missing secret fails
# the plan with its name instead of the first deploy failing to mount "latest".
# The fingerprint key is not here: the resync function creates it on its first run
# (core/fingerprint.py) as var.fingerprint_key_name and reuses it.

locals {
  labels = { app = "secret-manager-functions" }
  # Entry points in handlers/gcp/main.py (tests/gcp/test_infra.py checks they exist).
  webhook_entry_point = "webhook"
  resync_entry_point  = "resync"
  common_env = {
    SMF_CONFIG               = file(var.config_path)
    GOOGLE_CLOUD_PROJECT     = var.project_id
    LOG_LEVEL                = "INFO"
    SMF_FINGERPRINT_KEY_NAME = var.fingerprint_key_name
  }
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "apis" {
  for_each = toset([
    "secretmanager.googleapis.com",
    "parametermanager.googleapis.com",
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "pubsub.googleapis.com",
    "cloudscheduler.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "firestore.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

# --- identities ---------------------------------------------------------------------------
# Three identities: the public webhook (publish + read its secret, nothing else), the sync
# worker (writes secrets and parameters), and the push subscription's (invokes resync only).
resource "google_service_account" "webhook" {
  account_id   = "${var.name}-webhook"
  display_name = "secret-manager-functions: public webhook (publishes to the sync topic only)"
}

resource "google_service_account" "sync" {
  account_id   = "${var.name}-sync"
  display_name = "secret-manager-functions: writes secrets and parameters"
}

resource "google_service_account" "trigger" {
  account_id   = "${var.name}-trigger"
  display_name = "secret-manager-functions: push subscription identity (invokes resync)"
}

# Least privilege: exactly the calls the stores make (core/stores/gcp_*.py). No IAM policy
# permissions, no access to other services' data. The same calls create and read the
# fingerprint key (var.fingerprint_key_name) on the first run.
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

resource "google_project_iam_member" "logs" {
  for_each = {
    sync    = google_service_account.sync.email
    webhook = google_service_account.webhook.email
  }
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${each.value}"
}

# The webhook publishes hand-offs to the topic (and only to it); resync publishes the work
# items of a fanned-out run there (core/fanout.py).
resource "google_pubsub_topic_iam_member" "webhook_publish" {
  topic  = google_pubsub_topic.sync.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.webhook.email}"
}

resource "google_pubsub_topic_iam_member" "sync_publishes_work_items" {
  topic  = google_pubsub_topic.sync.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.sync.email}"
}

# --- run state of fanned-out runs (core/runstate.py FirestoreRunState) ----------------------
# A database of its own, so the project's (default) database is untouched; one document per
# run in the collection below. Records are a week's bookkeeping, rebuilt by the next run:
# no delete protection, and `terraform destroy` deletes the database with the rest.
locals {
  runstate_collection = "smf-runs"
}

resource "google_firestore_database" "runs" {
  name                    = "${var.name}-runs"
  location_id             = coalesce(var.runstate_location, var.region)
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_DISABLED"
  deletion_policy         = "DELETE"
  depends_on              = [google_project_service.apis]
}

# TTL policy: Firestore deletes a record some time after its `expires` (a week after the
# run started). `doc` (the record as JSON) is never queried: no index on either field.
resource "google_firestore_field" "runs_expires" {
  database   = google_firestore_database.runs.name
  collection = local.runstate_collection
  field      = "expires"
  ttl_config {}
  index_config {}
}

resource "google_firestore_field" "runs_doc" {
  database   = google_firestore_database.runs.name
  collection = local.runstate_collection
  field      = "doc"
  index_config {}
}

# Read and write documents in the run-state database only (IAM condition on its name).
resource "google_project_iam_member" "sync_runstate" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.sync.email}"
  condition {
    title      = "run-state database only"
    expression = "resource.name == \"${google_firestore_database.runs.id}\""
  }
}

# Pub/Sub's service agent moves undeliverable messages to the dead-letter topic (publisher
# there, subscriber on the source subscription) and mints the push identity's OIDC token.
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_acks_dead_letters" {
  subscription = google_pubsub_subscription.resync.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

resource "google_service_account_iam_member" "agent_signs_push_tokens" {
  service_account_id = google_service_account.trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
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

# The age key: created with its value by the operator before the first apply (docs/gcp.md),
# only read here, so its value never enters Terraform state and "latest" exists when mounted.
data "google_secret_manager_secret" "age_key" {
  secret_id = var.age_key_secret_id
}

resource "google_secret_manager_secret_iam_member" "read_runtime_secrets" {
  for_each = {
    webhook_by_webhook = [google_secret_manager_secret.webhook.secret_id, google_service_account.webhook.email]
    webhook_by_sync    = [google_secret_manager_secret.webhook.secret_id, google_service_account.sync.email]
    age_key_by_sync    = [data.google_secret_manager_secret.age_key.secret_id, google_service_account.sync.email]
  }
  secret_id = each.value[0]
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value[1]}"
}

resource "google_secret_manager_secret_iam_member" "read_git_token" {
  count     = var.git_token_secret_id == "" ? 0 : 1
  secret_id = var.git_token_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.sync.email}"
}

# --- source ---------------------------------------------------------------------------------
resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:the bucket holds the function source zips Cloud Build reads; access logs need a second bucket and audit nothing secret
  #checkov:skip=CKV_GCP_78:objects are named by their MD5 and never overwritten, so versioning keeps nothing more
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
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
  #checkov:skip=CKV_GCP_83:Google-managed encryption; messages are signed deliveries and resync requests, never a secret value
  name                       = "${var.name}-sync"
  labels                     = local.labels
  message_retention_duration = "86400s"
  depends_on                 = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; the same messages as the sync topic
  name                       = "${var.name}-sync-dead-letter"
  labels                     = local.labels
  message_retention_duration = "604800s"
  depends_on                 = [google_project_service.apis]
}

# Keeps dead letters for inspection and replay (gcloud pubsub subscriptions pull).
resource "google_pubsub_subscription" "dead_letter" {
  name                       = "${var.name}-sync-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  labels                     = local.labels
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

# The queue's retries: Pub/Sub pushes each message to resync, retries with backoff while it
# answers an error, and after var.max_delivery_attempts moves it to the dead-letter topic.
# Work items of a fanned-out run queue up behind the one resync instance: a push that finds
# it busy gets 429 from Cloud Run, which counts as a delivery. Pub/Sub's push flow control
# slows down on such answers and backs off up to 10 minutes, so 100 attempts (the default
# and Pub/Sub's maximum) let an item wait ~16 hours before it is dead-lettered.
resource "google_pubsub_subscription" "resync" {
  name                 = "${var.name}-resync"
  topic                = google_pubsub_topic.sync.id
  labels               = local.labels
  ack_deadline_seconds = 600 # >= the resync timeout: a running sync is not redelivered
  push_config {
    # The topic path lets the functions framework turn the raw push into a CloudEvent.
    push_endpoint = "${google_cloudfunctions2_function.resync.service_config[0].uri}/${google_pubsub_topic.sync.id}"
    oidc_token {
      service_account_email = google_service_account.trigger.email
    }
  }
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }
  expiration_policy {
    ttl = ""
  }
  depends_on = [google_cloud_run_service_iam_member.trigger_invokes_resync]
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
  #checkov:skip=CKV_GCP_124:Git hosts call it from the internet; the HMAC signature is checked first and the identity can only publish to the topic
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
    service_account_email            = google_service_account.webhook.email
    ingress_settings                 = "ALLOW_ALL"
    environment_variables = merge(local.common_env, {
      SMF_HANDOFF_TOPIC = google_pubsub_topic.sync.id
      SMF_WEBHOOK_MODE  = "queue" # verify, enqueue, answer 202: the subscription retries
    })
    secret_environment_variables {
      key        = "WEBHOOK_SECRET"
      project_id = var.project_id
      secret     = google_secret_manager_secret.webhook.secret_id
      version    = "latest"
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.read_runtime_secrets,
    google_secret_manager_secret_version.webhook,
  ]
}

# Git hosts call the webhook without Google credentials; the HMAC signature is the check.
resource "google_cloud_run_service_iam_member" "webhook_public" {
  #checkov:skip=CKV_GCP_102:public by design (Git hosts send no Google credentials); requests are authenticated by the HMAC signature
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
    available_memory = "1Gi"
    timeout_seconds  = var.resync_timeout_seconds
    # One sync (or work item of a fanned-out run) at a time: ordering by commit stays simple,
    # and the store's write quota is shared by one writer. Quota assumed: Secret Manager's
    # documented 600 write requests per minute per project (one item's 8 writers reach it;
    # the SDK retries what is throttled, then the item is redelivered).
    max_instance_count               = 1
    max_instance_request_concurrency = 1
    service_account_email            = google_service_account.sync.email
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    environment_variables = merge(local.common_env, {
      SMF_HANDOFF_TOPIC  = google_pubsub_topic.sync.id # work items of a fanned-out run
      SMF_RUNSTATE       = "firestore"
      SMF_RUNSTATE_TABLE = "${google_firestore_database.runs.id}/documents/${local.runstate_collection}"
      # An item's budget leaves 3 minutes of the timeout for its last service and the finish;
      # writes are estimated at the quota above (10/s) to decide when a run fans out.
      SMF_FANOUT_ITEM_SECONDS = tostring(max(60, var.resync_timeout_seconds - 180))
      SMF_FANOUT_WRITE_RATE   = "10"
    })
    secret_environment_variables {
      key        = "WEBHOOK_SECRET"
      project_id = var.project_id
      secret     = google_secret_manager_secret.webhook.secret_id
      version    = "latest"
    }
    secret_environment_variables {
      key        = "SOPS_AGE_KEY"
      project_id = var.project_id
      secret     = data.google_secret_manager_secret.age_key.secret_id
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

  # No event_trigger: Eventarc's own subscription cannot be given a dead-letter policy in
  # Terraform, so google_pubsub_subscription.resync pushes to this function instead.

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.read_runtime_secrets,
    google_secret_manager_secret_version.webhook,
  ]
}

# --- metrics and an alert from the functions' log records (docs/notifications.md) ----------
# Every run writes one {"smf": "run"} record, one {"smf": "store"} record per store and one
# {"smf": "error"} record per error (core/results/logs.py) as JSON on stdout, which Cloud
# Logging parses into jsonPayload. These log-based metrics count them by outcome and store.
locals {
  function_logs = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=(\"${google_cloudfunctions2_function.webhook.service_config[0].service}\" OR \"${google_cloudfunctions2_function.resync.service_config[0].service}\")",
  ])
}

resource "google_logging_metric" "runs" {
  name        = "${var.name}_runs"
  description = "Syncs by outcome (ok, partial, failed, rejected, ignored, queued) and kind (push, resync)."
  filter      = "${local.function_logs} AND jsonPayload.smf=\"run\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "outcome"
      value_type = "STRING"
    }
    labels {
      key        = "kind"
      value_type = "STRING"
    }
  }
  label_extractors = {
    outcome = "EXTRACT(jsonPayload.outcome)"
    kind    = "EXTRACT(jsonPayload.kind)"
  }
  depends_on = [google_project_service.apis]
}

resource "google_logging_metric" "store_results" {
  name        = "${var.name}_store_results"
  description = "Per store and run: ok, or failed when the store had errors."
  filter      = "${local.function_logs} AND jsonPayload.smf=\"store\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "store"
      value_type = "STRING"
    }
    labels {
      key        = "outcome"
      value_type = "STRING"
    }
  }
  label_extractors = {
    store   = "EXTRACT(jsonPayload.store)"
    outcome = "EXTRACT(jsonPayload.outcome)"
  }
  depends_on = [google_project_service.apis]
}

resource "google_logging_metric" "errors" {
  name        = "${var.name}_errors"
  description = "Sync errors by store and kind (parse, decrypt, naming, store, source, guard, ...)."
  filter      = "${local.function_logs} AND jsonPayload.smf=\"error\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "store"
      value_type = "STRING"
    }
    labels {
      key        = "kind"
      value_type = "STRING"
    }
  }
  label_extractors = {
    store = "EXTRACT(jsonPayload.store)"
    kind  = "EXTRACT(jsonPayload.kind)"
  }
  depends_on = [google_project_service.apis]
}

# An example alert: any run that failed or partly failed in five minutes. The log records
# name the config, file and line (jsonPayload.smf="error"); the documentation says so.
resource "google_monitoring_alert_policy" "sync_errors" {
  display_name          = "${var.name}: a sync failed or partly failed"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  conditions {
    display_name = "runs with outcome failed or partial"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.runs.name}\" AND resource.type=\"cloud_run_revision\" AND metric.label.outcome=monitoring.regex.full_match(\"failed|partial\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.outcome"]
      }
      trigger {
        count = 1
      }
    }
  }
  alert_strategy {
    auto_close = "1800s"
  }
  documentation {
    mime_type = "text/markdown"
    content   = "A sync of secret-manager-functions failed or partly failed. Logs Explorer: `jsonPayload.smf=\"error\"` names the config, file and line of each error (docs/notifications.md)."
  }
  depends_on = [google_project_service.apis]
}
