"""Property tests: every importable registered parser (iptables-save, nft and ipvsadm
included when present) is fed random text, random bytes and mutated real fixtures (lines
cut, reordered, duplicated, bytes flipped, truncated). Only ``labreport.errors.ParseError``
may escape; anything else is a bug. Results must keep the ParseResult contract.

Example counts are kept moderate so the whole file runs in well under a minute.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labreport import parsers
from labreport.errors import ParseError
from labreport.parsers.base import ParseResult
from labreport.snapshot import ParseWarning

FIXTURES = Path(__file__).resolve().parent / "fixtures"
AVAILABLE = dict(parsers.load_all())
NAMES = sorted(AVAILABLE)

# real outputs to mutate: every parser's fixtures (ours and the other owners'), small ones only
CORPUS: list[str] = []
for pattern in ("parsers/*/*.out", "seeds/*/*", "parsers/iptables-save/*.txt", "parsers/nft/*", "parsers/ipvsadm/*"):
    for p in sorted(FIXTURES.glob(pattern)):
        if p.is_file() and p.stat().st_size < 60_000 and p.suffix not in (".json", ".md", ".py"):
            try:
                CORPUS.append(p.read_text(encoding="utf-8"))
            except UnicodeDecodeError:
                continue

# the same real outputs grouped by the parser that reads them, so mutations reach deep paths
OWN: dict[str, list[str]] = {}
for _text in CORPUS:
    from labreport.importer import _detect_among

    try:
        OWN.setdefault(_detect_among(_text, NAMES), []).append(_text)
    except ParseError:
        continue

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# characters that matter to the parsers: separators, brackets, digits, hex, prompts
_ALPHABET = st.sampled_from(list("\n\n\n\t  :@<>{}[]\",=-/._#$%|0123456789abcdefABCXYZ") + ["…", "中", "\r"])
random_text = st.lists(_ALPHABET, max_size=400).map("".join) | st.text(max_size=300)


@st.composite
def mutated_fixture(draw: st.DrawFn, corpus: list[str] = CORPUS) -> str:
    text = draw(st.sampled_from(corpus))
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "reorder", "dup", "flip", "truncate", "splice"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if op == "cut":
            del lines[i]
        elif op == "reorder":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "flip" and lines[i]:
            k = draw(st.integers(0, len(lines[i]) - 1))
            ch = draw(st.characters(min_codepoint=0, max_codepoint=0x2FFF))
            lines[i] = lines[i][:k] + ch + lines[i][k + 1:]
        elif op == "truncate":
            joined = "\n".join(lines)
            cut = draw(st.integers(0, len(joined)))
            lines = joined[:cut].split("\n")
        elif op == "splice":  # a line of another output
            other = draw(st.sampled_from(CORPUS)).split("\n")
            lines.insert(i, draw(st.sampled_from(other)))
    return "\n".join(lines)


def _check(name: str, data: object) -> None:
    mod = AVAILABLE[name]
    try:
        result = mod.parse(data, source="fuzz.txt")
    except ParseError as exc:
        assert str(exc)  # a message a person can read
        return
    assert isinstance(result, ParseResult)
    assert result.value is not None
    for w in result.warnings:
        assert isinstance(w, ParseWarning) and w.line_no >= 0


def test_there_is_something_to_fuzz() -> None:
    assert len(CORPUS) >= 20
    for name in ("ps", "docker-ps", "docker-inspect", "crictl-ps", "crictl-pods", "ip-addr", "ip-route", "kubectl"):
        assert OWN.get(name), f"no real output of {name} to mutate"
    for name in ("ps", "docker-ps", "docker-inspect", "crictl-ps", "crictl-pods", "ip-addr", "ip-route", "kubectl"):
        assert name in AVAILABLE


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(text=random_text)
def test_random_text(name: str, text: str) -> None:
    _check(name, text)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.binary(max_size=600))
def test_random_bytes(name: str, data: bytes) -> None:
    _check(name, data)
    _check(name, data.decode("latin-1"))


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(text=mutated_fixture())
def test_mutated_real_outputs(name: str, text: str) -> None:
    _check(name, text)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_mutated_outputs_of_its_own_format(name: str, data: st.DataObject) -> None:
    own = OWN.get(name)
    assert own, f"no fixture detected as {name}"  # every parser has its pairs (test_parsers_fixtures)
    _check(name, data.draw(mutated_fixture(own)))


@pytest.mark.parametrize("name", NAMES)
def test_detectors_never_raise(name: str) -> None:
    detect = AVAILABLE[name].INFO.detect
    for text in CORPUS[:50] + ["", "\x00", "[", "{", "-A", "table ip x {", "1: lo:"]:
        score = detect(text)
        assert 0.0 <= float(score) <= 1.0
