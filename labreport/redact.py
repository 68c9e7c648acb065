"""Redaction: secrets never reach a snapshot or a report unless asked (``--no-redact``).

``redact_snapshot(snap) -> (Snapshot, kinds)`` returns a redacted copy and the kinds of
secret it replaced (stable ids, translated by the report: ``redact.kinds.<id>``). A secret
is replaced by a stable placeholder, ``<redacted:1a2b3c4d>`` (the first 8 hex digits of a
salted SHA-256 of the secret): the same secret reads the same everywhere, so a diff of two
snapshots still sees that a password changed, and the placeholder tells nothing useful
about the secret (32 bits of a salted hash; a guessable password stays guessable only by
whoever could guess it anyway).

The catalogue (every form is a row of tests/test_hostile_redact.py's table):

- ``join-token``: kubeadm bootstrap tokens ``abcdef.0123456789abcdef``
- ``discovery-hash``: ``--discovery-token-ca-cert-hash sha256:<64 hex>`` (and caCertHashes)
- ``bearer-token``: ``Authorization: Bearer …``, ``Authorization: Basic …``, any
  ``Authorization:`` header value, JSON Web Tokens (service-account tokens)
- ``cli-credential``: ``--password=…``, ``--token …``, ``--requirepass …``, ``curl -u user:pass``,
  ``mysql -pX``, ``sshpass -p X``, ``redis-cli -a X``, ``openssl … -passout pass:X``,
  ``-Dx.keyStorePassword=X``, ``["--password", "X"]`` in container Args/Cmd, positional
  passwords (``htpasswd -b FILE USER X`` / ``-nb USER X``, ``rabbitmqctl add_user USER X``,
  ``mc alias set ALIAS URL AK X``, ``mysqladmin … password X``)
- ``env-credential``: ``DB_PASSWORD=…``, bare ``PASSWORD=`` / ``TOKEN=`` / ``API_KEY=``, a name
  saying PASSWORD/TOKEN/SECRET/KEY, ``{"name": "X_PASSWORD", "value": …}`` in pod specs
- ``url-credential``: the password of ``scheme://user:pass@host``; ``?token=`` / ``&sig=`` query
  values; Slack and Discord webhook tokens
- ``private-key`` / ``certificate``: PEM blocks
- ``kubeconfig-credential``: ``client-key-data:``, ``token:``, ``password:`` lines and keys
- ``json-credential``: ``"auth"``/``"password"``/``"private_key_id"``/``"client_secret"`` … values in
  JSON (registry ``auths``, cloud service-account keys), also as text
- ``cloud-key``: AWS access key ids (``AKIA…``/``ASIA…``) and ``aws_secret_access_key``, GCP API keys
  (``AIza…``), Azure ``AccountKey=``/``SharedAccessKey=``/``sig=``
- ``vault-token``: Vault tokens (``hvs.…``, ``s.…``) and ``Root Token:`` lines
- ``api-token``: GitHub/GitLab/Slack tokens (``ghp_…``, ``glpat-…``, ``xoxb-…``)
- ``secret-data``: the values of a Secret object's ``data`` / ``stringData``

Every string of the snapshot is scanned (processes, containers with their labels and
annotations, evidence, cluster objects with last-applied annotations), so a secret cannot
slip through a field nobody thought of. Image and container IDs (``sha256:…`` without the
discovery flag) are not touched. Pure: no I/O (but once, at import, the module reads its
own source for ``CATALOGUE``).

Redacted once: a snapshot is redacted when it is written (``for_storage``), and its record
(``Snapshot.redaction``) says so with ``CATALOGUE``, the fingerprint of this module's source
(every pattern, trigger word and form of the walk is in it). A later command that loads
such a file of the current version (``snapshot.load(…, on_read=note_loaded)``) with the same
fingerprint does not dump and judge the loaded snapshot again: ``note_loaded`` judges the
file's own text once (``json_is_clean`` of the bytes read, the backstop: the record is a
claim the file makes about itself, and a secret added to it by hand after it was written
is still found), and ``redact_snapshot`` returns that very object as it is. The backstop
itself is skipped for the bytes labreport wrote after judging them: ``for_storage`` marks
the snapshot it returns (``snapshot.mark_judged``), ``snapshot.save`` records the digest of
the bytes it writes in a sidecar, and a file whose bytes still have that digest, judged by
this catalogue (``snapshot.judged_by``), is not judged again (``SCAN_STATS["sealed"]``). A
record that is off (``--no-redact``), missing (an older file) or of another catalogue, or a
file whose text is not clean (its placeholders included), is redacted as before.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

from pydantic import BaseModel

from labreport.lazy_regex import lazy_regex
from labreport.snapshot import LiveMarks, Redaction, Snapshot, judged_by, mark_judged

_M = TypeVar("_M", bound=BaseModel)

REDACTED = "<redacted>"  # the generic form; stored values use placeholder(secret)
_SALT = b"labreport-redact-v1\0"
_PLACEHOLDER_RE = lazy_regex(r"<redacted(?::[0-9a-f]{8})?>")
_NOT_REDACTED = r"(?!<redacted)"


def placeholder(secret: str) -> str:
    """The stable stand-in for ``secret``: ``<redacted:`` + 8 hex digits + ``>``."""
    return f"<redacted:{hashlib.sha256(_SALT + secret.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}>"


def is_redacted(s: str) -> bool:
    return bool(_PLACEHOLDER_RE.fullmatch(s))


_Sub = tuple[str, "re.Pattern[str]", Callable[["re.Match[str]"], str]]


def _keep(*groups: int, secret: int) -> Callable[["re.Match[str]"], str]:
    """A replacement keeping ``groups`` (prefixes) and replacing group ``secret``."""

    def repl(m: re.Match[str]) -> str:
        value = m.group(secret)
        if _PLACEHOLDER_RE.fullmatch(value):
            return m.group(0)
        out = m.group(0)
        start, end = m.start(secret) - m.start(0), m.end(secret) - m.start(0)
        return out[:start] + placeholder(value) + out[end:]

    del groups
    return repl


def _whole(m: re.Match[str]) -> str:
    return placeholder(m.group(0))


_PEM = lazy_regex(r"-----BEGIN ([A-Z0-9 ]+)-----.*?(?:-----END \1-----|\Z)", re.S)
_PEM_DONE = lazy_regex(r"-----BEGIN ([A-Z0-9 ]+)----- <redacted:[0-9a-f]{8}> -----END \1-----")

_FLAG_WORDS = (r"(?:password|passwd|pass|pwd|token|secret|client-secret|api-key|apikey|access-key|secret-key|"
               r"credentials?|requirepass|masterauth|auth-token|private-key-password|storepass|keypass)")
_VALUE = r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;]+)"
# --password=X, --token X, -password X (but not --token-auth-file=…, --password-file …, =true)
_CLI_FLAG = lazy_regex(r"(?<![\w-])(--?(?:[A-Za-z0-9]+[-_])*" + _FLAG_WORDS + r")(=|[ \t]+)" + _NOT_REDACTED +
                       r"(?!-)(?!(?:true|false|yes|no)\b)" + _VALUE, re.I)
_JAVA_PROP = lazy_regex(r"(-D[\w.-]*(?:password|passwd|secret|token|credentials?)[\w.-]*=)" + _NOT_REDACTED + _VALUE,
                        re.I)
_CURL_USER = lazy_regex(r"(?<![\w-])(-u[ \t]*|--user[= \t]+|--proxy-user[= \t]+)([\"']?)([^\s:\"']+):"
                        + _NOT_REDACTED + r"([^\s\"']+)")
_MYSQL_P = lazy_regex(r"(\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b[^\n]*?\s-p)" + _NOT_REDACTED
                      + r"([^\s-][^\s]*)")
# docker login -u USER -p PASS (podman, nerdctl, buildah, skopeo, helm registry alike)
_LOGIN_P = lazy_regex(r"(\b(?:docker|podman|nerdctl|buildah|skopeo|helm registry|oras)\s+login\b[^\n]*?\s-p[ \t]+)"
                      + _NOT_REDACTED + r"([^\s\"']+)")
# mongo -u USER -p PASS (mongosh and the mongo tools; -p takes the next word), ldapsearch -w PASS
_MONGO_P = lazy_regex(r"(\b(?:mongo|mongosh|mongodump|mongorestore|mongoexport|mongoimport|mongostat|mongotop)\b"
                      r"[^\n]*?\s-p[ \t]+)" + _NOT_REDACTED + r"([^\s\"'-][^\s\"']*)")
_LDAP_W = lazy_regex(r"(\bldap(?:search|add|modify|delete|whoami|passwd|compare|modrdn)\b[^\n]*?\s-w[ \t]+)"
                     + _NOT_REDACTED + r"([^\s\"']+)")
# positional passwords: htpasswd -b[…] FILE USER PASS / -nb USER PASS (the last word, -b a
# flag of any cluster; -n: no file), rabbitmqctl add_user|change_password|authenticate_user
# USER PASS, mc (mcli) alias set|config host add ALIAS URL ACCESSKEY SECRETKEY, mysqladmin …
# password NEW. The command word is a trigger ('pass' in htpasswd, 'rabbitmqctl', '://' of
# mc's URL, 'mysql'). Each starts with its word, ``word(?<!\wword)`` for ``\bword``: a literal
# prefix lets re skip to it (~0.07 µs a line instead of ~1 µs for a leading \b).
# (-C and -r take a number: a cluster ending in C or r takes it, no other does, so a word
# is never read both ways and a redacted line reads the same again)
_HT_OPT = r"[ \t]+-(?:[A-Za-z]*[Cr][ \t]+[0-9]+|[A-Za-z]*[A-BD-Za-qs-z])"
_HT_FLAG = r"(?:" + _HT_OPT + r")*?[ \t]+-[A-Za-z]*{}[A-Za-z]*(?:[ \t]|$)"  # a cluster holding the letter
_HT_HAS = "(?=" + _HT_FLAG + ")"
_POS = r"(?:<redacted:[0-9a-f]{8}>|(?![<>;&|])[^\s\"'-][^\s\"']*)[ \t]+"  # a word (an AKIA… already redacted too)
_ARG = r"(?!-)(?![<>;&|])" + _VALUE
_HTPASSWD_N = lazy_regex(r"(htpasswd(?<!\whtpasswd)" + _HT_HAS.format("b") + _HT_HAS.format("n") + r"(?:" + _HT_OPT
                         + r")+[ \t]+" + _POS + r")" + _NOT_REDACTED + _ARG)
_HTPASSWD_B = lazy_regex(r"(htpasswd(?<!\whtpasswd)" + _HT_HAS.format("b") + "(?!" + _HT_FLAG.format("n") + r")(?:"
                         + _HT_OPT + r")+[ \t]+" + _POS + _POS + r")" + _NOT_REDACTED + _ARG)
_RABBITMQCTL = lazy_regex(r"(rabbitmqctl(?<!\wrabbitmqctl)\b[^\n]*?[ \t](?:add_user|change_password|authenticate_user)[ \t]+"
                          r"(?:--[\w-]+[ \t]+)*" + _POS + r")" + _NOT_REDACTED + _ARG)
_MC_ALIAS = lazy_regex(r"(mc(?<!\wmc)(?:li)?[ \t]+(?:alias[ \t]+set|config[ \t]+host[ \t]+add)[ \t]+(?:--?[\w-]+[ \t]+)*"
                       + _POS + r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"']*[ \t]+" + _POS + r")" + _NOT_REDACTED + _ARG)
_MYSQLADMIN_PW = lazy_regex(r"(mysqladmin(?<!\wmysqladmin)\b[^\n]*?[ \t]password[ \t]+)" + _NOT_REDACTED + _ARG)
_SSHPASS = lazy_regex(r"(\bsshpass\b[^\n]*?\s-p[ \t]*)" + _NOT_REDACTED + r"([^\s]+)")
_REDIS_A = lazy_regex(r"(\bredis-cli\b[^\n]*?\s-a[ \t]+)" + _NOT_REDACTED + r"([^\s]+)")
_OPENSSL_PASS = lazy_regex(r"(-pass(?:in|out)?[ \t]+pass:)" + _NOT_REDACTED + r"([^\s]+)")
# ["--password", "X"] (container Args/Cmd as JSON text)
_JSON_ARGV = lazy_regex(r"(\"--?(?:[A-Za-z0-9]+[-_])*" + _FLAG_WORDS + r"\"\s*,\s*\")" + _NOT_REDACTED
                        + r"([^\"\\]*(?:\\.[^\"\\]*)*)\"", re.I)
_ENV_WORDS = r"(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|APIKEY|ACCESS_?KEY|PRIVATE_?KEY|SECRET_?KEY|CREDENTIALS?|AUTH)"
# PGPASSWORD (libpq), MYSQL_PWD (the mysql client): a password word glued to its prefix, a
# PWD after one (the bare PWD, OLDPWD are directories)
_ENV_VAR = lazy_regex(r"(?<![\w-])((?:[A-Za-z][A-Za-z0-9]*_)*(?:[A-Za-z0-9]*(?:PASSWORD|PASSWD)|" + _ENV_WORDS
                      + r")(?:_[A-Za-z0-9]+)*|(?:[A-Za-z][A-Za-z0-9]*_)+PWD)=" + _NOT_REDACTED
                      + r"(?!(?:true|false)\b)([^\s\"',;&]+)", re.I)
# (an empty user too: redis://:PASS@host, as Redis clients take a password alone)
_URL_CRED = lazy_regex(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s:/@<>\"']*):" + _NOT_REDACTED + r"([^\s@/<>\"']+)@")
_QUERY_CRED = lazy_regex(r"([?&](?:token|access_token|auth|api_key|apikey|key|sig|signature|password|secret|"
                         r"client_secret|code)=)" + _NOT_REDACTED + r"([^&\s\"'#<>]+)", re.I)
_WEBHOOK = lazy_regex(r"(https?://(?:hooks\.slack\.com/services/|(?:discord|discordapp)\.com/api/webhooks/\d+/|"
                      r"[\w.-]*webhook\.office\.com/webhookb2/))" + _NOT_REDACTED + r"([\w@/-]+)")
_JOIN_TOKEN = lazy_regex(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
_DISCOVERY = lazy_regex(r"((?:discovery-token-ca-cert-hash|caCertHashes|ca-cert-hash)[\"'\s:=\\\[\-]*)"
                        r"(sha256:[0-9a-f]{6,64})", re.I)
_AUTH_HEADER = lazy_regex(r"(?i)(\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:(?:basic|bearer|token|digest|negotiate|"
                          r"apikey|sso-key)[ \t]+)?)" + _NOT_REDACTED
                          + r"(?![{\[])(?!(?:basic|bearer|token|digest|negotiate|apikey|sso-key)\b)([^\s\"',;]+)")
_BEARER = lazy_regex(r"(?i)(\b(?:bearer|basic)\s+)" + _NOT_REDACTED + r"([A-Za-z0-9\-._~+/]{8,}=*)")
_HEADER_KEY = lazy_regex(r"(?i)(\b(?:x-)?(?:api-key|auth-token|access-token|private-token|vault-token)[ \t]*:[ \t]*)"
                         + _NOT_REDACTED + r"([^\s\"',;]+)")
_JWT = lazy_regex(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}")
# the keys of a secret, lower-cased: a mapping's key (the walk compares ``key.lower()``), and the
# YAML (kubeconfig users, registry and cloud credentials) and JSON-as-text forms of the patterns
# below, which match them in any case (``Token:``, ``CLIENT-KEY-DATA:``, ``"Password":``)
_SECRET_KEYS = frozenset({
    "token", "bearertoken", "bearer-token", "client-key-data", "client-certificate-data", "password", "passwd",
    "id-token", "refresh-token", "access-token", "access_token", "refresh_token", "id_token", "client-secret",
    "client_secret", "clientsecret", "secret", "auth", "private_key", "private_key_id", "api_key", "apikey",
    "secret_key", "aws_secret_access_key", "aws_session_token", "identitytoken", "registrytoken", "accountkey",
    "webhook_url", "webhookurl"})
# longest first: a key that is a prefix of another (token, token-…) is tried after it
_SECRET_KEY_WORDS = "(?:" + "|".join(re.escape(k) for k in sorted(_SECRET_KEYS, key=lambda k: (-len(k), k))) + ")"
_KUBECONFIG_LINE = lazy_regex(
    r"(?im)^(\s*-?\s*[\"']?" + _SECRET_KEY_WORDS + r"[\"']?[ \t]*:[ \t]*)(?!\s*$)(?![\"']?<redacted)(\S.*?)\s*$")
# the same ``key: value`` inside a line: a rule's comment (nft ``comment "client-key-data: …"``,
# iptables ``--comment "token: …"``), a label or a note quoting a kubeconfig line. A space after
# the colon, as YAML has it (``auth:http``, ``ns/token:8080`` are a Service port's names)
_KUBECONFIG_INLINE = lazy_regex(
    r"(?i)((?:^|(?<=[\s\"'{(,;\[=]))[\"']?" + _SECRET_KEY_WORDS + r"(?:\\*[\"'])?[ \t]*:[ \t]+)(?!(?:\\*[\"'])?<redacted)"
    + r"(\\+\"[^\"\\\n]+\\+\"|\"[^\"\n]+\"|'[^'\n]+'|[^\s\"',;}\]\\]+)")
_JSON_FIELD = lazy_regex(r"(\"" + _SECRET_KEY_WORDS + r"\"\s*:\s*\")" + _NOT_REDACTED + r"([^\"\\]*(?:\\.[^\"\\]*)*)\"",
                         re.I)
# the same with its quotes escaped: JSON quoted in a string as text keeps it (iptables-save
# prints a comment's quotes as \", so --comment '{"token": "X"}' reads {\"token\": \"X\"})
_Q = r"\\+\""  # a quote escaped once or more (JSON in a string in JSON, then iptables-save's own)
_JSON_FIELD_ESCAPED = lazy_regex(r"(" + _Q + _SECRET_KEY_WORDS + _Q + r"\s*:\s*" + _Q + r")" + _NOT_REDACTED
                                 + r"([^\"\\]+)" + _Q, re.I)
_JSON_ARGV_ESCAPED = lazy_regex(r"(" + _Q + r"--?(?:[A-Za-z0-9]+[-_])*" + _FLAG_WORDS + _Q + r"\s*,\s*" + _Q + r")"
                                + _NOT_REDACTED + r"([^\"\\]+)" + _Q, re.I)
_AWS_KEY_ID = lazy_regex(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b")
_AWS_SECRET_LINE = lazy_regex(r"(?i)(\baws_(?:secret_access_key|session_token)[ \t]*[=:][ \t]*[\"']?)" + _NOT_REDACTED
                              + r"([^\s\"']+)")
_GCP_API_KEY = lazy_regex(r"\bAIza[0-9A-Za-z_-]{35}\b")
_AZURE_KEY = lazy_regex(r"((?:AccountKey|SharedAccessKey|SharedAccessSignature)=)" + _NOT_REDACTED + r"([^;\s\"']+)")
_VAULT_TOKEN = lazy_regex(r"\b(?:hv[sbr]\.[A-Za-z0-9_-]{20,}|s\.[A-Za-z0-9]{24})\b")
_VAULT_ROOT = lazy_regex(r"(?i)(\b(?:root token|initial root token|unseal key(?: \d+)?)[ \t]*:[ \t]*)" + _NOT_REDACTED
                         + r"(\S+)")
_API_TOKEN = lazy_regex(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|glpat-[A-Za-z0-9_-]{20,}|"
                        r"xox[abposr]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9]{32,})\b")

# Order matters: structured forms first (they name exactly what is secret), then the looser ones.
_SUBS: list[_Sub] = [
    ("private-key", _PEM, lambda m: m.group(0) if _PEM_DONE.fullmatch(m.group(0)) else
     f"-----BEGIN {m.group(1)}----- {placeholder(m.group(0))} -----END {m.group(1)}-----"),
    ("discovery-hash", _DISCOVERY, _keep(1, secret=2)),
    ("json-credential", _JSON_FIELD, _keep(1, secret=2)),
    ("cli-credential", _JSON_ARGV, _keep(1, secret=2)),
    ("json-credential", _JSON_FIELD_ESCAPED, _keep(1, secret=2)),
    ("cli-credential", _JSON_ARGV_ESCAPED, _keep(1, secret=2)),
    ("url-credential", _WEBHOOK, _keep(1, secret=2)),
    ("url-credential", _URL_CRED, _keep(1, 2, secret=3)),
    ("url-credential", _QUERY_CRED, _keep(1, secret=2)),
    ("bearer-token", _AUTH_HEADER, _keep(1, secret=2)),
    ("bearer-token", _BEARER, _keep(1, secret=2)),
    ("bearer-token", _HEADER_KEY, _keep(1, secret=2)),
    ("bearer-token", _JWT, _whole),
    ("vault-token", _VAULT_ROOT, _keep(1, secret=2)),
    ("vault-token", _VAULT_TOKEN, _whole),
    ("api-token", _API_TOKEN, _whole),
    ("cloud-key", _AWS_SECRET_LINE, _keep(1, secret=2)),
    ("cloud-key", _AWS_KEY_ID, _whole),
    ("cloud-key", _GCP_API_KEY, _whole),
    ("cloud-key", _AZURE_KEY, _keep(1, secret=2)),
    ("join-token", _JOIN_TOKEN, _whole),
    ("cli-credential", _CURL_USER, _keep(1, 2, 3, secret=4)),
    ("cli-credential", _MYSQL_P, _keep(1, secret=2)),
    ("cli-credential", _SSHPASS, _keep(1, secret=2)),
    ("cli-credential", _LOGIN_P, _keep(1, secret=2)),
    ("cli-credential", _MONGO_P, _keep(1, secret=2)),
    ("cli-credential", _LDAP_W, _keep(1, secret=2)),
    ("cli-credential", _REDIS_A, _keep(1, secret=2)),
    ("cli-credential", _HTPASSWD_N, _keep(1, secret=2)),
    ("cli-credential", _HTPASSWD_B, _keep(1, secret=2)),
    ("cli-credential", _RABBITMQCTL, _keep(1, secret=2)),
    ("cli-credential", _MC_ALIAS, _keep(1, secret=2)),
    ("cli-credential", _MYSQLADMIN_PW, _keep(1, secret=2)),
    ("cli-credential", _OPENSSL_PASS, _keep(1, secret=2)),
    ("cli-credential", _JAVA_PROP, _keep(1, secret=2)),
    ("cli-credential", _CLI_FLAG, _keep(1, 2, secret=3)),
    ("env-credential", _ENV_VAR, _keep(1, secret=2)),
    ("kubeconfig-credential", _KUBECONFIG_LINE, _keep(1, secret=2)),
    ("kubeconfig-credential", _KUBECONFIG_INLINE, _keep(1, secret=2)),
]

# One cheap scan decides whether a string can hold a secret at all: most strings of a
# snapshot (iptables rules, interface names, a 16 MB iptables-save) cannot, and skip the 28
# patterns. Substring tests run at C speed where a regex alternation costs ~0.3 µs a
# character (13 s of CPU for a 10,000-Service import): words in any case, and markers
# whose case is part of the form — case-insensitively, kube-proxy's random upper-case chain
# hashes (KUBE-SEP-…) contain "KEY", "PWD" or "EYJ" by chance. A kubeadm join token or an
# old-style Vault token has no marker of its own; they come with their flag or name
# ("--token", "bootstrap-token-…", "Root Token:", "vault …"), which triggers.
_WORDS_ANY_CASE = ("pass", "token", "secret", "bearer", "basic", "credential", "webhook", "authoriz", "vault",
                   "join", "private", "discovery", "-key", "_key", "-pwd", "_pwd", "--user")
# and every secret's key no word above is part of (client-key-data, auth, apikey …): the key
# patterns match them in any case (CLIENT-KEY-DATA:, "AUTH":), so a string holding one in any
# case is sent to them; so are the flags and env names of the key and pwd words (--API-KEY X,
# --Db-Pwd X, Db_Pwd=X: the patterns take any case; "KEY", "PWD" alone are in kube-proxy's hashes)
_TRIGGER_ANY_CASE = _WORDS_ANY_CASE + tuple(sorted(k for k in _SECRET_KEYS if not any(w in k for w in _WORDS_ANY_CASE)))
_TRIGGER_EXACT = ("key", "Key", "KEY_", "_KEY", "KEY=", "pwd", "_PWD",
                  "-----BEGIN", "://", "eyJ", "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "AIza", "hvs.", "hvb.",
                  "hvr.", "gh", "glpat", "xox", "sk-", "sha256:", "mysql", "mariadb", "sshpass", "redis-cli",
                  "curl", "sig=", "code=", "hooks.", "SharedAccess", " -u", "-u ", "login", "mongo",
                  "ldap", "rabbitmqctl")
_TRIGGER = lazy_regex("|".join(re.escape(w) for w in _TRIGGER_EXACT) + "|(?i:"
                      + "|".join(re.escape(w) for w in _TRIGGER_ANY_CASE) + ")")
_BIG = 4096  # longer strings are redacted by lines: only the lines that can hold a secret


def _triggered(s: str) -> bool:
    """``_TRIGGER.search(s)``, answered by substring tests (exactly, for ASCII strings)."""
    if not s.isascii():
        return _TRIGGER.search(s) is not None
    for w in _TRIGGER_EXACT:
        if w in s:
            return True
    low = s.lower()
    for w in _TRIGGER_ANY_CASE:
        if w in low:
            return True
    return False


_AUTOMATA: list[Any] = []  # [exact-case automaton, lower-case automaton] or [None]


def _automata() -> Any:
    """The trigger words as two Aho-Corasick automata over bytes (ahocorasick_rs: one C-speed
    pass for all the words, where a ``str.find`` per word costs a pass each); None when the
    library is missing (the per-word finds are used instead). Leftmost-longest matches: the
    library's SIMD prefilter serves them (2× faster than its standard matches over a 16 MB
    dump: 27 ms instead of 58 ms), and a word they leave out overlaps a word they report,
    on the same line and in the same JSON string literal (no word holds a newline or a quote)."""
    if not _AUTOMATA:
        try:
            import ahocorasick_rs

            kind = ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST
            _AUTOMATA.append((ahocorasick_rs.BytesAhoCorasick([w.encode() for w in _TRIGGER_EXACT], matchkind=kind),
                              ahocorasick_rs.BytesAhoCorasick([w.encode() for w in _TRIGGER_ANY_CASE], matchkind=kind)))
        except ImportError:  # pragma: no cover - a dependency; the slower path gives the same answer
            _AUTOMATA.append(None)
    return _AUTOMATA[0]


def _trigger_positions(s: str) -> list[int]:
    """Start offsets of trigger words in the ASCII text ``s`` (every line holding one holds
    at least one of them; overlapping hits may be left out: they lie on the same line and in
    the same JSON string literal)."""
    ac = _automata()
    if ac is not None:
        b = s.encode("ascii")
        pos = [m[1] for m in ac[0].find_matches_as_indexes(b)]
        pos += [m[1] for m in ac[1].find_matches_as_indexes(b.lower())]
        return pos
    positions: list[int] = []
    low = s.lower()
    for text, words in ((s, _TRIGGER_EXACT), (low, _TRIGGER_ANY_CASE)):
        for w in words:
            i = text.find(w)
            while i >= 0:
                positions.append(i)
                i = text.find(w, i + 1)
    return positions


# [the last long text, its hot lines, the automata list they were found with]: a rule set's
# check (_ipt_is_clean, _nft_is_clean) and the walk of its dump's evidence share one pass
_HOT_MEMO: list[Any] = [None, [], None]


def _hot_lines(s: str) -> list[int]:
    """Indexes of the lines of ``s`` that contain a trigger, by a C-speed search over the
    whole text (no per-line work for the lines that cannot hold a secret)."""
    return [i for i, _a, _b in _hot_spans(s)]


def _hot_spans(s: str) -> list[tuple[int, int, int]]:
    """The lines of ``s`` that contain a trigger: (index, start, end) each, ``s[start:end]``
    the line without its newline (``_hot_lines``: their indexes)."""
    if _HOT_MEMO[0] is s and _HOT_MEMO[2] is _AUTOMATA:
        return list(_HOT_MEMO[1])
    hot = _hot_spans_of(s)
    if len(s) > _BIG:
        _HOT_MEMO[:] = [s, hot, _AUTOMATA]
    return list(hot)


def _hot_spans_of(s: str) -> list[tuple[int, int, int]]:
    if not s.isascii():
        out: list[tuple[int, int, int]] = []
        start = 0
        for i, ln in enumerate(s.split("\n")):
            if _TRIGGER.search(ln):
                out.append((i, start, start + len(ln)))
            start += len(ln) + 1
        return out
    positions = _trigger_positions(s)
    if not positions:
        return []
    # each hit's line by counting the newlines since the last one (str.count, in C: one
    # pass over the text in all, no list of its lines)
    spans: list[tuple[int, int, int]] = []
    line, at, end = 0, 0, -1  # the line index at offset ``at``; the end of the last hot line
    for p in sorted(positions):
        if p <= end:
            continue  # on the last hot line
        line += s.count("\n", at, p)
        start = s.rfind("\n", 0, p) + 1
        end = s.find("\n", p)
        if end < 0:
            end = len(s)
        spans.append((line, start, end))
        at = start
    return spans


_ENV_NAME = lazy_regex(r"(?i)(?:password|passwd|secret|token|api_?key|access_?key|private_?key|credentials?|"
                       r"(?:^|_)key(?:$|_)|(?:^|_)auth(?:$|_)|_pwd$)")
_ENV_NAME_NOT = lazy_regex(r"(?i)(?:_(?:file|path|dir|name|ref|url_file|id_file)$|^.*_file_)")
_ARGV_FLAG = lazy_regex(r"(?i)^--?(?:[A-Za-z0-9]+[-_.])*" + _FLAG_WORDS + r"$|^-p$|^-a$|^--user$|^-u$")


# a port after ``-p`` (``httpd -f -p 80``, ``ssh -p 22``, ``nc -p 1234``) is not a password; but
# ``sshpass -p`` takes the password itself, digits or not
_PORT = lazy_regex(r"[0-9]{1,5}")


def _runs(items: list[Any], program: str) -> bool:
    """Whether the command line ``items`` runs ``program`` (its first item, by base name)."""
    return bool(items) and isinstance(items[0], str) and items[0].rsplit("/", 1)[-1] == program


def _secretish_env_name(name: str) -> bool:
    return bool(_ENV_NAME.search(name)) and not _ENV_NAME_NOT.search(name)


# a string → what the walk made of it, the kinds it counted, the command-line secrets it took
_Seen = dict[str, tuple[Any, dict[str, int], frozenset[str]]]

# a command-line secret shorter than this is not looked for elsewhere in its node (a whole
# token of 1–3 characters is as likely to be something else)
_CARRY_MIN = 4


# what may stand right before and right after a command-line secret found again as a whole
# token (besides whitespace): a quote, ``=``, a separator or a bracket
_TOKEN_BEFORE = frozenset("\"'=,:;([")
_TOKEN_AFTER = frozenset("\"',:;)]")


def _token_pattern(values: list[str]) -> re.Pattern[str]:
    """The regular expression of ``values`` (longest first) as whole tokens (``_token_finder``)."""
    return re.compile(r"(?<![^\s\"'=,:;(\[])(?:" + "|".join(map(re.escape, values)) + r")(?![^\s\"',:;)\]])")


def _token_finder(taken: set[str]) -> Callable[[str], list[tuple[int, int]]]:
    """``find(text)``: the spans of ``text`` where one of ``taken`` stands as a whole token,
    left to right, the longest at a place first: what a regular expression of the values
    (longest first) between those lookarounds matches. By one Aho-Corasick pass over the
    text (ahocorasick_rs), whatever the number of values: a regex of alternatives tries
    each value at each place (a node with 20,000 ``-p X`` pairs and a 16 MB evidence text);
    that regex where the library is missing."""
    def whole(text: str, start: int, end: int) -> bool:
        return ((start == 0 or text[start - 1].isspace() or text[start - 1] in _TOKEN_BEFORE)
                and (end == len(text) or text[end].isspace() or text[end] in _TOKEN_AFTER))

    values = sorted(taken, key=lambda t: (-len(t), t))
    try:
        import ahocorasick_rs
    except ImportError:  # pragma: no cover - a dependency
        pattern = _token_pattern(values)
        return lambda text: [m.span() for m in pattern.finditer(text)]
    automaton = ahocorasick_rs.AhoCorasick(values, matchkind=ahocorasick_rs.MATCHKIND_STANDARD)

    def find(text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        done = 0
        for _, start, end in sorted(automaton.find_matches_as_indexes(text, overlapping=True),
                                    key=lambda m: (m[1], m[1] - m[2])):
            if start >= done and whole(text, start, end):
                spans.append((start, end))
                done = end
        return spans

    return find


class _Redactor:
    def __init__(self, share: Optional[_Redactor] = None) -> None:
        """``share``: a redactor whose answers this one reuses (and adds to): the judge of a
        long text and the walk of the node holding it redact it once."""
        self.kinds: dict[str, int] = {}
        # a string seen before is redacted as before (the same kinds counted again): the nodes
        # of a cluster repeat the same daemons' command lines and kube-proxy's same rules;
        # ``_long``: a long string as a value (JSON kept in it walked as structure)
        self._memo: _Seen = share._memo if share is not None else {}
        self._long: _Seen = share._long if share is not None else {}
        # the values taken as the item after a flag of a command line (``-p``, ``--password``)
        # in the node being walked: its other strings are rid of them too (``node``)
        self._taken: set[str] = set()

    def hit(self, kind: str, n: int = 1) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + n

    def replace(self, kind: str, v: str) -> str:
        if _PLACEHOLDER_RE.fullmatch(v):
            return v
        self.hit(kind)
        return placeholder(v)

    def text(self, s: str) -> str:
        if len(s) < 8:
            return s
        out: str = self._recall(self._memo, s, self._text)
        return out

    def _recall(self, seen: _Seen, s: str, redact: Callable[[str], Any]) -> Any:
        """``redact(s)``, or its answer of before from ``seen`` (its kinds counted again)."""
        before = seen.get(s)
        if before is not None:
            for kind, n in before[1].items():
                self.hit(kind, n)
            self._taken.update(before[2])
            return before[0]
        counted, taken = dict(self.kinds), self._taken
        self._taken = set()
        out = redact(s)
        seen[s] = (out, {k: v - counted.get(k, 0) for k, v in self.kinds.items() if v != counted.get(k, 0)},
                   frozenset(self._taken))
        self._taken |= taken
        return out

    def _text(self, s: str) -> str:
        if len(s) > _BIG:
            return self._big_text(s)
        if not _triggered(s):
            return s
        return self._subs(s)

    def _big_text(self, s: str) -> str:
        """A long text (an evidence's output) by runs of lines: each line that can hold a
        secret with the line after it (``"--password",`` then its value in pretty JSON,
        ``Unseal Key:`` then ``Root Token:``). PEM blocks span lines: the whole text first.
        A run a replacement took a newline from keeps its number of lines (empty ones at its
        end). The text itself when nothing is replaced."""
        if "-----BEGIN" in s:
            s = self._subs(s, only=("private-key",))
        hot = _hot_spans(s)
        if not hot:
            return s
        n = len(s)
        runs: list[list[int]] = []  # [first line, last line, start, end] (end: of the last line, no newline)
        for i, start, end in hot:
            last, last_end = i, end
            if end < n:  # the line after it
                nxt = s.find("\n", end + 1)
                last, last_end = i + 1, (nxt if nxt >= 0 else n)
            if runs and i <= runs[-1][1] + 1:
                if last > runs[-1][1]:
                    runs[-1][1], runs[-1][3] = last, last_end
            else:
                runs.append([i, last, start, last_end])
        pieces: list[str] = []
        done = 0
        for first, last, start, end in runs:
            chunk = s[start:end]
            new = self._subs(chunk)
            if new != chunk:
                if new.count("\n") != last - first:  # a replacement took a newline with it
                    new += "\n" * (last - first)
                pieces += (s[done:start], new)
                done = end
        if not pieces:
            return s
        pieces.append(s[done:])
        return "".join(pieces)

    def _subs(self, s: str, only: tuple[str, ...] = ()) -> str:
        for kind, pattern, repl in _SUBS:
            if only and kind not in only:
                continue
            out, n = pattern.subn(repl, s)
            if n and out != s:
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
            if len(v) > _BIG:
                if _known_clean(v):
                    return v  # judged in this process already: left as it is, nothing found
                out = self._recall(self._long, v, self._string)
                if not self._long[v][1] and out == v:
                    _remember_clean(v)
                return out
            return self._string(v)
        if isinstance(v, list):
            return self.argv(v, key)
        if isinstance(v, dict):
            return self.mapping(v)
        return v

    def _string(self, v: str) -> Any:
        if len(v) > 1 and v.lstrip()[:1] in "{[" and v.rstrip()[-1:] in "}]":
            # JSON inside a string (kubectl's last-applied-configuration annotation):
            # redact it as structure, so {"name": "X_TOKEN", "value": …} is caught too
            try:
                inner = json.loads(v)
            except (ValueError, RecursionError):
                inner = None
            if isinstance(inner, (dict, list)):
                before = dict(self.kinds)
                cleaned = self.value(inner)
                if self.kinds != before:
                    return json.dumps(cleaned, separators=(",", ":"), ensure_ascii=False) + (
                        "\n" if v.endswith("\n") else "")
                return v
        return self.text(v)

    def argv(self, items: list[Any], key: str = "") -> list[Any]:
        """A list; in a command line (Args/Cmd/command), the item after ``--password`` is the secret."""
        out: list[Any] = []
        secret_next = False
        prev = ""
        for x in items:
            if secret_next and isinstance(x, str) and x and not x.startswith("-"):
                secret_next = False
                if not (prev == "-p" and _PORT.fullmatch(x) and not _runs(items, "sshpass")):
                    out.append(self.replace("cli-credential", x))
                    if len(x) >= _CARRY_MIN and not is_redacted(x):
                        self._taken.add(x)
                    prev = x
                    continue
            secret_next = isinstance(x, str) and len(x) < 64 and x[:1] == "-" and bool(_ARGV_FLAG.match(x))
            if secret_next and x in ("-p", "-a", "-u", "--user") and key.lower() not in (
                    "args", "cmd", "command", "entrypoint", "argv"):
                secret_next = False  # short flags only in a command line
            prev = x if isinstance(x, str) else ""
            out.append(self.value(x, key))
        return out

    def document(self, d: dict[Any, Any]) -> dict[Any, Any]:
        """A snapshot's JSON data: its nodes each by ``node``, the rest as a mapping."""
        nodes = d.get("nodes")
        if not isinstance(nodes, list):
            return self.mapping(d)
        out = self.mapping({k: v for k, v in d.items() if k != "nodes"})
        out["nodes"] = [self.node(n) if isinstance(n, dict) else self.value(n) for n in nodes]
        return out

    def node(self, n: dict[Any, Any]) -> dict[Any, Any]:
        """A node's JSON data; a value taken from a command line as the item after a flag
        (``Args: ["-f", "-p", "S3cret"]``) is replaced wherever else it stands in the node as
        a whole token (the container's command that docker's Path and Args make,
        ``/bin/httpd -f -p S3cret``, where ``-p X`` alone is no secret's form: ``ssh -p 22``).
        The node is the scope: a node's walk does not depend on the other nodes."""
        outer, self._taken = self._taken, set()
        out = self.mapping(n)
        taken, self._taken = self._taken, outer
        return self._carry(out, _token_finder(taken)) if taken else out

    def _carry(self, v: Any, find: Callable[[str], list[tuple[int, int]]]) -> Any:
        if isinstance(v, str):
            spans = find(v)
            if not spans:
                return v
            self.hit("cli-credential", len(spans))
            pieces: list[str] = []
            done = 0
            for start, end in spans:
                pieces += (v[done:start], placeholder(v[start:end]))
                done = end
            pieces.append(v[done:])
            return "".join(pieces)
        if isinstance(v, list):
            return [self._carry(x, find) for x in v]
        if isinstance(v, dict):
            return {k: self._carry(x, find) for k, x in v.items()}
        return v

    def mapping(self, d: dict[Any, Any]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        # a Secret object: every value of data/stringData
        is_secret = d.get("kind") == "Secret"
        # a pod spec env entry: {"name": "DB_PASSWORD", "value": "..."}
        env_secret = (isinstance(d.get("name"), str) and "value" in d and isinstance(d.get("value"), str)
                      and _secretish_env_name(d["name"]) and len(d) <= 3)
        for k, v in d.items():
            if is_secret and k in ("data", "stringData") and isinstance(v, dict):
                out[k] = {kk: (vv if isinstance(vv, str) and is_redacted(vv) else
                               placeholder(vv if isinstance(vv, str) else json.dumps(vv))) for kk, vv in v.items()}
                if v:
                    self.hit("secret-data", len(v))
                continue
            if env_secret and k == "value" and v:
                scanned = self.text(v)  # "Bearer <token>" keeps its scheme
                out[k] = scanned if scanned != v else self.replace("env-credential", v)
                continue
            if isinstance(k, str) and k.lower() in _SECRET_KEYS and isinstance(v, str) and v:
                out[k] = self.replace("kubeconfig-credential" if "-" in k or k == "token" else "json-credential", v)
                continue
            if isinstance(k, str) and isinstance(v, str) and v and k.isupper() and _secretish_env_name(k):
                out[k] = self.replace("env-credential", v)  # an environment as a mapping
                continue
            out[k] = self.value(v, k if isinstance(k, str) else "")
        return out


def _catalogue() -> Optional[str]:
    """The fingerprint of this redaction: a SHA-256 of this module's source (its patterns,
    trigger words, forms and walk); None (no record is ever trusted) when it is unreadable."""
    try:
        with open(__file__, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()[:16]
    except OSError:
        return None


CATALOGUE: Optional[str] = _catalogue()
_NOTED: LiveMarks[bool] = LiveMarks()  # loaded snapshots whose file was judged clean


def note_loaded(snap: Snapshot, raw: bytes, path: Optional[Path] = None) -> bool:
    """Called by ``snapshot.load`` for a file of the current version read straight into
    ``snap`` (``raw``: the file's bytes, read from ``path``): when its record says this
    redaction (``CATALOGUE``) wrote it, and its text holds nothing the walk would replace,
    ``redact_snapshot(snap)`` returns ``snap`` without judging it again. True when it is so
    noted. The text is judged by ``json_is_clean`` (the backstop against a record that
    claims more than the file holds), unless its bytes are those this redaction judged
    when it wrote them (``snapshot.judged_by``: their digest, recorded by ``save``)."""
    r = snap.redaction
    if CATALOGUE is None or r is None or r.mode != "on" or r.catalogue != CATALOGUE:
        return False
    if path is not None and judged_by(path, raw) == CATALOGUE:
        SCAN_STATS["sealed"] += 1
    elif not json_is_clean(raw):
        return False
    _NOTED.mark(snap, True)
    return True


def _noted(snap: Snapshot) -> bool:
    return _NOTED.get(snap) is not None


def storage_record(kinds: Any = ()) -> Redaction:
    """The record of a snapshot redacted by this redaction (``kinds``: what it replaced)."""
    return Redaction(mode="on", kinds=sorted(set(kinds)), catalogue=CATALOGUE)


def redact_text(text: str) -> tuple[str, list[str]]:
    """One string, redacted; and the kinds found."""
    r = _Redactor()
    return r.text(text), sorted(r.kinds)


def redact_value(value: Any) -> tuple[Any, list[str]]:
    """JSON data (API objects, ``--kubectl`` imports), redacted; and the kinds found."""
    r = _Redactor()
    return r.value(value), sorted(r.kinds)


def redact_model(obj: _M) -> tuple[_M, list[str]]:
    """A pydantic model (an analysis, a diff) redacted as JSON data, and the kinds found;
    ``obj`` itself when its JSON holds nothing to replace (``json_is_clean``: no dump to
    Python data, no walk, no validation)."""
    if json_is_clean(obj.__pydantic_serializer__.to_json(obj)):
        return obj, []
    data, kinds = redact_value(obj.model_dump(mode="json"))
    return (type(obj).model_validate(data) if kinds else obj), kinds


def redact_snapshot(snap: Snapshot) -> tuple[Snapshot, list[str]]:
    """A redacted copy of ``snap`` and the sorted list of the kinds of secret replaced.

    Judged by parts first (``json_is_clean`` of each node's JSON and of the rest): a clean
    snapshot is returned as it is, neither dumped nor walked; otherwise only the nodes that
    hold something to replace are walked, with the rest of the snapshot (cluster objects,
    title …), and the clean nodes are put back as the models they are. The walk of a node
    does not depend on the other nodes, so the result is the whole walk's. A snapshot loaded
    from a file this redaction wrote and whose text was judged clean (``note_loaded``) is
    returned as it is at once."""
    if _noted(snap):
        SCAN_STATS["noted"] += 1
        return snap, []
    probe = _Redactor()  # the judges' answers for long texts, reused by the walk (a dirty one is redacted once)
    dirty = [i for i, n in enumerate(snap.nodes) if not _node_is_clean(n, probe)]
    rest_clean = json_is_clean(snap.__pydantic_serializer__.to_json(snap, exclude={"nodes"}))
    if not dirty and rest_clean:
        return snap, []  # nothing the walk would replace: no dump, no walk (SCAN_STATS)
    if len(dirty) == len(snap.nodes):
        return _walk_snapshot(snap, probe)
    part, kinds = _walk_snapshot(snap.model_copy(update={"nodes": [snap.nodes[i] for i in dirty]}), probe)
    if not kinds:
        return snap, []
    nodes = list(snap.nodes)
    for j, i in enumerate(dirty):
        nodes[i] = part.nodes[j]
    return part.model_copy(update={"nodes": nodes}), kinds


def _rule_set_is_clean(key: str, sub: Any) -> Optional[bool]:
    """A node's rule set (its field ``key``) judged from the text its parser read it from
    (``_nft_is_clean``, ``_ipt_is_clean``); None where there is no such judge or text."""
    if key == "nftables":
        return _nft_is_clean(sub)
    if key in ("iptables", "ip6tables"):
        return _ipt_is_clean(sub)
    return None


def _node_is_clean(node: Any, probe: Optional[_Redactor] = None) -> bool:
    """``json_is_clean`` of the node's JSON, but each text judged once: a long evidence
    text (a 16 MB iptables-save) by the walk's own answer for that string (``_text_is_clean``,
    remembered), not as a literal of the dump found, decoded and judged again; a rule set
    its parser read from such a text (``_ipt_is_clean``, ``_nft_is_clean``: the text's hot
    lines are found once for both) left out of the dump when that says it is clean. What is
    left out is what the walk leaves alone, so the answer is the walk's as before: the
    evidence's ``stdout``/``stderr`` are values under their own keys (no secret's key, no
    env entry, no ``"name"`` before them), and a rule set that cannot be judged from its
    text (a loaded snapshot, a pasted dump) stays in the dump."""
    exclude: dict[str, Any] = {}
    for key in ("iptables", "ip6tables", "nftables"):
        sub = getattr(node, key, None)
        if sub is not None and _rule_set_is_clean(key, sub):
            exclude[key] = True
    texts: dict[int, set[str]] = {}
    for i, ev in enumerate(node.evidence):
        for field in ("stdout", "stderr"):
            text = getattr(ev, field)
            if isinstance(text, str) and len(text) > _BIG:
                if not _text_is_clean(text, probe):
                    return False
                texts.setdefault(i, set()).add(field)
    if texts:
        exclude["evidence"] = texts
    return json_is_clean(node.__pydantic_serializer__.to_json(node, exclude=exclude or None))


# long texts the walk left as they were (``_Redactor.value``), by their length and ends, then
# compared whole (a str's hash is a pass over it: 16 MB cost 60 ms; comparing two copies is
# memcmp); the texts are kept, up to _CLEAN_TEXTS_CHARS characters. The walk's answer for a
# string does not depend on where it stands, so a copy of a text judged (the same evidence
# on each node of a cluster) is judged too.
_CLEAN_TEXTS: dict[tuple[int, str, str], list[str]] = {}
_CLEAN_TEXTS_CHARS = 64_000_000
_CLEAN_TEXTS_HELD = [0]  # characters held


def _text_key(text: str) -> tuple[int, str, str]:
    return len(text), text[:64], text[-64:]


def _known_clean(text: str) -> bool:
    return any(t is text or t == text for t in _CLEAN_TEXTS.get(_text_key(text), ()))


def _text_is_clean(text: str, share: Optional[_Redactor] = None) -> bool:
    """Whether the walk leaves the string ``text`` as it is (its own answer, remembered for
    a long text: the walk of a node holding it takes it as it is, without judging it again;
    ``_Redactor.value`` looks it up among those judged before; a dirty one is in ``share``'s
    answers, for a walk sharing them)."""
    probe = _Redactor(share)
    probe.value(text)
    return not probe.kinds


def _remember_clean(text: str) -> None:
    if _CLEAN_TEXTS_HELD[0] + len(text) > _CLEAN_TEXTS_CHARS:
        _CLEAN_TEXTS.clear()
        _CLEAN_TEXTS_HELD[0] = 0
    same = _CLEAN_TEXTS.setdefault(_text_key(text), [])
    if len(same) < 8 and not any(t is text or t == text for t in same):
        same.append(text)
        _CLEAN_TEXTS_HELD[0] += len(text)


def _walk_snapshot(snap: Snapshot, share: Optional[_Redactor] = None) -> tuple[Snapshot, list[str]]:
    """``redact_snapshot`` by the walk over the whole of ``snap`` (reusing ``share``'s answers)."""
    r = _Redactor(share)
    # A node's parsed rule sets are ~10^5 small records (a 10,000-Service iptables-save):
    # dumping and walking them costs seconds where one C-speed scan of their JSON (written
    # by pydantic's core) says whether any string in them can hold a secret at all (every
    # trigger word is free of the characters JSON escapes, so a word in a string is a word
    # in the dump). Only a subtree with a trigger is dumped and walked; the others are left
    # out of the dump and put back as the models they are.
    aside: dict[int, dict[str, Any]] = {}
    for i, node in enumerate(snap.nodes):
        for key in _RULE_SETS:
            sub = getattr(node, key, None)
            if not sub:
                continue
            fast = _rule_set_is_clean(key, sub)
            if fast is not False and (fast or _subtree_is_clean(node.model_dump_json(include={key}))):
                aside.setdefault(i, {})[key] = sub
    data = snap.model_dump(mode="json", exclude={"nodes": {i: set(keys) for i, keys in aside.items()}} if aside else None)
    clean = r.document(data)
    if not r.kinds:
        return snap, []  # nothing replaced: no second validation of a large snapshot
    cnodes = clean.get("nodes") or []
    for i, keys in aside.items():
        for key, sub in keys.items():
            cnodes[i][key] = sub  # the mapping keeps the nodes' order
    return Snapshot.model_validate(clean), sorted(r.kinds)


_RULE_SETS = ("iptables", "ip6tables", "nftables", "ipvs", "netns")

# -- the JSON-text level: whether a serialized document holds anything the walk replaces

# What the walk looks at beyond the text triggers: the structural forms (a secret-named
# env entry or upper-case env key, a Secret object, a secret's key such as
# "client-certificate-data", a "--password"/"-p"/"-P" item of a command line, also inside
# JSON kept in a string, where its quotes are escaped). Searched in the lower-cased text.
_JSON_WORDS_ANY_CASE = tuple(sorted(set(_TRIGGER_ANY_CASE) | {
    "key", "auth", "pwd", "--user", '-p"', '-a"', '-u"', "-p\\", "-a\\", "-u\\"} | _SECRET_KEYS))
# İ ı ſ K: re's IGNORECASE matches them to i, s and k (a "paſſword" is triggered), and
# bytes.lower() does not fold them
_FOLDS_TO_ASCII = (b"\xc4\xb0", b"\xc4\xb1", b"\xc5\xbf", b"\xe2\x84\xaa")
# a \uXXXX escape other than a control character's: a word could hide behind it ("\u0070ass")
_HIDING_ESCAPE = lazy_regex(rb"\\u(?!00[01][0-9a-fA-F])")
_JSON_AUTOMATA: list[Any] = []
_JSON_SPACE = b" \t\r\n"
_JUDGED: dict[tuple[bytes, bool, bool], bool] = {}
# json_is_clean's answers, redact_snapshot's returns of a noted snapshot, and the loaded files judged by
# their digest instead of their text (tests see the fast paths taken)
SCAN_STATS = {"clean": 0, "not_clean": 0, "noted": 0, "sealed": 0}


def _json_hits(b: bytes) -> Optional[list[int]]:
    """Start offsets of trigger words (text triggers and structural words) in ``b``: one
    pass of one automaton over the lower-cased text, every word lower-cased (an exact-case
    word is found wherever it occurs, with more hits to judge). A word overlapping a hit is
    not reported, and needs not be: it starts inside that hit's literal, judged as a whole.
    None when ``b`` holds a character re's IGNORECASE folds to ASCII (``_FOLDS_TO_ASCII``)
    or a ``\\u`` escape that could hide a word, outside a literal judged anyway: the
    caller walks."""
    if not _JSON_AUTOMATA:
        lowered = sorted({w.lower() for w in _TRIGGER_EXACT + _JSON_WORDS_ANY_CASE})
        if _automata() is None:
            _JSON_AUTOMATA.append(None)
        else:
            import ahocorasick_rs

            pats = [w.encode() for w in lowered] + list(_FOLDS_TO_ASCII) + [b"\\u"]
            _JSON_AUTOMATA.append((ahocorasick_rs.BytesAhoCorasick(pats), len(lowered)))
    low = b.lower()
    ac = _JSON_AUTOMATA[0]
    pos: list[int] = []
    if ac is not None:
        automaton, n = ac
        for w, i, _end in automaton.find_matches_as_indexes(low):
            if w >= n:
                if w < n + len(_FOLDS_TO_ASCII) or _HIDING_ESCAPE.match(b, i):
                    return None
                continue
            pos.append(i)
        return pos
    if not b.isascii() and any(f in b for f in _FOLDS_TO_ASCII) or (b"\\u" in b and _HIDING_ESCAPE.search(b)):
        return None
    for text, words in ((b, _TRIGGER_EXACT), (low, _JSON_WORDS_ANY_CASE)):
        for word in words:
            wb = word.encode()
            i = text.find(wb)
            while i >= 0:
                pos.append(i)
                i = text.find(wb, i + 1)
    return pos


def json_is_clean(js: bytes | str) -> bool:
    """True when the JSON document ``js`` holds nothing the redaction's walk would replace
    (``redact_value(json.loads(js))`` would report no kind): one C-speed search for the
    trigger words, then each string literal holding one is judged as the walk would — the
    catalogue applied to it (and to the JSON inside it), and whether it names a secret (an
    env name, a secret's key, a command-line flag whose next item is the secret; judged
    without looking at that item, so a snapshot whose secrets are already placeholders may
    answer False: the walk then finds nothing to replace). False is always safe: the caller
    walks. A document without any trigger word costs one pass and no Python work per string."""
    b = js.encode("utf-8", "surrogatepass") if isinstance(js, str) else js
    hits = _json_hits(b)
    if hits is None:
        SCAN_STATS["not_clean"] += 1
        return False
    probe = _Redactor()
    seen = _JUDGED  # a literal judged before (a cluster repeats its nodes' strings): a pure function of the key
    if len(seen) > 200_000:
        seen.clear()
    done = -1
    for i in sorted(hits):
        if i <= done:
            continue
        start = _literal_start(b, i)
        end = _literal_end(b, i + 1 if b[i:i + 1] == b'"' else i)
        if start is None or end is None or start >= end:
            SCAN_STATS["not_clean"] += 1
            return False
        is_key = _is_key(b, end)
        after_name = not is_key and _after_name(b, start)
        raw = b[start:end + 1]
        memo = (raw, is_key, after_name)
        ok = seen.get(memo)
        if ok is None:
            ok = seen[memo] = _literal_is_clean(raw, probe, is_key=is_key, after_name=after_name)
        if not ok:
            SCAN_STATS["not_clean"] += 1
            return False
        done = end
    SCAN_STATS["clean"] += 1
    return True


def _literal_is_clean(raw: bytes, probe: _Redactor, *, is_key: bool, after_name: bool) -> bool:
    """Whether the walk leaves the JSON string literal ``raw`` and what it names alone: as
    a key, a secret's key (``"password":``) or a secret-named upper-case env key; as the
    value of ``"name":``, a secret-named env entry; a Secret's kind; a command-line flag
    whose next item is the secret; else the walk's own answer for the string."""
    try:
        lit = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(lit, str):
        return False
    if is_key:  # the walk never changes a key
        return not (lit.lower() in _SECRET_KEYS or (lit.isupper() and _secretish_env_name(lit)))
    if lit == "Secret" or (after_name and _secretish_env_name(lit)) or (len(lit) < 64 and _ARGV_FLAG.match(lit)):
        return False
    return _walk_leaves(probe, lit)  # the walk's own answer for a string (JSON inside it included)


def _walk_leaves(probe: _Redactor, lit: str) -> bool:
    """Whether the walk leaves the string ``lit`` as it is (JSON kept in it judged as structure)."""
    probe.kinds.clear()
    probe.value(lit)
    return not probe.kinds


def _is_key(b: bytes, end: int) -> bool:
    """Whether the literal closing at ``end`` is an object's key (a ``:`` follows it)."""
    j = end + 1
    while j < len(b) and b[j] in _JSON_SPACE:
        j += 1
    return b[j:j + 1] == b":"


def _after_name(b: bytes, start: int) -> bool:
    """Whether the literal opening at ``start`` is the value of a ``"name"`` key."""
    j = start - 1
    while j >= 0 and b[j] in _JSON_SPACE:
        j -= 1
    if j < 0 or b[j] != 0x3A:  # ':'
        return False
    j -= 1
    while j >= 0 and b[j] in _JSON_SPACE:
        j -= 1
    return j >= 5 and b[j - 5:j + 1] == b'"name"'  # (an escaped quote before it too: the walk decides)


# a short flag item of a command line (-p, -a, -u, any case), its quotes escaped too (a command
# line in JSON kept in a string, such as a rule's comment): the walk takes the item after it
# as the secret, and no text trigger is in it
_SHORT_FLAG = lazy_regex(r'-[pPaAuU]\\*"')


def _subtree_is_clean(js: str) -> bool:
    """True when no string of the JSON text ``js`` would be touched by the walk: each
    trigger word found (C-speed search) is looked at in the JSON string literal holding it
    — the catalogue applied to it, and whether it is a secret's key, a secret-named env
    entry or a ``--password``-style flag whose next item is the secret. Random hashes that
    happen to contain a trigger (kube-proxy's KUBE-SEP-…AIDA…) cost one literal each."""
    hits = [m.start() for m in _SHORT_FLAG.finditer(js)]
    if not js.isascii():
        return not hits and not _triggered(js)
    probe = _Redactor()
    seen: set[str] = set()  # literals (with the character after them) judged clean already
    done = -1  # the end of the last literal looked at: hits before it are in it
    for i in sorted(_trigger_positions(js) + hits):
        if i <= done:
            continue
        start = _literal_start(js, i)
        if start is None:
            return False
        end = _literal_end(js, i)
        if end is None:
            return False
        done = end
        # the same literal in the same role (a key when a colon follows) is judged once:
        # a typed nft rule set repeats the keys "key" and "right" ~10^5 times each
        raw = js[start:end + 3]
        if raw in seen:
            continue
        try:
            lit = json.loads(js[start:end + 1])
        except ValueError:
            return False
        if js[end + 1:end + 3].lstrip()[:1] == ":":
            # a key: the walk never rewrites keys, it only reads a secret's key or an
            # environment's secret-named upper-case key ("key" of nft's meta/ct/map
            # expressions is neither)
            if lit.lower() in _SECRET_KEYS or (lit.isupper() and _secretish_env_name(lit)):
                return False
        elif len(lit) > _BIG or _secretish_env_name(lit) or _ARGV_FLAG.match(lit) or not _walk_leaves(probe, lit):
            return False
        seen.add(raw)
    return True


def _nft_is_clean(ruleset: Any) -> Optional[bool]:
    """Whether the walk would leave an nft rule set as its text parser built it untouched,
    judged from the listing it was read from (``NftRuleset.source_text``) by one
    Aho-Corasick pass instead of a dump of its ~600,000 typed statements: every string of
    the tables is a piece of that text (names, tokens, rule texts — a rule wrapped over
    lines joined by a space, hence ``_u_at_a_line_edge`` for the " -u" / "-u " triggers) or
    the models' own field names and words. No trigger in the text: clean. A trigger on a line:
    the chain or set holding it is judged by its JSON (``_subtree_is_clean``), and each
    table's own strings too. None when this cannot tell (no text: a loaded snapshot, JSON
    input): the caller judges the whole rule set's JSON."""
    text = ruleset.source_text
    if not isinstance(text, str) or not text.isascii() or "\\" in text or _u_at_a_line_edge(text):
        return None
    hot = _hot_lines(text)
    if not hot:
        return True
    import bisect

    blocks: list[tuple[int, Any]] = []  # (first line, chain or set), None for a table's own lines
    for t in ruleset.tables:
        if t.line_no is None:
            return None
        # the table's own strings (name, comment, flags, flowtables …), wherever they stood
        if not _subtree_is_clean(t.model_dump_json(exclude={"chains", "sets"})):
            return False
        blocks.append((t.line_no, None))
        for b in (*t.chains, *t.sets):
            if b.line_no is None:
                return None
            blocks.append((b.line_no, b))
    blocks.sort(key=lambda x: x[0])
    starts = [b[0] for b in blocks]
    judged: set[int] = set()
    for idx in hot:  # 0-based line indexes; line_no is 1-based
        k = bisect.bisect_right(starts, idx + 1) - 1
        if k < 0:
            continue  # before any table: no string of the rule set comes from it
        block = blocks[k][1]
        if block is None or id(block) in judged:  # a table's line: judged above
            continue
        if not _subtree_is_clean(block.model_dump_json()):
            return False
        judged.add(id(block))
    return True


def _u_at_a_line_edge(text: str) -> bool:
    """A ``-u`` that starts or ends a line (spaces and tabs aside): where lines joined by a
    space (a wrapped nft rule or element list) would make the " -u" / "-u " triggers the
    text itself does not hold."""
    i = text.find("-u")
    while i >= 0:
        j = i
        while j > 0 and text[j - 1] in " \t":
            j -= 1
        if j == 0 or text[j - 1] == "\n":
            return True
        k = i + 2
        while k < len(text) and text[k] in " \t":
            k += 1
        if k == len(text) or text[k] == "\n":
            return True
        i = text.find("-u", i + 2)
    return False


def _ipt_is_clean(ipt: Any) -> Optional[bool]:
    """Whether the walk would leave iptables rules as iptables_save's clean-dump path read
    them untouched, judged from the dump (``Iptables.source_text``: every rule's spec, chain
    and table name is a piece of its line) by the Aho-Corasick pass the walk of the dump's
    evidence makes anyway: a chain on a line with a trigger is judged by its JSON, and the
    fields not read from the text (family, backend, note) by theirs. None when this cannot
    tell (no text: a loaded snapshot or a pasted, wrapped dump)."""
    text = ipt.source_text
    if not isinstance(text, str) or not text.isascii() or "\\" in text:
        return None
    if not _subtree_is_clean(ipt.model_dump_json(exclude={"tables"})):
        return False
    hot = _hot_spans(text)
    if not hot:
        return True
    judged: set[str] = set()
    for _idx, start, end in hot:
        ln = text[start:end].strip()
        if ln.startswith(("-A ", "-I ", "-P ", "-N ")):
            parts = ln.split(None, 2)
            name = parts[1] if len(parts) > 1 else ""
        elif ln.startswith(":"):
            name = (ln[1:].split() or [""])[0]
        elif ln.startswith("*"):
            if not _subtree_is_clean(json.dumps(sorted(ipt.tables))):
                return False
            continue
        elif ln[:1].isdecimal():
            return None  # a code block's line numbers: read by another path
        else:
            continue  # comments, prompts, skipped lines: no string of the rules comes from them
        if name in judged:
            continue
        found = False
        for t in ipt.tables.values():
            ch = t.chains.get(name)
            if ch is not None:
                found = True
                if not _subtree_is_clean(ch.model_dump_json()):
                    return False
        if not found:
            return None
        judged.add(name)
    return True


def _escaped(js: str | bytes, j: int) -> bool:
    """Whether the quote at ``j`` is escaped: an odd run of backslashes before it (text or
    UTF-8 bytes alike: a quote or backslash byte never occurs inside a multi-byte character)."""
    bs: str | bytes = "\\" if isinstance(js, str) else b"\\"
    k = j
    while k > 0 and js[k - 1:k] == bs:
        k -= 1
    return (j - k) % 2 == 1


def _literal_start(js: str | bytes, i: int) -> Optional[int]:
    """Index of the opening quote of the JSON string literal around position ``i`` (trigger
    words never occur in JSON's own syntax, so a hit is inside a literal: the first
    unescaped quote before it opens that literal)."""
    q: Any = '"' if isinstance(js, str) else b'"'
    j = js.rfind(q, 0, i)
    while j >= 0 and _escaped(js, j):
        j = js.rfind(q, 0, j)
    return j if j >= 0 else None


def _literal_end(js: str | bytes, i: int) -> Optional[int]:
    """Index of the closing quote of the JSON string literal containing position ``i``."""
    q: Any = '"' if isinstance(js, str) else b'"'
    j = js.find(q, i)
    while j >= 0 and _escaped(js, j):
        j = js.find(q, j + 1)
    return j if j >= 0 else None


def for_storage(snap: Snapshot, *, redact: bool = True) -> Snapshot:
    """The snapshot as ``collect`` and ``import`` write it: redacted (the kinds recorded in
    ``snap.redaction``), or, when the user asked to keep the secrets, marked ``off``."""
    if not redact:
        return snap.model_copy(update={"redaction": Redaction(mode="off", kinds=[])})
    clean, kinds = redact_snapshot(snap)
    before = snap.redaction.kinds if snap.redaction is not None and snap.redaction.mode == "on" else []
    clean.redaction = storage_record(set(kinds) | set(before))
    if CATALOGUE is not None:  # judged: its next save records the digest of its bytes
        mark_judged(clean, CATALOGUE)
    return clean
