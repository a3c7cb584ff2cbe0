"""What a blackholed AWS endpoint costs the interactive release commands.

Whole processes (``python -m release ...``, interpreter start to exit) against a local AWS API
(moto_server) behind tests/fault_proxy.py with every action blackholed (accepted, never
answered). Goals (issue: fast, honest faults): ``rollback --now`` <= 10 s, ``status`` and
``shift`` <= 15 s. ``rollout --apply`` is measured too: without the pulumi CLI on this machine it
stops before any AWS call, so its figure is the refusal's, not an AWS wait.

    python bench/bench_faults.py [RUNS]      (default 5)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from fault_proxy import BLACKHOLE, fault_proxy  # noqa: E402
from harness import stack_file  # noqa: E402
from live_stack import build, shift_file  # noqa: E402
from local_aws import moto_server  # noqa: E402
from spread import report, spread  # noqa: E402

STACK = "staging"
COMMANDS = {
    "rollback --now": (["rollback", STACK, "--now"], 10.0),
    "status": (["status", STACK], 15.0),
    "shift 50 --dry-run": (["shift", STACK, "50", "--dry-run"], 15.0),
    "rollout --apply": (["rollout", STACK, "--apply"], None),
}


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as scratch, moto_server() as url:
        os.environ.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_ENDPOINT_URL=url,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_CONFIG_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
        )
        build(STACK, "checkout", {"blue": 90, "green": 10})
        with fault_proxy(url) as proxy:
            proxy.set("*", BLACKHOLE)
            env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "PYTHONPATH": str(ROOT)}
            times: dict[str, list[float]] = {name: [] for name in COMMANDS}
            last: dict[str, str] = {}
            for _ in range(runs):
                for name, (args, _goal) in COMMANDS.items():
                    path = Path(scratch) / f"Pulumi.{STACK}.yaml"
                    shutil.copyfile(stack_file(STACK), path)
                    shift_file(path, STACK, 10)
                    started = time.monotonic()
                    done = subprocess.run(
                        [sys.executable, "-m", "release", *args, "--file", str(path)],
                        cwd=ROOT,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=300,
                        stdin=subprocess.DEVNULL,
                    )
                    times[name].append(time.monotonic() - started)
                    last[name] = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1]
    for name, (_args, goal) in COMMANDS.items():
        print(report(f"blackholed: {name}", spread(times[name]), "s", goal))
        print(f"  last line: {last[name][:200]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
