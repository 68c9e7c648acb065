"""Where a node name leads, read from the ssh config the way OpenSSH reads it.

``resolve(node, ssh_config=, ssh_user=, known_hosts=)`` gives a ``Target``: the alias as
typed, HostName, Port, User, IdentityFile(s), UserKnownHostsFile(s) and
StrictHostKeyChecking. Host matching, first-value-wins and ``Include`` come from
asyncssh's own config parser (the one ``asyncssh.connect(config=[…])`` uses), so what we
print in messages is what the connection does. asyncssh ignores StrictHostKeyChecking;
it is read here with OpenSSH's rules (first matching ``Host`` block wins; ``Match`` blocks
are not evaluated for it).
"""

from __future__ import annotations

import fnmatch
import getpass
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

DEFAULT_CONFIG = "~/.ssh/config"
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


@dataclass
class Target:
    node: str  # the name as given on the command line (the Host alias)
    hostname: str
    port: int
    user: str
    config_path: Optional[str]  # None: no ssh config file in use
    identity_files: list[str] = field(default_factory=list)
    known_hosts_files: list[str] = field(default_factory=list)
    strict_host_key_checking: str = "ask"  # yes | ask | accept-new | no

    @property
    def where(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"

    def known_hosts_for_messages(self) -> str:
        return self.known_hosts_files[0] if self.known_hosts_files else DEFAULT_KNOWN_HOSTS

    def keyscan_command(self) -> str:
        port = f"-p {self.port} " if self.port != 22 else ""
        return f"ssh-keyscan {port}{shlex.quote(self.hostname)} >> {self.known_hosts_for_messages()}"

    def ssh_command(self, remote: str = "true") -> str:
        cfg = f"-F {shlex.quote(self.config_path)} " if self.config_path else ""
        return f"ssh {cfg}{shlex.quote(self.node)} {remote}"


def config_file(ssh_config: Optional[str]) -> Optional[str]:
    """The ssh config in use: the one given (must exist), else ~/.ssh/config if present."""
    if ssh_config:
        return str(Path(ssh_config).expanduser())
    default = Path(DEFAULT_CONFIG).expanduser()
    return str(default) if default.exists() else None


def _strict_checking(config_path: Optional[str], node: str) -> str:
    if not config_path:
        return "ask"
    try:
        lines = Path(config_path).read_text(errors="replace").splitlines()
    except OSError:
        return "ask"
    active = True
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.replace("=", " ", 1).partition(" ")
        key, value = key.lower(), value.strip()
        if key == "host":
            pats = value.split()
            pos = [p for p in pats if not p.startswith("!")]
            neg = [p[1:] for p in pats if p.startswith("!")]
            active = any(fnmatch.fnmatch(node, p) for p in pos) and not any(fnmatch.fnmatch(node, p) for p in neg)
        elif key == "match":
            active = False
        elif key == "stricthostkeychecking" and active:
            v = value.strip("\"'").lower()
            return {"yes": "yes", "true": "yes", "no": "no", "off": "no", "false": "no",
                    "accept-new": "accept-new", "ask": "ask"}.get(v, "ask")
    return "ask"


def resolve(node: str, *, ssh_config: Optional[str] = None, ssh_user: Optional[str] = None,
            known_hosts: Optional[str] = None) -> Target:
    from asyncssh.config import SSHClientConfig

    path = config_file(ssh_config)
    local_user = getpass.getuser()
    user_arg: object = ssh_user if ssh_user else ()
    if path and Path(path).exists():
        cfg = SSHClientConfig.load(None, [path], False, False, False, local_user, user_arg, node, ())
        hostname = cfg.get("Hostname") or node
        port = int(cfg.get("Port") or 22)
        user = cfg.get("User") or ssh_user or local_user
        identity = [str(Path(p).expanduser()) for p in (cfg.get("IdentityFile") or [])]
        kh = [str(Path(p).expanduser()) for p in (cfg.get("UserKnownHostsFile") or [])]
    else:
        hostname, port, user, identity, kh = node, 22, ssh_user or local_user, [], []
    if known_hosts:
        kh = [str(Path(known_hosts).expanduser())]
    elif not kh:
        kh = [str(Path(DEFAULT_KNOWN_HOSTS).expanduser())]
    kh = [p for p in kh if p != os.devnull] or kh
    return Target(node=node, hostname=hostname, port=port, user=user, config_path=path,
                  identity_files=identity, known_hosts_files=kh,
                  strict_host_key_checking=_strict_checking(path, node))
