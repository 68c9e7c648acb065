"""The snapshot: the versioned contract between collection/import and analysis/rendering.

A snapshot is a directory holding ``snapshot.json`` (see :func:`save` / :func:`load`).
It describes one or more nodes (processes, containers, network namespaces with their
links/addresses/routes, netfilter rules) plus, optionally, the cluster's objects as the
Kubernetes API returned them. Every record may point at the raw command output it came
from (``Evidence``), which the report shows.

Forward compatibility: every model accepts and keeps unknown fields (``extra="allow"``),
so a snapshot written by a newer labreport survives a load/save round trip here.
Bump ``SCHEMA_VERSION`` only for incompatible changes; adding optional fields is not one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import weakref
from functools import cached_property, partial
from itertools import repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Annotated, Any, Callable, Generic, Iterator, Literal, NamedTuple, Optional, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from labreport.atomic import atomic_write as atomic_write  # re-exported: callers import it from here
from labreport.errors import ParseError, SnapshotError

SCHEMA_VERSION = 5
# 2: nftables tables, chains, rules (with their typed statements), sets and IPVS virtual
#    servers are models; version-1 snapshots (plain dicts, rules as text) are converted on
#    load (``upgrade``).
# 3: an nft rule read from text stores its text only: its typed statements are read from
#    it when first used (``NftRule.expr``); a rule from nft's JSON keeps them (``typed``).
#    Version-2 rules keep the statements they stored, as ``typed`` (``upgrade_nft_v2``).
# 4: an iptables chain stores each rule as an array ``[spec, line_no, counters]``
#    (``IptChain.rules``), not an object; version-3 chains (a list of ``{"spec", "line_no",
#    "counters"}``) are read as they are (``_load_current`` reads a version-3 file directly).
# 5: a rule set its parser read verbatim from an evidence text the snapshot stores
#    unchanged is stored without its tables, as ``"tables_from": "evidence"`` (``save``):
#    ``load`` reads them again from that evidence (``evidence_id``) with the same parser.
#    Versions 3 and 4 are read as they are (they have no such reference).
SNAPSHOT_FILE = "snapshot.json"


def _new_list() -> list[Any]:
    """``list()``, for the fields declared ``Field(default_factory=list)``: see ``Record``."""
    return []


class Record(BaseModel):
    """Base of every snapshot model: unknown fields are kept, not dropped."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A field's ``default_factory=list`` becomes ``_new_list`` (the same empty list): when
        pydantic builds a schema it asks each factory whether it takes the validated data
        (``inspect.signature``), which for the builtin ``list`` parses its text signature,
        0.06-0.2 ms each: 117 such fields here and in analysis/model.py cost 7-12 ms of
        a command's start-up. For a Python function the answer is immediate."""
        super().__pydantic_init_subclass__(**kwargs)
        for field in cls.__pydantic_fields__.values():
            if field.default_factory is list:
                field.default_factory = _new_list


# --------------------------------------------------------------------------- evidence


class Evidence(Record):
    """The raw output of one command (or file read), exactly as it was printed.

    ``id`` is unique within a node, e.g. ``ps``, ``crictl-ps``, ``ip-addr``,
    ``ip-addr:cni-1234``, ``iptables-save``, ``nft-list-ruleset``.
    """

    id: str
    command: str  # what a person would type: "ps aux", "ip netns exec cni-x ip addr"
    stdout: str = ""
    stderr: str = ""
    exit_code: Optional[int] = None
    duration_s: Optional[float] = None
    timed_out: bool = False
    origin: Literal["live", "import", "synthesized"] = "live"
    # live: the command ran; import: pasted by a user; synthesized: the text was rendered
    # by labreport from native API data (CRI, netlink) in the command's format.
    path: Optional[str] = None  # for import: the file it came from


class ParseWarning(Record):
    """A line a parser could not read: kept with its number, never dropped silently."""

    source: str  # evidence id or file name
    parser: str
    line_no: int  # 1-based
    line: str
    message: str


class CollectorStatus(Record):
    """Whether one collector ran; ``reason`` says why not ("not collected: <reason>")."""

    name: str
    ok: bool
    reason: Optional[str] = None
    fix: Optional[str] = None  # the command that would fix it, when known
    duration_s: Optional[float] = None
    partial: bool = False  # ran, but some of its work failed (see reason)
    not_applicable: bool = False  # this node cannot have what it collects (no IPVS in the kernel)


# --------------------------------------------------------------------------- processes


class Process(Record):
    pid: int
    user: Optional[str] = None
    cpu: Optional[float] = None  # %CPU
    mem: Optional[float] = None  # %MEM
    vsz: Optional[int] = None
    rss: Optional[int] = None
    tty: Optional[str] = None
    stat: Optional[str] = None
    start: Optional[str] = None
    time: Optional[str] = None
    command: str
    truncated: bool = False  # the command line was cut (ps width, "....." in pastes)
    in_container: Optional[bool] = None
    container_id: Optional[str] = None  # from the cgroup, when known
    ppid: Optional[int] = None


# --------------------------------------------------------------------------- containers


class Container(Record):
    """A container or a pod sandbox, from CRI (containerd, CRI-O) or Docker."""

    runtime: str = "unknown"  # containerd | cri-o | docker | cri-dockerd | unknown
    id: str
    name: str  # container name (CRI metadata.name, or docker's full name)
    image: Optional[str] = None
    image_id: Optional[str] = None
    state: Optional[str] = None  # Running / Exited / SANDBOX_READY / "Up 45 minutes" ...
    created: Optional[str] = None
    command: Optional[str] = None
    attempt: Optional[int] = None
    pod_name: Optional[str] = None
    pod_namespace: Optional[str] = None
    pod_uid: Optional[str] = None
    sandbox_id: Optional[str] = None  # the pod sandbox this container belongs to
    is_sandbox: bool = False  # the pause/infra container (or the CRI sandbox itself)
    pid: Optional[int] = None
    netns_path: Optional[str] = None  # /var/run/netns/cni-… or /proc/<pid>/ns/net
    network_mode: Optional[str] = None  # docker: "none", "container:<id>", "host", …
    pod_ip: Optional[str] = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    pod_ips: list[str] = Field(default_factory=list)  # CRI: the sandbox's IPs (dual stack: both)
    exit_code: Optional[int] = None  # CRI: an exited container's exit code
    status: Optional[str] = None  # docker ps's STATUS column as printed ("Up 45 minutes")
    ports: Optional[str] = None  # docker ps's PORTS column as printed
    networks: Optional[str] = None  # docker ps --format's {{.Networks}}
    runtime_handler: Optional[str] = None  # crictl pods: RUNTIME / runtimeHandler
    fragment: bool = False  # docker inspect: read from a pasted fragment (`| grep NetworkMode`), not whole JSON
    sandbox_of: Optional[str] = None  # import: how this sandbox was tied to its pod ("crictl ps POD ID prefix")


# --------------------------------------------------------------------------- network


class Address(Record):
    family: Literal["inet", "inet6"]
    local: str  # the address without prefix
    prefixlen: int
    scope: Optional[str] = None
    broadcast: Optional[str] = None
    label: Optional[str] = None


class FdbEntry(Record):
    mac: str
    dst: Optional[str] = None
    dev: Optional[str] = None
    vlan: Optional[int] = None
    flags: list[str] = Field(default_factory=list)


class VxlanInfo(Record):
    vni: Optional[int] = None
    local: Optional[str] = None
    remote: Optional[str] = None
    group: Optional[str] = None
    port: Optional[int] = None
    dev: Optional[str] = None  # underlay device
    fdb: list[FdbEntry] = Field(default_factory=list)


class Link(Record):
    ifindex: int
    name: str
    kind: Optional[str] = None  # veth, bridge, vxlan, ipip, tun, dummy, … (None = physical/unknown)
    peer_ifindex: Optional[int] = None  # IFLA_LINK, the N of "name@ifN"
    link_netnsid: Optional[int] = None  # IFLA_LINK_NETNSID: the peer lives in that nsid
    link_netns: Optional[str] = None  # `ip` prints "link-netns NAME" when it can name it
    master: Optional[str] = None  # bridge (or bond/vrf) this link is enslaved to
    mac: Optional[str] = None
    mtu: Optional[int] = None
    state: Optional[str] = None  # UP, DOWN, UNKNOWN, LOWERLAYERDOWN
    flags: list[str] = Field(default_factory=list)
    addresses: list[Address] = Field(default_factory=list)
    vxlan: Optional[VxlanInfo] = None


