output "helm_values" {
  description = "Chart values from the infrastructure: python terraform/helm_values.py <this folder> -o values.yaml"
  value       = module.platform.helm_values
}

output "summary" {
  description = "Cluster, buckets, keys and the admin-secret ARN (no secret values)."
  value       = module.platform.summary
}
