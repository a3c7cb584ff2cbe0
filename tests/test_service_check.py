"""The image test that asks the app where the load balancer will (packer/files/service-check.py):
the unit read as systemd reads it, the environment file the boot unit writes read back, systemd's
command-line expansion, the listening sockets of /proc/net/tcp{,6} and the one line a service on
another port fails with. Plain functions, no namespaces, no mocks; the whole check runs inside
the build host in tests/test_app_package_e2e.py."""

from __future__ import annotations

import importlib.util
import os
import stat

import pytest
from bake_fixtures import PACKER_DIR


def _load(name: str, file_name: str):
    spec = importlib.util.spec_from_file_location(name, PACKER_DIR / "files" / file_name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def check():
    return _load("service_check", "service-check.py")


@pytest.fixture(scope="module")
def reader():
    return _load("boot_environment", "boot-environment.py")


PACKAGE_UNIT = """\
[Unit]
Description=web  # User=not-this
[Service]
User=web
Environment=PORT=8080 "GREETING=hello world"
; Environment=PORT=1
# ExecStart=/bin/false
EnvironmentFile=-/etc/default/web
ExecStart=/usr/bin/web --listen 0.0.0.0:${PORT} \\
  $EXTRA_ARGS
[Install]
WantedBy=multi-user.target
"""
GOLDEN_FLEET_DROP_IN = """\
[Unit]
Requires=golden-fleet-environment.service
[Service]
EnvironmentFile=/run/web/environment
RuntimeDirectoryPreserve=yes
"""


def test_unit_and_drop_ins_are_read_as_systemd_reads_them(check):
    """[Service] only, comments skipped, a trailing backslash continues the line, drop-ins add
    to the lists in order and an empty assignment empties one."""
    resetting = "[Service]\nEnvironment=\nEnvironment=MODE=fast\n"
    settings = check.service_settings([PACKAGE_UNIT, GOLDEN_FLEET_DROP_IN, resetting])
    assert settings["User"] == ["web"]
    (start,) = settings["ExecStart"]
    assert start.split() == ["/usr/bin/web", "--listen", "0.0.0.0:${PORT}", "$EXTRA_ARGS"]
    assert settings["EnvironmentFile"] == ["-/etc/default/web", "/run/web/environment"]
    assert settings["Environment"] == ["MODE=fast"]
    assert "Requires" not in settings and "WantedBy" not in settings


def test_drop_ins_come_in_file_name_order_etc_hiding_lib(check, tmp_path):
    etc, lib = tmp_path / "etc", tmp_path / "lib"
    for directory, names in (
        (etc, ["golden-fleet.conf", "10-port.conf"]),
        (lib, ["10-port.conf", "05-vendor.conf"]),
    ):
        (directory / "web.service.d").mkdir(parents=True)
        for name in names:
            (directory / "web.service.d" / name).write_text("[Service]\n")
    paths = check.unit_paths("web.service", "/lib/web.service", (str(etc), str(lib)))
    assert paths == [
        "/lib/web.service",
        str(lib / "web.service.d/05-vendor.conf"),
        str(etc / "web.service.d/10-port.conf"),
        str(etc / "web.service.d/golden-fleet.conf"),
    ]


@pytest.mark.parametrize(
    "value",
    ["plain", 'pa$$ "word" `x` \\ end', "line-1\nline-2", "  spaced  ", "", "#not a comment"],
)
def test_the_boot_units_environment_file_reads_back_value_for_value(check, reader, value):
    """What the image's boot unit writes (its quoting) is what the unit's process gets."""
    text = reader.render({"GF_APP_PORT": "9090", "VALUE": value})
    assert check.parse_environment_file(text) == {"GF_APP_PORT": "9090", "VALUE": value}


def test_a_packages_own_environment_file_reads_as_systemd_reads_it(check):
    text = (
        "# the port\n; also a comment\nPORT=9090   \nNAME='single $quoted'\n"
        'JOINED=a\\\nb\nMIXED=x"y z"\n  SPACED = v\nnot an assignment\n1BAD=x\n'
    )
    assert check.parse_environment_file(text) == {
        "PORT": "9090",
        "NAME": "single $quoted",
        "JOINED": "ab",
        "MIXED": "xy z",
        "SPACED": "v",
    }


def test_environment_files_override_environment_lines_and_the_images_file_comes_last(check):
    """systemd.exec(5): EnvironmentFile= settings override Environment=; the image's drop-in
    adds its file after the package's, so GF_APP_PORT and the stack's keys win."""
    settings = check.service_settings([PACKAGE_UNIT, GOLDEN_FLEET_DROP_IN])
    files = {
        "/etc/default/web": "PORT=9090\nEXTRA_ARGS=--quiet --json\n",
        "/run/web/environment": 'GF_APP_PORT="9090"\nPORT="7070"\n',
    }

    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[path]

    env = check.unit_environment(settings, {"PATH": "/usr/bin"}, read, {})
    assert env == {
        "PATH": "/usr/bin",
        "PORT": "7070",
        "GREETING": "hello world",
        "EXTRA_ARGS": "--quiet --json",
        "GF_APP_PORT": "9090",
    }
    del files["/etc/default/web"]  # optional (-): skipped
    assert check.unit_environment(settings, {}, read, {})["PORT"] == "7070"
    del files["/run/web/environment"]  # required: systemd would not start the unit
    with pytest.raises(check.CheckFailed, match=r"EnvironmentFile=/run/web/environment cannot"):
        check.unit_environment(settings, {}, read, {})


def test_command_lines_expand_as_systemd_expands_them(check):
    env = {"PORT": "9090", "EXTRA_ARGS": "--quiet  --json", "EMPTY": ""}
    assert check.command_line("/usr/bin/web --listen 0.0.0.0:${PORT} $EXTRA_ARGS $EMPTY", env) == (
        "",
        ["/usr/bin/web", "--listen", "0.0.0.0:9090", "--quiet", "--json"],
    )
    assert check.command_line("-/usr/bin/web '${PORT} x' $$HOME", env) == (
        "-",
        ["/usr/bin/web", "9090 x", "$HOME"],
    )
    assert check.command_line(":/usr/bin/web ${PORT}", env) == (":", ["/usr/bin/web", "${PORT}"])
    assert check.command_line("@/usr/bin/web web-main --port ${PORT}", env)[1] == [
        "/usr/bin/web",
        "--port",
        "9090",
    ]
    assert check.specifiers("/run/%N/%u 100%%", {"N": "web", "u": "web"}) == "/run/web/web 100%"
    with pytest.raises(check.CheckFailed, match="specifier %Q"):
        check.specifiers("%Q", {})


TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 1 1 0
   1: 0100007F:1F90 0100007F:C5FD 01 00000000:00000000 00:00000000 00000000   998        0 2 1 0
   2: 0100007F:23C1 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 3 1 0
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue
   0: 00000000000000000000000000000000:2382 00000000000000000000000000000000:0000 0A 0 0 0 0
   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 0 0 0 0
"""


def test_listening_sockets_are_read_from_proc_net_tcp(check):
    """Only LISTEN (0A) rows; addresses in the kernel's byte order; an established 8080 is not."""
    assert check.listening(TCP, 4) == [("0.0.0.0", 9090), ("127.0.0.1", 9153)]
    assert check.listening(TCP6, 6) == [("::", 9090), ("::1", 8081)]


def test_a_service_on_another_port_fails_with_one_line_naming_both(check):
    listeners = check.listening(TCP, 4) + check.listening(TCP6, 6)
    line = check.not_answering(8080, "/ping", listeners, 20)
    assert "\n" not in line
    assert line.startswith("asked http://127.0.0.1:8080/ping for 20 s: the service listens on port")
    assert "port 8081, 9090, 9153, not 8080" in line
    assert "0.0.0.0:9090" in line and "[::1]:8081" in line
    assert "listens on no TCP port" in check.not_answering(8080, "/ping", [], 20)
    on_port = check.not_answering(8080, "/", [("0.0.0.0", 8080)], 20)
    assert "no answer on port 8080, though it listens (0.0.0.0:8080)" in on_port


def test_it_runs_itself_in_namespaces_of_its_own(check):
    """Loopback only (a fresh network namespace), a private /run, and every process it starts
    ended with it (PID namespace, killed with its init)."""
    command = check.namespace_command(["--port", "8080"], "/usr/local/lib/x")
    assert command[:1] == ["unshare"]
    assert {"--net", "--mount", "--pid", "--fork", "--kill-child"} <= set(command)
    assert "--mount-proc" not in command, "nothing is mounted before the mounts are private"
    assert command[-4:] == ["/usr/local/lib/x", "--inside", "--port", "8080"]


MOUNTINFO = """\
22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw
24 22 0:22 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755
88 68 0:40 / /proc rw,relatime - proc proc rw
90 22 0:45 / /srv rw master:3 - tmpfs tmpfs rw
"""


def test_shared_mounts_are_found_in_mountinfo(check):
    """Where / cannot be made private (a chroot), a shared mount would carry the check's /run
    outside its namespace: those are named; private and slave ones are not."""
    assert check.shared_mounts(MOUNTINFO) == ["/", "/run"]
    assert check.shared_mounts(MOUNTINFO.splitlines()[2] + "\n") == []


def test_working_directory_as_systemd_reads_it(check, tmp_path):
    """/ by default, ~ the user's home, a leading - makes a missing directory no error."""
    home, table = str(tmp_path), {"h": str(tmp_path)}
    assert check.working_directory({}, table, home) == "/"
    assert check.working_directory({"WorkingDirectory": ["~"]}, table, home) == home
    assert check.working_directory({"WorkingDirectory": ["%h/x", "%h"]}, table, home) == home
    assert check.working_directory({"WorkingDirectory": [f"-{tmp_path}/gone"]}, table, home) == "/"
    assert check.working_directory({"WorkingDirectory": [f"{tmp_path}/gone"]}, table, home) == (
        f"{tmp_path}/gone"
    ), "a required one is passed on: the start fails, naming it"


# --- the unit's directories (systemd.exec(5), "RuntimeDirectory=, StateDirectory=, ...") ---

DIRECTORY_UNIT = """\
[Service]
User=web
StateDirectory=web web/sessions %N/a//./b
StateDirectory=/abs ../up web/../x web
StateDirectoryMode=0750
StateDirectoryMode=u+rwx
LogsDirectory=web
CacheDirectory=web:web-link
ConfigurationDirectory=web
RuntimeDirectory=web
RuntimeDirectoryMode=0700
"""


def test_unit_directories_are_read_as_systemd_reads_them(check):
    """Space-separated names with specifiers, simplified; absolute and ".." names ignored (as
    systemd ignores them), the same name once; the last valid mode (0755 by default); "name:link"
    adds a link; the types in systemd's order, /run first and /etc last."""
    settings = check.service_settings([DIRECTORY_UNIT])
    found = check.unit_directories(settings, {"N": "web"})
    assert [(d.setting, d.path, oct(d.mode), d.links) for d in found] == [
        ("RuntimeDirectory", "/run/web", "0o700", ()),
        ("StateDirectory", "/var/lib/web", "0o750", ()),
        ("StateDirectory", "/var/lib/web/sessions", "0o750", ()),
        ("StateDirectory", "/var/lib/web/a/b", "0o750", ()),
        ("CacheDirectory", "/var/cache/web", "0o755", ("web-link",)),
        ("LogsDirectory", "/var/log/web", "0o755", ()),
        ("ConfigurationDirectory", "/etc/web", "0o755", ()),
    ]
    reset = check.service_settings([DIRECTORY_UNIT, "[Service]\nStateDirectory=\n"])
    assert "StateDirectory" not in {d.setting for d in check.unit_directories(reset, {"N": "w"})}


def test_the_service_is_told_its_directories_as_systemd_tells_it(check):
    settings = check.service_settings([DIRECTORY_UNIT])
    env = check.directory_environment(check.unit_directories(settings, {"N": "web"}))
    assert env == {
        "RUNTIME_DIRECTORY": "/run/web",
        "STATE_DIRECTORY": "/var/lib/web:/var/lib/web/sessions:/var/lib/web/a/b",
        "CACHE_DIRECTORY": "/var/cache/web",
        "LOGS_DIRECTORY": "/var/log/web",
        "CONFIGURATION_DIRECTORY": "/etc/web",
    }
    assert check.directory_environment([]) == {}


def test_the_check_overlays_each_parent_but_run_and_never_the_root(check):
    """What the check makes under /var/lib, /var/cache, /var/log or /etc lands in a throwaway
    overlay of that parent (or of its nearest existing ancestor); /run is private already."""
    settings = check.service_settings([DIRECTORY_UNIT])
    paths = [d.path for d in check.unit_directories(settings, {"N": "web"})]
    image = {"/etc", "/var", "/var/lib", "/var/log"}  # no /var/cache in this image
    as_is = str
    assert check.private_view_points(paths, image.__contains__, as_is) == ["/var", "/etc"], (
        "/var/lib and /var/log are inside the overlay of /var"
    )
    image.add("/var/cache")
    assert check.private_view_points(paths, image.__contains__, as_is) == [
        "/var/lib",
        "/var/cache",
        "/var/log",
        "/etc",
    ]
    with pytest.raises(check.CheckFailed, match=r"^/var/lib/web: the check has no directory"):
        check.private_view_points(paths, {"/etc"}.__contains__, as_is)
    assert check.overlay_options("/etc", "/run/x") == (
        "lowerdir=/etc,upperdir=/run/x/upper,workdir=/run/x/work"
    )
    with pytest.raises(check.CheckFailed, match="a path with , : or"):
        check.overlay_options("/var/a,b", "/run/x")


TMPFILES_SNIPPET = """\
# the package's own
d /var/spool/web 0750 web web -
d %S/web/tmp 0700 web web 10d
L+ /var/run/web.sock - - - - /run/web/sock
w /proc/sys/net/core/somaxconn - - - - 4096
z /srv/web/*/data 0640 web web -
d "/opt/web data" 0755 root root -
f relative/path 0644 - - -
d %h/.web 0700 - - -
bad "unclosed
"""


def test_tmpfiles_paths_and_where_they_are_made_privately(check):
    """Each line's path, its leading specifier resolved; /var/run (a link to /run), /proc are
    left alone; a glob or specifier ends the fixed part; an unknown specifier is refused."""
    paths = check.tmpfiles_paths(TMPFILES_SNIPPET)
    assert paths == [
        "/var/spool/web",
        "/var/lib/web/tmp",
        "/var/run/web.sock",
        "/proc/sys/net/core/somaxconn",
        "/srv/web/*/data",
        "/opt/web data",
        "%h/.web",
    ]
    image = {"/var", "/var/spool", "/var/lib", "/var/run", "/srv", "/opt"}

    def resolve(path: str) -> str:
        return "/run" if path == "/var/run" else path

    assert check.private_view_points(paths[:-1], image.__contains__, resolve) == [
        "/var/spool",
        "/var/lib",
        "/srv",
        "/opt",
    ]
    with pytest.raises(check.CheckFailed, match=r"^%h/\.web: the check has no directory"):
        check.private_view_points(paths, image.__contains__, resolve)


def test_the_packages_own_snippets_in_effect_are_applied_as_at_boot(check, tmp_path):
    """Only the package's file names, each the first of /etc, /run, /usr/lib, /lib that has it;
    systemd-tmpfiles as systemd-tmpfiles-setup.service runs it, the kernel's paths excluded."""
    files = ["/usr/lib/tmpfiles.d/web.conf", "/lib/tmpfiles.d/old.conf", "/usr/share/doc/web"]
    files += ["/usr/lib/tmpfiles.d/README", "/etc/tmpfiles.d/web.conf"]
    image = {"/etc/tmpfiles.d/web.conf", "/usr/lib/tmpfiles.d/web.conf", "/lib/tmpfiles.d/old.conf"}
    assert check.package_tmpfiles(files, image.__contains__) == [
        "/etc/tmpfiles.d/web.conf",
        "/lib/tmpfiles.d/old.conf",
    ]
    assert check.tmpfiles_command(["/etc/tmpfiles.d/web.conf"]) == [
        "systemd-tmpfiles",
        "--create",
        "--remove",
        "--boot",
        "--exclude-prefix=/dev",
        "--exclude-prefix=/proc",
        "--exclude-prefix=/sys",
        "/etc/tmpfiles.d/web.conf",
    ]


def _directory(check, parent, name, setting="StateDirectory", mode=0o750, links=()):
    return check.UnitDirectory(setting, str(parent), name, mode, tuple(links))


def _owner(path):
    info = path.lstat()
    return info.st_uid, info.st_gid


def test_directories_are_made_with_their_mode_and_parents_0755(check, tmp_path):
    """A nested name: its missing parents 0755 and left alone, the innermost with the mode and
    the unit's owner; an existing one gets the mode too; a link is relative."""
    uid, gid = os.getuid(), os.getgid()
    check.make_directory(_directory(check, tmp_path, "a/b/c", mode=0o700), uid, gid)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a/b").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a/b/c").stat().st_mode) == 0o700
    (tmp_path / "old").mkdir(mode=0o777)
    check.make_directory(_directory(check, tmp_path, "old", mode=0o750), uid, gid)
    assert stat.S_IMODE((tmp_path / "old").stat().st_mode) == 0o750
    check.make_links(_directory(check, tmp_path, "a/b/c", links=["l/ink"]))
    assert os.readlink(tmp_path / "l/ink") == "../a/b/c"
    check.make_links(_directory(check, tmp_path, "a/b/c", links=["l/ink"]))  # idempotent


