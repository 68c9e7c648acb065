"""Parse ``ctr -n k8s.io containers ls`` (``ctr -n k8s.io c ls``): containerd's own list,
which — unlike ``crictl ps`` — also shows the pod sandboxes (pause containers).

Usage::

    from labreport.parsers import ctr_containers
    for c in ctr_containers.parse(text, source="ctr-c-ls.txt").value:   # list[Container]
        print(c.id, c.image, c.is_sandbox)

Format (tabwriter columns; a PDF may leave single spaces)::

    CONTAINER                                                           IMAGE                                       RUNTIME
    afaf811d1728ab4517bf091b6b6c47e81fc6465826550cb542bc7855746fa01b    registry.aliyuncs.com/google_containers/pause:3.9   io.containerd.runc.v2

Each row is ``<full container id> <image ref> <runtime>``. ctr knows no Kubernetes
names, so ``name`` is the id's first 13 characters (crictl's short id) and the pod
fields stay empty; a row whose image is a pause image (repository ``…/pause``) gets
``is_sandbox=True`` and ``sandbox_id`` = its id (kubelet runs the sandbox from the
``--pod-infra-container-image`` / ``sandbox_image``; the name is the evidence, and the
extra field ``sandbox_by`` = "pause image" says so). ``labreport import`` then ties such
a sandbox to its pod when a ``crictl ps`` row's POD ID is a prefix of its id. logrus
lines on stderr (``WARN[0000] DEPRECATION: …``) are skipped.

Returns ``list[Container]`` with ``runtime="containerd"``, ``id``, ``name``, ``image``,
``is_sandbox``, ``sandbox_id`` (sandboxes only), ``oci_runtime`` (extra: the RUNTIME
column, e.g. io.containerd.runc.v2).

Example (seed 001, worker)::

    afaf811d1728ab4517bf091b6b6c47e81fc6465826550cb542bc7855746fa01b registry.aliyuncs.com/google_containers/pause:3.9 io.containerd.runc.v2
    -> Container(id="afaf811d1728ab45…", name="afaf811d1728a", is_sandbox=True,
                 sandbox_id="afaf811d1728ab45…", image="registry.aliyuncs.com/google_containers/pause:3.9")
"""

from __future__ import annotations

import re
from typing import Any

from labreport.errors import ParseError
from labreport.parsers._common import is_prompt_line
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import Container

_HEADER_RE = re.compile(r"^\s*CONTAINER\s+IMAGE\s+RUNTIME\s*$")
_ROW_RE = re.compile(r"^\s*(?P<id>[0-9a-f]{12,80})\s+(?P<image>\S+)\s+(?P<runtime>io\.containerd\.\S+|\S+)\s*$")
_LOGRUS_RE = re.compile(r"^\s*(?:WARN|INFO|ERRO|DEBU|FATA)\[\d+\]")
_PAUSE_RE = re.compile(r"(?:^|/)pause(?:-[a-z0-9]+)?(?::|@|$)")


def _detect(text: str) -> float:
    lines = [ln for ln in text[:6000].splitlines()[:20] if ln.strip()]
    if any(_HEADER_RE.match(ln) for ln in lines):
        return 0.95
    rows = sum(1 for ln in lines if _ROW_RE.match(ln) and "io.containerd." in ln)
    return 0.8 if rows else 0.0


INFO = ParserInfo(
    name="ctr-containers",
    commands=("ctr -n k8s.io containers ls", "ctr -n k8s.io c ls"),
    description="containerd's containers incl. the pod sandboxes (pause), from ctr c ls",
    detect=_detect,
    target="containers",
)


def _convert(raw: dict[str, Any]) -> Container:
    """The one place where the cells become a typed Container."""
    cid = raw["id"]
    sandbox = bool(_PAUSE_RE.search(raw["image"]))
    extra: dict[str, Any] = {"oci_runtime": raw["runtime"]}
    if sandbox:
        extra["sandbox_by"] = "pause image"
    return Container(
        runtime="containerd",
        id=cid,
        name=cid[:13],
        image=raw["image"],
        is_sandbox=sandbox,
        sandbox_id=cid if sandbox else None,
        **extra,
    )


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[Container]]:
    text = check_text(text, source)
    result: ParseResult[list[Container]] = ParseResult(value=[], parser=INFO.name, source=source)
    header = False
    for line_no, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if not s or s in ("```", "~~~") or is_prompt_line(line) or _LOGRUS_RE.match(line):
            continue
        if _HEADER_RE.match(line):
            header = True
            continue
        m = _ROW_RE.match(line)
        if not m:
            result.warn(line_no, line, "not a ctr containers ls row (CONTAINER IMAGE RUNTIME)")
            continue
        result.value.append(_convert(m.groupdict()))
    if not header and not result.value:
        raise ParseError("no ctr containers ls header (CONTAINER IMAGE RUNTIME) and no rows", source=source)
    return result
