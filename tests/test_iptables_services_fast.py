"""The fast readings (issue 14) give what the general ones give, rule for rule.

- services_iptables reads kube-proxy's usual rule shapes with one regular expression each
  (``_FAST``); every other rule goes through ``_Rule``. Both readings are run on every
  iptables-save fixture, the generator's rule sets and mutants of them (rules pasted twice,
  dropped, swapped; probabilities, comments, quotes, targets and DNAT destinations edited):
  the records must be the same, field for field and in the same order.
- trace/iptables.py ``_quick_keys`` (the long chains' index keys) against its token loop.
- path._choose_service stops at the first endpoint with the best score any endpoint can
  have: the same path as looking at every service.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from labreport.analysis import analyze, path as path_mod
from labreport.analysis import services_iptables as si
from labreport.analysis.trace import iptables as ti
from labreport.parsers import iptables_save
from labreport.snapshot import Iptables, NodeSnapshot, Snapshot, load
from tests.conftest import FIXTURES
from tests.support import gen_iptables

ROOT = Path(__file__).resolve().parent.parent


def _bases() -> list[tuple[str, str]]:
    out = []
    for p in sorted(FIXTURES.rglob("*")):
        if not p.is_file() or p.stat().st_size > 3_000_000:
            continue
        try:
            text = p.read_text("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if "-A KUBE-" in text:
            out.append((str(p.relative_to(FIXTURES)), text))
    out.append(("gen lab", gen_iptables.render(gen_iptables.lab_services())[0]))
    out.append(("gen bench 30x3", gen_iptables.render(gen_iptables.bench_services(30, 3))[0]))
    return out


def _mutate(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    rules = [i for i, line in enumerate(lines) if line.startswith("-A ")]
    if not rules:
        return text
    for _ in range(rng.randint(1, 4)):
        i = rng.choice(rules)
        line = lines[i]
        k = rng.randrange(12)
        if k == 0:
            lines[i] = line + "\n" + line  # pasted twice
        elif k == 1:
            lines[i] = ""
        elif k == 2:
            lines[i] = line.replace("--probability ", "--probability " + rng.choice(
                ["0.5 ", "1 ", "abc", "--rcheck ", "1e-1 ", ".", "0.25 -m statistic --mode random --probability 0.3 "]), 1)
        elif k == 3:
            lines[i] = line.replace(" -j KUBE-SEP-", " -m recent --name KUBE-SEP-X --mask 255.255.255.255 --rsource "
                                    "--rcheck --seconds 10800 --reap -j KUBE-SEP-", 1)
        elif k == 4:
            lines[i] = line.replace('" -m', '" --> 10.1.1.1:80 -m', 1)  # PDF-garbled comment
        elif k == 5:
            lines[i] = line.replace('"', "'")
        elif k == 6:
            lines[i] = line.replace('" ', '\\" x" ', 1)
        elif k == 7:
            lines[i] = line.replace("KUBE-SVC-", rng.choice(["KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-"]))
        elif k == 8:
            lines[i] = (line.replace("--to-destination ", "--to-destination 10.9.9.9:1 --x ", 1) if rng.random() < 0.5
                        else line.replace("-j DNAT", "-j DNAT -j DNAT"))
        elif k == 9:
            lines[i] = re.sub(r'-m comment --comment ("[^"]*"|\S+) ', "", line)
        elif k == 10:
            lines[i] = line.replace("/32 ", " ", 1) if rng.random() < 0.5 else line.replace(':80"', ': "', 1)
        else:
            j = rng.choice(rules)
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def _rule_sets() -> list[tuple[str, Iptables]]:
    rng = random.Random(14)
    out = []
    for name, text in _bases():
        variants = [(name, text)] + [(f"{name} mutant {m}", _mutate(text, rng)) for m in range(8)]
        for vname, vtext in variants:
            try:
                ipt = iptables_save.parse(vtext, source=vname).value
            except Exception:  # a mutant the parser refuses: nothing to compare
                continue
            if ipt is not None:
                out.append((vname, ipt))
    return out


RULE_SETS = _rule_sets()


def _decoded(ipt: Iptables, fast: bool) -> list[str]:
    before = si._FAST[0]
    si._FAST[0] = fast
    try:
        recs, masq = si.decode_iptables(ipt)
    finally:
        si._FAST[0] = before
    return [r.model_dump_json() for r in recs] + [masq.model_dump_json() if masq else "null"]


def test_the_corpus_exercises_the_decoder():
    assert len(RULE_SETS) > 150
    texts = "".join(line for _, ipt in RULE_SETS for line in _decoded(ipt, True))
    for what in ("duplicate rule ignored", "garbled by PDF", "comment says", "is not in the input",
                 "last endpoint rule has a probability", '"session_affinity":true', '"local":true'):
        assert what in texts, what


@pytest.mark.parametrize("name,ipt", RULE_SETS, ids=[n for n, _ in RULE_SETS])
def test_fast_reading_equals_the_general_one(name, ipt):
    assert _decoded(ipt, True) == _decoded(ipt, False)


QUICK_EDGES = [
    '-d 10.96.0.1/32 -p tcp -m comment --comment "-j" -m tcp --dport 443 -j KUBE-SVC-X',
    '-d 10.96.0.1/32 -p tcp -m comment --comment "--dport" -m tcp --dport 443 -j KUBE-SVC-X',
    '-d 10.96.0.1/32 -p tcp -m comment --comment "!" -m tcp --dport 443 -j KUBE-SVC-X',
    '-d 010.96.0.1/32 -p tcp -m comment --comment "a b" -m tcp --dport 443 -j KUBE-SVC-X',
    '-d 10.96.0.256/32 -p tcp -m comment --comment "a b" -m tcp --dport 443 -j KUBE-SVC-X',
    '-d 10.96.0.1/31 -p tcp -m comment --comment "a b" -m tcp --dport 443 -j KUBE-SVC-X',
    '-p tcp -m comment --comment "ns/svc:http" -m tcp --dport 080 -j KUBE-EXT-X',
    '-d 10.96.0.1/32 -p tcp -m comment --comment "" -m tcp --dport 443 -j KUBE-SVC-X',
    '-d 10.96.0.1/32 -p tcp -m comment --comment "a\\" b" -m tcp --dport 443 -j KUBE-SVC-X',
]


def test_quick_keys_equal_the_token_loop():
    specs = {r.spec for _, ipt in RULE_SETS for t in ipt.tables.values() for c in t.chains.values() for r in c.rules}
    specs.update(QUICK_EDGES)
    fast_shaped = 0
    for spec in specs:
        assert ti._quick_keys(spec) == ti._quick_keys_of(spec), spec
        fast_shaped += ti._QUICK_SHAPE(spec) is not None
    assert fast_shaped > 50  # the shortcut is taken, not only the loop


def _paths(snap: Snapshot, monkeypatch) -> tuple[object, object]:
    a = analyze(snap)
    fast = path_mod.trace_path(snap, a)
    with monkeypatch.context() as m:
        m.setattr(path_mod._Index, "best_score", lambda self, src: 4)  # look at every service, as before
        full = path_mod.trace_path(snap, a)
    return fast, full


@pytest.mark.parametrize("sample", ["seed001-flannel-containerd", "seed000-weave-docker",
                                    "live-containerd-docker-node"])
def test_path_choice_stops_early_without_changing_it(sample, monkeypatch):
    fast, full = _paths(load(ROOT / "samples" / sample), monkeypatch)
    assert fast.model_dump() == full.model_dump()
    assert fast.hops


def test_rules_alone_path_looks_at_one_endpoint(monkeypatch):
    text = gen_iptables.render(gen_iptables.bench_services(200, 3))[0]
    snap = Snapshot(nodes=[NodeSnapshot(name="node", iptables=iptables_save.parse(text).value)])
    fast, full = _paths(snap, monkeypatch)
    assert fast.model_dump() == full.model_dump()
    a = analyze(snap)
    calls = []
    real = path_mod._Index.locate

    def counting(self, ip):
        calls.append(ip)
        return real(self, ip)

    monkeypatch.setattr(path_mod._Index, "locate", counting)
    path_mod.trace_path(snap, a)
    # no pod is placed: every endpoint scores the same, the first one is the path's
    assert len(set(calls)) == 1


DNAT_EDGES = [
    "-p tcp -m tcp -j DNAT --to-destination 10.244.1.3:80",
    "-p tcp -m tcp -j DNAT --to-destination 10.244.1.3:80 --random",
    "-p tcp -j DNAT --to-destination",
    "-p tcp -j DNAT --to-destination ",
    "-p tcp -j DNAT  --to-destination  x",
    "--to-destination 1.1.1.1:1 -j DNAT --x",
    "--to-destination 1.1.1.1:1 -j DNAT --to-destination",
    "-j DNAT --to-destination 1.1.1.1:1 --to-destination 2.2.2.2:2",
    "-j DNAT",
    "-j DNAT ",
    "-m comment --comment \"-j DNAT --to-destination 9.9.9.9:9\" -j MARK",
    "-j DNAT --to-destination\t1.1.1.1:1 x",
    "",
]


def _dnat_to_padded(spec):
    """services_iptables._dnat_to as first written: ``_value`` on the padded rest."""
    k = spec.find("-j DNAT ")
    return None if k < 0 else si._value(spec[k:] + " ", " --to-destination ")


def test_dnat_destination_equals_the_padded_reading():
    specs = {r.spec for _, ipt in RULE_SETS for t in ipt.tables.values() for c in t.chains.values() for r in c.rules}
    specs.update(DNAT_EDGES)
    read = 0
    for spec in specs:
        assert si._dnat_to(spec) == _dnat_to_padded(spec), spec
        read += si._dnat_to(spec) is not None
    assert read > 100
    assert si._dnat_to("-p tcp -j DNAT --to-destination") == ""  # the option ends the rule: an empty value
