"""`labreport --help` / `--version` answer without importing click or a subcommand (issue
14), and say exactly what click says."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typing import Optional

import pytest
from pydantic import Field

from labreport import cli
from labreport.cli import app
from labreport.perf import complete_models
from labreport.snapshot import Record

from tests.conftest import ROOT


def _click_output(args, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        app.cli.main(args=args, prog_name="labreport")
    assert exc.value.code == 0
    return capsys.readouterr().out


def _python(code: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python3 -c code argv…`` with this tree first on the path (and ``env`` added)."""
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"]])
def test_the_fast_text_is_clicks(args, capsys, monkeypatch):
    want = _click_output(args, capsys, monkeypatch)
    assert cli._fast(args) == want


def test_fast_path_imports_neither_click_nor_a_subcommand():
    code = ("import sys; from labreport.cli import main; rc = main(sys.argv[1:]);"
            "bad = [m for m in sys.modules if m == 'click' or (m.startswith(('labreport.cli.', 'pydantic')) and m != 'labreport.cli.commands')];"
            "print(rc, bad)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    for flag in ("--help", "--version"):
        out = subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, env=env,
                             check=True).stdout
        assert out.rstrip().endswith("0 []"), out


def test_a_narrow_terminal_and_other_arguments_go_to_click(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    assert cli._fast(["--help"]) is None
    assert cli._fast(["analyze", "--help"]) is None
    assert cli._fast(["--help", "--version"]) is None


HEAVY = ("kubernetes", "grpc", "docker", "jinja2", "graphviz", "markdown", "pyroute2", "asyncssh", "paramiko",
         "rich", "yaml")


def test_import_and_analyze_json_import_no_heavy_library(tmp_path):
    """`labreport import --iptables-save` and `labreport analyze --json` (#14: start-up per
    command) import none of the libraries of the other commands (API client, transports,
    templates, diagrams, netlink, text tables, YAML)."""
    dump = tmp_path / "ipt.txt"
    dump.write_text("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n", "utf-8")
    code = ("import os, sys; from labreport.cli import main; sys.stdout = open(os.devnull, 'w');"
            "rc = main(sys.argv[1:]);"
            f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}));"
            "print(rc, bad, file=sys.stderr)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    snap = tmp_path / "snap"
    for argv in (["import", "--iptables-save", str(dump), "--out", str(snap), "-q"], ["analyze", str(snap), "--json"]):
        err = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env,
                             check=True).stderr
        assert err.rstrip().splitlines()[-1] in ("0 []", "10 []"), (argv, err)


# models of this module for complete_models (module level: their forward references are
# resolved in this module's namespace, as in labreport/analysis/model.py)
class _Leaf(Record):
    v: int = 0


class _Mid(Record):
    leaves: list["_Leaf"] = Field(default_factory=list)


class _Top(Record):
    mid: Optional[_Mid] = None
    by_name: dict[str, list[_Leaf]] = Field(default_factory=dict)


def test_complete_models_builds_contained_models_first_and_once():
    """perf.complete_models (#14): a contained model is built before the model that holds
    it, so that pydantic reuses its schema instead of building it again when it is used on
    its own; the models validate and dump as without it."""
    assert not any(c.__pydantic_complete__ for c in (_Leaf, _Mid, _Top))  # deferred (Record's defer_build)
    complete_models([_Top])
    assert all(c.__pydantic_complete__ for c in (_Leaf, _Mid, _Top))
    data = {"mid": {"leaves": [{"v": 1}, {"v": "2"}]}, "by_name": {"a": [{"v": 3, "extra": "kept"}]}}
    top = _Top.model_validate(data)
    assert isinstance(top.mid, _Mid) and [x.v for x in top.mid.leaves] == [1, 2]
    assert top.model_dump_json() == '{"mid":{"leaves":[{"v":1},{"v":2}]},"by_name":{"a":[{"v":3,"extra":"kept"}]}}'
    with pytest.raises(ValueError):
        _Top.model_validate({"mid": {"leaves": [{"v": "x"}]}})


