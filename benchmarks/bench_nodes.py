"""Benchmark: collecting two nodes over SSH costs about as much as collecting one.

    sudo python3 benchmarks/bench_nodes.py [--reps 5] [--target 1.3]

Builds the two-node lab (tests/lab/cluster.py: master and worker as network namespaces,
each with its own containerd — the worker also a dockerd — pods, veths, kube-proxy rules
and an sshd on its uplink), then, from inside the master namespace as a student would on a
master, times

    labreport collect --nodes worker        --no-api -q   (one node, the busier one)
    labreport collect --nodes master        --no-api -q   (one node)
    labreport collect --nodes master,worker --no-api -q   (both, in parallel)

and, for reference, each node's ``labreport collect --local`` run directly inside it (no
SSH), alone and both at once: on a shared 2-core machine the two "nodes" compete for the
same cores, which no transport can hide; real nodes are separate machines. ``--reps`` times each, interleaved, and compares the medians: the two-node run must take at
most ``--target`` × the slower one-node run. Exits 1 when it does not. Needs root and the
lab's binaries (containerd, runc, dockerd, sshd).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABREPORT = str(Path(sys.executable).with_name("labreport"))

WRAPPER = """#!/bin/sh
# each lab node's runtime sockets (a real node's are at the default paths)
name=""; prev=""
for a in "$@"; do [ "$prev" = "--name" ] && name="$a"; prev="$a"; done
case "$name" in
{cases}
esac
exec {labreport} "$@"
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--target", type=float, default=1.3)
    args = ap.parse_args()

    from tests.lab.cluster import TwoNodeCluster

    with TwoNodeCluster(overlay="vxlan") as c, tempfile.TemporaryDirectory(prefix="lrbench") as tmp:
        t0 = time.monotonic()
        ct = c.build()
        print(f"lab built in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        cases = []
        for role, t in ct.nodes.items():
            extra = f" --cri-socket {t.containerd_socket}" + (f" --docker-host {t.docker_host}" if t.docker_host else "")
            cases.append(f'  {role}) exec {LABREPORT} "$@"{extra} ;;')
        wrapper = Path(tmp) / "labreport-lab"
        wrapper.write_text(WRAPPER.format(cases="\n".join(cases), labreport=LABREPORT))
        wrapper.chmod(0o755)

        def run(nodes: str) -> float:
            out = Path(tmp) / f"snap-{nodes.replace(',', '-')}"
            argv = ["ip", "netns", "exec", c.ns("master"), LABREPORT, "collect", "--nodes", nodes,
                    "--ssh-config", str(ct.ssh_config), "--remote-command", str(wrapper),
                    "--no-api", "--out", str(out), "-q"]
            s = time.monotonic()
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            took = time.monotonic() - s
            if cp.returncode != 0:
                raise SystemExit(f"collect --nodes {nodes} failed ({cp.returncode}): {cp.stderr}")
            return took

        def direct(role: str) -> float:
            """The same collector without SSH, inside the node (what SSH adds is the difference)."""
            argv = ["ip", "netns", "exec", c.ns(role), str(wrapper), "collect", "--local", "--out", "-", "--name", role]
            s = time.monotonic()
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            if cp.returncode != 0:
                raise SystemExit(f"collect --local in {role} failed: {cp.stderr}")
            return time.monotonic() - s

        def direct_both() -> float:
            """Both nodes' collectors at once, no SSH: what this machine's cores allow at best."""
            argvs = [["ip", "netns", "exec", c.ns(r), str(wrapper), "collect", "--local", "--out", "-", "--name", r]
                     for r in ("master", "worker")]
            s = time.monotonic()
            procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for a in argvs]
            for p in procs:
                p.wait(300)
            return time.monotonic() - s

        run("master,worker")  # warm-up: page cache, host keys, first imports
        times: dict[str, list[float]] = {"worker": [], "master": [], "master,worker": []}
        plain: dict[str, list[float]] = {"worker": [], "master": [], "both at once": []}
        for _ in range(args.reps):
            for nodes in times:
                times[nodes].append(run(nodes))
            for role in ("worker", "master"):
                plain[role].append(direct(role))
            plain["both at once"].append(direct_both())
        for role, v in plain.items():
            print(f"collect --local in {role:<12} (no SSH) median {statistics.median(v):.2f}s  best {min(v):.2f}s")
        pm = {k: statistics.median(v) for k, v in plain.items()}
        print(f"no SSH: both at once / one node = {pm['both at once'] / max(pm['worker'], pm['master']):.2f}x "
              "(the floor this machine's cores and load set for any parallel collection)")
        med = {k: statistics.median(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"collect --nodes {k:<14} median {med[k]:.2f}s  best {best[k]:.2f}s  ({', '.join(f'{x:.2f}' for x in v)})")
        ratios = {}
        for label, stat in (("median", med), ("best", best)):
            one = max(stat["worker"], stat["master"])
            ratios[label] = stat["master,worker"] / one
            print(f"{label}: two nodes / one node = {stat['master,worker']:.2f}s / {one:.2f}s = {ratios[label]:.2f}x "
                  f"(target <= {args.target}x)")
        # the median decides; other processes on a shared machine only ever add time
        return 0 if ratios["median"] <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
