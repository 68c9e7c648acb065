"""Regular expressions compiled at their first use, not at import.

``lazy_regex(pattern, flags)`` stands for ``re.compile(pattern, flags)``: a module that
defines many patterns (labreport.redact: ~50, 8 ms of compiling in each command's start-up)
pays only for those a command uses. The first use of any attribute compiles the pattern;
from then on its methods (``search``, ``sub`` …) are the compiled pattern's own, bound, so
a call costs what it costs on the compiled pattern. Only for calling the pattern's
methods: ``re.sub(p, …)``, ``isinstance(p, re.Pattern)`` and ``==`` need the compiled one
(``p.compiled``).
"""

from __future__ import annotations

import re
from typing import Any, AnyStr, cast

_BOUND = ("search", "match", "fullmatch", "sub", "subn", "finditer", "findall", "split", "scanner",
          "pattern", "flags", "groups", "groupindex")


class _LazyPattern:
    def __init__(self, pattern: str | bytes, flags: int) -> None:
        self._source = (pattern, flags)

    @property
    def compiled(self) -> re.Pattern[Any]:
        compiled: re.Pattern[Any] | None = self.__dict__.get("_compiled")
        if compiled is None:
            compiled = re.compile(*self._source)
            for name in _BOUND:  # found on the instance from now on: __getattr__ is not called again
                setattr(self, name, getattr(compiled, name))
            self._compiled = compiled
        return compiled

    def __getattr__(self, name: str) -> Any:  # only for a name not set on the instance yet
        if name.startswith("_"):  # copy, pickle … probing for hooks; _source before __init__
            raise AttributeError(name)
        return getattr(self.compiled, name)

    def __repr__(self) -> str:
        return f"lazy_regex({self._source[0]!r}, {self._source[1]})"


def lazy_regex(pattern: AnyStr, flags: int = 0) -> re.Pattern[AnyStr]:
    """``re.compile(pattern, flags)``, done when the pattern is first used (see the module)."""
    return cast("re.Pattern[AnyStr]", _LazyPattern(pattern, flags))
