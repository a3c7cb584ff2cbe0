"""The local build host lists apt sources as a Debian 12 cloud image does (plain unit tests)."""

from __future__ import annotations

import bake_fixtures  # noqa: F401  (puts packer/, the bake package's home, on sys.path)
import pytest
from baking import build_host
from baking.errors import BakeError


def test_debootstraps_line_becomes_release_updates_and_security():
    """debootstrap writes the release alone; the baseline's upgrade must also see the security
    suite and the updates, as on EC2, else the local image misses the security updates."""
    sources = build_host.cloud_image_sources("deb http://archive.example/debian bookworm main\n")
    entries = [dict(line.split(": ", 1) for line in e.splitlines()) for e in sources.split("\n\n")]
    assert entries == [
        {
            "Types": "deb",
            "URIs": "http://archive.example/debian",
            "Suites": "bookworm bookworm-updates",
            "Components": "main",
            "Signed-By": "/usr/share/keyrings/debian-archive-keyring.gpg",
        },
        {
            "Types": "deb",
            "URIs": "http://archive.example/debian-security",
            "Suites": "bookworm-security",
            "Components": "main",
            "Signed-By": "/usr/share/keyrings/debian-archive-keyring.gpg",
        },
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# deb http://archive.example/debian bookworm main\n",
        "deb http://a.example/debian bookworm main\ndeb http://b.example/debian bookworm main\n",
        "deb file:/srv/debian bookworm main\n",
        "deb http://archive.example/debian bookworm\n",
    ],
)
def test_anything_but_one_debootstrap_line_is_refused(text):
    with pytest.raises(BakeError, match="not debootstrap's one line"):
        build_host.cloud_image_sources(text)
