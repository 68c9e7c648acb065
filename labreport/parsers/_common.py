"""Small helpers the text parsers share (not a parser: not in the registry).

- shell prompts and pasted command lines (``root@k8s-worker:~# ps aux | grep kube``)
- column tables as docker and crictl print them (Go's tabwriter, padding 3), and the
  tab-separated shape a PDF-to-text conversion leaves
- dockershim container names ``k8s_<container>_<pod>_<namespace>_<uid>_<attempt>``
- JSON documents that must be a given shape
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any, Callable, Iterator, Optional

from labreport.parsers.base import strip_prompt

# A prompt alone on a line ("root@k8s-worker:/etc/containerd#", "[root@master ~]#", "$").
_PROMPT_ONLY_RE = re.compile(r"^\s*(?:\[[^\]\n]{1,80}\]\s*|[\w.-]+@[\w.-]+(?::[^\s#$]*)?\s*)?[#$%]\s*$")
# prompts the base regex does not know, with the command after them:
#   "root@k8s-server ~ # crictl ps"  (user@host dir #)     "node01:~$ crictl ps"  (host:dir$)
#   "➜  crictl ps" / "➜  ~ crictl ps"  (oh-my-zsh)
_MORE_PROMPTS = (
    re.compile(r"^\s*[\w.-]+@[\w.-]+\s+\S{1,60}\s*[#$%]\s+(?P<cmd>\S.*)$"),
    re.compile(r"^\s*[\w.-]+:[~/][^\s#$]*[#$]\s+(?P<cmd>\S.*)$"),
    re.compile(r"^\s*➜\s+(?:[~/][^\s]*\s+)?(?P<cmd>\S.*)$"),
)


def split_prompt(line: str) -> tuple[bool, str]:
    """(is this a shell prompt line, the command typed after it or "")."""
    if _PROMPT_ONLY_RE.match(line):
        return True, ""
    for rx in _MORE_PROMPTS:
        m = rx.match(line)
        if m:
            return True, m.group("cmd").strip()
    rest, had = strip_prompt(line)
    if had:
        return True, rest.strip()
    return False, ""


def is_prompt_line(line: str) -> bool:
    """A shell prompt, with or without the command typed after it."""
    return split_prompt(line)[0]


def without_prompts(text: str) -> str:
    """The pasted text without its shell-prompt lines, stripped: what a JSON/YAML body
    (``crictl ps -o json``, ``ip -j addr`` …) looks like once the typed command is gone."""
    return "\n".join(ln for ln in text.split("\n") if not is_prompt_line(ln)).strip()


# ----------------------------------------------------------------------------- tables


def split_cells(line: str) -> list[str]:
    """Cells of one table row: tabs, or runs of 2+ spaces (tabwriter's padding)."""
    if "\t" in line:
        cells = [c.strip() for c in line.split("\t")]
        # a PDF table keeps empty cells as "\t\t"; tabwriter never prints tabs
        while cells and cells[-1] == "":
            cells.pop()
        return cells
    return [c for c in re.split(r"\s{2,}", line.strip()) if c != ""]


def header_columns(header: str, names: list[str]) -> Optional[list[tuple[str, int]]]:
    """Find each known column name in ``header`` (in order) with its start offset.

    ``names`` lists the multi-word names first where they matter ("CONTAINER ID" before
    "CONTAINER", "POD ID" before "POD"). Returns None if a word of the header is unknown.
    """
    out: list[tuple[str, int]] = []
    pos = 0
    text = header.rstrip()
    while pos < len(text):
        if text[pos] in " \t":
            pos += 1
            continue
        for name in names:
            if text.startswith(name, pos) and (pos + len(name) == len(text) or text[pos + len(name)] in " \t"):
                out.append((name, pos))
                pos += len(name)
                break
        else:
            return None
    return out


def slice_by_columns(line: str, cols: list[tuple[str, int]]) -> Optional[dict[str, str]]:
    """Cut a row at the header's column offsets, when the row really is aligned to them
    (a space before every column start that the row reaches)."""
    if "\t" in line:
        return None
    row: dict[str, str] = {}
    for i, (name, start) in enumerate(cols):
        if start > 0 and start <= len(line) and line[start - 1] != " ":
            return None
        end = cols[i + 1][1] if i + 1 < len(cols) else len(line)
        row[name] = line[start:end].strip() if start < len(line) else ""
    return row


def crictl_table_rows(text: str, result: Any, *, header_re: "re.Pattern[str]", columns: list[str],
                      states: tuple[str, ...], what: str,
                      from_tokens: Callable[[str, list[str]], Optional[dict[str, str]]],
                      aligned_ok: Callable[[dict[str, str], list[str]], bool]) -> Iterator[tuple[int, str, dict[str, str]]]:
    """The rows of a crictl table (``crictl ps`` / ``crictl pods``), as (line_no, line, {column: cell}).

    The header may be tab-separated (a PDF paste) or tabwriter-aligned; a row is cut at the
    header's column offsets when it is aligned to them and ``aligned_ok`` accepts it, else
    split into cells, else read token by token (``from_tokens``). Prompt and fence lines are
    skipped; rows that cannot be read become warnings on ``result``. Yields nothing and
    leaves ``result`` untouched when there is no header (the caller raises)."""
    names: list[str] = []
    cols: Optional[list[tuple[str, int]]] = None
    for line_no, raw_line in enumerate(text.split("\n"), 1):
        line = raw_line.rstrip(" ")
        if not line.strip() or line.strip() in ("```", "~~~"):
            continue
        if header_re.match(line):
            if "\t" in line:
                names, cols = split_cells(line), None
            else:
                cols = header_columns(line.rstrip(), columns)
                names = [n for n, _ in cols] if cols else split_cells(line)
            continue
        if is_prompt_line(line):
            continue
        if not names:
            result.warn(line_no, line, f"row before the {what} header")
            continue
        row = slice_by_columns(line, cols) if cols else None
        if row is None or not aligned_ok(row, names):
            cells = split_cells(line)
            row = dict(zip(names, cells)) if len(cells) == len(names) else None
            if row is None or row.get("STATE", "") not in states:
                row = from_tokens(line, names)
        if row is None:
            result.warn(line_no, line, f"not a {what} row with the header's {len(names)} columns")
            continue
        yield line_no, line, row


# ----------------------------------------------------------------------------- kubernetes names

_K8S_NAME_RE = re.compile(r"^/?k8s_([^_]+)_([^_]+)_([^_]+)_([^_]+)_(\d+)$")


def dockershim_name(name: str) -> Optional[dict[str, Any]]:
    """``k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`` (dockershim / cri-dockerd).

    Kubernetes names cannot hold "_", so the split is exact. ``POD`` is the sandbox.
    """
    m = _K8S_NAME_RE.match(name.strip())
    if not m:
        return None
    container, pod, namespace, uid, attempt = m.groups()
    return {
        "container_name": container,
        "pod_name": pod,
        "pod_namespace": namespace,
        "pod_uid": uid,
        "attempt": int(attempt),
        "is_sandbox": container == "POD",
    }


def label_pod_fields(labels: dict[str, str]) -> dict[str, Any]:
    """Pod fields from the io.kubernetes.* labels kubelet puts on every container."""
    out: dict[str, Any] = {}
    if labels.get("io.kubernetes.pod.name"):
        out["pod_name"] = labels["io.kubernetes.pod.name"]
    if labels.get("io.kubernetes.pod.namespace"):
        out["pod_namespace"] = labels["io.kubernetes.pod.namespace"]
    if labels.get("io.kubernetes.pod.uid"):
        out["pod_uid"] = labels["io.kubernetes.pod.uid"]
    if labels.get("io.kubernetes.sandbox.id"):
        out["sandbox_id"] = labels["io.kubernetes.sandbox.id"]
    if labels.get("io.kubernetes.container.name"):
        out["container_name"] = labels["io.kubernetes.container.name"]
    return out


# ----------------------------------------------------------------------------- JSON


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def load_json(text: str) -> Any:
    """json.loads that reports failure as ValueError only (also for absurd nesting), and
    refuses what no command prints: NaN, Infinity, numbers beyond a float (1e999)."""
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


# ----------------------------------------------------------------------------- YAML

# A YAML alias is a reference: ``&a [x]`` once and ``*a`` nine times at nine levels is
# 9^9 values once expanded (the "billion laughs"), from a few hundred bytes. PyYAML shares
# the objects, so loading is cheap, but everything after it (JSON, redaction, rendering)
# expands them. Kubernetes manifests hardly use aliases: a document may expand to at most
# this many values beyond what it spells out.
YAML_MAX_EXPANSION = 100_000


def yaml_load_all(text: str) -> Iterator[Any]:
    """yaml.safe_load_all, refusing documents whose aliases expand beyond a small bound
    (and recursive aliases). Raises yaml.YAMLError (a ComposerError naming the problem)."""
    import yaml
    from yaml.composer import ComposerError
    from yaml.nodes import MappingNode, Node, SequenceNode

    def expanded(root: Node) -> int:
        sizes: dict[int, int] = {}
        unique = 0
        # iterative post-order walk; ids of nodes in progress detect recursive aliases
        stack: list[tuple[Node, bool]] = [(root, False)]
        in_progress: set[int] = set()
        while stack:
            node, done = stack.pop()
            key = id(node)
            if done:
                in_progress.discard(key)
                if isinstance(node, SequenceNode):
                    children: list[Node] = list(node.value)
                elif isinstance(node, MappingNode):
                    children = [x for pair in node.value for x in pair]
                else:
                    children = []
                total = 1
                for c in children:
                    total += sizes[id(c)]
                    if total > YAML_MAX_EXPANSION * 100:
                        break
                sizes[key] = total
                continue
            if key in sizes:
                continue
            if key in in_progress:
                raise ComposerError(None, None, "a recursive YAML alias (a value that contains itself)",
                                    node.start_mark)
            in_progress.add(key)
            unique += 1
            stack.append((node, True))
            if isinstance(node, SequenceNode):
                stack.extend((c, False) for c in node.value if id(c) not in sizes)
            elif isinstance(node, MappingNode):
                stack.extend((c, False) for pair in node.value for c in pair if id(c) not in sizes)
        total = sizes[id(root)]
        if total - unique > YAML_MAX_EXPANSION:
            raise ComposerError(None, None, f"YAML aliases expand this document to more than "
                                f"{unique + YAML_MAX_EXPANSION} values (an alias bomb?); refused", root.start_mark)
        return total

    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            expanded(node)
            yield loader.construct_document(node)
    finally:
        loader.dispose()


def ns_to_iso(value: Any) -> Optional[str]:
    """CRI timestamps are nanoseconds since the epoch (crictl prints them as strings)."""
    try:
        ns = int(value)
    except (TypeError, ValueError):
        return None
    if ns <= 0:
        return None
    seconds, frac = divmod(ns, 1_000_000_000)
    try:
        ts = _dt.datetime.fromtimestamp(seconds, tz=_dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON object, or {} for anything else (a field of the wrong type reads as absent)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """A JSON array, or [] for anything else."""
    return value if isinstance(value, list) else []


def as_str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def to_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
