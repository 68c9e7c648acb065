"""`labreport import` on the seed reports' real outputs (Q2 ps, Q3/Q5 docker ps and crictl
ps, Q6 ip addr on both sides), and on bad input: random bytes, an empty file, a truncated
file — each a clear message and a non-zero exit (or a result marked partial), never a
traceback. Runs main([...]) in-process (the `cli` fixture of conftest)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labreport import snapshot as snapmod
from labreport.importer import build_node, import_files
from labreport.status import ExitStatus

SEEDS = Path(__file__).resolve().parent / "fixtures" / "seeds"
S0 = SEEDS / "seed000"
S1 = SEEDS / "seed001"
IPT = Path(__file__).resolve().parent / "fixtures" / "parsers" / "iptables-save"


def _load(out: Path) -> snapmod.Snapshot:
    return snapmod.load(out)


def test_q2_ps_on_both_nodes(cli, tmp_path):
    out = tmp_path / "snap"
    code, _, err = cli("import", "--node", "k8s-master", "--ps", S1 / "master-ps-aux-grep-kube.txt",
                       "--node", "k8s-worker", "--ps", S1 / "worker-ps-aux-grep-kube.txt", "--out", out)
    assert code == 0, err
    snap = _load(out)
    master, worker = snap.nodes
    assert (master.name, worker.name) == ("k8s-master", "k8s-worker")
    assert master.source == "import"
    assert [p.pid for p in master.processes] == [5047, 5053, 5081, 5089, 5171, 5292, 6111, 17637]
    assert [p.pid for p in worker.processes] == [4955, 5104, 5444, 14679]
    assert worker.processes[0].command.startswith("/usr/bin/kubelet --bootstrap-kubeconfig=")
    (ev,) = master.evidence
    assert (ev.id, ev.origin, ev.command) == ("ps", "import", "ps aux | grep kube")
    assert ev.path == str(S1 / "master-ps-aux-grep-kube.txt")
    assert ev.stdout == (S1 / "master-ps-aux-grep-kube.txt").read_text()
    assert master.warnings == [] and worker.warnings == []
    assert "node k8s-master: 8 processes" in err and "snapshot written" in err


def test_q3_q5_docker_ps_before_and_after_on_seed000(cli, tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    assert cli("import", "--node", "master", "--containers", S0 / "master-docker-ps.txt",
               "--node", "worker", "--containers", S0 / "worker-docker-ps-before.txt", "--out", before)[0] == 0
    code, _, err = cli("import", "--node", "worker", "--containers", S0 / "worker-docker-ps-after-new.txt",
                       "--inspect", f"k8s_viewer_pod_default_05260c21-c524-41c7-82e7-ea61f09f4f2f_0="
                       f"{S0 / 'worker-docker-inspect-networkmode.wrapped.txt'}", "--out", after)
    assert code == 0, err
    master = _load(before).node("master")
    assert len(master.containers) == 10
    assert sum(c.is_sandbox for c in master.containers) == 5
    assert {c.runtime for c in master.containers} == {"docker"}
    assert {c.pod_name for c in master.containers if not c.is_sandbox} == {
        "kube-proxy-j85j9", "kube-controller-manager-master", "kube-scheduler-master",
        "kube-apiserver-master", "etcd-master"}
    worker = _load(after).node("worker")
    by_name = {c.container_name: c for c in worker.containers}
    assert set(by_name) == {"downloader", "viewer", "POD"}
    assert by_name["POD"].is_sandbox and by_name["POD"].sandbox_id == "23f2f68378cc"
    # the grep fragment was merged into the viewer row of docker ps, not added as a 4th container
    assert len(worker.containers) == 3
    assert by_name["viewer"].network_mode == (
        "container:23f2f68378cc2b4f42d9f01845882040e7390b84736c7e05196fafb55f1fed72")
    assert by_name["viewer"].network_mode.split(":", 1)[1].startswith(by_name["POD"].id)
    assert [e.id for e in worker.evidence] == ["docker-ps", "docker-inspect"]
    assert worker.evidence[1].command == "docker inspect k8s_viewer_pod_default_05260c21-c524-41c7-82e7-ea61f09f4f2f_0"


def test_q3_q5_crictl_ps_on_seed001(cli, tmp_path):
    out = tmp_path / "snap"
    code, _, err = cli("import", "--node", "k8s-master", "--ps", S1 / "master-ps-aux-grep-kube.txt",
                       "--containers", S1 / "master-crictl-ps.txt",
                       "--node", "k8s-worker", "--containers", S1 / "worker-crictl-ps-after.txt", "--out", out)
    assert code == 0, err
    snap = _load(out)
    master, worker = snap.node("k8s-master"), snap.node("k8s-worker")
    # two containers are both named "coredns": CRI names are not unique, nothing merged
    assert [c.name for c in master.containers].count("coredns") == 2 and len(master.containers) == 8
    # the master's ps shows containerd's socket in kubelet's flags: crictl answered from containerd
    assert {c.runtime for c in master.containers} == {"containerd"}
    assert {c.runtime for c in worker.containers} == {"unknown"}  # no ps given for the worker
    pod = [c for c in worker.containers if c.pod_name == "testpod"]
    assert {c.name for c in pod} == {"downloader", "fileserver"}
    assert {c.sandbox_id for c in pod} == {"e6cf53e8a57e5"}
    assert not any(c.is_sandbox for c in worker.containers)  # crictl ps lists no sandboxes
    assert worker.evidence[0].id == "crictl-ps" and worker.evidence[0].command == "crictl ps"


def test_q5_ctr_shows_the_sandboxes_crictl_ps_hides(cli, tmp_path):
    """Seed 001's student found the pause containers with `ctr -n k8s.io c ls`."""
    out = tmp_path / "snap"
    code, _, err = cli("import", "--node", "k8s-worker", "--containers", S1 / "worker-crictl-ps-after.txt",
                       "--containers", S1 / "worker-ctr-c-ls.txt", "--out", out)
    assert code == 0, err
    node = _load(out).node("k8s-worker")
    assert [e.id for e in node.evidence] == ["crictl-ps", "ctr-containers"]
    assert node.evidence[1].command == "ctr -n k8s.io c ls"
    sandboxes = [c for c in node.containers if c.is_sandbox]
    assert len(sandboxes) == 4 and all("pause" in c.image for c in sandboxes)
    # ctr rows whose id extends a crictl ps id are the same container: merged, names kept
    flannel = [c for c in node.containers if c.id.startswith("bb972fdbafef5")]
    assert len(flannel) == 1 and flannel[0].name == "kube-flannel" and len(flannel[0].id) == 64
    # the flannel pod's POD ID is a prefix of one pause row: that sandbox gets the pod's name
    (sb,) = [c for c in sandboxes if c.id.startswith("afaf811d1728a")]
    assert sb.pod_name == "kube-flannel-ds-22x65" and sb.sandbox_of == "crictl ps POD ID prefix"
    # the student's c541c7c7… vs crictl's c541c7cf… differ (a typo in the report): not tied
    assert [c.pod_name for c in sandboxes if c.id.startswith("c541c7c7")] == [None]
    assert {c.runtime for c in node.containers} == {"containerd"}


