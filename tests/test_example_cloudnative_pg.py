"""examples/cloudnative-pg: a provider for a new engine, written as data only, in its own repository.

The example is rendered in-process exactly as `everest-render render --repo examples/cloudnative-pg`
would; its committed schemas and out/ must be what its vendored CRDs and clusters give. The
behaviour tests copy the example's definitions/ and providers/ into a throw-away repository and
write one DatabaseCluster each.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import textwrap

import jsonschema
import pytest
import yaml

from everest_render.authoring.crd_schema import expected_schemas
from everest_render.emit import output as emit
from everest_render.pipeline import read_repository, render_repository, resolve_repository
from everest_render.render.templates import ProviderRenderer
from tests.conftest import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "cloudnative-pg"
PROVIDER = EXAMPLE / "providers" / "cloudnative-pg"


SCHEMAS = list(expected_schemas(EXAMPLE))


@pytest.fixture(scope="module")
def example():
    return render_repository(read_repository(EXAMPLE))


# --- the example repository as committed ----------------------------------------------------


def test_the_example_renders_without_errors_or_warnings(example):
    assert [str(d) for d in example.diagnostics] == []
    assert sorted(example.plan.files) == ["apps/catalog.yaml", "apps/orders.yaml", "dev/scratch.yaml"]


def test_committed_out_is_byte_identical_to_the_render(example):
    assert emit.differences(example.plan, EXAMPLE / "out") == [], "stale: run `make -C examples/cloudnative-pg render`"


def test_every_rendered_object_validates_against_its_schema_with_reference_jsonschema(example):
    # Cross-check with the reference implementation, not the jsonschema-rs the renderer uses.
    objects = yaml.safe_load((PROVIDER / "provider.yaml").read_text())["spec"]["objects"]
    validators = {}
    for entry in objects:
        schema = json.loads((PROVIDER / entry["schema"]).read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        validators[entry["apiVersion"], entry["kind"]] = jsonschema.Draft202012Validator(schema)
    for rendered in example.objects:
        validators[rendered.obj["apiVersion"], rendered.obj["kind"]].validate(rendered.obj)
    assert sorted(r.obj["kind"] for r in example.objects) == ["Cluster", "Cluster", "Cluster", "Pooler", "Pooler"]


@pytest.mark.parametrize("target,text", SCHEMAS, ids=[t.name for t, _ in SCHEMAS])
def test_committed_schema_is_generated_from_the_vendored_crd(target, text):
    assert target.read_text() == text, "stale: run `make -C examples/cloudnative-pg schemas`"


def test_the_schemas_check_passes_on_the_committed_schemas():
    # `make -C examples/cloudnative-pg check-schemas`, in-process.
    from click.testing import CliRunner

    from everest_render.commands.cli import main

    assert CliRunner().invoke(main, ["schemas", "--repo", str(EXAMPLE), "--check"]).exit_code == 0


def test_every_listed_object_has_a_generated_schema():
    assert sorted(t.relative_to(PROVIDER).as_posix() for t, _ in SCHEMAS) == ["schemas/Cluster.json", "schemas/Pooler.json"]


def test_vendored_crds_match_the_checksums_their_readme_records():
    recorded = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", (EXAMPLE / "crds" / "README.md").read_text(), re.M)
    )
    folder = EXAMPLE / "crds" / "cloudnative-pg" / "1.30.0"
    actual = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.yaml")}
    assert actual == recorded


# --- one behaviour of the mapping per test ----------------------------------------------------


@pytest.fixture
def cnpg(repo):
    """A throw-away repository with the example's definition and provider (and no clusters yet)."""
    for folder in ("definitions", "providers"):
        shutil.copytree(EXAMPLE / folder, repo.root / folder)
    return repo


def cluster(instances: str = "engine: {}\n", body: str = "", name: str = "db", namespace: str = "ns") -> str:
    """A cloudnative-pg DatabaseCluster; ``instances`` and ``body`` (the rest of spec) unindented."""
    return (
        "apiVersion: everest.percona.com/v2alpha1\n"
        "kind: DatabaseCluster\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
        "spec:\n"
        "  provider: cloudnative-pg\n" + textwrap.indent(body, "  ") + "  instances:\n" + textwrap.indent(instances, "    ")
    )


def kinds(repo) -> dict[str, dict]:
    objects = repo.objects()
    by_kind = {o["kind"]: o for o in objects}
    assert len(by_kind) == len(objects)
    return by_kind


