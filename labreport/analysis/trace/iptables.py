"""An interpreter for iptables rules as ``iptables-save`` prints them.

``compile_tables(ipt)`` tokenises every rule once (cached per ``Iptables`` object) into a
:class:`Rule`: the matches kube-proxy and the common CNIs write (-s/-d with inversion, -p,
--dport/--sport, multiport, -i/-o, addrtype, mark, connmark, comment, statistic random and
nth, recent, conntrack/state, set, physdev, tcp flags, limit, nfacct) and the target (jumps,
gotos, ACCEPT, DROP, REJECT, RETURN, DNAT, SNAT, MASQUERADE, REDIRECT, MARK, CONNMARK, LOG …).
A match or target it does not know makes the rule *uninterpretable*: reaching it stops the
trace with "unknown" and the reason — it never guesses.

``run_chain(...)`` walks a chain with a packet and returns every way it leaves the chain
(forked at ``statistic`` rules, with their probabilities), recording a netfilter hop for every
rule that matched and for the chain's fall-through.
"""

from __future__ import annotations

import re
import weakref
from operator import attrgetter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Optional

from labreport.analysis.trace.addr import Net, hostport, in_net, ip_int, net, split_hostport
from labreport.analysis.trace.model import TraceHop
from labreport.analysis.trace.packet import Pkt
from labreport.snapshot import IptChain, Iptables

BUILTIN = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
MAX_DEPTH = 64


class Env:
    """What matches need besides the packet: where it is and which addresses are local."""

    __slots__ = ("node", "netns", "hook", "local", "ipsets", "unknown")

    def __init__(self, node: str, netns: str, hook: str, local: frozenset[str]) -> None:
        self.node, self.netns, self.hook, self.local = node, netns, hook, local
        self.ipsets: dict[str, list[Net]] = {}
        self.unknown: Optional[str] = None  # set by a match that cannot decide


Extra = Callable[[Pkt, Env], Optional[bool]]  # None: cannot decide (Env.unknown says why)


@dataclass
class Rule:
    index: int  # 1-based position in its chain
    text: str  # the spec after "-A CHAIN"
    proto: Optional[str] = None
    proto_neg: bool = False
    src: Optional[list[Net]] = None
    src_neg: bool = False
    dst: Optional[list[Net]] = None
    dst_neg: bool = False
    dst_exact: Optional[str] = None  # a single positive host address: the chain index key
    in_if: Optional[str] = None
    in_neg: bool = False
    out_if: Optional[str] = None
    out_neg: bool = False
    dports: Optional[list[tuple[int, int]]] = None
    dports_neg: bool = False
    sports: Optional[list[tuple[int, int]]] = None
    sports_neg: bool = False
    extras: list[Extra] = field(default_factory=list)
    prob: Optional[float] = None  # statistic: matches with this probability
    target: Optional[str] = None  # None: no -j (only counts)
    goto: bool = False
    targs: dict[str, str] = field(default_factory=dict)
    bad: Optional[str] = None  # why this rule cannot be interpreted
    reads: set[str] = field(default_factory=set)  # packet fields its extra matches read (for the chain memo)
    # what its hop says when it applies (_verdict_text of its target, which never changes): kept at first use
    verdict: Optional[str] = field(default=None, compare=False, repr=False)
    # the compiled chain its jump or goto names, in its own rule set: found at first use
    jump: Optional["Chain"] = field(default=None, compare=False, repr=False)


@dataclass
class Chain:
    name: str
    policy: Optional[str]
    rules: list[Optional[Rule]]  # compiled on first use (a long chain's rules mostly never are)
    specs: list[str] = field(default_factory=list)
    # rules whose only address test is "-d HOST": HOST -> their positions; other rules: always tried
    by_dst: dict[str, list[int]] = field(default_factory=dict)
    by_dport: dict[int, list[int]] = field(default_factory=dict)  # no "-d HOST" but one "--dport N"
    others: list[int] = field(default_factory=list)
    indexed: bool = False
    # the packet fields a walk of this chain reads (transitively), or None when it cannot be memoized
    reads: Optional[tuple[str, ...]] = None
    reads_done: bool = False
    memo: dict[tuple[object, ...], list[tuple[dict[str, object], list[TraceHop], str, float]]] = field(
        default_factory=dict)
    walks: int = 0  # walks before the memo is tried (a chain walked once or twice is walked directly)
    # the memo key's reader of the plain packet fields among ``reads`` (one attrgetter), and
    # the others, which _field computes (set with ``reads``' first use by _memo_key)
    key_plain: Optional[Callable[[Pkt], object]] = None
    key_special: tuple[str, ...] = ()

    def rule(self, pos: int) -> Rule:
        r = self.rules[pos]
        if r is None:
            r = self.rules[pos] = compile_rule(pos + 1, self.specs[pos])
        return r


# --------------------------------------------------------------------------- tokenising


def tokenize(spec: str) -> list[str]:
    """Split like a shell, the way iptables-save quotes (double quotes, backslash escapes)."""
    if "\\" not in spec:
        if '"' not in spec:
            return spec.split()
        parts = spec.split('"')
        if len(parts) % 2 == 1:  # balanced quotes: odd parts are quoted tokens
            toks: list[str] = []
            for k, part in enumerate(parts):
                if k % 2:
                    toks.append(part)
                else:
                    toks.extend(part.split())
            return toks
    out: list[str] = []
    cur: list[str] = []
    inq = False
    started = False
    i, n = 0, len(spec)
    while i < n:
        c = spec[i]
        if c == "\\" and i + 1 < n:
            cur.append(spec[i + 1])
            started = True
            i += 2
            continue
        if c == '"':
            inq = not inq
            started = True
        elif c in " \t" and not inq:
            if started:
                out.append("".join(cur))
                cur, started = [], False
        else:
            cur.append(c)
            started = True
        i += 1
    if started:
        out.append("".join(cur))
    return out


