"""Build a snapshot from pasted command outputs (``labreport import``).

Every file goes through the same parsers as live collection, becomes an ``Evidence``
(origin "import", its path, the command — taken from the shell prompt line in the paste
when there is one, else the usual command for that output) and its records go into
the node: processes, containers, the node's network namespace (links, routes), pod
namespaces, iptables / nftables / IPVS rules. Lines a parser did not understand become
``node.warnings``; a file that cannot be read at all raises ``ImportFileError`` naming
the file (or, with ``keep_going``, marks the node partial and goes on).

File kinds (the keys of ``build_node``'s ``files``):

=================  ==========================================================
``ps``             ps aux / ps -ef (pastes of ``ps aux | grep kube`` too)
``containers``     docker ps / crictl ps / crictl pods / docker inspect (detected)
``pods``           crictl pods
``ctr``            ctr -n k8s.io containers ls (shows the pause sandboxes crictl ps hides;
                   tied to their pods by the crictl ps POD ID prefix)
``inspect``        docker inspect JSON, or a ``| grep NetworkMode`` fragment;
                   ``inspect:NAME`` says which container a fragment is about
``ip-link``        ip link (any form ip-addr reads)
``ip-addr``        ip addr / ip -j addr / ip -d link
``ip-route``       ip route / ip -j route / ip route show table all
``ip-rule``        ip rule / ip -6 rule / ip -j rule (the node namespace's ``rules``)
``pod-ip-addr:NS`` ``ip addr`` run inside a pod: a namespace named NS
``bridge-fdb``     ``bridge fdb show`` (text or -j): the VXLAN forwarding entries of the
                   node namespace's links (``Link.vxlan.fdb``)
``ip-netns``       ``ip netns list`` / ``ip netns list-id`` / ``ip -j netns list``:
                   the node namespace's nsid table (``nsids``), which ``ip -j``
                   output needs to name the namespace behind a ``link_netnsid``
``iptables-save``  iptables-save / iptables -S (labreport.parsers.iptables_save)
``nft``            nft list ruleset, text or -j (labreport.parsers.nft)
``ipvsadm``        ipvsadm -Ln (labreport.parsers.ipvsadm)
``cilium``         cilium-dbg service list or cilium-dbg bpf lb list (labreport.parsers.cilium)
=================  ==========================================================

How a pasted pod namespace is tied to its host veth (the analysis matches veths; this
gives it the data): the host side's ``link-netns NAME`` names the pod namespace, so a
pod namespace imported under that name (``--pod-ip-addr cni-a4de…=pod.txt``) matches
directly. When the pod namespace was imported under another name (``testpod``), and
exactly one host link ``H`` and the pod's link ``L`` point at each other
(``H.peer_ifindex == L.ifindex`` and ``L.peer_ifindex == H.ifindex``, H with a
link-netns or link-netnsid), the importer records it: the node namespace's ``nsids``
gets ``H.link_netnsid -> NS`` (when H states a netnsid), the pod namespace's ``nsids``
gets ``L.link_netnsid -> "host"``, and the pod namespace the extra fields
``netns_name`` (H's link-netns, when printed; then also ``path`` =
``/var/run/netns/<that name>``, since ``ip`` prints a link-netns name only for
namespaces bound there), ``host_link`` and ``tied_by`` ("link-netns name" or "peer
ifindex pair"). If several host links fit (every pod's eth0 is often ifindex 2),
nothing is inferred and a warning says so.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Iterable, Optional

from labreport import __version__
from labreport.errors import LabreportError, ParseError
from labreport.parsers import detect as detect_parser
from labreport.parsers import get as get_parser
from labreport.parsers._common import as_dict, is_prompt_line, split_prompt
from labreport.snapshot import (
    CiliumServiceTable,
    ClusterObjects,
    Container,
    Evidence,
    Link,
    NetNamespace,
    NodeSnapshot,
    ParseWarning,
    Snapshot,
)

NODE_NS = "host"  # the name collectors give the node's own namespace

# kind -> candidate parsers (detection picks among them when there are several)
KIND_PARSERS: dict[str, list[str]] = {
    "ps": ["ps"],
    "containers": ["docker-ps", "crictl-ps", "crictl-pods", "docker-inspect", "ctr-containers"],
    "ctr": ["ctr-containers"],
    "pods": ["crictl-pods"],
    "inspect": ["docker-inspect"],
    "ip-link": ["ip-addr"],
    "ip-addr": ["ip-addr"],
    "ip-route": ["ip-route"],
    "ip-rule": ["ip-rule"],
    "pod-ip-addr": ["ip-addr"],
    "ip-netns": [],  # read here (parse_netns_ids): three lines of text, not worth a registry entry
    "bridge-fdb": [],  # ip_addr.parse_fdb: entries attached to the node namespace's VXLAN links
    "iptables-save": ["iptables-save"],
    "nft": ["nft"],
    "ipvsadm": ["ipvsadm"],
    "cilium": ["cilium-service-list", "cilium-bpf-lb-list"],
    "kubectl": ["kubectl"],
}

# what a person would have typed, when the paste does not show it
DEFAULT_COMMANDS: dict[str, str] = {
    "ps": "ps aux",
    "docker-ps": "docker ps",
    "docker-inspect": "docker inspect",
    "crictl-ps": "crictl ps",
    "crictl-pods": "crictl pods",
    "ip-addr": "ip addr",
    "ip-route": "ip route",
    "ip-rule": "ip rule",
    "iptables-save": "iptables-save",
    "nft": "nft list ruleset",
    "ipvsadm": "ipvsadm -Ln",
    "cilium-service-list": "cilium-dbg service list",
    "cilium-bpf-lb-list": "cilium-dbg bpf lb list",
    "kubectl": "kubectl get -o yaml",
    "ctr-containers": "ctr -n k8s.io containers ls",
}

_CLUSTER_FIELDS = {
    "Node": "nodes",
    "Pod": "pods",
    "Service": "services",
    "EndpointSlice": "endpointslices",
    "Endpoints": "endpoints",
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "HorizontalPodAutoscaler": "hpas",
    "ConfigMap": "configmaps",
}


class ImportFileError(ParseError):
    """A file given to ``labreport import`` that cannot be read or parsed at all."""


# ----------------------------------------------------------------------------- reading


# Pasted outputs are small: a 10,000-Service iptables-save is ~15 MB. A bigger file is a
# mistake (or /dev/zero) and would cost ~20x its size in memory; --max-input-size raises it.
DEFAULT_MAX_INPUT_SIZE = 64 * 1024 * 1024
MAX_INPUT_SIZE = DEFAULT_MAX_INPUT_SIZE
_CHUNK = 1 << 20


def parse_size(text: str) -> int:
    """``64M``, ``1G``, ``500k``, ``1048576`` → bytes (ValueError when not a size)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?[bB])?\s*", text or "")
    if not m:
        raise ValueError(f"not a size: {text!r} (e.g. 64M, 1G)")
    n = float(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]
    if n < 1:
        raise ValueError(f"size must be at least 1 byte: {text!r}")
    return int(n)


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.0f} {unit}"
    return f"{n} bytes"


