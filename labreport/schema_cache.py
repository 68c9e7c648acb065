"""A persistent cache of the core schemas pydantic builds for labreport's models.

Each command builds the schemas of the models it uses at their first use (they are
``defer_build``: ``labreport.perf.complete_models``, pydantic's mocks): ~24 ms of
``analyze``'s start-up, ~18 ms of ``import``'s, of which building the validator and the
serializer from the schema is ~2 ms and generating the schema in Python the rest. A
console-script run (labreport.cli: ``_end``) keeps the schemas it generated in
``$XDG_CACHE_HOME/labreport/schemas-<key>.pickle`` (``~/.cache`` without the variable); the
next run installs a model's validator and serializer from its cached schema the way
pydantic's ``complete_model_class`` does after generating it.

The cached schema is only used when it is the one pydantic would generate:
  * the file's name holds a digest of Python's, pydantic's and pydantic-core's versions and
    of every source file of labreport and collectors (path, size, mtime): any edit of a model,
    of a type it uses or of the code that defines them, and any other version, is another file;
  * only a pydantic version whose ``complete_model_class`` is the one copied here
    (``KNOWN_PYDANTIC``); non-generic module-level models of labreport without computed
    fields (their infos are recreated while the schema is generated), not a forced rebuild;
  * the file and its directory owned by this user and writable by no one else, a regular
    file (no symlink), at most ``MAX_BYTES``: a ``marshal`` of a dict of ``module:qualname``
    to the pickle of that model's schema (anything else: ignored), each unpickled when its
    model is completed;
  * a schema that cannot be pickled (a lambda default factory…) is not cached; one that
    cannot be unpickled, or whose validator or serializer cannot be built, is generated;
  * written to a temporary file (0600) renamed over the cache; a failed write is ignored;
    the directory keeps the ``KEEP_FILES`` newest cache files.

``LABREPORT_NO_SCHEMA_CACHE`` (any non-empty value) turns it off. Tests and other
programs calling ``labreport.cli.main`` do not use it (only the console scripts install it).
"""

from __future__ import annotations

import hashlib
import marshal
import os
import pickle
import stat
import sys
import tempfile
from typing import Any, Callable, Optional

DISABLE_ENV = "LABREPORT_NO_SCHEMA_CACHE"
KNOWN_PYDANTIC = ("2.14.4",)  # whose complete_model_class ends as _install does
MAX_BYTES = 16 << 20
KEEP_FILES = 8  # the newest cache files kept in the directory (other trees, versions, edits)
PACKAGES = ("labreport", "collectors")


class _Cache:
    def __init__(self, path: str, entries: dict[str, bytes], original: Callable[..., bool]) -> None:
        self.path = path
        self.entries = entries  # module:qualname -> pickled schema, as read
        self.new: dict[str, bytes] = {}  # generated in this run
        self.hits = 0
        self.original = original


_cache: list[_Cache] = []  # [the installed cache]


