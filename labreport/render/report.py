"""Render a report: snapshot (+ analysis) → report.md / report.html / report.pdf.

``render_report(snapshot, fmt=..., lang=..., out_dir=...)`` is what ``labreport render``
and ``labreport demo`` call. Steps: redact (unless asked not to), analyze, trace the path,
build the view (context.py), draw the topology (diagram.py), fill the templates (Markdown,
written once for both formats; markup.py emits format-specific pieces), then write the
files atomically.
"""

from __future__ import annotations

import html as _html
import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import jinja2

from labreport import __version__
from labreport import outputs as _outputs
from labreport.analysis.components import container_short_name
from labreport.analysis.model import Analysis, Hop, Overlay, ServiceRecord
from labreport.analysis.probability import format_probability
from labreport.errors import RenderError
from labreport.render import diagram as _diagram
from labreport.render import escape as _esc
from labreport.render.context import (APPENDIX_MAX_LINES, Excerpt, NodeView, ReportContext, build_context,
                                      to_yaml, PER_NODE_DIAGRAMS_ABOVE)
from labreport.render.i18n import Translator
from labreport.render.i18n import templates_dir as _templates_dir
from labreport.render.markup import Badge, Code, Markup
from labreport.render.markup import fence as _markup_fence
from labreport.snapshot import Evidence, Snapshot, atomic_write

FORMATS = ("md", "html", "pdf")
CJK_FONTS = ('"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", '
             '"PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "SimHei"')
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


@dataclass
class RenderResult:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    main: Optional[Path] = None
    redacted: Optional[list[str]] = None
    diagram_error: Optional[str] = None
    missing_keys: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- jinja


def templates_dir() -> Path:
    return _templates_dir()


_ENVS = threading.local()


def _env(kind: str = "md") -> jinja2.Environment:
    """The Jinja environment (one per thread and kind, so templates compile once per process:
    compiling the 13 templates took longer than filling them)."""
    envs = getattr(_ENVS, "envs", None)
    if envs is None:
        envs = _ENVS.envs = {}
    env = envs.get(kind)
    if env is None:
        env = envs[kind] = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir())),
            autoescape=False,  # the output is Markdown: finalize escapes every value as Markdown text
            finalize=_esc.finalize if kind == "md" else None,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined,
        )
    return env


