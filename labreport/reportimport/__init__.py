"""``labreport import --report FILE``: a whole lab report (Markdown, text, PDF, .docx) in,
snapshots out — the report cut into command outputs, each read by the same parsers as
live collection.

The steps, one module each:

1. :mod:`.extract` — the report's text (PDF text layer, .docx body, text);
2. :mod:`.split` — code blocks and unfenced terminal tables, with the prose before them;
3. :mod:`.command` — outputs cut at prompts, the command of each (prompt, prose, content);
4. :mod:`.node` — the node of each (prompt host, master/worker words, aliases merged);
5. :mod:`.repair` / :mod:`.yamlfix` — line-number gutters, wrapped lines, garbled comments,
   damaged YAML; every repair is said as a warning;
6. :mod:`.assemble` — before/after phases, duplicates, and the snapshots.

``import_report(path)`` returns a :class:`ReportImport`: ``after`` (the report's last
state, the snapshot to render), ``before`` (the state before Q5's pod / Q11's scaling, or
None when the report shows no such pair) and the warnings. The CLI writes ``after`` to
``DIR`` and ``before`` to ``DIR/before`` so that ``labreport render DIR --before
DIR/before`` shows Q5 and Q11 from the one report.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from labreport.errors import ParseError
from labreport.reportimport.assemble import (
    ImportedOutput,
    ReportImportInfo,
    ReportWarning,
    assign_phases,
    merge_iptables,
)
from labreport.reportimport.command import (
    Output,
    backtick_command,
    cut_block,
    kubectl_get_resource,
    parser_for_command,
)
from labreport.reportimport.extract import ReportReadError, ReportText, read_report
from labreport.reportimport.node import QUESTION_ROLE_BY_PARSER, NodeNames, role_word
from labreport.reportimport.repair import repair_for, strip_gutter
from labreport.reportimport.split import Block, split_blocks
from labreport.reportimport.yamlfix import repair_manifest
from labreport.snapshot import ClusterObjects, Evidence, NodeSnapshot, ParseWarning, Snapshot

__all__ = ["import_report", "import_text", "ReportImport", "ReportReadError", "ReportWarning"]

NODE_KINDS = {
    "ps": "ps", "docker-ps": "containers", "crictl-ps": "containers", "crictl-pods": "containers",
    "ctr-containers": "ctr", "docker-inspect": "inspect", "ip-addr": "ip-addr", "ip-route": "ip-route",
    "iptables-save": "iptables-save", "nft": "nft", "ipvsadm": "ipvsadm",
}
EXTRA_NODE_PARSERS = ("sysctl", "lsmod", "kubeadm")
CLUSTER_PARSERS = ("kubectl", "kubectl-get", "kubectl-describe")
# what each parser's output proves a node ran: the content detector may pick among these
_COMPATIBLE = {"crictl-ps": {"crictl-pods"}, "docker-inspect": set(), "ip-addr": set()}


class ReportImport(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    after: Snapshot
    before: Optional[Snapshot] = None
    info: ReportImportInfo
    outputs: list[Output] = Field(default_factory=list)

    @property
    def warnings(self) -> list[ReportWarning]:
        return self.info.warnings


def _detect(text: str) -> Optional[str]:
    from labreport.parsers import detect

    try:
        return detect(text)
    except ParseError:
        return None


def _choose_parser(o: Output, pending: Optional[str]) -> None:
    content = _detect(o.text)
    if o.command:
        o.parser = parser_for_command(o.command)
        if o.parser is None and content is not None and o.command_from == "prompt":
            o.parser = None  # a command labreport does not read (ls, ping …): not evidence
        return
    if pending:
        p = parser_for_command(pending)
        if p is not None and (content is None or content == p or content in _COMPATIBLE.get(p, set())):
            o.command, o.command_from, o.parser = pending, "prompt before", p
            return
    cmd = backtick_command(o.context)
    if cmd is not None:
        p = parser_for_command(cmd)
        if p is not None and (content == p or (content is None and p not in ("kubectl",))
                              or content in _COMPATIBLE.get(p, set())):
            o.command, o.command_from, o.parser = cmd, "text before", p
            return
    if content is not None and not (content in _SCRIPT_SENSITIVE and _looks_like_script(o.lines)):
        o.parser, o.command_from = content, "content"


_SCRIPT_SENSITIVE = {"sysctl", "lsmod", "kubeadm", "ps", "kubectl-get"}
_SHELL_WORDS = {"sudo", "cat", "echo", "EOF", "apt", "apt-get", "export", "modprobe", "systemctl", "tee", "curl",
                "wget", "mkdir", "cp", "mv", "chmod", "chown", "for", "do", "done", "if", "then", "fi"}


def _looks_like_script(lines: list[str]) -> bool:
    """Commands typed (a shell script, a heredoc writing a config), not their output."""
    for ln in lines:
        w = ln.strip().split(" ", 1)[0] if ln.strip() else ""
        if w in _SHELL_WORDS or w.startswith("#"):
            return True
    return False


def _cut(report: ReportText) -> tuple[list[Output], list[ReportWarning], dict[int, list[int]]]:
    warnings: list[ReportWarning] = []
    outputs: list[Output] = []
    breaks: dict[int, list[int]] = {}
    blocks: list[Block] = split_blocks(report.text)
    pending: Optional[str] = None
    for block in blocks:
        marks = list(block.breaks)
        lines, gutter = strip_gutter(block.lines, marks)
        block.lines = lines
        if len(block.line_numbers) != len(lines):
            block.line_numbers = (block.line_numbers + [block.line_numbers[-1] if block.line_numbers else
                                                        block.start_line] * len(lines))[:len(lines)]
        outs = cut_block(block, report.path)
        if not outs:
            continue
        for o in outs:
            if gutter:
                o.repairs.append(gutter)
            if marks:
                breaks[id(o)] = marks
        # a block that is only "prompt + command" (its output pasted as a table after it)
        last = outs[-1]
        only_prompt = last.command and len([ln for ln in last.lines if ln.strip()]) == 1
        for o in outs:
            if o is last and only_prompt:
                continue
            _choose_parser(o, pending if (not block.fenced or o.command is None) and o is outs[0] else None)
            if o.parser:
                outputs.append(o)
        pending = last.command if only_prompt else None
    return outputs, warnings, breaks


def _assign_nodes(outputs: list[Output], names: NodeNames) -> None:
    # pass 1: names the report uses
    from labreport.parsers import get

    for o in outputs:
        if o.parser == "kubectl-get":
            try:
                for row in get("kubectl-get").parse(o.text, source=o.source).value:
                    if row.kind == "Node":
                        names.table_roles[row.name] = row.columns.get("ROLES", "")
                    elif row.kind == "Pod":
                        names.pods.add(row.name)
            except ParseError:
                pass
        elif o.parser == "kubectl":
            try:
                for obj in get("kubectl").parse(o.text, source=o.source).value:
                    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
                    if obj.get("kind") == "Pod" and isinstance(meta.get("name"), str):
                        names.pods.add(meta["name"])
            except ParseError:
                pass
        elif o.parser in ("docker-ps", "crictl-ps"):
            try:
                for c in get(o.parser).parse(o.text, source=o.source).value:
                    if c.pod_name:
                        names.pods.add(c.pod_name)
            except ParseError:
                pass
    for o in outputs:
        if o.prompt_host and o.prompt_host not in names.pods:
            names.add_host(o.prompt_host)
            cmd = (o.command or "").replace("sudo ", "").strip()
            if cmd.startswith(("kubectl", "kubect1", "kubeadm init")) or (
                    o.parser == "ps" and "kube-apiserver" in o.text):
                names.control_votes[o.prompt_host] = names.control_votes.get(o.prompt_host, 0) + 1
    # pass 2: each output's node
    section_role: Optional[str] = None
    question: Optional[int] = None
    for o in outputs:
        if o.question != question:
            question, section_role = o.question, None
        word = role_word(o.context)
        if word:
            section_role = word
        if o.parser in CLUSTER_PARSERS:
            o.node_from = "cluster"
            continue
        if o.prompt_host and o.prompt_host in names.pods:
            o.pod = o.prompt_host
            o.node_from = "pod"
            continue
        stated = names.for_role(word) if word else None
        if o.prompt_host:
            o.node = names.canonical(o.prompt_host)
            o.node_from = "prompt"
            if stated and stated != o.node and word and o.context.strip():
                o.stated_node = stated
        elif word:
            o.node, o.node_from = stated, "text before"
        elif section_role:
            o.node, o.node_from = names.for_role(section_role), "section"
        elif o.parser in QUESTION_ROLE_BY_PARSER:
            o.node, o.node_from = names.for_role(QUESTION_ROLE_BY_PARSER[o.parser]), "question"
        else:
            known = names.names()
            o.node, o.node_from = (known[0], "only node") if len(known) == 1 else (names.for_role("master"), "guess")


def _node_of_pod(pod: str, outputs: list[Output]) -> Optional[str]:
    from labreport.parsers import get

    found: Optional[str] = None
    for o in outputs:
        if o.parser in ("docker-ps", "crictl-ps", "crictl-pods") and o.node:
            try:
                if any(c.pod_name == pod for c in get(o.parser).parse(o.text, source=o.source).value):
                    found = o.node
            except ParseError:
                continue
    return found


Files = dict[str, list[tuple[str, Any]]]


def import_text(report: ReportText, *, aliases: Optional[dict[str, str]] = None, title: Optional[str] = None,
                nodes: Optional[list[tuple[str, Files]]] = None,
                kubectl: Optional[list[tuple[str, Any]]] = None) -> ReportImport:
    """``nodes`` / ``kubectl``: files given with the usual options (``--node NAME --ps F``),
    added to the AFTER snapshot (a node named there that the report does not name is added)."""
    outputs, warnings, breaks = _cut(report)
    names = NodeNames(aliases=dict(aliases or {}))
    # repairs first: the node and phase passes parse the outputs
    for o in outputs:
        fixed, done = repair_for(o.parser or "", o.lines)
        o.lines = fixed
        o.repairs.extend(done)
    _assign_nodes(outputs, names)
    for o in outputs:
        if o.pod:
            node = _node_of_pod(o.pod, outputs) or names.for_role("worker")
            o.node = node
            if o.parser == "ip-addr":
                o.kind = f"pod-ip-addr:{o.pod}"
    outputs += assign_phases(outputs, warnings)
    for o in outputs:
        if o.stated_node:
            warnings.append(ReportWarning(
                source=o.source, kind="node", code="prompt_node",
                args={"stated": o.stated_node or "", "host": o.prompt_host or "", "node": o.node or ""},
                message=(f"the text before this output says it is from {o.stated_node}, but its prompt "
                         f"(root@{o.prompt_host}) is {o.node}'s; read as {o.node}'s"),
                fix="check which node the output was taken on"))
    after = _build(report, outputs, "after", warnings, breaks, title, extra_nodes=nodes or [],
                   extra_kubectl=kubectl or [])
    before = None
    if any(o.phase == "before" for o in outputs):
        before = _build(report, outputs, "before", warnings, breaks, title)
    info = ReportImportInfo(report=report.path, format=report.format, warnings=warnings,
                            node_names={r: names.for_role(r) for r in ("master", "worker")})
    info.outputs = [ImportedOutput(**o.model_dump(include=set(ImportedOutput.model_fields))) for o in outputs]
    after_info = info.model_copy(update={"phase": "after"})
    setattr(after, "report_import", after_info.model_dump(mode="json"))  # noqa: B010 (an extra field of the snapshot)
    if before is not None:
        setattr(before, "report_import", info.model_copy(update={"phase": "before"}).model_dump(mode="json"))  # noqa: B010 (an extra field of the snapshot)
    return ReportImport(after=after, before=before, info=info, outputs=outputs)


def import_report(path: str, *, aliases: Optional[dict[str, str]] = None, title: Optional[str] = None) -> ReportImport:
    return import_text(read_report(path), aliases=aliases, title=title)


def import_reports(paths: list[str], *, aliases: Optional[dict[str, str]] = None, title: Optional[str] = None,
                   nodes: Optional[list[tuple[str, Files]]] = None,
                   kubectl: Optional[list[tuple[str, Any]]] = None) -> ReportImport:
    """One student's report, possibly in several files (read in the order given, as one text)."""
    texts = [read_report(p) for p in paths]
    if len(texts) == 1:
        report = texts[0]
    else:
        report = ReportText(path="+".join(t.path for t in texts), format=texts[0].format,
                            text="\n\n".join(t.text for t in texts))
    return import_text(report, aliases=aliases, title=title, nodes=nodes, kubectl=kubectl)


