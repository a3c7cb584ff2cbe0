# One build for every target: the same scripts, in order, ending with the image's own tests.
build {
  name = "golden"
  sources = [
    "source.amazon-ebs.golden",
    "source.docker.golden",
    "source.azure-arm.golden",
    "source.googlecompute.golden",
  ]

  # The app's files first, so the scripts below find them on the build host.
  provisioner "file" {
    source      = local.app_dir
    destination = "/tmp"
  }

  provisioner "shell" {
    # Root through sudo where the login user is not root (cloud images), directly where it is (docker).
    execute_command = "chmod +x {{ .Path }}; if [ \"$(id -u)\" -eq 0 ]; then env {{ .Vars }} {{ .Path }}; else sudo env {{ .Vars }} {{ .Path }}; fi"
    environment_vars = [
      "DEBIAN_FRONTEND=noninteractive",
      "GF_SERVICE=${var.service}",
      "GF_VERSION=${var.version}",
      "GF_APP_PORT=${var.app_port}",
      "GF_APP_SRC=/tmp/app",
      "GF_RUNTIME=${var.runtime}",
      "GF_RUNTIME_PACKAGES=${local.runtime_packages[var.runtime]}",
      "GF_LOGIN_USER=${var.ssh_username}",
      "GF_AGENT_REGION=${var.region}",
    ]
    scripts = [
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
      "${path.root}/scripts/30-agents.sh",
      "${path.root}/scripts/40-runtime.sh",
      "${path.root}/scripts/50-app.sh",
      "${path.root}/scripts/90-cleanup.sh",
      "${path.root}/scripts/99-image-tests.sh",
    ]
  }

  post-processor "manifest" {
    output     = var.manifest_path
    strip_path = true
    custom_data = {
      service         = var.service
      version         = var.version
      template_digest = var.template_digest
    }
  }
}
