"""No secret value leaves the renderer, not even inside an error message.

`sensitive_values` collects, from the repository's documents, what may be secret: the values of
fields named like credentials or tokens, a Secret's ``data``/``stringData`` values, and the
user-info part of URLs. `redact` masks them (and any URL user-info) in every diagnostic, so
no output format (text, JSON, annotations) can echo one. `url_credential_problems` refuses a
credential embedded in a URL in the input, where it would be committed in clear.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from everest_render.check.core import URL_CREDENTIALS, holds_url_credentials, strings
from everest_render.diagnostics import Diagnostic
from everest_render.load.documents import Document

MASK = "***"
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|credential|api[-_]?key|access[-_]?key|private[-_]?key|auth|cert|signature", re.I
)
# ... unless the key names a reference to the secret rather than holding it.
_REFERENCE_SUFFIX = re.compile(r"(Name|Names|Ref|Refs|Selector|Path|Type|Kind)$")
MIN_UNQUOTED = 3  # shorter values are masked only where quoted, so a "1" does not mask line numbers


def is_sensitive_key(key: str) -> bool:
    return bool(_SENSITIVE_KEY.search(key)) and not _REFERENCE_SUFFIX.search(key)


def sensitive_values(documents: Iterable[Document]) -> frozenset[str]:
    return sensitive_in(document.data for document in documents)


def sensitive_in(objects: Iterable[Any]) -> frozenset[str]:
    """What the objects (input documents, or a template's output) hold that may be secret."""
    found: set[str] = set()
    texts: list[str] = []
    for data in objects:
        if not isinstance(data, Mapping) or data.get("kind") in ("Provider", "DatabaseClusterDefinition"):
            continue  # a catalogue names secrets and keys; it holds none
        secret = data.get("kind") == "Secret"
        for key, item in data.items():
            _collect(item, secret and key in ("data", "stringData"), _key_is_sensitive(key, False), found, texts)
    # URL user-info in any string: one search, a line each (a match cannot span two). Only the
    # strings holding an "@" are searched: a match ends with one, and starts a line or follows
    # a character of the same string (what precedes a string is the line break joining them).
    for match in URL_CREDENTIALS.finditer("\n".join(texts)):
        found.add(match.group(2))
        found.update(part for part in match.group(2).split(":") if part)
    return frozenset(v for v in found if v)


def _collect(value: Any, in_data: bool, under: bool, found: set[str], texts: list[str]) -> None:
    """``value``'s scalars into ``found`` when they are a Secret's data (``in_data``) or the
    nearest key above them is credential-like (``under``; a list item has its list's key), and
    its strings that hold an "@" into ``texts``. A dict's or list's strings, numbers and nulls
    are taken here, without a call each (most values of a document are these)."""
    kind = type(value)
    if kind is dict:
        known = _SENSITIVE_KEYS.get
        for key, item in value.items():
            sensitive = known(key) if type(key) is str else None
            if sensitive is None:
                sensitive = _key_is_sensitive(key, under)
            kind = type(item)
            if kind is str:
                if in_data or sensitive:
                    found.add(item)
                if "@" in item:
                    texts.append(item)
            elif kind is int or kind is bool:
                if in_data or sensitive:
                    found.add(str(item))
            elif item is not None:
                _collect(item, in_data, sensitive, found, texts)
    elif kind is list:
        for item in value:
            kind = type(item)
            if kind is str:
                if in_data or under:
                    found.add(item)
                if "@" in item:
                    texts.append(item)
            elif item is not None:
                _collect(item, in_data, under, found, texts)
    elif kind is str:
        if in_data or under:
            found.add(value)
        if "@" in value:
            texts.append(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _collect(item, in_data, _key_is_sensitive(key, under), found, texts)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, in_data, under, found, texts)
    elif value is not None:
        if in_data or under:
            found.add(str(value))
        if isinstance(value, str) and "@" in value:
            texts.append(value)


_SENSITIVE_KEYS: dict[str, bool] = {}


def _key_is_sensitive(key: Any, above: bool) -> bool:
    """Whether the values under ``key`` are under a credential-like key (a key that is not a
    string, as a list index, leaves it to the key above: ``above``)."""
    if not isinstance(key, str):
        return above
    sensitive = _SENSITIVE_KEYS.get(key)
    if sensitive is None:
        if len(_SENSITIVE_KEYS) >= 10_000:
            _SENSITIVE_KEYS.clear()
        sensitive = _SENSITIVE_KEYS[key] = is_sensitive_key(key)
    return sensitive


def masked_line(line: str, *, in_secret: bool) -> str:
    """A line of template output fit to quote in a message: a value after a credential-like
    key, or any value when the output holds a Secret, is masked (the line did not parse, so
    no object says which values are secret)."""
    if not in_secret and not _SENSITIVE_KEY.search(line):
        return line
    key, colon, _ = line.partition(":")
    return f"{key}: {MASK}" if colon else MASK


def url_credential_problems(documents: Iterable[Document]) -> list[Diagnostic]:
    problems = []
    for document in documents:
        if not isinstance(document.data, dict) or "sops" in document.data or not _may_hold_url_credentials(document):
            continue
        for path, text in strings(document.data):
            if URL_CREDENTIALS.search(text):
                message = "a URL must not carry credentials (user:password@host); keep them in the Secret credentialsSecretName names"
                problems.append(document.at(path, message))
    return problems


def _may_hold_url_credentials(document: Document) -> bool:
    """Whether some string of ``document`` may hold a URL's credentials (`holds_url_credentials`),
    told first by its file's text: a string of a document is made of the text's characters but
    for what the escapes of a double-quoted scalar make (explicit tags are refused), and the
    credentials end with an "@". Most files hold neither an "@" nor a backslash."""
    text = document.source.text
    if "@" not in text and "\\" not in text:
        return False
    return holds_url_credentials(document.data)


def redact(diagnostics: Iterable[Diagnostic], sensitive: frozenset[str]) -> list[Diagnostic]:
    ordered = sorted(sensitive, key=len, reverse=True)
    return [_redacted(d, ordered) for d in diagnostics]


def _redacted(diagnostic: Diagnostic, ordered: list[str]) -> Diagnostic:
    message = URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}://{MASK}@", diagnostic.message)
    for value in ordered:
        if value not in message:
            continue
        if len(value) >= MIN_UNQUOTED:
            message = message.replace(value, MASK)
        else:
            for quote in ("'", '"'):
                message = message.replace(f"{quote}{value}{quote}", f"{quote}{MASK}{quote}")
    return diagnostic if message == diagnostic.message else dataclasses.replace(diagnostic, message=message)


