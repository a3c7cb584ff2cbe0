#!/usr/bin/python3
"""The image test "app answers <path>": the app unit started as an instance starts it, and asked
where the load balancer asks it (http://127.0.0.1:<service.port><healthCheckPath>).

No systemd runs on the build host, so this reads the unit as systemd would (the package's unit
file and its drop-ins, golden-fleet.conf among them): its User=/Group=, WorkingDirectory=,
RuntimeDirectory=, its own Environment= and EnvironmentFile= lines, then the image's environment
file /run/<service>/environment written by the image's own boot unit with GF_APP_PORT=<port>, as
at boot. ExecStartPre= and ExecStart= run with systemd's $VAR/${VAR} expansion.

It runs in private network, mount and PID namespaces (`unshare`): loopback only, so the port is
free even on a busy build host and nothing reaches the network; /run is a tmpfs of its own, so the
image keeps no trace; everything the service started ends with it. A service that does not
answer there fails with one line naming the port asked and the ports it listens on (read from
/proc/net/tcp and tcp6 of that namespace).

Exit 0 and nothing printed when it answers 200; else exit 1 and one line on stdout.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import grp
import http.client
import ipaddress
import json
import os
import pwd
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
BOOT_UNIT = "/etc/systemd/system/golden-fleet-environment.service"
# systemd 252's default PATH for services (src/basic/path-util.h, DEFAULT_PATH_NORMAL with /usr
# merged: Debian 12 is).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT_S = 20.0
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column (include/net/tcp_states.h)


class CheckFailed(Exception):
    """The service did not answer as the load balancer needs; the message is the one line."""


# --- the unit, as systemd reads it ---------------------------------------------------------


def unit_paths(unit: str, main: str, dirs: tuple[str, ...] = UNIT_DIRS) -> list[str]:
    """The unit file, then its drop-ins in systemd's order: all ``<unit>.d/*.conf`` sorted by
    file name, a name in an earlier directory (/etc first) hiding the same name in a later one
    (systemd.unit(5), "drop-in")."""
    by_name: dict[str, str] = {}
    for directory in dirs:
        for path in glob.glob(os.path.join(directory, f"{unit}.d", "*.conf")):
            by_name.setdefault(os.path.basename(path), path)
    return [main] + [by_name[name] for name in sorted(by_name)]


def service_settings(texts: list[str]) -> dict[str, list[str]]:
    """The [Service] section of a unit file and its drop-ins (in order) as key -> values.

    As systemd reads them: comments start with # or ;, a trailing backslash continues the line,
    and an empty assignment (``Environment=``) empties the list so far."""
    settings: dict[str, list[str]] = {}
    for text in texts:
        section = None
        for line in _logical_lines(text):
            if line.startswith("[") and line.endswith("]"):
                section = line
            elif section == "[Service]" and "=" in line:
                key, value = (part.strip() for part in line.split("=", 1))
                if value:
                    settings.setdefault(key, []).append(value)
                else:
                    settings[key] = []
    return settings


def _logical_lines(text: str):
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith(("#", ";"))):
            continue
        if pending and line.startswith(("#", ";")):
            continue  # a comment inside a continued line is skipped (systemd.syntax(7))
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending.rstrip()


def specifiers(value: str, table: dict[str, str]) -> str:
    """systemd's %-specifiers that a service unit's paths use (systemd.unit(5)); %% is %."""

    def one(match: re.Match) -> str:
        letter = match.group(1)
        if letter == "%":
            return "%"
        if letter not in table:
            raise CheckFailed(f"the unit uses the specifier %{letter}, which this test cannot read")
        return table[letter]

    return re.sub(r"%(.)", one, value)


def environment_assignments(value: str) -> list[tuple[str, str]]:
    """The KEY=VALUE words of one Environment= line (quoted as systemd unquotes them); words that
    are not assignments are ignored, as systemd ignores them."""
    pairs = []
    for word in shlex.split(value):
        key, sep, val = word.partition("=")
        if sep and _NAME.fullmatch(key):
            pairs.append((key, val))
    return pairs


def parse_environment_file(text: str) -> dict[str, str]:
    """An EnvironmentFile= as systemd reads it (src/basic/env-file.c): KEY=VALUE lines, # and ;
    comments, values unquoted, in single quotes (literal) or double quotes (a backslash before
    one of " \\ ` $ is that character; a quoted value may span lines); unquoted trailing
    whitespace dropped; a backslash before a newline joins the lines."""
    values: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        if text[i] in "#;":
            while i < n and text[i] != "\n":
                i += 1
            continue
        start = i
        while i < n and text[i] not in "=\n":
            i += 1
        key = text[start:i].strip()
        if i >= n or text[i] == "\n":
            continue  # no '=': not an assignment
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        value, trailing = [], 0
        while i < n and text[i] != "\n":
            char = text[i]
            if char == "'":
                end = text.find("'", i + 1)
                end = n if end < 0 else end
                value.append(text[i + 1 : end])
                i, trailing = end + 1, 0
                continue
            if char == '"':
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n:
                        following = text[i + 1]
                        if following in '"\\`$':
                            value.append(following)
                        elif following != "\n":
                            value.append("\\" + following)
                        i += 2
                        continue
                    value.append(text[i])
                    i += 1
                i, trailing = i + 1, 0
                continue
            if char == "\\" and i + 1 < n:
                if text[i + 1] != "\n":
                    value.append(text[i + 1])
                i, trailing = i + 2, 0
                continue
            value.append(char)
            trailing = trailing + 1 if char in " \t\r" else 0
            i += 1
        joined = "".join(value)
        if trailing:
            joined = joined[:-trailing]
        if _NAME.fullmatch(key):
            values[key] = joined
    return values


def unit_environment(
    settings: dict[str, list[str]], base: dict[str, str], read_file, table: dict[str, str]
) -> dict[str, str]:
    """``base``, then every Environment= in order, then every EnvironmentFile= in order: a file's
    settings override Environment= ones (systemd.exec(5)). ``read_file(path)`` returns a file's
    text or raises OSError; a path prefixed with - may be missing, and may be a glob."""
    env = dict(base)
    for value in settings.get("Environment", []):
        env.update(environment_assignments(specifiers(value, table)))
    for value in settings.get("EnvironmentFile", []):
        optional = value.startswith("-")
        pattern = specifiers(value.lstrip("-").strip(), table)
        paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        for path in paths:
            try:
                text = read_file(path)
            except OSError as error:
                if optional:
                    continue
                raise CheckFailed(
                    f"the unit's EnvironmentFile={path} cannot be read ({error.strerror}): "
                    "systemd would not start it"
                ) from None
            env.update(parse_environment_file(text))
    return env


def command_line(value: str, env: dict[str, str]) -> tuple[str, list[str]]:
    """(prefixes, argv) of one ExecStart=/ExecStartPre= line (systemd.service(5), "Command
    lines"): the prefixes among ``@-:+!``, then the words; ${NAME} anywhere in a word is the
    value as one word, $NAME as a word of its own is the value split at whitespace, $$ is $;
    with ``:`` nothing is expanded. With ``@`` the second word is argv[0]: dropped here, as
    only the program's own view of its name changes."""
    match = re.match(r"[@\-:+!]*", value)
    prefixes = match.group(0)
    words = shlex.split(value[match.end() :])
    if ":" not in prefixes:
        expanded: list[str] = []
        for word in words:
            whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
            if whole:
                expanded += env.get(whole.group(1), "").split()
            else:
                expanded.append(
                    re.sub(
                        r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), ""),
                        word,
                    )
                )
        words = expanded
    if "@" in prefixes and len(words) >= 2:
        words = [words[0], *words[2:]]
    if not words:
        raise CheckFailed(f"the unit's command line {value!r} is empty")
    return prefixes, words


