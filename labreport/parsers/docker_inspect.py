"""Parse ``docker inspect <container>…`` (a JSON array) and the ``| grep`` fragments of it
that lab reports quote (``docker inspect X | grep NetworkMode``).

Usage::

    from labreport.parsers import docker_inspect
    result = docker_inspect.parse(text, source="inspect.json")
    for c in result.value:               # list[labreport.snapshot.Container]
        print(c.name, c.network_mode, c.pid)

Full JSON: each object becomes a Container (``runtime="docker"``) with
``id`` (Id), ``name`` (Name without "/"), ``image`` (Config.Image), ``image_id`` (Image),
``state`` (State.Status), ``pid`` (State.Pid; None when 0, i.e. not running),
``created`` (Created), ``command`` (Path + Args), ``network_mode``
(HostConfig.NetworkMode, e.g. ``container:<sandbox id>`` for a pod's app container,
``none`` for a dockershim sandbox wired by CNI), ``netns_path``
(NetworkSettings.SandboxKey when set), ``pod_ip`` (NetworkSettings.IPAddress when set),
``labels`` (Config.Labels). Pod fields come from kubelet's labels
(io.kubernetes.pod.name / .namespace / .uid, io.kubernetes.container.name,
io.kubernetes.sandbox.id, io.kubernetes.docker.type=podsandbox) and else from the
dockershim name ``k8s_<container>_<pod>_<ns>_<uid>_<attempt>``.

Fragments (decided here): text that is not a JSON array/object but holds
``"Key": value`` pairs — what ``grep`` leaves of ``docker inspect`` — becomes ONE
Container holding only what the fragment states (``network_mode``, ``pid``, ``id``,
``name``, ``image`` when their keys appear), with the extra field ``fragment=True`` and
``id``/``name`` set to ``""`` when the fragment does not state them. The caller knows
which container was inspected (the command line names it): ``parse(…, name=…)`` sets
``name``, and ``labreport import --inspect NAME=FILE`` merges the fragment into that
container of ``docker ps``. A PDF wrap between the key and its value
(``"NetworkMode":`` / ``"container:23f2…",``) is joined.

Returns ``list[Container]``; example (captured here, dockershim-style names)::

    [{"Id": "d7ffd7649fe4…", "Name": "/k8s_viewer_pod_default_05260c21-…_0",
      "State": {"Status": "running", "Pid": 13955, …},
      "HostConfig": {"NetworkMode": "container:0adf68022cc1…", …}, …}]
    -> Container(id="d7ffd7649fe4…", name="k8s_viewer_pod_default_05260c21-…_0",
                 network_mode="container:0adf68022cc1…", pid=13955, state="running",
                 pod_name="pod", pod_namespace="default", sandbox_id="0adf68022cc1…",
                 container_name="viewer", …)
"""

from __future__ import annotations

import re
from typing import Any, Optional

from labreport.errors import ParseError
from labreport.parsers._common import as_dict, as_list, as_str_dict, dockershim_name, is_prompt_line, label_pod_fields, load_json, to_int, without_prompts
from labreport.parsers.base import ParseResult, ParserInfo, check_text
from labreport.snapshot import Container

_PAIR_RE = re.compile(r'"(?P<key>[A-Za-z][\w.]*)"\s*:\s*(?P<value>"(?:[^"\\]|\\.)*"|-?\d+|true|false|null)')
_FRAGMENT_KEYS = {"NetworkMode", "Pid", "Id", "Name", "Image", "SandboxKey", "IPAddress", "Status"}


def _detect(text: str) -> float:
    head = text[:6000]
    s = head.lstrip()
    if s.startswith("[") and '"HostConfig"' in head or ('"Id"' in head and '"State"' in head and '"Config"' in head):
        return 0.95
    if s.startswith("[") and '"Id"' in head and '"Name"' in head:
        return 0.8
    keys = {m.group("key") for m in _PAIR_RE.finditer(head)}
    if "NetworkMode" in keys or ("Pid" in keys and "Status" in keys):
        if not s.startswith(("{", "[")):
            return 0.6
    return 0.0


INFO = ParserInfo(
    name="docker-inspect",
    commands=("docker inspect <container>…", "docker inspect <container> | grep NetworkMode"),
    description="containers from docker inspect JSON: network mode, pid, kubelet labels",
    detect=_detect,
    target="containers",
)


