#!/usr/bin/python3
"""The image test "app answers <path>": the app unit started as an instance starts it, and asked
where the load balancer asks it (http://127.0.0.1:<service.port><healthCheckPath>).

No systemd runs on the build host, so this reads the unit as systemd would (the package's unit
file and its drop-ins, golden-fleet.conf among them): its User=/Group=, WorkingDirectory=,
its own Environment= and EnvironmentFile= lines, then the image's environment file
/run/<service>/environment written by the image's own boot unit with GF_APP_PORT=<port>, as at
boot. Before the commands, what an instance has made by then: the package's own tmpfiles.d
snippets applied as systemd-tmpfiles-setup.service applies them at boot (when the image has
systemd-tmpfiles), then the unit's RuntimeDirectory=, StateDirectory=, CacheDirectory=,
LogsDirectory= and ConfigurationDirectory= made as systemd 252 makes them (owner, mode, nested
names, an existing directory's owner fixed) and named in $RUNTIME_DIRECTORY, $STATE_DIRECTORY, ...
ExecStartPre= and ExecStart= run with systemd's $VAR/${VAR} expansion.

It runs in private network, mount and PID namespaces (`unshare`): loopback only, so the port is
free even on a busy build host and nothing reaches the network; /run is a tmpfs of its own; what
it makes elsewhere (/var/lib/<name>, /var/log/<name>, /etc/<name>, a tmpfiles.d path) is made in
an overlay of the parent directory whose upper directory is on that tmpfs, so the service sees
the image's content and the image keeps no trace; everything the service started ends with it.
A service that does not answer there fails with one line naming the port asked and the ports it
listens on (read from /proc/net/tcp and tcp6 of that namespace).

Not reproduced (seen only on a booted instance): DynamicUser=, the sandboxing settings
(ProtectSystem=, PrivateTmp=, ...), other packages' tmpfiles.d snippets (the image is tested as
it is), tmpfiles.d lines for /dev, /proc and /sys (they set the running kernel), socket
activation, Type=notify readiness and ordering against other units.

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
import shutil
import signal
import socket
import stat
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


# --- the unit's directories, as systemd 252 makes them ------------------------------------------
#
# Relied on: systemd.exec(5) of systemd 252, "RuntimeDirectory=, StateDirectory=, CacheDirectory=,
# LogsDirectory=, ConfigurationDirectory=" and its table "Automatic directory creation and
# environment variables"; and src/core/execute.c, setup_exec_directory() and build_environment(),
# with src/core/load-fragment.c, config_parse_exec_directories(), and
# src/shared/chown-recursive.c, path_chown_recursive(). What they do for a service without
# DynamicUser=, in the order below:
#   - names are whitespace-separated words, each resolved for %-specifiers; a name must be
#     relative and have no ".." component (else systemd warns and ignores that name); "a//b/./c"
#     is simplified to "a/b/c"; the same name twice is one directory. "name:link" (systemd 250 and
#     later) also makes <parent>/link a relative symlink to it, its own parents made 0755.
#   - the types in execute.c's order: runtime, state, cache, logs, configuration;
#   - parents of a nested name ("a/b": a) are made 0755 root:root if missing, and never changed;
#   - the innermost directory is made with <Type>DirectoryMode= (0755 by default, the last valid
#     octal setting wins); if it exists, its mode is set to that mode all the same;
#   - it is owned by User=/Group= (the user's own group without Group=): chmod, then
#     path_chown_recursive(), which leaves the tree as it is when the directory already has that
#     owner and group, and otherwise changes the owner of everything below it (not following
#     symbolic links), keeping each entry's mode;
#   - ConfigurationDirectory= alone: an existing one is left as it is (owner and mode: "as in the
#     common case it is not written to by a service"); a new one is made as above, owned by the
#     user (execute.c; the manual's "except in case of ConfigurationDirectory=" describes an
#     existing directory);
#   - $RUNTIME_DIRECTORY, $STATE_DIRECTORY, $CACHE_DIRECTORY, $LOGS_DIRECTORY and
#     $CONFIGURATION_DIRECTORY hold the full paths, joined with ":", in the service's environment
#     before its Environment= lines (which may override them).
DIRECTORY_TYPES = (
    ("RuntimeDirectory", "/run", "RUNTIME_DIRECTORY"),
    ("StateDirectory", "/var/lib", "STATE_DIRECTORY"),
    ("CacheDirectory", "/var/cache", "CACHE_DIRECTORY"),
    ("LogsDirectory", "/var/log", "LOGS_DIRECTORY"),
    ("ConfigurationDirectory", "/etc", "CONFIGURATION_DIRECTORY"),
)
DEFAULT_DIRECTORY_MODE = 0o755


class UnitDirectory(NamedTuple):
    """One directory systemd makes for the unit before it starts it."""

    setting: str  # "StateDirectory"
    parent: str  # "/var/lib"
    name: str  # "a/b", relative to parent
    mode: int
    links: tuple[str, ...]  # names of symbolic links to it, relative to parent

    @property
    def path(self) -> str:
        return f"{self.parent}/{self.name}"


def simplified_name(name: str) -> str | None:
    """A directory name as systemd accepts it (path_simplify_and_warn with PATH_CHECK_RELATIVE):
    relative, no ".." component, "." and empty components dropped; None where systemd ignores
    it."""
    if name.startswith("/"):
        return None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def directory_mode(values: list[str]) -> int:
    """<Type>DirectoryMode=: the last assignment that is an octal mode up to 07777 (systemd
    ignores one that is not), else 0755."""
    mode = DEFAULT_DIRECTORY_MODE
    for value in values:
        if re.fullmatch(r"[0-7]{1,4}", value):
            mode = int(value, 8)
    return mode


def unit_directories(settings: dict[str, list[str]], table: dict[str, str]) -> list[UnitDirectory]:
    """Every directory of the unit's RuntimeDirectory=, StateDirectory=, CacheDirectory=,
    LogsDirectory= and ConfigurationDirectory=, in the order systemd makes them."""
    found: list[UnitDirectory] = []
    for setting, parent, _ in DIRECTORY_TYPES:
        mode = directory_mode(settings.get(f"{setting}Mode", []))
        names: dict[str, list[str]] = {}
        for value in settings.get(setting, []):
            for word in shlex.split(value):
                source, _, link = word.partition(":")
                name = simplified_name(specifiers(source, table))
                if name is None:
                    continue
                links = names.setdefault(name, [])
                link_name = simplified_name(specifiers(link, table)) if link else None
                if link_name is not None and link_name not in links:
                    links.append(link_name)
        found += [UnitDirectory(setting, parent, n, mode, tuple(ls)) for n, ls in names.items()]
    return found


def directory_environment(directories: list[UnitDirectory]) -> dict[str, str]:
    """$STATE_DIRECTORY and its kin: each type's full paths joined with ":"."""
    env: dict[str, str] = {}
    for setting, _, variable in DIRECTORY_TYPES:
        paths = [d.path for d in directories if d.setting == setting]
        if paths:
            env[variable] = ":".join(paths)
    return env