def _ports(v: str) -> Optional[list[tuple[int, int]]]:
    out: list[tuple[int, int]] = []
    for part in v.split(","):
        lo, _, hi = part.partition(":")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            return None
        out.append((int(lo), int(hi) if hi else int(lo)))
    return out


def _nets(v: str) -> Optional[list[Net]]:
    out: list[Net] = []
    for part in v.split(","):
        n = net(part)
        if n is None:
            return None
        out.append(n)
    return out


def _mark(v: str) -> Optional[tuple[int, int]]:
    val, _, mask = v.partition("/")
    try:
        return int(val, 0), int(mask, 0) if mask else 0xFFFFFFFF
    except ValueError:
        return None


def _iface_match(pattern: str, name: Optional[str]) -> Optional[bool]:
    if name is None:
        return None
    if pattern.endswith("+"):
        return name.startswith(pattern[:-1])
    return name == pattern


_CT_STATES = {"NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT"}

# modules whose options we read; a module not here makes the rule uninterpretable
_KNOWN_MODULES = {"tcp", "udp", "sctp", "icmp", "icmp6", "icmpv6", "multiport", "comment", "addrtype", "mark",
                  "connmark", "conntrack", "state", "statistic", "recent", "set", "physdev", "limit", "nfacct",
                  "hashlimit", "pkttype", "owner", "socket", "rpfilter", "connlimit", "string", "ipvs", "length",
                  "iprange", "mac", "devgroup", "cgroup", "policy", "u32", "bpf", "ttl", "hl", "dscp", "tos"}

_TARGET_OPTS_ONE = {"--to-destination", "--to-source", "--to-ports", "--reject-with", "--set-xmark", "--or-mark",
                    "--xor-mark", "--and-mark", "--set-mark", "--log-prefix", "--log-level", "--nfmask",
                    "--ctmask", "--mask", "--nflog-group", "--nflog-prefix", "--nflog-range", "--nflog-threshold",
                    "--nflog-size", "--queue-num", "--queue-balance", "--to", "--set-class", "--set-dscp",
                    "--set-dscp-class", "--on-port", "--on-ip", "--tproxy-mark", "--zone", "--helper"}


def compile_rule(index: int, spec: str) -> Rule:
    r = _compile_fast(index, spec)
    if r is None:
        r = compile_rule_general(index, spec)
    return r


def compile_rule_general(index: int, spec: str) -> Rule:
    """The token-by-token compiler (every rule shape; :func:`compile_rule` tries the fast path first)."""
    r = Rule(index=index, text=spec)
    try:
        _compile_into(r, tokenize(spec))
    except (IndexError, ValueError) as exc:
        r.bad = r.bad or f"cannot read this rule ({type(exc).__name__}: {exc})"
    _set_dst_exact(r)
    return r


def _set_dst_exact(r: Rule) -> None:
    if r.dst is not None and not r.dst_neg and len(r.dst) == 1:
        v, addr, plen = r.dst[0]
        if plen == (32 if v == 4 else 128):
            r.dst_exact = _int_to_ip(v, addr)


# kube-proxy's regular rule shapes (KUBE-SVC-*, KUBE-SEP-*, KUBE-SERVICES jumps), in the order
# iptables-save prints their options, single-spaced, one quoted comment, no backslash: what
# tokenize() splits into the same tokens and _compile_into() reads into these fields alone.
# Anything else (and anything these groups cannot parse) goes to the general path.
_ADDR = r"[0-9A-Fa-f.:]+(?:/[0-9]+)?"
_FAST_SHAPE = re.compile(
    rf"(?:(! )?-s ({_ADDR}) )?"
    rf"(?:(! )?-d ({_ADDR}) )?"
    r"(?:-p (tcp|udp|sctp) )?"
    r'(?:-m comment --comment "[^"\\]*" )?'
    r"(?:-m (?:tcp|udp|sctp)(?: --dport ([0-9]+))? )?"
    r"(?:-m statistic --mode random --probability ([0-9]*\.?[0-9]+) )?"
    r"-j ([A-Za-z0-9_][A-Za-z0-9_.-]*)"
    r'(?: --to-destination ([^\s"\\!]+))?'
).fullmatch


def _compile_fast(index: int, spec: str) -> Optional[Rule]:
    """The rule :func:`compile_rule_general` builds, for kube-proxy's regular shapes; None otherwise."""
    m = _FAST_SHAPE(spec)
    if m is None:
        return None
    sneg, src, dneg, dst, proto, dport, prob, target, to = m.groups()
    r = Rule(index=index, text=spec, target=target)
    if src is not None:
        n = net(src)
        if n is None:
            return None
        r.src, r.src_neg = [n], sneg is not None
    if dst is not None:
        n = net(dst)
        if n is None:
            return None
        r.dst, r.dst_neg = [n], dneg is not None
        _set_dst_exact(r)
    if proto is not None:
        r.proto = proto
    if dport is not None:
        d = int(dport)
        r.dports = [(d, d)]
    if prob is not None:
        r.prob = float(prob)
    if to is not None:
        r.targs["--to-destination"] = to
    return r


@lru_cache(maxsize=100_000)
def _int_to_ip(v: int, n: int) -> str:
    import ipaddress

    return str(ipaddress.IPv4Address(n) if v == 4 else ipaddress.IPv6Address(n))


