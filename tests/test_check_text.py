"""parsers.base.check_text: what it returns and raises is what its plain form (strip for
"empty", both line-ending replacements) gives, on texts of every line ending and of
whitespace only; a text without "\\r" is returned as the very object given."""

from __future__ import annotations

import itertools

import pytest

from labreport.errors import ParseError
from labreport.parsers.base import check_text


def _plain(text: str) -> str:
    if not text.strip():
        raise ParseError("empty input")
    return text.replace("\r\n", "\n").replace("\r", "\n")


PIECES = ["a", " ", "\t", "\n", "\r", "\r\n", "\x0c", "\u2028", "\x1c", "\u00a0", "\u3000", "table ip t {", "é"]


def _outcome(f, text):
    try:
        return f(text)
    except ParseError as exc:
        return ("error", "empty" in str(exc))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_check_text_gives_what_its_plain_form_gives(n):
    for parts in itertools.product(PIECES, repeat=n):
        text = "".join(parts)
        assert _outcome(check_text, text) == _outcome(_plain, text), repr(text)


def test_a_text_without_carriage_returns_is_returned_as_it_is():
    text = "table ip t {\n\tchain c {\n\t}\n}\n" * 1000
    assert check_text(text) is text
    assert check_text(text.replace("\n", "\r\n")) == text
    with pytest.raises(ParseError, match="empty"):
        check_text(" \t\r\n\u2028")
    with pytest.raises(ParseError, match="empty"):
        check_text(b"")
