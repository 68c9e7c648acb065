"""The snapshot model: round trip, unknown fields kept, JSON Schema valid, clear errors."""

from __future__ import annotations

import json

import jsonschema
import pytest

from labreport import snapshot as sm
from labreport.errors import SnapshotError


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
