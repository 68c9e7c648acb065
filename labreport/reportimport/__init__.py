"""``labreport import --report FILE``: a whole lab report (Markdown, text, PDF, .docx) in,
snapshots out — the report cut into command outputs, each read by the same parsers as
live collection.

The steps, one module each:

1. :mod:`.extract` — the report's text (PDF text layer, .docx body, text);
2. :mod:`.split` — code blocks and unfenced terminal tables, with the prose before them;
3. :mod:`.cut` / :mod:`.command` — outputs cut at prompts, the command and parser of each
   (prompt, prose, content);
4. :mod:`.locate` / :mod:`.node` — the node of each (prompt host, master/worker words,
   aliases merged), or the pod for a pod's own shell;
5. :mod:`.repair` / :mod:`.yamlfix` — line-number gutters, wrapped lines, garbled comments,
   damaged YAML; every repair is said as a warning;
6. :mod:`.assemble` / :mod:`.build` — before/after phases, duplicates, and the snapshots.

``import_report(path)`` returns a :class:`ReportImport`: ``after`` (the report's last
state, the snapshot to render), ``before`` (the state before Q5's pod / Q11's scaling, or
None when the report shows no such pair) and the warnings. The CLI writes ``after`` to
``DIR`` and ``before`` to ``DIR/before`` so that ``labreport render DIR --before
DIR/before`` shows Q5 and Q11 from the one report.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from labreport.reportimport.assemble import ImportedOutput, ReportImportInfo, ReportWarning, assign_phases
from labreport.reportimport.build import Files, build_snapshot
from labreport.reportimport.command import Output
from labreport.reportimport.cut import cut_report
from labreport.reportimport.extract import ReportReadError, ReportText, read_report
from labreport.reportimport.locate import assign_nodes, node_of_pod
from labreport.reportimport.node import NodeNames
from labreport.reportimport.repair import repair_for
from labreport.snapshot import Snapshot

__all__ = ["import_report", "import_text", "ReportImport", "ReportReadError", "ReportWarning"]

class ReportImport(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    after: Snapshot
    before: Optional[Snapshot] = None
    info: ReportImportInfo
    outputs: list[Output] = Field(default_factory=list)

    @property
    def warnings(self) -> list[ReportWarning]:
        return self.info.warnings


def import_text(report: ReportText, *, aliases: Optional[dict[str, str]] = None, title: Optional[str] = None,
                nodes: Optional[list[tuple[str, Files]]] = None,
                kubectl: Optional[list[tuple[str, Any]]] = None) -> ReportImport:
    """``nodes`` / ``kubectl``: files given with the usual options (``--node NAME --ps F``),
    added to the AFTER snapshot (a node named there that the report does not name is added)."""
    outputs, warnings, breaks = cut_report(report)
    names = NodeNames(aliases=dict(aliases or {}))
    # repairs first: the node and phase passes parse the outputs
    for o in outputs:
        fixed, done = repair_for(o.parser or "", o.lines)
        o.lines = fixed
        o.repairs.extend(done)
    assign_nodes(outputs, names)
    for o in outputs:
        if o.pod:
            node = node_of_pod(o.pod, outputs) or names.for_role("worker")
            o.node = node
            if o.parser == "ip-addr":
                o.kind = f"pod-ip-addr:{o.pod}"
    outputs += assign_phases(outputs, warnings)
    for o in outputs:
        if o.node_from == "guess" and o.node and o.parser != "kubeadm":
            warnings.append(ReportWarning(
                source=o.source, kind="node", code="node_guess", args={"what": o.command or o.parser or "", "node": o.node},
                message=f"neither a prompt nor the text says which node {o.command or o.parser} ran on; read as {o.node}'s",
                fix="paste the output with its prompt line (root@node:~# …), or say which node it is from"))
        if o.stated_node:
            warnings.append(ReportWarning(
                source=o.source, kind="node", code="prompt_node",
                args={"stated": o.stated_node or "", "host": o.prompt_host or "", "node": o.node or ""},
                message=(f"the text before this output says it is from {o.stated_node}, but its prompt "
                         f"(root@{o.prompt_host}) is {o.node}'s; read as {o.node}'s"),
                fix="check which node the output was taken on"))
    after = build_snapshot(report, outputs, "after", warnings, breaks, title, extra_nodes=nodes or [],
                   extra_kubectl=kubectl or [])
    before = None
    if any(o.phase == "before" for o in outputs):
        before = build_snapshot(report, outputs, "before", warnings, breaks, title)
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


