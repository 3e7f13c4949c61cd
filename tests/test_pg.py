"""The percona-postgresql provider: one behaviour of the PerconaPGCluster mapping per test.

A refusal that is one cluster and its error lines is a case file instead
(providers/percona-postgresql/cases/, run by tests/test_provider_cases.py).
"""

from __future__ import annotations

import textwrap

import pytest

from everest_render.render.templates import ProviderRenderer


def postgres(body: str = "", name: str = "ledger", namespace: str = "finance", instances: str = "engine: {}\nproxy: {}\n") -> str:
    """A percona-postgresql DatabaseCluster; ``instances`` and ``body`` (the rest of spec) unindented."""
    return (
        "apiVersion: everest.percona.com/v2alpha1\n"
        "kind: DatabaseCluster\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
        "spec:\n"
        "  provider: percona-postgresql\n"
        "  instances:\n" + textwrap.indent(instances, "    ") + textwrap.indent(body, "  ")
    )


def s3(name: str, namespace: str = "finance", **spec: object) -> str:
    fields = {"type": "s3", "bucket": f"{name}-bucket", "region": "eu-west-1", "endpointURL": "https://s3.example.com",
              "credentialsSecretName": f"{name}-keys", **spec}
    return _storage(name, namespace, fields)


def azure(name: str, namespace: str = "finance", **spec: object) -> str:
    return _storage(name, namespace, {"type": "azure", "bucket": f"{name}-container", "credentialsSecretName": f"{name}-keys", **spec})


def _storage(name: str, namespace: str, fields: dict[str, object]) -> str:
    inline = ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in fields.items())
    return (
        "---\napiVersion: everest.percona.com/v1alpha1\nkind: BackupStorage\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\nspec: {{{inline}}}\n"
    )


def pmm(name: str = "pmm", namespace: str = "finance", image: str | None = None) -> str:
    image_line = f", image: '{image}'" if image else ""
    return (
        "---\napiVersion: everest.percona.com/v1alpha1\nkind: MonitoringConfig\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
        f"spec: {{type: pmm, credentialsSecretName: {name}-token, pmm: {{url: 'https://pmm.example.com:8443'{image_line}}}}}\n"
    )


def schedules(*entries: str) -> str:
    return "backup:\n  schedules:\n" + "".join(f"    - {e}\n" for e in entries)


WITH_AGENT = "engine: {}\nproxy: {}\nbackupAgent: {}\n"


def spec_of(repo) -> dict:
    return repo.only_object()["spec"]


# --- engine ---------------------------------------------------------------------------------


def test_postgres_version_is_the_major_number_of_the_engine_version(repo):
    repo.write("clusters/c.yaml", postgres("components:\n  versions:\n    postgresql: {version: 16.13-2}\n"))
    spec = spec_of(repo)
    assert spec["postgresVersion"] == 16
    assert spec["image"] == "percona/percona-distribution-postgresql:16.13-2"


def test_default_engine_is_the_catalogue_default_postgresql_18(repo):
    repo.write("clusters/c.yaml", postgres())
    spec = spec_of(repo)
    assert spec["postgresVersion"] == 18
    assert (spec["image"], spec["imagePullPolicy"]) == ("percona/percona-distribution-postgresql:18.3-2", "IfNotPresent")


def test_cr_version_is_the_operator_version_unless_pinned(repo):
    repo.write("clusters/a.yaml", postgres(name="a"))
    repo.write("clusters/b.yaml", postgres("crVersion: 2.9.0\n", name="b"))
    assert [o["spec"]["crVersion"] for o in repo.objects()] == ["3.0.0", "2.9.0"]


def test_finalizers_delete_pvcs_and_certificates_as_everest_sets_them(repo):
    repo.write("clusters/c.yaml", postgres())
    assert repo.only_object()["metadata"]["finalizers"] == ["percona.com/delete-pvc", "percona.com/delete-ssl"]


def test_paused_becomes_pause(repo):
    repo.write("clusters/c.yaml", postgres("paused: true\n"))
    assert spec_of(repo)["pause"] is True


