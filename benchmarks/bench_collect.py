"""Benchmark: `labreport collect --local` on a node with 200 pod namespaces.

    python3 benchmarks/bench_collect.py [--pods 200] [--repeat 5] [--prefix lrcb] [--teardown]

1. ``make_netns.py`` builds (once; reused when present) a node namespace ``<prefix>node``
   with a bridge and N pod namespaces wired by veth pairs (pod eth0 with an address and
   a default route).
2. ``ip netns exec <prefix>node labreport collect --local --out DIR`` runs --repeat times,
   each in a fresh process (so Python's start-up and imports count), wall time measured
   around the whole command; peak RSS of the child from ``os.wait4``.
3. The snapshot is checked: the node namespace first, every pod namespace read without
   error, each host veth's link-netnsid resolved to its pod namespace and each pod's eth0
   resolved back to the node (``NetNamespace.nsids``).

Target (issue 14): ≤ 0.6 s, beside the floor `ip -all netns exec ip -j -d addr show`. Prints the figures; exit 1 when the snapshot is wrong (not when
the target is missed: the figures say so). ``--teardown`` deletes the namespaces after.
Note: /var/run/netns is shared, so namespaces of other programs are read too (they count
in the time, as they would on a real machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import make_netns  # noqa: E402


def run_once(node: str, out: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in KiB, exit code) of one collect run in a fresh process."""
    argv = ["ip", "netns", "exec", node, sys.executable, "-c", "from labreport.cli import run; run()",
            "collect", "--local", "--quiet", "--out", str(out)]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stderr is not None:
        proc.stderr.close()
    return wall, usage.ru_maxrss, proc.returncode


def check(snapshot_dir: Path, prefix: str, pods: int) -> list[str]:
    data = json.loads((snapshot_dir / "snapshot.json").read_text())
    node = data["nodes"][0]
    errors = []
    nss = {ns["name"]: ns for ns in node["netns"]}
    node_ns = node["netns"][0]
    if node_ns["kind"] != "node" or node_ns["name"] != make_netns.node_name(prefix):
        errors.append(f"first namespace is {node_ns['name']} ({node_ns['kind']}), not the node")
    nsids = {int(k): v for k, v in node_ns["nsids"].items()}
    for i in range(pods):
        pod = make_netns.pod_name(prefix, i)
        ns = nss.get(pod)
        if ns is None or ns["error"]:
            errors.append(f"{pod}: {'missing' if ns is None else ns['error']}")
            continue
        host = next((ln for ln in node_ns["links"] if ln["name"] == f"vethcb{i:03d}"), None)
        if host is None or nsids.get(host["link_netnsid"]) != pod or host["link_netns"] != pod:
            errors.append(f"vethcb{i:03d}: peer namespace not resolved to {pod}")
        eth0 = next((ln for ln in ns["links"] if ln["name"] == "eth0"), None)
        if eth0 is None or eth0["link_netns"] != node_ns["name"]:
            errors.append(f"{pod}: eth0 not resolved to the node namespace")
        elif host is not None and (eth0["peer_ifindex"] != host["ifindex"] or host["peer_ifindex"] != eth0["ifindex"]):
            errors.append(f"{pod}: peer ifindexes do not match")
    return errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--prefix", default="lrcb")
    ap.add_argument("--teardown", action="store_true", help="delete the namespaces when done")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_collect: needs root (network namespaces)", file=sys.stderr)
        return 2
    if make_netns.is_built(args.prefix, args.pods):
        print(f"reusing {make_netns.node_name(args.prefix)} with {args.pods} pod namespaces")
    else:
        took = make_netns.build(args.prefix, args.pods)
        print(f"built {make_netns.node_name(args.prefix)} with {args.pods} pod namespaces in {took:.1f}s")
    total_ns = len(os.listdir(make_netns.NETNS_DIR))
    tmp = Path(tempfile.mkdtemp(prefix="lrcb-snap-"))
    try:
        walls, rss = [], []
        for _ in range(args.repeat):
            wall, maxrss, code = run_once(make_netns.node_name(args.prefix), tmp)
            if code != 0:
                print(f"collect exited {code}", file=sys.stderr)
                return 1
            walls.append(wall)
            rss.append(maxrss)
        floor = []
        for _ in range(3):
            t0 = time.monotonic()
            subprocess.run(["ip", "-all", "netns", "exec", "ip", "-j", "-d", "addr", "show"], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            floor.append(time.monotonic() - t0)
        errors = check(tmp, args.prefix, args.pods)
        node = json.loads((tmp / "snapshot.json").read_text())["nodes"][0]
        per = {c["name"]: c["duration_s"] for c in node["collectors"] if c.get("duration_s") is not None}
        print(f"namespaces read: {len(node['netns'])} ({total_ns} under /var/run/netns, {args.pods} are this "
              f"benchmark's pods); links: {sum(len(ns['links']) for ns in node['netns'])}")
        print(f"floor: ip -all netns exec ip -j -d addr show ({total_ns} namespaces): best {min(floor):.2f}s")
        print(f"collect --local: best {min(walls):.2f}s, median {statistics.median(walls):.2f}s "
              f"over {args.repeat} runs (target <= 0.6 s) = {min(walls) / min(floor):.2f}x the floor; "
              f"peak RSS {max(rss) / 1024:.0f} MB; load average {os.getloadavg()[0]:.1f}")
        print("collectors (last run): " + ", ".join(f"{k} {v:.2f}s" for k, v in per.items()))
        if errors:
            print(f"WRONG: {len(errors)} problems, e.g. {errors[:3]}", file=sys.stderr)
            return 1
        print("snapshot checked: every pod namespace read, every veth pair resolved both ways")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if args.teardown:
            n = make_netns.teardown(args.prefix)
            print(f"deleted {n} namespaces")


if __name__ == "__main__":
    sys.exit(main())
