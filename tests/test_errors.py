"""Bad input: every problem at once, as `file:line:col: what (at path)` lines."""

from __future__ import annotations

from tests.conftest import mongodb


def test_unknown_field_points_at_the_key(repo):
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicaz: 3}\n"))
    assert repo.errors() == ["clusters/shop/orders.yaml:9:14: unknown field 'replicaz'; did you mean \"replicas\"? (at spec.instances.engine.replicaz)"]


def test_missing_required_field_points_at_the_mapping_that_lacks_it(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\nmetadata:\n  name: orders\n  namespace: shop\nspec:\n  instances: {}\n",
    )
    assert repo.errors() == ["clusters/shop/orders.yaml:6:1: missing required field 'provider' (at spec)"]


def test_missing_namespace_is_an_error(repo):
    repo.write(
        "clusters/orders.yaml",
        "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\nmetadata:\n  name: orders\nspec:\n  provider: percona-server-mongodb\n",
    )
    assert repo.errors() == ["clusters/orders.yaml:3:1: missing required field 'namespace' (at metadata)"]


def test_list_items_are_written_with_their_index(repo):
    body = "  instances:\n    engine:\n      expose:\n        type: LoadBalancer\n        sourceRanges: [10.0.0.0/8, not-an-ip]\n"
    repo.write("clusters/shop/orders.yaml", mongodb(body=body))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:12:36: 'not-an-ip' is not an IP address or CIDR range (at spec.instances.engine.expose.sourceRanges[1])"
    ]


def test_duplicate_key_points_at_the_second_and_names_the_first(repo):
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {}\n  paused: true\n  paused: false\n"))
    assert repo.errors() == ["clusters/shop/orders.yaml:11:3: duplicate key 'paused' (first at line 10) (at spec.paused)"]


def test_duplicate_cluster_points_at_the_second_and_names_the_first(repo):
    repo.write("clusters/a.yaml", mongodb())
    repo.write("clusters/b.yaml", mongodb())
    assert repo.errors() == ["clusters/b.yaml:4:9: duplicate DatabaseCluster shop/orders (first at clusters/a.yaml:1) (at metadata.name)"]