class _Helpers:
    """Filters and globals the templates use; they know the language and the format."""

    def __init__(self, t: Translator, m: Markup, ctx: ReportContext) -> None:
        self.t, self.m, self.ctx = t, m, ctx

    # -- rows
    def check_row(self, c: Any) -> list[Any]:
        t = self.t
        title = t.maybe(f"checks.{c.id}", c.title)
        observed, expected, fix = t.phrase(c.observed or ""), t.phrase(c.expected or ""), t.phrase(c.fix or "")
        return [title, Badge(c.status, t(f"common.status.{c.status}")), Code(observed) if observed else "",
                Code(expected) if expected else "", Code(fix) if fix else ""]

    def excerpt_block(self, ex: Excerpt) -> str:
        return f"$ {ex.command}\n{ex.text.rstrip() or self.t('common.no_output')}" + self.more_line(ex)

    def more_line(self, ex: Excerpt) -> str:
        return ("\n" + self.t("common.more_lines", n=ex.more)) if ex.more else ""

    def check_title(self, c: Any) -> str:
        return self.t.maybe(f"checks.{c.id}", c.title)

    def api_node_row(self, n: Any) -> list[Any]:
        st = "pass" if n.ready == "True" else "fail"
        return [n.name, Badge(st, "Ready" if st == "pass" else f"Ready={n.ready}"), n.roles, n.version,
                n.runtime, Code(n.address), Code(n.pod_cidr)]

    def info_line(self, row: tuple[str, str]) -> str:
        return f"{row[0]}: {row[1]}"

    def component_row(self, c: Any) -> list[Any]:
        where = (self.t("s.proc.in_container") if c.in_container else
                 self.t("s.proc.on_host") if c.in_container is False else self.t("common.unknown"))
        flags = [Code(f"{k}={v}" if v != "true" else k) for k, v in list(c.key_flags.items())[:5]]
        return [Code(c.name), c.pid or "", where, self.role(c.name, c.role), flags]

    def role(self, name: str, fallback: str = "") -> str:
        if not fallback:
            for nv in self.ctx.nodes:
                for c in nv.na.components:
                    if c.name == name:
                        fallback = c.role
                        break
        return self.t.role(name, fallback)

    def pod_rows(self, pods: list[Any]) -> list[list[Any]]:
        rows = []
        t = self.t
        for p in pods:
            first = True
            for c in p.containers:
                runs = ""
                if c.is_sandbox:
                    runs = t("s.ctr.sandbox")
                elif c.component:
                    runs = f"{c.component} — {self.role(c.component)}"
                short = _short_name(c.name)
                name: Code | list[Code | str]
                if c.is_sandbox:
                    name = [Code("pause" if short in ("POD", "") or short == p.name else short),
                            f"{t('s.ctr.sandbox_mark')} {c.id[:12]}"]
                else:
                    name = Code(short)
                rows.append([Code(p.key) if first else "", name, Code(_short_image(c.image)) if c.image else "",
                             c.state or "", runs])
                first = False
            if not p.containers:
                rows.append([Code(p.key), "", "", "", ""])
        return rows

    def pods_without_sandbox(self, pods: list[Any]) -> int:
        return sum(1 for p in pods if p.containers and not any(c.is_sandbox for c in p.containers))

    def field_row(self, f: Any) -> list[Any]:
        return [Code(f.path), Code(self.t.phrase(f.value)), self.t(f"s.man.fields.{f.key}")]

    def new_container_row(self, c: Any) -> list[Any]:
        t = self.t
        if c.is_sandbox and c.inferred:
            what = t("s.new.sandbox_inferred_what")
        elif c.is_sandbox:
            what = t("s.new.sandbox_what")
        else:
            what = t("s.new.app_what", name=c.short_name)
        if c.is_sandbox:
            net = t("s.new.netns_owner", netns=c.netns) if c.netns else t("s.new.netns_owner_unknown")
        elif c.shares_sandbox_netns:
            net = t("s.new.netns_shared", mode=c.network_mode or "CRI sandbox")
        else:
            net = t("s.new.netns_unknown")
        return [c.node, Code(c.name), Code(c.pod) if c.pod else "", Code(_short_image(c.image)), what, net]

    def device_row(self, d: Any) -> list[Any]:
        role = self.t(f"s.net.roles.{d.role}") if d.role else ""
        return [Code(d.name), d.kind, role, Code(d.master) if d.master else "",
                [Code(a) for a in d.addresses], d.state, d.peer]

    def veth_row(self, v: Any) -> list[Any]:
        return [Code(f"{v.host_ifname} (if{v.host_ifindex})"), Code(v.bridge) if v.bridge else "—",
                Code(f"{v.pod_ifname}@if{v.host_ifindex} (if{v.pod_ifindex})"), Code(v.netns),
                [Code(a) for a in v.pod_ips], Code(v.pod) if v.pod else ""]

    def route_row(self, r: Any) -> list[Any]:
        return [Code(r.dst), Code(r.via) if r.via else "", Code(r.dev), r.proto]

    def ip_rule_row(self, r: Any) -> list[Any]:
        routes = (self.t("s.net.rule_table_routes", count=r.table_routes) if r.table_routes
                  else (self.t("s.net.rule_table_empty") if r.action.startswith("lookup") else "—"))
        return [r.family, str(r.priority), Code(r.selector), Code(r.action), routes]

    def endpoint_rows(self, rec: ServiceRecord) -> list[list[Any]]:
        rows = []
        eps = rec.endpoints or []
        for i, ep in enumerate(eps):
            if rec.mode == "cilium":  # Cilium's BPF lookup: one of the active backends at random
                choice: Any = self.t("s.svc.cilium_random") if ep.ready is not False else "—"
            elif rec.mode == "nftables":  # numgen random mod N vmap { 0 : goto …, 1 : … }
                choice = self.t("s.svc.numgen", i=i, n=len(eps))
            elif rec.mode == "ipvs" or ep.weight is not None:
                choice = ep.weight if ep.weight is not None else "?"
            elif ep.rule_probability is not None:
                choice = format_probability(ep.rule_probability)
            else:
                choice = self.t("s.svc.always")
            rows.append([i + 1, Code(ep.address), Code(ep.pod) if ep.pod else "", Code(ep.chain) if ep.chain else "",
                         choice, format_probability(ep.probability, style="percent", missing="?")])
        return rows

    def service_row(self, rec: ServiceRecord) -> list[Any]:
        vip = f"{_vip(rec)}/{rec.protocol}"
        eps = ", ".join(ep.address for ep in (rec.endpoints or [])[:4])
        if rec.endpoints and len(rec.endpoints) > 4:
            eps += f" (+{len(rec.endpoints) - 4})"
        if rec.no_endpoints:
            eps = self.t("s.svc.no_endpoints_short")
        return [Code(rec.name), Code(vip) if vip else "", eps]

    def volume_row(self, v: Any) -> list[Any]:
        return [v.workload, v.replicas if v.replicas is not None else "?", ", ".join(v.nodes) or "?", Code(v.volume),
                Code(v.detail), [Code(x) for x in v.mounts]]

    def mismatch_row(self, mm: Any) -> list[Any]:
        return [self.t.maybe(f"mismatch.{mm.kind}", mm.kind), mm.node or "", Code(mm.subject), mm.detail]

    def hpa_rows(self, h: Any) -> list[list[Any]]:
        t = self.t
        rows: list[list[Any]] = [
            [t("s.hpa.target"), Code(h.target)],
            [t("s.hpa.min"), h.min_replicas], [t("s.hpa.max"), h.max_replicas],
            [t("s.hpa.metrics"), [Code(x) for x in h.metrics]],
            [t("s.hpa.scale_down"), [Code(x) for x in h.scale_down] or t("s.hpa.default_behavior")],
        ]
        if h.scale_up:
            rows.append([t("s.hpa.scale_up"), [Code(x) for x in h.scale_up]])
        if h.current_replicas is None and h.desired_replicas is None:
            rows.append([t("s.hpa.current"), t("s.hpa.no_status")])
        else:
            rows.append([t("s.hpa.current"), f"{h.current_replicas if h.current_replicas is not None else '?'} → "
                                             f"{h.desired_replicas if h.desired_replicas is not None else '?'}"])
        if h.current_metrics:
            rows.append([t("s.hpa.current_metrics"), [Code(x) for x in h.current_metrics]])
        for c in h.conditions:
            rows.append([f"{t('s.hpa.condition')} {c.type}", f"{c.status}: {c.message}"])
        return rows

    def diff_note(self, n: Any) -> str:
        key = f"s.new.notes.{n.key}"
        if self.t.has(key):
            args = dict(n.args)
            if "kind" in args:
                args["kind"] = self.t.maybe(f"s.new.kinds.{args['kind']}", args["kind"])
            if "part" in args:
                args["part"] = self.t.maybe(f"s.new.parts.{args['part']}", args["part"])
            if "side" in args:
                args["side"] = self.t.maybe(f"s.new.sides.{args['side'].lower()}", args["side"])
            return f"{n.args.get('node', '')}: " + self.t(key, **args)
        return f"{n.args.get('node', '')}: {n.text}"

    def problem_line(self, p: Any) -> str:
        return self.t("s.man.shape_problem", subject=p.subject, field=p.field,
                      expected=self.t.maybe(f"s.man.shapes.{p.expected}", p.expected), found=p.found)

    def overview_row(self, n: Any) -> list[Any]:
        t = self.t
        st = {"ok": "pass", "partial": "warn", "failed": "fail"}.get(n.status, "unknown")
        fails: list[Code | str] = [Code(f) for f in n.failures[:3]]
        if len(n.failures) > 3:
            fails.append(t("diagram.and_more", n=len(n.failures) - 3))
        return [n.name, t("common.control_plane" if n.control_plane else "common.worker"),
                Badge(st, t(f"common.node_status.{n.status}")), n.pods, n.containers,
                ", ".join(n.cni) or "—", n.proxy_mode if n.proxy_mode not in ("unknown", "none") else "—",
                fails or "—"]

    # -- prose
    def evidence_of(self, ex: Excerpt, label: str) -> Any:
        summary = f"{label}: {ex.command}"
        if ex.trimmed:
            summary += " " + self.t("common.trimmed", shown=ex.shown, total=ex.total)
        note = self.t("common.origin." + ex.origin) if ex.origin != "live" else ""
        return self.m.evidence(summary, ex.command, ex.text + self.more_line(ex), note=note)

    def appendix_block(self, ev: Evidence) -> Any:
        lines = (ev.stdout or "").splitlines()
        text = "\n".join(lines[:APPENDIX_MAX_LINES])
        note = ""
        if len(lines) > APPENDIX_MAX_LINES:
            note = self.t("s.app.cut", shown=APPENDIX_MAX_LINES, total=len(lines))
        if ev.stderr:
            text += ("\n" if text else "") + "[stderr]\n" + ev.stderr.rstrip()
        meta = []
        if ev.exit_code not in (None, 0):
            meta.append(f"exit {ev.exit_code}")
        if ev.timed_out:
            meta.append(self.t("common.timed_out"))
        if ev.origin != "live":
            meta.append(self.t("common.origin." + ev.origin))
        summary = f"{ev.id}: {ev.command}" + (f" ({', '.join(meta)})" if meta else "")
        return self.m.evidence(summary, ev.command, text, note=note, open_=False)

    def hop_text(self, h: Hop) -> str:
        key = getattr(h, "key", None) or h.kind
        args = dict(getattr(h, "args", None) or {})
        args.setdefault("node", h.node or "")
        msg = self.t(f"path.hop.{key}", **{k: str(v) for k, v in args.items()}) if self.t.has(f"path.hop.{key}") else h.detail
        where = _esc.Safe(f"**{_esc.md_text(h.node, inline=True)}** · ") if h.node else _esc.Safe("")
        out = where + self.m.text(msg)
        rule = args.get("rule")
        if rule:
            out += " " + self.m.code(rule)
        inferred = getattr(h, "inferred", None)
        if inferred:
            why_key = getattr(h, "why_key", None)
            why = (self.t(f"path.why.{why_key}", **{k: str(v) for k, v in (getattr(h, "why_args", None) or {}).items()})
                   if why_key and self.t.has(f"path.why.{why_key}") else inferred)
            out += " " + self.m.text(self.t("path.inferred", why=why))
        return out

    def overlay_role(self, o: Overlay) -> str:
        key = f"overlays.{o.type}.{o.name}"
        if self.t.has(key):
            return self.t(key)
        if self.t.has(f"overlays.{o.type}.default"):
            return self.t(f"overlays.{o.type}.default")
        return str(o.role or "")

    def service_summary(self, rec: ServiceRecord) -> str:
        t = self.t
        vip = _vip(rec)
        if rec.cluster_ip:
            parts = [t("s.svc.vip_line", vip=vip, proto=rec.protocol, svc_chain=rec.chains.get("svc", "—"))]
        else:
            parts = [t("s.svc.no_vip_line", proto=rec.protocol)]
        if rec.node_port:
            parts.append(t("s.svc.nodeport", port=rec.node_port))
        if rec.external_ips:
            parts.append(t("s.svc.external_ips", ips=", ".join(rec.external_ips)))
        if rec.session_affinity:
            parts.append(t("s.svc.affinity", timeout=rec.affinity_timeout_s or 10800))
        if rec.external_traffic_policy:
            parts.append(t("s.svc.etp", policy=rec.external_traffic_policy))
        if rec.internal_traffic_policy:
            parts.append(t("s.svc.itp", policy=rec.internal_traffic_policy))
        if not rec.endpoints:
            return " ".join(parts)
        mode = _walk_mode(rec)
        if mode == "ipvs" and not rec.cluster_ip:
            mode = "ipvs_nodeport"
        walk = t(f"s.svc.walk_{mode}", vip=vip, svc=rec.chains.get("svc", "…"), n=len(rec.endpoints or []))
        return " ".join(parts) + "\n\n" + walk

    def share_explain(self, rec: ServiceRecord) -> str:
        eps = rec.endpoints or []
        if len(eps) <= 1:
            return self.t("s.svc.single_endpoint")
        if rec.mode == "iptables":
            steps = []
            remaining = 1.0
            for ep in eps:
                p = ep.rule_probability if ep.rule_probability is not None else 1.0
                steps.append(f"{format_probability(remaining)} × {format_probability(p)} = "
                             f"{format_probability(remaining * p, style='percent', missing='?')}")
                remaining *= (1 - p)
            n = len(eps)
            seq = [f"1/{n - i}" for i in range(n - 1)] + ["1"]
            if len(seq) > 6:
                seq = seq[:3] + ["…"] + seq[-2:]
            return self.t("s.svc.share_ipt", n=n, steps="; ".join(steps), seq=", ".join(seq))
        if rec.mode == "ipvs" and any(ep.weight is not None for ep in eps):
            total = sum(ep.weight or 0 for ep in eps)
            sched = rec.chains.get("scheduler") or "?"
            return self.t("s.svc.share_ipvs", n=len(eps), total=total, scheduler=sched)
        if rec.mode == "nftables":
            return self.t("s.svc.share_nft", n=len(eps))
        return self.t("s.svc.share_other", n=len(eps))

    def rule_command(self, nv: NodeView) -> str:
        mode = nv.na.proxy_mode.mode
        if mode == "nftables":
            return "nft list table ip kube-proxy"
        if mode == "ipvs":
            return "ipvsadm -Ln"
        if mode == "cilium" and nv.snap.cilium is not None:
            return "cilium-dbg bpf lb list" if nv.snap.cilium.source == "bpf-lb-list" else "cilium-dbg service list"
        return "iptables-save -t nat"

    def endpoint_total(self, nv: NodeView) -> int:
        return sum(len(s.endpoints or []) for s in nv.na.services)


