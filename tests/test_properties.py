"""Properties over many inputs: order-independence, and no input that makes the renderer crash.

The examples are derandomized: every run of the suite checks the same ones, so CI's verdict
depends on the commit only; `make fuzz` (tests/test_fuzz.py) explores at random."""

from __future__ import annotations

import random

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from everest_render.pipeline import read_repository, render_repository
from tests.conftest import PROJECT_ROOT, Repo


def test_output_does_not_depend_on_how_inputs_are_split_into_files(tmp_path):
    fleet = render_repository(read_repository(PROJECT_ROOT))
    documents = []
    for path in sorted((PROJECT_ROOT / "clusters").rglob("*.yaml")):
        documents.extend(yaml.safe_load_all(path.read_text()))
    random.Random(7).shuffle(documents)
    repo = Repo(tmp_path)
    # All inputs in two files, in shuffled order, in a different folder layout.
    half = len(documents) // 2
    repo.write("clusters/a/all-1.yaml", yaml.safe_dump_all(documents[:half]))
    repo.write("clusters/zz/all-2.yaml", yaml.safe_dump_all(documents[half:]))
    assert repo.result().plan.files == fleet.plan.files


quantities = st.one_of(st.sampled_from(["1", "500m", "4G", "8Gi", "32G", "0.5", "abc", ""]), st.integers(-1, 10**12), st.floats(allow_nan=False))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10), st.text(max_size=12), quantities)
instance = st.fixed_dictionaries(
    {},
    optional={
        "replicas": st.one_of(st.integers(-1, 7), scalars),
        "resources": st.one_of(st.fixed_dictionaries({}, optional={"cpu": quantities, "memory": quantities}),
                               st.fixed_dictionaries({}, optional={"limits": st.dictionaries(st.sampled_from(["cpu", "memory"]), quantities)}), scalars),
        "storage": st.one_of(st.fixed_dictionaries({}, optional={"size": quantities, "class": st.text(max_size=8)}), scalars),
        "config": st.one_of(st.text(max_size=40), st.sampled_from(["a = 1\nb 'x'\n# c\n", "[mysqld]\nx=1\n", "bad line"])),
        "type": st.sampled_from(["haproxy", "proxysql", "pgbouncer", "mongod", "nope"]),
        "expose": st.one_of(st.fixed_dictionaries({}, optional={
            "type": st.sampled_from(["ClusterIP", "LoadBalancer", "NodePort", "internal", "external", "bogus"]),
            "sourceRanges": st.lists(st.sampled_from(["10.0.0.0/8", "192.0.2.1", "::1", "bad", "1.2.3.4/99"]), max_size=3),
            "annotations": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
        }), scalars),
        "affinity": st.one_of(st.just({}), st.just({"nodeAffinity": {"bogus": 1}}), scalars),
    },
)
clusters = st.fixed_dictionaries(
    {
        "provider": st.sampled_from(["percona-server-mongodb", "percona-xtradb-cluster", "percona-postgresql", "nope"]),
        "instances": st.dictionaries(st.sampled_from(["engine", "proxy", "configServer", "backupAgent", "monitoring", "x"]),
                                     st.one_of(st.none(), instance), max_size=4),
    },
    optional={
        "topology": st.fixed_dictionaries({}, optional={"type": st.sampled_from(["standard", "sharded", "x"]),
                                                        "config": st.dictionaries(st.sampled_from(["shards", "x"]), scalars, max_size=2)}),
        "paused": scalars,
        "allowUnsafeConfiguration": st.booleans(),
        "crVersion": st.sampled_from(["1.22.0", "1.19.0", "3.0.0", "x"]),
        "components": st.fixed_dictionaries({"versions": st.dictionaries(st.sampled_from(["mongod", "pxc", "postgresql", "pmm", "zz"]),
                                                                         st.fixed_dictionaries({"version": st.one_of(st.text(max_size=9), st.just("8.0.19-7"))}),
                                                                         max_size=2)}),
        "backup": st.fixed_dictionaries({}, optional={
            "schedules": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["a", "b"]), "schedule": st.sampled_from(["@daily", "0 3 * * *", "61 * * * *"]),
                                                         "backupStorage": st.sampled_from(["s3", "az", "missing"])},
                                                        optional={"enabled": st.booleans(), "retentionCopies": st.integers(-1, 5)}), max_size=3),
            "pitr": st.fixed_dictionaries({"enabled": st.booleans()}, optional={"backupStorage": st.sampled_from(["s3", "az"]),
                                                                                "uploadIntervalSec": st.integers(0, 600)}),
        }),
    },
)
STORAGES = """
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: s3, namespace: ns}
spec: {type: s3, bucket: b, region: r, endpointURL: "https://s3.example.com", credentialsSecretName: c}
---
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: az, namespace: ns}
spec: {type: azure, bucket: box, credentialsSecretName: c2}
"""


@settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=clusters)
def test_any_cluster_renders_or_is_refused_with_diagnostics_never_a_crash(tmp_path_factory, spec):
    repo = Repo(tmp_path_factory.mktemp("repo"))
    repo.write("clusters/ns/storages.yaml", STORAGES)
    repo.write("clusters/ns/db.yaml", yaml.safe_dump({"apiVersion": "everest.percona.com/v2alpha1", "kind": "DatabaseCluster",
                                                      "metadata": {"name": "db", "namespace": "ns"}, "spec": spec}))
    result = repo.result()  # must not raise
    event("refused" if result.failed else "rendered")
    if result.failed:
        assert result.plan.files == {}
        assert all(d.file and d.line >= 1 and d.message for d in result.diagnostics)
    else:
        assert result.plan.files and all(content.startswith(b"---\n") for content in result.plan.files.values())


valid_quantity = st.sampled_from(["500m", "1", "2", "1G", "4G", "8Gi", "16G", "40G"])
SHAPES = {
    ("percona-server-mongodb", "standard"): {"engine": "engine", "optional": ["backupAgent"]},
    ("percona-server-mongodb", "sharded"): {"engine": "proxy", "required": ["configServer", "proxy"], "optional": ["backupAgent"]},
    ("percona-xtradb-cluster", "standard"): {"engine": "proxy", "required": ["proxy"], "optional": ["backupAgent"]},
    ("percona-postgresql", "standard"): {"engine": "proxy", "required": ["proxy"], "optional": ["backupAgent"]},
}


@st.composite
def plausible_clusters(draw):
    """Clusters a user could well write: the right components, sensible values."""
    provider, topology = draw(st.sampled_from(sorted(SHAPES)))
    shape = SHAPES[(provider, topology)]
    unsafe = draw(st.booleans())
    instances = {}
    for name in ["engine", *shape.get("required", []), *draw(st.lists(st.sampled_from(shape["optional"]), unique=True))]:
        fields = {}
        if name != "backupAgent":
            fields["replicas"] = draw(st.sampled_from([3, 5] if not unsafe else [1, 2, 3]))
            if draw(st.booleans()):
                fields["resources"] = {"cpu": draw(valid_quantity), "memory": draw(valid_quantity)}
        if name == "engine" and draw(st.booleans()):
            fields["storage"] = {"size": draw(st.sampled_from(["5Gi", "100Gi"])), **({"class": "fast"} if draw(st.booleans()) else {})}
        if name == shape["engine"] and draw(st.booleans()):
            fields["expose"] = {"type": draw(st.sampled_from(["ClusterIP", "LoadBalancer", "NodePort", "internal", "external"])),
                                "sourceRanges": draw(st.lists(st.sampled_from(["10.0.0.0/8", "192.0.2.1", "2001:db8::1"]), max_size=2))}
        if name == "proxy" and provider == "percona-xtradb-cluster":
            fields["type"] = draw(st.sampled_from(["haproxy", "proxysql"]))
        instances[name] = fields
    if provider == "percona-postgresql" and draw(st.booleans()):
        instances["engine"]["config"] = "max_connections = 200\nwork_mem '64MB'\n# comment\n"
    spec = {"provider": provider, "topology": {"type": topology}, "instances": instances, "allowUnsafeConfiguration": unsafe}
    if "backupAgent" in instances and draw(st.booleans()):
        storage = draw(st.sampled_from(["s3", "az"]))
        spec["backup"] = {"schedules": [{"name": "daily", "schedule": "0 3 * * *", "backupStorage": storage, "retentionCopies": 3}]}
    return spec


@settings(max_examples=120, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=plausible_clusters())
def test_plausible_clusters_render_valid_objects_or_a_located_refusal(tmp_path_factory, spec):
    repo = Repo(tmp_path_factory.mktemp("repo"))
    repo.write("clusters/ns/storages.yaml", STORAGES)
    repo.write("clusters/ns/db.yaml", yaml.safe_dump({"apiVersion": "everest.percona.com/v2alpha1", "kind": "DatabaseCluster",
                                                      "metadata": {"name": "db", "namespace": "ns"}, "spec": spec}))
    result = repo.result()
    event("refused" if result.failed else "rendered")
    if result.failed:
        # A provider may refuse (e.g. PXC's operator rules, PostgreSQL S3 needs a region); it says where.
        assert all(d.file.startswith(("clusters/", "providers/", "<built-in>/")) and d.message for d in result.diagnostics)
        assert result.plan.files == {}
    else:
        assert sorted(result.plan.files) == ["ns/db.yaml"]
