# One build for every target and both layers: the layer's scripts, in order; the application
# layer ends with the image's own tests.
build {
  name = "golden"
  sources = [
    "source.amazon-ebs.golden",
    "source.docker.golden",
    "source.azure-arm.golden",
    "source.googlecompute.golden",
  ]

  # The application's files first, so the scripts below find them on the build host: the
  # wrapper's upload directory (the verified package and the boot-environment reader; see
  # packer/baking/package.py), or for a foundation bake the reader alone.
  # scp uploads a directory's contents into an existing directory only: without it, each file
  # overwrites the previous one as a plain file called golden-fleet-app.
  provisioner "shell" {
    inline = ["mkdir -p -m 0700 /tmp/golden-fleet-app"]
  }

  provisioner "file" {
    source      = "${local.app_upload}/"
    destination = "/tmp/golden-fleet-app"
  }

  provisioner "shell" {
    # Root through sudo where the login user is not root (cloud images), directly where it is (docker).
    execute_command = "chmod +x {{ .Path }}; if [ \"$(id -u)\" -eq 0 ]; then env {{ .Vars }} {{ .Path }}; else sudo env {{ .Vars }} {{ .Path }}; fi"
    environment_vars = [
      "DEBIAN_FRONTEND=noninteractive",
      "GF_SERVICE=${var.service}",
      "GF_VERSION=${var.version}",
      "GF_APP_PORT=${var.app_port}",
      "GF_APP_UPLOAD=/tmp/golden-fleet-app",
      "GF_APP_UNIT=${var.app_unit}",
      "GF_APP_SHA256=${var.app_sha256}",
      "GF_HEALTH_CHECK_PATH=${var.health_check_path}",
      "GF_RUNTIME=${var.runtime}",
      "GF_RUNTIME_PACKAGES=${local.runtime_packages[var.runtime]}",
      "GF_LOGIN_USER=${var.ssh_username}",
      "GF_AGENT_REGION=${var.region}",
      "GF_KEEP_SSHD=${var.keep_sshd}",
    ]
    # One list per layer (locals.pkr.hcl), chosen by var.layer.
    scripts = local.scripts
  }

  post-processor "manifest" {
    output     = var.manifest_path
    strip_path = true
    custom_data = {
      service         = var.service
      version         = var.version
      template_digest = var.template_digest
      layer           = var.layer
    }
  }
}
