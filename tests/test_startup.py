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
