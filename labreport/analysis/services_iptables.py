"""Decode kube-proxy's iptables-mode rules into one ServiceRecord per Service port.

``decode_iptables(ipt) -> (records, masquerade)``; pure, no I/O.

What kube-proxy writes (pkg/proxy/iptables/proxier.go; v1.28 shapes first, older ones
after) and what each becomes:

nat table
- ``KUBE-SERVICES -d CIP/32 -p P -m comment --comment "ns/svc:port cluster IP" --dport N
  -j KUBE-SVC-H`` → cluster_ip/port/protocol; ``-j KUBE-SVL-H`` instead means
  internalTrafficPolicy Local. ``"… external IP" -j KUBE-EXT-H`` → external_ips,
  ``"… loadbalancer IP" -j KUBE-EXT-H|KUBE-FW-H`` → load_balancer_ips. All chains of one
  service port share the hash H, which is how the pieces are put together.
- ``KUBE-NODEPORTS … --dport N -j KUBE-EXT-H`` (older: ``KUBE-SVC-H``/``KUBE-XLB-H``) →
  node_port.
- ``KUBE-EXT-H``: ``-j KUBE-MARK-MASQ`` then ``-j KUBE-SVC-H`` (policy Cluster), or
  pod/LOCAL rules then ``-j KUBE-SVL-H`` (externalTrafficPolicy Local).
  ``KUBE-XLB-H`` (before v1.24) is the Local variant. ``KUBE-FW-H``: the
  loadBalancerSourceRanges filter in front of KUBE-EXT-H.
- ``KUBE-SVC-H`` / ``KUBE-SVL-H``: rules tried in order; rule i ``-m statistic --mode
  random --probability p_i -j KUBE-SEP-i`` (absent = 1), so its effective share is
  p_i·Π_{j<i}(1−p_j). ``-m recent --name KUBE-SEP-i --rcheck --seconds S --reap`` rules
  before them mean sessionAffinity ClientIP with timeout S. The comment names the
  endpoint in newer versions (``"ns/svc:port -> 10.244.1.3:80"``); kube-proxy drops these
  comments above 1,000 endpoints and old ones never wrote them, so the chain structure
  alone must do.
- ``KUBE-SEP-i``: ``-s IP/32 -j KUBE-MARK-MASQ`` (hairpin), then ``-j DNAT
  --to-destination ip:port`` (with ``-m recent --set`` under session affinity).
- ``KUBE-MARK-MASQ`` (``-j MARK --set-xmark 0x4000/0x4000`` / ``--or-mark``) and
  ``KUBE-POSTROUTING`` (``-m mark ! --mark … -j RETURN``, ``--xor-mark``,
  ``MASQUERADE --random-fully``) → MasqueradeInfo.

filter table
- ``KUBE-SERVICES … "ns/svc:port has no endpoints" -j REJECT`` (cluster IP) and
  ``KUBE-EXTERNAL-SERVICES`` (node port / external IPs) → no_endpoints=True,
  endpoints=[] (kube-proxy writes no nat rules for such a service).
- ``"… has no local endpoints" -j DROP`` → the Local traffic policy with no endpoint on
  this node (a warning on the record says so).

What the input may lack: a ``grep`` paste often has no chain declarations, a service's
KUBE-SVC chain may be missing entirely (then ``endpoints=None``: unknown, with a warning),
or only a KUBE-SVC chain may be there (a record is still made, named from its comments).
Names come from the comments (``ns/svc:port``; ``ns/svc`` for an unnamed port; the old
``"ns/svc:"``); without any comment the record is named after its chain. Each record's
``evidence`` lists the rule lines (``-A CHAIN spec``) it was decoded from.
"""

from __future__ import annotations

import re
import shlex
from typing import Callable, Iterator, Optional

from labreport.analysis.model import Endpoint, MasqueradeInfo, ServiceRecord
from labreport.perf import gc_paused, trusted_factory
from labreport.snapshot import IptChain, Iptables, IptRule, IptTable

# Records are built from values of the right types (10,000 services × 3 endpoints make
# 40,000 models): the trusted constructors skip re-validating them (labreport.perf).


# the Endpoint's fields in the order of its __dict__ (its JSON's): the four a rule gives, then the rest
_new_endpoint: Callable[[str, float, Optional[float], str], Endpoint] = trusted_factory(
    Endpoint, ("address", "probability", "rule_probability", "chain", "weight", "ready", "local", "pod"),
    given=("address", "probability", "rule_probability", "chain"))
