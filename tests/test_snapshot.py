"""The snapshot model: round trip, unknown fields kept, JSON Schema valid, clear errors."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest

from labreport import snapshot as sm
from labreport.errors import ParseError, SnapshotError


def _sample() -> sm.Snapshot:
    node = sm.NodeSnapshot(
        name="worker",
        processes=[sm.Process(pid=1, command="/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml")],
        containers=[sm.Container(id="abc", name="k8s_POD_pod_default_u_0", is_sandbox=True, runtime="docker")],
        netns=[
            sm.NetNamespace(
                name="node",
                kind="node",
                links=[sm.Link(ifindex=5, name="veth05dbc1b4", kind="veth", peer_ifindex=2, link_netnsid=0, master="cni0")],
                nsids={0: "cni-a4de7ab4"},
            )
        ],
        iptables=sm.Iptables(tables={"nat": sm.IptTable(name="nat", chains={"KUBE-SERVICES": sm.IptChain(name="KUBE-SERVICES")})}),
    )
    return sm.Snapshot(nodes=[node])


def test_round_trip_keeps_unknown_fields(tmp_path):
    data = json.loads(sm.dumps(_sample()))
    data["future_top"] = {"x": 1}
    data["nodes"][0]["future_node_field"] = [1, 2, 3]
    data["nodes"][0]["netns"][0]["links"][0]["future_link"] = "v"
    (tmp_path / "snapshot.json").write_text(json.dumps(data))
    snap = sm.load(tmp_path)
    sm.save(snap, tmp_path / "out")
    again = json.loads((tmp_path / "out" / "snapshot.json").read_text())
    assert again["future_top"] == {"x": 1}
    assert again["nodes"][0]["future_node_field"] == [1, 2, 3]
    assert again["nodes"][0]["netns"][0]["links"][0]["future_link"] == "v"
    assert again["nodes"][0]["netns"][0]["nsids"] == {"0": "cni-a4de7ab4"}
    assert sm.load(tmp_path / "out").nodes[0].netns[0].nsids == {0: "cni-a4de7ab4"}


def test_schema_validates_a_snapshot_and_rejects_a_bad_one():
    schema = sm.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    good = json.loads(sm.dumps(_sample()))
    jsonschema.validate(good, schema)
    bad = json.loads(sm.dumps(_sample()))
    bad["nodes"][0]["processes"][0]["pid"] = "not a pid"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_schema_command_prints_the_schema(cli):
    code, out, _ = cli("schema")
    assert code == 0
    assert json.loads(out)["title"].startswith("labreport snapshot")


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"\x00\x01\x02garbage", "not valid JSON"), (b"[1,2]", "JSON object"), (b'{"nodes": []}', "schema_version")],
)
def test_bad_snapshots_give_clear_errors(tmp_path, content, message, cli):
    (tmp_path / "snapshot.json").write_bytes(content)
    with pytest.raises(SnapshotError, match=message):
        sm.load(tmp_path)


def test_missing_snapshot(tmp_path):
    with pytest.raises(SnapshotError, match="does not exist"):
        sm.load(tmp_path / "nope")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    sm.save(_sample(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot.json"]


def test_written_files_follow_umask_and_belong_to_the_sudo_user(tmp_path, monkeypatch):
    import os
    import stat

    old = os.umask(0o022)
    try:
        sm.save(_sample(), tmp_path / "a")
        assert stat.S_IMODE((tmp_path / "a" / "snapshot.json").stat().st_mode) == 0o644
        if os.geteuid() == 0:
            monkeypatch.setenv("SUDO_UID", "65534")
            monkeypatch.setenv("SUDO_GID", "65534")
            sm.save(_sample(), tmp_path / "b")
            st = (tmp_path / "b" / "snapshot.json").stat()
            assert (st.st_uid, st.st_gid) == (65534, 65534)
            assert (tmp_path / "b").stat().st_uid == 65534
    finally:
        os.umask(old)


# --------------------------------------------------------------------------- iptables rules (schema 4, 5)


def _ipt_snapshot() -> sm.Snapshot:
    from labreport.parsers import iptables_save
    from tests.conftest import FIXTURES

    text = (FIXTURES / "parsers" / "iptables-save" / "lab-iptables-save-c.txt").read_text()
    return sm.Snapshot(nodes=[sm.NodeSnapshot(name="n", iptables=iptables_save.parse(text).value)])


def test_an_iptables_rule_is_stored_as_an_array_and_loads_as_it_was(tmp_path):
    snap = _ipt_snapshot()
    rules = [r for t in snap.nodes[0].iptables.tables.values() for c in t.chains.values() for r in c.rules]
    assert len(rules) > 10 and all(r.counters is not None for r in rules)  # iptables-save -c
    stored = json.loads(sm.dumps(snap))
    assert stored["schema_version"] == sm.SCHEMA_VERSION == 5
    chains = stored["nodes"][0]["iptables"]["tables"]["nat"]["chains"]
    first = chains["KUBE-SERVICES"]["rules"][0]
    r0 = snap.nodes[0].iptables.tables["nat"].chains["KUBE-SERVICES"].rules[0]
    assert first == [r0.spec, r0.line_no, list(r0.counters)]
    again = sm.load(sm.save(snap, tmp_path))
    assert again.nodes[0].iptables == snap.nodes[0].iptables
    got = [r for t in again.nodes[0].iptables.tables.values() for c in t.chains.values() for r in c.rules]
    assert got == rules and all(isinstance(r, sm.IptRule) and isinstance(r.counters, tuple) for r in got)


@pytest.mark.parametrize("how", ["file", "dict"])
def test_a_version_3_snapshot_with_iptables_rules_loads(tmp_path, how):
    """Version 3 stored each rule as an object ({"spec", "line_no", "counters"}); read as it
    is, straight from the file (pydantic's core) or through from_dict; written again as 4."""
    snap = _ipt_snapshot()
    data = json.loads(sm.dumps(snap))
    data["schema_version"] = 3
    for t in data["nodes"][0]["iptables"]["tables"].values():
        for c in t["chains"].values():
            c["rules"] = [{"spec": s, "line_no": n, "counters": k} for s, n, k in c["rules"]]
    c["rules"][0].pop("counters")  # a field left out: its default
    if how == "file":
        (tmp_path / "snapshot.json").write_text(json.dumps(data))
        again = sm.load(tmp_path)
    else:
        again = sm.from_dict(data)
    assert again.schema_version == sm.SCHEMA_VERSION
    want = snap.nodes[0].iptables.model_copy(deep=True)
    last = list(want.tables.values())[-1]
    ch = list(last.chains.values())[-1]
    ch.rules[0] = ch.rules[0]._replace(counters=None)
    assert again.nodes[0].iptables == want
    assert json.loads(sm.dumps(again))["nodes"][0]["iptables"] == json.loads(sm.dumps(
        sm.Snapshot(nodes=[sm.NodeSnapshot(name="n", iptables=want)])))["nodes"][0]["iptables"]


@pytest.mark.parametrize("bad", [[["-j ACCEPT", 1]], [[1, 2, None]], [["-j A", "x", None]], {"spec": ["-j A"]},
                                 [{"line_no": 3}], [["-j A", 1, [1]]]])
def test_a_malformed_iptables_rule_is_a_clear_error(bad, tmp_path):
    data = {"schema_version": sm.SCHEMA_VERSION, "nodes": [{"name": "n", "iptables": {"tables": {"nat": {
        "name": "nat", "chains": {"X": {"name": "X", "rules": bad}}}}}}]}
    with pytest.raises(SnapshotError, match="(?s)not a valid snapshot: .*chains.X.rules"):
        sm.from_dict(data)
    (tmp_path / "snapshot.json").write_text(json.dumps(data))
    with pytest.raises(SnapshotError, match="(?s)not a valid snapshot: .*chains.X.rules"):
        sm.load(tmp_path)


def test_iptables_rules_given_in_python_as_rules_or_dicts():
    ch = sm.IptChain(name="X", rules=[sm.IptRule("-j A", 3), {"spec": "-j B", "counters": [1, 2]}])
    assert ch.rules == [sm.IptRule("-j A", 3, None), sm.IptRule("-j B", None, (1, 2))]
    assert all(isinstance(r, sm.IptRule) for r in ch.rules)
    assert sm.IptChain.model_validate(ch.model_dump()) == ch
    assert sm.IptChain.model_validate_json(ch.model_dump_json()) == ch


def test_a_large_file_gives_its_freed_memory_back_after_the_load(tmp_path, monkeypatch):
    sm.release_freed_memory()  # glibc's malloc_trim here; a no-op where there is none
    calls = []
    monkeypatch.setattr(sm, "release_freed_memory", lambda: calls.append(1))
    small = sm.Snapshot(nodes=[sm.NodeSnapshot(name="n")])
    sm.load(sm.save(small, tmp_path / "small"))
    assert calls == []
    big = sm.Snapshot(nodes=[sm.NodeSnapshot(name="n", evidence=[sm.Evidence(
        id="iptables-save", command="iptables-save", stdout="-A X -j ACCEPT\n" * (sm.COMPACT_ABOVE_BYTES // 15 + 1))])])
    again = sm.load(sm.save(big, tmp_path / "big"))
    assert calls == [1] and again == big


def test_a_large_file_is_validated_with_glibc_fast_bins_off(tmp_path, monkeypatch):
    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return 1

    monkeypatch.setattr(sm, "_glibc_mallopt", lambda: mallopt)
    small = sm.Snapshot(nodes=[sm.NodeSnapshot(name="n")])
    assert sm.load(sm.save(small, tmp_path / "small")) == small
    assert calls == []
    big = sm.Snapshot(nodes=[sm.NodeSnapshot(name="n", evidence=[sm.Evidence(
        id="iptables-save", command="iptables-save", stdout="-A X -j ACCEPT\n" * (sm.COMPACT_ABOVE_BYTES // 15 + 1))])])
    assert sm.load(sm.save(big, tmp_path / "big")) == big
    assert calls == [(sm._M_MXFAST, 0), (sm._M_MXFAST, sm._DEFAULT_MXFAST)]


def test_fast_bins_are_back_after_an_error_and_untouched_when_mallopt_refuses(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(sm, "_glibc_mallopt", lambda: lambda param, value: calls.append(value) or 1)
    with pytest.raises(KeyError), sm.fastbins_off():
        raise KeyError("x")
    assert calls == [0, sm._DEFAULT_MXFAST]
    calls.clear()
    monkeypatch.setattr(sm, "_glibc_mallopt", lambda: lambda param, value: calls.append(value) and 0)
    with sm.fastbins_off():
        pass
    assert calls == [0]  # refused: nothing to restore
    calls.clear()
    with sm.fastbins_off(False):
        pass
    assert calls == []


def test_glibc_mallopt_is_not_used_when_the_environment_tunes_fast_bins(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mxfast=64")
    assert sm._glibc_mallopt() is None
    monkeypatch.delenv("GLIBC_TUNABLES")
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        glibc = None
    assert (sm._glibc_mallopt() is not None) == bool(glibc)
    with sm.fastbins_off():  # the real call, here
        assert sm.Snapshot.model_validate_json(sm.Snapshot().model_dump_json()) == sm.Snapshot()


def _nft_and_sample_files(tmp_path):
    """``(file, written here)``: a snapshot file of each nft fixture (its rule set as a
    node's, saved here), and every sample's."""
    from pathlib import Path

    from labreport.parsers import nft

    root = Path(__file__).resolve().parent.parent
    fixtures = root / "tests" / "fixtures"
    for listing in sorted([*(fixtures / "parsers" / "nft").glob("*"), *(fixtures / "kube-proxy-tests").glob("nft-*")]):
        text = listing.read_text("utf-8") if listing.suffix in (".nft", ".json") else ""
        try:
            ruleset = nft.parse(text, source=str(listing)).value
        except ParseError:
            continue  # not a listing (an expected result, a transaction)
        yield sm.save(sm.Snapshot(nodes=[sm.NodeSnapshot(name="n", nftables=ruleset)]), tmp_path / listing.name), True
    for path in sorted((root / "samples").glob("*/snapshot.json")):
        yield path, False


def test_the_json_reader_loads_what_the_python_path_does(tmp_path):
    """Every nft fixture's snapshot and every sample load from their bytes (pydantic's JSON
    reader, ``_load_current``) to the snapshot that validating their parsed JSON gives, field
    for field; one written here is written again as it was."""
    files = list(_nft_and_sample_files(tmp_path))
    assert sum(ours for _, ours in files) >= 7 and len(files) >= 10
    for path, ours in files:
        raw = path.read_bytes()
        data = json.loads(raw)
        direct = sm._load_current(raw, str(path))
        if data["schema_version"] < 3:  # an older sample: upgraded by from_dict, not read as is
            assert direct is None
            continue
        assert direct is not None, path
        checked = sm.from_dict(data, where=str(path))
        checked.schema_version = direct.schema_version
        assert direct == checked, path
        assert sm.dump_bytes(direct) == sm.dump_bytes(checked), path
        if ours:
            assert sm.dump_bytes(direct) == raw, path
            assert any(t.chains for n in direct.nodes for t in n.nftables.tables), path
