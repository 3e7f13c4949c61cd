"""Stage 4, render: ResolvedCluster -> native objects, by the provider's templates.

Templates are Jinja text rendered in an immutable sandbox with undefined variables as
errors, then parsed back as YAML. The template sees only the documented context
(render/context.py, docs/providers.md); it cannot read files, the clock or the environment.
Errors name the template file and line.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jinja2
import yaml
from jinja2.environment import TemplateExpression

from everest_render.check.secrets import masked_line
from everest_render.diagnostics import Diagnostic, format_path, parse_path
from everest_render.load.documents import Refused, compose_stream, node_value
from everest_render.load.line_reader import read_rendered
from everest_render.load.text import text_problems
from everest_render.model import ObjectRef, Provider, RenderedObject, ResolvedCluster, TemplateSource
from everest_render.render import prepared
from everest_render.render.context import TemplateContext, template_context
from everest_render.render.functions import FILTERS, GLOBALS, TemplateFailure
from everest_render.render.limits import BoundedSandbox, render_bounded
from everest_render.render.tracing import cluster_field, last_read


class _ProviderLoader(jinja2.BaseLoader):
    """Serves the provider folder's templates from memory, named by their repository path."""

    def __init__(self, provider: TemplateSource) -> None:
        self.templates = provider.assets.templates
        self.folder = provider.folder

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        if template not in self.templates:
            raise jinja2.TemplateNotFound(template)
        return self.templates[template], f"{self.folder}/{template}", lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self.templates)


def sandbox(
    provider: TemplateSource, kind: type[BoundedSandbox] = BoundedSandbox, options: Mapping[str, Any] | None = None
) -> BoundedSandbox:
    """The environment a provider's templates run in (render, the load-time checks, explain)."""
    # The templates are the provider's, in memory and never changed: each loaded once and then
    # looked up in a plain dict (Jinja's default, an LRU cache with a lock, asking each time
    # whether the template is up to date, was a visible part of every `{% import %}`).
    settings: dict[str, Any] = {"cache_size": -1, "auto_reload": False, **(options or {})}
    env = kind(
        loader=_ProviderLoader(provider),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        **settings,
    )
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    env.bound_helpers()
    if provider.builtin and kind is BoundedSandbox and not options:
        env.bytecode_cache = prepared.prepared_for(env)  # compiled at build time (render/prepared.py)
    return env


