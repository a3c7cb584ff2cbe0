"""Fresh-machine set-up: the README's Quick start, `.ci/install`, `.ci/run` and the proof script
agree with each other, and `.ci/install` behaves (one line per step, idempotent, one clear error
with the log on failure) when run for real in a scratch copy with apt replaced by recorders.

The proof itself (the Quick start verbatim in a debootstrapped Debian 12) is
`tests/fresh_machine.py`, run by `.ci/run`: inside that proof the suite runs (the README's test
command, CI's one run of it), so it cannot be a test of the suite without recursing."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import fresh_machine  # noqa: E402
from fresh_machine import FreshMachineError, check_transcript, quick_start_commands  # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL = ROOT / ".ci" / "install"
RUN = ROOT / ".ci" / "run"
SYSTEM_PYTHON = Path("/usr/bin/python3")


def install_packages() -> list[str]:
    match = re.search(r"^APT_PACKAGES=\(([a-z0-9 .+-]+)\)$", INSTALL.read_text(), re.MULTILINE)
    assert match, "APT_PACKAGES=(...) not found in .ci/install"
    return match[1].split()


def test_the_quick_start_is_two_commands_that_install_then_use_the_venv():
    """Two commands: set-up plus the local bake, then the README's test command, both through
    the project's venv (never a `python` that a stock Debian does not have)."""
    first, second = quick_start_commands(README)
    assert first.startswith("bash .ci/install && . venv/bin/activate && python packer/bake.py ")
    assert "--local" in first.split()
    assert second == "python -m pytest"


