"""`labreport trace SNAPSHOT --from SRC --to DST`: where a packet goes, by simulating it
through the model of each node's datapath (labreport.analysis.trace).

Every outcome with its probability: delivered (endpoint, node, pod, masquerade), dropped or
rejected (the rule), unknown (what the snapshot lacks); each delivered outcome with its
reply (the endpoint's answer traced back through conntrack to the client). ``--all``: every
Service front from a pod and from outside, as a table (``--replies``: with a REPLY column).
``--json``: ``{"outcomes": [...]}``, a delivered outcome with ``"reply"``.
``--mark VALUE[/MASK]``: the packet's fwmark before the first hook; ``--iif DEV``: the device
an outside packet arrives on (at ``--via``); both in the header line and the JSON flow.
"""

from __future__ import annotations

import json
from typing import Optional

import click

from labreport.cli.output import output_option
from labreport.errors import LabreportError


def _fmt_p(p: float) -> str:
    from labreport.analysis.probability import format_probability

    return format_probability(p, style="fraction")


def _print_result(res, as_json: bool, fmt: Optional[str] = None) -> None:  # type: ignore[no-untyped-def]
    if fmt == "yaml":
        from labreport.cli.output import emit

        emit(res.to_json(), "yaml")
        return
    if as_json:
        click.echo(json.dumps(res.to_json(), indent=1))
        return
    click.echo(res.description or "")
    for note in res.notes:
        click.echo(f"  note: {note}")
    if not res.outcomes:
        click.echo("  no outcome (nothing to trace)")
    for i, o in enumerate(res.outcomes, 1):
        head = f"[{i}] {o.result.upper()}  p={_fmt_p(o.probability)}"
        if o.result == "delivered":
            head += f"  → {o.endpoint}" + (f" pod {o.pod}" if o.pod else "") + (f" on {o.node}" if o.node else "")
            head += "  (source NAT: masquerade)" if o.masquerade else "  (source kept)"
        elif o.endpoint and o.result == "unknown":
            head += f"  → {o.endpoint}"
        click.echo(head)
        if o.reason:
            click.echo(f"    why: {o.reason}")
        if o.reply is not None:
            click.echo(f"    reply: {o.reply.summary()}")
        for h in o.hops:
            if h.kind == "netfilter":
                rule = h.rule if h.rule is not None else "(policy / end of chain)"
                idx = h.rule_index if h.rule_index is not None else "-"
                click.echo(f"    {h.node} {h.hook:<11} {h.backend} {h.table}/{h.chain} #{idx}: {rule}  ⇒ {h.verdict}")
            else:
                click.echo(f"    {h.node or ''} {h.kind:<8} {h.device or ''}: {h.detail or ''}")
        if o.reply is not None and o.reply.hops:
            click.echo("    the way back:")
            for h in o.reply.hops:
                if h.kind == "netfilter":
                    rule = h.rule if h.rule is not None else "(policy / end of chain)"
                    idx = h.rule_index if h.rule_index is not None else "-"
                    click.echo(f"      {h.node} {h.hook:<11} {h.backend} {h.table}/{h.chain} #{idx}: {rule}  ⇒ "
                               f"{h.verdict}")
                else:
                    click.echo(f"      {h.node or ''} {h.kind:<9} {h.device or ''}: {h.detail or ''}")


