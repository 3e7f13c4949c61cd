"""Write each provider's strict schemas from the CRDs vendored beside it (`make schemas`).

    python generate_schemas.py           # (re)write providers/*/schemas/*.json
    python generate_schemas.py --check   # exit 1, naming the stale files, if any differs

For every `spec.objects` entry of `providers/*/provider.yaml` in this repository, the CRD is
found under `crds/<operator.name>/<operator.version>/` by group and kind, and the entry's
schema file is generated from it with everest-render's own generator
(`everest_render.crd_schema.strict_schema_from_crd`), exactly as the built-in providers' are.
Needs only an installed everest-render (and PyYAML, which it depends on).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from everest_render.crd_schema import strict_schema_from_crd

HERE = Path(__file__).resolve().parent


def find_crd(root: Path, operator: dict[str, str], api_version: str, kind: str) -> dict[str, Any]:
    folder = root / "crds" / operator["name"] / operator["version"]
    group = api_version.split("/")[0]
    for path in sorted(folder.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind:
            return crd  # type: ignore[no-any-return]
    raise SystemExit(f"no CRD for {api_version} {kind} under {folder.relative_to(root)}/")


def expected_schemas(root: Path = HERE) -> Iterator[tuple[Path, str]]:
    """(schema file, its expected text) for every object of every provider under ``root``."""
    for provider_file in sorted((root / "providers").glob("*/provider.yaml")):
        spec = yaml.safe_load(provider_file.read_text())["spec"]
        for entry in spec["objects"]:
            crd = find_crd(root, spec["operator"], entry["apiVersion"], entry["kind"])
            schema = strict_schema_from_crd(crd, entry["apiVersion"].split("/")[1])
            yield provider_file.parent / entry["schema"], json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for target, text in expected_schemas():
        if "--check" in argv:
            if not target.is_file() or target.read_text() != text:
                stale.append(target.relative_to(HERE).as_posix())
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"wrote {target.relative_to(HERE).as_posix()}")
    for path in stale:
        print(f"stale: {path} (run `make schemas`)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