def _compile_into(r: Rule, t: list[str]) -> None:  # noqa: C901 - one option table, read in order
    i, n = 0, len(t)
    neg = False
    module = ""
    while i < n:
        tok = t[i]
        if tok == "!":
            neg = True
            i += 1
            continue
        if tok in ("-j", "--jump", "-g", "--goto"):
            r.target = t[i + 1]
            r.goto = tok in ("-g", "--goto")
            i += 2
            while i < n:  # target options
                opt = t[i]
                if opt in _TARGET_OPTS_ONE:
                    r.targs[opt] = t[i + 1]
                    i += 2
                elif opt.startswith("--"):
                    r.targs[opt] = ""
                    i += 1
                else:
                    r.bad = f"unexpected {opt!r} after the target"
                    return
            break
        val = t[i + 1] if i + 1 < n else ""
        if tok in ("-p", "--protocol"):
            r.proto, r.proto_neg = val.lower(), neg
            i += 2
        elif tok in ("-s", "--source", "--src"):
            r.src, r.src_neg = _nets(val), neg
            if r.src is None:
                r.bad = f"cannot read the source {val!r}"
            i += 2
        elif tok in ("-d", "--destination", "--dst"):
            r.dst, r.dst_neg = _nets(val), neg
            if r.dst is None:
                r.bad = f"cannot read the destination {val!r}"
            i += 2
        elif tok in ("-i", "--in-interface"):
            r.in_if, r.in_neg = val, neg
            i += 2
        elif tok in ("-o", "--out-interface"):
            r.out_if, r.out_neg = val, neg
            i += 2
        elif tok in ("-m", "--match"):
            module = val
            if module not in _KNOWN_MODULES:
                r.bad = f"the match module {module!r} is not modelled"
            i += 2
        elif tok in ("-f", "--fragment"):
            if not neg:
                r.extras.append(lambda p, e: False)  # a first packet is never a later fragment
            i += 1
        elif tok in ("-c", "--set-counters"):
            i += 3
        else:
            i = _module_option(r, module, tok, t, i, neg)
            if r.bad:
                return
        neg = False


