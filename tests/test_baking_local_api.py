"""baking.local_api: one shared local EC2 API per cache directory, its record believed only for
our own live moto_server, never a signal to a process that is not ours, and a reset that leaves
nothing of it running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import boto3
import pytest
from bake_fixtures import PACKER_DIR, require
from baking import emulator, local_api, processes
from baking.scratch import _start_time


@pytest.fixture
def cache(tmp_path):
    """A cache directory of its own; whatever emulator a test starts there is stopped after."""
    require("moto_server")
    path = tmp_path / "cache"
    path.mkdir()
    yield path
    local_api.stop(path)
    assert local_api._unrecorded(path) == [], "an emulator of the test outlived its reset"


def ec2(url: str):
    return boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def ensure_in_child(cache) -> subprocess.CompletedProcess:
    """local_api.ensure from a process that then exits, as a bake does."""
    code = (
        f"import sys; sys.path[:0] = [{str(PACKER_DIR)!r}, {str(PACKER_DIR.parent)!r}]\n"
        "from pathlib import Path\nfrom baking import local_api\n"
        f"print(local_api.ensure(Path({str(cache)!r})))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )


def test_the_emulator_outlives_the_bake_that_started_it_and_keeps_its_images(cache):
    """Started by one process, reused by the next: same URL, same pid, the image still there."""
    first = ensure_in_child(cache).stdout.strip()
    record = local_api.running(cache)
    assert record is not None and record.url == first, "the emulator died with its starter"
    ami = ec2(first).register_image(Name="kept-1.0.0")["ImageId"]
    second = ensure_in_child(cache).stdout.strip()
    assert second == first and local_api.running(cache).pid == record.pid
    assert [i["ImageId"] for i in ec2(second).describe_images(ImageIds=[ami])["Images"]] == [ami]


def test_it_offers_the_debian_12_stand_in_the_template_picks(cache):
    url = local_api.ensure(cache)
    image = emulator.find_base_image(
        ec2(url), ["136693071363"], emulator.LOCAL_BASE_AMI["name"][:14] + "*"
    )
    assert image is not None and image["ImageId"] == emulator.LOCAL_BASE_AMI["ami_id"]


def test_a_stale_record_of_a_dead_process_is_replaced(cache):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {
        "pid": dead.pid,
        "started": "12345",
        "port": processes.free_port(),
        "cache": str(cache),
    }
    (cache / local_api.RECORD).write_text(json.dumps(stale))
    url = local_api.ensure(cache)
    record = local_api.read_record(cache)
    assert record.pid != dead.pid and url == record.url and processes.port_open(record.port)


@pytest.mark.parametrize("text", ["", "{", "[]", '{"pid": "x"}', '{"pid": 1, "started": "1"}'])
def test_an_unreadable_record_is_stale_never_trusted(cache, text):
    (cache / local_api.RECORD).write_text(text)
    assert local_api.read_record(cache) is None
    url = local_api.ensure(cache)
    assert local_api.running(cache).url == url


def test_a_record_naming_a_foreign_process_never_gets_it_signalled(cache):
    """A live pid with its real start time that is not our moto_server (a reused pid, another
    tool): the record is stale, the process keeps running through ensure and reset."""
    foreign = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (cache / local_api.RECORD).write_text(
            json.dumps(
                {
                    "pid": foreign.pid,
                    "started": _start_time(foreign.pid),
                    "port": processes.free_port(),
                    "cache": str(cache),
                }
            )
        )
        assert local_api.running(cache) is None
        url = local_api.ensure(cache)
        assert local_api.running(cache).pid != foreign.pid and url
        local_api.stop(cache)
        assert foreign.poll() is None, "a process that is not ours was signalled"
    finally:
        foreign.kill()
        foreign.wait()


def test_another_cache_directorys_emulator_is_not_ours(cache, tmp_path):
    other = tmp_path / "other-cache"
    try:
        local_api.ensure(other)
        theirs = local_api.read_record(other)
        (cache / local_api.RECORD).write_text(
            json.dumps(
                {"pid": theirs.pid, "started": theirs.started, "port": theirs.port,
                 "cache": str(cache)}
            )
        )  # fmt: skip
        assert local_api.running(cache) is None
        assert local_api.stop(cache) == []
        assert local_api.running(other) is not None, "reset stopped another cache's emulator"
    finally:
        local_api.stop(other)


def test_reset_stops_it_and_its_images_go_with_it(cache):
    url = local_api.ensure(cache)
    record = local_api.running(cache)
    ami = ec2(url).register_image(Name="gone-1.0.0")["ImageId"]
    assert local_api.stop(cache) == [record.pid]
    assert _start_time(record.pid) is None and not (cache / local_api.RECORD).exists()
    assert not processes.port_open(record.port)
    fresh = local_api.ensure(cache)
    images = ec2(fresh).describe_images(Owners=["self"])["Images"]
    assert ami not in [i["ImageId"] for i in images]
    assert local_api.stop(cache) != [] and local_api.stop(cache) == []


def test_reset_also_stops_an_emulator_no_record_names(cache):
    """A bake killed between starting the emulator and writing its record: reset finds it."""
    local_api.ensure(cache)
    pid = local_api.running(cache).pid
    (cache / local_api.RECORD).unlink()
    assert local_api.stop(cache) == [pid] and _start_time(pid) is None


def test_two_bakes_at_once_share_one_emulator(cache):
    code = (
        f"import sys; sys.path[:0] = [{str(PACKER_DIR)!r}, {str(PACKER_DIR.parent)!r}]\n"
        "from pathlib import Path\nfrom baking import local_api\n"
        f"print(local_api.ensure(Path({str(cache)!r})))\n"
    )
    starters = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    urls = [p.communicate(timeout=60)[0].strip() for p in starters]
    assert urls[0] == urls[1] and urls[0].startswith("http://127.0.0.1:")
    recorded = local_api.running(cache).pid
    assert [p for p in local_api._unrecorded(cache) if p != recorded] == []


def test_it_gets_no_credentials_of_the_caller(cache, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "caller-secret")
    monkeypatch.setenv("AWS_PROFILE", "caller")
    local_api.ensure(cache)
    environ = local_api._environ(local_api.running(cache).pid)
    assert not [k for k in environ if k.startswith("AWS_")], environ
    assert environ[local_api.MARKER] == str(cache)


def test_reset_of_nothing_is_harmless(cache):
    started = time.monotonic()
    assert local_api.stop(cache) == [] and time.monotonic() - started < 2
    assert os.listdir(cache) == [local_api.LOCK]


@pytest.fixture
def plain_moto(tmp_path):
    """A moto_server started without the stand-in, as a user would start one; stopped after."""
    require("moto_server")
    port = processes.free_port()
    env = {k: v for k, v in os.environ.items() if k != "MOTO_AMIS_PATH"}
    server = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        processes.wait_for(lambda: processes.port_open(port), 30, "moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        processes.stop_process(server)


def run_bake_py(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PACKER_DIR / "bake.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_endpoint_without_a_base_image_fails_before_packer_with_the_fix(plain_moto, tmp_path):
    """exit 3 and one line naming the subcommand, instead of exit 6 after a Packer run."""
    checked = run_bake_py("seed-base-image", "--endpoint", plain_moto)
    assert checked.returncode == 3 and checked.stdout == ""
    assert "no base image at" in checked.stderr and "--amis-file" in checked.stderr
    env = dict(os.environ, TMPDIR=str(tmp_path))
    baked = run_bake_py("--version", "1.0.0", "--local", "--endpoint", plain_moto, env=env)
    assert baked.returncode == 3 and baked.stdout == "", baked.stderr
    lines = [line for line in baked.stderr.splitlines() if line.startswith("bake.py: error:")]
    assert len(lines) == 1 and "no base image at" in lines[0] and "seed-base-image" in lines[0]
    # No Packer run began (the bake says "bake: baking <name>" as one starts).
    assert not [line for line in baked.stderr.splitlines() if line.startswith("bake: baking ")]


def test_seed_file_gives_any_moto_server_the_base_image_the_template_picks(tmp_path):
    require("moto_server")
    amis = tmp_path / "amis.json"
    written = run_bake_py("seed-base-image", "--amis-file", str(amis))
    assert written.returncode == 0 and written.stdout == "", written.stderr
    assert json.loads(amis.read_text()) == [emulator.LOCAL_BASE_AMI]
    assert f"MOTO_AMIS_PATH={amis} moto_server" in written.stderr
    port = processes.free_port()
    server = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        env=dict(os.environ, MOTO_AMIS_PATH=str(amis)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        processes.wait_for(lambda: processes.port_open(port), 30, "moto_server")
        checked = run_bake_py("seed-base-image", "--endpoint", f"http://127.0.0.1:{port}")
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout == f"{emulator.LOCAL_BASE_AMI['ami_id']}\n"
    finally:
        processes.stop_process(server)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "needs --amis-file FILE or --endpoint URL"),
        (["--endpoint", "127.0.0.1:5000"], "invalid --endpoint"),
        (["--endpoint", "http://127.0.0.1:5000/x;rm"], "invalid --endpoint"),
        (["--amis-file", "/nonexistent-dir/amis.json"], "--amis-file"),
        (["--region", "moon"], "invalid region"),
    ],
)
def test_seed_base_image_refuses_bad_arguments_in_one_line(args, message):
    result = run_bake_py("seed-base-image", *args)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--local-reset", "--version", "1.0.0"], "applies alone or with --local"),
        (["--local-reset", "--local", "--endpoint", "http://127.0.0.1:1"], "does not apply with"),
        (["--local"], "required: --version"),
    ],
)
def test_local_reset_is_refused_where_it_means_nothing(args, message):
    result = run_bake_py(*args)
    assert result.returncode == 2 and result.stdout == "" and message in result.stderr
