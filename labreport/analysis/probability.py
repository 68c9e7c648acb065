"""The one way a probability or an endpoint's share is written, for every output: the
report (render), the terminal (render/text.py), the path's hop details (analysis/path.py)
and the tracer's outcome summaries (analysis/trace/fronts.py).

``format_probability(p, style=…, missing=…)``:

- ``"decimal"`` (default): 4 decimals without trailing zeros — 0.3333, 0.5, 1, 0;
- ``"percent"``: one decimal and a spaced percent sign — 33.3 %;
- ``"whole-percent"``: a whole percent, unspaced, for one-line summaries — 33%;
- ``"fraction"``: 4 decimals kept, and the fraction when one with a denominator ≤ 64 is
  within 5e-4 — 0.3333 (1/3), 0.5000 (1/2), 1.0000;
- ``"rule"``: as iptables writes a rule's ``--probability`` (11 significant digits) —
  0.33333333349.

``missing`` is what None becomes (each caller says what an absent value means there: "—",
"?", "1 (last rule)").
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal, Optional

Style = Literal["decimal", "percent", "whole-percent", "fraction", "rule"]


def format_probability(p: Optional[float], *, style: Style = "decimal", missing: str = "—") -> str:
    if p is None:
        return missing
    if style == "percent":
        return f"{p * 100:.1f} %"
    if style == "whole-percent":
        return f"{p * 100:.0f}%"
    if style == "rule":
        return f"{p:.11g}"
    if style == "fraction":
        s = f"{p:.4f}"
        frac = Fraction(p).limit_denominator(64)
        if frac.denominator > 1 and abs(float(frac) - p) < 5e-4:
            s += f" ({frac.numerator}/{frac.denominator})"
        return s
    return f"{p:.4f}".rstrip("0").rstrip(".") or "0"