# --- what the service listens on -----------------------------------------------------------


def listening(proc_net_tcp: str, version: int) -> list[tuple[str, int]]:
    """(address, port) of every listening socket in a /proc/net/tcp (version 4) or tcp6 (6)
    table: the address is hex in the kernel's byte order (each 32-bit word little-endian)."""
    found = []
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != _LISTEN:
            continue
        address_hex, port_hex = fields[1].split(":")
        raw = bytes.fromhex(address_hex)
        ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
        address = ipaddress.IPv4Address(ordered) if version == 4 else ipaddress.IPv6Address(ordered)
        found.append((str(address), int(port_hex, 16)))
    return found


def not_answering(port: int, path: str, listeners: list[tuple[str, int]], waited: float) -> str:
    """The one line that says where the service was asked and where it listens instead."""
    asked = f"http://127.0.0.1:{port}{path}"
    if not listeners:
        return (
            f"asked {asked} for {waited:.0f} s: no answer, and the service listens on no TCP port"
        )
    ports = sorted({p for _, p in listeners})
    where = ", ".join(f"[{a}]:{p}" if ":" in a else f"{a}:{p}" for a, p in sorted(set(listeners)))
    if port in ports:
        return (
            f"asked {asked} for {waited:.0f} s: no answer on port {port}, though it listens "
            f"({where})"
        )
    return (
        f"asked {asked} for {waited:.0f} s: the service listens on port "
        f"{', '.join(map(str, ports))}, not {port} ({where}); make it listen on $GF_APP_PORT "
        f"or set service.port (bake --port) to its port"
    )


