"""Kubernetes resource quantities, parsed exactly (Decimal), for size classes and comparisons."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][-+]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$")


def parse_quantity(value: str | int | float) -> Decimal:
    """``"4G"`` -> 4000000000, ``"500m"`` -> 0.5; raises ValueError on anything else."""
    if type(value) is str:
        known = _PARSED.get(value)
        if known is not None:
            return known
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a quantity")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a quantity")
    number, exponent, suffix = match.groups()
    try:
        result = Decimal(number + (exponent or ""))
    except InvalidOperation as error:  # pragma: no cover - the regex admits only valid numbers
        raise ValueError(f"{value!r} is not a quantity") from error
    result *= _SUFFIXES[suffix or ""]
    if type(value) is str:
        if len(_PARSED) >= 10_000:
            _PARSED.clear()
        _PARSED[value] = result
    return result


# Each quantity text parsed, by its text (a fleet writes a few dozen: "4Gi", "500m"); a
# Decimal is immutable, so every caller may have the same one.
_PARSED: dict[str, Decimal] = {}
