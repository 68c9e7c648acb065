"""The heavy clients load only where they are used (``python3 -X importtime``): the
kubernetes client only when the API is asked, docker only for a Docker node, grpc only
for the CRI, asyncssh only for SSH. Checked on the commands that need none of them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SAMPLE = ROOT / "samples" / "seed001-flannel-containerd"
BEFORE = ROOT / "samples" / "seed001-flannel-containerd-before"
HEAVY = ("kubernetes", "docker", "grpc", "asyncssh", "google.protobuf")


def imported(*args: str) -> set[str]:
    """Every module the command imports, from -X importtime's report."""
    cp = subprocess.run([sys.executable, "-X", "importtime", "-c",
                         "import sys; from labreport.cli import main; sys.exit(main(sys.argv[1:]))", *args],
                        capture_output=True, text=True, timeout=120, env=dict(os.environ))
    mods = set()
    for line in cp.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+\d+ \|(\s*)(\S+)$", line)
        if m:
            mods.add(m.group(2))
    assert mods, cp.stderr[-2000:]
    return mods


def _heavy(mods: set[str]) -> set[str]:
    return {m for m in mods if any(m == h or m.startswith(h + ".") for h in HEAVY)}


@pytest.mark.parametrize("args", [
    ("--help",),
    ("collect", "--help"),
    ("analyze", str(SAMPLE), "--json"),
    ("analyze", str(SAMPLE), "-o", "yaml"),
    ("diff", str(BEFORE), str(SAMPLE), "--json"),
    ("doctor", "--json"),
    ("completion", "bash"),
])
def test_no_heavy_client_where_none_is_used(args):
    assert _heavy(imported(*args)) == set()


def test_ssh_collection_without_the_api_loads_no_kubernetes(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.write_text("Host x\n  HostName 127.0.0.1\n  Port 9\n")
    mods = imported("collect", "--nodes", "x", "--ssh-config", str(cfg), "--no-api", "--timeout", "5",
                    "--out", str(tmp_path / "s"), "-q")
    assert "asyncssh" in mods  # it did reach the SSH transport
    assert not {m for m in mods if m == "kubernetes" or m.startswith("kubernetes.")}
    assert not {m for m in mods if m == "docker" or m.startswith("docker.")}
