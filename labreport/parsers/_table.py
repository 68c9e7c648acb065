"""The row reader of the tables where a row may go on over the next lines (Cilium's
``service list`` and ``bpf lb list``): not a parser, not in the registry.

A header line is noted and skipped (wherever it stands: a paste can hold several runs),
so are blank lines and shell prompts; every other line is matched against the row
pattern, and, when that fails, the continuation pattern. What a line means is the
parser's business.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, NamedTuple, Optional

from labreport.parsers._common import is_prompt_line


class Line(NamedTuple):
    no: int  # 1-based line number, for warnings
    text: str
    row: Optional[re.Match[str]]  # a new row starts here
    more: Optional[re.Match[str]]  # else: this line goes on with the row above (None: neither)


class TableReader:
    """One pass over one text; ``seen_header`` says afterwards whether a header was met."""

    def __init__(self, header: re.Pattern[str], row: re.Pattern[str], more: re.Pattern[str]):
        self.header, self.row, self.more = header, row, more
        self.seen_header = False

    def lines(self, text: str) -> Iterator[Line]:
        for no, line in enumerate(text.splitlines(), 1):
            if not line.strip() or is_prompt_line(line):
                continue
            if self.header.match(line):
                self.seen_header = True
                continue
            m = self.row.match(line)
            yield Line(no, line, m, None if m else self.more.match(line))


def header_detector(header: re.Pattern[str], score: float = 0.97) -> Callable[[str], float]:
    """A parser's ``detect``: ``score`` when a line of the first 3000 characters is the header."""
    def detect(text: str) -> float:
        return score if any(header.match(ln) for ln in text[:3000].splitlines()) else 0.0
    return detect
