"""Process and cleanup helpers for the node lab: run a command (with a clear error), start
a daemon and stop it by its own pid, wait for a condition, and a teardown stack that runs
every step even when some fail."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

log = logging.getLogger("tests.lab")


class LabError(RuntimeError):
    """The lab could not be built; the message says which step and why."""


def run(argv: Sequence[str], *, input: str | bytes | None = None, timeout: float = 60.0,
        check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command; with check, a non-zero exit raises LabError with stdout/stderr."""
    text = not isinstance(input, bytes)
    try:
        cp = subprocess.run(list(argv), input=input, capture_output=True, text=text,
                            timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if check and cp.returncode != 0:
        raise LabError(f"exit {cp.returncode}: {' '.join(argv)}\nstdout: {cp.stdout!s:.2000}\n"
                       f"stderr: {cp.stderr!s:.2000}")
    return cp


def wait_for(what: str, cond: Callable[[], object], *, timeout: float = 30.0,
             interval: float = 0.05, on_timeout: Callable[[], str] | None = None) -> object:
    """Poll ``cond`` until it returns a truthy value (returned); exceptions count as not yet."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = cond()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - polling: any failure means "not ready yet"
            last_exc = exc
        if time.monotonic() > deadline:
            extra = on_timeout() if on_timeout else ""
            raise LabError(f"timed out after {timeout}s waiting for {what}"
                           f"{f' (last error: {last_exc})' if last_exc else ''}{extra}")
        time.sleep(interval)


@dataclass
class Daemon:
    """A long-running process the lab started (and only that one is ever signalled)."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> "Daemon":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdout=fh, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            fh.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return ""
        return f"\n--- last lines of {self.log_path} ---\n" + "\n".join(lines)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def kill_pids(pids: Sequence[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def pids_with_cmdline_containing(marker: str) -> list[int]:
    """Processes whose command line contains ``marker`` — used with a path unique to one lab
    (e.g. its containerd socket), so only processes that lab started are found."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in raw:
            found.append(int(entry))
    return found


def unmount_under(root: Path) -> None:
    """Lazily unmount every mount point at or below ``root`` (deepest first)."""
    root_s = str(root.resolve())
    points = []
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == root_s or mp.startswith(root_s + "/"):
                points.append(mp)
    except OSError:
        return
    for mp in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


@dataclass
class Teardown:
    """A stack of cleanup steps run in reverse order; each step runs even if others fail,
    and the failures are reported together at the end."""

    steps: list[tuple[str, Callable[[], object]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def push(self, what: str, fn: Callable[[], object]) -> None:
        self.steps.append((what, fn))

    def run(self) -> list[str]:
        while self.steps:
            what, fn = self.steps.pop()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - keep tearing down the rest
                msg = f"teardown step {what!r} failed: {exc}"
                log.warning(msg)
                self.errors.append(msg)
        return self.errors
