"""The local build host: the cached Debian 12 tree as a login-ready machine, sshd on loopback.

What a Debian cloud image has at first boot on EC2 (the login user with its key and sudo rule,
host keys, an /etc/hosts line) is written in; each command runs in its own mount and PID
namespaces so nothing it starts outlives it.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from baking.console import PHASES, log
from baking.errors import EXIT_PREREQUISITE, BakeError
from baking.layers import copy_root
from baking.processes import die_with_parent, free_port, port_open, stop_process, wait_for
from baking.rootfs import SpareCopy, pristine_rootfs, take_spare

LOGIN_USER = "admin"


def host_command(root: Path, argv: list[str], own_network: bool = False) -> list[str]:
    """argv run inside the build host: own mount and PID namespaces, so nothing outlives it.

    With own_network, also a fresh network namespace (loopback only, down) whose per-namespace
    sysctls (net.*) can be set as the image's boot would, without touching the machine's."""
    namespaces = ["--mount", "--pid", "--fork", "--kill-child"] + (["--net"] if own_network else [])
    script = (
        'set -e; r="$1"; shift; mount --make-rprivate /; mount -t proc proc "$r/proc"; '
        'mount --rbind /dev "$r/dev"; mount -t sysfs sysfs "$r/sys"; exec chroot "$r" "$@"'
    )
    return ["unshare", *namespaces, "sh", "-c", script, "host", str(root), *argv]


def run_in_host(
    root: Path, argv: list[str], own_network: bool = False, **kwargs
) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(host_command(root, argv, own_network), **kwargs)


def cloud_image_sources(sources_list: str) -> str:
    """The apt sources of a Debian 12 cloud image, from the one line debootstrap writes.

    debootstrap lists the release alone (``deb <mirror> bookworm main``); Debian's cloud images
    list the release, its updates and the security suite, so the baseline's full upgrade takes
    the security updates there and must here too. The security suite is read from the same
    archive's ``-security`` tree (Debian's layout)."""
    lines = [line.split() for line in sources_list.splitlines() if line.strip()]
    debs = [parts for parts in lines if parts[0] == "deb"]
    if len(debs) != 1 or len(debs[0]) < 4 or not re.fullmatch(r"https?://\S+", debs[0][1]):
        raise BakeError(
            EXIT_PREREQUISITE,
            f"the build host's sources.list is not debootstrap's one line: {sources_list!r}",
        )
    _, uri, suite, *components = debs[0]
    uri = uri.rstrip("/")
    entry = (
        "Types: deb\nURIs: {uri}\nSuites: {suites}\nComponents: {components}\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    return (
        entry.format(uri=uri, suites=f"{suite} {suite}-updates", components=" ".join(components))
        + "\n"
        + entry.format(
            uri=f"{uri}-security", suites=f"{suite}-security", components=" ".join(components)
        )
    )


@dataclass
class BuildHost:
    workdir: Path
    root: Path = field(init=False)
    key: Path = field(init=False)
    port: int = 0
    process: subprocess.Popen | None = None
    spare_copy: SpareCopy | None = None
    # The root to start from: a foundation's kept root (application layer); None is the cached
    # Debian 12 tree (foundation layer).
    base: Path | None = None

    def __post_init__(self) -> None:
        self.root = self.workdir / "rootfs"
        self.key = self.workdir / "id_ed25519"

    def prepare(self) -> None:
        for tool in ("unshare", "chroot", "ssh-keygen"):
            if not shutil.which(tool):
                raise BakeError(EXIT_PREREQUISITE, f"{tool} not found")
        shutil.rmtree(self.root, ignore_errors=True)
        self.key.unlink(missing_ok=True)
        Path(f"{self.key}.pub").unlink(missing_ok=True)
        if self.base is not None:
            with PHASES("foundation root copy"):
                copy_root(self.base, self.root)
        else:
            pristine = pristine_rootfs()
            with PHASES("rootfs copy"):
                if not take_spare(pristine, self.root):
                    copy_root(pristine, self.root)
            (self.root / ".complete").unlink(missing_ok=True)
            sources_list = self.root / "etc/apt/sources.list"
            if sources_list.exists():  # as a Debian 12 cloud image lists them (deb822)
                (self.root / "etc/apt/sources.list.d/debian.sources").write_text(
                    cloud_image_sources(sources_list.read_text())
                )
                sources_list.unlink()
            # The next bake's copy is made now, while this one provisions (stop() waits for it).
            self.spare_copy = SpareCopy(pristine)
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "local-bake",
                "-f",
                str(self.key),
            ],
            check=True,
        )
        # What a Debian cloud image has at first boot: the login user with passwordless sudo
        # (cloud-init writes that sudoers line on EC2) and host keys.
        # A foundation's root has the login user already (as a foundation AMI has on EC2).
        if run_in_host(self.root, ["id", LOGIN_USER], capture_output=True).returncode:
            run_in_host(self.root, ["useradd", "-m", "-s", "/bin/bash", LOGIN_USER], check=True)
        ssh_dir = self.root / "home" / LOGIN_USER / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        run_in_host(
            self.root,
            ["chown", "-R", f"{LOGIN_USER}:{LOGIN_USER}", f"/home/{LOGIN_USER}/.ssh"],
            check=True,
        )
        (self.root / "etc/sudoers.d/90-cloud-init-users").write_text(
            f"{LOGIN_USER} ALL=(ALL) NOPASSWD:ALL\n"
        )
        run_in_host(self.root, ["ssh-keygen", "-A"], check=True, stdout=subprocess.DEVNULL)
        hosts_line = f"127.0.1.1\t{socket.gethostname()}\n"
        hosts_file = self.root / "etc/hosts"
        known = hosts_file.read_text() if hosts_file.exists() else ""
        if hosts_line not in known:  # cloud-init's manage_etc_hosts on EC2
            with open(hosts_file, "a") as hosts:
                hosts.write(hosts_line)
        # A chroot has no init: keep package scripts from starting daemons in it.
        policy = self.root / "usr/sbin/policy-rc.d"
        policy.write_text(
            "#!/bin/sh\n# local build host only: no daemons start in the chroot\nexit 101\n"
        )
        policy.chmod(0o755)
        (self.root / "run/sshd").mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.port = free_port()
        argv = ["/usr/sbin/sshd", "-D", "-e", "-p", str(self.port), "-o", "ListenAddress=127.0.0.1"]
        self.process = subprocess.Popen(
            host_command(self.root, argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "sshd.log", "ab"),
            start_new_session=True,
            # unshare blocks SIGTERM; SIGKILL ends it, and --kill-child then ends sshd (the PID
            # namespace's init) and with it everything in the namespace.
            preexec_fn=die_with_parent(signal.SIGKILL),
        )
        wait_for(
            lambda: self.process.poll() is None and port_open(self.port), 30, "build host sshd"
        )
        log(f"build host {self.root} with sshd on 127.0.0.1:{self.port}")

    def stop(self, failed: bool = False) -> None:
        """Stop sshd; finish the spare copy, or on failure or interruption abandon it."""
        with PHASES("sshd stop"):
            stop_process(self.process)
        self.process = None
        (self.root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
        if self.spare_copy is not None:
            with PHASES("spare copy wait"):
                if failed:
                    self.spare_copy.abort()
                else:
                    self.spare_copy.finish()
            self.spare_copy = None