_RECORD_FIELDS = (
    "name", "namespace", "service", "port_name", "cluster_ip", "port", "protocol", "node_port", "external_ips",
    "load_balancer_ips", "session_affinity", "affinity_timeout_s", "external_traffic_policy",
    "internal_traffic_policy", "endpoints", "no_endpoints", "mode", "chains", "evidence", "warnings",
)
_new_record: Callable[..., ServiceRecord] = trusted_factory(ServiceRecord, _RECORD_FIELDS)

# The shapes kube-proxy writes for nearly every rule, read with one regular expression each
# instead of a _Rule (a 10,000-service dump has ~110,000 of them). Each shape is narrow
# enough that the general reading of the rule (``_Rule``) gives exactly these groups — the
# comment has no quote or backslash, every other token is fixed or a plain word — so a
# rule either matches and is read the same way, or does not and is read by ``_Rule``.
# ``_FAST[0] = False`` reads every rule the general way (tests compare the two).
_FAST = [True]
# KUBE-SVC/KUBE-SVL: '-m comment --comment "ns/svc:port -> ip:port" [-m statistic --mode
# random --probability P] -j KUBE-SEP-X' → (comment, P or None, target)
_SEP_JUMP = re.compile(
    r'-m comment --comment "([^"\\]*)"(?: -m statistic --mode random --probability ([0-9.]+))? -j (KUBE-SEP-[^\s"]*)'
).fullmatch
# KUBE-SERVICES: '-d IP/32 -p tcp -m comment --comment "ns/svc:port cluster IP" -m tcp --dport N -j KUBE-SVC-H'
# (KUBE-NODEPORTS the same without -d) → (dst or None, proto, comment, dport, target, its prefix)
_ENTRY = re.compile(
    r'(?:-d ([0-9A-Fa-f.:]+/[0-9]+) )?-p ([a-z]+) -m comment --comment "([^"\\]*)" -m [a-z]+ --dport ([0-9]+) '
    r'-j ((KUBE-(?:SVC|SVL|EXT|FW|XLB)-)[^\s"]*)'
).fullmatch

_SERVICE_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-")
_ROLE_OF_PREFIX = {"KUBE-SVC-": "svc", "KUBE-SVL-": "svl", "KUBE-EXT-": "ext", "KUBE-FW-": "fw", "KUBE-XLB-": "xlb"}


# --------------------------------------------------------------------------- one rule


class _Rule:
    """One rule, read with str.find (no tokenizing): the comment and the target at once,
    every other option on demand (a 100,000-rule dump needs only a few per rule)."""

    __slots__ = ("chain", "spec", "target", "comment", "garbled_addr", "head", "tail")

    def __init__(self, chain: str, spec: str):
        self.chain = chain
        self.spec = spec
        self.garbled_addr: Optional[str] = None
        s = " " + spec + " "
        # the comment first: options inside it must not be read as the rule's own
        comment = None
        ci = s.find(" --comment ")
        if ci >= 0:
            start = ci + 11
            if s.startswith('"', start):
                end = s.find('"', start + 1)
                while end > 0 and s[end - 1] == "\\":
                    end = s.find('"', end + 1)
                if end < 0:
                    comment = s[start + 1:].strip()
                    s = s[:ci] + " "
                else:
                    comment = s[start + 1:end]
                    if "\\" in comment:
                        comment = comment.replace('\\"', '"')
                    s = s[:ci] + s[end + 1:]
                    # PDF-garbled form: "ns/svc:port" --> 10.244.1.3:3000
                    gi = s.find(" --> ", ci - 1)
                    if 0 <= gi <= ci + 1:
                        rest = s[gi + 5:].lstrip()
                        addr = rest.split(" ", 1)[0]
                        self.garbled_addr = addr
                        comment = f"{comment} -> {addr}"
                        s = s[:gi] + " " + rest[len(addr):]
            else:
                end = s.find(" ", start)
                comment = s[start:end]
                s = s[:ci] + s[end:]
        elif "'" in spec:  # iptables -S never single-quotes; a hand-edited paste might
            try:
                toks = shlex.split(spec)
                if "--comment" in toks:
                    k = toks.index("--comment")
                    comment = toks[k + 1] if k + 1 < len(toks) else None
            except ValueError:
                pass
        self.comment = comment
        self.tail = s
        ji = s.find(" -j ")
        if ji < 0:
            ji = s.find(" -g ")
        if ji >= 0:
            self.target = s[ji + 4:s.find(" ", ji + 4)]
            self.head = s[:ji + 1]
        else:
            self.target = ""
            self.head = s

    @property
    def dst(self) -> Optional[str]:
        return _value(self.head, " -d ")

    @property
    def src(self) -> Optional[str]:
        return _value(self.head, " -s ")

    @property
    def proto(self) -> Optional[str]:
        return _value(self.head, " -p ")

    @property
    def dport(self) -> Optional[int]:
        v = _value(self.head, " --dport ")
        return int(v) if v is not None and v.isdigit() else None

    @property
    def prob(self) -> Optional[float]:
        v = _value(self.head, " --probability ")
        try:
            return float(v) if v is not None else None
        except ValueError:
            return None

    @property
    def rcheck(self) -> bool:
        return " --rcheck " in self.head

    @property
    def seconds(self) -> Optional[int]:
        v = _value(self.head, " --seconds ")
        return int(v) if v is not None and v.isdigit() else None

    @property
    def rset(self) -> bool:
        return " --set " in self.head

    @property
    def dst_local(self) -> bool:
        return " --dst-type LOCAL " in self.head

    @property
    def to_dest(self) -> Optional[str]:
        return _value(self.tail, " --to-destination ") if self.target == "DNAT" else None

    def line(self) -> str:
        return f"-A {self.chain} {self.spec}"


