"""Files written atomically: a temporary file in the same directory, written, flushed,
given the mode a plain ``open()`` would give it, fsynced, then renamed over the target.

A write that fails midway (an exception in the ``with`` body, a full disk) removes the
temporary file and leaves the target as it was; a kill leaves at most a hidden
``.NAME.*.tmp`` beside it, never a half-written target. Under ``sudo`` the file (and a
directory created for it) belongs to the user who ran sudo.

This module imports nothing of ours, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, Literal


def umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_to_sudo_user(fd: int) -> None:
    """Under ``sudo labreport collect``, the files belong to the user who ran sudo, so
    ``labreport render`` works afterwards without sudo."""
    if os.geteuid() != 0:
        return
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if uid and uid.isdigit() and gid and gid.isdigit():
        try:
            os.fchown(fd, int(uid), int(gid))
        except OSError:
            pass


def _make_parent(parent: Path) -> None:
    if parent.exists():
        return
    parent.mkdir(parents=True, exist_ok=True)
    try:
        dfd = os.open(parent, os.O_RDONLY)
        try:
            give_to_sudo_user(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: Literal["w", "wb"] = "w", *,
                fsync: bool = True) -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it is replaced in one step when the ``with`` block
    ends normally, and not at all when it raises. ``mode`` is ``"w"`` (UTF-8 text) or
    ``"wb"``. ``fsync=False`` skips the fsync (the rename is still atomic against a kill,
    not against a power cut)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', not {mode!r}")
    p = Path(path)
    _make_parent(p.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        fh: IO[Any] = os.fdopen(fd, "wb") if mode == "wb" else os.fdopen(fd, "w", encoding="utf-8")
        with fh:
            yield fh
            fh.flush()
            # mkstemp creates 0600; give the file the mode a plain open() would have.
            os.fchmod(fh.fileno(), 0o666 & ~umask())
            give_to_sudo_user(fh.fileno())
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write(path: str | os.PathLike[str], data: str | bytes, *, fsync: bool = True) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically (:func:`atomic_open`)."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w", fsync=fsync) as fh:
        fh.write(data)
