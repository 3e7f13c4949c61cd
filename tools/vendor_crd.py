"""Regenerate a provider's compact CRD schema from a vendored upstream CRD.

    python tools/vendor_crd.py crds/<repo>/<version>/<plural>.<group>.yaml v1 providers/<name>/schemas/<kind>.json

Run by `make schemas`; `tests/test_vendored_schemas.py` fails when a committed schema is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from everest_render.crd_schema import strict_schema_from_crd  # noqa: E402


def main(crd_path: str, version: str, target: str) -> None:
    crd = yaml.load(Path(crd_path).read_text(), Loader=yaml.CSafeLoader)
    schema = strict_schema_from_crd(crd, version)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
