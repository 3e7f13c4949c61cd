"""Upstream OpenEverest v2 Instances, unchanged: each renders, or is refused with located,
documented reasons; where upstream's kuttl asserts describe the native object, the rendered one
matches the assert on every field, but for the differences listed here with their reasons.

The files are vendored under tests/fixtures/upstream-instances/ (SOURCES.md names each one's
repository, path and commit, and the inventory of every upstream Instance). All of them are
rendered in one repository, each in a namespace of its own, as kuttl runs each test in one:
an Instance that names no namespace gets one after its name, the only edit made (in memory), and
every other document of a file (kuttl's TestStep, an assert's native object) becomes comment
lines, so lines keep their numbers and a diagnostic is located in the upstream file itself.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from everest_render.eras.schema import merge_patch
from everest_render.testing import Repo
from tests.conftest import PROJECT_ROOT

UPSTREAM = PROJECT_ROOT / "tests/fixtures/upstream-instances"
FIXTURES = sorted(p.name for p in UPSTREAM.glob("*.yaml"))

# What a repository holds beside the Instances, as everest's kinds: the storages and the PMM
# server upstream's install steps create (backup.openeverest.io / monitoring.openeverest.io
# objects in the cluster there), with the same values, so the backup asserts can be compared.
STORAGES = {
    # test/integration/backup/datasource/00-install.yaml @ bc4e772
    "test-storage-s3": "{type: s3, bucket: test-backup-bucket, region: us-east-1, endpointURL: 'http://fake', forcePathStyle: true,"
    " verifyTLS: false, credentialsSecretName: backup-storage-credentials}",
    # test/e2e-cluster/datasource/backup/20-install.yaml @ a019ddf
    "minio-storage": "{type: s3, bucket: everest-operator, region: us-east-1, endpointURL: 'https://minio.minio.svc', forcePathStyle: true,"
    " verifyTLS: false, credentialsSecretName: minio-credentials}",
    # named only by Instances that are refused for their dataSource
    "seaweedfs-storage": "{type: s3, bucket: backups, region: us-east-1, credentialsSecretName: seaweedfs-credentials}",
    "bs-msp-1": "{type: s3, bucket: backups, region: us-east-1, credentialsSecretName: bs-msp-1-credentials}",
}
MONITORING = {
    # test/e2e-cluster/datasource/backup/20-install.yaml @ a019ddf
    "mc-pmm": "{type: pmm, credentialsSecretName: mc-pmm-secret, verifyTLS: false, pmm: {url: 'https://pmm-server.pmm.svc'}}",
}


def documents(text: str) -> list[tuple[range, dict[str, Any]]]:
    """Each YAML document of a file, with the (0-based) lines it spans."""
    lines = text.splitlines()
    starts = [0] + [i + 1 for i, line in enumerate(lines) if line == "---"]
    found = []
    for start, end in zip(starts, [*starts[1:], len(lines) + 1], strict=True):
        body = range(start, end - 1)
        found.append((body, yaml.safe_load("\n".join(lines[i] for i in body)) or {}))
    return found


def is_instance(document: Mapping[str, Any]) -> bool:
    # An Instance document with no spec asserts only the status a test waits for.
    return document.get("kind") == "Instance" and "spec" in document


@functools.cache
def parsed(name: str) -> tuple[tuple[range, dict[str, Any]], ...]:
    """A fixture's documents, read once (callers copy what they change)."""
    return tuple(documents((UPSTREAM / name).read_text()))


def instance_of(name: str) -> dict[str, Any] | None:
    found = [d for _, d in parsed(name) if is_instance(d)]
    assert len(found) <= 1, name  # one Instance a file: the locating below relies on it
    return copy.deepcopy(found[0]) if found else None


def namespace_of(name: str, instance: Mapping[str, Any]) -> str:
    return str(instance["metadata"].get("namespace") or Path(name).stem[:63].rstrip("-"))


