"""`labreport import`: build a snapshot from command outputs a student pasted into files.

Options apply to the most recent ``--node`` (without any ``--node``, to one node named
"node"), so the order on the command line matters; click cannot keep the interleaving of
different repeated options, so the argument list is read here by a small parser of our
own. The work is done by :mod:`labreport.importer`.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

import click

from labreport.cli.ending import keep
from labreport.errors import LabreportError
from labreport.importer import ImportFileError, import_files, read_file, read_file_or_error
from labreport.snapshot import digest_path, save
from labreport.status import ExitStatus

# option -> file kind (per node)
NODE_FILE_OPTIONS: dict[str, str] = {
    "--ps": "ps",
    "--containers": "containers",
    "--pods": "pods",
    "--ctr": "ctr",
    "--inspect": "inspect",
    "--ip-link": "ip-link",
    "--ip-addr": "ip-addr",
    "--ip-route": "ip-route",
    "--ip-rule": "ip-rule",
    "--ip-netns": "ip-netns",
    "--bridge-fdb": "bridge-fdb",
    "--pod-ip-addr": "pod-ip-addr",
    "--iptables-save": "iptables-save",
    "--nft": "nft",
    "--ipvsadm": "ipvsadm",
    "--cilium-service-list": "cilium",
}
VALUE_OPTIONS = set(NODE_FILE_OPTIONS) | {"--node", "--kubectl", "--title", "--out", "--report", "--max-input-size"}
FLAG_OPTIONS = {"--keep-going", "--quiet", "-q", "--no-redact"}

HELP = """Build a snapshot from pasted command outputs (a lab report's text).

\b
  labreport import --node master --ps master-ps.txt --containers master-docker-ps.txt \\
                   --node worker --ps worker-ps.txt --containers worker-crictl-ps.txt \\
                   --ip-addr worker-ip-addr.txt --pod-ip-addr testpod=pod-ip-addr.txt \\
                   --kubectl pod.yaml --kubectl service.yaml --out snap

\b
Per node (each applies to the most recent --node; without --node, one node "node"):
  --node NAME                start a node
  --ps F                     ps aux / ps -ef (also `ps aux | grep kube` pastes)
  --containers F             docker ps, crictl ps, crictl pods, docker inspect or
                             ctr c ls (detected)
  --pods F                   crictl pods
  --ctr F                    ctr -n k8s.io containers ls (shows the pause sandboxes)
  --inspect [NAME=]F         docker inspect JSON, or a `| grep NetworkMode` fragment of it
                             (NAME: the container inspected; merged into its docker ps row)
  --ip-link F, --ip-addr F   ip link / ip addr (text, -d, or -j)
  --ip-route F               ip route (text or -j; `ip route show table all` keeps
                             every table)
  --ip-rule F                ip rule / ip -6 rule (text or -j): policy routing
  --bridge-fdb F             bridge fdb show (VXLAN forwarding entries; after --ip-addr)
  --ip-netns F               ip netns list (names with "(id: N)"): the nsid table that
                             ip -j output needs to name a link-netnsid
  --pod-ip-addr NS=F         ip addr run inside a pod; NS names its namespace (e.g. the
                             host veth's `link-netns cni-…` name, or the pod's name)
  --iptables-save F, --nft F, --ipvsadm F
  --cilium-service-list F    cilium-dbg service list or cilium-dbg bpf lb list (detected):
                             Cilium's service table when it replaces kube-proxy
\b
A whole report (Markdown, text, PDF, .docx), cut into its command outputs:
  --report F…                the report (several files: one student's, in order); the snapshot
                             of its last state goes to DIR, the state before the step
                             (Q5's first container lists, the rules before scaling) to
                             DIR/before: labreport render DIR --before DIR/before
  --node ALIAS=NAME          with --report: the report's name (or master/worker) for a
                             node, e.g. --node master=cp1; --node NAME with files after it
                             adds those files to that node
\b
Whole cluster:
  --kubectl F                kubectl get -o json|yaml, or YAML manifests (repeatable)
  --title T                  snapshot title
  --out DIR                  snapshot directory to write (required; - prints snapshot.json on stdout)
  --keep-going               a file that cannot be read marks its node partial (exit 10)
                             instead of stopping with an error
  --max-input-size SIZE      refuse input files bigger than SIZE (default 64M)
  --no-redact                keep passwords, tokens and keys in the snapshot (they are
                             replaced by <redacted:…> placeholders by default)
  -q, --quiet                no summary
"""


class _Args:
    def __init__(self) -> None:
        self.nodes: list[tuple[str, dict[str, list[str]]]] = []
        self.kubectl: list[str] = []
        self.title: Optional[str] = None
        self.out: Optional[str] = None
        self.keep_going = False
        self.quiet = False
        self.reports: list[str] = []
        self.aliases: dict[str, str] = {}
        self.no_redact = False
        self.max_input_size: Optional[int] = None


def parse_args(argv: list[str]) -> _Args:
    """Read the argument list in order (``--opt V`` or ``--opt=V``)."""
    a = _Args()
    with_report = any(x == "--report" or x.startswith("--report=") for x in argv)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "=" in arg:
            opt, value = arg.split("=", 1)
            i += 1
        elif arg in VALUE_OPTIONS:
            if i + 1 >= len(argv):
                raise click.UsageError(f"{arg} needs a value")
            opt, value = arg, argv[i + 1]
            i += 2
        elif arg in FLAG_OPTIONS:
            opt, value = arg, ""
            i += 1
        else:
            raise click.UsageError(f"unknown argument {arg!r} (see labreport import --help)")
        if opt in FLAG_OPTIONS:
            if opt == "--keep-going":
                a.keep_going = True
            elif opt == "--no-redact":
                a.no_redact = True
            else:
                a.quiet = True
        elif opt == "--report":
            a.reports.append(value)
            while i < len(argv) and not argv[i].startswith("-"):  # --report a.md b.md: one student's files
                a.reports.append(argv[i])
                i += 1
        elif opt == "--node" and "=" in value and with_report:
            alias, _, name = value.partition("=")
            if not alias.strip() or not name.strip():
                raise click.UsageError("--node ALIAS=NAME needs both (e.g. --node master=k8s-master)")
            a.aliases[alias.strip()] = name.strip()
        elif opt == "--node":
            if not value.strip():
                raise click.UsageError("--node needs a name")
            if any(n == value for n, _ in a.nodes):
                raise click.UsageError(f"node {value!r} given twice")
            a.nodes.append((value, {}))
        elif opt == "--kubectl":
            a.kubectl.append(value)
        elif opt == "--title":
            a.title = value
        elif opt == "--out":
            a.out = value
        elif opt == "--max-input-size":
            from labreport.importer import parse_size

            try:
                a.max_input_size = parse_size(value)
            except ValueError as exc:
                raise click.UsageError(f"--max-input-size: {exc}") from None
        elif opt in NODE_FILE_OPTIONS:
            kind = NODE_FILE_OPTIONS[opt]
            if kind == "pod-ip-addr":
                name, sep, path = value.partition("=")
                if not sep or not name or not path:
                    raise click.UsageError("--pod-ip-addr takes NAMESPACE=FILE (e.g. testpod=pod-ip-addr.txt)")
                kind, value = f"pod-ip-addr:{name}", path
            elif kind == "inspect" and "=" in value:
                name, _, path = value.partition("=")
                if name and path:
                    kind, value = f"inspect:{name}", path
            if not a.nodes:
                a.nodes.append(("node", {}))
            a.nodes[-1][1].setdefault(kind, []).append(value)
        else:
            raise click.UsageError(f"unknown option {opt!r} (see labreport import --help)")
    if not a.out:
        raise click.UsageError("--out DIR is required")
    if not a.reports and not a.kubectl and not any(files for _, files in a.nodes):
        raise click.UsageError("no files given (e.g. --ps ps.txt, --containers docker-ps.txt)")
    for name, files in a.nodes:
        if not files:
            raise click.UsageError(f"node {name!r} has no files")
    return a


@click.command("import", help=HELP, context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                                       "help_option_names": ["-h", "--help"]})
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def command(argv: tuple[str, ...]) -> None:
    args = parse_args(list(argv))
    from pathlib import Path

    from labreport import outputs

    out_path = Path(args.out or "")  # parse_args requires --out
    to_stdout = args.out == "-" and not args.reports  # kubectl's convention: - is standard output
    as_file = out_path.suffix == ".json" and not out_path.is_dir()
    if not as_file and not to_stdout:  # before any work: a target that cannot hold a snapshot is said at once
        outputs.check_target(out_path, what="snapshot", ours={"snapshot.json"})
    if args.max_input_size is not None:
        import labreport.importer as _importer

        _importer.MAX_INPUT_SIZE = args.max_input_size
    if args.reports:
        _import_reports(args)
        return
    read = read_file_or_error if args.keep_going else read_file
    nodes = []
    for name, files in args.nodes:
        nodes.append((name, {kind: [(p, read(p)) for p in paths] for kind, paths in files.items()}))
    kubectl = [(p, read(p)) for p in args.kubectl]
    from labreport.perf import gc_paused

    # the parsers pause it too; here, until the whole snapshot is frozen: it lives as long as
    # the command, so the redaction and the write do not re-scan its ~10^5 records
    with gc_paused(freeze=True):
        snap = import_files(nodes, kubectl=kubectl, title=args.title, keep_going=args.keep_going)
        del nodes, kubectl  # the texts live on in the snapshot's evidence
    assert args.out is not None  # parse_args requires it
    from labreport.redact import for_storage

    keep(snap)  # what the command built is freed by the process's end (labreport.cli.ending)
    snap = for_storage(snap, redact=not args.no_redact)
    keep(snap)
    if to_stdout:
        import sys

        from labreport.snapshot import dumps

        sys.stdout.write(dumps(snap) + "\n")
        return
    if as_file:
        try:
            path = save(snap, args.out)
        except OSError as exc:
            raise outputs.OutputError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    else:  # staged beside, published as a whole: a kill leaves the old snapshot or the new one
        try:
            stage = outputs.staging_dir(out_path)
            save(snap, stage)
        except OSError as exc:
            raise outputs.OutputError(f"cannot write {args.out}: {exc.strerror or exc}") from None
        ours = {"snapshot.json", digest_path(Path("snapshot.json")).name}
        outputs.publish(stage, out_path, ours=ours, main="snapshot.json")
        path = out_path / "snapshot.json"
    if not args.quiet:
        for node in snap.nodes:
            ns_count = len(node.netns)
            click.echo(
                f"node {node.name}: {len(node.processes)} processes, {len(node.containers)} containers, "
                f"{ns_count} network namespace{'s' if ns_count != 1 else ''}"
                + (", iptables" if node.iptables else "") + (", nftables" if node.nftables else "")
                + (", ipvs" if node.ipvs else ""),
                err=True,
            )
            by_file = Counter(w.source for w in node.warnings)
            for source, n in by_file.items():
                click.echo(f"  {n} line{'s' if n != 1 else ''} not understood in {source} (see snapshot warnings)",
                           err=True)
            if node.status != "ok":
                click.echo(f"  node {node.name} is {node.status}: {node.error}", err=True)
        if snap.cluster is not None:
            c = snap.cluster
            counts = {f: len(getattr(c, f)) for f in ("pods", "services", "deployments", "hpas", "other")}
            click.echo("cluster objects: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v), err=True)
            cw = Counter(w.source for w in c.parse_warnings)
            for source, n in cw.items():
                click.echo(f"  {n} line{'s' if n != 1 else ''} not understood in {source}", err=True)
        if snap.redaction is not None and snap.redaction.mode == "off":
            click.echo("redaction is OFF (--no-redact): secrets are kept in the snapshot", err=True)
        elif snap.redaction is not None and snap.redaction.kinds:
            click.echo("redacted: " + ", ".join(snap.redaction.kinds), err=True)
        click.echo(f"snapshot written: {path}", err=True)
    if any(n.status != "ok" for n in snap.nodes) or (snap.cluster is not None and snap.cluster.error):
        raise click.exceptions.Exit(int(ExitStatus.PARTIAL))


def _import_reports(args: _Args) -> None:
    from labreport.reportimport import import_reports
    from labreport.reportimport.cli_text import echo_report_import

    read = read_file_or_error if args.keep_going else read_file
    nodes = [(name, {kind: [(p, read(p)) for p in paths] for kind, paths in files.items()})
             for name, files in args.nodes]
    kubectl = [(p, read(p)) for p in args.kubectl]
    result = import_reports(args.reports, aliases=args.aliases, title=args.title, nodes=nodes, kubectl=kubectl)
    assert args.out is not None  # parse_args requires it
    path = save(result.after, args.out)
    before_path = None
    if result.before is not None:
        import os

        before_path = save(result.before, os.path.join(args.out, "before"))
    if not args.quiet:
        echo_report_import(result, path, before_path)


__all__ = ["command", "parse_args", "ImportFileError", "LabreportError"]
