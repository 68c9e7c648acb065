"""Measure how long the node lab takes to build and tear down (root).

    sudo python -m tests.lab.measure [--runs 3]

The first single-node build of a process also compiles the pause binary and builds the
image archives (cached for the rest of the session)."""

from __future__ import annotations

import argparse
import os
import time

from tests.lab.cluster import TwoNodeCluster
from tests.lab.node import NodeLab


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ns = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for i in range(ns.runs):
        lab = NodeLab()
        lab.build()
        t0 = time.monotonic()
        lab.close()
        print(f"node {i + 1}{' (incl. images)' if i == 0 else ''}: build {lab.build_seconds:.2f} s, "
              f"teardown {time.monotonic() - t0:.2f} s")
    c = TwoNodeCluster()
    c.build()
    t0 = time.monotonic()
    c.close()
    print(f"two nodes (vxlan, sshd): build {c.build_seconds:.2f} s, teardown {time.monotonic() - t0:.2f} s")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
