# The medallion chart: storage on the lake bucket through the IRSA role, executors autoscaled
# by the scheduler, a generated API token.

resource "random_password" "api_token" {
  length  = 40
  special = false
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
      lakehouse = "s3://${aws_s3_bucket.lake.bucket}/lakehouse"
      landing   = "s3://${aws_s3_bucket.lake.bucket}/landing"
      state     = "s3://${aws_s3_bucket.lake.bucket}/state"
    }
    env = [{ name = "AWS_REGION", value = var.region }]
    serviceAccount = {
      name        = local.service_account
      annotations = { "eks.amazonaws.com/role-arn" = aws_iam_role.pods.arn }
    }
    executor = {
      autoscaling = {
        enabled         = true
        minReplicas     = var.executors.min
        maxReplicas     = var.executors.max
        executorsPerRun = var.executors.per_run
      }
      nodeSelector = { "medallion.io/pool" = "executors" }
    }
    pipelines = var.pipelines
    cronJobs  = var.cron_jobs
  })]

  set_sensitive = [{
    name  = "apiTokens.tokens[0]"
    value = random_password.api_token.result
  }]

  depends_on = [aws_eks_node_group.this, aws_iam_role_policy.lake_access]
}
