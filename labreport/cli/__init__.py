"""The labreport command: a thin entry point. ``main`` answers ``labreport --help`` and
``labreport --version`` from the text click prints for them (``HELP``, checked against
click by tests/test_startup.py) without importing click or any subcommand; everything
else goes to the click group in :mod:`labreport.cli.app`. Each subcommand lives in its
own module here and exposes a click command named ``command``; they are listed in
COMMANDS and imported only when run.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any, Callable, Optional, Sequence

from labreport import __version__
from labreport.cli.commands import COMMANDS

VERSION_TEXT = f"labreport, version {__version__}\n"

# What click prints for `labreport --help` at its default width (78 columns: the terminal
# is at least 80 wide, or not a terminal). tests/test_startup.py compares it with click's.
HELP = """Usage: labreport [OPTIONS] COMMAND [ARGS]...

  Inspect a Kubernetes cluster node by node and write the kubeadm lab report.

  Start here:   labreport demo                      (a report from a bundled sample)
  One node:     sudo labreport collect --local --out snap
  A cluster:    labreport collect --nodes master,worker --out snap
  The report:   labreport render snap --format html --lang en

Options:
  --version    Show the version and exit.
  --traceback  Show the Python traceback on errors.
  -h, --help   Show this message and exit.

Commands:
  collect     Collect a snapshot from this node, from several nodes over...
  import      Build a snapshot from pasted command outputs (a lab...
  grade       Import and render a whole class's lab reports (.md, .txt,...
  analyze     Analyze a snapshot (a directory, its snapshot.json, or -...
  render      Write the lab report for SNAPSHOT (a snapshot directory,...
  demo        Render a report from a bundled sample (no cluster needed).
  diff        Show what was added and removed between two snapshots, node...
  doctor      Show what can be collected on this node, what is missing,...
  schema      Print the JSON Schema of snapshot.json.
  trace       Trace a packet through the datapath model of the snapshot's...
  completion  Print the shell completion script for SHELL (bash, zsh or...
"""


def _fast(args: list[str]) -> Optional[str]:
    """The text for ``--help`` / ``--version`` alone, when click would print exactly it."""
    if args == ["--version"]:
        return VERSION_TEXT
    if args in (["--help"], ["-h"]):
        import shutil

        if shutil.get_terminal_size().columns >= 80:  # click wraps to min(columns, 80) - 2
            return HELP
    return None


def main(argv: Optional[Sequence[str]] = None, prog_name: str = "labreport") -> int:
    """Run the CLI; returns the exit status (tests call main([...]) directly)."""
    args = list(sys.argv[1:] if argv is None else argv)
    text = _fast(args) if prog_name == "labreport" else None
    if text is not None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            pass
        except OSError as exc:  # a full disk or device (``--version > /dev/full``): said, not a traceback
            from labreport.cli.ending import said_write_failure

            if not said_write_failure(exc):
                raise
            return 1
        return 0
    _no_pydantic_plugins()
    from labreport import forward_refs

    forward_refs.install()  # the models' string annotations compiled once each
    if _console:  # a console script: the models' schemas from the cache (labreport.schema_cache)
        from labreport import schema_cache

        schema_cache.install()
    from labreport.gcpause import gc_paused

    with gc_paused():  # click's modules: long-lived objects, nothing for the collector (as in get_command)
        from labreport.cli.app import main as click_main

    return click_main(args, prog_name=prog_name, from_argv=argv is None)


def _no_pydantic_plugins() -> None:
    """No pydantic plugins in labreport's process (``PYDANTIC_DISABLE_PLUGINS``, read by pydantic
    when it builds a model's validator), unless the variable says otherwise already. Finding
    them scans every installed distribution's entry points at the first validator (~4 ms of
    each command's start-up), and a plugin installed for another program (an observability
    SDK, say) has nothing to do with labreport's internal models: it would only watch, and
    slow, every validation of a snapshot. Inherited by the programs labreport runs (ip, nft,
    kubectl, ssh …), which do not use pydantic.

    With no plugin at all, pydantic's plugin loader is one that imports nothing
    (``_PluginsOff``): the real one imports importlib.metadata at its top (7-8 ms of each
    command's start-up) for the entry points it would then not read."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if _plugins_off():
        sys.modules.setdefault(_PluginsOff.REAL, _PluginsOff(_PluginsOff.REAL))


def _plugins_off() -> bool:
    """PYDANTIC_DISABLE_PLUGINS says "no plugin at all" (pydantic.plugin._loader.get_plugins)."""
    return os.environ.get("PYDANTIC_DISABLE_PLUGINS") in ("__all__", "1", "true")


class _PluginsOff(types.ModuleType):
    """``pydantic.plugin._loader`` while PYDANTIC_DISABLE_PLUGINS disables every plugin: its
    ``get_plugins`` finds none. Should the variable say otherwise later, or pydantic ask
    for another name, the real module is imported and answers (it replaces this one)."""

    REAL = "pydantic.plugin._loader"

    def get_plugins(self) -> Any:
        return () if _plugins_off() else self._real().get_plugins()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._real(), name)

    def _real(self) -> types.ModuleType:
        import importlib

        if sys.modules.get(self.REAL) is self:
            del sys.modules[self.REAL]
        return importlib.import_module(self.REAL)


def run() -> None:  # console script
    _end(main)


_console: list[bool] = []  # [True] in a console script's run (not main() called by a test)


def _end(command: Callable[[], int]) -> None:
    """Run a console script's ``command`` and end the process with its status, at once when
    nothing needs the interpreter's teardown (labreport.cli.ending); the models' schemas it
    generated kept for the next run (labreport.schema_cache)."""
    from labreport.cli import ending

    ending.arm()
    _console.append(True)
    status = command()
    cache = sys.modules.get("labreport.schema_cache")
    if cache is not None:
        cache.save()
    ending.end(status)


__all__ = ["COMMANDS", "HELP", "VERSION_TEXT", "main", "run"]


def __getattr__(name: str) -> Any:  # `from labreport.cli import cli` (the click group)
    if name in ("cli", "LazyGroup"):
        from labreport.cli import app

        return getattr(app, name)
    raise AttributeError(name)


def run_kubectl() -> None:  # console script kubectl-labreport: `kubectl labreport …`
    _end(lambda: main(prog_name="kubectl labreport"))