@dataclass(frozen=True)
class Placed:
    """A fixture as the test repository holds it."""

    namespace: str
    text: str
    inserted: int | None  # the 1-based number of the line the test inserted, if any


def placed(name: str) -> Placed:
    lines = (UPSTREAM / name).read_text().splitlines()
    inserted = None
    namespace = ""
    for body, document in documents("\n".join(lines)):
        if not is_instance(document):
            for i in body:
                lines[i] = "#"
            continue
        namespace = namespace_of(name, document)
        if "namespace" not in document["metadata"]:
            inserted = next(i for i in body if lines[i].startswith("  name:")) + 2
    if inserted is not None:
        lines.insert(inserted - 1, f"  namespace: {namespace}")
    return Placed(namespace, "\n".join(lines) + "\n", inserted)


def references(instance: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """The BackupStorages and MonitoringConfigs an Instance names."""
    spec = instance.get("spec", {})
    storages = {s["storageRef"]["name"] for s in spec.get("backup", {}).get("storages", []) if "storageRef" in s}
    monitoring = spec.get("components", {}).get("monitoring", {})
    configs = {
        bag["monitoringConfigName"]
        for bag in (monitoring.get("parameters", {}), monitoring.get("customSpec", {}))
        if "monitoringConfigName" in bag
    }
    return storages, configs


def write_references(repo: Repo, namespace: str, instance: Mapping[str, Any]) -> None:
    storages, configs = references(instance)
    for kind, names, table in (("BackupStorage", storages, STORAGES), ("MonitoringConfig", configs, MONITORING)):
        for name in sorted(names):
            repo.write(
                f"clusters/{namespace}/_{kind}-{name}.yaml",
                f"apiVersion: everest.percona.com/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {table[name]}\n",
            )


def located_upstream(message: str, name: str, where: Placed) -> str:
    """A diagnostic of the repository copy, located in the upstream file itself."""
    prefix = f"clusters/{where.namespace}/{name}:"
    assert message.startswith(prefix), message
    line, rest = message[len(prefix) :].split(":", 1)
    number = int(line)
    if where.inserted is not None and number >= where.inserted:
        assert number != where.inserted, message  # never at the line the test added
        number -= 1
    return f"{name}:{number}:{rest}"


@dataclass
class Outcome:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)


# --- kuttl: the live Instance an assert describes ----------------------------------------------

# A kuttl or chainsaw step applies its Instance as a JSON merge patch onto the live one, so an
# update step may hold only what it changes. An assert whose own Instance document is partial in
# a way that does not render alone (a sharded Instance without its engine) is compared with the
# live Instance its suite's steps make: the complete 20-update-cluster step, then each patch.
# (The suite starts at 10-create-cluster, vendored at an older commit than the patches, whose
# topology.config 20-update-cluster's topology.parameters replaces.)
SHARDED_20 = "psmdb-sharded-20-update-cluster.yaml"
SHARDED_21 = (SHARDED_20, "psmdb-sharded-21-update-cluster-affinity.yaml")
SHARDED_22 = (*SHARDED_21, "psmdb-sharded-22-update-cluster-lb.yaml")
SHARDED_23 = (*SHARDED_22, "psmdb-sharded-23-update-cluster-cluster-ip.yaml")
LIVE = {
    "psmdb-sharded-22-assert.yaml": SHARDED_22,
    "psmdb-sharded-23-assert.yaml": SHARDED_23,
    "psmdb-sharded-24-assert.yaml": (*SHARDED_23, "psmdb-sharded-24-update-cluster-node-port.yaml"),
    # asserts holding no Instance of their own: the step they follow
    "psmdb-maintenance-10-assert.yaml": ("psmdb-maintenance-10-create-cluster.yaml",),
    "psmdb-e2e-datasource-backup-40-assert.yaml": ("psmdb-e2e-datasource-backup-30-create-source.yaml",),
    "psmdb-backup-datasource-11-assert.yaml": ("psmdb-backup-datasource-10-create-cluster.yaml",),
}


