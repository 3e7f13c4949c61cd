"""The package's shape: engines are data in their provider folders, never names in core code."""

from __future__ import annotations

import re

import yaml

from tests.conftest import PROJECT_ROOT

PROVIDER_FILES = sorted([*PROJECT_ROOT.glob("providers/*/provider.yaml"), *PROJECT_ROOT.glob("examples/*/providers/*/provider.yaml")])


def engine_words() -> set[str]:
    """Every provider's name, the names an Instance may call it by, and the kinds it renders."""
    words: set[str] = set()
    for path in PROVIDER_FILES:
        provider = yaml.safe_load(path.read_text())
        spec = provider["spec"]
        words |= {provider["metadata"]["name"], spec["databaseClusterDefinition"], spec["operator"]["name"]}
        words |= set(spec.get("instanceAliases", {}).get("names", []))
        words |= {entry["kind"] for entry in spec["objects"]}
    return words


def test_every_provider_is_seen_by_the_engine_name_check():
    assert len(PROVIDER_FILES) >= 4 and {"PerconaServerMongoDB", "Pooler", "psmdb"} <= engine_words()


def test_the_package_code_names_no_engine():
    # Adding an engine is a provider folder: no provider, alias or engine kind in core Python.
    pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(word)}(?![\w-])" for word in sorted(engine_words())))
    found = []
    for path in sorted((PROJECT_ROOT / "everest_render").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert found == []
