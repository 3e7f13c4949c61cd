"""Upstream OpenEverest v2 Instances, unchanged: each renders, or is refused with located,
documented reasons; the one upstream's kuttl asserts describe matches the assert.

The files are vendored under tests/fixtures/upstream-instances/ (SOURCES.md names each one's
repository, path and commit). kuttl runs each step in a namespace of its own, and
``kubectl apply`` puts an object without one in the context's namespace: a file whose Instance
names no namespace is placed in ``kuttl`` here, the only edit made, in memory.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from everest_render.testing import Repo
from tests.conftest import PROJECT_ROOT

UPSTREAM = PROJECT_ROOT / "tests/fixtures/upstream-instances"
NAMESPACE = "kuttl"

# Everything a repository needs beside the Instances: the BackupStorage the backup fixture names
# (upstream's is a backup.openeverest.io object in the cluster; here it is everest's, in git).
STORAGE = """
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: test-storage-s3, namespace: kuttl}
spec: {type: s3, bucket: backups, region: us-east-1, endpointURL: "https://minio.example.com", credentialsSecretName: test-storage-s3-credentials}
"""


def repository_text(name: str) -> tuple[str, int | None]:
    """The upstream file as the test repository holds it, and the line it inserts: every line
    of a non-Instance document (kuttl's TestStep, an assert's native object) becomes a comment,
    and an Instance without a namespace gets ``namespace: kuttl`` after its name (one file holds
    one Instance). Lines keep their numbers but for the inserted one."""
    lines = (UPSTREAM / name).read_text().splitlines()
    starts = [0] + [i + 1 for i, line in enumerate(lines) if line == "---"]
    inserted = None
    for start, end in zip(starts, [*starts[1:], len(lines) + 1], strict=True):
        body = range(start, end - 1)
        document = yaml.safe_load("\n".join(lines[i] for i in body)) or {}
        if document.get("kind") != "Instance":
            for i in body:
                lines[i] = "#"
        elif "namespace" not in document["metadata"]:
            at = next(i for i in body if lines[i].startswith("  name:"))
            inserted = at + 2  # the 1-based number of the inserted line
    if inserted is not None:
        lines.insert(inserted - 1, f"  namespace: {NAMESPACE}")
    return "\n".join(lines) + "\n", inserted


def located_upstream(message: str, name: str, inserted: int | None) -> str:
    """A diagnostic of the repository copy, located in the upstream file itself."""
    prefix = "clusters/kuttl/instance.yaml:"
    assert message.startswith(prefix), message
    line, rest = message[len(prefix) :].split(":", 1)
    number = int(line)
    if inserted is not None and number >= inserted:
        assert number != inserted, message  # never at the line the test added
        number -= 1
    return f"{name}:{number}:{rest}"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[dict[str, Any]], list[str], list[str]]]:
    """Every fixture rendered once, each in a repository of its own: (objects, errors, warnings)."""
    results = {}
    for path in sorted(UPSTREAM.glob("*.yaml")):
        repo = Repo(tmp_path_factory.mktemp(path.stem))
        repo.write("clusters/kuttl/storage.yaml", STORAGE)
        text, inserted = repository_text(path.name)
        (repo.root / "clusters/kuttl/instance.yaml").write_text(text)
        result = repo.result()
        located = [(located_upstream(str(d), path.name, inserted), d.is_error) for d in result.diagnostics]
        errors = [m for m, error in located if error]
        objects = [] if errors else [dict(o.obj) for o in result.objects]
        results[path.name] = (objects, errors, [m for m, error in located if not error])
    return results


RENDER = [
    # upstream's PostgreSQL provider refuses both examples ("missing \"proxy\" component"); here
    # PgBouncer is optional, as in everest (providers/percona-postgresql/README.md)
    "pg-instance-example.yaml",
    "pg-instance-simple.yaml",
    "psmdb-backup-datasource-10-create-cluster.yaml",  # classRef, an on-demand storage, no backupAgent
    "psmdb-instance-simple.yaml",  # monitoring without a MonitoringConfig: skipped with a warning
    "psmdb-replicaset-10-assert.yaml",
    "psmdb-replicaset-20-update-cluster.yaml",
]

# Refused: every reason, located at the Instance's own line, each documented in docs/api.md.
REFUSED = {
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
WARNED = {
    "psmdb-instance-simple.yaml": [
        "psmdb-instance-simple.yaml:31:5: warning: monitoring names no MonitoringConfig (monitoringConfigName): skipped,"
        " as upstream skips it (at spec.components.monitoring)"
    ],
    "psmdb-instance-example.yaml": [
        "psmdb-instance-example.yaml:63:5: warning: monitoring names no MonitoringConfig (monitoringConfigName): skipped,"
        " as upstream skips it (at spec.components.monitoring)"
    ],
}


def test_every_vendored_fixture_is_classified():
    assert sorted(RENDER + list(REFUSED)) == sorted(p.name for p in UPSTREAM.glob("*.yaml"))


@pytest.mark.parametrize("name", RENDER)
def test_an_upstream_instance_renders(rendered, name):
    objects, errors, _ = rendered[name]
    assert errors == [] and objects


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_an_upstream_instance_is_refused_with_every_reason_located(rendered, name):
    assert rendered[name][1] == REFUSED[name]


@pytest.mark.parametrize("name", sorted(p.name for p in UPSTREAM.glob("*.yaml")))
def test_warnings_are_the_documented_ones(rendered, name):
    assert rendered[name][2] == WARNED.get(name, [])


# --- the kuttl assert: psmdb-replicaset-10-assert.yaml ----------------------------------------

# Assert fields that the operator, not the provider, fills in (kuttl compares the live object):
# the renderer leaves them to the operator too.
OPERATOR_DEFAULTS = ("spec.multiCluster", "spec.replsets[0].arbiter", "spec.replsets[0].nonvoting")

# Where the rendered object deliberately differs from upstream's, and why (docs/migrate-from-openeverest-v2.md).
DELIBERATE = {
    "spec.backup": "no backup section without the backupAgent component (everest); upstream writes enabled: false with the agent's"
    " options, which the operator then ignores",
    "spec.replsets[0].affinity": "no anti-affinity key: the operator's default (kubernetes.io/hostname) applies, as everest leaves it;"
    " upstream writes none",
}


def assert_leaves(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """(dotted path, expected value) of every leaf of a kuttl assert; ``(a.b == null): true``
    becomes (path.a.b, ABSENT)."""
    if isinstance(node, dict):
        found = []
        for key, value in node.items():
            if key.startswith("(") and key.endswith(" == null)") and value is True:
                found.append((f"{path}.{key[1:-len(' == null)')]}", ABSENT))
            else:
                found.extend(assert_leaves(value, f"{path}.{key}" if path else key))
        return found
    if isinstance(node, list):
        return [leaf for i, item in enumerate(node) for leaf in assert_leaves(item, f"{path}[{i}]")]
    return [(path, node)]


ABSENT = object()


def lookup(obj: Any, path: str) -> Any:
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            index = int(part[1:-1])
            obj = obj[index] if isinstance(obj, list) and index < len(obj) else ABSENT
        else:
            obj = obj.get(part, ABSENT) if isinstance(obj, dict) else ABSENT
        if obj is ABSENT:
            return ABSENT
    return obj


def test_the_rendered_object_matches_upstreams_kuttl_assert_but_for_the_listed_differences(rendered):
    documents = list(yaml.safe_load_all((UPSTREAM / "psmdb-replicaset-10-assert.yaml").read_text()))
    (expected,) = [d for d in documents if d["kind"] == "PerconaServerMongoDB"]
    (actual,) = rendered["psmdb-replicaset-10-assert.yaml"][0]
    assert (actual["kind"], actual["metadata"]["name"]) == (expected["kind"], expected["metadata"]["name"])
    differing = []
    for path, value in assert_leaves(expected["spec"], "spec"):
        got = lookup(actual, path)
        if (got is not ABSENT) if value is ABSENT else (got != value):
            differing.append(path)
    def covered(path: str, prefixes) -> bool:
        return any(path == p or path.startswith((p + ".", p + "[")) for p in prefixes)
    unexplained = [p for p in differing if not covered(p, (*OPERATOR_DEFAULTS, *DELIBERATE))]
    assert unexplained == []
    # every listed difference is real: the lists cannot hide a field that now matches
    assert [p for p in (*OPERATOR_DEFAULTS, *DELIBERATE) if not any(covered(d, (p,)) for d in differing)] == []
    assert len(differing) < len(assert_leaves(expected["spec"]))  # most fields match, compared one by one


def test_the_backup_fixture_registers_its_on_demand_storage_and_the_agent(rendered):
    (cluster,) = rendered["psmdb-backup-datasource-10-create-cluster.yaml"][0]
    backup = cluster["spec"]["backup"]
    assert backup["enabled"] is True and list(backup["storages"]) == ["test-storage-s3"] and "tasks" not in backup
