"""Integrity and least privilege (#15 items 5 and 6), with the real tools:

- a cut iptables-save (no COMMIT, a line cut mid-way) is kept, warned about and the node
  marked partial; a whole one is not;
- a file given with the wrong option (``--ip-route`` given ``bridge fdb``, ``docker ps`` or
  ``ip addr`` output — real outputs from the fixtures) is refused naming the right option;
- ``import --out`` on a file, /dev/null, a directory of other files, a read-only filesystem:
  one clear error, no traceback, nothing written;
- render and import killed mid-write (SIGKILL at many moments) leave the old set or the
  new set, never a mix, never a ``.tmp`` in the output directory;
- under sudo (SUDO_UID of an unprivileged user), a file the user cannot read is refused
  and nothing of it is printed: ``--ip-netns`` of a root-only file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labreport.redact import CATALOGUE
from labreport.snapshot import judged_by, load
from labreport.status import ExitStatus
from tests.conftest import lab_name

ROOT = Path(__file__).resolve().parent.parent
PARSERS = ROOT / "tests" / "fixtures" / "parsers"
IPT = PARSERS / "iptables-save" / "lab-iptables-save.txt"
PS = PARSERS / "ps" / "here-ps-aux-grep.out"
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def labreport(*args: object, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-c", "import sys; from labreport.cli import main; sys.exit(main())",
                           *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env or ENV,
                          cwd=str(ROOT))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode != 70, proc.stderr
    return proc


# ----------------------------------------------------------------------------- truncation


def test_cut_iptables_save_is_kept_warned_and_partial(tmp_path):
    whole = IPT.read_text()
    assert whole.count("COMMIT") >= 2
    cut = whole[: whole.index("COMMIT", whole.index("*nat")) - 25]  # inside the nat table, mid-line
    f = tmp_path / "cut.txt"
    f.write_text(cut)
    proc = labreport("import", "--iptables-save", f, "--out", tmp_path / "snap")
    assert proc.returncode == ExitStatus.PARTIAL, proc.stderr
    assert "no COMMIT" in proc.stderr and "cut" in proc.stderr
    snap = json.loads((tmp_path / "snap" / "snapshot.json").read_text())
    node = snap["nodes"][0]
    assert node["status"] == "partial" and "no COMMIT" in node["error"]
    assert any("truncated" in w["message"] for w in node["warnings"])
    # what was there is kept: the cut text as evidence, its rules read from it (schema 5)
    assert node["iptables"]["tables_from"] == "evidence" and "tables" not in node["iptables"]
    assert load(tmp_path / "snap").nodes[0].iptables.tables["nat"].chains
    ok = labreport("import", "--iptables-save", IPT, "--out", tmp_path / "whole")
    assert ok.returncode == 0 and "COMMIT" not in ok.stderr, ok.stderr


# ----------------------------------------------------------------------------- detectors


@pytest.mark.parametrize("wrong,option", [
    (PARSERS / "bridge-fdb" / "here-node-bridge-fdb.txt", "--bridge-fdb"),
    (PARSERS / "docker-ps" / "here-docker-ps-a.out", "--containers"),
    (PARSERS / "ip-addr" / "here-node-ip-d-addr.out", "--ip-addr"),
    (PARSERS / "ip-addr" / "here-node-ip-j-d-addr.out", "--ip-addr"),
])
def test_ip_route_refuses_other_outputs_naming_the_option(tmp_path, wrong: Path, option: str):
    proc = labreport("import", "--ip-route", wrong, "--out", tmp_path / "snap")
    assert proc.returncode == ExitStatus.PARSE_ERROR, proc.stderr
    assert "not ip route output" in proc.stderr and f"give it with {option}" in proc.stderr
    assert not (tmp_path / "snap" / "snapshot.json").exists()


@pytest.mark.parametrize("option,wrong,right", [
    ("--ps", PARSERS / "ip-route" / "here-ip-route.out", "--ip-route"),
    ("--ip-addr", PARSERS / "ps" / "here-ps-aux-grep.out", "--ps"),
    ("--iptables-save", PARSERS / "docker-ps" / "here-docker-ps-a.out", "--containers"),
])
def test_each_option_refuses_another_commands_output(tmp_path, option: str, wrong: Path, right: str):
    proc = labreport("import", option, wrong, "--out", tmp_path / "snap")
    assert proc.returncode == ExitStatus.PARSE_ERROR, proc.stderr
    assert f"give it with {right}" in proc.stderr


# ----------------------------------------------------------------------------- --out


def test_import_out_targets_that_cannot_hold_a_snapshot(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("mine\n")
    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    for target, says in ((a_file, "is a file"), (Path("/dev/null"), "character device"), (other, "other files")):
        proc = labreport("import", "--ps", PS, "--out", target)
        assert proc.returncode == ExitStatus.ERROR and says in proc.stderr, (target, proc.stderr)
    assert a_file.read_text() == "mine\n" and sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    # a previous snapshot directory is replaced, a .json path is a file target
    assert labreport("import", "--ps", PS, "--out", tmp_path / "snap").returncode == 0
    assert labreport("import", "--ps", PS, "--out", tmp_path / "snap").returncode == 0
    # the snapshot and the digest of its bytes (labreport.snapshot.digest_path), hidden
    assert sorted(p.name for p in (tmp_path / "snap").iterdir()) == [".snapshot.json.digest", "snapshot.json"]
    assert labreport("import", "--ps", PS, "--out", tmp_path / "x.json").returncode == 0


def test_import_out_on_a_read_only_filesystem(tmp_path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a read-only filesystem needs root")
    mnt = tmp_path / "ro"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {r.stderr.decode().strip()}")
    try:
        proc = labreport("import", "--ps", PS, "--out", mnt / "snap")
        assert proc.returncode == ExitStatus.ERROR and "read-only filesystem" in proc.stderr, proc.stderr
        proc = labreport("render", ROOT / "samples" / "seed001-flannel-containerd", "--out", mnt / "r")
        assert proc.returncode != 0 and ("Read-only" in proc.stderr or "read-only" in proc.stderr), proc.stderr
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# ----------------------------------------------------------------------------- kill mid-write


def _two_snapshots(tmp: Path) -> tuple[Path, Path]:
    base = json.loads((ROOT / "samples" / "live-containerd-docker-node" / "snapshot.json").read_text())
    out = []
    for tag in ("OLDSET", "NEWSET"):
        doc = json.loads(json.dumps(base).replace('"lab-node"', f'"{tag}-node"'))
        doc["title"] = tag
        d = tmp / tag
        d.mkdir()
        (d / "snapshot.json").write_text(json.dumps(doc))
        out.append(d)
    return out[0], out[1]


def _sets_in(out: Path) -> set[str]:
    tags = set()
    for f in out.iterdir():
        assert not f.name.endswith(".tmp") and not f.name.startswith("."), f
        data = f.read_bytes()
        if f.suffix == ".png":
            continue
        for tag in (b"OLDSET", b"NEWSET"):
            if tag in data:
                tags.add(tag.decode())
    return tags


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_render_killed_mid_write_leaves_one_whole_set(tmp_path, fmt: str):
    old, new = _two_snapshots(tmp_path)
    out = tmp_path / f"report-{lab_name('k')}"
    assert labreport("render", old, "--format", fmt, "--out", out).returncode == 0
    first = sorted(p.name for p in out.iterdir())
    assert _sets_in(out) == {"OLDSET"}
    # time a whole run, then kill runs at moments spread over it
    t0 = time.monotonic()
    assert labreport("render", new, "--format", fmt, "--out", tmp_path / "timing").returncode == 0
    whole = time.monotonic() - t0
    seen = set()
    for i in range(8):
        proc = subprocess.Popen([sys.executable, "-c", "import sys; from labreport.cli import main; sys.exit(main())",
                                 "render", str(new if i % 2 == 0 else old), "--format", fmt, "--out", str(out)],
                                env=ENV, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(whole * (0.3 + 0.1 * i))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        tags = _sets_in(out)
        assert len(tags) == 1, f"a mix of old and new after a kill: {tags}"
        assert sorted(p.name for p in out.iterdir()) == first
        seen |= tags
    # the next run cleans what the killed ones left beside --out
    assert labreport("render", new, "--format", fmt, "--out", out).returncode == 0
    assert _sets_in(out) == {"NEWSET"}
    assert not [p for p in out.parent.iterdir() if ".labreport-staging-" in p.name]


def test_import_killed_mid_write_leaves_a_whole_snapshot(tmp_path):
    out = tmp_path / "snap"
    assert labreport("import", "--ps", PS, "--iptables-save", IPT, "--out", out).returncode == 0
    for i in range(6):
        proc = subprocess.Popen([sys.executable, "-c", "import sys; from labreport.cli import main; sys.exit(main())",
                                 "import", "--ps", str(PS), "--iptables-save", str(IPT), "--out", str(out)],
                                env=ENV, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.15 * (i + 1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert sorted(p.name for p in out.iterdir()) == [".snapshot.json.digest", "snapshot.json"]
        raw = (out / "snapshot.json").read_bytes()
        json.loads(raw)  # whole
        assert judged_by(out / "snapshot.json", raw) == CATALOGUE  # and its digest the digest of those bytes


# ----------------------------------------------------------------------------- least privilege


def test_under_sudo_user_named_files_are_read_with_the_users_rights(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (to act as sudo would)")
    import pwd

    nobody = pwd.getpwnam("nobody")
    secret = tmp_path / "root-only"
    secret.write_text("root:$6$SHADOWHASHMARKER$abc:19000:0:99999:7:::\n")
    os.chmod(secret, 0o600)
    pub = Path(f"/tmp/{lab_name('lrpub')}")
    pub.mkdir(mode=0o755)
    try:
        ps = pub / "ps.txt"
        shutil.copy(PS, ps)
        os.chmod(ps, 0o644)
        os.chmod(pub, 0o777)
        env = {**ENV, "SUDO_UID": str(nobody.pw_uid), "SUDO_GID": str(nobody.pw_gid), "SUDO_USER": "nobody"}
        proc = labreport("import", "--ps", ps, "--ip-netns", secret, "--out", pub / "snap", env=env)
        assert proc.returncode != 0
        assert "permission denied for nobody" in proc.stderr, proc.stderr
        assert "SHADOWHASHMARKER" not in proc.stderr + proc.stdout
        # the same file given as root without sudo is read (and refused as not netns output,
        # without printing it: the message names the file, not its contents)
        plain = {k: v for k, v in ENV.items() if not k.startswith("SUDO_")}
        proc = labreport("import", "--ps", ps, "--ip-netns", secret, "--out", pub / "snap2", env=plain)
        assert proc.returncode != 0 and "not ip netns list output" in proc.stderr
        # a file nobody may read is read fine, and the snapshot belongs to the user
        ok = labreport("import", "--ps", ps, "--out", pub / "snap3", env=env)
        assert ok.returncode == 0, ok.stderr
        assert (pub / "snap3" / "snapshot.json").stat().st_uid == nobody.pw_uid
    finally:
        shutil.rmtree(pub, ignore_errors=True)
