"""``labreport trace`` against the kernel, kube-proxy nftables mode (tests/lab/oracle_cases.py
says what is compared). One lab of one node and one of two nodes joined by VXLAN, each
built once for the module; every flow of each lab is a case, checked twice: (a) real
connections and conntrack, (b) the kernel's rule trace (nft monitor trace with meta nftrace set 1)."""

from __future__ import annotations

import pytest

from tests.conftest import missing_for_lab
from tests.lab import oracle_cases
from tests.lab.svclab import FLOW_IDS

_why = missing_for_lab("nft", "conntrack", "curl", "busybox")
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_why), reason="node lab unavailable: " + ", ".join(_why))]

MODE = "nftables"
# the flows, by lab (names only: the lab builds them; see tests/lab/svclab.py)
ONE = list(FLOW_IDS[1])
TWO = list(FLOW_IDS[2])


@pytest.fixture(scope="module")
def labs(tmp_path_factory):
    built: dict[int, oracle_cases.OracleLab] = {}

    def get(nodes: int) -> oracle_cases.OracleLab:
        if nodes not in built:
            built[nodes] = oracle_cases.build(MODE, nodes, tmp_path_factory.mktemp(f"oracle-{MODE}-{nodes}"))
        return built[nodes]

    yield get
    errors = [e for ol in built.values() for e in ol.lab.close()]
    assert not errors, errors


def _flow(ol, flow_id):
    return next(f for f in ol.lab.flows if f.id == flow_id)


@pytest.mark.parametrize("flow_id", ONE)
def test_one_node_conntrack(labs, flow_id):
    ol = labs(1)
    oracle_cases.check_conntrack(ol, _flow(ol, flow_id))


@pytest.mark.parametrize("flow_id", ONE)
def test_one_node_kernel_rule_trace(labs, flow_id):
    ol = labs(1)
    oracle_cases.check_kernel_trace(ol, _flow(ol, flow_id))


@pytest.mark.parametrize("flow_id", TWO)
def test_two_nodes_conntrack(labs, flow_id):
    ol = labs(2)
    oracle_cases.check_conntrack(ol, _flow(ol, flow_id))


@pytest.mark.parametrize("flow_id", TWO)
def test_two_nodes_kernel_rule_trace(labs, flow_id):
    ol = labs(2)
    oracle_cases.check_kernel_trace(ol, _flow(ol, flow_id))
