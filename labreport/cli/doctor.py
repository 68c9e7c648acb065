"""`labreport doctor`: what `collect --local` can gather on this node and what is missing,
with the command that fixes each gap. It only plans (checks the collectors' declared
needs: root, sockets, binaries, kernel features, Python modules); nothing is collected.
Also checks what rendering needs here: Graphviz's `dot` and a CJK font for zh diagrams;
and whether labreport's modules load from cached bytecode (start-up, issue 14).
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
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


def _bytecode_current(source: Path) -> bool:
    """A .pyc that Python would use for ``source`` (its header names the source's mtime
    and size, or it is checked by hash) is in the cache."""
    try:
        with open(importlib.util.cache_from_source(str(source)), "rb") as fh:
            head = fh.read(16)
        st = source.stat()
    except (OSError, ValueError, NotImplementedError):
        return False
    if len(head) < 16 or head[:4] != importlib.util.MAGIC_NUMBER:
        return False
    if int.from_bytes(head[4:8], "little") & 1:  # hash-based: checked (or not) by its hash
        return True
    return (int.from_bytes(head[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(head[12:16], "little") == st.st_size & 0xFFFFFFFF)


def _kib(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        try:
            total += p.stat().st_size
        except OSError:
            pass
    return round(total / 1024)


def bytecode_check() -> dict[str, Any]:
    """Whether labreport's modules start from cached bytecode. With PYTHONDONTWRITEBYTECODE
    set (the user's choice: labreport keeps it) and no current cache next to the sources (a
    checkout, an editable install), every command compiles its modules again: ~0.1 s of
    `analyze`'s start-up, ~0.04 s of `import`'s (benchmarks/bench_startup.py --bytecode)."""
    import labreport

    dirs = [Path(labreport.__file__).resolve().parent]
    collectors_init = getattr(sys.modules.get("collectors"), "__file__", None)
    if collectors_init:
        dirs.append(Path(collectors_init).resolve().parent)
    sources = [p for d in dirs for p in d.rglob("*.py")]
    stale = [p for p in sources if not _bytecode_current(p)]
    name = "cached bytecode (start-up)"
    if not stale:
        return {"name": name, "ok": True, "detail": f"all {len(sources)} modules"}
    if not sys.dont_write_bytecode:
        return {"name": name, "ok": True,
                "detail": f"{len(stale)} of {len(sources)} modules not cached yet: Python caches them when first used"}
    return {"name": name, "ok": False,
            "detail": f"{len(stale)} of {len(sources)} modules ({_kib(stale)} KiB of source) have no current bytecode "
                      "and PYTHONDONTWRITEBYTECODE is set: each command compiles the ones it imports again "
                      "(all of them: ~0.1 s of analyze's start-up)",
            "fix": "python3 -m compileall -q " + " ".join(shlex.quote(str(d)) for d in dirs)}


def diagnose(ctx: Optional[CollectContext] = None) -> dict[str, Any]:
    ctx = ctx or CollectContext()
    collectors = load_all()
    report: dict[str, Any] = {"root": ctx.is_root, "collectors": [], "render": render_checks(),
                              "startup": [bytecode_check()]}
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
    lines += _check_lines(report["render"], "MISSING")
    if report.get("startup"):
        lines.append("start-up:")
        lines += _check_lines(report["startup"], "slower ")
    return "\n".join(lines) + "\n"


def _check_lines(checks: list[dict[str, Any]], not_ok: str) -> list[str]:
    """A check a line each, marked ok or ``not_ok``; a failed one's fix on the line after it."""
    lines = []
    for r in checks:
        lines.append(f"  [{'ok     ' if r['ok'] else not_ok}] {r['name']}: {r['detail']}")
        if not r["ok"] and r.get("fix"):
            lines.append(f"      fix: {r['fix']}")
    return lines


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
