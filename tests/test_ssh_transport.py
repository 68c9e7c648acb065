"""labreport.transport over a real sshd (OpenSSH) listening on 127.0.0.1 with its own host
key, authorized key and config; the client side reads a real ssh config and known_hosts.

What is proven: the remote side really runs `labreport collect --local --out -` and the
node's snapshot comes back under the name given; nodes run concurrently; a failing node
(refused, unknown/changed host key, auth failure, timeout, labreport missing) is marked
with the exact fix and never costs the other node its data.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import missing_for_lab
from tests.lab.sshd import RC_ENV

from labreport.snapshot import load
from labreport.transport import multi
from labreport.transport.multi import collect_nodes
from labreport.transport.ssh import remote_argv
from labreport.transport.sshconfig import resolve

SSHD = "/usr/sbin/sshd"
_why = missing_for_lab(SSHD, "ssh-keygen", "ssh-keyscan")
pytestmark = pytest.mark.skipif(bool(_why), reason="sshd lab unavailable: " + ", ".join(_why))



LABREPORT = str(Path(sys.executable).with_name("labreport"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """A real sshd on 127.0.0.1:<port>, everything under ``d``."""

    def __init__(self, d: Path, client_pub: Path):
        self.d = d
        d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host_key = d / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True)
        shutil.copy(client_pub, d / "authorized_keys")
        self.cfg = d / "sshd_config"
        self.cfg.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}", f"PidFile {d / 'sshd.pid'}",
            f"AuthorizedKeysFile {d / 'authorized_keys'}", "StrictModes no", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "UsePAM no",
            f"SetEnv PATH={Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin {RC_ENV}", "",
        ]))
        Path("/run/sshd").mkdir(exist_ok=True)  # OpenSSH's privilege separation directory
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.cfg)], stderr=open(d / "sshd.log", "w"))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError as exc:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("sshd did not start: " + (d / "sshd.log").read_text()) from exc
                time.sleep(0.05)

    def known_hosts_line(self) -> str:
        pub = (self.host_key.with_suffix(".pub")).read_text().split()
        return f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class SilentServer:
    """Accepts TCP connections and never says a word (a hung node)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp("ssh")
    key = d / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    a = Sshd(d / "a", key.with_suffix(".pub"))
    b = Sshd(d / "b", key.with_suffix(".pub"))
    silent = SilentServer()
    kh = d / "known_hosts"
    kh.write_text(a.known_hosts_line() + b.known_hosts_line())
    refused_port = free_port()
    cfg = d / "ssh_config"
    cfg.write_text("\n".join([
        "Host nodea", "  HostName 127.0.0.1", f"  Port {a.port}",
        "Host nodeb", "  HostName 127.0.0.1", f"  Port {b.port}",
        "Host refused", "  HostName 127.0.0.1", f"  Port {refused_port}",
        "Host hung", "  HostName 127.0.0.1", f"  Port {silent.port}",
        "Host *", "  User root", f"  IdentityFile {key}", f"  UserKnownHostsFile {kh}",
        "  StrictHostKeyChecking yes", "  IdentitiesOnly yes", "",
    ]))
    yield {"dir": d, "a": a, "b": b, "cfg": cfg, "kh": kh, "key": key, "silent": silent}
    a.stop()
    b.stop()
    silent.close()


def test_ssh_config_resolution(lab):
    t = resolve("nodea", ssh_config=str(lab["cfg"]))
    assert (t.hostname, t.port, t.user) == ("127.0.0.1", lab["a"].port, "root")
    assert t.identity_files == [str(lab["key"])] and t.known_hosts_files == [str(lab["kh"])]
    assert t.strict_host_key_checking == "yes"
    assert t.keyscan_command() == f"ssh-keyscan -p {lab['a'].port} 127.0.0.1 >> {lab['kh']}"
    assert resolve("nodea", ssh_config=str(lab["cfg"]), ssh_user="lab").user == "lab"  # like ssh -l: the option wins
    # under sudo the collect-only entry point (the sudoers rule then grants collection alone)
    assert remote_argv(None, sudo=True, cri_socket="/run/x.sock", name="w") == \
        "sudo -n labreport-collect --name w --cri-socket /run/x.sock"
    assert remote_argv("/opt/venv/bin/labreport --traceback", sudo=False, cri_socket=None) == \
        "/opt/venv/bin/labreport --traceback collect --local --out -"
    assert remote_argv(None, sudo=False, cri_socket=None, timeout=60).endswith("--timeout 50")
    assert remote_argv(None, sudo=False, cri_socket=None, timeout=8).endswith("--timeout 6")


