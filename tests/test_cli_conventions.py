"""kubectl's conventions in the CLI: ``-o json|yaml`` wherever ``--json`` exists (the same
data either way), ``-`` for standard input where a snapshot is read, ``labreport
completion bash|zsh|fish`` (click's own completion, answering for real), the
``kubectl-labreport`` / ``labreport-collect`` entry points, and the exit codes the README
lists (one of them: every node failed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from tests.conftest import ROOT

SAMPLE = ROOT / "samples" / "seed001-flannel-containerd"
BEFORE = ROOT / "samples" / "seed001-flannel-containerd-before"


def _run(*args: str, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from labreport.cli import run; run()", *args], input=stdin,
                          capture_output=True, timeout=120, env=env)


def test_analyze_o_yaml_is_the_json_data(cli):
    code, out_json, err = cli("analyze", SAMPLE, "--json")
    assert code == 0, err
    code, out_o, err = cli("analyze", SAMPLE, "-o", "json")
    assert code == 0 and out_o == out_json
    code, out_yaml, err = cli("analyze", SAMPLE, "-o", "yaml")
    assert code == 0, err
    assert yaml.safe_load(out_yaml) == json.loads(out_json)
    assert not out_yaml.lstrip().startswith("{")


def test_diff_o_yaml(cli):
    code, out_json, err = cli("diff", BEFORE, SAMPLE, "--json")
    assert code == 0, err
    code, out_yaml, _ = cli("diff", BEFORE, SAMPLE, "-o", "yaml")
    assert code == 0 and yaml.safe_load(out_yaml) == json.loads(out_json)
    assert json.loads(out_json)["nodes"]  # a real diff, not an empty one


def test_doctor_o_yaml(cli):
    code, out_json, err = cli("doctor", "--json")
    assert code == 0, err
    code, out_yaml, _ = cli("doctor", "-o", "yaml")
    assert code == 0
    got, want = yaml.safe_load(out_yaml), json.loads(out_json)
    assert got.keys() == want.keys() and [c["name"] for c in got["collectors"]] == [c["name"] for c in want["collectors"]]


def test_json_and_yaml_together_is_a_usage_error(cli):
    code, _, err = cli("analyze", SAMPLE, "--json", "-o", "yaml")
    assert code == 2 and "exclude each other" in err


def test_snapshot_from_standard_input():
    data = (SAMPLE / "snapshot.json").read_bytes()
    a = _run("analyze", "-", "-o", "json", stdin=data)
    b = _run("analyze", str(SAMPLE), "-o", "json")
    assert a.returncode == 0, a.stderr
    assert json.loads(a.stdout) == json.loads(b.stdout)
    d = _run("diff", str(BEFORE), "-", "--json", stdin=data)
    assert d.returncode == 0 and json.loads(d.stdout)["nodes"]
    bad = _run("analyze", "-", stdin=b"not json")
    assert bad.returncode == 4 and b"standard input (-) is not a JSON snapshot" in bad.stderr


def test_completion_scripts_and_a_real_answer():
    for shell, needle in (("bash", "complete -o nosort -F"), ("zsh", "#compdef labreport"), ("fish", "complete --no-files")):
        cp = _run("completion", shell)
        assert cp.returncode == 0 and needle.encode() in cp.stdout, (shell, cp.stdout[:200])
    env = dict(os.environ, _LABREPORT_COMPLETE="bash_complete", COMP_WORDS="labreport co", COMP_CWORD="1")
    cp = subprocess.run([sys.executable, "-c", "from labreport.cli import run; run()"], env=env,
                        capture_output=True, text=True, timeout=60)
    assert "plain,collect" in cp.stdout.splitlines() and "plain,completion" in cp.stdout.splitlines()
    env.update(COMP_WORDS="labreport collect --all-n", COMP_CWORD="2")
    cp = subprocess.run([sys.executable, "-c", "from labreport.cli import run; run()"], env=env,
                        capture_output=True, text=True, timeout=60)
    assert "plain,--all-nodes" in cp.stdout.splitlines()


def test_entry_points_in_pyproject():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-labreport"] == "labreport.cli:run_kubectl"
    assert scripts["labreport-collect"] == "labreport.cli.collect_only:run"
    cp = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0]='kubectl-labreport'; "
                         "from labreport.cli import run_kubectl; run_kubectl()", "--help"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0 and cp.stdout.startswith("Usage: kubectl labreport")


def test_readme_lists_every_exit_code():
    from labreport.status import ExitStatus

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    listed = {int(m) for m in re.findall(r"^\| (\d+) \|", section, re.M)}
    assert listed == {int(s) for s in ExitStatus}


def test_every_node_failed_has_its_own_exit_code(cli, tmp_path):
    from labreport.snapshot import load

    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host a b\n  HostName 127.0.0.1\n  Port 9\n")  # the discard port: refused
    code, _, err = cli("collect", "--nodes", "a,b", "--ssh-config", cfg, "--no-api", "--timeout", "10",
                       "--out", tmp_path / "s", "-q")
    assert code == 11, err
    snap = load(tmp_path / "s")
    assert [n.status for n in snap.nodes] == ["failed", "failed"]


@pytest.mark.parametrize("args", [("collect", "--all-nodes", "--nodes", "a"), ("collect",),
                                  ("collect", "--nodes", "a", "--in-cluster", "--ssh")])
def test_node_choice_is_checked(cli, args):
    code, _, err = cli(*args)
    assert code == 2, err


def test_import_to_stdout_piped_into_analyze():
    seed = ROOT / "tests" / "fixtures" / "seeds" / "seed000" / "worker-docker-ps-before.txt"
    imp = _run("import", "--node", "worker", "--containers", str(seed), "--out", "-")
    assert imp.returncode == 0, imp.stderr
    assert json.loads(imp.stdout)["nodes"][0]["name"] == "worker"
    an = _run("analyze", "-", "-o", "json", stdin=imp.stdout)
    assert an.returncode == 0, an.stderr
    assert [n["node"] for n in json.loads(an.stdout)["nodes"]] == ["worker"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("args", [
    ["--version"],
    ["schema"],
    ["analyze", str(ROOT / "samples" / "live-containerd-docker-node")],
    ["analyze", str(ROOT / "samples" / "live-containerd-docker-node"), "--json"],
])
def test_a_full_output_device_is_said_not_a_bug(args):
    """stdout on a full device (/dev/full: every write fails with ENOSPC): a clear error and
    exit 1, not a traceback or "internal error" (70); nothing more from the interpreter's exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open("/dev/full", "wb") as full:
        cp = subprocess.run([sys.executable, "-m", "labreport", *args], stdout=full, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT, timeout=120)
    err = cp.stderr.decode()
    assert cp.returncode == 1, err
    assert err == "labreport: error: cannot write the output: No space left on device\n"


