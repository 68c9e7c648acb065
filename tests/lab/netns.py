"""Network namespace helpers: every lab node is a namespace of its own under /var/run/netns."""

from __future__ import annotations

from pathlib import Path

from tests.lab.proc import run

NETNS_DIR = Path("/var/run/netns")


def netns_path(name: str) -> str:
    return str(NETNS_DIR / name)


def add_netns(name: str) -> None:
    """Create ``name`` with loopback up (kube-proxy-style DNAT from the node needs lo)."""
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def delete_netns(name: str) -> None:
    if (NETNS_DIR / name).exists():
        run(["ip", "netns", "delete", name], check=False)


def nsenter_net(name_or_path: str) -> list[str]:
    """argv prefix that runs a program in a namespace *without* remounting /sys (unlike
    ``ip netns exec``), so cgroup v1 mounts stay visible to containerd/dockerd/runc."""
    path = name_or_path if "/" in name_or_path else netns_path(name_or_path)
    return ["nsenter", f"--net={path}"]


def in_netns(name: str, *argv: str) -> list[str]:
    """argv to run a client command inside a namespace (``ip netns exec NAME …``)."""
    return ["ip", "netns", "exec", name, *argv]


def sysctl(ns: str, key: str, value: str) -> None:
    run(in_netns(ns, "sysctl", "-qw", f"{key}={value}"))
