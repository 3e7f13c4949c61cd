"""Check a repository's providers when they load, not when a cluster first needs them.

A provider's assets are the user's input like any cluster file: a schema that is not JSON or
not a JSON Schema, a template that does not compile (whether listed in ``spec.templates`` or
only imported by one, at any depth), or a ``spec.secrets`` expression that does not parse is
a located error here, so no later stage (render, check, ``explain``) meets it as a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import jinja2

from everest_render.check.cel_rules import RULES_KEY
from everest_render.diagnostics import Diagnostic
from everest_render.model import Provider, TemplateSource
from everest_render.render.templates import sandbox
from everest_render.schema_check import compile_schema

SECRET_EXPRESSIONS = ("name", "when", "forEach")


def provider_problems(providers: Iterable[Provider]) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    for provider in providers:
        problems.extend(_schema_problems(provider))
        problems.extend(_template_problems(provider))
        problems.extend(_secret_problems(provider))
    return problems


def asset_problems(source: TemplateSource) -> list[Diagnostic]:
    """The schemas and templates of a provider or an extension folder."""
    return [*_schema_problems(source), *_template_problems(source)]


def _schema_problems(provider: TemplateSource) -> list[Diagnostic]:
    problems = []
    for name in sorted({o.schema_file for o in provider.objects}):
        where = f"{provider.folder}/{name}"
        text = provider.assets.schemas.get(name)
        if text is None:
            continue  # parse reported the missing file
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as error:
            problems.append(Diagnostic(where, error.lineno, error.colno, f"not JSON: {error.msg}"))
            continue
        except RecursionError:
            problems.append(Diagnostic(where, 1, 1, "not JSON this renderer can read: nested too deeply"))
            continue
        if not isinstance(schema, dict):
            problems.append(Diagnostic(where, 1, 1, "a schema must be a JSON object"))
            continue
        schema = {k: v for k, v in schema.items() if k != RULES_KEY}
        try:
            compile_schema(schema)
        except Exception as error:  # jsonschema-rs raises its own ValidationError or ValueError
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            problems.append(Diagnostic(where, 1, 1, f"not a valid JSON Schema: {first}"))
    return problems


def _template_problems(provider: TemplateSource) -> list[Diagnostic]:
    env = sandbox(provider)
    problems = []
    for name in sorted(provider.assets.templates):
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as error:
            problems.append(Diagnostic(f"{provider.folder}/{name}", error.lineno or 1, 1, f"template syntax error: {error.message}"))
        except RecursionError:
            problems.append(Diagnostic(f"{provider.folder}/{name}", 1, 1, "template nested too deeply to compile"))
    return problems


def _secret_problems(provider: Provider) -> list[Diagnostic]:
    env = sandbox(provider)
    problems = []
    for index, entry in enumerate(provider.secrets):
        for field in SECRET_EXPRESSIONS:
            if field not in entry:
                continue
            try:
                env.compile_expression(str(entry[field]))
            except jinja2.TemplateSyntaxError as error:
                problems.append(
                    provider.document.at(("spec", "secrets", index, field), f"not a valid expression: {error.message}")
                )
    return problems
