"""Shared test helpers.

- ``cli(*args)`` runs labreport's main() in-process and returns (exit code, stdout, stderr).
- ``needs_root_lab`` skips a test (with the reason) when the machine cannot build a real
  node lab: not root, or a binary missing. CI installs everything (.ci/run), so there these
  tests run.
- ``lab_name(prefix)`` gives short unique names for namespaces, sockets and directories,
  so concurrent test runs never collide.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

# Property tests: no per-example deadline (the machine may be loaded), and in CI the same
# examples every run, so a red CI is always reproducible (run with CI=true locally).
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    _hyp_settings.register_profile("dev", deadline=None)
    _hyp_settings.load_profile("ci" if os.environ.get("CI") else "dev")
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
def cli(capsys):
    from labreport.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def lab_name(prefix: str) -> str:
    """A short unique name (netns names and ifnames are limited to 15 chars)."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def missing_for_lab(*binaries: str) -> list[str]:
    why = []
    if os.geteuid() != 0:
        why.append("not root")
    for b in binaries:
        if shutil.which(b) is None and not Path(b).exists():
            why.append(f"no {b}")
    return why


def needs_lab(*binaries: str):
    """Decorator: skip with the reason unless root and all binaries exist."""
    why = missing_for_lab("ip", *binaries)
    return pytest.mark.skipif(bool(why), reason="node lab unavailable: " + ", ".join(why))
