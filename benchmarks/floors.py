"""Floors the benchmarks print beside their figures, measured in the same run: a bare
Python split pass over a file (the least any Python reader of it costs, interpreter start
included) and the kernel's own listing of the same rules (``iptables-save``,
``nft list ruleset``) in a network namespace of the benchmark's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Optional

SPLIT_PASS = (
    "import sys\n"
    "n = 0\n"
    "for line in open(sys.argv[1], encoding='utf-8').read().split('\\n'):\n"
    "    n += len(line.split())\n"
    "print(n)\n"
)


def split_pass(path: Path, repeat: int = 3) -> float:
    """Best wall time of a fresh `python3` that reads the file and splits every line into
    words (start-up included, as for the CLI figures)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", SPLIT_PASS, str(path)], check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


def can_use_netns() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def iptables_save_floor(dump: Path) -> Optional[tuple[float, float]]:
    """(iptables-restore s, iptables-save s) of the dump in a namespace of our own; None
    when not root or without iptables."""
    if not can_use_netns() or shutil.which("iptables-restore") is None:
        return None
    ns = f"lrbfl{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        t0 = time.perf_counter()
        with open(dump, "rb") as fh:
            subprocess.run(["ip", "netns", "exec", ns, "iptables-restore"], stdin=fh, check=True)
        t1 = time.perf_counter()
        subprocess.run(["ip", "netns", "exec", ns, "iptables-save"], check=True, stdout=subprocess.DEVNULL)
        return t1 - t0, time.perf_counter() - t1
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
