# secret-manager-functions on Azure Functions (Flex Consumption), Python 3.11, v2 model.
#
# Creates: a storage account (host state, the deployment package container, the smf-sync
# queue), a Flex Consumption plan and Function App with a system-assigned managed identity,
# and exactly two role assignments for that identity:
#   - "Key Vault Secrets Officer" on the vault (set, list, delete, recover, purge secrets;
#     also reads the app settings' Key Vault references),
#   - "App Configuration Data Owner" on the store (read, write, delete key-values).
# Nothing else is granted. The host's own storage uses the account's access key (no extra
# storage role for the identity).

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
  storage_name  = substr(replace(lower("${var.name}sa"), "/[^a-z0-9]/", ""), 0, 24)
  kv_uri        = trimsuffix(var.key_vault_uri, "/")
}

resource "azurerm_storage_account" "host" {
  name                            = local.storage_name
  resource_group_name             = var.resource_group_name
  location                        = var.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  allow_nested_items_to_be_public = false
  tags                            = var.tags
}

resource "azurerm_storage_container" "package" {
  name                  = "app-package"
  storage_account_id    = azurerm_storage_account.host.id
  container_access_type = "private"
}

resource "azurerm_storage_queue" "sync" {
  name                 = local.queue_name
  storage_account_name = azurerm_storage_account.host.name
}

resource "azurerm_service_plan" "flex" {
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

  runtime_name           = "python"
  runtime_version        = "3.11"
  maximum_instance_count = var.maximum_instance_count
  instance_memory_in_mb  = var.instance_memory_in_mb
  https_only             = true

  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_insights_connection_string = var.application_insights_connection_string
  }

  app_settings = {
    AzureWebJobsStorage = azurerm_storage_account.host.primary_connection_string
    SMF_CONFIG          = var.config_yaml
    SMF_WEBHOOK_MODE    = var.webhook_mode
    SMF_RESYNC_SCHEDULE = var.resync_schedule
    WEBHOOK_SECRET      = "@Microsoft.KeyVault(SecretUri=${local.kv_uri}/secrets/${var.webhook_secret_name})"
    SMF_FINGERPRINT_KEY = "@Microsoft.KeyVault(SecretUri=${local.kv_uri}/secrets/${var.fingerprint_key_name})"
    GIT_CACHE_DIR       = "/tmp/smf-git-cache"
  }

  tags = var.tags
}

resource "azurerm_role_assignment" "key_vault_secrets_officer" {
  scope                = var.key_vault_id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = azurerm_function_app_flex_consumption.app.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "app_configuration_data_owner" {
  scope                = var.app_configuration_id
  role_definition_name = "App Configuration Data Owner"
  principal_id         = azurerm_function_app_flex_consumption.app.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}
