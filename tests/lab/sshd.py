"""A real SSH target inside a lab namespace: sshd with its own host key, pid file and
authorized_keys (a key generated here), and the matching client config / known_hosts.

Clients must run inside a lab namespace too (``ip netns exec MASTER ssh -F CFG worker``):
lab addresses are never contacted from the root namespace.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.netns import in_netns
from tests.lab.proc import Daemon, LabError, run, wait_for

# Every session's shell reads root's ~/.bashrc, which on these machines runs `pyenv rehash`
# under a lock file (~/.pyenv/shims/.pyenv-shim). A session killed mid-rehash (the tests kill
# sshd and hung sessions on purpose) leaves the lock behind, and every later session then waits
# PYENV_REHASH_TIMEOUT (60 s by default) before running its command: seen here as 'timed out
# after 60s (collecting)' in every SSH test after one such kill. Two seconds is ample for a
# real rehash by a concurrent session.
RC_ENV = "PYENV_REHASH_TIMEOUT=2"


def default_remote_path() -> str:
    """PATH for the remote side: this interpreter's bin dir first, so ``labreport`` resolves."""
    return os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/sbin", "/usr/local/bin",
                            "/usr/sbin", "/usr/bin", "/sbin", "/bin"])


@dataclass
class ClientKey:
    private: Path
    public: Path

    @classmethod
    def generate(cls, directory: Path) -> "ClientKey":
        directory.mkdir(parents=True, exist_ok=True)
        key = directory / "id_ed25519"
        if not key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "labreport-lab", "-f", str(key)])
        return cls(key, Path(str(key) + ".pub"))


@dataclass
class SshServer:
    """sshd listening on ``address:port`` inside namespace ``netns``; start() / stop()."""

    netns: str
    base: Path
    address: str
    client_key: ClientKey
    port: int = 22
    remote_path: str = field(default_factory=default_remote_path)
    daemon: Daemon | None = None

    @property
    def host_key(self) -> Path:
        return self.base / "ssh_host_ed25519_key"

    def host_public_key(self) -> str:
        """"ssh-ed25519 AAAA…" (type and key, without the comment)."""
        return " ".join(Path(str(self.host_key) + ".pub").read_text().split()[:2])

    def start(self) -> "SshServer":
        self.base.mkdir(parents=True, exist_ok=True)
        # sshd's privilege-separation directory: the Debian package's service creates it at
        # boot, so a machine where sshd never ran as a service has none ("Missing privilege
        # separation directory: /run/sshd")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)])
        auth = self.base / "authorized_keys"
        auth.write_text(self.client_key.public.read_text())
        auth.chmod(0o600)
        cfg = self.base / "sshd_config"
        cfg.write_text("\n".join([
            f"ListenAddress {self.address}:{self.port}",
            f"HostKey {self.host_key}",
            f"PidFile {self.base / 'sshd.pid'}",
            f"AuthorizedKeysFile {auth}",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "X11Forwarding no",
            "PrintMotd no",
            f"SetEnv PATH={self.remote_path} {RC_ENV}"
            # a checkout run with PYTHONPATH (a worktree beside the installed one) is the
            # labreport the remote side runs too
            + (f" PYTHONPATH={os.environ['PYTHONPATH']}" if os.environ.get("PYTHONPATH") else ""),
            "Subsystem sftp internal-sftp",
            "",
        ]))
        run(["/usr/sbin/sshd", "-t", "-f", str(cfg)])
        argv = in_netns(self.netns, "/usr/sbin/sshd", "-D", "-e", "-f", str(cfg))
        self.daemon = Daemon("sshd", argv, self.base / "sshd.log").start()

        def listening():
            if not self.daemon.alive():  # type: ignore[union-attr]
                raise LabError("sshd exited" + self.daemon.log_tail())  # type: ignore[union-attr]
            out = run(in_netns(self.netns, "ss", "-Htln"), check=False).stdout
            return f"{self.address}:{self.port}" in out

        wait_for(f"sshd on {self.address}:{self.port} in {self.netns}", listening, timeout=15)
        return self

    def known_hosts_line(self) -> str:
        host = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{host} {self.host_public_key()}\n"

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()


def write_client_config(path: Path, hosts: dict[str, SshServer], *, user: str = "root") -> Path:
    """An ssh_config with one ``Host`` per alias and a known_hosts with their host keys
    (StrictHostKeyChecking yes: a wrong key fails)."""
    known = path.parent / "known_hosts"
    known.write_text("".join(s.known_hosts_line() for s in hosts.values()))
    blocks = []
    for alias, s in hosts.items():
        blocks.append("\n".join([
            f"Host {alias}",
            f"    HostName {s.address}",
            f"    Port {s.port}",
            f"    User {user}",
            f"    IdentityFile {s.client_key.private}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {known}",
            "    StrictHostKeyChecking yes",
            "    BatchMode yes",
            "    ConnectTimeout 5",
            "",
        ]))
    path.write_text("\n".join(blocks))
    return path