def read_file(path: str, *, max_size: Optional[int] = None) -> str:
    """Read a pasted output: UTF-8 (BOM or not) or UTF-16 with a BOM (PowerShell's ``>``).
    Raises ImportFileError naming the file when it cannot be read or is not text.

    At most ``max_size`` bytes (default MAX_INPUT_SIZE) are read, so /dev/zero or a file
    that grows without end stops at the limit. Under sudo the file is opened with the
    rights of the user who ran sudo (labreport.privilege): a user-named file is the
    user's, never root's."""
    from labreport.privilege import open_for_user

    limit = max_size if max_size is not None else MAX_INPUT_SIZE
    try:
        fh, as_user = open_for_user(path)
    except FileNotFoundError:
        raise ImportFileError("no such file", source=path) from None
    except IsADirectoryError:
        raise ImportFileError("is a directory, not a file", source=path) from None
    except PermissionError:
        from labreport.privilege import invoking_user

        who = invoking_user()
        why = (f"permission denied for {who[2]} (under sudo, files named on the command line are read "
               f"with the rights of the user who ran sudo)" if who else "permission denied")
        raise ImportFileError(why, source=path) from None
    except OSError as exc:
        raise ImportFileError(f"cannot read: {exc.strerror or exc}", source=path) from None
    try:
        with fh:
            head = fh.read(min(4096, limit + 1))
            if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise ImportFileError("binary data (NUL bytes), not a command's text output", source=path)
            parts = [head]
            got = len(head)
            while got <= limit:
                chunk = fh.read(min(_CHUNK, limit + 1 - got))
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
    except OSError as exc:
        raise ImportFileError(f"cannot read: {exc.strerror or exc}", source=path) from None
    if got > limit:
        raise ImportFileError(f"larger than the {_human(limit)} input limit (a pasted command output is far "
                              f"smaller); if it really is one, raise the limit with --max-input-size",
                              source=path)
    return decode(b"".join(parts), path)