def test_the_postgres_user_takes_the_clusters_secret(repo):
    repo.write("clusters/a.yaml", postgres(name="a"))
    repo.write("clusters/b.yaml", postgres("secretsName: b-admin\n", name="b"))
    assert [o["spec"]["users"] for o in repo.objects()] == [
        [{"name": "postgres", "secretName": "everest-secrets-a"}],
        [{"name": "postgres", "secretName": "b-admin"}],
    ]


def test_engine_instance_set_carries_replicas_limits_storage_and_affinity(repo):
    affinity = "{podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, podAffinityTerm: {topologyKey: zone}}]}}"
    engine = (
        f"engine:\n  replicas: 5\n  resources: {{cpu: '2', memory: 8Gi}}\n  storage: {{size: 50Gi, class: fast}}\n"
        f"  affinity: {affinity}\nproxy: {{}}\n"
    )
    repo.write("clusters/c.yaml", postgres(instances=engine))
    assert spec_of(repo)["instances"] == [
        {
            "name": "instance1",
            "replicas": 5,
            "resources": {"limits": {"cpu": "2", "memory": "8Gi"}},
            "dataVolumeClaimSpec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "fast",
                "resources": {"requests": {"storage": "50Gi"}},
            },
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "podAffinityTerm": {"topologyKey": "zone"}}]}},
        }
    ]


def test_engine_defaults_are_three_replicas_and_25gi_without_resources_or_class(repo):
    repo.write("clusters/c.yaml", postgres())
    (instance,) = spec_of(repo)["instances"]
    assert instance == {
        "name": "instance1",
        "replicas": 3,
        "dataVolumeClaimSpec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "25Gi"}}},
    }


