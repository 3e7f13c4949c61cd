"""JSON Schema validation that reports every problem as a located Diagnostic.

Uses jsonschema-rs: validating a rendered object against a large CRD schema is ~100x faster
than the pure-Python `jsonschema`, which matters at 1,000 clusters (see docs/design.md).
Validators are compiled once per schema and reused.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from everest_render.diagnostics import ObjectPath, did_you_mean
from everest_render.jsonschema_library import jsonschema_rs  # without the email.utils it would load


@dataclass(frozen=True)
class Validator:
    """A compiled schema, and the schema itself: an unknown field's message names the field
    it may have meant, from the properties where the error points (``schema_path``)."""

    compiled: Any  # jsonschema_rs validators have no common public base class
    schema: dict[str, Any]

    def known_fields(self, schema_path: Sequence[str | int]) -> list[str]:
        node: Any = self.schema
        for part in schema_path[:-1]:  # the last part is "additionalProperties"
            if not isinstance(node, (dict, list)):
                return []
            node = node[int(part)] if isinstance(node, list) else node.get(part)
        properties = node.get("properties") if isinstance(node, dict) else None
        return list(properties) if isinstance(properties, dict) else []


def compile_schema(schema: dict[str, Any]) -> Validator:
    return Validator(jsonschema_rs.validator_for(schema), schema)


# The keywords `schema_for` knows how to narrow; a schema node holding any other keyword that
# applies subschemas is kept whole (still correct, only not smaller).
_NARROWED = frozenset({"properties", "additionalProperties", "items", "anyOf", "allOf", "oneOf", "not"})
_APPLICATORS = frozenset(
    {
        "patternProperties",
        "dependentSchemas",
        "prefixItems",
        "contains",
        "if",
        "then",
        "else",
        "$ref",
        "$defs",
        "definitions",
        "unevaluatedProperties",
        "unevaluatedItems",
        "propertyNames",
        "dependencies",
        "additionalItems",
    }
)


def schema_for(schema: Any, instances: Sequence[Any]) -> Any:
    """``schema`` narrowed to what validating ``instances`` can reach: the same verdicts and
    the same errors for each of them, from a schema compiled in a fraction of the time.

    A property none of the instances has is never looked at, so its subschema becomes ``{}``;
    its name stays (an unknown field is still told from a known one, and ``known_fields``
    still offers it). A CRD's schema describes every field the operator has (PSMDB: 400 KB);
    one cluster's object sets a few dozen, and compiling the whole is most of checking it.
    ``schema`` may be `deferred`: only the properties the instances have are then unmarshalled."""
    if isinstance(schema, bytes):
        schema = marshal.loads(schema)
    if not isinstance(schema, dict) or _APPLICATORS.intersection(schema):
        return schema
    narrowed = {key: value for key, value in schema.items() if key not in _NARROWED}
    mappings = [instance for instance in instances if isinstance(instance, dict)]
    properties = schema.get("properties")
    if isinstance(properties, dict):
        narrowed["properties"] = {
            name: schema_for(sub, [m[name] for m in mappings if name in m]) if any(name in m for m in mappings) else {}
            for name, sub in properties.items()
        }
    elif "properties" in schema:
        narrowed["properties"] = properties
    if "additionalProperties" in schema:
        known = properties if isinstance(properties, dict) else {}
        rest = [value for m in mappings for name, value in m.items() if name not in known]
        narrowed["additionalProperties"] = schema_for(schema["additionalProperties"], rest)
    if "items" in schema:
        elements = [element for instance in instances if isinstance(instance, list) for element in instance]
        narrowed["items"] = schema_for(schema["items"], elements)
    for keyword in ("anyOf", "allOf", "oneOf"):
        if keyword in schema:
            branches = schema[keyword]
            narrowed[keyword] = [schema_for(branch, instances) for branch in branches] if isinstance(branches, list) else branches
    if "not" in schema:
        narrowed["not"] = schema_for(schema["not"], instances)
    return narrowed


def deferred(schema: Any) -> Any:
    """``schema`` with the subschema of each property kept marshalled (bytes, which no JSON
    value is), wherever `schema_for` would narrow: narrowing it for one cluster's objects then
    unmarshals only the few properties they have, not all of a CRD's (prepared_builtins.py
    stores the built-ins' schemas so)."""
    if not isinstance(schema, dict) or _APPLICATORS.intersection(schema):
        return schema  # schema_for keeps such a node whole, so it stays as it is
    kept = dict(schema)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        kept["properties"] = {name: marshal.dumps(deferred(sub)) for name, sub in properties.items()}
    for keyword in ("additionalProperties", "items", "not"):
        if keyword in schema:
            kept[keyword] = deferred(schema[keyword])
    for keyword in ("anyOf", "allOf", "oneOf"):
        if isinstance(schema.get(keyword), list):
            kept[keyword] = [deferred(branch) for branch in schema[keyword]]
    return kept


class SchemaProblem:
    """One violation: the path it concerns, whether to point at the key, and a message."""

    __slots__ = ("at_key", "message", "missing", "path")

    def __init__(self, path: ObjectPath, message: str, *, at_key: bool = False, missing: bool = False) -> None:
        self.path = path
        self.message = message
        self.at_key = at_key
        self.missing = missing


def schema_problems(validator: Validator, instance: Any) -> Iterator[SchemaProblem]:
    """Every violation of ``instance``, worded for people and located by object path."""
    if validator.compiled.is_valid(instance):
        return
    for error in validator.compiled.iter_errors(instance):
        path: ObjectPath = tuple(error.instance_path)
        if type(error.kind).__name__ == "AdditionalProperties":
            # jsonschema-rs names all unknown fields of a mapping in one error: one line each.
            known = validator.known_fields(error.schema_path)
            for field in error.kind.unexpected:
                yield SchemaProblem((*path, field), f"unknown field {field!r}{did_you_mean(field, known)}", at_key=True)
        else:
            yield _describe(error, path)


def _describe(error: Any, path: ObjectPath) -> SchemaProblem:
    kind = error.kind
    name = type(kind).__name__
    if name == "Required":
        return SchemaProblem(path, f"missing required field {kind.property!r}", missing=True)
    if name == "Constant":
        return SchemaProblem(path, f"must be {kind.expected_value!r}, not {error.instance!r}")
    if name == "AnyOf" and _is_quantity(error):
        return SchemaProblem(path, f"{error.instance!r} is not a valid quantity (e.g. 500m, 2Gi, 4G)")
    if name == "Pattern" and path and path[-1] in ("name", "namespace"):
        return SchemaProblem(path, f"{error.instance!r} is not a valid name (RFC 1123: lower case letters, digits and '-')")
    return SchemaProblem(path, error.message)


def _is_quantity(error: Any) -> bool:
    return any(isinstance(p, str) and "quantity" in p for p in error.schema_path)
