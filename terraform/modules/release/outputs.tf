output "namespace" {
  description = "Namespace of the release."
  value       = helm_release.medallion.namespace
}
