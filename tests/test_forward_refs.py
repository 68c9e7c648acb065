"""typing's forward references compiled once per string (labreport.forward_refs): the same
code, the same errors, the same evaluated hints as without."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

CHILD = r"""
import sys, typing
from typing import Optional
memo = sys.argv[1] == "memo"
if memo:
    from labreport import forward_refs
    assert forward_refs.install() and forward_refs.install()
    assert type(typing.__dict__["compile"]).__name__ == "_Memo"
else:
    assert "compile" not in typing.__dict__

def code_of(ref):
    c = ref.__forward_code__
    return (c.co_code, c.co_consts, c.co_names, c.co_flags, c.co_filename, c.co_name)

out = []
for arg in ("int", "Optional[str]", "dict[str, list[Optional[int]]]", "*tuple[int, str]", "'nested'"):
    a, b = typing.ForwardRef(arg), typing.ForwardRef(arg, is_argument=False, is_class=True)
    out.append((arg, code_of(a), a == typing.ForwardRef(arg), b.__forward_is_class__))
    if memo:
        assert a.__forward_code__ is b.__forward_code__
for bad in ("a b", "x =", "1 +"):
    try:
        typing.ForwardRef(bad)
    except SyntaxError as exc:
        out.append((bad, str(exc)))
class M:
    x: "Optional[int]"
    y: "dict[str, list[M]]"
out.append(repr(typing.get_type_hints(M)))
out.append(typing.compile("x = 1", "<s>", "exec").co_names if memo else ("x",))
from labreport.cli import main
out.append(main(["schema"]) == 0)
sys.stderr.write(repr(out))
"""


def _run(mode: str) -> str:
    proc = subprocess.run([sys.executable, "-c", CHILD, mode], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def test_the_same_codes_errors_and_hints_with_the_memo():
    plain, memo = _run("plain"), _run("memo")
    assert "SyntaxError" not in plain and "Forward reference must be an expression" in plain
    assert plain == memo
