"""The code of a forward reference compiled once per string, not once per reference.

With ``from __future__ import annotations`` every annotation of labreport's models is a
string, and pydantic makes a ``typing.ForwardRef`` of each while it builds the model
classes; ``ForwardRef.__init__`` compiles its string each time: 1,558 references of 354
distinct strings (``str``, ``Optional[str]``, ``bool`` …) at ``analyze``'s start-up, 1,190
at ``import``'s, 8-10 ms of each. :func:`install` gives the ``typing`` module a ``compile``
that remembers what it compiled for a forward reference (the same source, file name and
mode give the same code object, which is immutable); anything else goes to the builtin.
A Python whose ``ForwardRef`` does not call ``compile`` that way is left alone.
"""

import builtins
import typing
from typing import Any

_MAX = 4096  # distinct strings remembered (a run has a few hundred)


def install() -> bool:
    """Memoize ``typing``'s compiling of forward references (False: not this Python's way)."""
    if isinstance(typing.__dict__.get("compile"), _Memo):
        return True
    init = getattr(typing.ForwardRef, "__init__", None)
    if "compile" in typing.__dict__ or "compile" not in getattr(getattr(init, "__code__", None), "co_names", ()):
        return False
    setattr(typing, "compile", _Memo())  # noqa: B010 - a global of typing's, shadowing the builtin there
    return True


class _Memo:
    """``compile`` for the typing module: ``compile(source, "<string>", "eval")`` of a str
    remembered, every other call passed to the builtin. The builtin is called with
    ``dont_inherit``: called from typing, it would inherit typing's future statements, of
    which there are none (and not this module's)."""

    def __init__(self) -> None:
        self.codes: dict[str, Any] = {}

    def __call__(self, source: Any, filename: Any, mode: Any, flags: int = 0, dont_inherit: bool = False,
                 optimize: int = -1) -> Any:
        if flags or optimize != -1 or type(source) is not str or filename != "<string>" or mode != "eval":
            return builtins.compile(source, filename, mode, flags, True, optimize)
        code = self.codes.get(source)
        if code is None:
            code = builtins.compile(source, filename, mode, 0, True)
            if len(self.codes) < _MAX:
                self.codes[source] = code
        return code
