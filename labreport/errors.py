"""The exceptions labreport documents. Anything else escaping is a bug."""

from __future__ import annotations


class LabreportError(Exception):
    """Base: a clear, user-facing message; the CLI prints it without a traceback."""

    exit_code: int = 1


class ParseError(LabreportError):
    """Input that a parser cannot read at all (empty, binary, not this format).

    Lines a parser merely does not understand are *not* errors: they become
    ParseWarning records and parsing goes on.
    """

    exit_code = 3

    def __init__(self, message: str, *, source: str | None = None, line_no: int | None = None):
        self.source = source
        self.line_no = line_no
        where = source or ""
        if line_no is not None:
            where = f"{where}:{line_no}" if where else f"line {line_no}"
        super().__init__(f"{where}: {message}" if where else message)


class SnapshotError(LabreportError):
    """A snapshot that cannot be loaded or saved."""

    exit_code = 4


class CollectionError(LabreportError):
    """A collector that cannot run; collectors record it and go on, the CLI reports it."""

    exit_code = 5


class TransportError(LabreportError):
    """SSH or API transport failure for one node/cluster."""

    exit_code = 6


class RenderError(LabreportError):
    exit_code = 7


def write_failure(exc: BaseException) -> str | None:
    """The message for an OSError of a write that the system could not do — a full disk, a
    quota, a file size limit (errors only a write gives): not a bug of labreport, said as
    such (exit 1); None for any other exception."""
    import errno

    codes = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", 122)}
    if not isinstance(exc, OSError) or exc.errno not in codes:
        return None
    what = f"cannot write {exc.filename}" if exc.filename else "cannot write the output"
    return f"{what}: {exc.strerror or exc}"