def _value(s: str, opt: str) -> Optional[str]:
    i = s.find(opt)
    if i < 0:
        return None
    j = i + len(opt)
    k = s.find(" ", j)
    return s[j:k] if k >= 0 else s[j:]


def _strip_prefix(ip: Optional[str]) -> Optional[str]:
    if ip is None:
        return None
    if ip.endswith("/32") or ip.endswith("/128"):
        return ip.rsplit("/", 1)[0]
    return ip


def _name_in(comment: Optional[str]) -> Optional[str]:
    """kube-proxy's service port name in a comment: the first word with a '/'."""
    if not comment:
        return None
    for word in comment.split():
        if "/" in word and not word.startswith(("/", "0x")) and word[0] not in "0123456789":
            return word[:-1] if word.endswith(":") else word
    return None


def _suffix(chain: str) -> Optional[str]:
    for p in _SERVICE_PREFIXES:
        if chain.startswith(p):
            return chain[len(p):]
    return None


def _prefix(chain: str) -> Optional[str]:
    for p in _SERVICE_PREFIXES:
        if chain.startswith(p):
            return p
    return None


# --------------------------------------------------------------------------- builder


class _Svc:
    __slots__ = (
        "key", "name", "cluster_ip", "port", "protocol", "node_port", "external_ips", "lb_ips", "chains",
        "itp", "etp", "no_endpoints", "evidence", "warnings", "seen", "affinity", "affinity_s", "endpoints",
        "filter_only", "seps",
    )

    def __init__(self, key: str):
        self.key = key
        self.name: Optional[str] = None
        self.cluster_ip: Optional[str] = None
        self.port: Optional[int] = None
        self.protocol: Optional[str] = None
        self.node_port: Optional[int] = None
        self.external_ips: list[str] = []
        self.lb_ips: list[str] = []
        self.chains: dict[str, str] = {}
        self.itp: Optional[str] = None
        self.etp: Optional[str] = None
        self.no_endpoints = False
        self.evidence: list[str] = []
        self.warnings: list[str] = []
        self.seen: set[str] = set()  # evidence lines, for the duplicates (but see _walk_service_chain)
        self.seps: set[str] = set()  # the KUBE-SEP chains whose lines are in the evidence
        self.affinity = False
        self.affinity_s: Optional[int] = None
        self.endpoints: Optional[list[Endpoint]] = None
        self.filter_only = False

    def add_evidence(self, r: _Rule, warn_duplicate: bool = True) -> bool:
        """Add the rule's line; False when the same rule was already there (pasted twice)."""
        line = r.line()
        if line in self.seen:
            if warn_duplicate:
                self.warnings.append(f"duplicate rule ignored (pasted twice?): {line}")
            return False
        self.seen.add(line)
        self.evidence.append(line)
        return True

    def take_name(self, comment: Optional[str]) -> None:
        if self.name is None:
            self.name = _name_in(comment)


def _rules(table: Optional[IptTable], chain: str) -> list[IptRule]:
    if table is None:
        return []
    ch = table.chains.get(chain)
    return ch.rules if ch is not None else []


