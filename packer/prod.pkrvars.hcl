# A bake by hand, outside Pulumi, of an image for prod: built in the baking account's home region.
# Sharing with the prod account and copies to other regions are not the bake's: the GoldenImage
# component creates them as Pulumi resources. (The prod stack itself never bakes: it promotes what
# staging baked.) The image key comes from the baking stack: PKR_VAR_kms_key_id.
region        = "eu-west-1"
instance_type = "t3.small"
runtime       = "python"
