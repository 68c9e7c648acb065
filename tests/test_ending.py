"""A console-script run ends without the interpreter's teardown when nothing needs it
(labreport.cli.ending): the same exit statuses, the same stdout and stderr, the same files
as the interpreter's own end (LABREPORT_FULL_EXIT=1), run as the real console script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labreport.cli import ending

from tests.conftest import ROOT

ONE_RULE = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n"
SAMPLES = sorted(p for p in (ROOT / "samples").iterdir() if (p / "snapshot.json").is_file())


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ending.DISABLE_ENV}
    return {**env, "PYTHONPATH": str(ROOT), "COLUMNS": "80", **extra}


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    """The console script as pip writes it for ``labreport = "labreport.cli:run"``."""
    path = tmp_path_factory.mktemp("bin") / "labreport"
    path.write_text(f"#!{sys.executable}\nimport re\nimport sys\nfrom labreport.cli import run\n"
                    "if __name__ == '__main__':\n"
                    "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                    "    sys.exit(run())\n")
    return path


def _tree(d: Path) -> dict[str, bytes]:
    """Every file under ``d`` (relative path → bytes), the snapshot's timestamp blanked and
    ``d`` itself written WORK."""
    files = {}
    for p in sorted(d.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name.endswith(".digest"):  # a digest of the (timestamped) snapshot: its presence
                data = b"digest"
            files[str(p.relative_to(d))] = _blank(data.replace(str(d).encode(), b"WORK"))
    return files


def _blank(data: bytes) -> bytes:
    """The snapshot's times blanked (two runs a second apart differ by them)."""
    return re.sub(rb'"(created_at|collected_at)": ?"[^"]*"', rb'"\1": ""', data)


def _run_both(script: Path, tmp_path: Path, args: list[str], stdin: bytes = b"") -> list[tuple[int, bytes, bytes, dict]]:
    """The command run with the quick end and with the interpreter's own: (status, stdout,
    stderr, files written) of each, paths of the working directory written as WORK."""
    results = []
    for mode, extra in (("quick", {}), ("full", {ending.DISABLE_ENV: "1"})):
        work = tmp_path / mode
        work.mkdir()
        (work / "ipt.txt").write_text(ONE_RULE)
        argv = [a.replace("{work}", str(work)) for a in args]
        proc = subprocess.run([sys.executable, str(script), *argv], input=stdin, capture_output=True,
                              env=_env(**extra), cwd=work, timeout=120)
        clean = [_blank(b.replace(str(work).encode(), b"WORK")) for b in (proc.stdout, proc.stderr)]
        results.append((proc.returncode, clean[0], clean[1], _tree(work)))
    return results


CASES = [
    ["--version"],
    ["--help"],
    ["analyze", "--help"],
    ["no-such-command"],
    ["analyze", "{work}/nothing", "--json"],
    ["import", "--iptables-save", "ipt.txt", "--out", "snap"],
    ["import", "--iptables-save", "ipt.txt", "--out", "-"],
    ["import", "--iptables-save", "ipt.txt", "--ps", "missing.txt", "--keep-going", "--out", "snap"],
    ["import", "--iptables-save", "missing.txt", "--out", "snap"],
    ["schema"],
    *[["analyze", str(s), "--json"] for s in SAMPLES],
    *[["analyze", str(s)] for s in SAMPLES[:2]],
    ["analyze", str(SAMPLES[0]), "-o", "yaml", "--no-redact"],
    ["render", str(SAMPLES[1]), "--format", "md", "--out", "report", "-q"],
    ["diff", str(SAMPLES[1]), str(SAMPLES[2])],
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(Path(x).name for x in a)[:60])
def test_the_quick_end_changes_nothing_a_user_sees(script, tmp_path, args):
    quick, full = _run_both(script, tmp_path, args)
    assert quick[0] == full[0]
    assert quick[1] == full[1]
    assert quick[2] == full[2]
    assert quick[3] == full[3]


def test_the_cases_cover_failures_and_files(script, tmp_path):
    """The comparison above is not of empty outputs: a usage error (2), a missing input (3),
    a missing snapshot (4) and a partial node (10) are among the cases, and a snapshot written."""
    statuses = {}
    for i, args in enumerate(CASES[3:9]):
        d = tmp_path / str(i)
        d.mkdir()
        quick, _ = _run_both(script, d, args)
        statuses[" ".join(args)] = quick[0]
        if quick[0] in (0, 10) and "snap" in args:
            assert "snap/snapshot.json" in quick[3] and "snap/.snapshot.json.digest" in quick[3]
    assert set(statuses.values()) == {0, 2, 3, 4, 10}, statuses


def test_an_analysis_read_from_stdin_and_piped_on(script, tmp_path):
    snap = (SAMPLES[0] / "snapshot.json").read_bytes()
    quick, full = _run_both(script, tmp_path, ["analyze", "-", "--json"], stdin=snap)
    assert quick[:3] == full[:3] and quick[0] == 0 and json.loads(quick[1])["nodes"]


def _closed_pipe_run(script: Path, cwd: Path, extra: dict[str, str]) -> tuple[int, bytes]:
    """``labreport analyze SAMPLE --json | head -c 10``: the reader gone before the end."""
    r, w = os.pipe()
    os.close(r)  # nobody reads: the first write (or the last flush) meets EPIPE
    try:
        proc = subprocess.run([sys.executable, str(script), "analyze", str(SAMPLES[0]), "--json"], stdout=w,
                              stderr=subprocess.PIPE, env=_env(**extra), cwd=cwd, timeout=120)
    finally:
        os.close(w)
    return proc.returncode, proc.stderr


