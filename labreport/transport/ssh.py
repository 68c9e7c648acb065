"""Run ``labreport collect --local --out -`` on one node over SSH (asyncssh) and read the
node's snapshot from its stdout.

Security: keys and the ssh agent only (``preferred_auth`` publickey; no password is ever
asked for or passed); host keys are checked against known_hosts and an unknown key is
refused with the command that would accept it — never accepted silently. Only an explicit
``StrictHostKeyChecking no`` in the user's ssh config turns checking off, and the node's
record then says so.

Every failure becomes a message that says what to do (``NodeFailure``); the caller turns
it into a ``NodeSnapshot(status="failed")``.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from labreport.snapshot import NodeSnapshot, from_dict
from labreport.transport.sshconfig import Target

if TYPE_CHECKING:
    from labreport.transport.bootstrap import Bootstrap

COLLECT_ONLY = "labreport-collect"  # console script: collect --local to stdout, nothing else
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024  # bytes one node may send (--max-node-output)

INSTALL_HINT = (
    "install it on the node: `pip install labreport` (or copy this project there and run "
    "`pip install .`), or point --remote-command at it (e.g. --remote-command ~/venv/bin/labreport), "
    "or let labreport install itself there: --bootstrap"
)


class NodeFailure(Exception):
    """One node could not be collected; ``fix`` is the command or step that helps."""

    def __init__(self, message: str, fix: Optional[str] = None):
        super().__init__(message)
        self.fix = fix


@dataclass
class RemoteRun:
    node: NodeSnapshot
    stderr: str = ""
    exit_status: Optional[int] = None
    warnings: list[str] = field(default_factory=list)


def remote_timeout(timeout: float) -> float:
    """The remote collector's own deadline: shorter than ours by the time ssh needs to
    connect, start Python and send the snapshot back, so a slow node returns a partial
    snapshot instead of timing out with nothing."""
    return max(1.0, round(timeout - min(10.0, timeout * 0.25), 1))


def remote_argv(remote_command: Optional[str], *, sudo: bool, cri_socket: Optional[str],
                name: Optional[str] = None, timeout: Optional[float] = None) -> str:
    """The command line run on the node (a shell string, every part quoted).

    Under ``--sudo`` (and no ``--remote-command``) the node runs ``labreport-collect``, the
    collect-only entry point (``collect --local`` to stdout, nothing else), so the sudoers
    rule we suggest grants collection and no more (``labreport`` itself could read any file
    as root through ``import``)."""
    if remote_command:
        base = shlex.split(remote_command) + ["collect", "--local", "--out", "-"]
    elif sudo:
        base = [COLLECT_ONLY]
    else:
        base = ["labreport", "collect", "--local", "--out", "-"]
    argv = (["sudo", "-n"] if sudo else []) + base
    if name:
        argv += ["--name", name]
    if timeout is not None:
        argv += ["--timeout", f"{remote_timeout(timeout):g}"]
    if cri_socket:
        argv += ["--cri-socket", cri_socket]
    return " ".join(shlex.quote(a) for a in argv)


# The remote side dies with its session: the collector runs in a process group of its own
# (setsid), and a watchdog reading the session's stdin kills that group when stdin closes —
# which sshd does when the session ends for any reason (our timeout, Ctrl-C, a lost
# connection). Without it a hung collector (or a child of it) outlives the session, since
# sshd sends no SIGHUP to a session without a terminal. POSIX sh; setsid where present.
_SESSION_BOUND = r"""exec 3<&0 </dev/null
if command -v setsid >/dev/null 2>&1; then setsid {cmd} 3<&- & else {cmd} 3<&- & fi
p=$!
{{ cat <&3; kill -TERM -$p || kill -TERM $p; sleep 2; kill -KILL -$p || kill -KILL $p; }} >/dev/null 2>&1 &
w=$!
exec 3<&-
wait $p; rc=$?
kill $w 2>/dev/null
exit $rc"""


def session_bound(command: str) -> str:
    """``command`` (a shell string) wrapped so that it stops when the SSH session ends."""
    return "sh -c " + shlex.quote(_SESSION_BOUND.format(cmd=command))


def jump_command(target: Target) -> list[str]:
    """ProxyJump as OpenSSH itself does it (``ssh -W host:port`` through the last hop, the
    earlier hops with -J): each jump host is then resolved, authenticated and checked
    against known_hosts by OpenSSH with the user's own config."""
    hops = [h for h in (target.proxy_jump or "").split(",") if h]
    argv = ["ssh"] + (["-F", target.config_path] if target.config_path else []) + ["-o", "BatchMode=yes"]
    if len(hops) > 1:
        argv += ["-J", ",".join(hops[:-1])]
    return argv + ["-W", f"{target.hostname}:{target.port}", hops[-1]]


