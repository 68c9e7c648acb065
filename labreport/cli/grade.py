"""`labreport grade REPORT… --out DIR`: a whole class's reports in, one snapshot and one
rendered report per student plus a summary page (summary.html, summary.csv) out.

Each report is imported as ``labreport import --report`` does (DIR/<student>/snapshot,
DIR/<student>/snapshot/before) and rendered (DIR/<student>/report). A report that cannot
be read, or fails later, never stops the others: it is listed in the summary with its
reason, and the exit status is 10 (partial). A progress bar goes to stderr.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click

from labreport.status import ExitStatus


def _student(path: str, taken: set[str]) -> str:
    base = re.sub(r"[^\w.-]+", "_", Path(path).stem) or "report"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


@click.command("grade")
@click.argument("reports", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out", required=True, help="Directory for every student's snapshot and report, and the summary.")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="zh", show_default=True, help="Language of the reports.")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="html", show_default=True,
              help="Format of each student's report.")
def command(reports: tuple[str, ...], out: str, lang: str, fmt: str) -> None:
    """Import and render a whole class's lab reports (.md, .txt, .pdf, .docx); write summary.html and summary.csv."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from labreport.analysis import analyze
    from labreport.reportimport import import_report
    from labreport.reportimport.grade import failed, summarize, to_csv, to_html
    from labreport.render.report import render_report
    from labreport.snapshot import atomic_write, save

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    taken: set[str] = set()
    console = Console(stderr=True)
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("grading", total=len(reports))
        for path in reports:
            student = _student(path, taken)
            progress.update(task, description=f"grading {student}")
            try:
                result = import_report(path)
                sdir = root / student
                save(result.after, sdir / "snapshot")
                if result.before is not None:
                    save(result.before, sdir / "snapshot" / "before")
                analysis = analyze(result.after)
                row = summarize(student, path, result.after, result.before, analysis, warnings=len(result.warnings))
                try:
                    rendered = render_report(result.after, fmt=fmt, lang=lang, out_dir=sdir / "report",
                                             before=result.before)
                    if rendered.main is not None:
                        row.report_file = os.path.relpath(rendered.main, root)
                except Exception as exc:  # a report that cannot be rendered is still summarized
                    row.error = f"not rendered: {type(exc).__name__}: {exc}"
            except Exception as exc:  # one broken report never stops the class
                msg = str(exc) if getattr(exc, "exit_code", None) else f"{type(exc).__name__}: {exc}"
                row = failed(student, path, msg)
            rows.append(row)
            progress.advance(task)
    atomic_write(root / "summary.csv", to_csv(rows))
    atomic_write(root / "summary.html", to_html(rows))
    atomic_write(root / "summary.json", json.dumps([r.model_dump(mode="json") for r in rows], indent=1,
                                                   ensure_ascii=False))
    bad = [r for r in rows if not r.ok]
    click.echo(f"{len(rows) - len(bad)} of {len(rows)} reports graded; summary: {root / 'summary.html'}", err=True)
    for r in bad:
        click.echo(f"  {r.report}: {r.error}", err=True)
    if bad:
        raise click.exceptions.Exit(int(ExitStatus.PARTIAL))
