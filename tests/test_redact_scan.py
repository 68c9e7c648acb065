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
    """``labreport analyze --json`` ends with os._exit (labreport.cli.ending) after a large
    snapshot: what it printed must all be there, and the exit status kept."""
    dump = tmp_path / "ipt.txt"
    dump.write_text(_dump(4000))  # ~150,000 objects frozen, kept until the end (ending.keep)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    snap = tmp_path / "snap"
    subprocess.run([sys.executable, "-m", "labreport", "import", "--iptables-save", str(dump), "--out", str(snap),
                    "-q"], check=True, env=env, cwd=tmp_path)
    child = ("import sys\nfrom labreport.cli import main, ending\nending.arm()\n"
             "rc = main(['analyze', sys.argv[1], '--json', '--no-redact'])\n"
             "sys.stderr.write(f'quick exit: {ending.blocker() is None}\\n')\nending.end(rc)")
    proc = subprocess.run([sys.executable, "-c", child, str(snap)], capture_output=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert b"quick exit: True" in proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["nodes"][0]["services"]) == 4000
    bad = subprocess.run([sys.executable, "-m", "labreport", "analyze", str(tmp_path / "nothing"), "--json"],
                         capture_output=True, env=env, cwd=tmp_path)
    assert bad.returncode != 0 and b"Traceback" not in bad.stderr


# the listings (`nft list ruleset` as printed); *.rules*.nft are the transactions loaded
NFT_FIXTURES = sorted(p for p in (ROOT / "tests" / "fixtures" / "parsers" / "nft").glob("*.nft") if ".rules" not in p.name)


def _nft_planted(base: str, *, without: str = "") -> tuple[str, list[str]]:
    """The catalogue's one-line examples (with no quote or backslash of their own) planted
    where nft prints strings: rule comments, a chain's comment, a set element's comment
    and the table's comment — as a user's rule set could hold them."""
    rows = [(ex, secret) for _form, ex, secret, _kind in CATALOGUE if "\n" not in ex and '"' not in ex
            and "\\" not in ex and not (without and without in ex)]
    lines = base.split("\n")
    chain_at = [i for i, ln in enumerate(lines) if ln.strip().startswith("chain ") and ln.rstrip().endswith("{")]
    assert chain_at, "a listing with chains"
    secrets = []
    for k, (ex, secret) in enumerate(rows):
        at = chain_at[k % len(chain_at)] + 1
        lines.insert(at, f'\t\tcounter packets 0 bytes 0 comment "{ex}"')
        chain_at = [i + 1 if i >= at else i for i in chain_at]
        secrets.append(secret)
    return "\n".join(lines), secrets


@pytest.mark.parametrize("path", NFT_FIXTURES, ids=lambda p: p.name)
def test_nft_text_scan_agrees_with_the_rule_sets_json(path):
    """The scan of the listing (``_nft_is_clean``) never calls clean what the scan of the
    rule set's JSON does not: on each real listing, and with secrets planted in it."""
    from labreport.parsers import nft

    text = path.read_text()
    rs = nft.parse(text, source=path.name).value
    fast = redact._nft_is_clean(rs)
    assert fast is not None
    assert fast == redact._subtree_is_clean(rs.model_dump_json())
    planted, _secrets = _nft_planted(text)
    rs2 = nft.parse(planted, source=path.name).value
    assert redact._nft_is_clean(rs2) is not True  # None: "-u" (curl -u) leaves it to the JSON
    assert redact._subtree_is_clean(rs2.model_dump_json()) is False
    planted, _secrets = _nft_planted(text, without="-u")
    rs3 = nft.parse(planted, source=path.name).value
    assert redact._nft_is_clean(rs3) is False
    # a rule set loaded from a snapshot has no listing to scan: its JSON is judged
    loaded = type(rs).model_validate_json(rs.model_dump_json())
    assert redact._nft_is_clean(loaded) is None


def test_nft_listing_scan_redacts_as_the_json_scan_does(monkeypatch):
    """The import's redaction with the listing scan gives the very snapshot the scan of the
    rule set's JSON gives; a clean listing is set aside (the same models)."""
    from labreport.importer import import_files

    base = (ROOT / "tests" / "fixtures" / "parsers" / "nft" / "kube-proxy-lab.nft").read_text()
    planted, secrets = _nft_planted(base, without="-u")
    for text in (base, planted):
        snap = import_files([("n", {"nft": [("ruleset.nft", text)], "ps": [("ps.txt", PS)]})], kubectl=[])
        out, kinds = redact_snapshot(snap)
        stored = out.model_dump_json()
        assert "PsPw0002" not in stored
        with monkeypatch.context() as m:
            m.setattr(redact, "_nft_is_clean", lambda _rs: None)
            slow, slow_kinds = redact_snapshot(snap)
        assert stored == slow.model_dump_json() and kinds == slow_kinds
        if text is base:
            assert out.nodes[0].nftables is snap.nodes[0].nftables  # set aside, not re-validated
        else:
            assert out.nodes[0].nftables is not snap.nodes[0].nftables
            rules = out.nodes[0].nftables.model_dump_json()
            assert sum(secret not in rules for secret in secrets) >= len(secrets) // 2


