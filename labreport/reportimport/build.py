"""Step 6 of ``import --report``: the snapshot of one phase (after / before) built from the
outputs — node outputs through :func:`labreport.importer.build_node` (the same path as the
plain ``labreport import``), iptables fragments merged with duplicates dropped, sysctl /
lsmod / kubeadm into the node's info, manifests (repaired or kept as damaged evidence) and
kubectl tables into the cluster. Every bootstrap token is redacted in the evidence kept.
"""

from __future__ import annotations

from typing import Any, Optional

from labreport.errors import ParseError
from labreport.reportimport.assemble import ReportWarning, merge_iptables
from labreport.reportimport.command import Output, kubectl_get_resource
from labreport.reportimport.extract import ReportText
from labreport.reportimport.node import role_word
from labreport.reportimport.yamlfix import repair_manifest
from labreport.snapshot import ClusterObjects, Evidence, NodeSnapshot, ParseWarning, Snapshot

Files = dict[str, list[tuple[str, Any]]]

NODE_KINDS = {
    "ps": "ps", "docker-ps": "containers", "crictl-ps": "containers", "crictl-pods": "containers",
    "ctr-containers": "ctr", "docker-inspect": "inspect", "ip-addr": "ip-addr", "ip-route": "ip-route",
    "iptables-save": "iptables-save", "nft": "nft", "ipvsadm": "ipvsadm",
}
EXTRA_NODE_PARSERS = ("sysctl", "lsmod", "kubeadm")





def _redact(text: str) -> str:
    from labreport.parsers.kubeadm import redact_text

    return redact_text(text)


def build_snapshot(report: ReportText, outputs: list[Output], phase: str, warnings: list[ReportWarning],
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
            warnings.append(ReportWarning(source=path, kind="unread", message=str(text), fix="check the file",
                                          code="unread", args={"what": path, "detail": str(text)}))
            continue
        try:
            _, res = parse_file("kubectl", path, text)
        except ImportFileError as exc:
            warnings.append(ReportWarning(source=path, kind="unread", message=str(exc), fix="check the file",
                                          code="unread", args={"what": path, "detail": str(exc)}))
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
                                      message=f"{w.message}: {w.line[:120]}", code="table_row",
                                      args={"what": o.command or "kubectl", "line": w.line[:80]},
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