def _short_name(name: str) -> str:
    return container_short_name(name or "")


def _vip(rec: ServiceRecord) -> str:
    """The address a client connects to: cluster IP:port ([v6]:port), or the NodePort."""
    if rec.cluster_ip:
        ip = f"[{rec.cluster_ip}]" if ":" in rec.cluster_ip else rec.cluster_ip
        return f"{ip}:{rec.port}" if rec.port else ip
    if rec.node_port:
        return f"NODE:{rec.node_port}"
    return rec.name


def _walk_mode(rec: ServiceRecord) -> str:
    return rec.mode if rec.mode in ("iptables", "nftables", "ipvs", "cilium") else "iptables"


def _short_image(img: Optional[str]) -> str:
    if not img:
        return ""
    if img.startswith("sha256:"):
        return img[7:20]
    return img


# --------------------------------------------------------------------------- render


def _summary_rows(ctx: ReportContext, t: Translator) -> list[list[Any]]:
    rows = []
    for nv in ctx.nodes:
        counts = t("s.summary.count_line", procs=len(nv.na.components), pods=len(nv.na.pods),
                   veths=len(nv.na.veth_pairs), svcs=len(nv.na.services))
        st = {"ok": "pass", "partial": "warn", "failed": "fail"}.get(nv.snap.status, "unknown")
        rows.append([nv.name, t("common." + nv.role_key), Badge(st, t(f"common.node_status.{nv.snap.status}")),
                     t(f"common.source.{nv.snap.source}"), nv.snap.collected_at or "", counts])
    return rows


