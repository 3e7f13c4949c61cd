"""Regenerate the providers' strict schemas from the vendored upstream CRDs.

    python tools/vendor_crd.py            # every provider (what `make schemas` runs)

For each `spec.objects` entry of `providers/*/provider.yaml`, the CRD is found under
`crds/<operator.name>/<operator.version>/` by group and kind, and the entry's schema file is
written from it. `tests/test_vendored_schemas.py` fails when a committed schema is stale.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from everest_render.crd_schema import strict_schema_from_crd  # noqa: E402


def find_crd(operator: str, version: str, api_version: str, kind: str) -> dict[str, Any]:
    group = api_version.split("/")[0]
    for path in sorted((ROOT / "crds" / operator / version).glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind:
            return crd  # type: ignore[no-any-return]
    raise SystemExit(f"no CRD for {api_version} {kind} under crds/{operator}/{version}/")


def expected_schemas() -> Iterator[tuple[Path, str]]:
    """(schema file, its expected JSON text) for every object of every provider."""
    for provider_file in sorted((ROOT / "providers").glob("*/provider.yaml")):
        spec = yaml.safe_load(provider_file.read_text())["spec"]
        operator = spec["operator"]
        for entry in spec["objects"]:
            crd = find_crd(operator["name"], operator["version"], entry["apiVersion"], entry["kind"])
            schema = strict_schema_from_crd(crd, entry["apiVersion"].split("/")[1])
            yield provider_file.parent / entry["schema"], json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n"


def main() -> None:
    for target, text in expected_schemas():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