def read_file_or_error(path: str) -> Any:
    """read_file, but a file that cannot be read gives its ImportFileError as the value, so
    ``build_node(..., keep_going=True)`` can mark the node partial and go on."""
    try:
        return read_file(path)
    except ImportFileError as exc:
        return exc


def decode(data: bytes, source: str = "<input>") -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ImportFileError("starts like UTF-16 but is not valid UTF-16", source=source) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise ImportFileError("empty file", source=source)
    if b"\x00" in data[:4096]:
        raise ImportFileError("binary data (NUL bytes), not a command's text output", source=source)
    return data.decode("utf-8", errors="replace")


def command_from_paste(text: str) -> Optional[str]:
    """The command typed at the first shell prompt of a paste (``root@h:~# ps aux | grep kube``)."""
    for line in text.split("\n", 50)[:50]:  # the first 50 lines, not a list of all of them
        is_prompt, command = split_prompt(line)
        if is_prompt and command:
            return command
    return None


# ----------------------------------------------------------------------------- parsing


OPTION_FOR_PARSER = {
    "ps": "--ps", "docker-ps": "--containers", "crictl-ps": "--containers", "crictl-pods": "--containers",
    "docker-inspect": "--inspect", "ip-addr": "--ip-addr", "ip-route": "--ip-route", "ip-rule": "--ip-rule",
    "iptables-save": "--iptables-save", "nft": "--nft", "ipvsadm": "--ipvsadm", "kubectl": "--kubectl",
    "cilium-service-list": "--cilium-service-list", "cilium-bpf-lb-list": "--cilium-service-list",
    "ctr-containers": "--containers",
}


def _hint(text: str, not_this: list[str]) -> str:
    """" (it looks like crictl-ps output: give it with --containers)" when another parser is sure."""
    try:
        other = detect_parser(text)
    except ParseError:
        return ""
    if other in not_this:
        return ""
    return f" (it looks like {other} output: give it with {OPTION_FOR_PARSER.get(other, other)})"


_NETNS_ID_RE = re.compile(r"^\s*(?P<name>\S+)\s+\(id:\s*(?P<id>\d+)\)\s*$")
_NETNS_LISTID_RE = re.compile(r"^\s*nsid\s+(?P<id>\d+)\s+\(iproute2 netns name:\s*(?P<name>[^)\s]+)\)\s*$")


def parse_netns_ids(text: str, source: str = "<input>") -> dict[int, str]:
    """nsid -> namespace name from ``ip netns list`` ("cni-x (id: 0)"), ``ip netns list-id``
    ("nsid 0 (iproute2 netns name: cni-x)") or ``ip -j netns list``. Names without an id
    (no nsid assigned in this namespace) are skipped. ImportFileError if nothing fits."""
    out: dict[int, str] = {}
    body = text.strip()
    if body.startswith("["):
        import json

        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ImportFileError(f"ip -j netns list output is not valid JSON: {exc}", source=source) from None
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("id"), int):
                out[item["id"]] = item["name"]
        if isinstance(data, list) and all(isinstance(i, dict) and "name" in i for i in data):
            return out
        raise ImportFileError("not ip -j netns list output (a list of {name, id})", source=source)
    names = 0
    for line in text.split("\n"):
        if not line.strip() or is_prompt_line(line):
            continue
        m = _NETNS_ID_RE.match(line) or _NETNS_LISTID_RE.match(line)
        if m:
            out[int(m.group("id"))] = m.group("name")
        elif re.fullmatch(r"\s*[\w.-]+\s*", line):
            names += 1  # a namespace without an nsid here
        else:
            raise ImportFileError(f"not ip netns list output: {line.strip()[:80]!r}", source=source)
    if not out and not names:
        raise ImportFileError("no namespace in this ip netns list output", source=source)
    return out


