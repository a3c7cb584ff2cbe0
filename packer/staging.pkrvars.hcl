# Staging: built in the staging account, shared with nobody, one region.
region        = "eu-west-1"
instance_type = "t3.small"
runtime       = "python"
ami_users     = []
ami_regions   = []
