"""Extensions (docs/extensions.md): selection and opt-out, ordering, settings, refusals of
provider objects, broken extensions, the providers' sandbox, explain and shared objects."""

from __future__ import annotations

import json
import textwrap

import pytest

from everest_render.commands.explain import explain_json, explain_text
from everest_render.testing import Repo
from tests.conftest import mongodb

SETTINGS = "apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\nspec:\n  extensions:\n"
OPEN_SCHEMA = json.dumps({"type": "object", "required": ["apiVersion", "kind", "metadata"]})


def extension(repo: Repo, name: str = "pdb", template: str | None = None, *, spec: str = "", kind: str = "PodDisruptionBudget",
              api_version: str = "policy/v1", shared: bool = False) -> None:
    """An extension folder rendering one object per cluster (``template`` overrides it)."""
    repo.write(
        f"extensions/{name}/extension.yaml",
        f"""\
        apiVersion: everest-render/v1alpha1
        kind: Extension
        metadata: {{name: {name}}}
        spec:
          settingsSchema:
            type: object
            properties:
              maxUnavailable: {{type: integer, minimum: 0, default: 1}}
            additionalProperties: false
          templates:
            - {{file: object.yaml.j2, shared: {str(shared).lower()}}}
          objects:
            - {{apiVersion: {api_version}, kind: {kind}, schema: schemas/object.json}}
        """.rstrip(" ") + textwrap.indent(spec, " " * 8),
    )
    repo.write(f"extensions/{name}/schemas/object.json", OPEN_SCHEMA)
    body = template or (
        f"apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {{{{ cluster.name }}}}-{name}\n"
        "spec:\n  maxUnavailable: {{ settings.maxUnavailable }}\n"
    )
    repo.write(f"extensions/{name}/object.yaml.j2", body)


def enable(repo: Repo, *entries: str) -> None:
    repo.write("everest-render.yaml", SETTINGS + "".join(f"    {entry}\n" for entry in entries))


def added(repo: Repo, extension_name: str = "pdb") -> list[str]:
    return sorted(
        f"{o['metadata']['namespace']}/{o['metadata']['name']}"
        for o in repo.objects()
        if o["metadata"].get("labels", {}).get("everest-render/extension") == extension_name
    )