def test_two_nodes_in_parallel_and_failures_isolated(lab):
    nodes = ["nodea", "nodeb", "refused", "hung"]
    t0 = time.monotonic()
    snaps = collect_nodes(nodes, ssh_user=None, ssh_config=str(lab["cfg"]), sudo=False,
                          remote_command=LABREPORT, timeout=8, cri_socket=None, progress=False)
    assert [s.name for s in snaps] == nodes
    a, b, refused, hung = snaps
    for s in (a, b):
        assert s.status in ("ok", "partial"), s.error
        assert s.source == "ssh" and s.processes and s.netns
        assert s.transport["port"] in (lab["a"].port, lab["b"].port)
    assert refused.status == "failed" and "connection refused" in refused.error
    assert refused.collectors[0].fix and "sshd" in refused.collectors[0].fix
    assert hung.status == "failed" and "timed out after 8s" in hung.error
    assert time.monotonic() - t0 < 20  # in parallel: bounded by the one timeout


def test_unknown_and_changed_host_keys_are_refused(lab, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    snaps = collect_nodes(["nodea"], ssh_config=str(lab["cfg"]), known_hosts=str(kh), remote_command=LABREPORT,
                          timeout=20, progress=False)
    s = snaps[0]
    assert s.status == "failed" and "is not known" in s.error
    fix = s.collectors[0].fix
    assert f"ssh-keyscan -p {lab['a'].port} 127.0.0.1 >> {kh}" in fix
    assert f"ssh -F {lab['cfg']} nodea true" in fix
    assert kh.read_text() == ""  # nothing accepted silently
    # a different key under the same name: a changed host key
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    pub = other.with_suffix(".pub").read_text().split()
    kh.write_text(f"[127.0.0.1]:{lab['a'].port} {pub[0]} {pub[1]}\n")
    s = collect_nodes(["nodea"], ssh_config=str(lab["cfg"]), known_hosts=str(kh), remote_command=LABREPORT,
                      timeout=20, progress=False)[0]
    assert s.status == "failed" and "does NOT match" in s.error
    assert "ssh-keygen -R" in s.collectors[0].fix


def test_accepting_with_the_printed_command_works(lab, tmp_path):
    """The keyscan command we print really makes the host known."""
    kh = tmp_path / "kh"
    kh.write_text("")
    t = resolve("nodea", ssh_config=str(lab["cfg"]), known_hosts=str(kh))
    subprocess.run(t.keyscan_command(), shell=True, check=True, capture_output=True, timeout=20)
    s = collect_nodes(["nodea"], ssh_config=str(lab["cfg"]), known_hosts=str(kh),
                      remote_command="/nonexistent/labreport", timeout=20, progress=False)[0]
    # past the host key and auth: now the remote command is what fails
    assert s.status == "failed" and "labreport is not installed on nodea" in s.error, s.error
    assert "pip install labreport" in s.collectors[0].fix


def test_auth_failure_says_keys_only(lab, tmp_path):
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    cfg = tmp_path / "cfg"
    cfg.write_text(lab["cfg"].read_text().replace(f"IdentityFile {lab['key']}", f"IdentityFile {stranger}"))
    s = collect_nodes(["nodeb"], ssh_config=str(cfg), remote_command=LABREPORT, timeout=20, progress=False)[0]
    assert s.status == "failed" and "authentication failed for root@127.0.0.1" in s.error
    assert "never passwords" in s.error and "authorized_keys" in s.collectors[0].fix


def test_remote_labreport_missing(lab):
    s = collect_nodes(["nodeb"], ssh_config=str(lab["cfg"]), remote_command="labreport-not-here",
                      timeout=20, progress=False)[0]
    assert s.status == "failed" and "labreport is not installed on nodeb" in s.error
    assert "pip install labreport" in s.collectors[0].fix and "pip install ." in s.collectors[0].fix


def test_missing_ssh_config_is_a_clear_error(tmp_path, cli):
    code, out, err = cli("collect", "--nodes", "a,b", "--ssh-config", tmp_path / "nope", "--no-api", "--out", tmp_path / "o")
    assert code == 6 and "does not exist" in err


def test_collect_cli_over_ssh_writes_both_nodes(lab, tmp_path, cli):
    out = tmp_path / "snap"
    code, _, err = cli("collect", "--nodes", "nodea,refused", "--ssh-config", lab["cfg"], "--remote-command", LABREPORT,
                       "--no-api", "--timeout", "40", "--out", out, "-q")
    assert code == 10, err  # partial: one node failed
    snap = load(out)
    assert [n.name for n in snap.nodes] == ["nodea", "refused"]
    assert snap.nodes[0].status in ("ok", "partial") and snap.nodes[1].status == "failed"
    assert "node refused: failed: connection refused" in err


def test_progress_lines_per_node_on_stderr(lab, capsys):
    snaps = collect_nodes(["nodeb", "refused"], ssh_config=str(lab["cfg"]), remote_command="labreport-not-here",
                          timeout=20, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert [s.status for s in snaps] == ["failed", "failed"]
    lines = err.splitlines()
    assert any("nodeb" in ln and "labreport is not installed" in ln for ln in lines), err
    assert any("refused" in ln and "connection refused" in ln for ln in lines), err


@pytest.mark.skipif(shutil.which("sudo") is not None, reason="sudo is installed here")
def test_sudo_missing_on_the_node(lab):
    s = collect_nodes(["nodeb"], ssh_config=str(lab["cfg"]), sudo=True, remote_command=LABREPORT,
                      timeout=20, progress=False)[0]
    assert s.status == "failed" and s.error.startswith("sudo is not installed on nodeb"), s.error


def test_local_node_is_collected_in_process(lab, monkeypatch):
    called = []
    import collectors.local as local

    real = local.collect_local

    def spy(**kw):
        called.append(kw)
        return real(**kw)

    monkeypatch.setattr(local, "collect_local", spy)
    snaps = collect_nodes(["local", "nodea"], ssh_config=str(lab["cfg"]), remote_command=LABREPORT, timeout=40,
                          progress=False)
    assert [s.name for s in snaps] == ["local", "nodea"]
    assert called and called[0]["name"] == "local"  # no SSH for it
    assert snaps[0].source == "live" and snaps[1].source == "ssh"
    assert snaps[0].status in ("ok", "partial") and snaps[1].status in ("ok", "partial")


def test_parallel_limit(lab, monkeypatch):
    """More nodes than MAX_PARALLEL: all still come back, in order."""
    monkeypatch.setattr(multi, "MAX_PARALLEL", 2)
    nodes = ["refused"] * 1 + ["nodea", "nodeb"]
    snaps = collect_nodes(nodes, ssh_config=str(lab["cfg"]), remote_command="labreport-not-here", timeout=20,
                          progress=False)
    assert [s.name for s in snaps] == nodes and all(s.status == "failed" for s in snaps)


def test_encrypted_key_without_agent_is_explained(lab, tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    locked = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", str(locked)], check=True)
    cfg = tmp_path / "cfg"
    cfg.write_text(lab["cfg"].read_text().replace(f"IdentityFile {lab['key']}", f"IdentityFile {locked}"))
    s = collect_nodes(["nodea"], ssh_config=str(cfg), remote_command=LABREPORT, timeout=20, progress=False)[0]
    assert s.status == "failed"
    # asyncssh cannot use a key with a passphrase without the agent: auth fails, and the fix says ssh-add
    assert "authentication failed" in s.error and "ssh-add" in s.collectors[0].fix, s.error


def test_bootstrap_installs_this_labreport_into_a_venv_and_reuses_it(lab, tmp_path):
    """--bootstrap on a node: the local wheel goes over the session, a venv of the user's own
    gets it, the collector runs from there; the second run reuses the install."""
    from labreport.transport.bootstrap import build_wheel

    # built once here from this source tree (others may edit the shared tree between two builds)
    wheel = build_wheel(tmp_path / "wheel")
    rdir = tmp_path / "node-cache"
    snaps = collect_nodes(["nodea"], ssh_config=str(lab["cfg"]), bootstrap_wheel=str(wheel), bootstrap_dir=str(rdir),
                          timeout=60, progress=False)
    s = snaps[0]
    assert s.status in ("ok", "partial"), s.error
    exe = rdir / "venv" / "bin" / "labreport"
    assert s.transport["command"].startswith(f"{exe} collect --local --out -")
    marker = rdir / "venv" / ".labreport-wheel-sha256"
    assert exe.exists() and marker.exists()
    assert list(rdir.glob("labreport-*.whl"))
    # the venv's own copy is what runs, not the one on the node's PATH
    probe = subprocess.run([str(rdir / "venv" / "bin" / "python"), "-c", "import labreport; print(labreport.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert probe.stdout.startswith(str(rdir / "venv"))
    first = marker.stat().st_mtime_ns
    s2 = collect_nodes(["nodea"], ssh_config=str(lab["cfg"]), bootstrap_wheel=str(wheel), bootstrap_dir=str(rdir),
                       timeout=60, progress=False)[0]
    assert s2.status in ("ok", "partial") and marker.stat().st_mtime_ns == first


def test_bootstrap_refuses_remote_command_and_bad_wheel(lab, tmp_path):
    from labreport.errors import TransportError

    with pytest.raises(TransportError, match="drop --remote-command"):
        collect_nodes(["nodea"], ssh_config=str(lab["cfg"]), bootstrap=True, remote_command=LABREPORT)
    bad = tmp_path / "x.txt"
    bad.write_text("no")
    with pytest.raises(TransportError, match="not a wheel"):
        collect_nodes(["nodea"], ssh_config=str(lab["cfg"]), bootstrap_wheel=str(bad))


def test_bootstrap_failure_is_a_failed_node(lab, tmp_path):
    from labreport.transport.bootstrap import build_wheel

    wheel = build_wheel(tmp_path / "wheel")
    s = collect_nodes(["nodea"], ssh_config=str(lab["cfg"]), bootstrap_wheel=str(wheel),
                      bootstrap_dir="/proc/labreport-cannot-be-here", timeout=30, progress=False)[0]
    assert s.status == "failed" and s.error.startswith("--bootstrap: cannot create /proc/labreport-cannot-be-here on nodea")


def test_cli_bootstrap_options_reach_the_transport(lab, tmp_path, cli):
    code, _, err = cli("collect", "--nodes", "nodea", "--ssh-config", lab["cfg"], "--bootstrap", "--remote-command", "x",
                       "--no-api", "--out", tmp_path / "o", "-q")
    assert code == 6 and "drop --remote-command" in err


def test_cli_says_when_no_cluster_is_reachable(lab, tmp_path, cli, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    out = tmp_path / "snap"
    code, _, err = cli("collect", "--nodes", "nodea", "--ssh-config", lab["cfg"], "--remote-command", LABREPORT,
                       "--timeout", "40", "--out", out)
    assert code == 0, err
    assert "API: no cluster reachable: no kubeconfig" in err
    snap = load(out)
    assert snap.cluster.error.startswith("no cluster reachable") and snap.nodes[0].status in ("ok", "partial")


def test_parse_remote_snapshot_after_a_banner():
    from labreport.snapshot import NodeSnapshot, Snapshot, dumps
    from labreport.transport.ssh import parse_remote_snapshot

    text = "Welcome to node {x}\n" + dumps(Snapshot(nodes=[NodeSnapshot(name="w-host")]))
    node = parse_remote_snapshot(text, "worker")
    assert node.name == "worker" and node.source == "ssh" and node.info.hostname == "w-host"
    with pytest.raises(ValueError):
        parse_remote_snapshot("", "worker")


def test_strict_host_key_checking_no_is_honoured_and_recorded(lab, tmp_path):
    """Only an explicit `StrictHostKeyChecking no` skips the check, and the node says so."""
    empty = tmp_path / "kh"
    empty.write_text("")
    cfg = tmp_path / "cfg"
    cfg.write_text("Host lax\n  HostName 127.0.0.1\n" f"  Port {lab['a'].port}\n  StrictHostKeyChecking no\n"
                   + lab["cfg"].read_text().replace("StrictHostKeyChecking yes", "StrictHostKeyChecking yes"))
    s = collect_nodes(["lax"], ssh_config=str(cfg), known_hosts=str(empty), remote_command=LABREPORT, timeout=40,
                      progress=False)[0]
    assert s.status in ("ok", "partial"), s.error
    notes = [c.reason for c in s.collectors if c.name == "ssh"]
    assert notes and "not verified: StrictHostKeyChecking no" in notes[0]
    assert empty.read_text() == ""  # still nothing written to known_hosts
    # the same host under a strict alias is refused
    s = collect_nodes(["nodea"], ssh_config=str(cfg), known_hosts=str(empty), remote_command=LABREPORT, timeout=20,
                      progress=False)[0]
    assert s.status == "failed" and "is not known" in s.error