def cluster_spec(repo) -> dict:
    return kinds(repo)["Cluster"]["spec"]


def pooler_spec(repo) -> dict:
    return kinds(repo)["Pooler"]["spec"]


def test_instances_are_the_engine_replicas_default_three(cnpg):
    cnpg.write("clusters/a.yaml", cluster(name="a"))
    cnpg.write("clusters/b.yaml", cluster("engine: {replicas: 1}\n", name="b"))
    instances = {o["metadata"]["name"]: o["spec"]["instances"] for o in cnpg.objects()}
    assert instances == {"a": 3, "b": 1}


def test_image_name_is_the_catalogue_image_of_the_pinned_version(cnpg):
    cnpg.write("clusters/a.yaml", cluster(name="a"))
    cnpg.write("clusters/b.yaml", cluster(body="components:\n  versions:\n    postgresql: {version: '16'}\n", name="b"))
    images = {o["metadata"]["name"]: o["spec"]["imageName"] for o in cnpg.objects()}
    assert images == {"a": "ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie", "b": "ghcr.io/cloudnative-pg/postgresql:16"}


def test_engine_config_becomes_string_parameters_with_quotes_removed(cnpg):
    config = "engine:\n  config: |\n    timezone = 'Europe/Berlin'\n    max_connections 200   # a comment\n    work_mem = \"64MB\"\n"
    cnpg.write("clusters/c.yaml", cluster(config))
    assert cluster_spec(cnpg)["postgresql"] == {"parameters": {"timezone": "Europe/Berlin", "max_connections": "200", "work_mem": "64MB"}}


def test_no_engine_config_writes_no_postgresql_section(cnpg):
    cnpg.write("clusters/c.yaml", cluster())
    assert "postgresql" not in cluster_spec(cnpg)


def test_storage_size_and_class_go_to_the_cluster_storage(cnpg):
    cnpg.write("clusters/a.yaml", cluster(name="a"))
    cnpg.write("clusters/b.yaml", cluster("engine: {storage: {size: 50Gi, class: fast-ssd}}\n", name="b"))
    storage = {o["metadata"]["name"]: o["spec"]["storage"] for o in cnpg.objects()}
    assert storage == {"a": {"size": "10Gi"}, "b": {"size": "50Gi", "storageClass": "fast-ssd"}}


def test_resources_shorthand_sets_requests_and_limits_alike(cnpg):
    cnpg.write("clusters/c.yaml", cluster("engine: {resources: {cpu: '2', memory: 8Gi}}\n"))
    assert cluster_spec(cnpg)["resources"] == {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}}


def test_resources_full_form_passes_through(cnpg):
    cnpg.write("clusters/c.yaml", cluster("engine: {resources: {requests: {memory: 1Gi}, limits: {memory: 2Gi}}}\n"))
    assert cluster_spec(cnpg)["resources"] == {"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}}


def test_kubernetes_pod_affinity_becomes_cloudnative_pg_additional_affinity(cnpg):
    term = "{labelSelector: {matchLabels: {app: web}}, topologyKey: kubernetes.io/hostname}"
    cnpg.write("clusters/c.yaml", cluster(
        "engine:\n  affinity:\n"
        f"    podAffinity: {{requiredDuringSchedulingIgnoredDuringExecution: [{term}]}}\n"
        "    topologyKey: topology.kubernetes.io/zone\n"
    ))
    assert cluster_spec(cnpg)["affinity"] == {
        "additionalPodAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
        ]},
        "topologyKey": "topology.kubernetes.io/zone",
    }


def test_superuser_secret_is_the_secrets_name_and_superuser_access_is_on(cnpg):
    cnpg.write("clusters/a.yaml", cluster(name="a"))
    cnpg.write("clusters/b.yaml", cluster(body="secretsName: b-admin\n", name="b"))
    secrets = {o["metadata"]["name"]: (o["spec"]["enableSuperuserAccess"], o["spec"]["superuserSecret"]) for o in cnpg.objects()}
    assert secrets == {"a": (True, {"name": "everest-secrets-a"}), "b": (True, {"name": "b-admin"})}


def test_bootstrap_is_initdb_of_the_app_database(cnpg):
    cnpg.write("clusters/c.yaml", cluster())
    assert cluster_spec(cnpg)["bootstrap"] == {"initdb": {"database": "app", "owner": "app"}}