def test_an_extension_applies_only_when_the_settings_file_enables_it(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    extension(repo)
    assert added(repo) == []
    enable(repo, "pdb: {}")
    assert added(repo) == ["shop/orders-pdb"]
    enable(repo, "pdb: {enabled: false, settings: {maxUnavailable: 2}}")
    assert added(repo) == []


def test_settings_are_validated_located_and_defaulted(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    extension(repo)
    enable(repo, "pdb: {}")
    (pdb,) = [o for o in repo.objects() if o["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"] == {"maxUnavailable": 1}  # the schema's default
    enable(repo, "pdb: {settings: {maxUnavailable: -1, colour: red}}")
    assert repo.errors() == [
        "everest-render.yaml:5:38: extension pdb: -1 is less than the minimum of 0 (at spec.extensions.pdb.settings.maxUnavailable)",
        "everest-render.yaml:5:42: extension pdb: unknown field 'colour' (at spec.extensions.pdb.settings.colour)",
    ]
    enable(repo, "pbd: {}")
    assert repo.errors() == ['everest-render.yaml:5:5: unknown extension \'pbd\'; known: credentials, monitoring, network-policy, pdb; did you mean "pdb"? (at spec.extensions.pbd)']


def test_selection_by_namespace_label_and_provider_and_the_opt_out_annotation(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/carts.yaml", mongodb("carts").replace("metadata:\n", "metadata:\n  labels: {tier: gold}\n"))
    repo.write("clusters/dev/scratch.yaml", mongodb("scratch", "dev"))
    spec = "  select:\n    namespaces: [shop]\n    providers: [percona-server-mongodb]\n    labelSelector:\n" \
           "      matchExpressions: [{key: tier, operator: In, values: [gold]}]\n"
    extension(repo, spec=spec)
    enable(repo, "pdb: {}")
    assert added(repo) == ["shop/carts-pdb"]
    extension(repo, spec="  select: {namespaces: [shop]}\n")
    assert added(repo) == ["shop/carts-pdb", "shop/orders-pdb"]
    repo.write("clusters/shop/orders.yaml", mongodb().replace("metadata:\n", "metadata:\n  annotations: {everest-render/skip-extensions: pdb}\n"))
    assert added(repo) == ["shop/carts-pdb"]
    repo.write("clusters/shop/orders.yaml", mongodb().replace("metadata:\n", "metadata:\n  annotations: {everest-render/skip-extensions: pbd}\n"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:4:49: unknown extension 'pbd' in everest-render/skip-extensions; known: all, credentials, monitoring, network-policy, pdb; "
        'did you mean "pdb"? (at metadata.annotations.everest-render/skip-extensions)'
    ]


def test_extension_objects_sit_in_the_clusters_file_in_the_api_order_with_its_labels_and_annotations(repo):
    repo.write("clusters/shop/orders.yaml", mongodb().replace("metadata:\n", "metadata:\n  labels: {team: a}\n  annotations: {argocd.argoproj.io/sync-wave: '2'}\n"))
    template = (
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n  name: {{ cluster.name }}-users\n"
        "  annotations: {argocd.argoproj.io/sync-wave: '1'}\nspec: {}\n"
    )
    extension(repo, "creds", template, kind="ExternalSecret", api_version="external-secrets.io/v1")
    enable(repo, "creds: {}")
    result = repo.result()
    text = result.plan.files["shop/orders.yaml"].decode()
    assert text.index("kind: ExternalSecret") < text.index("kind: PerconaServerMongoDB")  # API.md's order
    (secret,) = [o.obj for o in result.objects if o.obj["kind"] == "ExternalSecret"]
    assert secret["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "everest-render", "everest.percona.com/cluster": "orders", "team": "a", "everest-render/extension": "creds",
    }
    assert secret["metadata"]["annotations"] == {"argocd.argoproj.io/sync-wave": "1"}  # its own wave wins over the cluster's


def shared_by_orders_and_carts(repo, template: str) -> None:
    """Clusters shop/orders and shop/carts, and extension ``common`` on, whose one shared
    template renders a ConfigMap: ``template``."""
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/shop/carts.yaml", mongodb("carts"))
    extension(repo, "common", template, kind="ConfigMap", api_version="v1", shared=True)
    enable(repo, "common: {}")


def test_shared_objects_are_rendered_once_into_the_namespace_file(repo):
    template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: common\ndata: {a: b}\n"
    shared_by_orders_and_carts(repo, template)
    plan = repo.result().plan.files
    assert plan["shop/_extensions.yaml"].decode() == (
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    app.kubernetes.io/managed-by: everest-render\n"
        "    everest-render/extension: common\n  name: common\n  namespace: shop\ndata:\n  a: b\n"
    )
    extension(repo, "common", template.replace("a: b", "a: '{{ cluster.name }}'"), kind="ConfigMap", api_version="v1", shared=True)
    assert repo.errors() == [
        "extensions/common/object.yaml.j2:1:1: extension common renders ConfigMap shop/common differently for shop/carts and "
        "shop/orders: a shared object must be the same for every cluster that needs it"
    ]


def test_a_shared_object_is_one_when_every_cluster_writes_it_alike(repo):
    # Python takes 1 and true for equal values; the API server, the files and each cluster's
    # extension do not: the namespace's one object would carry the first cluster's.
    template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: common\ndata: {a: {{ 1 if cluster.name == 'carts' else 'true' }}}\n"
    shared_by_orders_and_carts(repo, template)
    assert repo.errors() == [
        "extensions/common/object.yaml.j2:1:1: extension common renders ConfigMap shop/common differently for shop/carts and "
        "shop/orders: a shared object must be the same for every cluster that needs it"
    ]


def test_an_extension_may_not_render_a_providers_kind_nor_overwrite_its_objects(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    extension(repo, "evil", "apiVersion: psmdb.percona.com/v1\nkind: PerconaServerMongoDB\nmetadata: {name: orders}\nspec: {}\n",
              kind="PerconaServerMongoDB", api_version="psmdb.percona.com/v1")
    enable(repo, "evil: {}")
    assert repo.errors() == [
        "extensions/evil/extension.yaml:13:48: PerconaServerMongoDB is a kind provider percona-server-mongodb renders: "
        "an extension adds objects around a database, never its own (at spec.objects[0].kind)"
    ]


def test_an_extension_may_not_overwrite_what_an_earlier_one_rendered(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    template = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: orders}\nspec: {}\n"
    extension(repo, "first", template, spec="  order: 1\n")
    extension(repo, "second", template, spec="  order: 2\n")
    enable(repo, "first: {}", "second: {}")
    assert repo.errors() == [
        "extensions/second/object.yaml.j2:1:1: extension second may not overwrite PodDisruptionBudget shop/orders, which extension "
        "first renders for shop/orders (extensions/first/object.yaml.j2); cluster at clusters/shop/orders.yaml:1"
    ]
    extension(repo, "second", template, spec="  order: 0\n")  # order decides which is refused
    assert repo.errors()[0].startswith("extensions/first/object.yaml.j2:1:1: extension first may not overwrite")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"extensions/pdb/extension.yaml": "kind: Extension\n"},
         ["extensions/pdb/extension.yaml:1:1: missing required field 'apiVersion'",
          "extensions/pdb/extension.yaml:1:1: missing required field 'metadata'",
          "extensions/pdb/extension.yaml:1:1: missing required field 'spec'"]),
        ({"extensions/pdb/object.yaml.j2": "{% if %}\n"},
         ["extensions/pdb/object.yaml.j2:1:1: template syntax error: Expected an expression, got 'end of statement block'"]),
        ({"extensions/pdb/schemas/object.json": "{"},
         ["extensions/pdb/schemas/object.json:1:2: not JSON: Expecting property name enclosed in double quotes"]),
        ({"extensions/pdb/object.yaml.j2": "kind: Deployment\napiVersion: apps/v1\nmetadata: {name: x}\n"},
         ["extensions/pdb/object.yaml.j2:1:1: rendering shop/orders produced ('apps/v1', 'Deployment'), "
          "which spec.objects does not list (policy/v1 PodDisruptionBudget)"]),
        ({"extensions/other/README.md": "no manifest\n"}, ["extensions/other:1:1: an extension folder needs extension.yaml (its manifest)"]),
    ],
    ids=["manifest", "template-syntax", "schema-json", "undeclared-kind", "no-manifest"],
)
def test_a_broken_extension_gives_located_errors_and_nothing_is_written(repo, files, expected):
    repo.write("clusters/shop/orders.yaml", mongodb())
    extension(repo)
    enable(repo, "pdb: {}")
    for path, text in files.items():
        repo.write(path, text)
    result = repo.result()
    assert [str(d) for d in result.diagnostics if d.is_error] == expected
    assert result.plan.files == {}


def test_extension_templates_run_in_the_providers_sandbox(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    # The sandbox's bounds (a cheap one here; the step budget is the same code, render/limits.py).
    extension(repo, template="{% for i in range(200000) %}{% endfor %}")
    enable(repo, "pdb: {}")
    (error,) = repo.errors()
    assert error.startswith("extensions/pdb/object.yaml.j2:1:1: while rendering shop/orders: OverflowError: Range too big.")
    extension(repo, template="{{ [1, 2] | random }}")
    (error,) = repo.errors()
    assert error == "extensions/pdb/object.yaml.j2:1:1: template syntax error: No filter named 'random'."


def test_rendered_objects_are_checked_against_the_extensions_schema_and_the_core(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    extension(repo)
    repo.write("extensions/pdb/schemas/object.json", json.dumps({"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"maxUnavailable": {"type": "string"}}, "additionalProperties": False}}}))
    enable(repo, "pdb: {}")
    assert repo.errors() == [
        "clusters/shop/orders.yaml:7:3: rendered PodDisruptionBudget shop/orders does not match extension pdb's schema at "
        'spec.maxUnavailable: 1 is not of type "string" (template extensions/pdb/object.yaml.j2)'
    ]
    extension(repo, template="apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {password: hunter2}\n", kind="Secret", api_version="v1")
    (error,) = repo.errors()
    assert "Secret" in error and "hunter2" not in error


def test_explain_names_the_extensions_applied_what_they_add_and_those_skipped(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    extension(repo)
    extension(repo, "elsewhere", spec="  select: {namespaces: [dev]}\n")
    enable(repo, "pdb: {}", "elsewhere: {}")
    (cluster,) = repo.resolved()
    data = explain_json(cluster, None)
    assert data["extensions"] == {
        "applied": [{"name": "pdb", "order": 0, "source": "extensions/pdb", "objects": [
            {"kind": "PodDisruptionBudget", "name": "orders-pdb", "file": "out/shop/orders.yaml"}]}],
        "skipped": [{"name": "elsewhere", "why": "not selected: namespace shop is not one of dev"}],
    }
    assert "  pdb (extensions/pdb, order 0): adds PodDisruptionBudget orders-pdb (out/shop/orders.yaml)\n" in explain_text(cluster, None)


def test_a_cluster_scoped_kind_is_refused_as_a_template_s_output(repo):
    # Written with its cluster's namespace, which the API server ignores for it, a ClusterRole
    # would be one object owned by the clusters of every namespace: pruning one deletes it.
    repo.write("clusters/shop/orders.yaml", mongodb())
    template = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: db-reader\nrules: []\n"
    extension(repo, "reader", template, kind="ClusterRole", api_version="rbac.authorization.k8s.io/v1")
    enable(repo, "reader: {}")
    assert repo.errors() == [
        "extensions/reader/object.yaml.j2:1:1: rendering shop/orders produced ClusterRole db-reader, which is cluster-scoped: a template "
        "renders only objects of the cluster's namespace (put a cluster-scoped object under clusters/, where it is passed through)"
    ]