# The steps are vendored at the commits the index holds, some of which still write a field by
# its era C name: a step's name for a field replaces the other era's in the live Instance, as the
# steps of one commit would agree on it.
ERA_NAMES = ((("spec",), "provider", "providerRef"), (("spec", "topology"), "config", "parameters"))


def live_instance(steps: Sequence[str]) -> dict[str, Any]:
    live: dict[str, Any] = {}
    for step in steps:
        found = instance_of(step)
        assert found is not None, step
        for at, era_c, era_d in ERA_NAMES:
            written, held = found, live
            for key in at:
                written, held = written.get(key, {}), held.get(key, {})
            for name, other in ((era_c, era_d), (era_d, era_c)):
                if name in written:
                    held.pop(other, None)
        live = merge_patch(live, found)
    return live


def native_asserts(name: str) -> list[dict[str, Any]]:
    return [d for _, d in parsed(name) if str(d.get("apiVersion", "")).endswith(".percona.com/v1")]


ASSERTS = sorted(name for name in FIXTURES if native_asserts(name))


@dataclass(frozen=True)
class Entry:
    """One Instance of the test repository: a fixture's, or the live one an assert describes."""

    key: str  # the fixture's file name, or "live:<the assert's file name>"
    path: str  # in the repository
    text: str
    instance: Mapping[str, Any]
    placed: Placed | None = None  # a fixture's, to locate its diagnostics upstream

    def locate(self, message: str) -> str:
        return message if self.placed is None else located_upstream(message, self.key, self.placed)


def entries() -> list[Entry]:
    found = []
    for name in FIXTURES:
        instance = instance_of(name)
        if instance is not None:
            where = placed(name)
            found.append(Entry(name, f"clusters/{where.namespace}/{name}", where.text, instance, where))
    for name, steps in LIVE.items():
        live = live_instance(steps)
        namespace = ("live-" + Path(name).stem)[:63].rstrip("-")
        live["metadata"]["namespace"] = namespace
        found.append(Entry(f"live:{name}", f"clusters/{namespace}/live.yaml", yaml.safe_dump(live), live))
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every fixture, and the live Instance of every assert that needs one, rendered in one
    repository. An error stops a repository's later stages and its output, so the Instances
    that erred are left out and the rest rendered again, until a render has no error: each
    Instance gets what a repository of its own would report (a few renders, not one per file)."""
    left = entries()
    outcomes = {entry.key: Outcome() for entry in left}
    while True:
        repo = Repo(tmp_path_factory.mktemp("upstream"))
        for entry in left:
            repo.write(entry.path, entry.text)
            write_references(repo, entry.path.split("/")[1], entry.instance)
        result = repo.result()
        by_path = {entry.path: entry for entry in left}
        failed = set()
        for diagnostic in result.diagnostics:
            entry = by_path[diagnostic.file]  # nothing but the Instances is reported
            outcome = outcomes[entry.key]
            found = outcome.errors if diagnostic.is_error else outcome.warnings
            message = entry.locate(str(diagnostic))
            if message not in found:  # a warning is reported again in each round
                found.append(message)
            if diagnostic.is_error:
                failed.add(entry.key)
        if not failed:
            break
        left = [entry for entry in left if entry.key not in failed]
    by_cluster = {(e.instance["metadata"].get("namespace") or e.path.split("/")[1], e.instance["metadata"]["name"]): e.key for e in left}
    for obj in result.objects:
        metadata = obj.obj["metadata"]
        outcomes[by_cluster[(metadata["namespace"], metadata["labels"]["everest.percona.com/cluster"])]].objects.append(dict(obj.obj))
    return outcomes


# --- comparing a native object with a kuttl assert ----------------------------------------------

ABSENT = object()
Path_ = tuple[str | int, ...]


def assert_leaves(node: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    """(path, expected value) of every leaf of a kuttl assert: ``(a.b == null): true`` becomes
    (path + (a, b), ABSENT); an empty mapping asserts that the mapping is there."""
    if isinstance(node, dict) and node:
        found = []
        for key, value in node.items():
            if key.startswith("(") and key.endswith(" == null)") and value is True:
                found.append(((*path, *key[1 : -len(" == null)")].split(".")), ABSENT))
            else:
                found.extend(assert_leaves(value, (*path, key)))
        return found
    if isinstance(node, list):
        return [leaf for i, item in enumerate(node) for leaf in assert_leaves(item, (*path, i))]
    return [(path, node)]


def lookup(obj: Any, path: Path_) -> Any:
    for part in path:
        if isinstance(part, int):
            obj = obj[part] if isinstance(obj, list) and part < len(obj) else ABSENT
        else:
            obj = obj.get(part, ABSENT) if isinstance(obj, dict) else ABSENT
        if obj is ABSENT:
            return ABSENT
    return obj


def matches(expected: Any, got: Any) -> bool:
    if expected is ABSENT:
        return got is ABSENT
    if expected == {}:
        return isinstance(got, dict)
    return bool(got == expected)


def dotted(path: Path_) -> str:
    """spec.replsets[*].arbiter.size: list indexes are one pattern, as one rule covers them all."""
    return "".join("[*]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


def compared(name: str, outcome: Outcome) -> list[tuple[str, bool]]:
    """Every leaf of the assert's native objects, and whether the rendered object matches it."""
    leaves = []
    for expected in native_asserts(name):
        found = [o for o in outcome.objects if (o["kind"], o["metadata"]["name"]) == (expected["kind"], expected["metadata"]["name"])]
        assert len(found) == 1, (name, expected["kind"], [o["kind"] for o in outcome.objects])
        for path, value in assert_leaves(expected["spec"], ("spec",)):
            leaves.append((dotted(path), matches(value, lookup(found[0], path))))
    return leaves