class TemplateRenderer:
    """What renders a folder's templates for a cluster and reads their output back: a provider's
    or an extension's (``label`` names it in messages, e.g. ``provider <name>``)."""

    def __init__(self, source: TemplateSource, label: str, kinds: set[tuple[str, str]]) -> None:
        self.source = source
        self.label = label
        self.kinds = kinds
        self.env: BoundedSandbox = sandbox(source, BoundedSandbox, {})

    def _environment(self, kind: type[BoundedSandbox], options: dict[str, Any]) -> BoundedSandbox:
        return sandbox(self.source, kind, options)

    def _render_text(
        self, resolved: ResolvedCluster, name: str, template: jinja2.Template, context: Mapping[str, Any]
    ) -> tuple[str | None, Diagnostic | None]:
        """One template's text for one cluster, or the located problem that stopped it."""
        try:
            return render_bounded(template, context, self.env.budget), None
        except TemplateFailure as refusal:
            return None, self._refusal(resolved, name, context, refusal)
        except Exception as error:
            return None, self._template_error(resolved, name, context, error)

    def _parse_output(self, resolved: ResolvedCluster, name: str, text: str) -> tuple[list[RenderedObject], list[Diagnostic]]:
        where = f"{self.source.folder}/{name}"
        characters = text_problems(text, where)
        if characters:
            bad = characters[0]
            message = f"rendering {resolved.ref} gave output that is not clean text: {bad.message} (output line {bad.line})"
            return [], [self._at_cluster(resolved, where, message)]
        documents = read_rendered(text)  # the YAML templates write, quickly; else libyaml
        if documents is None:
            documents, problem = self._read_by_libyaml(resolved, where, text)
            if problem is not None:
                return [], [problem]
        objects, problems = [], []
        for document in documents:
            identity = (document.get("apiVersion"), document.get("kind")) if isinstance(document, dict) else None
            # Only strings can name a kind (a mapping here would not even compare: fuzzing found it).
            if identity is not None and not all(isinstance(part, str) for part in identity):
                identity = None
            if identity not in self.kinds:
                known = ", ".join(f"{a} {k}" for a, k in sorted(self.kinds))
                problems.append(
                    Diagnostic(where, 1, 1, f"rendering {resolved.ref} produced {identity!r}, which spec.objects does not list ({known})")
                )
                continue
            if not isinstance(document.get("metadata"), dict):
                # Post-processing adds labels and the namespace there (fuzzing found a string).
                message = f"rendering {resolved.ref} produced a {identity[1]} without a metadata mapping"
                problems.append(self._at_cluster(resolved, where, message))
                continue
            objects.append(RenderedObject(document, resolved.ref, where))
        return objects, problems

    def _read_by_libyaml(self, resolved: ResolvedCluster, where: str, text: str) -> tuple[list[Any], Diagnostic | None]:
        """The documents of a template's output as libyaml reads them, or what is wrong with it."""
        try:
            documents = []
            for node in compose_stream(text):
                try:
                    documents.append(node_value(node))
                except Refused as refused:
                    line = node.start_mark.line + 1
                    message = f"rendering {resolved.ref} gave output the model cannot hold: {refused} (output document at line {line})"
                    return [], self._at_cluster(resolved, where, message)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark
            line = mark.line + 1 if mark else 1
            quoted = text.splitlines()[line - 1] if mark and line <= len(text.splitlines()) else ""
            quoted = masked_line(quoted.strip(), in_secret="Secret" in text)
            message = f"rendering {resolved.ref} gave invalid YAML at output line {line} ({error.problem}): {quoted!r}"
            return [], self._at_cluster(resolved, where, message)
        except yaml.YAMLError as error:  # libyaml's reader errors carry no mark
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return [], self._at_cluster(resolved, where, f"rendering {resolved.ref} gave invalid YAML: {first}")
        return documents, None

    def _at_cluster(self, resolved: ResolvedCluster, where: str, message: str) -> Diagnostic:
        """A problem of a template's output: at the template, naming the cluster's file:line."""
        cluster = resolved.cluster.document.at((), "")
        return Diagnostic(where, 1, 1, f"{message}; cluster at {cluster.file}:{cluster.line}")

    def _refusal(self, resolved: ResolvedCluster, name: str, context: Mapping[str, Any], refusal: TemplateFailure) -> Diagnostic:
        frames = self._frames(refusal)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else f"{self.source.folder}/{name}"
        path = parse_path(refusal.at) if refusal.at else self._field_read_last(name, context)
        return resolved.cluster.document.at(path, f"{self.label}: {refusal} ({where})")

    def _template_error(self, resolved: ResolvedCluster, name: str, context: Mapping[str, Any], error: Exception) -> Diagnostic:
        """A template that raised: at the cluster field it was reading, for a built-in provider
        (its user cannot edit the template); at the template line for the repository's own,
        naming the cluster field too. Either way both places are in the message."""
        frames = self._frames(error)
        if frames:
            innermost = frames[-1]
            file, line = innermost.filename, innermost.lineno or 1
            chain = _chain(frames[:-1])
        else:
            file, line, chain = f"{self.source.folder}/{name}", 1, ""
        message = f"{type(error).__name__}: {error}" if not isinstance(error, jinja2.UndefinedError) else str(error)
        document = resolved.cluster.document
        path = self._field_read_last(name, context)
        if self.source.builtin:
            where = f"{file}:{line}{chain}"
            text = f"{self.label} failed on this field: {message} (in {where}; if the cluster is valid, report it)"
            return document.at(path, text)
        at = document.at(path, "")
        field = f" (at {format_path(at.path)})" if at.path else ""
        cluster = f"cluster {at.file}:{at.line}:{at.column}{field}"
        return Diagnostic(file, line, 1, f"while rendering {resolved.ref}: {message}{chain}; {cluster}")

    def _field_read_last(self, name: str, context: Mapping[str, Any]) -> tuple[str | int, ...]:
        return cluster_field(last_read(self._environment, name, context))

    def _frames(self, error: BaseException) -> list[traceback.FrameSummary]:
        """The traceback frames in this provider's templates (Jinja maps them to template lines)."""
        return [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith(self.source.folder + "/")]