def _main_mode(ctx: ReportContext) -> str:
    for nv in ctx.nodes:
        if nv.na.services and nv.na.proxy_mode.mode in ("iptables", "nftables", "ipvs"):
            return nv.na.proxy_mode.mode
    for nv in ctx.nodes:
        if nv.na.proxy_mode.mode in ("iptables", "nftables", "ipvs"):
            return nv.na.proxy_mode.mode
    return "iptables"


def _kp_example(ctx: ReportContext) -> Optional[ServiceRecord]:
    if ctx.path and ctx.path.service:
        for nv in ctx.nodes:
            for s in nv.na.services:
                if s.name == ctx.path.service:
                    return s
    for nv in ctx.nodes:
        if nv.user_services:
            return nv.user_services[0]
    return None


def _intro_nodes(ctx: ReportContext) -> str:
    names = [n.name for n in ctx.overview.nodes] or [nv.name for nv in ctx.nodes]
    if len(names) > DETAIL_NODES_MAX:
        return ", ".join(names[:DETAIL_NODES_MAX]) + f", … (+{len(names) - DETAIL_NODES_MAX})"
    return ", ".join(names)


def render_markdown(ctx: ReportContext, *, lang: str, fmt: str, diagram_block: str,
                    title: Optional[str] = None) -> tuple[str, Markup, Translator]:
    t = Translator(lang)
    m = Markup("html" if fmt in ("html", "pdf") else "md", open_evidence=(fmt == "pdf"))
    h = _Helpers(t, m, ctx)
    env = _env()
    for name in ("check_row", "api_node_row", "info_line", "component_row", "pod_rows", "field_row",
                 "new_container_row", "device_row", "veth_row", "route_row", "ip_rule_row", "endpoint_rows", "service_row",
                 "volume_row", "mismatch_row", "pods_without_sandbox", "check_title", "excerpt_block",
                 "diff_note", "problem_line", "overview_row"):
        env.filters[name] = getattr(h, name)
    kinds = ", ".join(t.maybe(f"redact.kinds.{k}", k) for k in (ctx.redacted or []))
    tmpl = env.get_template("report.md.j2")
    text = tmpl.render(
        t=t, m=m, ctx=ctx, role=h.role, evidence_of=h.evidence_of, appendix_block=h.appendix_block, phrase=t.phrase,
        hop_text=h.hop_text, overlay_role=h.overlay_role, service_summary=h.service_summary,
        share_explain=h.share_explain, rule_command=h.rule_command, endpoint_total=h.endpoint_total,
        hpa_rows=h.hpa_rows, summary_rows=_summary_rows(ctx, t), redacted_kinds=kinds, to_yaml=to_yaml,
        per_node_above=PER_NODE_DIAGRAMS_ABOVE, intro_nodes=_intro_nodes(ctx),
        other_problems=[p for p in ctx.problems if not any(p in mv.problems for mv in ctx.manifests)],
        main_mode=_main_mode(ctx), kp_example=_kp_example(ctx), diagram_block=diagram_block,
        title=title or t("report.title"), subtitle=t.phrase(ctx.snapshot.title or ""),
        imported_cluster=bool(ctx.snapshot.cluster is not None and ctx.snapshot.cluster.source == "import"),
        created=ctx.snapshot.created_at or "?", version=__version__,
    )
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text, m, t


