"""Regenerate ``schemas/Instance.json`` from the era C CRD vendored under
``crds/openeverest/2.0.0-dev.20260514/`` (``python -m everest_render.authoring.instance_schema``;
a test regenerates it and compares). Development time only: the render path reads the
generated file through ``everest_render.eras.schema``.
"""

from __future__ import annotations

import json
import sys

import yaml

from everest_render.authoring.crd_schema import strict_schema_from_crd

CRD_FILE = "crds/openeverest/2.0.0-dev.20260514/instances.core.openeverest.io.yaml"
SCHEMA_FILE = "everest_render/schemas/Instance.json"


def schema_text(crd_text: str) -> str:
    """The text of Instance.json for the CRD text ``crd_text`` (compact, keys sorted)."""
    crd = yaml.load(crd_text, Loader=yaml.CSafeLoader)
    return json.dumps(strict_schema_from_crd(crd, "v1alpha1"), sort_keys=True, separators=(",", ":")) + "\n"


def main(argv: list[str]) -> int:
    """Rewrite (or, with --check, compare) Instance.json from the vendored CRD; run from the project root."""
    with open(CRD_FILE, encoding="utf-8") as crd_file:
        expected = schema_text(crd_file.read())
    try:
        with open(SCHEMA_FILE, encoding="utf-8") as schema_file:
            current = schema_file.read()
    except FileNotFoundError:
        current = ""
    if current == expected:
        return 0
    if "--check" in argv:
        print(f"stale: {SCHEMA_FILE} (run python -m everest_render.authoring.instance_schema)", file=sys.stderr)
        return 1
    with open(SCHEMA_FILE, "w", encoding="utf-8") as schema_file:
        schema_file.write(expected)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