def test_engine_resources_in_full_form_pass_through(repo):
    engine = "engine:\n  resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}}\nproxy: {}\n"
    repo.write("clusters/c.yaml", postgres(instances=engine))
    assert spec_of(repo)["instances"][0]["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}


# --- configuration --------------------------------------------------------------------------


def parameters(repo) -> dict:
    return spec_of(repo)["patroni"]["dynamicConfiguration"]["postgresql"]["parameters"]


def test_config_text_becomes_patroni_parameters_from_both_line_forms_without_comments(repo):
    config = "# memory\nshared_buffers = 1GB\nwork_mem 32MB   # per sort\n\ntimezone = 'Europe/Berlin'\nmax_connections=300\n"
    engine = "engine:\n  config: |\n" + textwrap.indent(config, "    ") + "proxy: {}\n"
    repo.write("clusters/c.yaml", postgres(instances=engine))
    assert parameters(repo) == {
        "shared_buffers": "1GB",
        "work_mem": "32MB",
        "timezone": "Europe/Berlin",
        "max_connections": "300",
        "track_commit_timestamp": "on",
    }


def test_track_commit_timestamp_is_on_without_any_config(repo):
    repo.write("clusters/c.yaml", postgres())
    assert parameters(repo) == {"track_commit_timestamp": "on"}


def test_track_commit_timestamp_stays_on_when_the_config_turns_it_off(repo):
    engine = "engine:\n  config: 'track_commit_timestamp = off'\nproxy: {}\n"
    repo.write("clusters/c.yaml", postgres(instances=engine))
    assert parameters(repo) == {"track_commit_timestamp": "on"}


@pytest.mark.parametrize("name", ["ssl_cert_file", "unix_socket_directories", "recovery_target_time", "archive_command"])
def test_parameter_families_the_crd_refuses_are_refused(repo, name):
    repo.write("clusters/c.yaml", postgres(instances=f"engine:\n  config: '{name} = x'\nproxy: {{}}\n"))
    assert f"engine config sets {name}," in repo.errors()[0]


def test_ssl_groups_is_the_tls_setting_the_crd_allows(repo):
    repo.write("clusters/c.yaml", postgres(instances="engine:\n  config: 'ssl_groups = X25519'\nproxy: {}\n"))
    assert parameters(repo)["ssl_groups"] == "X25519"


def test_wal_level_may_only_be_raised_to_logical(repo):
    repo.write("clusters/a.yaml", postgres(name="a", instances="engine:\n  config: 'wal_level = logical'\nproxy: {}\n"))
    repo.write("clusters/b.yaml", postgres(name="b", instances="engine:\n  config: 'wal_level = minimal'\nproxy: {}\n"))
    (error,) = repo.errors()
    assert error.startswith("clusters/b.yaml:8:15: provider percona-postgresql: engine config sets wal_level = minimal;")
    repo.write("clusters/b.yaml", postgres(name="b"))
    assert repo.objects()[0]["spec"]["patroni"]["dynamicConfiguration"]["postgresql"]["parameters"]["wal_level"] == "logical"


# --- pgBouncer ------------------------------------------------------------------------------


def pgbouncer(repo) -> dict:
    return spec_of(repo)["proxy"]["pgBouncer"]


def test_pgbouncer_defaults_clusterip_three_replicas_everest_limits_and_superusers(repo):
    repo.write("clusters/c.yaml", postgres())
    assert pgbouncer(repo) == {
        "replicas": 3,
        "image": "percona/percona-pgbouncer:1.25.1-1",
        "exposeSuperusers": True,
        "resources": {"limits": {"cpu": "200m", "memory": "128Mi"}},
        "expose": {"type": "ClusterIP"},
    }


def test_pgbouncer_load_balancer_carries_source_ranges_and_annotations(repo):
    proxy = "engine: {}\nproxy:\n  expose: {type: external, sourceRanges: [10.0.0.0/8, 192.0.2.7], annotations: {lb: internal}}\n"
    repo.write("clusters/c.yaml", postgres(instances=proxy))
    assert pgbouncer(repo)["expose"] == {
        "type": "LoadBalancer",
        "loadBalancerSourceRanges": ["10.0.0.0/8", "192.0.2.7/32"],
        "annotations": {"lb": "internal"},
    }


def test_pgbouncer_node_port_has_no_ranges(repo):
    proxy = "engine: {}\nproxy:\n  expose: {type: NodePort, sourceRanges: [10.0.0.0/8]}\n"
    repo.write("clusters/c.yaml", postgres(instances=proxy))
    assert pgbouncer(repo)["expose"] == {"type": "NodePort"}
    assert [w.split(": warning: ")[1] for w in repo.warnings()] == [
        "sourceRanges only apply to type LoadBalancer; ignored for NodePort (at spec.instances.proxy.expose.sourceRanges)"
    ]


def test_pgbouncer_shorthand_overrides_the_default_limits_field_by_field(repo):
    repo.write("clusters/c.yaml", postgres(instances="engine: {}\nproxy: {replicas: 2, resources: {memory: 1Gi}}\n"))
    assert (pgbouncer(repo)["replicas"], pgbouncer(repo)["resources"]) == (2, {"limits": {"cpu": "200m", "memory": "1Gi"}})


def test_pgbouncer_full_form_replaces_the_default(repo):
    repo.write("clusters/c.yaml", postgres(instances="engine: {}\nproxy: {resources: {requests: {cpu: 50m}}}\n"))
    assert pgbouncer(repo)["resources"] == {"requests": {"cpu": "50m"}}


def test_pgbouncer_affinity_passes_through(repo):
    repo.write("clusters/c.yaml", postgres(instances="engine: {}\nproxy: {affinity: {nodeAffinity: {}}}\n"))
    assert pgbouncer(repo)["affinity"] == {"nodeAffinity": {}}


def test_without_the_proxy_component_no_pgbouncer_is_written(repo):
    """The PG operator runs PgBouncer only when spec.proxy.pgBouncer is set, from crVersion
    2.9.0 (PerconaPGCluster.Default, PGProxySpec.IsSet); the upstream v2 provider allows it."""
    repo.write("clusters/c.yaml", postgres(instances="engine: {}\n"))
    assert "proxy" not in spec_of(repo)


def test_without_the_proxy_component_an_older_cr_version_gets_zero_pgbouncer_replicas(repo):
    """Before crVersion 2.9.0 the operator fills a missing spec.proxy with a default PgBouncer;
    replicas 0 (the CRD's minimum) is the only way to run none."""
    repo.write("clusters/c.yaml", postgres("crVersion: 2.8.2\n", instances="engine: {}\n"))
    assert pgbouncer(repo) == {
        "replicas": 0,
        "image": "percona/percona-pgbouncer:1.25.1-1",
        "exposeSuperusers": True,
        "resources": {"limits": {"cpu": "200m", "memory": "128Mi"}},
    }


def test_zero_pgbouncer_replicas_are_written_as_the_crd_allows(repo):
    repo.write("clusters/c.yaml", postgres(instances="engine: {}\nproxy: {replicas: 0}\n"))
    assert pgbouncer(repo)["replicas"] == 0


def test_pgbouncer_without_replicas_gets_the_engines_count(repo):
    """everest's PG Proxy(): proxy.replicas defaults to engine.replicas."""
    repo.write("clusters/c.yaml", postgres(instances="engine: {replicas: 1}\nproxy: {}\n"))
    assert pgbouncer(repo)["replicas"] == 1


@pytest.mark.parametrize(
    "instances,field",
    [
        ("engine: {}\nproxy: {config: 'pool_mode = session'}\n", "proxy.config"),
        ("engine: {}\nproxy: {storage: {size: 1Gi}}\n", "proxy.storage"),
        (WITH_AGENT.replace("backupAgent: {}", "backupAgent: {resources: {cpu: '1'}}"), "backupAgent.resources"),
    ],
)
def test_instance_fields_without_a_place_in_the_cr_are_refused(repo, instances, field):
    repo.write("clusters/c.yaml", postgres(instances=instances))
    (error,) = repo.errors()
    assert f": provider percona-postgresql: {field.split('.')[1]} has no PerconaPGCluster field in this provider; remove it (" in error
    assert error.endswith(f"(at spec.instances.{field})")


# --- backups --------------------------------------------------------------------------------


def backups(repo) -> dict:
    return spec_of(repo)["backups"]


def test_without_backup_agent_backups_are_explicitly_disabled(repo):
    repo.write("clusters/c.yaml", postgres())
    assert backups(repo) == {"enabled": False}


def test_backup_agent_without_storages_keeps_backups_disabled_with_its_image(repo):
    repo.write("clusters/c.yaml", postgres(instances=WITH_AGENT))
    assert backups(repo) == {"enabled": False, "pgbackrest": {"image": "percona/percona-pgbackrest:2.58.0-1"}}


def test_a_schedule_gives_one_s3_repository_with_its_full_schedule(repo):
    repo.write("clusters/c.yaml", postgres(schedules("{name: daily, schedule: '0 1 * * *', retentionCopies: 7, backupStorage: main}"),
                                           instances=WITH_AGENT) + s3("main"))
    assert backups(repo) == {
        "enabled": True,
        "pgbackrest": {
            "image": "percona/percona-pgbackrest:2.58.0-1",
            "configuration": [{"secret": {"name": "ledger-pgbackrest-secrets"}}],
            "global": {
                "repo1-path": "/finance/ledger",
                "repo1-retention-full": "7",
            },
            "repos": [
                {
                    "name": "repo1",
                    "s3": {"bucket": "main-bucket", "endpoint": "s3.example.com", "region": "eu-west-1"},
                    "schedules": {"full": "0 1 * * *"},
                }
            ],
        },
    }


def test_repositories_are_numbered_in_schedule_order_then_pitr(repo):
    """everest's addNewSchedules (pg_repos_reconciler.go) gives a new cluster's repositories
    repo1.. in the order of its enabled schedules; the PITR storage comes last."""
    body = schedules(
        "{name: a, schedule: '0 1 * * *', backupStorage: zeta}",
        "{name: b, schedule: '0 2 * * *', backupStorage: alpha}",
        "{name: c, schedule: '0 3 * * *', backupStorage: mid}",
    )
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + s3("zeta") + azure("alpha") + s3("mid"))
    repos = backups(repo)["pgbackrest"]["repos"]
    assert [(r["name"], r.get("s3", r.get("azure"))) for r in repos] == [
        ("repo1", {"bucket": "zeta-bucket", "endpoint": "s3.example.com", "region": "eu-west-1"}),
        ("repo2", {"container": "alpha-container"}),
        ("repo3", {"bucket": "mid-bucket", "endpoint": "s3.example.com", "region": "eu-west-1"}),
    ]
    assert [r["schedules"]["full"] for r in repos] == ["0 1 * * *", "0 2 * * *", "0 3 * * *"]