# ----------------------------------------------------------------------------- building


def _redact(text: str) -> str:
    from labreport.parsers.kubeadm import redact_text

    return redact_text(text)


def _build(report: ReportText, outputs: list[Output], phase: str, warnings: list[ReportWarning],
           breaks: dict[int, list[int]], title: Optional[str], extra_nodes: Optional[list[tuple[str, Files]]] = None,
           extra_kubectl: Optional[list[tuple[str, Any]]] = None) -> Snapshot:
    from labreport import __version__
    from labreport.importer import ImportFileError, _now, add_cluster_objects, build_node, parse_file

    mine = [o for o in outputs if o.phase == phase or (phase == "before" and o.phase == "before")]
    if phase == "after":
        mine = [o for o in outputs if o.phase == "after"]
    node_names: list[str] = []
    for o in outputs:  # every node the report names, in order, on both sides
        if o.node and o.node not in node_names:
            node_names.append(o.node)
    master = report_master(outputs)
    if master in node_names:  # the control-plane node first, as a cluster is listed
        node_names.remove(master)
        node_names.insert(0, master)
    files: dict[str, dict[str, list[tuple[str, str]]]] = {n: {} for n in node_names}
    iptables_parts: dict[str, list[tuple[Output, Any]]] = {}
    extra: dict[str, list[Output]] = {}
    cluster = ClusterObjects(source="import")
    cluster_warn: list[str] = []
    tables: list[dict[str, Any]] = []
    for o in mine:
        text = _redact(o.text)
        if o.parser == "iptables-save" and o.node:
            try:
                _, result = parse_file("iptables-save", o.source, text)
            except ImportFileError as exc:
                warnings.append(ReportWarning(source=o.source, kind="unread", message=str(exc), code="unread",
                                              args={"what": o.command or "iptables-save", "detail": str(exc)},
                                              fix="paste the rules as iptables-save prints them"))
                continue
            iptables_parts.setdefault(o.node, []).append((o, result))
            continue
        if o.parser in EXTRA_NODE_PARSERS and o.node:
            extra.setdefault(o.node, []).append(o)
            continue
        if o.parser == "kubectl":
            _add_manifest(o, text, cluster, warnings, breaks.get(id(o)))
            continue
        if o.parser in ("kubectl-get", "kubectl-describe"):
            _add_tables(o, text, tables, warnings)
            continue
        if not o.node:
            continue
        kind = o.kind or NODE_KINDS.get(o.parser or "")
        if kind is None:
            continue
        if kind == "inspect" and o.command and "inspect" in o.command:
            target = _inspect_target(o.command)
            if target:
                kind = f"inspect:{target}"
        files.setdefault(o.node, {}).setdefault(kind, []).append((o.source, text))
    for name, given in extra_nodes or []:
        if name not in node_names:
            node_names.append(name)
        for kind, lst in given.items():
            files.setdefault(name, {}).setdefault(kind, []).extend(lst)
    for path, text in extra_kubectl or []:
        if isinstance(text, ImportFileError):
            warnings.append(ReportWarning(source=path, kind="unread", message=str(text), fix="check the file"))
            continue
        try:
            _, res = parse_file("kubectl", path, text)
        except ImportFileError as exc:
            warnings.append(ReportWarning(source=path, kind="unread", message=str(exc), fix="check the file"))
            continue
        add_cluster_objects(cluster, res.value)
    nodes: list[NodeSnapshot] = []
    for name in node_names:
        node_files = files.get(name, {})
        node = build_node(name, node_files, keep_going=True)
        node.source = "import"
        for o, result in iptables_parts.get(name, []):
            node.evidence.append(Evidence(id=_ev_id(node, "iptables-save"), command=o.command or "iptables-save",
                                          stdout=_redact(o.text), origin="import", path=o.source))
            node.warnings.extend(w.model_copy(update={"source": o.source}) for w in result.warnings)
        parts = [(o.source, result.value) for o, result in iptables_parts.get(name, [])]
        if parts:
            merged = merge_iptables(parts, warnings)
            merged.evidence_id = "iptables-save"
            node.iptables = merged
        for o in extra.get(name, []):
            _add_extra(node, o, warnings)
        _annotate_evidence(node, [o for o in mine if o.node == name])
        if node.status != "ok" and node.error:
            for msg in node.error.split("; "):
                warnings.append(ReportWarning(source=msg.split(":", 2)[0] + ":" + msg.split(":", 2)[1]
                                              if msg.count(":") >= 2 else report.path,
                                              kind="unread", message=msg, code="unread",
                                              args={"what": msg.split(": ", 1)[0], "detail": msg},
                                              fix="paste the output exactly as the terminal printed it"))
            node.status, node.error = "ok", None
        nodes.append(node)
    _latest_manifests(cluster)
    if tables:
        setattr(cluster, "tables", tables)  # noqa: B010 (an extra field of the snapshot)
    if cluster_warn:
        cluster.warnings.extend(cluster_warn)
    has_cluster = bool(tables) or any(getattr(cluster, f) for f in ("pods", "services", "deployments", "hpas",
                                                                     "nodes", "endpoints", "other"))
    note = f"imported by labreport import --report from {report.path} ({report.format}); {phase} state"
    return Snapshot(tool_version=__version__, created_at=_now(), title=title, origin_note=note, nodes=nodes,
                    cluster=cluster if has_cluster else None)


