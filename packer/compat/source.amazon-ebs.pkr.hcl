# The AWS target for Packer 1.6.6: ../source.amazon-ebs.pkr.hcl without imds_support and
# deprecate_at, which 1.6.6 rejects. tests/test_packer_template.py keeps the two in step.
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

  tags          = local.tags
  snapshot_tags = local.tags
  run_tags      = local.tags
}