# Paths the check leaves alone: /run is this namespace's own tmpfs already; /dev, /proc and /sys
# are the kernel's (a tmpfiles.d line there sets the running kernel, not a file of the image).
PRIVATE_ALREADY = ("/run",)
KERNEL_PATHS = ("/dev", "/proc", "/sys")


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def private_view_points(
    paths: list[str], exists=os.path.isdir, resolve=os.path.realpath
) -> list[str]:
    """Where the check lays a throwaway overlay so that what it makes at ``paths`` stays out of
    the image: /var/<x> for a path below /var, else /<x>, cut at the first component with a
    specifier or a glob; the nearest existing ancestor where the image lacks it, and where the
    image's links lead (/var/run is /run); never / (that would hide /run, /proc and /dev). A
    point below another point is covered by it."""
    points: list[str] = []
    for path in paths:
        if _under(path, PRIVATE_ALREADY + KERNEL_PATHS):
            continue
        parts = [part for part in path.split("/") if part]
        fixed = []
        for part in parts[: 2 if parts[:1] == ["var"] else 1]:
            if re.search(r"[%*?\[]", part):
                break
            fixed.append(part)
        point = "/" + "/".join(fixed)
        while point != "/" and not exists(point):
            point = os.path.dirname(point)
        if point == "/" or not path.startswith("/"):
            raise CheckFailed(
                f"{path}: the check has no directory but / to make it in privately, so it "
                "cannot make it without leaving it in the image"
            )
        point = resolve(point)
        if not _under(point, PRIVATE_ALREADY + KERNEL_PATHS):
            points.append(point)
    covered = [p for p in points if not _under(p, tuple(q for q in points if q != p))]
    return list(dict.fromkeys(covered))


