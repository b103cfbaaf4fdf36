# secret-manager-functions on Azure Functions (Flex Consumption), Python 3.11, v2 model.
#
# Creates: a storage account (host state, the deployment package container, the smf-sync
# queue), a Flex Consumption plan and Function App with a system-assigned managed identity,
# and exactly two role assignments for that identity:
#   - "Key Vault Secrets Officer" on the vault (set, list, delete, recover, purge secrets;
#     also reads the app settings' Key Vault references),
#   - "App Configuration Data Owner" on the store (read, write, delete key-values).
# Nothing else is granted. The host's own storage uses the account's access key (no extra
# storage role for the identity): the provider builds AzureWebJobsStorage from
# storage_access_key itself and hides it when reading app_settings back, so it is NOT listed in
# app_settings (listing it there shows a diff on every plan: terraform-provider-azurerm#29149).
# Logs and traces go to Application Insights (workspace-based), created here.
# The fingerprint key is created by the app on its first run (core/fingerprint.py) in the vault
# as var.fingerprint_key_name ("Key Vault Secrets Officer" covers it) and reused afterwards.

locals {
  # The functions handlers/azure_functions/function_app.py defines (checked by
  # tests/azure/test_infra.py): the webhook route, the queue worker and the timer.
  functions = {
    webhook     = "webhook"
    sync_worker = "sync_worker"
    resync      = "resync"
  }
  webhook_route = "webhook"
  queue_name    = "smf-sync"
  runs_table    = "smfruns" # core/runstate.py TableRunState: one entity per fanned-out run
  storage_name  = substr(replace(lower("${var.name}sa"), "/[^a-z0-9]/", ""), 0, 24)
  kv_uri        = trimsuffix(var.key_vault_uri, "/")
}

resource "azurerm_storage_account" "host" {
  #checkov:skip=CKV_AZURE_59:the Functions host reaches its storage over the public endpoint (no VNet integration on this plan here); blobs are private (allow_nested_items_to_be_public = false)
  #checkov:skip=CKV2_AZURE_33:a private endpoint needs a VNet the app is not in; see CKV_AZURE_59
  #checkov:skip=CKV_AZURE_206:LRS is enough: the account holds the host's state, the queue and the package, all rebuilt by a deploy
  #checkov:skip=CKV_AZURE_43:the name is computed (local.storage_name: lowercase alphanumerics, at most 24), which checkov cannot evaluate
  #checkov:skip=CKV_AZURE_33:queue logging (classic Storage Analytics) is deprecated; the app's own logs go to Application Insights
  #checkov:skip=CKV2_AZURE_40:the Functions host authenticates with the account key (storage_authentication_type); the managed-identity form makes the provider write an empty AzureWebJobsStorage (terraform-provider-azurerm#29693)
  #checkov:skip=CKV2_AZURE_41:no SAS is issued from this account
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys: the account holds no secret value (queue messages are signed deliveries, the package is public code)
  #checkov:skip=CKV2_AZURE_21:blob read logging of the deployment package adds cost and nothing to audit
  name                            = local.storage_name
  resource_group_name             = var.resource_group_name
  location                        = var.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  allow_nested_items_to_be_public = false
  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }
  tags = var.tags
}

