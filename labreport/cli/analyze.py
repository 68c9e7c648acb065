"""`labreport analyze SNAPSHOT`: what the snapshot shows, as tables or as JSON.

SNAPSHOT is a snapshot directory or its snapshot.json. ``--json`` prints
``Analysis.model_dump(mode="json")``; ``--node`` keeps some nodes; ``--service`` keeps
the service ports whose name matches (``ns/svc:port``, ``ns/svc`` or ``svc``) and traces
the path to that service.
"""

from __future__ import annotations

import sys
from typing import Optional

import click

from labreport.analysis.model import Analysis, ServiceRecord
from labreport.cli.ending import keep
from labreport.cli.output import chosen, emit, load_redacted, output_option
from labreport.errors import LabreportError


def service_matches(s: ServiceRecord, wanted: str) -> bool:
    """The one service matcher (labreport.analysis.service_match)."""
    from labreport.analysis.service_match import matches

    return matches(s, wanted)


def _filter(analysis: Analysis, nodes: tuple[str, ...], service: Optional[str]) -> Analysis:
    if nodes:
        known = [n.node for n in analysis.nodes]
        missing = [n for n in nodes if n not in known]
        if missing:
            raise LabreportError(f"no node named {', '.join(missing)} in the snapshot; it has: "
                                 f"{', '.join(known) or '(no nodes)'}")
        analysis.nodes = [n for n in analysis.nodes if n.node in nodes]
    if service:
        total = 0
        for na in analysis.nodes:
            na.services = [s for s in na.services if service_matches(s, service)]
            total += len(na.services)
        if total == 0:
            analysis.warnings.append(f"no service matching {service!r} on the selected node(s)")
    return analysis


@click.command("analyze")
@click.argument("snapshot", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON (-o json).")
@output_option
@click.option("--node", "nodes", multiple=True, help="Only this node (repeatable).")
@click.option("--service", default=None, help="Only this service (name, ns/name, ns/name:port, cluster IP[:port], pod IP); trace its path.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(min=0),
              help="Text output: at most this many rows per table (0: all). --json always has everything.")
@click.option("--no-redact", is_flag=True, help="Show passwords, tokens and keys (redacted by default).")
def command(snapshot: str, as_json: bool, nodes: tuple[str, ...], service: Optional[str], limit: int,
            output: Optional[str] = None, no_redact: bool = False) -> None:
    """Analyze a snapshot (a directory, its snapshot.json, or - for stdin): components, pods,
    veth pairs, services, checks."""
    from labreport.analysis import analyze

    fmt = chosen(as_json, output)
    # key flags, commands and env in the output; SnapshotError: a clear message, no traceback
    snap = load_redacted(snapshot, redact=not no_redact)
    from labreport.perf import gc_paused

    with gc_paused(freeze=True):  # the analysis (and the rules' statements it read) lives as long as the command
        analysis = _filter(analyze(snap, service=service), nodes, service)
    keep(snap, analysis)  # freed by the process's end, not one by one on return (labreport.cli.ending)
    for u in analysis.unread:  # what the student can act on, also with --json
        click.echo(f"could not read / repaired: {u.source}: {u.message}" + (f"\n  -> {u.fix}" if u.fix else ""), err=True)
    for i in analysis.inconsistencies:
        click.echo(f"inconsistent: {i.kind}: {i.subject}: {i.detail}", err=True)
    if fmt == "json":
        # bytes from pydantic's core straight to stdout, a node and a service record at a
        # time (labreport.json_stream): a 10,000-Service analysis is ~30 MB of JSON, and one
        # bytes of it (a str of it encoded again by click, before that) raised the peak
        from pydantic import BaseModel

        from labreport.analysis.model import NodeAnalysis
        from labreport.json_stream import dumps_json, write_json

        stream: dict[type[BaseModel], str] = {Analysis: "nodes", NodeAnalysis: "services"}
        out = getattr(sys.stdout, "buffer", None)
        if out is None:
            click.echo(dumps_json(analysis, stream=stream).decode())
            return
        sys.stdout.flush()
        write_json(analysis, out, stream=stream)
        out.write(b"\n")
        out.flush()
        return
    if fmt == "yaml":
        emit(analysis.model_dump(mode="json"), "yaml")
        return
    from rich.console import Console

    from labreport.render.text import print_analysis

    stdout = sys.stdout
    tty = hasattr(stdout, "isatty") and stdout.isatty()
    console = Console(file=stdout, width=None if tty else 160, soft_wrap=False)
    print_analysis(analysis, console, limit=limit)