def outcome_of(rendered: Mapping[str, Outcome], name: str) -> Outcome:
    return rendered[f"live:{name}"] if name in LIVE else rendered[name]


# --- what each fixture does ---------------------------------------------------------------------

RENDER = [
    # upstream's PostgreSQL provider refuses both examples ("missing \"proxy\" component"); here
    # PgBouncer is optional, as in everest (providers/percona-postgresql/README.md)
    "pg-instance-example.yaml",
    "pg-instance-simple.yaml",
    "psmdb-backup-datasource-10-assert.yaml",
    "psmdb-backup-datasource-10-create-cluster.yaml",  # classRef, an on-demand storage, no backupAgent
    "psmdb-core-10-assert.yaml",  # the core suite is the replicaset one at an older commit (era C names)
    "psmdb-core-10-create-cluster.yaml",
    "psmdb-core-11-assert.yaml",
    "psmdb-core-40-assert.yaml",
    "psmdb-core-41-assert.yaml",
    "psmdb-core-40-create-single-node-cluster.yaml",
    "psmdb-e2e-datasource-backup-30-assert.yaml",  # the source as its assert has it, without monitoring
    "psmdb-e2e-datasource-backup-30-create-source.yaml",  # monitoring with a MonitoringConfig
    "psmdb-instance-simple.yaml",  # monitoring without a MonitoringConfig: skipped with a warning
    "psmdb-maintenance-10-create-cluster.yaml",
    "psmdb-replicaset-10-assert.yaml",
    "psmdb-replicaset-11-assert.yaml",
    "psmdb-replicaset-20-update-cluster.yaml",
    "psmdb-replicaset-21-assert.yaml",  # a partial Instance (an assert is a subset): defaults for the rest
    "psmdb-replicaset-21-update-cluster-affinity.yaml",  # a kuttl patch, which alone is a valid Instance
    "psmdb-replicaset-22-assert.yaml",
    "psmdb-replicaset-22-update-cluster-lb.yaml",
    "psmdb-replicaset-23-assert.yaml",
    "psmdb-replicaset-23-update-cluster-cluster-ip.yaml",
    "psmdb-replicaset-24-assert.yaml",
    "psmdb-replicaset-24-update-cluster-node-port.yaml",
    "psmdb-replicaset-30-create-cluster-user-secret.yaml",  # userSecretRef names the users Secret
    "psmdb-replicaset-40-assert.yaml",
    "psmdb-replicaset-40-create-single-node-cluster.yaml",
    "psmdb-replicaset-41-assert.yaml",
    "psmdb-sharded-10-assert.yaml",
    "psmdb-sharded-10-create-cluster.yaml",
    "psmdb-sharded-20-assert.yaml",
    "psmdb-sharded-20-update-cluster.yaml",
    "psmdb-sharded-21-assert.yaml",
    "psmdb-sharded-21-update-cluster-affinity.yaml",
]

