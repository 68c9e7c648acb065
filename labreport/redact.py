"""Redaction: secrets never reach a report unless asked (``--no-redact``).

``redact_snapshot(snap) -> (Snapshot, kinds)`` returns a redacted copy and the kinds of
secret it replaced (stable ids, translated by the report: ``redact.kinds.<id>``):

- ``join-token``: kubeadm bootstrap tokens ``abcdef.0123456789abcdef``
- ``discovery-hash``: ``--discovery-token-ca-cert-hash sha256:<64 hex>`` (and caCertHashes)
- ``bearer-token``: ``Authorization: Bearer …`` and JSON Web Tokens (service-account tokens)
- ``cli-credential``: ``--password=…``, ``--token …``, ``--client-secret=…`` … in command lines
- ``env-credential``: ``DB_PASSWORD=…`` in environments, ``{"name": "X_PASSWORD", "value": …}`` in pod specs
- ``url-credential``: the password of ``scheme://user:pass@host``
- ``private-key`` / ``certificate``: PEM blocks
- ``kubeconfig-credential``: ``client-key-data:``, ``token:``, ``password:`` lines and keys
- ``secret-data``: the values of a Secret object's ``data`` / ``stringData``

Every string of the snapshot is scanned (processes, containers with their labels and
annotations, evidence, cluster objects with last-applied annotations), so a secret cannot
slip through a field nobody thought of. Image and container IDs (``sha256:…`` without the
discovery flag) are not touched. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from labreport.snapshot import Snapshot

REDACTED = "<redacted>"

_Sub = tuple[str, re.Pattern[str], Callable[[re.Match[str]], str], str]  # kind, pattern, repl, cheap pre-check

_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?(?:-----END \1-----|\Z)", re.S)
_FLAG_WORDS = r"(?:password|passwd|pass|pwd|token|secret|client-secret|api-key|apikey|access-key|secret-key|credentials?)"
_CLI_FLAG = re.compile(r"(--?(?:[A-Za-z0-9]+[-_])*" + _FLAG_WORDS + r")(=|[ \t]+)(?!-)(?!<redacted>)(?!(?:true|false)\b)([^\s\"']+|\"[^\"]*\"|'[^']*')",
                       re.I)
_ENV_VAR = re.compile(r"\b([A-Z][A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|APIKEY|ACCESS_KEY|CREDENTIALS?)"
                      r"[A-Z0-9_]*)=(?!<redacted>)([^\s\"',]+)")
_URL_CRED = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s:/@<>\"']+):([^\s@/<>\"']+)@")
_JOIN_TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
_DISCOVERY = re.compile(r"((?:discovery-token-ca-cert-hash|caCertHashes|ca-cert-hash)[\"'\s:=\\\[\-]*)"
                        r"sha256:[0-9a-f]{6,64}", re.I)
_BEARER = re.compile(r"(?i)\b(bearer\s+)(?!<redacted>)[A-Za-z0-9\-._~+/]{8,}=*")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}")
_KUBECONFIG_LINE = re.compile(
    r"(?im)^(\s*-?\s*[\"']?(?:token|client-key-data|client-certificate-data|password|id-token|refresh-token|"
    r"access-token|client-secret)[\"']?\s*:\s*)(?!\s*$)(?!<redacted>)(\S.*)$")

_SUBS: list[_Sub] = [
    ("private-key", _PEM, lambda m: f"-----BEGIN {m.group(1)}----- {REDACTED} -----END {m.group(1)}-----", "-----BEGIN"),
    ("discovery-hash", _DISCOVERY, lambda m: m.group(1) + "sha256:" + REDACTED, "sha256:"),
    ("url-credential", _URL_CRED, lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@", "@"),
    ("bearer-token", _BEARER, lambda m: m.group(1) + REDACTED, ""),
    ("bearer-token", _JWT, lambda m: REDACTED, "eyJ"),
    ("join-token", _JOIN_TOKEN, lambda m: REDACTED, "."),
    ("cli-credential", _CLI_FLAG, lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", "-"),
    ("env-credential", _ENV_VAR, lambda m: f"{m.group(1)}={REDACTED}", "="),
    ("kubeconfig-credential", _KUBECONFIG_LINE, lambda m: m.group(1) + REDACTED, ":"),
]

_SECRET_KEYS = {"token", "bearertoken", "client-key-data", "client-certificate-data", "password", "id-token",
                "refresh-token", "access-token", "access_token", "refresh_token", "id_token", "client-secret",
                "client_secret", "secret"}
_ENV_NAME = re.compile(r"(?i)(?:password|passwd|secret|token|api_?key|access_?key|credentials?)")


class _Redactor:
    def __init__(self) -> None:
        self.kinds: dict[str, int] = {}

    def hit(self, kind: str, n: int = 1) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + n

    def text(self, s: str) -> str:
        if len(s) < 8:
            return s
        lower = None
        for kind, pattern, repl, pre in _SUBS:
            if pre and pre not in s:
                continue
            if kind == "bearer-token" and pattern is _BEARER:
                lower = lower if lower is not None else s.lower()
                if "bearer" not in lower:
                    continue
            out, n = pattern.subn(repl, s)
            if n:
                if kind == "private-key":
                    # a certificate is not a secret, but it is bulk and names people: say which
                    certs = len(re.findall(r"-----BEGIN [A-Z ]*CERTIFICATE-----", s))
                    if certs:
                        self.hit("certificate", certs)
                    if n - certs > 0:
                        self.hit("private-key", n - certs)
                else:
                    self.hit(kind, n)
                s = out
        return s

    def value(self, v: Any, key: str = "") -> Any:
        if isinstance(v, str):
            if len(v) > 1 and v.lstrip()[:1] in "{[" and v.rstrip()[-1:] in "}]":
                # JSON inside a string (kubectl's last-applied-configuration annotation):
                # redact it as structure, so {"name": "X_TOKEN", "value": …} is caught too
                try:
                    inner = json.loads(v)
                except ValueError:
                    inner = None
                if isinstance(inner, (dict, list)):
                    before = dict(self.kinds)
                    cleaned = self.value(inner)
                    if self.kinds != before:
                        return json.dumps(cleaned, separators=(",", ":"), ensure_ascii=False) + (
                            "\n" if v.endswith("\n") else "")
                    return v
            return self.text(v)
        if isinstance(v, list):
            return [self.value(x, key) for x in v]
        if isinstance(v, dict):
            return self.mapping(v)
        return v

    def mapping(self, d: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        # a Secret object: every value of data/stringData
        is_secret = d.get("kind") == "Secret"
        # a pod spec env entry: {"name": "DB_PASSWORD", "value": "..."}
        env_secret = (isinstance(d.get("name"), str) and "value" in d and isinstance(d.get("value"), str)
                      and bool(_ENV_NAME.search(d["name"])) and len(d) <= 3)
        for k, v in d.items():
            if is_secret and k in ("data", "stringData") and isinstance(v, dict):
                out[k] = {kk: REDACTED for kk in v}
                if v:
                    self.hit("secret-data", len(v))
                continue
            if env_secret and k == "value" and v:
                out[k] = REDACTED
                self.hit("env-credential")
                continue
            if isinstance(k, str) and k.lower() in _SECRET_KEYS and isinstance(v, str) and v and v != REDACTED:
                out[k] = REDACTED
                self.hit("kubeconfig-credential")
                continue
            out[k] = self.value(v, k)
        return out


def redact_text(text: str) -> tuple[str, list[str]]:
    """One string, redacted; and the kinds found."""
    r = _Redactor()
    return r.text(text), sorted(r.kinds)


def redact_snapshot(snap: Snapshot) -> tuple[Snapshot, list[str]]:
    """A redacted copy of ``snap`` and the sorted list of the kinds of secret replaced."""
    r = _Redactor()
    data = snap.model_dump(mode="json")
    clean = r.mapping(data)
    return Snapshot.model_validate(clean), sorted(r.kinds)
