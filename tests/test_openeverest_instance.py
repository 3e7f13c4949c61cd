"""Upstream OpenEverest Instances (core.openeverest.io/v1alpha1) as input: one behaviour per test.

An Instance is translated into the DatabaseCluster it means; the strongest check is that it
renders exactly the objects of that DatabaseCluster. Errors are asserted as whole lines.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from everest_render.authoring.instance_schema import CRD_FILE, schema_text
from everest_render.eras.schema import instance_schema, merge_patch
from everest_render.model import Expose
from tests.conftest import PROJECT_ROOT, Repo

STORAGES = """
    apiVersion: everest.percona.com/v1alpha1
    kind: BackupStorage
    metadata: {name: s3-main, namespace: shop}
    spec: {type: s3, bucket: backups, region: eu-west-1, endpointURL: "https://s3.example.com", credentialsSecretName: s3-main-credentials}
    ---
    apiVersion: everest.percona.com/v1alpha1
    kind: BackupStorage
    metadata: {name: s3-copy, namespace: shop}
    spec: {type: s3, bucket: copies, region: eu-west-1, endpointURL: "https://s3.example.com", credentialsSecretName: s3-copy-credentials}
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
    assert instance_schema()["properties"]["metadata"]["additionalProperties"] is False
    assert spec["properties"]["backup"]["required"] == ["enabled"]


def test_an_instances_status_is_ignored_as_the_clusters_report(tmp_path):
    # kubectl get -o yaml and kuttl asserts carry it; it is never input
    spec = "providerRef: {name: percona-server-mongodb}\ncomponents: {engine: {replicas: 3}}"
    with_status = instance(spec) + "status:\n  phase: Ready\n  conditions: [{type: Ready, status: 'True'}]\n"
    assert rendered(tmp_path / "with", with_status) == rendered(tmp_path / "without", instance(spec))


def test_an_exported_instances_server_metadata_is_ignored_with_a_warning_per_field(tmp_path):
    # `kubectl get instance -o yaml` writes what the API server and controllers set
    spec = "providerRef: {name: percona-server-mongodb}\ncomponents: {engine: {replicas: 3}}"
    server = (
        "  uid: 6b0f0a3c-1111-2222-3333-444455556666\n  resourceVersion: '12345'\n  generation: 3\n"
        "  creationTimestamp: '2026-05-01T10:00:00Z'\n  finalizers: [core.openeverest.io/cleanup]\n"
        "  managedFields: [{manager: kubectl, operation: Apply}]\n"
    )
    assert rendered(tmp_path / "with", instance(spec, metadata=server)) == rendered(tmp_path / "without", instance(spec))
    repo = Repo(tmp_path / "warned")
    repo.write("clusters/shop/storages.yaml", STORAGES)
    repo.write("clusters/shop/orders.yaml", instance(spec, metadata=server))
    assert repo.errors() == []
    warned = [w for w in repo.warnings() if "written by the cluster" in w]
    assert [w.split(": ", 1)[0] for w in warned] == [f"clusters/shop/orders.yaml:{n}:3" for n in range(6, 12)]
    assert warned[0].endswith("(at metadata.uid)") and "warning: ignored: 'uid'" in warned[0]


def test_other_unknown_metadata_is_still_refused(repo):
    repo.write("clusters/shop/orders.yaml", instance("providerRef: {name: percona-server-mongodb}", metadata="  uidd: x\n"))
    assert any(e.startswith("clusters/shop/orders.yaml:6:3: unknown field 'uidd'") and e.endswith("(at metadata.uidd)") for e in repo.errors())


# --- whole instances: the same objects as the DatabaseCluster they mean ------------------------


def test_an_era_d_instance_renders_as_its_database_cluster(tmp_path):
    upstream = instance(
        """
        providerRef: {name: provider-percona-postgresql}
        topology: {type: cluster}
        components:
          engine:
            type: postgresql
            version: "17.9-2"
            replicas: 3
            resources:
              requests: {cpu: "1", memory: 2Gi}
              limits: {cpu: "2", memory: 4Gi}
            storage: {size: 50Gi, storageClass: fast}
            affinity:
              podAntiAffinity:
                preferredDuringSchedulingIgnoredDuringExecution:
                  - weight: 1
                    podAffinityTerm: {topologyKey: kubernetes.io/hostname}
            parameters:
              configuration: |
                max_connections = 300
          proxy:
            replicas: 2
            service:
              serviceType: LoadBalancer
              annotations: {service.beta.kubernetes.io/aws-load-balancer-internal: "true"}
              loadBalancerService: {sourceRanges: [10.0.0.0/8]}
          backupAgent: {}
        backup:
          enabled: true
          storages:
            - storageRef: {name: s3-main}
              schedules:
                - {name: daily, enabled: true, cron: "0 3 * * *", retentionCopies: 7}
              pitr: {enabled: true}
        deletionPolicy: Cascade
        """,
        metadata="  labels: {team: stock}\n  annotations: {owner: stock-team}\n",
    )
    equivalent = cluster(
        """
        provider: percona-postgresql
        topology: {type: standard}
        components:
          bundle: "18.4-1"            # upstream's default bundle: an Instance without spec.version runs it
          versions:
            postgresql: {version: "17.9-2"}
        instances:
          engine:
            type: postgresql
            replicas: 3
            resources:
              requests: {cpu: "1", memory: 2Gi}
              limits: {cpu: "2", memory: 4Gi}
            storage: {size: 50Gi, class: fast}
            affinity:
              podAntiAffinity:
                preferredDuringSchedulingIgnoredDuringExecution:
                  - weight: 1
                    podAffinityTerm: {topologyKey: kubernetes.io/hostname}
            config: |
              max_connections = 300
          proxy:
            replicas: 2
            expose:
              type: LoadBalancer
              annotations: {service.beta.kubernetes.io/aws-load-balancer-internal: "true"}
              sourceRanges: [10.0.0.0/8]
          backupAgent: {}
        backup:
          schedules:
            - {name: daily, enabled: true, schedule: "0 3 * * *", retentionCopies: 7, backupStorage: s3-main}
          pitr: {enabled: true, backupStorage: s3-main}
        """,
        metadata="  labels: {team: stock}\n  annotations: {owner: stock-team}\n",
    )
    assert_renders_as(tmp_path, upstream, equivalent)


