"""The TA's view of a class (``labreport grade``): per student which lab questions have
evidence in the report, the cluster it shows, and what did not add up. Pure: snapshots
and analyses in, ``StudentSummary`` records out; :mod:`labreport.cli.grade` does the I/O.

Questions are the lab's (``lab-questions.md``), not the report's own numbering (years
number them differently): each is "has evidence" when the report holds the output that
answers it — Q2 processes, Q3 container lists, Q5 container lists before and after, Q6
a veth pair or a pod's interfaces, Q8 the Service's rules, Q11 a Service with several
endpoints, Q4/Q7/Q10 the Pod / Service / Deployment manifests, Q12 the Deployment's
volumes or an HPA, Q1 install facts (sysctls, modules, kubeadm output, node list), Q9 the
proxy mode shown by the rules.
"""

from __future__ import annotations

import csv
import html
import io
from typing import Any, Optional

from pydantic import BaseModel, Field

from labreport.analysis.model import Analysis
from labreport.snapshot import Snapshot

QUESTIONS = [f"Q{i}" for i in range(1, 13)]


class StudentSummary(BaseModel):
    student: str  # the report's file name
    report: str
    ok: bool = True
    error: Optional[str] = None  # why the report could not be read at all
    questions: dict[str, bool] = Field(default_factory=dict)
    nodes: list[str] = Field(default_factory=list)
    runtime: list[str] = Field(default_factory=list)
    cni: list[str] = Field(default_factory=list)
    proxy_mode: Optional[str] = None
    inconsistencies: list[str] = Field(default_factory=list)
    warnings: int = 0
    report_file: Optional[str] = None  # the rendered report, relative to the summary


_CNI_WORDS = ("flannel", "weave", "calico", "cilium", "canal", "antrea")


def summarize(student: str, report: str, after: Snapshot, before: Optional[Snapshot], analysis: Analysis,
              warnings: int = 0) -> StudentSummary:
    s = StudentSummary(student=student, report=report, warnings=warnings)
    s.nodes = [n.name for n in after.nodes]
    runtimes = {c.runtime for n in after.nodes for c in n.containers if c.runtime and c.runtime != "unknown"}
    s.runtime = sorted(runtimes)
    words = " ".join([p.command for n in after.nodes for p in n.processes]
                     + [c.name + " " + (c.image or "") + " " + (c.pod_name or "") for n in after.nodes
                        for c in n.containers]
                     + [lk.name for n in after.nodes for ns in n.netns for lk in ns.links]
                     + [str(t.get("name", "")) for t in (getattr(after.cluster, "tables", None) or [])
                        if isinstance(t, dict)])
    s.cni = [w for w in _CNI_WORDS if w in words]
    modes = {na.proxy_mode.mode for na in analysis.nodes if na.proxy_mode.mode not in ("unknown", "none")}
    s.proxy_mode = ",".join(sorted(modes)) or None
    c = after.cluster
    kinds = {str(o.get("kind")) for f in ("pods", "services", "deployments", "hpas") for o in (getattr(c, f) if c else [])}
    tables = list(getattr(c, "tables", []) or []) if c is not None else []
    q = {k: False for k in QUESTIONS}
    q["Q1"] = any(n.info.sysctls or n.info.modules or getattr(n.info, "kubeadm", None) for n in after.nodes) or any(
        t.get("kind") == "Node" for t in tables)
    q["Q2"] = any(n.processes for n in after.nodes)
    q["Q3"] = any(n.containers for n in after.nodes)
    q["Q4"] = "Pod" in kinds
    q["Q5"] = before is not None and any(n.containers for n in before.nodes) and q["Q3"]
    q["Q6"] = any(na.veth_pairs for na in analysis.nodes) or any(
        ns.kind != "node" and ns.links for n in after.nodes for ns in n.netns)
    q["Q7"] = "Service" in kinds
    q["Q8"] = any(na.services for na in analysis.nodes)
    q["Q9"] = s.proxy_mode is not None
    q["Q10"] = "Deployment" in kinds
    q["Q11"] = any(len(sv.endpoints or []) >= 2 for na in analysis.nodes for sv in na.services)
    q["Q12"] = "HorizontalPodAutoscaler" in kinds or any(
        (d.get("spec", {}).get("template", {}).get("spec", {}) or {}).get("volumes")
        for d in (c.deployments if c else []) if isinstance(d, dict))
    s.questions = q
    s.inconsistencies = [f"{i.kind}: {i.detail}" for i in getattr(analysis, "inconsistencies", []) or []]
    return s


def failed(student: str, report: str, why: str) -> StudentSummary:
    return StudentSummary(student=student, report=report, ok=False, error=why,
                          questions={k: False for k in QUESTIONS})


def to_csv(rows: list[StudentSummary]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student", "report", "status", *QUESTIONS, "nodes", "runtime", "cni", "proxy_mode",
                "inconsistencies", "warnings", "error"])
    for r in rows:
        w.writerow([r.student, r.report, "ok" if r.ok else "unreadable",
                    *("yes" if r.questions.get(k) else "" for k in QUESTIONS),
                    " ".join(r.nodes), " ".join(r.runtime), " ".join(r.cni), r.proxy_mode or "",
                    " | ".join(r.inconsistencies), r.warnings, r.error or ""])
    return buf.getvalue()


def to_html(rows: list[StudentSummary], title: str = "Lab reports: class summary") -> str:
    e = html.escape
    head = "".join(f"<th>{e(k)}</th>" for k in QUESTIONS)
    body = []
    for r in rows:
        link = (f'<a href="{e(r.report_file, quote=True)}">{e(r.student)}</a>' if r.report_file else e(r.student))
        if not r.ok:
            body.append(f'<tr class="broken"><td>{link}</td><td colspan="{len(QUESTIONS) + 5}">'
                        f"could not be read: {e(r.error or '')}</td></tr>")
            continue
        cells = "".join(f'<td class="{"y" if r.questions.get(k) else "n"}">{"✓" if r.questions.get(k) else "–"}</td>'
                        for k in QUESTIONS)
        inc = "<br>".join(e(i) for i in r.inconsistencies) or "–"
        body.append(f"<tr><td>{link}</td>{cells}<td>{e(', '.join(r.nodes))}</td><td>{e(', '.join(r.runtime))}</td>"
                    f"<td>{e(', '.join(r.cni))}</td><td>{e(r.proxy_mode or '')}</td><td>{inc}</td>"
                    f"<td>{r.warnings}</td></tr>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>{e(title)}</title><style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}"
            "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}td.y{background:#dfd}td.n{color:#999}"
            f"tr.broken td{{background:#fdd}}</style></head><body><h1>{e(title)}</h1><table><tr><th>student</th>"
            f"{head}<th>nodes</th><th>runtime</th><th>CNI</th><th>proxy mode</th><th>inconsistencies</th>"
            "<th>warnings</th></tr>" + "".join(body) + "</table></body></html>\n")


def summary_rows_for_json(rows: list[StudentSummary]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in rows]