# The lines of a service's KUBE-SVC, KUBE-SVL/KUBE-XLB and KUBE-SEP chains go to its
# evidence without ``_Svc.seen``: a line ``-A CHAIN spec`` can equal another only when the
# chain names do (a KUBE-SEP name, a jump's target, has no space; the other chains' names
# start differently: KUBE-SVC-, KUBE-SVL-, KUBE-XLB-, KUBE-SEP- against KUBE-SERVICES,
# KUBE-NODEPORTS, KUBE-EXT-, KUBE-FW-, KUBE-EXTERNAL-SERVICES, KUBE-PROXY-FIREWALL), and each
# of these chains is read once per service: a KUBE-SVC/KUBE-SVL chain's repeated rules are
# caught by its own walk (``seen_specs``), a KUBE-SEP chain's by ``_Svc.seps`` and its own.


def _walk_service_chain(
    svc: _Svc, seps: dict[str, _SepInfo], chain: IptChain
) -> list[Endpoint]:
    """Endpoints of a KUBE-SVC/KUBE-SVL/KUBE-XLB chain, in rule order, with shares."""
    eps: list[Endpoint] = []
    remaining = 1.0
    last_prob: Optional[float] = None
    name = chain.name
    lead = f"-A {name} "
    evidence, warnings = svc.evidence, svc.warnings
    fast = _FAST[0]
    seen_specs: set[str] = set()
    for rule in chain.rules:
        spec = rule.spec
        if spec in seen_specs:
            warnings.append(f"duplicate rule ignored (pasted twice?): -A {name} {spec}")
            continue
        seen_specs.add(spec)
        evidence.append(lead + spec)
        if fast and svc.name is not None:
            m = _SEP_JUMP(spec)
            if m is not None:  # an endpoint's jump: the branch below, read from the groups
                comment, ptext, t = m.groups()
                p: Optional[float] = None
                if ptext is not None:
                    try:
                        p = float(ptext)
                    except ValueError:
                        p = None
                share = remaining * (p if p is not None else 1.0)
                remaining = remaining * (1.0 - p) if p is not None else 0.0
                last_prob = p
                eps.append(_new_endpoint(_endpoint_address(svc, seps, t, comment), share, p, t))
                continue
            if "KUBE-SEP-" not in spec and "REJECT" not in spec and "endpoints" not in spec:
                continue  # no target or comment the branches below act on: evidence only
        r = _Rule(name, spec)
        svc.take_name(r.comment)
        t = r.target
        if t.startswith("KUBE-SEP-"):
            if " --rcheck " in r.head:
                svc.affinity = True
                secs = r.seconds
                if secs is not None:
                    svc.affinity_s = secs
                continue
            p = r.prob
            share = remaining * (p if p is not None else 1.0)
            remaining = remaining * (1.0 - p) if p is not None else 0.0
            last_prob = p
            address = _endpoint_address(svc, seps, t, r.comment)
            eps.append(_new_endpoint(address, share, p, t))
            if r.garbled_addr:
                warnings.append(
                    f"{name}: comment garbled by PDF conversion ('--> {r.garbled_addr}'); read as '-> {r.garbled_addr}'"
                )
        elif t == "KUBE-MARK-DROP" and r.comment and "no local endpoints" in r.comment:
            warnings.append(f"{name}: no local endpoints on this node; external traffic is dropped")
        elif t == "REJECT" or (r.comment and r.comment.endswith("has no endpoints")):
            svc.no_endpoints = True
    if eps and last_prob is not None:
        warnings.append(
            f"{name}: the last endpoint rule has a probability ({last_prob}); "
            f"shares sum to {1.0 - remaining:.6f} (rules missing from the input?)"
        )
    return eps


# What a KUBE-SEP chain says, whoever jumps to it: the specs of its rules (a repeated one
# once; the evidence lines are made when they go to a service's evidence), the first
# DNAT's --to-destination (None: no DNAT) and whether a rule has ``-m recent --set``
# (session affinity).
_SepInfo = tuple[list[str], Optional[str], bool]


def _sep_chains(nat: IptTable) -> dict[str, _SepInfo]:
    """Every KUBE-SEP chain of the table read once, in the table's order."""
    out: dict[str, _SepInfo] = {}
    for sep, ch in nat.chains.items():
        if not sep.startswith("KUBE-SEP-"):
            continue
        rules = ch.rules
        if len(rules) == 2:  # kube-proxy's: the hairpin masquerade, the DNAT
            a, b = rules[0].spec, rules[1].spec
            if a != b and "-j DNAT " not in a and " --set " not in a:
                out[sep] = ([a, b], _dnat_to(b), " --set " in b)
                continue
        kept: list[str] = []
        specs: set[str] = set()
        addr: Optional[str] = None
        sets = False
        for rule in rules:
            spec = rule.spec
            if spec not in specs:
                specs.add(spec)
                kept.append(spec)
            if addr is None:
                addr = _dnat_to(spec)
            if " --set " in spec:
                sets = True
        out[sep] = (kept, addr, sets)
    return out