def install() -> bool:
    """Serve labreport's models' schemas from the cache for the rest of the process (and
    keep the ones generated). False when it is off or nothing safe to use."""
    if _cache:
        return True
    if os.environ.get(DISABLE_ENV):
        return False
    import pydantic
    import pydantic_core
    from pydantic._internal import _model_construction as mc

    if pydantic.VERSION not in KNOWN_PYDANTIC:
        return False
    directory = _directory()
    if directory is None:
        return False
    key = _key(pydantic.VERSION, pydantic_core.__version__)
    if key is None:
        return False
    path = os.path.join(directory, f"schemas-{key}.pickle")
    cache = _Cache(path, _read(path), mc.complete_model_class)
    _cache.append(cache)

    def complete_model_class(cls: Any, config_wrapper: Any, ns_resolver: Any, *, raise_errors: bool = True,
                             call_on_complete_hook: bool = True, create_model_module: Optional[str] = None,
                             is_force_rebuild: bool = False) -> bool:
        name = None if create_model_module or is_force_rebuild else _name(cls)
        blob = cache.entries.get(name) if name else None
        if blob is not None and _install(mc, cls, config_wrapper, blob, call_on_complete_hook):
            cache.hits += 1
            return True
        done = cache.original(cls, config_wrapper, ns_resolver, raise_errors=raise_errors,
                              call_on_complete_hook=call_on_complete_hook, create_model_module=create_model_module,
                              is_force_rebuild=is_force_rebuild)
        if done and name:
            try:  # now: pydantic may reuse (and clean) the dict inside other models' schemas later
                cache.new[name] = pickle.dumps(cls.__dict__["__pydantic_core_schema__"], protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # a lambda, a local class …: generated each time
                pass
        return bool(done)

    mc.complete_model_class = complete_model_class
    return True


def save() -> None:
    """Write the schemas generated in this run beside those read (nothing when none was)."""
    if not _cache or not _cache[0].new:
        return
    cache = _cache[0]
    entries = {**cache.entries, **cache.new}
    directory = os.path.dirname(cache.path)
    try:
        data = marshal.dumps(entries)
        if len(data) > MAX_BYTES:
            return
        fd, tmp = tempfile.mkstemp(prefix=".schemas-", suffix=".tmp", dir=directory)  # 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, cache.path)
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception:  # a full disk, a read-only home: the next run generates them again
        return
    cache.entries, cache.new = entries, {}
    _prune(directory, keep=cache.path)


def _prune(directory: str, *, keep: str) -> None:
    """Remove the oldest cache files beyond KEEP_FILES (each edit of a source file, each
    tree or version, is a file of its own); never ``keep``, the one just written."""
    try:
        with os.scandir(directory) as it:
            files = [(e.stat(follow_symlinks=False).st_mtime_ns, e.path) for e in it
                     if e.name.startswith("schemas-") and e.name.endswith(".pickle")
                     and e.is_file(follow_symlinks=False)]
        files.sort(reverse=True)
        for _, path in files[KEEP_FILES:]:
            if path != keep:
                os.unlink(path)
    except OSError:
        return


def _name(cls: Any) -> Optional[str]:
    """``module:qualname`` of a model whose schema may be cached (see the module doc), else None."""
    module = getattr(cls, "__module__", "")
    qualname = getattr(cls, "__qualname__", "")
    if module.split(".")[0] not in PACKAGES or "<" in qualname:
        return None
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if obj is not cls or cls.__pydantic_fields_complete__ is not True:
        return None
    generic = cls.__pydantic_generic_metadata__
    if generic["origin"] is not None or generic["args"] or generic["parameters"]:
        return None
    if cls.__pydantic_decorators__.computed_fields:
        return None
    return f"{module}:{qualname}"


def _install(mc: Any, cls: Any, config_wrapper: Any, blob: bytes, call_on_complete_hook: bool) -> bool:
    """The end of pydantic 2.14's ``complete_model_class`` from a cached schema (False:
    nothing set, let pydantic generate it)."""
    try:
        schema = pickle.loads(blob)
        if _model_class(schema) is not cls:  # not this model's schema (a swapped or foreign entry)
            return False
        core_config = config_wrapper.core_config(title=cls.__name__)
        validator = mc.create_schema_validator(schema, cls, cls.__module__, cls.__qualname__, "BaseModel",
                                               core_config, config_wrapper.plugin_settings, _use_prebuilt=True)
        serializer = mc.SchemaSerializer(schema, core_config, _use_prebuilt=True)
    except Exception:
        return False
    cls.__pydantic_computed_fields__ = {}  # no computed fields (_name)
    mc.set_deprecated_descriptors(cls)
    cls.__pydantic_core_schema__ = schema
    cls.__pydantic_validator__ = validator
    cls.__pydantic_serializer__ = serializer
    cls.__signature__ = mc.LazyClassAttribute("__signature__", mc.partial(
        mc.generate_pydantic_signature, init=cls.__init__, fields=cls.__pydantic_fields__,
        validate_by_alias=config_wrapper.validate_by_alias, extra=config_wrapper.extra))
    cls.__pydantic_complete__ = True
    if call_on_complete_hook:
        cls.__pydantic_on_complete__()
    return True


def _model_class(schema: Any) -> Any:
    """The model class a model's core schema validates (None: not a model's schema)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("type") == "definitions":
        inner = schema.get("schema")
        if isinstance(inner, dict) and inner.get("type") == "definition-ref":
            ref = inner.get("schema_ref")
            inner = next((d for d in schema.get("definitions", ()) if isinstance(d, dict) and d.get("ref") == ref),
                         None)
        schema = inner
    return schema.get("cls") if isinstance(schema, dict) and schema.get("type") == "model" else None


def _private(st: os.stat_result) -> bool:
    """Owned by this user and writable by no one else."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _directory() -> Optional[str]:
    """$XDG_CACHE_HOME/labreport (~/.cache/labreport), made 0700 if missing; None when it is
    not private to this user (see _private) or cannot be made."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    path = os.path.join(base, "labreport")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return None
    return path if stat.S_ISDIR(st.st_mode) and _private(st) else None


def _key(*versions: str) -> Optional[str]:
    """A digest of Python's version, ``versions`` and every source file of PACKAGES."""
    h = hashlib.sha256(repr((sys.version, sys.implementation.cache_tag, versions)).encode())
    import importlib.util

    for package in PACKAGES:
        spec = importlib.util.find_spec(package)  # its directories, without importing it
        for root in list((spec.submodule_search_locations or ()) if spec is not None else ()):
            try:
                _digest_tree(h, root)
            except OSError:
                return None
    return h.hexdigest()[:32]


def _digest_tree(h: Any, root: str) -> None:
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            if e.name != "__pycache__" and not e.name.startswith("."):
                _digest_tree(h, e.path)
        elif e.name.endswith(".py"):
            st = e.stat()
            h.update(f"{e.path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())


def _read(path: str) -> dict[str, bytes]:
    """The cache's entries; {} when the file is missing or anything about it is in doubt."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return {}
    try:
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or not _private(st) or st.st_size > MAX_BYTES:
                return {}
            data = fh.read(MAX_BYTES + 1)
        entries = marshal.loads(data)  # a dict of str to bytes (checked below): no code runs
    except Exception:
        return {}
    if not isinstance(entries, dict) or not all(type(k) is str and type(v) is bytes for k, v in entries.items()):
        return {}
    return entries
