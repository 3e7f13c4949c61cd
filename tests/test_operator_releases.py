"""A provider supports several operator releases: crVersion, CRD schemas and catalogue per release,
the newest non-preview release the default, a repository pins one in everest-render.yaml."""

from __future__ import annotations

import json

import pytest

from everest_render.resolve.releases import release_order
from everest_render.testing import Repo

SETTINGS = "apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\nspec:\n  operatorReleases:\n"

# A strict schema per release: 1.0.0 knows spec.image and spec.replicas; 2.0.0 also knows
# spec.tls, and 3.0.0 (a preview) knows only what 2.0.0 does.
_SPEC_1 = {"type": "object", "properties": {"image": {"type": "string"}, "replicas": {"type": "integer"}}, "additionalProperties": False}
_SPEC_2 = {**_SPEC_1, "properties": {**_SPEC_1["properties"], "tls": {"type": "boolean"}}}


def _schema(spec: dict[str, object]) -> str:
    metadata = {"type": "object"}
    properties = {"apiVersion": {"const": "example.io/v1"}, "kind": {"const": "Kv"}, "metadata": metadata, "spec": spec}
    return json.dumps({"type": "object", "properties": properties, "additionalProperties": False})


PROVIDER = """\
apiVersion: everest.percona.com/v2alpha1
kind: Provider
metadata: {name: kv}
spec:
  databaseClusterDefinition: kv
  operator:
    name: kv-operator
    version: 1.0.0
    releases:
      - {version: 2.0.0, schemas: {Kv: schemas/2.0.0/Kv.json}}
      - {version: 3.0.0, crds: 3.0.0-dev, preview: true, schemas: {Kv: schemas/3.0.0/Kv.json}}
  templates: [kv.yaml.j2]
  objects:
    - {apiVersion: example.io/v1, kind: Kv, schema: schemas/Kv.json}
"""
DEFINITION = """\
apiVersion: everest.percona.com/v2alpha1
kind: DatabaseClusterDefinition
metadata: {name: kv}
spec:
  componentTypes:
    kv:
      versions:
        - {version: "1.1", image: "example.io/kv:1.1", default: true}
  components:
    engine: {type: kv}
  topologies:
    standard:
      components:
        engine: {defaults: {replicas: 1}}
  releases:
    2.0.0:
      componentTypes:
        kv:
          versions:
            - {version: "1.1", image: "example.io/kv:1.1"}
            - {version: "2.1", image: "example.io/kv:2.1", default: true}
"""
# The template writes spec.tls from 2.0.0 on, which the 1.0.0 schema refuses: a template that
# ignored the release in effect would fail that release's schema.
TEMPLATE = """\
apiVersion: example.io/v1
kind: Kv
metadata:
  name: {{ cluster.name | tojson }}
spec:
  image: {{ components.engine.image | tojson }}
  replicas: {{ components.engine.replicas | tojson }}
{% if cluster.crVersion != "1.0.0" %}
  tls: true
{% endif %}
"""
CLUSTER = """\
apiVersion: everest.percona.com/v2alpha1
kind: DatabaseCluster
metadata: {name: cache, namespace: shop}
spec:
  provider: kv
  instances:
    engine: {}
"""


@pytest.fixture
def kv(repo: Repo) -> Repo:
    repo.write("providers/kv/provider.yaml", PROVIDER)
    repo.write("providers/kv/definition.yaml", DEFINITION)
    repo.write("providers/kv/kv.yaml.j2", TEMPLATE)
    repo.write("providers/kv/schemas/Kv.json", _schema(_SPEC_1))
    repo.write("providers/kv/schemas/2.0.0/Kv.json", _schema(_SPEC_2))
    repo.write("providers/kv/schemas/3.0.0/Kv.json", _schema(_SPEC_2))
    repo.write("clusters/shop/cache.yaml", CLUSTER)
    return repo


def test_the_newest_release_that_is_not_a_preview_is_the_default(kv):
    (cluster,) = kv.resolved()
    assert cluster.cr_version == "2.0.0"
    assert cluster.provider.release_origin == "default: its newest operator release that is not a preview"
    # ... with its own catalogue and its own schema (spec.tls passes only the 2.0.0 schema).
    assert kv.only_object()["spec"] == {"image": "example.io/kv:2.1", "replicas": 1, "tls": True}


def test_a_pinned_release_gives_its_cr_version_catalogue_and_schema(kv):
    kv.write("everest-render.yaml", SETTINGS + "    kv: 1.0.0\n")
    (cluster,) = kv.resolved()
    assert (cluster.cr_version, cluster.provider.release_origin) == ("1.0.0", "pinned in everest-render.yaml:5:9 (spec.operatorReleases)")
    assert kv.only_object()["spec"] == {"image": "example.io/kv:1.1", "replicas": 1}


