"""The checks of tests/test_trace_kernel_*.py: ``labreport trace`` against the kernel.

Both modules get their lab and their per-flow cases from here (the end of this file):
``labs = labs_fixture(MODE)`` and the four ``test_*`` functions imported by name, which
pytest collects in each module as that module's own tests, over that module's labs.

For a lab (tests.lab.svclab) the snapshot is what ``labreport collect --local`` records in
each node namespace (merged into one snapshot of the cluster), collected before the kernel
trace rules are added. For each flow:

(a) ``check_conntrack``: real connections from the source namespace; conntrack in every
    node namespace says which endpoints were reached and whether the source was
    rewritten. The trace must predict the same set of endpoints, the same masquerade bit
    per endpoint, probabilities the spread fits, and — for a dropped or rejected flow — no
    established connection and the client error that goes with it (timeout / refused).
(b) ``check_kernel_trace``: the kernel's own rule trace of the first packet must equal the
    netfilter hops of the outcome the kernel took (same node, table, chain, rule index,
    rule text and verdict, in order). The kernel prints matched rules and base-chain
    policies only, so a trace hop for a user chain's fall-through is not compared.
(c) ``check_reply`` (within (b), on the same connection): for a delivered outcome, its
    ``reply`` — the client's answer, the kernel's rule trace of the SYN-ACK, and every node's
    conntrack entry (original and reply tuples) — against what the kernel did.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

from labreport import snapshot as snapmod
from tests.lab import ktrace
from tests.lab.cli import labreport_argv
from tests.lab.netns import in_netns
from tests.lab.proc import run
from tests.lab.svclab import FLOW_IDS, Flow, HairpinLab, ServiceLab

TRIES = 30
IPT_BASE = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH") or root
    return env


@dataclass
class OracleLab:
    lab: ServiceLab
    snapshot_dir: Path
    traces: dict[str, Any] = field(default_factory=dict)  # flow id -> trace JSON or error text
    base_chains: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # node -> {(table, chain)}


def collect_snapshot(lab: ServiceLab, out: Path) -> Path:
    """``labreport collect --local`` inside every node namespace, merged into one snapshot."""
    nodes = []
    for n in lab.node_list:
        cp = subprocess.run(in_netns(n.ns, *labreport_argv(), "collect", "--local", "--name", n.name, "--no-api",
                                     "-q", "--out", "-"), capture_output=True, text=True, timeout=120, env=_env())
        assert cp.returncode == 0, f"collect in {n.ns} failed: {cp.stderr[-2000:]}"
        nodes.append(snapmod.from_dict(json.loads(cp.stdout)).nodes[0])
    snap = snapmod.Snapshot(title=f"oracle lab {lab.tag} ({lab.mode}, {lab.nodes} node(s))",
                            origin_note="tests/lab/svclab.py, collected live in the lab's node namespaces",
                            nodes=nodes)
    snapmod.save(snap, out)
    return out


def build(mode: str, nodes: int, tmp: Path) -> OracleLab:
    lab = ServiceLab(mode=mode, nodes=nodes).build()  # type: ignore[arg-type]
    try:
        snap = collect_snapshot(lab, tmp / f"snap-{lab.tag}")
        lab.enable_kernel_trace()
        ol = OracleLab(lab, snap)
        for n in lab.node_list:
            if mode == "iptables":
                ol.base_chains[n.name] = {(t, c) for t in ("nat", "filter", "mangle", "raw") for c in IPT_BASE}
            else:
                ol.base_chains[n.name] = {(t, c) for t in ("kube-proxy", "lab-policy", "lab-nat")
                                          for c in ktrace.base_chains(n.ns, "ip", t)}
        return ol
    except BaseException:
        lab.close()
        raise


def trace(ol: OracleLab, flow: Flow) -> dict[str, Any]:
    """``labreport trace SNAPSHOT --from … --to … --json`` (cached per flow); fails the test
    with the command's own message when it does not answer."""
    if flow.id not in ol.traces:
        argv = [*labreport_argv(), "trace", str(ol.snapshot_dir), *flow.trace_args(), "--json"]
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=_env())
        try:
            data = json.loads(cp.stdout) if cp.returncode == 0 else None
        except ValueError:
            data = None
        ol.traces[flow.id] = data if data is not None else (
            f"`{' '.join(argv[-9:])}` exit {cp.returncode}: {cp.stderr.strip()[-1500:] or cp.stdout[-1500:]}")
    got = ol.traces[flow.id]
    assert isinstance(got, dict), f"the trace gave no answer: {got}"
    assert isinstance(got.get("outcomes"), list) and got["outcomes"], f"no outcomes in {json.dumps(got)[:1500]}"
    return got


