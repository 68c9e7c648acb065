#!/usr/bin/env python3
"""Render and analyze at cluster scale (#14): a 500-node snapshot made of 500 copies of the
live sample node (samples/live-containerd-docker-node: a real node lab's collection), each
renamed uniquely, written as this version writes it (`labreport import`/`collect`: schema
version 3, redacted, its redaction record naming the redaction's fingerprint), then — as a
user runs them, one process each —

    labreport analyze --json SNAP          (target ≤ 1 s)
    labreport render SNAP --format html    (target ≤ 5 s, ≤ 500 MB)
    labreport render SNAP --format md      (target ≤ 5 s, ≤ 500 MB)

each printed beside its floors measured in the same run: `json.load` of the snapshot file,
and `dot` on the report's final graph(s) (the DOT files the render wrote). Also checks that
every node is named in the report. A second, labelled line times `analyze --json` on the
same nodes as a schema-1 file without a redaction record (what the benchmark used before:
upgraded and judged by the redaction at every load). Exits 1 when a target is missed.

    python3 benchmarks/bench_render_cluster.py [--nodes 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "live-containerd-docker-node" / "snapshot.json"


def make_snapshot(n: int, out: Path) -> Path:
    data = json.loads(SAMPLE.read_text("utf-8"))
    node = data["nodes"][0]
    text = json.dumps(node)
    old = node["name"]
    nodes = []
    for i in range(n):
        name = f"node-{i:03d}"
        nodes.append(json.loads(text.replace(json.dumps(old), json.dumps(name))))
    data["nodes"] = nodes
    data["title"] = f"SYNTHETIC: {n} copies of the live sample node"
    out.mkdir(parents=True, exist_ok=True)
    p = out / "snapshot.json"
    p.write_text(json.dumps(data), "utf-8")
    return p


def write_current(schema1: Path, out: Path) -> Path:
    """``schema1`` as this version writes it (loaded, redacted for storage, saved), in a
    child process so that this one's memory and collector stay as they were."""
    code = ("import sys; from labreport.snapshot import load, save; from labreport.redact import for_storage; "
            "save(for_storage(load(sys.argv[1])), sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(schema1), str(out)], check=True, timeout=600,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return out / "snapshot.json"


def run(argv: list[str]) -> tuple[float, float]:
    """Wall time and the child's peak RSS (MB) of one command."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); dt = time.perf_counter() - t; "
            "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, r.returncode)")
    cp = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=600)
    dt, rss, rc = cp.stdout.split()
    if rc != "0":
        raise SystemExit(f"{' '.join(argv)} failed (exit {rc}): {cp.stderr[-500:]}")
    return float(dt), float(rss)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    o = ap.parse_args()
    labreport = [sys.executable, "-c", "from labreport.cli import run; run()"]
    ok = True
    with tempfile.TemporaryDirectory(prefix="lrbench") as tmp:
        snap1 = make_snapshot(o.nodes, Path(tmp) / "snap1")
        snap = write_current(snap1, Path(tmp) / "snap")
        floors = {}
        for p in (snap, snap1):
            t = []
            for _ in range(o.repeat):
                s = time.perf_counter()
                json.loads(p.read_bytes())
                t.append(time.perf_counter() - s)
            floors[p] = min(t)
        floor_load = floors[snap]
        print(f"snapshot (as this version writes it): {o.nodes} nodes, {snap.stat().st_size / 1e6:.1f} MB; "
              f"floor json.load {floor_load:.2f} s; load average {os.getloadavg()[0]:.1f}")
        sys.path.insert(0, str(ROOT))
        from labreport.analysis import analyze
        from labreport.snapshot import load

        loaded = load(snap)
        t = []
        for _ in range(o.repeat):
            s = time.perf_counter()
            analyze(loaded)
            t.append(time.perf_counter() - s)
        print(f"analyze() of the loaded snapshot, in process: {min(t):.2f} s (target ≤ 1 s; floor json.load "
              f"{floor_load:.2f} s)")
        ok &= min(t) <= 1.0
        del loaded
        best = min(run([*labreport, "analyze", "--json", str(snap)]) for _ in range(o.repeat))
        print(f"labreport analyze --json (load + analyze + JSON out): {best[0]:.2f} s, {best[1]:.0f} MB "
              f"(target ≤ 1 s; floor json.load {floor_load:.2f} s)")
        old = min(run([*labreport, "analyze", "--json", str(snap1)]) for _ in range(o.repeat))
        print(f"  the same nodes as a schema-1 file without a redaction record (upgraded and judged at load): "
              f"{old[0]:.2f} s, {old[1]:.0f} MB (floor json.load {floors[snap1]:.2f} s)")
        for fmt in ("html", "md"):
            out = Path(tmp) / f"out-{fmt}"
            res = []
            for _ in range(o.repeat):
                shutil.rmtree(out, ignore_errors=True)
                res.append(run([*labreport, "render", str(snap), "--format", fmt, "--out", str(out), "-q"]))
            dt, rss = min(res)
            report = (out / f"report.{fmt}").read_text("utf-8")
            missing = [f"node-{i:03d}" for i in range(o.nodes) if f"node-{i:03d}" not in report]
            dots = sorted(out.glob("*.dot")) + sorted((out / "nodes").glob("*.dot") if (out / "nodes").is_dir() else [])
            s = time.perf_counter()
            for d in dots:
                subprocess.run(["dot", "-Tsvg", "-o", os.devnull, str(d)], check=True, timeout=600)
            floor_dot = time.perf_counter() - s
            print(f"render --format {fmt}: {dt:.2f} s, {rss:.0f} MB (target ≤ 5 s, ≤ 500 MB; floors: json.load "
                  f"{floor_load:.2f} s, dot on the final graph{'s' if len(dots) > 1 else ''} ({len(dots)}) "
                  f"{floor_dot:.2f} s); every node named: {'yes' if not missing else f'no, {len(missing)} missing'}")
            ok &= dt <= 5.0 and rss <= 500 and not missing
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