def _convert(obj: dict[str, Any]) -> Container:
    """The one place where inspect JSON becomes a typed Container."""
    config = as_dict(obj.get("Config"))
    state = as_dict(obj.get("State"))
    host = as_dict(obj.get("HostConfig"))
    net = as_dict(obj.get("NetworkSettings"))
    labels = as_str_dict(config.get("Labels"))
    name = str(obj.get("Name") or "").lstrip("/")
    cid = str(obj.get("Id") or obj.get("ID") or "")
    if not cid:
        raise ValueError("no Id")
    fields: dict[str, Any] = {}
    k8s = dockershim_name(name)
    if k8s:
        fields.update(k8s)
    fields.update(label_pod_fields(labels))
    docker_type = labels.get("io.kubernetes.docker.type")
    if docker_type == "podsandbox" or fields.get("container_name") == "POD":
        fields["is_sandbox"] = True
        fields["sandbox_id"] = cid
    path = obj.get("Path")
    args = as_list(obj.get("Args"))
    command = " ".join(str(x) for x in ([path] if path else []) + list(args)) or None
    pid = to_int(state.get("Pid"))
    return Container(
        runtime="docker",
        id=cid,
        name=name,
        image=config.get("Image") or None,
        image_id=obj.get("Image") or None,
        state=(str(state.get("Status")).lower() if state.get("Status") else None),
        created=obj.get("Created") or None,
        command=command,
        pid=pid if pid else None,
        network_mode=host.get("NetworkMode") or None,
        netns_path=net.get("SandboxKey") or None,
        pod_ip=net.get("IPAddress") or None,
        labels=labels,
        **fields,
    )


def _parse_fragment(text: str, result: ParseResult[list[Container]], name: Optional[str]) -> None:
    lines = [ln for ln in text.split("\n") if not is_prompt_line(ln)]
    # join a PDF wrap between a key and its value: '"NetworkMode":' / '"container:…",'
    joined = re.sub(r':\s*\n\s*(?=["\d\-tfn])', ": ", "\n".join(lines))
    found: dict[str, Any] = {}
    for m in _PAIR_RE.finditer(joined):
        key = m.group("key")
        if key in _FRAGMENT_KEYS and key not in found:
            raw = m.group("value")
            try:
                found[key] = load_json(raw)
            except ValueError:
                found[key] = raw.strip('"')
    if not found:
        raise ParseError("neither docker inspect JSON nor a fragment of it (\"NetworkMode\": …)", source=result.source)
    for line_no, line in enumerate(joined.split("\n"), 1):
        s = line.strip().rstrip(",")
        if s and not _PAIR_RE.search(s) and s not in ("{", "}", "[", "]", "```"):
            result.warn(line_no, line, "not a \"Key\": value line of docker inspect")
    pid = to_int(found.get("Pid"))
    cname = str(found.get("Name") or name or "").lstrip("/")
    fields: dict[str, Any] = dict(dockershim_name(cname) or {})
    result.value.append(
        Container(
            runtime="docker",
            id=str(found.get("Id") or ""),
            name=cname,
            image=found.get("Image") if isinstance(found.get("Image"), str) else None,
            state=str(found["Status"]).lower() if isinstance(found.get("Status"), str) else None,
            pid=pid if pid else None,
            network_mode=found.get("NetworkMode") if isinstance(found.get("NetworkMode"), str) else None,
            netns_path=found.get("SandboxKey") or None,
            pod_ip=found.get("IPAddress") or None,
            fragment=True,
            **{k: v for k, v in fields.items() if k not in ("is_sandbox",)},
            is_sandbox=bool(fields.get("is_sandbox")),
        )
    )


def parse(text: str, *, source: str = "<input>", name: Optional[str] = None) -> ParseResult[list[Container]]:
    """``name``: the container the command inspected, for a grep fragment that omits it."""
    text = check_text(text, source)
    result: ParseResult[list[Container]] = ParseResult(value=[], parser=INFO.name, source=source)
    body = without_prompts(text)
    if body.startswith(("[", "{")):
        try:
            data = load_json(body)
        except ValueError as exc:
            if body.startswith("["):
                raise ParseError(f"docker inspect output is not valid JSON: {exc}", source=source) from None
            data = None
        if data is not None:
            if isinstance(data, dict):
                data = [data]
            if not isinstance(data, list):
                raise ParseError("docker inspect prints a JSON array of objects", source=source)
            for i, obj in enumerate(data):
                if not isinstance(obj, dict):
                    result.warn(1, str(obj)[:200], f"item {i} is not an object")
                    continue
                try:
                    result.value.append(_convert(obj))
                except (ValueError, TypeError) as exc:
                    result.warn(1, str(obj.get("Name", ""))[:200], f"item {i}: cannot read: {exc}")
            if data and not result.value:
                raise ParseError("no container in this JSON (no Id fields): not docker inspect output", source=source)
            return result
    _parse_fragment(text, result, name)
    return result
