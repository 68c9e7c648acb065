"""Redacted once (#14): a snapshot is redacted when it is written, its record says so with
the fingerprint of the redaction that did it (``redact.CATALOGUE``), and a later command
loading it with the same redaction does not dump and judge the snapshot again — the file's
own text is judged once instead (``redact.note_loaded``, the backstop).

Checked: the record written by ``import`` and by ``for_storage``; the fast path taken by
``analyze``/``render``/``diff`` (counted, with the walk and the per-node judging made to
fail); a secret planted in the file after it was written, its record left claiming it is
redacted, never reaches the output; a changed catalogue, a ``--no-redact`` file and an
older file without a record are redacted as before; the outputs are byte-identical to
the ones of the judged path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labreport import redact
from labreport.redact import SCAN_STATS, for_storage
from labreport.snapshot import load as _load
from labreport.snapshot import save

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "live-containerd-docker-node" / "snapshot.json"
PROC_PW = "Plant3d-Proc-Pw77"
ENV_PW = "Plant3dEnvPw4242"


def load(d: Path, *, redacting: bool = True) -> Any:
    """As a command that redacts loads it (cli.output.load_snapshot)."""
    return _load(d, on_read=redact.note_loaded if redacting else None)


def _written(tmp_path: Path, *, redact_it: bool = True, name: str = "snap") -> Path:
    """The sample (a schema-1 file of a real node) as this version writes it."""
    d = tmp_path / name
    save(for_storage(load(SAMPLE, redacting=False), redact=redact_it), d)
    return d


def _plant(data: dict[str, Any]) -> None:
    node = data["nodes"][0]
    node["processes"].append({"pid": 61001, "user": "root", "command": f"etcd --name=m --password={PROC_PW}"})
    c = node["containers"][0]
    c.setdefault("labels", {})["example.com/note"] = f"DB_PASSWORD={ENV_PW}"


def _edit(d: Path, change: Any) -> None:
    p = d / "snapshot.json"
    data = json.loads(p.read_text("utf-8"))  # keys keep their order: schema_version first
    change(data)
    p.write_text(json.dumps(data), "utf-8")


def test_the_written_record_names_the_catalogue(tmp_path: Path, cli):
    assert redact.CATALOGUE and len(redact.CATALOGUE) == 16
    rec = json.loads((_written(tmp_path) / "snapshot.json").read_text("utf-8"))["redaction"]
    assert rec == {"mode": "on", "kinds": [], "catalogue": redact.CATALOGUE}
    off = json.loads((_written(tmp_path, redact_it=False, name="off") / "snapshot.json").read_text("utf-8"))
    assert off["redaction"]["mode"] == "off" and off["redaction"].get("catalogue") is None
    dump = tmp_path / "ipt.txt"
    dump.write_text("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n", "utf-8")
    code, _out, err = cli("import", "--iptables-save", str(dump), "--out", str(tmp_path / "imp"), "-q")
    assert code == 0, err
    rec = json.loads((tmp_path / "imp" / "snapshot.json").read_text("utf-8"))["redaction"]
    assert rec["mode"] == "on" and rec["catalogue"] == redact.CATALOGUE


def test_a_file_written_redacted_is_not_judged_again(tmp_path: Path, cli, monkeypatch):
    d = _written(tmp_path)
    snap = load(d)
    before = dict(SCAN_STATS)
    out, kinds = redact.redact_snapshot(snap)
    assert out is snap and kinds == []
    assert SCAN_STATS["noted"] == before["noted"] + 1
    assert SCAN_STATS["clean"] == before["clean"]  # no node dumped and judged

    def fail(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the loaded snapshot was judged or walked again")

    monkeypatch.setattr(redact, "_walk_snapshot", fail)
    n0 = SCAN_STATS["noted"]
    code, out_json, err = cli("analyze", str(d), "--json")
    assert code in (0, 10), err and json.loads(out_json)["nodes"]
    code, _o, err = cli("render", str(d), "--format", "md", "--out", str(tmp_path / "r"), "-q")
    assert code == 0, err
    code, _o, err = cli("diff", str(d), str(d), "--json")
    assert code in (0, 1), err
    assert SCAN_STATS["noted"] == n0 + 4  # analyze, render, both sides of diff
    # a loaded snapshot the command will not redact is not judged at load
    assert not redact._noted(load(d, redacting=False))


def test_a_secret_planted_after_writing_with_the_record_kept_is_redacted(tmp_path: Path, cli):
    d = _written(tmp_path)
    _edit(d, _plant)
    rec = json.loads((d / "snapshot.json").read_text("utf-8"))["redaction"]
    assert rec["mode"] == "on" and rec["catalogue"] == redact.CATALOGUE  # the record claims it is redacted
    snap = load(d)
    assert not redact._noted(snap)  # the backstop: the file's text is not clean
    out, kinds = redact.redact_snapshot(snap)
    text = out.model_dump_json()
    assert PROC_PW not in text and ENV_PW not in text
    assert {"cli-credential", "env-credential"} <= set(kinds)
    code, out_json, err = cli("analyze", str(d), "--json")
    assert code in (0, 10), err
    assert json.loads(out_json)["nodes"]
    assert PROC_PW not in out_json + err and ENV_PW not in out_json + err
    code, _o, err = cli("render", str(d), "--format", "md", "--out", str(tmp_path / "r"), "-q")
    assert code == 0, err
    for p in (tmp_path / "r").rglob("*"):
        if p.is_file():
            assert PROC_PW.encode() not in p.read_bytes() and ENV_PW.encode() not in p.read_bytes(), p


def test_another_catalogue_invalidates_the_record(tmp_path: Path, monkeypatch):
    d = _written(tmp_path)
    assert redact._noted(load(d))
    monkeypatch.setattr(redact, "CATALOGUE", "0123456789abcdef")  # the redaction changed since it was written
    snap = load(d)
    assert not redact._noted(snap)
    before = SCAN_STATS["clean"]
    out, _ = redact.redact_snapshot(snap)
    assert SCAN_STATS["clean"] == before + len(snap.nodes) + 1  # judged as before: each node, then the rest
    monkeypatch.setattr(redact, "CATALOGUE", None)  # unreadable source: no record is trusted
    assert not redact._noted(load(d))


@pytest.mark.parametrize("record", ["off", "none"])
def test_unredacted_or_older_files_are_redacted_as_before(tmp_path: Path, cli, record: str):
    d = _written(tmp_path, redact_it=record != "off")
    _edit(d, _plant)
    if record == "none":
        _edit(d, lambda data: data.pop("redaction"))
    assert not redact._noted(load(d))
    code, out_json, err = cli("analyze", str(d), "--json")
    assert code in (0, 10), err
    assert PROC_PW not in out_json and ENV_PW not in out_json
    code, out_json, err = cli("analyze", str(d), "--json", "--no-redact")  # kept only when asked again
    assert code in (0, 10), err
    assert PROC_PW in out_json


def test_outputs_are_byte_identical_to_the_judged_path(tmp_path: Path, cli, monkeypatch):
    d = _written(tmp_path)
    outs = []
    for catalogue in (redact.CATALOGUE, None):  # None: the record is not trusted, the snapshot judged
        monkeypatch.setattr(redact, "CATALOGUE", catalogue)
        noted = SCAN_STATS["noted"]
        code, out_json, err = cli("analyze", str(d), "--json")
        assert code in (0, 10), err
        r = tmp_path / f"r-{catalogue}"
        code, _o, err2 = cli("render", str(d), "--format", "md", "--out", str(r), "-q")
        assert code == 0, err2
        assert (SCAN_STATS["noted"] > noted) == (catalogue is not None)
        outs.append((out_json, err, (r / "report.md").read_bytes()))
    assert outs[0] == outs[1]
