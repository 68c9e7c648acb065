"""kubectl's conventions shared by the commands: ``-o json|yaml`` wherever ``--json``
exists (``--json`` keeps working: it is ``-o json``), and ``-`` for standard input where
a snapshot is read (``labreport collect --out -`` writes one to standard output)."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Optional, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("json", "yaml")


def output_option(fn: F) -> F:
    """``-o/--output json|yaml``."""
    return click.option("-o", "--output", "output", type=click.Choice(FORMATS), default=None,
                        help="Print the result as json or yaml (as kubectl -o); --json is -o json.")(fn)


def chosen(as_json: bool, output: Optional[str]) -> Optional[str]:
    """The structured format asked for, or None for the text output."""
    if output and as_json and output != "json":
        raise click.UsageError("--json and -o yaml exclude each other")
    return output or ("json" if as_json else None)


def emit(data: Any, fmt: str, *, json_text: Optional[str] = None) -> None:
    """Print ``data`` (JSON-able) as ``fmt``; ``json_text`` is a ready JSON rendering."""
    if fmt == "yaml":
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        sys.stdout.write(yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=120))
        return
    sys.stdout.write(json_text if json_text is not None else json.dumps(data, indent=1, ensure_ascii=False))
    sys.stdout.write("\n")


def load_snapshot(arg: str, *, redacting: bool = True) -> Any:
    """A snapshot from a directory, its snapshot.json, or ``-`` (standard input);
    ``redacting``: the command will redact it (``snapshot.load``)."""
    from labreport.snapshot import load

    if arg != "-":
        if not redacting:
            return load(arg)
        from labreport.redact import note_loaded

        return load(arg, on_read=note_loaded)
    from labreport.errors import SnapshotError
    from labreport.snapshot import from_dict

    raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    if not raw.strip():
        raise SnapshotError("no snapshot on standard input (-): it is empty")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"standard input (-) is not a JSON snapshot: {exc}") from None
    return from_dict(data, where="standard input")


def load_redacted(arg: str, *, redact: bool) -> Any:
    """``load_snapshot`` for a command that prints what it read: redacted unless ``redact``
    is False (the command's --no-redact), so no secret reaches its output unless asked."""
    snap = load_snapshot(arg, redacting=redact)
    if redact:
        from labreport.redact import redact_snapshot

        snap, _ = redact_snapshot(snap)
    return snap
