"""Stack-file edits change only what the plan names, under hostile files, races and kills.

Each test here reproduces a way an edit used to lose or corrupt data: YAML aliases, two writers
at once, a writer killed mid-write, symlinks, permissions, CRLF, a byte-order mark, unused anchors,
re-indented lists, duplicate keys.
"""

from __future__ import annotations

import difflib
import multiprocessing
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import stack_file

from components.config import parse_stack_config
from release import stackfile
from release.cli import main
from release.transitions import REMOVE, Change, Plan, ReleaseError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_aws(no_aws_credentials):
    """Nothing here may reach AWS: the release command warns and edits the file only."""


def copy_of(tmp_path: Path, stack: str = "staging", text: str | None = None) -> Path:
    target = tmp_path / f"Pulumi.{stack}.yaml"
    if text is None:
        shutil.copyfile(stack_file(stack), target)
    else:
        target.write_bytes(text.encode())
    return target


def run(capsys, path: Path, *args: str) -> tuple[int, str, str]:
    command, stack, *rest = args
    code = main([command, stack, "--file", str(path), *rest])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def changed_lines(before: str, after: str) -> list[str]:
    """The removed and added lines of a line diff, line endings included."""
    return [
        line
        for line in difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
        if line[:1] in "+-"
    ]


STAGING = stack_file("staging").read_text()
SHIFT_10 = ["- blue: 100", "- green: 0", "+ blue: 90", "+ green: 10"]


def stripped(lines: list[str]) -> list[str]:
    """``- key: value`` / ``+ key: value``, removals first, each group in file order."""
    return sorted((f"{line[0]} {line[2:].strip()}" for line in lines), key=lambda x: x[0] != "-")


# ---------------------------------------------------------------------------------------------
# 1. Aliases: an edit of one color must never reach the other
# ---------------------------------------------------------------------------------------------
ALIASED_FLEETS = STAGING.replace(
    "    blue:\n      version: 1.4.0\n      capacity: {min: 1, desired: 1, max: 2}\n"
    "    green:\n      version: 1.5.0\n      capacity: {min: 1, desired: 1, max: 2}\n",
    "    blue: &fleet\n      version: 1.4.0\n      capacity: {min: 1, desired: 1, max: 2}\n"
    "    green: *fleet\n",
)
ALIASED_CAPACITY = STAGING.replace(
    "    blue:\n      version: 1.4.0\n      capacity: {min: 1, desired: 1, max: 2}\n",
    "    blue:\n      version: 1.4.0\n      capacity: &cap {min: 1, desired: 1, max: 2}\n",
).replace(
    "      version: 1.5.0\n      capacity: {min: 1, desired: 1, max: 2}\n",
    "      version: 1.5.0\n      capacity: *cap\n",
)


def test_fixtures_really_share_nodes():
    assert ALIASED_FLEETS != STAGING and "*fleet" in ALIASED_FLEETS
    assert "*cap" in ALIASED_CAPACITY and "&cap" in ALIASED_CAPACITY


def test_deploy_refuses_a_file_whose_colors_are_one_aliased_node(capsys, tmp_path):
    """The live color's version must not change with the idle one's: refuse, name both."""
    path = copy_of(tmp_path, text=ALIASED_FLEETS)
    before = path.read_bytes()
    code, _, err = run(capsys, path, "deploy", "staging", "1.5.0")
    assert code == 1 and path.read_bytes() == before
    assert "golden-fleet:fleets.green" in err and "golden-fleet:fleets.blue" in err, err
    assert "alias" in err and "line " in err


def test_finish_refuses_aliased_capacity_and_names_both_keys(capsys, tmp_path):
    """Finish scales the old color down: with a shared capacity node it would empty both."""
    text = ALIASED_CAPACITY.replace(
        "    blue: 100\n    green: 0\n", "    blue: 0\n    green: 100\n"
    )
    path = copy_of(tmp_path, text=text)
    before = path.read_bytes()
    code, _, err = run(capsys, path, "finish", "staging")
    assert code == 1 and path.read_bytes() == before
    assert "fleets.green.capacity" in err and "fleets.blue.capacity" in err, err


