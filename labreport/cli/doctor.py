"""`labreport doctor`: what `collect --local` can gather on this node and what is missing,
with the command that fixes each gap. It only plans (checks the collectors' declared
needs: root, sockets, binaries, kernel features, Python modules); nothing is collected.
Also checks what rendering needs here: Graphviz's `dot` and a CJK font for zh diagrams.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from typing import Any, Optional

import click

from labreport.cli.output import output_option

from collectors.base import CollectContext, plan
from collectors.registry import load_all


def font_check() -> dict[str, Any]:
    """A CJK font, as fontconfig sees it (`fc-list :lang=zh`)."""
    if shutil.which("fc-list") is None:
        return {"name": "CJK font (zh diagrams)", "ok": False, "detail": "fc-list not found",
                "fix": "apt-get install fontconfig fonts-wqy-microhei"}
    try:
        res = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=10)
        families = sorted({ln.split(",")[0].strip() for ln in res.stdout.splitlines() if ln.strip()})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"name": "CJK font (zh diagrams)", "ok": False, "detail": str(exc),
                "fix": "apt-get install fonts-wqy-microhei"}
    if families:
        return {"name": "CJK font (zh diagrams)", "ok": True, "detail": ", ".join(families[:3])}
    return {"name": "CJK font (zh diagrams)", "ok": False,
            "detail": "no font covers Chinese: zh labels render as empty boxes",
            "fix": "apt-get install fonts-wqy-microhei"}


def render_checks() -> list[dict[str, Any]]:
    dot = shutil.which("dot")
    checks = [{"name": "graphviz dot (diagrams)", "ok": dot is not None, "detail": dot or "not on PATH",
               "fix": None if dot else "apt-get install graphviz"}]
    checks.append(font_check())
    return checks


def diagnose(ctx: Optional[CollectContext] = None) -> dict[str, Any]:
    ctx = ctx or CollectContext()
    collectors = load_all()
    report: dict[str, Any] = {"root": ctx.is_root, "collectors": [], "render": render_checks()}
    for c in collectors:
        p = plan(c, ctx)
        verdict = "ready" if not p.missing else ("partial" if p.runnable else "blocked")
        if verdict == "blocked" and c.not_applicable(p, ctx):
            verdict = "absent"
        report["collectors"].append({
            "name": c.name,
            "description": c.description,
            "verdict": verdict,
            # exactly the commands collect runs (each collector runs only what it declares)
            "commands": [{"id": spec.evidence_id, "argv": list(spec.argv), "optional": spec.optional}
                         for spec in p.commands],
            "missing": [{"need": m.need.describe(), "required": m.need.required, "detail": m.detail,
                         "why": m.need.why, "fix": m.need.fix} for m in p.missing],
        })
    return report


_MARK = {"ready": "ok     ", "partial": "partial", "blocked": "MISSING", "absent": "absent "}


def format_report(report: dict[str, Any]) -> str:
    lines = []
    if not report["root"]:
        lines.append("not root: some collectors need root (see below); run: sudo labreport doctor")
    lines.append("collectors (labreport collect --local):")
    for c in report["collectors"]:
        lines.append(f"  [{_MARK[c['verdict']]}] {c['name']}: {c['description']}".rstrip(": "))
        for m in c["missing"]:
            what = "needs" if m["required"] else "better with"
            text = f"      {what} {m['need']}"
            if m["detail"]:
                text += f" ({m['detail']})"
            if m["why"]:
                text += f" — {m['why']}"
            lines.append(text)
            if m["fix"]:
                lines.append(f"      fix: {m['fix']}")
        if c["verdict"] == "absent":
            lines.append("      (not on this node; nothing to collect)")
        elif c["commands"]:
            lines.append("      runs: " + "; ".join(shlex.join(cmd["argv"]) + (" (if present)" if cmd["optional"] else "")
                                            for cmd in c["commands"]))
    lines.append("rendering:")
    for r in report["render"]:
        lines.append(f"  [{'ok     ' if r['ok'] else 'MISSING'}] {r['name']}: {r['detail']}")
        if not r["ok"] and r.get("fix"):
            lines.append(f"      fix: {r['fix']}")
    return "\n".join(lines) + "\n"


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (-o json).")
@output_option
@click.option("--cri-socket", default=None, help="CRI socket to check instead of auto-detection.")
@click.option("--docker-host", default=None, help="Docker daemon to check (default: DOCKER_HOST or /var/run/docker.sock).")
def command(as_json: bool, cri_socket: Optional[str], docker_host: Optional[str], output: Optional[str] = None) -> None:
    """Show what can be collected on this node, what is missing, and how to fix it."""
    from labreport.cli.output import chosen, emit

    fmt = chosen(as_json, output)
    report = diagnose(CollectContext(cri_socket=cri_socket, docker_host=docker_host))
    if fmt == "json":
        click.echo(json.dumps(report, indent=1, ensure_ascii=False))
    elif fmt == "yaml":
        emit(report, "yaml")
    else:
        click.echo(format_report(report), nl=False)