def _delivered(outcomes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        if o.get("result") == "delivered" and o.get("endpoint"):
            prev = out.get(o["endpoint"])
            if prev is None:
                out[o["endpoint"]] = dict(o)
            else:  # the same endpoint through two branches (e.g. affinity + random): shares add up
                prev["probability"] = prev.get("probability", 0) + o.get("probability", 0)
    return out


def _summary(outcomes: list[dict[str, Any]]) -> str:
    return "; ".join(f"{o.get('result')} {o.get('endpoint')} p={o.get('probability')} masq={o.get('masquerade')}"
                     for o in outcomes)


# ------------------------------------------------------------------------------ (a)


def check_conntrack(ol: OracleLab, flow: Flow) -> None:
    t = trace(ol, flow)
    outcomes = t["outcomes"]
    lab = ol.lab
    if flow.affinity:
        lab.reset_affinity()
    tries = TRIES if flow.expect == "delivered" else 2
    obs = ktrace.observe(lab, flow, tries)
    seen = obs.endpoints()
    where = f"{flow.id}: kernel saw {dict(seen)} (curl exit codes {dict(obs.curl_codes)}); trace: {_summary(outcomes)}"
    results = {o.get("result") for o in outcomes}
    if not seen:
        # the kernel established nothing: the trace must say dropped or rejected, which
        # the client's error tells apart (refused: an ICMP/RST came back; timeout: silence)
        assert obs.ok == 0, where
        kernel = "rejected" if obs.curl_codes.get(7) else "dropped" if obs.curl_codes.get(28) else "?"
        assert kernel == flow.expect, f"the lab itself misbehaves: {where}"
        assert results == {kernel}, where
        return
    assert obs.ok == obs.tries, f"some requests failed: {where}"
    assert flow.expect == "delivered", f"the lab itself misbehaves: {where}"
    predicted = _delivered(outcomes)
    assert results == {"delivered"}, where
    assert set(seen) <= set(predicted), f"the kernel reached endpoints the trace does not predict: {where}"
    masq = obs.masquerade_by_endpoint()
    for ep, bits in masq.items():
        assert bits == {bool(predicted[ep].get("masquerade"))}, f"masquerade differs for {ep}: kernel {bits}; {where}"
    total_p = sum(float(o.get("probability", 0)) for o in predicted.values())
    assert abs(total_p - 1.0) < 1e-6, f"probabilities add up to {total_p}: {where}"
    n = sum(seen.values())
    if flow.affinity:
        # ClientIP affinity: one client sticks to the endpoint its first connection got
        assert len(seen) == 1, f"affinity: one client reached several endpoints: {where}"
        return
    for ep, o in predicted.items():
        p = float(o.get("probability", 0))
        k = seen.get(ep, 0)
        if p >= 0.2:
            assert k >= 1, f"{ep} (p={p}) never reached in {n} tries: {where}"
        sd = math.sqrt(n * p * (1 - p))
        assert abs(k - n * p) <= max(4.5 * sd, 3), f"{ep}: {k} of {n}, trace says p={p}: {where}"


# ------------------------------------------------------------------------------ (b)


def _trace_hops(ol: OracleLab, outcome: dict[str, Any]) -> dict[str, list[tuple]]:
    per: dict[str, list[tuple]] = {}
    for h in outcome.get("hops", []):
        if h.get("kind") != "netfilter":
            continue
        node = h.get("node")
        table, chain = h.get("table"), h.get("chain")
        if h.get("rule_index") is None and (table, chain) not in ol.base_chains.get(node, set()):
            continue  # a user chain's end: the kernel does not print it
        per.setdefault(node, []).append(
            (table, chain, h.get("rule_index"), ktrace.verdict_class(h.get("verdict"), h.get("rule"), kernel=False),
             ktrace._norm_rule(h["rule"]) if h.get("rule") else None))
    return per


def _kernel_hops(kt: dict[str, list[ktrace.KernelHop]]) -> dict[str, list[tuple]]:
    return {node: [(h.table, h.chain, h.rule_index, h.verdict, h.rule) for h in hops] for node, hops in kt.items()}


def _fmt(per: dict[str, list[tuple]]) -> str:
    lines = []
    for node, hops in per.items():
        for h in hops:
            lines.append(f"  {node} {h[0]}:{h[1]} #{h[2]} {h[3]} | {(h[4] or '')[:110]}")
    return "\n".join(lines)


# each connection picks an endpoint at random: with half of them remote, 6 tries missed the
# other node once in 64 runs; 16 tries miss once in ~65,000
CROSS_TRIES = 16


def check_kernel_trace(ol: OracleLab, flow: Flow) -> None:
    """(b) for one connection; a flow whose endpoints span nodes is traced again (at most
    CROSS_TRIES times) until the kernel took a cross-node path, so the other node's hops (after the
    VXLAN) are compared too — every attempt is compared."""
    t = trace(ol, flow)
    spans = len({o.get("node") for o in t["outcomes"] if o.get("result") == "delivered"}) > 1
    for _attempt in range(CROSS_TRIES if spans else 1):
        nodes = _compare_one(ol, flow, t)
        if len(nodes) > 1:
            break
    if spans:
        assert len(nodes) > 1, f"{flow.id}: the kernel never took a cross-node path in {CROSS_TRIES} connections"


def _compare_one(ol: OracleLab, flow: Flow, t: dict[str, Any]) -> set[str]:
    kt, both = ktrace.kernel_trace_both(ol.lab, flow)
    assert kt, f"{flow.id}: the kernel traced nothing: {ol.lab.last_monitor_output}"  # type: ignore[attr-defined]
    kernel = _kernel_hops(kt)
    entry = ol.lab.node_list[0].name if flow.via is None and flow.src_kind != "node" else (flow.via or flow.src)
    dnat = next((h.verdict[5:] for h in kt.get(entry, []) if h.verdict.startswith("dnat ")), None)
    outcomes = t["outcomes"]
    chosen: Optional[dict[str, Any]] = None
    if dnat:
        # the outcome that reached that endpoint, or was rewritten to it and then stopped
        chosen = next((o for o in outcomes if o.get("endpoint") == dnat), None) or next(
            (o for o in outcomes if o.get("dnat") == dnat), None)
        assert chosen is not None, (f"{flow.id}: the kernel DNATed to {dnat}, an endpoint the trace does not "
                                    f"predict: {_summary(outcomes)}")
    else:
        candidates = [o for o in outcomes if o.get("result") in ("dropped", "rejected")] or outcomes
        assert len(candidates) == 1, f"{flow.id}: the kernel did no DNAT; trace: {_summary(outcomes)}"
        chosen = candidates[0]
    predicted = _trace_hops(ol, chosen)
    assert predicted == kernel, (f"{flow.id}: netfilter hops differ\nkernel:\n{_fmt(kernel)}\n"
                                 f"trace ({chosen.get('result')} {chosen.get('endpoint')}):\n{_fmt(predicted)}")
    if chosen.get("result") == "delivered":
        check_reply(ol, flow, chosen, both)
    return set(kernel)


# ------------------------------------------------------------------------------ (c) the way back


def _tuple(text: str) -> tuple[str, int, str, int]:
    """"10.0.0.1:40000 → 10.96.0.10:80" → ("10.0.0.1", 40000, "10.96.0.10", 80)."""
    a, b = (x.strip() for x in text.split("→"))
    ah, _, ap = a.rpartition(":")
    bh, _, bp = b.rpartition(":")
    return ah, int(ap), bh, int(bp)


def check_reply(ol: OracleLab, flow: Flow, chosen: dict[str, Any], both: ktrace.BothWays) -> None:
    """(c) the same connection's way back: the outcome's ``reply`` against the kernel.

    - the client got an answer exactly when the reply says delivered;
    - the kernel's rule trace of the SYN-ACK, node by node, equals the reply's netfilter hops
      (the nat chains, skipped for an established connection, are in neither);
    - each node's conntrack entry equals the one the trace predicts (``reply.conntrack``): the
      original destination, the reply's source (the endpoint) and destination (the source as
      rewritten, or kept), and the client address. The client's port is the kernel's choice
      and a masqueraded one conntrack's (--random-fully): not compared, but an unrewritten
      source must come back to the same port."""
    reply = chosen.get("reply")
    where = f"{flow.id} (endpoint {chosen.get('endpoint')})"
    assert isinstance(reply, dict), f"{where}: a delivered outcome without its reply: {json.dumps(chosen)[:800]}"
    answered = bool(both.curl) and all(rc == 0 for rc, _ in both.curl)
    assert answered == (reply["result"] == "delivered"), (
        f"{where}: the client {'got' if answered else 'did not get'} an answer (curl {both.curl}); the reply says "
        f"{reply['result']}: {reply.get('reason')}")
    if answered:
        predicted = _trace_hops(ol, reply)
        kernel = _kernel_hops(both.reply)
        assert predicted == kernel, (f"{where}: the reply's netfilter hops differ\nkernel (SYN-ACK):\n{_fmt(kernel)}\n"
                                     f"trace (reply {reply['src']} → {reply['dst']}):\n{_fmt(predicted)}")
    cts = reply.get("conntrack") or []
    assert cts, f"{where}: the reply names no conntrack entry"
    for c in cts:
        node = c["node"]
        osrc, _osport, odst, odport = _tuple(c["original"])
        rsrc, rsport, rdst, _rdport = _tuple(c["reply"])
        mine = [e for e in both.conntrack.get(node, []) if e.original.dst == odst and e.original.dport == odport
                and e.reply.src == rsrc and e.reply.sport == rsport]
        seen = [(f"{e.original.src}:{e.original.sport} → {e.original.dst}:{e.original.dport}",
                 f"{e.reply.src}:{e.reply.sport} → {e.reply.dst}:{e.reply.dport}", e.state, e.flags)
                for e in both.conntrack.get(node, [])]
        assert len(mine) == 1, f"{where}: {node}: no conntrack entry {c}; the kernel's: {seen}"
        e = mine[0]
        assert e.original.src == osrc and e.reply.dst == rdst, f"{where}: {node}: predicted {c}; kernel: {seen}"
        if "snat" not in (c.get("nat") or ""):
            assert e.reply.dport == e.original.sport, f"{where}: {node}: the source was rewritten: {seen}"
        if answered:
            assert "UNREPLIED" not in e.flags, f"{where}: {node}: answered but unreplied: {seen}"
    last = _tuple(cts[-1]["reply"])
    assert _tuple(f"{reply['src']} → {reply['dst']}") == last, f"{where}: the reply {reply} is not {cts[-1]}"


# ------------------------------------------------------------------------------ observed vs predicted


def check_observed_in_analysis(ol: OracleLab, flow_ids: list[str], tmp: Path, tries: int = 6) -> None:
    """Live collection records conntrack; ``labreport analyze`` puts each front's observed
    connections beside trace's prediction for the same source: they must agree, and the
    observed counts must be the connections really made."""
    lab = ol.lab
    lab.flush_conntrack()
    lab.reset_affinity()
    flows = [f for f in lab.flows if f.id in flow_ids]
    for f in flows:
        answered = ktrace.curl_loop(f.src_ns, f"http://{f.dst}/", tries)
        assert all(rc == 0 for rc, _ in answered), (f.id, answered)
    snap = collect_snapshot(lab, tmp)
    cp = subprocess.run([*labreport_argv(), "analyze", str(snap), "--json"], capture_output=True, text=True,
                        timeout=120, env=_env())
    assert cp.returncode == 0, cp.stderr[-2000:]
    rows = json.loads(cp.stdout).get("observed", [])
    for f in flows:
        src = lab.node(f.src).uplink_ip if f.src_kind == "node" else f.src
        mine = [r for r in rows if r["front"] == f.dst and r["source"] == src]
        assert len(mine) == 1, (f.id, [(r["front"], r["source"]) for r in rows])
        r = mine[0]
        assert r["source_kind"] == f.src_kind if f.src_kind != "external" else r["source_kind"] == "outside", r
        assert sum(o["count"] for o in r["observed"]) == tries, r
        assert r["agrees"] is True, r
        assert {p["endpoint"] for p in r["predicted"]} >= {o["endpoint"] for o in r["observed"]}, r


# ------------------------------------------------------------------------------ the cases of both modes


def labs_fixture(mode: str) -> Callable[..., Any]:
    """The module's ``labs`` fixture: ``labs(nodes)`` builds the lab of 1 or 2 nodes in
    ``mode`` once for the module; every lab is closed (and must close cleanly) at its end."""
    @pytest.fixture(scope="module", name="labs")
    def labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[int], OracleLab]]:
        built: dict[int, OracleLab] = {}

        def get(nodes: int) -> OracleLab:
            if nodes not in built:
                built[nodes] = build(mode, nodes, tmp_path_factory.mktemp(f"oracle-{mode}-{nodes}"))
            return built[nodes]

        yield get
        errors = [e for ol in built.values() for e in ol.lab.close()]
        assert not errors, errors

    return labs


