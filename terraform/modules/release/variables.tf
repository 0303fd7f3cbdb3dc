# The chart settings both clouds share; the cloud modules fill in storage and identity.

variable "namespace" {
  description = "Kubernetes namespace of the release (created if missing)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS label."
  }
}

variable "chart_path" {
  description = "Path of the medallion chart (default: helm/medallion of this repository)."
  type        = string
  default     = null
}

variable "image" {
  description = "The medallion image: repository and tag."
  type = object({
    repository = string
    tag        = string
  })
}

variable "storage" {
  description = "Lakehouse, landing and run-history roots (object-store URLs)."
  type = object({
    lakehouse = string
    landing   = string
    state     = string
  })
}

variable "env" {
  description = "Environment of the scheduler and executors (region, account name)."
  type = list(object({
    name  = string
    value = string
  }))
  default = []
}

variable "service_account" {
  description = "Name and annotations (cloud identity) of the scheduler and executors' service account."
  type = object({
    name        = string
    annotations = map(string)
  })
}

variable "pod_labels" {
  description = "Labels on the scheduler and executor pods (e.g. Azure workload identity's)."
  type        = map(string)
  default     = {}
}

variable "executor_node_selector" {
  description = "Node selector of the executors."
  type        = map(string)
  default     = {}
}

variable "executors" {
  description = "Executor autoscaling bounds (the scheduler resizes the Deployment from its queue)."
  type = object({
    min     = number
    max     = number
    per_run = number
  })
  validation {
    condition     = var.executors.min >= 0 && var.executors.max >= max(1, var.executors.min) && var.executors.per_run >= 1
    error_message = "executors must satisfy 0 <= min <= max, max >= 1 and per_run >= 1."
  }
}

variable "pipelines" {
  description = "Pipeline specs by name (the text of each pipeline.toml)."
  type        = map(string)
}

variable "cron_jobs" {
  description = "CronJobs of the chart (name, schedule, pipeline, layers)."
  type = list(object({
    name     = string
    schedule = string
    pipeline = string
    layers   = optional(list(string), [])
  }))
}

variable "api_token" {
  description = "Bearer token of the job service (the CronJobs present it)."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.api_token) >= 16
    error_message = "api_token must be at least 16 characters."
  }
}