def overlay_options(lower: str, scratch: str) -> str:
    """The options of an overlay that shows ``lower`` as it is and keeps every change in
    ``scratch`` (its upper and work directories, on one file system as overlayfs requires)."""
    for path in (lower, scratch):
        if re.search(r"[,:\\]", path):
            raise CheckFailed(f"{path}: a path with , : or \\ cannot be an overlay's directory")
    return f"lowerdir={lower},upperdir={scratch}/upper,workdir={scratch}/work"


def mount_private_views(points: list[str]) -> None:
    """Each point overlaid with a tmpfs upper directory under this namespace's private /run: the
    image's content stays visible to the service, and everything the check and the service
    create or change there is in the tmpfs, which ends with the namespace. Mounts below a point
    are not seen through its overlay (the build host has none below /etc or /var)."""
    for index, point in enumerate(points):
        scratch = f"/run/service-check/view-{index}"
        os.makedirs(f"{scratch}/upper", mode=0o700)
        os.makedirs(f"{scratch}/work", mode=0o700)
        # The overlay's top directory has the upper directory's owner and mode: the point's own,
        # or /var/lib would be root's 0700 and the service could not reach its directory.
        info = os.stat(point)
        os.chown(f"{scratch}/upper", info.st_uid, info.st_gid)
        os.chmod(f"{scratch}/upper", stat.S_IMODE(info.st_mode))
        mounted = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", overlay_options(point, scratch), point],
            capture_output=True,
            text=True,
        )
        if mounted.returncode:
            raise CheckFailed(
                f"cannot lay a private view over {point}: {mounted.stderr.strip()[:200]}"
            )


def chown_tree(path: str, uid: int, gid: int) -> None:
    """path_chown_recursive() with mask 07777: nothing to do when ``path`` has the owner and
    group already; else every entry below it, symbolic links themselves, and ``path`` last get
    uid:gid, each keeping its mode (chown(2) drops set-user-ID and set-group-ID bits)."""
    info = os.lstat(path)
    if info.st_uid == uid and info.st_gid == gid:
        return
    for top, dirs, files in os.walk(path, topdown=False):
        for name in files + dirs:
            _chown_keeping_mode(os.path.join(top, name), uid, gid)
    _chown_keeping_mode(path, uid, gid)


def _chown_keeping_mode(path: str, uid: int, gid: int) -> None:
    info = os.lstat(path)
    os.lchown(path, uid, gid)
    if not os.path.islink(path) and info.st_mode & 0o6000:
        os.chmod(path, info.st_mode & 0o7777)


def make_directory(directory: UnitDirectory, uid: int, gid: int) -> None:
    """One of the unit's directories, made as setup_exec_directory() makes it (see above)."""
    path = directory.path
    missing = []
    parent = os.path.dirname(path)
    while not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for ancestor in reversed(missing):
        os.mkdir(ancestor)
        os.chmod(ancestor, 0o755)
    try:
        os.mkdir(path)
    except FileExistsError:
        if directory.setting == "ConfigurationDirectory":
            return
    os.chmod(path, directory.mode)
    chown_tree(path, uid, gid)


def make_links(directory: UnitDirectory) -> None:
    """Its "name:link" symbolic links: relative, parents made 0755, an existing link kept."""
    for link in directory.links:
        path = f"{directory.parent}/{link}"
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        target = os.path.relpath(directory.path, os.path.dirname(path))
        if os.path.islink(path) and os.readlink(path) == target:
            continue
        os.symlink(target, path)


# --- the package's tmpfiles.d snippets ----------------------------------------------------------
#
# On an instance, systemd-tmpfiles-setup.service applies every tmpfiles.d snippet early at boot
# (`systemd-tmpfiles --create --remove --boot --exclude-prefix=/dev`), before any service starts.
# The check applies the package's own snippets the same way (tmpfiles.d(5): a file name in
# /etc/tmpfiles.d hides the same name in /run/tmpfiles.d and /usr/lib/tmpfiles.d; a link to
# /dev/null masks it), inside private views of the paths they name, and only when the image has
# systemd-tmpfiles (without it, nothing applies them on an instance either). Other packages'
# snippets were applied, or not, by their own packages: the image is tested as it is.
TMPFILES_DIRS = ("/etc/tmpfiles.d", "/run/tmpfiles.d", "/usr/lib/tmpfiles.d", "/lib/tmpfiles.d")
TMPFILES_COMMAND = ("systemd-tmpfiles", "--create", "--remove", "--boot")
# The specifiers a system tmpfiles.d line's path may start with (tmpfiles.d(5), "Specifiers").
TMPFILES_SPECIFIERS = {
    "S": "/var/lib",
    "C": "/var/cache",
    "L": "/var/log",
    "t": "/run",
    "T": "/tmp",
    "V": "/var/tmp",
    "E": "/etc",
}