def _css() -> str:
    return (templates_dir() / "html" / "style.css").read_text("utf-8").replace("/*CJK_FONTS*/", CJK_FONTS)


def markdown_to_html(md_text: str, m: Markup, *, lang: str, title: str) -> str:
    body = _esc.markdown_to_html(md_text)  # raw HTML off, links and images guarded
    body = m.restore(body)
    page = _env("html").get_template("html/page.html.j2")
    return page.render(lang="zh-CN" if lang == "zh" else "en", title=_esc.html_text(title), css=_css(), body=body,
                       csp=_esc.html_text(_esc.CSP))


def _stem(index: int) -> str:
    """A diagram's file name: by its position, never by a node's name (a name from a node or
    a paste must not shape a path)."""
    return "topology" if index == 0 else f"topology-{index + 1}"


def _graphs(ctx: ReportContext, snapshot: Snapshot, analysis: Analysis, t: Translator,
            fmt: str = "html") -> list[tuple[str, Optional[str], _diagram.Diagram]]:
    """(file stem, node or None, diagram): one graph of every node up to a handful of nodes;
    beyond, the traffic path's nodes in one graph and each other detailed node on its own.
    On paper (pdf) every node is drawn on its own, so a page holds it at a legible size
    (its part of the traffic path drawn in it)."""
    row = PDF_PODS_PER_ROW if fmt == "pdf" else _diagram.ROW
    if fmt == "pdf" and not ctx.large and len(ctx.nodes) > 1:
        return [(_stem(i), nv.name,
                 _diagram.build(snapshot, analysis, ctx.path, t, only={nv.name}, row=row))
                for i, nv in enumerate(ctx.nodes)]
    if fmt == "pdf" and not ctx.large:
        return [("topology", None, _diagram.build(snapshot, analysis, ctx.path, t, row=row))]
    if not ctx.large:
        return [("topology", None, _diagram.build(snapshot, analysis, ctx.path, t))]
    shown = [nv.name for nv in ctx.nodes]
    path_nodes: list[str] = []
    if ctx.path and ctx.path.hops:
        for n in [ctx.path.from_node] + [h.node for h in ctx.path.hops] + [ctx.path.to_node]:
            if n and n in shown and n not in path_nodes:
                path_nodes.append(n)
    out: list[tuple[str, Optional[str], _diagram.Diagram]] = []
    if path_nodes:
        out.append(("topology", ", ".join(path_nodes),
                    _diagram.build(snapshot, analysis, ctx.path, t, only=set(path_nodes), row=row)))
    for n in shown:
        if n not in path_nodes:
            out.append((_stem(len(out)), n, _diagram.build(snapshot, analysis, None, t, only={n}, row=row)))
    return out