# --- running it ----------------------------------------------------------------------------


def namespace_command(argv: list[str], script: str) -> list[str]:
    """This check again, inside fresh network, mount and PID namespaces: loopback only, a
    private /run, and every process it starts ended with it (the namespace's init)."""
    # --propagation unchanged: unshare's default (make / private) fails in a chroot whose root is
    # no mount point (the local build host); make_mounts_private() does it where it can, before
    # anything is mounted. No --mount-proc: it would mount before that, and /proc/net is
    # /proc/self/net, this process's own network namespace, with the /proc there is.
    return [
        "unshare",
        "--net",
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--propagation",
        "unchanged",
        sys.executable,
        script,
        "--inside",
        *argv,
    ]


def shared_mounts(mountinfo: str) -> list[str]:
    """Mount points of /proc/self/mountinfo whose propagation is shared (optional field
    shared:N, proc(5)): a mount under them would appear outside this namespace too."""
    shared = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        optional = fields[6 : fields.index("-", 6)]
        if any(field.startswith("shared:") for field in optional):
            shared.append(fields[4])
    return shared


def make_mounts_private() -> None:
    """Nothing mounted here reaches another namespace: / made private recursively, as unshare
    does by default; in a chroot whose root is no mount point (the local build host, whose
    mounts baking/build_host.py made private before chroot), no visible mount may be shared."""
    made = subprocess.run(["mount", "--make-rprivate", "/"], capture_output=True)
    if made.returncode == 0:
        return
    shared = shared_mounts(read_text("/proc/self/mountinfo"))
    if shared:
        raise CheckFailed(
            f"cannot make the mounts private (/ is no mount point) and {', '.join(shared)} "
            "is shared: the check's /run would appear outside it"
        )


