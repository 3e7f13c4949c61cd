"""The built-in cloudnative-pg provider: a new engine written with the provider mechanism only.

The fleet tests (test_fleet.py) hold its example clusters' snapshots and out/; the refusals are
case files in providers/cloudnative-pg/cases/ (test_provider_cases.py). Here: one behaviour of
the mapping per test, each in a throw-away repository with one DatabaseCluster.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap

import pytest

from everest_render.pipeline import read_repository, resolve_repository
from everest_render.render.templates import ProviderRenderer
from tests.conftest import PROJECT_ROOT

CRDS = PROJECT_ROOT / "providers/cloudnative-pg/crds/1.30.0"


def test_vendored_crds_match_the_checksums_their_readme_records():
    recorded = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+\.cnpg\.io\.yaml)$", (CRDS.parent / "README.md").read_text(), re.M)
    )
    actual = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in CRDS.glob("*.yaml")}
    assert actual == recorded


# --- one behaviour of the mapping per test ----------------------------------------------------


@pytest.fixture
def cnpg(repo):
    """A throw-away repository (the provider is built in) with no clusters yet."""
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
    cnpg.write("clusters/b.yaml", cluster(body="components:\n  versions:\n    postgresql: {version: 16-system-trixie}\n", name="b"))
    images = {o["metadata"]["name"]: o["spec"]["imageName"] for o in cnpg.objects()}
    assert images == {"a": "ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie", "b": "ghcr.io/cloudnative-pg/postgresql:16-system-trixie"}


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


# --- the topology config: bootstrap and monitoring switches -----------------------------------


def test_bootstrap_database_and_owner_come_from_the_topology_config(cnpg):
    cnpg.write("clusters/c.yaml", cluster(body="topology: {config: {database: orders, owner: checkout}}\n"))
    assert cluster_spec(cnpg)["bootstrap"] == {"initdb": {"database": "orders", "owner": "checkout"}}


def test_monitoring_switches_are_written_only_when_on(cnpg):
    cnpg.write("clusters/a.yaml", cluster(name="a"))
    cnpg.write("clusters/b.yaml", cluster(body="topology: {config: {enablePodMonitor: true, disableDefaultQueries: true, metricsTLS: true}}\n", name="b"))
    monitoring = {o["metadata"]["name"]: o["spec"].get("monitoring") for o in cnpg.objects()}
    assert monitoring == {"a": None, "b": {"enablePodMonitor": True, "disableDefaultQueries": True, "tls": {"enabled": True}}}


# --- backups -----------------------------------------------------------------------------------

S3 = """
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: s3, namespace: ns}
spec: {type: s3, bucket: b, region: eu-west-1, credentialsSecretName: s3-creds}
---
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: minio, namespace: ns}
spec: {type: s3, bucket: m, endpointURL: "https://minio.example:9000", credentialsSecretName: minio-creds}
---
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: blob, namespace: ns}
spec: {type: azure, bucket: c, endpointURL: "https://acct.blob.core.windows.net/", credentialsSecretName: az-creds}
"""

WITH_AGENT = "engine: {}\nbackupAgent: {}\n"


def backed_up(cnpg, backup: str, name: str = "db") -> dict:
    cnpg.write("clusters/storages.yaml", S3)
    cnpg.write(f"clusters/{name}.yaml", cluster(WITH_AGENT, body=backup, name=name))
    return kinds(cnpg)


def test_an_s3_storage_becomes_the_barman_object_store_with_the_path_prefix_and_secret_references(cnpg):
    objects = backed_up(cnpg, "backup:\n  schedules: [{name: daily, schedule: '0 3 * * *', backupStorage: s3}]\n")
    assert objects["Cluster"]["spec"]["backup"] == {"barmanObjectStore": {
        "destinationPath": "s3://b/ns/db",
        "endpointURL": "https://s3.eu-west-1.amazonaws.com",
        "s3Credentials": {
            "accessKeyId": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"},
            "secretAccessKey": {"name": "s3-creds", "key": "AWS_SECRET_ACCESS_KEY"},
        },
    }}


def test_an_s3_endpoint_url_is_written_as_given_and_a_pinned_prefix_replaces_the_default(cnpg):
    objects = backed_up(cnpg, "backup:\n  pathPrefix: legacy/db-1\n  pitr: {enabled: true, backupStorage: minio}\n")
    store = objects["Cluster"]["spec"]["backup"]["barmanObjectStore"]
    assert (store["destinationPath"], store["endpointURL"]) == ("s3://m/legacy/db-1", "https://minio.example:9000")


def test_an_azure_storage_names_its_account_through_the_endpoint_url(cnpg):
    objects = backed_up(cnpg, "backup:\n  schedules: [{name: daily, schedule: '0 3 * * *', backupStorage: blob}]\n")
    assert objects["Cluster"]["spec"]["backup"] == {"barmanObjectStore": {
        "destinationPath": "https://acct.blob.core.windows.net/c/ns/db",
        "azureCredentials": {
            "storageAccount": {"name": "az-creds", "key": "AZURE_STORAGE_ACCOUNT_NAME"},
            "storageKey": {"name": "az-creds", "key": "AZURE_STORAGE_ACCOUNT_KEY"},
        },
    }}


def test_each_enabled_schedule_is_a_scheduled_backup_with_a_six_field_cron(cnpg):
    cnpg.write("clusters/storages.yaml", S3)
    cnpg.write("clusters/db.yaml", cluster(WITH_AGENT, body=(
        "backup:\n  schedules:\n"
        "    - {name: nightly, schedule: '30 2 * * *', backupStorage: s3}\n"
        "    - {name: weekly, schedule: '0 4 * * sun', backupStorage: s3}\n"
        "    - {name: hourly, schedule: '@hourly', backupStorage: s3}\n"
        "    - {name: spare, schedule: '0 5 * * *', backupStorage: s3, enabled: false}\n"
    )))
    scheduled = {o["metadata"]["name"]: o["spec"] for o in cnpg.objects() if o["kind"] == "ScheduledBackup"}
    assert {name: spec["schedule"] for name, spec in scheduled.items()} == {
        "db-nightly": "0 30 2 * * *", "db-weekly": "0 0 4 * * sun", "db-hourly": "@hourly",
    }
    assert scheduled["db-nightly"] == {
        "cluster": {"name": "db"}, "schedule": "0 30 2 * * *", "method": "barmanObjectStore",
        "backupOwnerReference": "self", "suspend": False,
    }


def test_a_paused_cluster_suspends_its_scheduled_backups(cnpg):
    objects = backed_up(cnpg, "paused: true\nbackup:\n  schedules: [{name: daily, schedule: '0 3 * * *', backupStorage: s3}]\n")
    assert objects["ScheduledBackup"]["spec"]["suspend"] is True


def test_pitr_alone_archives_wal_with_its_upload_interval_as_archive_timeout(cnpg):
    objects = backed_up(cnpg, "backup:\n  pitr: {enabled: true, backupStorage: s3, uploadIntervalSec: 120}\n")
    assert "ScheduledBackup" not in objects
    assert objects["Cluster"]["spec"]["backup"]["barmanObjectStore"]["destinationPath"] == "s3://b/ns/db"
    assert objects["Cluster"]["spec"]["postgresql"] == {"parameters": {"archive_timeout": "120s"}}


def test_retention_by_age_comes_from_the_topology_config(cnpg):
    objects = backed_up(cnpg, (
        "topology: {config: {retentionPolicy: 30d}}\n"
        "backup:\n  schedules: [{name: daily, schedule: '0 3 * * *', backupStorage: s3}]\n"
    ))
    assert objects["Cluster"]["spec"]["backup"]["retentionPolicy"] == "30d"


def test_a_backup_agent_without_schedules_or_pitr_writes_no_backup_section(cnpg):
    cnpg.write("clusters/db.yaml", cluster(WITH_AGENT))
    assert "backup" not in cluster_spec(cnpg)


def test_backup_credentials_are_listed_by_name_never_rendered(cnpg):
    cnpg.write("clusters/storages.yaml", S3)
    cnpg.write("clusters/db.yaml", cluster(WITH_AGENT, body="backup:\n  pitr: {enabled: true, backupStorage: blob}\n"))
    (resolved,) = resolve_repository(read_repository(cnpg.root)).clusters
    needed = ProviderRenderer(resolved.provider).required_secrets(resolved)
    assert ("az-creds", ["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY"]) in [(s["name"], s["keys"]) for s in needed]
    assert "Secret" not in [o["kind"] for o in cnpg.objects()]


# --- bad input: the exact line the user sees -------------------------------------------------
# One case file per refusal, in providers/cloudnative-pg/cases/, run by everest_render.testing
# (tests/test_provider_cases.py).


def test_every_postgresql_line_has_a_tag_that_stays_on_its_minor_release():
    """postgres-containers' tags (docker-bake.hcl): ``MM.mm-system-OS`` stays on one minor
    release, ``MM-system-OS`` floats; each line 14 to 18 offers the first, the default is one."""
    import yaml

    definition = yaml.safe_load((PROJECT_ROOT / "providers/cloudnative-pg/definition.yaml").read_text())
    versions = definition["spec"]["componentTypes"]["postgresql"]["versions"]
    for entry in versions:
        assert re.fullmatch(r"1[4-8](\.\d+)?-system-trixie", entry["version"]), entry
        assert entry["image"] == f"ghcr.io/cloudnative-pg/postgresql:{entry['version']}"
    minors = {v["version"].split(".")[0] for v in versions if "." in v["version"].split("-")[0]}
    assert minors == {"14", "15", "16", "17", "18"}
    (default,) = [v["version"] for v in versions if v.get("default")]
    assert "." in default.split("-")[0]
