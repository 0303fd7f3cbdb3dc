# Medallion on AKS: `terraform init && terraform apply` with the variables below set
# (terraform.tfvars or -var). See the README's "Deploying on AKS".

terraform {
  required_version = ">= 1.6.0"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

variable "subscription_id" {
  description = "Azure subscription to deploy into."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
  default     = "westeurope"
}

variable "subnet_id" {
  description = "Subnet (with the Microsoft.Storage and Microsoft.KeyVault service endpoints) for the nodes."
  type        = string
}

variable "operator_cidrs" {
  description = "CIDRs of the operators' networks, allowed to the Kubernetes API and the key vault."
  type        = list(string)
}

variable "admin_group_object_ids" {
  description = "Entra ID groups administering the cluster."
  type        = list(string)
}

variable "storage_account_name" {
  description = "Name of the ADLS Gen2 account to create."
  type        = string
}

variable "image_repository" {
  description = "ACR repository the medallion image was pushed to."
  type        = string
}

variable "image_tag" {
  description = "Tag of the pushed image."
  type        = string
  default     = "0.1.0"
}

provider "azurerm" {
  subscription_id = var.subscription_id
  # The storage account has no shared keys: the container is created with Entra ID.
  storage_use_azuread = true
  features {}
}

provider "helm" {
  kubernetes = {
    host                   = module.medallion.kube_host
    cluster_ca_certificate = base64decode(module.medallion.kube_ca_certificate)
    # Local accounts are disabled: kubelogin exchanges the Azure CLI login for a cluster token.
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "kubelogin"
      args        = ["get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
    }
  }
}

module "medallion" {
  source = "../../modules/azure"

  name                     = "medallion"
  location                 = var.location
  subnet_id                = var.subnet_id
  api_authorized_ip_ranges = var.operator_cidrs
  admin_group_object_ids   = var.admin_group_object_ids
  storage_account_name     = var.storage_account_name
  image                    = { repository = var.image_repository, tag = var.image_tag }

  pipelines = {
    ecommerce = file("${path.root}/../../../pipelines/ecommerce/pipeline.toml")
  }
  cron_jobs = [
    { name = "ecommerce-hourly", schedule = "15 * * * *", pipeline = "ecommerce", layers = ["bronze", "silver"] },
    { name = "ecommerce-nightly", schedule = "30 2 * * *", pipeline = "ecommerce", layers = ["gold", "ml"] },
  ]
  executors = { min = 1, max = 6, per_run = 2 }

  tags = { project = "medallion" }
}

output "cluster_name" {
  description = "az aks get-credentials --resource-group <resource_group> --name <this>"
  value       = module.medallion.cluster_name
}

output "resource_group" {
  description = "Resource group."
  value       = module.medallion.resource_group
}

output "landing_url" {
  description = "Upload landing files here."
  value       = module.medallion.landing_url
}

output "key_vault_name" {
  description = "az keyvault secret show --vault-name <this> --name medallion-api-token"
  value       = module.medallion.key_vault_name
}
