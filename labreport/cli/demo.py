"""`labreport demo`: render the bundled sample (seed 001: kubeadm, containerd, flannel; two
nodes imported from a real student's outputs) so you can see a report without a cluster."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from labreport.cli.render import echo_result
from labreport.errors import LabreportError
from labreport.render.report import render_report
from labreport.snapshot import load

DEMO_SAMPLE = "seed001-flannel-containerd"


def samples_dir() -> Path:
    """This source checkout's samples when run from one, else the installed labreport.samples."""
    here = Path(__file__).resolve().parent.parent.parent / "samples"
    if (here / "__init__.py").is_file():
        return here
    return Path(str(resources.files("labreport.samples")))


def sample_path(name: str) -> Path:
    p = samples_dir() / name
    if not (p / "snapshot.json").exists():
        raise LabreportError(f"the bundled sample {name!r} is missing from this installation ({p})")
    return p


def sample_names() -> list[str]:
    root = samples_dir()
    return sorted(p.name for p in root.iterdir() if (p / "snapshot.json").exists())


@click.command("demo")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "pdf"]), default="html", show_default=True)
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@click.option("--out", "out", default="labreport-demo", show_default=True, help="Output directory.")
@click.option("--sample", default=DEMO_SAMPLE, show_default=True,
              help="Which bundled sample to render (see --list).")
@click.option("--list", "list_samples", is_flag=True, help="List the bundled samples and exit.")
@click.option("--quiet", "-q", is_flag=True)
def command(fmt: str, lang: str, out: str, sample: str, list_samples: bool, quiet: bool) -> None:
    """Render a report from a bundled sample (no cluster needed)."""
    if list_samples:
        for name in sample_names():
            click.echo(name)
        return
    p = sample_path(sample)
    before = p.parent / f"{sample}-before"
    snap = load(p)
    before_snap = load(before) if (before / "snapshot.json").exists() else None
    result = render_report(snap, fmt=fmt, lang=lang, out_dir=out, before=before_snap)
    echo_result(result, quiet)