def test_merge_keys_under_golden_fleet_are_refused_for_edits(capsys, tmp_path):
    text = STAGING.replace(
        "  golden-fleet:loadBalancer:\n    deletionProtection: false\n    idleTimeout: 60\n",
        "  golden-fleet:loadBalancer:\n    <<: {deletionProtection: false}\n    idleTimeout: 60\n",
    )
    assert text != STAGING
    path = copy_of(tmp_path, text=text)
    code, _, err = run(capsys, path, "shift", "staging", "10")
    assert code == 1 and "merge key" in err, err


def test_status_still_reads_an_aliased_file(capsys, tmp_path):
    """Reading is harmless: only edits refuse shared nodes."""
    path = copy_of(tmp_path, text=ALIASED_FLEETS)
    code, _, err = run(capsys, path, "status", "staging", "--no-outputs")
    assert code == 0, err


# ---------------------------------------------------------------------------------------------
# 2. Two writers: exactly one wins, the other refuses; no edit is ever lost
# ---------------------------------------------------------------------------------------------
def _write_after(barrier, path: str, data: bytes, expected: bytes, results) -> None:
    barrier.wait()
    try:
        stackfile.atomic_write(Path(path), data, expected=expected)
        results.put(("wrote", data))
    except ReleaseError as error:
        results.put(("refused", str(error)))