NO_PROVIDER = "missing required field 'providerRef' (or, era C, 'provider') (at spec)"
DATA_SOURCE = "dataSource is not supported: a rendered cluster is not seeded from a backup; restore it separately (at spec.dataSource)"
TWO_REPLICAS = (
    "provider percona-server-mongodb: the PSMDB operator needs an odd number of at least 3 replicas per replica set (or exactly 1);"
    " got 2: change spec.instances.engine.replicas or set spec.allowUnsafeConfiguration"
    " (<built-in>/providers/percona-server-mongodb/provider.yaml:37) (at spec.components.engine.replicas)"
)


def sharded_without_engine(at: str) -> list[str]:
    return [
        f"{at}: component '{name}' is required by topology sharded; list it under spec.instances (at spec.components)"
        for name in ("configServer", "engine")
    ]


# Refused: every reason, located at the Instance's own line, each documented (docs/api.md,
# "core.openeverest.io Instance", or the provider's README).
REFUSED = {
    # restoring or importing needs the cluster's state (docs/api.md: spec.dataSource)
    "psmdb-backup-datasource-30-create-cluster-from-backup.yaml": [
        f"psmdb-backup-datasource-30-create-cluster-from-backup.yaml:11:3: {DATA_SOURCE}"
    ],
    "psmdb-backup-datasource-import-10-create-instance-with-import.yaml": [
        f"psmdb-backup-datasource-import-10-create-instance-with-import.yaml:15:3: {DATA_SOURCE}"
    ],
    "psmdb-e2e-backup-import-40-create-instance.yaml": [f"psmdb-e2e-backup-import-40-create-instance.yaml:17:3: {DATA_SOURCE}"],
    "psmdb-e2e-datasource-backup-70-create-dest.yaml": [f"psmdb-e2e-datasource-backup-70-create-dest.yaml:8:3: {DATA_SOURCE}"],
    "psmdb-e2e-datasource-import-30-create-instance.yaml": [f"psmdb-e2e-datasource-import-30-create-instance.yaml:15:3: {DATA_SOURCE}"],
    "psmdb-instance-data-importer.yaml": [f"psmdb-instance-data-importer.yaml:24:3: {DATA_SOURCE}"],
    "psmdb-backup-datasource-30-assert.yaml": [f"psmdb-backup-datasource-30-assert.yaml:16:3: {DATA_SOURCE}"],
    "psmdb-e2e-datasource-backup-70-assert.yaml": [f"psmdb-e2e-datasource-backup-70-assert.yaml:8:3: {DATA_SOURCE}"],
    # an assert's subset of an Instance (its dataSource only): no provider, and the dataSource
    "psmdb-backup-datasource-import-10-assert.yaml": [
        f"psmdb-backup-datasource-import-10-assert.yaml:5:1: {NO_PROVIDER}",
        f"psmdb-backup-datasource-import-10-assert.yaml:6:3: {DATA_SOURCE}",
    ],
    "psmdb-e2e-datasource-import-30-assert.yaml": [
        f"psmdb-e2e-datasource-import-30-assert.yaml:5:1: {NO_PROVIDER}",
        f"psmdb-e2e-datasource-import-30-assert.yaml:6:3: {DATA_SOURCE}",
    ],
    # two replicas: the operator refuses the size without unsafe flags (upstream's suite runs with
    # the operator scaled to 0); providers/percona-server-mongodb/README.md, "Checked at render time"
    "psmdb-core-20-assert.yaml": [f"psmdb-core-20-assert.yaml:63:17: {TWO_REPLICAS}"],
    "psmdb-core-20-update-cluster.yaml": [f"psmdb-core-20-update-cluster.yaml:14:17: {TWO_REPLICAS}"],
    "psmdb-replicaset-20-assert.yaml": [f"psmdb-replicaset-20-assert.yaml:63:17: {TWO_REPLICAS}"],
    # kuttl patches (and the asserts' subsets of them) that alone lack the components the
    # topology requires: their live Instance is compared below (LIVE)
    "psmdb-sharded-22-assert.yaml": sharded_without_engine("psmdb-sharded-22-assert.yaml:27:3"),
    "psmdb-sharded-22-update-cluster-lb.yaml": sharded_without_engine("psmdb-sharded-22-update-cluster-lb.yaml:16:3"),
    "psmdb-sharded-23-assert.yaml": sharded_without_engine("psmdb-sharded-23-assert.yaml:27:3"),
    "psmdb-sharded-23-update-cluster-cluster-ip.yaml": sharded_without_engine("psmdb-sharded-23-update-cluster-cluster-ip.yaml:15:3"),
    "psmdb-sharded-24-assert.yaml": sharded_without_engine("psmdb-sharded-24-assert.yaml:27:3"),
    "psmdb-sharded-24-update-cluster-node-port.yaml": sharded_without_engine("psmdb-sharded-24-update-cluster-node-port.yaml:16:3"),
    # service.exposeType and loadBalancerService.annotations: upstream's shape at one commit
    # (bc489fe), replaced by serviceType and service.annotations at the next (docs/api.md)
    "psmdb-replicaset-22-update-cluster-service.yaml": [
        "psmdb-replicaset-22-update-cluster-service.yaml:14:9: unknown field 'exposeType' (at spec.components.engine.service.exposeType)",
        "psmdb-replicaset-22-update-cluster-service.yaml:19:11: unknown field 'annotations'"
        " (at spec.components.engine.service.loadBalancerService.annotations)",
    ],
    "psmdb-sharded-22-update-cluster-service.yaml": [
        *sharded_without_engine("psmdb-sharded-22-update-cluster-service.yaml:15:3"),
        "psmdb-sharded-22-update-cluster-service.yaml:18:9: unknown field 'exposeType' (at spec.components.proxy.service.exposeType)",
        "psmdb-sharded-22-update-cluster-service.yaml:24:11: unknown field 'annotations'"
        " (at spec.components.proxy.service.loadBalancerService.annotations)",
    ],
    # the create step is older than its assert: config as the text itself, not era C's reference
    "psmdb-replicaset-10-create-cluster.yaml": [
        'psmdb-replicaset-10-create-cluster.yaml:26:15: "operationProfiling:\\n  mode: all\\n" is not of type "object"'
        " (at spec.components.engine.config)",
    ],
    # an early era C example: every problem at once
    "psmdb-instance-example.yaml": [
        "psmdb-instance-example.yaml:18:3: spec.global (instance-wide provider parameters) has no equivalent; remove it (at spec.global)",
        "psmdb-instance-example.yaml:42:7: unknown component type 'mongos'; known: backup, mongod, pmm; did you mean \"mongod\"?"
        " (at spec.components.proxy.type)",
        "psmdb-instance-example.yaml:42:13: component 'proxy' cannot run 'mongos'; allowed: mongod; did you mean \"mongod\"?"
        " (at spec.components.proxy.type)",
        "psmdb-instance-example.yaml:46:9: unknown field 'exposeType' (at spec.components.proxy.service.exposeType)",
        "psmdb-instance-example.yaml:68:9: config.secretRef refers to a Secret, whose values the renderer never reads: inline the text"
        " as parameters.configuration, or put it in a ConfigMap under clusters/ and name it in config.configMapRef"
        " (at spec.components.monitoring.config.secretRef)",
    ],
}

