"""``labreport trace`` against the kernel, kube-proxy nftables mode (tests/lab/oracle_cases.py
says what is compared). One lab of one node and one of two nodes joined by VXLAN, each
built once for the module; every flow of each lab is a case, checked twice: (a) real
connections and conntrack, (b) the kernel's rule trace (nft monitor trace with meta nftrace set 1) of the first
packet and, on the same connection, of its reply (the SYN-ACK: the outcome's reply hops,
conntrack's tuples, the client's answer). A hairpin lab (client and endpoint on one bridge)
shows the broken reply the trace predicts without br_netfilter, and the working one with it."""

from __future__ import annotations

import pytest

from tests.conftest import missing_for_lab
from tests.lab import oracle_cases
from tests.lab.oracle_cases import (  # noqa: F401  (pytest collects them here, over this module's labs)
    test_hairpin_reply_broken_without_br_netfilter, test_hairpin_reply_with_br_netfilter, test_one_node_conntrack,
    test_one_node_kernel_rule_trace, test_two_nodes_conntrack, test_two_nodes_kernel_rule_trace)

_why = missing_for_lab("nft", "conntrack", "curl", "busybox")
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_why), reason="node lab unavailable: " + ", ".join(_why))]

MODE = "nftables"
labs = oracle_cases.labs_fixture(MODE)
hairpin = oracle_cases.hairpin_fixture(MODE)
