"""The local EC2 API of a local bake: moto_server on loopback, seeded with a Debian 12 stand-in."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

from baking.console import log
from baking.errors import EXIT_PREREQUISITE, BakeError
from baking.processes import die_with_parent, free_port, port_open, stop_process, wait_for

LOCAL_ACCESS_KEY = "testing"
# The emulator's stand-in for the official Debian 12 AMI (same owner, same name shape). moto
# cannot register an image under another owner, so it is seeded through MOTO_AMIS_PATH.
LOCAL_BASE_AMI = {
    "ami_id": "ami-0de12b00c0ffee001",
    "name": "debian-12-amd64-20250101-1980",
    "owner_id": "136693071363",
    "state": "available",
    "public": True,
    "description": "Debian 12 (20250101-1980) stand-in for the local bake",
    "image_location": "136693071363/debian-12-amd64-20250101-1980",
    "image_type": "machine",
    "architecture": "x86_64",
    "platform": None,
    "root_device_type": "ebs",
    "root_device_name": "/dev/xvda",
    "virtualization_type": "hvm",
    "hypervisor": "xen",
    "sriov": "simple",
    "creation_date": "2025-01-01T00:00:00.000Z",
}


@contextlib.contextmanager
def local_emulator(workdir: Path):
    """moto_server on a loopback port, seeded with the Debian 12 stand-in; yields its URL and
    stops it on the way out, whatever happened in between."""
    moto = shutil.which("moto_server")
    if not moto:
        raise BakeError(EXIT_PREREQUISITE, "moto_server not found: pip install 'moto[server]'")
    amis = workdir / "moto-amis.json"
    amis.write_text(json.dumps([LOCAL_BASE_AMI]))
    port = free_port()
    env = dict(os.environ, MOTO_AMIS_PATH=str(amis))
    process = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent(signal.SIGTERM),
    )
    try:
        wait_for(lambda: process.poll() is None and port_open(port), 30, "moto_server")
        log(f"local EC2 API on http://127.0.0.1:{port} (pid {process.pid})")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


# The template's source_ami_filter (source.amazon-ebs.pkr.hcl) besides owners and name.
_BASE_FILTERS = {"architecture": "x86_64", "virtualization-type": "hvm", "root-device-type": "ebs"}


def write_amis_file(path: Path) -> Path:
    """moto's seed file with the Debian 12 stand-in, for an emulator someone else starts.

    The stand-in is owned by Debian's account, and no EC2 API call can create an image owned by
    another account (moto's RegisterImage also keeps only the name and description, so even an
    own-account copy would miss the template's architecture and root-device filters): the image
    has to be in the emulator's seed data, which moto_server reads from MOTO_AMIS_PATH at start."""
    path.write_text(json.dumps([LOCAL_BASE_AMI], indent=1) + "\n")
    return path


def find_base_image(ec2, owners: list[str], name: str) -> dict | None:
    """The newest image the template's source_ami_filter would pick at this endpoint, or None."""
    filters = [{"Name": "name", "Values": [name]}] + [
        {"Name": key, "Values": [value]} for key, value in _BASE_FILTERS.items()
    ]
    images = ec2.describe_images(Owners=owners, Filters=filters)["Images"]
    return max(images, key=lambda i: i.get("CreationDate", ""), default=None)
