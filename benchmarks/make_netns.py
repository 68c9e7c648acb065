"""Build (once) a simulated node for the collect benchmark: a node namespace with a bridge
and N pod namespaces, each wired by a veth pair (pod side ``eth0`` with an address and a
default route, host side ``vethcbNNN`` enslaved to the bridge) — the shape CNI's bridge
plugin leaves on a node.

    python3 benchmarks/make_netns.py [--pods 200] [--prefix lrcb]   # build or reuse
    python3 benchmarks/make_netns.py --teardown [--prefix lrcb]     # delete everything

Everything lives in namespaces of its own (``<prefix>node``, ``<prefix>-pNNN``); nothing is
added to the root namespace. Re-running with the namespaces present reuses them (creating
200 namespaces takes a few seconds). Needs root and iproute2.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

NETNS_DIR = Path("/var/run/netns")


def node_name(prefix: str) -> str:
    return f"{prefix}node"


def pod_name(prefix: str, i: int) -> str:
    return f"{prefix}-p{i:03d}"


def _ip(*args: str, stdin: str | None = None) -> None:
    res = subprocess.run(["ip", *args], input=stdin, text=True, capture_output=True)
    if res.returncode != 0:
        raise SystemExit(f"ip {' '.join(args)} failed: {res.stderr.strip()}")


def existing(prefix: str) -> list[str]:
    """This benchmark's namespaces only: <prefix>node and <prefix>-pNNN."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir()
                  if p.name == node_name(prefix) or p.name.startswith(f"{prefix}-p"))


def is_built(prefix: str, pods: int) -> bool:
    have = set(existing(prefix))
    want = {node_name(prefix)} | {pod_name(prefix, i) for i in range(pods)}
    return want <= have


def build(prefix: str, pods: int) -> float:
    start = time.monotonic()
    node = node_name(prefix)
    if node not in existing(prefix):
        _ip("netns", "add", node)
        _ip("-n", node, "-batch", "-", stdin="\n".join([
            "link set lo up",
            "link add cni0 type bridge",
            "addr add 10.244.0.1/16 dev cni0",
            "link set cni0 up",
        ]) + "\n")
    have = set(existing(prefix))
    todo = [i for i in range(pods) if pod_name(prefix, i) not in have]
    if todo:
        _ip("-batch", "-", stdin="".join(f"netns add {pod_name(prefix, i)}\n" for i in todo))
        _ip("-n", node, "-batch", "-", stdin="".join(
            f"link add vethcb{i:03d} type veth peer name eth0 netns {pod_name(prefix, i)}\n"
            f"link set vethcb{i:03d} master cni0 up\n" for i in todo))
        for i in todo:
            addr = f"10.244.{1 + i // 250}.{2 + i % 250}/16"
            _ip("-n", pod_name(prefix, i), "-batch", "-", stdin=(
                "link set lo up\n"
                f"addr add {addr} dev eth0\n"
                "link set eth0 up\n"
                "route add default via 10.244.0.1 dev eth0\n"))
    return time.monotonic() - start


def teardown(prefix: str) -> int:
    names = existing(prefix)
    pods = [n for n in names if n != node_name(prefix)]
    if pods:
        subprocess.run(["ip", "-batch", "-"], input="".join(f"netns del {n}\n" for n in pods),
                       text=True, capture_output=True)
    if node_name(prefix) in names:
        subprocess.run(["ip", "netns", "del", node_name(prefix)], capture_output=True)
    return len(names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=200)
    ap.add_argument("--prefix", default="lrcb", help="namespace name prefix (default lrcb)")
    ap.add_argument("--teardown", action="store_true", help="delete the namespaces and exit")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("make_netns: needs root (creates network namespaces)", file=sys.stderr)
        return 2
    if args.teardown:
        n = teardown(args.prefix)
        print(f"deleted {n} namespaces with prefix {args.prefix}")
        return 0
    if is_built(args.prefix, args.pods):
        print(f"reusing {node_name(args.prefix)} with {args.pods} pod namespaces")
        return 0
    took = build(args.prefix, args.pods)
    print(f"built {node_name(args.prefix)} with {args.pods} pod namespaces in {took:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