def test_a_closed_pipe_ends_as_before(script, tmp_path):
    quick = _closed_pipe_run(script, tmp_path, {})
    full = _closed_pipe_run(script, tmp_path, {ending.DISABLE_ENV: "1"})
    assert quick == full


CHILD = """
import atexit, os, sys, threading
from labreport.cli import ending

def teardown(event, args, write=os.write):  # raised by the interpreter's teardown
    if event == "cpython.PyInterpreterState_Clear":
        write(2, b"teardown ran\\n")

sys.addaudithook(teardown)
atexit.register(lambda: open(sys.argv[1], "w").write("atexit ran"))
mode = sys.argv[2]
if mode == "thread":  # a non-daemon thread still working: the interpreter waits for it
    import time
    threading.Thread(target=lambda: (time.sleep(0.3), open(sys.argv[1] + ".thread", "w").write("done"))).start()
elif mode == "hook":
    threading._register_atexit(lambda: open(sys.argv[1] + ".hook", "w").write("hook ran"))
ending.arm()
sys.stdout.write("buffered, not flushed yet")
ending.end(int(sys.argv[3]))
"""


@pytest.mark.parametrize("status", [0, 3, 256 + 7])
def test_the_quick_end_runs_atexit_flushes_and_keeps_the_status(tmp_path, status):
    marker = tmp_path / "m"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(marker), "plain", str(status)], capture_output=True,
                          env=_env(), timeout=60)
    assert proc.returncode == status % 256
    assert proc.stdout == b"buffered, not flushed yet"
    assert marker.read_text() == "atexit ran"
    assert b"teardown ran" not in proc.stderr  # the quick end was taken: no object freed one by one
    full = subprocess.run([sys.executable, "-c", CHILD, str(marker), "plain", str(status)], capture_output=True,
                          env=_env(**{ending.DISABLE_ENV: "1"}), timeout=60)
    assert (full.returncode, full.stdout) == (proc.returncode, proc.stdout) and b"teardown ran" in full.stderr


@pytest.mark.parametrize("mode", ["thread", "hook"])
def test_threads_get_the_interpreters_end(tmp_path, mode):
    marker = tmp_path / "m"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(marker), mode, "4"], capture_output=True, env=_env(),
                          timeout=60)
    assert proc.returncode == 4 and proc.stdout == b"buffered, not flushed yet"
    assert marker.read_text() == "atexit ran"
    # the interpreter's own end: it waited for the thread / ran the hook (ending.end does neither)
    assert Path(f"{marker}.{mode}").read_text() == {"thread": "done", "hook": "hook ran"}[mode]


def test_blocker(monkeypatch):
    monkeypatch.delenv(ending.DISABLE_ENV, raising=False)
    monkeypatch.delenv("PYTHONINSPECT", raising=False)
    import threading

    base = ending.blocker()
    monkeypatch.setenv(ending.DISABLE_ENV, "1")
    assert ending.blocker() == ending.DISABLE_ENV
    monkeypatch.delenv(ending.DISABLE_ENV)
    monkeypatch.setenv("PYTHONINSPECT", "1")
    assert ending.blocker() == "python -i"
    monkeypatch.delenv("PYTHONINSPECT")
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        assert ending.blocker() == "another thread is alive"
    finally:
        stop.set()
        t.join()
    monkeypatch.setattr(threading, "_threading_atexits", [print], raising=False)
    assert ending.blocker() in ("threading exit hooks", base)
    monkeypatch.delattr(threading, "_threading_atexits", raising=False)
    assert ending.blocker() is not None  # a threading module unlike the one known: the usual end


def test_keep_holds_only_in_an_armed_run(monkeypatch):
    monkeypatch.setattr(ending, "_armed", [])
    monkeypatch.setattr(ending, "_kept", [])
    obj = object()
    ending.keep(obj)
    assert ending._kept == []  # main() in a test process: freed as usual
    ending.arm()
    ending.keep(obj)
    assert ending._kept == [obj]


RUN = """
import os, sys
from labreport.cli import run

def teardown(event, args, write=os.write):  # raised by the interpreter's teardown
    if event == "cpython.PyInterpreterState_Clear":
        write(2, b"teardown ran\\n")

sys.addaudithook(teardown)
sys.argv = ["labreport", *sys.argv[1:]]
run()
"""


@pytest.mark.parametrize("args", [["import", "--iptables-save", "ipt.txt", "--out", "snap", "-q"],
                                  ["analyze", str(SAMPLES[0]), "--json"], ["--version"]])
def test_the_commands_take_the_quick_end(tmp_path, args):
    (tmp_path / "ipt.txt").write_text(ONE_RULE)
    quick = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, env=_env(), cwd=tmp_path,
                           timeout=120)
    full = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, cwd=tmp_path, timeout=120,
                          env=_env(**{ending.DISABLE_ENV: "1"}))
    assert quick.returncode == full.returncode == 0
    assert b"teardown ran" not in quick.stderr and b"teardown ran" in full.stderr
    assert _blank(quick.stdout) == _blank(full.stdout)