def test_write_failure_names_only_what_the_system_could_not_write():
    import errno

    from labreport.errors import write_failure

    assert write_failure(OSError(errno.ENOSPC, "No space left on device", "/r/report.html")) == \
        "cannot write /r/report.html: No space left on device"
    assert write_failure(OSError(errno.EDQUOT, "Disk quota exceeded")) == "cannot write the output: Disk quota exceeded"
    assert write_failure(OSError(errno.EACCES, "Permission denied")) is None  # not this kind: a bug unless said elsewhere
    assert write_failure(OSError(errno.EIO, "Input/output error")) is None  # a read gives it too
    assert write_failure(ValueError("x")) is None


def test_discard_stdout_keeps_a_stdout_that_still_writes(tmp_path, monkeypatch):
    """After a failed write elsewhere (a file on a full disk), stdout that can still be
    flushed keeps what it holds and where it goes; only a stdout that cannot goes to /dev/null."""
    import io

    from labreport.cli.ending import discard_stdout

    path = tmp_path / "out.txt"
    raw = open(path, "wb")
    out = io.TextIOWrapper(raw, encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", out)
    out.write("printed before the failure\n")
    discard_stdout()
    assert os.fstat(out.fileno()).st_ino == os.stat(path).st_ino
    out.write("and after\n")
    out.flush()
    assert path.read_text() == "printed before the failure\nand after\n"
    monkeypatch.undo()
    out.close()