def report_master(outputs: list[Output]) -> Optional[str]:
    for o in outputs:
        if o.node and ("master" in o.node or o.node_from in ("text before", "section")
                       and role_word(o.context) == "master"):
            return o.node
    return None


def _latest_manifests(cluster: ClusterObjects) -> None:
    """A manifest the report gives twice (service.yaml, then the revised one): the last wins."""
    for field in ("pods", "services", "deployments", "hpas", "replicasets", "endpoints", "other"):
        objs = getattr(cluster, field)
        seen: dict[tuple[str, str, str], int] = {}
        for i, obj in enumerate(objs):
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            seen[(str(obj.get("kind")), str(meta.get("namespace", "default")), str(meta.get("name")))] = i
        if len(seen) != len(objs):
            setattr(cluster, field, [objs[i] for i in sorted(seen.values())])


def _ev_id(node: NodeSnapshot, base: str) -> str:
    have = {e.id for e in node.evidence}
    if base not in have:
        return base
    n = 2
    while f"{base}#{n}" in have:
        n += 1
    return f"{base}#{n}"


def _inspect_target(command: str) -> Optional[str]:
    words = command.split("|", 1)[0].split()
    if "inspect" in words:
        rest = [w for w in words[words.index("inspect") + 1:] if not w.startswith("-")]
        if rest:
            return rest[0].split("/", 1)[-1]
    return None


