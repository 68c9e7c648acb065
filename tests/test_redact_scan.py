"""The redaction's C-speed trigger scan (Aho-Corasick, ahocorasick_rs) and its fallback
(one ``str.find`` per word) answer alike; rule sets set aside by the scan come back as the
same models; the console script's quick exit after a large snapshot loses no output.

Inputs: the secrets catalogue (tests/support/secrets_catalogue.py), the lab's real
iptables-save (tests/fixtures/parsers/iptables-save/) and a kube-proxy dump of the
generator (tests/support/gen_iptables.py) with secrets planted in rule comments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labreport import redact
from labreport.redact import placeholder, redact_snapshot, redact_text
from tests.support import gen_iptables
from tests.support.secrets_catalogue import CATALOGUE, KEPT

ROOT = Path(__file__).resolve().parent.parent
LAB_DUMP = ROOT / "tests" / "fixtures" / "parsers" / "iptables-save" / "lab-iptables-save.txt"


def _dump(n: int) -> str:
    text, _truth = gen_iptables.render(gen_iptables.bench_services(n, 3))
    return text


@pytest.fixture
def without_automata(monkeypatch):
    """The fallback: as if ahocorasick_rs were not installed."""
    monkeypatch.setattr(redact, "_AUTOMATA", [None])


def _planted() -> str:
    rows = [ex for _form, ex, _secret, _kind in CATALOGUE if "\n" not in ex and '"' not in ex]
    base = _dump(50)
    lines = base.split("\n")
    # each catalogue example as a rule comment, spread through the dump
    for i, ex in enumerate(rows):
        lines.insert(10 + i * 7, f'-A KUBE-SERVICES -m comment --comment "{ex}" -j ACCEPT')
    return "\n".join(lines)


def test_the_scan_finds_the_lines_the_fallback_finds(monkeypatch):
    texts = [LAB_DUMP.read_text(), _dump(200), _planted()] + [ex for _f, ex, _s, _k in CATALOGUE] + [
        ex for _f, ex in KEPT]
    fast = [redact._hot_lines(t) for t in texts]
    monkeypatch.setattr(redact, "_AUTOMATA", [None])
    slow = [redact._hot_lines(t) for t in texts]
    assert fast == slow
    assert fast[2], "the planted secrets are on hot lines"


def test_redaction_is_the_same_without_the_library(monkeypatch):
    planted = _planted()
    fast, kinds = redact_text(planted)
    monkeypatch.setattr(redact, "_AUTOMATA", [None])
    slow, kinds_slow = redact_text(planted)
    assert fast == slow and kinds == kinds_slow
    assert fast != planted and len(kinds) >= 8


@pytest.mark.parametrize("fallback", [False, True])
def test_rule_set_scan_sets_clean_rules_aside_and_walks_a_planted_secret(fallback, monkeypatch):
    from labreport.importer import import_files

    if fallback:
        monkeypatch.setattr(redact, "_AUTOMATA", [None])
    clean = _dump(100)
    # a kube-proxy dump is clean: its hashes (KUBE-SEP-…AIDA…) hit trigger words by chance
    assert redact._subtree_is_clean(json.dumps({"spec": clean}))
    planted = clean.replace("COMMIT", '-A INPUT -m comment --comment "token=RulePw0001abc" -j ACCEPT\nCOMMIT', 1)
    for text, secret in ((clean, None), (planted, "RulePw0001abc")):
        snap = import_files([("n", {"iptables-save": [("ipt.txt", text)], "ps": [("ps.txt", PS)]})], kubectl=[])
        out, kinds = redact_snapshot(snap)
        assert "cli-credential" in kinds  # the ps line, so the snapshot is rebuilt
        stored = out.model_dump_json()
        assert "PsPw0002" not in stored
        if secret:
            assert secret not in stored and placeholder("RulePw0001abc") in stored
            assert out.nodes[0].iptables is not snap.nodes[0].iptables
        else:
            # set aside by the scan: the very same models, not a copy re-validated
            assert out.nodes[0].iptables is snap.nodes[0].iptables
            assert out.nodes[0].iptables.model_dump() == snap.nodes[0].iptables.model_dump()


PS = ("USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n"
      "root         812  0.0  0.1  10000  2000 ?        Ss   10:00   0:00 /usr/bin/app --password=PsPw0002\n")


def test_console_script_output_is_whole_after_a_large_snapshot(tmp_path):
    """``labreport analyze --json`` ends with os._exit after a frozen snapshot: what it
    printed must all be there, and the exit status kept."""
    dump = tmp_path / "ipt.txt"
    dump.write_text(_dump(2000))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    snap = tmp_path / "snap"
    subprocess.run([sys.executable, "-m", "labreport", "import", "--iptables-save", str(dump), "--out", str(snap),
                    "-q"], check=True, env=env, cwd=tmp_path)
    child = ("import gc, sys\nfrom labreport.cli import main, _exit, _BIG_HEAP\n"
             "rc = main(['analyze', sys.argv[1], '--json', '--no-redact'])\n"
             "sys.stderr.write(f'quick exit: {gc.get_freeze_count() >= _BIG_HEAP}\\n')\n_exit(rc)")
    proc = subprocess.run([sys.executable, "-c", child, str(snap)], capture_output=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert b"quick exit: True" in proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["nodes"][0]["services"]) == 2000
    bad = subprocess.run([sys.executable, "-m", "labreport", "analyze", str(tmp_path / "nothing"), "--json"],
                         capture_output=True, env=env, cwd=tmp_path)
    assert bad.returncode != 0 and b"Traceback" not in bad.stderr
