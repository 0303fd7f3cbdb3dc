# The medallion chart with the executors autoscaled by the scheduler.

resource "helm_release" "medallion" {
  name             = "medallion"
  chart            = coalesce(var.chart_path, "${path.module}/../../../helm/medallion")
  namespace        = var.namespace
  create_namespace = true
  wait             = true
  timeout          = 600

  values = [yamlencode({
    fullnameOverride = "medallion"
    image            = var.image
    storage          = var.storage
    env              = var.env
    serviceAccount   = var.service_account
    podLabels        = var.pod_labels
    executor = {
      autoscaling = {
        enabled         = true
        minReplicas     = var.executors.min
        maxReplicas     = var.executors.max
        executorsPerRun = var.executors.per_run
      }
      nodeSelector = var.executor_node_selector
    }
    pipelines = var.pipelines
    cronJobs  = var.cron_jobs
  })]

  set_sensitive = [{
    name  = "apiTokens.tokens[0]"
    value = var.api_token
  }]
}
