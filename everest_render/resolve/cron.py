"""Cron expressions as the operators' schedulers accept them (5 fields, or an @descriptor)."""

from __future__ import annotations

import functools
import re

_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
# (name, lowest, highest, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_ITEM = re.compile(r"^(\*|\?|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?$")


@functools.lru_cache(maxsize=4096)  # a fleet's schedules repeat a few expressions
def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a valid schedule, or None when it is."""
    text = expression.strip()
    if text.lower() in _DESCRIPTORS:
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"invalid cron expression {expression!r}: expected 5 fields (minute hour day month weekday), got {len(fields)}"
    for value, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for item in value.lower().split(","):
            problem = _item_problem(item, low, high, names)
            if problem:
                return f"invalid cron expression {expression!r}: {name} {problem}"
    return None


def _item_problem(item: str, low: int, high: int, names: dict[str, int]) -> str | None:
    match = _ITEM.match(item)
    if match is None:
        return f"{item!r} is not a value, range or step"
    base, step = match.groups()
    if step is not None and int(step) == 0:
        return f"{item!r} has a zero step"
    if base in ("*", "?"):
        return None
    bounds = base.split("-")
    numbers = []
    for bound in bounds:
        number = names.get(bound) if not bound.isdigit() else int(bound)
        if number is None or not low <= number <= high:
            return f"{bound!r} is outside {low}-{high}"
        numbers.append(number)
    if len(numbers) == 2 and numbers[0] > numbers[1]:
        return f"range {base!r} runs backwards"
    return None
