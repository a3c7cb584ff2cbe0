# Staging: the account that bakes every image. What the stack config already sets (runtime, build
# instance type, accounts to share with, regions to copy to) is deliberately absent: a var file
# wins over the PKR_VAR_* values the Pulumi program passes, and would silently undo them.
region = "eu-west-1"
# Staging shares its images with prod: a shared encrypted image needs a customer-managed key whose
# policy lets the prod account use it (the default EBS key cannot be shared).
kms_key_id = "alias/golden-fleet-ami"
