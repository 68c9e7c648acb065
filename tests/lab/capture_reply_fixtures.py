"""Record the snapshots tests/test_trace_reply.py reads, from the kernel-oracle labs.

    sudo python -m tests.lab.capture_reply_fixtures [--out tests/fixtures/trace-reply]

Builds each lab (tests/lab/svclab.py), runs the real ``labreport collect --local`` inside
every node namespace (tests/lab/oracle_cases.py:collect_snapshot, before any kernel trace
rule exists) and writes ``<name>.json.gz``:

- ``iptables-one-node``: ServiceLab(mode="iptables", nodes=1);
- ``nft-two-nodes``: ServiceLab(mode="nftables", nodes=2), joined by VXLAN;
- ``hairpin-bridge-nf-0`` / ``hairpin-bridge-nf-1``: HairpinLab(mode="iptables"), the node
  collected with net.bridge.bridge-nf-call-iptables 0, then 1.

Filtering (the collector runs on a shared machine): only the lab's own namespaces are kept
(``/var/run/netns`` holds every concurrent lab's), and the process list, the containers,
the conntrack table and the raw evidence are dropped (they name other people's processes
and namespaces; the trace reads none of them). The records kept are as collected.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
from pathlib import Path

from labreport import snapshot as snapmod
from tests.lab.oracle_cases import collect_snapshot
from tests.lab.svclab import HairpinLab, ServiceLab

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "trace-reply"


def _write(lab: ServiceLab, path: Path, tmp: Path) -> None:
    snap = snapmod.load(collect_snapshot(lab, tmp / path.name))
    prefix = f"lro{lab.tag}"
    for node in snap.nodes:
        node.netns = [ns for ns in node.netns if ns.kind == "node" or ns.name.startswith(prefix)]
        node.processes, node.containers, node.evidence, node.conntrack = [], [], [], None
    data = snap.model_dump(mode="json")
    path.write_bytes(gzip.compress(json.dumps(data, sort_keys=True).encode(), mtime=0))
    print(f"{path}: {path.stat().st_size} bytes")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name, lab in (("iptables-one-node", ServiceLab(mode="iptables", nodes=1)),
                          ("nft-two-nodes", ServiceLab(mode="nftables", nodes=2))):
            with lab.build():
                _write(lab, a.out / f"{name}.json.gz", tmp)
        with HairpinLab(mode="iptables").build() as hl:
            for value in (0, 1):
                hl.set_bridge_nf(value)
                _write(hl, a.out / f"hairpin-bridge-nf-{value}.json.gz", tmp)


if __name__ == "__main__":
    main()