def _dnat_to(spec: str) -> Optional[str]:
    """The --to-destination after the rule's ``-j DNAT``; None without one."""
    k = spec.find("-j DNAT ")
    if k < 0:
        return None
    # _value(spec[k:] + " ", " --to-destination "), without the copies: the option's value
    # runs to the next space or the end ("" for an option that ends the spec)
    i = spec.find(" --to-destination ", k)
    if i < 0:
        return "" if spec.endswith(" --to-destination") and len(spec) - 17 >= k else None
    j = spec.find(" ", i + 18)
    return spec[i + 18:j] if j >= 0 else spec[i + 18:]


def _endpoint_address(svc: _Svc, seps: dict[str, _SepInfo], sep: str, comment: Optional[str]) -> str:
    """The DNAT destination of a KUBE-SEP chain (its rules go to the evidence, once), else
    the ``-> ip:port`` of the jump's comment, else "?" with a warning (a warning too when
    the comment names another address than the DNAT)."""
    info = seps.get(sep)
    addr: Optional[str] = None
    if info is not None:
        specs, addr, sets = info
        if sep not in svc.seps:
            svc.seps.add(sep)
            lead = f"-A {sep} "
            for spec in specs:
                svc.evidence.append(lead + spec)
        if sets:
            svc.affinity = True
    from_comment = (comment.rsplit(" -> ", 1)[1].strip() or None) if comment and " -> " in comment else None
    if addr is None:
        if from_comment:
            if info is None:
                svc.warnings.append(f"{sep} is not in the input; endpoint {from_comment} read from the comment")
            return from_comment
        svc.warnings.append(f"{sep} is not in the input (or has no DNAT rule): endpoint address unknown")
        return "?"
    if from_comment and from_comment != addr:
        svc.warnings.append(f"{sep}: comment says {from_comment} but the DNAT goes to {addr}")
    return addr


# --------------------------------------------------------------------------- entry point


def decode_iptables(ipt: Iptables) -> tuple[list[ServiceRecord], Optional[MasqueradeInfo]]:
    """ServiceRecords (one per Service port) and the masquerade setup, from iptables rules."""
    with gc_paused():  # many small acyclic objects; see labreport.perf
        return _decode(ipt)


class _Decoding:
    """The state of one decoding: the nat and filter tables, the services met so far (by
    the hash suffix of their chains) and the old-style masquerade rules to attach."""

    __slots__ = ("nat", "filt", "svcs", "pending_masq")

    def __init__(self, ipt: Iptables):
        self.nat = ipt.tables.get("nat")
        self.filt = ipt.tables.get("filter")
        self.svcs: dict[str, _Svc] = {}
        self.pending_masq: list[_Rule] = []  # old-style KUBE-SERVICES/KUBE-NODEPORTS masquerade rules

    def get(self, key: str) -> _Svc:
        s = self.svcs.get(key)
        if s is None:
            s = self.svcs[key] = _Svc(key)
        return s

    def entries(self, chain_name: str) -> Iterator[tuple[_Rule, str, _Svc]]:
        """The jumps of an entry chain to a service's chain, as (rule, chain prefix,
        service); a KUBE-MARK-MASQ jump there is kept for the masquerade info. A rule of
        kube-proxy's usual shape (``_ENTRY``) is applied here instead (``_service_entry``,
        ``_nodeport_entry``) and not yielded."""
        fast = _FAST[0]
        services = chain_name == "KUBE-SERVICES"
        lead = f"-A {chain_name} "
        for rule in _rules(self.nat, chain_name):
            spec = rule.spec
            m = _ENTRY(spec) if fast else None
            if m is not None and (services or m.group(1) is None):
                dst, proto, comment, dport, target, pre = m.groups()
                svc = self.get(target[len(pre):])
                line = lead + spec  # svc.add_evidence, inline
                if line in svc.seen:
                    svc.warnings.append(f"duplicate rule ignored (pasted twice?): {line}")
                    continue
                svc.seen.add(line)
                svc.evidence.append(line)
                svc.chains.setdefault(_ROLE_OF_PREFIX[pre], target)
                if svc.name is None:
                    svc.name = _name_in(comment)
                if services:
                    _service_entry(svc, pre, _strip_prefix(dst), comment, int(dport), proto)
                else:
                    _nodeport_entry(svc, int(dport), proto)
                continue
            r = _Rule(chain_name, spec)
            pre = _prefix(r.target)
            if pre is None:
                if r.target == "KUBE-MARK-MASQ":
                    self.pending_masq.append(r)
                continue
            svc = self.get(r.target[len(pre):])
            if not svc.add_evidence(r):
                continue
            svc.chains.setdefault(_ROLE_OF_PREFIX[pre], r.target)
            svc.take_name(r.comment)
            yield r, pre, svc


