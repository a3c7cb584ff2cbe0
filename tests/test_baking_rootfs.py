"""baking.rootfs and baking.build_host: the spare copy is used only when it is current; every
build-host command runs in its own namespaces."""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path

import bake_fixtures  # noqa: F401  (puts packer/, the bake package's home, on sys.path)
from baking import rootfs
from baking.build_host import host_command


def pristine(tmp_path: Path) -> Path:
    tree = tmp_path / "bookworm-minbase"
    tree.mkdir()
    (tree / ".complete").touch()
    (tree / "marker").write_text("pristine")
    return tree


def test_no_spare_means_a_copy(tmp_path):
    assert rootfs.take_spare(pristine(tmp_path), tmp_path / "target") is False
    assert not (tmp_path / "target").exists()


def test_a_current_spare_is_moved_into_place(tmp_path):
    tree = pristine(tmp_path)
    spare = rootfs.spare_rootfs(tree)
    spare.mkdir()
    (spare / ".complete").touch()
    stamp = (tree / ".complete").stat().st_mtime_ns
    os.utime(spare / ".complete", ns=(stamp, stamp))
    assert rootfs.take_spare(tree, tmp_path / "target") is True
    assert (tmp_path / "target" / ".complete").exists() and not spare.exists()


def test_a_spare_of_an_older_pristine_tree_is_discarded(tmp_path):
    tree = pristine(tmp_path)
    spare = rootfs.spare_rootfs(tree)
    spare.mkdir()
    (spare / ".complete").touch()
    os.utime(spare / ".complete", ns=(1, 1))
    assert rootfs.take_spare(tree, tmp_path / "target") is False
    assert not spare.exists() and not (tmp_path / "target").exists()


def test_spare_copy_finish_keeps_it_and_abort_leaves_nothing(tmp_path):
    tree = pristine(tmp_path)
    copy = rootfs.SpareCopy(tree)
    copy.finish()
    assert (rootfs.spare_rootfs(tree) / "marker").read_text() == "pristine"
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith("bookworm-minbase.spare-")]
    assert leftovers == []
    aborted = rootfs.SpareCopy(tree)
    aborted.abort()
    assert not aborted.partial.exists()


def test_cache_lives_under_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert rootfs.cache_dir() == tmp_path / "golden-fleet"


def test_build_host_commands_run_in_their_own_namespaces():
    argv = host_command(Path("/r"), ["true"])
    assert argv[:5] == ["unshare", "--mount", "--pid", "--fork", "--kill-child"]
    assert "--net" not in argv and argv[-2:] == ["/r", "true"]
    assert "--net" in host_command(Path("/r"), ["true"], own_network=True)


def test_two_first_bakes_debootstrap_once(tmp_path, monkeypatch):
    """The cache is built by one bake while the other waits for it, not by both into one tree."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "debootstrap"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo run >> "{calls}"\n'
        'target="$(eval echo \\${$#})"\n'
        'mkdir -p "$target/etc" && sleep 0.5 && echo "$$" > "$target/etc/built-by"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        trees = list(pool.map(lambda _: rootfs.pristine_rootfs(), range(2)))
    assert trees[0] == trees[1] and (trees[0] / ".complete").exists()
    assert calls.read_text().splitlines() == ["run"]
    assert len((trees[0] / "etc/built-by").read_text().split()) == 1


def test_a_partial_copy_of_a_killed_bake_is_removed_at_once(tmp_path):
    """A partial spare copy whose bake is gone (its owner record names a pid that does not run)
    goes with the next bake's copy, not an hour later; a running bake's partial copy stays."""
    import subprocess

    from baking.scratch import owner_record

    tree = pristine(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    killed = tmp_path / "bookworm-minbase.spare-killed"
    killed.mkdir()
    (killed / "half").write_text("copied")
    Path(f"{killed}.owner").write_text(owner_record(dead.pid).replace("None", "1"))
    running = tmp_path / "bookworm-minbase.spare-running"
    running.mkdir()
    Path(f"{running}.owner").write_text(owner_record())
    copy = rootfs.SpareCopy(tree)
    copy.finish()
    assert not killed.exists() and not Path(f"{killed}.owner").exists()
    assert running.exists(), "a running bake's copy was removed"
    assert not Path(f"{copy.partial}.owner").exists()
