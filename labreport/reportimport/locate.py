"""Step 4 of ``import --report`` (with :mod:`.node`): the node, or pod, each output is from.

First the names the report uses are gathered (prompt hosts, ``kubectl get nodes`` roles, pod
names from manifests, tables and container lists, the hosts where control-plane work shows);
then each output gets its node: the prompt's host (a pod's own shell ``root@testpod`` or an
``exec`` into a container makes it a pod namespace, on the node that runs the pod), else the
node words of the prose before it, of its question's section, the question's usual node,
the only node — or a guess, which is said as a warning.
"""

from __future__ import annotations

from typing import Optional

from labreport.errors import ParseError
from labreport.reportimport.command import Output, exec_target
from labreport.reportimport.node import QUESTION_ROLE_BY_PARSER, NodeNames, role_word

CLUSTER_PARSERS = ("kubectl", "kubectl-get", "kubectl-describe")


def assign_nodes(outputs: list[Output], names: NodeNames) -> None:
    # pass 1: names the report uses
    from labreport.parsers import get

    for o in outputs:
        if o.parser == "kubectl-get":
            try:
                for row in get("kubectl-get").parse(o.text, source=o.source).value:
                    if row.kind == "Node":
                        names.table_roles[row.name] = row.columns.get("ROLES", "")
                    elif row.kind == "Pod":
                        names.pods.add(row.name)
            except ParseError:
                pass
        elif o.parser == "kubectl":
            try:
                for obj in get("kubectl").parse(o.text, source=o.source).value:
                    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
                    if obj.get("kind") == "Pod" and isinstance(meta.get("name"), str):
                        names.pods.add(meta["name"])
            except ParseError:
                pass
        elif o.parser in ("docker-ps", "crictl-ps"):
            try:
                for c in get(o.parser).parse(o.text, source=o.source).value:
                    if c.pod_name:
                        names.pods.add(c.pod_name)
            except ParseError:
                pass
    for o in outputs:
        if o.prompt_host and o.prompt_host not in names.pods:
            names.add_host(o.prompt_host)
            cmd = (o.command or "").replace("sudo ", "").strip()
            if cmd.startswith(("kubectl", "kubect1", "kubeadm init")) or (
                    o.parser == "ps" and "kube-apiserver" in o.text):
                names.control_votes[o.prompt_host] = names.control_votes.get(o.prompt_host, 0) + 1
    # pass 2: each output's node
    section_role: Optional[str] = None
    question: Optional[int] = None
    for o in outputs:
        if o.question != question:
            question, section_role = o.question, None
        word = role_word(o.context)
        if word:
            section_role = word
        if o.parser in CLUSTER_PARSERS:
            o.node_from = "cluster"
            continue
        if o.prompt_host and o.prompt_host in names.pods:
            o.pod = o.prompt_host
            o.node_from = "pod"
            continue
        inside = exec_target(o.command) if o.command else None
        if inside is not None and o.parser == "ip-addr":
            pod = _pod_of_exec(inside[0], inside[1], outputs)
            if pod is not None:
                o.pod = pod
                o.node_from = "pod"
                continue
        stated = names.for_role(word) if word else None
        if o.prompt_host:
            o.node = names.canonical(o.prompt_host)
            o.node_from = "prompt"
            if stated and stated != o.node and word and o.context.strip():
                o.stated_node = stated
        elif word:
            o.node, o.node_from = stated, "text before"
        elif section_role:
            o.node, o.node_from = names.for_role(section_role), "section"
        elif o.parser in QUESTION_ROLE_BY_PARSER:
            o.node, o.node_from = names.for_role(QUESTION_ROLE_BY_PARSER[o.parser]), "question"
        else:
            known = names.names()
            o.node, o.node_from = (known[0], "only node") if len(known) == 1 else (names.for_role("master"), "guess")


def _pod_of_exec(tool: str, target: str, outputs: list[Output]) -> Optional[str]:
    """The pod an ``exec`` ran in: kubectl names the pod; docker a container (k8s_<c>_<pod>_…,
    or a name / id from a container list); crictl a container id (its row's POD)."""
    from labreport.parsers import get
    from labreport.parsers._common import dockershim_name

    if tool == "kubectl":
        return target
    k8s = dockershim_name(target)
    if k8s:
        return str(k8s["pod_name"])
    for o in outputs:
        if o.parser in ("docker-ps", "crictl-ps"):
            try:
                for c in get(o.parser).parse(o.text, source=o.source).value:
                    if c.pod_name and (c.id.startswith(target) or target.startswith(c.id) or c.name == target):
                        return str(c.pod_name)
            except ParseError:
                continue
    return None


def node_of_pod(pod: str, outputs: list[Output]) -> Optional[str]:
    from labreport.parsers import get

    found: Optional[str] = None
    for o in outputs:
        if o.parser in ("docker-ps", "crictl-ps", "crictl-pods") and o.node:
            try:
                if any(c.pod_name == pod for c in get(o.parser).parse(o.text, source=o.source).value):
                    found = o.node
            except ParseError:
                continue
    return found