# Files that hold no Instance to render: asserts on native objects (and on an Instance's status)
# only, compared with the step they follow (LIVE).
ASSERT_ONLY = ["psmdb-backup-datasource-11-assert.yaml", "psmdb-e2e-datasource-backup-40-assert.yaml", "psmdb-maintenance-10-assert.yaml"]

UNMONITORED = (
    "warning: monitoring names no MonitoringConfig (monitoringConfigName): skipped, as upstream skips it (at spec.components.monitoring)"
)
WARNED = {
    "psmdb-instance-simple.yaml": [f"psmdb-instance-simple.yaml:31:5: {UNMONITORED}"],
    "psmdb-instance-example.yaml": [f"psmdb-instance-example.yaml:63:5: {UNMONITORED}"],
    # exposeType unread, the service is a ClusterIP one
    "psmdb-replicaset-22-update-cluster-service.yaml": [
        "psmdb-replicaset-22-update-cluster-service.yaml:17:13: warning: sourceRanges only apply to type LoadBalancer; ignored for"
        " ClusterIP (at spec.components.engine.service.loadBalancerService.sourceRanges)"
    ],
    "psmdb-sharded-22-update-cluster-service.yaml": [
        "psmdb-sharded-22-update-cluster-service.yaml:21:13: warning: sourceRanges only apply to type LoadBalancer; ignored for"
        " ClusterIP (at spec.components.proxy.service.loadBalancerService.sourceRanges)"
    ],
}