def test_concurrent_writers_never_both_win(tmp_path):
    """50 races of two writers prepared from the same bytes: one writes, one refuses."""
    path = copy_of(tmp_path)
    context = multiprocessing.get_context("fork")
    for attempt in range(50):
        original = path.read_bytes()
        edits = [original + b"# writer a %d\n" % attempt, original + b"# writer b %d\n" % attempt]
        barrier, results = context.Barrier(2), context.Queue()
        workers = [
            context.Process(target=_write_after, args=(barrier, str(path), e, original, results))
            for e in edits
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        outcomes = [results.get(timeout=5) for _ in workers]
        wrote = [data for kind, data in outcomes if kind == "wrote"]
        assert len(wrote) == 1, f"attempt {attempt}: {outcomes}"
        assert path.read_bytes() == wrote[0], f"attempt {attempt}: the winner's edit was lost"


def test_two_release_commands_at_once_lose_no_edit(tmp_path):
    """`shift` and `deploy` started together: each exits 0 only if its edit is in the file."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(4):
        path = copy_of(tmp_path)
        commands = [
            [sys.executable, "-m", "release", "shift", "staging", "10", "--file", str(path)],
            [sys.executable, "-m", "release", "deploy", "staging", "1.6.0", "--file", str(path)],
        ]
        procs = [
            subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for c in commands
        ]
        codes = [p.wait(timeout=120) for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
        config = parse_stack_config(stackfile.load_config_text(path.read_text()))
        if codes[0] == 0:
            assert config.traffic.green == 10, "shift said it wrote, but its edit is gone"
        if codes[1] == 0:
            assert config.fleets["green"].version == "1.6.0", "deploy's edit is gone"
        assert 0 in codes, codes


# ---------------------------------------------------------------------------------------------
# 3. Kills during writes: the file is the old or the new one, and no temporary file survives
# ---------------------------------------------------------------------------------------------
WRITER = """
import sys
from pathlib import Path
from release import stackfile
path, a, b = Path(sys.argv[1]), Path(sys.argv[2]).read_bytes(), Path(sys.argv[3]).read_bytes()
print("ready", flush=True)
while True:
    current = path.read_bytes()
    stackfile.atomic_write(path, b if current == a else a, expected=current)
"""


def test_sigkill_during_writes_leaves_a_whole_file_and_no_temporaries(tmp_path):
    path = copy_of(tmp_path)
    a = path.read_bytes()
    b = a.replace(b"blue: 100", b"blue: 90").replace(b"green: 0", b"green: 10")
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    rng = random.Random(7)
    for _ in range(15):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(tmp_path / "a"), str(tmp_path / "b")],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
        )
        assert writer.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.01, 0.15))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        writer.stdout.close()
        assert path.read_bytes() in (a, b), "a killed write left a partial stack file"
    stackfile.atomic_write(path, a, expected=path.read_bytes())
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [], f"temporary files survived the next write: {leftovers}"


# ---------------------------------------------------------------------------------------------
# 7. Symlinks, permissions, owner and group
# ---------------------------------------------------------------------------------------------
def test_a_symlinked_stack_file_is_followed_and_the_link_kept(capsys, tmp_path):
    real = tmp_path / "real" / "Pulumi.staging.yaml"
    real.parent.mkdir()
    shutil.copyfile(stack_file("staging"), real)
    link = tmp_path / "Pulumi.staging.yaml"
    link.symlink_to(real)
    code, _, err = run(capsys, link, "shift", "staging", "10")
    assert code == 0, err
    assert link.is_symlink(), "the symlink was replaced by a regular file"
    assert "    green: 10" in real.read_text(), "the link's target was not edited"


def test_a_read_only_stack_file_is_refused_and_untouched(capsys, tmp_path):
    path = copy_of(tmp_path)
    path.chmod(0o444)
    before, inode = path.read_bytes(), path.stat().st_ino
    code, _, err = run(capsys, path, "shift", "staging", "10")
    assert code == 1 and "read-only" in err, err
    assert path.read_bytes() == before and path.stat().st_ino == inode
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_mode_owner_and_group_are_kept(capsys, tmp_path):
    path = copy_of(tmp_path)
    os.chown(path, 4321, 8765)
    path.chmod(0o640)
    code, _, err = run(capsys, path, "shift", "staging", "10")
    assert code == 0, err
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4321, 8765, 0o640)


def test_mode_is_kept(capsys, tmp_path):
    path = copy_of(tmp_path)
    path.chmod(0o600)
    assert run(capsys, path, "shift", "staging", "10")[0] == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ---------------------------------------------------------------------------------------------
# 8. Byte-for-byte outside the edited keys
# ---------------------------------------------------------------------------------------------
def test_crlf_file_keeps_crlf_and_blank_lines(capsys, tmp_path):
    crlf = STAGING.replace("\n", "\r\n")
    path = copy_of(tmp_path, text=crlf)
    assert run(capsys, path, "shift", "staging", "10")[0] == 0
    after = path.read_bytes().decode()
    assert after.count("\r\n") == crlf.count("\r\n") and "\n" not in after.replace("\r\n", "")
    assert stripped(changed_lines(crlf, after)) == SHIFT_10


def test_byte_order_mark_is_kept(capsys, tmp_path):
    path = copy_of(tmp_path, text="\ufeff" + STAGING)
    assert run(capsys, path, "shift", "staging", "10")[0] == 0
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert stripped(changed_lines(STAGING, path.read_text()[1:])) == SHIFT_10


def test_unused_anchor_and_odd_list_indentation_are_kept(capsys, tmp_path):
    text = STAGING.replace("    idleTimeout: 60\n", "    idleTimeout: &idle 60\n").replace(
        "    instanceTypes:\n      - t3.small\n      - t3a.small\n",
        "    instanceTypes:\n    - t3.small\n    -   t3a.small\n",
    )
    assert "&idle" in text and "-   t3a.small" in text
    path = copy_of(tmp_path, text=text)
    assert run(capsys, path, "shift", "staging", "10")[0] == 0
    assert stripped(changed_lines(text, path.read_text())) == SHIFT_10


def test_deploy_changes_exactly_the_version_line(capsys, tmp_path):
    path = copy_of(tmp_path)
    assert run(capsys, path, "deploy", "staging", "1.6.0")[0] == 0
    assert stripped(changed_lines(STAGING, path.read_text())) == [
        "- version: 1.5.0",
        "+ version: 1.6.0",
    ]


def test_a_missing_key_is_added_as_one_line_in_its_mapping(capsys, tmp_path):
    """Without release.stable, the first edit pins it: one added line, nothing else moves."""
    text = STAGING.replace(
        "    stable: blue              # the color that last held all traffic\n", ""
    )
    assert text != STAGING
    path = copy_of(tmp_path, text=text)
    assert run(capsys, path, "shift", "staging", "10")[0] == 0
    after = path.read_text()
    assert stripped(changed_lines(text, after)) == [*SHIFT_10[:2], *SHIFT_10[2:], "+ stable: blue"]
    assert parse_stack_config(stackfile.load_config_text(after)).release.stable == "blue"


def test_a_missing_section_is_added_under_config(tmp_path):
    text = STAGING.split("  golden-fleet:release:")[0].rstrip("\n") + "\n"
    plan = Plan("t", "t", changes=(Change(("golden-fleet:release", "stable"), "blue"),))
    sf = stackfile.load(copy_of(tmp_path, text=text))
    after = sf.render(plan)
    assert after.startswith(text.rstrip("\n"))
    assert after[len(text) - 1 :] == "\n  golden-fleet:release:\n    stable: blue\n"


@pytest.mark.parametrize(
    ("value", "style", "text"),
    [
        ("1.6.0", None, "1.6.0"),
        ("1.6.0", '"', '"1.6.0"'),
        ("1.6.0", "'", "'1.6.0'"),
        ("true", None, '"true"'),  # a plain true would read back as a boolean
        ("2.0.0-rc.1", None, "2.0.0-rc.1"),
        (10, None, "10"),
        (False, None, "false"),
    ],
)
def test_scalars_keep_their_quoting_and_read_back_as_written(value, style, text):
    assert stackfile.render_scalar(value, style) == text


def test_a_string_that_would_read_back_as_a_number_is_quoted(tmp_path):
    sf = stackfile.load(copy_of(tmp_path))
    plan = Plan("t", "t", changes=(Change(("golden-fleet:fleets", "green", "version"), "1"),))
    assert '      version: "1"\n' in sf.render(plan)


def test_the_check_after_an_edit_refuses_any_change_outside_the_plan():
    plan = Plan(
        "t",
        "t",
        changes=(
            Change(("golden-fleet:traffic", "green"), 10),
            Change(("golden-fleet:traffic", "blue"), 90),
        ),
    )
    good = STAGING.replace("    blue: 100", "    blue: 90").replace("    green: 0", "    green: 10")
    stackfile.check_only_planned(STAGING, good, plan, "x")
    with pytest.raises(ReleaseError, match="outside the plan"):
        stackfile.check_only_planned(
            STAGING, good.replace("idleTimeout: 60", "idleTimeout: 61"), plan, "x"
        )
    with pytest.raises(ReleaseError, match="read back as '10'"):
        stackfile.check_only_planned(STAGING, good.replace("green: 10", 'green: "10"'), plan, "x")


# ---------------------------------------------------------------------------------------------
# Removing a key (finish drops release.canaryRestore): its own lines, or its flow entry, only
# ---------------------------------------------------------------------------------------------
RECORD = ("golden-fleet:release", "canaryRestore")
WITH_RECORD = STAGING.replace(
    "    standby: cold             # after a release the old color scales to zero\n",
    "    standby: cold             # after a release the old color scales to zero\n"
    "    canaryRestore:            # written by shift, removed by finish\n"
    "      color: green\n      min: 1   # its own\n      desired: 1\n",
)


def _remove(text: str) -> str:
    return stackfile.remove_value(text, ("config", *RECORD), "x")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_a_removed_block_key_takes_exactly_its_own_lines(newline, bom):
    """The key's line, its value's lines and their comments go; nothing else changes, line
    endings and a byte-order mark included."""
    assert WITH_RECORD != STAGING
    before = bom + WITH_RECORD.replace("\n", newline)
    assert _remove(before) == bom + STAGING.replace("\n", newline)


def test_a_removed_key_in_the_middle_of_a_block_mapping_keeps_its_neighbours():
    text = (
        "config:\n  golden-fleet:release:\n    canaryRestore:\n      color: green\n"
        "      min: 1\n      desired: 1   # x\n    stable: blue  # y\n  aws:region: eu-west-1\n"
    )
    assert _remove(text) == (
        "config:\n  golden-fleet:release:\n    stable: blue  # y\n  aws:region: eu-west-1\n"
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "{stable: blue, canaryRestore: {color: green, min: 1, desired: 1}, standby: cold}",
            "{stable: blue, standby: cold}",
        ),
        ("{stable: blue, canaryRestore: {color: green, min: 1, desired: 1}}", "{stable: blue}"),
        ("{canaryRestore: {color: green, min: 1, desired: 1}, stable: blue}", "{stable: blue}"),
        ("{canaryRestore: {color: green, min: 1, desired: 1}}", "{}"),
    ],
)
def test_a_removed_flow_entry_takes_one_comma(before, after):
    text = f"config:\n  golden-fleet:release: {before}   # kept\n"
    assert _remove(text) == f"config:\n  golden-fleet:release: {after}   # kept\n"


def test_removing_a_missing_key_changes_nothing_and_the_last_block_key_is_refused():
    assert _remove(STAGING) == STAGING
    only = (
        "config:\n  golden-fleet:release:\n    canaryRestore: {color: green, min: 1, desired: 1}\n"
    )
    with pytest.raises(ReleaseError, match="would leave golden-fleet:release empty"):
        _remove(only)


def test_a_plan_that_removes_a_key_is_checked_like_any_other(tmp_path):
    """render() removes it; the check after the edit refuses a result that still has it, and
    one that changed anything else."""
    plan = Plan("t", "t", changes=(Change(RECORD, REMOVE),))
    sf = stackfile.load(copy_of(tmp_path, text=WITH_RECORD))
    assert sf.render(plan) == STAGING
    with pytest.raises(ReleaseError, match="would still be there"):
        stackfile.check_only_planned(WITH_RECORD, WITH_RECORD, plan, "x")
    with pytest.raises(ReleaseError, match="outside the plan"):
        stackfile.check_only_planned(
            WITH_RECORD, STAGING.replace("idleTimeout: 60", "idleTimeout: 61"), plan, "x"
        )


# ---------------------------------------------------------------------------------------------
# 10, 11. Broken files: one line naming the place
# ---------------------------------------------------------------------------------------------
def test_duplicate_key_is_reported_with_key_line_and_column(capsys, tmp_path):
    text = STAGING.replace("    green: 0\n", "    green: 0\n    blue: 0\n")
    path = copy_of(tmp_path, text=text)
    code, _, err = run(capsys, path, "shift", "staging", "10")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    line = text.splitlines().index("    blue: 0") + 1
    assert f"Pulumi.staging.yaml:{line}:" in err and '"blue"' in err, err


def test_yaml_syntax_error_has_line_and_column(capsys, tmp_path):
    path = copy_of(tmp_path, text="config:\n  golden-fleet:traffic: {blue: 100, green: 0\n")
    code, _, err = run(capsys, path, "status", "staging", "--no-outputs")
    assert code == 1 and "Pulumi.staging.yaml:3:1:" in err, err


def test_a_directory_as_file_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, tmp_path, "status", "staging", "--no-outputs")
    assert code == 1 and "is a directory" in err and "Traceback" not in err


def test_binary_content_is_one_line(capsys, tmp_path):
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_bytes(b"config:\n  a: \xff\xfe\n")
    code, _, err = run(capsys, path, "status", "staging", "--no-outputs")
    assert code == 1 and "not UTF-8" in err


@pytest.mark.parametrize(
    "before, value, after",
    [
        (
            "    stable: blue              # the color that last held all traffic\n",
            "green",
            "    stable: green             # the color that last held all traffic\n",
        ),
        (
            "    stable: green             # the color\n",
            "blue",
            "    stable: blue              # the color\n",
        ),
        ("    stable: blue # tight\n", "green", "    stable: green # tight\n"),
        ("    stable: blue\n", "green", "    stable: green\n"),
    ],
)
def test_an_edit_keeps_the_column_of_an_inline_comment(before, value, after):
    """`finish` rewrites `stable: blue   # ...`: the comment stays where the operator aligned
    it (never closer than one space)."""
    text = "config:\n  golden-fleet:release:\n" + before
    assert stackfile.set_value(text, ("config", "golden-fleet:release", "stable"), value) == (
        "config:\n  golden-fleet:release:\n" + after
    )
