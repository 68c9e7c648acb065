"""Parse what ``kubeadm init`` / ``kubeadm join`` print (and the join command they tell
you to run), with the bootstrap token REDACTED: it is a credential for joining nodes.

Usage::

    from labreport.parsers import kubeadm
    info = kubeadm.parse(text).value          # KubeadmOutput
    info.api_server, info.joined, info.phases, info.errors

Read: ``kubeadm join HOST:PORT --token T --discovery-token-ca-cert-hash sha256:H``
(wrapped over lines with ``\\``; the hash is public, the token is not and is stored as
``<redacted>``), ``[phase] message`` lines (``[preflight]``, ``[kubelet-start]`` …), the
success lines ("Your Kubernetes control-plane has initialized successfully!", "This node
has joined the cluster"), kubeadm's error lines (``error execution phase …``,
``accepts at most 1 arg(s)``). ``redact_text`` gives the text with every bootstrap token
replaced, for the evidence kept in the snapshot.
"""

from __future__ import annotations

import re
from typing import Optional

from pydantic import Field

from labreport.errors import ParseError
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import Record

_TOKEN_RE = re.compile(r"\b([a-z0-9]{6})\.([a-z0-9]{16})\b")
_TOKEN_OPT_RE = re.compile(r"(--token(?:=|\s+))(\S+)")
_JOIN_RE = re.compile(r"kubeadm\s+join\s+(\S+:\d+)")
_HASH_RE = re.compile(r"(sha256:[0-9a-f]{64})")
_PHASE_RE = re.compile(r"^\s*\[([a-z-]+)\]\s+(.*)$")
_ERROR_RE = re.compile(r"(error execution phase.*|accepts at most \d+ arg\(s\), received \d+|\[ERROR [^\]]+\].*)")
REDACTED = "<redacted>"


class KubeadmOutput(Record):
    command: Optional[str] = None  # "init" | "join"
    api_server: Optional[str] = None  # HOST:PORT of the join command
    token: Optional[str] = None  # always REDACTED when a token was printed
    ca_cert_hash: Optional[str] = None
    phases: list[str] = Field(default_factory=list)  # "[preflight] Running pre-flight checks" …
    initialized: bool = False
    joined: bool = False
    errors: list[str] = Field(default_factory=list)


def redact_text(text: str) -> str:
    text = _TOKEN_OPT_RE.sub(lambda m: m.group(1) + REDACTED, text)
    return _TOKEN_RE.sub(REDACTED, text)


def _detect(text: str) -> float:
    head = text[:6000]
    if "kubeadm join" in head and "--token" in head:
        return 0.8
    if re.search(r"^\s*\[(preflight|kubelet-start|certs|kubeconfig|control-plane|bootstrap-token)\]", head, re.M):
        return 0.85
    return 0.0


INFO = ParserInfo(
    name="kubeadm",
    commands=("kubeadm init", "kubeadm join"),
    description="kubeadm init/join output: API server, CA hash, phases, success (token redacted)",
    detect=_detect,
    target="info.kubeadm",
)


def parse(text: str, *, source: str = "<input>") -> ParseResult[KubeadmOutput]:
    text = check_text(text, source)
    out = KubeadmOutput()
    result: ParseResult[KubeadmOutput] = ParseResult(value=out, parser=INFO.name, source=source)
    flat = re.sub(r"\\\s*\n", " ", text)
    m = _JOIN_RE.search(flat)
    if m:
        out.api_server = m.group(1)
    if _TOKEN_OPT_RE.search(flat) or _TOKEN_RE.search(flat):
        out.token = REDACTED
    h = _HASH_RE.search(re.sub(r"(sha256:)\s+", r"\1", flat))
    if h:
        out.ca_cert_hash = h.group(1)
    for line in text.split("\n"):
        pm = _PHASE_RE.match(line)
        if pm:
            out.phases.append(redact_text(line.strip())[:300])
        em = _ERROR_RE.search(line)
        if em:
            out.errors.append(em.group(1)[:300])
        if "control-plane has initialized successfully" in line:
            out.initialized = True
        if "This node has joined the cluster" in line:
            out.joined = True
    out.command = "init" if out.initialized or "kubeadm init" in flat else ("join" if "join" in flat else None)
    if not (out.api_server or out.phases or out.initialized or out.joined):
        raise ParseError("not kubeadm init/join output", source=source)
    return result