def test_every_vendored_fixture_is_classified():
    assert sorted(RENDER + list(REFUSED) + ASSERT_ONLY) == FIXTURES
    assert sorted(ASSERT_ONLY) == [name for name in FIXTURES if instance_of(name) is None]


@pytest.mark.parametrize("name", RENDER)
def test_an_upstream_instance_renders(rendered, name):
    outcome = rendered[name]
    assert outcome.errors == [] and outcome.objects


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_an_upstream_instance_is_refused_with_every_reason_located(rendered, name):
    assert rendered[name].errors == REFUSED[name] and rendered[name].objects == []


@pytest.mark.parametrize("name", sorted(set(FIXTURES) - set(ASSERT_ONLY)))
def test_warnings_are_the_documented_ones(rendered, name):
    assert rendered[name].warnings == WARNED.get(name, [])


# --- the kuttl asserts ----------------------------------------------------------------------------

# Assert fields the renderer leaves to the operator: kuttl compares the live object, which the
# operator's defaults and its Go types (empty structs, zero values) fill in.
OPERATOR_DEFAULTS = {
    "spec.multiCluster.enabled": "false, the operator's default",
    "spec.sharding.balancer": "an empty struct of the live object",
    **{
        f"spec.{at}.{member}.{leaf}": "no arbiter, non-voting or hidden members: the operator's zero values"
        for at in ("replsets[*]", "sharding.configsvrReplSet")
        for member in ("arbiter", "nonvoting", "hidden")
        for leaf in ("enabled", "size", "resources")
    },
    "spec.sharding.configsvrReplSet.resources": "an empty struct of the live object (no resources written)",
    "spec.sharding.mongos.resources": "an empty struct of the live object (no resources written)",
    "spec.replsets[*].expose.enabled": "a shard other than rs0 carries no expose: the operator's default, false, leaves it unexposed",
    "spec.replsets[*].expose.type": "no type for a shard that is not exposed",
    "spec.sharding.configsvrReplSet.expose.enabled": "no expose on the config servers: the operator's default, false",
}

