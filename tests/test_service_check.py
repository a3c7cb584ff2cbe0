"""The image test that asks the app where the load balancer will (packer/files/service-check.py):
the unit read as systemd reads it, the environment file the boot unit writes read back, systemd's
command-line expansion, the listening sockets of /proc/net/tcp{,6} and the one line a service on
another port fails with. Plain functions, no namespaces, no mocks; the whole check runs inside
the build host in tests/test_app_package_e2e.py."""

from __future__ import annotations

import importlib.util

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
