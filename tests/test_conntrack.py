"""The conntrack parser on real outputs captured in the Service lab (tests/fixtures/parsers/
conntrack/, see the README there), its NAT reading (endpoint, masquerade), its bounds and
bad input; the collector in a real namespace; observed-vs-predicted pairing."""

from __future__ import annotations

from pathlib import Path

import pytest

from labreport.analysis.observed import PredictedShare, pair
from labreport.errors import ParseError
from labreport.parsers import conntrack
from tests.conftest import missing_for_lab

FIX = Path(__file__).resolve().parent / "fixtures" / "parsers" / "conntrack"


def _load(name: str):
    return conntrack.parse_table((FIX / name).read_text(), source=name).value


def test_three_spellings_of_the_same_table_agree() -> None:
    """conntrack -L, -o extended and /proc/net/nf_conntrack of one moment: same tuples."""
    tables = [_load(n) for n in ("here-lab-plain.out", "here-lab-extended.out", "here-lab-proc.out")]
    keys = [[(e.original, e.reply, e.state) for e in t.entries] for t in tables]
    assert keys[0] == keys[1] == keys[2]
    assert len(keys[0]) == 17
    assert tables[2].entries[0].zone == 0 and tables[0].entries[0].zone is None


def test_nat_is_read_from_the_reply_tuple() -> None:
    t = _load("here-lab-plain.out")
    # a pod (routed, 10.244.65.20) to the cluster IP: DNAT to a pod, source kept
    pod = [e for e in t.entries if e.original.src == "10.244.65.20" and e.original.dst == "10.96.0.10"]
    assert {e.endpoint for e in pod} == {"10.244.1.2:80", "10.244.1.4:80"}
    assert all(e.dnat and not e.snat for e in pod)
    # the node to the cluster IP: masqueraded to cni0's address
    node = [e for e in t.entries if e.original.src == "192.168.56.10" and e.original.dst == "10.96.0.10"]
    assert node and all(e.snat and e.reply.dst == "10.244.1.1" for e in node)
    # outside to an externalTrafficPolicy Local NodePort: client address preserved
    local = [e for e in t.entries if e.original.dport == 30081]
    assert local and all(e.dnat and not e.snat for e in local)
    # plain traffic: neither
    plain = [e for e in t.entries if e.original.dst == "10.244.1.2" and e.original.src == "10.244.1.1"]
    assert plain and not plain[0].dnat and not plain[0].snat


def test_udp_unreplied_and_icmp_and_summary_line() -> None:
    t = _load("here-mixed-extended-with-summary.out")
    icmp, udp = t.entries
    assert icmp.protocol == "icmp" and icmp.original.sport is None and icmp.state is None
    assert udp.protocol == "udp" and udp.flags == ["UNREPLIED"] and udp.endpoint == "127.0.0.1:5353"
    assert t.total == 2 and not t.truncated


def test_bounded(monkeypatch) -> None:
    line = (FIX / "here-lab-plain.out").read_text().splitlines()[0]
    monkeypatch.setattr(conntrack, "MAX_ENTRIES", 5)
    t = conntrack.parse_table("\n".join([line] * 12)).value
    assert len(t.entries) == 5 and t.truncated and t.total == 12


@pytest.mark.parametrize("text", ["", "\x00\x01binary", "Chain INPUT (policy ACCEPT)\ntarget prot opt\n"])
def test_bad_input_is_a_clear_error(text: str) -> None:
    with pytest.raises(ParseError):
        conntrack.parse(text)


def test_a_bad_line_is_a_warning_not_lost_data() -> None:
    good = (FIX / "here-lab-plain.out").read_text().splitlines()[:2]
    res = conntrack.parse("\n".join([good[0], "tcp 6 garbage", good[1]]))
    assert len(res.value) == 2 and [w.line_no for w in res.warnings] == [2]


def test_observed_beside_predicted() -> None:
    t = _load("here-lab-plain.out")
    preds = [PredictedShare(result="delivered", probability=1 / 3, endpoint=f"10.244.1.{i}:80", masquerade=True)
             for i in (2, 3, 4)]
    row = pair("lab/web:http", "node:30080", preds, t, node_ips=["192.168.56.10"], source_kind="outside")
    assert row.agrees is True and sum(o.count for o in row.observed) == 3
    assert all(o.masquerade for o in row.observed)
    wrong = pair("lab/web:http", "10.96.0.10:80", preds[:1], t)
    assert wrong.agrees is False and "10.244.1.4:80" in wrong.unexpected
    assert pair("x", "10.96.9.9:80", preds, t).agrees is None
    assert pair("x", "10.96.0.10:80", preds, None).observed == []


_why = missing_for_lab("conntrack", "curl")


@pytest.mark.lab
@pytest.mark.skipif(bool(_why), reason="node lab unavailable: " + ", ".join(_why))
def test_collector_in_a_namespace_records_the_lab_connections() -> None:
    """Live: the conntrack collector inside a lab node sees the DNAT of real requests."""
    import os
    import sys

    from labreport.snapshot import NodeSnapshot
    from tests.lab.netns import in_netns
    from tests.lab.proc import run
    from tests.lab.svclab import ServiceLab

    with ServiceLab(mode="iptables", nodes=1).build() as lab:
        client = lab.pod("lab/client")
        for _ in range(3):
            run(in_netns(client.netns, "curl", "-s", "-m", "2", "http://10.96.0.10/"))
        n = lab.node_list[0]
        code = ("import json,sys; from collectors import registry; from collectors.base import CollectContext, "
                "run_collector; from labreport.snapshot import NodeSnapshot; node=NodeSnapshot(name='n1'); "
                "out=run_collector(registry.load('conntrack'), CollectContext()); out.apply(node); "
                "print(node.model_dump_json())")
        cp = run(in_netns(n.ns, sys.executable, "-c", code), env={**os.environ,
                                                                   "PYTHONPATH": str(Path(__file__).parents[1])})
        node = NodeSnapshot.model_validate_json(cp.stdout)
        assert node.collectors[-1].ok, node.collectors
        assert node.conntrack is not None
        mine = [e for e in node.conntrack.entries if e.original.dst == "10.96.0.10"]
        assert len(mine) == 3 and all(e.endpoint.startswith("10.244.1.") and not e.snat for e in mine)
