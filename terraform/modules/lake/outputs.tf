output "bucket" {
  description = "Name of the lake bucket."
  value       = aws_s3_bucket.lake.id
}

output "bucket_arn" {
  description = "ARN of the lake bucket."
  value       = aws_s3_bucket.lake.arn
}

output "root" {
  description = "Lake root as the Spark jobs and services see it (LAKE_ROOT, the chart's lake.root)."
  value       = "s3a://${aws_s3_bucket.lake.id}/lake"
}

output "prefix" {
  description = "Key prefix of the lake inside the bucket."
  value       = local.lake_prefix
}

output "access_log_bucket" {
  description = "Name of the bucket receiving the lake's server access logs."
  value       = aws_s3_bucket.logs.id
}