class Route(Record):
    dst: str  # "default" or CIDR
    gateway: Optional[str] = None
    dev: Optional[str] = None
    protocol: Optional[str] = None
    scope: Optional[str] = None
    src: Optional[str] = None
    table: Optional[str] = None
    type: Optional[str] = None  # unicast, local, broadcast, blackhole …
    metric: Optional[int] = None
    onlink: bool = False
    family: Literal["inet", "inet6"] = "inet"


class Neighbour(Record):
    dst: str
    dev: Optional[str] = None
    lladdr: Optional[str] = None
    state: Optional[str] = None


class IpRule(Record):
    """One policy-routing rule (``ip rule``; netlink RTM_NEWRULE), as the kernel keeps it.

    Selectors left at None match every packet. ``src``/``dst``: a prefix ("10.0.0.0/8";
    None: all). ``fwmark``/``fwmask``: the mark matches when ``(mark ^ fwmark) & fwmask == 0``
    (``fwmask`` 0xffffffff when not given). ``invert``: ``not`` (the selectors' result is
    inverted). ``action``: "lookup" (``table``), "goto" (``goto``: a priority), "nop",
    "blackhole", "unreachable", "prohibit". ``table``: "local", "main", "default" or the
    number as text (or a name from /etc/iproute2/rt_tables, as ``ip rule`` printed it).
    Ranges are "start-end" ("53-53" for one port). Selectors the trace model does not
    interpret are kept too (``oif``, ``uidrange``, ``tos``, ``l3mdev``, ``tun_id``, ``realms``).
    """

    priority: int
    family: Literal["inet", "inet6"] = "inet"
    action: str = "lookup"
    table: Optional[str] = None
    goto: Optional[int] = None
    src: Optional[str] = None
    dst: Optional[str] = None
    iif: Optional[str] = None
    oif: Optional[str] = None
    fwmark: Optional[int] = None
    fwmask: Optional[int] = None
    invert: bool = False
    suppress_prefixlen: Optional[int] = None
    suppress_ifgroup: Optional[int] = None
    ipproto: Optional[str] = None  # "tcp", "udp", … or the number as text
    sport: Optional[str] = None  # "start-end"
    dport: Optional[str] = None
    uidrange: Optional[str] = None
    tos: Optional[int] = None
    l3mdev: bool = False
    tun_id: Optional[int] = None
    realms: Optional[str] = None
    protocol: Optional[str] = None  # who added it (kernel, boot, static …), when stated
    unresolved: bool = False  # a goto whose target priority has no rule
    detached: bool = False  # iif/oif names a device that does not exist (``[detached]``)

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        """In snapshot.json (``dump_bytes``) without the selectors it does not have: every pod
        namespace holds the kernel's five default rules, which would otherwise be ~40 % of a
        200-pod node's namespaces there. Loading fills them back with their defaults;
        ``model_dump`` elsewhere gives every field."""
        out: dict[str, Any] = handler(self)
        if not (isinstance(info.context, dict) and info.context.get("compact")):
            return out
        return {k: v for k, v in out.items() if k in ("priority", "family", "action") or (
            v is not None and v is not False)}


class NetNamespace(Record):
    """One network namespace as seen by the collector.

    ``kind``: "node" is the node's own namespace (the host, or the namespace labreport ran
    in); "named" is one under /var/run/netns; "pid" is reached through /proc/<pid>/ns/net
    (Docker pods have no name). ``nsids`` maps the link-netnsid numbers used *inside this
    namespace* to the name of the namespace they refer to (as in ``NetNamespace.name``).
    """

    name: str
    kind: Literal["node", "named", "pid"] = "named"
    path: Optional[str] = None
    inode: Optional[int] = None  # st_ino of the nsfs file: identifies the namespace
    pid: Optional[int] = None
    links: list[Link] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)  # every table but the kernel's own local-table entries
    rules: list[IpRule] = Field(default_factory=list)  # ip rules, IPv4 and IPv6 (empty: not collected)
    neighbours: list[Neighbour] = Field(default_factory=list)
    nsids: dict[int, str] = Field(default_factory=dict)
    error: Optional[str] = None  # e.g. the namespace vanished mid-collection
    aliases: list[str] = Field(default_factory=list)  # other names of the same namespace (same inode)


# --------------------------------------------------------------------------- netfilter


class IptRule(NamedTuple):
    """One ``-A CHAIN …`` line. ``spec`` is everything after the chain name, verbatim
    (normalized whitespace); decoders tokenize it (shlex rules: quoted comments).

    A plain named tuple, not a model: a 10,000-Service dump holds ~113,000 rules, and a
    model each was most of the snapshot's memory and load time. Stored as an array
    ``[spec, line_no, counters]`` (``IptChain.rules``)."""

    spec: str
    line_no: Optional[int] = None
    counters: Optional[tuple[int, int]] = None  # [packets:bytes] when iptables-save -c


_new_ipt_rule = tuple.__new__  # _new_ipt_rule(IptRule, (spec, line_no, counters)): no Python frame


# one rule from its stored row (``[spec, line_no, counters]``), called by pydantic's core on
# each row as it is read: a C call (no Python frame), where one Python function per chain
# turning its rows into rules cost ~10% more to load a 10,000-Service table (callgrind)
_ipt_rule_of_row: Callable[[tuple[str, Optional[int], Optional[tuple[int, int]]]], IptRule] = partial(
    _new_ipt_rule, IptRule)


_rule_fields = itemgetter("spec", "line_no", "counters")


def _ipt_rules_of_dicts(items: list[Any]) -> list[IptRule]:
    """Rules given one by one as their dicts (version-3 snapshots, Python code), validated
    with every field present; an ``IptRule`` among them kept as it is."""
    if all(type(r) is dict for r in items):
        return list(map(_new_ipt_rule, repeat(IptRule), map(_rule_fields, items)))
    return [r if isinstance(r, IptRule) else _new_ipt_rule(IptRule, _rule_fields(r)) for r in items]


