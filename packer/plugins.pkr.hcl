# Plugins, pinned. Current Packer only: 1.6.6 rejects `required_plugins` (its builders are built in).
packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "= 1.3.3"
    }
    docker = {
      source  = "github.com/hashicorp/docker"
      version = "= 1.1.0"
    }
    azure = {
      source  = "github.com/hashicorp/azure"
      version = "= 2.2.1"
    }
    googlecompute = {
      source  = "github.com/hashicorp/googlecompute"
      version = "= 1.1.6"
    }
  }
}
