# Key Vault: the job service's bearer token lives here (RBAC-authorised, purge-protected,
# reachable from the node subnet); the release receives it and platform engineers read it with
# `az keyvault secret show`.

resource "random_password" "api_token" {
  length  = 40
  special = false
}

resource "azurerm_key_vault" "this" {
  name                          = "${var.name}-kv"
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "premium"
  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 30
  public_network_access_enabled = true

  network_acls {
    default_action             = "Deny"
    bypass                     = "AzureServices"
    virtual_network_subnet_ids = [var.subnet_id]
    ip_rules                   = var.api_authorized_ip_ranges
  }

  tags = var.tags
  # checkov:skip=CKV2_AZURE_32:reached through a service endpoint and the operators' IP ranges instead of a private endpoint
}

# Whoever applies this configuration writes the secret.
resource "azurerm_role_assignment" "deployer_secrets" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

# The pods may read it (e.g. through the Secrets Store CSI driver the cluster enables).
resource "azurerm_role_assignment" "pods_secrets" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.pods.principal_id
}

resource "azurerm_key_vault_secret" "api_token" {
  name            = "medallion-api-token"
  value           = random_password.api_token.result
  key_vault_id    = azurerm_key_vault.this.id
  content_type    = "text/plain; bearer token of medallion.v1.JobService"
  expiration_date = timeadd(plantimestamp(), "8760h")

  # Re-applying must not push the expiry forward: rotate by tainting random_password.
  lifecycle {
    ignore_changes = [expiration_date]
  }

  depends_on = [azurerm_role_assignment.deployer_secrets]
}
