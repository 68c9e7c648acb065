"""`labreport --help` / `--version` answer without importing click or a subcommand (issue
14), and say exactly what click says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from labreport import cli
from labreport.cli import app

from tests.conftest import ROOT


def _click_output(args, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        app.cli.main(args=args, prog_name="labreport")
    assert exc.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"]])
def test_the_fast_text_is_clicks(args, capsys, monkeypatch):
    want = _click_output(args, capsys, monkeypatch)
    assert cli._fast(args) == want


def test_fast_path_imports_neither_click_nor_a_subcommand():
    code = ("import sys; from labreport.cli import main; rc = main(sys.argv[1:]);"
            "bad = [m for m in sys.modules if m == 'click' or (m.startswith(('labreport.cli.', 'pydantic')) and m != 'labreport.cli.commands')];"
            "print(rc, bad)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    for flag in ("--help", "--version"):
        out = subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, env=env,
                             check=True).stdout
        assert out.rstrip().endswith("0 []"), out


def test_a_narrow_terminal_and_other_arguments_go_to_click(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    assert cli._fast(["--help"]) is None
    assert cli._fast(["analyze", "--help"]) is None
    assert cli._fast(["--help", "--version"]) is None


HEAVY = ("kubernetes", "grpc", "docker", "jinja2", "graphviz", "markdown", "pyroute2", "asyncssh", "paramiko",
         "rich", "yaml")


def test_import_and_analyze_json_import_no_heavy_library(tmp_path):
    """`labreport import --iptables-save` and `labreport analyze --json` (#14: start-up per
    command) import none of the libraries of the other commands (API client, transports,
    templates, diagrams, netlink, text tables, YAML)."""
    dump = tmp_path / "ipt.txt"
    dump.write_text("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n", "utf-8")
    code = ("import os, sys; from labreport.cli import main; sys.stdout = open(os.devnull, 'w');"
            "rc = main(sys.argv[1:]);"
            f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}));"
            "print(rc, bad, file=sys.stderr)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    snap = tmp_path / "snap"
    for argv in (["import", "--iptables-save", str(dump), "--out", str(snap), "-q"], ["analyze", str(snap), "--json"]):
        err = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env,
                             check=True).stderr
        assert err.rstrip().splitlines()[-1] in ("0 []", "10 []"), (argv, err)
