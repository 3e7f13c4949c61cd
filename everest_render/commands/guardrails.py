"""Destructive changes between two renders: what `diff`, `render` and `render --check` put
first, and what `--fail-on-destructive` (exit 4) and `--allow-removals` guard.

The core knows no engine. Each provider declares, per kind it renders, which fields mean what
(``spec.gitops.changes`` in provider.yaml) and which finalizers delete volumes; this module only
applies the six generic meanings to the values found at those paths:

| meaning    | destructive when                                     |
|------------|------------------------------------------------------|
| `size`     | a quantity decreases (refused: volumes cannot shrink) |
| `count`    | a number, or a list's length, decreases              |
| `identity` | a value that was set changes or goes away            |
| `toggle`   | a switch is turned on or off                         |
| `presence` | something that was there (or on) is removed (or off) |
| `version`  | a version goes down, or its major number changes     |

A path is dotted; ``[]`` stands for every item of a list, ``*`` for every key of a mapping,
and ``.`` for the object itself (``presence`` on ``.``: the object removed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from everest_render.model import ChangeMeaning, DerivedField, Provider

ObjectKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name

# More clusters than this removed by one render need --allow-removals (docs/api.md).
MAX_REMOVALS = 1

REFUSED_SHRINK = "refused: the operators cannot shrink volumes"


@dataclass(frozen=True)
class DestructiveChange:
    key: ObjectKey
    path: str  # the concrete path, e.g. spec.members[1].size ("" for the object)
    what: str  # the provider's words: "engine storage size"
    message: str  # "decreased 100Gi → 50Gi"
    refused: bool = False  # never allowed, with or without --fail-on-destructive
    removal: bool = False  # a database removed (counted against --allow-removals)

    @property
    def label(self) -> str:
        _, kind, namespace, name = self.key
        return f"{kind} {namespace}/{name}"

    def __str__(self) -> str:
        return f"{self.label}: {self.what} {self.message}"


@dataclass(frozen=True)
class KindRules:
    """What one provider kind's fields mean, and the finalizers on which volumes are deleted."""

    changes: tuple[ChangeMeaning, ...]
    volume_finalizers: tuple[str, ...]
    derived: tuple[DerivedField, ...] = ()


def rules_by_kind(providers: Iterable[Provider]) -> dict[tuple[str, str], KindRules]:
    """(apiVersion, kind) -> its rules, from every provider in effect."""
    rules: dict[tuple[str, str], KindRules] = {}
    for provider in providers:
        for schema in provider.objects:
            changes = tuple(c for c in provider.gitops.changes if c.kind == schema.kind)
            derived = tuple(d for d in provider.gitops.derived if d.kind == schema.kind)
            rules[(schema.api_version, schema.kind)] = KindRules(changes, provider.gitops.volume_finalizers, derived)
    return rules


def destructive_changes(
    before: Mapping[ObjectKey, Any], after: Mapping[ObjectKey, Any], rules: Mapping[tuple[str, str], KindRules]
) -> list[DestructiveChange]:
    """Every destructive change from ``before`` to ``after``, in object then path order."""
    found: list[DestructiveChange] = []
    for key in sorted(before.keys() | after.keys()):
        kind_rules = rules.get((key[0], key[1]))
        old, new = before.get(key), after.get(key)
        if kind_rules is None or old is None or old == new:
            continue
        for meaning in kind_rules.changes:
            if meaning.path == ".":
                if new is None and meaning.meaning == "presence":
                    found.append(_removal(key, old, meaning, kind_rules.volume_finalizers))
                continue
            if new is None:
                continue  # a removed object is one change, reported on "."
            old_values, new_values = _values_at(old, meaning.path), _values_at(new, meaning.path)
            wildcard = "[]" in meaning.path or "*" in meaning.path.split(".")
            for path in sorted(old_values.keys() | new_values.keys()):
                if wildcard and path not in new_values and meaning.meaning != "presence":
                    continue  # the item itself went away: its presence rule (or count) says so
                change = _judge(meaning.meaning, old_values.get(path), new_values.get(path))
                if change is not None:
                    message, refused = change
                    found.append(DestructiveChange(key, path, meaning.what, message, refused))
    return found


