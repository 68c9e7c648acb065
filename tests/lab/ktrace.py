"""The kernel as the oracle: what really happened to a lab flow.

- ``observe(...)``: real connections from inside the source namespace (curl, bounded count
  and time), then each node's conntrack table (labreport.parsers.conntrack): the reply's
  source is the endpoint reached, a reply destination other than the original source is
  masquerade.
- ``kernel_trace(...)``: the kernel's own rule trace of the first packet (the SYN) in every
  node: ``xtables-monitor --trace`` (iptables, nf_tables backend) or ``nft monitor trace``,
  run in the background with a timeout; parsed into :class:`KernelHop` (table, chain, rule
  index — from the rule handle or the rule's text in ``nft -a list table`` — rule text,
  verdict).
- ``verdict_class``: the trace's and the kernel's verdict spellings mapped to one form.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from labreport.parsers import conntrack as conntrack_parser
from labreport.snapshot import ConntrackEntry
from tests.lab.netns import in_netns
from tests.lab.proc import run
from tests.lab.svclab import Flow, ServiceLab

# ------------------------------------------------------------------ traffic + conntrack


@dataclass
class Observation:
    tries: int
    ok: int  # requests answered by an httpd
    curl_codes: Counter = field(default_factory=Counter)
    # per node: conntrack entries of this flow (original destination = the flow's)
    entries: dict[str, list[ConntrackEntry]] = field(default_factory=dict)

    def endpoints(self, node: Optional[str] = None) -> Counter:
        c: Counter = Counter()
        for n, es in self.entries.items():
            if node is None or n == node:
                for e in es:
                    c[e.endpoint] += 1
        return c

    def masquerade_by_endpoint(self) -> dict[str, set[bool]]:
        out: dict[str, set[bool]] = {}
        for es in self.entries.values():
            for e in es:
                out.setdefault(e.endpoint, set()).add(e.snat)
        return out


def curl_loop(src_ns: str, url: str, count: int, timeout_s: float = 1.5) -> list[tuple[int, str]]:
    """``count`` sequential requests inside ``src_ns`` in one shell; (exit code, body) each."""
    script = (f'for i in $(seq {count}); do out=$(curl -s -m {timeout_s} --connect-timeout {timeout_s} "{url}"); '
              'echo "RC=$? $out"; done')
    cp = run(in_netns(src_ns, "sh", "-c", script), timeout=count * (timeout_s + 2) + 10, check=False)
    res = []
    for line in cp.stdout.splitlines():
        m = re.match(r"RC=(\d+) ?(.*)$", line)
        if m:
            res.append((int(m.group(1)), m.group(2)))
    return res


def conntrack_of(node_ns: str) -> list[ConntrackEntry]:
    cp = run(in_netns(node_ns, "conntrack", "-L", "-p", "tcp", "-o", "extended"), check=False)
    if not cp.stdout.strip():
        return []
    return conntrack_parser.parse(cp.stdout, source=node_ns).value


def observe(lab: ServiceLab, flow: Flow, count: int) -> Observation:
    lab.flush_conntrack()
    results = curl_loop(flow.src_ns, f"http://{flow.dst}/", count)
    obs = Observation(tries=len(results), ok=sum(1 for rc, body in results if rc == 0 and body.startswith("pod ")))
    obs.curl_codes.update(rc for rc, _ in results)
    for n in lab.node_list:
        entries = [e for e in conntrack_of(n.ns)
                   if e.original.dst == flow.dst_ip and e.original.dport == flow.dst_port
                   and ("ASSURED" in e.flags or e.state in ("ESTABLISHED", "TIME_WAIT", "FIN_WAIT", "CLOSE_WAIT",
                                                            "LAST_ACK", "CLOSE"))]
        if entries:
            obs.entries[n.name] = entries
    return obs


# ------------------------------------------------------------------ kernel rule trace


@dataclass(frozen=True)
class KernelHop:
    node: str
    family: str  # ip
    table: str  # nat, filter, kube-proxy, lab-policy …
    chain: str
    rule_index: Optional[int]  # None: policy / chain end
    rule: Optional[str]
    verdict: str  # normalized (verdict_class)
    raw_verdict: str
    flags: str = "syn"  # the traced packet: "syn" (the first packet) or "synack" (its reply)
    ipid: Optional[int] = None  # its IP ID (a retransmitted SYN has another one)


_XT_PACKET_RE = re.compile(r"^PACKET:\s+\d+\s+([0-9a-f]+)\s")
_NFT_FLAGS_RE = re.compile(r"tcp flags == (\S+)")


_IPID_RE = re.compile(r"(?:\bID=|\bip id )(\d+)")


def _ipid_of(text: str) -> Optional[int]:
    m = _IPID_RE.search(text)
    return int(m.group(1)) if m else None


def first_ipid(hops: list[KernelHop]) -> list[KernelHop]:
    """The hops of the first packet's IP ID only: a SYN retransmitted before the client gave
    up (a broken reply, a slow machine) is not the first packet — after the first it meets
    no nat chain (conntrack has the entry), so it does not restart where the first did."""
    if not hops or hops[0].ipid is None:
        return hops
    return [h for h in hops if h.ipid == hops[0].ipid]


def _flags_of(text: str, nft: bool) -> str:
    """"syn" or "synack" from a monitor's packet line (xtables-monitor: ``… SYN ACK``; nft:
    ``tcp flags == syn`` / ``== 0x12``)."""
    if nft:
        m = _NFT_FLAGS_RE.search(text)
        v = m.group(1) if m else ""
        return "synack" if ("ack" in v or v == "0x12") else "syn"
    words = text.split()
    return "synack" if "SYN" in words and "ACK" in words else "syn"


_XT_RE = re.compile(r"^\s*TRACE:\s+(\d+)\s+([0-9a-f]+)\s+([^:\s]+):([^:\s]+):(rule|policy|return):?(0x[0-9a-f]+)?:?"
                    r"(\S*)\s*(.*)$")
_NFT_RE = re.compile(r"^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (.*)$")


def _handles(node_ns: str, family: str, table: str) -> dict[str, list[tuple[int, str]]]:
    """chain -> [(handle, rule text as nft lists it)] in order, from ``nft -a list table``."""
    cp = run(in_netns(node_ns, "nft", "-a", "list", "table", family, table), check=False)
    chains: dict[str, list[tuple[int, str]]] = {}
    cur: Optional[str] = None
    for line in cp.stdout.splitlines():
        s = line.strip()
        m = re.match(r"^chain (\S+) \{", s)
        if m:
            cur = m.group(1)
            chains[cur] = []
            continue
        if s == "}":
            cur = None
            continue
        if cur is None:
            continue
        m = re.match(r"^(.*?)\s*# handle (\d+)$", s)
        if m and not s.startswith(("type ", "policy ")) and " hook " not in s:
            chains[cur].append((int(m.group(2)), m.group(1).strip()))
    return chains


def base_chains(node_ns: str, family: str, table: str) -> set[str]:
    """The chains of ``table`` hooked into netfilter (``type … hook …``)."""
    cp = run(in_netns(node_ns, "nft", "list", "table", family, table), check=False)
    out: set[str] = set()
    cur: Optional[str] = None
    for line in cp.stdout.splitlines():
        s = line.strip()
        m = re.match(r"^chain (\S+) \{", s)
        if m:
            cur = m.group(1)
        elif cur and s.startswith("type ") and " hook " in s:
            out.add(cur)
    return out


def verdict_class(verdict: Optional[str], rule: Optional[str], *, kernel: bool = True) -> str:
    """One spelling for the trace's and the kernel's verdicts: ``jump X``, ``goto X``,
    ``dnat IP:PORT``, ``masquerade``, ``continue`` (MARK and other non-terminal rules),
    ``accept``, ``drop``, ``reject``, ``return``. The kernel says ``accept`` after a DNAT
    or MASQUERADE and ``drop`` after a REJECT: with ``kernel`` the rule's text tells which;
    the trace's own verdict (``kernel=False``) must say it itself."""
    v = (verdict or "").strip()
    r = rule or ""
    low = v.lower()
    if low.startswith(("jump ", "jump:")):
        return "jump " + v[5:].strip()
    if low.startswith(("goto ", "goto:")):
        return "goto " + v[5:].strip()
    if low.startswith("dnat"):
        return "dnat " + v[4:].strip().replace("to ", "")
    if low in ("accept", "drop") or low.startswith("accept") or low.startswith("drop"):
        m = re.search(r"(?:-j DNAT --to-destination|dnat to) (\S+)", r) if kernel else None
        if m:
            return "dnat " + m.group(1)
        if kernel and re.search(r"-j MASQUERADE|\bmasquerade\b", r):
            return "masquerade"
        if kernel and re.search(r"-j REJECT|\breject\b", r):
            return "reject"
        return "drop" if low.startswith("drop") else "accept"
    if low in ("0xfffffffb", "return"):
        return "return"
    if low.startswith(("mark", "continue")) or low in ("log", "connmark", "trace"):
        return "continue"
    if low.startswith("masquerade"):
        return "masquerade"
    return low


