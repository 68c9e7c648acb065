"""Parse ``docker ps`` (the table) and ``docker ps --format '{{json .}}'`` (JSON lines).

Usage::

    from labreport.parsers import docker_ps
    result = docker_ps.parse(text, source="docker-ps.txt")
    for c in result.value:               # list[labreport.snapshot.Container]
        print(c.id, c.name, c.pod_name, c.is_sandbox)

Table: columns are found by their names in the header line (CONTAINER ID, IMAGE,
COMMAND, CREATED, STATUS, PORTS, NAMES, and SIZE with ``-s``), and each row is cut at the
header's column offsets when it is aligned to them (docker pads with spaces); otherwise
(tabs from a PDF table, or spacing lost in a paste) it is split on tabs / runs of 2+
spaces. A row one cell short of a header with PORTS has an empty PORTS (docker leaves it
blank; PDF tables drop it). JSON lines: one object per line with docker's keys (ID,
Image, Command, CreatedAt, RunningFor, Ports, State, Status, Size, Names, Labels,
Mounts, Networks, LocalVolumes).

Pods: kubelet's dockershim (and cri-dockerd) name containers
``k8s_<container>_<pod>_<namespace>_<uid>_<attempt>``; ``k8s_POD_…`` is the pod's
sandbox (pause container) and gets ``is_sandbox=True`` and ``sandbox_id`` = its own id.
For an app container the sandbox id cannot be known from ``docker ps`` alone
(``sandbox_id`` stays None); the pod uid ties it to its sandbox.

Returns ``list[Container]`` with ``runtime="docker"``::

    {"id": str, "name": str (docker's full name), "image": str, "command": str (quotes
     removed), "created": str ("45 minutes ago" or CreatedAt), "state": "running" |
     "exited" | "created" | "paused" | "restarting" | "removing" | "dead" | None,
     "status": str (extra field: STATUS as printed, "Up 45 minutes"),
     "ports": str (extra), "networks": str (extra, JSON only: docker's network names,
     "none" for a dockershim sandbox wired by CNI, "" for container:<id> mode),
     "container_name": str (extra: the k8s container name from
     the dockershim name, "POD" for a sandbox), "pod_name", "pod_namespace", "pod_uid",
     "attempt", "is_sandbox", "sandbox_id", "labels": dict (JSON only)}

Example (seed 000, worker)::

    23f2f68378cc  registry…/pause:3.6  "/pause"  About an hour ago  Up About an hour  k8s_POD_pod_default_05260c21-…_0
    -> Container(id="23f2f68378cc", name="k8s_POD_pod_default_05260c21-…_0", is_sandbox=True,
                 sandbox_id="23f2f68378cc", pod_name="pod", pod_namespace="default",
                 container_name="POD", state="running", status="Up About an hour", …)
"""

from __future__ import annotations

import re
from typing import Any, Optional

from labreport.errors import ParseError
from labreport.parsers._common import (
    dockershim_name,
    header_columns,
    is_prompt_line,
    label_pod_fields,
    load_json,
    slice_by_columns,
    split_cells,
)
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import Container

COLUMNS = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES", "SIZE"]
_HEADER_RE = re.compile(r"^\s*CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\b")
_JSON_KEYS = ("ID", "Image", "Names")


def _detect(text: str) -> float:
    head = text[:4000].lstrip()
    for line in head.splitlines()[:10]:
        if _HEADER_RE.match(line):
            return 0.95
        s = line.strip()
        if s.startswith("{") and '"ID"' in s and '"Names"' in s and '"Image"' in s:
            return 0.95
    return 0.0


INFO = ParserInfo(
    name="docker-ps",
    commands=("docker ps", "docker ps -a", "docker ps --no-trunc", "docker ps --format '{{json .}}'"),
    description="containers from docker ps (table or JSON lines), pods from dockershim names",
    detect=_detect,
    target="containers",
)


def status_to_state(status: Optional[str]) -> Optional[str]:
    """docker's STATUS text ("Up 45 minutes", "Exited (0) 2 hours ago") -> its State word."""
    if not status:
        return None
    s = status.strip()
    if s.startswith("Up"):
        if "(Paused)" in s:
            return "paused"
        return "running"
    for prefix, state in (("Exited", "exited"), ("Created", "created"), ("Restarting", "restarting"),
                          ("Removal In Progress", "removing"), ("Dead", "dead"), ("Paused", "paused")):
        if s.startswith(prefix):
            return state
    return None


