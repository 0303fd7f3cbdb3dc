# The chart on the ADLS Gen2 container through workload identity, the token from Key Vault.

locals {
  lake = "abfss://${azurerm_storage_container.lake.name}@${azurerm_storage_account.lake.name}.dfs.core.windows.net"
}

module "release" {
  source = "../release"

  namespace  = var.namespace
  chart_path = var.chart_path
  image      = var.image
  storage = {
    lakehouse = "${local.lake}/lakehouse"
    landing   = "${local.lake}/landing"
    state     = "${local.lake}/state"
  }
  env = [{ name = "AZURE_STORAGE_ACCOUNT_NAME", value = azurerm_storage_account.lake.name }]
  service_account = {
    name        = local.service_account
    annotations = { "azure.workload.identity/client-id" = azurerm_user_assigned_identity.pods.client_id }
  }
  pod_labels = { "azure.workload.identity/use" = "true" }
  executors  = var.executors
  pipelines  = var.pipelines
  cron_jobs  = var.cron_jobs
  api_token  = azurerm_key_vault_secret.api_token.value

  depends_on = [azurerm_role_assignment.lake, azurerm_federated_identity_credential.pods, azurerm_kubernetes_cluster_node_pool.work]
}
