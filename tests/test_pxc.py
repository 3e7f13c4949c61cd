"""The percona-xtradb-cluster provider: one behaviour per test, against whole objects or error lines.

A refusal that is one cluster and its error lines is a case file instead
(providers/percona-xtradb-cluster/cases/, run by tests/test_provider_cases.py).

Expected values come from everest-operator's PXC applier as described in
reference/everest-operator-v1.md (section 2.1 and the golden fixtures of section 4), and the
byte-exact constants from the lengths and sha256 prefixes recorded there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import textwrap

import jinja2
import pytest

from everest_render.render.templates import ProviderRenderer

STORAGES = """
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-main, namespace: shop}
spec:
  type: s3
  bucket: backups
  region: eu-west-1
  endpointURL: https://s3.example.com
  verifyTLS: false
  credentialsSecretName: s3-creds
---
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: azure-eu, namespace: shop}
spec: {type: azure, bucket: container1, credentialsSecretName: azure-creds}
---
apiVersion: everest.percona.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-main-pitr, namespace: shop}
spec: {type: s3, bucket: other, credentialsSecretName: s3-creds}
---
apiVersion: everest.percona.com/v1alpha1
kind: MonitoringConfig
metadata: {name: pmm3, namespace: shop}
spec: {type: pmm, credentialsSecretName: pmm3-token, pmm: {url: "https://pmm.example.com:8443/graph"}}
---
apiVersion: everest.percona.com/v1alpha1
kind: MonitoringConfig
metadata: {name: pmm2, namespace: shop}
spec: {type: pmm, credentialsSecretName: pmm2-key, pmm: {url: "http://pmm2.example.com", image: "percona/pmm-client:2.44.1-1"}}
"""

# everest's constants: (length, sha256[:16]) from reference section 2.1.
PRESETS = {
    "small": (1915, "930789eb87ae7c04"),
    "medium": (1891, "0704ecac0721dd61"),
    "large": (1898, "6eef95a055de78a7"),
}
HAPROXY_DEFAULT = (1579, "c127fa7e1acad57b")

BASIC = "instances:\n  engine: {}\n  proxy: {}\n"
WITH_BACKUP = BASIC + "  backupAgent: {}\n"


def block(text: str) -> str:
    """An indented triple-quoted YAML fragment, dedented to join others."""
    return textwrap.dedent(text).strip("\n") + "\n"


def pxc(spec: str = BASIC, name: str = "orders", namespace: str = "shop") -> str:
    """A PXC DatabaseCluster; ``spec`` is the rest of its spec as YAML (any indentation)."""
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    return (
        "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"spec:\n  provider: percona-xtradb-cluster\n{body}\n"
    )


def render(repo, spec: str = BASIC) -> dict:
    repo.write("clusters/shop/orders.yaml", pxc(spec))
    repo.write("clusters/shop/references.yaml", STORAGES)
    return repo.only_object()["spec"]


def refusals(repo, spec: str) -> list[str]:
    """Error lines, with the template line of a refusal (it moves as the template is edited) as N."""
    repo.write("clusters/shop/orders.yaml", pxc(spec))
    repo.write("clusters/shop/references.yaml", STORAGES)
    return [re.sub(r"\.(j2|yaml):\d+\)", r".\1:N)", e) for e in repo.errors()]


def refusal(message: str, where: str = "7:3", path: str = "spec", source: str = "perconaxtradbcluster.yaml.j2") -> str:
    return (
        f"clusters/shop/orders.yaml:{where}: provider percona-xtradb-cluster: {message}"
        f" (<built-in>/providers/percona-xtradb-cluster/{source}:N) (at {path})"
    )


def digest(text: str) -> tuple[int, str]:
    return len(text), hashlib.sha256(text.encode()).hexdigest()[:16]


def claim(size: str) -> dict:
    return {"resources": {"requests": {"storage": size}}}


def with_memory(memory: str, proxy: str = "{}") -> str:
    return f"instances:\n  engine: {{resources: {{memory: {memory}}}}}\n  proxy: {proxy}\n"


# --- the whole object ------------------------------------------------------------------


def test_everest_pxc_baseline_fixture_renders_as_everest_writes_it(repo):
    # reference section 4, fixture 1 (test/integration/core/pxc/10-*), plus what the renderer
    # always writes: crVersion, pause, the disabled proxy and PMM blocks.
    repo.write("clusters/everest/test-pxc-cluster.yaml", pxc("""
        components: {versions: {pxc: {version: 8.0.44-35.1}}}
        instances:
          engine: {replicas: 3, resources: {cpu: "1", memory: 2G}, storage: {size: 25Gi}}
          proxy: {replicas: 3, expose: {type: internal}, resources: {cpu: 200m, memory: 200M}}
        """, name="test-pxc-cluster", namespace="everest"))
    obj = repo.only_object()
    assert digest(obj["spec"]["pxc"].pop("configuration")) == PRESETS["small"]
    assert digest(obj["spec"]["haproxy"].pop("configuration")) == HAPROXY_DEFAULT
    assert obj == {
        "apiVersion": "pxc.percona.com/v1",
        "kind": "PerconaXtraDBCluster",
        "metadata": {
            "name": "test-pxc-cluster",
            "namespace": "everest",
            "finalizers": ["percona.com/delete-pxc-pods-in-order", "percona.com/delete-pxc-pvc", "percona.com/delete-ssl"],
            "labels": {"app.kubernetes.io/managed-by": "everest-render", "everest.percona.com/cluster": "test-pxc-cluster"},
        },
        "spec": {
            "crVersion": "1.19.0",
            "pause": False,
            "secretsName": "everest-secrets-test-pxc-cluster",
            "allowUnsafeConfigurations": False,
            "unsafeFlags": {"tls": False, "pxcSize": False, "proxySize": False, "backupIfUnhealthy": False},
            "updateStrategy": "SmartUpdate",
            "upgradeOptions": {"apply": "never", "schedule": "0 4 * * *"},
            "enableVolumeExpansion": True,
            "pxc": {
                "size": 3,
                "image": "percona/percona-xtradb-cluster:8.0.44-35.1",
                "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": {"memory": "2G", "cpu": "1"}, "limits": {"memory": "2G", "cpu": "1"}},
                "livenessProbes": {"timeoutSeconds": 450},
                "readinessProbes": {"timeoutSeconds": 450},
                "serviceType": "ClusterIP",
                "podDisruptionBudget": {"maxUnavailable": 1},
                "volumeSpec": {"persistentVolumeClaim": {"resources": {"requests": {"storage": "25Gi"}}}},
            },
            "haproxy": {
                "enabled": True,
                "size": 3,
                "image": "percona/haproxy:2.8.17",
                "imagePullPolicy": "IfNotPresent",
                "envVarsSecret": "haproxy-env-secret",
                "resources": {"requests": {"memory": "200M", "cpu": "200m"}, "limits": {"memory": "200M", "cpu": "200m"}},
                "readinessProbes": {"timeoutSeconds": 30},
                "livenessProbes": {"timeoutSeconds": 30},
                "exposePrimary": {"enabled": True, "type": "ClusterIP"},
                "exposeReplicas": {"enabled": True, "type": "ClusterIP"},
            },
            "proxysql": {"enabled": False},
            "pmm": {"enabled": False},
        },
    }


# --- unsafe flags and the operator's size checks -----------------------------------------


def test_one_engine_replica_turns_on_the_size_flags_only(repo):
    spec = render(repo, "instances:\n  engine: {replicas: 1}\n  proxy: {replicas: 1}\n")
    assert spec["unsafeFlags"] == {"tls": False, "pxcSize": True, "proxySize": True, "backupIfUnhealthy": False}
    assert (spec["pxc"]["size"], spec["haproxy"]["size"]) == (1, 1)


def test_allow_unsafe_configuration_turns_on_every_flag_and_keeps_the_deprecated_one_off(repo):
    spec = render(repo, "allowUnsafeConfiguration: true\n" + BASIC)
    assert spec["allowUnsafeConfigurations"] is False
    assert spec["unsafeFlags"] == {"tls": True, "pxcSize": True, "proxySize": True, "backupIfUnhealthy": True}


def test_an_even_engine_size_is_refused_unless_unsafe_is_allowed(repo):
    assert refusals(repo, "instances:\n  engine: {replicas: 4}\n  proxy: {}\n") == [
        refusal("the PXC operator needs an odd number of 3 to 5 engine replicas (or exactly 1); got 4:"
                " change spec.instances.engine.replicas or set spec.allowUnsafeConfiguration", "9:24", "spec.instances.engine.replicas",
                "provider.yaml")
    ]
    assert render(repo, "allowUnsafeConfiguration: true\ninstances:\n  engine: {replicas: 4}\n  proxy: {}\n")["pxc"]["size"] == 4


def test_a_proxy_without_replicas_gets_the_engines_count(repo):
    """everest's applyHAProxyCfg: proxy.replicas defaults to engine.replicas (a one-node cluster
    gets one HAProxy, not three)."""
    assert render(repo, "instances:\n  engine: {replicas: 1}\n  proxy: {}\n")["haproxy"]["size"] == 1
    assert render(repo, "instances:\n  engine: {replicas: 5}\n  proxy: {type: proxysql}\n")["proxysql"]["size"] == 5


# --- engine --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory", "timeout"),
    [("2G", 450), ("7999M", 450), ("8G", 451), ("8Gi", 451), ("31G", 451), ("32G", 600), ("64Gi", 600)],
)
def test_probe_timeouts_follow_the_size_class(repo, memory, timeout):
    spec = render(repo, with_memory(memory))
    assert spec["pxc"]["livenessProbes"] == spec["pxc"]["readinessProbes"] == {"timeoutSeconds": timeout}


@pytest.mark.parametrize(("memory", "size"), [("2G", "small"), ("16G", "medium"), ("32Gi", "large")])
def test_without_config_the_engine_gets_everests_preset_byte_for_byte(repo, memory, size):
    assert digest(render(repo, with_memory(memory))["pxc"]["configuration"]) == PRESETS[size]


def test_no_resources_is_the_small_preset(repo):
    assert digest(render(repo)["pxc"]["configuration"]) == PRESETS["small"]


def test_the_small_preset_keeps_its_trailing_spaces_and_the_others_a_tab(repo):
    assert render(repo, with_memory("2G"))["pxc"]["configuration"].endswith("gcache.recover=yes;\n    ")
    assert render(repo, with_memory("32G"))["pxc"]["configuration"].endswith("pc.announce_timeout=PT60S;\n\t")


def test_the_clusters_config_replaces_the_preset(repo):
    spec = render(repo, "instances:\n  engine:\n    config: |\n      [mysqld]\n      max_connections = 500\n  proxy: {}\n")
    assert spec["pxc"]["configuration"] == "[mysqld]\nmax_connections = 500\n"


ADDED = (
    "apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\nspec:\n  catalogue:\n"
    "    percona-xtradb-cluster:\n      {type}: [{{version: {version}, image: {image}}}]\n"
)


def test_engines_older_than_8_0_31_get_no_preset(repo):
    # The 1.19.0 catalogue has no such version; the repository's settings file adds one.
    repo.write("everest-render.yaml", ADDED.format(type="pxc", version="8.0.30-22.1", image="percona/percona-xtradb-cluster:8.0.30-22.1"))
    spec = render(repo, "components: {versions: {pxc: {version: 8.0.30-22.1}}}\n" + BASIC)
    assert spec["pxc"]["image"] == "percona/percona-xtradb-cluster:8.0.30-22.1"
    assert "configuration" not in spec["pxc"]


def test_engine_shorthand_sets_requests_and_limits_alike(repo):
    spec = render(repo, "instances:\n  engine: {resources: {cpu: '2', memory: 4G}}\n  proxy: {}\n")
    assert spec["pxc"]["resources"] == {"requests": {"cpu": "2", "memory": "4G"}, "limits": {"cpu": "2", "memory": "4G"}}


def test_engine_without_resources_gets_everests_1G_600m(repo):
    assert render(repo)["pxc"]["resources"] == {"requests": {"memory": "1G", "cpu": "600m"}, "limits": {"memory": "1G", "cpu": "600m"}}


def test_engine_shorthand_with_cpu_only_keeps_the_default_memory(repo):
    spec = render(repo, "instances:\n  engine: {resources: {cpu: '2'}}\n  proxy: {}\n")
    assert spec["pxc"]["resources"] == {"requests": {"memory": "1G", "cpu": "2"}, "limits": {"memory": "1G", "cpu": "2"}}


def test_engine_full_resources_pass_through(repo):
    spec = render(repo, "instances:\n  engine: {resources: {requests: {cpu: 500m}, limits: {memory: 40G}}}\n  proxy: {}\n")
    assert spec["pxc"]["resources"] == {"requests": {"cpu": "500m"}, "limits": {"memory": "40G"}}
    assert spec["pxc"]["livenessProbes"] == {"timeoutSeconds": 600}  # size class from the limits' memory


def test_engine_storage_class_and_affinity(repo):
    affinity = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}}
    engine = f"{{storage: {{size: 100Gi, class: fast}}, affinity: {json.dumps(affinity)}}}"
    spec = render(repo, f"instances:\n  engine: {engine}\n  proxy: {{affinity: {json.dumps(affinity)}}}\n")
    assert spec["pxc"]["volumeSpec"] == {"persistentVolumeClaim": {"storageClassName": "fast", **claim("100Gi")}}
    assert spec["pxc"]["affinity"] == spec["haproxy"]["affinity"] == {"advanced": affinity}


def test_paused_cluster_secrets_name_and_pinned_cr_version(repo):
    spec = render(repo, "paused: true\nsecretsName: orders-users\ncrVersion: 1.18.0\n" + BASIC)
    assert (spec["pause"], spec["secretsName"], spec["crVersion"]) == (True, "orders-users", "1.18.0")


# --- proxies -------------------------------------------------------------------------------


def test_proxysql_is_chosen_by_the_proxy_type_and_haproxy_is_switched_off(repo):
    spec = render(repo, "instances:\n  engine: {}\n  proxy: {type: proxysql}\n")
    assert spec["haproxy"] == {"enabled": False}
    assert spec["proxysql"] == {
        "enabled": True,
        "size": 3,
        "image": "percona/proxysql2:2.7.3-1.2",
        "imagePullPolicy": "IfNotPresent",
        "resources": {"limits": {"memory": "1G", "cpu": "600m"}},
        "volumeSpec": {"persistentVolumeClaim": {"resources": {"requests": {"storage": "2G"}}}},
        "expose": {"enabled": True, "type": "ClusterIP"},
    }


@pytest.mark.parametrize(
    ("memory", "requests", "limits"),
    [
        ("2G", {"memory": "195Mi", "cpu": "190m"}, {"memory": "204Mi", "cpu": "200m"}),
        ("8G", {"memory": "778Mi", "cpu": "532m"}, {"memory": "820Mi", "cpu": "560m"}),
        # everest's MustParse("2.84Gi") marshals as 3049426780160m (apimachinery CanonicalizeBytes:
        # a BinarySI value that is not whole bytes is written DecimalSI)
        ("32G", {"memory": "3049426780160m", "cpu": "818m"}, {"memory": "3Gi", "cpu": "861m"}),
    ],
)
def test_haproxy_without_resources_gets_the_engines_size_class_preset(repo, memory, requests, limits):
    assert render(repo, with_memory(memory))["haproxy"]["resources"] == {"requests": requests, "limits": limits}


def test_haproxy_shorthand_overrides_the_preset_field_by_field(repo):
    spec = render(repo, with_memory("8G", "{resources: {cpu: '1'}}"))
    assert spec["haproxy"]["resources"] == {"requests": {"memory": "778Mi", "cpu": "1"}, "limits": {"memory": "820Mi", "cpu": "1"}}


def test_a_cluster_with_its_own_haproxy_resources_does_not_change_the_preset_of_the_next(repo):
    # everest shares the preset maps between clusters (reference section 6); here each is fresh.
    repo.write("clusters/shop/a.yaml", pxc(with_memory("2G", "{resources: {cpu: '1', memory: 1G}}"), name="a"))
    repo.write("clusters/shop/b.yaml", pxc(with_memory("2G"), name="b"))
    a, b = repo.objects()
    assert a["spec"]["haproxy"]["resources"]["limits"] == {"memory": "1G", "cpu": "1"}
    assert b["spec"]["haproxy"]["resources"] == {
        "requests": {"memory": "195Mi", "cpu": "190m"},
        "limits": {"memory": "204Mi", "cpu": "200m"},
    }


def test_proxysql_shorthand_sets_limits_and_requests_where_everest_panics(repo):
    spec = render(repo, "instances:\n  engine: {}\n  proxy: {type: proxysql, resources: {cpu: '1'}}\n")
    assert spec["proxysql"]["resources"] == {"requests": {"cpu": "1"}, "limits": {"memory": "1G", "cpu": "1"}}


def test_haproxy_config_is_the_clusters_text_else_everests_default_byte_for_byte(repo):
    assert digest(render(repo)["haproxy"]["configuration"]) == HAPROXY_DEFAULT
    spec = render(repo, "instances:\n  engine: {}\n  proxy: {config: \"global\\n  maxconn 100\\n\"}\n")
    assert spec["haproxy"]["configuration"] == "global\n  maxconn 100\n"


def test_proxysql_config_and_volume_come_from_the_proxy_component(repo):
    proxy = "{type: proxysql, config: 'datadir=\"/var/lib/proxysql\"', storage: {size: 5Gi, class: fast}}"
    spec = render(repo, f"instances:\n  engine: {{}}\n  proxy: {proxy}\n")
    assert spec["proxysql"]["configuration"] == 'datadir="/var/lib/proxysql"'
    assert spec["proxysql"]["volumeSpec"] == {"persistentVolumeClaim": {"storageClassName": "fast", **claim("5Gi")}}


# --- expose --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ClusterIP", "NodePort"])
def test_haproxy_primary_and_replicas_services_share_the_expose_type(repo, kind):
    spec = render(repo, f"instances:\n  engine: {{}}\n  proxy: {{expose: {{type: {kind}}}}}\n")
    assert spec["haproxy"]["exposePrimary"] == spec["haproxy"]["exposeReplicas"] == {"enabled": True, "type": kind}


def test_a_load_balancer_carries_cidr_source_ranges_and_annotations_on_both_haproxy_services(repo):
    spec = render(repo, """
        instances:
          engine: {}
          proxy:
            expose:
              type: external
              sourceRanges: [10.0.0.0/8, 192.0.2.7, "2001:db8::1"]
              annotations: {service.beta.kubernetes.io/aws-load-balancer-internal: "true"}
        """)
    expected = {
        "enabled": True,
        "type": "LoadBalancer",
        "loadBalancerSourceRanges": ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128"],
        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
    }
    assert spec["haproxy"]["exposePrimary"] == spec["haproxy"]["exposeReplicas"] == expected


def test_proxysql_is_exposed_through_its_single_service(repo):
    spec = render(repo, "instances:\n  engine: {}\n  proxy: {type: proxysql, expose: {type: LoadBalancer, sourceRanges: [10.1.2.3]}}\n")
    assert spec["proxysql"]["expose"] == {"enabled": True, "type": "LoadBalancer", "loadBalancerSourceRanges": ["10.1.2.3/32"]}


# --- backups -------------------------------------------------------------------------------


def test_without_the_backup_agent_no_backup_section_is_written(repo):
    assert "backup" not in render(repo)


def test_the_backup_agent_alone_writes_the_image_and_pitr_off(repo):
    assert render(repo, WITH_BACKUP)["backup"] == {
        "image": "percona/percona-xtrabackup:8.4.0-5.1",
        "pitr": {"enabled": False},
    }


@pytest.mark.parametrize(
    ("engine", "backup"),
    [("8.4.7-7.1", "percona/percona-xtrabackup:8.4.0-5.1"), ("8.0.44-35.1", "percona/percona-xtrabackup:8.0.35-34.1")],
)
def test_the_backup_image_matches_the_engines_major_minor(repo, engine, backup):
    spec = render(repo, f"components: {{versions: {{pxc: {{version: {engine}}}}}}}\n" + WITH_BACKUP)
    assert spec["backup"]["image"] == backup


def test_a_pinned_backup_version_of_the_engines_series_wins(repo):
    repo.write("everest-render.yaml", ADDED.format(type="backup", version="8.0.32-26.1", image="percona/percona-xtrabackup:8.0.32-26.1"))
    versions = "components: {versions: {pxc: {version: 8.0.44-35.1}, backup: {version: 8.0.32-26.1}}}\n"
    assert render(repo, versions + WITH_BACKUP)["backup"]["image"] == "percona/percona-xtrabackup:8.0.32-26.1"


def test_storages_put_the_path_prefix_after_the_bucket_or_container(repo):
    spec = render(repo, WITH_BACKUP + block("""
        backup:
          pathPrefix: team/orders-v1
          schedules:
            - {name: daily, schedule: "0 1 * * *", retentionCopies: 7, backupStorage: s3-main}
            - {name: weekly, schedule: "0 2 * * 0", retentionCopies: 4, backupStorage: azure-eu}
        """))
    assert spec["backup"]["storages"] == {
        "azure-eu": {
            "type": "azure",
            "verifyTLS": True,
            "azure": {"container": "container1/team/orders-v1", "credentialsSecret": "azure-creds"},
        },
        "s3-main": {
            "type": "s3",
            "verifyTLS": False,
            "s3": {"bucket": "backups/team/orders-v1", "credentialsSecret": "s3-creds", "region": "eu-west-1", "endpointUrl": "https://s3.example.com"},
        },
    }


def test_the_default_path_prefix_is_namespace_and_name(repo):
    spec = render(repo, BASIC + "  backupAgent: {}\nbackup:\n  schedules: [{name: d, schedule: '0 1 * * *', backupStorage: azure-eu}]\n")
    assert spec["backup"]["storages"]["azure-eu"]["azure"]["container"] == "container1/shop/orders"


def test_enabled_schedules_keep_their_retention_and_disabled_ones_are_dropped(repo):
    spec = render(repo, WITH_BACKUP + block("""
        backup:
          schedules:
            - {name: daily, schedule: "0 1 * * *", retentionCopies: 7, backupStorage: s3-main}
            - {name: weekly, schedule: "0 2 * * 0", retentionCopies: 4, backupStorage: azure-eu, enabled: false}
            - {name: forever, schedule: "0 3 1 * *", backupStorage: s3-main}
        """))
    assert spec["backup"]["schedule"] == [
        {
            "name": "daily",
            "schedule": "0 1 * * *",
            "keep": 7,
            "retention": {"type": "count", "count": 7, "deleteFromStorage": False},
            "storageName": "s3-main",
        },
        {"name": "forever", "schedule": "0 3 1 * *", "retention": {"type": "count", "deleteFromStorage": False}, "storageName": "s3-main"},
    ]
    assert sorted(spec["backup"]["storages"]) == ["s3-main"]  # only storages something uses


def test_pitr_uploads_to_its_own_storage_under_pitr_of_the_prefix(repo):
    # reference section 4, fixture 10 (backup_scheduled_pitr_pxc), with the prefix in place of <name>/<uid>
    spec = render(repo, WITH_BACKUP + block("""
        backup:
          schedules: [{name: daily-backup, schedule: "0 0 * * *", retentionCopies: 1, backupStorage: s3-main}]
          pitr: {enabled: true, backupStorage: s3-main, uploadIntervalSec: 120}
        """))
    s3 = {"credentialsSecret": "s3-creds", "region": "eu-west-1", "endpointUrl": "https://s3.example.com"}
    assert spec["backup"] == {
        "image": "percona/percona-xtrabackup:8.4.0-5.1",
        "pitr": {"enabled": True, "storageName": "s3-main-pitr", "timeBetweenUploads": 120},
        "storages": {
            "s3-main": {"type": "s3", "verifyTLS": False, "s3": {"bucket": "backups/shop/orders", **s3}},
            "s3-main-pitr": {
                "type": "s3",
                "verifyTLS": False,
                "s3": {"bucket": "backups/shop/orders/pitr", **s3},
                "resources": {"limits": {"memory": "1G", "cpu": "600m"}},
            },
        },
        "schedule": [
            {"name": "daily-backup", "schedule": "0 0 * * *", "keep": 1,
             "retention": {"type": "count", "count": 1, "deleteFromStorage": False}, "storageName": "s3-main"},
        ],
    }


def test_pitr_without_an_upload_interval_leaves_the_operators_default(repo):
    spec = render(repo, BASIC + "  backupAgent: {}\nbackup:\n  pitr: {enabled: true, backupStorage: s3-main}\n")
    assert spec["backup"]["pitr"] == {"enabled": True, "storageName": "s3-main-pitr"}


def test_disabled_pitr_writes_no_pitr_storage(repo):
    spec = render(repo, BASIC + "  backupAgent: {}\nbackup:\n  pitr: {enabled: false, backupStorage: s3-main}\n")
    assert spec["backup"] == {"image": "percona/percona-xtrabackup:8.4.0-5.1", "pitr": {"enabled": False}}


# --- monitoring ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory", "requests"),
    [
        ("2G", {"memory": "99604Ki", "cpu": "95m"}),
        ("8G", {"memory": "199168Ki", "cpu": "228m"}),
        ("32G", {"memory": "796907Ki", "cpu": "228m"}),
    ],
)
def test_pmm_requests_follow_the_engines_size_class(repo, memory, requests):
    spec = render(repo, with_memory(memory) + "  monitoring: {monitoringConfig: pmm3}\n")
    assert spec["pmm"] == {
        "enabled": True,
        "image": "percona/pmm-client:3.5.0",
        "imagePullPolicy": "IfNotPresent",
        "serverHost": "pmm.example.com",
        "resources": {"requests": requests},
    }


def test_pmm_shorthand_is_merged_over_the_preset_requests_field_by_field(repo):
    spec = render(repo, with_memory("8G") + "  monitoring: {monitoringConfig: pmm3, resources: {memory: 300M}}\n")
    assert spec["pmm"]["resources"] == {"requests": {"memory": "300M", "cpu": "228m"}}


def test_pmm_full_resources_merge_the_requests_and_keep_the_limits(repo):
    monitoring = "  monitoring: {monitoringConfig: pmm3, resources: {requests: {cpu: 1}, limits: {memory: 1G}}}\n"
    spec = render(repo, with_memory("2G") + monitoring)
    assert spec["pmm"]["resources"] == {"requests": {"memory": "99604Ki", "cpu": 1}, "limits": {"memory": "1G"}}


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ("{limits: {cpu: 500m}}", {"requests": {"memory": "99604Ki", "cpu": "95m"}, "limits": {"cpu": "500m"}}),
        ("{requests: {memory: 200M}}", {"requests": {"memory": "200M", "cpu": "95m"}}),
        ("{requests: {cpu: '0'}, limits: {}}", {"requests": {"memory": "99604Ki", "cpu": "95m"}}),
    ],
)
def test_pmm_full_form_with_only_limits_or_only_requests_merges_each_value(repo, resources, expected):
    """everest's getPMMResources (new cluster) = MergeResources(spec.monitoring.resources, preset):
    each of requests/limits x cpu/memory separately, a zero value counting as unset."""
    spec = render(repo, with_memory("2G") + f"  monitoring: {{monitoringConfig: pmm3, resources: {resources}}}\n")
    assert spec["pmm"]["resources"] == expected


def test_pmm_full_resources_without_limits_merge_the_requests(repo):
    # Once a template error ('dict object' has no attribute 'limits'); now the shared pmm_resources helper.
    monitoring = "  monitoring: {monitoringConfig: pmm3, resources: {requests: {cpu: 1}}}\n"
    spec = render(repo, with_memory("2G") + monitoring)
    assert spec["pmm"]["resources"] == {"requests": {"memory": "99604Ki", "cpu": 1}}


def test_pmm_image_comes_from_the_monitoring_config_unless_the_cluster_pins_one(repo):
    assert render(repo, BASIC + "  monitoring: {monitoringConfig: pmm2}\n")["pmm"]["image"] == "percona/pmm-client:2.44.1-1"
    pinned = "components: {versions: {pmm: {version: 3.5.0}}}\n" + BASIC + "  monitoring: {monitoringConfig: pmm2}\n"
    assert render(repo, pinned)["pmm"]["image"] == "percona/pmm-client:3.5.0"


# --- secrets -------------------------------------------------------------------------------


def _secrets(repo, spec: str) -> dict[str, list[str]]:
    repo.write("clusters/shop/orders.yaml", pxc(spec))
    repo.write("clusters/shop/references.yaml", STORAGES)
    (cluster,) = repo.resolved()
    return {s["name"]: s["keys"] for s in ProviderRenderer(cluster.provider).required_secrets(cluster)}


def test_a_plain_cluster_needs_the_users_secret_and_the_haproxy_env_secret(repo):
    assert _secrets(repo, BASIC) == {
        "everest-secrets-orders": ["root", "xtrabackup", "monitor", "proxyadmin", "operator", "replication"],
        "haproxy-env-secret": ["HA_CONNECTION_TIMEOUT"],
    }


def test_backups_and_pmm3_add_storage_credentials_and_the_pmm_token(repo):
    spec = """
        instances:
          engine: {}
          proxy: {type: proxysql}
          backupAgent: {}
          monitoring: {monitoringConfig: pmm3}
        backup:
          schedules:
            - {name: a, schedule: "0 1 * * *", backupStorage: s3-main}
            - {name: b, schedule: "0 2 * * *", backupStorage: azure-eu}
            - {name: c, schedule: "0 3 * * *", backupStorage: s3-main-pitr}
        """
    assert _secrets(repo, spec) == {
        "azure-creds": ["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY"],
        "everest-secrets-orders": ["root", "xtrabackup", "monitor", "proxyadmin", "operator", "replication", "pmmservertoken"],
        "s3-creds": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
    }


def test_a_clusters_secrets_are_evaluated_in_one_jinja_context(repo, monkeypatch):
    """Every spec.secrets expression of a cluster (when, forEach, each item's name) runs in one
    Jinja context made for it, not one made anew for each; ``item`` is seen by the names only,
    and a name that cannot be evaluated is still shown in place."""
    backups = "backup: {schedules: [{name: a, schedule: '0 1 * * *', backupStorage: s3-main}]}\n"
    repo.write("clusters/shop/orders.yaml", pxc(WITH_BACKUP + backups))
    repo.write("clusters/shop/references.yaml", STORAGES)
    (cluster,) = repo.resolved()
    renderer = ProviderRenderer(cluster.provider)
    extra = (
        {"name": "item ~ '-' ~ cluster.name", "forEach": "['a', 'b']", "keys": ["k"], "createdBy": "you"},
        {"name": "'never'", "when": "item is defined", "keys": ["k"], "createdBy": "you"},
        {"name": "item.missing.deeper", "forEach": "[{}]", "keys": ["k"], "createdBy": "you"},
    )
    renderer.provider = dataclasses.replace(cluster.provider, secrets=(*cluster.provider.secrets, *extra))
    made = []
    new_context = jinja2.Template.new_context
    monkeypatch.setattr(jinja2.Template, "new_context", lambda self, *a, **k: made.append(self) or new_context(self, *a, **k))
    names = [s["name"] for s in renderer.required_secrets(cluster)]
    assert names == [
        "(cannot evaluate spec.secrets name 'item.missing.deeper': UndefinedError: 'dict object' has no attribute 'missing')",
        "a-orders",
        "b-orders",
        "everest-secrets-orders",
        "haproxy-env-secret",
        "s3-creds",
    ]
    assert len(made) == 1  # before: one for each expression evaluated (15)


def test_a_pmm2_client_needs_the_pmm_server_key_instead(repo):
    keys = _secrets(repo, BASIC + "  monitoring: {monitoringConfig: pmm2}\n")["everest-secrets-orders"]
    assert keys[-1] == "pmmserverkey"
