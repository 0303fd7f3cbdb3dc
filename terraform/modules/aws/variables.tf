variable "name" {
  description = "Prefix of every resource name (cluster, roles, key alias)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "region" {
  description = "AWS region the pods use for S3 (AWS_REGION)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (at least two, in different availability zones) for the cluster and its nodes."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs at least two subnets in different availability zones."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
  validation {
    condition     = can(regex("^1\\.(3[1-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be 1.31 or later, as major.minor (e.g. 1.33)."
  }
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint; empty keeps the endpoint private."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.public_access_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "public_access_cidrs must be CIDR blocks and must not be 0.0.0.0/0."
  }
}

variable "node_instance_types" {
  description = "Instance types of the node group."
  type        = list(string)
  default     = ["m6i.xlarge"]
}

variable "node_count" {
  description = "Node group size: min, desired and max nodes."
  type = object({
    min     = number
    desired = number
    max     = number
  })
  default = { min = 1, desired = 2, max = 6 }
  validation {
    condition     = var.node_count.min >= 0 && var.node_count.min <= var.node_count.desired && var.node_count.desired <= var.node_count.max && var.node_count.max >= 1
    error_message = "node_count must satisfy 0 <= min <= desired <= max and max >= 1."
  }
}

variable "bucket_name" {
  description = "Name of the S3 bucket that holds the landing files, the lakehouse and the run history."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, dashes)."
  }
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object version is kept (time to undo a bad write)."
  type        = number
  default     = 30
  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}

variable "access_log_bucket" {
  description = "Existing bucket receiving the lake bucket's server access logs."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the release."
  type        = string
  default     = "medallion"
}

variable "image" {
  description = "The medallion image: repository and tag (ECR, built from the repository's Dockerfile)."
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
  description = "Tags on every AWS resource."
  type        = map(string)
  default     = {}
}
