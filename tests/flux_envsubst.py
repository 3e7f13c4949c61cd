"""Flux's post-build substitution, written again in Python for the tests.

kustomize-controller (fluxcd/pkg `kustomize` + its fork of drone/envsubst, `envsubst/parse`)
serialises each object to YAML and substitutes over that text, unless the object is labelled
or annotated ``kustomize.toolkit.fluxcd.io/substitute: disabled``. The rules implemented:

- ``$$`` is an escape: it becomes ``$`` (so ``$${var}`` is the literal ``${var}``);
- ``${name}`` becomes the variable's value, or the empty string when it is undefined (with
  ``strict`` substitution an undefined variable is an error);
- ``${name:-word}``/``${name:=word}`` the value, or ``word`` when unset or empty;
  ``${name-word}``/``${name=word}`` when unset; ``${name:+word}`` ``word`` when set;
- ``$name`` without braces is left alone (the fork reads only ``${``);
- a ``${`` without a valid name and closing brace is a "bad substitution" that fails the
  whole Kustomization.

Other bash forms (substrings, case, replace) are refused here rather than half-implemented:
the tests only need to know that the text would change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

DISABLED = "disabled"
KEY = "kustomize.toolkit.fluxcd.io/substitute"
_NAME = re.compile(r"[A-Za-z0-9_]+")


class BadSubstitution(Exception):
    """What makes Flux fail the whole Kustomization."""


def substitute(text: str, variables: Mapping[str, str], *, strict: bool = False) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            value, i = _expression(text, i + 2, variables, strict)
            out.append(value)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _expression(text: str, i: int, variables: Mapping[str, str], strict: bool) -> tuple[str, int]:
    match = _NAME.match(text, i)
    if match is None:
        raise BadSubstitution(f"unable to parse variable name at {i}")
    name, i = match.group(), match.end()
    if text.startswith("}", i):
        if strict and name not in variables:
            raise BadSubstitution(f"variable not set (strict mode): {name!r}")
        return variables.get(name, ""), i + 1
    for operator in (":-", ":=", ":+", "-", "="):
        if text.startswith(operator, i):
            end = text.find("}", i)
            if end < 0:
                raise BadSubstitution("missing closing brace")
            word = text[i + len(operator) : end]
            value = variables.get(name)
            if operator == ":+":
                return (word if value else ""), end + 1
            unset = value is None or (operator.startswith(":") and value == "")
            return (word if unset else value or ""), end + 1
    raise BadSubstitution(f"unsupported or bad substitution after {name!r}")


def opted_out(obj: Mapping[str, Any]) -> bool:
    metadata = obj.get("metadata") or {}
    return (metadata.get("labels") or {}).get(KEY) == DISABLED or (metadata.get("annotations") or {}).get(KEY) == DISABLED


def apply_to_object(obj: Mapping[str, Any], variables: Mapping[str, str], *, strict: bool = False) -> Any:
    """What Flux applies for ``obj``: the object itself when it opts out, else its YAML text
    substituted and read back (Flux substitutes only when some variable is defined)."""
    if opted_out(obj) or not variables:
        return obj
    text = yaml.safe_dump(dict(obj), sort_keys=False, width=2**31, allow_unicode=True)
    return yaml.safe_load(substitute(text, variables, strict=strict))
