"""`labreport diff BEFORE AFTER`: what was added and removed between two snapshots, per
node (containers, sandboxes, pods, veth pairs, links, services, chains). ``--json`` prints
``labreport.diff.diff_snapshots`` as JSON; otherwise a rich text summary."""

from __future__ import annotations

import sys
from typing import Any, Optional

import click
from rich.console import Console
from rich.table import Table

from labreport.cli.output import output_option
from labreport.diff import KINDS, diff_snapshots, is_empty
from labreport.render.escape import TermText, term_markup

_TITLES = {
    "containers": "containers",
    "sandboxes": "sandboxes (pause)",
    "pods": "pods",
    "veth_pairs": "veth pairs",
    "links": "links",
    "services": "services",
    "chains": "chains",
}


def _describe(kind: str, item: dict[str, Any]) -> tuple[str, str]:
    """(what, detail) for one record."""
    if kind in ("containers", "sandboxes"):
        what = item["name"]
        detail = ", ".join(x for x in (
            f"pod {item['pod']}" if item.get("pod") else "",
            "sandbox" if item.get("is_sandbox") else "",
            f"image {item['image']}" if item.get("image") else "",
            f"id {item['id'][:12]}",
        ) if x)
        return what, detail
    if kind == "pods":
        conts = ", ".join(item.get("containers") or [])
        return item["pod"] or item["name"], (f"uid {item['uid']}; " if item.get("uid") else "") + f"containers: {conts or '-'}"
    if kind == "veth_pairs":
        detail = f"netns {item.get('netns') or '?'}"
        if item.get("pod_ips"):
            detail += f", pod IPs {', '.join(item['pod_ips'])}"
        if item.get("pod"):
            detail += f", pod {item['pod']}"
        return item["host_ifname"], detail
    if kind == "links":
        return item["name"], ", ".join(x for x in (item.get("kind") or "", " ".join(item.get("addresses") or [])) if x)
    if kind == "services":
        return item["name"], f"{item.get('cluster_ip')}:{item.get('port')}/{item.get('protocol')}"
    if kind == "chains":
        return f"{item['table']}/{item['chain']}", item["source"]
    return str(item), ""


def render_text(diff: dict[str, Any], console: Console) -> None:
    if is_empty(diff):
        console.print("no differences")
        return
    for name in diff["nodes_added"]:
        console.print(f"[bold green]+ node {term_markup(name)}[/] (only in AFTER)")
    for name in diff["nodes_removed"]:
        console.print(f"[bold red]- node {term_markup(name)}[/] (only in BEFORE)")
    for name, nd in diff["nodes"].items():
        changed = [k for k in KINDS if nd[k]["added"] or nd[k]["removed"]]
        if not changed:
            console.print(f"[bold]node {term_markup(name)}[/]: no differences")
            for note in nd.get("notes") or []:
                console.print(TermText(f"  note: {note}"))
            continue
        table = Table(title=TermText(f"node {name}"), title_justify="left", show_lines=False)
        table.add_column("", width=1)
        table.add_column("kind")
        table.add_column("what")
        table.add_column("detail")
        for kind in changed:
            for sign, key, style in (("+", "added", "green"), ("-", "removed", "red")):
                for item in nd[kind][key]:
                    what, detail = _describe(kind, item)
                    table.add_row(f"[{style}]{sign}[/]", _TITLES[kind], TermText(what), TermText(detail))
        console.print(table)
        for note in nd.get("notes") or []:
            console.print(TermText(f"  note: {note}"))


@click.command("diff")
@click.argument("before", type=click.Path(exists=False))
@click.argument("after", type=click.Path(exists=False))
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON (-o json).")
@output_option
@click.option("--no-redact", is_flag=True, help="Show passwords, tokens and keys (redacted by default).")
def command(before: str, after: str, as_json: bool, output: Optional[str] = None, no_redact: bool = False) -> None:
    """Show what was added and removed between two snapshots, node by node (either may be -
    for standard input)."""
    from labreport.cli.output import chosen, emit, load_redacted

    fmt = chosen(as_json, output)
    if before == "-" and after == "-":
        raise click.UsageError("only one of BEFORE and AFTER can be - (standard input)")
    # the same stable placeholders on both sides: a changed secret still shows
    old, new = load_redacted(before, redact=not no_redact), load_redacted(after, redact=not no_redact)
    diff = diff_snapshots(old, new)
    if fmt is not None:
        emit(diff, fmt)
        return
    render_text(diff, Console(file=sys.stdout, width=160, highlight=False))
