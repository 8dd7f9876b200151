"""The AWS footprint: VPC, EKS, ElastiCache and RDS PostgreSQL components."""
