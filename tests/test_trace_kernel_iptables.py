"""``labreport trace`` against the kernel, kube-proxy iptables mode (tests/lab/oracle_cases.py
says what is compared). One lab of one node and one of two nodes joined by VXLAN, each
built once for the module; every flow of each lab is a case, checked twice: (a) real
connections and conntrack, (b) the kernel's rule trace (xtables-monitor --trace) of the first
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

_why = missing_for_lab("iptables-restore", "xtables-monitor", "nft", "conntrack", "curl", "busybox")
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_why), reason="node lab unavailable: " + ", ".join(_why))]

MODE = "iptables"
labs = oracle_cases.labs_fixture(MODE)
hairpin = oracle_cases.hairpin_fixture(MODE)


def test_live_conntrack_beside_predicted_in_the_analysis(labs, tmp_path):
    """collect --local records the conntrack table; analyze pairs it with trace's prediction."""
    oracle_cases.check_observed_in_analysis(
        labs(1), ["pod-to-clusterip", "node-to-clusterip", "external-to-nodeport", "external-to-etp-local"],
        tmp_path / "after-traffic")


def test_a_wrong_trace_fails_the_oracle(labs):
    """The comparisons are not vacuous: the real answer for a flow, altered in one way at a
    time (a masquerade bit, a lost endpoint, a rule index, a verdict; the reply's verdict, a
    rule index of its way back, its conntrack tuple), is caught."""
    import copy

    ol = labs(1)
    flow = oracle_cases.flow(ol, "node-to-clusterip")
    real = oracle_cases.trace(ol, flow)

    def fails(mutate, check) -> bool:
        bad = copy.deepcopy(real)
        mutate(bad)
        ol.traces[flow.id] = bad
        try:
            check(ol, flow)
        except AssertionError:
            return True
        finally:
            ol.traces[flow.id] = real
        return False

    def flip_masq(t):
        for o in t["outcomes"]:
            o["masquerade"] = not o["masquerade"]

    def lose_endpoint(t):
        gone = t["outcomes"].pop()
        t["outcomes"][0]["probability"] += gone["probability"]

    def shift_rule(t):
        for o in t["outcomes"]:
            hop = next(h for h in o["hops"] if h.get("kind") == "netfilter" and h.get("rule_index"))
            hop["rule_index"] += 1

    def other_verdict(t):
        for o in t["outcomes"]:
            hop = next(h for h in o["hops"] if h.get("kind") == "netfilter" and str(h.get("verdict", "")).startswith("DNAT"))
            hop["verdict"] = "ACCEPT"

    def reply_dropped(t):
        for o in t["outcomes"]:
            o["reply"]["result"] = "dropped"

    def reply_rule(t):
        for o in t["outcomes"]:
            hop = next(h for h in o["reply"]["hops"] if h.get("kind") == "netfilter" and h.get("rule_index"))
            hop["rule_index"] += 1

    def reply_tuple(t):  # the reply as if the source had not been masqueraded
        for o in t["outcomes"]:
            c = o["reply"]["conntrack"][0]
            c["reply"] = c["reply"].split("→")[0] + "→ 192.168.56.10:40000"

    assert fails(reply_dropped, oracle_cases.check_kernel_trace)
    assert fails(reply_rule, oracle_cases.check_kernel_trace)
    assert fails(reply_tuple, oracle_cases.check_kernel_trace)
    assert fails(flip_masq, oracle_cases.check_conntrack)
    assert fails(lose_endpoint, oracle_cases.check_conntrack)
    assert fails(shift_rule, oracle_cases.check_kernel_trace)
    assert fails(other_verdict, oracle_cases.check_kernel_trace)
    oracle_cases.check_conntrack(ol, flow)  # and the real answer still passes
