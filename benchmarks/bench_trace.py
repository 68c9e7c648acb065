"""Benchmark: `labreport trace` on the 10,000-service × 3-endpoint iptables rule set.

    python3 benchmarks/bench_trace.py [--services 10000] [--endpoints 3] [--traces 200]

1. ``gen_iptables.render`` writes the kube-proxy v1.28-style dump (154,043 lines); it is
   parsed into a one-node snapshot (the node's address on eth0, no pods: rules alone) and
   its Services decoded once (what ``labreport trace`` does after loading a snapshot).
2. ``build_world`` (the datapath model) timed; then single traces of random Services'
   cluster IPs, from a pod address and from outside: the first (which compiles the chains it
   walks) and the median/max of the rest; every trace is checked against the generator's
   truth (the DNAT targets are the Service's endpoints, shares 1/3).
3. ``trace --all`` (every front: cluster IPs and node ports, from a pod and from outside),
   checked to cover every front.

4. Replies (``trace`` prints each delivered outcome's way back; ``--all --replies``): the
   rules-alone node delivers nothing, so they are timed on the oracle lab's recorded
   snapshot (tests/fixtures/trace-reply/iptables-one-node), a trace with and without them.

Floor, measured in the same run: one pass over all 154,043 rules doing a dict lookup per
rule — the least any interpreter that looks at every rule once must spend.
Targets (issue 11): one trace ≤ 50 ms after load; ``--all`` ≤ 5 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.gen_iptables import bench_services, render  # noqa: E402

from labreport.analysis.model import Analysis, NodeAnalysis  # noqa: E402
from labreport.analysis.services import decode_services  # noqa: E402
from labreport.analysis.trace import Flow, build_world, run_flow  # noqa: E402
from labreport.analysis.trace.fronts import all_fronts  # noqa: E402
from labreport.parsers import iptables_save  # noqa: E402
from labreport.snapshot import Address, Link, NetNamespace, NodeSnapshot, Snapshot  # noqa: E402

NODE_IP = "192.168.56.10"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--traces", type=int, default=200)
    args = ap.parse_args(argv)

    text, truth = render(bench_services(args.services, args.endpoints))
    ipt = iptables_save.parse(text, source="bench").value
    n_rules = sum(len(c.rules) for t in ipt.tables.values() for c in t.chains.values())
    ns = NetNamespace(name="node", kind="node", links=[
        Link(ifindex=1, name="lo", addresses=[Address(family="inet", local="127.0.0.1", prefixlen=8)]),
        Link(ifindex=2, name="eth0", addresses=[Address(family="inet", local=NODE_IP, prefixlen=24)])])
    node = NodeSnapshot(name="node", iptables=ipt, netns=[ns])
    snap = Snapshot(nodes=[node])
    t0 = time.perf_counter()
    mode, svcs, masq = decode_services(node)
    analysis = Analysis(nodes=[NodeAnalysis(node="node", services=svcs, proxy_mode=mode)])
    t_decode = time.perf_counter() - t0

    # floor: one dict lookup per rule, over every rule
    t0 = time.perf_counter()
    seen: dict[str, int] = {}
    for t in ipt.tables.values():
        for c in t.chains.values():
            for r in c.rules:
                seen.get(r.spec[:24])
    t_floor = time.perf_counter() - t0

    t0 = time.perf_counter()
    world = build_world(snap, analysis)
    t_world = time.perf_counter() - t0
    import gc

    gc.freeze()  # as snapshot.load does: the loaded snapshot stays for the whole command

    by_name = {t["name"]: t for t in truth}
    rng = random.Random(11)
    sample = rng.sample(svcs, min(args.traces, len(svcs)))
    times: list[float] = []
    errors: list[str] = []
    for i, rec in enumerate(sample):
        src = "10.250.0.5" if i % 2 else "203.0.113.7"
        t0 = time.perf_counter()
        res = run_flow(world, Flow(src=src, dst=rec.cluster_ip or "", dport=rec.port or 0, entry_node="node",
                                   entry="outside"))
        times.append(time.perf_counter() - t0)
        want = sorted(e["address"] for e in by_name[rec.name]["endpoints"])
        got = sorted(o.dnat or "-" for o in res.outcomes)
        if got != want or any(abs(o.probability - 1 / len(want)) > 1e-6 for o in res.outcomes):
            errors.append(f"{rec.name}: {got} != {want}")
    first, rest = times[0], times[1:] or times

    t0 = time.perf_counter()
    rows = all_fronts(world, analysis, pod_ip="10.250.0.5")
    t_all = time.perf_counter() - t0
    fronts = sum(1 + (1 if s.node_port else 0) for s in svcs) * 2
    if len(rows) != fronts:
        errors.append(f"--all: {len(rows)} rows, expected {fronts}")
    bad_rows = [r for r in rows if "unknown" in r.summary and "→" not in r.summary]
    if bad_rows:
        errors.append(f"--all: {len(bad_rows)} fronts without a DNAT, e.g. {bad_rows[0].front}: {bad_rows[0].summary}")

    # replies: the rules-alone node above delivers nothing (no routes, no pods), so the way
    # back is timed on the oracle lab's recorded snapshot (pods, routes, veths, rules)
    t_reply, n_reply, t_plain, t_all_r, t_all_p, n_all = _replies(errors)

    print(f"rule set: {n_rules:,} rules ({text.count(chr(10)):,} lines), {len(svcs):,} service ports")
    print(f"floor: one dict lookup per rule over all rules: {t_floor * 1000:.1f} ms")
    print(f"decode Services once: {t_decode * 1000:.0f} ms; build the datapath model (compiles the chains of more "
          f"than 32 rules): {t_world * 1000:.0f} ms")
    print(f"one trace (cluster IP, from a pod address / from outside, {len(times)} traces): first {first * 1000:.1f} ms "
          f"(compiles the short chains it walks), then median {statistics.median(rest) * 1000:.2f} ms, "
          f"max {max(rest) * 1000:.2f} ms (target ≤ 50 ms)")
    print(f"trace --all: {len(rows):,} fronts (cluster IPs and node ports, from a pod and from outside) in "
          f"{t_all:.2f} s (target ≤ 5 s)")
    print(f"with replies (tests/fixtures/trace-reply/iptables-one-node, {n_reply} delivered outcomes): one trace "
          f"and its replies median {t_reply * 1000:.2f} ms, the same trace without them {t_plain * 1000:.2f} ms "
          f"(target ≤ 50 ms); trace --all --replies {n_all} fronts {t_all_r * 1000:.1f} ms, --all "
          f"{t_all_p * 1000:.1f} ms")
    if errors:
        print("WRONG:", *errors[:10], sep="\n  ")
        return 1
    print("every trace matched the generator's truth")
    return 0


def _replies(errors: list[str]) -> tuple[float, int, float, float, float, int]:
    import gzip
    import json

    from labreport import snapshot as snapmod
    from labreport.analysis import analyze
    from labreport.analysis.trace.resolve import make_flow

    fix = ROOT / "tests" / "fixtures" / "trace-reply" / "iptables-one-node.json.gz"
    snap = snapmod.from_dict(json.loads(gzip.decompress(fix.read_bytes())))
    analysis = analyze(snap)
    world = build_world(snap, analysis)
    flow, _ = make_flow(world, analysis, "10.244.65.20", "10.96.0.10:80", "tcp", None)
    with_r: list[float] = []
    without: list[float] = []
    n = 0
    for _ in range(50):
        t0 = time.perf_counter()
        res = run_flow(world, flow, replies=True)
        with_r.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_flow(world, flow)
        without.append(time.perf_counter() - t0)
        n = sum(1 for o in res.outcomes if o.reply is not None)
        if any(o.reply is None or o.reply.result != "delivered" for o in res.outcomes):
            errors.append("replies: an outcome of pod-to-clusterip without a delivered reply")
    t0 = time.perf_counter()
    rows = all_fronts(world, analysis, replies=True)
    t_all_r = time.perf_counter() - t0
    t0 = time.perf_counter()
    all_fronts(world, analysis)
    t_all_p = time.perf_counter() - t0
    return statistics.median(with_r), n, statistics.median(without), t_all_r, t_all_p, len(rows)


if __name__ == "__main__":
    sys.exit(main())