def test_an_appended_schedule_renumbers_nothing_and_pitr_comes_after_the_schedules(repo):
    body = schedules(
        "{name: a, schedule: '0 1 * * *', backupStorage: zeta}",
        "{name: paused, schedule: '0 2 * * *', backupStorage: beta, enabled: false}",
        "{name: b, schedule: '0 3 * * *', backupStorage: alpha}",
    ) + "  pitr: {enabled: true, backupStorage: wal}\n"
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + s3("zeta") + s3("beta") + s3("alpha") + s3("wal"))
    repos = backups(repo)["pgbackrest"]["repos"]
    assert [(r["name"], r["s3"]["bucket"]) for r in repos] == [("repo1", "zeta-bucket"), ("repo2", "alpha-bucket"), ("repo3", "wal-bucket")]


def test_four_storages_fill_repo1_to_repo4(repo):
    names = ["s1", "s2", "s3", "s4"]
    body = schedules(*(f"{{name: n{i}, schedule: '0 {i} * * *', backupStorage: {n}}}" for i, n in enumerate(names)))
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + "".join(s3(n) for n in names))
    assert [r["name"] for r in backups(repo)["pgbackrest"]["repos"]] == ["repo1", "repo2", "repo3", "repo4"]


def test_verify_tls_is_written_only_as_n_when_verification_is_off(repo):
    """everest's addRepoToPGGlobal writes repoN-storage-verify-tls only when verifyTLS is false."""
    body = schedules("{name: a, schedule: '0 1 * * *', backupStorage: lab}", "{name: b, schedule: '0 2 * * *', backupStorage: prod}")
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + s3("lab", verifyTLS=False) + s3("prod"))
    options = backups(repo)["pgbackrest"]["global"]
    assert options["repo1-storage-verify-tls"] == "n"
    assert "repo2-storage-verify-tls" not in options