class _IptRulesAsRows:
    """``IptChain.rules``: a list of ``IptRule`` in memory, stored as one JSON array per rule
    (``[spec, line_no, counters]``): read and written by pydantic's core (tuples, no
    per-rule Python call), each tuple made a rule by a C call as it is read. A list of
    rule dicts (a version-3 snapshot, ``{"spec", "line_no", "counters"}``) is read too."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema as cs

        pair = cs.nullable_schema(cs.tuple_schema([cs.int_schema(), cs.int_schema()]))
        row = cs.tuple_schema([cs.str_schema(), cs.nullable_schema(cs.int_schema()), pair])
        one = cs.typed_dict_schema({
            "spec": cs.typed_dict_field(cs.str_schema()),
            "line_no": cs.typed_dict_field(cs.with_default_schema(cs.nullable_schema(cs.int_schema()), default=None),
                                           required=False),
            "counters": cs.typed_dict_field(cs.with_default_schema(pair, default=None), required=False),
        })
        rule_or_dict = cs.json_or_python_schema(json_schema=one,
                                                python_schema=cs.union_schema([cs.is_instance_schema(IptRule), one]))
        return cs.union_schema([
            cs.list_schema(cs.no_info_after_validator_function(_ipt_rule_of_row, row)),
            cs.no_info_after_validator_function(_ipt_rules_of_dicts, cs.list_schema(rule_or_dict)),
        ], mode="left_to_right")


class IptChain(Record):
    name: str
    policy: Optional[str] = None  # ACCEPT/DROP for built-in chains, None ("-") for user chains
    rules: Annotated[list[IptRule], _IptRulesAsRows] = Field(default_factory=list)


class IptTable(Record):
    name: str  # nat, filter, mangle, raw, security
    chains: dict[str, IptChain] = Field(default_factory=dict)


class IptablesBackend(Record):
    """One iptables backend that held rules, when both (nf_tables and legacy) did."""

    backend: str  # "nf_tables" | "legacy"
    evidence_id: Optional[str] = None
    kube_chains: int = 0  # KUBE-* chains in it


class _ReadFromText:
    """A rule set that knows the text its parser just read it from (never stored as such, not
    compared): labreport.redact judges it by one scan of that text instead of a dump of its
    ~10^5 rules, and ``save`` stores it as a reference to that text when the snapshot keeps
    it as evidence (``tables_from``; ``load`` reads the tables from it again, and the loaded
    rule set knows its text too). The mark holds the tables as the parser made them (the
    object and its number of records): a rule set whose tables were replaced by another
    object, or grown or shrunk since (reportimport's merge of pasted pieces), has no source
    text; a deep copy keeps it (the copy's own tables, equal to those read)."""

    @property
    def source_text(self) -> Optional[str]:
        mark = self.__dict__.get("_source_text")
        if not isinstance(mark, tuple):
            return None
        text, tables, size = mark
        current = getattr(self, "tables", None)
        return text if current is tables and _size_of_tables(current) == size else None

    def set_source_text(self, text: str) -> None:
        """Said by the parser, once the rule set holds the tables it read: they are what it
        reads from ``text`` (every string of the rule set is a piece of it)."""
        tables = getattr(self, "tables", None)
        self.__dict__["_source_text"] = (text, tables, _size_of_tables(tables))


def _size_of_tables(tables: Any) -> int:
    """How many tables, chains, rules, sets and elements ``tables`` holds (an Iptables's dict of
    IptTable, an NftRuleset's list of NftTable): a rule set's mark (``_ReadFromText``)."""
    if isinstance(tables, dict):  # iptables
        return len(tables) + sum(len(t.chains) + sum(map(len, map(_rules_of, t.chains.values())))
                                 for t in tables.values())
    if isinstance(tables, list):  # nft
        return len(tables) + sum(len(t.chains) + sum(map(len, map(_rules_of, t.chains))) + len(t.sets)
                                 + sum(len(st.elements) for st in t.sets) for t in tables)
    return -1


_rules_of = attrgetter("rules")


# ``tables_from`` (version 5): where a stored rule set's tables are, when not in the file
_TablesFrom = Annotated[Optional[Literal["evidence"]], Field(
    description="'evidence': the tables are not stored here; they are read, by this rule set's parser, "
                "from the stdout of the node's evidence ``evidence_id``, which the snapshot stores unchanged")]


class Iptables(_ReadFromText, Record):
    family: Literal["ipv4", "ipv6"] = "ipv4"
    backend: Optional[str] = None  # "nf_tables" | "legacy" | None (unknown)
    tables: dict[str, IptTable] = Field(default_factory=dict)
    evidence_id: Optional[str] = None
    backends: list[IptablesBackend] = Field(default_factory=list)  # both backends held rules
    note: Optional[str] = None  # which of them is shown, and why
    tables_from: _TablesFrom = None  # in memory always None: load reads the tables in


# nftables: tables → chains (rules) and sets/maps (elements). A rule keeps the text nft
# printed (the evidence a person reads) and its statements, parsed once by parsers/nft:
# analysis reads the statements, never the text. Expressions and statements are tagged
# by ``kind``; values are ints, strings ("tcp", "10.0.0.1", "@set-name") or tagged models.


class _Shared(Record):
    """A table, chain, rule or element: after loading, records that were read with the same
    fields share one ``__pydantic_fields_set__`` set, and those without unknown fields one
    empty ``__pydantic_extra__`` (``share_records``): a 10,000-Service kube-proxy table has
    ~150,000 records, and their own set and dict are ~40 MB. Setting an attribute gives
    the record its own again first, so no record's set or extras is changed through another."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).model_fields:
            if name not in self.__pydantic_fields_set__:
                object.__setattr__(self, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        elif self.__pydantic_extra__ is _NO_EXTRA:
            object.__setattr__(self, "__pydantic_extra__", {})
        super().__setattr__(name, value)


_NO_EXTRA: dict[str, Any] = {}  # the shared extras of records without unknown fields: never written to


def share_records(ruleset: Optional[NftRuleset]) -> None:
    """Let the loaded records of ``ruleset`` share their fields sets and empty extras
    (:class:`_Shared`)."""
    if ruleset is None:
        return
    sets: dict[frozenset[str], set[str]] = {}
    put = object.__setattr__

    def share(records: list[Any]) -> None:
        last: Any = None
        for r in records:
            fs = r.__pydantic_fields_set__
            if fs is not last:
                if fs == last:
                    put(r, "__pydantic_fields_set__", last)
                else:
                    last = sets.setdefault(frozenset(fs), fs)
                    if last is not fs:
                        put(r, "__pydantic_fields_set__", last)
            if not r.__pydantic_extra__ and r.__pydantic_extra__ is not None:
                put(r, "__pydantic_extra__", _NO_EXTRA)

    for t in ruleset.tables:
        share(t.chains)
        for c in t.chains:
            share(c.rules)
        share(t.sets)
        for st in t.sets:
            share(st.elements)
            share([e.value for e in st.elements if isinstance(e.value, NftVerdict)])  # a verdict map's


class NftPayload(Record):
    """``ip daddr``, ``tcp dport``, ``th dport``: a header field."""

    kind: Literal["payload"] = "payload"
    protocol: str
    field: str


class NftMeta(Record):
    """``meta l4proto``, ``iifname``, ``meta mark``."""

    kind: Literal["meta"] = "meta"
    key: str


class NftCt(Record):
    """``ct state``, ``ct status``, ``ct original daddr``."""

    kind: Literal["ct"] = "ct"
    key: str
    dir: Optional[str] = None
    family: Optional[str] = None


class NftFib(Record):
    """``fib daddr type``, ``fib saddr . iif oif``: a routing lookup."""

    kind: Literal["fib"] = "fib"
    result: str
    flags: list[str] = Field(default_factory=list)


class NftNumgen(Record):
    """``numgen random mod 3`` (kube-proxy's endpoint choice)."""

    kind: Literal["numgen"] = "numgen"
    mode: str = "random"
    mod: int
    offset: int = 0


class NftConcat(Record):
    """``ip daddr . meta l4proto . th dport`` (a concatenated key), or its value."""

    kind: Literal["concat"] = "concat"
    parts: list[NftValue] = Field(default_factory=list)


class NftBinop(Record):
    """``meta mark & 0x4000``, ``meta mark | 0x4000``."""

    kind: Literal["binop"] = "binop"
    op: str  # & | ^ << >>
    left: NftValue
    right: NftValue


class NftPrefix(Record):
    kind: Literal["prefix"] = "prefix"
    addr: str
    len: int


class NftRange(Record):
    kind: Literal["range"] = "range"
    low: NftValue
    high: NftValue


class NftSetLiteral(Record):
    """An anonymous set: ``{ 80, 443 }``."""

    kind: Literal["set"] = "set"
    items: list[NftValue] = Field(default_factory=list)


class NftMapEntry(Record):
    """One ``key : value`` of a map literal (a vmap's ``0 : goto endpoint-…``)."""

    key: NftValue
    value: NftValue


class NftMapLookup(Record):
    """``tcp dport map @ports`` / ``tcp dport map { 80 : 10.0.0.1 }``."""

    kind: Literal["map"] = "map"
    key: NftValue
    map: Optional[str] = None  # a named map: "@ports"
    entries: list[NftMapEntry] = Field(default_factory=list)  # an anonymous one


class NftVerdict(_Shared):
    """``accept``, ``drop``, ``return``, ``jump X``, ``goto X`` (also a verdict map's data)."""

    kind: Literal["verdict"] = "verdict"
    verdict: str  # accept | drop | return | continue | queue | jump | goto
    target: Optional[str] = None  # the chain of jump/goto


class NftRaw(Record):
    """An expression or statement labreport does not model, as nft's JSON (compact)."""

    kind: Literal["raw"] = "raw"
    raw: str


class NftMatch(Record):
    """``left op right``: ``ip daddr 10.96.0.1``, ``ct state { established, related }``,
    ``ip saddr @affinity-…``; ``op`` "==" when nft prints none, "in" for flags (JSON)."""

    kind: Literal["match"] = "match"
    op: str = "=="
    left: NftValue
    right: NftValue


class NftVmap(Record):
    """``<key> vmap @name`` or ``<key> vmap { k : verdict, … }``."""

    kind: Literal["vmap"] = "vmap"
    key: NftValue
    map: Optional[str] = None  # "@service-ips"
    entries: list[NftMapEntry] = Field(default_factory=list)


class NftNat(Record):
    """``dnat to 10.0.0.1:80``, ``snat ip to …``, ``masquerade fully-random``,
    ``dnat to tcp dport map @ports`` (``addr`` a map lookup)."""

    kind: Literal["nat"] = "nat"
    type: Literal["dnat", "snat", "masquerade", "redirect"]
    family: Optional[str] = None
    addr: Optional[NftValue] = None
    port: Optional[NftValue] = None
    flags: list[str] = Field(default_factory=list)


class NftSetUpdate(Record):
    """``update @affinity-… { ip saddr }``: adds the packet's key to a dynamic set."""

    kind: Literal["set_update"] = "set_update"
    op: str  # update | add | delete
    set: str  # "@affinity-…"
    elem: Optional[NftValue] = None


class NftMangle(Record):
    """``meta mark set meta mark | 0x4000``."""

    kind: Literal["mangle"] = "mangle"
    key: NftValue
    value: NftValue


class NftCounter(Record):
    kind: Literal["counter"] = "counter"
    packets: Optional[int] = None
    bytes: Optional[int] = None


class NftReject(Record):
    kind: Literal["reject"] = "reject"
    type: Optional[str] = None  # icmp | icmpx | tcp reset …
    expr: Optional[str] = None  # port-unreachable …


class NftXt(Record):
    """An iptables-nft xtables extension (``xt target DNAT``): nft shows it by name only."""

    kind: Literal["xt"] = "xt"
    type: Optional[str] = None
    name: Optional[str] = None


class NftOther(Record):
    """A statement labreport does not model: the words as printed (``text``) or nft's
    JSON (``raw``). The rule's full text is always in ``NftRule.text``."""

    kind: Literal["other"] = "other"
    text: Optional[str] = None
    raw: Optional[str] = None


# A value: a scalar, or one of the tagged expressions (told apart by ``kind`` in pydantic's
# core: no Python call per value).
NftExpr = Annotated[
    Union[NftPayload, NftMeta, NftCt, NftFib, NftNumgen, NftConcat, NftBinop, NftPrefix, NftRange, NftSetLiteral,
          NftMapLookup, NftVerdict, NftRaw],
    Field(discriminator="kind"),
]
NftValue = Union[bool, int, str, NftExpr]

NftStatement = Annotated[
    Union[NftMatch, NftVerdict, NftVmap, NftNat, NftSetUpdate, NftMangle, NftCounter, NftReject, NftXt, NftOther],
    Field(discriminator="kind"),
]


class NftRule(_Shared):
    """One rule. ``expr``, its typed statements, is read from ``text`` when first used (the
    parsers' own reader, :func:`labreport.parsers.nft.build.statements_of_text`): a
    10,000-Service ruleset's ~600,000 statement models are neither built, written nor
    validated for the rules nobody reads. ``typed`` holds the statements of a rule whose
    text is not where they come from (nft's JSON input; version-2 snapshots)."""

    text: str  # as nft prints it (from JSON input: rendered back into nft syntax)
    typed: Optional[list[NftStatement]] = None
    comment: Optional[str] = None
    handle: Optional[int] = None
    line_no: Optional[int] = None

    @cached_property
    def expr(self) -> list[NftStatement]:
        if self.typed is not None:
            return self.typed
        return _statements_of_text(self.text)

    def read_shape(self, what: str) -> tuple[bool, Any]:
        """``(True, answer)`` for a rule read from text in one of the shapes kube-proxy writes
        by the ten thousand: what a decoder reads of its statements, read from the text's
        shape without building them (:mod:`labreport.parsers.nft.fast`); ``(False, None)``
        for any other rule (read ``expr``). ``what``: "numgen" (``(mod, [(index, chain)])``
        or None), "dnat" (``addr[:port]`` or None), "targets" (the jump/goto targets of its
        statements), "set_refs" (the ``@set`` right-hand sides of its matches)."""
        if self.typed is not None:
            return False, None
        if not _SHAPE_READERS:
            from labreport.parsers.nft import fast

            _SHAPE_READERS.update(numgen=fast.numgen_of, dnat=fast.dnat_of, targets=fast.targets_of,
                                  set_refs=fast.set_refs_of, miss=fast.MISS)
        got = _SHAPE_READERS[what](self.text)
        return (False, None) if got is _SHAPE_READERS["miss"] else (True, got)


_STATEMENTS: list[Any] = []  # [TypeAdapter(list[NftStatement])], built when first used
_SHAPE_READERS: dict[str, Any] = {}  # NftRule.read_shape's readers (parsers/nft/fast.py), imported when first used


def _statements_of_text(text: str) -> list[Any]:
    from labreport.parsers.nft.build import statements_of_text

    if not _STATEMENTS:
        from pydantic import TypeAdapter

        _STATEMENTS.append(TypeAdapter(list[NftStatement]))
    stmts, _comment = statements_of_text(text)
    try:
        out: list[Any] = _STATEMENTS[0].validate_python(stmts)
    except ValueError:  # pydantic.ValidationError: a shape the reader got wrong; the words, as a reader would keep them
        out = [NftOther(text=text)]
    return out


class NftChain(_Shared):
    name: str
    type: Optional[str] = None  # filter | nat | route
    hook: Optional[str] = None
    priority: Optional[str] = None  # as printed: "dstnat - 10", "-110", "srcnat"
    prio: Optional[int] = None  # numeric value when known
    policy: Optional[str] = None
    device: Optional[str] = None
    comment: Optional[str] = None
    rules: list[NftRule] = Field(default_factory=list)
    handle: Optional[int] = None
    line_no: Optional[int] = None


class NftElement(_Shared):
    key: list[NftValue] = Field(default_factory=list)  # one item per concatenated component
    value: Optional[NftValue] = None  # maps: a verdict (verdict maps) or the data
    comment: Optional[str] = None
    timeout: Optional[float] = None  # seconds
    expires: Optional[float] = None  # seconds left (live elements of dynamic sets)
    text: Optional[str] = None  # as nft printed it


class NftSet(_Shared):
    """A set or a map (``kind``); ``type`` lists the concatenated key types, ``map`` is a
    map's data type ("verdict", "ipv4_addr" …), ``timeout`` in seconds."""

    name: str
    kind: str = "set"  # "set" | "map"
    type: list[str] = Field(default_factory=list)
    map: Optional[str] = None
    flags: list[str] = Field(default_factory=list)
    timeout: Optional[float] = None
    size: Optional[int] = None
    comment: Optional[str] = None
    elements: list[NftElement] = Field(default_factory=list)
    handle: Optional[int] = None
    line_no: Optional[int] = None


class NftTable(_Shared):
    family: str
    name: str
    handle: Optional[int] = None
    comment: Optional[str] = None
    flags: list[str] = Field(default_factory=list)
    chains: list[NftChain] = Field(default_factory=list)
    sets: list[NftSet] = Field(default_factory=list)  # sets and maps
    other: list[str] = Field(default_factory=list)  # flowtables, named objects … kept verbatim
    line_no: Optional[int] = None

    def chain(self, name: str) -> Optional[NftChain]:
        for c in self.chains:
            if c.name == name:
                return c
        return None

    def set(self, name: str) -> Optional[NftSet]:
        for s in self.sets:
            if s.name == name:
                return s
        return None




class NftRuleset(_ReadFromText, Record):
    """``nft list ruleset``, structured (parsers/nft)."""

    tables: list[NftTable] = Field(default_factory=list)
    evidence_id: Optional[str] = None
    tables_from: _TablesFrom = None  # in memory always None: load reads the tables in


# IPVS


class IpvsRealServer(Record):
    address: str
    port: Optional[int] = None
    port_text: Optional[str] = None  # the port as printed when it is a name ("http")
    forward: Optional[str] = None  # Masq | Local | Route | Tunnel
    weight: Optional[int] = None
    active_conn: Optional[int] = None
    inact_conn: Optional[int] = None
    persist_conn: Optional[int] = None
    stats: dict[str, int] = Field(default_factory=dict)
    text: str = ""
    line_no: Optional[int] = None


class IpvsVirtualServer(Record):
    protocol: str  # TCP | UDP | SCTP | FWM
    address: str  # IP (IPv6 without brackets), host name as printed, or the fwmark for FWM
    port: Optional[int] = None
    port_text: Optional[str] = None
    fwmark: Optional[int] = None
    scheduler: Optional[str] = None
    persistent: Optional[int] = None  # seconds
    netmask: Optional[str] = None
    flags: list[str] = Field(default_factory=list)
    stats: dict[str, int] = Field(default_factory=dict)
    real_servers: list[IpvsRealServer] = Field(default_factory=list)
    text: str = ""
    line_no: Optional[int] = None

    @property
    def endpoint(self) -> str:
        if self.protocol == "FWM":
            return f"FWM {self.address}"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port if self.port is not None else (self.port_text or '')}"


class Ipvs(Record):
    """``ipvsadm -Ln``, structured (parsers/ipvsadm)."""

    virtual_servers: list[IpvsVirtualServer] = Field(default_factory=list)
    listing: Optional[str] = None  # what was listed: list | stats | rate | persistent
    evidence_id: Optional[str] = None


class ConntrackTuple(Record):
    """One direction of a tracked connection, as conntrack prints it (src= dst= sport= dport=;
    ICMP has type/code/id instead of ports)."""

    src: str
    dst: str
    sport: Optional[int] = None
    dport: Optional[int] = None


class ConntrackEntry(Record):
    """A connection the kernel tracked (``conntrack -L`` / /proc/net/nf_conntrack). The reply
    tuple is what the other end answers with: its ``src`` is the endpoint the connection
    reached (after DNAT), and a reply ``dst`` other than the original ``src`` means the
    source was rewritten (SNAT/masquerade)."""

    family: Literal["ipv4", "ipv6"] = "ipv4"
    protocol: str  # tcp, udp, icmp, sctp … (or the number when conntrack has no name)
    timeout: Optional[int] = None  # seconds left
    state: Optional[str] = None  # TCP/SCTP state: ESTABLISHED, TIME_WAIT, SYN_SENT …
    original: ConntrackTuple
    reply: ConntrackTuple
    flags: list[str] = Field(default_factory=list)  # ASSURED, UNREPLIED, OFFLOAD …
    mark: Optional[int] = None
    zone: Optional[int] = None

    @property
    def endpoint(self) -> str:
        """Where the connection really went: the reply's source (ip:port when it has ports)."""
        return self.reply.src if self.reply.sport is None else f"{self.reply.src}:{self.reply.sport}"

    @property
    def dnat(self) -> bool:
        return self.reply.src != self.original.dst or self.reply.sport != self.original.dport

    @property
    def snat(self) -> bool:
        return self.reply.dst != self.original.src or self.reply.dport != self.original.sport


class Conntrack(Record):
    """The node's conntrack table at collection time (bounded: ``truncated`` when cut)."""

    entries: list[ConntrackEntry] = Field(default_factory=list)
    truncated: bool = False
    total: Optional[int] = None  # entries the kernel listed (before any cut)
    evidence_id: Optional[str] = None


class CiliumBackend(Record):
    """One backend of a Cilium load-balancer frontend (``1 => 10.0.0.5:80/TCP (active)``)."""

    address: str  # ip:port
    protocol: Optional[str] = None  # TCP/UDP/SCTP when printed (Cilium ≥ 1.16)
    state: Optional[str] = None  # active, terminating, quarantined, maintenance (when printed)
    index: Optional[int] = None  # the "N =>" number (service list) or the slot (bpf lb list)
    rev_nat_id: Optional[int] = None  # bpf lb list: the reverse-NAT index (= the service ID)


class CiliumService(Record):
    """A frontend of Cilium's service table (kube-proxy replacement): ``cilium-dbg service
    list`` rows or ``cilium-dbg bpf lb list`` entries."""

    id: Optional[int] = None  # service ID (service list) / rev-NAT ID (bpf lb list)
    frontend: str  # ip:port ("0.0.0.0:31940": a NodePort on every node address)
    protocol: Optional[str] = None
    type: Optional[str] = None  # ClusterIP, NodePort, LoadBalancer, ExternalIPs, HostPort, LocalRedirect …
    flags: list[str] = Field(default_factory=list)  # bpf lb list: non-routable, InternalLocal, Local …
    backends: list[CiliumBackend] = Field(default_factory=list)


class CiliumServiceTable(Record):
    source: Literal["service-list", "bpf-lb-list"] = "service-list"
    services: list[CiliumService] = Field(default_factory=list)
    evidence_id: Optional[str] = None


# --------------------------------------------------------------------------- node


class NodeInfo(Record):
    hostname: Optional[str] = None
    kernel: Optional[str] = None
    os: Optional[str] = None
    arch: Optional[str] = None
    versions: dict[str, str] = Field(default_factory=dict)  # kubelet, containerd, docker, runc …
    sysctls: dict[str, str] = Field(default_factory=dict)
    modules: list[str] = Field(default_factory=list)  # loaded kernel modules of interest
    cgroup_version: Optional[int] = None
    cgroup_drivers: dict[str, str] = Field(default_factory=dict)  # {"kubelet": "systemd", "containerd": "systemd"}
    kube_proxy_mode: Optional[str] = None  # from kube-proxy's config, when known
    cri_socket: Optional[str] = None
    cni_config: Optional[str] = None


class NodeSnapshot(Record):
    name: str
    # how the node was reached: this host, an import, SSH, a collector pod through the API
    source: Literal["live", "import", "ssh", "api", "pod"] = "live"
    collected_at: Optional[str] = None  # ISO 8601 UTC
    collect_duration_s: Optional[float] = None  # how long collection took on the node
    status: Literal["ok", "partial", "failed"] = "ok"
    error: Optional[str] = None  # why the node is missing/partial (e.g. ssh failed)
    info: NodeInfo = Field(default_factory=NodeInfo)
    processes: list[Process] = Field(default_factory=list)
    containers: list[Container] = Field(default_factory=list)
    netns: list[NetNamespace] = Field(default_factory=list)  # kind="node" first
    iptables: Optional[Iptables] = None
    ip6tables: Optional[Iptables] = None
    nftables: Optional[NftRuleset] = None
    ipvs: Optional[Ipvs] = None
    conntrack: Optional[Conntrack] = None  # tracked connections (live collection)
    cilium: Optional[CiliumServiceTable] = None  # Cilium's service table (kube-proxy replacement; import)
    collectors: list[CollectorStatus] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    warnings: list[ParseWarning] = Field(default_factory=list)

    def node_netns(self) -> Optional[NetNamespace]:
        for ns in self.netns:
            if ns.kind == "node":
                return ns
        return None

    def evidence_by_id(self, evidence_id: str) -> Optional[Evidence]:
        for ev in self.evidence:
            if ev.id == evidence_id:
                return ev
        return None


# --------------------------------------------------------------------------- cluster


class ClusterObjects(Record):
    """The cluster's objects exactly as the Kubernetes API returned them (JSON dicts, as in
    ``kubectl get … -o json`` items), so nothing is lost and new fields need no code."""

    source: Literal["api", "import"] = "api"
    server: Optional[str] = None
    error: Optional[str] = None  # "no cluster reachable: …"
    version: Optional[dict[str, Any]] = None
    nodes: list[dict[str, Any]] = Field(default_factory=list)
    pods: list[dict[str, Any]] = Field(default_factory=list)
    services: list[dict[str, Any]] = Field(default_factory=list)
    endpointslices: list[dict[str, Any]] = Field(default_factory=list)
    endpoints: list[dict[str, Any]] = Field(default_factory=list)
    deployments: list[dict[str, Any]] = Field(default_factory=list)
    replicasets: list[dict[str, Any]] = Field(default_factory=list)
    hpas: list[dict[str, Any]] = Field(default_factory=list)
    configmaps: list[dict[str, Any]] = Field(default_factory=list)  # kube-proxy's, kubeadm-config
    other: list[dict[str, Any]] = Field(default_factory=list)
    # each object's manifest as applied: {"kind", "namespace", "name", "source":
    # "last-applied" | "cleaned", "manifest": {...}} (labreport.cluster.manifests)
    manifests: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # a resource that could not be listed (403/404), redactions
    # lines of imported kubectl files the parser did not understand (labreport import)
    parse_warnings: list[ParseWarning] = Field(default_factory=list)


class Redaction(Record):
    """Whether the secrets were taken out when the snapshot was written (labreport.redact).
    ``off``: the user asked to keep them (``--no-redact``); ``kinds``: what was replaced;
    ``catalogue``: the fingerprint of the redaction that did it (``redact.CATALOGUE``): a
    later command with the same redaction need not walk the snapshot again (it still judges
    the file's text, ``redact.note_loaded``); None: written before labreport recorded it."""

    mode: Literal["on", "off"] = "on"
    kinds: list[str] = Field(default_factory=list)
    catalogue: Optional[str] = None


class Snapshot(Record):
    # pydantic's JSON reader keeps its default cache of short strings: reading without it
    # (cache_strings="none") validated a 10,000-Service nft snapshot 8 % faster (206 → 190 ms),
    # its short strings mostly distinct, but made the 500-node snapshot, whose nodes repeat
    # the same daemons and rules, 33 MB larger in memory and `analyze --json` 4 % slower.

    schema_version: int = SCHEMA_VERSION
    tool: str = "labreport"
    tool_version: Optional[str] = None
    created_at: Optional[str] = None
    title: Optional[str] = None
    origin_note: Optional[str] = None  # where this snapshot came from (samples must say)
    nodes: list[NodeSnapshot] = Field(default_factory=list)
    cluster: Optional[ClusterObjects] = None
    redaction: Optional[Redaction] = None  # None: written before labreport redacted snapshots

    def node(self, name: str) -> Optional[NodeSnapshot]:
        for n in self.nodes:
            if n.name == name:
                return n
        return None


# --------------------------------------------------------------------------- I/O


def snapshot_path(path: str | os.PathLike[str]) -> Path:
    """Accept the snapshot directory or its snapshot.json."""
    p = Path(path)
    if p.is_dir():
        return p / SNAPSHOT_FILE
    return p


# a collect run in progress (labreport.transport.parts writes it): DIR/run.json names the
# planned nodes, DIR/nodes/NNNNN-NAME.json holds each node that arrived
RUN_FILE = "run.json"
PARTS_DIR = "nodes"


def _missing_node(name: str, why: str) -> NodeSnapshot:
    return NodeSnapshot(name=name, source="ssh", status="failed", error=why, collected_at=None,
                        collectors=[CollectorStatus(name="run", ok=False, reason=why,
                                                    fix="collect this node again")])


def _parts_by_index(root: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for p in sorted((root / PARTS_DIR).glob("*.json")):
        head = p.name.split("-", 1)[0]
        if head.isdigit():
            found[int(head)] = p
    return found


def load_partial(directory: Path) -> Snapshot:
    """The nodes a run finished before it was killed (run.json + DIR/nodes/*), each node
    it had not finished marked failed."""
    try:
        run: Any = json.loads((directory / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{directory / RUN_FILE}: unreadable ({exc})") from None
    names = run.get("nodes") if isinstance(run, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SnapshotError(f"{directory / RUN_FILE}: no node list; not a labreport run")
    found = _parts_by_index(directory)
    nodes: list[Any] = []
    for i, name in enumerate(names):
        p = found.get(i)
        if p is None:
            nodes.append(_missing_node(name, "the run was stopped (killed) before this node finished").model_dump(mode="json"))
            continue
        try:
            nodes.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            nodes.append(_missing_node(name, f"its part {p.name} is unreadable: {exc}").model_dump(mode="json"))
    snap = from_dict({"schema_version": SCHEMA_VERSION, "tool_version": run.get("tool_version"),
                      "created_at": run.get("started_at"), "nodes": nodes,
                      "origin_note": "a partial snapshot: the collect run that wrote it was killed before it finished "
                                     f"({len(found)} of {len(names)} nodes arrived)"},
                     where=str(directory))
    if snap.cluster is None:
        snap.cluster = ClusterObjects(error="not collected: the run was killed before the API part was stored")
    return snap


def load(path: str | os.PathLike[str], *,
         on_read: Optional[Callable[[Snapshot, bytes, Path], Any]] = None) -> Snapshot:
    """Load a snapshot from a directory (or its snapshot.json). Raises SnapshotError.

    A directory holding a collect run that was killed before it finished (``run.json``
    and its per-node parts, written by labreport.transport.parts) loads as that partial snapshot.
    ``on_read(snap, raw, path)``: called with a file of this version as read straight into
    the snapshot, the file's bytes and its path (a command that redacts passes
    ``redact.note_loaded``: a file that this very redaction wrote is not dumped and judged
    again; its bytes are, unless ``judged_by(path, raw)`` says they are those it judged)."""
    if Path(path).is_dir() and (Path(path) / RUN_FILE).is_file():
        return load_partial(Path(path))
    p = snapshot_path(path)
    try:
        from labreport.privilege import open_for_user

        fh, _ = open_for_user(str(p))  # under sudo: with the rights of the user who ran it
        with fh:
            raw = fh.read()
    except FileNotFoundError:
        raise SnapshotError(f"no snapshot at {path}: {p} does not exist") from None
    except OSError as exc:
        raise SnapshotError(f"cannot read {p}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise SnapshotError(f"{p} is empty")
    from labreport.perf import gc_paused

    # a large snapshot is ~10^5 small acyclic objects, living as long as the command (frozen)
    with gc_paused(freeze=True):
        with fastbins_off(len(raw) > COMPACT_ABOVE_BYTES):
            snap = _load_current(raw, str(p))
        if snap is not None and on_read is not None:
            on_read(snap, raw, p)  # read as written: the file's text is the snapshot's JSON
        if snap is None:  # an older version, or something wrong: the checked path says what
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise SnapshotError(f"{p} is not valid JSON: {exc}") from None
            snap = from_dict(data, where=str(p))
    if len(raw) > COMPACT_ABOVE_BYTES:
        del raw
        release_freed_memory()
    return snap


def release_freed_memory() -> None:
    """Give the heap memory freed so far back to the system (glibc's ``malloc_trim``; a
    no-op elsewhere). Reading a large file leaves the parsed JSON's transient values free
    but resident, and a command's peak RSS then grows from there: measured on a
    10,000-Service snapshot, 157 → 110 MB resident after the load, in 10 ms."""
    trim = _libc_function("malloc_trim")
    if trim is not None:  # not glibc (musl, macOS, Windows): nothing to give back this way
        trim(0)


def _libc_function(name: str) -> Optional[Callable[..., int]]:
    """The function ``name`` of the C library the process runs with, or None where it has none."""
    try:
        import ctypes

        fn: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, ImportError, TypeError):
        return None
    return fn


# glibc's mallopt parameter M_MXFAST (malloc.h) and its default on 64-bit systems, 64 * sizeof(size_t) / 4
_M_MXFAST, _DEFAULT_MXFAST = 1, 128


@contextlib.contextmanager
def fastbins_off(on: bool = True) -> Iterator[None]:
    """While the block runs (if ``on``), glibc's malloc keeps no "fast bins" (``mallopt(M_MXFAST,
    0)``; default again after): a chunk freed goes back to the heap at once. Validating a large
    snapshot's JSON builds and frees a tree of ~10^5 small allocations in pydantic's core, which
    fast bins would keep apart until the next large allocation merges them all in one pass:
    measured on a 10,000-Service iptables snapshot, that pass was a 17-19 ms stall after the
    validation (in the next ``open``), gone this way, the validation itself as fast. A no-op
    where the C library is not glibc, or when ``GLIBC_TUNABLES`` sets glibc.malloc.mxfast
    (whose value there is no call to read back)."""
    mallopt = _glibc_mallopt() if on else None
    if mallopt is None or not mallopt(_M_MXFAST, 0):
        yield
        return
    try:
        yield
    finally:
        mallopt(_M_MXFAST, _DEFAULT_MXFAST)


def _glibc_mallopt() -> Optional[Callable[[int, int], int]]:
    """glibc's ``mallopt``, or None: another C library, or fast bins tuned by the environment."""
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):  # not glibc (or no confstr: Windows)
        return None
    if not glibc or "mxfast" in os.environ.get("GLIBC_TUNABLES", ""):
        return None
    return _libc_function("mallopt")


_VERSION_RE = re.compile(rb'^\s*\{\s*"schema_version"\s*:\s*(\d+)\s*[,}]')


# versions this one reads as they are: a version-3 file differs only in its iptables
# rules, which IptChain.rules reads in both shapes; versions 3 and 4 hold no rule set
# stored as a reference to its evidence (``tables_from``), which is all version 5 adds
_READ_AS_IS = (3, 4, SCHEMA_VERSION)


def _load_current(raw: bytes, where: str) -> Optional[Snapshot]:
    """A snapshot of this version (what ``save`` writes: ``schema_version`` first) or of
    version 3, read and validated in one pass by pydantic's core (no Python dicts in
    between); None when it is of another version or not valid, for ``from_dict`` to judge
    and explain."""
    m = _VERSION_RE.match(raw[:200])
    if m is None or int(m.group(1)) not in _READ_AS_IS:
        return None
    try:
        snap = Snapshot.model_validate_json(raw)
    except ValueError:  # pydantic.ValidationError (invalid JSON included)
        return None
    _check_nodes(snap, where)
    snap.schema_version = SCHEMA_VERSION
    for n in snap.nodes:
        share_records(n.nftables)
    read_referenced_tables(snap, where)
    return snap


def _check_nodes(snap: Snapshot, where: str) -> None:
    seen: set[str] = set()
    for n in snap.nodes:
        if n.name in seen:
            raise SnapshotError(f"{where}: node {n.name!r} appears more than once; a snapshot holds each node once")
        seen.add(n.name)


def from_dict(data: Any, where: str = "snapshot") -> Snapshot:
    if not isinstance(data, dict):
        raise SnapshotError(f"{where}: expected a JSON object at the top level")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SnapshotError(f"{where}: no integer schema_version; is this a labreport snapshot?")
    if version < 1:
        raise SnapshotError(f"{where}: schema_version {version} is not a valid version (versions start at 1)")
    if version > SCHEMA_VERSION:
        # An incompatible format from a newer labreport: guessing at it would misreport.
        raise SnapshotError(f"{where}: schema_version {version} is newer than this labreport reads "
                            f"(schema_version {SCHEMA_VERSION}); upgrade labreport to read it")
    if version < SCHEMA_VERSION:
        upgrade(data)
    # NodeSnapshot's schema before Snapshot's, which then reuses it: the redaction judges a
    # snapshot of another version node by node, and a NodeSnapshot built only inside
    # Snapshot's schema would be built again, on its own (~20 ms; perf.complete_models)
    NodeSnapshot.model_rebuild()
    try:
        snap = Snapshot.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError, with its full path list
        raise SnapshotError(f"{where}: not a valid snapshot: {_short_error(exc)}") from None
    _check_nodes(snap, where)
    read_referenced_tables(snap, where)
    return snap


# -- rule sets stored as a reference to their evidence (version 5, ``tables_from``)
#
# A rule set its parser read verbatim from a command's output (``source_text``) holds what
# that text says, and the snapshot keeps the text as the node's evidence: ``save`` writes
# the rule set's own fields without its tables (~10^5 records for a 10,000-Service node,
# the file's largest part, written and validated again for nothing), and ``load`` reads
# them again from the evidence with the same parser, giving the same models.

_REFERABLE = ("iptables", "ip6tables", "nftables")  # the rule sets load reads from their evidence
# those save writes so: not nft's, whose text parser (~0.4 s for a 10,000-Service listing)
# costs more at load than validating its stored tables (~0.25 s): measured, import 0.10 s
# faster, analyze 0.15 s slower and 14 MB larger (bench_nft.py's listing, CPU best of 5)
_WRITTEN_AS_REFERENCES = ("iptables", "ip6tables")


# the parser (labreport.parsers' registry: the one import and collect use) of each rule set
_PARSER_OF = {"iptables": "iptables-save", "ip6tables": "iptables-save", "nftables": "nft"}


def _parser_of(key: str) -> Callable[..., Any]:
    from labreport.parsers import get as parser_named  # by name: the parsers build this module's models

    parse: Callable[..., Any] = parser_named(_PARSER_OF[key]).parse
    return parse


def _referable(node: NodeSnapshot, key: str) -> bool:
    """Whether ``node``'s rule set ``key`` is what its parser reads from the stdout of the
    evidence it names, kept in the node as it is (the first evidence of that id, as load finds it)."""
    ruleset = getattr(node, key)
    if ruleset is None or ruleset.evidence_id is None:
        return False
    text = ruleset.source_text
    if text is None:
        return False
    ev = node.evidence_by_id(ruleset.evidence_id)
    return ev is not None and (ev.stdout is text or ev.stdout == text)


def _with_references(snap: Snapshot) -> tuple[Snapshot, dict[int, set[str]]]:
    """``snap`` for writing: each referable rule set (``_referable``) a copy marked
    ``tables_from="evidence"``, and which node's which rule sets those are (their tables to
    be left out of the dump); ``snap`` itself when none is."""
    refs: dict[int, set[str]] = {}
    nodes = list(snap.nodes)
    for i, node in enumerate(nodes):
        keys = {key for key in _WRITTEN_AS_REFERENCES if _referable(node, key)}
        if keys:
            refs[i] = keys
            nodes[i] = node.model_copy(update={
                key: getattr(node, key).model_copy(update={"tables_from": "evidence"}) for key in keys})
    return (snap.model_copy(update={"nodes": nodes}) if refs else snap), refs


def read_referenced_tables(snap: Snapshot, where: str = "snapshot") -> None:
    """Each rule set stored as a reference to its evidence (``tables_from``) given its tables
    again, read from that evidence by its parser (in place). A reference to evidence the node
    does not hold, or to a text that no longer reads as rules, is a SnapshotError."""
    for node in snap.nodes:
        for key in _REFERABLE:
            ruleset = getattr(node, key)
            if ruleset is not None and ruleset.tables_from is not None:
                _read_tables(node, key, ruleset, where)


def _read_tables(node: NodeSnapshot, key: str, ruleset: Any, where: str) -> None:
    what = f"{where}: node {node.name!r}: {key}"
    ev = node.evidence_by_id(ruleset.evidence_id) if isinstance(ruleset.evidence_id, str) else None
    if ev is None or not ev.stdout:
        raise SnapshotError(f"{what} is stored as the text of evidence {ruleset.evidence_id!r}, "
                            "which the node does not hold (or holds empty): the file was edited or cut")
    if ruleset.tables:
        raise SnapshotError(f"{what} holds tables and says they are read from evidence {ruleset.evidence_id!r}; "
                            "a snapshot says one or the other")
    try:
        parsed = _parser_of(key)(ev.stdout, source=ev.id).value
    except ParseError as exc:
        raise SnapshotError(f"{what}: its tables are read from evidence {ev.id!r}, whose text does not read "
                            f"as its rules any more: {_short_error(exc, 500)}") from None
    ruleset.tables = parsed.tables
    ruleset.tables_from = None
    ruleset.set_source_text(ev.stdout)
    if key == "nftables":
        share_records(ruleset)


def _short_error(exc: Exception, limit: int = 2000) -> str:
    """A validation error, bounded: a hostile snapshot can make pydantic list thousands
    of errors (and quote the input in each)."""
    text = str(exc)
    if len(text) > limit:
        text = text[:limit] + f" … ({len(text) - limit} more characters)"
    return text


def upgrade(data: dict[str, Any]) -> None:
    """An older snapshot to this version, in place (``data["schema_version"]`` says which)."""
    version = data.get("schema_version")
    if isinstance(version, int) and version < 2:
        upgrade_v1(data)  # its rules come out in version 3's shape
    elif isinstance(version, int) and version < 3:
        upgrade_nft_v2(data)
    # version 3 → 4: nothing to convert; IptChain.rules reads a version-3 list of rules too
    # version 4 → 5: nothing to convert; an older file stores every rule set's tables
    data["schema_version"] = SCHEMA_VERSION


def _nft_rule_lists(data: dict[str, Any]) -> Any:
    nodes = data.get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        nft = node.get("nftables") if isinstance(node, dict) else None
        tables = nft.get("tables") if isinstance(nft, dict) else None
        for table in tables if isinstance(tables, list) else []:
            for chain in (table.get("chains") or []) if isinstance(table, dict) else []:
                rules = chain.get("rules") if isinstance(chain, dict) else None
                if isinstance(rules, list):
                    yield rules


def upgrade_nft_v2(data: dict[str, Any]) -> None:
    """Version 2 → 3, in place: each rule's stored statements (``expr``) become ``typed``,
    so the rule reads as it did (they are not read again from its text)."""
    for rules in _nft_rule_lists(data):
        for r in rules:
            if isinstance(r, dict) and "expr" in r:
                r["typed"] = r.pop("expr")


def upgrade_v1(data: dict[str, Any]) -> None:
    """Version 1 → 3, in place: nft rules stored as text (their statements in nft's JSON
    schema when kept) are rules of this version (statements from the text, or typed from
    the JSON kept); element keys and values become typed."""
    from labreport.parsers.nft.build import new_element, new_rule  # the readers' own builders

    nodes = data.get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        nft = node.get("nftables") if isinstance(node, dict) else None
        tables = nft.get("tables") if isinstance(nft, dict) else None
        for table in tables if isinstance(tables, list) else []:
            if not isinstance(table, dict):
                continue
            for chain in table.get("chains") or []:
                rules = chain.get("rules") if isinstance(chain, dict) else None
                if not isinstance(rules, list):
                    continue
                chain["rules"] = [
                    _upgrade_rule(r, new_rule) if isinstance(r, dict) else r for r in rules
                ]
            for st in table.get("sets") or []:
                elements = st.get("elements") if isinstance(st, dict) else None
                if not isinstance(elements, list):
                    continue
                st["elements"] = [
                    {**e, **new_element(e.get("key") or [], e.get("value"), e.get("text"))}
                    if isinstance(e, dict) and isinstance(e.get("key", []), list) else e
                    for e in elements
                ]


def _upgrade_rule(rule: dict[str, Any], new_rule: Any) -> dict[str, Any]:
    expr = rule.get("expr")
    base = {k: v for k, v in rule.items() if k != "expr"}
    if isinstance(expr, list) and all(isinstance(e, dict) and "kind" in e for e in expr) and expr:
        return {**base, "typed": expr}  # already typed
    built: dict[str, Any] = new_rule(str(rule.get("text") or ""), expr if isinstance(expr, list) else None,
                                     rule.get("comment"), rule.get("handle"), rule.get("line_no"))
    return {**base, **built}


# Above this much command output, the file is written without indentation: a
# 10,000-service node holds ~10^5 rules, and one space per nesting level per line is a
# fifth of the file (and of the time to write and read it).
COMPACT_ABOVE_BYTES = 4_000_000


def dump_bytes(snap: Snapshot, *, references: bool = False) -> bytes:
    """The snapshot.json text, UTF-8, as pydantic's core writes it (no str between). With
    ``references`` (``save``), a rule set read verbatim from evidence the snapshot holds is
    written as a reference to it (``tables_from``), without its tables."""
    size = sum(len(ev.stdout) for n in snap.nodes for ev in n.evidence)
    indent = None if size > COMPACT_ABOVE_BYTES else 1
    refs: dict[int, set[str]] = {}
    if references:
        snap, refs = _with_references(snap)
    exclude = {"nodes": {i: {key: {"tables"} for key in keys} for i, keys in refs.items()}} if refs else None
    try:  # the context lets IpRule leave out the selectors it does not have
        if indent is None and any(n.nftables is not None for n in snap.nodes):
            return _dump_nft_compact(snap, refs)
        return snap.__pydantic_serializer__.to_json(snap, indent=indent, exclude_none=False, exclude=exclude,
                                                    context={"compact": True})
    except TypeError:  # pydantic < 2.7 has no serialization context: every field is written
        return snap.__pydantic_serializer__.to_json(snap, indent=indent, exclude_none=False, exclude=exclude)


def _dump_nft_compact(snap: Snapshot, refs: Optional[dict[int, set[str]]] = None) -> bytes:
    """``dump_bytes`` without indentation, each node's nft rule set written without its
    fields that are None: a 10,000-Service kube-proxy table is ~150,000 tables, chains, rules,
    sets and elements with ~6 such fields each (a third of the file), and a record loaded
    from a file that names a field has it marked as set (``__pydantic_fields_set__``: ~100 MB
    of sets). Every optional field of the nft models defaults to None, so loading gives the
    same models. Pieces of one snapshot joined as JSON: ``schema_version`` first, ``nodes``
    last, a node's ``nftables`` last."""
    ctx = {"compact": True}
    head = Snapshot.__pydantic_serializer__.to_json(snap, exclude={"nodes"}, context=ctx)
    parts: list[Any] = [memoryview(head)[:-1], b',"nodes":[']  # joined once: no copy but the result
    for i, n in enumerate(snap.nodes):
        if i:
            parts.append(b",")
        keys = (refs or {}).get(i, set())
        if n.nftables is None:
            parts.append(n.__pydantic_serializer__.to_json(n, exclude={k: {"tables"} for k in keys} or None,
                                                           context=ctx))
            continue
        rest = n.__pydantic_serializer__.to_json(
            n, exclude={"nftables": True, **{k: {"tables"} for k in keys if k != "nftables"}}, context=ctx)
        nft = n.nftables.__pydantic_serializer__.to_json(
            n.nftables, exclude_none=True, exclude={"tables"} if "nftables" in keys else None, context=ctx)
        parts += [memoryview(rest)[:-1], b',"nftables":' if len(rest) > 2 else b'"nftables":', nft, b"}"]
    parts.append(b"]}")
    return b"".join(parts)


def dumps(snap: Snapshot) -> str:
    return dump_bytes(snap).decode("utf-8")


def save(snap: Snapshot, directory: str | os.PathLike[str]) -> Path:
    """Save as DIR/snapshot.json (atomically), or as the ``.json`` file named. Returns the
    file's path. A snapshot the redaction judged (``mark_judged``) gets its digest beside
    it (``digest_path``); any other leaves none there. A rule set read verbatim from an
    evidence text the snapshot holds is written as a reference to it (``dump_bytes``)."""
    d = Path(directory)
    if d.suffix == ".json":
        target = d
    else:
        target = d / SNAPSHOT_FILE
    data = dump_bytes(snap, references=True)
    judged = _JUDGED.take(snap)
    atomic_write(target, data)
    sidecar = digest_path(target)
    if judged is not None and (digest := content_digest(data)) is not None:
        record = {"file": target.name, "bytes": len(data), "digest": digest, "judged_by": judged}
        try:  # no fsync: a sidecar lost or torn by a power cut only costs the judging it saves
            atomic_write(sidecar, json.dumps(record) + "\n", fsync=False)
        except OSError:
            pass  # the snapshot is written; a later command judges it, as without a digest
    else:
        with contextlib.suppress(OSError):
            sidecar.unlink()
    return target


# -- the digest of a judged snapshot (the redaction's "judged once", labreport.redact)
#
# The file's redaction record is a claim the file makes about itself: a secret pasted into
# snapshot.json after it was written leaves the record as it was. So a command that redacts
# judges a loaded file's bytes again, unless they are exactly the bytes labreport wrote
# after the redaction judged them: ``save`` records their digest in a sidecar beside the
# file, ``.snapshot.json.digest`` (``.NAME.digest`` for a NAME.json). A sidecar, not a field
# in the file: the snapshot's bytes stay as they were (schema, older readers), the digest
# needs no slot inside the bytes it covers, and an edit of the JSON cannot keep it valid
# by accident (any change of a byte changes the digest; the sidecar is not in the JSON the
# user edits). The atomic write and the staging directory of ``import`` keep it beside its
# file; a file copied or published without it is judged as before. Content-addressed: a
# sidecar left from an earlier write only ever matches the bytes it was computed for.


def digest_path(target: Path) -> Path:
    """The sidecar holding the digest of the snapshot file ``target`` as labreport wrote it."""
    return target.with_name(f".{target.name}.digest")


def content_digest(data: bytes, algorithm: Optional[str] = None) -> Optional[str]:
    """``ALGORITHM:HEX`` of ``data``: BLAKE3 (the blake3 package; 7 ms for 37 MB here) when
    installed, else SHA-256 (hashlib; 30 ms, the fastest of hashlib's with SHA-NI: blake2b
    41, sha512 49, md5 54 ms); ``algorithm`` asks for one of the two. None for an
    algorithm this process does not have (the file is then judged)."""
    if algorithm in (None, "blake3"):
        try:
            import blake3
        except ImportError:
            if algorithm is not None:
                return None
        else:
            return "blake3:" + blake3.blake3(data).hexdigest()
    if algorithm in (None, "sha256"):
        import hashlib

        return "sha256:" + hashlib.sha256(data).hexdigest()
    return None


def judged_by(path: Path, raw: bytes) -> Optional[str]:
    """Who judged ``raw``, the bytes just read from ``path``: the catalogue the sidecar
    names (``redact.CATALOGUE`` of the redaction that judged them) when its digest is that
    of ``raw``; None when there is no sidecar, it is unreadable, or it is of other bytes
    (the file was edited, replaced, or written without one)."""
    try:
        from labreport.privilege import open_for_user

        fh, _ = open_for_user(str(digest_path(path)))
        with fh:
            rec = json.loads(fh.read(4096))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict):
        return None
    digest, size, by = rec.get("digest"), rec.get("bytes"), rec.get("judged_by")
    if not isinstance(digest, str) or not isinstance(by, str) or size != len(raw) or isinstance(size, bool):
        return None
    return by if content_digest(raw, digest.split(":", 1)[0]) == digest else None


_V = TypeVar("_V")


class LiveMarks(Generic[_V]):
    """A value marked on live objects, by identity, without keeping them alive: an id is
    reused once its object is gone, so a mark counts only while its weak reference still
    points at that very object (dead ones are dropped at each new mark)."""

    def __init__(self) -> None:
        self._marks: dict[int, tuple["weakref.ref[Any]", _V]] = {}

    def mark(self, obj: Any, value: _V) -> None:
        for k in [k for k, (ref, _) in self._marks.items() if ref() is None]:
            del self._marks[k]
        self._marks[id(obj)] = (weakref.ref(obj), value)

    def get(self, obj: Any) -> Optional[_V]:
        entry = self._marks.get(id(obj))
        return entry[1] if entry is not None and entry[0]() is obj else None

    def take(self, obj: Any) -> Optional[_V]:
        """``get``, and the mark removed."""
        value = self.get(obj)
        if value is not None:
            del self._marks[id(obj)]
        return value


# snapshots a redaction judged, as it returned them: the snapshot → the catalogue
_JUDGED: LiveMarks[str] = LiveMarks()


def mark_judged(snap: Snapshot, catalogue: str) -> None:
    """Said by the redaction of the snapshot it returns (``redact.for_storage``): nothing
    in it is for the redaction of fingerprint ``catalogue`` to replace. The next ``save``
    of this very object records the digest of the bytes it writes (once: a snapshot
    changed and saved again is not judged by this mark; the redaction marks the object it
    returns, for its caller to save as it is)."""
    _JUDGED.mark(snap, catalogue)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the snapshot, generated from the model."""
    schema = Snapshot.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"labreport snapshot (schema_version {SCHEMA_VERSION})"
    return schema


def is_partial_run(directory: Path) -> bool:
    return (directory / RUN_FILE).is_file()
