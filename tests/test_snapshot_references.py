"""Schema 5: a rule set its parser read verbatim from evidence the snapshot stores unchanged
is saved as a reference to that evidence (``"tables_from": "evidence"``, no tables) and read
again from it at load (labreport.snapshot.save / load); anything else is stored as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labreport import snapshot as sm
from labreport.errors import SnapshotError
from labreport.importer import build_node
from labreport.parsers import iptables_save
from labreport.parsers import nft as nft_parser
from labreport.redact import _ipt_is_clean, for_storage
from tests.conftest import FIXTURES

IPT_DIR = FIXTURES / "parsers" / "iptables-save"
NFT_DIR = FIXTURES / "parsers" / "nft"
IPT_FILES = sorted(p for p in IPT_DIR.iterdir() if p.suffix in (".txt", ".out") and "expected" not in p.name)
NFT_FILES = sorted(NFT_DIR.glob("*.nft"))


def _imported(kind: str, path: Path) -> sm.Snapshot:
    """The snapshot ``labreport import`` writes for one file (built, then redacted for storage)."""
    return for_storage(sm.Snapshot(nodes=[build_node("n", {kind: [(str(path), path.read_text())]}, keep_going=True)]))


def _stored(target: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(target.read_text())
    return data


def _rule_sets(snap: sm.Snapshot) -> dict[str, Any]:
    n = snap.nodes[0]
    return {k: getattr(n, k) for k in ("iptables", "ip6tables", "nftables") if getattr(n, k) is not None}


def _equal_loaded(snap: sm.Snapshot, again: sm.Snapshot) -> None:
    assert again.nodes[0] == snap.nodes[0]
    for key, rs in _rule_sets(snap).items():
        back = getattr(again.nodes[0], key)
        assert back == rs and back.tables == rs.tables
        assert back.model_dump() == rs.model_dump()
    assert sm.dump_bytes(again) == sm.dump_bytes(snap)  # the full form of both: the same JSON


@pytest.mark.parametrize("path", IPT_FILES, ids=lambda p: p.name)
def test_an_imported_iptables_dump_round_trips(path: Path, tmp_path: Path) -> None:
    try:
        snap = _imported("iptables-save", path)
    except Exception as exc:  # a fixture that is not a dump at all (a JSON truth file)
        pytest.skip(f"not importable: {exc}")
    key = "ip6tables" if snap.nodes[0].ip6tables is not None else "iptables"
    rs = getattr(snap.nodes[0], key)
    if rs is None:
        pytest.skip("no rule set")
    ev = snap.nodes[0].evidence_by_id(rs.evidence_id)
    target = sm.save(snap, tmp_path)
    stored = _stored(target)["nodes"][0][key]
    verbatim = rs.source_text is not None and ev is not None and ev.stdout == rs.source_text
    assert (stored.get("tables_from") == "evidence") == verbatim
    assert ("tables" in stored) != verbatim
    if verbatim:  # the reference keeps every other field as it was
        assert {k: v for k, v in stored.items() if k != "tables_from"} == \
            json.loads(rs.model_dump_json(exclude={"tables", "tables_from"}))
    again = sm.load(target)
    _equal_loaded(snap, again)
    back = getattr(again.nodes[0], key)
    assert (back.source_text == ev.stdout) if verbatim else back.source_text is None
    if verbatim:  # the redaction judges it by its text again
        assert _ipt_is_clean(back) is not None


def test_the_fixtures_hold_both_forms(tmp_path: Path) -> None:
    """The round trip above covers references and rule sets stored whole (pasted dumps)."""
    forms = set()
    for i, path in enumerate(IPT_FILES):
        try:
            snap = _imported("iptables-save", path)
        except Exception:
            continue
        for key, _rs in _rule_sets(snap).items():
            stored = _stored(sm.save(snap, tmp_path / str(i)))["nodes"][0][key]
            forms.add(stored.get("tables_from") or "tables")
    assert forms == {"evidence", "tables"}


def test_the_benchmark_dump_is_a_reference_and_the_file_half_the_size(tmp_path: Path) -> None:
    from tests.support import gen_iptables

    gen_iptables.main(["--services", "300", "--endpoints", "2", "--out", str(tmp_path)])
    snap = _imported("iptables-save", tmp_path / "iptables-save.txt")
    target = sm.save(snap, tmp_path / "s")
    raw = target.read_bytes()
    assert b'"tables_from":"evidence"' in raw.replace(b" ", b"")
    assert len(raw) < 0.6 * len(sm.dump_bytes(snap))
    _equal_loaded(snap, sm.load(target))


def _ipt_node(text: str, *, evidence_text: str | None = None, evidence_id: str = "iptables-save") -> sm.Snapshot:
    ipt = iptables_save.parse(text).value
    ipt.evidence_id = evidence_id
    ipt.note = "shown: nf_tables"
    ev = sm.Evidence(id="iptables-save", command="iptables-save", stdout=text if evidence_text is None else evidence_text)
    return sm.Snapshot(nodes=[sm.NodeSnapshot(name="n", iptables=ipt, evidence=[ev])])


DUMP = (IPT_DIR / "lab-iptables-save.txt").read_text()


def _is_reference(snap: sm.Snapshot, tmp_path: Path) -> bool:
    stored = _stored(sm.save(snap, tmp_path))["nodes"][0]["iptables"]
    again = sm.load(tmp_path)
    _equal_loaded(snap, again)
    return bool(stored.get("tables_from") == "evidence" and "tables" not in stored)


def test_a_verbatim_rule_set_is_a_reference(tmp_path: Path) -> None:
    snap = _ipt_node(DUMP)
    assert snap.nodes[0].iptables.source_text is DUMP
    assert _is_reference(snap, tmp_path)
    assert sm.load(tmp_path).nodes[0].iptables.note == "shown: nf_tables"


def _grow(snap: sm.Snapshot) -> None:
    ch = next(c for t in snap.nodes[0].iptables.tables.values() for c in t.chains.values())
    ch.rules.append(sm.IptRule("-j ACCEPT"))


def _shrink(snap: sm.Snapshot) -> None:
    t = next(iter(snap.nodes[0].iptables.tables.values()))
    t.chains.pop(next(iter(t.chains)))


def _replace_tables(snap: sm.Snapshot) -> None:
    ipt = snap.nodes[0].iptables
    ipt.tables = dict(ipt.tables)


def _deep_copy_grown(snap: sm.Snapshot) -> None:
    """A copy, then changed (reportimport's merge of pasted pieces)."""
    snap.nodes[0].iptables = snap.nodes[0].iptables.model_copy(deep=True)
    _grow(snap)


def _other_evidence_id(snap: sm.Snapshot) -> None:
    snap.nodes[0].iptables.evidence_id = "iptables-legacy-save"


def _no_evidence_id(snap: sm.Snapshot) -> None:
    snap.nodes[0].iptables.evidence_id = None


def _evidence_text_changed(snap: sm.Snapshot) -> None:
    ev = snap.nodes[0].evidence[0]
    ev.stdout = ev.stdout.replace("ACCEPT", "ACCEPT ", 1)


def _evidence_gone(snap: sm.Snapshot) -> None:
    snap.nodes[0].evidence = []


@pytest.mark.parametrize("change", [_grow, _shrink, _replace_tables, _deep_copy_grown, _other_evidence_id, _no_evidence_id,
                                    _evidence_text_changed, _evidence_gone], ids=lambda f: f.__name__)
def test_a_rule_set_not_as_read_from_its_stored_evidence_is_stored_whole(change: Any, tmp_path: Path) -> None:
    snap = _ipt_node(DUMP)
    change(snap)
    assert not _is_reference(snap, tmp_path)


def test_a_copy_as_it_was_is_still_a_reference(tmp_path: Path) -> None:
    snap = _ipt_node(DUMP)
    snap.nodes[0].iptables = snap.nodes[0].iptables.model_copy(deep=True)
    assert _is_reference(snap, tmp_path)


def test_merged_pieces_are_stored_whole(tmp_path: Path) -> None:
    from labreport.reportimport.assemble import merge_iptables

    first = iptables_save.parse(DUMP).value
    second = iptables_save.parse("*nat\n:KUBE-EXTRA - [0:0]\n-A KUBE-EXTRA -j ACCEPT\nCOMMIT\n").value
    merged = merge_iptables([("a", first), ("b", second)], [])
    merged.evidence_id = "iptables-save"
    snap = sm.Snapshot(nodes=[sm.NodeSnapshot(name="n", iptables=merged, evidence=[
        sm.Evidence(id="iptables-save", command="iptables-save", stdout=DUMP)])])
    assert merged.source_text is None
    assert not _is_reference(snap, tmp_path)
    assert sm.load(tmp_path).nodes[0].iptables.tables["nat"].chains["KUBE-EXTRA"].rules


def test_a_pasted_or_python_rule_set_is_stored_whole(tmp_path: Path) -> None:
    pasted = (IPT_DIR / "seed000-q8.pasted.txt").read_text()
    assert iptables_save.parse(pasted).value.source_text is None  # read by the line-by-line reader
    assert not _is_reference(_ipt_node(pasted), tmp_path / "a")
    built = sm.Iptables(evidence_id="iptables-save", tables={"nat": sm.IptTable(name="nat", chains={
        "X": sm.IptChain(name="X", rules=[sm.IptRule("-j ACCEPT", 1)])})})
    snap = sm.Snapshot(nodes=[sm.NodeSnapshot(name="n", iptables=built, evidence=[
        sm.Evidence(id="iptables-save", command="iptables-save", stdout="*nat\n:X - [0:0]\n-A X -j ACCEPT\nCOMMIT\n")])])
    assert not _is_reference(snap, tmp_path / "b")


def test_a_rule_set_the_redaction_changed_is_stored_whole(tmp_path: Path) -> None:
    secret = DUMP.replace("COMMIT", '-A INPUT -m comment --comment "password=hunter2hunter2" -j ACCEPT\nCOMMIT', 1)
    snap = for_storage(_ipt_node(secret))
    assert "hunter2hunter2" not in sm.dumps(snap)
    target = sm.save(snap, tmp_path)
    stored = _stored(target)["nodes"][0]["iptables"]
    assert stored.get("tables_from") is None and stored["tables"]
    assert b"hunter2hunter2" not in target.read_bytes()
    _equal_loaded(snap, sm.load(target))


def test_ip6tables_is_a_reference_too(tmp_path: Path) -> None:
    text = DUMP.replace("# Generated by iptables", "# Generated by ip6tables", 1)
    ipt = iptables_save.parse(text).value
    ipt.family, ipt.evidence_id = "ipv6", "ip6tables-save"
    snap = sm.Snapshot(nodes=[sm.NodeSnapshot(name="n", ip6tables=ipt, evidence=[
        sm.Evidence(id="ip6tables-save", command="ip6tables-save", stdout=text)])])
    stored = _stored(sm.save(snap, tmp_path))["nodes"][0]["ip6tables"]
    assert stored["tables_from"] == "evidence" and stored["family"] == "ipv6" and "tables" not in stored
    _equal_loaded(snap, sm.load(tmp_path))


# --------------------------------------------------------------------------- nft


@pytest.mark.parametrize("path", NFT_FILES, ids=lambda p: p.name)
def test_nft_is_stored_whole_and_a_written_nft_reference_reads_back(path: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    snap = _imported("nft", path)
    rs = snap.nodes[0].nftables
    if rs is None:
        pytest.skip("not a listing (nft -f input)")
    assert rs.source_text is not None
    stored = _stored(sm.save(snap, tmp_path / "a"))["nodes"][0]["nftables"]
    assert stored.get("tables_from") is None and "tables" in stored  # nft: not written as a reference (measured)
    _equal_loaded(snap, sm.load(tmp_path / "a"))
    # a file that does hold one (a later labreport may write them) reads back the same
    monkeypatch.setattr(sm, "_WRITTEN_AS_REFERENCES", ("iptables", "ip6tables", "nftables"))
    stored = _stored(sm.save(snap, tmp_path / "b"))["nodes"][0]["nftables"]
    assert stored["tables_from"] == "evidence" and "tables" not in stored
    again = sm.load(tmp_path / "b")
    _equal_loaded(snap, again)
    assert again.nodes[0].nftables.source_text == snap.nodes[0].evidence_by_id(rs.evidence_id).stdout


def test_nft_parser_marks_text_only() -> None:
    text = (NFT_DIR / "kube-proxy-lab.nft").read_text()
    assert nft_parser.parse(text).value.source_text is text
    assert nft_parser.parse((NFT_DIR / "kube-proxy-lab.json").read_text()).value.source_text is None


# --------------------------------------------------------------------------- versions, hostile files


def test_a_version_4_snapshot_loads_as_it_did(tmp_path: Path) -> None:
    snap = _ipt_node(DUMP)
    data = json.loads(sm.dump_bytes(snap))  # the full form, as version 4 wrote it
    assert "tables" in data["nodes"][0]["iptables"]
    data["schema_version"] = 4
    (tmp_path / "snapshot.json").write_text(json.dumps(data))
    for again in (sm.load(tmp_path), sm.from_dict(json.loads(json.dumps(data)))):
        assert again.schema_version == sm.SCHEMA_VERSION == 5
        _equal_loaded(snap, again)


def test_an_older_reader_refuses_the_new_files(tmp_path: Path) -> None:
    raw = sm.save(_ipt_node(DUMP), tmp_path).read_bytes()
    assert json.loads(raw)["schema_version"] == 5
    doc = json.loads(raw)
    doc["schema_version"] = 6
    with pytest.raises(SnapshotError, match="newer than this labreport reads"):
        sm.from_dict(doc)


def _reference_doc(tmp_path: Path) -> dict[str, Any]:
    return _stored(sm.save(_ipt_node(DUMP), tmp_path / "orig"))


def _drop_evidence(doc: dict[str, Any]) -> None:
    doc["nodes"][0]["evidence"] = []


def _rename_evidence(doc: dict[str, Any]) -> None:
    doc["nodes"][0]["iptables"]["evidence_id"] = "nothing-of-that-id"


def _null_evidence_id(doc: dict[str, Any]) -> None:
    doc["nodes"][0]["iptables"]["evidence_id"] = None


def _empty_text(doc: dict[str, Any]) -> None:
    doc["nodes"][0]["evidence"][0]["stdout"] = ""


def _text_not_rules(doc: dict[str, Any]) -> None:
    doc["nodes"][0]["evidence"][0]["stdout"] = "hello\nthis is not a dump\n"


def _binary_text(doc: dict[str, Any]) -> None:
    doc["nodes"][0]["evidence"][0]["stdout"] = "\x00\x01\x02" * 1000


def _both_forms(doc: dict[str, Any]) -> None:
    doc["nodes"][0]["iptables"]["tables"] = {"nat": {"name": "nat", "chains": {}}}


@pytest.mark.parametrize("damage,message", [
    (_drop_evidence, "which the node does not hold"), (_rename_evidence, "which the node does not hold"),
    (_null_evidence_id, "which the node does not hold"), (_empty_text, "which the node does not hold"),
    (_text_not_rules, "does not read as its rules"), (_binary_text, "does not read as its rules"),
    (_both_forms, "a snapshot says one or the other")], ids=lambda x: getattr(x, "__name__", ""))
def test_a_damaged_reference_is_a_clear_error(damage: Any, message: str, tmp_path: Path) -> None:
    doc = _reference_doc(tmp_path)
    damage(doc)
    (tmp_path / "snapshot.json").write_text(json.dumps(doc))
    with pytest.raises(SnapshotError, match=f"node 'n': iptables.*{message}"):
        sm.load(tmp_path)
    with pytest.raises(SnapshotError, match=message):
        sm.from_dict(doc)


def test_an_unknown_tables_from_is_not_valid(tmp_path: Path) -> None:
    doc = _reference_doc(tmp_path)
    doc["nodes"][0]["iptables"]["tables_from"] = "somewhere-else"
    with pytest.raises(SnapshotError, match="(?s)not a valid snapshot: .*tables_from"):
        sm.from_dict(doc)


def test_an_edited_text_that_still_parses_gives_its_rules(tmp_path: Path) -> None:
    """The evidence is the fact: its rules are what it says, never empty tables."""
    doc = _reference_doc(tmp_path)
    doc["nodes"][0]["evidence"][0]["stdout"] = "*nat\n:KUBE-X - [0:0]\n-A KUBE-X -j ACCEPT\nCOMMIT\n"
    (tmp_path / "snapshot.json").write_text(json.dumps(doc))
    ipt = sm.load(tmp_path).nodes[0].iptables
    assert [r.spec for r in ipt.tables["nat"].chains["KUBE-X"].rules] == ["-j ACCEPT"]


def test_the_json_schema_describes_the_reference() -> None:
    schema = sm.json_schema()
    assert "schema_version 5" in schema["title"]
    for name in ("Iptables", "NftRuleset"):
        prop = schema["$defs"][name]["properties"]["tables_from"]
        assert "evidence" in json.dumps(prop) and "evidence_id" in prop.get("description", "")


def _mutants(text: str, n: int) -> list[str]:
    """Hand edits and damage: cuts, lines dropped or doubled, bytes replaced, quotes and
    whitespace put in (deterministic)."""
    import random

    rnd = random.Random(14)
    lines = text.split("\n")
    out = [text[: rnd.randrange(len(text))] for _ in range(n // 4)]
    for _ in range(n - len(out)):
        ls = list(lines)
        i = rnd.randrange(len(ls))
        how = rnd.randrange(5)
        if how == 0:
            del ls[i]
        elif how == 1:
            ls.insert(i, ls[i])
        elif how == 2:
            ls[i] = ls[i][: rnd.randrange(len(ls[i]) + 1)] + rnd.choice(['"', "\t", "  ", "\\", "\x00", "é", "-c 1 2 "])
        elif how == 3:
            ls[i] = "COMMIT" if rnd.random() < 0.5 else "*nat"
        else:
            ls = ls[i:]
        out.append("\n".join(ls))
    return out


def test_damaged_evidence_texts_load_or_fail_clearly(tmp_path: Path) -> None:
    """A reference's text edited by hand: its rules are what the parser reads from it (the
    same as importing that text), or a SnapshotError; never a traceback."""
    doc = _reference_doc(tmp_path)
    loaded = failed = 0
    for text in _mutants(DUMP, 80):
        doc["nodes"][0]["evidence"][0]["stdout"] = text
        try:
            snap = sm.from_dict(json.loads(json.dumps(doc)))
        except SnapshotError as exc:
            assert "iptables" in str(exc)
            failed += 1
            continue
        loaded += 1
        try:
            want = iptables_save.parse(text).value.tables
        except Exception:  # the text reads at load only if it reads at import
            raise AssertionError("loaded a text the parser refuses") from None
        assert snap.nodes[0].iptables.tables == want
    assert loaded > 40
