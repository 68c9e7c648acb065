"""Message catalogs: every fixed sentence of the report, per language.

Catalogs are YAML files in the templates package (``templates/i18n/<lang>.yaml``), nested
maps whose leaves are strings; keys are dotted paths (``section.processes.title``).
Templates call ``t("key", name=value)``; values are filled with ``str.format``.
Component roles are kept under ``roles.<component name>`` so a role reads in the
report's language whatever the analysis wrote (it writes English).
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml

from labreport.errors import RenderError

LANGS = ("en", "zh")


@functools.lru_cache(maxsize=None)
def templates_dir() -> Path:
    """The templates: those of this source checkout when run from one (``templates/`` beside
    the ``labreport`` package — so PYTHONPATH=<a checkout> renders with that checkout's
    templates, not an editable install's), else the installed ``labreport.templates``."""
    here = Path(__file__).resolve().parent.parent.parent / "templates"
    if (here / "report.md.j2").is_file():
        return here
    return Path(str(resources.files("labreport.templates")))


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, str):
        out[prefix] = value
    elif value is None:
        out[prefix] = ""
    else:
        out[prefix] = str(value)


@functools.lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    """The flattened catalog of ``lang`` (key -> message)."""
    if lang not in LANGS:
        raise RenderError(f"unknown language {lang!r}; choose one of: {', '.join(LANGS)}")
    try:
        text = (templates_dir() / "i18n" / f"{lang}.yaml").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise RenderError(f"message catalog for {lang!r} is missing: {exc}") from None
    data = yaml.safe_load(text) or {}
    out: dict[str, str] = {}
    _flatten("", data, out)
    return out


@functools.lru_cache(maxsize=None)
def _phrases(lang: str) -> tuple[tuple["re.Pattern[str]", str], ...]:
    try:
        text = (templates_dir() / "i18n" / f"phrases.{lang}.yaml").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return ()
    out = []
    for entry in yaml.safe_load(text) or []:
        if isinstance(entry, list) and len(entry) == 2:
            out.append((re.compile(str(entry[0])), str(entry[1])))
    return tuple(out)


class Translator:
    """``t(key, **kw)``: the message in the report's language. A missing key shows as
    ``[key]`` (and is recorded in ``missing``) rather than breaking the report."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.messages = catalog(lang)
        self.missing: set[str] = set()

    def __call__(self, key: str, **kw: Any) -> str:
        msg = self.messages.get(key)
        if msg is None:
            self.missing.add(key)
            return f"[{key}]"
        if kw:
            try:
                return msg.format(**kw)
            except (KeyError, IndexError, ValueError):
                self.missing.add(key)
                return msg
        return msg

    def has(self, key: str) -> bool:
        return key in self.messages

    def role(self, name: str, fallback: Optional[str] = None) -> str:
        """A component's role in this language (``roles.<name>``), else ``fallback``."""
        msg = self.messages.get(f"roles.{name}")
        if msg:
            return msg
        return fallback or ""

    def phrase(self, text: str) -> str:
        """The analysis' free text (preflight cells) in this language, by the phrase table
        ``i18n/phrases.<lang>.yaml``; English, or a phrase without an entry, stays as is."""
        if not text:
            return text
        for rx, repl in _phrases(self.lang):
            text = rx.sub(repl, text)
        return text

    def maybe(self, key: str, fallback: str = "") -> str:
        return self.messages.get(key, fallback)
