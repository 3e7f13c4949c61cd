"""An upstream OpenEverest core.openeverest.io Provider is read as a definition: a team brings
the catalogue it runs (fixtures: the real upstream PostgreSQL and PXC Providers, vendored)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from everest_render.testing import Repo

FIXTURES = Path(__file__).parent / "fixtures" / "upstream-providers"
PG = (FIXTURES / "provider-percona-postgresql.yaml").read_text()
PXC = (FIXTURES / "provider-percona-xtradb-cluster.yaml").read_text()


def instance(spec: str, name: str = "db") -> str:
    header = f"apiVersion: core.openeverest.io/v1alpha1\nkind: Instance\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n"
    return header + spec


PG_INSTANCE = instance(
    "  providerRef: {name: provider-percona-postgresql}\n"
    "  topology: {type: cluster}\n"
    "  components:\n"
    "    engine: {replicas: 3, storage: {size: 10Gi}}\n"
    "    proxy: {replicas: 2}\n"
)


def with_spec(text: str, change: dict[str, object]) -> str:
    """The upstream Provider with ``change`` merged into its spec (one level deep per key)."""
    data = yaml.safe_load(text)
    for key, value in change.items():
        target = data["spec"]
        *parents, last = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return yaml.safe_dump(data, sort_keys=False)


def test_an_aliased_upstream_provider_adds_a_provider_with_its_catalogue(repo: Repo):
    repo.write("definitions/provider-percona-postgresql.yaml", PG)
    repo.write("clusters/shop/db.yaml", PG_INSTANCE)
    repo.write(
        "clusters/shop/native.yaml",
        "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\nmetadata: {name: native, namespace: shop}\n"
        "spec:\n  provider: percona-postgresql\n  instances:\n    engine: {}\n    proxy: {}\n",
    )
    by_name = {c.ref.name: c for c in repo.resolved()}
    upstream, native = by_name["db"], by_name["native"]
    assert (upstream.provider.name, upstream.definition.name) == ("provider-percona-postgresql", "provider-percona-postgresql")
    # Upstream's default (18.4-1), not the built-in's; the built-in provider is unchanged.
    assert upstream.versions["postgresql"].image == "percona/percona-distribution-postgresql:18.4-1"
    assert native.versions["postgresql"].image != upstream.versions["postgresql"].image
    assert native.provider.name == "percona-postgresql" and native.definition.builtin
    # Rendered by the built-in's templates and checked against its CRD schema.
    assert upstream.provider.templates == native.provider.templates
    assert [o["kind"] for o in repo.objects()] == ["PerconaPGCluster", "PerconaPGCluster"]


def test_upstream_runs_pgbackrest_without_a_component_so_backup_agent_stays_optional(repo: Repo):
    repo.write("definitions/provider-percona-postgresql.yaml", PG)
    repo.write("clusters/shop/db.yaml", PG_INSTANCE)
    (cluster,) = repo.resolved()
    topology = cluster.definition.topologies["standard"]
    assert {name: c.optional for name, c in topology.components.items()} == {"engine": False, "proxy": False, "backupAgent": True}
    assert cluster.definition.components["backupAgent"].type == "pgbackrest"
    assert "monitoring" not in cluster.definition.components  # no pmm type upstream: no monitoring


def test_an_upstream_provider_named_as_a_built_in_replaces_its_catalogue(repo: Repo):
    repo.write("providers/percona-xtradb-cluster/definition.yaml", PXC)
    repo.write(
        "clusters/shop/db.yaml",
        instance("  provider: percona-xtradb-cluster\n  components:\n    engine: {replicas: 3}\n    proxy: {replicas: 2, type: proxysql}\n"),
    )
    (cluster,) = repo.resolved()
    assert cluster.versions["pxc"].image == "percona/percona-xtradb-cluster:8.4.8-8.1"
    assert cluster.components["proxy"].type == "proxysql"  # allowedTypes come from the built-in
    assert cluster.provider.document.source.path == "providers/percona-xtradb-cluster/definition.yaml"
    from everest_render.commands.explain import providers_text
    from everest_render.pipeline import read_repository, resolve_repository

    listing = providers_text(resolve_repository(read_repository(repo.root)).catalog)
    assert "percona-xtradb-cluster (providers/percona-xtradb-cluster/definition.yaml, replaces the built-in)" in listing


def test_the_upstream_parameter_schema_checks_a_component_first(repo: Repo):
    schema = {"type": "object", "properties": {"configuration": {"type": "string"}, "maxConnections": {"type": "integer"}}}
    repo.write("definitions/pg.yaml", with_spec(PG, {"components.engine.parametersSchema": {"openAPIV3Schema": schema}}))
    repo.write(
        "clusters/shop/db.yaml",
        PG_INSTANCE.replace("engine: {replicas: 3, storage: {size: 10Gi}}", "engine: {replicas: 3, parameters: {maxConnections: many}}"),
    )
    assert repo.errors() == [
        """clusters/shop/db.yaml:8:56: "many" is not of type "integer" (the upstream Provider's schema)"""
        " (at spec.components.engine.parameters.maxConnections)"
    ]
    # What upstream accepts but has no rendering equivalent stays refused, as docs/api.md says.
    repo.write("clusters/shop/db.yaml", PG_INSTANCE.replace("engine: {replicas: 3, storage: {size: 10Gi}}", "engine: {parameters: {maxConnections: 9}}"))
    assert repo.errors() == [
        "clusters/shop/db.yaml:8:27: parameters.maxConnections has no equivalent: a component takes only parameters.configuration"
        " (at spec.components.engine.parameters.maxConnections)"
    ]