@pytest.mark.parametrize("endpoint", ["s3.amazonaws.com", "https://s3.amazonaws.com", "https://s3.amazonaws.com/"])
def test_the_repository_endpoint_is_the_host_with_or_without_a_scheme(repo, endpoint):
    """BackupStorage.endpointURL is taken with or without a scheme, as everest's CRD; pgBackRest's
    repo-s3-endpoint is a host."""
    body = schedules("{name: a, schedule: '0 1 * * *', backupStorage: s1}")
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + s3("s1", endpointURL=endpoint))
    assert backups(repo)["pgbackrest"]["repos"][0]["s3"]["endpoint"] == "s3.amazonaws.com"


def test_a_port_is_kept_in_the_repository_endpoint(repo):
    body = schedules("{name: a, schedule: '0 1 * * *', backupStorage: s1}")
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + s3("s1", endpointURL="'https://minio.lab:9000'"))
    assert backups(repo)["pgbackrest"]["repos"][0]["s3"]["endpoint"] == "minio.lab:9000"


def test_uri_style_path_only_for_s3_storages_that_force_path_style(repo):
    body = schedules(
        "{name: a, schedule: '0 1 * * *', backupStorage: minio}",
        "{name: b, schedule: '0 2 * * *', backupStorage: aws}",
        "{name: c, schedule: '0 3 * * *', backupStorage: blob}",
    )
    storages = s3("minio", forcePathStyle=True) + s3("aws", forcePathStyle=False) + azure("blob", forcePathStyle=True)
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + storages)
    options = backups(repo)["pgbackrest"]["global"]
    assert sorted(k for k in options if k.endswith("-s3-uri-style")) == ["repo1-s3-uri-style"]  # minio, aws, blob
    assert options["repo1-s3-uri-style"] == "path"