def _parser_for(kind: str, text: str, path: str) -> str:
    base = kind.split(":", 1)[0]
    candidates = KIND_PARSERS.get(base)
    if candidates is None:
        raise LabreportError(f"unknown file kind {kind!r}; known: {', '.join(KIND_PARSERS)}")
    if len(candidates) == 1:
        _refuse_other_output(candidates[0], text, path)
        return candidates[0]
    try:
        return _detect_among(text, candidates)
    except ParseError:
        raise ImportFileError(
            f"not recognized as any of {', '.join(candidates)}" + (_hint(text, candidates) or " (is it the right file?)"),
            source=path,
        ) from None


def _refuse_other_output(parser: str, text: str, path: str) -> None:
    """A file given with one option that is clearly another command's output (``--ip-route``
    given ``bridge fdb``, ``docker ps`` or ``ip addr``) is refused with the right option named,
    rather than parsed into nonsense. Only when this parser's detector says no and another
    is sure: a paste the detectors do not know stays accepted."""
    from labreport.parsers import get as get_parser

    try:
        own = float(get_parser(parser).INFO.detect(text))
    except Exception:  # a detector must never break an import
        return
    if own >= 0.2:
        return
    what = DEFAULT_COMMANDS.get(parser, parser)
    if _looks_like_fdb(text):
        raise ImportFileError(f"this is not {what} output (it looks like bridge fdb show output: "
                              f"give it with --bridge-fdb)", source=path)
    try:
        other = detect_parser(text)
    except ParseError:
        return
    if other != parser:
        try:
            score = float(get_parser(other).INFO.detect(text))
        except Exception:
            return
        if score >= 0.5:
            raise ImportFileError(f"this is not {what} output{_hint(text, [parser])}", source=path)


_FDB_LINE = re.compile(r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}\s+dev\s+\S+")


def _looks_like_fdb(text: str) -> bool:
    lines = [ln.strip() for ln in text.splitlines()[:30] if ln.strip() and not is_prompt_line(ln)]
    return bool(lines) and sum(1 for ln in lines if _FDB_LINE.match(ln)) * 2 > len(lines)


def _detect_among(text: str, candidates: list[str]) -> str:
    """labreport.parsers.detect restricted to the candidates."""
    return detect_parser(text, candidates)


def parse_file(kind: str, path: str, text: str) -> tuple[str, Any]:
    """(parser name, ParseResult) for one file; ImportFileError if it cannot be read."""
    name = _parser_for(kind, text, path)
    mod = get_parser(name)
    kwargs: dict[str, Any] = {}
    if name == "docker-inspect" and ":" in kind:
        kwargs["name"] = kind.split(":", 1)[1]
    try:
        result = mod.parse(text, source=path, **kwargs)
    except ParseError as exc:
        msg = str(exc)
        prefix = f"{path}: "
        raise ImportFileError(f"cannot read as {name}: {msg[len(prefix):] if msg.startswith(prefix) else msg}"
                              + _hint(text, [name]), source=path) from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError) as exc:
        # a parser bug on hostile input (a value no command prints): the file is refused with
        # a clear message, never a traceback — and with --keep-going the node is marked partial
        kind_name = type(exc).__name__
        raise ImportFileError(f"cannot read as {name}: a value of an unexpected form ({kind_name}: "
                              f"{str(exc)[:200]}); is this unedited {name} output?", source=path) from None
    return name, result


# ----------------------------------------------------------------------------- merging


def _merge_link(old: Link, new: Link) -> None:
    """The same device from two outputs (ip link -d and ip addr): keep every fact."""
    for field, value in new:
        if field == "addresses":
            have = {(a.family, a.local, a.prefixlen) for a in old.addresses}
            old.addresses.extend(a for a in new.addresses if (a.family, a.local, a.prefixlen) not in have)
        elif field == "flags":
            if not old.flags:
                old.flags = list(new.flags)
        elif value is not None and getattr(old, field, None) in (None, [], {}):
            setattr(old, field, value)


def _merge_links(ns: NetNamespace, links: Iterable[Link]) -> None:
    by_index = {link.ifindex: link for link in ns.links}
    for link in links:
        if link.ifindex in by_index:
            _merge_link(by_index[link.ifindex], link)
        else:
            ns.links.append(link)
            by_index[link.ifindex] = link
    ns.links.sort(key=lambda lk: lk.ifindex)