def test_unknown_version_lists_the_known_ones(repo):
    repo.write("clusters/shop/orders.yaml", mongodb(body="  components:\n    versions:\n      mongod: {version: '9.9'}\n  instances:\n    engine: {}\n"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:10:25: unknown mongod version 9.9; known: 6.0.18-15, 6.0.19-16, 6.0.21-18, 6.0.25-20, 6.0.27-21, 7.0.15-9, 7.0.18-11, 7.0.24-13, 7.0.28-15, 7.0.30-16, 8.0.12-4, 8.0.17-6, 8.0.19-7, 8.0.4-1, 8.0.8-3"
        " (at spec.components.versions.mongod.version)"
    ]


def test_an_unquoted_numeric_version_is_refused_not_guessed(repo):
    repo.write("clusters/shop/orders.yaml", mongodb(body="  components:\n    versions:\n      mongod: {version: 8.0}\n  instances:\n    engine: {}\n"))
    assert repo.errors() == ["clusters/shop/orders.yaml:10:25: 8.0 is not of type \"string\" (at spec.components.versions.mongod.version)"]


def test_unknown_provider_lists_the_known_ones(repo):
    repo.write("clusters/shop/orders.yaml", mongodb().replace("percona-server-mongodb", "mongo"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:7:13: unknown provider 'mongo'; known: cloudnative-pg, percona-postgresql, percona-server-mongodb, percona-xtradb-cluster"
        " (at spec.provider)"
    ]


def test_omitting_the_topology_is_an_error_when_none_is_the_default(repo):
    repo.write("definitions/two.yaml", """
        apiVersion: everest.percona.com/v2alpha1
        kind: DatabaseClusterDefinition
        metadata: {name: two}
        spec:
          componentTypes:
            db: {versions: [{version: "1.0", image: db:1.0, default: true}]}
          components: {engine: {type: db}}
          topologies:
            a: {components: {engine: {}}}
            b: {components: {engine: {}}}
        """)
    repo.write("providers/two/provider.yaml", """
        apiVersion: everest.percona.com/v2alpha1
        kind: Provider
        metadata: {name: two}
        spec:
          databaseClusterDefinition: two
          operator: {name: two-operator, version: 1.0.0}
          templates: [x.yaml.j2]
          objects: [{apiVersion: v1, kind: ConfigMap, schema: configmap.json}]
        """)
    repo.write("providers/two/x.yaml.j2", "")
    repo.write("providers/two/configmap.json", "{}")
    repo.write("clusters/db.yaml", "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\nmetadata: {name: db, namespace: ns}\nspec:\n  provider: two\n  instances: {engine: {}}\n")
    assert repo.errors() == ["clusters/db.yaml:4:1: spec.topology.type is required: definition two has several topologies: a, b (at spec)"]


def test_a_required_component_must_be_listed(repo):
    repo.write("clusters/shop/orders.yaml", mongodb(body="  topology: {type: sharded}\n  instances:\n    engine: {}\n    proxy: {}\n"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:9:3: component 'configServer' is required by topology sharded; list it under spec.instances (at spec.instances)"
    ]


def test_a_component_the_topology_lacks_is_an_error(repo):
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {}\n    proxy: {}\n"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:10:5: topology standard has no component 'proxy'; known: backupAgent, engine, monitoring (at spec.instances.proxy)"
    ]


def test_expose_is_only_allowed_where_clients_connect(repo):
    body = "  topology: {type: sharded}\n  instances:\n    engine: {expose: {type: LoadBalancer}}\n    configServer: {}\n    proxy: {}\n"
    repo.write("clusters/shop/orders.yaml", mongodb(body=body))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:10:14: expose is not allowed on 'engine': only 'proxy' can be exposed in this topology"
        " (at spec.instances.engine.expose)"
    ]


def test_source_ranges_outside_a_load_balancer_warn_and_are_dropped(repo):
    body = "  instances:\n    engine:\n      expose: {type: ClusterIP, sourceRanges: [10.0.0.0/8]}\n"
    repo.write("clusters/shop/orders.yaml", mongodb(body=body))
    assert repo.warnings() == [
        "clusters/shop/orders.yaml:10:47: warning: sourceRanges only apply to type LoadBalancer; ignored for ClusterIP"
        " (at spec.instances.engine.expose.sourceRanges)"
    ]
    assert "loadBalancerSourceRanges" not in repo.only_object()["spec"]["replsets"][0]["expose"]


def test_a_label_the_renderer_owns_is_refused(repo):
    repo.write("clusters/shop/orders.yaml", mongodb().replace("  namespace: shop\n", "  namespace: shop\n  labels: {app.kubernetes.io/managed-by: me}\n"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:6:12: label 'app.kubernetes.io/managed-by' is set by the renderer; remove it"
        " (at metadata.labels.app.kubernetes.io/managed-by)"
    ]


def test_mixing_resource_shorthand_and_full_form_is_refused(repo):
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine:\n      resources: {cpu: 1, limits: {cpu: 2}}\n"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:10:18: use either the shorthand {cpu, memory} or {requests, limits}, not both"
        " (at spec.instances.engine.resources)"
    ]


def test_invalid_quantity_says_what_a_quantity_looks_like(repo):
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine:\n      storage: {size: lots}\n"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:10:23: 'lots' is not a valid quantity (e.g. 500m, 2Gi, 4G) (at spec.instances.engine.storage.size)"
    ]


def test_a_file_that_does_not_parse_does_not_hide_problems_in_other_files(repo):
    repo.write("clusters/a.yaml", "a: [1, 2\n")
    repo.write("clusters/b.yaml", mongodb(body="  instances:\n    engine: {replicas: -1}\n"))
    assert repo.errors() == [
        "clusters/a.yaml:2:1: invalid YAML: did not find expected ',' or ']'",
        "clusters/b.yaml:9:24: -1 is less than the minimum of 0 (at spec.instances.engine.replicas)",
    ]


def test_a_secret_with_clear_data_is_refused(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: shop}\nstringData: {password: hunter2}\n")
    errors = repo.errors()
    assert errors == [
        "clusters/shop/secret.yaml:4:1: a Secret with data must not be committed in clear; use SOPS, a SealedSecret or an ExternalSecret"
        " (at stringData)"
    ]
    assert "hunter2" not in "".join(errors)