def test_an_era_c_instance_renders_as_its_database_cluster(tmp_path):
    upstream = instance(
        """
        provider: psmdb-operator
        topology: {type: replicaSet, config: {}}
        global: {}
        components:
          engine:
            name: engine
            type: mongod
            version: 8.0.17-6
            replicas: 3
            resources: {limits: {cpu: "1", memory: 4G}}
            storage: {size: 30Gi}
            customSpec: {}
          backupAgent: {type: backup, version: 2.11.0}
          monitoring:
            customSpec: {monitoringConfigName: pmm}
        backup:
          enabled: true
          storages:
            - name: s3-main
              storageRef: {name: s3-main}
              schedules:
                - {name: nightly, enabled: true, cron: "0 1 * * *"}
                - {name: weekly, enabled: false, cron: "0 2 * * 0", retentionCopies: 4}
        """
    )
    equivalent = cluster(
        """
        provider: percona-server-mongodb
        topology: {type: standard, config: {}}
        components:
          bundle: "8.0.12"
          versions:
            mongod: {version: 8.0.17-6}
            backup: {version: 2.11.0}
        instances:
          engine:
            type: mongod
            replicas: 3
            resources: {limits: {cpu: "1", memory: 4G}}
            storage: {size: 30Gi}
          backupAgent: {type: backup}
          monitoring: {monitoringConfig: pmm}
        backup:
          schedules:
            - {name: nightly, enabled: true, schedule: "0 1 * * *", backupStorage: s3-main}
            - {name: weekly, enabled: false, schedule: "0 2 * * 0", retentionCopies: 4, backupStorage: s3-main}
        """
    )
    assert_renders_as(tmp_path, upstream, equivalent)


def test_a_component_type_passes_through_to_pick_one_of_the_allowed_types(tmp_path):
    upstream = instance(
        """
        provider: percona-xtradb-cluster
        topology: {type: cluster}
        components:
          engine: {replicas: 3}
          proxy: {type: proxysql, version: 2.7.3-1.2, replicas: 2}
        """
    )
    equivalent = cluster(
        """
        provider: percona-xtradb-cluster
        components:
          versions:
            proxysql: {version: 2.7.3-1.2}
        instances:
          engine: {replicas: 3}
          proxy: {type: proxysql, replicas: 2}
        """
    )
    assert_renders_as(tmp_path, upstream, equivalent)


# --- aliases ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written,provider",
    [
        ("psmdb-operator", "percona-server-mongodb"),
        ("percona-server-mongodb-operator", "percona-server-mongodb"),
        ("psmdb", "percona-server-mongodb"),
        ("percona-server-mongodb", "percona-server-mongodb"),
        ("provider-percona-postgresql", "percona-postgresql"),
        ("percona-postgresql", "percona-postgresql"),
        ("percona-xtradb-cluster", "percona-xtradb-cluster"),
    ],
)
def test_provider_names_of_every_era_name_the_built_in_provider(repo, written, provider):
    components = "{engine: {}}" if provider == "percona-server-mongodb" else "{engine: {}, proxy: {}}"
    repo.write("clusters/shop/orders.yaml", instance(f"providerRef: {{name: {written}}}\ncomponents: {components}"))
    (resolved,) = repo.resolved()
    assert resolved.provider.name == provider


def test_the_era_c_provider_field_is_aliased_too(repo):
    repo.write("clusters/shop/orders.yaml", instance("provider: psmdb\ncomponents: {engine: {}}"))
    (resolved,) = repo.resolved()
    assert resolved.provider.name == "percona-server-mongodb"