def _merge_container(old: Container, new: Container) -> None:
    for field, value in new:
        if field in ("labels", "annotations"):
            merged = dict(getattr(old, field))
            merged.update(value or {})
            setattr(old, field, merged)
        elif field == "id" and value:
            if len(str(value)) > len(old.id or ""):
                old.id = value  # the full id wins over the short one (ids matched by prefix)
        elif field == "name" and value:
            # a truncated name is completed; a real name is never replaced by ctr's id-name
            if not old.name or (len(value) > len(old.name) and value.startswith(old.name.rstrip("."))):
                old.name = value
        elif field == "is_sandbox":
            old.is_sandbox = old.is_sandbox or bool(value)
        elif field == "fragment":
            continue
        elif field == "listed_by":  # every output that listed it (docker ps, crictl ps, ctr c ls …)
            have = list(getattr(old, "listed_by", None) or [])
            setattr(old, "listed_by", have + [p for p in (value or []) if p not in have])  # noqa: B010
        elif value not in (None, "", [], {}) and getattr(old, field, None) in (None, "", [], {}, "unknown"):
            setattr(old, field, value)


def _same_container(a: Container, b: Container) -> bool:
    """Same container seen by two outputs: ids that extend each other (docker ps prints 12
    hex digits, inspect 64), or — for Docker, whose names are unique on a host — the
    same name. CRI names are not unique (two "coredns"), so they never match by name."""
    if a.id and b.id:
        short, long_ = sorted((a.id, b.id), key=len)
        if len(short) >= 6 and long_.startswith(short):
            return True
        return False
    docker = a.runtime == "docker" and b.runtime == "docker"
    return bool(docker and a.name and b.name and a.name.lstrip("/") == b.name.lstrip("/"))


def _add_containers(node: NodeSnapshot, containers: list[Container], *, merge: bool) -> list[Container]:
    """Append, or (a container seen before, e.g. docker inspect after docker ps) merge into
    the one already listed. Indexed by the first 6 hex digits of the id and by Docker
    name, so a node with thousands of containers stays linear. Returns the fragments
    that matched nothing."""
    by_prefix: dict[str, list[Container]] = {}
    by_name: dict[str, Container] = {}

    def index(c: Container) -> None:
        if c.id and len(c.id) >= 6:
            by_prefix.setdefault(c.id[:6], []).append(c)
        if c.runtime == "docker" and c.name:
            by_name.setdefault(c.name.lstrip("/"), c)

    for old in node.containers:
        index(old)
    unmatched = []
    for c in containers:
        target = None
        if merge:
            cands = by_prefix.get(c.id[:6], []) if c.id and len(c.id) >= 6 else []
            if not c.id and c.runtime == "docker" and c.name:
                cands = [by_name[c.name.lstrip("/")]] if c.name.lstrip("/") in by_name else []
            target = next((o for o in cands if _same_container(o, c)), None)
        if target is not None:
            _merge_container(target, c)
            index(target)
            continue
        if getattr(c, "fragment", False) and not c.id:
            unmatched.append(c)  # says nothing on its own about which container: not listed
            continue
        node.containers.append(c)
        index(c)
    return unmatched


def _infer_runtime(node: NodeSnapshot) -> None:
    """crictl output does not say which CRI runtime answered; the processes may."""
    cmds = " ".join(p.command.split()[0].rsplit("/", 1)[-1] for p in node.processes if p.command)
    runtime = None
    if any(str(getattr(c, "oci_runtime", "") or "").startswith("io.containerd.") for c in node.containers):
        runtime = "containerd"  # ctr c ls was given: the CRI runtime of this node is containerd
    elif re.search(r"\bcrio\b", cmds):
        runtime = "cri-o"
    elif re.search(r"\bcri-dockerd\b", cmds):
        runtime = "cri-dockerd"
    elif re.search(r"\bcontainerd\b", cmds) or any("containerd.sock" in p.command for p in node.processes):
        runtime = "containerd"
    if runtime:
        for c in node.containers:
            if c.runtime == "unknown":
                c.runtime = runtime