def _annotate_evidence(node: NodeSnapshot, outs: list[Output]) -> None:
    by_source = {o.source: o for o in outs}
    for ev in node.evidence:
        o = by_source.get(ev.path or "")
        if o is None:
            continue
        if o.command and o.command_from != "prompt":
            ev.command = o.command
        setattr(ev, "prompt_host", o.prompt_host)  # noqa: B010 (an extra field of the snapshot)
        setattr(ev, "node_from", o.node_from)  # noqa: B010 (an extra field of the snapshot)
        setattr(ev, "question", o.question)  # noqa: B010 (an extra field of the snapshot)
        setattr(ev, "command_from", o.command_from)  # noqa: B010 (an extra field of the snapshot)
        if o.stated_node:
            setattr(ev, "stated_node", o.stated_node)  # noqa: B010 (the node the report's words give)
        if o.repairs:
            setattr(ev, "repairs", list(o.repairs))  # noqa: B010 (an extra field of the snapshot)


def _add_manifest(o: Output, text: str, cluster: ClusterObjects, warnings: list[ReportWarning],
                  breaks: Optional[list[int]]) -> None:
    from labreport.importer import add_cluster_objects
    from labreport.parsers._common import is_prompt_line

    body_lines = [ln for ln in text.split("\n") if not is_prompt_line(ln)]
    body = "\n".join(body_lines)
    # a command's output after the manifest ("deployment.apps/x created") is not YAML
    fix = repair_manifest(body, break_at=(breaks[0] if breaks else None))
    if fix.objects:
        add_cluster_objects(cluster, fix.objects)
        if fix.repaired:
            names = ", ".join(f"{d.get('kind')} {d.get('metadata', {}).get('name')}" for d in fix.objects)
            warnings.append(ReportWarning(source=o.source, kind="repair", message=f"{names}: {fix.repaired}",
                                          code=fix.code, args={"obj": names, "n": str(fix.shift or "")},
                                          fix="check the manifest; paste it as one code block with its indentation"))
        return
    kind = next((ln.split(":", 1)[1].strip() for ln in body_lines if ln.startswith("kind:")), "a manifest")
    warnings.append(ReportWarning(
        source=o.source, kind="yaml", code="yaml_damaged", args={"kind": kind},
        message=f"{kind}: damaged YAML kept as evidence only (no object made from it): {fix.damaged}",
        fix="paste the manifest as one code block, with its indentation, or run `kubectl get … -o yaml`"))
    cluster.warnings.append(f"{o.source}: {kind}: damaged YAML, not read: {fix.damaged}")
    damaged = list(getattr(cluster, "damaged_manifests", []) or [])
    damaged.append({"source": o.source, "kind": kind, "text": text, "why": fix.damaged})
    setattr(cluster, "damaged_manifests", damaged)  # noqa: B010 (an extra field of the snapshot)