def test_the_analysis_models_are_built_at_import_each_once():
    """Importing labreport.analysis.model leaves no analysis model to build at analysis time
    (they were built at import by complete_models, contained models first)."""
    code = ("import pydantic._internal._model_construction as mc, collections\n"
            "built = collections.Counter(); orig = mc.complete_model_class\n"
            "def count(cls, *a, **k):\n"
            "    built[cls.__name__] += 1\n"
            "    return orig(cls, *a, **k)\n"
            "mc.complete_model_class = count\n"
            "from labreport.analysis import model\n"
            "from labreport.snapshot import Record\n"
            "ours = [c for c in vars(model).values() if isinstance(c, type) and issubclass(c, Record) "
            "and c.__module__ == model.__name__]\n"
            "print(len(ours), all(c.__pydantic_complete__ for c in ours), max(built[c.__name__] for c in ours))\n")
    out = _python(code).stdout
    n, complete, most = out.split()
    assert int(n) > 30 and complete == "True" and most == "1", out


def test_doctor_tells_when_the_bytecode_is_not_cached(tmp_path, monkeypatch):
    """`labreport doctor` says when PYTHONDONTWRITEBYTECODE (kept: the user's choice) and no
    current cache make every command compile labreport's modules again, and how to cache
    them once; a module whose .pyc is current (what py_compile writes) counts as cached."""
    import py_compile

    from labreport.cli import doctor

    src = tmp_path / "m.py"
    src.write_text("X = 1\n", "utf-8")
    assert not doctor._bytecode_current(src)
    py_compile.compile(str(src), doraise=True)
    assert doctor._bytecode_current(src)
    src.write_text("X = 12\n", "utf-8")  # another size: the cached .pyc is stale
    assert not doctor._bytecode_current(src)

    monkeypatch.setattr(doctor, "_bytecode_current", lambda p: False)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    check = doctor.bytecode_check()
    assert not check["ok"] and "PYTHONDONTWRITEBYTECODE" in check["detail"]
    assert check["fix"].startswith("python3 -m compileall -q ") and str(ROOT / "labreport") in check["fix"]
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    assert doctor.bytecode_check()["ok"]  # Python writes the cache itself
    monkeypatch.setattr(doctor, "_bytecode_current", lambda p: True)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert doctor.bytecode_check()["ok"]