# Where the rendered object deliberately differs from upstream's, and why
# (docs/migrate-from-openeverest-v2.md, "What differs from the v2 providers").
DELIBERATE = {
    "spec.backup": "no backup section without the backupAgent component or backup.classRef (everest); upstream writes the"
    " agent's options, with enabled: false (true at older commits, which starts an agent with no storage)",
    "spec.pmm": "no pmm section without monitoring; upstream writes an empty image and resources",
    "spec.replsets[*].affinity.antiAffinityTopologyKey": "no anti-affinity key: the operator's default (kubernetes.io/hostname)"
    " applies, as everest leaves it; upstream writes none",
    "spec.sharding.configsvrReplSet.affinity.antiAffinityTopologyKey": "as for the replica sets",
    "spec.sharding.mongos.affinity.antiAffinityTopologyKey": "as for the replica sets",
    "spec.replsets[*].topologySpreadConstraints": "pods are placed by affinity only (schedulingPolicy.topologySpreadConstraints is"
    " refused); upstream adds spread constraints over hostname and zone to an Instance with affinity",
    "spec.crVersion": "the provider's operator release is written, so git says which one runs; upstream leaves a new cluster's"
    " crVersion to the operator",
}

# Asserts whose Instance is refused, so that nothing is compared, and why.
NOT_COMPARED = {
    "psmdb-core-20-assert.yaml": "two replicas are refused (REFUSED)",
    "psmdb-replicaset-20-assert.yaml": "two replicas are refused (REFUSED)",
    "psmdb-backup-datasource-30-assert.yaml": "dataSource is refused",
    "psmdb-backup-datasource-import-10-assert.yaml": "dataSource is refused",
    "psmdb-e2e-datasource-backup-70-assert.yaml": "dataSource is refused",
}


def covered(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith((p + ".", p + "[")) for p in prefixes)


def test_the_asserts_compared_are_every_one_whose_instance_renders(rendered):
    assert sorted(name for name in ASSERTS if not outcome_of(rendered, name).objects) == sorted(NOT_COMPARED)
    assert all(outcome_of(rendered, name).errors == [] for name in LIVE)


@pytest.mark.parametrize("name", sorted(set(ASSERTS) - set(NOT_COMPARED)))
def test_the_rendered_object_matches_upstreams_kuttl_assert_but_for_the_listed_differences(rendered, name):
    leaves = compared(name, outcome_of(rendered, name))
    differing = [path for path, ok in leaves if not ok]
    assert [p for p in differing if not covered(p, [*OPERATOR_DEFAULTS, *DELIBERATE])] == []
    # most fields match, compared one by one (the maintenance assert has a single field, crVersion)
    assert len(differing) < len(leaves) or name == "psmdb-maintenance-10-assert.yaml"


def test_every_listed_difference_is_real(rendered):
    """The lists cannot hide a field that now matches: each entry differs in some assert."""
    differing = {path for name in set(ASSERTS) - set(NOT_COMPARED) for path, ok in compared(name, outcome_of(rendered, name)) if not ok}
    assert [p for p in [*OPERATOR_DEFAULTS, *DELIBERATE] if not any(covered(d, [p]) for d in differing)] == []


def test_the_backup_fixture_registers_its_on_demand_storage_and_the_agent(rendered):
    (cluster,) = rendered["psmdb-backup-datasource-10-create-cluster.yaml"].objects
    backup = cluster["spec"]["backup"]
    assert backup["enabled"] is True and list(backup["storages"]) == ["test-storage-s3"] and "tasks" not in backup


def test_every_fixture_names_its_source():
    rows = [line.split("|")[1].strip() for line in (UPSTREAM / "SOURCES.md").read_text().splitlines() if line.startswith("| ")]
    assert sorted(r for r in rows if r.endswith(".yaml")) == FIXTURES
