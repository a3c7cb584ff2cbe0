# Derived values: the one tag map, the image name and the per-runtime package map.
locals {
  build_time = var.build_time != "" ? var.build_time : formatdate("YYYYMMDD'T'hhmmss'Z'", timestamp())
  image_name = "${var.service}-${var.version}-${local.build_time}"

  tags = {
    Service        = var.service
    Version        = var.version
    TemplateDigest = var.template_digest
    SourceAmi      = "{{ .SourceAMI }}"
    BuildTime      = local.build_time
    BakeRun        = var.bake_run
    ManagedBy      = "golden-fleet"
  }

  runtime_packages = {
    python    = "python3 python3-venv"
    nodejs    = "nodejs"
    openjdk17 = "openjdk-17-jre-headless"
  }

  app_dir = "${path.root}/../app"
}
