"""containerd with its CRI plugin, on paths of its own, inside a node's network namespace."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from tests.lab.cni import CNI_BIN
from tests.lab.cri import CriClient
from tests.lab.netns import nsenter_net
from tests.lab.proc import Daemon, LabError, kill_pids, pids_with_cmdline_containing, run, wait_for


def _set(text: str, key: str, value: str) -> str:
    """Set every ``key = …`` line (TOML, any indent) to ``value``; fail if absent."""
    new, n = re.subn(rf"(?m)^(\s*{re.escape(key)}\s*=\s*).*$", lambda m: m.group(1) + value, text)
    if n == 0:
        raise LabError(f"containerd config default has no {key!r}")
    return new


def containerd_config(*, sock: Path, root: Path, state: Path, cni_conf_dir: Path, sandbox_image: str) -> str:
    text = run(["containerd", "config", "default"]).stdout
    # Only the top-level root/state and [grpc] address are unindented / first; set explicitly.
    text = re.sub(r'(?m)^root = .*$', f'root = "{root}"', text)
    text = re.sub(r'(?m)^state = .*$', f'state = "{state}"', text)
    text = re.sub(r'(?ms)(^\[grpc\]\s*\n\s*address = ).*?$', lambda m: m.group(1) + f'"{sock}"', text)
    text = _set(text, "restrict_oom_score_adj", "true")
    text = _set(text, "sandbox_image", f'"{sandbox_image}"')
    text = _set(text, "bin_dir", f'"{CNI_BIN}"')
    text = _set(text, "conf_dir", f'"{cni_conf_dir}"')
    return text


@dataclass
class Containerd:
    node_ns: str
    base: Path  # everything lives under here
    sandbox_image: str
    daemon: Daemon | None = None

    @property
    def sock(self) -> Path:
        return self.base / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.base / "net.d"

    def start(self) -> "Containerd":
        cfg = self.base / "containerd.toml"
        cfg.write_text(containerd_config(sock=self.sock, root=self.base / "root", state=self.base / "state",
                                         cni_conf_dir=self.cni_conf_dir, sandbox_image=self.sandbox_image))
        argv = [*nsenter_net(self.node_ns), "containerd", "--config", str(cfg), "--address", str(self.sock),
                "--root", str(self.base / "root"), "--state", str(self.base / "state")]
        self.daemon = Daemon("containerd", argv, self.base / "containerd.log").start()
        return self

    def wait_ready(self, timeout: float = 60.0) -> CriClient:
        assert self.daemon is not None

        def ready():
            if not self.daemon.alive():
                raise LabError("containerd exited" + self.daemon.log_tail())
            if not self.sock.exists():
                return False
            client = CriClient(str(self.sock), timeout=2)
            try:
                client.version()
            finally:
                client.close()
            return True

        wait_for("containerd CRI to answer Version", ready, timeout=timeout,
                 on_timeout=self.daemon.log_tail)
        return CriClient(str(self.sock))

    def ctr(self, *args: str, timeout: float = 60.0):
        return run(["ctr", "-a", str(self.sock), "-n", "k8s.io", *args], timeout=timeout)

    def import_images(self, oci_tar: Path) -> None:
        self.ctr("images", "import", str(oci_tar), timeout=120)

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        # shims are daemonized children of containerd; only ours carry our socket path
        leftovers = pids_with_cmdline_containing(f"-address {self.sock}") + \
            pids_with_cmdline_containing(str(self.sock))
        if leftovers:
            kill_pids(sorted(set(leftovers)))
            time.sleep(0.2)
