"""Benchmark: start-up of `labreport --help`, `--version`, and of the commands on the
10,000-Service path with a one-rule input (`import --iptables-save`, `analyze --json`,
where start-up is paid twice), beside the floor `python3 -c pass` measured in the same run
(issue 14 targets: --help/--version ≤ 80 ms; import + analyze of 10,000 Services ≤ 1 s).

    python3 benchmarks/bench_startup.py [--runs 21] [--pythonpath DIR] [--bytecode env|cached|none]

Each command is a fresh process (``python3 -m labreport``); the cases run interleaved so
machine load hits all alike. Printed per case: best and median wall time, best CPU time
(user + sys of the child, less noisy on a shared machine), and best − floor.
``--bytecode``: ``env`` keeps the environment's PYTHONDONTWRITEBYTECODE (if set, every
module is compiled again each run unless a __pycache__ is already there); ``cached`` runs
each command once without it first, so the bytecode is cached as an installed package
has it; ``none`` removes this tree's __pycache__ directories first and sets
PYTHONDONTWRITEBYTECODE=1 (every module compiled each run). ``--pythonpath``: the labreport
tree to measure (default: this one), for before/after comparisons (the commands run in a
temporary directory, so that ``python3 -m`` does not import the labreport of the current one).
Exit 1 when an output is not what it should be (tests/test_startup.py checks --help too).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_RULE = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n"


def _child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--pythonpath", type=Path, default=ROOT)
    ap.add_argument("--bytecode", choices=("env", "cached", "none"), default="env")
    args = ap.parse_args(argv)
    tree = args.pythonpath.resolve()
    env = {**os.environ, "PYTHONPATH": str(tree) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if args.bytecode == "none":
        for d in (tree / "labreport").rglob("__pycache__"):
            shutil.rmtree(d, ignore_errors=True)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        dump = Path(tmp) / "ipt.txt"
        dump.write_text(ONE_RULE, "utf-8")
        snap = Path(tmp) / "snap"
        lab = [sys.executable, "-m", "labreport"]
        cases = {
            "python3 -c pass (floor)": [sys.executable, "-c", "pass"],
            "labreport --version": [*lab, "--version"],
            "labreport --help": [*lab, "--help"],
            "labreport import (one rule)": [*lab, "import", "--iptables-save", str(dump), "--out", str(snap), "-q"],
            "labreport analyze --json (one rule)": [*lab, "analyze", str(snap), "--json"],
        }
        if args.bytecode == "cached":
            warm = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
            for cmd in cases.values():
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=warm, check=True, cwd=tmp)
        times: dict[str, list[float]] = {k: [] for k in cases}
        cpus: dict[str, list[float]] = {k: [] for k in cases}
        outputs: dict[str, bytes] = {}
        for _ in range(args.runs):
            for name, cmd in cases.items():
                c0 = _child_cpu()
                t0 = time.perf_counter()
                out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, check=True,
                                     cwd=tmp).stdout
                times[name].append(time.perf_counter() - t0)
                cpus[name].append(_child_cpu() - c0)
                outputs[name] = out
    floor = min(times["python3 -c pass (floor)"])
    floor_cpu = min(cpus["python3 -c pass (floor)"])
    print(f"tree {tree}, bytecode {args.bytecode} (PYTHONDONTWRITEBYTECODE={env.get('PYTHONDONTWRITEBYTECODE', '')!r}), "
          f"{args.runs} runs")
    for name, ts in times.items():
        print(f"{name:38s} best {min(ts) * 1000:6.1f} ms  median {statistics.median(ts) * 1000:6.1f} ms  "
              f"cpu {min(cpus[name]) * 1000:6.1f} ms  (best − floor {(min(ts) - floor) * 1000:+6.1f} ms, "
              f"cpu − floor {(min(cpus[name]) - floor_cpu) * 1000:+6.1f} ms)")
    print(f"target: --help and --version ≤ 80 ms; load average {os.getloadavg()[0]:.1f}")
    ok = outputs["labreport --version"].startswith(b"labreport, version ") and \
        outputs["labreport --help"].startswith(b"Usage: labreport [OPTIONS] COMMAND [ARGS]...") and \
        outputs["labreport analyze --json (one rule)"].startswith(b"{")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