def tie_ctr_sandboxes(node: NodeSnapshot) -> None:
    """A pause container from ``ctr c ls`` (full id, no pod name) is the sandbox of the
    ``crictl ps`` rows whose POD ID is a prefix of its id: give it their pod's names."""
    loose = [c for c in node.containers if c.is_sandbox and not c.pod_name and c.id]
    if not loose:
        return
    by_prefix: dict[str, list[Container]] = {}
    for c in node.containers:
        if not c.is_sandbox and c.sandbox_id and len(c.sandbox_id) >= 6 and c.pod_name:
            by_prefix.setdefault(c.sandbox_id[:6], []).append(c)
    for sb in loose:
        members = [c for c in by_prefix.get(sb.id[:6], []) if sb.id.startswith(c.sandbox_id or "\0")]
        if members:
            sb.pod_name = members[0].pod_name
            sb.pod_namespace = sb.pod_namespace or members[0].pod_namespace
            sb.pod_uid = sb.pod_uid or members[0].pod_uid
            sb.sandbox_of = "crictl ps POD ID prefix"


def tie_pod_namespaces(node: NodeSnapshot) -> None:
    """See the module docstring: record which host veth leads into each pasted pod namespace."""
    host = node.node_netns()
    if host is None:
        return
    claims: dict[str, list[tuple[NetNamespace, Link, Link, str]]] = {}
    for pod_ns in node.netns:
        if pod_ns.kind == "node":
            continue
        for inner in pod_ns.links:
            if inner.peer_ifindex is None:
                continue
            named = [h for h in host.links if h.link_netns == pod_ns.name and h.peer_ifindex == inner.ifindex]
            # ifindexes are unique in one namespace: at most one host link has inner's peer index
            pair = [h for h in host.links
                    if h.ifindex == inner.peer_ifindex and h.peer_ifindex == inner.ifindex
                    and (h.link_netns is not None or h.link_netnsid is not None)]
            if named:
                claims.setdefault(named[0].name, []).append((pod_ns, inner, named[0], "link-netns name"))
                break
            if pair and not (pair[0].link_netns and any(ns.name == pair[0].link_netns for ns in node.netns)):
                claims.setdefault(pair[0].name, []).append((pod_ns, inner, pair[0], "peer ifindex pair"))
                break
    for host_link, found in claims.items():
        if len(found) > 1 and any(how == "peer ifindex pair" for *_, how in found):
            names = ", ".join(ns.name for ns, *_ in found)
            node.warnings.append(ParseWarning(
                source="import", parser="import", line_no=0, line=host_link,
                message=f"pod namespaces {names} all look like the peer of host {host_link} (same index pair); "
                        "cannot tell which one it is: import them under the host veth's link-netns name"))
            found = [f for f in found if f[3] == "link-netns name"]
        for pod_ns, inner, chosen, how in found:
            if chosen.link_netnsid is not None and chosen.link_netnsid not in host.nsids:
                host.nsids[chosen.link_netnsid] = pod_ns.name
            if inner.link_netnsid is not None and inner.link_netnsid not in pod_ns.nsids:
                pod_ns.nsids[inner.link_netnsid] = host.name
            extra: dict[str, Any] = {"tied_by": how, "host_link": chosen.name}
            if chosen.link_netns and chosen.link_netns != pod_ns.name:
                extra["netns_name"] = chosen.link_netns
                # ip prints "link-netns NAME" only for namespaces bound under /var/run/netns
                if pod_ns.path is None:
                    pod_ns.path = f"/var/run/netns/{chosen.link_netns}"
            for k, v in extra.items():
                setattr(pod_ns, k, v)


# ----------------------------------------------------------------------------- building


def _evidence_id(node: NodeSnapshot, base: str) -> str:
    have = {e.id for e in node.evidence}
    if base not in have:
        return base
    n = 2
    while f"{base}#{n}" in have:
        n += 1
    return f"{base}#{n}"