def _module_option(r: Rule, module: str, tok: str, t: list[str], i: int, neg: bool) -> int:  # noqa: C901
    val = t[i + 1] if i + 1 < len(t) else ""
    if tok == "--comment":
        j = i + 2  # kube-proxy's own tests write multi-word comments unquoted
        while j < len(t) and not t[j].startswith("-") and t[j] != "!":
            j += 1
        return j
    if tok in ("--dport", "--destination-port", "--dports", "--destination-ports", "--sport", "--source-port",
               "--sports", "--source-ports", "--ports", "--port"):
        ports = _ports(val)
        if ports is None:
            r.bad = f"cannot read the ports {val!r}"
        elif tok in ("--ports", "--port"):
            pr = ports

            def both(p: Pkt, e: Env, pr: list[tuple[int, int]] = pr, neg: bool = neg) -> Optional[bool]:
                hit = any(lo <= p.dport <= hi or lo <= p.sport <= hi for lo, hi in pr)
                return hit != neg
            r.extras.append(both)
            r.reads |= {'sport', 'dport'}
        elif tok.startswith("--d"):
            r.dports, r.dports_neg = ports, neg
        else:
            r.sports, r.sports_neg = ports, neg
        return i + 2
    if tok in ("--src-type", "--dst-type"):
        types = set(val.upper().split(","))
        which = "src" if tok == "--src-type" else "dst"

        def addrtype(p: Pkt, e: Env, types: set[str] = types, which: str = which, neg: bool = neg) -> Optional[bool]:
            ip = p.src if which == "src" else p.dst
            if ip is None:
                e.unknown = "the packet's source address is not known"
                return None
            kind = _addr_kind(ip, e.local)
            if kind is None:
                e.unknown = f"addrtype {'/'.join(sorted(types))}: cannot classify {ip}"
                return None
            return (kind in types) != neg
        r.extras.append(addrtype)
        r.reads |= {'src', 'dst', 'local'}
        return i + 2
    if tok in ("--limit-iface-in", "--limit-iface-out"):
        return i + 1
    if tok == "--mark" and module in ("mark", "connmark"):
        mv = _mark(val)
        if mv is None:
            r.bad = f"cannot read the mark {val!r}"
            return i + 2
        value, mask = mv
        ct = module == "connmark"

        def mark(p: Pkt, e: Env, value: int = value, mask: int = mask, ct: bool = ct, neg: bool = neg) -> bool:
            m = p.ctmark if ct else p.mark
            return ((m & mask) == value) != neg
        r.extras.append(mark)
        r.reads |= {'mark', 'ctmark'}
        return i + 2
    if tok in ("--ctstate", "--state"):
        states = set(val.upper().split(","))
        if not states <= _CT_STATES:
            r.bad = f"conntrack state {val!r} is not modelled"
            return i + 2

        def ctstate(p: Pkt, e: Env, states: set[str] = states, neg: bool = neg) -> bool:
            mine = {p.ctstate.upper()}  # NEW: the first packet; ESTABLISHED: its reply; INVALID
            dnat, snat = p.ct_status()
            if dnat:
                mine.add("DNAT")
            if snat:
                mine.add("SNAT")
            return bool(mine & states) != neg
        r.extras.append(ctstate)
        r.reads |= {'ct'}
        return i + 2
    if tok == "--ctdir":
        want = val.upper()
        if want not in ("ORIGINAL", "REPLY"):
            r.bad = f"conntrack --ctdir {val!r} is not modelled"
            return i + 2

        def ctdir(p: Pkt, e: Env, want: str = want, neg: bool = neg) -> Optional[bool]:
            if p.ctstate == "invalid":
                return False  # no conntrack entry: --ctdir matches neither direction
            return (p.ctdir.upper() == want) != neg
        r.extras.append(ctdir)
        r.reads |= {'ct'}
        return i + 2
    if tok in ("--ctorigdst", "--ctorigsrc", "--ctreplsrc", "--ctrepldst", "--ctproto", "--ctstatus",
               "--ctexpire", "--ctorigsrcport", "--ctorigdstport"):
        r.bad = f"conntrack {tok} is not modelled"
        return i + 2
    if tok == "--mode" and module == "statistic":
        return i + 2
    if tok == "--probability":
        r.prob = float(val)
        if neg:
            r.prob = 1.0 - r.prob
        return i + 2
    if tok == "--every":
        every = int(val)
        r.prob = 1.0 / every if every > 0 else 1.0
        return i + 2
    if tok == "--packet":
        return i + 2
    if module == "recent":
        if tok in ("--rcheck", "--update"):
            # the first connection from this client: no entry in the recent list yet
            def recent(p: Pkt, e: Env, neg: bool = neg) -> bool:
                return neg
            r.extras.append(recent)
            return i + 1
        if tok in ("--set", "--remove", "--rsource", "--rdest", "--reap", "--rttl"):
            return i + 1
        if tok in ("--name", "--seconds", "--hitcount", "--mask"):
            return i + 2
    if tok == "--match-set":
        setname = val
        flags = t[i + 2] if i + 2 < len(t) else "src"

        def ipset(p: Pkt, e: Env, setname: str = setname, flags: str = flags, neg: bool = neg) -> Optional[bool]:
            nets = e.ipsets.get(setname)
            if nets is None:
                e.unknown = f"ipset {setname!r} was not collected (ipset list)"
                return None
            ip = p.src if flags.split(",")[0] == "src" else p.dst
            if ip is None:
                e.unknown = "the packet's source address is not known"
                return None
            return any(in_net(ip, nn) for nn in nets) != neg
        r.extras.append(ipset)
        r.reads |= {'src', 'dst'}
        return i + 3
    if tok in ("--return-nomatch", "--update-counters", "--update-subcounters", "--nfacct-name"):
        return i + (2 if tok == "--nfacct-name" else 1)
    if module == "physdev":
        if tok in ("--physdev-is-bridged", "--physdev-is-in", "--physdev-is-out"):
            def bridged(p: Pkt, e: Env, neg: bool = neg) -> bool:
                return p.bridged != neg
            r.extras.append(bridged)
            r.reads |= {'phys'}
            return i + 1
        if tok in ("--physdev-in", "--physdev-out"):
            which = tok

            def phys(p: Pkt, e: Env, pat: str = val, which: str = which, neg: bool = neg) -> Optional[bool]:
                if not p.bridged:
                    return neg  # not a bridged packet: no physdev to match
                name = p.phys_in if which == "--physdev-in" else p.phys_out
                hit = _iface_match(pat, name)
                if hit is None:
                    e.unknown = "the bridge port of the packet is not known"
                    return None
                return hit != neg
            r.extras.append(phys)
            r.reads |= {'phys'}
            return i + 2
    if tok == "--syn":
        def syn(p: Pkt, e: Env, neg: bool = neg) -> bool:
            return (p.proto == "tcp" and p.tcpflags == "syn") != neg
        r.extras.append(syn)
        r.reads |= {'proto', 'ct'}
        return i + 1
    if tok == "--tcp-flags":
        fmask, fcomp = set(val.split(",")), set((t[i + 2] if i + 2 < len(t) else "").split(","))

        def tcpflags(p: Pkt, e: Env, mask: set[str] = fmask, comp: set[str] = fcomp, neg: bool = neg) -> bool:
            m = {"SYN", "ACK", "FIN", "RST", "URG", "PSH"} if "ALL" in mask else mask
            # the first packet of a TCP connection is a SYN, its first reply a SYN-ACK
            got = ({"SYN"} if p.tcpflags == "syn" else {"SYN", "ACK"}) & m
            want = (m if "ALL" in comp else comp & m) - {"NONE"}
            return (got == want) != neg
        r.extras.append(tcpflags)
        r.reads |= {'ct'}
        return i + 3
    if tok in ("--limit", "--limit-burst", "--hashlimit", "--hashlimit-upto", "--hashlimit-above",
               "--hashlimit-burst", "--hashlimit-mode", "--hashlimit-name", "--hashlimit-htable-expire",
               "--hashlimit-srcmask", "--hashlimit-dstmask", "--hashlimit-htable-size", "--hashlimit-htable-max",
               "--hashlimit-htable-gcinterval"):
        if tok == "--hashlimit-above":
            r.bad = "hashlimit --hashlimit-above depends on the traffic rate"
        return i + 2  # a single first packet is within any rate limit
    if tok in ("--icmp-type", "--icmpv6-type"):
        def icmp(p: Pkt, e: Env, neg: bool = neg) -> bool:
            return neg  # traced packets are tcp/udp/sctp
        r.extras.append(icmp)
        return i + 2
    if tok == "--pkt-type":
        def pkttype(p: Pkt, e: Env, v: str = val.lower(), neg: bool = neg) -> bool:
            return (v == "unicast") != neg
        r.extras.append(pkttype)
        return i + 2
    if tok == "--src-range" or tok == "--dst-range":
        lo, _, hi = val.partition("-")
        a, b = ip_int(lo), ip_int(hi or lo)
        if a is None or b is None:
            r.bad = f"cannot read the range {val!r}"
            return i + 2
        which = tok

        def rng(p: Pkt, e: Env, a: tuple[int, int] = a, b: tuple[int, int] = b, which: str = which,
                neg: bool = neg) -> Optional[bool]:
            ip = p.src if which == "--src-range" else p.dst
            v = ip_int(ip) if ip else None
            if v is None:
                e.unknown = "the packet's source address is not known"
                return None
            return (v[0] == a[0] and a[1] <= v[1] <= b[1]) != neg
        r.extras.append(rng)
        r.reads |= {'src', 'dst'}
        return i + 2
    if tok in ("--vaddr", "--vport", "--vdir", "--vmethod", "--vportctl", "--ipvs"):
        r.bad = "the ipvs match depends on IPVS state"
        return i + 2
    r.bad = f"the option {tok!r}{' of -m ' + module if module else ''} is not modelled"
    return i + 1


