"""Output directories replaced as a whole: never a mix of old and new files, never a
``.tmp`` left in them after a kill.

A command that writes several files (``render``: report.html + topology.png + …) writes
them into a staging directory beside the target (``.NAME.labreport-staging-PID-RAND``, same
filesystem), then publishes it in one step:

- no target yet: ``rename(staging, target)``;
- a target holding only files labreport writes (or nothing): the two directories are
  exchanged with ``renameat2(RENAME_EXCHANGE)`` (one atomic step), then the old one,
  now at the staging path, is removed;
- a target that also holds the user's own files (``--out .``): each file is moved in with
  ``rename`` (each atomic), the main file last, and our files the new run did not write
  are removed — the user's files are never touched.

A kill at any moment leaves the target as it was (old set) or as it becomes (new set);
what remains is a hidden staging directory beside it, removed by the next run
(:func:`clean_stale`). :func:`check_target` turns the ways a target cannot be used
(a file, /dev/null, a read-only filesystem, a directory of someone else's files for a
snapshot) into one clear message.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

from labreport.errors import LabreportError

if TYPE_CHECKING:
    import ctypes

STAGING_MARK = ".labreport-staging-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class OutputError(LabreportError):
    pass


def _libc() -> Optional[ctypes.CDLL]:
    """The C library the process runs with: its symbols are in the process's global scope
    (``dlopen(NULL)``). Not ``ctypes.util.find_library("c")``, which runs ``ldconfig -p`` in
    a subprocess (5-10 ms of each import into an existing snapshot directory)."""
    import ctypes  # only to publish over an existing target: 2-4 ms of start-up otherwise

    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):  # TypeError: a platform without dlopen(NULL)
        return None


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE). False when the
    kernel, libc or filesystem cannot."""
    libc = _libc()
    fn = getattr(libc, "renameat2", None) if libc is not None else None
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    import ctypes

    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def staging_dir(target: Path) -> Path:
    """A new, empty staging directory beside ``target`` (same filesystem)."""
    parent = target.parent if str(target.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    stage = parent / f".{target.name}{STAGING_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    stage.mkdir(mode=0o755)
    return stage


def clean_stale(target: Path) -> None:
    """Remove staging directories of runs that were killed (their process is gone)."""
    parent = target.parent if str(target.parent) else Path(".")
    rx = re.compile(re.escape(f".{target.name}{STAGING_MARK}") + r"(\d+)-[0-9a-f]+$")
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for e in entries:
        m = rx.match(e.name)
        if not m:
            continue
        pid = int(m.group(1))
        alive = True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
        if not alive or pid == os.getpid():
            shutil.rmtree(e, ignore_errors=True)


def publish(stage: Path, target: Path, *, ours: Iterable[str], main: Optional[str] = None) -> None:
    """Put the files of ``stage`` at ``target`` as one set (see the module doc). ``ours``:
    the names labreport writes there (what may be replaced or removed); ``main``: the
    file moved last when files are moved one by one."""
    owned = set(ours)
    try:
        if not target.exists() and not target.is_symlink():
            os.rename(stage, target)
            return
        if not target.is_dir() or target.is_symlink():
            raise OutputError(f"--out {target}: exists and is not a directory")
        existing = {e.name for e in target.iterdir()}
        if existing <= owned and exchange(stage, target):
            shutil.rmtree(stage, ignore_errors=True)  # the old set, now at the staging path
            return
        new = [e.name for e in stage.iterdir()]
        for name in sorted(new, key=lambda n: n == main):
            os.replace(stage / name, target / name)
        for name in existing & owned - set(new):
            try:
                (target / name).unlink()
            except OSError:
                pass
        shutil.rmtree(stage, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None


def check_target(target: Path, *, what: str, ours: Iterable[str]) -> None:
    """Refuse, clearly, a target that cannot hold the output: a non-directory (a file,
    /dev/null), a directory of other files (for ``what`` = "snapshot": a snapshot directory
    holds the snapshot only), a parent that is not writable (read-only filesystem)."""
    owned = set(ours)
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            kind = "a character device" if target.is_char_device() else "a file"
            raise OutputError(f"--out {target}: exists and is {kind}, not a directory; give a directory "
                              f"(it is created if missing)")
        if what == "snapshot":
            others = sorted(e.name for e in target.iterdir() if e.name not in owned and not e.name.startswith("."))
            if others:
                raise OutputError(f"--out {target}: the directory holds other files ({', '.join(others[:5])}"
                                  f"{' …' if len(others) > 5 else ''}) and no snapshot; give a new or empty "
                                  f"directory (a snapshot directory holds only snapshot.json)")
        probe_dir = target
    else:
        probe_dir = target.parent if str(target.parent) else Path(".")
        while not probe_dir.exists() and probe_dir != probe_dir.parent:
            probe_dir = probe_dir.parent
    if not os.access(probe_dir, os.W_OK | os.X_OK):
        why = "read-only filesystem" if _read_only_fs(probe_dir) else "permission denied"
        raise OutputError(f"--out {target}: cannot write in {probe_dir} ({why})")
    if _read_only_fs(probe_dir):
        raise OutputError(f"--out {target}: cannot write in {probe_dir} (read-only filesystem)")


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