class ProviderRenderer(TemplateRenderer):
    """One provider's compiled templates; build once per run, render many clusters."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(provider, f"provider {provider.name}", {(o.api_version, o.kind) for o in provider.objects})
        self.provider = provider
        env = self.env
        self.templates: dict[str, jinja2.Template] = {}
        self.problems: list[Diagnostic] = []
        self.checks: list[tuple[int, Callable[..., Any], jinja2.Template]] = []
        self._expressions: dict[str, Callable[..., Any]] = {}
        for index, check in enumerate(provider.checks):
            try:
                # From the code compiled at build time, for a built-in's (render/prepared.py).
                self.checks.append((index, prepared.compile_expression(env, check["require"]), prepared.from_string(env, check["message"])))
            except jinja2.TemplateSyntaxError as error:
                self.problems.append(provider.document.at(("spec", "checks", index), f"check syntax error: {error.message}"))
        for name in provider.templates:
            try:
                self.templates[name] = env.get_template(name)
            except jinja2.TemplateSyntaxError as error:
                self.problems.append(
                    Diagnostic(f"{provider.folder}/{name}", error.lineno or 1, 1, f"template syntax error: {error.message}")
                )

    def render(self, resolved: ResolvedCluster, context: Mapping[str, Any] | None = None) -> tuple[list[RenderedObject], list[Diagnostic]]:
        """The cluster's objects (``context``: its template context, when the caller made it)."""
        context = template_context(resolved) if context is None else context
        problems = self._broken_rules(resolved, context)
        if problems:
            return [], problems  # the templates may assume what the rules guarantee
        objects: list[RenderedObject] = []
        for name, template in self.templates.items():
            text, problem = self._render_text(resolved, name, template, context)
            if text is None:
                problems.extend([problem] if problem is not None else [])
                continue
            found, parse_problems = self._parse_output(resolved, name, text)
            objects.extend(found)
            problems.extend(parse_problems)
        return objects, problems

    def _broken_rules(self, resolved: ResolvedCluster, context: Mapping[str, Any]) -> list[Diagnostic]:
        """The provider's checks this cluster breaks, each at the cluster field it names."""
        broken = []
        where = self.provider.document.source.path
        scope: jinja2.runtime.Context | None = None  # the checks' Jinja context, made for the first
        for index, require, message in self.checks:
            check = self.provider.checks[index]
            self.env.budget.reset()
            try:
                if type(require) is TemplateExpression:
                    if scope is None:
                        scope = require._template.new_context(dict(context))
                    holds = bool(_evaluated(require, scope))
                else:
                    holds = bool(require(**context))
                text = "" if holds else message.render(context)
            except Exception as error:  # a broken check is the provider's error; say which
                holds, text = False, f"check spec.checks[{index}] failed: {type(error).__name__}: {error}"
            if not holds:
                line = self.provider.document.at(("spec", "checks", index), "").line
                problem = f"provider {self.provider.name}: {text} ({where}:{line})"
                broken.append(resolved.cluster.document.at(parse_path(check["at"]), problem))
        return broken

    def required_secrets(self, resolved: ResolvedCluster, context: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The Secrets this cluster needs (spec.secrets of the provider), evaluated for it
        (``context``: its template context, when the caller has made it already)."""
        context = template_context(resolved) if context is None else context
        # Every expression evaluated in one Jinja context for the cluster (as `_broken_rules`
        # does), made for the first: not a new one, with a copy of the template context, each.
        scope: jinja2.runtime.Context | None = None

        def value(source: str, **item: Any) -> Any:
            nonlocal scope
            expression = self._expression(source)
            if type(expression) is not TemplateExpression:
                return expression(**{**context, **item})
            if scope is None:
                scope = expression._template.new_context(dict(context))
            scope.vars.update(item)  # a forEach entry's ``item``, for its name only
            try:
                return _evaluated(expression, scope)
            finally:
                for name in item:
                    scope.vars.pop(name, None)

        needed: list[dict[str, Any]] = []
        for entry in self.provider.secrets:
            self.env.budget.reset()
            try:
                if "when" in entry and not value(entry["when"]):
                    continue
                items = value(entry["forEach"]) if "forEach" in entry else None
                items = [None] if items is None else list(items)
                names = [str(value(entry["name"], item=item)) for item in items]
            except Exception as error:
                # A syntax error is reported when the provider loads; what fails only for this
                # cluster is shown in place of the name rather than ending the command.
                names = [f"(cannot evaluate spec.secrets name {entry['name']!r}: {type(error).__name__}: {error})"]
            for name in names:
                needed.append(
                    {
                        "name": name,
                        "keys": list(entry["keys"]),
                        "createdBy": entry["createdBy"],
                        "operatorGenerates": list(entry.get("operatorGenerates", [])),
                        "operatorWrites": list(entry.get("operatorWrites", [])),
                        "description": entry.get("description", ""),
                    }
                )
        return sorted(needed, key=lambda s: s["name"])

    def _expression(self, source: str) -> Callable[..., Any]:
        """A spec.secrets expression, compiled once for every cluster this renderer serves (an
        extension asks for each cluster's Secrets: Jinja's own compile_expression keeps none)."""
        compiled = self._expressions.get(source)
        if compiled is None:
            compiled = self._expressions[source] = prepared.compile_expression(self.env, source)
        return compiled

def _evaluated(expression: TemplateExpression, scope: jinja2.runtime.Context) -> Any:
    """What calling ``expression`` with the variables of ``scope`` gives (`TemplateExpression`'s
    call, step by step), in ``scope`` itself rather than a context made anew for each of a
    cluster's checks: an expression sets only its ``result`` there, taken out again after."""
    template = expression._template
    try:
        for _ in template.root_render_func(scope):
            pass
        value = scope.vars["result"]
    finally:
        scope.vars.pop("result", None)
        scope.exported_vars.discard("result")
    return None if expression._undefined_to_none and isinstance(value, jinja2.Undefined) else value


def _chain(frames: list[traceback.FrameSummary]) -> str:
    """``, included from a.j2:3, included from b.j2:9``, innermost first; a frame repeated
    (a macro calling itself) is written once with its count."""
    parts: list[tuple[str, int]] = []
    for frame in reversed(frames):
        where = f"{frame.filename}:{frame.lineno}"
        if parts and parts[-1][0] == where:
            parts[-1] = (where, parts[-1][1] + 1)
        else:
            parts.append((where, 1))
    return "".join(f", included from {where}" + (f" ({count} times)" if count > 1 else "") for where, count in parts)


def render_clusters(
    clusters: Iterable[ResolvedCluster],
    renderers: dict[int, ProviderRenderer] | None = None,
    contexts: dict[ObjectRef, TemplateContext] | None = None,
) -> tuple[list[RenderedObject], list[Diagnostic]]:
    """Render every cluster with its provider, compiling each provider's templates once
    (``renderers``: providers compiled by an earlier call, reused and added to). A provider's
    own problems are reported by every call that uses it. ``contexts``: where to keep the
    template context of each cluster that applies an extension, which reads it next
    (extend/render.py)."""
    renderers = renderers if renderers is not None else {}
    reported: set[int] = set()
    objects: list[RenderedObject] = []
    problems: list[Diagnostic] = []
    for resolved in clusters:
        key = id(resolved.provider)
        if key not in renderers:
            renderers[key] = ProviderRenderer(resolved.provider)
        if key not in reported:
            reported.add(key)
            problems.extend(renderers[key].problems)
        context = template_context(resolved)
        if contexts is not None and resolved.extensions:
            contexts[resolved.ref] = context
        found, found_problems = renderers[key].render(resolved, context)
        objects.extend(found)
        problems.extend(found_problems)
    return objects, problems