def _diagram_parts(ctx: ReportContext, graphs: list[tuple[str, Optional[str], _diagram.Diagram]],
                   imgs: list[_diagram.DiagramResult], fmt: str, t: Translator,
                   result: RenderResult) -> tuple[str, dict[str, bytes | str]]:
    """The diagram's part of the report and its files, from the graphs and what `dot` drew."""
    m = Markup("html" if fmt in ("html", "pdf") else "md")
    caption = t("s.net.caption", service=(ctx.path.service if ctx.path and ctx.path.service else "—"))
    files: dict[str, bytes | str] = {}
    md_parts: list[str] = []
    html_parts: list[str] = []
    for (stem, node, d), img in zip(graphs, imgs):
        files[f"{stem}.dot"] = d.dot
        summarized = "".join(" " + t("s.net.summarized", node=k, n=v) for k, v in d.summarized.items())
        heading = t("s.net.diagram_of", nodes=node) if node else ""
        if img.error and not result.diagram_error:
            result.diagram_error = img.error
        if img.svg is None:
            # no Graphviz: say so, keep the DOT source and draw the same graph in Mermaid
            note = t("s.net.no_dot", why=img.error or "?")
            files[f"{stem}.mmd"] = d.mermaid
            md_parts.append((f"\n**{_esc.md_text(heading, inline=True)}**\n" if heading else "")
                            + f"\n> ⚠ {_esc.md_text(note, inline=True)}\n\n{_markup_fence(d.mermaid, 'mermaid')}\n")
            html_parts.append((f"<h4>{_html.escape(heading)}</h4>" if heading else "")
                              + f'<div class="callout warn">{_html.escape(note)}</div>'
                              f'<pre class="mermaid"><code>{_html.escape(d.mermaid)}</code></pre>')
            continue
        files[f"{stem}.svg"] = img.svg
        if img.png is not None:
            files[f"{stem}.png"] = img.png
        on_path = bool(ctx.path and ctx.path.hops and (node is None or any(
            h.node and h.node in node.split(", ") for h in ctx.path.hops)))
        cap = (caption if on_path else "") + summarized
        if fmt == "md":
            extra = (_esc.md_text(t("s.net.png_link")) + f" [{stem}.png]({stem}.png) · [{stem}.dot]({stem}.dot)"
                     + _esc.md_text(summarized))
            md_parts.append((f"\n**{_esc.md_text(heading, inline=True)}**\n" if heading else "")
                            + str(m.figure(f"{stem}.svg", _esc.md_text(heading or t("s.net.diagram"), inline=True),
                                           None, caption, extra)))
            continue
        fig_id = "topology" if stem == "topology" else stem
        cls = "topology" + (" per-node" if node is not None else "")
        html_parts.append(f'<figure class="{cls}" id="{_html.escape(fig_id)}">'
                          + (f"<h4>{_html.escape(heading)}</h4>" if heading else "")
                          + f'{_diagram.inline_svg(img.svg)}<figcaption>{_html.escape(cap if node else caption + summarized)}'
                          f"</figcaption></figure>")
    if ctx.large and ctx.omitted:
        note = t("s.net.not_drawn", n=len(ctx.omitted))
        md_parts.append(f"\n> ℹ {_esc.md_text(note, inline=True)}\n")
        html_parts.append(f'<div class="callout info">{_html.escape(note)}</div>')
    if fmt == "md":
        return _esc.Safe("\n".join(md_parts)), files
    return "@@FIGURE@@", {**files, "__html__": "\n".join(html_parts)}


PDF_PODS_PER_ROW = 1  # on an A4 page a node is drawn one pod wide: its labels print at >= 8 pt
DETAIL_NODES_MAX = 8  # beyond: the overview names every node, the sections detail a few


