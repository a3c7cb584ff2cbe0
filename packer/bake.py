#!/usr/bin/env python3
"""Bake the golden image and print its AMI id.

    python packer/bake.py --version 1.4.0 --service checkout --region eu-west-1 [--var-file F]
    python packer/bake.py --version 1.0.0 --local            # no cloud account needed

stdout carries only the AMI id; Packer's progress and every message go to stderr. Each failure
exits with its own code and one line on stderr, prints no id and leaves no image behind that looks
good. An image of the same service, version and template digest is reused at once; the same
version built from different content is refused (one version, one content). The image is built
in the home region only; sharing and copies are Pulumi resources (components/golden_image.py).

Local mode bakes on this machine: a local EC2 API (moto_server on loopback) and a Debian 12 build
host (a debootstrap rootfs, cached, with sshd on a loopback port) stand in for AWS, so every
provisioner really runs on Debian 12 and the AMI is registered in the emulator.

This file only makes the bake package (packer/baking/) and the image contract
(components/image_contract.py) importable and calls the package's CLI.
"""

import sys
from pathlib import Path

_PACKER_DIR = Path(__file__).resolve().parent
# packer/ for `baking`, the repository root for `components.image_contract` (a script's own
# directory is already first on sys.path; the root is not).
for _path in (str(_PACKER_DIR), str(_PACKER_DIR.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from baking.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
