"""``labreport-collect``: the collect-only entry point, for sudoers.

It runs ``labreport collect --local`` and prints the node's snapshot on stdout — nothing
else: no output file, no import, no render, no paths to read. So a sudoers rule for it
grants collection and no more::

    alice ALL=(root) NOPASSWD: /usr/local/bin/labreport-collect

(a rule for ``labreport`` itself would let alice read any file as root, e.g. through
``labreport import --ip-netns /etc/shadow``'s messages). ``collect --nodes … --sudo`` runs
this on the nodes.

Options: ``--name``, ``--timeout``, ``--cri-socket`` (a socket path), ``--docker-host``
(``unix://`` only). Anything else is refused.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import Optional, Sequence

import click


def _socket(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    path = value[len("unix://"):] if value.startswith("unix://") else value
    if param.name == "docker_host" and not value.startswith("unix://"):
        raise click.BadParameter("only unix:// sockets")
    try:
        if not stat.S_ISSOCK(Path(path).stat().st_mode):
            raise click.BadParameter(f"{path} is not a socket")
    except OSError:
        raise click.BadParameter(f"{path} does not exist") from None
    return value


@click.command("labreport-collect", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--name", default=None, help="Node name to record (default: hostname).")
@click.option("--timeout", default=60.0, type=click.FloatRange(min=1, max=3600), help="Seconds.")
@click.option("--cri-socket", default=None, callback=_socket, help="CRI socket path.")
@click.option("--docker-host", default=None, callback=_socket, help="unix:// Docker socket.")
def command(name: Optional[str], timeout: float, cri_socket: Optional[str], docker_host: Optional[str]) -> None:
    """Collect this node and print its snapshot on stdout (collect --local --out -)."""
    from collectors.local import collect_local
    from labreport import __version__
    from labreport.snapshot import Snapshot, dumps

    import datetime as _dt

    snap = Snapshot(tool_version=__version__,
                    created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    snap.nodes.append(collect_local(name=name, cri_socket=cri_socket, docker_host=docker_host, timeout=timeout))
    sys.stdout.write(dumps(snap))
    sys.stdout.write("\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        command.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="labreport-collect",
                     standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def run() -> None:  # console script
    from labreport.cli import _end

    _end(main)
