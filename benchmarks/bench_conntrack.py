"""Benchmark of the conntrack parser on a full table (what live collection reads).

    python3 benchmarks/bench_conntrack.py [--entries 20000] [--repeat 3]

The input is the real ``conntrack -L -o extended`` lines captured in the Service lab
(tests/fixtures/parsers/conntrack/here-lab-extended.out), repeated with fresh source ports
and addresses up to ``--entries`` lines (the parser's bound, ``MAX_ENTRIES``). Printed
beside the figure, measured in the same run: the floor of an in-process split of every
line into words (the least any Python reader of the text costs).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from labreport.parsers import conntrack

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "parsers" / "conntrack" / "here-lab-extended.out"


def make_table(n: int) -> str:
    rows = [ln for ln in FIX.read_text().splitlines() if ln.strip()]
    out = []
    for i in range(n):
        row = rows[i % len(rows)]
        row = re.sub(r"sport=\d+", f"sport={1024 + i % 60000}", row, count=1)
        out.append(row.replace("192.168.56.100", f"192.168.{56 + (i // 60000) % 100}.{100 + i % 100}", 1))
    return "\n".join(out) + "\n"


def best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=conntrack.MAX_ENTRIES)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    text = make_table(a.entries)
    parsed = conntrack.parse_table(text).value
    assert parsed.total == a.entries and len(parsed.entries) == min(a.entries, conntrack.MAX_ENTRIES)
    t_parse = best(lambda: conntrack.parse_table(text), a.repeat)
    t_floor = best(lambda: [ln.split() for ln in text.split("\n")], a.repeat)
    print(f"conntrack -L -o extended, {a.entries} entries ({len(text) / 1e6:.1f} MB): parse {t_parse * 1000:.0f} ms; "
          f"floor (split every line) {t_floor * 1000:.0f} ms; ratio {t_parse / t_floor:.1f}x")


if __name__ == "__main__":
    main()
