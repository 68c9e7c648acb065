"""Small performance helpers shared by parsers, decoders and snapshot I/O.

Large inputs (a 10,000-service kube-proxy dump is ~150,000 rules) build hundreds of
thousands of small, acyclic pydantic objects; two things dominate their cost:
  * the cyclic garbage collector re-scanning the new objects (``gc_paused``);
  * per-object validation of values the parser has just built with the right types
    (``trusted_model``).
"""

from __future__ import annotations

import sys
import typing
from collections import deque
from itertools import repeat
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from labreport.gcpause import gc_paused as gc_paused  # here for its callers; defined without pydantic

M = TypeVar("M", bound=BaseModel)

_FIELD_DEFAULTS: dict[type, list[tuple[str, Any, bool]]] = {}
_REQUIRED = object()


def _models_in(tp: Any, namespace: dict[str, Any], depth: int = 0) -> Iterator[type[BaseModel]]:
    """The pydantic model classes a field's type names (``list[Hop]``, ``Optional["Uplink"]``,
    ``dict[str, list[Pod]]`` …); names still to resolve are looked up in ``namespace``."""
    if depth > 10:
        return
    if isinstance(tp, typing.ForwardRef):
        tp = tp.__forward_arg__
    if isinstance(tp, str):  # "list['DeviceRow']", "'WorkloadViews'": evaluated, then looked into
        try:
            tp = eval(tp, namespace)  # noqa: S307 - a type annotation of our own module
        except Exception:  # not resolvable here: pydantic resolves it when it builds
            return
        yield from _models_in(tp, namespace, depth + 1)
        return
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        yield tp
        return
    for arg in typing.get_args(tp):
        yield from _models_in(arg, namespace, depth + 1)


def complete_models(classes: Iterable[type[BaseModel]]) -> None:
    """Build the schemas of deferred (``defer_build``) models, each model's field models
    first. Pydantic reuses a complete model's schema inside the models that contain it,
    but builds a contained model's schema again, from scratch, when that model is then
    used on its own: the analysis builds ``Analysis`` and then ``NodeAnalysis``,
    ``WorkloadViews``, ``VethPair`` … each on its own (21–30 ms per command); in this
    order each schema is built once (15 ms for the 39 models of analysis/model.py).
    Only the order changes: the schemas are the ones pydantic builds anyway."""
    done: set[type[BaseModel]] = set()

    def visit(cls: type[BaseModel]) -> None:
        if cls in done:
            return
        done.add(cls)
        if cls.__pydantic_complete__:
            return
        namespace = vars(sys.modules[cls.__module__])
        for field in cls.__pydantic_fields__.values():
            for dep in _models_in(field.annotation, namespace):
                visit(dep)
        cls.model_rebuild()

    for cls in classes:
        visit(cls)


def _unchecked(cls: type[M], values: dict[str, Any]) -> M:
    spec = _FIELD_DEFAULTS.get(cls)
    if spec is None:
        spec = []
        for name, f in cls.model_fields.items():
            if f.default_factory is not None:
                spec.append((name, f.default_factory, True))
            elif f.is_required():
                spec.append((name, _REQUIRED, False))
            else:
                spec.append((name, f.default, False))
        _FIELD_DEFAULTS[cls] = spec
    given = set(values)
    for name, default, factory in spec:
        if name not in values:
            if default is _REQUIRED:
                return cls(**values)  # a required field is missing: let validation say so
            values[name] = default() if factory else default
    obj = cls.__new__(cls)
    _set = object.__setattr__
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", given)
    _set(obj, "__pydantic_extra__", {})
    _set(obj, "__pydantic_private__", None)
    return obj


def _validated(cls: type[M], values: dict[str, Any]) -> M:
    return cls(**values)