def _addr_kind(ip: str, local: frozenset[str]) -> Optional[str]:
    v = ip_int(ip)
    if v is None:
        return None
    if ip in local or (v[0] == 4 and (v[1] >> 24) == 127) or ip == "::1":
        return "LOCAL"
    if v[0] == 4 and (v[1] >> 28) == 14:
        return "MULTICAST"
    if v[0] == 4 and v[1] == 0xFFFFFFFF:
        return "BROADCAST"
    return "UNICAST"


# --------------------------------------------------------------------------- compiled tables

_CACHE: dict[int, tuple["weakref.ref[Iptables]", dict[str, dict[str, IptChain]], dict[tuple[str, str], Chain]]] = {}


_LAST: list[object] = [None, None]  # (the Iptables last asked for, its store): most lookups repeat


def _compiled(ipt: Iptables) -> dict[tuple[str, str], Chain]:
    if _LAST[0] is ipt:
        return _LAST[1]  # type: ignore[return-value]
    got = _compiled_slow(ipt)
    _LAST[0], _LAST[1] = ipt, got
    return got


def _compiled_slow(ipt: Iptables) -> dict[tuple[str, str], Chain]:
    key = id(ipt)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is ipt:
        return hit[2]
    store: dict[tuple[str, str], Chain] = {}
    tables = {name: t.chains for name, t in ipt.tables.items()}

    def _drop(_ref: object, key: int = key) -> None:
        _CACHE.pop(key, None)
        _LAST[0] = _LAST[1] = None
    _CACHE[key] = (weakref.ref(ipt, _drop), tables, store)
    return store


_LONG_DONE: dict[int, "weakref.ref[Iptables]"] = {}  # rule sets whose long chains are compiled


def compile_long_chains(ipt: Iptables) -> None:
    """Compile (index) every chain of more than 32 rules of ``ipt`` now, once per rule set
    (``build_world``: the first trace then walks them at once)."""
    key = id(ipt)
    done = _LONG_DONE.get(key)
    if done is not None and done() is ipt:
        return
    for tname, table in ipt.tables.items():
        for cname, chain in table.chains.items():
            if len(chain.rules) > 32:
                get_chain(ipt, tname, cname)

    def _drop(_ref: object, key: int = key) -> None:
        _LONG_DONE.pop(key, None)
    _LONG_DONE[key] = weakref.ref(ipt, _drop)


def get_chain(ipt: Iptables, table: str, name: str) -> Optional[Chain]:
    """The compiled chain (compiled on first use, then cached for this Iptables object)."""
    store = _compiled(ipt)
    ch = store.get((table, name))
    if ch is not None:
        return ch
    t = ipt.tables.get(table)
    if t is None:
        return None
    raw = t.chains.get(name)
    if raw is None:
        return None
    specs = [r.spec for r in raw.rules]
    if len(specs) <= 32:
        ch = Chain(name=name, policy=raw.policy, rules=[compile_rule(i + 1, sp) for i, sp in enumerate(specs)],
                   specs=specs)
    else:  # a long chain (KUBE-SERVICES, KUBE-NODEPORTS): indexed by destination and port, compiled lazily
        ch = Chain(name=name, policy=raw.policy, rules=[None] * len(specs), specs=specs, indexed=True)
        for pos, sp in enumerate(specs):
            dst, dport = _quick_keys(sp)
            if dst is not None:
                ch.by_dst.setdefault(dst, []).append(pos)
            elif dport is not None:
                ch.by_dport.setdefault(dport, []).append(pos)
            else:
                ch.others.append(pos)
    store[(table, name)] = ch
    return ch


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# kube-proxy's KUBE-SERVICES / KUBE-NODEPORTS jumps: '[-d A.B.C.D/32 ]-p tcp -m comment
# --comment "…" -m tcp --dport N -j TARGET', the address in its canonical form (what
# _int_to_ip prints back) → (address or None, comment, N)
_QUICK_SHAPE = re.compile(
    rf'(?:-d ({_OCTET}(?:\.{_OCTET}){{3}})/32 )?-p [a-z]+ -m comment --comment "([^"\\]*)" -m [a-z]+ '
    r'--dport ([0-9]+) -j [^\s"\\]+'
).fullmatch
_JUMPS = ("-j", "-g", "--jump", "--goto")


def _quick_keys(spec: str) -> tuple[Optional[str], Optional[int]]:
    """A rule's single positive ``-d HOST`` and ``--dport N``, read without compiling it. A
    rule with ``-d HOST`` matches no other destination (its matches are ANDed), so the index
    may skip it for every other one — even when the rest of the rule cannot be read."""
    m = _QUICK_SHAPE(spec)
    if m is not None and m.group(2) not in _JUMPS:  # what the token loop below finds in it
        dst, _comment, dport = m.groups()
        return dst, int(dport)
    return _quick_keys_of(spec)


def _quick_keys_of(spec: str) -> tuple[Optional[str], Optional[int]]:
    toks = tokenize(spec)
    dst: Optional[str] = None
    dport: Optional[int] = None
    neg = False
    for i, t in enumerate(toks):
        if t == "!":
            neg = True
            continue
        if t in _JUMPS:
            break
        if i + 1 < len(toks):
            v = toks[i + 1]
            if t in ("-d", "--destination", "--dst") and not neg and "," not in v:
                n = net(v)
                if n is not None and n[2] == (32 if n[0] == 4 else 128):
                    dst = _int_to_ip(n[0], n[1])
            elif t in ("--dport", "--destination-port") and not neg and v.isdigit():
                dport = int(v)
        neg = False
    return dst, dport