def flow(ol: OracleLab, flow_id: str) -> Flow:
    return next(f for f in ol.lab.flows if f.id == flow_id)


# the flows, by lab (names only: the lab builds them; see tests/lab/svclab.py)
ONE = list(FLOW_IDS[1])
TWO = list(FLOW_IDS[2])


@pytest.mark.parametrize("flow_id", ONE)
def test_one_node_conntrack(labs: Callable[[int], OracleLab], flow_id: str) -> None:
    ol = labs(1)
    check_conntrack(ol, flow(ol, flow_id))


@pytest.mark.parametrize("flow_id", ONE)
def test_one_node_kernel_rule_trace(labs: Callable[[int], OracleLab], flow_id: str) -> None:
    ol = labs(1)
    check_kernel_trace(ol, flow(ol, flow_id))


@pytest.mark.parametrize("flow_id", TWO)
def test_two_nodes_conntrack(labs: Callable[[int], OracleLab], flow_id: str) -> None:
    ol = labs(2)
    check_conntrack(ol, flow(ol, flow_id))


@pytest.mark.parametrize("flow_id", TWO)
def test_two_nodes_kernel_rule_trace(labs: Callable[[int], OracleLab], flow_id: str) -> None:
    ol = labs(2)
    check_kernel_trace(ol, flow(ol, flow_id))


