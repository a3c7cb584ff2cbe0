"""End to end: a local bake on a Debian 12 build host against the local EC2 API, then the image,
the build host and the running app are checked. Slow (minutes cold); runs in CI."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from bake_fixtures import describe_image, lynis_index, run_bake, run_bake_timed
from baking import build_host, emulator, errors, processes

from components import image_contract

# One xdist group: these tests share the session's bake cache (one foundation, one local API),
# and a session fixture is one per worker.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-bake")]
SERVICE, VERSION = "checkout", "1.4.0"


@pytest.fixture
def local_api(bake_cache):
    """The session's shared local EC2 API (the bakes' own, as ``--local`` starts it)."""
    return bake_cache.url


@pytest.fixture
def baked(bake_cache):
    """The session's bake of checkout 1.4.0, its build host kept: (stdout, root, stderr)."""
    bake = bake_cache.application(
        VERSION,
        "--verbose",
        keep_root=True,  # the image tests' own lines are asserted below
    )
    return f"{bake.ami}\n", bake.root, bake.stderr


def in_host(root: Path, *argv: str) -> str:
    result = build_host.run_in_host(root, list(argv), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{argv}: {result.stderr}"
    return result.stdout


def test_stdout_is_only_the_ami_id(baked):
    stdout, _, stderr = baked
    assert re.fullmatch(r"ami-[0-9a-f]+\n", stdout), stdout
    assert "image-tests: all checks passed" in stderr


def test_image_is_registered_named_and_tagged(baked, local_api):
    stdout, _, _ = baked
    image = describe_image(local_api, stdout.strip())
    tags = image_contract.tag_map(image)
    assert image["State"] == "available"
    assert image_contract.is_image_name(image["Name"], SERVICE, VERSION), image["Name"]
    assert (
        tags["Service"] == SERVICE
        and tags["Version"] == VERSION
        and tags["ManagedBy"] == "golden-fleet"
    )
    assert tags["SourceAmi"] == emulator.LOCAL_BASE_AMI["ami_id"]
    assert re.fullmatch(r"\d{8}T\d{6}Z", tags["BuildTime"]) and image["Name"].endswith(
        tags["BuildTime"]
    )
    assert re.fullmatch(r"[0-9a-f]{64}", tags["TemplateDigest"])
    # Exactly the contract's tags, with the values the contract gives for this bake.
    assert re.fullmatch(r"[0-9a-f]{32}", tags["BakeRun"])
    contract = image_contract.image_tags(
        SERVICE,
        VERSION,
        tags["TemplateDigest"],
        tags["SourceAmi"],
        tags["BuildTime"],
        tags["BakeRun"],
    )
    assert {key: tags.get(key) for key in contract} == contract
    # An application image on its foundation: the layer's tags, no others.
    assert set(tags) == set(image_contract.COMMON_TAG_KEYS) | set(
        image_contract.APPLICATION_TAG_KEYS
    ), sorted(tags)
    assert tags["Layer"] == "application"
    assert image_contract.is_foundation_name(tags["FoundationName"], "python")
    assert tags["FoundationName"].endswith(tags["FoundationBuildTime"])


def test_agent_user_reads_every_file_its_config_ships(baked):
    """cwagent (the agent's run_as_user) is in adm, and the in-build tests checked each file."""
    _, root, stderr = baked
    assert "adm" in in_host(root, "id", "-nG", "cwagent").split()
    config = json.loads((root / "etc/golden-fleet/cloudwatch-agent.json").read_text())
    assert config["agent"]["run_as_user"] == "cwagent"
    shipped = [f["file_path"] for f in config["logs"]["logs_collected"]["files"]["collect_list"]]
    assert shipped == ["/var/log/syslog", "/var/log/auth.log"]
    for path in shipped:
        assert f"image-test ok:   agent user cwagent reads {path}" in stderr, path


def test_rerun_reuses_the_image_at_once(baked, bake_cache):
    """Same service, version and content: the existing image id, no bake, well under 2 s."""
    stdout, _, _ = baked
    result, elapsed, cpu = run_bake_timed(
        ["--version", VERSION, "--service", SERVICE, "--local"], env=bake_cache.env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == stdout and "reusing" in result.stderr
    assert cpu < 2.0 and elapsed < 10, f"reuse took {cpu:.2f} s of CPU, {elapsed:.2f} s in all"


@pytest.mark.parametrize(
    "variable, value", [("runtime", "nodejs"), ("app_port", "9090")], ids=["runtime", "app-port"]
)
def test_same_version_with_other_content_is_refused(baked, bake_cache, variable, value):
    """Another runtime (no foundation of it exists: refused before one is baked, in seconds) or
    another value of the application layer (on the same foundation): one version, one content."""
    env = dict(bake_cache.env, **{f"PKR_VAR_{variable}": value})
    result, elapsed, cpu = run_bake_timed(
        ["--version", VERSION, "--service", SERVICE, "--local"], env=env
    )
    assert result.returncode == errors.EXIT_CONFLICT and result.stdout == ""
    assert "one version, one content" in result.stderr
    assert "baking golden-foundation" not in result.stderr and cpu < 10 and elapsed < 30, (
        f"refused after {elapsed:.0f} s ({cpu:.1f} s of CPU):\n{result.stderr}"
    )


def test_no_ssh_daemon_in_the_image(baked):
    """image.keepSshd is off by default: openssh-server is purged with its binary, units, config
    and host keys as the application layer's last step, and the provisioners after it still ran
    over Packer's open connection (the image tests are the last of them)."""
    _, root, stderr = baked
    status = build_host.run_in_host(
        root, ["dpkg-query", "-W", "-f=${Status}", "openssh-server"], capture_output=True, text=True
    )
    assert "ok installed" not in status.stdout, status.stdout
    for path in (
        "usr/sbin/sshd",
        "etc/ssh/sshd_config",
        "etc/ssh/sshd_config.d",
        "lib/systemd/system/ssh.service",
        "lib/systemd/system/ssh.socket",
        "etc/systemd/system/ssh.service.d",
    ):
        assert not (root / path).exists(), path
    assert not list((root / "etc/ssh").glob("ssh_host_*"))
    assert not (root / "usr/bin/fail2ban-server").exists(), "fail2ban's one jail guards sshd"
    assert "remove-sshd: openssh-server purged" in stderr
    assert stderr.index("remove-sshd: openssh-server purged") < stderr.index(
        "image-tests: all checks passed"
    )
    assert "image-test ok:   no sshd: no sshd binary" in stderr


def test_keep_sshd_keeps_the_hardened_daemon(bake_cache, tmp_path):
    """image.keepSshd (PKR_VAR_keep_sshd=true, as the program passes it): another version on the
    same foundation keeps openssh-server, and the image tests check sshd's effective values."""
    env = dict(bake_cache.env, PKR_VAR_keep_sshd="true")
    bake_cache.foundation()
    result = run_bake(
        [
            "--version",
            "1.4.1",
            "--service",
            SERVICE,
            "--local",
            "--workdir",
            str(tmp_path / "keep"),
            "--verbose",
        ],
        env=env,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    root = tmp_path / "keep" / "rootfs"
    assert "baking golden-foundation" not in result.stderr, "a foundation was baked again"
    assert "remove-sshd: SKIPPED - image.keepSshd is true" in result.stderr
    assert (root / "usr/sbin/sshd").exists()
    assert (root / "etc/ssh/sshd_config.d/10-cis.conf").exists()
    for line in ("sshd permitrootlogin no", "sshd passwordauthentication no", "sshd banner"):
        assert f"image-test ok:   {line}" in result.stderr, line
    assert not list((root / "etc/ssh").glob("ssh_host_*"))


def test_sysctl_audit_and_module_files(baked):
    _, root, _ = baked
    sysctl = (root / "etc/sysctl.d/60-cis.conf").read_text()
    for line in (
        "kernel.randomize_va_space = 2",
        "fs.suid_dumpable = 0",
        "net.ipv4.ip_forward = 0",
        "net.ipv4.conf.all.send_redirects = 0",
        "net.ipv4.tcp_syncookies = 1",
        "kernel.yama.ptrace_scope = 1",
    ):
        assert line in sysctl.splitlines(), line
    rules = (root / "etc/audit/rules.d/60-cis.rules").read_text()
    for key in ("identity", "scope", "time-change", "mounts", "logins", "modules"):
        assert f"-k {key}" in rules, key
    assert "max_log_file_action = keep_logs" in (root / "etc/audit/auditd.conf").read_text()
    assert "install usb-storage /bin/false" in (root / "etc/modprobe.d/60-cis.conf").read_text()


def test_app_installed_enabled_and_unprivileged(baked):
    """The sample service is a package named after the service, at the image's version."""
    _, root, _ = baked
    assert in_host(root, "dpkg-query", "-W", "-f=${Version}", SERVICE) == f"{VERSION}-1"
    assert in_host(root, "systemctl", "is-enabled", f"{SERVICE}.service").strip() == "enabled"
    assert in_host(root, "systemctl", "is-enabled", "auditd.service").strip() == "enabled"
    unit = (root / f"lib/systemd/system/{SERVICE}.service").read_text()
    assert f"User={SERVICE}" in unit and f"GF_APP_VERSION={VERSION}" in unit
    drop_in = (root / f"etc/systemd/system/{SERVICE}.service.d/golden-fleet.conf").read_text()
    assert "Requires=golden-fleet-environment.service" in drop_in
    assert f"EnvironmentFile=/run/{SERVICE}/environment" in drop_in


def test_leftovers_are_gone(baked):
    _, root, _ = baked
    assert not list((root / "etc/ssh").glob("ssh_host_*"))
    assert (root / "etc/machine-id").read_text() == ""
    assert not [
        p for p in (root / "var/lib/apt/lists").iterdir() if p.name not in {"partial", "lock"}
    ]
    assert not list(root.glob("home/*/.ssh/authorized_keys")) and not list(
        root.glob("home/*/.bash_history")
    )
    assert not (root / "usr/sbin/policy-rc.d").exists(), (
        "the build host's policy-rc.d must not stay"
    )
    assert not [
        p
        for p in (root / "var/log").rglob("*")
        if p.is_file() and not p.is_symlink() and p.stat().st_size > 0
    ]


def test_app_serves_healthz_and_version(baked):
    _, root, _ = baked
    port = processes.free_port()
    command = [
        "setpriv",
        f"--reuid={SERVICE}",
        f"--regid={SERVICE}",
        "--clear-groups",
        "env",
        f"GF_APP_PORT={port}",
        "GF_APP_BIND=127.0.0.1",
        f"GF_APP_VERSION={VERSION}",
        "python3",
        f"/opt/{SERVICE}/server.py",
    ]
    # Its own session, so that stop_process signals the whole group: the app is the init of the
    # build host's PID namespace, and setpriv's change of user clears the parent-death signal
    # that `unshare --kill-child` relies on (prctl(2), PR_SET_PDEATHSIG): killing unshare alone
    # would leave the app running.
    process = subprocess.Popen(
        build_host.host_command(root, command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        processes.wait_for(lambda: processes.port_open(port), 15, "app")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=5) as response:
            assert json.loads(response.read()) == {"version": VERSION}
    finally:
        processes.stop_process(process)
    # A leaked app would still listen on its port.
    deadline = time.monotonic() + 5
    while processes.port_open(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not processes.port_open(port), "the app outlived its test: its port still answers"


def test_cis_depth_controls(baked):
    """Issue 19's controls, read from the baked build host: chrony's parsed sources, the
    nftables ruleset and its boot rule (nft -c), the mount units, the compiled audit rules, log
    modes, PAM, AIDE; and every in-build image test of them passed."""
    _, root, stderr = baked
    parsed = in_host(root, "chronyd", "-p", "-f", "/etc/chrony/chrony.conf").splitlines()
    assert [line.split()[1] for line in parsed if line.startswith("server ")] == [
        "169.254.169.123",
        "fd00:ec2::123",
    ]
    assert "user _chrony" in parsed
    boot = root / "tmp/boot-config-test.json"
    boot.write_text(json.dumps({"network": {"vpcCidr": "10.20.0.0/16"}, "environment": {}}))
    try:
        in_host(
            root,
            "sh",
            "-c",
            "python3 /usr/local/lib/golden-fleet/firewall.py /tmp/boot-config-test.json 8080 "
            "/tmp/rule.nft && cat /etc/nftables.conf /tmp/rule.nft > /tmp/all.nft && "
            "nft -c -f /tmp/all.nft",
        )
        rule = (root / "tmp/rule.nft").read_text()
    finally:
        for name in ("boot-config-test.json", "rule.nft", "all.nft"):
            (root / "tmp" / name).unlink(missing_ok=True)
    assert "add element inet filter service_sources_v4 { 10.20.0.0/16 }" in rule
    assert "add element inet filter service_ports { 8080 }" in rule
    for unit in ("tmp.mount", "var-tmp.mount"):
        options = (root / "etc/systemd/system" / unit).read_text()
        assert all(o in options for o in ("nodev", "nosuid", "noexec")), unit
    compiled = (root / "etc/audit/audit.rules").read_text().splitlines()
    assert compiled[-1] == "-e 2"
    assert any(line.endswith("-k privileged") for line in compiled)
    assert (root / "var/lib/aide/aide.db").stat().st_size > 0
    assert "pam_pwhistory.so remember=24" in (root / "etc/pam.d/common-password").read_text()
    wide = [
        str(p)
        for p in (root / "var/log").rglob("*")
        if p.is_file() and not p.is_symlink() and p.stat().st_mode & 0o137
    ]
    assert not wide, wide
    for prefix in ("time:", "firewall:", "mounts:", "audit:", "logging:", "pam:", "aide:"):
        ok = [line for line in stderr.splitlines() if f"image-test ok:   {prefix}" in line]
        assert ok, f"no passed image test for {prefix}"
    assert "image-test FAIL" not in stderr


def test_firewall_takes_the_vpc_cidr_from_the_metadata_without_the_key(baked):
    """Without network.vpcCidr in the boot config the boot rule asks IMDSv2 (token first) for
    the primary interface's VPC CIDR blocks; here a stand-in on loopback answers as EC2 does."""
    import http.server
    import threading

    _, root, _ = baked
    seen: list[str] = []

    class Metadata(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            seen.append(f"PUT {self.path}")
            self._answer("token-1" if self.path == "/latest/api/token" else None)

        def do_GET(self):
            seen.append(f"GET {self.path}")
            if self.headers.get("X-aws-ec2-metadata-token") != "token-1":
                return self._answer(None, 401)
            answers = {
                "/latest/meta-data/mac": "0a:1b:2c:3d:4e:5f",
                "/latest/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/"
                "vpc-ipv4-cidr-blocks": "10.20.0.0/16\n100.64.0.0/20",
            }
            self._answer(answers.get(self.path))

        def _answer(self, body, status=200):
            self.send_response(status if body is not None else (404 if status == 200 else status))
            self.end_headers()
            if body is not None:
                self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    boot = root / "tmp/boot-config-metadata.json"
    boot.write_text(json.dumps({"environment": {"GF_APP_PORT": "8080"}}))
    try:
        in_host(
            root,
            "env",
            f"GF_IMDS_URL=http://127.0.0.1:{server.server_address[1]}",
            "python3",
            "/usr/local/lib/golden-fleet/firewall.py",
            "/tmp/boot-config-metadata.json",
            "8080",
            "/tmp/rule-metadata.nft",
        )
        rule = (root / "tmp/rule-metadata.nft").read_text()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        for name in ("boot-config-metadata.json", "rule-metadata.nft"):
            (root / "tmp" / name).unlink(missing_ok=True)
    assert seen[0] == "PUT /latest/api/token", seen
    assert "add element inet filter service_sources_v4 { 10.20.0.0/16, 100.64.0.0/20 }" in rule


def test_lynis_hardening_index_at_least_85(baked):
    _, root, _ = baked
    index, log = lynis_index(root)
    print(f"lynis hardening index: {index}")
    assert index >= 85, f"lynis hardening index {index} < 85; suggestions:\n" + "\n".join(
        line for line in log.splitlines() if "Suggestion:" in line
    )
