"""Benchmark of ``labreport import --report`` on the two real student reports.

    python3 benchmarks/bench_report_import.py [--repeat 5]

Times ``import_text`` (cut, commands, nodes, repairs, parsers, snapshots) on each seed's
text, beside a floor measured in the same run: the same outputs given to their parsers
directly (what the plain ``labreport import`` of hand-cut files costs). The difference is
what reading a whole report adds. The seed 001 figure includes the bounded line-by-line
search that puts back its Pod and Service manifests.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from labreport.parsers import get
from labreport.reportimport import import_text
from labreport.reportimport.extract import ReportText

RAW = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "seeds" / "raw"


def _time(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    for name in ("seed000.txt", "seed001.txt"):
        report = ReportText(path=name, format="text", text=(RAW / name).read_text(encoding="utf-8"))
        result = import_text(report)
        outputs = [(o.parser, o.text) for o in result.outputs if o.parser]

        def parse_only() -> None:
            for parser, text in outputs:
                try:
                    get(parser).parse(text)
                except Exception:
                    pass

        whole = _time(lambda: import_text(report), args.repeat)
        floor = _time(parse_only, args.repeat)
        print(f"{name}: import --report {whole * 1000:.0f} ms for {len(outputs)} outputs; "
              f"floor (the same outputs through their parsers only) {floor * 1000:.0f} ms")


if __name__ == "__main__":
    main()
