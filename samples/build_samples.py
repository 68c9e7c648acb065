#!/usr/bin/env python3
"""Rebuild the bundled samples from the seed fixtures with `labreport import`.

Every input is a real command output cut out of a student's lab report
(tests/fixtures/seeds/, tests/fixtures/parsers/iptables-save/; their READMEs say from which lines and
what was repaired). Nothing is invented here: each sample is exactly what
`labreport import` makes of those files. Run from anywhere:

    python3 samples/build_samples.py            # rebuild every sample
    python3 samples/build_samples.py --check    # exit 1 if a rebuilt sample differs

The `created_at` (and each node's `collected_at`) of a rebuilt snapshot is pinned to the one already on disk, so a rebuild
without changes leaves the files byte-identical.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = "tests/fixtures/seeds"
IPT = "tests/fixtures/parsers/iptables-save"

S1 = f"{SEEDS}/seed001"
S0 = f"{SEEDS}/seed000"

# sample directory -> (title, labreport import arguments, relative to the repository)
SAMPLES: dict[str, tuple[str, list[str]]] = {
    "seed001-flannel-containerd": (
        "K8s lab, seed 001: kubeadm v1.28.9, containerd 1.7, flannel (after the pod and the service)",
        ["--node", "k8s-master",
         "--ps", f"{S1}/master-ps-aux-grep-kube.txt",
         "--containers", f"{S1}/master-crictl-ps-after.txt",
         "--iptables-save", f"{IPT}/seed001-q10-grep.pasted.txt",
         "--node", "k8s-worker",
         "--ps", f"{S1}/worker-ps-aux-grep-kube.txt",
         "--containers", f"{S1}/worker-crictl-ps-after.txt",
         "--ip-addr", f"{S1}/worker-ip-addr.txt",
         "--pod-ip-addr", f"testpod={S1}/pod-ip-addr.txt",
         "--kubectl", f"{S1}/pod-and-service.yaml",
         "--kubectl", f"{S1}/test_hpa.yaml"],
    ),
    "seed001-flannel-containerd-before": (
        "K8s lab, seed 001: the nodes before the pod was deployed (Q3's pastes; Q5 compares with them)",
        ["--node", "k8s-master",
         "--ps", f"{S1}/master-ps-aux-grep-kube.txt",
         "--containers", f"{S1}/master-crictl-ps.txt",
         "--node", "k8s-worker",
         "--ps", f"{S1}/worker-ps-aux-grep-kube.txt",
         "--containers", f"{S1}/worker-crictl-ps-before.txt"],
    ),
    "seed000-weave-docker": (
        "K8s lab, seed 000: kubeadm v1.23.6, Docker (dockershim), weave (after the pod, 3 replicas)",
        ["--node", "master",
         "--ps", f"{S0}/master-ps-aux-grep-kube.wrapped.txt",
         "--containers", f"{S0}/master-docker-ps.txt",
         "--iptables-save", f"{IPT}/seed000-q11.pasted.txt",
         "--node", "node1",
         "--containers", f"{S0}/worker-docker-ps-before.txt",
         "--containers", f"{S0}/worker-docker-ps-after-new.txt",
         "--inspect", f"k8s_viewer_pod_default_05260c21-c524-41c7-82e7-ea61f09f4f2f_0={S0}/worker-docker-inspect-networkmode.wrapped.txt",
         "--kubectl", f"{S0}/pod.yaml",
         "--kubectl", f"{S0}/service.yaml",
         "--kubectl", f"{S0}/deployment.yaml"],
    ),
    "seed000-weave-docker-before": (
        "K8s lab, seed 000: the worker before the pod was deployed (Q5 asks about the worker)",
        ["--node", "node1",
         "--containers", f"{S0}/worker-docker-ps-before.txt"],
    ),
}


def build(name: str, out_dir: Path) -> Path:
    from labreport.cli import main

    title, args = SAMPLES[name]
    cwd = os.getcwd()
    os.chdir(ROOT)  # paths in the snapshot's evidence stay relative to the repository
    try:
        code = main(["import", *args, "--title", title, "--out", str(out_dir), "--quiet"])
    finally:
        os.chdir(cwd)
    if code not in (0, 10):  # 10: partial (a file only partly understood) is still a sample
        raise SystemExit(f"labreport import failed for {name} (exit {code})")
    return out_dir / "snapshot.json"


def _pin_created_at(new: Path, old: Path) -> None:
    if not old.exists():
        return
    try:
        old_data = json.loads(old.read_text("utf-8"))
    except ValueError:
        return
    data = json.loads(new.read_text("utf-8"))
    data["created_at"] = old_data.get("created_at", data.get("created_at"))
    old_nodes = {n.get("name"): n for n in old_data.get("nodes") or []}
    for n in data.get("nodes") or []:
        if n.get("name") in old_nodes:
            n["collected_at"] = old_nodes[n["name"]].get("collected_at", n.get("collected_at"))
    new.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when a sample would change")
    ap.add_argument("names", nargs="*", help="samples to build (default: all)")
    opts = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    names = opts.names or list(SAMPLES)
    changed = []
    for name in names:
        target = ROOT / "samples" / name / "snapshot.json"
        with tempfile.TemporaryDirectory() as tmp:
            new = build(name, Path(tmp))
            _pin_created_at(new, target)
            text = new.read_text("utf-8")
        if not target.exists() or target.read_text("utf-8") != text:
            changed.append(name)
            if not opts.check:
                target.parent.mkdir(parents=True, exist_ok=True)
                from labreport.snapshot import atomic_write

                atomic_write(target, text)
        print(f"{name}: {'changed' if name in changed else 'unchanged'}{' (not written)' if opts.check and name in changed else ''}")
    return 1 if (opts.check and changed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
