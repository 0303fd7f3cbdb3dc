# The chart on the lake bucket through the IRSA role, with a generated API token.

resource "random_password" "api_token" {
  length  = 40
  special = false
}

module "release" {
  source = "../release"

  namespace  = var.namespace
  chart_path = var.chart_path
  image      = var.image
  storage = {
    lakehouse = "s3://${aws_s3_bucket.lake.bucket}/lakehouse"
    landing   = "s3://${aws_s3_bucket.lake.bucket}/landing"
    state     = "s3://${aws_s3_bucket.lake.bucket}/state"
  }
  env = [{ name = "AWS_REGION", value = var.region }]
  service_account = {
    name        = local.service_account
    annotations = { "eks.amazonaws.com/role-arn" = aws_iam_role.pods.arn }
  }
  executor_node_selector = { "medallion.io/pool" = "executors" }
  executors              = var.executors
  pipelines              = var.pipelines
  cron_jobs              = var.cron_jobs
  api_token              = random_password.api_token.result

  depends_on = [aws_eks_node_group.this, aws_iam_role_policy.lake_access]
}
