# Derived values: the one tag map, the image name, the per-layer maps and the per-runtime packages.
locals {
  build_time = var.build_time != "" ? var.build_time : formatdate("YYYYMMDD'T'hhmmss'Z'", timestamp())

  # Per layer (var.layer): the image name, its tags beyond the common ones, its source image and
  # its scripts. The foundation starts from Debian's image; an application image from the
  # foundation AMI the wrapper chose (components/image_contract.py names both).
  layer_image_name = {
    foundation  = "golden-foundation-${var.runtime}-${local.build_time}"
    application = "${var.service}-${var.version}-${local.build_time}"
  }
  image_name = local.layer_image_name[var.layer]

  common_tags = {
    TemplateDigest = var.template_digest
    SourceAmi      = "{{ .SourceAMI }}"
    BuildTime      = local.build_time
    BakeRun        = var.bake_run
    ManagedBy      = "golden-fleet"
    Layer          = var.layer
  }
  layer_tags = {
    foundation = {
      Runtime = var.runtime
    }
    application = {
      Service             = var.service
      Version             = var.version
      Foundation          = var.foundation_ami
      FoundationName      = var.foundation_name
      FoundationBuildTime = var.foundation_build_time
      AppPackage          = var.app_package_label
      AppSha256           = var.app_sha256
    }
  }
  tags = merge(local.common_tags, local.layer_tags[var.layer])

  # var.build_source_ami (local bake only) launches the application build from Debian's image
  # while the build host is the foundation's root: see variables.pkr.hcl.
  launch_from_foundation = var.build_source_ami == ""
  layer_source_owners = {
    foundation  = var.source_ami_owners
    application = local.launch_from_foundation ? ["self"] : var.source_ami_owners
  }
  layer_source_name = {
    foundation  = var.source_ami_name
    application = local.launch_from_foundation ? var.foundation_name : var.source_ami_name
  }
  source_ami = local.launch_from_foundation ? var.foundation_ami : var.build_source_ami

  # Foundation: everything that does not change between releases, ending with a clean-up that
  # leaves it ready to be provisioned again (sshd and the login user stay). Application: the
  # release's package and configuration, the clean-up and the image's own tests.
  foundation_scripts = [
    "${path.root}/scripts/10-baseline.sh",
    "${path.root}/scripts/20-cis-sshd.sh",
    "${path.root}/scripts/21-cis-sysctl.sh",
    "${path.root}/scripts/22-cis-modules.sh",
    "${path.root}/scripts/23-cis-coredumps.sh",
    "${path.root}/scripts/24-cis-auditd.sh",
    "${path.root}/scripts/25-cis-accounts.sh",
    "${path.root}/scripts/26-cis-permissions.sh",
    "${path.root}/scripts/27-cis-apparmor.sh",
    "${path.root}/scripts/28-agent-log-access.sh",
    "${path.root}/scripts/29-cis-time.sh",
    "${path.root}/scripts/2a-cis-firewall.sh",
    "${path.root}/scripts/2b-cis-mounts.sh",
    "${path.root}/scripts/2c-cis-logging.sh",
    "${path.root}/scripts/2d-cis-aide.sh",
    "${path.root}/scripts/30-agents.sh",
    "${path.root}/scripts/40-runtime.sh",
    "${path.root}/scripts/45-foundation-cleanup.sh",
  ]
  application_scripts = [
    "${path.root}/scripts/50-app.sh",
    "${path.root}/scripts/55-agent-config.sh",
    "${path.root}/scripts/90-cleanup.sh",
    "${path.root}/scripts/95-remove-sshd.sh",
    "${path.root}/scripts/96-cis-audit-privileged.sh",
    "${path.root}/scripts/97-cis-aide-init.sh",
    "${path.root}/scripts/99-image-tests.sh",
  ]
  scripts = var.layer == "foundation" ? local.foundation_scripts : local.application_scripts

  runtime_packages = {
    python    = "python3 python3-venv"
    nodejs    = "nodejs"
    openjdk17 = "openjdk-17-jre-headless"
  }

  # What the file provisioner uploads: the wrapper's directory, else the template's own files.
  app_upload = var.app_upload_dir != "" ? var.app_upload_dir : "${path.root}/files"
}
