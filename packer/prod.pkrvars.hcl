# A bake by hand, outside Pulumi, of an image for prod: built in the baking account, shared with
# the prod account, copied for disaster recovery. (The prod stack itself never bakes: it promotes
# what staging baked.)
region        = "eu-west-1"
instance_type = "t3.small"
runtime       = "python"
ami_users     = ["222222222222"]
ami_regions   = ["eu-central-1"]
# A shared encrypted image needs a customer-managed key whose policy lets the prod account use it.
kms_key_id         = "alias/golden-fleet-ami"
region_kms_key_ids = { eu-central-1 = "alias/golden-fleet-ami" }