def test_paused_hibernates_the_cluster(cnpg):
    cnpg.write("clusters/a.yaml", cluster(name="a"))
    cnpg.write("clusters/b.yaml", cluster(body="paused: true\n", name="b"))
    hibernation = {o["metadata"]["name"]: o["metadata"]["annotations"] for o in cnpg.objects()}
    assert hibernation == {"a": {"cnpg.io/hibernation": "off"}, "b": {"cnpg.io/hibernation": "on"}}


def test_a_pooler_is_rendered_only_when_proxy_is_listed(cnpg):
    cnpg.write("clusters/a.yaml", cluster(name="a"))
    cnpg.write("clusters/b.yaml", cluster("engine: {}\nproxy: {}\n", name="b"))
    assert sorted((o["kind"], o["metadata"]["name"]) for o in cnpg.objects()) == [
        ("Cluster", "a"), ("Cluster", "b"), ("Pooler", "b-pooler-rw"),
    ]


def test_pooler_points_at_the_primary_of_its_cluster_with_the_catalogue_pgbouncer(cnpg):
    cnpg.write("clusters/c.yaml", cluster("engine: {}\nproxy: {}\n"))
    spec = pooler_spec(cnpg)
    assert (spec["cluster"], spec["type"], spec["instances"]) == ({"name": "db"}, "rw", 2)
    assert spec["pgbouncer"] == {"image": "ghcr.io/cloudnative-pg/pgbouncer:1.25.1", "poolMode": "session"}


def test_proxy_config_pool_mode_goes_to_pool_mode_and_the_rest_to_parameters(cnpg):
    cnpg.write("clusters/c.yaml", cluster("engine: {}\nproxy:\n  config: |\n    pool_mode = transaction\n    max_client_conn = '500'\n"))
    assert pooler_spec(cnpg)["pgbouncer"]["poolMode"] == "transaction"
    assert pooler_spec(cnpg)["pgbouncer"]["parameters"] == {"max_client_conn": "500"}


def test_expose_defaults_to_a_cluster_ip_pooler_service(cnpg):
    cnpg.write("clusters/c.yaml", cluster("engine: {}\nproxy: {}\n"))
    assert pooler_spec(cnpg)["serviceTemplate"] == {"spec": {"type": "ClusterIP"}}


def test_expose_load_balancer_maps_source_ranges_and_annotations(cnpg):
    cnpg.write("clusters/c.yaml", cluster(
        "engine: {}\nproxy:\n  expose:\n    type: external\n    sourceRanges: [10.0.0.0/8, 192.168.1.10]\n"
        "    annotations: {service.beta.kubernetes.io/aws-load-balancer-internal: 'true'}\n"
    ))
    assert pooler_spec(cnpg)["serviceTemplate"] == {
        "metadata": {"annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
        "spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8", "192.168.1.10/32"]},
    }


def test_expose_node_port(cnpg):
    cnpg.write("clusters/c.yaml", cluster("engine: {}\nproxy: {expose: {type: NodePort}}\n"))
    assert pooler_spec(cnpg)["serviceTemplate"] == {"spec": {"type": "NodePort"}}


def test_proxy_resources_and_affinity_go_to_the_pgbouncer_pod_template(cnpg):
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["edge"]}]}}
    ]}}
    cnpg.write("clusters/c.yaml", cluster(f"engine: {{}}\nproxy: {{resources: {{cpu: 500m}}, affinity: {json.dumps(affinity)}}}\n"))
    assert pooler_spec(cnpg)["template"] == {"spec": {
        "containers": [{"name": "pgbouncer", "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "500m"}}}],
        "affinity": affinity,
    }}


def test_secrets_a_cluster_needs_are_listed_by_name_never_rendered(cnpg):
    cnpg.write("clusters/c.yaml", cluster(body="secretsName: db-admin\n"))
    (resolved,) = resolve_repository(read_repository(cnpg.root)).clusters
    needed = ProviderRenderer(resolved.provider).required_secrets(resolved)
    assert [(s["name"], s["keys"]) for s in needed] == [("db-admin", ["username", "password"]), ("db-app", ["username", "password"])]
    assert [o["kind"] for o in cnpg.objects()] == ["Cluster"]


# --- bad input: the exact line the user sees -------------------------------------------------
# One case file per refusal, in examples/cloudnative-pg/providers/cloudnative-pg/cases/, run by
# everest_render.testing (tests/test_provider_cases.py).
