"""Which field of the DatabaseCluster led a template to fail.

A template error names a template line, which a user of a built-in provider cannot act on:
they need the field of their own cluster file that the template was reading. Rendering is
pure, so the failing template is rendered a second time, in a sandbox that records every
context value it reads; the last one read before the error is mapped back to the cluster
field it came from. Only failures pay for this: a successful render never traces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jinja2

from everest_render.render.limits import BoundedSandbox

ContextPath = tuple[str | int, ...]


class _TracedDict(dict[Any, Any]):
    """A context mapping that knows its path in the template context."""

    trace_path: ContextPath = ()


class _TracedList(list[Any]):
    """A context list that knows its path; iterating it yields traced items."""

    trace_path: ContextPath = ()
    tracer: _Tracer | None = None

    def __iter__(self) -> Iterator[Any]:
        for index, item in enumerate(list.__iter__(self)):
            yield self.tracer.wrap(item, (*self.trace_path, index)) if self.tracer else item


class _Tracer:
    def __init__(self) -> None:
        self.last: ContextPath = ()

    def wrap(self, value: Any, path: ContextPath) -> Any:
        if isinstance(value, Mapping) and not isinstance(value, _TracedDict):
            traced = _TracedDict(value)
            traced.trace_path = path
            return traced
        if isinstance(value, list | tuple) and not isinstance(value, _TracedList):
            items = _TracedList(value)
            items.trace_path, items.tracer = path, self
            return items
        return value

    def read(self, obj: Any, key: Any, result: Any) -> Any:
        path = getattr(obj, "trace_path", None)
        if path is None or not isinstance(key, str | int) or callable(result):
            return result  # a method (``.items``) is not a field
        self.last = (*path, key)
        return result if isinstance(result, jinja2.Undefined) else self.wrap(result, self.last)


class TracingSandbox(BoundedSandbox):
    """The render sandbox, recording the context path of every attribute and item read."""

    def __init__(self, tracer: _Tracer, **options: Any) -> None:
        super().__init__(**options)
        self.tracer = tracer

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self.tracer.read(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return self.tracer.read(obj, argument, super().getitem(obj, argument))


def last_read(
    make_env: Callable[[type[BoundedSandbox], dict[str, Any]], jinja2.Environment],
    template: str,
    context: Mapping[str, Any],
) -> ContextPath:
    """Render ``template`` again, tracing reads; the context path read last before it failed."""
    tracer = _Tracer()
    env = make_env(TracingSandbox, {"tracer": tracer})
    traced = {name: tracer.wrap(value, (name,)) for name, value in context.items()}
    try:
        env.get_template(template).render(traced)
    except Exception:  # the failure being explained; any other is as good a stopping point
        pass
    return tracer.last


# Context paths -> DatabaseCluster paths. The context is built in render.template_context;
# each entry maps a context prefix onto the spec field it was resolved from.
_CLUSTER_FIELDS: dict[str, ContextPath] = {
    "secretsName": ("spec", "secretsName"),
    "paused": ("spec", "paused"),
    "allowUnsafeConfiguration": ("spec", "allowUnsafeConfiguration"),
    "crVersion": ("spec", "crVersion"),
    "name": ("metadata", "name"),
    "namespace": ("metadata", "namespace"),
    "labels": ("metadata", "labels"),
}


def cluster_field(path: ContextPath) -> ContextPath:
    """The DatabaseCluster field a context value came from (the closest one that exists)."""
    head, rest = (path[0], path[1:]) if path else ("", ())
    if head == "components" and rest:
        name, fields = rest[0], rest[1:]
        if fields[:1] in (("version",), ("image",)):
            return ("spec", "components", "versions")
        return ("spec", "instances", name, *fields)
    if head == "cluster" and rest and isinstance(rest[0], str) and rest[0] in _CLUSTER_FIELDS:
        return (*_CLUSTER_FIELDS[rest[0]], *rest[1:])
    if head == "topology":
        return ("spec", "topology", *rest)
    if head in ("versions", "catalogue", "pinned"):
        return ("spec", "components", "versions", *rest[:1])
    if head == "backup":
        # schedules and storages are the enabled subset, re-indexed: point at the section
        return ("spec", "backup", *rest[:1]) if rest[:1] in (("pathPrefix",), ("pitr",)) else ("spec", "backup")
    if head == "monitoring":
        return ("spec", "instances", "monitoring", "monitoringConfig")
    return ("spec",)