def _decode(ipt: Iptables) -> tuple[list[ServiceRecord], Optional[MasqueradeInfo]]:
    d = _Decoding(ipt)
    _read_service_entries(d)
    _read_nodeport_entries(d)
    _adopt_unreferenced_chains(d)
    if d.nat is not None:
        seps = _sep_chains(d.nat)
        for key, svc in d.svcs.items():
            _walk_service(svc, key, d.nat, seps)
    _attach_old_masquerade(d)
    by_name = _name_services(d)
    _read_filter(d, by_name)
    records = [_record(s) for s in d.svcs.values()]
    return records, _masquerade(d.nat)


# ---- entry points: KUBE-SERVICES and KUBE-NODEPORTS (nat)


def _entry_role(pre: str, comment: str, svc: _Svc) -> str:
    """What a KUBE-SERVICES jump's destination is: "cluster", "lb" or "external"."""
    if comment.endswith("external IP"):
        return "external"
    if comment.endswith("loadbalancer IP"):
        return "lb"
    if comment.endswith("cluster IP"):
        return "cluster"
    if pre in ("KUBE-SVC-", "KUBE-SVL-") and svc.cluster_ip is None:
        return "cluster"
    if pre == "KUBE-FW-":
        return "lb"
    return "external"


def _read_service_entries(d: _Decoding) -> None:
    for r, pre, svc in d.entries("KUBE-SERVICES"):
        _service_entry(svc, pre, _strip_prefix(r.dst), r.comment or "", r.dport, r.proto)


def _service_entry(svc: _Svc, pre: str, ip: Optional[str], comment: str, dport: Optional[int],
                   proto: Optional[str]) -> None:
    """What one KUBE-SERVICES jump to a service's chain says about the service."""
    role = _entry_role(pre, comment, svc)
    if role == "cluster":
        if svc.cluster_ip is None:
            svc.cluster_ip = ip
            svc.port = dport
            svc.protocol = proto
        if pre == "KUBE-SVL-":
            svc.itp = "Local"
    elif ip is not None:
        target_list = svc.lb_ips if role == "lb" else svc.external_ips
        if ip not in target_list:
            target_list.append(ip)
        if svc.port is None:
            svc.port = dport
        if svc.protocol is None:
            svc.protocol = proto


def _read_nodeport_entries(d: _Decoding) -> None:
    for r, _pre, svc in d.entries("KUBE-NODEPORTS"):
        _nodeport_entry(svc, r.dport, r.proto)


def _nodeport_entry(svc: _Svc, dport: Optional[int], proto: Optional[str]) -> None:
    if dport is not None:
        svc.node_port = dport
    if svc.protocol is None:
        svc.protocol = proto


def _adopt_unreferenced_chains(d: _Decoding) -> None:
    """Service chains nothing in the input jumps to (a grep paste, a partial copy)."""
    if d.nat is None:
        return
    for chain_name in d.nat.chains:
        if not chain_name.startswith(_SERVICE_PREFIXES):  # most are KUBE-SEP-: one test
            continue
        pre = _prefix(chain_name)
        if pre is None:
            continue
        key = chain_name[len(pre):]
        if key not in d.svcs:
            svc = d.get(key)
            svc.warnings.append(f"no KUBE-SERVICES/KUBE-NODEPORTS rule for {chain_name} in the input")
        d.svcs[key].chains.setdefault(_ROLE_OF_PREFIX[pre], chain_name)


# ---- each service's chains


