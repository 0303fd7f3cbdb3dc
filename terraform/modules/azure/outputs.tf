output "cluster_name" {
  description = "AKS cluster name (az aks get-credentials --name …)."
  value       = azurerm_kubernetes_cluster.this.name
}

output "resource_group" {
  description = "Resource group of everything this module creates."
  value       = azurerm_resource_group.this.name
}

output "oidc_issuer_url" {
  description = "The cluster's OIDC issuer (trusted by the federated credential)."
  value       = azurerm_kubernetes_cluster.this.oidc_issuer_url
}

output "storage_account" {
  description = "The ADLS Gen2 account."
  value       = azurerm_storage_account.lake.name
}

output "lakehouse_url" {
  description = "Lakehouse root used by the CronJobs."
  value       = "${local.lake}/lakehouse"
}

output "landing_url" {
  description = "Where to put landing files."
  value       = "${local.lake}/landing"
}

output "pods_client_id" {
  description = "Client id of the identity the scheduler and executors use (workload identity)."
  value       = azurerm_user_assigned_identity.pods.client_id
}

output "key_vault_name" {
  description = "Key Vault holding the job service's token (secret medallion-api-token)."
  value       = azurerm_key_vault.this.name
}

output "namespace" {
  description = "Namespace of the release."
  value       = module.release.namespace
}

output "kube_host" {
  description = "Kubernetes API endpoint."
  value       = azurerm_kubernetes_cluster.this.kube_config[0].host
}

output "kube_ca_certificate" {
  description = "Base64 CA certificate of the API endpoint."
  value       = azurerm_kubernetes_cluster.this.kube_config[0].cluster_ca_certificate
  sensitive   = true
}