def _norm_rule(text: str) -> str:
    """Rule text without what only says where it is (``-4 -t nat``, ``-A CHAIN``)."""
    text = re.sub(r"^-4 -t \S+ ", "", text.strip())
    text = re.sub(r"^-A \S+ ", "", text)
    return re.sub(r"\s+", " ", text)


def parse_xtables_monitor(text: str, node: str, handles: dict[tuple[str, str], dict[str, list[tuple[int, str]]]]
                          ) -> list[KernelHop]:
    hops: list[KernelHop] = []
    flags: dict[str, str] = {}  # trace id -> the flags of its last packet line
    ipids: dict[str, Optional[int]] = {}
    for line in text.splitlines():
        pm = _XT_PACKET_RE.match(line.strip())
        if pm:
            flags[pm.group(1)] = _flags_of(line, nft=False)
            ipids[pm.group(1)] = _ipid_of(line)
            continue
        m = _XT_RE.match(line)
        if not m:
            continue
        _fam, _id, table, chain, kind, handle, verdict, rule = m.groups()
        rule = _norm_rule(rule) if rule.strip() else None
        idx: Optional[int] = None
        if kind == "rule" and handle:
            chain_rules = handles.get(("ip", table), {}).get(chain, [])
            for i, (h, _t) in enumerate(chain_rules, 1):
                if h == int(handle, 16):
                    idx = i
        raw = verdict if kind == "rule" else f"{kind} {verdict}".strip()
        v = verdict_class(verdict.replace(":", " ", 1) if verdict else kind, rule)
        if kind == "return":
            v = "return"
        hops.append(KernelHop(node, "ip", table, chain, idx if kind == "rule" else None, rule, v, raw,
                              flags.get(_id, "syn"), ipids.get(_id)))
    return hops