def _walk_front_chains(svc: _Svc, nat: IptTable) -> None:
    """KUBE-FW / KUBE-EXT (their jumps name the KUBE-SVC / KUBE-SVL chain) and KUBE-XLB
    (externalTrafficPolicy Local, walked with the endpoints)."""
    for role in ("fw", "ext", "xlb"):
        # (after _adopt_unreferenced_chains every chain KUBE-FW-<key>, KUBE-EXT-<key> and
        # KUBE-XLB-<key> of the table is in svc.chains: a role missing there has none)
        name = svc.chains.get(role)
        if not name:
            continue
        ch = nat.chains.get(name)
        if ch is None:
            continue
        if role == "xlb":
            svc.etp = "Local"
            continue  # walked with the endpoints for its local ones
        for rule in ch.rules:
            r = _Rule(name, rule.spec)
            svc.add_evidence(r)
            svc.take_name(r.comment)
            if r.target.startswith("KUBE-SVL-"):
                svc.etp = "Local"
                svc.chains.setdefault("svl", r.target)
            elif r.target.startswith("KUBE-SVC-"):
                svc.chains.setdefault("svc", r.target)


def _walk_service(svc: _Svc, key: str, nat: IptTable, seps: dict[str, _SepInfo]) -> None:
    """The endpoints of one service: all of them from KUBE-SVC, the node-local ones from
    KUBE-SVL (or KUBE-XLB), each marked ``local``."""
    if "fw" in svc.chains or "ext" in svc.chains or "xlb" in svc.chains:
        _walk_front_chains(svc, nat)
    # (a chain named after the key that svc.chains lacks is not in the table: see _walk_front_chains)
    chains = nat.chains
    svc_name = svc.chains.get("svc")
    svl_name = svc.chains.get("svl")
    xlb_name = svc.chains.get("xlb")
    svc_chain = chains.get(svc_name) if svc_name else None
    local_chain = (chains.get(svl_name) if svl_name else None) or (chains.get(xlb_name) if xlb_name else None)
    all_eps = _walk_service_chain(svc, seps, svc_chain) if svc_chain is not None else None
    local_eps = _walk_service_chain(svc, seps, local_chain) if local_chain is not None else None
    if local_chain is not None:
        svc.chains["svl" if local_chain.name.startswith("KUBE-SVL-") else "xlb"] = local_chain.name
    if all_eps is not None:
        if local_eps is not None:
            local_addrs = {e.address for e in local_eps}
            for e in all_eps:
                e.local = e.address in local_addrs
        svc.endpoints = all_eps
    elif local_eps is not None:
        for e in local_eps:
            e.local = True
        svc.endpoints = local_eps
    else:
        svc.warnings.append(
            f"{svc_name or f'KUBE-SVC-{key}'} is not in the input: endpoints unknown (was the output cut, e.g. by grep?)"
        )
    if local_chain is not None and local_chain.name.startswith("KUBE-SVL-") and svc.itp != "Local":
        if svc.etp is None:
            svc.etp = "Local"


def _attach_old_masquerade(d: _Decoding) -> None:
    """Old-style masquerade rules in KUBE-SERVICES / KUBE-NODEPORTS: attached to their
    service by address and port."""
    if not d.pending_masq:
        return
    by_dst: dict[tuple[str, Optional[int]], _Svc] = {}
    for s in d.svcs.values():
        for ip in [s.cluster_ip, *s.external_ips, *s.lb_ips]:
            if ip:
                by_dst.setdefault((ip, s.port), s)
    by_np = {s.node_port: s for s in d.svcs.values() if s.node_port}
    for r in d.pending_masq:
        dst = _strip_prefix(r.dst)
        owner = by_dst.get((dst, r.dport)) if dst else (by_np.get(r.dport) if r.dport is not None else None)
        if owner is not None:
            owner.add_evidence(r)


def _name_services(d: _Decoding) -> dict[str, _Svc]:
    """Every service named (its comment's name, else its chain); by name."""
    by_name: dict[str, _Svc] = {}
    for s in d.svcs.values():
        if s.name is None:
            s.name = s.chains.get("svc") or next(iter(s.chains.values()), f"KUBE-SVC-{s.key}")
        by_name.setdefault(s.name, s)
    return by_name


# ---- filter table: services without endpoints, Local policies with no local endpoint


def _read_filter(d: _Decoding, by_name: dict[str, _Svc]) -> None:
    for chain_name in ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"):
        for rule in _rules(d.filt, chain_name):
            r = _Rule(chain_name, rule.spec)
            s = _filter_service(d, by_name, chain_name, r)
            if s is not None and s.add_evidence(r):
                _apply_filter_rule(s, chain_name, r)


