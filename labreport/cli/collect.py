"""`labreport collect`: gather a snapshot from this node (--local), from several nodes over
SSH (--nodes), or from the cluster's nodes through the Kubernetes API with a short-lived
collector pod per node (--in-cluster), plus the cluster's objects from the API.

Nodes: ``--nodes a,b`` (names, ``user@host:port`` for SSH), or from the API: ``--all-nodes``
or ``-l/--selector`` (which imply --in-cluster unless --ssh is given).

The work is done elsewhere:
  collectors.local.collect_local(...)               -> NodeSnapshot   (this node, in-process)
  labreport.transport.multi.collect_nodes(...)      -> SSH, -j at once, within --deadline
  labreport.transport.kube.collect_via_pods(...)    -> a pod per node through the API
  labreport.transport.parts.Parts                   -> each node on disk as it arrives
  labreport.cluster.api.collect_cluster(...)        -> ClusterObjects (Kubernetes API)

Exit status: 0 all nodes ok; 10 some node failed or partial; 11 every node failed; 130
interrupted (the nodes finished so far are written); see the README's table.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import click

from labreport import __version__
from labreport.errors import TransportError
from labreport.snapshot import ClusterObjects, Snapshot, dumps, save
from labreport.status import ExitStatus


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _without_collector_pods(cluster: ClusterObjects) -> ClusterObjects:
    """Our own collector pods are not part of the cluster being reported."""
    from labreport.transport.kube import LABELS

    def ours(obj: Any) -> bool:
        labels = ((obj.get("metadata") or {}).get("labels") or {}) if isinstance(obj, dict) else {}
        return all(labels.get(k) == v for k, v in LABELS.items())

    cluster.pods = [p for p in cluster.pods if not ours(p)]
    cluster.manifests = [m for m in cluster.manifests
                         if not (isinstance(m, dict) and m.get("kind") == "Pod" and ours(m.get("manifest") or {}))]
    return cluster


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # the same path as Ctrl-C: stop, delete pods, write what arrived


@click.command("collect")
@click.option("--local", "local", is_flag=True, help="Collect this node only, in-process.")
@click.option("--nodes", default=None, help="Comma-separated nodes (e.g. master,worker or root@10.0.0.5:2222). "
              "Over SSH unless --in-cluster; 'local' or this host's name is collected in-process.")
@click.option("--all-nodes", is_flag=True, help="Every node the API lists (implies --in-cluster unless --ssh).")
@click.option("-l", "--selector", default=None, help="Nodes the API lists with these labels, as kubectl -l "
              "(e.g. node-role.kubernetes.io/control-plane); implies --in-cluster unless --ssh.")
@click.option("--in-cluster", "in_cluster", is_flag=True,
              help="Reach each node through the Kubernetes API: a short-lived privileged collector pod per node "
                   "(no SSH, no image pulled: see docs/daemonset.md); needs labreport/cluster/deploy/rbac.yaml.")
@click.option("--ssh", "force_ssh", is_flag=True, help="With --all-nodes/-l: reach the nodes over SSH.")
@click.option("--out", "out", default="labreport-snapshot", show_default=True,
              help="Snapshot directory to write ('-' prints snapshot.json to stdout).")
@click.option("--name", default=None, help="Node name to record for --local (default: hostname).")
@click.option("--cri-socket", default=None, help="CRI socket (default: $CONTAINER_RUNTIME_ENDPOINT, else auto-detect containerd, CRI-O, cri-dockerd).")
@click.option("--docker-host", default=None, help="Docker daemon (default: DOCKER_HOST or unix:///var/run/docker.sock).")
@click.option("--ssh-user", default=None, help="SSH user (default: from ssh config, else current user).")
@click.option("--ssh-config", default=None, type=click.Path(dir_okay=False), help="ssh config file (default: ~/.ssh/config; read with `ssh -G`).")
@click.option("--known-hosts", default=None, type=click.Path(dir_okay=False),
              help="known_hosts file for --nodes (default: the ssh config's UserKnownHostsFile, else ~/.ssh/known_hosts).")
@click.option("--bootstrap", is_flag=True,
              help="Install this labreport on each node over the SSH session (a venv in ~/.cache/labreport, "
                   "reused while current) and run it from there.")
@click.option("--bootstrap-wheel", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The labreport wheel --bootstrap installs (default: built from this labreport's source).")
@click.option("--sudo", is_flag=True, help="Run the remote collector with sudo -n (as labreport-collect, the "
              "collect-only entry point a sudoers rule can allow alone).")
@click.option("--remote-command", default=None, help="How to run labreport on the nodes (default: 'labreport').")
@click.option("--timeout", default=60.0, show_default=True, type=float, help="Per-node timeout in seconds.")
@click.option("-j", "--parallel", default=32, show_default=True, type=click.IntRange(min=1),
              help="Nodes collected at once (SSH sessions or pods).")
@click.option("--deadline", default=None, type=click.FloatRange(min=0.1),
              help="Overall limit in seconds: nodes not done by then are marked failed (default: none).")
@click.option("--max-node-output", default=64.0, show_default=True, type=click.FloatRange(min=0.01),
              help="MiB one node may send; over it the node is marked failed and the others kept.")
@click.option("--namespace", "-n", "namespace", default="labreport", show_default=True,
              help="--in-cluster: namespace of the collector pods.")
@click.option("--image", default=None, help="--in-cluster: image for the collector pods, one with nsenter "
              "(default: the node's own pause image, nothing in it used: the host's nsenter runs).")
@click.option("--pod-start-timeout", default=60.0, show_default=True, type=float,
              help="--in-cluster: how long a collector pod may stay Pending.")
@click.option("--print-rbac", is_flag=True, help="Print the RBAC manifests --in-cluster needs and exit.")
@click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False), help="kubeconfig (default: KUBECONFIG, merged as kubectl merges it; ~/.kube/config; in-cluster).")
@click.option("--context", "kube_context", default=None, help="kubeconfig context (as kubectl --context).")
@click.option("--no-api", is_flag=True, help="Do not contact the Kubernetes API for the cluster's objects.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--no-redact", is_flag=True, help="Keep passwords, tokens and keys in the snapshot (replaced by "
              "<redacted:…> placeholders by default).")
def command(local: bool, nodes: Optional[str], out: str, name: Optional[str], cri_socket: Optional[str],
            docker_host: Optional[str], ssh_user: Optional[str], ssh_config: Optional[str], sudo: bool,
            remote_command: Optional[str], timeout: float, kubeconfig: Optional[str], kube_context: Optional[str],
            no_api: bool, quiet: bool, known_hosts: Optional[str] = None, bootstrap: bool = False,
            bootstrap_wheel: Optional[str] = None, all_nodes: bool = False, selector: Optional[str] = None,
            in_cluster: bool = False, force_ssh: bool = False, parallel: int = 32, deadline: Optional[float] = None,
            max_node_output: float = 64.0, namespace: str = "labreport", image: Optional[str] = None,
            pod_start_timeout: float = 60.0, print_rbac: bool = False,
            no_redact: bool = False) -> None:
    """Collect a snapshot from this node, from several nodes over SSH, or through the cluster."""
    if print_rbac:
        from labreport.transport.kube import rbac_manifest

        click.echo(rbac_manifest(), nl=False)
        return
    from_api = all_nodes or selector is not None
    given = sum([local, bool(nodes), from_api])
    if given != 1 or (all_nodes and selector is not None):
        raise click.UsageError("give exactly one of --local, --nodes NODE[,NODE…], --all-nodes or -l/--selector")
    if in_cluster and force_ssh:
        raise click.UsageError("--in-cluster and --ssh exclude each other")
    via_pods = in_cluster or (from_api and not force_ssh)
    if local:
        _collect_local(out, name, cri_socket, docker_host, timeout, kubeconfig, kube_context, no_api, quiet,
                       no_redact)
        return

    api_client: Any = None
    if via_pods or from_api:
        from labreport.cluster.api import NoCluster, load_client

        try:
            api_client, _where = load_client(kubeconfig, kube_context)
        except NoCluster as exc:
            raise TransportError(f"the Kubernetes API is needed for {'--in-cluster' if via_pods else '--all-nodes/-l'}: "
                                 f"{exc}") from None
    node_infos: list[Any] = []
    if from_api:
        from labreport.cluster.api import _describe_error
        from labreport.transport.kube import list_nodes

        try:
            node_infos = list_nodes(api_client, selector, timeout=min(timeout, 30.0))
        except Exception as exc:
            raise TransportError(f"the nodes could not be listed from the API: {_describe_error(exc)}") from None
        if not node_infos:
            raise TransportError(f"the API lists no node{' matching ' + repr(selector) if selector else ''}")
        node_list = [n.name for n in node_infos]
    else:
        node_list = [n.strip() for n in (nodes or "").split(",") if n.strip()]
        if not node_list:
            raise click.UsageError("--nodes needs at least one node name")
    if via_pods and not node_infos:
        from labreport.cluster.api import _describe_error
        from labreport.transport.kube import NodeInfo, list_nodes

        try:
            known = {n.name: n for n in list_nodes(api_client, None, timeout=min(timeout, 30.0))}
        except Exception as exc:
            raise TransportError(f"the nodes could not be listed from the API: {_describe_error(exc)}") from None
        node_infos = [known.get(n) or NodeInfo(name=n) for n in node_list]
    if len(set(node_list)) != len(node_list):
        raise TransportError(f"a node is named twice: {', '.join(node_list)}")

    snap = Snapshot(tool_version=__version__, created_at=_now())
    # The API is asked while the nodes are collected (a thread: the kubernetes client blocks).
    api_job: Optional[concurrent.futures.Future[ClusterObjects]] = None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="labreport-api")
    if not no_api:
        from labreport.cluster.api import collect_cluster

        api_job = pool.submit(collect_cluster, kubeconfig=kubeconfig, context=kube_context,
                              timeout=min(timeout, 30.0))

    from labreport.transport.parts import Parts

    tmpdir = tempfile.mkdtemp(prefix="labreport-parts-") if out == "-" else None
    root = Path(tmpdir or out)
    if root.exists() and not root.is_dir():
        raise TransportError(f"--out {out}: exists and is not a directory")
    root.mkdir(parents=True, exist_ok=True)
    parts = Parts(root, [_display(n) for n in node_list], tool_version=__version__,
                  source="pod" if via_pods else "ssh", redact=not no_redact)
    cap = int(max_node_output * 1048576)
    show = not quiet and out != "-"
    interrupted = False
    stubs: list[Any] = []
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        try:
            if via_pods:
                from labreport.transport.kube import collect_via_pods
                from labreport.transport.multi import _Progress

                with _Progress(node_list, show) as prog:
                    stubs = collect_via_pods(api_client, node_infos, namespace=namespace, image=image,
                                             remote_command=remote_command, timeout=timeout,
                                             start_timeout=pod_start_timeout, cri_socket=cri_socket,
                                             parallel=parallel, deadline=deadline, parts=parts, max_output=cap,
                                             progress=prog)
            else:
                from labreport.transport.multi import collect_nodes

                stubs = collect_nodes(node_list, ssh_user=ssh_user, ssh_config=ssh_config, sudo=sudo,
                                      remote_command=remote_command, timeout=timeout, cri_socket=cri_socket,
                                      progress=show, known_hosts=known_hosts, bootstrap=bootstrap,
                                      bootstrap_wheel=bootstrap_wheel, parallel=parallel, deadline=deadline,
                                      parts=parts, max_output=cap)
        except KeyboardInterrupt:
            interrupted = True
            click.echo("interrupted: writing the nodes that arrived", err=True)
        if api_job is not None and not interrupted:
            try:
                snap.cluster = _without_collector_pods(api_job.result())
            except Exception as exc:  # never lose the nodes' data to the API part
                snap.cluster = ClusterObjects(error=f"API not collected: {type(exc).__name__}: {exc}")
            if snap.cluster.error and not quiet:
                click.echo(f"API: {snap.cluster.error} (the node data is kept; --no-api skips the API)", err=True)
        elif api_job is not None:
            snap.cluster = ClusterObjects(error="not collected: the run was interrupted")
    finally:
        signal.signal(signal.SIGTERM, old_term)
        pool.shutdown(wait=False, cancel_futures=True)
    from labreport.redact import for_storage, storage_record

    snap = for_storage(snap, redact=not no_redact)  # the cluster objects; the nodes were redacted as parts
    if snap.redaction is not None and snap.redaction.mode == "on":
        snap.redaction = storage_record(set(snap.redaction.kinds) | parts.redacted_kinds)
    if out == "-":
        parts.assemble(snap, out=sys.stdout)
        sys.stdout.flush()
        shutil.rmtree(root, ignore_errors=True)
    else:
        path = parts.assemble(snap)
        if not quiet:
            click.echo(f"snapshot written: {path}", err=True)
    if interrupted:
        raise click.exceptions.Exit(int(ExitStatus.INTERRUPTED))
    bad = [n for n in stubs if n.status != "ok"]
    if bad and out != "-":
        for n in bad:
            click.echo(f"node {n.name}: {n.status}: {n.error or 'see the snapshot'}", err=True)
    if stubs and all(n.status == "failed" for n in stubs):
        raise click.exceptions.Exit(int(ExitStatus.ALL_FAILED))
    if any(n.status == "failed" for n in stubs):
        raise click.exceptions.Exit(int(ExitStatus.PARTIAL))


def _display(node: str) -> str:
    from labreport.transport.multi import node_name

    return node_name(node)


def _collect_local(out: str, name: Optional[str], cri_socket: Optional[str], docker_host: Optional[str],
                   timeout: float, kubeconfig: Optional[str], kube_context: Optional[str], no_api: bool,
                   quiet: bool, no_redact: bool = False) -> None:
    created_at = _now()
    api_job: Optional[concurrent.futures.Future[ClusterObjects]] = None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="labreport-api")
    if not no_api and (kubeconfig or kube_context):
        from labreport.cluster.api import collect_cluster

        api_job = pool.submit(collect_cluster, kubeconfig=kubeconfig, context=kube_context,
                              timeout=min(timeout, 30.0))
    try:
        from collectors.local import collect_local

        node = collect_local(name=name, cri_socket=cri_socket, docker_host=docker_host, timeout=timeout)
        # the Snapshot after its node: pydantic builds NodeSnapshot's schema (and its parts')
        # as the collectors make them, and Snapshot's then reuses it; a Snapshot made first
        # built them all, then each part again on its own (~40 ms: perf.complete_models)
        snap = Snapshot(tool_version=__version__, created_at=created_at, nodes=[node])
        if api_job is not None:
            try:
                snap.cluster = api_job.result()
            except Exception as exc:
                snap.cluster = ClusterObjects(error=f"API not collected: {type(exc).__name__}: {exc}")
            if snap.cluster.error and not quiet:
                click.echo(f"API: {snap.cluster.error} (the node data is kept; --no-api skips the API)", err=True)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    from labreport.redact import for_storage

    snap = for_storage(snap, redact=not no_redact)  # secrets never reach a snapshot unless asked
    if out == "-":
        sys.stdout.write(dumps(snap))
        sys.stdout.write("\n")
    else:
        path = save(snap, out)
        if not quiet:
            click.echo(f"snapshot written: {path}", err=True)


__all__ = ["command"]
