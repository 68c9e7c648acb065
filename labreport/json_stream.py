"""pydantic's ``to_json(model, indent=N)``, written to a binary stream piece by piece.

``write_json(model, out, stream={Model: "field", …})`` writes exactly the bytes of
``type(model).__pydantic_serializer__.to_json(model, indent=indent)``, but a list field
named in ``stream`` is written one item at a time (each item in turn by the same rule):
the whole document is never one ``bytes``. A 10,000-Service analysis is ~30 MB of JSON;
as one ``to_json`` it was that much in pydantic's buffer and as much again in the bytes
made of it (~47 MB more at the command's peak, ~19,000 page faults, ~45 ms), where the
pieces of one record at a time are a few KB (``labreport analyze --json``).

Why the bytes are the same: pydantic-core writes indented JSON with serde_json's pretty
formatter, where a value's text depends on its depth only by the spaces after each
newline (a JSON string never holds a raw newline). A model's fields before and after the
streamed one are serialized with ``include`` (the same fields, in the same order, as in
the whole), the streamed field's items each on its own, and the pieces indented to their
depth. A model this cannot split exactly — unknown (extra) fields, a model serializer,
computed fields, an alias, serializer or exclusion on the streamed field, an item that is
not of the field's declared model exactly (the whole serializes a subclass by the declared
model) — is serialized whole, as before.
"""

from __future__ import annotations

import json
from typing import BinaryIO, Mapping, get_args, get_origin

from pydantic import BaseModel

FLUSH_BYTES = 1 << 20  # pieces are joined and written about this much at a time


class _Sink:
    __slots__ = ("out", "parts", "size")

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.parts: list[bytes] = []
        self.size = 0

    def put(self, b: bytes) -> None:
        self.parts.append(b)
        self.size += len(b)
        if self.size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.out.write(b"".join(self.parts))
            self.parts.clear()
            self.size = 0


def write_json(model: BaseModel, out: BinaryIO, *, stream: Mapping[type[BaseModel], str], indent: int = 1) -> None:
    """Write ``model``'s JSON (``to_json(model, indent=indent)``, byte for byte) to ``out``;
    the list field ``stream[type(m)]`` of each model ``m`` met on the way item by item."""
    sink = _Sink(out)
    _emit(sink, model, 0, indent, stream)
    sink.flush()


def _pad(text: bytes, spaces: int) -> bytes:
    """``text`` (JSON at depth 0) as it stands ``spaces`` further in."""
    return text.replace(b"\n", b"\n" + b" " * spaces) if spaces else text


def _splittable(model: BaseModel, name: str) -> bool:
    cls = type(model)
    field = cls.model_fields.get(name)
    if (field is None or field.alias or field.serialization_alias or field.exclude or field.metadata
            or getattr(field, "exclude_if", None) is not None):
        return False
    if getattr(model, "__pydantic_extra__", None):
        return False
    decorators = cls.__pydantic_decorators__
    if decorators.model_serializers or cls.__pydantic_computed_fields__:
        return False
    if any(name in d.info.fields or "*" in d.info.fields for d in decorators.field_serializers.values()):
        return False
    # the items as the whole serializes them: by the declared item model's serializer, which
    # is the items' own only when they are of exactly that class (not a subclass)
    args = get_args(field.annotation)
    if get_origin(field.annotation) is not list or len(args) != 1 or not isinstance(args[0], type):
        return False
    items = getattr(model, name)
    kind = args[0]
    return isinstance(items, list) and all(type(x) is kind for x in items)


def _inner(model: BaseModel, names: set[str], indent: int) -> bytes:
    """The members of ``model``'s JSON object for the fields ``names``: what lies between its
    braces, without the newlines that open and close it (b"" for none)."""
    if not names:
        return b""
    whole = type(model).__pydantic_serializer__.to_json(model, indent=indent, include=names)
    return b"" if whole == b"{}" else whole[2:-2]  # b'{\n' … b'\n}'


def _emit(sink: _Sink, model: BaseModel, depth: int, indent: int, stream: Mapping[type[BaseModel], str]) -> None:
    """``model``'s JSON at ``depth`` spaces (the first line not indented: it follows a key or
    a list's indentation)."""
    cls = type(model)
    name = stream.get(cls)
    if name is None or not _splittable(model, name):
        sink.put(_pad(cls.__pydantic_serializer__.to_json(model, indent=indent), depth))
        return
    fields = list(cls.model_fields)
    at = fields.index(name)
    before = _inner(model, set(fields[:at]), indent)
    after = _inner(model, set(fields[at + 1:]), indent)
    items: list[BaseModel] = getattr(model, name)
    inner_depth = depth + indent
    sink.put(b"{")
    if before:
        sink.put(_pad(b"\n" + before, depth) + b",")
    key = json.dumps(name, ensure_ascii=False).encode()
    sink.put(b"\n" + b" " * inner_depth + key + b": ")
    if not items:
        sink.put(b"[]")
    else:
        sink.put(b"[")
        item_depth = inner_depth + indent
        item_lead = b"\n" + b" " * item_depth
        kind = type(items[0])  # every item's (_splittable)
        if kind not in stream:  # the items whole, each by its own call
            to_json, put = kind.__pydantic_serializer__.to_json, sink.put
            for i, item in enumerate(items):  # _pad(…, item_depth), its newline-and-spaces made once
                put((b"," + item_lead if i else item_lead) + to_json(item, indent=indent).replace(b"\n", item_lead))
        else:
            for i, item in enumerate(items):
                sink.put(b"," + item_lead if i else item_lead)
                _emit(sink, item, item_depth, indent, stream)
        sink.put(b"\n" + b" " * inner_depth + b"]")
    if after:
        sink.put(b"," + _pad(b"\n" + after, depth))
    sink.put(b"\n" + b" " * depth + b"}")


def dumps_json(model: BaseModel, *, stream: Mapping[type[BaseModel], str], indent: int = 1) -> bytes:
    """``write_json`` into bytes (for tests and comparisons)."""
    import io

    buf = io.BytesIO()
    write_json(model, buf, stream=stream, indent=indent)
    return buf.getvalue()
