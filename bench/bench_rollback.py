"""Emergency rollback vs a bare ModifyListener script, on one local AWS API. Not a test.

    python bench/bench_rollback.py [--runs N]

Both are timed as whole processes (interpreter start to exit), alternately, against the same
``moto_server`` on 127.0.0.1 holding the stack's load balancer, target groups and listener:

* ``python -m release rollback staging --now --file <copy>`` -- finds the listener by the
  stack's tags (DescribeLoadBalancers, DescribeTags, DescribeListeners, DescribeTags), sets the
  weights with one ModifyListener, writes the halt (one DynamoDB UpdateItem on the release
  lock's item), validates and writes the stack file;
* a bare script that already knows the listener and target group ARNs and makes the one
  ModifyListener call with boto3 (the floor: interpreter, boto3 import, client, one call).

Before every run the listener is put back to 90/10 and the stack file to its 10 % split, so
both always make a real change. Prints min/median/max of each and the ratio of the medians
(goal <= 2.0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    sys.path.insert(0, str(path))

STACK, SERVICE, REGION = "staging", "checkout", "eu-west-1"
GOAL = 2.0

BARE = """\
import sys
import boto3

listener, blue, green = sys.argv[1:4]
boto3.client("elbv2", region_name="eu-west-1").modify_listener(
    ListenerArn=listener,
    DefaultActions=[{
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": blue, "Weight": 100},
                {"TargetGroupArn": green, "Weight": 0},
            ],
            "TargetGroupStickinessConfig": {"Enabled": False, "DurationSeconds": 1},
        },
    }],
)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """moto_server in its own process group, ready when its reset endpoint answers."""
    server = subprocess.Popen(
        [shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/moto-api/reset", method="POST"
            )
            urllib.request.urlopen(request, timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    stop_server(server)
    raise SystemExit("moto_server did not start within 30 s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def figures(name: str, times: list[float]) -> str:
    return (
        f"{name:<34} min {min(times):.3f} s  median {statistics.median(times):.3f} s  "
        f"max {max(times):.3f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="repetitions of each (default 10)")
    args = parser.parse_args()
    if not 1 <= args.runs <= 1000:
        parser.error("--runs must be 1-1000")

    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}
    env.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_CONFIG_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    os.environ.update(env)  # this process's own set-up calls go to the same server
    server = start_server(port)
    try:
        import boto3
        from live_stack import build, shift_file

        live = build(STACK, SERVICE, {"blue": 90, "green": 10})
        elbv2 = boto3.client("elbv2", region_name=REGION)
        with tempfile.TemporaryDirectory() as work:
            stack_file = Path(work) / f"Pulumi.{STACK}.yaml"
            shutil.copyfile(ROOT / f"Pulumi.{STACK}.yaml", stack_file)
            shift_file(stack_file, STACK, 10)
            split = stack_file.read_bytes()
            bare = Path(work) / "bare_modify_listener.py"
            bare.write_text(BARE)

            def reset() -> None:
                stack_file.write_bytes(split)
                elbv2.modify_listener(
                    ListenerArn=live.listener_arn,
                    DefaultActions=[
                        {
                            "Type": "forward",
                            "ForwardConfig": {
                                "TargetGroups": [
                                    {"TargetGroupArn": live.target_groups["blue"], "Weight": 90},
                                    {"TargetGroupArn": live.target_groups["green"], "Weight": 10},
                                ],
                                "TargetGroupStickinessConfig": {
                                    "Enabled": False,
                                    "DurationSeconds": 1,
                                },
                            },
                        }
                    ],
                )

            now_cmd = [
                sys.executable, "-m", "release", "rollback", STACK, "--now",
                "--file", str(stack_file),
            ]  # fmt: skip
            bare_cmd = [
                sys.executable, str(bare), live.listener_arn,
                live.target_groups["blue"], live.target_groups["green"],
            ]  # fmt: skip
            reset()
            timed(now_cmd, env)  # warm the server's code paths and the OS file cache, untimed
            reset()
            timed(bare_cmd, env)
            now_times, bare_times = [], []
            for _ in range(args.runs):
                reset()
                now_times.append(timed(now_cmd, env))
                if live.weights() != {"blue": 100, "green": 0}:
                    raise SystemExit("rollback --now did not roll the listener back")
                reset()
                bare_times.append(timed(bare_cmd, env))
    finally:
        stop_server(server)

    ratio = statistics.median(now_times) / statistics.median(bare_times)
    print(f"{args.runs} runs each, alternating, one moto_server on 127.0.0.1")
    print(figures("rollback --now (whole command)", now_times))
    print(figures("bare boto3 ModifyListener script", bare_times))
    print(f"ratio of medians {ratio:.2f} (goal <= {GOAL}: {'met' if ratio <= GOAL else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
