"""The `ip addr` / `ip route` text the netlink collector synthesizes (when it takes no real
`ip` output) reads back through the parsers `labreport import` uses into the same records:
real outputs parsed, rendered, parsed again."""

from __future__ import annotations

import pytest

from labreport.parsers import ip_addr, ip_route
from labreport.snapshot import NetNamespace

from tests.conftest import FIXTURES

ADDR = FIXTURES / "parsers" / "ip-addr"
ROUTE = FIXTURES / "parsers" / "ip-route"


def _link_facts(link):
    return (link.ifindex, link.name, link.peer_ifindex, link.link_netnsid, link.link_netns, link.master, link.mac,
            link.mtu, link.state, link.flags,
            [(a.family, a.local, a.prefixlen, a.broadcast, a.scope) for a in link.addresses])


# every full listing (the "grep" one is a fragment: it never had the link/ether lines)
@pytest.mark.parametrize("name", sorted(p.name for p in ADDR.glob("*.out") if "grep" not in p.name))
def test_ip_addr_render_then_parse_gives_the_same_links(name):
    links = ip_addr.parse((ADDR / name).read_text(), source=name).value
    assert links
    text = ip_addr.render(NetNamespace(name="ns", links=links))
    again = ip_addr.parse(text, source="rendered").value
    assert [_link_facts(ln) for ln in again] == [_link_facts(ln) for ln in links]


def test_ip_addr_render_names_the_peer_namespace_by_nsid():
    links = ip_addr.parse((ADDR / "here-node-ip-j-d-addr.out").read_text()).value
    veth = next(ln for ln in links if ln.link_netnsid is not None)
    text = ip_addr.render(NetNamespace(name="ns", links=[veth], nsids={veth.link_netnsid: "cni-peer"}))
    assert "link-netns cni-peer" in text
    assert ip_addr.parse(text).value[0].link_netns == "cni-peer"


@pytest.mark.parametrize("name", sorted(p.name for p in ROUTE.glob("*.out")))
def test_ip_route_render_then_parse_gives_the_same_routes(name):
    routes = ip_route.parse((ROUTE / name).read_text(), source=name).value
    shown = [r for r in routes if r.family == "inet" and r.table in (None, "main")]
    text = ip_route.render(NetNamespace(name="ns", routes=routes))
    if not shown:  # ip -6 route: the rendering is IPv4's main table only
        assert text == ""
        return
    again = ip_route.parse(text, source="rendered").value
    assert [r.model_dump() for r in again] == [r.model_dump() for r in shown]
