"""Multi-node collection at scale, over real TCP on 127.0.0.1 (no lab needed):

1. N nodes that accept a connection and never answer (the worst a cluster can do), with
   ``-j J`` and ``--deadline D``: the run's wall time beside its floor, the deadline itself;
   the most sessions open at once beside -j.
2. A node that prints without end, cut at ``--max-node-output``: the run's peak RSS beside
   the floor, the peak RSS of the same command against a node that refuses at once.

    python3 benchmarks/bench_transport.py [--nodes 500] [-j 32] [--deadline 5]

Needs ``ssh`` (OpenSSH's client: ``ssh -G`` resolves each node) and, for part 2, sshd.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LABREPORT = [sys.executable, "-c", "from labreport.cli import run; run()"]


class Silent:
    """Accepts, never answers, counts the connections open at once."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.open = self.max_open = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.open += 1
                self.max_open = max(self.max_open, self.open)
            threading.Thread(target=self._hold, args=(c,), daemon=True).start()

    def _hold(self, c: socket.socket) -> None:
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass
        c.close()
        with self.lock:
            self.open -= 1


def peak_rss_mib(argv: list[str], d: Path) -> tuple[int, float, float]:
    """(exit status, wall seconds, peak RSS MiB) of one run (wait4's rusage)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(d / "err.txt", "w"))
    _, status, ru = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - t0, ru.ru_maxrss / 1024


def hung_nodes(n: int, j: int, deadline: float, d: Path) -> None:
    srv = Silent()
    cfg = d / "ssh_config"
    cfg.write_text("".join(f"Host n{i:04d}\n  HostName 127.0.0.1\n  Port {srv.port}\n" for i in range(n))
                   + "Host *\n  StrictHostKeyChecking yes\n  UserKnownHostsFile /dev/null\n")
    nodes = ",".join(f"n{i:04d}" for i in range(n))
    code, wall, rss = peak_rss_mib(LABREPORT + ["collect", "--nodes", nodes, "--ssh-config", str(cfg), "--no-api",
                                                "--timeout", "60", "-j", str(j), "--deadline", str(deadline),
                                                "--out", str(d / "snap"), "-q"], d)
    print(f"{n} hung nodes, -j {j}, --deadline {deadline:g}: {wall:.2f} s (floor: the deadline, {deadline:g} s; "
          f"without it: {n / j * 60 / 60:.0f} min of 60 s timeouts), exit {code}, "
          f"sessions open at most {srv.max_open} (-j {j}), peak RSS {rss:.0f} MiB")


def endless_node(cap_mib: float, d: Path) -> None:
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        print("endless node: skipped (no sshd)")
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.test_ssh_transport import Sshd

    key = d / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    a = Sshd(d / "a", key.with_suffix(".pub"))
    try:
        kh = d / "kh"
        kh.write_text(a.known_hosts_line())
        refused = socket.socket()
        refused.bind(("127.0.0.1", 0))
        rport = refused.getsockname()[1]
        refused.close()
        cfg = d / "cfg"
        cfg.write_text(f"Host endless\n HostName 127.0.0.1\n Port {a.port}\nHost refused\n HostName 127.0.0.1\n"
                       f" Port {rport}\nHost *\n User root\n IdentityFile {key}\n UserKnownHostsFile {kh}\n"
                       " StrictHostKeyChecking yes\n")
        printer = d / "printer"
        printer.write_text("#!/bin/sh\nexec yes '{\"garbage\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}'\n")
        printer.chmod(0o755)
        common = ["--ssh-config", str(cfg), "--no-api", "--timeout", "120", "--remote-command", str(printer),
                  "--max-node-output", f"{cap_mib:g}", "-q"]
        _, _, floor = peak_rss_mib(LABREPORT + ["collect", "--nodes", "refused", "--out", str(d / "s1"), *common], d)
        code, wall, rss = peak_rss_mib(LABREPORT + ["collect", "--nodes", "endless", "--out", str(d / "s2"), *common], d)
        print(f"a node printing without end, --max-node-output {cap_mib:g}: cut after {wall:.2f} s, exit {code}, "
              f"peak RSS {rss:.0f} MiB (floor: {floor:.0f} MiB, the same run against a node that refuses)")
    finally:
        a.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("-j", type=int, default=32)
    ap.add_argument("--deadline", type=float, default=5.0)
    ap.add_argument("--cap", type=float, default=64.0, help="MiB")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lr-bench-transport-") as tmp:
        d = Path(tmp)
        (d / "hung").mkdir()
        hung_nodes(args.nodes, args.j, args.deadline, d / "hung")
        (d / "endless").mkdir()
        endless_node(args.cap, d / "endless")


if __name__ == "__main__":
    main()