def _candidates(ch: Chain, dst: str, dport: int, start: int) -> "range | list[int]":
    if not ch.indexed:
        return range(start, len(ch.rules))
    a = ch.by_dst.get(dst)
    b = ch.by_dport.get(dport)
    if not a and not b:
        return [x for x in ch.others if x >= start] if start else ch.others
    merged = ch.others + (a or []) + (b or [])
    merged.sort()
    return [x for x in merged if x >= start] if start else merged


# --------------------------------------------------------------------------- matching


def _addr_in(ip: Optional[str], nets: list[Net]) -> Optional[bool]:
    if ip is None:
        return None
    return any(in_net(ip, n) for n in nets)


def _port_in(port: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo <= port <= hi for lo, hi in ranges)


def rule_matches(r: Rule, p: Pkt, e: Env) -> Optional[bool]:
    """True/False, or None (Env.unknown says why) when the snapshot cannot decide."""
    if r.dst is not None:
        hit = _addr_in(p.dst, r.dst)
        if hit == r.dst_neg:
            return False
    if r.proto is not None and r.proto != "all":
        if (p.proto == r.proto) == r.proto_neg:
            return False
    if r.dports is not None and (_port_in(p.dport, r.dports) == r.dports_neg):
        return False
    if r.sports is not None and (_port_in(p.sport, r.sports) == r.sports_neg):
        return False
    if r.src is not None:
        hit = _addr_in(p.src, r.src)
        if hit is None:
            e.unknown = "the packet's source address is not known"
            return None
        if hit == r.src_neg:
            return False
    for pat, name, neg, what in (() if r.in_if is None and r.out_if is None else
                                 ((r.in_if, p.in_if, r.in_neg, "input"), (r.out_if, p.out_if, r.out_neg, "output"))):
        if pat is None:
            continue
        if what == "input" and e.hook in ("OUTPUT",) or what == "output" and e.hook in ("PREROUTING", "INPUT"):
            continue  # iptables rejects such rules; nothing to match
        hit = _iface_match(pat, name)
        if hit is None:
            e.unknown = f"the packet's {what} device is not known (needed by -{what[0]} {pat})"
            return None
        if hit == neg:
            return False
    for x in r.extras:
        got = x(p, e)
        if got is None:
            return None
        if not got:
            return False
    return True


# --------------------------------------------------------------------------- walking

# a chain's exit: (packet, verdict) with verdict ACCEPT | DROP | REJECT | RETURN | UNKNOWN:<why>
Exit = tuple[Pkt, str]


def _hop(p: Pkt, e: Env, table: str, chain: str, r: Optional[Rule], verdict: str) -> None:
    if p.record:
        p.hops.append(TraceHop(kind="netfilter", node=e.node, netns=e.netns, hook=e.hook,
                               family="ip6" if p.family == "ipv6" else "ip", backend="iptables", table=table,
                               chain=chain, rule_index=r.index if r else None, rule=r.text if r else None,
                               verdict=verdict))
    p.last = ("iptables", table, chain, r.index if r else None, r.text if r else None, verdict)


def _verdict_text(r: Rule) -> str:
    t = r.target or ""
    if t in ("DNAT", "SNAT"):
        to = r.targs.get("--to-destination" if t == "DNAT" else "--to-source", "")
        return f"{t} {to}".strip()
    if t == "MARK":
        for k in ("--set-xmark", "--or-mark", "--xor-mark", "--and-mark", "--set-mark"):
            if k in r.targs:
                return f"MARK {k} {r.targs[k]}"
    if t == "" or r.target is None:
        return "continue"
    if t in ("ACCEPT", "DROP", "REJECT", "RETURN", "MASQUERADE", "REDIRECT"):
        return t
    if t in _NON_TERMINAL:
        return t
    return f"{'goto' if r.goto else 'jump'} {t}"


_NON_TERMINAL = {"MARK", "CONNMARK", "LOG", "NFLOG", "ULOG", "TRACE", "CT", "NOTRACK", "CLASSIFY", "DSCP", "TOS",
                 "CHECKSUM", "TCPMSS", "AUDIT", "NFACCT"}


MEMO = [True]  # the chain memo on (a switch for the benchmark's comparison)

# what a chain walk may change in a packet (the memo replays these)
_WRITES = ("src", "dst", "sport", "dport", "mark", "ctmark", "dnat", "snat", "masq")


def _rule_reads(r: Rule) -> Optional[set[str]]:
    if r.bad is not None:
        return None
    out = set(r.reads)
    if r.proto is not None:
        out.add("proto")
    if r.src is not None:
        out.add("src")
    if r.dst is not None:
        out.add("dst")
    if r.in_if is not None:
        out.add("in_if")
    if r.out_if is not None:
        out.add("out_if")
    if r.dports is not None:
        out.add("dport")
    if r.sports is not None:
        out.add("sport")
    t = r.target
    if t in ("MARK", "CONNMARK"):
        out |= {"mark", "ctmark"}
    elif t in ("DNAT", "REDIRECT"):
        out |= {"dst", "dport", "ct", "local"}
    elif t in ("SNAT", "MASQUERADE"):
        out.add("ct")  # writes masq/snat, which the ct key holds
    elif t is not None and t not in ("ACCEPT", "DROP", "REJECT", "RETURN") and t not in _NON_TERMINAL:
        pass  # a jump: the target chain's reads are added by the caller
    elif t is not None and t in _NON_TERMINAL and t not in ("LOG", "NFLOG", "NFACCT", "AUDIT"):
        return None
    if "recent" in r.text or "--fragment" in r.text or " -f " in f" {r.text} ":
        out.add("all")
    return out


