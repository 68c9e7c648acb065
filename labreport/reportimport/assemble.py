"""Steps 5–6 of ``import --report``: read every output with the parsers and build the
snapshots: the report's last state ("after") and, when the report shows outputs taken
before a step, the state before it ("before").

Before / after: outputs of the same kind on the same node (container lists; iptables
rules) that the report gives under different questions — Q3's ``crictl ps`` and Q5's, the
rules of Q8 and those after scaling in Q11 — are the same command run at two times. The
ones under the first question go to the BEFORE snapshot, the later ones to AFTER. Every
other output goes to AFTER only. When the later container list shares no pod with the
earlier one and the prose says it lists only what is new (多出 / 新增 / new), it is read as
"the earlier containers plus these", and a warning says so.

Pasted duplicates: iptables fragments of one node and time are merged rule by rule; a rule
that repeats one already read — the same chain, the same addresses, ports and
probabilities, chain names that differ by at most 3 characters (OCR) — is dropped with a
warning. Evidence keeps every fragment as pasted.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from pydantic import BaseModel, Field

from labreport.errors import ParseError
from labreport.reportimport.command import Output
from labreport.diff import edit_distance

_NEW_ONLY_RE = re.compile(r"多出|新增|新的容器|新创建的|only the new|new containers|added", re.I)
_CONTAINER_PARSERS = ("docker-ps", "crictl-ps", "crictl-pods")
_PHASED = {"docker-ps": "containers", "crictl-ps": "containers", "crictl-pods": "containers",
           "iptables-save": "iptables"}


class ReportWarning(BaseModel):
    """Something of the report labreport could not read (or had to repair), and what to do."""

    source: str  # "report.pdf:123"
    message: str
    fix: Optional[str] = None  # how to give it so that it can be read
    kind: str = "repair"  # repair | unread | duplicate | node | yaml
    code: Optional[str] = None  # the message's catalog key (s.unread.msg.<code>), see UnreadItem
    args: dict[str, str] = Field(default_factory=dict)


class ImportedOutput(BaseModel):
    source: str
    command: Optional[str] = None
    command_from: str = "none"
    parser: Optional[str] = None
    node: Optional[str] = None
    node_from: str = ""
    prompt_host: Optional[str] = None
    stated_node: Optional[str] = None
    phase: str = "after"
    question: Optional[int] = None
    repairs: list[str] = Field(default_factory=list)


class ReportImportInfo(BaseModel):
    """Stored in the snapshot (``Snapshot.report_import``): what the import found."""

    report: str
    format: str
    outputs: list[ImportedOutput] = Field(default_factory=list)
    warnings: list[ReportWarning] = Field(default_factory=list)
    node_names: dict[str, str] = Field(default_factory=dict)  # role/alias -> node
    phase: str = "after"


# ----------------------------------------------------------------------------- phases


def assign_phases(outputs: list[Output], warnings: list[ReportWarning]) -> list[Output]:
    """Set ``phase`` on phased outputs; returns the extra outputs to add to AFTER (copies of
    BEFORE container lists when the AFTER list quotes only the new rows)."""
    groups: dict[tuple[str, str], list[Output]] = {}
    for o in outputs:
        group = _PHASED.get(o.parser or "")
        if group and o.node:
            groups.setdefault((o.node, group), []).append(o)
    extra: list[Output] = []
    for (node, group), outs in groups.items():
        questions: list[Optional[int]] = []
        for o in outs:
            if o.question not in questions:
                questions.append(o.question)
        if len(questions) < 2:
            continue
        for o in outs:
            o.phase = "before" if o.question == questions[0] else "after"
        if group != "containers":
            continue
        before = [o for o in outs if o.phase == "before" and o.parser in _CONTAINER_PARSERS]
        after = [o for o in outs if o.phase == "after" and o.parser in _CONTAINER_PARSERS]
        if not before or not after:
            continue
        pods_b = _pods_of(before)
        pods_a = _pods_of(after)
        if pods_b and pods_a and not (pods_b & pods_a) and any(_NEW_ONLY_RE.search(o.context) for o in after):
            for o in before:
                copy = o.model_copy(deep=True)
                copy.phase = "after"
                extra.append(copy)
            warnings.append(ReportWarning(
                source=after[0].source, kind="repair", code="new_only",
                args={"node": node, "new": ", ".join(sorted(pods_a)), "old": ", ".join(sorted(pods_b))},
                message=(f"the container list after the step on {node} quotes only the new containers "
                         f"({', '.join(sorted(pods_a))}); the ones listed before ({', '.join(sorted(pods_b))}) "
                         "are taken as still running"),
                fix="paste the whole `docker ps` / `crictl ps` output after the step"))
    return extra


def _pods_of(outs: list[Output]) -> set[str]:
    from labreport.parsers import get

    pods: set[str] = set()
    for o in outs:
        try:
            for c in get(o.parser or "").parse(o.text, source=o.source).value:
                if c.pod_name:
                    pods.add(c.pod_name)
        except (ParseError, AttributeError):
            continue
    return pods


# ----------------------------------------------------------------------------- iptables


_IPPORT_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?:/\d+|:\d+)?")
_PROB_RE = re.compile(r"--probability\s+([0-9.]+)")
_CHAINISH_RE = re.compile(r"^KUBE-[A-Z]+-[A-Z0-9]{8,}$")


_MAX_FUZZY = 300
_OCR = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "S": "5", "B": "8", "Z": "2", "G": "6", "Q": "0"})


def _edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Edit distance (capped at limit + 1) after folding the characters OCR confuses."""
    return edit_distance(a.translate(_OCR), b.translate(_OCR), limit)