class _ProbeRule(BaseModel):
    """The shapes the snapshot's records have (``labreport.snapshot.Record``'s config; a
    required field, defaults, a tuple, a list by factory), for the self-check. Defined
    here so that perf does not import the snapshot, which imports perf."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    spec: str
    line_no: Optional[int] = None
    counters: Optional[tuple[int, int]] = None


class _ProbeChain(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    name: str
    policy: Optional[str] = None
    rules: list[_ProbeRule] = Field(default_factory=list)


def _self_check() -> bool:
    """The unchecked constructor must give objects equal to validated ones."""
    try:
        r = _unchecked(_ProbeRule, {"spec": "-j ACCEPT", "line_no": 3, "counters": (1, 2)})
        c = _unchecked(_ProbeChain, {"name": "INPUT", "policy": "ACCEPT", "rules": [r]})
        good = _ProbeChain(name="INPUT", policy="ACCEPT",
                           rules=[_ProbeRule(spec="-j ACCEPT", line_no=3, counters=(1, 2))])
        return (c.model_dump() == good.model_dump() and c.model_dump_json() == good.model_dump_json()
                and c == good and c.rules[0].spec == "-j ACCEPT" and c.model_fields_set == good.model_fields_set)
    except Exception:  # pragma: no cover - a pydantic that works differently
        return False


_impl: list[Callable[[type[BaseModel], dict[str, Any]], BaseModel]] = []  # [the constructor the self-check chose]


def _constructor() -> Callable[[type[BaseModel], dict[str, Any]], BaseModel]:
    """The constructor the self-check chose (made on first use): ``_unchecked``, or
    ``_validated`` when pydantic's internals differ from what it expects."""
    if not _impl:
        _impl.append(_unchecked if _self_check() else _validated)
    return _impl[0]


def trusted_model(cls: type[M], values: dict[str, Any]) -> M:
    """An instance of a pydantic model from values already built with the right types.

    The same as ``cls.model_construct(**values)`` (no validation; missing fields get their
    defaults) without its per-call overhead. Checked against normal validation on first
    use; if pydantic's internals ever differ, normal validation is used instead.
    Callers own the guarantee that the values have the field types.
    """
    obj = _constructor()(cls, values)
    assert isinstance(obj, cls)  # both constructors build a ``cls``
    return obj


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """What ``object.__setattr__(obj, name, value)`` calls for an instance of ``cls`` (the
    data descriptor of ``name`` its MRO holds: the ``__dict__`` and slots of BaseModel),
    without looking it up on each call."""
    for c in cls.__mro__:
        if name in c.__dict__:
            setter: Callable[[Any, Any], None] = c.__dict__[name].__set__
            return setter
    raise AttributeError(f"{cls.__name__} has no descriptor {name}")  # pragma: no cover - not a pydantic model


def trusted_factory(cls: type[M], fields: tuple[str, ...], *,
                    given: Optional[tuple[str, ...]] = None) -> Callable[..., M]:
    """A constructor ``make(v1, v2, …)`` for ``cls`` from one value per name of ``given``
    (by default ``fields``), values already of the fields' types: what
    :func:`trusted_model` does, without building a dict of arguments and looking the
    defaults up on each call (a 10,000-Service dump builds ~150,000 rules and chains).

    ``fields`` names every field of the model, in the order of the instance's
    ``__dict__`` (a model with extra fields is serialized in that order); the fields not
    in ``given`` get their defaults and are not in ``model_fields_set``: with ``given``
    the leading names of ``fields``, ``make(*values)`` is
    ``trusted_model(cls, dict(zip(given, values)))``.

    ``make`` is compiled for its fields when the factory is made, as ``dataclasses`` compiles
    ``__init__``: the instance's dict and fields set are literals, the slots set by their
    descriptors (callgrind: ~20 % fewer instructions per Endpoint than a dict built from
    the arguments and ``object.__setattr__``).
    Checked like :func:`trusted_model`; normal validation when the check fails."""
    if set(fields) != set(cls.model_fields) or len(fields) != len(cls.model_fields):
        raise ValueError(f"{cls.__name__}: trusted_factory needs every field once ({sorted(cls.model_fields)})")
    args = fields if given is None else given
    if not set(args) <= set(fields) or len(set(args)) != len(args):
        raise ValueError(f"{cls.__name__}: given must name fields of {fields}, each once")
    rest = [name for name in fields if name not in args]
    if any(cls.model_fields[name].is_required() for name in rest):
        raise ValueError(f"{cls.__name__}: a field without a default is not given ({rest})")
    if _constructor() is not _unchecked or not all(name.isidentifier() for name in fields):
        def validated(*values: Any) -> M:
            return cls(**dict(zip(args, values)))

        return validated
    return _compiled_factory(cls, fields, args)