# ------------------------------------------------------------------------------ the broken reply, for real


def hairpin_fixture(mode: str) -> Callable[..., Any]:
    """The module's ``hairpin`` fixture: a HairpinLab (tests/lab/svclab.py) in ``mode``, its
    node collected twice — with net.bridge.bridge-nf-call-iptables 0 and 1 — before the
    kernel trace rules go in: {0: OracleLab, 1: OracleLab} over the same lab."""
    @pytest.fixture(scope="module", name="hairpin")
    def hairpin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, OracleLab]]:
        lab = HairpinLab(mode=mode).build()  # type: ignore[arg-type]
        try:
            tmp = tmp_path_factory.mktemp(f"hairpin-{mode}")
            labs: dict[int, OracleLab] = {}
            for value in (0, 1):
                lab.set_bridge_nf(value)
                labs[value] = OracleLab(lab, collect_snapshot(lab, tmp / f"snap-bridge-nf-{value}"))
            lab.enable_kernel_trace()
            for ol in labs.values():
                n = lab.node_list[0]
                ol.base_chains[n.name] = (
                    {(t, c) for t in ("nat", "filter", "mangle", "raw") for c in IPT_BASE} if mode == "iptables"
                    else {("kube-proxy", c) for c in ktrace.base_chains(n.ns, "ip", "kube-proxy")})
            yield labs
        finally:
            errors = lab.close()
        assert not errors, errors

    return hairpin