def test_any_other_provider_name_passes_through_and_is_checked_where_it_was_written(repo):
    repo.write("clusters/shop/orders.yaml", instance("providerRef: {name: valkey}\ncomponents: {engine: {}}"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:7:23: unknown provider 'valkey'; known: cloudnative-pg, percona-postgresql, percona-server-mongodb, percona-xtradb-cluster"
        " (at spec.providerRef.name)"
    ]


@pytest.mark.parametrize(
    "provider,written,topology,components",
    [
        ("percona-server-mongodb", "replicaSet", "standard", "{engine: {}}"),
        ("percona-server-mongodb", "replicaset", "standard", "{engine: {}}"),
        ("percona-server-mongodb", "sharded", "sharded", "{engine: {}, configServer: {}, proxy: {}}"),
        ("percona-xtradb-cluster", "cluster", "standard", "{engine: {}, proxy: {}}"),
        ("percona-postgresql", "cluster", "standard", "{engine: {}, proxy: {}}"),
    ],
)
def test_upstream_topology_names_are_the_definitions(repo, provider, written, topology, components):
    repo.write("clusters/shop/orders.yaml", instance(f"providerRef: {{name: {provider}}}\ntopology: {{type: {written}}}\ncomponents: {components}"))
    (resolved,) = repo.resolved()
    assert resolved.topology == topology


def test_a_topology_name_without_an_alias_is_checked_where_it_was_written(repo):
    repo.write("clusters/shop/orders.yaml", instance("providerRef: {name: percona-postgresql}\ntopology: {type: replicaSet}\ncomponents: {}"))
    assert repo.errors() == ["clusters/shop/orders.yaml:8:20: unknown topology 'replicaSet'; known: standard (at spec.topology.type)"]


def test_topology_parameters_are_the_topology_config_and_num_shards_is_shards(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        instance("providerRef: {name: percona-server-mongodb}\ntopology: {type: sharded, parameters: {numShards: 3}}\n"
                 "components: {engine: {}, configServer: {}, proxy: {}}"),
    )
    (resolved,) = repo.resolved()
    assert resolved.topology_config == {"shards": 3}


def test_era_c_topology_config_is_the_topology_config(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        instance("provider: percona-server-mongodb\ntopology: {type: sharded, config: {shards: 5}}\ncomponents: {engine: {}, configServer: {}, proxy: {}}"),
    )
    (resolved,) = repo.resolved()
    assert resolved.topology_config == {"shards": 5}


def test_a_topology_config_error_points_at_the_parameter_as_written(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        instance("providerRef: {name: percona-server-mongodb}\ntopology: {type: sharded, parameters: {numShards: 0}}\n"
                 "components: {engine: {}, configServer: {}, proxy: {}}"),
    )
    assert repo.errors() == ["clusters/shop/orders.yaml:8:53: 0 is less than the minimum of 1 (at spec.topology.parameters.numShards)"]


# --- version bundles (spec.version) -------------------------------------------------------------


def versions_of(resolved) -> dict[str, str]:
    return {name: c.version for name, c in resolved.components.items()}


def test_a_named_bundle_gives_every_component_its_version(repo):
    repo.write("clusters/shop/orders.yaml", instance(PSMDB + "version: 7.0.18\ncomponents: {engine: {}, backupAgent: {}}"))
    (resolved,) = repo.resolved()
    assert versions_of(resolved) == {"engine": "7.0.18-11", "backupAgent": "2.11.0"}
    assert (resolved.bundle.name, resolved.bundle.origin) == ("7.0.18", "spec.components.bundle")


def test_without_spec_version_an_instance_runs_the_default_bundle_and_explain_pins_it(repo):
    repo.write("clusters/shop/orders.yaml", instance("providerRef: {name: provider-percona-postgresql}\ncomponents: {engine: {}, proxy: {}}"))
    (resolved,) = repo.resolved()
    assert versions_of(resolved) == {"engine": "18.4-1", "proxy": "1.25.2-1"}
    assert resolved.versions["pgbackrest"].version == "2.58.0-2"  # upstream's pgBackRest default
    assert (resolved.bundle.name, resolved.bundle.origin) == ("18.4-1", "definition percona-postgresql default bundle")
    from everest_render.commands.explain import explain_text

    assert "bundle:     18.4-1 (definition percona-postgresql default bundle)\n" in explain_text(resolved, None)


def test_a_database_cluster_without_a_bundle_keeps_the_catalogue_defaults(repo):
    repo.write("clusters/shop/orders.yaml", cluster("provider: percona-postgresql\ninstances: {engine: {}, proxy: {}}"))
    (resolved,) = repo.resolved()
    assert versions_of(resolved) == {"engine": "18.3-2", "proxy": "1.25.1-1"} and resolved.bundle is None


def test_a_components_own_version_wins_over_the_bundle(repo):
    spec = PSMDB + "version: 8.0.12\ncomponents:\n  engine: {type: mongod, version: 8.0.19-7}\n  backupAgent: {}"
    repo.write("clusters/shop/orders.yaml", instance(spec))
    (resolved,) = repo.resolved()
    assert versions_of(resolved) == {"engine": "8.0.19-7", "backupAgent": "2.11.0"}


def test_a_bundle_version_the_chosen_type_lacks_falls_back_to_its_default(repo):
    # Upstream PXC: the bundle's proxy version is HAProxy's; a ProxySQL proxy runs ProxySQL's default.
    spec = "provider: percona-xtradb-cluster\nversion: 8.0.44\ncomponents: {engine: {}, proxy: {type: proxysql}}"
    repo.write("clusters/shop/orders.yaml", instance(spec))
    (resolved,) = repo.resolved()
    assert versions_of(resolved) == {"engine": "8.0.44-35.1", "proxy": "2.7.3-1.2"}


def test_an_unknown_bundle_is_refused_at_spec_version_listing_the_known_ones(repo):
    assert errors_of(repo, PSMDB + "version: 8.0.13\ncomponents: {engine: {}}") == [
        "clusters/shop/orders.yaml:8:12: unknown version bundle '8.0.13' of definition percona-server-mongodb;"
        ' known: 6.0.19, 6.0.21, 7.0.18, 8.0.12, 8.0.4, 8.0.8; did you mean "8.0.12"? (at spec.version)'
    ]


PIN_PXC_1_20 = "apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\nspec:\n  operatorReleases:\n    percona-xtradb-cluster: 1.20.0\n"


def test_pxc_instances_run_upstreams_bundles_under_the_release_upstream_targets(repo):
    repo.write("everest-render.yaml", PIN_PXC_1_20)
    repo.write("clusters/shop/orders.yaml", instance("provider: percona-xtradb-cluster\ncomponents: {engine: {}, proxy: {}}"))
    (resolved,) = repo.resolved()
    assert (resolved.cr_version, resolved.bundle.name) == ("1.20.0", "8.4.8")  # upstream's default bundle
    assert {n: c.image for n, c in resolved.components.items()} == {
        "engine": "percona/percona-xtradb-cluster:8.4.8-8.1",
        "proxy": "percona/haproxy:2.8.18-1",
    }
    assert repo.only_object()["spec"]["crVersion"] == "1.20.0"  # and it passes the 1.20.0 schema


def test_under_pxc_1_19_an_upstream_only_bundle_is_refused_listing_that_releases(repo):
    assert errors_of(repo, "provider: percona-xtradb-cluster\nversion: 8.4.8\ncomponents: {engine: {}, proxy: {}}") == [
        "clusters/shop/orders.yaml:8:12: unknown version bundle '8.4.8' of definition percona-xtradb-cluster;"
        ' known: 8.0.39, 8.0.41, 8.0.42, 8.0.44, 8.4.5, 8.4.7; did you mean "8.4.7"? (at spec.version)'
    ]


def test_a_release_bundle_is_checked_against_that_releases_catalogue(repo):
    repo.write(
        "definitions/small.yaml",
        """
        apiVersion: everest.percona.com/v2alpha1
        kind: DatabaseClusterDefinition
        metadata: {name: small}
        spec:
          componentTypes:
            db: {versions: [{version: "1", image: "db:1", default: true}]}
          components: {engine: {type: db}}
          topologies: {standard: {components: {engine: {}}}}
          releases:
            "2.0.0":
              componentTypes:
                db: {versions: [{version: "2", image: "db:2", default: true}]}
              versions: [{name: a, components: {engine: "1"}}, {name: b, components: {engine: "2"}}]
        """,
    )
    assert repo.errors() == ["definitions/small.yaml:13:49: unknown db version 1; known: 2 (at spec.releases.2.0.0.versions[0].components.engine)"]


def test_a_definitions_bundles_are_checked_against_its_catalogue(repo):
    repo.write(
        "definitions/small.yaml",
        """
        apiVersion: everest.percona.com/v2alpha1
        kind: DatabaseClusterDefinition
        metadata: {name: small}
        spec:
          componentTypes:
            db: {versions: [{version: "1", image: "db:1", default: true}]}
          components: {engine: {type: db}, replica: {type: db}}
          topologies: {standard: {components: {engine: {}}}}
          versions:
            - {name: a, default: true, components: {engine: "2", cache: "1"}}
            - {name: a, default: true, components: {engine: "1", replica: "0"}}
        """,
    )
    assert repo.errors() == [
        "definitions/small.yaml:10:5: at most one bundle may be marked default: true (at spec.versions)",
        "definitions/small.yaml:10:53: unknown db version 2; known: 1 (at spec.versions[0].components.engine)",
        "definitions/small.yaml:10:58: unknown component 'cache'; known: engine, replica (at spec.versions[0].components.cache)",
        "definitions/small.yaml:11:14: bundle a is listed twice (at spec.versions[1].name)",
        "definitions/small.yaml:11:67: components 'engine' and 'replica' both run db, which runs one version: 1 or 0"
        " (at spec.versions[1].components.replica)",
        "definitions/small.yaml:11:67: unknown db version 0; known: 1 (at spec.versions[1].components.replica)",
    ]


# --- components ------------------------------------------------------------------------------


def test_parameters_configuration_is_the_engine_configuration_text(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        instance("providerRef: {name: percona-server-mongodb}\ncomponents:\n  engine:\n    parameters:\n      configuration: |\n        net:\n          maxIncomingConnections: 500\n"),
    )
    (resolved,) = repo.resolved()
    assert resolved.components["engine"].config == "net:\n  maxIncomingConnections: 500\n"


def test_a_service_is_the_components_expose(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        instance("providerRef: {name: percona-server-mongodb}\ncomponents:\n  engine:\n    service: {serviceType: NodePort}\n"),
    )
    (resolved,) = repo.resolved()
    assert resolved.components["engine"].expose == Expose("NodePort", (), {})


def test_a_service_whose_type_is_omitted_is_cluster_ip(repo):
    repo.write("clusters/shop/orders.yaml", instance("providerRef: {name: percona-server-mongodb}\ncomponents:\n  engine:\n    service: {}\n"))
    (resolved,) = repo.resolved()
    assert resolved.components["engine"].expose == Expose("ClusterIP", (), {})


def test_service_settings_that_only_apply_to_load_balancers_warn_where_they_were_written(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        instance("providerRef: {name: percona-server-mongodb}\ncomponents:\n  engine:\n    service:\n"
                 "      serviceType: ClusterIP\n      loadBalancerService: {sourceRanges: [10.0.0.0/8]}\n"),
    )
    assert repo.warnings() == [
        "clusters/shop/orders.yaml:12:45: warning: sourceRanges only apply to type LoadBalancer; ignored for ClusterIP"
        " (at spec.components.engine.service.loadBalancerService.sourceRanges)"
    ]


def test_a_service_on_a_component_that_cannot_be_exposed_is_an_error_at_the_service(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        instance("providerRef: {name: percona-postgresql}\ncomponents:\n  engine:\n    service: {serviceType: LoadBalancer}\n  proxy: {}\n"),
    )
    assert repo.errors() == [
        "clusters/shop/orders.yaml:10:7: expose is not allowed on 'engine': only 'proxy' can be exposed in this topology"
        " (at spec.components.engine.service)"
    ]


def test_the_monitoring_component_reports_to_parameters_monitoring_config_name(repo):
    repo.write("clusters/shop/storages.yaml", STORAGES)
    repo.write(
        "clusters/shop/orders.yaml",
        instance("providerRef: {name: percona-server-mongodb}\ncomponents:\n  engine: {}\n  monitoring:\n    parameters: {monitoringConfigName: pmm}\n"),
    )
    (resolved,) = repo.resolved()
    assert resolved.monitoring.config.ref.name == "pmm"


# --- backups ---------------------------------------------------------------------------------


def test_schedules_of_every_storage_become_the_clusters_schedules(tmp_path):
    upstream = instance(
        """
        providerRef: {name: percona-xtradb-cluster}
        components: {engine: {}, proxy: {}, backupAgent: {}}
        backup:
          enabled: true
          storages:
            - storageRef: {name: s3-main}
              schedules: [{name: daily, enabled: true, cron: "0 3 * * *", retentionCopies: 7}]
            - storageRef: {name: s3-copy}
              schedules: [{name: weekly, enabled: true, cron: "0 4 * * 0"}]
              pitr: {enabled: true}
        """
    )
    equivalent = cluster(
        """
        provider: percona-xtradb-cluster
        instances: {engine: {}, proxy: {}, backupAgent: {}}
        backup:
          schedules:
            - {name: daily, schedule: "0 3 * * *", retentionCopies: 7, backupStorage: s3-main}
            - {name: weekly, schedule: "0 4 * * 0", backupStorage: s3-copy}
          pitr: {enabled: true, backupStorage: s3-copy}
        """
    )
    assert_renders_as(tmp_path, upstream, equivalent)


def test_backups_that_are_not_enabled_are_checked_but_not_rendered(tmp_path):
    upstream = instance(
        """
        providerRef: {name: percona-server-mongodb}
        components: {engine: {}}
        backup:
          enabled: false
          storages:
            - storageRef: {name: s3-main}
              schedules: [{name: daily, enabled: true, cron: "0 3 * * *"}]
              pitr: {enabled: true}
        """
    )
    equivalent = cluster(
        """
        provider: percona-server-mongodb
        components: {bundle: "8.0.12"}
        instances: {engine: {}}
        backup:
          schedules: [{name: daily, enabled: false, schedule: "0 3 * * *", backupStorage: s3-main}]
        """
    )
    assert_renders_as(tmp_path, upstream, equivalent)


def test_a_storage_reference_is_checked_where_it_was_written(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        instance("""
            providerRef: {name: percona-server-mongodb}
            components: {engine: {}, backupAgent: {}}
            backup:
              enabled: true
              storages:
                - storageRef: {name: nowhere}
                  schedules: [{name: daily, enabled: true, cron: "0 3 * * *"}]
            """),
    )
    assert repo.errors() == [
        "clusters/shop/orders.yaml:12:28: no BackupStorage 'nowhere' in namespace shop (under clusters/); known: (none)"
        " (at spec.backup.storages[0].storageRef.name)"
    ]


def test_a_cron_error_points_at_the_schedules_cron(repo):
    repo.write("clusters/shop/storages.yaml", STORAGES)
    repo.write(
        "clusters/shop/orders.yaml",
        instance("""
            providerRef: {name: percona-server-mongodb}
            components: {engine: {}, backupAgent: {}}
            backup:
              enabled: true
              storages:
                - storageRef: {name: s3-main}
                  schedules:
                    - {name: daily, enabled: true, cron: "0 3 * *"}
            """),
    )
    assert repo.errors() == [
        "clusters/shop/orders.yaml:14:48: invalid cron expression '0 3 * *': expected 5 fields (minute hour day month weekday), got 4"
        " (at spec.backup.storages[0].schedules[0].cron)"
    ]


def test_schedule_names_are_unique_across_storages(repo):
    repo.write("clusters/shop/storages.yaml", STORAGES)
    repo.write(
        "clusters/shop/orders.yaml",
        instance("""
            providerRef: {name: percona-xtradb-cluster}
            components: {engine: {}, proxy: {}, backupAgent: {}}
            backup:
              enabled: true
              storages:
                - storageRef: {name: s3-main}
                  schedules: [{name: daily, enabled: true, cron: "0 3 * * *"}]
                - storageRef: {name: s3-copy}
                  schedules: [{name: daily, enabled: true, cron: "0 4 * * *"}]
            """),
    )
    assert repo.errors() == [
        "clusters/shop/orders.yaml:15:28: duplicate schedule name 'daily' (first at schedules[0]) (at spec.backup.storages[1].schedules[0].name)"
    ]


def test_backups_need_the_backup_agent_listed_in_components(repo):
    repo.write("clusters/shop/storages.yaml", STORAGES)
    repo.write(
        "clusters/shop/orders.yaml",
        instance("""
            providerRef: {name: percona-server-mongodb}
            components: {engine: {}}
            backup:
              enabled: true
              storages:
                - storageRef: {name: s3-main}
                  pitr: {enabled: true}
            """),
    )
    assert repo.errors() == [
        "clusters/shop/orders.yaml:9:3: backups need the backupAgent component: list it under spec.components (backupAgent: {}),"
        " or name the backup class in backup.classRef (at spec.backup)"
    ]


def test_an_era_c_storage_name_alone_names_the_backup_storage(repo):
    spec = """
        components: {engine: {}, backupAgent: {}}
        backup:
          enabled: true
          storages:
            - name: s3-gone
              schedules: [{name: daily, enabled: true, cron: "0 3 * * *"}]
        """
    assert errors_of(repo, PSMDB + textwrap.dedent(spec).lstrip("\n")) == [
        "clusters/shop/orders.yaml:12:15: no BackupStorage 's3-gone' in namespace shop (under clusters/); known: s3-copy, s3-main"
        " (at spec.backup.storages[0].name)"
    ]


# --- refusals: each an error at the field, as a whole line -------------------------------------


def errors_of(repo, spec: str) -> list[str]:
    repo.write("clusters/shop/storages.yaml", STORAGES)
    repo.write("clusters/shop/orders.yaml", instance(spec))
    return repo.errors()


PSMDB = "providerRef: {name: percona-server-mongodb}\n"




def test_an_image_override_is_refused(repo):
    assert errors_of(repo, PSMDB + "components:\n  engine: {image: 'percona/percona-server-mongodb:8.0.17-6'}") == [
        "clusters/shop/orders.yaml:9:14: image overrides are not supported: the image is the catalogue's for the component's version"
        " (at spec.components.engine.image)"
    ]


def test_an_era_c_config_map_reference_is_read_from_git(repo):
    repo.write("clusters/shop/mongod.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: mongod-conf, namespace: shop}
        data:
          mongod.conf: |
            operationProfiling:
              mode: all
        """)
    repo.write("clusters/shop/orders.yaml", instance(PSMDB + "components:\n  engine:\n    config: {configMapRef: {name: mongod-conf}, key: mongod.conf}"))
    (resolved,) = repo.resolved()
    assert resolved.components["engine"].config == "operationProfiling:\n  mode: all\n"


def test_a_config_map_not_in_git_or_a_key_it_lacks_is_an_error_at_the_reference(repo):
    repo.write("clusters/shop/mongod.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mongod-conf, namespace: shop}\ndata: {a: x, b: y}\n")
    spec = PSMDB + "topology: {type: sharded}\ncomponents:\n  engine:\n    config: {configMapRef: {name: other}}\n"
    spec += "  configServer:\n    config: {configMapRef: {name: mongod-conf}, key: c}\n  proxy:\n    config: {configMapRef: {name: mongod-conf}}"
    assert errors_of(repo, spec) == [
        "clusters/shop/orders.yaml:11:37: no ConfigMap 'other' in namespace shop (under clusters/); known: mongod-conf"
        " (at spec.components.engine.config.configMapRef.name)",
        "clusters/shop/orders.yaml:13:56: ConfigMap 'mongod-conf' has no key 'c'; known: a, b (clusters/shop/mongod.yaml)"
        " (at spec.components.configServer.config.key)",
        "clusters/shop/orders.yaml:15:7: config.key must name one of its keys; known: a, b (clusters/shop/mongod.yaml)"
        " (at spec.components.proxy.config)",
    ]


def test_an_era_c_config_secret_reference_is_refused_with_how_to_inline_it(repo):
    assert errors_of(repo, PSMDB + "components:\n  engine:\n    config: {secretRef: {name: mongod-conf}, key: mongod.conf}") == [
        "clusters/shop/orders.yaml:10:16: config.secretRef refers to a Secret, whose values the renderer never reads: inline the text as"
        " parameters.configuration, or put it in a ConfigMap under clusters/ and name it in config.configMapRef"
        " (at spec.components.engine.config.secretRef)"
    ]


def test_custom_spec_is_refused_key_by_key(repo):
    assert errors_of(repo, PSMDB + "components:\n  engine:\n    customSpec: {tls: true}") == [
        "clusters/shop/orders.yaml:10:20: customSpec.tls has no equivalent: a component takes only parameters.configuration"
        " (at spec.components.engine.customSpec.tls)"
    ]


def test_a_component_parameter_other_than_configuration_is_refused(repo):
    assert errors_of(repo, PSMDB + "components:\n  engine: {}\n  monitoring:\n    parameters: {monitoringConfigName: pmm, scrapeInterval: 30}") == [
        "clusters/shop/orders.yaml:11:47: parameters.scrapeInterval has no equivalent: a component takes only parameters.configuration"
        " and parameters.monitoringConfigName (at spec.components.monitoring.parameters.scrapeInterval)"
    ]


def test_a_monitoring_config_given_twice_is_refused(repo):
    spec = PSMDB + "components:\n  engine: {}\n  monitoring:\n    customSpec: {monitoringConfigName: pmm}\n    parameters: {monitoringConfigName: pmm}"
    assert errors_of(repo, spec) == [
        "clusters/shop/orders.yaml:12:20: monitoringConfigName is already given in customSpec; write it once"
        " (at spec.components.monitoring.parameters.monitoringConfigName)"
    ]


def test_resource_claims_are_refused(repo):
    assert errors_of(repo, PSMDB + "components:\n  engine:\n    resources: {claims: [{name: gpu}], limits: {cpu: '1'}}") == [
        "clusters/shop/orders.yaml:10:19: resource claims (dynamic resource allocation) are not supported; remove claims"
        " (at spec.components.engine.resources.claims)"
    ]


@pytest.mark.parametrize("field", ["global", "parameters"])
def test_instance_wide_parameters_are_refused(repo, field):
    assert errors_of(repo, PSMDB + f"{field}: {{tls: true}}\ncomponents: {{engine: {{}}}}") == [
        f"clusters/shop/orders.yaml:8:3: spec.{field} (instance-wide provider parameters) has no equivalent; remove it (at spec.{field})"
    ]


def test_empty_parameter_bags_ask_for_nothing_and_are_accepted(repo):
    repo.write("clusters/shop/orders.yaml", instance(PSMDB + "global: {}\nparameters: {}\ncomponents:\n  engine: {customSpec: {}, parameters: {}}"))
    assert repo.errors() == []


def test_a_data_source_is_refused(repo):
    assert errors_of(repo, PSMDB + "dataSource: {type: Backup, backup: {backupRef: {name: b1}}}\ncomponents: {engine: {}}") == [
        "clusters/shop/orders.yaml:8:3: dataSource is not supported: a rendered cluster is not seeded from a backup; restore it separately"
        " (at spec.dataSource)"
    ]


def test_deletion_policy_orphan_is_refused(repo):
    assert errors_of(repo, PSMDB + "deletionPolicy: Orphan\ncomponents: {engine: {}}") == [
        "clusters/shop/orders.yaml:8:19: deletionPolicy Orphan cannot be honoured: removing a cluster from git removes its objects (Cascade)"
        " (at spec.deletionPolicy)"
    ]


def test_maintenance_is_refused(repo):
    assert errors_of(repo, PSMDB + "maintenance: {autoApproveUpTo: RollingRestart}\ncomponents: {engine: {}}") == [
        "clusters/shop/orders.yaml:8:3: maintenance is not supported: operator upgrades follow the provider's version in git,"
        " not approvals in the cluster (at spec.maintenance)"
    ]


def test_a_backup_class_is_accepted_and_runs_the_providers_backup_agent(repo):
    # Upstream's kuttl fixture shape: classRef, an on-demand storage, no backupAgent component.
    spec = """
        provider: percona-server-mongodb
        backup:
          enabled: true
          classRef: {name: percona-backup-mongodb}
          storages:
            - name: s3-main
              storageRef: {name: s3-main}
        components:
          engine: {replicas: 3}
        """
    repo.write("clusters/shop/storages.yaml", STORAGES)
    repo.write("clusters/shop/orders.yaml", instance(textwrap.dedent(spec)))
    (resolved,) = repo.resolved()
    assert "backupAgent" in resolved.components
    assert list(resolved.backup.storages) == ["s3-main"] and resolved.backup.schedules == ()
    assert repo.diagnostics() == ()


def test_an_on_demand_storage_is_registered_after_the_scheduled_ones(repo):
    spec = """
        providerRef: {name: percona-xtradb-cluster}
        components: {engine: {}, proxy: {}, backupAgent: {}}
        backup:
          enabled: true
          storages:
            - storageRef: {name: s3-copy}
            - storageRef: {name: s3-main}
              schedules: [{name: daily, enabled: true, cron: "0 3 * * *"}]
        """
    repo.write("clusters/shop/storages.yaml", STORAGES)
    repo.write("clusters/shop/orders.yaml", instance(textwrap.dedent(spec)))
    (resolved,) = repo.resolved()
    assert list(resolved.backup.storages) == ["s3-main", "s3-copy"]
    storages = repo.only_object()["spec"]["backup"]["storages"]
    assert set(storages) == {"s3-main", "s3-copy"}


def test_backup_class_options_are_refused(repo):
    spec = """
        components: {engine: {}, backupAgent: {}}
        backup:
          enabled: true
          storages:
            - storageRef: {name: s3-main}
              schedules: [{name: daily, enabled: true, cron: "0 3 * * *", parameters: {compression: zstd}}]
              pitr: {enabled: true, config: {oplogSpanMin: 10}}
        """
    assert errors_of(repo, PSMDB + textwrap.dedent(spec).lstrip("\n")) == [
        "clusters/shop/orders.yaml:13:69: schedule parameters (the backup class's options) has no equivalent; remove it"
        " (at spec.backup.storages[0].schedules[0].parameters)",
        "clusters/shop/orders.yaml:14:31: PITR config (the backup class's options) has no equivalent; remove it"
        " (at spec.backup.storages[0].pitr.config)",
    ]


def test_pitr_on_two_storages_is_refused(repo):
    spec = """
        providerRef: {name: percona-xtradb-cluster}
        components: {engine: {}, proxy: {}, backupAgent: {}}
        backup:
          enabled: true
          storages:
            - {storageRef: {name: s3-main}, pitr: {enabled: true}}
            - {storageRef: {name: s3-copy}, pitr: {enabled: true}}
        """
    assert errors_of(repo, textwrap.dedent(spec)) == [
        "clusters/shop/orders.yaml:13:55: PITR writes to one storage only; it is already enabled at spec.backup.storages[0].pitr"
        " (at spec.backup.storages[1].pitr.enabled)"
    ]


def test_a_storage_name_that_differs_from_its_backup_storage_is_refused(repo):
    spec = """
        components: {engine: {}, backupAgent: {}}
        backup:
          enabled: true
          storages:
            - name: primary
              storageRef: {name: s3-main}
              schedules: [{name: daily, enabled: true, cron: "0 3 * * *"}]
        """
    assert errors_of(repo, PSMDB + textwrap.dedent(spec).lstrip("\n")) == [
        "clusters/shop/orders.yaml:12:15: name 'primary' differs from storageRef.name 's3-main': a rendered cluster names each storage"
        " after its BackupStorage; remove name (at spec.backup.storages[0].name)"
    ]


def test_a_storage_that_names_no_backup_storage_is_an_error(repo):
    spec = PSMDB + "components: {engine: {}, backupAgent: {}}\nbackup:\n  enabled: true\n  storages: [{schedules: []}]"
    assert errors_of(repo, spec) == [
        "clusters/shop/orders.yaml:11:16: a backup storage needs storageRef.name: the BackupStorage it writes to (at spec.backup.storages[0])"
    ]


def test_main_is_refused_when_there_are_several_storages(repo):
    spec = """
        providerRef: {name: percona-xtradb-cluster}
        components: {engine: {}, proxy: {}, backupAgent: {}}
        backup:
          enabled: true
          storages:
            - {storageRef: {name: s3-main}, main: true, schedules: [{name: a, enabled: true, cron: "0 3 * * *"}]}
            - {storageRef: {name: s3-copy}, schedules: [{name: b, enabled: true, cron: "0 4 * * *"}]}
        """
    assert errors_of(repo, textwrap.dedent(spec)) == [
        "clusters/shop/orders.yaml:12:39: main cannot be honoured with several storages: the provider decides which one is the default"
        " (at spec.backup.storages[0].main)"
    ]


def test_a_version_without_its_type_pins_the_components_declared_type(repo):
    # upstream looks a component's version up by the component's declared type
    repo.write("clusters/shop/orders.yaml", instance(PSMDB + "components:\n  engine: {version: 8.0.19-7}\n  backupAgent: {version: 2.11.0}"))
    (resolved,) = repo.resolved()
    assert versions_of(resolved) == {"engine": "8.0.19-7", "backupAgent": "2.11.0"}
    assert resolved.pinned == ("backup", "mongod")


def test_a_version_without_its_type_is_located_at_the_version(repo):
    (error,) = errors_of(repo, PSMDB + "components:\n  engine: {version: 8.0.17-99}")
    assert error.startswith("clusters/shop/orders.yaml:9:23: unknown mongod version 8.0.17-99; known: ")
    assert error.endswith('did you mean "8.0.17-6"? (at spec.components.engine.version)')


def test_components_of_one_declared_type_without_types_must_pin_one_version(repo):
    spec = "topology: {type: sharded}\ncomponents:\n  engine: {version: 8.0.12-4}\n  configServer: {version: 8.0.19-7}\n  proxy: {}"
    assert errors_of(repo, PSMDB + spec) == [
        "clusters/shop/orders.yaml:11:29: components 'engine' and 'configServer' both run mongod, which runs one version:"
        " 8.0.12-4 (components.engine.version) or 8.0.19-7 (at spec.components.configServer.version)"
    ]


def test_a_version_on_a_component_no_provider_declares_needs_its_type(repo):
    repo.write("clusters/shop/orders.yaml", instance("providerRef: {name: my-own}\ncomponents:\n  engine: {version: \"1.0\"}"))
    assert [e for e in repo.errors() if "needs the component's type" in e] == [
        "clusters/shop/orders.yaml:9:14: a pinned version needs the component's type beside it (components.engine.type): the provider"
        " declares no component 'engine', and versions are pinned per type (at spec.components.engine.version)"
    ]


def test_components_of_one_type_must_pin_one_version(repo):
    spec = """
        topology: {type: sharded}
        components:
          engine: {type: mongod, version: 8.0.17-6}
          configServer: {type: mongod, version: 8.0.19-7}
          proxy: {type: mongod, version: 8.0.17-6}
        """
    assert errors_of(repo, PSMDB + textwrap.dedent(spec).lstrip("\n")) == [
        "clusters/shop/orders.yaml:11:43: components 'engine' and 'configServer' both run mongod, which runs one version:"
        " 8.0.17-6 (components.engine.version) or 8.0.19-7 (at spec.components.configServer.version)"
    ]


def test_a_component_name_that_differs_from_its_key_is_refused(repo):
    assert errors_of(repo, PSMDB + "components:\n  engine: {name: mongod}") == [
        "clusters/shop/orders.yaml:9:20: name 'mongod' differs from the component's key 'engine'; remove it (at spec.components.engine.name)"
    ]


def test_provider_and_provider_ref_together_are_refused(repo):
    assert errors_of(repo, PSMDB + "provider: percona-server-mongodb\ncomponents: {engine: {}}") == [
        "clusters/shop/orders.yaml:8:3: write spec.providerRef (or, era C, spec.provider), not both (at spec.provider)"
    ]


def test_topology_config_and_parameters_together_are_refused(repo):
    spec = PSMDB + "topology: {type: sharded, config: {shards: 2}, parameters: {numShards: 2}}\ncomponents: {engine: {}, configServer: {}, proxy: {}}"
    assert errors_of(repo, spec) == [
        "clusters/shop/orders.yaml:8:29: write topology.parameters (or, era C, topology.config), not both (at spec.topology.config)"
    ]


def test_num_shards_and_shards_together_are_refused(repo):
    spec = PSMDB + "topology: {type: sharded, parameters: {numShards: 2, shards: 2}}\ncomponents: {engine: {}, configServer: {}, proxy: {}}"
    assert errors_of(repo, spec) == [
        "clusters/shop/orders.yaml:8:56: 'shards' is another name of 'shards', which is already set; write one of them"
        " (at spec.topology.parameters.shards)"
    ]


def test_an_instance_without_a_provider_is_an_error(repo):
    assert errors_of(repo, "components: {engine: {}}") == [
        "clusters/shop/orders.yaml:6:1: missing required field 'providerRef' (or, era C, 'provider') (at spec)"
    ]


def test_an_instance_without_a_provider_still_reports_its_refused_fields(repo):
    assert errors_of(repo, "maintenance: {}\ncomponents: {engine: {}}") == [
        "clusters/shop/orders.yaml:6:1: missing required field 'providerRef' (or, era C, 'provider') (at spec)",
        "clusters/shop/orders.yaml:7:3: maintenance is not supported: operator upgrades follow the provider's version in git,"
        " not approvals in the cluster (at spec.maintenance)",
    ]


# --- newest upstream fields --------------------------------------------------------------------


def test_user_secret_ref_names_the_users_secret(repo):
    repo.write("clusters/shop/orders.yaml", instance(PSMDB + "userSecretRef: {name: orders-users}\ncomponents: {engine: {}}"))
    (resolved,) = repo.resolved()
    assert resolved.secrets_name == "orders-users"


def test_scheduling_policy_affinity_is_the_components_affinity(repo):
    affinity = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}}
    spec = PSMDB + "components:\n  engine:\n    schedulingPolicy:\n      affinity: " + json.dumps(affinity)
    repo.write("clusters/shop/orders.yaml", instance(spec))
    (resolved,) = repo.resolved()
    assert resolved.components["engine"].affinity == affinity


def test_scheduling_policy_fields_without_an_equivalent_are_refused_with_the_reason(repo):
    spec = PSMDB + "components:\n  engine:\n    schedulingPolicy:\n      nodeSelector: {disk: ssd}\n      tolerations: [{key: db}]"
    assert errors_of(repo, spec) == [
        "clusters/shop/orders.yaml:11:9: schedulingPolicy.nodeSelector has no equivalent: a rendered component is placed by affinity only"
        " (schedulingPolicy.affinity, or affinity); express it as node or pod affinity (at spec.components.engine.schedulingPolicy.nodeSelector)",
        "clusters/shop/orders.yaml:12:9: schedulingPolicy.tolerations has no equivalent: a rendered component is placed by affinity only"
        " (schedulingPolicy.affinity, or affinity); express it as node or pod affinity (at spec.components.engine.schedulingPolicy.tolerations)",
    ]


def test_a_monitoring_component_without_a_config_name_is_skipped_with_a_warning(repo):
    repo.write("clusters/shop/orders.yaml", instance(PSMDB + "components: {engine: {}, monitoring: {}}"))
    (resolved,) = repo.resolved()
    assert "monitoring" not in resolved.components and resolved.monitoring is None
    assert repo.warnings() == [
        "clusters/shop/orders.yaml:8:28: warning: monitoring names no MonitoringConfig (monitoringConfigName): skipped,"
        " as upstream skips it (at spec.components.monitoring)"
    ]


def test_every_problem_at_once_a_shape_error_does_not_stop_the_other_checks(repo):
    spec = PSMDB + "version: '9.9'\ndeletionPolicy: Orphan\ncomponents:\n  engine: {replica: 3, image: x}"
    assert errors_of(repo, spec) == [
        "clusters/shop/orders.yaml:8:12: unknown version bundle '9.9' of definition percona-server-mongodb;"
        " known: 6.0.19, 6.0.21, 7.0.18, 8.0.12, 8.0.4, 8.0.8 (at spec.version)",
        "clusters/shop/orders.yaml:9:19: deletionPolicy Orphan cannot be honoured: removing a cluster from git removes its objects (Cascade)"
        " (at spec.deletionPolicy)",
        "clusters/shop/orders.yaml:11:14: unknown field 'replica'; did you mean \"replicas\"? (at spec.components.engine.replica)",
        "clusters/shop/orders.yaml:11:26: image overrides are not supported: the image is the catalogue's for the component's version"
        " (at spec.components.engine.image)",
    ]


# --- shape -----------------------------------------------------------------------------------


def test_an_unknown_field_is_an_error_at_its_key(repo):
    assert errors_of(repo, PSMDB + "components:\n  engine: {replica: 3}") == [
        "clusters/shop/orders.yaml:9:14: unknown field 'replica'; did you mean \"replicas\"? (at spec.components.engine.replica)"
    ]


def test_an_unknown_era_d_service_field_is_an_error_at_its_key(repo):
    assert errors_of(repo, PSMDB + "components:\n  engine:\n    service: {type: LoadBalancer}") == [
        "clusters/shop/orders.yaml:10:17: unknown field 'type' (at spec.components.engine.service.type)"
    ]


def test_finalizers_are_not_input(repo):
    # a controller's, on the Instance: they never reach the native object (its finalizers are the provider's)
    repo.write("clusters/shop/orders.yaml", instance(PSMDB + "components: {engine: {}}", metadata="  finalizers: [x]\n"))
    assert repo.errors() == []
    assert [w for w in repo.warnings() if "finalizers" in w] == [
        "clusters/shop/orders.yaml:6:3: warning: ignored: 'finalizers' is written by the cluster (an exported Instance carries it),"
        " never taken from git (at metadata.finalizers)"
    ]


# --- positions: later stages point at the Instance's own lines ---------------------------------


def test_an_unknown_version_found_in_resolve_points_at_the_components_version(repo):
    assert errors_of(repo, PSMDB + "components:\n  engine:\n    type: mongod\n    version: '9.9'") == [
        "clusters/shop/orders.yaml:11:16: unknown mongod version 9.9; known: 6.0.18-15, 6.0.19-16, 6.0.21-18, 6.0.25-20, 6.0.27-21, 7.0.15-9, 7.0.18-11, 7.0.24-13, 7.0.28-15, 7.0.30-16, 8.0.12-4, 8.0.17-6, 8.0.19-7, 8.0.4-1, 8.0.8-3"
        " (at spec.components.engine.version)"
    ]


def test_a_database_cluster_shape_error_points_at_the_instance_field(repo):
    assert errors_of(repo, PSMDB + "components:\n  engine: {replicas: -1, storage: {size: 10Gi, storageClass: ''}}") == [
        "clusters/shop/orders.yaml:9:24: -1 is less than the minimum of 0 (at spec.components.engine.replicas)",
        "clusters/shop/orders.yaml:9:64: \"\" is shorter than 1 character (at spec.components.engine.storage.storageClass)",
    ]


def test_a_missing_required_component_points_at_the_components(repo):
    assert errors_of(repo, "providerRef: {name: percona-xtradb-cluster}\ncomponents:\n  engine: {}") == [
        "clusters/shop/orders.yaml:8:3: component 'proxy' is required by topology standard; list it under spec.instances (at spec.components)"
    ]


def test_an_instance_and_a_database_cluster_of_the_same_name_are_duplicates(repo):
    repo.write("clusters/a.yaml", cluster("provider: percona-server-mongodb\ninstances: {engine: {}}"))
    repo.write("clusters/b.yaml", instance(PSMDB + "components: {engine: {}}"))
    assert repo.errors() == ["clusters/b.yaml:4:9: duplicate DatabaseCluster shop/orders (first at clusters/a.yaml:1) (at metadata.name)"]


def test_the_translated_document_maps_every_path_to_its_origin():
    from everest_render.eras.openeverest_instance import translate_instance
    from everest_render.load.documents import parse_yaml
    from everest_render.load.text import SourceFile

    text = instance(PSMDB + "components:\n  engine:\n    storage: {storageClass: fast}\n    service: {serviceType: NodePort}")
    ((document,), _) = parse_yaml(SourceFile("clusters/orders.yaml", text))
    translated, problems = translate_instance(document, ())
    assert problems == [] and translated is not None
    positions = translated.positions
    assert translated.data["spec"]["instances"]["engine"] == {"storage": {"class": "fast"}, "expose": {"type": "NodePort"}}
    assert positions.written(("spec", "instances", "engine", "storage", "class")) == ("spec", "components", "engine", "storage", "storageClass")
    assert positions.written(("spec", "instances", "engine", "expose", "type")) == ("spec", "components", "engine", "service", "serviceType")
    assert positions.written(("spec", "provider")) == ("spec", "providerRef", "name")
    assert positions.values[("spec", "instances", "engine", "storage", "class")] == document.positions.values[
        ("spec", "components", "engine", "storage", "storageClass")
    ]
    assert positions.keys[("spec", "instances", "engine", "expose")] == document.positions.keys[("spec", "components", "engine", "service")]



def test_every_translated_path_comes_from_a_field_the_instance_writes():
    # Origins are recorded by the one write primitive, so none can name a field that is not there.
    from everest_render.eras.openeverest_instance import translate_instance
    from everest_render.load.documents import parse_yaml
    from everest_render.load.files import RepositoryFiles, SourceSet, read_builtins
    from everest_render.load.text import SourceFile
    from everest_render.pipeline import resolve_repository

    builtins = resolve_repository(RepositoryFiles(read_builtins(), SourceSet([], {}, False))).catalog
    text = instance(
        """
        providerRef: {name: psmdb}
        topology: {type: sharded, parameters: {numShards: 3}}
        components:
          engine: {type: mongod, version: 8.0.19-7, replicas: 3, storage: {size: 5Gi, storageClass: fast},
                   resources: {requests: {cpu: "1"}}, parameters: {configuration: "a: b"}}
          proxy: {type: mongos, service: {serviceType: LoadBalancer, loadBalancerService: {sourceRanges: [10.0.0.0/8]}}}
          monitoring: {customSpec: {monitoringConfigName: pmm}}
          backupAgent: {}
        backup:
          enabled: true
          storages:
            - storageRef: {name: s3-main}
              schedules: [{name: daily, enabled: true, cron: "0 3 * * *", retentionCopies: 7}]
              pitr: {enabled: true}
        """
    )
    ((document,), _) = parse_yaml(SourceFile("clusters/orders.yaml", text))
    translated, problems = translate_instance(document, list(builtins.providers.values()))
    assert problems == [] and translated is not None

    def paths(node, path=()):
        yield path
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in children:
            yield from paths(value, (*path, key))

    def written(data, path):
        for part in path:
            if (isinstance(data, dict) and part in data) or (isinstance(data, list) and isinstance(part, int) and part < len(data)):
                data = data[part]
            else:
                return False
        return True

    spec_paths = [p for p in paths(translated.data["spec"], ("spec",))]
    assert len(spec_paths) > 40
    assert [p for p in spec_paths if not written(document.data, translated.positions.written(p))] == []
