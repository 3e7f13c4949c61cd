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

A provider's checks (spec.checks: a ``require`` expression and a ``message`` template) are not
loaded by name, so Jinja's cache protocol never sees them: their code is stored too, keyed by
what compiles it (`compile_expression` or `from_string`) and the very source text, and
`compile_expression` / `from_string` here take it from the file when it is there. It is the
code Jinja's own calls compiled at prepare time, caught on its way out of ``_compile``.
"""

from __future__ import annotations

import hashlib
import marshal
import sys
from collections.abc import Callable, Sequence
from importlib._bootstrap_external import MAGIC_NUMBER
from pathlib import Path
from types import CodeType
from typing import Any

import jinja2
from jinja2.bccache import Bucket
from jinja2.environment import TemplateExpression

PREPARED_FILE = Path(__file__).resolve().parent.parent / "_prepared" / "templates.marshal"
FORMAT = 2
# What compiles a snippet, and its source: ("expression", a check's ``require``) or ("string", its ``message``).
Snippet = tuple[str, str]


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

    def __init__(self, table: dict[str, bytes], *, recording: bool = False, snippets: dict[Snippet, bytes] | None = None) -> None:
        self.table = table
        self.recording = recording
        self.snippets = snippets if snippets is not None else {}

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
    templates, snippets = content.get("templates"), content.get("snippets")
    if not isinstance(templates, dict) or not isinstance(snippets, dict):
        return None
    return PreparedTemplates(templates, snippets=snippets)


def compile_expression(env: jinja2.Environment, source: str) -> Callable[..., Any]:
    """``env.compile_expression(source)``, from the code prepared for it when there is."""
    code = _snippet_code(env, ("expression", source))
    if code is None:
        return env.compile_expression(source)
    return TemplateExpression(_template(env, code), True)  # what compile_expression returns, undefined_to_none


def from_string(env: jinja2.Environment, source: str) -> jinja2.Template:
    """``env.from_string(source)``, from the code prepared for it when there is."""
    code = _snippet_code(env, ("string", source))
    return env.from_string(source) if code is None else _template(env, code)


def _template(env: jinja2.Environment, code: CodeType) -> jinja2.Template:
    # The rest of `Environment.from_string` once the source is compiled (no extra globals).
    return env.template_class.from_code(env, code, env.make_globals(None), None)


def _snippet_code(env: jinja2.Environment, snippet: Snippet) -> CodeType | None:
    cache = env.bytecode_cache
    data = cache.snippets.get(snippet) if isinstance(cache, PreparedTemplates) else None
    if data is None:
        return None
    try:
        code = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def _compiled(env: jinja2.Environment, snippet: Snippet) -> CodeType | None:
    """The code Jinja's own `compile_expression` or `from_string` compiles the snippet to (caught
    as its ``_compile`` returns it), or None if it does not compile (a run then reports why)."""
    caught: list[CodeType] = []
    original = env._compile

    def catching(source: str, filename: str) -> CodeType:
        code = original(source, filename)
        caught.append(code)
        return code

    env._compile = catching  # type: ignore[method-assign]
    kind, source = snippet
    try:
        (env.compile_expression if kind == "expression" else env.from_string)(source)
    except jinja2.TemplateSyntaxError:
        return None
    finally:
        del env._compile
    return caught[0] if len(caught) == 1 else None


def prepare(
    environments: Sequence[tuple[jinja2.Environment, Sequence[str]]],
    path: Path = PREPARED_FILE,
    snippets: Sequence[tuple[jinja2.Environment, Sequence[Snippet]]] = (),
) -> int:
    """Compile ``environments``' templates and ``snippets`` (all alike: one fingerprint) into
    ``path``; returns how many templates."""
    table: dict[str, bytes] = {}
    prints = {fingerprint(env) for env, _ in (*environments, *snippets)}
    if len(prints) > 1:
        raise ValueError("the environments to prepare differ; one file serves one kind of environment")
    for env, names in environments:
        env.bytecode_cache = PreparedTemplates(table, recording=True)
        for name in names:
            env.get_template(name)
    codes: dict[Snippet, bytes] = {}
    for env, wanted in snippets:
        for snippet in wanted:
            code = _compiled(env, snippet)
            if code is not None:
                codes[snippet] = marshal.dumps(code)
    content = {"format": FORMAT, "python": MAGIC_NUMBER, "jinja": jinja2.__version__, "environment": prints.pop() if prints else ""}
    content["templates"] = table
    content["snippets"] = codes
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_bytes(marshal.dumps(content))
    scratch.replace(path)
    _loaded.pop(str(path), None)
    return len(table)
