"""The built-in providers' templates compiled at build time, so a cold process does not compile them.

Compiling Jinja text (lex, parse, generate Python, compile it) is about a tenth of a
one-cluster `argocd generate`, and the built-in templates are the same in every run of an
installed package. `python -m everest_render.prepare` (the Dockerfile and `make bench` run it)
compiles them as a render would and stores each template's code in `_prepared/` inside the
package, through Jinja's own bytecode-cache protocol.

Trust: the file is read only from the package folder (written when the package is built, as
its `.pyc` files are), never from a cache in a user-writable place. Use: only by the exact
environment a render builds for a built-in provider; the file says which (its fingerprint:
Python's bytecode magic, the Jinja version, the sandbox class and the source of the module
defining it, the lexer options), and any difference leaves it unused. Each template's entry
also carries the checksum of its source (Jinja checks it): an edited template compiles
normally. A missing, stale or unreadable file changes nothing but the time.
"""

from __future__ import annotations

import hashlib
import marshal
import sys
from collections.abc import Sequence
from importlib._bootstrap_external import MAGIC_NUMBER
from pathlib import Path
from typing import Any

import jinja2
from jinja2.bccache import Bucket

PREPARED_FILE = Path(__file__).resolve().parent.parent / "_prepared" / "templates.marshal"
FORMAT = 1


def fingerprint(env: jinja2.Environment) -> str:
    """What decides the Python code Jinja generates for a template in ``env``."""
    kind = type(env)
    modules = sorted({c.__module__ for c in (*kind.__mro__, env.code_generator_class) if c.__module__.startswith("everest_render.")})
    sources = hashlib.sha256()
    for name in modules:
        sources.update(Path(sys.modules[name].__file__ or "").read_bytes())
    settings = (
        jinja2.__version__,
        f"{kind.__module__}.{kind.__qualname__}",
        sorted(getattr(env, "intercepted_binops", ())),
        sorted(getattr(env, "intercepted_unops", ())),
        f"{env.code_generator_class.__module__}.{env.code_generator_class.__qualname__}",
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        env.optimized,
        env.autoescape if isinstance(env.autoescape, bool) else "function",
        sorted(env.extensions),
    )
    return hashlib.sha256(repr(settings).encode() + sources.digest()).hexdigest()


class PreparedTemplates(jinja2.BytecodeCache):
    """Serves prepared code by Jinja's cache key; when ``recording``, keeps what Jinja compiles."""

    def __init__(self, table: dict[str, bytes], *, recording: bool = False) -> None:
        self.table = table
        self.recording = recording

    def load_bytecode(self, bucket: Bucket) -> None:
        data = self.table.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)  # Jinja resets the bucket on a version or checksum mismatch

    def dump_bytecode(self, bucket: Bucket) -> None:
        if self.recording:
            self.table[bucket.key] = bucket.bytecode_to_string()


_loaded: dict[str, Any] = {}


def prepared_for(env: jinja2.Environment, path: Path = PREPARED_FILE) -> PreparedTemplates | None:
    """The prepared templates if they were made for an environment like ``env``, else None."""
    key = str(path)
    if key not in _loaded:
        try:
            content = marshal.loads(path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            content = None
        valid = isinstance(content, dict) and content.get("format") == FORMAT and content.get("python") == MAGIC_NUMBER
        _loaded[key] = content if valid else None
    content = _loaded[key]
    if content is None or content.get("environment") != fingerprint(env):
        return None
    templates = content.get("templates")
    return PreparedTemplates(templates) if isinstance(templates, dict) else None


def prepare(environments: Sequence[tuple[jinja2.Environment, Sequence[str]]], path: Path = PREPARED_FILE) -> int:
    """Compile ``environments``' templates (all alike: one fingerprint) into ``path``; returns how many."""
    table: dict[str, bytes] = {}
    prints = {fingerprint(env) for env, _ in environments}
    if len(prints) > 1:
        raise ValueError("the environments to prepare differ; one file serves one kind of environment")
    for env, names in environments:
        env.bytecode_cache = PreparedTemplates(table, recording=True)
        for name in names:
            env.get_template(name)
    content = {"format": FORMAT, "python": MAGIC_NUMBER, "jinja": jinja2.__version__, "environment": prints.pop() if prints else ""}
    content["templates"] = table
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_bytes(marshal.dumps(content))
    scratch.replace(path)
    _loaded.pop(str(path), None)
    return len(table)