def _add_tables(o: Output, text: str, tables: list[dict[str, Any]], warnings: list[ReportWarning]) -> None:
    from labreport.parsers import get

    try:
        result = get(o.parser or "").parse(text, source=o.source)
    except (ParseError, ImportError) as exc:
        warnings.append(ReportWarning(source=o.source, kind="unread", message=f"{o.command or o.parser}: {exc}",
                                      code="unread", args={"what": o.command or o.parser or "", "detail": str(exc)},
                                      fix="paste the table exactly as kubectl printed it"))
        return
    rows = result.value if isinstance(result.value, list) else [result.value]
    for row in rows:
        d = row.model_dump(mode="json")
        d["source"] = o.source
        d["command"] = o.command
        if not d.get("namespace"):
            d["namespace"] = _namespace_of(o.command or "")
        if o.command and o.parser == "kubectl-get":
            d["resource"] = kubectl_get_resource(o.command)
        tables.append(d)
    for w in result.warnings[:20]:
        warnings.append(ReportWarning(source=f"{o.source}+{w.line_no}", kind="unread",
                                      message=f"{w.message}: {w.line[:120]}",
                                      fix="paste the table exactly as kubectl printed it"))


def _namespace_of(command: str) -> Optional[str]:
    """The namespace a kubectl command lists (-n X / --namespace X); None for -A; else "default"."""
    words = command.split("|", 1)[0].split()
    for i, w in enumerate(words):
        if w in ("-A", "--all-namespaces"):
            return None
        if w in ("-n", "--namespace") and i + 1 < len(words):
            return words[i + 1]
        if w.startswith(("--namespace=", "-n=")):
            return w.split("=", 1)[1]
    return "default"


def _add_extra(node: NodeSnapshot, o: Output, warnings: list[ReportWarning]) -> None:
    from labreport.parsers import get

    text = _redact(o.text)
    try:
        result = get(o.parser or "").parse(text, source=o.source)
    except (ParseError, ImportError) as exc:
        warnings.append(ReportWarning(source=o.source, kind="unread", message=f"{o.command or o.parser}: {exc}",
                                      code="unread", args={"what": o.command or o.parser or "", "detail": str(exc)},
                                      fix="paste the output exactly as the terminal printed it"))
        return
    node.evidence.append(Evidence(id=_ev_id(node, o.parser or "output"), command=o.command or o.parser or "",
                                  stdout=text, origin="import", path=o.source))
    node.warnings.extend(ParseWarning(**w.model_dump()) for w in result.warnings)
    if o.parser == "sysctl":
        for e in result.value:
            node.info.sysctls[e.key] = e.value
    elif o.parser == "lsmod":
        for m in result.value:
            if m.name not in node.info.modules:
                node.info.modules.append(m.name)
    elif o.parser == "kubeadm":
        setattr(node.info, "kubeadm", result.value.model_dump(mode="json"))  # noqa: B010 (an extra field of the snapshot)
