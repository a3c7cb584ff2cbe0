"""Debian packages the tests build: services that are not the sample app (plain module)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

# A service of its own: its name, user and health path differ from the sample's, so a bake that
# still installed app/ could not pass.
GREETER_SERVER = """\
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        answers = {"/ping": b"pong", "/greeting": os.environ.get("GREETING", "").encode()}
        body = answers.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"")


# `--port N` (a unit that fixes its own port) wins over the image's GF_APP_PORT.
port = sys.argv[sys.argv.index("--port") + 1] if "--port" in sys.argv else os.environ["GF_APP_PORT"]
address = (os.environ.get("GF_APP_BIND", "0.0.0.0"), int(port))
HTTPServer(address, Handler).serve_forever()
"""
GREETER_UNIT = """\
[Unit]
Description=greeter test service

[Service]
User={name}
Group={name}
ExecStart=/usr/bin/python3 /opt/{name}/greeter.py
NoNewPrivileges=yes

[Install]
WantedBy=multi-user.target
"""
GREETER_POSTINST = """\
#!/bin/sh
set -e
if [ "$1" = configure ] && ! getent passwd {name} >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent \\
    --shell /usr/sbin/nologin {name}
fi
"""


# What most packaged services do: the unit fixes the port itself (its own Environment= line and
# the port on the command line), whatever the image's environment file says.
FIXED_PORT_LINES = """\
Environment=PORT={port}
ExecStart=/usr/bin/python3 /opt/{name}/greeter.py --port ${{PORT}}
"""
# What most packaged services do too: state and logs in the directories systemd makes for the unit
# (systemd.exec(5), StateDirectory=/LogsDirectory=), owned by its user, named to it in
# $STATE_DIRECTORY and $LOGS_DIRECTORY (colon-separated). Nested names: the innermost is the
# user's. Its spool directory comes from its tmpfiles.d snippet. The server refuses to start
# unless it can write into every one of them.
DIRECTORY_LINES = """\
StateDirectory={name} {name}/sessions
StateDirectoryMode=0750
LogsDirectory={name}
Environment=SPOOL_DIRECTORY=/var/spool/{name}
"""
# And a tmpfiles.d snippet of its own for a directory no unit setting makes.
DIRECTORY_TMPFILES = "d /var/spool/{name} 0750 {name} {name} -\n"
DIRECTORY_SERVER = """\
for variable in ("STATE_DIRECTORY", "LOGS_DIRECTORY", "SPOOL_DIRECTORY"):
    for directory in os.environ[variable].split(":"):
        with open(os.path.join(directory, "started"), "a") as stream:
            stream.write(f"{os.getpid()}\\n")
"""


def build_deb(
    directory: Path,
    name: str,
    version: str,
    flavour: str = "",
    user: str | None = None,
    port: int | None = None,
    directories: bool = False,
) -> Path:
    """``<name>_<version>_all.deb``: the greeter service packaged as ``name`` at ``version``.

    ``flavour`` changes a comment in the server (another build of the same version: another
    sha256); ``user`` overrides the unit's User= (``root`` for the refusal tests); ``port``
    makes the unit fix its own port (``Environment=PORT=N``, ``--port ${PORT}``) instead of
    listening on the image's ``GF_APP_PORT``; ``directories`` gives the unit a StateDirectory=
    and a LogsDirectory=, and the package a tmpfiles.d snippet, whose directories the server
    writes into before it listens (DIRECTORY_LINES)."""
    unit = GREETER_UNIT.format(name=name).replace(f"User={name}", f"User={user or name}")
    if port is not None:
        unit = unit.replace(
            f"ExecStart=/usr/bin/python3 /opt/{name}/greeter.py\n",
            FIXED_PORT_LINES.format(name=name, port=port),
        )
    server = GREETER_SERVER
    if directories:
        lines = DIRECTORY_LINES.format(name=name)
        unit = unit.replace("NoNewPrivileges=yes\n", "NoNewPrivileges=yes\n" + lines)
        server = server.replace("\n\n# `--port N`", "\n\n" + DIRECTORY_SERVER + "\n\n# `--port N`")
    root = directory / f"{name}-{version}-{flavour or 'plain'}"
    files = {
        "DEBIAN/control": (
            f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
            "Maintainer: tests <tests@localhost>\nDepends: python3\n"
            f"Description: {name} test service\n",
            0o644,
        ),
        "DEBIAN/postinst": (GREETER_POSTINST.format(name=name), 0o755),
        f"opt/{name}/greeter.py": (server + f"# {flavour}\n", 0o644),
        f"lib/systemd/system/{name}.service": (unit, 0o644),
    }
    if directories:
        files[f"usr/lib/tmpfiles.d/{name}.conf"] = (DIRECTORY_TMPFILES.format(name=name), 0o644)
    for relative, (text, mode) in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
    target = directory / f"{name}_{version}{'-' + flavour if flavour else ''}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(target)],
        check=True,
        capture_output=True,
        env=dict(os.environ, SOURCE_DATE_EPOCH="1577836800"),
    )
    return target


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_sidecar(package: Path, digest: str | None = None) -> Path:
    """``<package>.sha256`` in sha256sum's format."""
    sidecar = package.with_name(package.name + ".sha256")
    sidecar.write_text(f"{digest or sha256_of(package)}  {package.name}\n")
    return sidecar