def test_an_older_snapshot_and_its_redaction_build_each_node_schema_once():
    """A snapshot of an older version (the bundled samples) loads through from_dict, which
    builds NodeSnapshot before Snapshot: the redaction, which judges the nodes one by one,
    then finds NodeSnapshot built and Snapshot's schema reused it (one build each)."""
    code = ("import pydantic._internal._model_construction as mc\n"
            "built = []; orig = mc.complete_model_class\n"
            "def count(cls, *a, **k):\n"
            "    built.append(cls.__name__)\n"
            "    return orig(cls, *a, **k)\n"
            "mc.complete_model_class = count\n"
            "import json, sys\n"
            "from labreport.snapshot import load\n"
            "from labreport.redact import redact_snapshot\n"
            "snap = load(sys.argv[1])\n"
            "redact_snapshot(snap)\n"
            "print(json.dumps([n for n in built if n in ('NodeSnapshot', 'Snapshot')]))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sample = ROOT / "samples" / "live-containerd-docker-node"
    assert json.loads((sample / "snapshot.json").read_text("utf-8"))["schema_version"] < 3  # through from_dict
    out = subprocess.run([sys.executable, "-c", code, str(sample)], capture_output=True, text=True, env=env,
                         check=True).stdout
    assert json.loads(out) == ["NodeSnapshot", "Snapshot"], out  # before: Snapshot, then NodeSnapshot again


def test_redact_compiles_no_pattern_at_import_and_its_lazy_patterns_are_re_s():
    """labreport.redact's ~50 patterns are compiled at their first use (lazy_regex, #14: 8 ms
    of each command's start-up): importing it compiles none, and each behaves as
    ``re.compile`` of the same source on texts that match it and texts that do not."""
    import re

    code = ("import re, re._compiler as c; n = [0]; orig = c.compile\n"
            "def count(*a, **k):\n"
            "    n[0] += 1\n"
            "    return orig(*a, **k)\n"
            "import labreport.snapshot\n"
            "c.compile = count\n"
            "import labreport.redact\n"
            "print(n[0])\n")
    out = _python(code).stdout
    assert out.split() == ["0"], out

    from labreport import redact
    from labreport.lazy_regex import _LazyPattern, lazy_regex

    lazy = {k: v for k, v in vars(redact).items() if isinstance(v, _LazyPattern)}
    assert len(lazy) > 40
    texts = ["--password=hunter2 x", "Authorization: Bearer abcdefghijklmnop", "-A KUBE-SVC-X -j ACCEPT",
             "postgres://u:p4ss@db/x", "AKIAABCDEFGHIJKLMNOP", '"password": "s3cr3t"', "<redacted:0123abcd>", ""]
    for name, p in lazy.items():
        source, flags = p._source
        want = re.compile(source, flags)
        assert p.pattern == want.pattern and p.flags == want.flags and p.groups == want.groups, name
        for t in texts:
            if isinstance(source, bytes):
                t = t.encode()  # type: ignore[assignment]
            assert [m.span() for m in p.finditer(t)] == [m.span() for m in want.finditer(t)], (name, t)
            assert bool(p.search(t)) == bool(want.search(t)) and bool(p.fullmatch(t)) == bool(want.fullmatch(t))
        assert p.compiled is p.compiled and isinstance(p.compiled, re.Pattern)
    fresh = lazy_regex(r"a(b+)", re.I)
    assert "search" not in vars(fresh)  # not compiled yet
    assert fresh.sub(lambda m: m.group(1).lower(), "xABBa") == "xbba" and fresh.split("1ab2") == ["1", "b", "2"]
    assert vars(fresh)["search"] == fresh.compiled.search  # the compiled pattern's own methods from then on
    with pytest.raises(AttributeError):
        fresh.no_such_attribute  # noqa: B018 - the compiled pattern's AttributeError


def test_list_default_factories_are_fresh_lists_and_python_functions():
    """Record turns ``Field(default_factory=list)`` into a Python function (#14: pydantic
    parses the builtin's text signature for each such field when it builds a schema): every
    model still gets a new, empty list per instance, and dumps and JSON schemas as before."""
    from labreport import snapshot
    from labreport.analysis import model

    models = [c for mod in (snapshot, model) for c in vars(mod).values()
              if isinstance(c, type) and issubclass(c, Record) and c.__module__ == mod.__name__]
    fields = [(c.__name__, n, f.default_factory) for c in models for n, f in c.model_fields.items()]
    assert sum(1 for _, _, fac in fields if fac is snapshot._new_list) > 100
    # fields whose annotation is resolved only when pydantic collects them again (a forward
    # reference) keep the builtin: only these three
    assert {(c, n) for c, n, fac in fields if fac is list} <= {("NodeAnalysis", "devices"), ("NodeAnalysis", "routes"),
                                                                ("NodeAnalysis", "ip_rules")}
    a, b = snapshot.NodeSnapshot(name="a"), snapshot.NodeSnapshot(name="b")
    assert a.processes == [] and a.processes is not b.processes
    a.processes.append(snapshot.Process(pid=1, command="x"))
    assert b.processes == [] and snapshot.NodeSnapshot(name="c").processes == []
    assert json.loads(a.model_dump_json())["processes"][0]["pid"] == 1
    assert "default" not in snapshot.NodeSnapshot.model_json_schema()["properties"]["processes"]


def test_the_command_process_runs_without_pydantic_plugins():
    """labreport's own process looks for no pydantic plugin (PYDANTIC_DISABLE_PLUGINS, #14: a
    scan of every installed distribution at the first validator), unless the variable is set."""
    code = ("import os, sys; from labreport.cli import main; sys.stdout = open(os.devnull, 'w');"
            "rc = main(sys.argv[1:]); print(rc, os.environ.get('PYDANTIC_DISABLE_PLUGINS'), file=sys.stderr)")
    err = _python("import os; os.environ.pop('PYDANTIC_DISABLE_PLUGINS', None); " + code, "schema").stderr
    assert err.split()[-2:] == ["0", "__all__"], err
    err = _python(code, "schema", PYDANTIC_DISABLE_PLUGINS="some_plugin").stderr
    assert err.split()[-2:] == ["0", "some_plugin"], err


def test_with_no_plugin_pydantic_loads_no_plugin_loader():
    """No plugin at all: pydantic's plugin loader is labreport's, which imports nothing
    (importlib.metadata: 7-8 ms of start-up, #14); with plugins named, it is pydantic's."""
    code = ("import os, sys; from labreport.cli import main; sys.stdout = open(os.devnull, 'w');"
            "before = 'importlib.metadata' in sys.modules; rc = main(sys.argv[1:]);"
            "print(rc, before or 'importlib.metadata' in sys.modules,"
            " type(sys.modules['pydantic.plugin._loader']).__name__, file=sys.stderr)")
    err = _python("import os; os.environ.pop('PYDANTIC_DISABLE_PLUGINS', None); " + code, "schema").stderr
    assert err.split()[-3:] == ["0", "False", "_PluginsOff"], err
    err = _python(code, "schema", PYDANTIC_DISABLE_PLUGINS="some_plugin").stderr
    assert err.split()[-3:] == ["0", "True", "module"], err


def test_the_no_plugin_loader_gives_way_to_pydantics(monkeypatch):
    stub = cli._PluginsOff(cli._PluginsOff.REAL)
    monkeypatch.setitem(sys.modules, cli._PluginsOff.REAL, stub)
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "true")
    assert stub.get_plugins() == () and sys.modules[cli._PluginsOff.REAL] is stub
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "some_plugin")  # pydantic's loader answers
    assert list(stub.get_plugins()) == []
    loaded = sys.modules[cli._PluginsOff.REAL]
    assert loaded is not stub and type(loaded) is type(sys)
    assert stub.PYDANTIC_ENTRY_POINT_GROUP == loaded.PYDANTIC_ENTRY_POINT_GROUP == "pydantic"
    with pytest.raises(AttributeError):
        stub.__wrapped__  # noqa: B018 (dunder names are not looked up in the real module)


