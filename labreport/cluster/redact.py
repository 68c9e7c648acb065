"""Strip bearer tokens and similar credentials from API objects before they are stored.

labreport never lists Secrets, but tokens still turn up elsewhere: a pod's env, an
annotation, a kubeconfig pasted into a ConfigMap, kubeadm's bootstrap tokens. Strings are
scanned for ``Bearer <token>``, JSON Web Tokens (service-account tokens), kubeadm
bootstrap tokens (``abcdef.0123456789abcdef``) and ``token:`` / ``client-key-data:``
lines; values of keys with such names are replaced whole. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"

_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}")
_BOOTSTRAP = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
_YAML_SECRET_LINE = re.compile(
    r"(?im)^(\s*-?\s*[\"']?(?:token|client-key-data|password|id-token|refresh-token|access-token)[\"']?\s*:\s*)(?![\s\"']*$)(.+)$"
)
_SECRET_KEYS = {"token", "bearertoken", "client-key-data", "password", "id-token", "refresh-token", "access-token",
                "access_token", "refresh_token", "id_token"}


def _scrub_str(s: str, counter: list[int]) -> str:
    out = s
    for pattern, repl in (
        (_BEARER, lambda m: m.group(1) + REDACTED),
        (_JWT, lambda m: REDACTED),
        (_YAML_SECRET_LINE, lambda m: m.group(1) + REDACTED),
        (_BOOTSTRAP, lambda m: REDACTED),
    ):
        out, n = pattern.subn(repl, out)
        counter[0] += n
    return out


def scrub(value: Any, counter: list[int] | None = None) -> Any:
    """A copy of ``value`` (JSON data) with tokens replaced by ``<redacted>``.
    ``counter[0]`` is increased by the number of replacements."""
    if counter is None:
        counter = [0]
    if isinstance(value, str):
        return _scrub_str(value, counter)
    if isinstance(value, list):
        return [scrub(v, counter) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and k.lower() in _SECRET_KEYS and isinstance(v, str) and v:
                out[k] = REDACTED
                counter[0] += 1
            else:
                out[k] = scrub(v, counter)
        return out
    return value
