"""The models' core schemas cached between console-script runs (labreport.schema_cache):
the same validation and serialization with and without the cache, and a cache file in any
doubt (corrupt, swapped, foreign, writable by others, a symlink) not used."""

from __future__ import annotations

import glob
import marshal
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path
from typing import Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field

from labreport import schema_cache

from tests.conftest import ROOT

SAMPLES = sorted(p for p in (ROOT / "samples").iterdir() if (p / "snapshot.json").is_file())

# a console-script run (labreport.cli.run) saying on stderr how many schemas came from the cache
RUN = """
import atexit, sys
from labreport import schema_cache
from labreport.cli import run
atexit.register(lambda: sys.stderr.write(f"\\nschema cache hits: {schema_cache._cache[0].hits if schema_cache._cache else -1}\\n"))
sys.argv = ["labreport", *sys.argv[1:]]
run()
"""

# validation and serialization in one process: every sample loaded, dumped, and mutants' errors
LOAD = """
import json, sys
from labreport import schema_cache
schema_cache.install()
from labreport.snapshot import Snapshot, load
for path in sys.argv[1:]:
    snap = load(path)
    sys.stdout.write(snap.model_dump_json(indent=1) + "\\n")
    data = json.loads(open(path + "/snapshot.json").read())
    for mutant in ({**data, "nodes": [{**data["nodes"][0], "name": 7}]}, {**data, "nodes": "x"},
                   {k: v for k, v in data.items() if k != "tool_version"}, {**data, "created_at": [1]}):
        try:
            Snapshot.model_validate(mutant)
            sys.stdout.write("valid\\n")
        except Exception as exc:
            sys.stdout.write(f"{type(exc).__name__}: {exc}\\n")
schema_cache.save()
sys.stderr.write(f"schema cache hits: {schema_cache._cache[0].hits if schema_cache._cache else -1}\\n")
"""


def _run(code: str, args: list[str], cache: Optional[Path], cwd: Path) -> tuple[int, bytes, int]:
    env = {k: v for k, v in os.environ.items() if k not in (schema_cache.DISABLE_ENV, "XDG_CACHE_HOME")}
    env["PYTHONPATH"] = str(ROOT)
    if cache is None:
        env[schema_cache.DISABLE_ENV] = "1"
    else:
        env["XDG_CACHE_HOME"] = str(cache)
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, env=env, cwd=cwd, timeout=300)
    tail = proc.stderr.rsplit(b"schema cache hits: ", 1)
    assert len(tail) == 2, proc.stderr[-2000:]
    return proc.returncode, proc.stdout, int(tail[1].split()[0])


def _cache_file(cache: Path) -> Path:
    files = glob.glob(str(cache / "labreport" / "schemas-*.pickle"))
    assert len(files) == 1, files
    return Path(files[0])


def test_every_sample_loads_and_validates_the_same_with_the_cache(tmp_path):
    args = [str(s) for s in SAMPLES]
    plain = _run(LOAD, args, None, tmp_path)
    cold = _run(LOAD, args, tmp_path / "c", tmp_path)
    warm = _run(LOAD, args, tmp_path / "c", tmp_path)
    assert plain[2] == -1 and cold[2] == 0 and warm[2] >= 1  # Snapshot (its parts inside its schema)
    assert plain[0] == cold[0] == warm[0] == 0
    assert plain[1] == cold[1] == warm[1]
    assert plain[1].count(b"ValidationError") >= 3 * len(SAMPLES)  # the mutants' errors compared too


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_analyze_json_is_byte_identical_with_the_cache(tmp_path, sample):
    args = ["analyze", str(sample), "--json"]
    plain = _run(RUN, args, None, tmp_path)
    cold = _run(RUN, args, tmp_path / "c", tmp_path)
    warm = _run(RUN, args, tmp_path / "c", tmp_path)
    assert cold[2] == 0 and warm[2] >= 30  # the analysis' models too
    assert plain[:2] == cold[:2] == warm[:2] and plain[0] == 0


def _warm(tmp_path: Path) -> tuple[Path, tuple[int, bytes, int]]:
    """A cache written by one import + analyze, and the plain analysis to compare with."""
    (tmp_path / "ipt.txt").write_text("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n")
    cache = tmp_path / "c"
    _run(RUN, ["import", "--iptables-save", "ipt.txt", "--out", "snap", "-q"], cache, tmp_path)
    _run(RUN, ["analyze", "snap", "--json"], cache, tmp_path)
    plain = _run(RUN, ["analyze", "snap", "--json"], None, tmp_path)
    assert _run(RUN, ["analyze", "snap", "--json"], cache, tmp_path)[2] >= 30
    return cache, plain


def _analyze(tmp_path: Path, cache: Path) -> tuple[int, bytes, int]:
    return _run(RUN, ["analyze", "snap", "--json"], cache, tmp_path)


def _entries(path: Path) -> dict[str, bytes]:
    return marshal.loads(path.read_bytes())


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not-a-dict", "swapped", "bad-entry", "empty"])
def test_a_damaged_cache_is_not_used_and_is_repaired(tmp_path, damage):
    cache, plain = _warm(tmp_path)
    path = _cache_file(cache)
    entries = _entries(path)
    name = "labreport.snapshot:Snapshot"
    if damage == "garbage":
        path.write_bytes(os.urandom(5000))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "not-a-dict":
        path.write_bytes(marshal.dumps([1, 2, 3]))
    elif damage == "swapped":  # every entry holds another model's schema
        names = sorted(entries)
        path.write_bytes(marshal.dumps({a: entries[b] for a, b in zip(names, names[1:] + names[:1])}))
    elif damage == "bad-entry":
        path.write_bytes(marshal.dumps({**{k: b"\x80\x05garbage" for k in entries}, name: pickle.dumps([1])}))
    else:
        path.write_bytes(b"")
    os.chmod(path, 0o600)
    got = _analyze(tmp_path, cache)
    assert got[:2] == plain[:2]
    assert got[2] == 0
    assert _analyze(tmp_path, cache)[2] >= 30  # written again whole by the run that found it damaged