def _q6(cli, tmp_path, pod_ns_name: str) -> snapmod.NodeSnapshot:
    out = tmp_path / pod_ns_name
    code, _, err = cli("import", "--node", "k8s-worker", "--ip-link", S1 / "worker-ip-link-grep.txt",
                       "--ip-addr", S1 / "worker-ip-addr.txt",
                       "--pod-ip-addr", f"{pod_ns_name}={S1 / 'pod-ip-addr.txt'}", "--out", out)
    assert code == 0, err
    return _load(out).node("k8s-worker")


def test_q6_ip_addr_on_both_sides_tied_by_peer_indexes(cli, tmp_path):
    node = _q6(cli, tmp_path, "testpod")
    host, pod = node.netns
    assert (host.kind, host.name, pod.kind, pod.name) == ("node", "host", "named", "testpod")
    assert [lk.name for lk in host.links] == ["lo", "eth0", "flannel.1", "cni0", "veth05dbc1b4"]
    veth = host.links[-1]
    # ip link (grep) and ip addr merged: one veth with the link facts and the address
    assert (veth.ifindex, veth.peer_ifindex, veth.master) == (5, 2, "cni0")
    assert veth.link_netns == "cni-a4de7ab4-a30f-f2fc-e527-9f01229125dc"
    assert [a.local for a in veth.addresses] == ["fe80::2a:2dff:fe32:529a"]
    eth0 = pod.links[1]
    assert (eth0.name, eth0.ifindex, eth0.peer_ifindex, eth0.link_netnsid) == ("eth0", 2, 5, 0)
    assert [a.local for a in eth0.addresses if a.family == "inet"] == ["10.244.1.2"]
    # tied: each side's peer index is the other's index; the host side names the netns
    assert pod.nsids == {0: "host"}
    assert pod.tied_by == "peer ifindex pair" and pod.host_link == "veth05dbc1b4"
    assert pod.netns_name == "cni-a4de7ab4-a30f-f2fc-e527-9f01229125dc"
    assert pod.path == "/var/run/netns/cni-a4de7ab4-a30f-f2fc-e527-9f01229125dc"
    assert [e.id for e in node.evidence] == ["ip-link", "ip-addr", "ip-addr:testpod"]
    assert node.evidence[2].command == "ip addr"  # typed at the pod's prompt