def test_an_empty_repository_is_refused_rather_than_rendered_empty(repo):
    (repo.root / "clusters").mkdir()
    assert repo.errors() == [
        "clusters:1:1: no DatabaseCluster found: refusing an empty render (it would prune every database)"
    ]


def test_a_name_longer_than_a_dns_label_is_refused(repo):
    repo.write("clusters/shop/orders.yaml", mongodb(name="x" * 64))
    (error,) = repo.errors()
    assert error.startswith("clusters/shop/orders.yaml:4:9: ") and error.endswith("(at metadata.name)")


def test_an_unknown_field_does_not_hide_the_other_problems_of_the_cluster(repo):
    body = "  components:\n    versions:\n      mongod: {version: '9.9'}\n  instances:\n    engine: {replicaz: 3}\n    proxy: {}\n"
    repo.write("clusters/shop/orders.yaml", mongodb(body=body))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:10:25: unknown mongod version 9.9; known: 6.0.18-15, 6.0.19-16, 6.0.21-18, 6.0.25-20, 6.0.27-21, 7.0.15-9, 7.0.18-11, 7.0.24-13, 7.0.28-15, 7.0.30-16, 8.0.12-4, 8.0.17-6, 8.0.19-7, 8.0.4-1, 8.0.8-3 (at spec.components.versions.mongod.version)",
        "clusters/shop/orders.yaml:12:14: unknown field 'replicaz'; did you mean \"replicas\"? (at spec.instances.engine.replicaz)",
        "clusters/shop/orders.yaml:13:5: topology standard has no component 'proxy'; known: backupAgent, engine, monitoring (at spec.instances.proxy)",
    ]


def test_a_json_file_under_clusters_is_named_not_skipped_silently(repo):
    # kubectl applies *.json manifests; here they are not inputs, so a DatabaseCluster written
    # as JSON would vanish from out/ (and be pruned): the file is named. Other files (a README)
    # are not manifests and are not named.
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/ledger.json", '{"apiVersion": "everest.percona.com/v2alpha1", "kind": "DatabaseCluster"}\n')
    repo.write("clusters/shop/README.md", "# shop\n")
    assert repo.warnings() == [
        "clusters/shop/ledger.json:1:1: warning: is not read: only *.yaml and *.yml files are inputs, and a"
        " DatabaseCluster in it would not be rendered (write it as YAML, or name it in .everestignore)"
    ]
    assert repo.only_object()["metadata"]["name"] == "orders"
    repo.write(".everestignore", "*.json\n")
    assert repo.warnings() == []


def test_a_render_with_only_warnings_beside_no_cluster_is_still_refused_as_empty(repo):
    repo.write("clusters/shop/ledger.json", "{}\n")
    assert "clusters:1:1: no DatabaseCluster found: refusing an empty render (it would prune every database)" in repo.errors()


def test_versions_are_decided_per_set_of_pins_and_each_cluster_records_its_defaults(repo):
    """Clusters pinning the same versions share what those resolve to (decided once); one pinning
    another gets its own; each records the defaults it was given; a bad pin is refused for
    every cluster that writes it."""
    from everest_render.pipeline import read_repository, resolve_repository

    pin = "  components:\n    versions:\n      mongod: {version: '%s'}\n  instances:\n    engine: {}\n"
    for name, version in (("a", "7.0.15-9"), ("b", "7.0.15-9"), ("c", "8.0.4-1")):
        repo.write(f"clusters/shop/{name}.yaml", mongodb(name, body=pin % version))
    resolved = {c.ref.name: c for c in resolve_repository(read_repository(repo.root)).clusters}
    assert {name: c.versions["mongod"].version for name, c in resolved.items()} == {"a": "7.0.15-9", "b": "7.0.15-9", "c": "8.0.4-1"}
    defaulted = {name: sorted(d.path for d in c.defaults if d.path.startswith("spec.components.versions.")) for name, c in resolved.items()}
    assert defaulted["a"] == defaulted["b"] == defaulted["c"] != []
    assert "spec.components.versions.mongod.version" not in defaulted["a"]
    for name in ("d", "e"):
        repo.write(f"clusters/shop/{name}.yaml", mongodb(name, body=pin % "9.9"))
    assert [e.split(":")[0] for e in repo.errors()] == ["clusters/shop/d.yaml", "clusters/shop/e.yaml"]