IPT_FIXTURES = sorted(p for p in (ROOT / "tests" / "fixtures" / "parsers" / "iptables-save").glob("*.txt"))


def _ipt_planted(base: str, *, verbatim: bool = False) -> tuple[str, list[str]]:
    """The catalogue's one-line examples (no quote or backslash of their own) as rule
    comments in the first table's INPUT chain; ``verbatim``: only those a clean dump's line
    could hold as is (no double space or tab, which the parser normalizes)."""
    rows = [(ex, secret) for _form, ex, secret, _kind in CATALOGUE if "\n" not in ex and '"' not in ex
            and "\\" not in ex and not (verbatim and ("  " in ex or "\t" in ex or "-c " in ex))]
    lines = base.split("\n")
    at = next(i for i, ln in enumerate(lines) if ln.startswith("COMMIT"))
    for ex, _secret in rows:
        lines.insert(at, f'-A INPUT -m comment --comment "{ex}" -j ACCEPT')
    return "\n".join(lines), [secret for _ex, secret in rows]


@pytest.mark.parametrize("path", IPT_FIXTURES, ids=lambda p: p.name)
def test_iptables_dump_scan_agrees_with_the_rules_json(path):
    """``_ipt_is_clean`` never calls clean what the scan of the rules' JSON does not: on the
    real dumps and pastes (a wrapped paste is left to the JSON: None), and with secrets
    planted as rule comments."""
    from labreport.parsers import iptables_save

    text = path.read_text()
    ipt = iptables_save.parse(text, source=path.name).value
    fast = redact._ipt_is_clean(ipt)
    full = redact._subtree_is_clean(ipt.model_dump_json())
    assert fast is None or fast == full
    if "COMMIT" in text and ipt.source_text is not None:
        planted, _ = _ipt_planted(text)
        ipt2 = iptables_save.parse(planted, source=path.name).value
        assert redact._ipt_is_clean(ipt2) is not True and redact._subtree_is_clean(ipt2.model_dump_json()) is False
        planted, _ = _ipt_planted(text, verbatim=True)
        ipt3 = iptables_save.parse(planted, source=path.name).value
        assert ipt3.source_text is not None and redact._ipt_is_clean(ipt3) is False
    loaded = type(ipt).model_validate_json(ipt.model_dump_json())
    assert redact._ipt_is_clean(loaded) is None


def test_iptables_dump_scan_redacts_as_the_json_scan_does(monkeypatch):
    from labreport.importer import import_files

    clean = _dump(100)
    planted, secrets = _ipt_planted(clean, verbatim=True)
    wrapped = clean.replace("-j KUBE-SVC-", "-j KUBE-SVC-\n", 1)  # a hard-wrapped paste: assembled, not verbatim
    for text in (clean, planted, wrapped):
        snap = import_files([("n", {"iptables-save": [("ipt.txt", text)], "ps": [("ps.txt", PS)]})], kubectl=[])
        assert (snap.nodes[0].iptables.source_text is None) == (text is wrapped)
        out, kinds = redact_snapshot(snap)
        with monkeypatch.context() as m:
            m.setattr(redact, "_ipt_is_clean", lambda _ipt: None)
            slow, slow_kinds = redact_snapshot(snap)
        assert out.model_dump_json() == slow.model_dump_json() and kinds == slow_kinds
        rules = out.nodes[0].iptables.model_dump_json()
        if text is planted:
            assert out.nodes[0].iptables is not snap.nodes[0].iptables
            assert sum(secret not in rules for secret in secrets) >= len(secrets) // 2
        else:
            assert out.nodes[0].iptables is snap.nodes[0].iptables


@pytest.mark.parametrize("text,edge", [
    ("a -u b", False), ("kube-up pod-uid\n", False), ("x\n  -u b", True), ("a -u\nb", True),
    ("a -u \t\nb", True), ("-u", True), ("x\n\t-up", True),
])
def test_a_u_at_a_line_edge_leaves_the_listing_to_the_json(text, edge):
    """Lines joined by a space (a wrapped rule) would make " -u" / "-u " of a -u that starts
    or ends a line: such a listing is not judged from its text."""
    assert redact._u_at_a_line_edge(text) is edge
