"""The JSON Schema library, jsonschema-rs, imported without loading `email.utils` (issue 12).

As its extension module starts, jsonschema-rs imports `email.utils` for a single call: the
pyo3-built crate turns the library's build time into the datetime of ``jsonschema_rs.__build__``
with ``email.utils.parsedate_to_datetime``. That module brings socket, random, calendar,
urllib.parse and most of `email` with it: some 30 million instructions, a twentieth of a
one-cluster `argocd generate`, for a value nothing here reads.

So while jsonschema_rs is imported, and only if nothing has imported `email.utils` yet,
``sys.modules["email.utils"]`` holds a stand-in. Its `parsedate_to_datetime` reads the one
form a build time is written in (``Thu, 12 Nov 2026 07:50:16 +0000``) into the very datetime
email.utils gives for it; any other text, and any other name, is served by the real module,
imported then. The stand-in is gone when the import is: who imports `email.utils` afterwards
gets the real module.
"""

from __future__ import annotations

import sys
import types
from datetime import UTC, datetime
from typing import Any

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _digits(text: str, *lengths: int) -> bool:
    return len(text) in lengths and text.isascii() and text.isdigit()


class _EmailUtilsStandIn(types.ModuleType):
    """`email.utils` for the length of one import: what it is asked for beyond a build time's
    date comes from the real module."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_email_utils(), name)

    @staticmethod
    def parsedate_to_datetime(data: Any) -> Any:
        # "Ddd, D[D] Mon YYYY HH:MM:SS +0000", as email.utils reads it: that moment, in UTC.
        parts = data.split(" ") if isinstance(data, str) else []
        if len(parts) == 6 and parts[0][:-1] in _DAYS and parts[0][-1:] == "," and parts[2] in _MONTHS and parts[5] == "+0000":
            day, year, clock = parts[1], parts[3], parts[4].split(":")
            if _digits(day, 1, 2) and _digits(year, 4) and len(clock) == 3 and all(_digits(p, 2) for p in clock):
                try:
                    hour, minute, second = (int(p) for p in clock)
                    return datetime(int(year), _MONTHS.index(parts[2]) + 1, int(day), hour, minute, second, tzinfo=UTC)
                except ValueError:
                    pass  # no such day or time: email.utils says what it says of it
        return _real_email_utils().parsedate_to_datetime(data)


_stand_in = _EmailUtilsStandIn("email.utils")


def _real_email_utils() -> types.ModuleType:
    if sys.modules.get("email.utils") is _stand_in:
        del sys.modules["email.utils"]
    import email.utils

    return email.utils


def _import() -> types.ModuleType:
    standing_in = "email.utils" not in sys.modules
    if standing_in:
        sys.modules["email.utils"] = _stand_in
    try:
        import jsonschema_rs
    finally:
        if standing_in and sys.modules.get("email.utils") is _stand_in:
            del sys.modules["email.utils"]
    return jsonschema_rs


jsonschema_rs = _import()