def test_a_cache_writable_by_others_or_a_symlink_is_not_read(tmp_path):
    cache, plain = _warm(tmp_path)
    path = _cache_file(cache)
    os.chmod(path, 0o620)
    assert _analyze(tmp_path, cache)[:3] == (*plain[:2], 0)
    assert os.stat(path).st_mode & 0o777 == 0o600  # replaced by a private one
    good = path.read_bytes()
    target = tmp_path / "elsewhere.pickle"
    target.write_bytes(good)
    os.chmod(target, 0o600)
    path.unlink()
    path.symlink_to(target)
    assert _analyze(tmp_path, cache)[:3] == (*plain[:2], 0)
    os.chmod(cache / "labreport", 0o770)  # a directory others may write in: no cache at all
    assert _analyze(tmp_path, cache)[:3] == (*plain[:2], -1)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_cache_owned_by_another_user_is_not_read(tmp_path):
    cache, plain = _warm(tmp_path)
    path = _cache_file(cache)
    os.chown(path, 65534, 65534)
    assert _analyze(tmp_path, cache)[:3] == (*plain[:2], 0)
    os.chown(cache / "labreport", 65534, 65534)
    assert _analyze(tmp_path, cache)[:3] == (*plain[:2], -1)


def test_the_key_changes_with_any_source_file(tmp_path):
    import hashlib

    (tmp_path / "pkg").mkdir()
    f = tmp_path / "pkg" / "m.py"
    f.write_text("x = 1\n")

    def key() -> str:
        h = hashlib.sha256()
        schema_cache._digest_tree(h, str(tmp_path))
        return h.hexdigest()

    before = key()
    f.write_text("x = 2\n")  # same size
    os.utime(f, ns=(os.stat(f).st_atime_ns, os.stat(f).st_mtime_ns + 1))
    assert key() != before
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "m.cpython.pyc").write_bytes(b"x")
    after = key()
    (tmp_path / "pkg" / "notes.txt").write_text("x")
    assert key() == after  # only the sources count


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """schema_cache installed anew in this process (undone after the test)."""
    from pydantic._internal import _model_construction as mc

    monkeypatch.setattr(mc, "complete_model_class", mc.complete_model_class)
    monkeypatch.setattr(schema_cache, "_cache", [])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(schema_cache.DISABLE_ENV, raising=False)
    probe = types.ModuleType("labreport._schema_cache_probe")
    monkeypatch.setitem(sys.modules, probe.__name__, probe)
    return probe


def _probe_model(module: types.ModuleType, name: str, **fields) -> type[BaseModel]:
    cls = type(name, (BaseModel,), {"__module__": module.__name__, "__qualname__": name,
                                    "model_config": ConfigDict(defer_build=True),
                                    "__annotations__": {k: v[0] for k, v in fields.items()},
                                    **{k: v[1] for k, v in fields.items()}})
    setattr(module, name, cls)
    return cls


def test_an_unpicklable_schema_is_generated_each_time(fresh):
    assert schema_cache.install()
    ok = _probe_model(fresh, "Plain", n=(int, 1), tags=(list[str], Field(default_factory=list)))
    odd = _probe_model(fresh, "Odd", n=(int, Field(default_factory=lambda: 3)))
    assert ok(n="4").n == 4 and odd().n == 3
    new = schema_cache._cache[0].new
    assert "labreport._schema_cache_probe:Plain" in new and "labreport._schema_cache_probe:Odd" not in new
    schema_cache.save()
    assert "labreport._schema_cache_probe:Plain" in _entries(Path(schema_cache._cache[0].path))


def test_off_by_variable_and_for_an_unknown_pydantic(fresh, monkeypatch):
    monkeypatch.setenv(schema_cache.DISABLE_ENV, "1")
    assert not schema_cache.install()
    monkeypatch.delenv(schema_cache.DISABLE_ENV)
    monkeypatch.setattr(schema_cache, "KNOWN_PYDANTIC", ())
    assert not schema_cache.install() and schema_cache._cache == []


def test_tests_calling_main_do_not_use_the_cache(tmp_path, monkeypatch):
    code = ("import sys\nfrom labreport.cli import main\nmain(['schema'])\n"
            "sys.stderr.write(str('labreport.schema_cache' in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path)}
    env.pop(schema_cache.DISABLE_ENV, None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stderr.endswith(b"False")
    assert not (tmp_path / "labreport").exists()


def test_old_cache_files_are_pruned(fresh, tmp_path):
    directory = tmp_path / "labreport"
    directory.mkdir(mode=0o700)
    for i in range(schema_cache.KEEP_FILES + 3):
        old = directory / f"schemas-old{i:02d}.pickle"
        old.write_bytes(marshal.dumps({}))
        os.utime(old, ns=(10**18 + i, 10**18 + i))
    other = directory / "notes.txt"
    other.write_text("not ours")
    assert schema_cache.install()
    assert _probe_model(fresh, "Pruned", n=(int, 1))().n == 1  # one schema generated: the run saves
    schema_cache.save()
    left = sorted(p.name for p in directory.glob("schemas-*.pickle"))
    assert len(left) == schema_cache.KEEP_FILES and Path(schema_cache._cache[0].path).name in left
    assert "schemas-old00.pickle" not in left and f"schemas-old{schema_cache.KEEP_FILES + 2:02d}.pickle" in left
    assert other.exists()