def test_ci_run_sets_up_then_runs_the_proof_whose_second_command_is_the_test_command():
    """`.ci/run` is the Quick start's set-up, then the proof; the proof runs the README's two
    commands verbatim, the second being the test command (the suite's one run in CI) and checks
    that pytest passed."""
    first, second = quick_start_commands(README)
    lines = [
        line
        for line in RUN.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    steps = lines[lines.index("bash .ci/install") :]
    assert steps == [
        "bash .ci/install",
        ". venv/bin/activate",
        "python tests/fresh_machine.py",
    ]
    assert (
        second == "python -m pytest"
        and second
        in fresh_machine.session_script([first, second], "/root/golden-fleet").splitlines()
    )
    assert check_transcript(["=== 1 failed, 3 passed in 1.0s ==="], [first, second]), (
        "the proof must fail on a failed test"
    )
    assert first.split(" && ")[:2] == steps[:2], "the README sets up as .ci/run does"


def test_the_venv_is_the_one_pulumi_yaml_names():
    """.ci/install creates the virtualenv Pulumi.yaml names, so `pulumi` runs the same one."""
    project = YAML(typ="safe").load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"]["options"]["virtualenv"] == "venv"
    assert re.search(r"^VENV=venv$", INSTALL.read_text(), re.MULTILINE)
    assert re.search(r"^SYSTEM_PYTHON=/usr/bin/python3$", INSTALL.read_text(), re.MULTILINE)


def _section(text: str, heading: str) -> str:
    """From ``heading`` to the next heading of the same level."""
    start = text.index(heading)
    level = heading.split(" ")[0] + " "
    end = text.find("\n" + level, start + len(heading))
    return text[start : end if end != -1 else len(text)]


@pytest.mark.parametrize(
    "where, heading",
    [
        ("README.md", "## Quick start"),
        ("docs/get-started.md", "## Bake the image and run the tests"),
    ],
)
def test_the_docs_state_the_apt_packages_install_installs(where: str, heading: str):
    """Every place the documentation lists the Debian packages (the README's Quick start, and the
    Get started page its explanation moved to) names exactly what .ci/install installs."""
    quick_start = _section((ROOT / where).read_text(encoding="utf-8"), heading)
    stated = re.findall(
        r"`([a-z0-9.+-]+)`", quick_start.split("Debian packages (")[1].split(";")[0]
    )
    assert stated == install_packages()
    for name in install_packages():
        assert f"`{name}`" in quick_start


def test_the_get_started_page_runs_the_readme_s_two_commands_verbatim():
    """The site's tutorial shows exactly the two commands the proof runs from the README."""
    page = (ROOT / "docs" / "get-started.md").read_text(encoding="utf-8")
    section = _section(page, "## Bake the image and run the tests")
    shown = quick_start_commands(
        section.replace("## Bake the image and run the tests", "## Quick start", 1)
    )
    assert shown == quick_start_commands(README)


@pytest.mark.parametrize("path", [INSTALL, RUN, ROOT / "tests" / "fresh_machine.py"])
def test_set_up_files_name_no_package_registry_host(path: Path):
    """The set-up uses whatever registries the machine is configured for: no host is written in."""
    text = path.read_text()
    assert "://" not in text
    assert not re.search(r"\b[a-z0-9-]+\.(org|com|net|io|dev)\b", text), "a host name is written"


@pytest.mark.parametrize("path", [INSTALL, RUN])
def test_set_up_scripts_parse(path: Path):
    """bash -n: the scripts are syntactically valid bash."""
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


README_CASES = {
    "no section": ("# x\n\n## Other\n```sh\na\nb\n```\n", 'no "## Quick start" section'),
    "no sh block": ("## Quick start\n\ntext\n\n## Next\n", "no ```sh block"),
    "three commands": ("## Quick start\n```sh\na\nb\nc\n```\n", "exactly two commands, found 3"),
    "one command": ("## Quick start\n```sh\na  # only\n```\n", "exactly two commands, found 1"),
    "block in the next section": (
        "## Quick start\ntext\n## Next\n```sh\na\nb\n```\n",
        "no ```sh block",
    ),
}


@pytest.mark.parametrize("case", sorted(README_CASES))
def test_a_quick_start_that_cannot_be_run_verbatim_is_refused(case: str):
    """The proof refuses to guess: no section, no block, or not exactly two commands."""
    text, message = README_CASES[case]
    with pytest.raises(FreshMachineError, match=re.escape(message)):
        quick_start_commands(text)


def test_comments_are_stripped_and_commands_kept_verbatim():
    """Only a trailing `# comment` is removed; the command text is untouched."""
    text = "## Quick start\n```sh\nbash x && . y   # set up\npython -m pytest # test\n```\n"
    assert quick_start_commands(text) == ["bash x && . y", "python -m pytest"]


def test_the_session_runs_each_command_verbatim_and_stops_at_the_first_failure(tmp_path: Path):
    """The session script holds each command as its own line and stops after a failing one."""
    commands = ["true && echo one", "false && echo never", "echo not-reached"]
    script = fresh_machine.session_script(commands, str(tmp_path))
    for command in commands:
        assert command in script.splitlines()
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert result.returncode == 1
    assert "one" in result.stdout.splitlines()
    assert "not-reached" not in result.stdout
    assert "fresh-machine: command 2 exited 1 after" in result.stdout


GOOD_TRANSCRIPT = [
    "install: [1/3] Debian packages: installing packer (apt-get)",
    "fresh-machine: command 1 exited 0 after 300 s",
    "ami-0123456789abcdef0",
    "===== 412 passed, 2 warnings in 301.50s (0:05:01) =====",
    "fresh-machine: command 2 exited 0 after 700 s",
    "fresh-machine: venv home /usr/bin",
]
TRANSCRIPT_DEFECTS = {
    "command 1 failed": (
        lambda t: [line.replace("command 1 exited 0", "command 1 exited 1") for line in t],
        "command 1 did not succeed",
    ),
    "command 2 never ran": (
        lambda t: [line for line in t if "command 2" not in line],
        "command 2 did not succeed",
    ),
    "no AMI id": (lambda t: [line for line in t if not line.startswith("ami-")], "no AMI id"),
    "an AMI id inside a longer line": (
        lambda t: [
            ("bake: ami-0123456789abcdef0" if line.startswith("ami-") else line) for line in t
        ],
        "no AMI id",
    ),
    "a failed test": (
        lambda t: [line.replace("412 passed", "1 failed, 411 passed") for line in t],
        "pytest did not pass",
    ),
    "an error in collection": (
        lambda t: [line.replace("412 passed", "411 passed, 1 error") for line in t],
        "pytest did not pass",
    ),
    "no pytest summary": (
        lambda t: [line for line in t if not line.startswith("=====")],
        "no summary line",
    ),
    "venv from another python": (
        lambda t: [line.replace("home /usr/bin", "home /root/.pyenv/bin") for line in t],
        "Debian's python3",
    ),
}


def test_a_good_transcript_passes():
    """The transcript of a Quick start that worked yields no problem."""
    assert check_transcript(GOOD_TRANSCRIPT, ["a", "b"]) == []


@pytest.mark.parametrize("case", sorted(TRANSCRIPT_DEFECTS))
def test_every_defect_in_the_transcript_fails_the_proof(case: str):
    """Exit status, AMI id, pytest summary and the venv's interpreter are each checked."""
    change, message = TRANSCRIPT_DEFECTS[case]
    problems = check_transcript(change(list(GOOD_TRANSCRIPT)), ["a", "b"])
    assert any(message in problem for problem in problems), problems


def test_the_namespace_command_mounts_only_inside_its_own_namespaces(tmp_path: Path):
    """/proc, /sys and /dev are mounted after `unshare --mount --pid`: they end with it."""
    argv = fresh_machine.namespace_command(tmp_path, ["/bin/true"])
    assert argv[:5] == ["unshare", "--mount", "--pid", "--fork", "--kill-child"]
    script = argv[argv.index("-c") + 1]
    assert script.index("mount --make-rprivate /") < script.index("mount -t proc")
    # the tree's / must be a mount point for the bake's own `unshare --mount` inside it
    assert script.index('mount --bind "$r" "$r"') < script.index("mount -t proc")
    assert script.endswith('exec chroot "$r" "$@"')


def test_mounts_under_sees_this_machines_mounts_and_not_a_plain_directory(tmp_path: Path):
    """The guard before deleting the copy finds a mount point and ignores plain directories."""
    assert "/proc" in fresh_machine.mounts_under(Path("/proc"))
    assert fresh_machine.mounts_under(tmp_path) == []


# --- .ci/install run for real in a scratch copy -------------------------------------------------


def fake_tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def scratch(tmp_path: Path):
    """A copy of .ci/install beside a requirements-dev.txt that needs no network, and recorders
    in place of apt: what apt would be asked is written to calls.log."""
    if os.geteuid() != 0 or not SYSTEM_PYTHON.is_file():
        pytest.fail("these tests run .ci/install as root with Debian's /usr/bin/python3")
    project = tmp_path / "project"
    (project / ".ci").mkdir(parents=True)
    shutil.copy2(INSTALL, project / ".ci" / "install")
    (project / "requirements-dev.txt").write_text("# nothing to download\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    lists = tmp_path / "lists"
    lists.mkdir()
    calls = tmp_path / "calls.log"
    fake_tool(bin_dir, "apt-get", f'echo "apt-get $*" >> {calls}\n')
    fake_tool(bin_dir, "apt-config", f"echo \"APT_LISTS='{lists}/'\"\n")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", TMPDIR=str(tmp_path))
    env.pop("SUDO_USER", None)
    return project, bin_dir, lists, calls, env


@pytest.fixture(scope="module")
def made_venv(tmp_path_factory) -> Path:
    """One venv from Debian's python3, copied into the scratch projects of the tests that are
    not about making it (ensurepip takes seconds per venv)."""
    venv = tmp_path_factory.mktemp("template") / "venv"
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], check=True, timeout=300)
    return venv


