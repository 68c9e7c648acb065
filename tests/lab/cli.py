"""How the e2e tests run the real ``labreport`` command (the installed console script,
next to this interpreter when installed in a venv), as a subprocess."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def labreport_argv() -> list[str]:
    beside = Path(sys.executable).parent / "labreport"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("labreport")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from labreport.cli import run; sys.exit(run())"]
