variable "name" {
  description = "Prefix of every resource name (resource group, cluster, identity, vault)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}$", var.name))
    error_message = "name must be 3-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "kubernetes_version" {
  description = "AKS Kubernetes version (major.minor)."
  type        = string
  default     = "1.33"
  validation {
    condition     = can(regex("^1\\.(3[1-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be 1.31 or later, as major.minor (e.g. 1.33)."
  }
}

variable "subnet_id" {
  description = "Subnet of the node pool; also the only network allowed to the storage account and the key vault."
  type        = string
}

variable "api_authorized_ip_ranges" {
  description = "CIDRs allowed to reach the Kubernetes API server."
  type        = list(string)
  validation {
    condition     = length(var.api_authorized_ip_ranges) > 0 && alltrue([for c in var.api_authorized_ip_ranges : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "api_authorized_ip_ranges must list CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "admin_group_object_ids" {
  description = "Entra ID groups that administer the cluster (local accounts are disabled)."
  type        = list(string)
  validation {
    condition     = length(var.admin_group_object_ids) > 0
    error_message = "at least one admin group is needed: the cluster has no local account."
  }
}

variable "system_vm_size" {
  description = "VM size of the system node pool (cluster add-ons only)."
  type        = string
  default     = "Standard_D2s_v5"
}

variable "node_vm_size" {
  description = "VM size of the work node pool (scheduler, executors, CronJobs)."
  type        = string
  default     = "Standard_D4s_v5"
}

variable "node_count" {
  description = "Autoscaling bounds of the work node pool."
  type = object({
    min = number
    max = number
  })
  default = { min = 1, max = 6 }
  validation {
    condition     = var.node_count.min >= 1 && var.node_count.max >= var.node_count.min
    error_message = "node_count must satisfy 1 <= min <= max."
  }
}

variable "storage_account_name" {
  description = "Name of the ADLS Gen2 storage account (globally unique)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name must be 3-24 lowercase letters or digits."
  }
}

variable "container_name" {
  description = "Container (ADLS Gen2 file system) holding landing files, the lakehouse and the run history."
  type        = string
  default     = "lake"
  validation {
    condition     = can(regex("^[a-z0-9](-?[a-z0-9]){2,62}$", var.container_name))
    error_message = "container_name must be 3-63 lowercase letters, digits or single dashes."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the release."
  type        = string
  default     = "medallion"
}

variable "image" {
  description = "The medallion image: repository and tag (ACR, built from the repository's Dockerfile)."
  type = object({
    repository = string
    tag        = string
  })
}

variable "chart_path" {
  description = "Path of the medallion chart."
  type        = string
  default     = null
}

variable "pipelines" {
  description = "Pipeline specs by name (the text of each pipeline.toml)."
  type        = map(string)
  default     = {}
}

variable "cron_jobs" {
  description = "CronJobs of the chart (name, schedule, pipeline, layers)."
  type = list(object({
    name     = string
    schedule = string
    pipeline = string
    layers   = optional(list(string), [])
  }))
  default = []
}

variable "executors" {
  description = "Executor autoscaling bounds (the scheduler resizes the Deployment from its queue)."
  type = object({
    min     = number
    max     = number
    per_run = number
  })
  default = { min = 1, max = 6, per_run = 2 }
  validation {
    condition     = var.executors.min >= 0 && var.executors.max >= max(1, var.executors.min) && var.executors.per_run >= 1
    error_message = "executors must satisfy 0 <= min <= max, max >= 1 and per_run >= 1."
  }
}

variable "tags" {
  description = "Tags on every Azure resource."
  type        = map(string)
  default     = {}
}
