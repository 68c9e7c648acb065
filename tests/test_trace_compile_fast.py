"""The trace interpreter's fast compile path (kube-proxy's regular KUBE-SVC/KUBE-SEP/KUBE-SERVICES
rule shapes, read with one regular expression) builds exactly the Rule the general token-by-token
path builds — on every iptables rule in tests/fixtures, on the generator's rules and on mutants —
and these comparisons catch a fast path that is deliberately broken."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Callable, Optional

import pytest

from labreport.analysis.trace import iptables as ipt_mod
from labreport.analysis.trace.iptables import Rule, compile_rule, compile_rule_general
from tests.support.gen_iptables import bench_services, lab_services, render

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_RULE_LINE = re.compile(r"^-A (\S+) (.*)$")


def _specs_of(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        m = _RULE_LINE.match(line.rstrip("\n"))
        if m:
            out.append(m.group(2))
    return out


def _fixture_specs() -> list[str]:
    specs: list[str] = []
    for f in sorted(FIXTURES.rglob("*")):
        if f.is_file():
            specs += _specs_of(f.read_text(encoding="utf-8", errors="replace"))
    return specs


def _generator_specs() -> list[str]:
    specs = _specs_of(render(lab_services())[0])
    specs += _specs_of(render(bench_services(40, 3))[0])
    return specs


def _mutants(specs: list[str]) -> list[str]:
    """Variations of kube-proxy's shapes near the fast path's edges: spacing, probabilities,
    IPv6, negations, odd comments, bad addresses and ports, other options."""
    out: list[str] = []
    for s in specs:
        if "KUBE-" not in s and "DNAT" not in s:
            continue
        out += [s.replace(" ", "  ", 1), s + " ", " " + s, s.replace(" -j ", "\t-j "), s.replace(" -m ", " ! -m ", 1)]
        out += [s.replace("-p tcp", "-p TCP"), s.replace("-p tcp", "-p udp"), s.replace("-m tcp", "-m udp"),
                s.replace("-p tcp", "! -p tcp"), s.replace("--dport", "! --dport")]
        for pr in ("0.5", "1", ".25", "0", "1.0000000000", "0.33333333349", "1e-3", "-0.5", "0.5.5", "nan"):
            out.append(re.sub(r"--probability \S+", f"--probability {pr}", s))
        for c in ('""', '"a b -j X"', '"! -s 1.2.3.4"', '"x\\"y"', "unquoted words", '"ns/svc:p -> [fd00::1]:80"'):
            out.append(re.sub(r'--comment "[^"]*"', f"--comment {c}", s))
        out.append(re.sub(r' -m comment --comment "[^"]*"', "", s))
        for opt in ("-j", "-s", "-d", "--to-destination", "--probability", "--dport", "-p"):  # quoted, escaped
            out.append(re.sub(rf"{opt} (\S+)", rf'{opt} "\1"', s, count=1))
            out.append(re.sub(rf"{opt} (\S)(\S*)", rf"{opt} \\\1\2", s, count=1))
        for a, b in (("10.244.", "fd00::"), ("10.244.", "010.244."), ("10.244.", "10.256."), ("/32", "/33"),
                     ("/32", ""), ("/32", "/24"), ("/32", "/0"), ("10.244.", "1,2.3.4/32,10.244."), ("/32", "/3x")):
            out.append(s.replace(a, b))
        if "--to-destination" in s:
            for to in ("[fd00::7]:8080", "fd00::7", "10.0.0.1", "10.0.0.1-10.0.0.9:80", "10.0.0.1:80-90",
                       "10.0.0.1:08080", "!", "--random", "10.0.0.1:80 --random", "10.0.0.1:80 --persistent"):
                out.append(re.sub(r"--to-destination .*$", f"--to-destination {to}", s))
            out.append(re.sub(r" --to-destination .*$", "", s))
        if "-s " in s:
            out += [s.replace("-s ", "! -s ", 1), s.replace("-s ", "--source ", 1),
                    re.sub(r"-s \S+", "-s fd00::7/128", s), re.sub(r"-s \S+", "-s ::ffff:10.0.0.1/128", s)]
        if "-d " in s:
            out += [s.replace("-d ", "! -d ", 1), re.sub(r"-d \S+", "-d fd00::1/128", s),
                    re.sub(r"-d \S+", "-d FD00::1/128", s), re.sub(r"-d \S+", "-d 10.96.0.10", s)]
        if "-j KUBE-SEP" in s or "-j KUBE-MARK" in s:
            out += [s.replace("-j ", "-g ", 1), s.replace("-j ", "--jump ", 1), s + " --to-destination 1.2.3.4:5"]
    out += [
        "! -s 10.244.0.0/16 -d 10.96.0.10/32 -p udp -m comment --comment \"kube-system/kube-dns:dns cluster IP\""
        " -m udp --dport 53 -j KUBE-MARK-MASQ",
        "-s fd00:10:244::5/128 -m comment --comment \"ns/svc:http\" -j KUBE-MARK-MASQ",
        "-p tcp -m comment --comment \"ns/svc:http\" -m tcp -j DNAT --to-destination [fd00:10:244::5]:8080",
        "-m comment --comment \"ns/svc:http -> [fd00:10:244::5]:8080\" -m statistic --mode random "
        "--probability 0.3333333333 -j KUBE-SEP-ABCDEFGHIJKLMNOP",
        "-m statistic --mode random --probability 0.5 -j KUBE-SEP-ABCDEFGHIJKLMNOP",
        "-m statistic --mode nth --every 2 --packet 0 -j KUBE-SEP-ABCDEFGHIJKLMNOP",
        "-j KUBE-SEP-ABCDEFGHIJKLMNOP", "-j DNAT --to-destination 10.0.0.1:80", "-j RETURN", "-j", "",
        "-s 10.0.0.1/32 -j KUBE-MARK-MASQ", "-d 10.0.0.1/32 -j ACCEPT", "-p sctp -m sctp --dport 9 -j DROP",
    ]
    return out


def _key(r: Rule) -> tuple[object, ...]:
    return tuple((f.name, [x.__name__ for x in r.extras] if f.name == "extras" else getattr(r, f.name))
                 for f in fields(r))


def _compare(specs: list[str], fast: Callable[[int, str], Optional[Rule]]) -> tuple[int, list[str]]:
    """(how many specs took the fast path, the specs whose fast Rule differs from the general one)."""
    hits, bad = 0, []
    for i, s in enumerate(specs):
        r = fast(i + 1, s)
        if r is None:
            continue
        hits += 1
        if r != compile_rule_general(i + 1, s):
            bad.append(s)
    return hits, bad


def test_fast_compile_equals_general_on_every_fixture_rule() -> None:
    specs = _fixture_specs()
    assert len(specs) > 500  # the iptables-save fixtures and the kube-proxy unit-test dumps
    assert any("KUBE-SEP-" in s for s in specs) and any("--probability" in s for s in specs)
    hits, bad = _compare(specs, ipt_mod._compile_fast)
    assert bad == []
    assert hits > 100  # the fast path is taken on real kube-proxy rules, not only on the generator's
    # compile_rule (fast path first) agrees with the general path on every rule; extra matches
    # are closures, compared by name (the fast path never makes one)
    assert [_key(compile_rule(i, s)) for i, s in enumerate(specs)] == [_key(compile_rule_general(i, s))
                                                                      for i, s in enumerate(specs)]


def test_fast_compile_equals_general_on_generator_rules() -> None:
    specs = _generator_specs()
    hits, bad = _compare(specs, ipt_mod._compile_fast)
    assert bad == []
    # every per-Service rule of the benchmark's rule set takes the fast path (no affinity there)
    per_svc = [s for s in _specs_of(render(bench_services(40, 3))[0])
               if "-j KUBE-SEP-" in s or "-j KUBE-SVC-" in s or "-j DNAT" in s or s.startswith("-s ")]
    assert len(per_svc) > 200 and all(ipt_mod._compile_fast(1, s) is not None for s in per_svc)
    assert hits >= len(per_svc)


def test_fast_compile_equals_general_on_mutants() -> None:
    specs = _mutants(_generator_specs()[:400] + [s for s in _fixture_specs() if "KUBE-S" in s][:200])
    assert len(specs) > 5000
    hits, bad = _compare(specs, ipt_mod._compile_fast)
    assert bad == []
    assert 1000 < hits < len(specs)  # both paths exercised
    # the general path's answer for what the fast path leaves alone is not an error for these
    assert compile_rule(1, "-s fd00::7/128 -m comment --comment \"x\" -j KUBE-MARK-MASQ").src_neg is False
    r = compile_rule(1, "! -s 10.244.0.0/16 -m comment --comment \"x\" -j KUBE-SVC-ABCDEFGHIJKLMNOP")
    assert r.src_neg is True and r.src == [(4, 0x0AF40000, 16)] and r.target == "KUBE-SVC-ABCDEFGHIJKLMNOP"


def _broken(field: str, value: object) -> Callable[[int, str], Optional[Rule]]:
    def fast(index: int, spec: str) -> Optional[Rule]:
        r = ipt_mod._compile_fast(index, spec)
        if r is not None and getattr(r, field) not in (None, False, [], {}):
            setattr(r, field, value)
        return r
    return fast


@pytest.mark.parametrize("field,value", [("prob", None), ("src_neg", False), ("dst_exact", None),
                                         ("targs", {}), ("dports", None), ("proto", "udp"), ("src", None)])
def test_a_broken_fast_path_is_caught(field: str, value: object) -> None:
    specs = _fixture_specs() + _generator_specs()
    specs += _mutants([s for s in specs if "KUBE-S" in s][:300])
    _hits, bad = _compare(specs, _broken(field, value))
    assert bad  # the corpus holds rules where this field matters


def test_a_too_loose_shape_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast shape that also took a rule with trailing target options would drop them."""
    loose = re.compile(ipt_mod._FAST_SHAPE.__self__.pattern + r"(?: \S+)*").fullmatch  # type: ignore[attr-defined]
    monkeypatch.setattr(ipt_mod, "_FAST_SHAPE", loose)
    specs = _mutants(_generator_specs()[:400])
    _hits, bad = _compare(specs, ipt_mod._compile_fast)
    assert bad


def test_net_reads_dotted_quads_like_ipaddress() -> None:
    import ipaddress
    import random

    from labreport.analysis.trace.addr import net

    rnd = random.Random(14)
    cases = ["0.0.0.0", "0.0.0.0/0", "255.255.255.255/32", "10.244.0.7/32", "1.2.3.4/33", "01.2.3.4", "1.2.3",
             "256.1.1.1", "1.2.3.4/", " 1.2.3.4", "1.2.3.4/032", "default"]
    for _ in range(3000):
        quad = ".".join(str(rnd.choice([0, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255, 256])) for _ in range(4))
        cases.append(quad + rnd.choice(["", f"/{rnd.randrange(40)}", "/0", "/08"]))
    checked = 0
    for c in cases:
        try:
            nw = ipaddress.ip_network(c.strip(), strict=False)
        except ValueError:
            continue  # (net is more lenient than ipaddress on a few: "1.2.3.4/", "/032")
        assert net(c) == (nw.version, int(nw.network_address), nw.prefixlen), c
        checked += 1
    assert checked > 1000
