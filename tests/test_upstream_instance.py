"""Upstream OpenEverest Instances (core.openeverest.io/v1alpha1) as input: one behaviour per test.

An Instance is translated into the DatabaseCluster it means; the strongest check is that it
renders exactly the objects of that DatabaseCluster. Errors are asserted as whole lines.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from everest_render.upstream_schema import CRD_FILE, instance_schema, merge_patch, schema_text
from tests.conftest import PROJECT_ROOT, Repo

STORAGES = """
    apiVersion: everest.percona.com/v1alpha1
    kind: BackupStorage
    metadata: {name: s3-main, namespace: shop}
    spec: {type: s3, bucket: backups, region: eu-west-1, credentialsSecretName: s3-main-credentials}
    ---
    apiVersion: everest.percona.com/v1alpha1
    kind: BackupStorage
    metadata: {name: s3-copy, namespace: shop}
    spec: {type: s3, bucket: copies, region: eu-west-1, credentialsSecretName: s3-copy-credentials}
    ---
    apiVersion: everest.percona.com/v1alpha1
    kind: MonitoringConfig
    metadata: {name: pmm, namespace: shop}
    spec: {type: pmm, credentialsSecretName: pmm-token, pmm: {url: "https://pmm.example.com"}}
"""


def instance(spec: str, *, name: str = "orders", namespace: str = "shop", metadata: str = "") -> str:
    """An Instance; ``spec`` is the body of ``spec`` (written unindented)."""
    head = f"apiVersion: core.openeverest.io/v1alpha1\nkind: Instance\nmetadata:\n  name: {name}\n  namespace: {namespace}\n{metadata}spec:\n"
    return head + textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ") + "\n"


def cluster(spec: str, *, name: str = "orders", namespace: str = "shop", metadata: str = "") -> str:
    """The DatabaseCluster with the same metadata; ``spec`` as for ``instance``."""
    return instance(spec, name=name, namespace=namespace, metadata=metadata).replace(
        "core.openeverest.io/v1alpha1\nkind: Instance", "everest.percona.com/v2alpha1\nkind: DatabaseCluster", 1
    )


def rendered(root: Path, text: str) -> list[dict]:
    """The objects a repository holding ``text`` and STORAGES renders (it must render cleanly)."""
    repo = Repo(root)
    repo.write("clusters/shop/storages.yaml", STORAGES)
    repo.write("clusters/shop/orders.yaml", text)
    return repo.objects()


def assert_renders_as(tmp_path: Path, instance_text: str, cluster_text: str) -> None:
    objects = rendered(tmp_path / "instance", instance_text)
    assert objects and objects == rendered(tmp_path / "cluster", cluster_text)


# --- the schema ------------------------------------------------------------------------------


def test_instance_json_is_what_the_vendored_crd_generates():
    text = (PROJECT_ROOT / CRD_FILE).read_text(encoding="utf-8")
    assert (PROJECT_ROOT / "everest_render/schemas/Instance.json").read_text() == schema_text(text), "stale: run `make schemas`"


def test_merge_patch_merges_mappings_deletes_nulls_and_replaces_the_rest():
    target = {"a": {"b": 1, "c": 2}, "required": ["x", "y"], "keep": True}
    patch = {"a": {"b": None, "d": 3}, "required": ["x"], "new": {"e": None, "f": 4}}
    assert merge_patch(target, patch) == {"a": {"c": 2, "d": 3}, "required": ["x"], "keep": True, "new": {"f": 4}}
    assert target == {"a": {"b": 1, "c": 2}, "required": ["x", "y"], "keep": True}


def test_the_overlay_adds_era_d_and_keeps_every_object_closed():
    spec = instance_schema()["properties"]["spec"]
    component = spec["properties"]["components"]["additionalProperties"]
    assert {"providerRef", "parameters", "provider", "global"} <= spec["properties"].keys()
    assert {"service", "parameters", "affinity", "config", "customSpec"} <= component["properties"].keys()
    assert component["properties"]["service"]["additionalProperties"] is False
    assert "finalizers" not in instance_schema()["properties"]["metadata"]["properties"]
    assert spec["properties"]["backup"]["required"] == ["enabled"]