def test_q6_pod_namespace_named_like_the_host_veth_says(cli, tmp_path):
    node = _q6(cli, tmp_path, "cni-a4de7ab4-a30f-f2fc-e527-9f01229125dc")
    pod = node.netns[1]
    assert pod.tied_by == "link-netns name" and pod.nsids == {0: "host"}
    assert not hasattr(pod, "netns_name") or pod.netns_name is None


def test_veth_pair_by_indexes_and_ambiguity_is_not_guessed():
    """A Docker-style host veth (link-netnsid, no name) pairs with a pasted pod by the index
    pair; two pasted pods that both fit the same host veth are left untied, with a warning."""
    host = (S1 / "worker-ip-addr.txt").read_text()
    extra = ("6: veth0000beef@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue master cni0 state UP group default\n"
             "    link/ether 02:2a:2d:32:52:9b brd ff:ff:ff:ff:ff:ff link-netnsid 1\n")
    pod = (S1 / "pod-ip-addr.txt").read_text().replace("eth0@if5", "eth0@if6")
    node = build_node("w", {"ip-addr": [("h.txt", host + extra)], "pod-ip-addr:p": [("p.txt", pod)]})
    p = node.netns[1]
    assert (p.tied_by, p.host_link, p.nsids) == ("peer ifindex pair", "veth0000beef", {0: "host"})
    assert node.netns[0].nsids == {1: "p"}  # the host veth states link-netnsid 1
    assert p.path is None  # no link-netns name printed: nothing to say where it is bound

    node2 = build_node("w", {"ip-addr": [("h.txt", host + extra)], "pod-ip-addr:p": [("p.txt", pod)],
                             "pod-ip-addr:q": [("q.txt", pod)]})
    assert [getattr(ns, "tied_by", None) for ns in node2.netns[1:]] == [None, None]
    assert node2.netns[0].nsids == {}
    assert any("cannot tell which one" in w.message for w in node2.warnings)

    node3 = build_node("w", {"ip-addr": [("h.txt", host)],
                             "pod-ip-addr:p": [("p.txt", pod.replace("eth0@if6", "eth0@if7"))]})
    assert getattr(node3.netns[1], "tied_by", None) is None  # no host link 7: no pair


