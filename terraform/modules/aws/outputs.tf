output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name …)."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "Base64 CA certificate of the API endpoint."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "bucket" {
  description = "The lake bucket."
  value       = aws_s3_bucket.lake.bucket
}

output "lakehouse_url" {
  description = "Lakehouse root used by the CronJobs."
  value       = "s3://${aws_s3_bucket.lake.bucket}/lakehouse"
}

output "landing_url" {
  description = "Where to put landing files."
  value       = "s3://${aws_s3_bucket.lake.bucket}/landing"
}

output "pods_role_arn" {
  description = "IAM role the scheduler and executors assume (IRSA)."
  value       = aws_iam_role.pods.arn
}

output "namespace" {
  description = "Namespace of the release."
  value       = module.release.namespace
}

output "api_token" {
  description = "Bearer token of the job service."
  value       = random_password.api_token.result
  sensitive   = true
}
