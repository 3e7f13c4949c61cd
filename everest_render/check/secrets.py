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

from everest_render.check.core import URL_CREDENTIALS, holds_url_credentials, scalars, strings
from everest_render.diagnostics import Diagnostic, ObjectPath
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
    for data in objects:
        if not isinstance(data, Mapping) or data.get("kind") in ("Provider", "DatabaseClusterDefinition"):
            continue  # a catalogue names secrets and keys; it holds none
        secret = data.get("kind") == "Secret"
        for path, value in scalars(data):
            if (secret and path and path[0] in ("data", "stringData")) or _under_sensitive_key(path):
                found.add(str(value))
            if not isinstance(value, str):
                continue
            text = value
            for match in URL_CREDENTIALS.finditer(text):
                found.add(match.group(2))
                found.update(part for part in match.group(2).split(":") if part)
    return frozenset(v for v in found if v)


def masked_line(line: str, *, in_secret: bool) -> str:
    """A line of template output fit to quote in a message: a value after a credential-like
    key, or any value when the output holds a Secret, is masked (the line did not parse, so
    no object says which values are secret)."""
    if not in_secret and not _SENSITIVE_KEY.search(line):
        return line
    key, colon, _ = line.partition(":")
    return f"{key}: {MASK}" if colon else MASK


def _under_sensitive_key(path: ObjectPath) -> bool:
    """Whether the key that holds the value (the nearest, for a list item) is credential-like."""
    key = next((part for part in reversed(path) if isinstance(part, str)), None)
    return key is not None and is_sensitive_key(key)


def url_credential_problems(documents: Iterable[Document]) -> list[Diagnostic]:
    problems = []
    for document in documents:
        if not isinstance(document.data, dict) or "sops" in document.data or not holds_url_credentials(document.data):
            continue
        for path, text in strings(document.data):
            if URL_CREDENTIALS.search(text):
                message = "a URL must not carry credentials (user:password@host); keep them in the Secret credentialsSecretName names"
                problems.append(document.at(path, message))
    return problems


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