def build_node(name: str, files: dict[str, list[tuple[str, str]]], *, keep_going: bool = False,
               cluster: Optional[ClusterObjects] = None) -> NodeSnapshot:
    """One node from pasted outputs: ``files`` maps a kind (see the module docstring) to
    ``[(path, text)]``. Raises ImportFileError for a file that cannot be read at all,
    unless ``keep_going`` (then the node is marked partial and the file is skipped)."""
    node = NodeSnapshot(name=name, source="import", collected_at=_now())
    host: Optional[NetNamespace] = None
    errors: list[str] = []
    order = ["ps", "containers", "pods", "inspect", "ip-netns", "ip-link", "ip-addr", "bridge-fdb", "ip-route",
             "ip-rule", "pod-ip-addr",
             "iptables-save", "nft", "ipvsadm", "cilium", "kubectl"]
    kinds = sorted(files, key=lambda k: order.index(k.split(":", 1)[0]) if k.split(":", 1)[0] in order else 99)
    for kind in kinds:
        base, _, arg = kind.partition(":")
        for path, text in files[kind]:
            try:
                if isinstance(text, ImportFileError):  # read_file failed (see read_file_or_error)
                    raise text
                if base == "ip-netns":
                    ids = parse_netns_ids(text, path)
                    if host is None:
                        host = NetNamespace(name=NODE_NS, kind="node")
                        node.netns.insert(0, host)
                    host.nsids.update(ids)
                    node.evidence.append(Evidence(id=_evidence_id(node, "ip-netns"),
                                                  command=command_from_paste(text) or "ip netns list",
                                                  stdout=text, origin="import", path=path))
                    continue
                if base == "bridge-fdb":
                    from labreport.parsers.ip_addr import attach_fdb, parse_fdb

                    try:
                        fdb = parse_fdb(text, source=path)
                    except ParseError as exc:
                        raise ImportFileError(str(exc).replace(f"{path}: ", "", 1), source=path) from None
                    if host is None:
                        host = NetNamespace(name=NODE_NS, kind="node")
                        node.netns.insert(0, host)
                    attach_fdb(host.links, fdb.value)
                    node.warnings.extend(w.model_copy(update={"source": path}) for w in fdb.warnings)
                    node.evidence.append(Evidence(id=_evidence_id(node, "bridge-fdb"),
                                                  command=command_from_paste(text) or "bridge fdb show",
                                                  stdout=text, origin="import", path=path))
                    continue
                parser, result = parse_file(kind, path, text)
            except ImportFileError as exc:
                if not keep_going:
                    raise
                errors.append(str(exc))
                continue
            ev_base = {"pod-ip-addr": f"ip-addr:{arg}", "ip-link": "ip-link"}.get(base, parser)
            ev = Evidence(id=_evidence_id(node, ev_base),
                          command=command_from_paste(text) or _default_command(parser, base, arg, text),
                          stdout=text, origin="import", path=path)
            node.evidence.append(ev)
            for w in result.warnings:
                node.warnings.append(w.model_copy(update={"source": path}))
            if getattr(result, "truncated", None):
                errors.append(f"{path}: {result.truncated}")  # kept, and the node says it is partial
            value = result.value
            if parser == "ps":
                node.processes.extend(value)
            elif parser in ("docker-ps", "crictl-ps", "crictl-pods", "ctr-containers"):
                for c in value:
                    setattr(c, "listed_by", [parser])  # noqa: B010 (extra field: which outputs list it)
                _add_containers(node, value, merge=True)
            elif parser == "docker-inspect":
                if arg:
                    for c in value:
                        if getattr(c, "fragment", False) and not c.name:
                            c.name = arg
                for frag in _add_containers(node, value, merge=True):
                    what = f"container {frag.name!r} is not in the node's container list" if frag.name else \
                        "a `docker inspect … | grep` fragment does not say which container it describes"
                    node.warnings.append(ParseWarning(
                        source=path, parser=parser, line_no=1, line=f"NetworkMode: {frag.network_mode}",
                        message=f"{what}; give --inspect NAME=FILE with NAME from docker ps (kept as evidence only)"))
            elif parser == "ip-addr" and base == "pod-ip-addr":
                pod_ns = next((ns for ns in node.netns if ns.name == arg), None)
                if pod_ns is None:
                    pod_ns = NetNamespace(name=arg, kind="named")
                    node.netns.append(pod_ns)
                _merge_links(pod_ns, value)
            elif parser == "ip-rule":
                if host is None:
                    host = NetNamespace(name=NODE_NS, kind="node")
                    node.netns.insert(0, host)
                host.rules.extend(value)
            elif parser in ("ip-addr", "ip-route"):
                if host is None:
                    host = NetNamespace(name=NODE_NS, kind="node")
                    node.netns.insert(0, host)
                if parser == "ip-addr":
                    _merge_links(host, value)
                else:
                    host.routes.extend(value)
            elif parser == "iptables-save":
                value.evidence_id = ev.id
                if getattr(value, "family", "ipv4") == "ipv6":
                    node.ip6tables = value
                else:
                    node.iptables = value
            elif parser == "nft":
                value.evidence_id = ev.id
                node.nftables = value
            elif parser == "ipvsadm":
                value.evidence_id = ev.id
                node.ipvs = value
            elif parser in ("cilium-service-list", "cilium-bpf-lb-list"):
                node.cilium = CiliumServiceTable(
                    source="service-list" if parser == "cilium-service-list" else "bpf-lb-list",
                    services=value, evidence_id=ev.id)
            elif parser == "kubectl":
                if cluster is not None:
                    add_cluster_objects(cluster, value)
    _infer_runtime(node)
    tie_ctr_sandboxes(node)
    tie_pod_namespaces(node)
    if errors:
        node.status = "partial"
        node.error = "; ".join(errors)
    return node


