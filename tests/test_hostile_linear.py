"""Every parser linear in its input, memory bounded (#15 item 2).

A property test on growth would be flaky on a loaded machine; instead each parser gets a
large input (its real fixture repeated to ~4 MB) and the pathological shapes a quadratic
pattern would choke on (one rule hard-wrapped over 200,000 lines — which took 120 s
before the iptables parser kept its continuation state incrementally —, one 4 MB line,
100,000 addresses on one link, deep nesting), run through ``labreport import`` in a
subprocess: it must finish well inside a generous timeout (a quadratic parser does not)
with a peak RSS under 1 GB (resource.getrusage in the child), and with no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
F = ROOT / "tests" / "fixtures" / "parsers"
LIMIT_KB = 1024 * 1024
TARGET = 4 << 20

# option, fixture, how to grow it ("rows": header kept, rows repeated; "whole": the text repeated;
# "json-list": the JSON list's items repeated)
CASES = [
    ("--ps", F / "ps" / "here-ps-aux-grep.out", "rows"),
    ("--containers", F / "docker-ps" / "here-docker-ps-a.out", "rows"),
    ("--ip-addr", F / "ip-addr" / "here-node-ip-d-addr.out", "whole"),
    ("--ip-route", F / "ip-route" / "here-ip-route.out", "whole"),
    ("--iptables-save", F / "iptables-save" / "lab-iptables-save.txt", "whole"),
    ("--inspect", next(iter(sorted((F / "docker-inspect").glob("*.out")))), "json-list"),
    ("--kubectl", next(iter(sorted((F / "kubectl").glob("*.out")))), "yaml-docs"),
]


def _grow(path: Path, how: str) -> str:
    text = path.read_text("utf-8")
    if how == "rows":
        lines = text.splitlines()
        rows = [ln for ln in lines[1:] if ln.strip()]
        n = TARGET // max(1, len("\n".join(rows)))
        return "\n".join(lines[:1] + rows * n) + "\n"
    if how == "json-list":
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
        one = len(json.dumps(items))
        return json.dumps(items * max(1, TARGET // one))
    if how == "yaml-docs":
        try:
            docs = json.loads(text)
            body = json.dumps(docs)
        except ValueError:
            body = text
        return ("---\n" + body + "\n") * ((TARGET // 2) // (len(body) + 5) + 1)
    return text * max(1, TARGET // len(text))


PATHOLOGICAL = [
    ("iptables: one rule over 200,000 lines", "--iptables-save",
     "*nat\n-A KUBE-SVC-X -m comment --comment \"a\n" + "--dport 80\n" * 200_000 + "COMMIT\n"),
    ("iptables: one 4 MB rule", "--iptables-save", "*nat\n-A KUBE-X " + "-m x " * 800_000 + "\nCOMMIT\n"),
    ("ps: one 4 MB command line", "--ps",
     "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND\nroot 1 0.0 0.0 1 1 ? S 00:00 0:00 /bin/x "
     + "a " * 2_000_000 + "\n"),
    ("ip addr: 100,000 addresses on one link", "--ip-addr",
     "1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue state UNKNOWN\n    link/loopback 00:00:00:00:00:00 brd "
     "00:00:00:00:00:00\n" + "".join(f"    inet 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/8 scope host lo\n"
                                     for i in range(100_000))),
    # (libyaml's C loader crashed the process with SIGSEGV on this one: the pure-Python loader is used)
    ("kubectl: JSON nested 100,000 deep", "--kubectl", "[" * 100_000 + "]" * 100_000),
    ("kubectl: YAML nested 3,000 deep", "--kubectl", "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 3000))),
    ("nft: 50,000 nested blocks", "--nft", "table ip x {\n" + "chain c {\n" * 50_000 + "}\n" * 50_001),
    ("kubectl: 300,000 list items", "--kubectl",
     json.dumps({"apiVersion": "v1", "kind": "List", "items": [
         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}} for i in range(30_000)]})),
]


def _import(tmp: Path, option: str, text: str, timeout: float = 240) -> tuple[int, str, int]:
    src = tmp / "input.txt"
    src.write_text(text, "utf-8")
    res = tmp / "measure.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "tests.support.measure", str(res), "--", "import", option, str(src),
                           "--max-input-size", "64M", "--out", str(tmp / "snap"), "--quiet"],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=str(ROOT))
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode != 70, proc.stderr[-2000:]
    info = json.loads(res.read_text()) if res.exists() else {"maxrss_kb": 0}
    return proc.returncode, proc.stderr, int(info["maxrss_kb"])


@pytest.mark.parametrize("option,fixture,how", CASES, ids=[f"{c[0]}:{c[1].name}" for c in CASES])
def test_large_real_input_in_bounded_memory(tmp_path, option: str, fixture: Path, how: str):
    text = _grow(fixture, how)
    assert len(text) > (2 << 20)
    rc, err, rss = _import(tmp_path, option, text)
    assert rc in (0, 10), err[-2000:]
    assert 0 < rss < LIMIT_KB, rss


@pytest.mark.parametrize("label,option,text", PATHOLOGICAL, ids=[p[0] for p in PATHOLOGICAL])
def test_pathological_shapes_finish_in_bounded_memory(tmp_path, label: str, option: str, text: str):
    rc, err, rss = _import(tmp_path, option, text)
    assert rc in (0, 3, 10), (label, rc, err[-2000:])  # parsed, or refused with a clear error
    assert 0 < rss < LIMIT_KB, (label, rss)