def featured_nodes(analysis: Analysis, limit: int) -> set[str]:
    """The nodes a cluster's report details: the traffic path's, the control plane's, then
    the first others (in snapshot order) up to ``limit``."""
    order: list[str] = []
    p = analysis.path
    if p is not None:
        for n in [p.from_node] + [h.node for h in p.hops] + [p.to_node]:
            if n and n not in order:
                order.append(n)
    order += [na.node for na in analysis.nodes if na.control_plane and na.node not in order]
    order += [na.node for na in analysis.nodes if na.node not in order]
    return set(order[:limit])


def _check_path(path_service: Optional[str], analysis: Analysis) -> None:
    path = analysis.path
    if path_service and (path is None or path.service is None):
        from labreport.analysis.path import service_names

        known = service_names(analysis)
        raise RenderError(f"--path {path_service}: no such service in the collected rules"
                          + (f"; known: {', '.join(known[:20])}" if known else "; no service rules were collected"))


def render_report(snapshot: Snapshot, *, fmt: str = "html", lang: str = "en", out_dir: str | os.PathLike[str] = ".",
                  path_service: Optional[str] = None, from_node: Optional[str] = None,
                  before: Optional[Snapshot] = None, redact: bool = True, make_zip: bool = False,
                  analysis: Optional[Analysis] = None) -> RenderResult:
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    Translator(lang)  # validates the language early
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RenderError(f"--out {out}: exists and is not a directory")
    result = RenderResult(out_dir=out)
    redacted: Optional[list[str]] = None
    from labreport.analysis import analyze
    from labreport.diff import ContainerChanges, container_changes, diff_snapshots

    changes: Optional[ContainerChanges] = None
    omitted: list[str] = []
    if len(snapshot.nodes) > DETAIL_NODES_MAX:
        # a cluster: analyze it whole, once; the report details a few nodes (the path's, the
        # control plane, …) and summarizes the rest in the overview, so only what it shows
        # is redacted — the detailed nodes, the cluster objects and the analysis it prints
        analysis = analyze(snapshot, service=path_service, from_node=from_node)
        _check_path(path_service, analysis)
        detail = featured_nodes(analysis, DETAIL_NODES_MAX)
        omitted = [n.name for n in snapshot.nodes if n.name not in detail]
        if before is not None:
            changes = container_changes(diff_snapshots(before, snapshot, analyses=(analyze(before), analysis)),
                                        snapshot)
        snapshot = snapshot.model_copy(update={"nodes": [n for n in snapshot.nodes if n.name in detail]})
        analysis = analysis.model_copy(update={"nodes": [na for na in analysis.nodes if na.node in detail]})
        if redact:
            from labreport.redact import redact_model, redact_snapshot

            snapshot, redacted = redact_snapshot(snapshot)
            analysis, more = redact_model(analysis)
            redacted = sorted(set(redacted) | set(more))
            if changes is not None:
                changes, more = redact_model(changes)
                redacted = sorted(set(redacted) | set(more))
    else:
        if redact:
            from labreport.redact import redact_snapshot

            snapshot, redacted = redact_snapshot(snapshot)
            if before is not None:
                before, more = redact_snapshot(before)
                redacted = sorted(set(redacted) | set(more))
        if analysis is None or redact or path_service or from_node:
            analysis = analyze(snapshot, service=path_service, from_node=from_node)
        _check_path(path_service, analysis)
        if before is not None:
            diff = diff_snapshots(before, snapshot, analyses=(analyze(before), analysis))
            changes = container_changes(diff, snapshot)
    if redacted is not None and snapshot.redaction is not None and snapshot.redaction.mode == "on":
        # redacted when it was written (collect/import): what was replaced then counts too
        redacted = sorted(set(redacted) | set(snapshot.redaction.kinds))
    result.redacted = redacted
    path = analysis.path
    ctx = build_context(snapshot, analysis, path=path, changes=changes, redacted=redacted, omitted=omitted)
    t = Translator(lang)
    # the diagrams are drawn (one `dot` each, all started at once) while the text is filled
    # in: the Markdown gets a placeholder that only this render knows, replaced afterwards
    graphs = _graphs(ctx, snapshot, analysis, t, fmt)
    pending = _diagram.start_many([d for _, _, d in graphs])
    try:
        token = f"@@DIAGRAMS-{_esc.placeholder_nonce()}@@"
        md_text, m, tr = render_markdown(ctx, lang=lang, fmt=fmt, diagram_block=_esc.Safe(token))
    finally:
        imgs = pending.wait()
    block, files = _diagram_parts(ctx, graphs, imgs, fmt, t, result)
    md_text = re.sub(r"\n{3,}", "\n\n", md_text.replace(token, block, 1))  # as render_markdown does
    frag = files.pop("__html__", None)  # the figure's HTML (_figure puts it there as text)
    html_frag = frag.decode("utf-8") if isinstance(frag, bytes) else frag
    result.missing_keys = set(tr.missing)
    title = tr("report.title") + (f" — {tr.phrase(ctx.snapshot.title)}" if ctx.snapshot.title else "")
    # every file goes to a staging directory beside --out, published as one set at the end
    # (labreport.outputs): a kill never leaves a mix of old and new files or a .tmp in --out
    final = out
    try:
        out = _outputs.staging_dir(final)
    except OSError as exc:
        raise RenderError(f"cannot create {final}: {exc.strerror or exc}") from None
    try:
        _write_files(result, out, fmt, files, md_text, m, html_frag, lang, title, make_zip)
        main = result.main.name if result.main is not None else None
        _outputs.publish(out, final, ours=_OWNED | {f.name for f in result.files}, main=main)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    result.files = [final / f.name for f in result.files]
    result.main = final / result.main.name if result.main is not None else None
    return result


