"""The labreport command's click group: parse arguments, call the program, map exceptions
to exit codes. Each subcommand lives in its own module in this package and exposes a click
command named ``command``; they are listed in COMMANDS and imported when run.
(``labreport.cli`` answers ``--help`` and ``--version`` without importing this module.)
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

import click

from labreport import __version__
from labreport.errors import LabreportError
from labreport.status import ExitStatus

from labreport.cli.commands import COMMANDS


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        path = COMMANDS.get(cmd_name)
        if path is None:
            return None
        from labreport.gcpause import gc_paused

        # the command's modules (with pydantic): their classes and schemas, ~10^5 objects living
        # as long as the process, made ~50 collections that found nothing to free
        with gc_paused():
            command: click.Command = importlib.import_module(path).command  # every command is part of labreport
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labreport")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the Python traceback on errors.")
@click.pass_context
def cli(ctx: click.Context, show_traceback: bool) -> None:
    """Inspect a Kubernetes cluster node by node and write the kubeadm lab report.

    \b
    Start here:   labreport demo                      (a report from a bundled sample)
    One node:     sudo labreport collect --local --out snap
    A cluster:    labreport collect --nodes master,worker --out snap
    The report:   labreport render snap --format html --lang en
    """
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = show_traceback


def _print_traceback() -> None:
    import traceback  # only on --traceback (2 ms of start-up otherwise)

    traceback.print_exc()


def _completing() -> bool:
    import os

    return any(k.endswith("_COMPLETE") and k.startswith(("_LABREPORT", "_KUBECTL_LABREPORT")) for k in os.environ)


def main(argv: Optional[Sequence[str]] = None, prog_name: str = "labreport", from_argv: bool = False) -> int:
    """Run the CLI; returns the exit status (tests call main([...]) directly)."""
    args = list(sys.argv[1:] if argv is None else argv)
    show_tb = "--traceback" in args
    if (argv is None or from_argv) and _completing():
        cli.main(args=args, prog_name=prog_name)  # click's shell completion answers and exits
    try:
        rv = cli.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return int(ExitStatus.ERROR)
    except click.ClickException as exc:
        exc.show()
        return int(ExitStatus.USAGE)
    except LabreportError as exc:
        if show_tb:
            _print_traceback()
        click.echo(f"labreport: error: {exc}", err=True)
        return int(getattr(exc, "exit_code", ExitStatus.ERROR))
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so briefly, details on request
        from labreport.cli.ending import said_write_failure

        if show_tb:
            _print_traceback()
        if said_write_failure(exc):  # not a bug: the disk (or stdout's device) is full
            return int(ExitStatus.ERROR)
        if not show_tb:
            click.echo(
                f"labreport: internal error: {type(exc).__name__}: {exc}\n"
                "(this is a bug; run again with --traceback and report it)",
                err=True,
            )
        return int(ExitStatus.INTERNAL)
    return int(rv or 0)