def _rule_key(spec: str) -> tuple[tuple[str, ...], tuple[float, ...], tuple[str, ...], tuple[str, ...]]:
    s = spec.replace('"', " ").replace("-->", " ").replace("->", " ")
    toks = [t for t in s.split() if t != "!"]
    ips = tuple(sorted(_IPPORT_RE.findall(s)))
    probs = tuple(round(float(p), 4) for p in _PROB_RE.findall(s) if p.replace(".", "", 1).isdigit())
    chains = tuple(t for t in toks if _CHAINISH_RE.match(t))
    words = tuple(t for t in toks if not _CHAINISH_RE.match(t) and not _IPPORT_RE.fullmatch(t)
                  and not re.fullmatch(r"[0-9.]+", t))
    return ips, probs, chains, words


def same_rule(a: str, b: str) -> bool:
    """Two rule specs that are one rule pasted twice (OCR may have changed chain names)."""
    if a == b:
        return True
    ka, kb = _rule_key(a), _rule_key(b)
    if ka[0] != kb[0] or ka[1] != kb[1] or len(ka[2]) != len(kb[2]):
        return False
    if (set(ka[3]) ^ set(kb[3])) - {"-s", "!"}:
        return False
    return all(_edit_distance(x, y) <= 3 for x, y in zip(ka[2], kb[2]))


def merge_iptables(parts: list[tuple[str, Any]], warnings: list[ReportWarning]) -> Any:
    """Merge parsed Iptables of several fragments (source, Iptables); later near-duplicate
    rules are dropped with a warning."""
    base = parts[0][1].model_copy(deep=True)
    for source, ipt in parts[1:]:
        dropped = 0
        for tname, table in ipt.tables.items():
            target = base.tables.setdefault(tname, table.model_copy(deep=True, update={"chains": {}}))
            for cname, chain in table.chains.items():
                have = target.chains.get(cname)
                if have is None:
                    # a chain name only OCR makes different from one already read: its rules are duplicates
                    twin = next((c for n, c in target.chains.items() if n != cname and n[:9] == cname[:9]
                                 and _edit_distance(n, cname) <= 3 and chain.rules
                                 and all(any(same_rule(r.spec, o.spec) for o in c.rules) for r in chain.rules)), None)
                    if twin is not None:
                        dropped += len(chain.rules)
                        continue
                    target.chains[cname] = chain.model_copy(deep=True)
                    continue
                exact = {r.spec for r in have.rules}
                fuzzy = len(have.rules) <= _MAX_FUZZY  # OCR twins are looked for in chains of a paste's size
                for rule in chain.rules:
                    if rule.spec in exact or (fuzzy and any(same_rule(rule.spec, r.spec) for r in have.rules)):
                        dropped += 1
                        continue
                    have.rules.append(rule)  # an IptRule is immutable (a named tuple)
        if dropped:
            warnings.append(ReportWarning(
                source=source, kind="duplicate", code="duplicate", args={"n": str(dropped)},
                message=(f"{dropped} rule{'s' if dropped != 1 else ''} repeat{'' if dropped != 1 else 's'} rules "
                         "pasted earlier (the same addresses and probabilities; chain names differing by a few "
                         "characters, as OCR or retyping does): read once"),
                fix="paste each rule once, copied from the terminal"))
    return base