def test_publishing_over_a_snapshot_runs_no_program(tmp_path):
    """The C library for renameat2 comes from the process's own symbols: publishing over an
    existing snapshot directory runs no ``ldconfig -p`` (ctypes.util.find_library did, #14)."""
    from labreport import outputs

    code = ("import subprocess, sys; from labreport import outputs; from pathlib import Path\n"
            "ran = []; orig = subprocess.Popen.__init__\n"
            "def spy(self, *a, **k):\n"
            "    ran.append(a[0] if a else k.get('args'))\n"
            "    return orig(self, *a, **k)\n"
            "subprocess.Popen.__init__ = spy\n"
            "t = Path(sys.argv[1]); t.mkdir(); (t / 'a').write_text('old')\n"
            "s = outputs.staging_dir(t); (s / 'a').write_text('new')\n"
            "outputs.publish(s, t, ours={'a'}, main='a')\n"
            "print((t / 'a').read_text(), ran)\n")
    out = _python(code, str(tmp_path / "t")).stdout
    assert out.split() == ["new", "[]"], out
    assert [p.name for p in tmp_path.iterdir()] == ["t"]  # the old set went with the staging directory
    if sys.platform.startswith("linux"):
        assert outputs._libc() is not None and hasattr(outputs._libc(), "renameat2")
