"""Step 4 of ``import --report``: which node each output was taken on.

Names a report uses for nodes:

- host names in prompts (``root@k8s-worker:~#``): a node's own name;
- ``kubectl get nodes`` rows: names with roles (``control-plane`` is the master);
- words in the prose: master / control plane / 主节点 / 控制节点 for the control-plane node,
  worker / node1 / 从节点 / 工作节点 / slave for the (one) worker.

``NodeNames.resolve`` merges them: a role word becomes the node with that role (from the
``kubectl get nodes`` roles, else a host name containing "master" / "worker"|"node"),
so "master节点" and ``root@k8s-master`` are one node. With no names at all the nodes are
called ``master`` and ``worker``. ``alias`` options (``--node master=cp1``) win.

The node of an output: its prompt's host name; else the last node word in the prose just
before it; else the last one since the question's heading (the question itself usually
says "在worker节点上…"); else the question's usual node (Q5/Q6 are about the worker, the
iptables questions about the master); else the only node.
"""

from __future__ import annotations

import re
from typing import Optional

from pydantic import BaseModel, Field

_URL_RE = re.compile(r"https?://\S+|<[^>]*>|\([^)]*://[^)]*\)")
_MASTER_RE = re.compile(r"master|control[- ]?plane|主节点|控制节点|管理节点|控制平面", re.I)
_WORKER_RE = re.compile(r"worker|\bnode\d+\b|从节点|工作节点|slave|子节点|host主机|宿主机", re.I)


def role_word(text: str) -> Optional[str]:
    """The role the LAST node word of ``text`` names: "master", "worker" or None."""
    t = _URL_RE.sub(" ", text)
    last: Optional[tuple[int, str]] = None
    for rx, role in ((_MASTER_RE, "master"), (_WORKER_RE, "worker")):
        for m in rx.finditer(t):
            if last is None or m.start() > last[0]:
                last = (m.start(), role)
    return last[1] if last else None


class NodeNames(BaseModel):
    hosts: list[str] = Field(default_factory=list)  # prompt host names, in order of appearance
    table_roles: dict[str, str] = Field(default_factory=dict)  # kubectl get nodes: name -> ROLES
    aliases: dict[str, str] = Field(default_factory=dict)  # user's --node ALIAS=NAME
    pods: set[str] = Field(default_factory=set)  # pod names (a pod's shell is not a node)
    # hosts where control-plane work shows (kubectl / kubeadm init typed there, kube-apiserver
    # in its ps): the master when no name or role says so
    control_votes: dict[str, int] = Field(default_factory=dict)

    def add_host(self, host: str) -> None:
        if host not in self.hosts:
            self.hosts.append(host)

    def node_hosts(self) -> list[str]:
        return [h for h in self.hosts if h not in self.pods]

    def names(self) -> list[str]:
        out: list[str] = []
        for n in list(self.table_roles) + self.node_hosts():
            n = self.aliases.get(n, n)
            if n not in out:
                out.append(n)
        return out

    def for_role(self, role: str) -> str:
        if role in self.aliases:
            return self.aliases[role]
        masters = [n for n, r in self.table_roles.items() if "control-plane" in r or "master" in r]
        workers = [n for n, r in self.table_roles.items() if n not in masters]
        hosts = self.node_hosts()
        voted = self._voted_master(hosts)
        if role == "master":
            cands = masters or [h for h in hosts if _MASTER_RE.search(h)] or ([voted] if voted else [])
        else:
            cands = workers or [h for h in hosts if _WORKER_RE.search(h) or re.search(r"node|slave", h, re.I)]
            if not cands and hosts:
                non_master = [h for h in hosts if not _MASTER_RE.search(h) and h != voted]
                cands = non_master if len(non_master) == 1 else []
        if len(cands) == 1:
            return self.aliases.get(cands[0], cands[0])
        return role

    def _voted_master(self, hosts: list[str]) -> Optional[str]:
        votes = sorted(((self.control_votes.get(h, 0), h) for h in hosts), reverse=True)
        if votes and votes[0][0] > 0 and (len(votes) == 1 or votes[1][0] < votes[0][0]):
            return votes[0][1]
        return None

    def canonical(self, host: str) -> str:
        """A prompt's host name, merged with the role names it stands for."""
        if host in self.aliases:
            return self.aliases[host]
        if host.lower() in ("master", "worker"):
            return self.for_role(host.lower())
        return host


# the node a lab question is about, when the report does not say (the lab's own wording)
QUESTION_ROLE_BY_PARSER: dict[str, str] = {
    "iptables-save": "master",
    "nft": "master",
    "ipvsadm": "master",
}
