"""`labreport render`: write the lab report from a snapshot (Markdown, HTML or PDF).

The work is done by :func:`labreport.render.report.render_report`.
"""

from __future__ import annotations

from typing import Optional

import click

from labreport.render.report import FORMATS, render_report


def echo_result(result, quiet: bool) -> None:  # type: ignore[no-untyped-def]
    if quiet:  # only the report's path, as --quiet's help says
        if result.main is not None:
            click.echo(str(result.main))
        return
    if result.diagram_error:
        click.echo(f"diagram: {result.diagram_error}", err=True)
    if result.redacted is None:
        click.echo("redaction is OFF: secrets appear as collected", err=True)
    elif result.redacted:
        click.echo("redacted: " + ", ".join(result.redacted), err=True)
    for f in result.files:
        click.echo(f"wrote {f}", err=True)
    if result.main is not None:
        click.echo(str(result.main))


@click.command("render")
@click.argument("snapshot", type=click.Path(exists=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True,
              help="md: report.md with topology.svg/.png beside it; html: one self-contained report.html; "
                   "pdf: report.pdf printed by Chromium.")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True, help="Report language.")
@click.option("--out", "out", default="labreport-report", show_default=True, help="Output directory.")
@click.option("--path", "path_service", default=None, metavar="SERVICE",
              help="The Service whose path to trace and draw (name, ns/name, ns/name:port or cluster IP). "
                   "Default: a user Service with an endpoint on another node.")
@click.option("--from-node", default=None, help="Node the traced path starts on (default: the control-plane node).")
@click.option("--before", "before", default=None, type=click.Path(exists=False), metavar="SNAPSHOT",
              help="A snapshot from before the pod was deployed: the report lists the containers it added (Q5).")
@click.option("--no-redact", is_flag=True, help="Keep tokens, passwords and keys (redacted by default).")
@click.option("--zip", "make_zip", is_flag=True, help="Also bundle the report and its images into report.zip.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the report's path.")
def command(snapshot: str, fmt: str, lang: str, out: str, path_service: Optional[str], from_node: Optional[str],
            before: Optional[str], no_redact: bool, make_zip: bool, quiet: bool) -> None:
    """Write the lab report for SNAPSHOT (a snapshot directory, its snapshot.json, or - for stdin)."""
    from labreport.cli.output import load_snapshot

    snap = load_snapshot(snapshot, redacting=not no_redact)
    before_snap = load_snapshot(before, redacting=not no_redact) if before else None
    result = render_report(snap, fmt=fmt, lang=lang, out_dir=out, path_service=path_service, from_node=from_node,
                           before=before_snap, redact=not no_redact, make_zip=make_zip)
    echo_result(result, quiet)
