"""What ``labreport import --report`` prints (stderr): per node what was read, then every
warning the student can act on, with how to give that output so that it can be read."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click


def node_line(node: Any) -> str:
    ns = len(node.netns)
    return (f"node {node.name}: {len(node.processes)} processes, {len(node.containers)} containers, "
            f"{ns} network namespace{'s' if ns != 1 else ''}" + (", iptables" if node.iptables else "")
            + (", nftables" if node.nftables else "") + (", ipvs" if node.ipvs else ""))


def echo_report_import(result: Any, path: Path, before_path: Optional[Path]) -> None:
    info = result.info
    used = sum(1 for o in info.outputs if o.parser)
    click.echo(f"{info.report} ({info.format}): {used} command outputs read", err=True)
    for node in result.after.nodes:
        click.echo(node_line(node), err=True)
    c = result.after.cluster
    if c is not None:
        counts = {f: len(getattr(c, f)) for f in ("pods", "services", "deployments", "hpas", "other")}
        tables = len(getattr(c, "tables", []) or [])
        parts = [f"{v} {k}" for k, v in counts.items() if v] + ([f"{tables} kubectl table rows"] if tables else [])
        if parts:
            click.echo("cluster objects: " + ", ".join(parts), err=True)
    if info.warnings:
        click.echo(f"{len(info.warnings)} thing{'s' if len(info.warnings) != 1 else ''} labreport repaired or "
                   "could not read:", err=True)
        for w in info.warnings:
            click.echo(f"  {w.source}: {w.message}", err=True)
            if w.fix:
                click.echo(f"    -> {w.fix}", err=True)
    click.echo(f"snapshot written: {path}", err=True)
    if before_path is not None:
        click.echo(f"before the step: {before_path} (labreport render {path.parent} --before {before_path.parent})",
                   err=True)
