"""The records the nft readers build, as plain dicts in the typed shape of
:mod:`labreport.snapshot` (``NftTable`` → ``NftChain`` / ``NftSet`` → ``NftRule`` /
``NftElement``), validated into the models once per table: a 10,000-service kube-proxy
table has ~40,000 chains and ~90,000 rules, and one validation pass in pydantic's core
costs a fraction of a Python constructor call per record."""

from __future__ import annotations

from typing import Any, Optional

from labreport.parsers.nft.expr import rule_to_expr
from labreport.parsers.nft.fast import fast_statements
from labreport.parsers.nft.typed import typed_statements, typed_value


def new_table(family: str, name: str, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"family": family, "name": name, "chains": [], "sets": []}
    d.update({k: v for k, v in kw.items() if v is not None})
    return d


def new_chain(name: str, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "rules": []}
    d.update({k: v for k, v in kw.items() if v is not None})
    return d


def new_set(name: str, kind: str = "set", **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": kind, "elements": []}
    d.update({k: v for k, v in kw.items() if v is not None})
    return d


def statements_of_text(text: str) -> tuple[list[dict[str, Any]], Optional[str]]:
    """A printed rule's typed statements and its comment; never raises (a part the reader
    does not understand becomes an ``other`` statement with its words)."""
    fast = fast_statements(text)
    if fast is not None:
        return fast, None
    try:
        exprs, comment = rule_to_expr(text)
    except Exception:  # best effort: never fail a reader
        return [{"kind": "other", "text": text}], None
    return typed_statements(exprs), comment


def new_rule(text: str, expr: Optional[list[Any]] = None, comment: Optional[str] = None,
             handle: Optional[int] = None, line_no: Optional[int] = None) -> dict[str, Any]:
    """A rule from its printed text (its statements are read from it when first used:
    ``NftRule.expr``; its comment now, when it may have one) or, from JSON input, with
    nft's JSON statements (``expr``), kept typed."""
    d: dict[str, Any] = {"text": text}
    if expr is None:
        if comment is None and "comment" in text:  # the reader's comment (a rule without the word has none)
            comment = statements_of_text(text)[1]
    else:
        d["typed"] = typed_statements(expr)
    if comment is not None:
        d["comment"] = comment
    if handle is not None:
        d["handle"] = handle
    if line_no is not None:
        d["line_no"] = line_no
    return d


def new_element(key: list[Any], value: Any = None, text: Optional[str] = None, comment: Optional[str] = None,
                timeout: Optional[float] = None, expires: Optional[float] = None) -> dict[str, Any]:
    """An element from nft's JSON values (``key``: one per concatenated component)."""
    d: dict[str, Any] = {"key": [k if isinstance(k, (int, str)) else typed_value(k) for k in key]}
    if value is not None:
        d["value"] = typed_value(value)
    if text is not None:
        d["text"] = text
    if comment is not None:
        d["comment"] = comment
    if timeout is not None:
        d["timeout"] = timeout
    if expires is not None:
        d["expires"] = expires
    return d
