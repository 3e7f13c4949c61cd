"""The input schema of ``core.openeverest.io/v1alpha1`` ``Instance``: upstream's CRD, made strict, plus a short overlay.

Two package files, read once per process:

- ``schemas/Instance.json``: exactly what ``strict_schema_from_crd`` makes of the era C CRD
  vendored under ``crds/openeverest/2.0.0-dev.20260514/`` (a test regenerates it and compares;
  ``python -m everest_render.authoring.instance_schema`` rewrites it);
- ``schemas/Instance.overlay.yaml``: every hand-written difference, as an RFC 7386 JSON merge
  patch (mappings merge, ``null`` deletes a key, anything else replaces): the era D fields the
  CRD predates, and the fields the translator refuses with its own message rather than a
  generic "unknown field".

Unknown fields stay errors: every object the overlay adds is closed unless it is one whose
keys the translator checks itself (``parameters``, ``customSpec``).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

from everest_render.schema_check import Validator, compile_schema


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with ``patch`` applied as an RFC 7386 JSON merge patch (neither is changed)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result



@functools.cache
def instance_schema() -> dict[str, Any]:
    """The schema an Instance is checked against: Instance.json with the overlay applied."""
    # The package folder's own file (importlib.resources would load tempfile and shutil too).
    folder = Path(__file__).resolve().parent.parent / "schemas"
    generated = json.loads((folder / "Instance.json").read_text())
    overlay = yaml.load((folder / "Instance.overlay.yaml").read_text(), Loader=yaml.CSafeLoader)
    result: dict[str, Any] = merge_patch(generated, overlay)
    return result


@functools.cache
def instance_validator() -> Validator:
    return compile_schema(instance_schema())