def _known_hosts(target: Target) -> tuple[Any, bool]:
    """(asyncssh known_hosts argument, keys known for this host?)"""
    import asyncssh

    files = [f for f in target.known_hosts_files if Path(f).exists()]
    if not files:
        return asyncssh.import_known_hosts(""), False
    kh = asyncssh.read_known_hosts(files)
    try:
        addr = socket.gethostbyname(target.hostname)
    except OSError:
        addr = target.hostname
    host_keys = kh.match(target.hostname, addr, target.port)[0]
    return kh, bool(host_keys)


def _host_key_failure(target: Target, known: bool) -> NodeFailure:
    kh = target.known_hosts_for_messages()
    if known:
        host = target.hostname if target.port == 22 else f"[{target.hostname}]:{target.port}"
        return NodeFailure(
            f"the host key of {target.node} ({target.hostname}:{target.port}) does NOT match the one in {kh}: "
            "it changed, or this is not the machine you think; not connecting",
            fix=f"if the change is expected: ssh-keygen -R {shlex.quote(host)} -f {kh} && {target.keyscan_command()}",
        )
    return NodeFailure(
        f"the host key of {target.node} ({target.hostname}:{target.port}) is not known (not in {kh}); "
        "labreport does not accept unknown host keys",
        fix=f"check the key and accept it: {target.keyscan_command()}   (or connect once with: {target.ssh_command()})",
    )


def sudoers_hint(user: str) -> str:
    """The least-privilege way to let ``--sudo`` work: a rule for the collect-only entry
    point, never for ``labreport`` itself (whose ``import`` reads any file it is given)."""
    return (f"allow collection only, without a password: on the node run "
            f"`echo \"{user} ALL=(root) NOPASSWD: $(command -v {COLLECT_ONLY})\" | sudo tee /etc/sudoers.d/labreport-collect` "
            f"({COLLECT_ONLY} runs `labreport collect --local` to stdout and nothing else; never allow `labreport` "
            "itself: it reads any file as root), or connect as root (--ssh-user root)")


def _diagnose_exit(target: Target, status: Optional[int], stdout: str, stderr: str, command: str) -> NodeFailure:
    err = stderr.strip()
    tail = err.splitlines()[-1] if err else ""
    if command.startswith("sudo ") and status == 127 and "sudo" in tail and "labreport" not in tail:
        return NodeFailure(f"sudo is not installed on {target.node} ({tail})",
                           fix="install sudo there, or connect as root without --sudo (--ssh-user root)")
    if status == 127 or "command not found" in err or "No such file or directory" in err and "labreport" in err:
        return NodeFailure(f"labreport is not installed on {target.node} (`{command}`: {tail or 'command not found'})",
                           fix=INSTALL_HINT)
    if "a password is required" in err or "a terminal is required" in err or "sudo:" in err and status == 1:
        return NodeFailure(f"sudo -n on {target.node} needs a password ({tail})", fix=sudoers_hint(target.user))
    if "No such option" in err or "no such option" in err:
        return NodeFailure(f"the labreport on {target.node} is too old for this one ({tail})",
                           fix="upgrade it there (pip install -U labreport), or use --bootstrap")
    if "No module named" in err:
        return NodeFailure(f"labreport on {target.node} is broken: {tail}", fix=INSTALL_HINT)
    what = f"exit status {status}" if status is not None else "no exit status"
    return NodeFailure(f"the remote collector on {target.node} failed ({what}) and printed no snapshot"
                       + (f": {tail}" if tail else ""))


def parse_remote_snapshot(stdout: str, node_name: str) -> NodeSnapshot:
    text = stdout.strip()
    if not text:
        raise ValueError("empty output")
    if not text.startswith("{"):  # a login banner or motd printed before the JSON
        start = text.find("\n{")
        text = text[start + 1:] if start >= 0 else text
    data = json.loads(text)
    snap = from_dict(data, where=f"snapshot from {node_name}")
    if not snap.nodes:
        raise ValueError("the snapshot holds no node")
    node = snap.nodes[0]
    remote_name = node.name
    node.name = node_name
    node.source = "ssh"
    if remote_name and remote_name != node_name and not node.info.hostname:
        node.info.hostname = remote_name
    return node


class OutputTooLarge(NodeFailure):
    pass


async def _read_capped(stream: Any, sink: Any, cap: int) -> int:
    """Copy ``stream`` into ``sink`` 64 KiB at a time; stop past ``cap`` bytes. Never holds
    more than one chunk: a node printing without end costs a bounded amount of memory."""
    total = 0
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return total
        total += len(chunk)
        if total > cap:
            raise OutputTooLarge("")
        sink.write(chunk)