def derived_explanations(
    before: Mapping[ObjectKey, Any], after: Mapping[ObjectKey, Any], rules: Mapping[tuple[str, str], KindRules]
) -> list[str]:
    """One line per derived field that changed because its source did (``spec.gitops.derived``):
    ``<Kind> shop/orders spec.engine.configuration: memory 8G → 32G: size class medium → large``."""
    from everest_render.render.functions import size_class  # the renderer's own thresholds

    classifiers = {"sizeClass": ("size class", size_class)}
    lines = []
    for key in sorted(before.keys() & after.keys()):
        kind_rules = rules.get((key[0], key[1]))
        old, new = before[key], after[key]
        if kind_rules is None or old == new:
            continue
        for derived in kind_rules.derived:
            if _values_at(old, derived.path) == _values_at(new, derived.path):
                continue
            old_source, new_source = _values_at(old, derived.source), _values_at(new, derived.source)
            if old_source == new_source:
                continue
            was, now = _one(old_source), _one(new_source)
            line = f"{key[1]} {key[2]}/{key[3]} {derived.path}: {derived.what} {_text(was)} → {_text(now)}"
            if derived.classes in classifiers:
                name, classify = classifiers[derived.classes]
                before_class, after_class = classify(was), classify(now)
                if before_class != after_class:
                    line += f": {name} {before_class} → {after_class}"
            lines.append(line)
    return lines


def _one(values: Mapping[str, Any]) -> Any:
    return next(iter(values.values()), None)


def removals(changes: Iterable[DestructiveChange]) -> int:
    return sum(1 for c in changes if c.removal)


def blocking_reasons(
    changes: Sequence[DestructiveChange], *, fail_on_destructive: bool, allow_removals: bool, unreadable: Sequence[str] = ()
) -> list[str]:
    """Why the run stops (exit 4), one line each; none when it goes on. ``unreadable``: files
    of the earlier side that are not YAML, described (commands/diff.py UnreadableFile): a
    removal among them cannot be ruled out, so they stop the run as removals would."""
    reasons = [f"{change}: {REFUSED_SHRINK}" for change in changes if change.refused]
    removed = removals(changes)
    if removed > MAX_REMOVALS and not allow_removals:
        reasons.append(
            f"{removed} databases would be removed at once (more than {MAX_REMOVALS}): pass --allow-removals if that is meant"
        )
    if unreadable_blocks(fail_on_destructive=fail_on_destructive, allow_removals=allow_removals):
        option = "--fail-on-destructive" if allow_removals else "pass --allow-removals if rewriting it is meant"
        reasons += [f"{file}, so removed databases cannot be ruled out ({option})" for file in unreadable]
    if fail_on_destructive and changes and not reasons:
        reasons.append(f"{len(changes)} destructive change{'s' if len(changes) != 1 else ''} (--fail-on-destructive)")
    return reasons


def unreadable_blocks(*, fail_on_destructive: bool, allow_removals: bool) -> bool:
    """Whether an earlier file that cannot be read stops the run (else it is a warning)."""
    return fail_on_destructive or not allow_removals


def _removal(key: ObjectKey, old: Any, meaning: ChangeMeaning, volume_finalizers: tuple[str, ...]) -> DestructiveChange:
    finalizers = [f for f in (old.get("metadata") or {}).get("finalizers") or [] if f in volume_finalizers]
    annotations = (old.get("metadata") or {}).get("annotations") or {}
    protected = annotations.get("kustomize.toolkit.fluxcd.io/prune") == "disabled" or "Prune=" in annotations.get(
        "argocd.argoproj.io/sync-options", ""
    )
    message = "removed"
    if finalizers:
        message += f": its volumes are deleted by finalizer {', '.join(finalizers)}"
    if protected:
        message += " (deletion protection was on: Argo CD and Flux leave it in the cluster until someone deletes it)"
    return DestructiveChange(key, "", meaning.what, message, removal=True)


