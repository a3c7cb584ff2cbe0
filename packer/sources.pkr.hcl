# The other targets: same build block, same provisioners, same tests. Only amazon-ebs is baked
# by the program; these keep the image portable and are validated, not built, here.
source "docker" "golden" {
  image       = var.docker_image
  commit      = true
  run_command = ["-d", "-i", "-t", "--entrypoint=/bin/sh", "--", "{{ .Image }}"]
  changes = [
    "LABEL org.opencontainers.image.version=${var.version}",
    "LABEL golden-fleet.template-digest=${var.template_digest}",
    "EXPOSE ${var.app_port}",
  ]
}

source "azure-arm" "golden" {
  use_azure_cli_auth                = true
  subscription_id                   = var.azure_subscription_id
  location                          = var.azure_location
  vm_size                           = "Standard_B2s"
  os_type                           = "Linux"
  image_publisher                   = "Debian"
  image_offer                       = "debian-12"
  image_sku                         = "12-gen2"
  managed_image_name                = local.image_name
  managed_image_resource_group_name = var.azure_resource_group
  azure_tags                        = local.tags
}

source "googlecompute" "golden" {
  project_id          = var.gcp_project_id
  zone                = var.gcp_zone
  machine_type        = "e2-small"
  source_image_family = "debian-12"
  ssh_username        = "packer"
  image_name          = replace(lower(local.image_name), ".", "-")
  image_labels        = { for k, v in local.tags : lower(k) => replace(lower(v), "/[^a-z0-9_-]/", "-") }
}