def loopback_up() -> None:
    """ip link set lo up, without iproute2: SIOCGIFFLAGS/SIOCSIFFLAGS on "lo" (netdevice(7))."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as handle:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(handle, siocgifflags, request))[1]
        fcntl.ioctl(handle, siocsifflags, struct.pack("16sh22x", b"lo", flags | iff_up))


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as stream:
        return stream.read()


def current_listeners() -> list[tuple[str, int]]:
    found = []
    for version, path in ((4, "/proc/net/tcp"), (6, "/proc/net/tcp6")):
        try:
            found += listening(read_text(path), version)
        except OSError:
            pass  # no IPv6 in this kernel: no table
    return found


def status_of(port: int, path: str) -> int | None:
    """The HTTP status of GET path on 127.0.0.1:port, or None without an answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path, headers={"User-Agent": "golden-fleet-image-test"})
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def write_image_environment(service: str, port: int, version: str, region: str) -> None:
    """/run/<service>/environment, written by the image's own boot unit (its ExecStart) from a
    boot configuration holding what the launch template's would: the platform's keys."""
    config = {
        "service": service,
        "region": region,
        "environment": {
            "GF_APP_PORT": str(port),
            "GF_COLOR": "blue",
            "GF_EXPECTED_VERSION": version,
        },
    }
    boot = service_settings([read_text(BOOT_UNIT)])
    _, argv = command_line(boot["ExecStart"][-1], {})
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir="/run") as stream:
        json.dump(config, stream)
        stream.flush()
        done = subprocess.run([*argv, "--config", stream.name], capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CheckFailed(f"the image's boot unit did not write the environment: {last}")


def last_output_line(path: str) -> str:
    lines = [line.strip() for line in read_text(path).splitlines() if line.strip()]
    return f" (its last output: {lines[-1][:200]})" if lines else ""


class Account(NamedTuple):
    """Who the unit's processes run as: User= and Group= (else the user's own group)."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str


def unit_account(settings: dict[str, list[str]], unit: str) -> Account:
    users = settings.get("User") or []
    if not users:
        raise CheckFailed(f"{unit} has no User=")
    try:
        entry = pwd.getpwnam(users[-1])
        gid = grp.getgrnam(settings["Group"][-1]).gr_gid if settings.get("Group") else entry.pw_gid
    except KeyError as missing:
        raise CheckFailed(f"{unit}: {missing.args[0]}") from None
    return Account(entry.pw_name, entry.pw_uid, gid, entry.pw_dir, entry.pw_shell or "/bin/sh")


def specifier_table(unit: str, account: Account) -> dict[str, str]:
    """The %-specifiers of a system service unit run as ``account`` (systemd.unit(5))."""
    prefix = unit.removesuffix(".service")
    return {
        "n": unit,
        "N": prefix,
        "p": prefix,
        "i": "",
        "I": "",
        "t": "/run",
        "S": "/var/lib",
        "C": "/var/cache",
        "L": "/var/log",
        "E": "/etc",
        "h": account.home,
        "u": account.name,
        "U": str(account.uid),
        "g": grp.getgrgid(account.gid).gr_name,
        "G": str(account.gid),
    }


def working_directory(settings: dict[str, list[str]], table: dict[str, str], home: str) -> str:
    """WorkingDirectory= (systemd.exec(5)): / by default, ~ the user's home; with a leading -
    a missing directory is no error (then /)."""
    value = specifiers((settings.get("WorkingDirectory") or ["/"])[-1], table)
    optional, directory = value.startswith("-"), value.lstrip("-")
    directory = home if directory == "~" else directory
    return "/" if optional and not os.path.isdir(directory) else directory


def private_run() -> None:
    """Loopback up, mounts private, and a tmpfs /run of this namespace's own."""
    loopback_up()
    make_mounts_private()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs", "/run"],
        capture_output=True,
        text=True,
    )
    if mounted.returncode:
        raise CheckFailed(f"cannot mount a private /run: {mounted.stderr.strip()[:200]}")


def runtime_directories(settings: dict[str, list[str]], table: dict[str, str], account: Account):
    """RuntimeDirectory=: /run/<name>, owned by the unit's user, RuntimeDirectoryMode= (0755)."""
    mode = int((settings.get("RuntimeDirectoryMode") or ["0755"])[-1], 8)
    for value in settings.get("RuntimeDirectory", []):
        for name in specifiers(value, table).split():
            directory = os.path.join("/run", name)
            os.makedirs(directory, exist_ok=True)
            os.chown(directory, account.uid, account.gid)
            os.chmod(directory, mode)


