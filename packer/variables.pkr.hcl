# Every input of the golden image. Environment values live in *.pkrvars.hcl; the bake wrapper
# passes service, version, build time and template digest; the Pulumi program passes PKR_VAR_*.

variable "layer" {
  type        = string
  description = "Which layer to bake: foundation (Debian 12, upgrades, CIS, agents, runtime) or application (the release on a foundation)."
  default     = "application"
  validation {
    condition     = contains(["foundation", "application"], var.layer)
    error_message = "The layer must be foundation or application."
  }
}

variable "foundation_ami" {
  type        = string
  description = "Application layer: id of the foundation AMI it is built on (empty for the foundation)."
  default     = ""
}

variable "build_source_ami" {
  type        = string
  description = "Local bake only: the image the emulator launches an application build from. moto registers every image it creates with root device type standard, which amazon-ebs refuses as a source, so the local bake launches from the Debian stand-in while its build host is the foundation's kept root. Empty (AWS) launches from the foundation itself."
  default     = ""
}

variable "foundation_name" {
  type        = string
  description = "Application layer: name of that foundation AMI (golden-foundation-<runtime>-<timestamp>)."
  default     = ""
}

variable "foundation_build_time" {
  type        = string
  description = "Application layer: that foundation's build time, tagged for lineage."
  default     = ""
}

variable "ami_description" {
  type        = string
  description = "AMI description (readable by the accounts it is shared with), written by the wrapper."
  default     = "golden-fleet image: CIS-hardened Debian 12"
}

variable "service" {
  type        = string
  description = "Service the image runs; first part of the image name. Empty for the foundation layer."
  default     = ""
  validation {
    # Coarse on purpose: Packer 1.6.6 has no regex(); the wrapper checks the exact rule
    # (components/image_contract.py). Empty only for a foundation, which no service names.
    condition     = var.service == "" || (length(var.service) >= 2 && length(var.service) <= 14 && lower(var.service) == var.service)
    error_message = "The service must be lower-case, 2 to 14 characters."
  }
}

variable "version" {
  type        = string
  description = "Semantic version baked into the image (1.4.0, 2.0.0-rc.1); never latest. Empty for the foundation layer."
  default     = ""
  validation {
    # Coarse on purpose: Packer 1.6.6 has no regex(); the wrapper checks full semantic versions.
    condition     = var.version == "" || (var.version != "latest" && length(split(".", var.version)) >= 3 && length(split("+", var.version)) == 1)
    error_message = "The version must be a semantic version such as 1.4.0, never latest, without build metadata."
  }
}

variable "build_time" {
  type        = string
  description = "UTC build time YYYYMMDDThhmmssZ, set by the wrapper so it knows the image name; empty means now."
  default     = ""
}

variable "template_digest" {
  type        = string
  description = "sha256 of the template, scripts, app and content variables, computed by the wrapper."
  default     = "unset"
}

variable "bake_run" {
  type        = string
  description = "Unique id of one wrapper run, tagged on its image: a failed run removes only the image it registered, never another run's of the same name."
  default     = ""
}

variable "region" {
  type        = string
  description = "AWS region the image is built in."
  default     = "us-east-1"
}

variable "source_ami_owners" {
  type        = list(string)
  description = "Accounts trusted to publish the base image (136693071363 is Debian)."
  default     = ["136693071363"]
}

variable "source_ami_name" {
  type        = string
  description = "Name pattern of the base image; the most recent match is used."
  default     = "debian-12-amd64-*"
}

variable "kms_key_id" {
  type        = string
  description = "KMS key (id, ARN or alias) the image's snapshots are encrypted with: the baking stack's image key, passed as PKR_VAR_kms_key_id. Empty means the account's default EBS key, whose images no other account can launch."
  default     = ""
}

variable "runtime" {
  type        = string
  description = "Language runtime installed in the image: python, nodejs or openjdk17."
  default     = "python"
  validation {
    condition     = contains(["python", "nodejs", "openjdk17"], var.runtime)
    error_message = "The runtime must be one of python, nodejs, openjdk17."
  }
}

variable "instance_type" {
  type        = string
  description = "Instance type of the temporary build instance."
  default     = "t3.small"
}

variable "app_port" {
  type        = number
  description = "Port the service listens on (service.port; $GF_APP_PORT at boot): the image tests ask it there, as the load balancer will. The wrapper passes --port, else the stack's service.port."
  default     = 8080
  validation {
    condition     = var.app_port >= 1 && var.app_port <= 65535 && floor(var.app_port) == var.app_port
    error_message = "The app_port must be a TCP port number 1-65535."
  }
}

variable "app_upload_dir" {
  type        = string
  description = "Directory the wrapper filled with the verified package (package.deb) and the boot-environment reader; empty uploads packer/files only."
  default     = ""
}

variable "app_package_label" {
  type        = string
  description = "The package as <name>_<version> (the AppPackage tag), from its control fields."
  default     = ""
}

variable "app_sha256" {
  type        = string
  description = "sha256 of the package file, verified by the wrapper (the AppSha256 tag)."
  default     = ""
}

variable "app_unit" {
  type        = string
  description = "The systemd unit the package ships (image.app.unit; default <service>.service)."
  default     = ""
}

variable "health_check_path" {
  type        = string
  description = "Path the image tests ask the service for (service.healthCheckPath); 200 expected."
  default     = "/healthz"
  validation {
    condition     = substr(var.health_check_path, 0, 1) == "/"
    error_message = "The health check path must start with /."
  }
}

variable "keep_sshd" {
  type        = bool
  description = "Keep openssh-server in the image (image.keepSshd); by default 95-remove-sshd.sh purges it."
  default     = false
}

variable "ssh_username" {
  type        = string
  description = "Login user of the base image (admin on Debian)."
  default     = "admin"
}

variable "ec2_endpoint" {
  type        = string
  description = "EC2 API endpoint; empty for AWS. The local bake points it at the emulator."
  default     = ""
}

variable "skip_region_validation" {
  type        = bool
  description = "Skip the region check; only the local bake sets it."
  default     = false
}

variable "ssh_host" {
  type        = string
  description = "Host to connect to instead of the instance's address; only the local bake sets it."
  default     = ""
}

variable "ssh_port" {
  type        = number
  description = "SSH port of the build host."
  default     = 22
}

variable "ssh_private_key_file" {
  type        = string
  description = "Private key for the build host; empty means a temporary key pair."
  default     = ""
}

variable "manifest_path" {
  type        = string
  description = "Where the manifest post-processor writes the artifact ids."
  default     = "manifest.json"
}

variable "deprecate_after" {
  type        = string
  description = "How long after the build the image is marked deprecated (current Packer only)."
  default     = "8760h"
}

variable "docker_image" {
  type        = string
  description = "Base image of the docker target, pinned to a point release."
  default     = "debian:12.8"
}

variable "azure_subscription_id" {
  type        = string
  description = "Azure subscription of the azure-arm target."
  default     = ""
}

variable "azure_resource_group" {
  type        = string
  description = "Resource group the azure-arm target writes its managed image to."
  default     = "golden-fleet-images"
}

variable "azure_location" {
  type        = string
  description = "Azure region of the azure-arm target."
  default     = "westeurope"
}

variable "gcp_project_id" {
  type        = string
  description = "Project of the googlecompute target."
  default     = "golden-fleet"
}

variable "gcp_zone" {
  type        = string
  description = "Zone of the googlecompute build instance."
  default     = "europe-west1-b"
}