def check_hairpin(ol: OracleLab, bridge_nf: int) -> None:
    """The client pod and the endpoint share cni0. The first packet reaches the endpoint
    either way (its netfilter hops equal the kernel's); the reply is switched on the bridge.
    With bridge-nf-call-iptables=0 the trace must say the reply is dropped because it
    bypasses n1's conntrack entry, and the kernel must agree: the client gets no answer and
    its kernel sends a RST (TCP OutRsts grows), the SYN-ACK meets no netfilter hook, and n1's
    entry stays [UNREPLIED] SYN_SENT with the reply tuple the trace predicted. With 1 the reply passes br_netfilter and conntrack: an
    answer, and check_reply compares it all."""
    lab = ol.lab
    f = lab.flows[0]
    lab.set_bridge_nf(bridge_nf)
    t = trace(ol, f)
    outcomes = t["outcomes"]
    assert [o["result"] for o in outcomes] == ["delivered"], _summary(outcomes)
    chosen = outcomes[0]
    reply = chosen.get("reply") or {}
    rsts = _tcp_out_rsts(f.src_ns)
    kt, both = ktrace.kernel_trace_both(lab, f)
    rsts = _tcp_out_rsts(f.src_ns) - rsts  # RSTs the client's kernel sent meanwhile
    assert _trace_hops(ol, chosen) == _kernel_hops(kt), f"first packet:\n{_fmt(_kernel_hops(kt))}"
    check_reply(ol, f, chosen, both)  # the answer, the SYN-ACK's hops, conntrack's tuples
    n1 = lab.node_list[0].name
    web, vip = lab.pod("lab/web-0").ip, f.dst_ip
    if bridge_nf == 0:
        assert reply["result"] == "dropped", reply
        assert f"reply bypasses the conntrack entry on {n1} (client sees {web}, expected {vip})" in reply["reason"]
        assert reply["seen_src"] == f"{web}:80" and reply["expected_src"] == f"{vip}:80", reply
        assert not [h for h in reply["hops"] if h["kind"] == "netfilter"], "a bridged frame met netfilter?"
        assert both.reply == {}, f"the kernel traced the SYN-ACK: {_fmt(_kernel_hops(both.reply))}"
        assert all(rc == 28 for rc, _ in both.curl), both.curl  # curl: timed out, never connected
        assert rsts >= 1, "the client's kernel sent no RST for the SYN-ACK it did not expect"
        (e,) = [e for e in both.conntrack.get(n1, []) if e.original.dst == vip]
        assert e.state == "SYN_SENT" and "UNREPLIED" in e.flags, e
        assert (e.reply.src, e.reply.dst) == (web, f.src), e
    else:
        assert reply["result"] == "delivered", reply
        assert reply["seen_src"] == f"{vip}:80", reply
        assert both.reply.get(n1), "the kernel traced no SYN-ACK hop"
        assert rsts == 0, f"the client's kernel sent {rsts} RST(s) on a connection that worked"


def _tcp_out_rsts(ns: str) -> int:
    """The namespace's TCP OutRsts counter (/proc/net/snmp: a header line, then the values)."""
    lines = [x.split() for x in run(in_netns(ns, "cat", "/proc/net/snmp")).stdout.splitlines() if x.startswith("Tcp:")]
    return int(dict(zip(lines[0], lines[1]))["OutRsts"])


def test_hairpin_reply_broken_without_br_netfilter(hairpin: dict[int, OracleLab]) -> None:
    check_hairpin(hairpin[0], 0)


def test_hairpin_reply_with_br_netfilter(hairpin: dict[int, OracleLab]) -> None:
    check_hairpin(hairpin[1], 1)
