"""Where a node name leads, read the way OpenSSH itself reads it.

``resolve(node, ssh_config=, ssh_user=, known_hosts=)`` gives a ``Target``: the alias as
typed, HostName, Port, User, IdentityFile(s), UserKnownHostsFile(s),
StrictHostKeyChecking, ProxyCommand / ProxyJump and ConnectTimeout.

The source of truth is ``ssh -G HOST`` (OpenSSH's own evaluation of the config: ``Include``,
``Match`` blocks, ``%`` tokens, first-value-wins, defaults, ``/etc/ssh/ssh_config``), so
what we connect to is what ``ssh HOST`` connects to. Only where no ``ssh`` binary exists
does asyncssh's parser stand in (``Match`` and ``StrictHostKeyChecking`` then read with
OpenSSH's rules as far as this module knows them).

A node may also be written ``user@host``, ``host:port`` or ``user@host:port`` (``[v6]:port``
for IPv6): the user and port given that way win over the config, as ``ssh -l`` / ``-p`` do.
"""

from __future__ import annotations

import fnmatch
import getpass
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, cast

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
    proxy_command: Optional[str] = None
    proxy_jump: Optional[str] = None
    connect_timeout: Optional[float] = None
    identities_only: bool = False
    resolved_by: str = "ssh -G"

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
        host, user, port = split_spec(self.node)
        opts = (f"-l {shlex.quote(user)} " if user else "") + (f"-p {port} " if port else "")
        return f"ssh {cfg}{opts}{shlex.quote(host)} {remote}"


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


def split_spec(spec: str) -> tuple[str, Optional[str], Optional[int]]:
    """``user@host:port`` -> (host, user, port); parts not given are None."""
    s = spec.strip()
    user: Optional[str] = None
    port: Optional[int] = None
    if "@" in s:
        user, _, s = s.rpartition("@")
        user = user or None
    if s.startswith("["):  # [v6]:port or [host]
        host, _, rest = s[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        return host, user, port
    if s.count(":") == 1:
        host, _, p = s.partition(":")
        if p.isdigit():
            return host, user, int(p)
    return s, user, port


def _ssh_g(host: str, *, path: Optional[str], user: Optional[str], port: Optional[int]) -> Optional[dict[str, list[str]]]:
    """``ssh -G`` as a dict of lower-case keys to their values (a key may repeat)."""
    exe = shutil.which("ssh")
    if exe is None:
        return None
    argv = [exe, "-G"]
    if path:
        argv += ["-F", path]
    if user:
        argv += ["-l", user]
    if port:
        argv += ["-p", str(port)]
    argv += ["--", host]
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if cp.returncode != 0:
        tail = (cp.stderr.strip().splitlines() or [f"exit status {cp.returncode}"])[-1]
        raise ValueError(f"ssh -G {host}: {tail}")
    out: dict[str, list[str]] = {}
    for line in cp.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key:
            out.setdefault(key.lower(), []).append(value.strip())
    return out


_STRICT = {"yes": "yes", "true": "yes", "no": "no", "off": "no", "false": "no", "accept-new": "accept-new",
           "ask": "ask"}


def resolve(node: str, *, ssh_config: Optional[str] = None, ssh_user: Optional[str] = None,
            known_hosts: Optional[str] = None) -> Target:
    host, spec_user, spec_port = split_spec(node)
    path = config_file(ssh_config)
    user_wanted = spec_user or ssh_user
    g = _ssh_g(host, path=path, user=user_wanted, port=spec_port)
    if g is not None:
        def one(key: str, default: str = "") -> str:
            return (g.get(key) or [default])[0]

        hostname = one("hostname", host)
        port = int(one("port", "22") or 22)
        user = one("user") or user_wanted or getpass.getuser()
        identity = [str(Path(p).expanduser()) for p in g.get("identityfile", [])]
        kh = [str(Path(p).expanduser()) for v in g.get("userknownhostsfile", []) for p in shlex.split(v)]
        if known_hosts:
            kh = [str(Path(known_hosts).expanduser())]
        kh = [p for p in kh if p != os.devnull] or kh
        strict = _STRICT.get(one("stricthostkeychecking", "ask").lower(), "ask")
        proxy = one("proxycommand")
        jump = one("proxyjump")
        ct = one("connecttimeout", "none")
        return Target(node=node, hostname=hostname, port=port, user=user, config_path=path,
                      identity_files=identity, known_hosts_files=kh, strict_host_key_checking=strict,
                      proxy_command=None if proxy in ("", "none") else proxy,
                      proxy_jump=None if jump in ("", "none") else jump,
                      connect_timeout=float(ct) if ct.replace(".", "", 1).isdigit() else None,
                      identities_only=one("identitiesonly", "no").lower() in ("yes", "true"),
                      resolved_by="ssh -G")
    return _resolve_asyncssh(node, host, spec_port, path=path, user_wanted=user_wanted, known_hosts=known_hosts)


def _resolve_asyncssh(node: str, host: str, spec_port: Optional[int], *, path: Optional[str],
                      user_wanted: Optional[str], known_hosts: Optional[str]) -> Target:
    from asyncssh.config import SSHClientConfig

    local_user = getpass.getuser()
    user_arg: object = user_wanted if user_wanted else ()
    if path and Path(path).exists():
        cfg = SSHClientConfig.load(None, [path], False, False, False, local_user, user_arg, host, ())
        hostname = str(cfg.get("Hostname") or host)
        port = spec_port or int(str(cfg.get("Port") or 22))
        user = str(user_wanted or cfg.get("User") or local_user)
        identity = [str(Path(str(p)).expanduser()) for p in cast("list[object]", cfg.get("IdentityFile") or [])]
        kh = [str(Path(str(p)).expanduser()) for p in cast("list[object]", cfg.get("UserKnownHostsFile") or [])]
    else:
        hostname, port, user, identity, kh = host, spec_port or 22, user_wanted or local_user, [], []
    if known_hosts:
        kh = [str(Path(known_hosts).expanduser())]
    elif not kh:
        kh = [str(Path(DEFAULT_KNOWN_HOSTS).expanduser())]
    kh = [p for p in kh if p != os.devnull] or kh
    return Target(node=node, hostname=hostname, port=port, user=user, config_path=path,
                  identity_files=identity, known_hosts_files=kh,
                  strict_host_key_checking=_strict_checking(path, host), resolved_by="asyncssh")