def parse_nft_monitor(text: str, node: str, handles: dict[tuple[str, str], dict[str, list[tuple[int, str]]]]
                      ) -> list[KernelHop]:
    hops: list[KernelHop] = []
    flags: dict[str, str] = {}
    ipids: dict[str, Optional[int]] = {}
    for line in text.splitlines():
        m = _NFT_RE.match(line.strip())
        if not m:
            continue
        _id, family, table, chain, rest = m.groups()
        if rest.startswith("packet:"):
            flags[_id] = _flags_of(rest, nft=True)
            ipids[_id] = _ipid_of(rest)
            continue
        fl, ipid = flags.get(_id, "syn"), ipids.get(_id)
        if rest.startswith("rule "):
            mm = re.match(r"^rule (.*) \(verdict ([^)]*)\)$", rest)
            if not mm:
                continue
            rule, verdict = mm.group(1).strip(), mm.group(2).strip()
            idx = None
            for i, (_h, t) in enumerate(handles.get((family, table), {}).get(chain, []), 1):
                if t == rule:
                    idx = i
                    break
            hops.append(KernelHop(node, family, table, chain, idx, rule, verdict_class(verdict, rule), verdict, fl, ipid))
        elif rest.startswith("policy "):
            hops.append(KernelHop(node, family, table, chain, None, None, verdict_class(rest[7:], None), rest, fl, ipid))
        elif rest.startswith(("return", "verdict ")):
            hops.append(KernelHop(node, family, table, chain, None, None, "return", rest, fl, ipid))
    return hops


