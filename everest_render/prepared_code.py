"""Dataclass methods compiled at build time, so a cold process does not compile them again.

`dataclasses` writes each class's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__`` and ``__delattr__`` as Python text and compiles it when the class is defined:
about four million instructions a class, and the model has some fifty (a sixth of a one-cluster
`argocd generate`). The texts are the same in every run of one Python, so `python -m
everest_render.prepare` stores each text's code (`record`), and the executable's entry point
(`install`) lets dataclasses execute that code instead of compiling the same text again.

What is executed is what compiling gives: each entry is keyed by its whole text, made by the
same Python (bytecode magic and version are checked, or nothing is used), and a text not in the
file (a class someone changed, anybody else's code) is compiled as before. Like the prepared
templates (render/prepared.py), the file is read only from the package folder.
"""

from __future__ import annotations

import builtins
import marshal
from pathlib import Path
from types import CodeType
from typing import Any

from everest_render import prepared_file

PREPARED_FILE = Path(__file__).resolve().parent / "_prepared" / "dataclasses.marshal"
FORMAT = 1


def _compiled(source: str) -> CodeType:
    # What exec(source) in dataclasses compiles: no future flags (that module has none), "<string>".
    return compile(source, "<string>", "exec", dont_inherit=True)


def record() -> dict[str, bytes]:
    """From now on, the code of every text dataclasses compiles, by text (for `prepare`)."""
    import dataclasses

    table: dict[str, bytes] = {}

    def recording_exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
        if isinstance(source, str):
            code = _compiled(source)
            table[source] = marshal.dumps(code)
            return builtins.exec(code, globals, locals)
        return builtins.exec(source, globals, locals)

    setattr(dataclasses, "exec", recording_exec)  # noqa: B010 (a module global shadowing the builtin)
    return table


def write(table: dict[str, bytes], path: Path = PREPARED_FILE) -> None:
    prepared_file.write(str(path), marshal.dumps(table), {"format": FORMAT})


def load(path: Path = PREPARED_FILE) -> dict[str, bytes] | None:
    """The prepared code by text, if the file was made by this very Python; else None. Each
    entry stays marshalled until its class is defined (most runs define a few of them)."""
    table = prepared_file.read_value(str(path), lambda: {"format": FORMAT})
    return table if isinstance(table, dict) else None


def install(path: Path = PREPARED_FILE) -> bool:
    """Let dataclasses run prepared code for the texts it has; whether there was any."""
    table = load(path)
    if not table:
        return False
    import dataclasses

    def prepared_exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
        code = table.get(source) if isinstance(source, str) else None
        return builtins.exec(source if code is None else marshal.loads(code), globals, locals)

    setattr(dataclasses, "exec", prepared_exec)  # noqa: B010 (a module global shadowing the builtin)
    return True
