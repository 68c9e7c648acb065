"""`labreport collect`: gather a snapshot from this node (--local) or from several nodes
over SSH (--nodes), plus the cluster's objects from the Kubernetes API.

The work is done elsewhere:
  collectors.local.collect_local(...)          -> NodeSnapshot   (this node, in-process)
  labreport.transport.multi.collect_nodes(...) -> list[NodeSnapshot] (SSH, in parallel)
  labreport.cluster.api.collect_cluster(...)   -> ClusterObjects (Kubernetes API)
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import sys
from typing import Optional

import click

from labreport import __version__
from labreport.snapshot import Snapshot, dumps, save
from labreport.status import ExitStatus


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@click.command("collect")
@click.option("--local", "local", is_flag=True, help="Collect this node only, in-process.")
@click.option("--nodes", default=None, help="Comma-separated nodes to collect over SSH (e.g. master,worker). "
              "'local' or this host's name is collected in-process.")
@click.option("--out", "out", default="labreport-snapshot", show_default=True,
              help="Snapshot directory to write ('-' prints snapshot.json to stdout).")
@click.option("--name", default=None, help="Node name to record for --local (default: hostname).")
@click.option("--cri-socket", default=None, help="CRI socket (default: $CONTAINER_RUNTIME_ENDPOINT, else auto-detect containerd, CRI-O, cri-dockerd).")
@click.option("--docker-host", default=None, help="Docker daemon (default: DOCKER_HOST or unix:///var/run/docker.sock).")
@click.option("--ssh-user", default=None, help="SSH user (default: from ssh config, else current user).")
@click.option("--ssh-config", default=None, type=click.Path(dir_okay=False), help="ssh config file (default: ~/.ssh/config).")
@click.option("--known-hosts", default=None, type=click.Path(dir_okay=False),
              help="known_hosts file for --nodes (default: the ssh config's UserKnownHostsFile, else ~/.ssh/known_hosts).")
@click.option("--bootstrap", is_flag=True,
              help="Install this labreport on each node over the SSH session (a venv in ~/.cache/labreport, "
                   "reused while current) and run it from there.")
@click.option("--bootstrap-wheel", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The labreport wheel --bootstrap installs (default: built from this labreport's source).")
@click.option("--sudo", is_flag=True, help="Run the remote collector with sudo -n.")
@click.option("--remote-command", default=None, help="How to run labreport on the nodes (default: 'labreport').")
@click.option("--timeout", default=60.0, show_default=True, type=float, help="Per-node timeout in seconds.")
@click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False), help="kubeconfig for the API part (default: KUBECONFIG, ~/.kube/config, in-cluster).")
@click.option("--context", "kube_context", default=None, help="kubeconfig context.")
@click.option("--no-api", is_flag=True, help="Do not contact the Kubernetes API.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--no-redact", is_flag=True, help="Keep passwords, tokens and keys in the snapshot (replaced by "
              "<redacted:…> placeholders by default).")
def command(local: bool, nodes: Optional[str], out: str, name: Optional[str], cri_socket: Optional[str],
            docker_host: Optional[str], ssh_user: Optional[str], ssh_config: Optional[str], sudo: bool,
            remote_command: Optional[str], timeout: float, kubeconfig: Optional[str], kube_context: Optional[str],
            no_api: bool, quiet: bool, known_hosts: Optional[str] = None, bootstrap: bool = False,
            bootstrap_wheel: Optional[str] = None, no_redact: bool = False) -> None:
    """Collect a snapshot from this node or from several nodes."""
    if local == bool(nodes):
        raise click.UsageError("give exactly one of --local or --nodes NODE[,NODE…]")
    snap = Snapshot(tool_version=__version__, created_at=_now())
    # The API is asked while the nodes are collected (a thread: the kubernetes client blocks).
    api_job: Optional[concurrent.futures.Future] = None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="labreport-api")
    if not no_api and (nodes or kubeconfig):
        from labreport.cluster.api import collect_cluster

        api_job = pool.submit(collect_cluster, kubeconfig=kubeconfig, context=kube_context,
                              timeout=min(timeout, 30.0))
    try:
        if local:
            from collectors.local import collect_local

            snap.nodes.append(collect_local(name=name, cri_socket=cri_socket, docker_host=docker_host,
                                            timeout=timeout))
        else:
            from labreport.transport.multi import collect_nodes

            node_list = [n.strip() for n in (nodes or "").split(",") if n.strip()]
            if not node_list:
                raise click.UsageError("--nodes needs at least one node name")
            snap.nodes.extend(collect_nodes(node_list, ssh_user=ssh_user, ssh_config=ssh_config, sudo=sudo,
                                            remote_command=remote_command, timeout=timeout, cri_socket=cri_socket,
                                            progress=not quiet and out != "-", known_hosts=known_hosts,
                                            bootstrap=bootstrap, bootstrap_wheel=bootstrap_wheel))
        if api_job is not None:
            try:
                snap.cluster = api_job.result()
            except Exception as exc:  # never lose the nodes' data to the API part
                from labreport.snapshot import ClusterObjects

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
    bad = [n for n in snap.nodes if n.status != "ok"]
    if bad and out != "-":
        for n in bad:
            click.echo(f"node {n.name}: {n.status}: {n.error or 'see the snapshot'}", err=True)
        if any(n.status == "failed" for n in bad):
            raise click.exceptions.Exit(int(ExitStatus.PARTIAL))


__all__ = ["command"]