def _mark_option(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[tuple[int, Optional[int]]]:
    """``--mark VALUE[/MASK]``: hex or decimal, as `ip rule` prints ``fwmark 0x10/0xff``."""
    if value is None:
        return None
    from labreport.analysis.trace.resolve import parse_mark

    try:
        return parse_mark(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.command("trace")
@click.argument("snapshot", type=click.Path())
@click.option("--from", "src", default=None, metavar="SRC", help="pod (ns/name or name), pod IP, node name, or an outside address.")
@click.option("--to", "dst", default=None, metavar="DST", help="Service (name, ns/name, ns/name:port), IP:port, NODE:NODEPORT.")
@click.option("--proto", type=click.Choice(["tcp", "udp", "sctp"]), default=None, help="Protocol (default: the Service's, else tcp).")
@click.option("--via", default=None, metavar="NODE", help="The node an outside packet arrives at.")
@click.option("--mark", "mark", callback=_mark_option, default=None, metavar="VALUE[/MASK]",
              help="The packet's fwmark before the first hook (hex or decimal, as ip rule prints fwmark 0x10/0xff).")
@click.option("--iif", default=None, metavar="DEV", help="The device an outside packet arrives on (on the --via node).")
@click.option("--all", "all_fronts", is_flag=True, help="Every Service front, from a pod and from outside.")
@click.option("--replies", is_flag=True, help="With --all: trace each delivered outcome's reply too (a REPLY column).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (-o json).")
@output_option
@click.option("--no-redact", is_flag=True, help="Show passwords, tokens and keys (redacted by default).")
def command(snapshot: str, src: Optional[str], dst: Optional[str], proto: Optional[str], via: Optional[str],
            all_fronts: bool, replies: bool, as_json: bool, output: Optional[str] = None,
            no_redact: bool = False, mark: Optional[tuple[int, Optional[int]]] = None,
            iif: Optional[str] = None) -> None:
    """Trace a packet through the datapath model of the snapshot's nodes."""
    from labreport.analysis import analyze
    from labreport.analysis.trace import build_world, run_flow
    from labreport.analysis.trace.resolve import IifError, ResolveError, format_mark, make_flow

    from labreport.cli.output import chosen, emit, load_redacted

    fmt = chosen(as_json, output)
    as_json = fmt == "json"
    if not all_fronts and (not src or not dst):
        raise click.UsageError("give --from SRC and --to DST, or --all")
    if all_fronts and (mark is not None or iif is not None):
        raise click.UsageError("--mark and --iif are for one flow (--from/--to), not --all")
    snap = load_redacted(snapshot, redact=not no_redact)  # rule texts, comments, names in the output
    analysis = analyze(snap)
    world = build_world(snap, analysis)
    if all_fronts:
        from labreport.analysis.trace.fronts import all_fronts as run_all

        rows = run_all(world, analysis, via=via, replies=replies)
        dumped = [r.model_dump(mode="json", exclude=None if replies else {"reply_summary"}) for r in rows]
        if fmt == "yaml":
            emit({"fronts": dumped}, "yaml")
        elif as_json:
            click.echo(json.dumps({"fronts": dumped}, indent=1))
        else:
            for line in _table(rows, replies):
                click.echo(line)
        return
    assert src is not None and dst is not None
    try:
        flow, tgt = make_flow(world, analysis, src, dst, proto, via, mark=mark[0] if mark else 0, iif=iif)
    except IifError as exc:
        raise click.BadParameter(str(exc), param_hint="'--iif'") from None
    except ResolveError as exc:
        raise LabreportError(str(exc)) from None
    res = run_flow(world, flow, replies=True)
    who = f"pod {flow.pod}" if flow.entry == "pod" else (
        f"a process on {flow.entry_node}" if flow.entry == "process" else f"{flow.src} (outside, via {flow.entry_node})")
    extra = ([f"mark {format_mark(*mark)}"] if mark is not None else []) + ([f"iif {iif}"] if iif else [])
    res.description = f"{who} → {tgt.label or dst} [{flow.proto}{', ' + ', '.join(extra) if extra else ''}]"
    _print_result(res, as_json, fmt)


def _table(rows, replies: bool = False) -> list[str]:  # type: ignore[no-untyped-def]
    if not replies:
        out = [f"{'SERVICE':<40} {'FRONT':<26} {'FROM':<8} RESULT"]
        for r in rows:
            out.append(f"{r.service[:40]:<40} {r.front[:26]:<26} {r.source_kind:<8} {r.summary}")
        return out
    out = [f"{'SERVICE':<40} {'FRONT':<26} {'FROM':<8} {'RESULT':<44} REPLY"]
    for r in rows:
        out.append(f"{r.service[:40]:<40} {r.front[:26]:<26} {r.source_kind:<8} {r.summary:<44} {r.reply_summary}")
    return out