def test_retention_is_the_schedules_copies_and_unlimited_when_unset_or_zero(repo):
    body = schedules(
        "{name: a, schedule: '0 1 * * *', retentionCopies: 3, backupStorage: s1}",
        "{name: b, schedule: '0 2 * * *', backupStorage: s2}",
        "{name: c, schedule: '0 3 * * *', retentionCopies: 0, backupStorage: s3}",
    )
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + s3("s1") + s3("s2") + s3("s3"))
    options = backups(repo)["pgbackrest"]["global"]
    assert [options[f"repo{i}-retention-full"] for i in (1, 2, 3)] == ["3", "9999999", "9999999"]


def test_repository_path_is_the_path_prefix(repo):
    body = "backup:\n  pathPrefix: ledger/1c2d3e4f\n  schedules:\n    - {name: a, schedule: '0 1 * * *', backupStorage: s1}\n"
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + s3("s1"))
    assert backups(repo)["pgbackrest"]["global"]["repo1-path"] == "/ledger/1c2d3e4f"


def test_a_disabled_schedule_is_not_rendered_and_its_storage_gets_no_repository(repo):
    body = schedules(
        "{name: active, schedule: '0 1 * * *', backupStorage: s2}",
        "{name: paused, schedule: '0 2 * * *', backupStorage: s1, enabled: false}",
    )
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + s3("s1") + s3("s2"))
    repos = backups(repo)["pgbackrest"]["repos"]
    assert [(r["name"], r["s3"]["bucket"], r["schedules"]["full"]) for r in repos] == [("repo1", "s2-bucket", "0 1 * * *")]


def test_only_disabled_schedules_leave_backups_disabled(repo):
    body = schedules("{name: paused, schedule: '0 2 * * *', backupStorage: s1, enabled: false}")
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + s3("s1"))
    assert backups(repo)["enabled"] is False


def test_pitr_storage_without_schedule_gets_a_repository_for_wal_only(repo):
    body = "backup:\n  pitr: {enabled: true, backupStorage: wal, uploadIntervalSec: 60}\n"
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + s3("wal"))
    pgbackrest = backups(repo)["pgbackrest"]
    s3_repo = {"bucket": "wal-bucket", "endpoint": "s3.example.com", "region": "eu-west-1"}
    assert pgbackrest["repos"] == [{"name": "repo1", "s3": s3_repo}]
    assert pgbackrest["global"] == {"repo1-path": "/finance/ledger"}


def test_pitr_on_a_scheduled_storage_adds_nothing(repo):
    body = schedules("{name: a, schedule: '0 1 * * *', backupStorage: s1}") + "  pitr: {enabled: true, backupStorage: s1}\n"
    repo.write("clusters/a.yaml", postgres(body, instances=WITH_AGENT, name="a") + s3("s1"))
    repo.write("clusters/b.yaml", postgres(schedules("{name: a, schedule: '0 1 * * *', backupStorage: s1}"), instances=WITH_AGENT,
                                           name="b"))
    a, b = (o["spec"]["backups"]["pgbackrest"] for o in repo.objects())
    assert a["repos"] == b["repos"]
    assert a["global"]["repo1-path"] == "/finance/a" and a["global"].keys() == b["global"].keys()


def test_a_pinned_pgbackrest_version_picks_its_image(repo):
    body = "components:\n  versions:\n    pgbackrest: {version: 2.57.0-1}\n"
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT))
    assert backups(repo)["pgbackrest"]["image"] == "percona/percona-pgbackrest:2.57.0-1"


# --- monitoring -----------------------------------------------------------------------------


def monitored(memory: str, resources: str = "") -> str:
    extra = f", resources: {resources}" if resources else ""
    return f"engine: {{resources: {{memory: {memory}}}}}\nproxy: {{}}\nmonitoring: {{monitoringConfig: pmm{extra}}}\n"


def test_no_monitoring_renders_no_pmm(repo):
    repo.write("clusters/c.yaml", postgres())
    assert "pmm" not in spec_of(repo)


