"""The providers' compact schemas are exactly what the vendored upstream CRDs generate."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
from vendor_crd import expected_schemas

from everest_render.crd_schema import strict_schema_from_crd

SCHEMAS = list(expected_schemas())


@pytest.mark.parametrize("target,text", SCHEMAS, ids=[str(t.relative_to(PROJECT_ROOT)) for t, _ in SCHEMAS])
def test_committed_schema_is_generated_from_the_vendored_crd(target, text):
    assert target.read_text() == text, "stale: run `make schemas`"


def test_strict_schema_closes_objects_and_drops_status():
    crd = {
        "metadata": {"name": "things.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Thing"},
            "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "description": "x", "properties": {
                        "size": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {"type": "string"}}},
                        "maybe": {"type": "string", "nullable": True},
                    }},
                    "status": {"type": "object"},
                },
            }}}],
        },
    }
    schema = strict_schema_from_crd(crd, "v1")
    spec = schema["properties"]["spec"]
    assert "status" not in schema["properties"]
    assert spec["additionalProperties"] is False and "description" not in spec
    assert "additionalProperties" not in spec["properties"]["free"]
    assert spec["properties"]["maybe"]["type"] == ["string", "null"]
    assert schema["properties"]["kind"] == {"const": "Thing"}
    assert schema["properties"]["apiVersion"] == {"const": "example.com/v1"}


def test_nullable_objects_stay_closed_and_nullable_int_or_string_accepts_null():
    import jsonschema_rs

    crd = {
        "metadata": {"name": "things.example.com"},
        "spec": {"group": "example.com", "names": {"kind": "Thing"}, "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {
                "box": {"type": "object", "nullable": True, "properties": {"a": {"type": "string"}}},
                "size": {"x-kubernetes-int-or-string": True, "nullable": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            }}},
        }}}]},
    }
    validator = jsonschema_rs.validator_for(strict_schema_from_crd(crd, "v1"))
    base = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x", "namespace": "y"}}
    assert validator.is_valid({**base, "spec": {"box": None, "size": None}})
    assert validator.is_valid({**base, "spec": {"box": {"a": "b"}, "size": "1Gi"}})
    assert not validator.is_valid({**base, "spec": {"box": {"unknown": 1}}})
