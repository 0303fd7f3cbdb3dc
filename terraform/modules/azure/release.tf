# The medallion chart: storage on the ADLS Gen2 container through workload identity, executors
# autoscaled by the scheduler, the token from Key Vault.

locals {
  lake = "abfss://${azurerm_storage_container.lake.name}@${azurerm_storage_account.lake.name}.dfs.core.windows.net"
}

resource "helm_release" "medallion" {
  name             = "medallion"
  chart            = local.chart_path
  namespace        = var.namespace
  create_namespace = true
  wait             = true
  timeout          = 600

  values = [yamlencode({
    fullnameOverride = "medallion"
    image            = var.image
    storage = {
      lakehouse = "${local.lake}/lakehouse"
      landing   = "${local.lake}/landing"
      state     = "${local.lake}/state"
    }
    env = [{ name = "AZURE_STORAGE_ACCOUNT_NAME", value = azurerm_storage_account.lake.name }]
    serviceAccount = {
      name        = local.service_account
      annotations = { "azure.workload.identity/client-id" = azurerm_user_assigned_identity.pods.client_id }
    }
    podLabels = { "azure.workload.identity/use" = "true" }
    executor = {
      autoscaling = {
        enabled         = true
        minReplicas     = var.executors.min
        maxReplicas     = var.executors.max
        executorsPerRun = var.executors.per_run
      }
    }
    pipelines = var.pipelines
    cronJobs  = var.cron_jobs
  })]

  set_sensitive = [{
    name  = "apiTokens.tokens[0]"
    value = azurerm_key_vault_secret.api_token.value
  }]

  depends_on = [azurerm_role_assignment.lake, azurerm_federated_identity_credential.pods]
}
