#!/usr/bin/env python3
"""Render benchmark: analysis + report + diagram for a 1,000-pod snapshot (target ≤ 1 s, #14).

    python3 benchmarks/bench_render.py [SNAPSHOT]

SNAPSHOT defaults to benchmarks/out/snap-1000, made when missing by
``python3 -m tests.support.gen_snapshot --pods 1000 --services 300 --out benchmarks/out/snap-1000``
(a snapshot from another labreport version may not load: make it again).

Prints the time of each step and of a whole `render` (redaction, analysis, diagram with
`dot`, templates, writing) for md and html, beside the floors measured in the same run:
`json.load` of the snapshot file and `dot` on the report's final graph (the topology.dot the
render wrote, SVG and PNG as the render asks for them); exits 1 when a whole render exceeds
the target.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_S = 1.0
DEFAULT_SNAPSHOT = str(ROOT / "benchmarks" / "out" / "snap-1000")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="render of a 1,000-pod node (#14: target ≤ 1 s)")
    ap.add_argument("snapshot", nargs="?", default=DEFAULT_SNAPSHOT,
                    help="snapshot directory or file (made by tests.support.gen_snapshot if it is the default "
                         "and missing)")
    args = ap.parse_args(argv)
    from labreport.analysis import analyze
    from labreport.errors import SnapshotError
    from labreport.redact import redact_snapshot
    from labreport.render import diagram
    from labreport.render.i18n import Translator
    from labreport.render.report import render_report
    from labreport.snapshot import load

    src = args.snapshot
    if src == DEFAULT_SNAPSHOT and not Path(src).exists():
        subprocess.run([sys.executable, "-m", "tests.support.gen_snapshot", "--pods", "1000", "--services", "300",
                        "--out", src], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    t0 = time.perf_counter()
    try:
        snap = load(src)
    except SnapshotError as e:
        print(f"bench_render: {e}", file=sys.stderr)
        return 2
    t_load = time.perf_counter() - t0
    pods = sum(len([c for c in n.containers if c.is_sandbox]) for n in snap.nodes)
    print(f"snapshot {src}: {pods} pods, load {t_load:.2f} s")
    t0 = time.perf_counter()
    red, _ = redact_snapshot(snap)
    print(f"  redact   {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    a = analyze(red)
    print(f"  analyze  {time.perf_counter() - t0:.2f} s ({sum(len(n.services) for n in a.nodes)} service ports, "
          f"{sum(len(n.veth_pairs) for n in a.nodes)} veth pairs)")
    t0 = time.perf_counter()
    d = diagram.build(red, a, a.path, Translator("en"))
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    img = diagram.render(d)
    print(f"  diagram  build {t_build:.2f} s, dot {time.perf_counter() - t0:.2f} s "
          f"(summarized: {d.summarized}, {'ok' if img.svg else img.error})")
    snap_file = Path(src) / "snapshot.json" if Path(src).is_dir() else Path(src)
    t0 = time.perf_counter()
    json.loads(snap_file.read_bytes())
    floor_load = time.perf_counter() - t0
    worst = 0.0
    for fmt in ("md", "html"):
        with tempfile.TemporaryDirectory() as out:
            best = min(_timed(render_report, snap, fmt, out) for _ in range(3))
            size = sum(p.stat().st_size for p in Path(out).iterdir())
            floor_dot = float("nan")
            if shutil.which("dot") and (Path(out) / "topology.dot").exists():
                t0 = time.perf_counter()
                subprocess.run(["dot", "-Gdpi=110", "-Tsvg", "-Tpng", "-O", str(Path(out) / "topology.dot")], check=True)
                floor_dot = time.perf_counter() - t0
        worst = max(worst, best)
        print(f"render --format {fmt}: {best:.2f} s ({size / 1e6:.1f} MB written); floors: json.load {floor_load:.2f} s, "
              f"dot on the final graph {floor_dot:.2f} s")
    print(f"worst whole render {worst:.2f} s (target ≤ {TARGET_S:.0f} s): {'OK' if worst <= TARGET_S else 'TOO SLOW'}")
    return 0 if worst <= TARGET_S else 1


def _timed(render_report, snap, fmt: str, out: str) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    render_report(snap, fmt=fmt, lang="en", out_dir=out)
    return time.perf_counter() - t0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