def test_pmm_reports_to_the_monitoring_config_host_with_the_clusters_pmm_secret(repo):
    repo.write("clusters/c.yaml", postgres(instances=monitored("2G")) + pmm())
    assert spec_of(repo)["pmm"] == {
        "enabled": True,
        "image": "percona/pmm-client:3.7.1",
        "imagePullPolicy": "IfNotPresent",
        "serverHost": "pmm.example.com",
        "secret": "everest-secrets-ledger-pmm",
        "querySource": "pgstatstatements",
        "resources": {"requests": {"cpu": "95m", "memory": "99604Ki"}},
    }


@pytest.mark.parametrize(
    "memory,requests",
    [
        ("7.9G", {"cpu": "95m", "memory": "99604Ki"}),
        ("8G", {"cpu": "228m", "memory": "199168Ki"}),
        ("31Gi", {"cpu": "228m", "memory": "796907Ki"}),
    ],
)
def test_pmm_requests_follow_the_engine_size_class(repo, memory, requests):
    repo.write("clusters/c.yaml", postgres(instances=monitored(memory)) + pmm())
    assert spec_of(repo)["pmm"]["resources"] == {"requests": requests}


def test_pmm_shorthand_is_merged_over_the_preset_requests_field_by_field(repo):
    repo.write("clusters/c.yaml", postgres(instances=monitored("16G", "{cpu: 500m}")) + pmm())
    assert spec_of(repo)["pmm"]["resources"] == {"requests": {"cpu": "500m", "memory": "199168Ki"}}


def test_pmm_full_form_merges_requests_and_adds_limits(repo):
    repo.write("clusters/c.yaml", postgres(instances=monitored("1G", "{requests: {memory: 300Mi}, limits: {memory: 1Gi}}")) + pmm())
    assert spec_of(repo)["pmm"]["resources"] == {"requests": {"cpu": "95m", "memory": "300Mi"}, "limits": {"memory": "1Gi"}}


def test_pmm_image_comes_from_the_monitoring_config_unless_pinned(repo):
    repo.write("clusters/a.yaml", postgres(instances=monitored("1G"), name="a") + pmm(image="percona/pmm-client:2.44.1-1"))
    repo.write("clusters/b.yaml", postgres("components:\n  versions:\n    pmm: {version: 3.7.1}\n", instances=monitored("1G"), name="b"))
    assert [o["spec"]["pmm"]["image"] for o in repo.objects()] == ["percona/pmm-client:2.44.1-1", "percona/pmm-client:3.7.1"]


# --- the Secrets a cluster needs ------------------------------------------------------------


def needed_secrets(repo) -> dict[str, list[str]]:
    (cluster,) = repo.resolved()
    return {s["name"]: s["keys"] for s in ProviderRenderer(cluster.provider).required_secrets(cluster)}


def test_a_bare_cluster_needs_only_its_users_secret(repo):
    repo.write("clusters/c.yaml", postgres())
    assert needed_secrets(repo) == {"everest-secrets-ledger": ["user", "password", "host", "port", "uri"]}


def test_backups_need_the_pgbackrest_secret_and_each_storages_credentials(repo):
    body = schedules("{name: a, schedule: '0 1 * * *', backupStorage: s1}", "{name: b, schedule: '0 2 * * *', backupStorage: blob}")
    repo.write("clusters/c.yaml", postgres(body, instances=WITH_AGENT) + s3("s1") + azure("blob"))
    secrets = needed_secrets(repo)
    assert secrets["ledger-pgbackrest-secrets"] == ["s3.conf"]
    assert secrets["s1-keys"] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    assert secrets["blob-keys"] == ["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY"]


def test_the_pmm_secret_key_follows_the_pmm_client_major(repo):
    repo.write("clusters/c.yaml", postgres(instances=monitored("1G")) + pmm())
    assert needed_secrets(repo)["everest-secrets-ledger-pmm"] == ["PMM_SERVER_TOKEN"]
    repo.write("clusters/c.yaml", postgres(instances=monitored("1G")) + pmm(image="percona/pmm-client:2.44.1-1"))
    secrets = needed_secrets(repo)
    assert secrets["everest-secrets-ledger-pmm"] == ["PMM_SERVER_KEY"]
    assert secrets["pmm-token"] == ["apiKey"]
