"""Strip credentials from API objects before they are stored.

labreport never lists Secrets, but tokens still turn up elsewhere: a pod's env, an
annotation, a kubeconfig pasted into a ConfigMap, kubeadm's bootstrap tokens. The objects
go through the same catalogue as everything else (:mod:`labreport.redact`), whether they
came from the API or from ``import --kubectl``. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from labreport.redact import REDACTED, _Redactor, placeholder

__all__ = ["REDACTED", "placeholder", "scrub"]


def scrub(value: Any, counter: list[int] | None = None) -> Any:
    """A copy of ``value`` (JSON data) with secrets replaced by stable placeholders
    (``labreport.redact.placeholder``). ``counter[0]`` is increased by the number of
    replacements."""
    r = _Redactor()
    out = r.value(value)
    if counter is not None:
        counter[0] += sum(r.kinds.values())
    return out