def chain_reads(ipt: Iptables, table: str, chain: str, seen: Optional[set[str]] = None) -> Optional[tuple[str, ...]]:
    """The packet fields a walk of ``chain`` reads, following its jumps; None: do not memoize."""
    ch = get_chain(ipt, table, chain)
    if ch is None:
        return None
    if ch.reads_done:
        return ch.reads
    if ch.indexed:  # a long chain is walked through its index, not memoized
        ch.reads, ch.reads_done = None, True
        return None
    seen = seen or set()
    if chain in seen:
        return None
    seen.add(chain)
    acc: set[str] = set()
    ok = True
    own: list[set[str]] = []
    for pos in range(len(ch.rules)):
        r = ch.rule(pos)
        rr = _rule_reads(r)
        if rr is None or "all" in rr or "dst" in rr:  # dst-keyed chains (KUBE-SERVICES) are not memoized
            ch.reads, ch.reads_done = None, True
            return None
        own.append(rr)
    for pos, rr in enumerate(own):
        r = ch.rule(pos)
        acc |= rr
        t = r.target
        if t and t not in ("ACCEPT", "DROP", "REJECT", "RETURN", "DNAT", "SNAT", "MASQUERADE", "REDIRECT") \
                and t not in _NON_TERMINAL:
            sub = chain_reads(ipt, table, t, seen)
            if sub is None:
                ok = False
                break
            acc |= set(sub)
    if "dst" in acc:
        ok = False
    ch.reads = tuple(sorted(acc)) if ok else None
    ch.reads_done = True
    return ch.reads


def _field(p: Pkt, e: Env, f: str) -> object:
    if f == "ct":
        return p.ct_status(), p.ctstate, p.ctdir, p.tcpflags
    if f == "phys":
        return (p.bridged, p.phys_in, p.phys_out)
    if f == "local":
        return id(e.local)
    return getattr(p, f)


_KEY_SPECIAL = ("ct", "phys", "local")  # the key fields _field computes; the others are read as they are


def _memo_key(ch: Chain, reads: tuple[str, ...], p: Pkt, e: Env) -> tuple[object, ...]:
    """Where the walk runs and the values of the fields it reads: the plain ones through one
    attrgetter (made once per chain), the computed ones through _field."""
    getter = ch.key_plain
    if getter is None:
        plain = tuple(f for f in reads if f not in _KEY_SPECIAL)
        ch.key_special = tuple(f for f in reads if f in _KEY_SPECIAL)
        getter = ch.key_plain = attrgetter(*plain) if plain else _no_plain_fields
    return (e.hook, e.node, p.family, p.record, getter(p), *[_field(p, e, f) for f in ch.key_special])


def _no_plain_fields(_p: Pkt) -> None:
    return None


_MEMO_AFTER = 2  # direct walks of a chain before its memo is built and used


def run_chain(ipt: Iptables, table: str, chain: str, p: Pkt, e: Env, depth: int = 0,
              ch: Optional[Chain] = None) -> list[Exit]:
    """Walk ``chain`` (``ch``: its compiled chain, when the caller has it); a chain whose walk
    reads only a few packet fields is walked once per distinct value of those fields and
    replayed after that (``trace --all``)."""
    if ch is None:
        ch = get_chain(ipt, table, chain)
    if ch is None or depth > MAX_DEPTH or not MEMO[0]:
        return _walk(ipt, table, chain, p, e, depth, ch)
    if ch.walks < _MEMO_AFTER:  # most KUBE-SVC/KUBE-SEP chains: one Service's two fronts, distinct keys
        ch.walks += 1
        return _walk(ipt, table, chain, p, e, depth, ch)
    reads = ch.reads if ch.reads_done else chain_reads(ipt, table, chain)
    if reads is None:
        return _walk(ipt, table, chain, p, e, depth, ch)
    key = _memo_key(ch, reads, p, e)
    got = ch.memo.get(key)
    if got is None:
        probe = p.copy()
        probe.prob = 1.0
        probe.hops = []
        probe.last = None
        exits = _walk(ipt, table, chain, probe, e, depth, ch)
        got = []
        for q, verdict in exits:
            changed = {f: getattr(q, f) for f in _WRITES if getattr(q, f) != getattr(p, f)}
            changed["last"] = q.last
            got.append((changed, q.hops, verdict, q.prob))
        if len(ch.memo) < 4096:
            ch.memo[key] = got
    out: list[Exit] = []
    for i, (changed, hops, verdict, prob) in enumerate(got):
        q = p if i == len(got) - 1 else p.copy()
        for f, v in changed.items():
            if f == "last" and v is None:
                continue
            setattr(q, f, v)
        if q.record and hops:
            q.hops = q.hops + hops if q is not p else (p.hops + hops)
        q.prob = p.prob * prob if q is not p else q.prob * prob
        out.append((q, verdict))
    return out


