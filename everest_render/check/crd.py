"""Stage 5, check: every rendered object against the strict schema of its operator's CRD.

The schemas are the provider's compact JSON (generated from the upstream CRD by
`everest-render schemas`), with unknown fields forbidden: the API server would prune them
silently, we refuse them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from everest_render.check.cel_rules import RULES_KEY, RuleSet
from everest_render.diagnostics import Diagnostic, format_path
from everest_render.model import ObjectRef, RenderedObject, ResolvedCluster, TemplateSource
from everest_render.schema_check import Validator, compile_schema, schema_for, schema_problems

# Up to this many objects of one kind, each check compiles the schema narrowed to what those
# objects hold (schema_check.schema_for: the same verdicts); beyond, the whole schema once.
# One cluster's render (the Argo CD plugin) compiles a few KB instead of PSMDB's 400.
NARROW_UP_TO = 16


class SchemaBook:
    """Compiled validators and CEL rule sets by provider (or extension) and kind, built on first use within one run.

    ``narrow``: the objects to check, by provider and kind; a kind with few objects gets a
    validator of its schema narrowed to them (valid for those objects only)."""

    def __init__(self, narrow: Mapping[tuple[int, str, str], list[Any]] | None = None) -> None:
        self._validators: dict[tuple[int, str, str], tuple[Validator, RuleSet]] = {}
        self._narrow = narrow or {}

    def compiled(self, provider: TemplateSource, api_version: str, kind: str) -> tuple[Validator, RuleSet]:
        """The kind's validator and rule set, compiled on first use."""
        key = (id(provider), api_version, kind)
        known = self._validators.get(key)
        if known is not None:
            return known
        entry = next(o for o in provider.objects if (o.api_version, o.kind) == (api_version, kind))
        instances = self._narrow.get(key)
        narrowed = instances is not None and len(instances) <= NARROW_UP_TO
        schema = _parsed(provider, entry.schema_file, narrowed=narrowed)
        rules = RuleSet(schema.pop(RULES_KEY, []))
        if instances is not None and narrowed:
            schema = schema_for(schema, instances)
        self._validators[key] = (compile_schema(schema), rules)
        return self._validators[key]


def _parsed(provider: TemplateSource, name: str, *, narrowed: bool) -> Any:
    """The schema file's JSON, as prepared at build time for a built-in's very text (``narrowed``:
    to be narrowed by schema_for, which takes the prepared form as it is)."""
    from everest_render.prepared_builtins import object_schema

    text = provider.assets.schemas[name]
    prepared = object_schema(f"{provider.folder}/{name}", text, narrowed=narrowed)
    return prepared if prepared is not None else json.loads(text)


def check_objects(
    objects: Iterable[RenderedObject], clusters: Mapping[ObjectRef, ResolvedCluster], book: SchemaBook | None = None
) -> list[Diagnostic]:
    objects = list(objects)
    if book is None:
        by_kind: dict[tuple[int, str, str], list[Any]] = {}
        for rendered in objects:
            owner = owner_of(rendered, clusters[rendered.cluster])
            by_kind.setdefault((id(owner), rendered.obj["apiVersion"], rendered.obj["kind"]), []).append(rendered.obj)
        book = SchemaBook(by_kind)
    problems: list[Diagnostic] = []
    for rendered in objects:
        cluster = clusters[rendered.cluster]
        obj = rendered.obj
        # Both of the kind's checks from one look-up (`SchemaBook.validator` and `rules` each
        # make one): a lookup a check, per object, was a visible part of this stage.
        validator, rules = book.compiled(owner_of(rendered, cluster), obj["apiVersion"], obj["kind"])
        for problem in schema_problems(validator, obj):
            anchor = cluster.cluster.document.at(("spec",), "")
            message = (
                f"rendered {obj['kind']} {rendered.cluster} does not match {_whose(rendered)} schema "
                f"at {format_path(problem.path) or '(root)'}: {problem.message} (template {rendered.template})"
            )
            problems.append(Diagnostic(anchor.file, anchor.line, anchor.column, message))
        for violation in rules.problems(obj):
            anchor = cluster.cluster.document.at(("spec",), "")
            message = (
                f"rendered {obj['kind']} {rendered.cluster} breaks a rule of {_whose(rendered)} CRD "
                f"at {format_path(violation.path) or '(root)'}: {violation.message} (template {rendered.template})"
            )
            problems.append(Diagnostic(anchor.file, anchor.line, anchor.column, message))
    return problems


def owner_of(rendered: RenderedObject, cluster: ResolvedCluster) -> TemplateSource:
    """What rendered the object, whose schemas it must match: its extension, else the provider."""
    if rendered.extension is None:
        return cluster.provider
    return next(a.extension for a in cluster.extensions if a.extension.name == rendered.extension)


def _whose(rendered: RenderedObject) -> str:
    return "the operator's" if rendered.extension is None else f"extension {rendered.extension}'s"