async def _read_tail(stream: Any, keep: int = 65536) -> bytes:
    """The last ``keep`` bytes of ``stream`` (stderr: only its end says what went wrong)."""
    tail = b""
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return tail
        tail = (tail + chunk)[-keep:]


def _mib(n: int) -> str:
    return f"{n / 1048576:g} MiB"


async def collect_over_ssh(target: Target, command: Union[str, Callable[[Optional[str]], str]], *, timeout: float,
                           phase: Callable[[str], None] = lambda s: None,
                           bootstrap: Optional["Bootstrap"] = None,
                           max_output: int = DEFAULT_MAX_OUTPUT) -> RemoteRun:
    """Connect, run ``command``, parse the snapshot. Raises NodeFailure (never anything else
    but asyncio.CancelledError / TimeoutError, which the caller handles).

    ``command`` may be a function of the remote labreport path (None: the default); with
    ``bootstrap`` the path is the one ``Bootstrap.ensure`` installed. The node's output is
    spooled (to disk past 1 MiB) as it arrives and cut at ``max_output`` bytes."""
    import asyncssh

    warnings: list[str] = []
    accept_new = False
    if target.strict_host_key_checking == "no":
        known_hosts, known = None, False
        warnings.append(f"host key of {target.node} not verified: StrictHostKeyChecking no in {target.config_path}")
    else:
        known_hosts, known = await asyncio.to_thread(_known_hosts, target)  # reads files, resolves the name
        if not known and target.strict_host_key_checking == "accept-new":
            # OpenSSH's accept-new: an unknown host's key is accepted and recorded; a known
            # host whose key changed is still refused (known_hosts is checked then)
            known_hosts, accept_new = None, True
    kwargs: dict[str, Any] = dict(
        known_hosts=known_hosts,
        username=target.user,
        port=target.port,
        preferred_auth=("publickey",),
        password=None,
        kbdint_auth=False,
        # the node's own --timeout bounds connecting and logging in (as before ssh -G); the
        # config's ConnectTimeout is recorded on the Target but not a second, shorter limit
        connect_timeout=max(1.0, timeout),
        login_timeout=max(1.0, timeout),
        keepalive_interval=15,
        config=[],  # everything came from `ssh -G` (sshconfig.resolve): no second reading
    )
    if target.resolved_by != "ssh -G":
        kwargs["config"] = [target.config_path] if target.config_path else []
    keys = [k for k in target.identity_files if Path(k).exists()]
    if keys:
        kwargs["client_keys"] = keys
        kwargs["ignore_encrypted"] = True  # as from the config: a locked key without the agent is skipped
        if target.identities_only:
            kwargs["agent_identities"] = keys
    if target.proxy_command:
        kwargs["proxy_command"] = target.proxy_command
    elif target.proxy_jump:
        kwargs["proxy_command"] = jump_command(target)
    connect_to = target.hostname if target.resolved_by == "ssh -G" or not target.config_path else target.node
    phase(f"connecting to {target.where}")
    try:
        conn = await asyncssh.connect(connect_to, **kwargs)
    except asyncssh.HostKeyNotVerifiable:
        raise _host_key_failure(target, known) from None
    except asyncssh.PermissionDenied:
        keys_text = ", ".join(target.identity_files) or "the default keys and the ssh agent"
        raise NodeFailure(
            f"authentication failed for {target.where} (keys tried: {keys_text}; labreport uses keys and the "
            "ssh agent only, never passwords)",
            fix=f"put your public key in ~{target.user}/.ssh/authorized_keys on {target.node} "
                f"(ssh-copy-id {'-F ' + shlex.quote(target.config_path) + ' ' if target.config_path else ''}{target.node}), "
                "or load it into the agent (ssh-add; a key with a passphrase is only usable through the agent)") from None
    except ConnectionRefusedError:
        raise NodeFailure(f"connection refused by {target.hostname}:{target.port} (is sshd running on {target.node}?)",
                          fix=f"start sshd on {target.node} (systemctl start ssh) or fix Port/HostName in the ssh config") from None
    except socket.gaierror as exc:
        raise NodeFailure(f"cannot resolve {target.hostname}: {exc.strerror or exc}",
                          fix=f"add a Host {target.node} block with HostName to the ssh config (--ssh-config)") from None
    except asyncssh.KeyImportError as exc:
        raise NodeFailure(f"cannot read the ssh key for {target.node}: {exc} (encrypted keys need the ssh agent: ssh-add)") from None
    except (asyncssh.Error, OSError) as exc:
        via = (f" (through ProxyJump {target.proxy_jump})" if target.proxy_jump and not target.proxy_command else
               f" (through ProxyCommand {target.proxy_command})" if target.proxy_command else "")
        raise NodeFailure(f"ssh to {target.where}{via} failed: {type(exc).__name__}: {exc}",
                          fix=f"test the hop: {target.ssh_command()}" if via else None) from None

    async with conn:
        if accept_new:
            recorded = await asyncio.to_thread(_record_host_key, target, conn.get_server_host_key())
            warnings.append(f"host key of {target.node} was not known: accepted and added to {recorded} "
                            "(StrictHostKeyChecking accept-new)")
        exe: Optional[str] = None
        if bootstrap is not None:
            try:
                exe = await bootstrap.ensure(conn, target.node, phase, NodeFailure)
            except (asyncssh.Error, OSError) as exc:
                raise NodeFailure(f"--bootstrap on {target.node}: the ssh session broke: {exc}") from None
        if callable(command):
            command = command(exe)
        phase("collecting")
        started = time.monotonic()
        out = tempfile.SpooledTemporaryFile(max_size=1 << 20)
        try:
            try:
                proc = await conn.create_process(session_bound(command), encoding=None)
            except (asyncssh.Error, OSError) as exc:
                raise NodeFailure(f"the ssh session to {target.node} broke while the collector ran: {exc}") from None
            err_task = asyncio.ensure_future(_read_tail(proc.stderr))
            try:
                await _read_capped(proc.stdout, out, max_output)
                result = await proc.wait()
            except OutputTooLarge:
                proc.close()  # the session ends: the node's watchdog stops the collector
                raise OutputTooLarge(
                    f"{target.node} sent more than {_mib(max_output)} (--max-node-output): the output was cut "
                    "there and the node's data dropped (a runaway or hostile collector?)",
                    fix="check what the node prints (ssh it and run the collector by hand), or raise "
                        "--max-node-output if the node really is that large") from None
            except (asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError, ConnectionResetError):
                raise NodeFailure(f"the ssh session to {target.node} ended before the collector finished "
                                  "(the connection was lost, or sshd on the node died)",
                                  fix=f"check the node and run again ({target.ssh_command()} tests the connection)") from None
            except (asyncssh.Error, OSError) as exc:
                raise NodeFailure(f"the ssh session to {target.node} broke while the collector ran: {exc}") from None
            finally:
                proc.stdin.write_eof() if not proc.stdin.is_closing() else None
                try:
                    err_bytes = await asyncio.wait_for(err_task, 2.0)
                except (asyncio.TimeoutError, asyncssh.Error, OSError):
                    err_task.cancel()
                    err_bytes = b""
            stderr = err_bytes.decode("utf-8", "replace")
            status = result.exit_status
            out.seek(0)
            stdout = out.read().decode("utf-8", "replace")
        finally:
            out.close()
        try:
            node = parse_remote_snapshot(stdout, target.node)
        except Exception:
            sig = result.exit_signal
            if sig:
                raise NodeFailure(f"the remote collector on {target.node} was killed by signal {sig[0]}"
                                  + (f" ({sig[2]})" if len(sig) > 2 and sig[2] else "")) from None
            if status is None:
                raise NodeFailure(f"the ssh session to {target.node} ended before the collector finished "
                                  "(the connection was lost, or sshd on the node died)",
                                  fix=f"check the node and run again ({target.ssh_command()} tests the connection)") from None
            if status == 0 and stdout.strip():
                raise NodeFailure(f"the remote collector on {target.node} exited 0 but printed no snapshot "
                                  f"({len(stdout)} bytes that are not one; first bytes: {stdout.strip()[:60]!r})",
                                  fix=f"run it by hand to see what it prints: {target.ssh_command(command)}") from None
            raise _diagnose_exit(target, status, stdout, stderr, command) from None
        node.transport = {"host": target.hostname, "port": target.port, "user": target.user,  # type: ignore[attr-defined]
                          "command": command, "exit_status": status, "bytes": len(stdout),
                          "duration_s": round(time.monotonic() - started, 3)}
        return RemoteRun(node=node, stderr=stderr, exit_status=status, warnings=warnings)
    raise NodeFailure(f"the ssh session to {target.node} ended unexpectedly")  # not reached: for the type checker


def _record_host_key(target: Target, key: Any) -> str:
    """Append the server's key to the first known_hosts file (OpenSSH's accept-new)."""
    path = Path(target.known_hosts_files[0] if target.known_hosts_files else "~/.ssh/known_hosts").expanduser()
    host = target.hostname if target.port == 22 else f"[{target.hostname}]:{target.port}"
    line = f"{host} {key.export_public_key('openssh').decode().strip()}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
    return str(path)
