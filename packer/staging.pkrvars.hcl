# Staging: the account that bakes every image. What the stack config already sets (runtime, build
# instance type, the image key) is deliberately absent: a var file wins over the PKR_VAR_* values
# the Pulumi program passes, and would silently undo them.
region = "eu-west-1"