def first_packet(hops: list[KernelHop]) -> list[KernelHop]:
    """The hops of the first SYN only: a retransmitted SYN starts again at the first base
    chain seen (same table and chain with a policy or rule hop after the last one)."""
    if not hops:
        return hops
    start = (hops[0].table, hops[0].chain)
    out = [hops[0]]
    for h in hops[1:]:
        if (h.table, h.chain) == start and h.rule_index == hops[0].rule_index and h.verdict == hops[0].verdict:
            break
        out.append(h)
    return out


OURS = {"raw", "labtrace"}  # the tables the trace rules live in (not part of the node)


def kernel_trace(lab: ServiceLab, flow: Flow) -> dict[str, list[KernelHop]]:
    """Send one connection and return, per node, the netfilter hops of its first packet."""
    return kernel_trace_both(lab, flow)[0]


@dataclass
class BothWays:
    """One connection seen by the kernel: per node the hops of its first packet (the SYN) and
    of the first reply (the SYN-ACK), the client's result, and each node's conntrack entries
    right after it (reply tuples included)."""

    forward: dict[str, list[KernelHop]]
    reply: dict[str, list[KernelHop]]
    curl: list[tuple[int, str]]
    conntrack: dict[str, list[ConntrackEntry]]


def kernel_trace_both(lab: ServiceLab, flow: Flow) -> tuple[dict[str, list[KernelHop]], BothWays]:
    """One connection, traced both ways (the lab's trace rules mark SYN and SYN-ACK)."""
    lab.flush_conntrack()
    lab.reset_affinity()
    procs: dict[str, subprocess.Popen] = {}
    argv = ["xtables-monitor", "--trace"] if lab.mode == "iptables" else ["nft", "monitor", "trace"]
    for n in lab.node_list:
        procs[n.name] = subprocess.Popen(in_netns(n.ns, "timeout", "8", *argv), stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True)
    outputs: dict[str, str] = {}
    try:
        time.sleep(0.5)  # the monitors subscribe to the trace group
        answered = curl_loop(flow.src_ns, f"http://{flow.dst}/", 1, timeout_s=1.0)
        time.sleep(0.4)
    finally:
        for name, p in procs.items():
            if p.poll() is None:
                p.terminate()
            try:
                outputs[name], _ = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                outputs[name], _ = p.communicate()
    result: dict[str, list[KernelHop]] = {}
    back: dict[str, list[KernelHop]] = {}
    cts: dict[str, list[ConntrackEntry]] = {}
    for n in lab.node_list:
        if lab.mode == "iptables":
            handles = {("ip", t): _handles(n.ns, "ip", t) for t in ("nat", "filter", "mangle")}
            hops = parse_xtables_monitor(outputs[n.name], n.name, handles)
        else:
            handles = {("ip", t): _handles(n.ns, "ip", t) for t in ("kube-proxy", "lab-policy", "lab-nat")}
            hops = parse_nft_monitor(outputs[n.name], n.name, handles)
        ours = [h for h in hops if h.table not in OURS]
        fwd = first_packet(first_ipid([h for h in ours if h.flags == "syn"]))
        rep = first_packet(first_ipid([h for h in ours if h.flags == "synack"]))
        if fwd:
            result[n.name] = fwd
        if rep:
            back[n.name] = rep
        es = conntrack_of(n.ns)
        if es:
            cts[n.name] = es
    lab.last_monitor_output = outputs  # type: ignore[attr-defined]
    return result, BothWays(result, back, answered, cts)