resource "azurerm_log_analytics_workspace" "logs" {
  name                = "${var.name}-logs"
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

resource "azurerm_application_insights" "app" {
  name                = "${var.name}-insights"
  resource_group_name = var.resource_group_name
  location            = var.location
  workspace_id        = azurerm_log_analytics_workspace.logs.id
  application_type    = "other"
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

resource "azurerm_storage_container" "package" {
  #checkov:skip=CKV2_AZURE_21:blob read logging of the deployment package adds cost and nothing to audit
  name                  = "app-package"
  storage_account_id    = azurerm_storage_account.host.id
  container_access_type = "private"
}

resource "azurerm_storage_queue" "sync" {
  name                 = local.queue_name
  storage_account_name = azurerm_storage_account.host.name
}

# Fanned-out runs' records (core/runstate.py): the last work item of a run learns it was last,
# so the run reports one outcome. Table Storage has no TTL; a record is one small entity per
# run and carries `expires` for a cleanup query (docs/azure.md "Fan-out").
resource "azurerm_storage_table" "runs" {
  #checkov:skip=CKV2_AZURE_20:table read logging (classic Storage Analytics) is deprecated, and the records hold counts and names, never a value; the app logs each run to Application Insights
  name                 = local.runs_table
  storage_account_name = azurerm_storage_account.host.name
}

resource "azurerm_service_plan" "flex" {
  #checkov:skip=CKV_AZURE_225:Flex Consumption (FC1) has no zone-redundancy switch on the plan; instances scale from zero
  #checkov:skip=CKV_AZURE_212:Flex Consumption scales per event; a minimum instance count would bill an idle app
  name                = "${var.name}-plan"
  resource_group_name = var.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = var.tags
}

resource "azurerm_function_app_flex_consumption" "app" {
  name                = var.name
  resource_group_name = var.resource_group_name
  location            = var.location
  service_plan_id     = azurerm_service_plan.flex.id

  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "${azurerm_storage_account.host.primary_blob_endpoint}${azurerm_storage_container.package.name}"
  storage_authentication_type = "StorageAccountConnectionString"
  storage_access_key          = azurerm_storage_account.host.primary_access_key

  runtime_name    = "python"
  runtime_version = "3.11"
  # The worker concurrency cap: host.json takes one queue message at a time per instance
  # (batchSize 1, newBatchThreshold 0), so at most maximum_instance_count work items run at
  # once. Quotas assumed (docs/azure.md "Fan-out"): Key Vault's 4,000 secret transactions per
  # 10 s per vault, and App Configuration Standard's 30,000 requests per hour, the binding
  # one, which SMF_FANOUT_WRITE_RATE below encodes; the SDKs retry a 429 after Retry-After.
  maximum_instance_count = var.maximum_instance_count
  instance_memory_in_mb  = var.instance_memory_in_mb
  https_only             = true

  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_insights_connection_string = azurerm_application_insights.app.connection_string
  }

  # No AzureWebJobsStorage here: see the header (the provider sets it from storage_access_key).
  app_settings = {
    SMF_CONFIG               = var.config_yaml
    SMF_WEBHOOK_MODE         = var.webhook_mode
    SMF_RESYNC_SCHEDULE      = var.resync_schedule
    WEBHOOK_SECRET           = "@Microsoft.KeyVault(SecretUri=${local.kv_uri}/secrets/${var.webhook_secret_name})"
    SMF_FINGERPRINT_KEY_NAME = var.fingerprint_key_name
    GIT_CACHE_DIR            = "/tmp/smf-git-cache"
    # A large run fans out as work items on the smf-sync queue, its record in the runs table
    # (managed identity, "Storage Table Data Contributor" on that table only).
    SMF_RUNSTATE       = "table"
    SMF_RUNSTATE_TABLE = "${azurerm_storage_account.host.primary_table_endpoint}${azurerm_storage_table.runs.name}"
    # An item's budget leaves 3 minutes of host.json's 10-minute functionTimeout for its last
    # service and the finish; writes are estimated at App Configuration's quota (8/s).
    SMF_FANOUT_ITEM_SECONDS = "420"
    SMF_FANOUT_WRITE_RATE   = "8"
  }

  tags = var.tags
}

resource "azurerm_role_assignment" "key_vault_secrets_officer" {
  scope                = var.key_vault_id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = azurerm_function_app_flex_consumption.app.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "run_table_data_contributor" {
  scope                = "${azurerm_storage_account.host.id}/tableServices/default/tables/${azurerm_storage_table.runs.name}"
  role_definition_name = "Storage Table Data Contributor"
  principal_id         = azurerm_function_app_flex_consumption.app.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "app_configuration_data_owner" {
  scope                = var.app_configuration_id
  role_definition_name = "App Configuration Data Owner"
  principal_id         = azurerm_function_app_flex_consumption.app.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

# An example alert from the app's log records (docs/notifications.md): each run writes one
# JSON line per store touched ({"smf": "store", "store", "outcome", "error": N, ...},
# core/results/logs.py) that Application Insights keeps in `traces` (severityLevel 3 = Error
# when the store had errors). The query counts errors per store; `store` is a dimension, so
# each failing store raises its own alert and the alert names it.
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "sync_errors" {
  name                 = "${var.name}-sync-errors"
  resource_group_name  = var.resource_group_name
  location             = var.location
  description          = "A sync of secret-manager-functions reported errors in a store. The traces with smf=error name the config, file and line."
  scopes               = [azurerm_application_insights.app.id]
  severity             = 1
  evaluation_frequency = "PT5M"
  window_duration      = "PT5M"
  criteria {
    query                   = <<-KQL
      traces
      | where severityLevel >= 3
      | extend d = parse_json(message)
      | where tostring(d.smf) == "store" and tostring(d.outcome) == "failed"
      | project timestamp, store = tostring(d.store), errors = toint(d.error)
    KQL
    time_aggregation_method = "Total"
    metric_measure_column   = "errors"
    operator                = "GreaterThan"
    threshold               = 0
    dimension {
      name     = "store"
      operator = "Include"
      values   = ["*"]
    }
    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }
  auto_mitigation_enabled = true
  dynamic "action" {
    for_each = length(var.alert_action_group_ids) > 0 ? [1] : []
    content {
      action_groups = var.alert_action_group_ids
    }
  }
  tags = var.tags
}