Verdict = tuple[str, bool] | None  # (message, refused) when destructive


def _size(old: Any, new: Any) -> Verdict:
    if new is None:
        return f"removed (was {old})", False
    before, after = _quantity(old), _quantity(new)
    if before is not None and after is not None and after < before:
        return f"decreased {old} → {new}", True
    return None


def _count_change(old: Any, new: Any) -> Verdict:
    before, after = _count(old), _count(new)
    return (f"decreased {before} → {after}", False) if after < before else None


def _identity(old: Any, new: Any) -> Verdict:
    return (f"changed {_text(old)} → {_text(new)}", False) if old != new else None


def _toggle(old: Any, new: Any) -> Verdict:
    return (f"turned {'on' if new else 'off'}", False) if bool(old) != bool(new) else None


def _presence(old: Any, new: Any) -> Verdict:
    if new is None:
        return "removed", False
    return ("turned off", False) if new is False and old is not False else None


def _version_change(old: Any, new: Any) -> Verdict:
    if new is None:
        return f"removed (was {_text(old)})", False
    before, after = _version(old), _version(new)
    if after < before:
        return f"downgraded {_text(old)} → {_text(new)}", False
    if before[:1] != after[:1]:
        return f"major version changed {_text(old)} → {_text(new)}", False
    return None


JUDGES: Mapping[str, Callable[[Any, Any], Verdict]] = {
    "size": _size,
    "count": _count_change,
    "identity": _identity,
    "toggle": _toggle,
    "presence": _presence,
    "version": _version_change,
}


def _judge(meaning: str, old: Any, new: Any) -> Verdict:
    """Whether going from ``old`` to ``new`` is destructive for ``meaning``; nothing that was
    not there can be destroyed."""
    return None if old is None else JUDGES[meaning](old, new)


def _text(value: Any) -> str:
    return "(none)" if value is None else str(value)


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_UNITS: Mapping[str, int | Decimal] = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": Decimal("0.001"),
}  # fmt: skip


def _quantity(value: Any) -> Decimal | None:
    match = _QUANTITY.match(str(value)) if value is not None else None
    if match is None or match.group(2) not in _UNITS:
        return None
    try:
        return Decimal(match.group(1)) * _UNITS[match.group(2)]
    except InvalidOperation:
        return None


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, list | dict):
        return len(value)
    return int(value) if isinstance(value, int | float) or str(value).isdigit() else 0


def _version(value: Any) -> tuple[int, ...]:
    """``registry/engine:8.0.19-7`` → (8, 0, 19, 7); ``17`` → (17,)."""
    text = str(value)
    tag = text.rsplit(":", 1)[-1] if "/" in text or ":" in text else text
    return tuple(int(part) for part in re.findall(r"\d+", tag))


def _values_at(obj: Any, path: str) -> dict[str, Any]:
    """The values at a dotted path with ``[]`` and ``*`` wildcards, by their concrete path."""
    return dict(_walk(obj, _parts(path), ""))


def _parts(path: str) -> list[str]:
    return [part for piece in path.split(".") for part in re.split(r"(\[\])", piece) if part]


def _walk(value: Any, parts: list[str], at: str) -> Iterator[tuple[str, Any]]:
    if not parts:
        yield at, value
        return
    head, rest = parts[0], parts[1:]
    if head == "[]":
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from _walk(item, rest, f"{at}[{index}]")
    elif head == "*":
        if isinstance(value, Mapping):
            for key in sorted(value):
                yield from _walk(value[key], rest, f"{at}.{key}" if at else str(key))
    elif isinstance(value, Mapping) and head in value:
        yield from _walk(value[head], rest, f"{at}.{head}" if at else head)