def test_the_upstream_topology_and_instance_schemas_check_their_parameters_first(repo: Repo):
    closed = {"openAPIV3Schema": {"type": "object", "properties": {"shards": {"type": "integer"}}, "additionalProperties": False}}
    repo.write("definitions/pg.yaml", with_spec(PG, {"topologies.cluster.parametersSchema": closed, "parametersSchema": closed}))
    spec = PG_INSTANCE.replace("topology: {type: cluster}", "topology: {type: cluster, parameters: {replicas: 2}}")
    repo.write("clusters/shop/db.yaml", spec + "  parameters: {shards: two}\n")
    assert repo.errors() == [
        "clusters/shop/db.yaml:6:42: unknown field 'replicas' (the upstream Provider's schema) (at spec.topology.parameters.replicas)",
        """clusters/shop/db.yaml:10:24: "two" is not of type "integer" (the upstream Provider's schema) (at spec.parameters.shards)""",
    ]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            {"components.pooler": {"type": "pgbouncer"}},
            "definitions/pg.yaml:{line}: provider percona-postgresql renders no component 'pooler'; known: backupAgent, engine,"
            " monitoring, proxy (at spec.components.pooler)",
        ),
        (
            {"topologies.sharded": {"components": {"engine": {}}}},
            "definitions/pg.yaml:{line}: provider percona-postgresql renders no topology 'sharded'; known: standard (at spec.topologies.sharded)",
        ),
        (
            {"topologies.cluster.components.engine": {"supportedFields": {}}},
            "definitions/pg.yaml:{line}: supportedFields (which Instance fields a component accepts) is not enforced here; remove it,"
            " or the renderer would accept what upstream refuses (at spec.topologies.cluster.components.engine.supportedFields)",
        ),
        (
            {"componentTypes.pgbouncer.defaultVersion": "1.26.0-1"},
            "definitions/pg.yaml:{line}: defaultVersion '1.26.0-1' is not one of the type's versions; known: 1.25.0-1, 1.25.1-1,"
            " 1.25.2-1; did you mean \"1.25.0-1\"? (at spec.componentTypes.pgbouncer.defaultVersion)",
        ),
        (
            {"components.engine.parametersSchema": {"openAPIV3Schema": {"type": "integr"}}},
            "definitions/pg.yaml:{line}: not a valid JSON Schema: ",
        ),
        (
            {"topologies.cluster.components.engine": {"optional": "yes"}},
            'definitions/pg.yaml:{line}: "yes" is not of type "boolean" (at spec.topologies.cluster.components.engine.optional)',
        ),
    ],
    ids=["unknown-component", "unknown-topology", "supported-fields", "default-version", "broken-schema", "shape"],
)
def test_what_cannot_be_rendered_is_refused_at_the_upstream_field(repo: Repo, change, error):
    repo.write("definitions/pg.yaml", with_spec(PG, change))
    repo.write("clusters/shop/db.yaml", PG_INSTANCE)
    errors = repo.errors()
    prefix, rest = error.split("{line}: ")
    assert len(errors) == 1 and errors[0].startswith(prefix), errors
    assert rest in errors[0].split(": ", 1)[1]


def test_a_name_no_provider_answers_to_is_refused_listing_the_names(repo: Repo):
    repo.write("definitions/pg.yaml", PG.replace("name: provider-percona-postgresql", "name: provider-percona-postgres"))
    repo.write("clusters/shop/db.yaml", PG_INSTANCE.replace("provider-percona-postgresql", "percona-postgresql"))
    (error,) = repo.errors()
    assert error.startswith(
        "definitions/pg.yaml:8:9: no provider renders upstream Provider 'provider-percona-postgres':"
        " name it as a provider or one of their instanceAliases.names; known: "
    )
    assert error.endswith('did you mean "provider-percona-postgresql"? (at metadata.name)')


def test_an_upstream_provider_under_clusters_is_refused(repo: Repo):
    repo.write("clusters/shop/pg.yaml", PG)
    repo.write("clusters/shop/db.yaml", PG_INSTANCE)
    assert repo.errors() == [
        "clusters/shop/pg.yaml:6:7: an upstream core.openeverest.io/v1alpha1 Provider is a catalogue: put it under definitions/"
        " (docs/api.md) (at kind)"
    ]