def test_an_existing_configuration_directory_is_left_as_it_is(check, tmp_path):
    """execute.c: an existing ConfigurationDirectory= keeps its mode and owner; a new one is made
    like the others."""
    (tmp_path / "web").mkdir(mode=0o700)
    config = _directory(check, tmp_path, "web", "ConfigurationDirectory", 0o755)
    check.make_directory(config, os.getuid() + 1, os.getgid() + 1)
    assert stat.S_IMODE((tmp_path / "web").stat().st_mode) == 0o700
    assert _owner(tmp_path / "web") == (os.getuid(), os.getgid())
    check.make_directory(config._replace(name="new"), os.getuid(), os.getgid())
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o755


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_an_existing_directorys_owner_is_fixed_recursively_as_systemd_fixes_it(check, tmp_path):
    """Another owner: the whole tree is given to the unit's user and group, symbolic links
    themselves (their targets untouched), set-group-ID bits kept. The same owner: the tree
    below is left as it is (systemd's shortcut)."""
    uid, gid = 4242, 4343
    state = tmp_path / "web"
    (state / "sub").mkdir(parents=True)
    (state / "sub/file").write_text("x")
    (state / "sub").chmod(0o2775)
    outside = tmp_path / "outside"
    outside.write_text("y")
    (state / "link").symlink_to(outside)
    check.make_directory(_directory(check, tmp_path, "web"), uid, gid)
    for path in (state, state / "sub", state / "sub/file", state / "link"):
        assert _owner(path) == (uid, gid), path
    assert stat.S_IMODE((state / "sub").stat().st_mode) == 0o2775
    assert _owner(outside) == (0, 0), "a link's target is not the unit's"
    os.chown(state / "sub/file", 0, 0)
    check.make_directory(_directory(check, tmp_path, "web"), uid, gid)
    assert _owner(state / "sub/file") == (0, 0), "an owned directory's tree is left as it is"
