"""The helpers provider templates may call: pure, documented, and strict about bad input.

Filters: ``{{ x | tojson }}`` (a YAML-safe scalar or flow value), ``| quantity`` (a number),
``| size_class`` (small/medium/large by memory, everest's thresholds),
``| resources(shorthand)`` (a ResourceRequirements from the cluster's resources),
``| merge_resources(low)`` (everest's MergeResources),
``| pmm_resources(engine_resources)`` (the PMM client's, everest's preset by size class),
``| parse_settings`` (``name = value`` / ``name value`` lines as a mapping). Globals: ``required(value, message)``, ``fail(message)``.
Nothing here reads the clock, the environment or files (see docs/providers.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import jinja2

from everest_render.render.quantity import parse_quantity


class TemplateFailure(Exception):
    """Raised by ``fail``/``required``: the provider refuses the cluster with a message,
    optionally at a field of the DatabaseCluster (``at="spec.instances.proxy.storage"``)."""

    def __init__(self, message: str, at: str | None = None) -> None:
        super().__init__(message)
        self.at = at


# everest-operator's Engine.Size(): memory >= 32G is large, >= 8G medium, else small.
_MEDIUM = Decimal(8) * 10**9
_LARGE = Decimal(32) * 10**9


def size_class(value: Mapping[str, Any] | str | int | float | None) -> str:
    """small, medium or large, from a memory quantity or from a component's resources
    (the shorthand's memory, else limits, else requests); no memory is small, as in everest."""
    memory = _memory_of(value) if isinstance(value, Mapping) else value
    if memory is None:
        return "small"
    amount = parse_quantity(memory)
    if amount >= _LARGE:
        return "large"
    if amount >= _MEDIUM:
        return "medium"
    return "small"


def _memory_of(resources: Mapping[str, Any]) -> Any:
    for source in (resources, resources.get("limits") or {}, resources.get("requests") or {}):
        if "memory" in source:
            return source["memory"]
    return None


def quantity(value: str | int | float) -> Decimal:
    return parse_quantity(value)


def tojson(value: Any) -> str:
    """A JSON text, which YAML reads back as exactly this value (strings stay strings)."""
    # Scalars (most calls) written as the encoder writes them, without its method calls.
    kind = type(value)
    if kind is str:
        return _JSON_STRING(value)
    if kind is bool or value is None:
        return _JSON_CONSTANTS[value]
    if kind is int:
        return int.__repr__(value)
    if isinstance(value, jinja2.Undefined):
        str(value)  # a StrictUndefined raises its own "x is undefined" error here
    if _C_ENCODER is None:
        return _JSON.encode(value)
    # What _JSON.encode does for a value that is not a str, without its Python steps on the
    # way to json's C encoder (made for each call, as encode makes it: its markers of the
    # values being written, which find a circular value, start empty).
    return "".join(_C_ENCODER({}, _json_default, _JSON_STRING, None, ": ", ", ", False, False, True)(value, 0))


def _json_default(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        str(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} into a manifest")


# One encoder for every call (json.dumps builds one per call when given options).
_JSON = json.JSONEncoder(ensure_ascii=False, default=_json_default)
_JSON_STRING = json.encoder.encode_basestring  # what _JSON writes a str with (ensure_ascii=False)
_C_ENCODER: Callable[..., Any] | None = getattr(json.encoder, "c_make_encoder", None)  # None: no C accelerator
_JSON_CONSTANTS = {True: "true", False: "false", None: "null"}
# What tojson makes of a str, in C: the sandbox's wrapper calls it itself for a str (most of
# what templates write), without calling tojson (render/limits.py, `_bounded`).
tojson.for_strings = _JSON_STRING  # type: ignore[attr-defined]


def resources(value: Mapping[str, Any] | None, shorthand: str = "limits") -> dict[str, Any]:
    """A cluster's resources as a Kubernetes ResourceRequirements.

    The shorthand ``{cpu, memory}`` goes to ``limits``, ``requests`` or both
    (``shorthand="requests,limits"``), as each engine's everest mapping does; the full form
    ``{requests, limits}`` passes through as written.
    """
    if not value:
        return {}
    if "requests" in value or "limits" in value:
        return {k: dict(value[k]) for k in ("requests", "limits") if k in value}
    amounts = {k: value[k] for k in ("cpu", "memory") if k in value}
    targets = [t.strip() for t in shorthand.split(",")]
    for target in targets:
        if target not in ("requests", "limits"):
            raise TemplateFailure(f"resources(): unknown shorthand target {target!r}")
    return {t: dict(amounts) for t in ("requests", "limits") if t in targets}


def merge_resources(high: Mapping[str, Any] | None, low: Mapping[str, Any] | None) -> dict[str, Any]:
    """Two ResourceRequirements merged value by value, as everest's ``common.MergeResources``:
    each of requests/limits x cpu/memory is ``high``'s when set and not zero, else ``low``'s.
    Other resource names (``ephemeral-storage``, ...) are kept from ``high``, where everest
    would drop them. Empty sections are left out."""
    merged: dict[str, Any] = {}
    for section in ("requests", "limits"):
        mine, theirs = dict((high or {}).get(section) or {}), (low or {}).get(section) or {}
        values = {k: v for k, v in mine.items() if k not in ("cpu", "memory")}
        for name in ("cpu", "memory"):
            for source in (mine, theirs):
                if source.get(name) is not None and parse_quantity(source[name]) != 0:
                    values[name] = source[name]
                    break
        if values:
            merged[section] = dict(sorted(values.items()))
    return merged


# everest-operator's PMM client requests by the engine's size class (requests only).
PMM_REQUESTS = {
    "small": {"cpu": "95m", "memory": "99604Ki"},
    "medium": {"cpu": "228m", "memory": "199168Ki"},
    "large": {"cpu": "228m", "memory": "796907Ki"},
}


def pmm_resources(own: Mapping[str, Any] | None, engine_resources: Mapping[str, Any] | None) -> dict[str, Any]:
    """The PMM client's ResourceRequirements, as everest's getPMMResources for a new cluster:
    the monitoring component's own resources (shorthand = requests) merged with
    ``merge_resources`` over the requests preset for the engine's size class, each of the four
    values on its own (full form with only limits, or only requests, included)."""
    return merge_resources(resources(own, "requests"), {"requests": PMM_REQUESTS[size_class(engine_resources)]})


def version_prefix(version: str, parts: int = 2) -> str:
    """The leading numeric parts of a version: ``"8.0.44-35.1"`` -> ``"8.0"``, ``"17.7-2"`` (1) -> ``"17"``."""
    numbers = version.split("-", 1)[0].split(".")
    if len(numbers) < parts or not all(n.isdigit() for n in numbers[:parts]):
        raise TemplateFailure(f"version {version!r} has no {parts} numeric parts")
    return ".".join(numbers[:parts])


def version_at_least(version: str, minimum: str) -> bool:
    """Compare the numeric parts before any ``-``: ``version_at_least("8.0.44-35.1", "8.0.31")``."""

    def parts(text: str) -> tuple[int, ...]:
        return tuple(int(n) for n in text.split("-", 1)[0].split(".") if n.isdigit())

    return parts(version) >= parts(minimum)


def parse_settings(text: str | None, at: str | None = None) -> dict[str, str]:
    """Settings text in the ``postgresql.conf`` style as an ordered mapping of name to string value.

    One setting per line, written ``name = value`` or ``name value``. Blank lines and ``#``
    comments (a whole line, or the rest of a line after a ``#`` outside quotes) are dropped.
    A value wrapped in one pair of single or double quotes loses them (``'UTC'`` -> ``UTC``),
    as everest's go-ini based parser does; ``name =`` is the empty string. A later line for the
    same name wins. A line that is only a name is refused rather than guessed; ``at`` names the
    cluster field the text came from, so the error points there.
    """
    settings: dict[str, str] = {}
    for number, raw in enumerate((text or "").split("\n"), start=1):
        line = _without_comment(raw).strip()
        if not line:
            continue
        head = _SETTING_NAME.match(line)
        rest = line[head.end() :].lstrip() if head else ""
        if head is None or not rest:
            raise TemplateFailure(f"config line {number}: {line!r} is not 'name = value' or 'name value'", at)
        value = rest[1:].strip() if rest.startswith("=") else rest
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" and value.count(value[0]) == 2:
            value = value[1:-1]
        settings[head.group()] = value
    return settings


_SETTING_NAME = re.compile(r"[^\s=]+")


def _without_comment(line: str) -> str:
    """The line up to a ``#`` that is not inside single or double quotes."""
    quote: str | None = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#":
            return line[:index]
    return line


def required(value: Any, message: str, at: str | None = None) -> Any:
    if value is None or value == "" or value == {} or value == []:
        raise TemplateFailure(message, at)
    return value


def fail(message: str, at: str | None = None) -> None:
    raise TemplateFailure(message, at)


FILTERS: dict[str, Callable[..., Any]] = {
    "tojson": tojson,
    "quantity": quantity,
    "size_class": size_class,
    "resources": resources,
    "merge_resources": merge_resources,
    "pmm_resources": pmm_resources,
    "version_prefix": version_prefix,
    "parse_settings": parse_settings,
}
GLOBALS: dict[str, Callable[..., Any]] = {"required": required, "fail": fail, "version_at_least": version_at_least}
