# AKS with an OIDC issuer and workload identity, the ADLS Gen2 lake, the pods' identity, a Key
# Vault holding the job service's token, and the medallion release.

data "azurerm_client_config" "current" {}

locals {
  # The service account the chart creates for the scheduler and executors.
  service_account = "medallion"
}

resource "azurerm_resource_group" "this" {
  name     = "${var.name}-rg"
  location = var.location
  tags     = var.tags
}

resource "azurerm_kubernetes_cluster" "this" {
  name                = var.name
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  dns_prefix          = var.name
  kubernetes_version  = var.kubernetes_version
  sku_tier            = "Standard"

  oidc_issuer_enabled       = true
  workload_identity_enabled = true
  local_account_disabled    = true
  azure_policy_enabled      = true
  automatic_upgrade_channel = "patch"
  node_os_upgrade_channel   = "NodeImage"

  # System add-ons only; medallion runs on the "work" pool below.
  default_node_pool {
    name                         = "system"
    vm_size                      = var.system_vm_size
    vnet_subnet_id               = var.subnet_id
    auto_scaling_enabled         = true
    min_count                    = 1
    max_count                    = 3
    max_pods                     = 50
    os_disk_type                 = "Ephemeral"
    host_encryption_enabled      = true
    only_critical_addons_enabled = true
    upgrade_settings {
      max_surge = "33%"
    }
  }

  oms_agent {
    log_analytics_workspace_id      = azurerm_log_analytics_workspace.this.id
    msi_auth_for_monitoring_enabled = true
  }

  identity {
    type = "SystemAssigned"
  }

  network_profile {
    network_plugin     = "azure"
    network_policy     = "cilium"
    network_data_plane = "cilium"
  }

  api_server_access_profile {
    authorized_ip_ranges = var.api_authorized_ip_ranges
  }

  azure_active_directory_role_based_access_control {
    azure_rbac_enabled     = true
    admin_group_object_ids = var.admin_group_object_ids
    tenant_id              = data.azurerm_client_config.current.tenant_id
  }

  key_vault_secrets_provider {
    secret_rotation_enabled = true
  }

  tags = var.tags
  # checkov:skip=CKV_AZURE_6:authorized ranges are set in api_server_access_profile (var.api_authorized_ip_ranges), which this check does not read
  # checkov:skip=CKV_AZURE_115:operators reach the API over authorized IP ranges; a private cluster needs a VPN or private DNS the deployment decides on
  # checkov:skip=CKV_AZURE_117:node disks use host encryption with platform-managed keys; a customer-managed disk encryption set is a deployment choice
}

resource "azurerm_kubernetes_cluster_node_pool" "work" {
  name                    = "work"
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.this.id
  vm_size                 = var.node_vm_size
  vnet_subnet_id          = var.subnet_id
  auto_scaling_enabled    = true
  min_count               = var.node_count.min
  max_count               = var.node_count.max
  max_pods                = 50
  os_disk_type            = "Ephemeral"
  host_encryption_enabled = true
  node_labels = {
    "medallion.io/pool" = "executors"
  }
  upgrade_settings {
    max_surge = "33%"
  }
  tags = var.tags
}

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.name}-logs"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "PerGB2018"
  retention_in_days   = 30
  tags                = var.tags
}

# ---------------------------------------------------------------- the pods' identity

resource "azurerm_user_assigned_identity" "pods" {
  name                = "${var.name}-pods"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = var.tags
}

# Only the chart's service account in the release namespace gets tokens for this identity.
resource "azurerm_federated_identity_credential" "pods" {
  name                = "${var.name}-medallion"
  resource_group_name = azurerm_resource_group.this.name
  parent_id           = azurerm_user_assigned_identity.pods.id
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = "system:serviceaccount:${var.namespace}:${local.service_account}"
  audience            = ["api://AzureADTokenExchange"]
}

resource "azurerm_role_assignment" "lake" {
  scope                = azurerm_storage_account.lake.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.pods.principal_id
}