def _labels_from_string(value: Any) -> dict[str, str]:
    """``docker ps --format '{{json .}}'`` prints labels as "k=v,k2=v2"."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str) or not value:
        return {}
    out: dict[str, str] = {}
    last: Optional[str] = None
    for part in value.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
            last = k
        elif last is not None:  # a value that held a comma
            out[last] += "," + part
    return out


def _convert(raw: dict[str, Any]) -> Container:
    """The one place where the raw cells / JSON fields become a typed Container."""
    name = str(raw.get("name") or "").strip().lstrip("/")
    if "," in name:  # docker prints every name of a container, comma-separated
        names = [n.strip().lstrip("/") for n in name.split(",")]
        name = next((n for n in names if n.startswith("k8s_")), names[0])
    cid = str(raw["id"]).strip()
    command = raw.get("command")
    if isinstance(command, str):
        command = command.strip()
        if len(command) >= 2 and command[0] == '"' and command[-1] == '"':
            command = command[1:-1]
    status = raw.get("status") or None
    labels = raw.get("labels") or {}
    fields: dict[str, Any] = {}
    k8s = dockershim_name(name)
    if k8s:
        fields.update(k8s)
    if labels:
        fields.update({k: v for k, v in label_pod_fields(labels).items() if k not in fields or not fields[k]})
    if fields.get("is_sandbox"):
        fields["sandbox_id"] = cid
    state = raw.get("state") or status_to_state(status)
    return Container(
        runtime="docker",
        id=cid,
        name=name,
        image=raw.get("image") or None,
        command=command or None,
        created=raw.get("created") or None,
        state=state.lower() if isinstance(state, str) else None,
        status=status,
        ports=raw.get("ports") or None,
        networks=raw.get("networks") or None,
        labels=labels,
        **fields,
    )


def _parse_json_lines(text: str, result: ParseResult[list[Container]]) -> None:
    for line_no, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if not s or is_prompt_line(s):
            continue
        try:
            obj = load_json(s)
        except ValueError as exc:
            result.warn(line_no, line, f"not a JSON object: {exc}")
            continue
        if not isinstance(obj, dict) or not obj.get("ID"):
            result.warn(line_no, line, "JSON line without an ID (not docker ps --format '{{json .}}')")
            continue
        raw = {
            "id": obj.get("ID"),
            "name": obj.get("Names"),
            "image": obj.get("Image"),
            "command": obj.get("Command"),
            "created": obj.get("CreatedAt") or obj.get("RunningFor"),
            "state": obj.get("State"),
            "status": obj.get("Status"),
            "ports": obj.get("Ports"),
            "labels": _labels_from_string(obj.get("Labels")),
            "networks": obj.get("Networks"),
        }
        try:
            result.value.append(_convert(raw))
        except (ValueError, TypeError) as exc:
            result.warn(line_no, line, f"cannot convert: {exc}")


_TOKEN_ROW_RE = re.compile(
    r'^\s*(?P<id>[0-9a-f]{6,64})\s+(?P<image>\S+)\s+(?P<command>"[^"]*")\s+(?P<created>.+? ago)\s+'
    r"(?P<status>(?:Up|Exited|Created|Restarting|Paused|Dead|Removal)\b.*?)\s+"
    r"(?:(?P<ports>\S*(?:->|/tcp|/udp|/sctp)\S*(?:,?\s+\S*(?:->|/tcp|/udp|/sctp)\S*)*)\s+)?(?P<names>\S+)\s*$")


def _row_from_tokens(line: str) -> Optional[dict[str, str]]:
    """A row whose column padding was lost (a PDF's text layer: one space between cells),
    read by its shape: id, image, "command", "… ago", status, [ports], names."""
    m = _TOKEN_ROW_RE.match(line)
    if not m:
        return None
    return {"CONTAINER ID": m.group("id"), "IMAGE": m.group("image"), "COMMAND": m.group("command"),
            "CREATED": m.group("created"), "STATUS": m.group("status"), "PORTS": m.group("ports") or "",
            "NAMES": m.group("names")}


def _row_from_cells(cells: list[str], names: list[str]) -> Optional[dict[str, str]]:
    if len(cells) == len(names):
        return dict(zip(names, cells))
    if "PORTS" in names and len(cells) == len(names) - 1:
        idx = names.index("PORTS")
        return dict(zip(names, cells[:idx] + [""] + cells[idx:]))
    return None


def parse(text: str, *, source: str = "<input>") -> ParseResult[list[Container]]:
    text = check_text(text, source)
    result: ParseResult[list[Container]] = ParseResult(value=[], parser=INFO.name, source=source)
    first = next((ln.strip() for ln in text.split("\n") if ln.strip() and not is_prompt_line(ln)), "")
    if first.startswith("{"):
        _parse_json_lines(text, result)
        if not result.value:
            raise ParseError("no docker ps --format '{{json .}}' object (with ID, Image, Names) found", source=source)
        return result
    cols: Optional[list[tuple[str, int]]] = None
    names: list[str] = []
    for line_no, raw_line in enumerate(text.split("\n"), 1):
        line = raw_line.rstrip("\n").rstrip(" ")
        if not line.strip() or line.strip() in ("```", "~~~"):
            continue
        if _HEADER_RE.match(line):
            hdr = line.strip("\n")
            if "\t" in hdr:
                names = split_cells(hdr)
                cols = None
            else:
                cols = header_columns(hdr.rstrip(), COLUMNS)
                names = [n for n, _ in cols] if cols else split_cells(hdr)
            continue
        if is_prompt_line(line):
            continue
        if not names:
            result.warn(line_no, line, "row before the docker ps header (CONTAINER ID IMAGE COMMAND …)")
            continue
        row = slice_by_columns(line, cols) if cols else None
        if row is None or not row.get("CONTAINER ID") or " " in row.get("CONTAINER ID", ""):
            row = _row_from_cells(split_cells(line), names)
        if row is None or not re.fullmatch(r"[0-9a-f]{6,64}", row.get("CONTAINER ID", "")):
            row = _row_from_tokens(line)
        if row is None or not re.fullmatch(r"[0-9a-f]{6,64}", row.get("CONTAINER ID", "")):
            result.warn(line_no, line, f"not a docker ps row with the header's {len(names)} columns")
            continue
        raw = {
            "id": row["CONTAINER ID"],
            "image": row.get("IMAGE"),
            "command": row.get("COMMAND"),
            "created": row.get("CREATED"),
            "status": row.get("STATUS"),
            "ports": row.get("PORTS"),
            "name": row.get("NAMES", ""),
        }
        try:
            result.value.append(_convert(raw))
        except (ValueError, TypeError) as exc:
            result.warn(line_no, line, f"cannot convert row: {exc}")
    if not names and not result.value:
        raise ParseError("no docker ps header (CONTAINER ID IMAGE COMMAND …) and no JSON lines", source=source)
    return result
