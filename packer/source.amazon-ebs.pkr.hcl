# The AWS target the Pulumi program bakes. Current Packer only (imds_support, deprecate_at);
# compat/source.amazon-ebs.pkr.hcl is this block without those lines, for Packer 1.6.6.
source "amazon-ebs" "golden" {
  region                 = var.region
  instance_type          = var.instance_type
  custom_endpoint_ec2    = var.ec2_endpoint
  skip_region_validation = var.skip_region_validation

  source_ami_filter {
    owners      = var.source_ami_owners
    most_recent = true
    filters = {
      name                = var.source_ami_name
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
  }

  ssh_username         = var.ssh_username
  ssh_host             = var.ssh_host
  ssh_port             = var.ssh_port
  ssh_private_key_file = var.ssh_private_key_file

  ami_name        = local.image_name
  ami_description = "${var.service} ${var.version}: CIS-hardened Debian 12, built ${local.build_time}"
  ami_users       = var.ami_users
  ami_regions     = var.ami_regions
  encrypt_boot    = true
  kms_key_id      = var.kms_key_id

  region_kms_key_ids = var.region_kms_key_ids
  imds_support       = "v2.0"
  deprecate_at       = timeadd(timestamp(), var.deprecate_after)

  tags          = local.tags
  snapshot_tags = local.tags
  run_tags      = local.tags
}
