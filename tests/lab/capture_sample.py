"""Record a real snapshot of the e2e node lab into samples/live-containerd-docker-node/.

    sudo python -m tests.lab.capture_sample [--out DIR]

Builds a NodeLab (containerd + CRI pods, a dockershim-style Docker pod, CNI bridge, kube-proxy
rules — see tests/lab/__init__.py), runs the real ``labreport collect --local`` inside the
node's namespace, and writes DIR/snapshot.json, DIR/truth.json (the lab's ground truth) and
DIR/NOTE.md (how it was captured, what is real, what was filtered out and why).

Filtering (said in NOTE.md): the collector runs on a shared machine, so ``ps`` lists every
process on it and /var/run/netns holds other concurrent labs' namespaces. Only this lab's
processes (its daemons, their shims and the containers' processes) and this node's
namespaces (the node, its pods' and its uplink gateway's) are kept — records and raw
evidence alike. Nothing else is changed. The result is scanned for secrets; any hit aborts.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

from tests.lab.cli import labreport_argv
from tests.lab.node import NodeLab
from tests.lab.truth import NodeTruth

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "samples" / "live-containerd-docker-node"
NODE_NAME = "lab-node"

SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)\b(password|passwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token)\s*[=:]\s*\S+"),
    re.compile(r"(?i)authorization:\s*\S+"),
    re.compile(r"(?i)\bbearer\s+[a-z0-9._-]{16,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}"),  # JWT
]


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def lab_pids(lab: NodeLab) -> set[int]:
    """The lab's processes: its daemons, anything whose command line names the lab's
    directory (containerd shims, dockerd's containerd), and all their descendants."""
    roots: set[int] = set()
    for d in (lab.containerd.daemon if lab.containerd else None, lab.dockerd.daemon if lab.dockerd else None):
        if d is not None and d.pid:
            roots.add(d.pid)
    marker = str(lab.base).encode()
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        pp = _ppid(pid)
        if pp is not None:
            parents[pid] = pp
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmd and b"labreport" not in cmd and b"capture_sample" not in cmd:
            roots.add(pid)
    keep = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, pp in parents.items():
            if pp in keep and pid not in keep:
                keep.add(pid)
                changed = True
    return keep


def _kept_netns(truth: NodeTruth) -> set[str]:
    names = {truth.node_ns}
    if truth.uplink_peer_ns:
        names.add(truth.uplink_peer_ns)
    for p in truth.pods:
        names.add(p.netns_name if p.netns_name else f"pid:{p.sandbox_pid}")
    return names


def _filter_ps(stdout: str, pids: set[int]) -> str:
    lines = stdout.splitlines(keepends=True)
    out = lines[:1]
    for line in lines[1:]:
        fields = line.split(None, 2)
        if len(fields) >= 2 and fields[1].isdigit() and int(fields[1]) in pids:
            out.append(line)
    return "".join(out)


def filter_snapshot(data: dict, truth: NodeTruth, pids: set[int]) -> dict[str, int]:
    """Keep only this lab's processes and namespaces (records and evidence). Returns counts
    of what was dropped, for NOTE.md."""
    (node,) = data["nodes"]
    keep_ns = _kept_netns(truth)
    dropped = {"processes": 0, "netns": 0, "evidence": 0}
    procs = [p for p in node["processes"] if p["pid"] in pids]
    dropped["processes"] = len(node["processes"]) - len(procs)
    node["processes"] = procs
    ns_keep = [n for n in node["netns"] if n["name"] in keep_ns]
    dropped["netns"] = len(node["netns"]) - len(ns_keep)
    node["netns"] = ns_keep
    for n in ns_keep:
        n["nsids"] = {k: v for k, v in (n.get("nsids") or {}).items() if v in keep_ns}
    evidence = []
    for ev in node["evidence"]:
        eid = ev["id"]
        if ":" in eid and eid.split(":", 1)[0] in ("ip-addr", "ip-route", "ip-link", "ip-neigh") \
                and eid.split(":", 1)[1] not in keep_ns:
            dropped["evidence"] += 1
            continue
        if eid == "ps":
            ev["stdout"] = _filter_ps(ev["stdout"], pids)
        evidence.append(ev)
    node["evidence"] = evidence
    return dropped


def scan_for_secrets(text: str) -> list[str]:
    hits = []
    for pat in SECRET_PATTERNS:
        for m in pat.finditer(text):
            hits.append(m.group(0)[:80])
    return hits


def note_md(*, when: str, truth: NodeTruth, collect_cmd: list[str], versions: dict, dropped: dict,
            build_s: float, collect_s: float, answers: dict[str, int]) -> str:
    pods = "\n".join(
        f"- `{p.key}` ({p.runtime}) — IP {p.ip}, sandbox `{p.sandbox_id[:12]}`, containers "
        + ", ".join(f"`{c.name}`" for c in p.containers)
        + f"; host veth `{p.veth.host_ifname}` (ifindex {p.veth.host_ifindex}) ↔ pod `eth0` (ifindex "
          f"{p.veth.pod_ifindex}) in `{p.netns_name or p.netns_path}`"
        for p in truth.pods)
    svcs = "\n".join(
        f"- `{s.name}` {s.cluster_ip}:{s.port}/{s.protocol}"
        + (f", NodePort {s.node_port}" if s.node_port else "")
        + " → " + ", ".join(f"{e.address} ({e.pod}, share {e.share:.4f})" for e in s.endpoints)
        for s in truth.services)
    vers = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
    return f"""# live-containerd-docker-node — a real snapshot of the lab node

Captured **{when}** on this project's build machine by `tests/lab/capture_sample.py`
(`sudo python -m tests.lab.capture_sample`), which builds the e2e node lab and runs the real
collector inside it. Lab build {build_s:.1f} s, collection {collect_s:.1f} s.

## What is real

Everything in `snapshot.json` was produced by `labreport collect --local` running on a live
node: containerd (CRI plugin, runtime.v1 over gRPC), dockerd, runc, the CNI bridge/host-local/
portmap plugins, the kernel's veth pairs and bridge, and iptables (nf_tables backend) — {vers}.
The node is a network namespace (`{truth.node_ns}`) of the lab's own; there is no kubelet,
kube-apiserver or kube-proxy (none can be installed here), so:

- the pods were created the way kubelet does it, through the CRI (RunPodSandbox,
  CreateContainer, StartContainer) and — for `dweb` — the way dockershim did it
  (`k8s_POD_…` pause container with `--network none`, app container with
  `--network container:k8s_POD_…`, the CNI bridge plugin run against `/proc/<pause pid>/ns/net`);
- the Service rules were written in kube-proxy's iptables format (chain names from its hash,
  its comments, probabilities 1/3, 1/2, last) and loaded with `iptables-restore --noflush`
  into the node's nat table; before collecting, `curl` inside the node through the cluster IP
  reached all three pods ({", ".join(f"{k}: {v}" for k, v in sorted(answers.items()))} answers);
- images are local builds: `registry.k8s.io/pause:3.6` is a 20-line static C pause, the app
  image is the static busybox running `httpd -f -p 80 -h /www`.

The cluster part (`cluster`) is empty: collected with `--no-api`.

Command (run as root):

```
{shlex.join(["ip", "netns", "exec", truth.node_ns, *collect_cmd])}
```

## What was filtered out (and nothing else changed)

The machine is shared: `ps` saw every process on it and `/var/run/netns` held other
concurrent test labs' namespaces. Kept: this lab's processes (its containerd and dockerd,
their shims, the pause/httpd/sh processes of the containers) and the namespaces of this node,
its pods and its uplink's gateway namespace. Dropped: {dropped['processes']} other processes
(records and their `ps` lines), {dropped['netns']} other namespaces and {dropped['evidence']}
pieces of their evidence. The result was scanned for secrets (private keys, tokens,
passwords, authorization headers): none.

## Ground truth (also in `truth.json`)

Pods:
{pods}

Services:
{svcs}

Uplink `{truth.uplink}` {truth.uplink_ip}/24 (a veth whose peer is in `{truth.uplink_peer_ns}`,
the gateway 192.168.56.1); bridge `{truth.bridge}` {truth.bridge_ip}/24, pod CIDR {truth.pod_cidr}.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ns = ap.parse_args(argv)
    from labreport import snapshot as sm

    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with NodeLab() as lab, tempfile.TemporaryDirectory(prefix="lr-capture-") as tmp:
        truth = lab.build()
        answers = lab.reach_all_endpoints("default/web:http")
        pids = lab_pids(lab)
        collect_cmd = [*labreport_argv(), "collect", "--local", "--out", f"{tmp}/snap", "--name", NODE_NAME,
                       "--cri-socket", truth.containerd_socket, "--docker-host", truth.docker_host,
                       "--no-api", "-q"]
        t0 = dt.datetime.now()
        cp = lab.exec(*collect_cmd, timeout=300, check=False)
        collect_s = (dt.datetime.now() - t0).total_seconds()
        if cp.returncode != 0:
            print(cp.stdout, cp.stderr, file=sys.stderr)
            return 1
        data = json.loads(Path(f"{tmp}/snap/snapshot.json").read_text())
        dropped = filter_snapshot(data, truth, pids)
        data["title"] = "Live lab node: containerd (CRI) + dockershim-style Docker pod, CNI bridge, kube-proxy iptables rules"
        data["origin_note"] = (f"Captured {when} by tests/lab/capture_sample.py from a real node lab built on the "
                               "project's machine (containerd, dockerd, runc, CNI, iptables all real; no kubelet/"
                               "apiserver/kube-proxy). Other processes and other labs' namespaces on the shared "
                               "machine were filtered out; see NOTE.md.")
        text = json.dumps(data)
        hits = scan_for_secrets(text)
        if hits:
            print("secret-like strings found, not writing the sample:", hits, file=sys.stderr)
            return 2
        snap = sm.from_dict(data, where="captured snapshot")
        ns.out.mkdir(parents=True, exist_ok=True)
        sm.save(snap, ns.out)
        shown_cmd = [c if not c.startswith(tmp) else c.replace(tmp, "/tmp/lr-capture") for c in collect_cmd]
        shown_cmd[0] = "labreport"
        sm.atomic_write(ns.out / "truth.json", json.dumps(dataclasses.asdict(truth), indent=1) + "\n")
        sm.atomic_write(ns.out / "NOTE.md", note_md(
            when=when, truth=truth, collect_cmd=shown_cmd, versions=data["nodes"][0]["info"].get("versions", {}),
            dropped=dropped, build_s=lab.build_seconds or 0.0, collect_s=collect_s, answers=answers))
    print(f"wrote {ns.out}/snapshot.json, truth.json, NOTE.md; dropped {dropped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
