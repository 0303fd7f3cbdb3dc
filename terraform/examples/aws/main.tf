# Medallion on EKS: `terraform init && terraform apply` with the variables below set
# (terraform.tfvars or -var). See the README's "Deploying on EKS".

terraform {
  required_version = ">= 1.6.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
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

variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "subnet_ids" {
  description = "Private subnets of an existing VPC, in at least two availability zones."
  type        = list(string)
}

variable "operator_cidrs" {
  description = "CIDRs of the operators' networks, allowed to the Kubernetes API."
  type        = list(string)
}

variable "bucket_name" {
  description = "Name of the lake bucket to create."
  type        = string
}

variable "access_log_bucket" {
  description = "Existing bucket for S3 server access logs."
  type        = string
}

variable "image_repository" {
  description = "ECR repository the medallion image was pushed to."
  type        = string
}

variable "image_tag" {
  description = "Tag of the pushed image."
  type        = string
  default     = "0.1.0"
}

provider "aws" {
  region = var.region
}

provider "helm" {
  kubernetes = {
    host                   = module.medallion.cluster_endpoint
    cluster_ca_certificate = base64decode(module.medallion.cluster_ca_certificate)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.medallion.cluster_name, "--region", var.region]
    }
  }
}

module "medallion" {
  source = "../../modules/aws"

  name                = "medallion"
  region              = var.region
  subnet_ids          = var.subnet_ids
  public_access_cidrs = var.operator_cidrs
  bucket_name         = var.bucket_name
  access_log_bucket   = var.access_log_bucket
  image               = { repository = var.image_repository, tag = var.image_tag }

  pipelines = {
    ecommerce = file("${path.root}/../../../pipelines/ecommerce/pipeline.toml")
  }
  cron_jobs = [
    { name = "ecommerce-hourly", schedule = "15 * * * *", pipeline = "ecommerce", layers = ["bronze", "silver"] },
    { name = "ecommerce-nightly", schedule = "30 2 * * *", pipeline = "ecommerce", layers = ["gold", "ml"] },
  ]
  executors = { min = 1, max = 8, per_run = 2 }

  tags = { project = "medallion" }
}

output "cluster_name" {
  description = "aws eks update-kubeconfig --name <this> --region <region>"
  value       = module.medallion.cluster_name
}

output "landing_url" {
  description = "Upload landing files here."
  value       = module.medallion.landing_url
}

output "api_token" {
  description = "terraform output -raw api_token"
  value       = module.medallion.api_token
  sensitive   = true
}
