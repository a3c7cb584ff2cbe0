# Production: built once in the tooling account, shared with the prod account, copied for DR.
region        = "eu-west-1"
instance_type = "t3.small"
runtime       = "python"
ami_users     = ["210987654321"]
ami_regions   = ["eu-central-1"]