def test_kubectl_manifests_go_to_the_cluster_sorted_by_kind(cli, tmp_path):
    out = tmp_path / "snap"
    code, _, err = cli("import", "--kubectl", S0 / "service.yaml", "--kubectl", S0 / "pod.yaml",
                       "--kubectl", S0 / "deployment.yaml", "--kubectl", S1 / "pod-and-service.yaml",
                       "--kubectl", S1 / "test_hpa.yaml", "--title", "seed manifests", "--out", out)
    assert code == 0, err
    snap = _load(out)
    c = snap.cluster
    assert c.source == "import" and snap.title == "seed manifests"
    assert [p["metadata"]["name"] for p in c.pods] == ["pod", "testpod"]
    assert [s["metadata"]["name"] for s in c.services] == ["service", "test-service"]
    assert [d["metadata"]["name"] for d in c.deployments] == ["deployment"]
    assert [h["spec"]["maxReplicas"] for h in c.hpas] == [6]
    assert "cluster objects:" in err


def test_options_without_node_go_to_one_node_named_node(cli, tmp_path):
    out = tmp_path / "snap"
    assert cli("import", "--ps", S1 / "worker-ps-aux-grep-kube.txt", "--out", out)[0] == 0
    assert [n.name for n in _load(out).nodes] == ["node"]


def test_warnings_are_counted_per_file(cli, tmp_path):
    f = tmp_path / "ps.txt"
    f.write_text((S1 / "worker-ps-aux-grep-kube.txt").read_text() + "root 99 oops\nroot 98 also bad\n")
    out = tmp_path / "snap"
    code, _, err = cli("import", "--ps", f, "--out", out)
    assert code == 0
    assert f"2 lines not understood in {f} (see snapshot warnings)" in err
    node = _load(out).nodes[0]
    assert [(w.line_no, w.source) for w in node.warnings] == [(6, str(f)), (7, str(f))]


def test_iptables_save_goes_through_the_registry(cli, tmp_path):
    src = IPT / "lab-iptables-save.txt"
    out = tmp_path / "snap"
    code, _, err = cli("import", "--node", "m", "--iptables-save", src, "--out", out)
    assert code == 0, err
    node = _load(out).node("m")
    assert node.iptables is not None and "nat" in node.iptables.tables
    assert node.iptables.evidence_id == "iptables-save" == node.evidence[0].id


def test_a_registered_parser_module_that_is_missing_is_a_bug_said_clearly(cli, tmp_path, monkeypatch):
    # issue #10 item 3: every parser is part of labreport; a missing one is an internal
    # error that names the module (not a file the user gave wrongly), still no traceback
    from labreport import parsers

    monkeypatch.setitem(parsers.PARSERS, "nft", "labreport.parsers.not_written_yet")
    f = tmp_path / "ruleset.txt"
    f.write_text("table ip kube-proxy {\n}\n")
    code, _, err = cli("import", "--nft", f, "--out", tmp_path / "snap")
    assert code != 0 and code != ExitStatus.PARSE_ERROR
    assert "internal error" in err and "labreport.parsers.not_written_yet" in err and "this is a bug" in err
    assert "Traceback" not in err and not (tmp_path / "snap" / "snapshot.json").exists()


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("content,what", [
    (os.urandom(2048) + b"\x00" + os.urandom(64), "binary"),
    (b"", "empty"),
    (b"   \n\n", "empty"),
])
@pytest.mark.parametrize("option", ["--ps", "--containers", "--ip-addr", "--kubectl", "--inspect"])
def test_unreadable_file_is_a_clear_error(cli, tmp_path, content, what, option):
    f = tmp_path / "pasted.txt"
    f.write_bytes(content)
    out = tmp_path / "snap"
    code, stdout, err = cli("import", option, f, "--out", out)
    assert code == ExitStatus.PARSE_ERROR
    assert str(f) in err and what in err
    assert "Traceback" not in err + stdout
    assert not (out / "snapshot.json").exists()