def test_each_release_is_checked_against_its_own_schema(kv):
    kv.write("providers/kv/kv.yaml.j2", TEMPLATE.replace('cluster.crVersion != "1.0.0"', "true"))
    kv.write("everest-render.yaml", SETTINGS + "    kv: 1.0.0\n")
    (error,) = kv.errors()
    assert "rendered Kv shop/cache does not match the operator's schema at spec.tls: unknown field 'tls'" in error


def test_a_preview_release_is_used_only_when_pinned(kv):
    kv.write("everest-render.yaml", SETTINGS + "    kv: 3.0.0\n")
    (cluster,) = kv.resolved()
    assert cluster.cr_version == "3.0.0"
    # A release without a catalogue of its own takes the definition's.
    assert cluster.versions["kv"].image == "example.io/kv:1.1"


def test_a_pin_of_a_release_the_provider_does_not_support_is_refused_listing_them(kv):
    kv.write("everest-render.yaml", SETTINGS + "    kv: 2.0.1\n")
    assert kv.errors() == [
        "everest-render.yaml:5:9: provider kv supports no operator release '2.0.1'; known: 1.0.0, 2.0.0, 3.0.0"
        '; did you mean "2.0.0"? (at spec.operatorReleases.kv)'
    ]


def test_a_pin_of_an_unknown_provider_is_refused_at_its_key(kv):
    kv.write("everest-render.yaml", SETTINGS + "    kvs: 1.0.0\n")
    (error,) = kv.errors()
    assert error.startswith("everest-render.yaml:5:5: unknown provider 'kvs'; known: ")
    assert error.endswith('; did you mean "kv"? (at spec.operatorReleases.kvs)')


def test_a_release_must_name_the_schema_of_every_kind_it_renders(kv):
    kv.write("providers/kv/provider.yaml", PROVIDER.replace("schemas: {Kv: schemas/2.0.0/Kv.json}", "schemas: {Kvs: schemas/2.0.0/Kv.json}"))
    assert kv.errors() == [
        "providers/kv/provider.yaml:10:26: release 2.0.0 needs the schema of every kind it renders: add Kv"
        " (at spec.operator.releases[0].schemas)",
        'providers/kv/provider.yaml:10:36: Kvs is not a kind of spec.objects; known: Kv; did you mean "Kv"?'
        " (at spec.operator.releases[0].schemas.Kvs)",
    ]


def test_a_release_schema_that_is_missing_and_a_release_listed_twice_are_refused(kv):
    kv.write(
        "providers/kv/provider.yaml",
        PROVIDER.replace("schemas/3.0.0/Kv.json}}", "schemas/4.0.0/Kv.json}}\n      - {version: 1.0.0, schemas: {Kv: schemas/Kv.json}}"),
    )
    assert kv.errors() == [
        "providers/kv/provider.yaml:11:72: no schema 'schemas/4.0.0/Kv.json' in providers/kv/ (at spec.operator.releases[1].schemas.Kv)",
        "providers/kv/provider.yaml:12:19: operator release 1.0.0 is listed twice (first at spec.operator.version)"
        " (at spec.operator.releases[2].version)",
    ]


def test_a_definition_release_no_provider_supports_is_refused(kv):
    kv.write("providers/kv/definition.yaml", DEFINITION.replace("  releases:\n    2.0.0:", "  releases:\n    2.1.0:"))
    assert kv.errors() == [
        "providers/kv/definition.yaml:16:5: no provider of this definition supports operator release '2.1.0';"
        ' known: 1.0.0, 2.0.0, 3.0.0; did you mean "2.0.0"? (at spec.releases.2.1.0)'
    ]


def test_a_release_catalogue_is_checked_as_the_definitions_own(kv):
    kv.write("providers/kv/definition.yaml", DEFINITION.replace('image: "example.io/kv:2.1", default: true', 'image: "example.io/kv:2.1"'))
    assert kv.errors() == [
        "providers/kv/definition.yaml:20:13: component type 'kv' must mark exactly one version default: true"
        " (at spec.releases.2.0.0.componentTypes.kv.versions)"
    ]


def test_providers_list_and_explain_name_the_releases(kv):
    from everest_render.commands.explain import explain_text, providers_text
    from everest_render.pipeline import read_repository, resolve_repository

    result = resolve_repository(read_repository(kv.root))
    listing = providers_text(result.catalog)
    assert "  operator releases: 1.0.0, 2.0.0, 3.0.0 (preview); in effect 2.0.0 (default: its newest operator release" in listing
    (cluster,) = result.clusters
    assert "-> kv-operator 2.0.0 (default: its newest operator release that is not a preview)" in explain_text(cluster, result.catalog)


@pytest.mark.parametrize(
    ("older", "newer"),
    [("1.9.0", "1.10.0"), ("1.20.0-rc1", "1.20.0"), ("1.19.0", "1.20.0-dev"), ("2", "2.0.1")],
)
def test_releases_are_ordered_by_their_numbers(older, newer):
    assert release_order(older) < release_order(newer)