def _compiled_factory(cls: type[M], fields: tuple[str, ...], args: tuple[str, ...]) -> Callable[..., M]:
    """``trusted_factory``'s ``make``: its source built from the field names (identifiers,
    checked by the caller; they appear only as string keys and in ``_d_<name>``, the
    default of a field not given, and ``_f_<name>``, its default factory, called for each
    instance). Every other name of it starts with an underscore, which no pydantic field
    name does: a field named ``cls`` or ``obj`` cannot shadow them."""
    namespace: dict[str, Any] = {
        "_cls": cls, "_new": cls.__new__, "_set_dict": _slot_setter(cls, "__dict__"),
        "_set_fields": _slot_setter(cls, "__pydantic_fields_set__"),
        "_set_extra": _slot_setter(cls, "__pydantic_extra__"),
        "_set_private": _slot_setter(cls, "__pydantic_private__"),
    }
    position = {name: i for i, name in enumerate(args)}
    items = []
    for name in fields:
        if name in position:
            items.append(f"{name!r}: _a{position[name]}")
            continue
        f = cls.model_fields[name]
        if f.default_factory is not None:
            namespace[f"_f_{name}"] = f.default_factory
            items.append(f"{name!r}: _f_{name}()")
        else:
            namespace[f"_d_{name}"] = f.default
            items.append(f"{name!r}: _d_{name}")
    fields_set = "{" + ", ".join(repr(name) for name in args) + "}" if args else "set()"
    source = (f"def make({', '.join(f'_a{i}' for i in range(len(args)))}):\n"
              "    _obj = _new(_cls)\n"
              f"    _set_dict(_obj, {{{', '.join(items)}}})\n"
              f"    _set_fields(_obj, {fields_set})\n"
              "    _set_extra(_obj, {})\n"
              "    _set_private(_obj, None)\n"
              "    return _obj\n")
    exec(compile(source, f"<trusted_factory {cls.__name__}>", "exec"), namespace)  # noqa: S102 - our fields' names
    make: Callable[..., M] = namespace["make"]
    make.__qualname__ = f"trusted_factory.<{cls.__name__}>"
    return make


def trusted_models(cls: type[M], dicts: list[dict[str, Any]]) -> list[M]:
    """Instances of a pydantic model, one per dict of ``dicts``, each dict holding every field
    of ``cls`` (no more; values already of the fields' types): what :func:`trusted_model`
    does for each, the dicts becoming the models' ``__dict__`` (not copied), in C-level
    passes over all of them (no Python frame per model: a 10,000-Service dump has ~41,000
    chains). Checked like :func:`trusted_model`; normal validation when the check fails."""
    if dicts and dicts[0].keys() != cls.model_fields.keys():  # a caller's slip, seen on the first
        raise ValueError(f"{cls.__name__}: trusted_models needs dicts of every field ({sorted(cls.model_fields)})")
    if _constructor() is not _unchecked:
        return [cls(**d) for d in dicts]
    n = len(dicts)
    objs: list[M] = list(map(cls.__new__, repeat(cls, n)))
    set_ = object.__setattr__
    drain = deque[Any](maxlen=0).extend
    drain(map(set_, objs, repeat("__dict__"), dicts))
    drain(map(set_, objs, repeat("__pydantic_fields_set__"), map(set, repeat(frozenset(cls.model_fields), n))))
    drain(map(set_, objs, repeat("__pydantic_extra__"), map(dict, repeat((), n))))
    drain(map(set_, objs, repeat("__pydantic_private__"), repeat(None, n)))
    return objs
