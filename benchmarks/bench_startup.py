"""Benchmark: `labreport --help` and `labreport --version` start-up, beside the floor
`python3 -c pass` measured in the same run (issue 14 target: ≤ 80 ms).

    python3 benchmarks/bench_startup.py [--runs 21]

Each command is a fresh process (the console script's own interpreter, no pyenv shim:
``python3 -m labreport``); best and median wall time of --runs, in the order floor,
--version, --help interleaved so machine load hits all three alike. Exit 1 when the
output is not what click prints (tests/test_startup.py checks that too).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cases = {
        "python3 -c pass (floor)": [sys.executable, "-c", "pass"],
        "labreport --version": [sys.executable, "-m", "labreport", "--version"],
        "labreport --help": [sys.executable, "-m", "labreport", "--help"],
        "labreport schema (click + pydantic, for scale)": [sys.executable, "-m", "labreport", "schema"],
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    outputs: dict[str, bytes] = {}
    for _ in range(args.runs):
        for name, cmd in cases.items():
            t0 = time.perf_counter()
            out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, check=True).stdout
            times[name].append(time.perf_counter() - t0)
            outputs[name] = out
    floor = min(times["python3 -c pass (floor)"])
    for name, ts in times.items():
        print(f"{name:48s} best {min(ts) * 1000:6.1f} ms  median {statistics.median(ts) * 1000:6.1f} ms  "
              f"(best − floor {(min(ts) - floor) * 1000:+6.1f} ms)")
    print(f"target: --help and --version ≤ 80 ms; load average {os.getloadavg()[0]:.1f}")
    ok = outputs["labreport --version"].startswith(b"labreport, version ") and \
        outputs["labreport --help"].startswith(b"Usage: labreport [OPTIONS] COMMAND [ARGS]...")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
