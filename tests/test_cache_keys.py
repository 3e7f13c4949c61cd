"""A cluster's cache key covers everything its render depends on (cache/entries.py): each
dependency edited alone makes the cluster's entry miss, and an edit elsewhere does not.

The key serialises what a resolved cluster is resolved from, not its whole resolved form: every
field of ResolvedCluster is named either as keyed or as derived, and the property test of
test_cache.py checks that equal keys always held equal resolved clusters.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import pytest

from everest_render.cache.entries import RESOLVED_BY, RESOLVED_FROM, KeyMaker
from everest_render.extend.select import select_extensions
from everest_render.model import ResolvedCluster
from everest_render.resolve.cluster import resolve_cluster
from everest_render.testing import Repo
from tests.conftest import mongodb
from tests.test_extensions import enable, extension
from tests.test_templates import CONFIGMAP_SCHEMA, GOOD_TEMPLATE, write_toy_provider

SETTINGS = "apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\nspec:\n"
WATCHED = "  instances:\n    engine: {}\n    backupAgent: {}\n    monitoring: {monitoringConfig: pmm}\n" + (
    "  backup:\n    schedules:\n      - {name: daily, schedule: '0 1 * * *', backupStorage: s3}\n"
)
STORAGES = """\
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: s3, namespace: shop}
spec: {type: s3, bucket: shop-backups, region: eu-central-1, credentialsSecretName: s3-keys}
"""
SPARE = """\
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: unused, namespace: shop}
spec: {type: s3, bucket: spare, region: eu-central-1, credentialsSecretName: s3-keys}
"""
MONITORING = """\
apiVersion: everest.percona.com/v1alpha1
kind: MonitoringConfig
metadata: {name: pmm, namespace: shop}
spec: {type: pmm, credentialsSecretName: pmm-token, pmm: {url: 'https://pmm.example.com'}}
"""
PXC = (
    "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\nmetadata: {name: sales, namespace: shop}\n"
    "spec:\n  provider: percona-xtradb-cluster\n  instances:\n    engine: {}\n    proxy: {}\n"
)
TOY = (
    "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\nmetadata: {name: db, namespace: toys}\n"
    "spec: {provider: toy, instances: {engine: {replicas: 1}}}\n"
)


@pytest.fixture
def world(repo: Repo) -> Repo:
    """A toy provider of the repository's own, a PSMDB cluster with backups and monitoring, a
    PXC cluster, an extension, and a cluster of another namespace that no edit below touches."""
    write_toy_provider(repo, GOOD_TEMPLATE)
    repo.write("clusters/toys/db.yaml", TOY)
    repo.write("clusters/shop/orders.yaml", mongodb(body=WATCHED))
    repo.write("clusters/shop/storages.yaml", STORAGES)
    repo.write("clusters/shop/spare.yaml", SPARE)  # a file of its own: a document is keyed by its file's bytes
    repo.write("clusters/shop/monitoring.yaml", MONITORING)
    repo.write("clusters/shop/sales.yaml", PXC)
    repo.write("clusters/far/quiet.yaml", mongodb("quiet", "far"))
    extension(repo)
    enable(repo, "pdb: {}")
    return repo


def keys(repo: Repo, identity: bytes = b"renderer") -> dict[str, str | None]:
    maker = KeyMaker(identity)
    return {str(cluster.ref): maker.cluster_key(cluster) for cluster in repo.resolved()}


def edit(repo: Repo, path: str, old: str, new: str) -> None:
    text = (repo.root / path).read_text()
    assert old in text, (path, old)
    repo.write(path, text.replace(old, new, 1))


def settings(repo: Repo, extra: str) -> None:
    repo.write("everest-render.yaml", SETTINGS + "  extensions:\n    pdb: {}\n" + extra)


EVERY = {"toys/db", "shop/orders", "shop/sales", "far/quiet"}  # the settings file is in every key whole
# Each edit, and the clusters whose entries must miss after it (the others must not).
EDITS: dict[str, tuple[Callable[[Repo], None], set[str]]] = {
    "its document's data": (lambda r: edit(r, "clusters/toys/db.yaml", "replicas: 1", "replicas: 2"), {"toys/db"}),
    "its document's bytes alone (a comment)": (
        lambda r: edit(r, "clusters/toys/db.yaml", "apiVersion", "# moved\napiVersion"),
        {"toys/db"},
    ),
    "its file's name": (lambda r: (r.write("clusters/toys/db2.yaml", TOY), (r.root / "clusters/toys/db.yaml").unlink()), {"toys/db"}),
    "the definition": (lambda r: edit(r, "definitions/toy.yaml", "db:1.0", "db:1.1"), {"toys/db"}),
    "the provider's template": (lambda r: edit(r, "providers/toy/configmap.yaml.j2", "data:\n", "data:\n  extra: 'x'\n"), {"toys/db"}),
    "the provider's schema": (
        lambda r: r.write("providers/toy/configmap.json", __import__("json").dumps({**CONFIGMAP_SCHEMA, "description": "edited"})),
        {"toys/db"},
    ),
    "the provider's provider.yaml": (lambda r: edit(r, "providers/toy/provider.yaml", "version: 2.0.0", "version: 2.0.1"), {"toys/db"}),
    "a BackupStorage it uses": (lambda r: edit(r, "clusters/shop/storages.yaml", "shop-backups", "shop-archive"), {"shop/orders"}),
    "the MonitoringConfig it uses": (
        lambda r: edit(r, "clusters/shop/monitoring.yaml", "pmm.example.com", "pmm2.example.com"),
        {"shop/orders"},
    ),
    "the settings' GitOps defaults": (
        lambda r: settings(r, "  gitops: {annotations: {argocd.argoproj.io/sync-wave: '2'}}\n"),
        EVERY,
    ),
    "the settings' catalogue additions": (
        lambda r: settings(
            r, "  catalogue:\n    percona-server-mongodb:\n      mongod: [{version: 9.9.9, image: 'percona/mongod:9.9.9'}]\n"
        ),
        EVERY,
    ),
    "the settings' operator release": (lambda r: settings(r, "  operatorReleases:\n    percona-xtradb-cluster: 1.20.0\n"), EVERY),
    "an extension's settings": (lambda r: enable(r, "pdb: {settings: {maxUnavailable: 2}}"), EVERY),
    "an extension's template": (
        lambda r: edit(r, "extensions/pdb/object.yaml.j2", "spec:", "spec:\n  minAvailable: 0"),
        EVERY,
    ),
    "an extension turned off for it": (
        lambda r: edit(
            r, "clusters/toys/db.yaml", "namespace: toys}", "namespace: toys, annotations: {everest-render/skip-extensions: pdb}}"
        ),
        {"toys/db"},
    ),
    "a BackupStorage it does not use": (lambda r: edit(r, "clusters/shop/spare.yaml", "bucket: spare", "bucket: other"), set()),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_each_dependency_edited_alone_makes_only_its_clusters_miss(world, what):
    before = keys(world)
    assert None not in before.values() and len(set(before.values())) == len(before)
    change, missing = EDITS[what]
    change(world)
    after = keys(world)
    assert after.keys() == before.keys()
    assert {ref for ref in before if after[ref] != before[ref]} == missing


def test_another_renderer_makes_every_entry_miss(world):
    assert set(keys(world, b"renderer").values()).isdisjoint(keys(world, b"another renderer").values())


def test_every_field_of_a_resolved_cluster_is_keyed_or_derived():
    # A new field must be put in one: keyed as it is, or derived by resolve from the keyed ones.
    assert not set(RESOLVED_FROM) & set(RESOLVED_BY)
    assert {*RESOLVED_FROM, *RESOLVED_BY} == {field.name for field in dataclasses.fields(ResolvedCluster)}


def test_resolve_reads_only_what_the_key_covers():
    # The key stands on what resolve_cluster and select_extensions are given (cache/entries.py):
    # a new input to either must be looked at there before it is added here.
    assert list(inspect.signature(resolve_cluster).parameters) == ["cluster", "catalog", "references", "settings"]
    assert list(inspect.signature(select_extensions).parameters) == ["clusters", "applied", "known"]
