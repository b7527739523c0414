output "host" {
  description = "Endpoint host of the workgroup (private)."
  value       = aws_redshiftserverless_workgroup.this.endpoint[0].address
}

output "port" {
  description = "SQL port."
  value       = aws_redshiftserverless_workgroup.this.endpoint[0].port
}

output "database" {
  description = "Warehouse database."
  value       = aws_redshiftserverless_namespace.this.db_name
}

output "workgroup" {
  description = "Name of the workgroup."
  value       = aws_redshiftserverless_workgroup.this.workgroup_name
}

output "workgroup_arn" {
  description = "ARN of the workgroup."
  value       = aws_redshiftserverless_workgroup.this.arn
}

output "namespace_arn" {
  description = "ARN of the namespace."
  value       = aws_redshiftserverless_namespace.this.arn
}

output "copy_role_arn" {
  description = "Role Redshift assumes for COPY from the lake."
  value       = aws_iam_role.copy.arn
}

output "admin_password_secret_arn" {
  description = "Secrets Manager secret with the admin password (an ARN, never the value)."
  value       = aws_redshiftserverless_namespace.this.admin_password_secret_arn
}