def with_venv(project: Path, made_venv: Path) -> None:
    shutil.copytree(made_venv, project / "venv", symlinks=True)


def run_install(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(project / ".ci" / "install")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_install_makes_the_venv_with_debians_python_one_line_per_step_then_the_next_command(
    scratch,
):
    """A run prints one line per step and the next command; the venv comes from /usr/bin/python3;
    a second run redoes nothing and asks apt for nothing."""
    project, bin_dir, _, calls, env = scratch
    fake_tool(bin_dir, "dpkg-query", "echo 'install ok installed'\n")
    result = run_install(project, env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line[:13] for line in lines[:3]] == ["install: [1/3", "install: [2/3", "install: [3/3"]
    assert "already installed" in lines[0]
    assert lines[3].startswith("install: done.")
    # The next command is the Quick start's bake, verbatim (the staging stack's image).
    first, _ = quick_start_commands(README)
    assert lines[4].split("#")[0].strip() == first.removeprefix("bash .ci/install && ")
    assert "--stack staging" in first.split(" && ")[-1]
    assert lines[5].split("#")[0].strip() == "python -m pytest"
    assert len(lines) == 6 and result.stderr == ""
    config = (project / "venv" / "pyvenv.cfg").read_text()
    assert re.search(r"^home = /usr/bin$", config, re.MULTILINE), config
    again = run_install(project, env)
    assert again.returncode == 0
    assert "already there" in again.stdout.splitlines()[1]
    assert not calls.exists(), "nothing was missing, so apt was never asked"
    assert not list(project.parent.glob("golden-fleet-install.*")), "the log is removed"


def test_install_updates_missing_package_lists_before_installing_only_what_is_missing(
    scratch, made_venv
):
    """No package lists: `apt-get update` first, then one install of exactly the missing ones."""
    project, bin_dir, _, calls, env = scratch
    with_venv(project, made_venv)
    fake_tool(
        bin_dir,
        "dpkg-query",
        'case "$*" in *lynis*|*python3-venv*) echo "install ok installed";; *) exit 1;; esac\n',
    )
    result = run_install(project, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert calls.read_text().splitlines() == [
        "apt-get update",
        "apt-get install -y --no-install-recommends packer debootstrap openssh-client procps",
    ]
    assert "package lists missing or older than a day" in result.stdout


def test_install_with_fresh_lists_does_not_update_unless_the_install_fails(scratch, made_venv):
    """Fresh lists: straight to install; when that fails (a replaced version), update once."""
    project, bin_dir, lists, calls, env = scratch
    with_venv(project, made_venv)
    (lists / "deb_dists_bookworm_main_binary-amd64_Packages").write_text("")
    fake_tool(bin_dir, "dpkg-query", "exit 1\n")
    fake_tool(
        bin_dir,
        "apt-get",
        f'echo "apt-get $*" >> {calls}\n'
        f'[ "$1" = install ] && [ ! -e {calls}.updated ] && exit 100\n'
        f'[ "$1" = update ] && touch {calls}.updated\nexit 0\n',
    )
    result = run_install(project, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[1] for line in calls.read_text().splitlines()] == [
        "install",
        "update",
        "install",
    ]


def test_a_failing_step_is_one_clear_error_with_the_tools_output(scratch, made_venv):
    """pip failing: one FAILED line naming the step, the tail of pip's output, exit 1."""
    project, bin_dir, _, _, env = scratch
    with_venv(project, made_venv)
    fake_tool(bin_dir, "dpkg-query", "echo 'install ok installed'\n")
    (project / "requirements-dev.txt").write_text("./no-such-directory\n")
    result = run_install(project, env)
    assert result.returncode == 1
    assert "install: FAILED: pip install -r requirements-dev.txt" in result.stderr
    assert "no-such-directory" in result.stderr, "the tool's own message is shown"
    assert "install: done." not in result.stdout


def _pem(body: str) -> str:
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----"


def test_only_the_certificates_this_machine_adds_are_carried_into_the_tree():
    """The tree gets exactly the CAs this machine trusts beyond Debian's bundle, once each, in
    order; CRLF line ends and comments between blocks do not matter; nothing is dropped."""
    debian = "\n".join([_pem("QUFB"), _pem("QkJC")]) + "\n"
    machine = "\n".join(
        ["# site CA", _pem("QUFB"), _pem("U0lURQ=="), _pem("QkJC"), _pem("U0lURQ=="), _pem("TUlU")]
    ).replace("\n", "\r\n")
    assert fresh_machine.extra_certificates(machine, debian) == [_pem("U0lURQ=="), _pem("TUlU")]
    assert fresh_machine.extra_certificates(debian, debian) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_stops_the_proof_through_its_clean_up(signum):
    """A CI cancellation's SIGTERM must run prove()'s `finally` (ending the tree's namespace,
    removing the copy), not end the process past it: it raises Stopped, a BaseException."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    cleaned = []
    try:
        fresh_machine.stop_on_signals()
        with pytest.raises(fresh_machine.Stopped, match=signal.Signals(signum).name):
            try:
                os.kill(os.getpid(), signum)
                signal.sigtimedwait([], 0)  # let the handler run here
            finally:
                cleaned.append(True)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    assert cleaned == [True] and not issubclass(fresh_machine.Stopped, Exception)
