"""The percona-server-mongodb provider: each field of the everest mapping, one behaviour per test.

A refusal that is one cluster and its error lines is a case file instead
(providers/percona-server-mongodb/cases/, run by tests/test_provider_cases.py).
"""

from __future__ import annotations

from tests.conftest import mongodb

SHARDED = "  topology: {type: sharded}\n  instances:\n    engine: {}\n    configServer: {}\n    proxy: {}\n"
STORAGE = """\
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-main, namespace: shop}
spec: {type: s3, bucket: bkt, region: us-east-2, endpointURL: "https://s3.example.com", verifyTLS: false, credentialsSecretName: s3-creds}
---
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: other, namespace: shop}
spec: {type: azure, bucket: box, credentialsSecretName: az-creds}
---
apiVersion: everest.percona.com/v1alpha1
kind: MonitoringConfig
metadata: {name: pmm, namespace: shop}
spec: {type: pmm, credentialsSecretName: pmm-key, pmm: {url: "http://pmm.example.com:80/x", image: "percona/pmm-client:3.5.0"}}
"""


def spec_of(repo, body: str = "  instances:\n    engine: {}\n") -> dict:
    repo.write("clusters/shop/orders.yaml", mongodb(body=body))
    return repo.only_object()["spec"]


def test_identity_finalizers_and_operator_constants(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    obj = repo.only_object()
    assert (obj["apiVersion"], obj["kind"]) == ("psmdb.percona.com/v1", "PerconaServerMongoDB")
    assert obj["metadata"]["finalizers"] == ["percona.com/delete-psmdb-pods-in-order", "percona.com/delete-psmdb-pvc"]
    spec = obj["spec"]
    assert spec["crVersion"] == "1.22.0"
    assert spec["updateStrategy"] == "SmartUpdate"
    assert spec["upgradeOptions"] == {"apply": "disabled", "schedule": "0 4 * * *", "setFCV": True}
    assert spec["enableVolumeExpansion"] is True
    assert spec["imagePullPolicy"] == "IfNotPresent"
    assert spec["secrets"] == {"users": "everest-secrets-orders", "encryptionKey": "orders-mongodb-encryption-key",
                               "sslInternal": "orders-ssl-internal"}


def test_a_pinned_cr_version_is_emitted(repo):
    assert spec_of(repo, "  crVersion: 1.21.2\n  instances:\n    engine: {}\n")["crVersion"] == "1.21.2"


def test_the_replica_set_takes_size_limits_storage_and_the_default_configuration(repo):
    body = "  instances:\n    engine:\n      replicas: 5\n      resources: {cpu: '1', memory: 4G}\n      storage: {size: 30Gi, class: fast}\n"
    (replset,) = spec_of(repo, body)["replsets"]
    assert replset["name"] == "rs0" and replset["size"] == 5
    assert replset["resources"] == {"limits": {"cpu": "1", "memory": "4G"}}
    assert replset["volumeSpec"] == {"persistentVolumeClaim": {"storageClassName": "fast", "resources": {"requests": {"storage": "30Gi"}}}}
    assert replset["configuration"] == "\n      operationProfiling:\n        mode: slowOp\n"
    assert replset["podDisruptionBudget"] == {"maxUnavailable": 1}


def test_the_users_configuration_replaces_the_default(repo):
    (replset,) = spec_of(repo, "  instances:\n    engine: {config: 'net: {port: 27017}'}\n")["replsets"]
    assert replset["configuration"] == "net: {port: 27017}"


def test_an_empty_config_is_everests_default_profile(repo):
    """everest's configureReplSetSpec: an empty engine.config gets psmdbDefaultConfigurationTemplate."""
    (replset,) = spec_of(repo, "  instances:\n    engine: {config: ''}\n")["replsets"]
    assert replset["configuration"] == "\n      operationProfiling:\n        mode: slowOp\n"


def _errors(repo, body: str) -> list[str]:
    import re

    repo.write("clusters/shop/orders.yaml", mongodb(body=body))
    return [re.sub(r"provider\.yaml:\d+\)", "provider.yaml:N)", e) for e in repo.errors()]


SIZE_RULE = ("provider percona-server-mongodb: the PSMDB operator needs an odd number of at least 3 replicas per replica set (or exactly 1);"
             " got {n}: change spec.instances.engine.replicas or set spec.allowUnsafeConfiguration"
             " (<built-in>/providers/percona-server-mongodb/provider.yaml:N) (at spec.instances.engine.replicas)")


def test_an_even_replica_set_is_refused_as_the_operator_refuses_it(repo):
    """ReplsetSpec.checkSafeDefaults (PSMDB operator 1.22.0): without unsafeFlags.replsetSize a
    replica set needs an odd size of at least 3; everest sets the flag for 1 replica only."""
    assert _errors(repo, "  instances:\n    engine: {replicas: 2}\n") == ["clusters/shop/orders.yaml:9:24: " + SIZE_RULE.format(n=2)]
    assert _errors(repo, "  instances:\n    engine: {replicas: 4}\n") == ["clusters/shop/orders.yaml:9:24: " + SIZE_RULE.format(n=4)]


def test_an_even_replica_set_renders_with_allow_unsafe_configuration(repo):
    spec = spec_of(repo, "  allowUnsafeConfiguration: true\n  instances:\n    engine: {replicas: 2}\n")
    assert spec["replsets"][0]["size"] == 2 and spec["unsafeFlags"]["replsetSize"] is True


def test_config_servers_follow_the_replica_set_rule_keyed_on_the_engines_count(repo):
    """The config servers are a replica set to the operator too; everest's replsetSize flag
    follows engine.replicas, so 1 engine replica permits any config-server size."""
    body = SHARDED.replace("    configServer: {}\n", "    configServer: {replicas: 2}\n")
    (error,) = _errors(repo, body)
    assert error == (
        "clusters/shop/orders.yaml:11:30: provider percona-server-mongodb: the PSMDB operator needs an odd number of at least 3"
        " config servers when the engine has 3 replicas (its unsafe replsetSize flag follows the engine's count); got 2:"
        " change spec.instances.configServer.replicas or set spec.allowUnsafeConfiguration"
        " (<built-in>/providers/percona-server-mongodb/provider.yaml:N) (at spec.instances.configServer.replicas)"
    )
    single = body.replace("    engine: {}\n", "    engine: {replicas: 1}\n")
    assert spec_of(repo, single)["sharding"]["configsvrReplSet"]["size"] == 2


def test_mongos_without_replicas_gets_the_engines_count(repo):
    """everest's PSMDB Proxy(): mongos size defaults to engine.replicas."""
    body = SHARDED.replace("    engine: {}\n", "    engine: {replicas: 5}\n")
    assert spec_of(repo, body)["sharding"]["mongos"]["size"] == 5


def test_a_single_node_sets_the_size_unsafe_flags_only(repo):
    spec = spec_of(repo, "  instances:\n    engine: {replicas: 1}\n")
    assert spec["unsafeFlags"] == {"tls": False, "replsetSize": True, "mongosSize": True, "terminationGracePeriod": False,
                                   "backupIfUnhealthy": False}
    assert "tls" not in spec


def test_allow_unsafe_configuration_sets_every_flag_and_disables_tls(repo):
    spec = spec_of(repo, "  allowUnsafeConfiguration: true\n  instances:\n    engine: {}\n")
    assert set(spec["unsafeFlags"].values()) == {True}
    assert spec["tls"] == {"mode": "disabled"}
    assert spec["allowUnsafeConfigurations"] is False


def test_paused_maps_to_pause(repo):
    assert spec_of(repo, "  paused: true\n  instances:\n    engine: {}\n")["pause"] is True


def test_standard_topology_exposes_the_replica_set(repo):
    body = ("  instances:\n    engine:\n      expose:\n        type: LoadBalancer\n        sourceRanges: [192.0.2.7, '2001:db8::/32']\n"
            "        annotations: {a: b}\n")
    (replset,) = spec_of(repo, body)["replsets"]
    assert replset["expose"] == {"enabled": True, "type": "LoadBalancer", "loadBalancerSourceRanges": ["192.0.2.7/32", "2001:db8::/32"],
                                 "annotations": {"a": "b"}}


def test_an_unexposed_standard_cluster_is_exposed_on_cluster_ip(repo):
    (replset,) = spec_of(repo)["replsets"]
    assert replset["expose"] == {"enabled": True, "type": "ClusterIP"}


def test_sharded_topology_renders_shards_config_servers_and_mongos(repo):
    spec = spec_of(repo, SHARDED)
    assert [r["name"] for r in spec["replsets"]] == ["rs0", "rs1"]
    assert spec["replsets"][0]["expose"] == {"enabled": False, "type": "ClusterIP"}
    assert "expose" not in spec["replsets"][1]
    assert spec["sharding"]["enabled"] is True
    assert spec["sharding"]["configsvrReplSet"] == {
        "size": 3, "volumeSpec": {"persistentVolumeClaim": {"resources": {"requests": {"storage": "25Gi"}}}}
    }
    assert spec["sharding"]["mongos"] == {"size": 3, "expose": {"type": "ClusterIP"}}


def test_shards_follow_the_topology_config(repo):
    spec = spec_of(repo, SHARDED.replace("type: sharded}", "type: sharded, config: {shards: 4}}"))
    assert [r["name"] for r in spec["replsets"]] == ["rs0", "rs1", "rs2", "rs3"]


def test_mongos_takes_replicas_limits_and_expose(repo):
    body = SHARDED.replace("    proxy: {}\n", "    proxy:\n      replicas: 2\n      resources: {cpu: 1, memory: 1G}\n"
                                              "      expose: {type: NodePort}\n")
    mongos = spec_of(repo, body)["sharding"]["mongos"]
    assert mongos == {"size": 2, "resources": {"limits": {"cpu": 1, "memory": "1G"}}, "expose": {"type": "NodePort"}}


def test_config_servers_take_their_own_storage_when_given(repo):
    body = SHARDED.replace("    configServer: {}\n", "    configServer: {storage: {size: 5Gi, class: slow}}\n")
    volume = spec_of(repo, body)["sharding"]["configsvrReplSet"]["volumeSpec"]
    assert volume == {"persistentVolumeClaim": {"storageClassName": "slow", "resources": {"requests": {"storage": "5Gi"}}}}


def test_affinity_is_passed_through_as_advanced(repo):
    body = "  instances:\n    engine:\n      affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: []}}}\n"
    (replset,) = spec_of(repo, body)["replsets"]
    assert replset["affinity"] == {"advanced": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}


def test_no_backup_block_without_the_backup_agent(repo):
    assert "backup" not in spec_of(repo)


def test_the_backup_agent_renders_pbm_with_everests_defaults(repo):
    backup = spec_of(repo, "  instances:\n    engine: {}\n    backupAgent: {}\n")["backup"]
    assert backup == {
        "enabled": True,
        "image": "percona/percona-backup-mongodb:2.12.0",
        "resources": {"limits": {"cpu": "300m", "memory": "1G"}},
        "configuration": {"backupOptions": {"oplogSpanMin": 0, "timeouts": {"startingStatus": 120}}},
    }


def test_schedules_pitr_and_the_storage_use_the_path_prefix(repo):
    repo.write("clusters/shop/storage.yaml", STORAGE)
    body = ("  instances:\n    engine: {}\n    backupAgent: {}\n  backup:\n    schedules:\n"
            "      - {name: daily, schedule: '0 0 * * *', retentionCopies: 1, backupStorage: s3-main}\n"
            "      - {name: nightly, schedule: '0 1 * * *', backupStorage: s3-main, enabled: false}\n"
            "    pitr: {enabled: true, backupStorage: s3-main, uploadIntervalSec: 120}\n")
    backup = spec_of(repo, body)["backup"]
    assert backup["tasks"] == [{"name": "daily", "enabled": True, "schedule": "0 0 * * *", "keep": 1, "storageName": "s3-main"}]
    assert backup["pitr"] == {"enabled": True, "oplogSpanMin": 2}
    assert backup["storages"] == {"s3-main": {"main": True, "type": "s3", "s3": {
        "bucket": "bkt", "prefix": "shop/orders", "credentialsSecret": "s3-creds", "region": "us-east-2",
        "endpointUrl": "https://s3.example.com", "insecureSkipTLSVerify": True}}}


def test_an_azure_storage_takes_the_container_and_prefix(repo):
    repo.write("clusters/shop/storage.yaml", STORAGE)
    body = ("  instances:\n    engine: {}\n    backupAgent: {}\n  backup:\n    pathPrefix: orders/0b5c\n    schedules:\n"
            "      - {name: daily, schedule: '@daily', backupStorage: other}\n")
    storages = spec_of(repo, body)["backup"]["storages"]
    assert storages == {"other": {"main": True, "type": "azure", "azure": {"container": "box", "prefix": "orders/0b5c", "credentialsSecret": "az-creds"}}}


def test_monitoring_renders_pmm_with_the_size_class_preset(repo):
    repo.write("clusters/shop/storage.yaml", STORAGE)
    body = "  instances:\n    engine: {resources: {memory: 32G}}\n    monitoring: {monitoringConfig: pmm}\n"
    assert spec_of(repo, body)["pmm"] == {
        "enabled": True,
        "image": "percona/pmm-client:3.5.0",
        "serverHost": "pmm.example.com",
        "resources": {"requests": {"memory": "796907Ki", "cpu": "228m"}},
    }


def test_monitoring_resources_merge_over_the_preset_per_field(repo):
    repo.write("clusters/shop/storage.yaml", STORAGE)
    body = "  instances:\n    engine: {resources: {memory: 8G}}\n    monitoring: {monitoringConfig: pmm, resources: {cpu: 1}}\n"
    assert spec_of(repo, body)["pmm"]["resources"] == {"requests": {"memory": "199168Ki", "cpu": 1}}


def test_a_pinned_pmm_version_wins_over_the_monitoring_configs_image(repo):
    repo.write("clusters/shop/storage.yaml", STORAGE)
    body = "  components:\n    versions:\n      pmm: {version: 2.44.1-1}\n  instances:\n    engine: {}\n    monitoring: {monitoringConfig: pmm}\n"
    assert spec_of(repo, body)["pmm"]["image"] == "percona/pmm-client:2.44.1-1"


def test_the_storage_and_monitoring_objects_are_not_copied_to_out(repo):
    repo.write("clusters/shop/storage.yaml", STORAGE)
    repo.write("clusters/shop/orders.yaml", mongodb())
    assert [o["kind"] for o in repo.stream()] == ["PerconaServerMongoDB"]
