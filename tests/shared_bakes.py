"""One bake cache per test session, shared by the end-to-end tests (the ``bake_cache`` fixture in
conftest.py): one foundation bake, and each application bake made once, on first use, by
whichever test needs it first, then read by every test that only reads its result (tags, the
build host's files, lynis, the image tests' lines).

The cache is a directory of its own: a copy of the machine's cached Debian 12 tree (taken under
its lock: another bake on this machine may rebuild that tree meanwhile), the bake's own shared
local EC2 API (``--local`` without ``--endpoint``, as an operator runs it), the kept foundation
root, and a TMPDIR of its own, so a test can check that bakes leave nothing in it. Everything
is removed at the end of the session: the API stopped, the roots and work directories deleted.

A bake is never repeated within a session, so tests stay independent of their order: the first
test to ask makes it. The end-to-end modules run in one xdist group (``local-bake``) so that
this session-scoped cache is one per run, not one per worker.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bake_fixtures import require, run_bake
from baking import layers, local_api, rootfs


def claim_for_this_worker(basetemp: Path) -> None:
    """Under pytest-xdist, the first worker to make a bake cache claims the run's; another worker
    asking for one fails the test: the end-to-end modules were spread over workers (their
    ``xdist_group`` not honored, as on pytest 9.2: pytest-xdist issue 1386), and each worker
    would bake its own foundation. Without xdist there is one session, so nothing to claim."""
    worker, run = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not worker or not run:
        return
    claim = basetemp.parent / f"bake-cache-{run}"  # the run's directory, shared by its workers
    try:
        with open(claim, "x") as mark:
            mark.write(worker)
    except FileExistsError:
        owner = claim.read_text()
        if owner != worker:
            raise AssertionError(
                f"worker {worker} needs the session's bake cache, which {owner} already made: "
                "the end-to-end modules must run in one worker (pytestmark "
                'xdist_group("local-bake") with --dist loadgroup; see requirements-dev.txt)'
            ) from None


@dataclass(frozen=True)
class Bake:
    """One finished bake: the image id it printed, its stderr, its wall time, and (when the test
    asked to keep it) the provisioned build host root."""

    ami: str
    stderr: str
    seconds: float
    root: Path | None = None


class BakeCache:
    """A bake cache directory of one test session, with its bakes memoized by their arguments."""

    def __init__(self, base: Path) -> None:
        require("packer", "debootstrap", "moto_server", "unshare", "chroot", "ssh-keygen")
        self.base = base
        self.cache = base / "xdg" / "golden-fleet"
        self.scratch = base / "tmp"
        self.workdirs = base / "work"
        for directory in (self.cache, self.scratch, self.workdirs):
            directory.mkdir(parents=True)
        pristine = rootfs.pristine_rootfs()  # the machine's cache: built once if missing
        with open(pristine.with_name(pristine.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            assert (pristine / ".complete").exists(), f"{pristine} is being rebuilt; run again"
            subprocess.run(["cp", "-a", str(pristine), str(self.cache / pristine.name)], check=True)
        self.env = dict(os.environ, XDG_CACHE_HOME=str(base / "xdg"), TMPDIR=str(self.scratch))
        self._bakes: dict[tuple, Bake] = {}

    @property
    def url(self) -> str:
        """The URL of this cache's shared local EC2 API (started by the first bake)."""
        self.foundation()
        record = local_api.running(self.cache)
        assert record is not None, "the shared local API of the session's bake cache is not running"
        return record.url

    def foundation(self) -> Bake:
        """The session's foundation (runtime python), baked on first use."""
        key = ("foundation",)
        if key not in self._bakes:
            self._bakes[key] = self._run(["foundation", "--local"], {}, None, "foundation")
        return self._bakes[key]

    def application(
        self,
        version: str,
        *args: str,
        service: str = "checkout",
        keep_root: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> Bake:
        """``service`` ``version`` on the session's foundation, baked on first use with the bake
        arguments ``args``; with ``keep_root`` its build host root is kept (``--workdir``) for
        the tests to read. The same arguments give the same bake."""
        extra_env = dict(extra_env or {})
        key = ("application", service, version, args, keep_root, tuple(sorted(extra_env.items())))
        if key not in self._bakes:
            self.foundation()  # first, so that no application bake bakes one of its own
            argv = ["--version", version, "--service", service, "--local", *args]
            workdir = None
            if keep_root:
                workdir = self.workdirs / f"{service}-{version}-{len(self._bakes)}"
                argv += ["--workdir", str(workdir)]
            self._bakes[key] = self._run(argv, extra_env, workdir, f"{service} {version}")
        return self._bakes[key]

    def _run(
        self, argv: list[str], extra_env: dict[str, str], workdir: Path | None, what: str
    ) -> Bake:
        started = time.monotonic()
        result = run_bake(argv, env={**self.env, **extra_env})
        seconds = time.monotonic() - started
        assert result.returncode == 0, (
            f"shared bake of {what} failed ({result.returncode}):\n{result.stderr[-6000:]}"
        )
        assert re.fullmatch(r"ami-[0-9a-f]+\n", result.stdout), result.stdout
        print(f"shared bake of {what}: {seconds:.0f} s")
        return Bake(
            result.stdout.strip(), result.stderr, seconds, workdir / "rootfs" if workdir else None
        )

    def close(self) -> None:
        """Stop the API, remove the kept roots, the work directories and the tree's copy."""
        try:
            local_api.stop(self.cache)
        finally:
            layers.remove_roots(self.cache)
            shutil.rmtree(self.base, ignore_errors=True)