def _walk(ipt: Iptables, table: str, chain: str, p: Pkt, e: Env, depth: int = 0,
          ch: Optional[Chain] = None) -> list[Exit]:
    if ch is None:
        ch = get_chain(ipt, table, chain)
    if ch is None:
        return [(p, f"UNKNOWN:chain {chain} of the {table} table is not in the collected rules")]
    if depth > MAX_DEPTH:
        return [(p, f"UNKNOWN:more than {MAX_DEPTH} nested jumps at {chain} (a loop?)")]
    exits: list[Exit] = []
    stack: list[tuple[Pkt, int]] = [(p, 0)]
    while stack:
        pk, start = stack.pop()
        done = False
        for pos in _candidates(ch, pk.dst, pk.dport, start):
            r = ch.rule(pos)
            if r.bad is not None:
                _hop(pk, e, table, chain, r, "unknown")
                exits.append((pk, f"UNKNOWN:{table}/{chain} rule {r.index} `{r.text}`: {r.bad}"))
                done = True
                break
            e.unknown = None
            m = rule_matches(r, pk, e)
            if m is None:
                _hop(pk, e, table, chain, r, "unknown")
                exits.append((pk, f"UNKNOWN:{table}/{chain} rule {r.index} `{r.text}`: {e.unknown}"))
                done = True
                break
            if not m:
                continue
            if r.prob is not None and r.prob < 1.0:
                if r.prob <= 0.0:
                    continue
                rest = pk.copy()
                rest.prob *= 1.0 - r.prob
                stack.append((rest, pos + 1))
                pk.prob *= r.prob
            out = _apply(ipt, table, chain, r, pk, e, depth, stack, pos)
            if out is None:  # non-terminal target: next rule
                continue
            exits.extend(out)
            done = True
            break
        if not done:
            if chain in BUILTIN and ch.policy not in (None, "-"):
                pol = ch.policy
            else:
                pol = "ACCEPT" if chain in BUILTIN else "RETURN"
            _hop(pk, e, table, chain, None, pol if chain in BUILTIN else "RETURN")
            exits.append((pk, pol))
    return exits


def _apply(ipt: Iptables, table: str, chain: str, r: Rule, p: Pkt, e: Env, depth: int,
           stack: list[tuple[Pkt, int]], pos: int) -> Optional[list[Exit]]:
    """Apply a matched rule's target: None to go on with the next rule, else the chain's exits."""
    t = r.target
    vt = r.verdict
    if vt is None:
        vt = r.verdict = _verdict_text(r)
    if t is None:
        _hop(p, e, table, chain, r, "continue")
        return None
    if t in ("ACCEPT", "DROP", "REJECT", "RETURN"):
        _hop(p, e, table, chain, r, t)
        return [(p, t)]
    if t == "DNAT":
        to = r.targs.get("--to-destination", "")
        host, port = split_hostport(to)
        if not host and port is None:
            _hop(p, e, table, chain, r, "unknown")
            return [(p, f"UNKNOWN:{table}/{chain} rule {r.index}: DNAT without --to-destination")]
        if "-" in host:
            _hop(p, e, table, chain, r, "unknown")
            return [(p, f"UNKNOWN:{table}/{chain} rule {r.index}: DNAT to an address range")]
        p.dst = host or p.dst
        if port is not None:
            p.dport = port
        p.dnat = hostport(p.dst, p.dport)
        _hop(p, e, table, chain, r, vt)
        return [(p, "ACCEPT")]
    if t == "REDIRECT":
        ports = r.targs.get("--to-ports")
        p.dst = "127.0.0.1" if e.hook == "OUTPUT" else (next(iter(sorted(e.local)), p.dst) if e.local else p.dst)
        if ports and ports.split("-")[0].isdigit():
            p.dport = int(ports.split("-")[0])
        p.dnat = hostport(p.dst, p.dport)
        _hop(p, e, table, chain, r, vt)
        return [(p, "ACCEPT")]
    if t in ("SNAT", "MASQUERADE"):
        if t == "SNAT":
            host, _port = split_hostport(r.targs.get("--to-source", ""))
            p.snat = host or p.snat
        else:
            p.masq = True
        _hop(p, e, table, chain, r, vt)
        return [(p, "ACCEPT")]
    if t == "MARK":
        mark_apply(p, r.targs, ct=False)
        _hop(p, e, table, chain, r, vt)
        return None
    if t == "CONNMARK":
        if "--save-mark" in r.targs:
            p.ctmark = p.mark
        elif "--restore-mark" in r.targs:
            p.mark = p.ctmark
        else:
            mark_apply(p, r.targs, ct=True)
        _hop(p, e, table, chain, r, vt)
        return None
    if t in _NON_TERMINAL:
        _hop(p, e, table, chain, r, vt)
        return None
    if t in ("QUEUE", "NFQUEUE", "TPROXY", "NETMAP", "CLUSTERIP", "TEE", "SYNPROXY", "HMARK", "IDLETIMER", "LED",
             "SECMARK", "CONNSECMARK", "RATEEST", "CLASSIFY"):
        _hop(p, e, table, chain, r, "unknown")
        return [(p, f"UNKNOWN:{table}/{chain} rule {r.index} `{r.text}`: the {t} target is not modelled")]
    # a jump or goto to a user chain
    _hop(p, e, table, chain, r, vt)
    sub_ch = r.jump
    if sub_ch is None:
        sub_ch = r.jump = get_chain(ipt, table, t)  # r was compiled for this rule set's table
    sub = run_chain(ipt, table, t, p, e, depth + 1, sub_ch)
    out: list[Exit] = []
    for sp, v in sub:
        if v == "RETURN":
            if r.goto:
                out.append((sp, "RETURN"))
            else:
                stack.append((sp, pos + 1))
        else:
            out.append((sp, v))
    return out


def mark_apply(p: Pkt, targs: dict[str, str], ct: bool) -> None:
    cur = p.ctmark if ct else p.mark
    for k, v in targs.items():
        mv = _mark(v) if v else None
        if mv is None:
            continue
        val, mask = mv
        if k == "--set-xmark":
            cur = (cur & ~mask) ^ val
        elif k == "--set-mark":
            cur = (cur & ~mask) | val if "/" in v else val
        elif k == "--or-mark":
            cur |= val
        elif k == "--xor-mark":
            cur ^= val
        elif k == "--and-mark":
            cur &= val
    cur &= 0xFFFFFFFF
    if ct:
        p.ctmark = cur
    else:
        p.mark = cur