def package_tmpfiles(package_files: list[str], exists=os.path.exists) -> list[str]:
    """The snippets in effect for the package's own tmpfiles.d file names (from its file list),
    each the first of /etc, /run, /usr/lib, /lib that has the name; a masked one (a link to
    /dev/null) is left out, as systemd-tmpfiles leaves it out."""
    names = []
    for path in package_files:
        directory, name = os.path.split(path.strip())
        if directory in TMPFILES_DIRS and name.endswith(".conf") and name not in names:
            names.append(name)
    found = []
    for name in names:
        for directory in TMPFILES_DIRS:
            candidate = f"{directory}/{name}"
            if exists(candidate) or os.path.islink(candidate):
                if os.path.realpath(candidate) != "/dev/null":
                    found.append(candidate)
                break
    return found


def tmpfiles_paths(text: str) -> list[str]:
    """The path of every line of a tmpfiles.d snippet (its second field), a leading specifier
    of TMPFILES_SPECIFIERS resolved (another stays, and the check refuses the path); a line
    that does not parse or names a relative path is skipped, as systemd-tmpfiles skips it."""
    paths = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if len(words) < 2:
            continue
        path = words[1]
        match = re.match(r"%([A-Za-z])", path)
        if match and match.group(1) in TMPFILES_SPECIFIERS:
            path = TMPFILES_SPECIFIERS[match.group(1)] + path[2:]
        if path.startswith(("/", "%")):  # a relative path is refused by systemd-tmpfiles
            paths.append(path)
    return paths


def tmpfiles_command(snippets: list[str]) -> list[str]:
    """systemd-tmpfiles as systemd-tmpfiles-setup.service runs it at boot, on these snippets
    only, the kernel's file systems left alone."""
    excluded = [f"--exclude-prefix={prefix}" for prefix in KERNEL_PATHS]
    return [*TMPFILES_COMMAND, *excluded, *snippets]


def package_snippets(package: str) -> list[str]:
    """The package's tmpfiles.d snippets in effect; none without systemd-tmpfiles or dpkg."""
    if not shutil.which("systemd-tmpfiles"):
        return []
    listed = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True)
    if listed.returncode:
        return []
    return package_tmpfiles(listed.stdout.splitlines())


def apply_tmpfiles(snippets: list[str]) -> None:
    """The snippets applied; a line systemd-tmpfiles cannot apply does not stop the unit at boot
    either, so it does not stop the check: the service then fails or not, as on an instance."""
    if snippets:
        subprocess.run(tmpfiles_command(snippets), capture_output=True)


def files_made(directories: list[UnitDirectory], snippets: list[str], account: Account) -> None:
    """What an instance has made before the unit starts, made inside private views of the
    directories it goes into: the package's tmpfiles.d entries (at boot), then the unit's
    directories for its user (at its start)."""
    paths = [d.path for d in directories]
    for snippet in snippets:
        paths += tmpfiles_paths(read_text(snippet))
    mount_private_views(private_view_points(paths))
    apply_tmpfiles(snippets)
    for setting, _, _ in DIRECTORY_TYPES:
        of_type = [d for d in directories if d.setting == setting]
        try:
            for directory in of_type:
                make_directory(directory, account.uid, account.gid)
            for directory in of_type:
                make_links(directory)
        except OSError as error:
            raise CheckFailed(
                f"{setting}=: cannot make {error.filename}: {error.strerror}; "
                "systemd would not start the unit either"
            ) from None


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
    directories = unit_directories(settings, table)
    files_made(directories, package_snippets(service), account)
    base = {
        "PATH": DEFAULT_PATH,
        "LANG": "C.UTF-8",
        "HOME": account.home,
        "USER": account.name,
        "LOGNAME": account.name,
        "SHELL": account.shell,
        **directory_environment(directories),
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