class Launcher:
    """Starts the unit's command lines as systemd would: as its user (unless + or !), in its
    working directory, with its environment, their output into one log."""

    def __init__(
        self, account: Account, env: dict[str, str], table: dict[str, str], workdir: str, log
    ) -> None:
        self.account, self.env, self.table, self.workdir, self.log = (
            account,
            env,
            table,
            workdir,
            log,
        )

    def start(self, value: str) -> tuple[str, subprocess.Popen]:
        prefixes, argv = command_line(specifiers(value, self.table), self.env)
        privileged = "+" in prefixes or "!" in prefixes
        runner = (
            []
            if privileged
            else [
                "setpriv",
                f"--reuid={self.account.uid}",
                f"--regid={self.account.gid}",
                "--init-groups",
            ]
        )
        try:
            process = subprocess.Popen(
                [*runner, *argv],
                env=self.env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=self.log,
            )
        except OSError as error:
            raise CheckFailed(f"cannot start {argv[0]}: {error.strerror}") from None
        return prefixes, process

    def run_before(self, value: str, timeout: float) -> None:
        """One ExecStartPre=: its failure stops the unit unless prefixed with -."""
        prefixes, process = self.start(value)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"ExecStartPre={value} still ran after {timeout:.0f} s") from None
        if code and "-" not in prefixes:
            raise CheckFailed(
                f"ExecStartPre={value} exited with {code}{last_output_line(self.log.name)}"
            )


def wait_for_answer(
    server: subprocess.Popen, port: int, path: str, timeout: float, forking: bool, log_name: str
) -> None:
    """200 on http://127.0.0.1:<port><path> within ``timeout`` (this process's monotonic
    clock), else CheckFailed saying what it got instead."""
    started = time.monotonic()
    answer = None
    while time.monotonic() - started < timeout:
        answer = status_of(port, path)
        if answer == 200:
            return
        code = server.poll()
        if code is not None and not (forking and code == 0):
            raise CheckFailed(
                f"the service exited with {code} before answering http://127.0.0.1:{port}{path}"
                + last_output_line(log_name)
            )
        time.sleep(0.2)
    if answer is not None:
        raise CheckFailed(
            f"asked http://127.0.0.1:{port}{path} for {timeout:.0f} s: it answered {answer}, "
            "not 200"
        )
    raise CheckFailed(not_answering(port, path, current_listeners(), timeout))


def check(
    unit: str,
    unit_file: str,
    service: str,
    version: str,
    port: int,
    path: str,
    region: str,
    timeout: float,
) -> None:
    """Inside the namespaces: start the unit as systemd would and ask it on ``port``."""
    private_run()
    settings = service_settings([read_text(p) for p in unit_paths(unit, unit_file)])
    account = unit_account(settings, unit)
    table = specifier_table(unit, account)
    starts = settings.get("ExecStart", [])
    if len(starts) != 1:
        raise CheckFailed(f"{unit} has {len(starts)} ExecStart= lines; a server has one")
    write_image_environment(service, port, version, region)
    runtime_directories(settings, table, account)
    base = {
        "PATH": DEFAULT_PATH,
        "LANG": "C.UTF-8",
        "HOME": account.home,
        "USER": account.name,
        "LOGNAME": account.name,
        "SHELL": account.shell,
    }
    log = tempfile.NamedTemporaryFile("w+", prefix="service-check.", dir="/run", delete=False)
    launcher = Launcher(
        account,
        unit_environment(settings, base, read_text, table),
        table,
        working_directory(settings, table, account.home),
        log,
    )
    for value in settings.get("ExecStartPre", []):
        launcher.run_before(value, timeout)
    _, server = launcher.start(starts[0])
    forking = (settings.get("Type") or ["simple"])[-1] == "forking"
    wait_for_answer(server, port, path, timeout, forking, log.name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="service-check")
    parser.add_argument("--unit", required=True)
    parser.add_argument("--unit-file", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--timeout", type=float, default=START_TIMEOUT_S)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        print(f"--port {args.port}: expected 1-65535")
        return 2
    if not args.inside:
        # The namespaces' init is the inner check: its end ends every process it started.
        done = subprocess.run(namespace_command(argv, os.path.abspath(__file__)))
        return done.returncode
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        check(
            args.unit,
            args.unit_file,
            args.service,
            args.version,
            args.port,
            args.path,
            args.region,
            args.timeout,
        )
    except CheckFailed as failure:
        print(str(failure).replace("\n", " "), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
