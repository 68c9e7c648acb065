"""How a console-script run of labreport ends: without the interpreter's teardown when
nothing needs it.

When ``main`` returns, what is left to do is what ``Py_FinalizeEx`` does, in its order:
wait for the non-daemon threads (and run ``threading``'s exit hooks), call the ``atexit``
callbacks, flush ``sys.stdout`` and ``sys.stderr`` — then free every module and object one
by one, which has no effect outside the process but takes time: ~7 ms after a one-rule
command, and a command's own locals going out of scope on return free its snapshot the same
way (~40 ms after loading and analysing a 10,000-Service snapshot). :func:`end` does the
first three steps itself (the same ``atexit`` call the interpreter makes, the same flushes),
then ``os._exit`` with the status.

It lets the interpreter end as usual (``sys.exit``) whenever it is not sure that is the
same: another thread alive or a ``threading`` exit hook registered (``concurrent.futures``
registers one: ``collect`` over several nodes), ``python -i`` (``sys.flags.inspect``), a
status that is not an int, a flush that fails (a closed pipe: the interpreter reports it and
exits 120 as before), ``LABREPORT_FULL_EXIT`` set (to any non-empty value), or an ``atexit``
module without ``_run_exitfuncs``. What it skips is the objects' deallocation and their
``__del__``: labreport writes its files in ``with`` blocks (``labreport.atomic`` fsyncs the
snapshots before renaming them), so no file of it waits for a finalizer to be flushed;
temporary directories are removed by ``weakref.finalize``'s ``atexit`` hook, which runs.

:func:`keep` is for a command's large results (the loaded snapshot, its analysis): kept
referenced until the process ends, they are not freed object by object when the command
returns. Only a run armed by :func:`arm` (the console scripts) keeps anything: ``main()``
called in a test process frees them as usual.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn, Optional

DISABLE_ENV = "LABREPORT_FULL_EXIT"

_kept: list[object] = []
_armed: list[bool] = []  # [True] once a console script armed the quick end


def arm() -> None:
    """This process is a console-script run: it ends through :func:`end`."""
    if not _armed:
        _armed.append(True)


def keep(*objs: object) -> None:
    """Keep ``objs`` referenced until the process ends (only in an armed run): a command's
    large results, which the quick end then never frees one by one."""
    if _armed:
        _kept.extend(objs)


def blocker() -> Optional[str]:
    """Why the interpreter's own teardown must run (None: nothing of it is needed)."""
    if os.environ.get(DISABLE_ENV):
        return DISABLE_ENV
    if sys.flags.inspect or os.environ.get("PYTHONINSPECT"):
        return "python -i"
    threading = sys.modules.get("threading")
    if threading is not None:
        main = threading.main_thread()
        if threading.current_thread() is not main:
            return "not the main thread"
        if any(t is not main and t.is_alive() for t in threading.enumerate()):
            return "another thread is alive"
        if getattr(threading, "_threading_atexits", None) != []:  # threading._register_atexit's hooks
            return "threading exit hooks"
    return None


def _run_atexit() -> bool:
    """The ``atexit`` callbacks, called as the interpreter calls them at exit (each once, an
    exception printed and the next one called); False when this Python cannot do that."""
    import atexit

    run = getattr(atexit, "_run_exitfuncs", None)
    if run is None:
        return atexit._ncallbacks() == 0
    run()
    return True


def _flushed() -> bool:
    """sys.stdout and sys.stderr flushed (False: one could not be; the interpreter says it)."""
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None and not stream.closed:
                stream.flush()
    except Exception:
        return False
    return True


def end(status: int) -> NoReturn:
    """End the process with ``status`` as the interpreter would, without freeing everything
    first when nothing needs it (see the module's doc)."""
    if type(status) is not int or blocker() is not None or not _run_atexit() or blocker() is not None \
            or not _flushed():
        sys.exit(status)
    os._exit(status)


def said_write_failure(exc: BaseException) -> bool:
    """For a write the system could not do (``labreport.errors.write_failure``: a full disk,
    a quota, a file size limit): stdout discarded when it cannot be flushed either, the
    error said on stderr, True; False (nothing done) for any other exception."""
    from labreport.errors import write_failure

    failed = write_failure(exc)
    if failed is None:
        return False
    discard_stdout()
    sys.stderr.write(f"labreport: error: {failed}\n")
    sys.stderr.flush()
    return True


def discard_stdout() -> None:
    """After a write failed (a full disk): when stdout cannot be flushed either (it was the
    write that failed), its file descriptor pointed at /dev/null — what is left in its
    buffer, and any later write, goes there, so the flush at the process's end does not fail
    on it again (and print a second error). A stdout that flushes is left as it is."""
    try:
        if sys.stdout is None or sys.stdout.closed:
            return
        sys.stdout.flush()
        return
    except Exception:  # the failed write, again
        pass
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, AttributeError, ValueError):
        pass
