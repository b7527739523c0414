terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # State in S3 with native lock files (no DynamoDB table). The bucket and region come from
  # `tofu init -backend-config=bucket=<state bucket> -backend-config=region=<region>`.
  backend "s3" {
    key          = "iotpipe/dev/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      "app.kubernetes.io/part-of" = "iotpipe"
      "iotpipe.io/managed-by"     = "opentofu"
    }
  }
}