def _default_command(parser: str, base: str, arg: str, text: str = "") -> str:
    structured = text.lstrip().startswith(("[", "{"))
    if base == "pod-ip-addr":
        return f"ip netns exec {arg} ip {'-j ' if structured else ''}addr"
    if base == "ip-link":
        return "ip -j link" if structured else "ip link"
    if parser == "docker-inspect" and arg:
        return f"docker inspect {arg}"
    if structured:
        json_forms = {"docker-ps": "docker ps --format '{{json .}}'", "crictl-ps": "crictl ps -o json",
                      "crictl-pods": "crictl pods -o json", "ip-addr": "ip -j addr", "ip-route": "ip -j route",
                      "ip-rule": "ip -j rule", "kubectl": "kubectl get -o json", "nft": "nft -j list ruleset"}
        if parser in json_forms:
            return json_forms[parser]
    return DEFAULT_COMMANDS.get(parser, parser)


def add_cluster_objects(cluster: ClusterObjects, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        field = _CLUSTER_FIELDS.get(str(obj.get("kind")), "other")
        getattr(cluster, field).append(obj)


def _sort_cluster(cluster: ClusterObjects) -> None:
    def key(o: dict[str, Any]) -> tuple[str, str, str]:
        meta = as_dict(o.get("metadata"))
        return (str(o.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", "")))

    for field in list(_CLUSTER_FIELDS.values()) + ["other"]:
        getattr(cluster, field).sort(key=key)


def import_files(nodes: list[tuple[str, dict[str, list[tuple[str, str]]]]], *,
                 kubectl: Iterable[tuple[str, str]] = (), title: Optional[str] = None,
                 keep_going: bool = False) -> Snapshot:
    """A snapshot from pasted outputs: ``nodes`` is [(node name, files)] as for
    ``build_node``; ``kubectl`` is [(path, text)] of kubectl/YAML files (cluster-wide)."""
    cluster: Optional[ClusterObjects] = None
    kubectl = list(kubectl)
    paths: list[str] = []
    if kubectl:
        cluster = ClusterObjects(source="import")
        errors = []
        cluster_warnings: list[ParseWarning] = []
        for path, text in kubectl:
            try:
                if isinstance(text, ImportFileError):
                    raise text
                _, result = parse_file("kubectl", path, text)
            except ImportFileError as exc:
                if not keep_going:
                    raise
                errors.append(str(exc))
                continue
            paths.append(path)
            add_cluster_objects(cluster, result.value)
            cluster_warnings.extend(w.model_copy(update={"source": path}) for w in result.warnings)
        if errors:
            cluster.error = "; ".join(errors)
        if cluster_warnings:
            # ClusterObjects.warnings holds sentences; the structured records go beside them
            cluster.warnings.extend(f"{w.source}:{w.line_no}: {w.message}" for w in cluster_warnings)
        cluster.parse_warnings = cluster_warnings
        _sort_cluster(cluster)
    built = []
    for name, files in nodes:
        built.append(build_node(name, files, keep_going=keep_going))
        paths.extend(p for lst in files.values() for p, _ in lst)
    note = "imported by labreport import from pasted command outputs: " + ", ".join(paths)
    return Snapshot(tool_version=__version__, created_at=_now(), title=title, origin_note=note,
                    nodes=built, cluster=cluster)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