def _filter_service(d: _Decoding, by_name: dict[str, _Svc], chain_name: str, r: _Rule) -> Optional[_Svc]:
    """The service a filter rule is about (a filter-only one is made for a service with
    no endpoints that the nat table does not show); None for any other rule."""
    name = _name_in(r.comment)
    comment = r.comment or ""
    if name is None:
        return None
    s = by_name.get(name)
    if chain_name == "KUBE-PROXY-FIREWALL" and "KUBE-FW-" in comment:
        s = s or d.svcs.get(comment.rsplit("KUBE-FW-", 1)[1].split()[0])
    if s is None:
        if not comment.endswith("endpoints"):
            return None
        s = d.get(f"filter:{name}")
        s.name = name
        s.filter_only = True
        by_name[name] = s
    return s


def _apply_filter_rule(s: _Svc, chain_name: str, r: _Rule) -> None:
    comment = r.comment or ""
    ip = _strip_prefix(r.dst)
    if comment.endswith("has no endpoints"):
        s.no_endpoints = True
        if chain_name == "KUBE-SERVICES" and ip:
            if s.cluster_ip is None:
                s.cluster_ip, s.port, s.protocol = ip, r.dport, r.proto
        elif chain_name == "KUBE-EXTERNAL-SERVICES":
            if ip:
                if ip not in s.external_ips and ip not in s.lb_ips:
                    s.external_ips.append(ip)
            elif r.dst_local and r.dport is not None and s.node_port is None:
                s.node_port = r.dport
        if s.protocol is None:
            s.protocol = r.proto
    elif comment.endswith("has no local endpoints"):
        if chain_name == "KUBE-SERVICES":
            s.itp = "Local"
            s.warnings.append("internalTrafficPolicy Local and no endpoint on this node: cluster IP traffic is dropped")
        else:
            s.etp = "Local"
            s.warnings.append("externalTrafficPolicy Local and no endpoint on this node: external traffic is dropped")
        if s.cluster_ip is None and ip and chain_name == "KUBE-SERVICES":
            s.cluster_ip, s.port, s.protocol = ip, r.dport, r.proto
    elif comment.endswith("health check node port"):
        s.etp = "Local"


def _record(s: _Svc) -> ServiceRecord:
    name = s.name or f"KUBE-SVC-{s.key}"
    namespace = service = port_name = None
    if "/" in name and not name.startswith("KUBE-"):
        namespace, rest = name.split("/", 1)
        if ":" in rest:
            service, port_name = rest.split(":", 1)
            port_name = port_name or None
        else:
            service = rest
    endpoints = s.endpoints
    if (s.no_endpoints or s.filter_only) and endpoints is None:
        endpoints = []
        # the "not in the input" warning is moot: kube-proxy writes no chain for such a service
        s.warnings = [w for w in s.warnings if "is not in the input: endpoints unknown" not in w]
    return _new_record(
        name, namespace, service, port_name, s.cluster_ip, s.port, (s.protocol or "tcp").lower(), s.node_port,
        s.external_ips, s.lb_ips, s.affinity, s.affinity_s, s.etp, s.itp, endpoints, s.no_endpoints, "iptables",
        s.chains, s.evidence, s.warnings,
    )


def _masquerade(nat: Optional[IptTable]) -> Optional[MasqueradeInfo]:
    mark_rules = _rules(nat, "KUBE-MARK-MASQ")
    post_rules = _rules(nat, "KUBE-POSTROUTING")
    if not mark_rules and not post_rules:
        return None
    info = MasqueradeInfo(
        mark_chain="KUBE-MARK-MASQ" if nat is not None and "KUBE-MARK-MASQ" in nat.chains else None,
        postrouting_chain="KUBE-POSTROUTING" if nat is not None and "KUBE-POSTROUTING" in nat.chains else None,
    )
    for rule in mark_rules:
        info.rules.append(f"-A KUBE-MARK-MASQ {rule.spec}")
        if info.mark is None:
            xmark = _value(f" {rule.spec} ", " --set-xmark ")
            ormark = _value(f" {rule.spec} ", " --or-mark ")
            if xmark:
                info.mark = xmark
            elif ormark:
                info.mark = f"{ormark}/{ormark}"
    for rule in post_rules:
        info.rules.append(f"-A KUBE-POSTROUTING {rule.spec}")
        if info.mark is None:
            m = _value(f" {rule.spec} ", " --mark ")
            if m:
                info.mark = m if "/" in m else f"{m}/{m}"
    return info