def test_random_text_that_is_no_known_output(cli, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("经过整理，得到下表：\n由于理解有限，一些东西不知道如何准确表达。\n" * 5, encoding="utf-8")
    for option in ("--ps", "--containers", "--ip-route"):
        code, _, err = cli("import", option, f, "--out", tmp_path / "snap")
        assert code == ExitStatus.PARSE_ERROR and str(f) in err and "Traceback" not in err


def test_a_file_given_to_the_wrong_option_says_which_option_fits(cli, tmp_path):
    code, _, err = cli("import", "--ps", S1 / "worker-crictl-ps-after.txt", "--out", tmp_path / "snap")
    assert code == ExitStatus.PARSE_ERROR
    assert "it looks like crictl-ps output: give it with --containers" in err
    code, _, err = cli("import", "--containers", S1 / "worker-ip-addr.txt", "--out", tmp_path / "snap")
    assert code == ExitStatus.PARSE_ERROR and "give it with --ip-addr" in err


def test_truncated_json_is_a_clear_error(cli, tmp_path):
    full = (Path(__file__).resolve().parent / "fixtures/parsers/docker-inspect/here-docker-inspect-pod.out").read_text()
    f = tmp_path / "inspect.json"
    f.write_text(full[: len(full) // 2])
    code, _, err = cli("import", "--inspect", f, "--out", tmp_path / "snap")
    assert code == ExitStatus.PARSE_ERROR and str(f) in err and "not valid JSON" in err
    assert "Traceback" not in err


def test_truncated_text_keeps_what_it_can_and_marks_the_rest(cli, tmp_path):
    full = (S1 / "master-ps-aux-grep-kube.txt").read_text()
    cut = full[: full.index("root    5292") + len("root    5292  0.0  1.2")]
    f = tmp_path / "ps.txt"
    f.write_text(cut)
    out = tmp_path / "snap"
    code, _, err = cli("import", "--ps", f, "--out", out)
    assert code == 0
    node = _load(out).nodes[0]
    assert [p.pid for p in node.processes] == [5047, 5053, 5081, 5089, 5171]
    assert len(node.warnings) == 1 and node.warnings[0].line_no == 7
    assert "1 line not understood" in err


def test_keep_going_marks_the_node_partial(cli, tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(os.urandom(512) + b"\x00")
    out = tmp_path / "snap"
    code, _, err = cli("import", "--node", "w", "--ps", S1 / "worker-ps-aux-grep-kube.txt",
                       "--containers", bad, "--keep-going", "--out", out)
    assert code == ExitStatus.PARTIAL
    node = _load(out).node("w")
    assert node.status == "partial" and str(bad) in node.error
    assert len(node.processes) == 4
    assert "Traceback" not in err and "is partial" in err


def test_missing_file_and_bad_arguments(cli, tmp_path):
    code, _, err = cli("import", "--ps", tmp_path / "nope.txt", "--out", tmp_path / "s")
    assert code == ExitStatus.PARSE_ERROR and "no such file" in err
    assert cli("import", "--ps", S1 / "worker-ps-aux-grep-kube.txt")[0] == ExitStatus.USAGE  # no --out
    assert cli("import", "--bogus", "x", "--out", tmp_path / "s")[0] == ExitStatus.USAGE
    assert cli("import", "--pod-ip-addr", "nofile", "--out", tmp_path / "s")[0] == ExitStatus.USAGE
    assert cli("import", "--node", "a", "--node", "b", "--ps", S1 / "worker-ps-aux-grep-kube.txt",
               "--out", tmp_path / "s")[0] == ExitStatus.USAGE  # node a has no files


def test_utf16_paste_from_windows_is_read(tmp_path):
    from labreport.importer import read_file

    f = tmp_path / "ps.txt"
    f.write_bytes((S1 / "worker-ps-aux-grep-kube.txt").read_text().encode("utf-16"))
    snap = import_files([("w", {"ps": [(str(f), read_file(str(f)))]})])
    assert len(snap.nodes[0].processes) == 4


def test_first_lines_are_those_of_a_split():
    from labreport.importer import command_from_paste, first_lines

    for text in ("", "a", "a\n", "a\nb", "\n\n\n", "x\n" * 60, "x\n" * 49 + "y", "x\n" * 50 + "z"):
        for n in (0, 1, 2, 50):
            assert list(first_lines(text, n)) == text.split("\n")[:n], (text, n)
    dump = "-A X -j ACCEPT\n" * 100
    assert command_from_paste("root@master:~# iptables-save | grep svc\n" + dump) == "iptables-save | grep svc"
    assert command_from_paste("x\n" * 50 + "root@master:~# iptables-save\n" + dump) is None  # past line 50


def test_read_file_gives_the_whole_file_in_one_read_or_by_chunks(tmp_path, monkeypatch):
    """A regular file is read in one read of its size (no chunks joined), a file whose size
    the system does not give (a pipe, a device) by chunks: the same text either way, up to
    the limit; an empty file, whitespace only or NUL bytes at the start are refused."""
    from labreport import importer
    from labreport.importer import ImportFileError

    body = "".join(f"-A KUBE-SVC-{i:05d} -j KUBE-SEP-{i:05d}\n" for i in range(40000))  # ~1.4 MB
    f = tmp_path / "dump.txt"
    f.write_text(body)
    whole = importer.read_file(str(f))
    monkeypatch.setattr(importer, "_size_of", lambda _fh: 0)  # as for a pipe: 1 MiB chunks
    assert importer.read_file(str(f)) == whole == body
    monkeypatch.setattr(importer, "_size_of", lambda _fh: 10)  # a size that is wrong: still all of it
    assert importer.read_file(str(f)) == body
    monkeypatch.undo()
    with pytest.raises(ImportFileError, match="input limit"):
        importer.read_file(str(f), max_size=len(body) - 1)
    assert importer.read_file(str(f), max_size=len(body)) == body
    for data, why in ((b"", "empty"), (b" \n\t\n", "empty"), (b"ab\x00cd", "NUL")):
        f.write_bytes(data)
        with pytest.raises(ImportFileError, match=why):
            importer.read_file(str(f))


@pytest.mark.parametrize("fdb", ["here-node-bridge-fdb.txt", "here-node-bridge-j-fdb.txt"])
def test_bridge_fdb_entries_go_to_the_vxlan_device(cli, tmp_path, fdb):
    """`bridge fdb show` (text and -j) of the namespace whose `ip -d addr` is imported:
    flannel.1's entry (the remote VTEP 192.168.77.3) is kept; cni0/veth port entries are not."""
    base = Path(__file__).resolve().parent / "fixtures" / "parsers"
    out = tmp_path / "snap"
    code, _, err = cli("import", "--ip-addr", base / "ip-addr/here-node-ip-d-addr.out",
                       "--bridge-fdb", base / "bridge-fdb" / fdb, "--out", out)
    assert code == 0, err
    node = _load(out).nodes[0]
    host = node.node_netns()
    vx = {lk.name: lk.vxlan for lk in host.links if lk.vxlan}
    assert list(vx) == ["flannel.1"]
    assert [(e.mac, e.dst, e.dev) for e in vx["flannel.1"].fdb] == [("36:ac:8f:79:59:c0", "192.168.77.3", "flannel.1")]
    assert "permanent" in vx["flannel.1"].fdb[0].flags and "self" in vx["flannel.1"].fdb[0].flags
    assert [e.id for e in node.evidence] == ["ip-addr", "bridge-fdb"]
    assert node.warnings == []


# `ip -n NODE netns list | grep lrp` and `ip -n NODE netns list-id`, captured on this machine
# (two pod namespaces with a veth each into NODE; other lines of the listing filtered out)
NETNS_LIST = "lrpq755 (id: 1)\nlrpp8168 (id: 0)\n"
NETNS_LIST_ID = "nsid 0 (iproute2 netns name: lrpp8168)\nnsid 1 (iproute2 netns name: lrpq755)\n"


def test_ip_netns_list_fills_the_nsid_table(cli, tmp_path):
    from labreport.importer import ImportFileError, parse_netns_ids

    assert parse_netns_ids(NETNS_LIST) == {0: "lrpp8168", 1: "lrpq755"}
    assert parse_netns_ids(NETNS_LIST_ID) == {0: "lrpp8168", 1: "lrpq755"}
    assert parse_netns_ids('[{"name":"lrcb-p142"},{"name":"lrpq755","id":1}]') == {1: "lrpq755"}
    with pytest.raises(ImportFileError):
        parse_netns_ids("1: lo: <LOOPBACK> mtu 65536 qdisc noop state DOWN\n")
    f = tmp_path / "netns.txt"
    f.write_text("root@node:~# ip netns list\n" + NETNS_LIST)
    out = tmp_path / "snap"
    jaddr = Path(__file__).resolve().parent / "fixtures/parsers/ip-addr/here-node-ip-j-d-addr.out"
    code, _, err = cli("import", "--ip-netns", f, "--ip-addr", jaddr, "--out", out)
    assert code == 0, err
    node = _load(out).nodes[0]
    host = node.node_netns()
    assert host.nsids == {0: "lrpp8168", 1: "lrpq755"}
    assert [lk.link_netnsid for lk in host.links if lk.name == "veth1a"] == [0]
    assert [(e.id, e.command) for e in node.evidence] == [("ip-netns", "ip netns list"), ("ip-addr", "ip -j addr")]


def test_an_unnamed_inspect_fragment_is_evidence_not_a_container(cli, tmp_path):
    """`docker inspect X | grep NetworkMode` without saying X: no nameless container is
    invented; the paste is kept as evidence and a warning says how to name it."""
    from labreport.snapshot import load

    code, _, err = cli("import", "--node", "worker", "--containers", S0 / "worker-docker-ps-after-new.txt",
                       "--inspect", S0 / "worker-docker-inspect-networkmode.txt", "--out", tmp_path / "snap")
    assert code == 0, err
    worker = load(tmp_path / "snap").nodes[0]
    assert all(c.id and c.name for c in worker.containers)
    assert len(worker.containers) == 3
    assert "docker-inspect" in [e.id for e in worker.evidence]
    assert any("--inspect NAME=FILE" in w.message for w in worker.warnings)


def test_kubectl_lines_not_understood_keep_the_snapshot_loadable(cli, tmp_path):
    # found by mypy: the kubectl parser's warnings were written as dicts into
    # ClusterObjects.warnings (a list of strings), so the snapshot could not be loaded back
    f = tmp_path / "objs.yaml"
    f.write_text("- just a list item\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: default}\n"
                 "spec: {containers: [{name: a, image: b}]}\n")
    out = tmp_path / "snap"
    code, _, err = cli("import", "--kubectl", f, "--out", out)
    assert code == 0, err
    assert f"1 line not understood in {f}" in err
    snap = _load(out)
    assert snap.cluster is not None and len(snap.cluster.pods) == 1
    [w] = snap.cluster.parse_warnings
    assert (w.source, w.line_no) == (str(f), 1) and "not a mapping" in w.message
    code, _, err = cli("analyze", out)
    assert code == 0, err


def test_a_manifest_document_that_is_no_object_is_warned_in_sentences(cli, tmp_path):
    """A manifest file with a document that is no object: warned, and the snapshot still loads."""
    from labreport.snapshot import load

    f = tmp_path / "k.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\n- just a list\n", encoding="utf-8")
    code, _, err = cli("import", "--kubectl", f, "--out", tmp_path / "s")
    assert code == 0 and "1 line not understood" in err
    snap = load(tmp_path / "s")
    assert [p["metadata"]["name"] for p in snap.cluster.pods] == ["a"]
    assert any("not a mapping" in w for w in snap.cluster.warnings)


def test_the_pasted_command_is_looked_for_in_the_first_50_lines_only():
    from labreport.importer import command_from_paste

    filler = "".join(f"line {i}\n" for i in range(49))
    assert command_from_paste(filler + "root@h:~# nft list ruleset\ntable ip t {\n") == "nft list ruleset"
    assert command_from_paste(filler + "x\nroot@h:~# nft list ruleset\n") is None  # its 51st line
    assert command_from_paste(filler + "root@h:~# nft list ruleset") == "nft list ruleset"  # no newline after it
