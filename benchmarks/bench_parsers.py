"""Benchmark of the command-output parsers and `labreport import` on a busy node's pastes.

    python3 benchmarks/bench_parsers.py [--processes 5000] [--pods 250]

The inputs are built from the real outputs in tests/fixtures (seed 001's `ps aux` rows,
seed 000's `docker ps` rows, seed 001's `crictl ps` rows, the host veth block of seed 001's
`ip addr`): each row repeated with a fresh pid / container id / ifindex, so the text has
exactly the shapes the tools print. Then it times each parser and a whole
`import_files` of one node (ps + docker ps + crictl ps + ip addr + one pod namespace per
pod) — the work `labreport import` does besides reading and writing files.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

from labreport.importer import import_files
from labreport.parsers import crictl_ps, docker_ps, ip_addr, ps

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "tests" / "fixtures" / "seeds"


def _hex(i: int, n: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()[:n]


def make_ps(n: int) -> str:
    rows = (SEEDS / "seed001/master-ps-aux-grep-kube.txt").read_text().split("\n")[1:-1]
    out = ["USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND"]
    for i in range(n):
        user, _pid, rest = rows[i % len(rows)].split(None, 2)
        out.append(f"{user}    {100000 + i} {rest}")
    return "\n".join(out) + "\n"


def make_docker_ps(n: int) -> str:
    lines = (SEEDS / "seed000/master-docker-ps.txt").read_text().split("\n")
    out = [lines[0]]
    for i in range(n):
        row = lines[1 + i % 10].split("\t")
        row[0] = _hex(i, 12)
        row[-1] = row[-1].replace("_kube-system_", f"_ns{i}_")
        out.append("\t".join(row))
    return "\n".join(out) + "\n"


def make_crictl_ps(n: int) -> str:
    lines = (SEEDS / "seed001/master-crictl-ps.txt").read_text().split("\n")
    out = [lines[0]]
    for i in range(n):
        row = lines[1 + i % 8].split("\t")
        row[0], row[6] = _hex(i, 13), _hex(i // 2, 13)
        out.append("\t".join(row))
    return "\n".join(out) + "\n"


def make_ip_addr(pods: int) -> tuple[str, list[str]]:
    host = (SEEDS / "seed001/worker-ip-addr.txt").read_text().rstrip("\n").split("\n")
    head, veth = host[:-4], "\n".join(host[-4:])
    pod = (SEEDS / "seed001/pod-ip-addr.txt").read_text()
    parts, pod_texts = ["\n".join(head)], []
    for i in range(pods):
        idx = 6 + i
        parts.append(veth.replace("5: veth05dbc1b4@if2", f"{idx}: veth{_hex(i, 8)}@if2")
                     .replace("cni-a4de7ab4-a30f-f2fc-e527-9f01229125dc", f"cni-{_hex(i, 8)}-0000"))
        pod_texts.append(pod.replace("eth0@if5", f"eth0@if{idx}"))
    return "\n".join(parts) + "\n", pod_texts


def timed(label: str, fn, *args) -> object:
    t0 = time.perf_counter()
    value = fn(*args)
    dt = time.perf_counter() - t0
    n = len(value.value) if hasattr(value, "value") else "-"
    print(f"{label:<44} {dt * 1000:8.1f} ms  ({n} records)")
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=250)
    a = ap.parse_args()
    ps_text = make_ps(a.processes)
    dps = make_docker_ps(a.pods * 4)
    cps = make_crictl_ps(a.pods * 2)
    ipa, pods = make_ip_addr(a.pods)
    print(f"inputs: ps {len(ps_text) // 1024} KB, docker ps {len(dps) // 1024} KB, "
          f"crictl ps {len(cps) // 1024} KB, ip addr {len(ipa) // 1024} KB + {len(pods)} pod ip addr")
    timed(f"ps aux ({a.processes} rows)", ps.parse, ps_text)
    timed(f"docker ps ({a.pods * 4} rows)", docker_ps.parse, dps)
    timed(f"crictl ps ({a.pods * 2} rows)", crictl_ps.parse, cps)
    timed(f"ip addr ({a.pods + 4} links)", ip_addr.parse, ipa)
    files = {"ps": [("ps.txt", ps_text)], "containers": [("docker-ps.txt", dps)], "ip-addr": [("ip-addr.txt", ipa)]}
    for i, t in enumerate(pods):
        files[f"pod-ip-addr:cni-{_hex(i, 8)}-0000"] = [(f"pod{i}.txt", t)]
    t0 = time.perf_counter()
    snap = import_files([("worker", files)])
    dt = time.perf_counter() - t0
    node = snap.nodes[0]
    tied = sum(1 for ns in node.netns if getattr(ns, "tied_by", None))
    print(f"{'import_files (one node, all of the above)':<44} {dt * 1000:8.1f} ms  "
          f"({len(node.processes)} processes, {len(node.containers)} containers, {len(node.netns)} netns, {tied} tied)")


if __name__ == "__main__":
    main()