_OWNED = {"report.md", "report.html", "report.pdf", "report.zip", "topology.dot", "topology.svg", "topology.png",
          "topology.mmd"}


def _write_files(result: RenderResult, out: Path, fmt: str, files: dict[str, bytes | str], md_text: str, m: Markup,
                 html_frag: Optional[str], lang: str, title: str, make_zip: bool) -> RenderResult:
    if fmt == "md":
        for name, data in files.items():
            _write(out / name, data)
            result.files.append(out / name)
        _write(out / "report.md", md_text)
        result.main = out / "report.md"
        result.files.append(result.main)
        if make_zip:
            result.files.append(_zip(out, [f for f in result.files]))
        return result
    if html_frag is not None:  # raw HTML: through the same placeholder mechanism as the other blocks
        md_text = md_text.replace("@@FIGURE@@", str(m._raw(html_frag)))
    html_text = markdown_to_html(md_text, m, lang=lang, title=title)
    if fmt == "html":
        _write(out / "report.html", html_text)
        result.main = out / "report.html"
        result.files.append(result.main)
        for name, data in files.items():  # PNG and DOT handy beside the page (it needs nothing)
            if name.endswith((".png", ".dot")):
                _write(out / name, data)
                result.files.append(out / name)
        if make_zip:
            result.files.append(_zip(out, list(result.files)))
        return result
    # pdf
    pdf = out / "report.pdf"
    html_path = out / "report.html"
    _write(html_path, html_text)
    result.files.append(html_path)
    print_pdf(html_path, pdf)
    result.main = pdf
    result.files.append(pdf)
    for name, data in files.items():
        if name.endswith((".png", ".dot")):
            _write(out / name, data)
            result.files.append(out / name)
    if make_zip:
        result.files.append(_zip(out, list(result.files)))
    return result


def _write(path: Path, data: str | bytes) -> None:
    """Atomic write, readable by others like any file a user creates (mkstemp makes 0600)."""
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise RenderError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.chmod(path, 0o644)
    except OSError:
        pass


def _zip(out: Path, files: list[Path]) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in files:
            if f.exists() and f.suffix != ".zip":
                z.write(f, arcname=f.name)
    target = out / "report.zip"
    _write(target, buf.getvalue())
    return target


def find_chromium() -> Optional[str]:
    for name in CHROMIUM_NAMES:
        p = shutil.which(name)
        if p:
            return p
    return None


def chromium_args(chrome: str, user_data_dir: str) -> list[str]:
    return [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions", "--hide-scrollbars",
            f"--user-data-dir={user_data_dir}"]


def print_pdf(html_path: Path, pdf_path: Path, *, timeout: float = 120.0) -> None:
    chrome = find_chromium()
    if chrome is None:
        raise RenderError("--format pdf needs Chromium to print the HTML report, and none is installed "
                          "(Debian/Ubuntu: apt-get install chromium; or use --format html and print it "
                          "from your browser)")
    with tempfile.TemporaryDirectory(prefix="labreport-chromium-") as profile:
        tmp_pdf = pdf_path.with_name(f".{pdf_path.name}.{os.getpid()}.tmp")
        # what keeps the print from running script or loading local files is the page's CSP
        # (escape.CSP: no script, no frames, no loads but data: images; Chromium's headless
        # printing itself needs script enabled, so the CSP is what forbids it)
        args = chromium_args(chrome, profile) + ["--no-pdf-header-footer", f"--print-to-pdf={tmp_pdf}",
                                                 html_path.resolve().as_uri()]
        try:
            proc = subprocess.run(args, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RenderError(f"Chromium did not finish printing the PDF within {timeout:.0f} s") from None
        if proc.returncode != 0 or not tmp_pdf.exists() or tmp_pdf.stat().st_size == 0:
            try:
                tmp_pdf.unlink()
            except OSError:
                pass
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise RenderError(f"Chromium could not print the PDF (exit {proc.returncode}): {' / '.join(err)}")
        os.replace(tmp_pdf, pdf_path)
