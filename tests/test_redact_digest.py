"""Judged once (#14): the bytes labreport wrote after the redaction judged them are not
judged again when loaded, and a text is not judged twice while importing.

1. The digest: ``redact.for_storage`` marks the snapshot it returns, ``snapshot.save``
   records the digest of the exact bytes it writes beside the file (``.snapshot.json.digest``),
   and a command that redacts skips the backstop (``json_is_clean`` of the file's bytes) when
   the bytes read still have that digest, judged by the current catalogue. Checked: an
   unchanged file is not judged (counted, the backstop made to fail); a secret pasted into
   the file in place, its record and its digest left as they were (same size even), is
   judged and redacted in ``analyze --json`` and in a report; a missing, foreign, torn or
   other-catalogue digest means judged; ``--no-redact`` writes none (and removes an old
   one); a snapshot changed after it was judged is not sealed by its mark; BLAKE3 or, without
   the blake3 package, SHA-256; the outputs are those of the judged path, secrets and all.
2. Import: a node read from an iptables-save dump or an nft listing is judged with its long
   evidence text judged once, from its string (not found again as a literal of the node's
   JSON, decoded and judged line by line), its rule set from the same text's hot lines
   (found once for both); the result is the whole walk's, with or without secrets.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from labreport import redact, snapshot
from labreport.importer import import_files
from labreport.redact import SCAN_STATS, for_storage
from labreport.snapshot import digest_path, save
from labreport.snapshot import load as _load

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "live-containerd-docker-node" / "snapshot.json"
IPT = ROOT / "tests" / "fixtures" / "parsers" / "iptables-save" / "lab-iptables-save.txt"
NFT = ROOT / "tests" / "fixtures" / "kube-proxy-tests" / "nft-TestTracePacketV4.nft"
PW = "Pasted-Pw-7714"


def load(d: Path) -> Any:
    """As a command that redacts loads it (cli.output.load_snapshot)."""
    return _load(d, on_read=redact.note_loaded)


def _written(tmp_path: Path, name: str = "snap", *, redact_it: bool = True) -> Path:
    d = tmp_path / name
    save(for_storage(_load(SAMPLE), redact=redact_it), d)
    return d


def _no_backstop(monkeypatch: pytest.MonkeyPatch, raw: bytes) -> None:
    """json_is_clean of the file's bytes fails the test (other documents are judged as usual:
    the analysis JSON of a command is)."""
    real = redact.json_is_clean

    def spy(js: Any) -> bool:
        assert js != raw, "the file's bytes were judged again"
        return real(js)

    monkeypatch.setattr(redact, "json_is_clean", spy)


def _paste_in_place(p: Path) -> None:
    """A secret written over the snapshot's title (the report's first line) and into
    containerd's command line (the analysis lists it) in the file itself, each string
    keeping its length: the file keeps its size, its record and its sidecar; only the
    digest of its bytes tells."""
    raw = p.read_bytes()
    data = json.loads(raw)
    cmd = next(pr["command"] for pr in data["nodes"][0]["processes"] if pr["command"].startswith("containerd --config"))
    edits = [(data["title"], f"lab, mysql -uroot -p{PW} db"), (cmd, f"containerd --config x --password={PW}")]
    with open(p, "r+b") as fh:  # in place: the same file, as an editor saving over it
        for text, pasted in edits:
            old = json.dumps(text, ensure_ascii=False).encode()
            assert len(text) > len(pasted) and raw.count(old) >= 1
            new = json.dumps(pasted + " " * (len(text) - len(pasted)), ensure_ascii=False).encode()
            assert len(new) == len(old)
            fh.seek(raw.index(old))
            fh.write(new)
    assert p.stat().st_size == len(raw)


def test_save_records_the_digest_of_the_bytes_written(tmp_path: Path):
    d = _written(tmp_path)
    raw = (d / "snapshot.json").read_bytes()
    rec = json.loads(digest_path(d / "snapshot.json").read_text("utf-8"))
    assert rec["bytes"] == len(raw) and rec["judged_by"] == redact.CATALOGUE and rec["file"] == "snapshot.json"
    assert rec["digest"] == snapshot.content_digest(raw)
    assert rec["digest"].startswith("blake3:" if _has_blake3() else "sha256:")
    assert snapshot.judged_by(d / "snapshot.json", raw) == redact.CATALOGUE
    assert snapshot.judged_by(d / "snapshot.json", raw + b" ") is None
    # a .json path: the sidecar is named after it, beside it
    f = tmp_path / "other" / "x.json"
    save(for_storage(_load(SAMPLE)), f)
    assert (tmp_path / "other" / ".x.json.digest").is_file()
    assert snapshot.judged_by(f, f.read_bytes()) == redact.CATALOGUE


def _has_blake3() -> bool:
    try:
        import blake3  # noqa: F401
    except ImportError:
        return False
    return True


def test_an_unchanged_file_is_not_judged_again(tmp_path: Path, cli, monkeypatch):
    d = _written(tmp_path)
    raw = (d / "snapshot.json").read_bytes()
    _no_backstop(monkeypatch, raw)
    before = dict(SCAN_STATS)
    snap = load(d)
    assert redact._noted(snap)
    assert SCAN_STATS["sealed"] == before["sealed"] + 1
    assert SCAN_STATS["clean"] == before["clean"] and SCAN_STATS["not_clean"] == before["not_clean"]
    out, kinds = redact.redact_snapshot(snap)
    assert out is snap and kinds == []
    sealed = SCAN_STATS["sealed"]
    code, out_json, err = cli("analyze", str(d), "--json")
    assert code in (0, 10), err and json.loads(out_json)["nodes"]
    code, _o, err = cli("render", str(d), "--format", "md", "--out", str(tmp_path / "r"), "-q")
    assert code == 0, err
    assert SCAN_STATS["sealed"] == sealed + 2


def test_a_secret_pasted_in_place_with_record_and_digest_kept_is_judged_and_redacted(tmp_path: Path, cli):
    d = _written(tmp_path)
    p = d / "snapshot.json"
    sidecar = digest_path(p).read_bytes()
    _paste_in_place(p)
    assert digest_path(p).read_bytes() == sidecar  # the digest left as it was
    rec = json.loads(p.read_bytes())["redaction"]
    assert rec["mode"] == "on" and rec["catalogue"] == redact.CATALOGUE  # the record claims it is redacted
    before = dict(SCAN_STATS)
    snap = load(d)
    assert SCAN_STATS["sealed"] == before["sealed"]
    assert not redact._noted(snap)  # the backstop judged the bytes: not clean
    assert SCAN_STATS["not_clean"] > before["not_clean"]
    code, out_json, err = cli("analyze", str(d), "--json")
    assert code in (0, 10), err
    assert json.loads(out_json)["nodes"]
    assert PW not in out_json + err
    code, _o, err = cli("render", str(d), "--format", "md", "--out", str(tmp_path / "r"), "-q")
    assert code == 0, err
    for f in (tmp_path / "r").rglob("*"):
        if f.is_file():
            assert PW.encode() not in f.read_bytes(), f
    code, _o, err = cli("render", str(d), "--format", "md", "--out", str(tmp_path / "kept"), "-q", "--no-redact")
    assert code == 0, err
    assert PW in (tmp_path / "kept" / "report.md").read_text("utf-8")  # the report shows it when asked
    code, out_json, err = cli("analyze", str(d), "--json", "--no-redact")  # kept only when asked
    assert code in (0, 10), err
    assert PW in out_json


@pytest.mark.parametrize("how", ["missing", "foreign", "torn", "other-catalogue", "no-such-algorithm"])
def test_without_a_digest_of_these_bytes_the_file_is_judged(tmp_path: Path, how: str):
    d = _written(tmp_path)
    p = d / "snapshot.json"
    side = digest_path(p)
    if how == "missing":
        side.unlink()
    elif how == "foreign":  # the sidecar of another snapshot (the same size, other bytes)
        other = _written(tmp_path, "other")
        data = json.loads((other / "snapshot.json").read_bytes())
        data["title"] = "x"
        save(for_storage(snapshot.from_dict(data)), other)
        rec = json.loads(side.read_text("utf-8"))
        rec["digest"] = json.loads(digest_path(other / "snapshot.json").read_text("utf-8"))["digest"]
        side.write_text(json.dumps(rec), "utf-8")
    elif how == "torn":
        side.write_bytes(side.read_bytes()[:20])
    elif how == "other-catalogue":
        rec = json.loads(side.read_text("utf-8"))
        side.write_text(json.dumps({**rec, "judged_by": "0123456789abcdef"}), "utf-8")
    else:
        rec = json.loads(side.read_text("utf-8"))
        side.write_text(json.dumps({**rec, "digest": "md4:" + rec["digest"].split(":", 1)[1]}), "utf-8")
    before = dict(SCAN_STATS)
    snap = load(d)
    assert SCAN_STATS["sealed"] == before["sealed"]
    assert SCAN_STATS["clean"] + SCAN_STATS["not_clean"] == before["clean"] + before["not_clean"] + 1  # the backstop
    assert redact._noted(snap)  # the sample is clean: judged so, as before the digest


def test_a_digest_does_not_outlive_a_changed_catalogue(tmp_path: Path, monkeypatch):
    d = _written(tmp_path)
    monkeypatch.setattr(redact, "CATALOGUE", "0123456789abcdef")  # the redaction changed since
    before = dict(SCAN_STATS)
    assert not redact._noted(load(d))  # the record names another catalogue: walked as before
    assert SCAN_STATS["sealed"] == before["sealed"]


def test_no_redact_writes_no_digest_and_removes_an_old_one(tmp_path: Path, cli, monkeypatch):
    d = _written(tmp_path)
    assert digest_path(d / "snapshot.json").is_file()
    save(for_storage(_load(SAMPLE), redact=False), d)
    assert not digest_path(d / "snapshot.json").exists()
    assert json.loads((d / "snapshot.json").read_bytes())["redaction"]["mode"] == "off"

    def fail(*_a: Any) -> Any:
        raise AssertionError("a load that does not redact read the digest")

    monkeypatch.setattr(redact, "judged_by", fail)
    monkeypatch.setattr(snapshot, "judged_by", fail)
    code, out_json, err = cli("analyze", str(d), "--json", "--no-redact")
    assert code in (0, 10), err and json.loads(out_json)["nodes"]
    dump = tmp_path / "ipt.txt"
    dump.write_text(IPT.read_text("utf-8"), "utf-8")
    code, _o, err = cli("import", "--iptables-save", str(dump), "--out", str(tmp_path / "imp"), "-q", "--no-redact")
    assert code == 0, err
    assert not digest_path(tmp_path / "imp" / "snapshot.json").exists()


def test_a_snapshot_changed_after_it_was_judged_is_saved_without_digest(tmp_path: Path):
    snap = for_storage(_load(SAMPLE))
    save(snap, tmp_path / "a")
    assert digest_path(tmp_path / "a" / "snapshot.json").is_file()
    snap.nodes[0].processes[0].command = f"etcd --password={PW}"  # code that changed it: the mark is spent
    save(snap, tmp_path / "a")
    assert not digest_path(tmp_path / "a" / "snapshot.json").exists()
    assert not redact._noted(load(tmp_path / "a"))  # judged: not clean
    out, kinds = redact.redact_snapshot(load(tmp_path / "a"))
    assert PW not in out.model_dump_json() and "cli-credential" in kinds
    save(_load(SAMPLE), tmp_path / "b")  # never judged: no digest
    assert not digest_path(tmp_path / "b" / "snapshot.json").exists()


def test_sha256_without_the_blake3_package(tmp_path: Path, monkeypatch):
    d = _written(tmp_path, "b3")
    monkeypatch.setitem(sys.modules, "blake3", None)  # import blake3 raises ImportError
    d2 = _written(tmp_path, "sha")
    rec = json.loads(digest_path(d2 / "snapshot.json").read_text("utf-8"))
    assert rec["digest"].startswith("sha256:")
    before = SCAN_STATS["sealed"]
    assert redact._noted(load(d2)) and SCAN_STATS["sealed"] == before + 1
    if json.loads(digest_path(d / "snapshot.json").read_text("utf-8"))["digest"].startswith("blake3:"):
        clean = SCAN_STATS["clean"]
        assert redact._noted(load(d))  # a BLAKE3 digest this process cannot check: judged
        assert SCAN_STATS["sealed"] == before + 1 and SCAN_STATS["clean"] == clean + 1


def test_import_writes_the_digest_and_analyze_takes_it(tmp_path: Path, cli, monkeypatch):
    dump = tmp_path / "ipt.txt"
    dump.write_text(IPT.read_text("utf-8"), "utf-8")
    out = tmp_path / "imp"
    for _ in range(2):  # the second time over the first: the staged directory replaces both
        code, _o, err = cli("import", "--iptables-save", str(dump), "--out", str(out), "-q")
        assert code == 0, err
        raw = (out / "snapshot.json").read_bytes()
        assert snapshot.judged_by(out / "snapshot.json", raw) == redact.CATALOGUE
        assert sorted(e.name for e in out.iterdir()) == [".snapshot.json.digest", "snapshot.json"]
    code, _o, err = cli("import", "--iptables-save", str(dump), "--out", str(tmp_path / "one.json"), "-q")
    assert code == 0, err
    assert snapshot.judged_by(tmp_path / "one.json", (tmp_path / "one.json").read_bytes()) == redact.CATALOGUE
    _no_backstop(monkeypatch, raw)
    sealed = SCAN_STATS["sealed"]
    code, out_json, err = cli("analyze", str(out), "--json")
    assert code in (0, 10), err and json.loads(out_json)["nodes"]
    assert SCAN_STATS["sealed"] == sealed + 1


def _imported(kind: str, text: str) -> Any:
    return import_files([("n1", {kind: [(f"/in/{kind}.txt", text)]})], kubectl=[])


def _ipt_with_secret() -> str:
    lines = IPT.read_text("utf-8").split("\n")
    i = next(k for k, ln in enumerate(lines) if ln.startswith("-A ") and "--comment" in ln)
    lines[i] = lines[i].replace('--comment "', '--comment "token: Tok3nInAComment99 ', 1)
    return "\n".join(lines)


def _nft_with_secret() -> str:
    text = NFT.read_text("utf-8")
    i = text.index("comment \"")
    return text[:i] + 'comment "DB_PASSWORD=NftCommentPw42 ' + text[i + len('comment "'):]


CASES = [("iptables-save", lambda: IPT.read_text("utf-8")), ("iptables-save", _ipt_with_secret),
         ("nft", lambda: NFT.read_text("utf-8")), ("nft", _nft_with_secret)]


@pytest.mark.parametrize("kind,text", CASES, ids=["ipt", "ipt-secret", "nft", "nft-secret"])
def test_import_judges_each_long_text_once_with_the_walks_result(kind: str, text: Any, monkeypatch):
    text = text()
    assert len(text) > redact._BIG  # judged as a long text, by lines
    snap = _imported(kind, text)
    node = snap.nodes[0]
    ev = next(e for e in node.evidence if len(e.stdout) > redact._BIG)
    rules = node.iptables if kind == "iptables-save" else node.nftables
    assert rules is not None and rules.source_text is ev.stdout  # the rule set knows the text it was read from
    whole, whole_kinds = redact._walk_snapshot(snap)  # the reference: the whole walk
    judged: list[int] = []
    passes: list[int] = []
    real_big, real_spans = redact._Redactor._big_text, redact._hot_spans_of

    def big(self: Any, s: str) -> str:
        judged.append(len(s))
        return real_big(self, s)

    def spans(s: str) -> Any:
        passes.append(len(s))
        return real_spans(s)

    def literal(raw: bytes, *_a: Any, **_k: Any) -> bool:
        raise AssertionError("a long text was judged again as a literal of the node's JSON")

    real_literal = redact._literal_is_clean
    monkeypatch.setattr(redact._Redactor, "_big_text", big)
    monkeypatch.setattr(redact, "_hot_spans_of", spans)
    monkeypatch.setattr(redact, "_literal_is_clean",
                        lambda raw, *a, **k: literal(raw) if len(raw) > redact._BIG else real_literal(raw, *a, **k))
    redact._CLEAN_TEXTS.clear()
    redact._HOT_MEMO[:] = [None, [], None]
    out, kinds = redact.redact_snapshot(snap)
    assert kinds == whole_kinds
    assert out.model_dump_json() == whole.model_dump_json()
    secret = "Tok3nInAComment99" if kind == "iptables-save" else "NftCommentPw42"
    assert (secret in text) == bool(kinds)
    assert secret not in out.model_dump_json()
    if not kinds:
        assert out is snap
        assert judged.count(len(ev.stdout)) == 1  # the evidence text: judged once
        assert passes.count(len(ev.stdout)) == 1  # its hot lines: found once, for the rule set too
        judged.clear()
        again = for_storage(snap)  # judged again in this process (collect, a second command)
        assert again is snap and judged == []  # remembered: not judged a second time
    else:
        assert passes.count(len(ev.stdout)) == 1


def test_a_long_text_judged_clean_is_remembered_with_its_copies_only():
    text = IPT.read_text("utf-8")
    redact._CLEAN_TEXTS.clear()
    assert redact._text_is_clean(text)
    assert redact._known_clean(text) and redact._known_clean("".join(list(text)))  # a copy: the same answer
    dirty = _ipt_with_secret()
    i = text.index("\n", len(text) // 2) + 1
    pasted = "# token: Tok3nInAComment99"
    same_ends = text[:i] + pasted + text[i + len(pasted):]  # the same length and ends, other text
    assert redact._text_key(same_ends) == redact._text_key(text) and same_ends != text
    for other in (dirty, same_ends):
        assert not redact._known_clean(other)
        assert not redact._text_is_clean(other)
        out, kinds = redact.redact_value({"stdout": other})
        assert "Tok3nInAComment99" not in json.dumps(out) and kinds
