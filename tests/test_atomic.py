"""labreport.atomic on the real filesystem: a write that fails midway leaves the old file
as it was and no temporary file; a finished one has the mode a plain open() gives; and
the writers built on it (snapshot.save, transport Parts) keep those properties."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Iterator

import pytest

from labreport import snapshot as sm
from labreport.atomic import atomic_open, atomic_write
from labreport.transport.parts import Parts, part_name


class Boom(Exception):
    pass


def _chunks_then_fail(n: int) -> Iterator[str]:
    for i in range(n):
        yield f"new line {i}\n" * 1000
    raise Boom("the producer failed midway")


def _names(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize("fsync", [True, False])
def test_a_write_failing_midway_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path, fsync: bool) -> None:
    target = tmp_path / "report.txt"
    target.write_text("old content\n")
    with pytest.raises(Boom):
        with atomic_open(target, fsync=fsync) as fh:
            for chunk in _chunks_then_fail(50):
                fh.write(chunk)
            raise AssertionError("not reached")
    assert target.read_text() == "old content\n"
    assert _names(tmp_path) == ["report.txt"]


def test_a_failed_first_write_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "new.bin"
    with pytest.raises(Boom):
        with atomic_open(target, "wb") as fh:
            fh.write(b"\0" * 4096)
            raise Boom()
    assert not target.exists()
    assert _names(tmp_path / "sub") == []  # the directory is made, no temp file stays in it


def test_a_finished_write_replaces_the_file_with_the_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    os.chmod(target, 0o600)
    old = os.umask(0o027)
    try:
        with atomic_open(target) as fh:
            for i in range(3):
                fh.write(f"{i}\n")
        atomic_write(tmp_path / "b.bin", b"\x00\xff")
    finally:
        os.umask(old)
    assert target.read_text() == "0\n1\n2\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # mkstemp's 0600 replaced by 0666 & ~umask
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    assert _names(tmp_path) == ["b.bin", "out.json"]


def test_a_bad_mode_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "x", "a"):  # type: ignore[arg-type]
            pass
    assert _names(tmp_path) == []


_SAVE_OVER_THE_LIMIT = """
import resource, signal, sys
from labreport import snapshot as sm
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, write() fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))
big = sm.Snapshot(title="new", nodes=[sm.NodeSnapshot(name=f"n{i:05d}", error="x" * 200) for i in range(2000)])
try:
    sm.save(big, sys.argv[1])
except OSError as exc:
    print("failed", exc.errno)
else:
    print("written")
"""


def test_snapshot_save_refused_by_the_kernel_midway_keeps_the_old_snapshot(tmp_path: Path) -> None:
    import errno
    import subprocess
    import sys

    sm.save(sm.Snapshot(title="old", nodes=[sm.NodeSnapshot(name="a")]), tmp_path)
    before = (tmp_path / "snapshot.json").read_bytes()
    proc = subprocess.run([sys.executable, "-c", _SAVE_OVER_THE_LIMIT, str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.split() == ["failed", str(errno.EFBIG)], (proc.stdout, proc.stderr)
    assert (tmp_path / "snapshot.json").read_bytes() == before
    assert _names(tmp_path) == ["snapshot.json"]


def test_parts_assemble_failing_midway_keeps_the_old_snapshot_and_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "snapshot.json").write_text('{"old": true}\n')
    parts = Parts(tmp_path, ["a", "b"], redact=False)
    parts.write(0, sm.NodeSnapshot(name="a", status="ok"))
    # node b's part is a directory: reading it fails after node a is already streamed out
    (parts.dir / part_name(1, "b")).mkdir()
    with pytest.raises(IsADirectoryError):
        parts.assemble(sm.Snapshot())
    assert (tmp_path / "snapshot.json").read_text() == '{"old": true}\n'
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert (tmp_path / "run.json").exists()  # the parts stay for load_partial

    (parts.dir / part_name(1, "b")).rmdir()
    assert parts.assemble(sm.Snapshot()) == tmp_path / "snapshot.json"
    got = json.loads((tmp_path / "snapshot.json").read_text())
    assert [n["name"] for n in got["nodes"]] == ["a", "b"] and got["nodes"][1]["status"] == "failed"
    assert _names(tmp_path) == ["snapshot.json"]
