"""GitOps controls: Flux substitution opt-out, annotations copied from the DatabaseCluster,
tracking metadata refused, deletion protection (docs/gitops.md)."""

from __future__ import annotations

import textwrap

import pytest

from everest_render.pipeline import read_repository, render_repository
from tests.conftest import PROJECT_ROOT
from tests.flux_envsubst import BadSubstitution, apply_to_object, substitute

FLUX_VARIABLES = {"APP": "billing", "LDAP_PASSWORD": "from-flux", "cluster_env": "prod"}


def cluster(provider: str, *, name: str = "orders", metadata: str = "", instances: str = "engine: {}\nproxy: {}\n") -> str:
    return (
        "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\nmetadata:\n"
        f"  name: {name}\n  namespace: shop\n"
        + textwrap.indent(textwrap.dedent(metadata), "  ")
        + f"spec:\n  provider: {provider}\n  instances:\n"
        + textwrap.indent(textwrap.dedent(instances), "    ")
    )


PXC_WITH_VARIABLES = cluster(
    "percona-xtradb-cluster",
    instances="""\
    engine:
      config: |
        [mysqld]
        init_connect='SET @app="${APP}"'
    proxy: {}
    """,
)
PG_WITH_DOLLARS = cluster(
    "percona-postgresql",
    instances="""\
    engine:
      config: |
        log_line_prefix = '%m [%p] ${cluster_env} '
    proxy: {}
    """,
)
MONGODB_WITH_VARIABLES = cluster(
    "percona-server-mongodb",
    instances="""\
    engine:
      config: |
        security:
          ldap:
            bind:
              queryPassword: "${LDAP_PASSWORD}"
    """,
)


def annotations(obj: dict) -> dict:
    return obj["metadata"].get("annotations", {})


# --- Flux substitution ---------------------------------------------------------------------


def test_the_flux_rules_of_the_test_are_flux_rules():
    # The oracle itself: undefined ${var} -> empty, $${var} -> literal, $$ -> $, $var untouched.
    assert substitute("a ${APP} ${MISSING} b", {"APP": "x"}) == "a x  b"
    assert substitute("$${APP} $$ $APP", {"APP": "x"}) == "${APP} $ $APP"
    assert substitute("${MISSING:=dflt} ${APP:-dflt} ${APP:+set}", {"APP": "x"}) == "dflt x set"
    with pytest.raises(BadSubstitution):
        substitute("${MISSING}", {"APP": "x"}, strict=True)
    with pytest.raises(BadSubstitution):
        substitute("${not closed", {})


@pytest.mark.parametrize("text", [PXC_WITH_VARIABLES, PG_WITH_DOLLARS, MONGODB_WITH_VARIABLES], ids=["pxc", "pg", "psmdb"])
def test_an_object_whose_text_flux_would_rewrite_opts_out(repo, text):
    repo.write("clusters/shop/orders.yaml", text)
    (obj,) = repo.objects()
    assert annotations(obj)["kustomize.toolkit.fluxcd.io/substitute"] == "disabled"
    assert apply_to_object(obj, FLUX_VARIABLES) == obj
    # Without the opt-out, Flux would have changed the database's configuration.
    stripped = {**obj, "metadata": {**obj["metadata"], "annotations": {}}}
    assert apply_to_object(stripped, FLUX_VARIABLES) != stripped


def test_double_dollars_and_unclosed_braces_opt_out_too(repo):
    # $$ is Flux's escape ($$ -> $: a PL/pgSQL body breaks), an unclosed ${ fails the Kustomization.
    repo.write(
        "clusters/shop/orders.yaml",
        cluster("percona-xtradb-cluster", instances="engine:\n  config: |\n    [mysqld]\n    init_connect='SELECT 1 -- $$ ${'\nproxy: {}\n"),
    )
    (obj,) = repo.objects()
    assert annotations(obj)["kustomize.toolkit.fluxcd.io/substitute"] == "disabled"


def test_an_object_without_dollar_braces_carries_no_opt_out(repo):
    repo.write("clusters/shop/orders.yaml", cluster("percona-xtradb-cluster", instances="engine:\n  config: 'cost = $5'\nproxy: {}\n"))
    (obj,) = repo.objects()
    assert "kustomize.toolkit.fluxcd.io/substitute" not in annotations(obj)
    assert apply_to_object(obj, FLUX_VARIABLES, strict=True) == obj


def test_nothing_in_a_database_object_changes_under_flux_substitution(repo):
    """Every object of the example fleet and of the clusters above, through Flux's rules with
    variables defined (so Flux substitutes), in strict mode and not."""
    objects = [dict(o.obj) for o in render_repository(read_repository(PROJECT_ROOT), keep_objects=True).objects]
    for index, text in enumerate([PXC_WITH_VARIABLES, PG_WITH_DOLLARS, MONGODB_WITH_VARIABLES]):
        repo.write(f"clusters/shop/c{index}.yaml", text.replace("name: orders", f"name: c{index}"))
    objects += repo.objects()
    assert len(objects) > 14
    for obj in objects:
        assert apply_to_object(obj, FLUX_VARIABLES) == obj
        assert apply_to_object(obj, FLUX_VARIABLES, strict=True) == obj


def test_a_cluster_can_opt_back_in_to_substitution(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        PXC_WITH_VARIABLES.replace("  namespace: shop\n", "  namespace: shop\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: enabled\n"),
    )
    (obj,) = repo.objects()
    assert annotations(obj)["kustomize.toolkit.fluxcd.io/substitute"] == "enabled"
    substituted = apply_to_object(obj, FLUX_VARIABLES)
    assert "SET @app=\"billing\"" in substituted["spec"]["pxc"]["configuration"]


# --- annotations ------------------------------------------------------------------------------


def test_annotations_of_the_cluster_travel_to_its_objects(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        cluster(
            "percona-server-mongodb",
            metadata="""\
            annotations:
              argocd.argoproj.io/sync-wave: "5"
              argocd.argoproj.io/compare-options: ServerSideDiff=true
              kustomize.toolkit.fluxcd.io/ssa: IfNotPresent
            """,
            instances="engine: {}\n",
        ),
    )
    (obj,) = repo.objects()
    assert annotations(obj) == {
        "argocd.argoproj.io/compare-options": "ServerSideDiff=true",
        "argocd.argoproj.io/sync-wave": "5",
        "kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent",
    }


def test_tracking_metadata_on_a_cluster_is_an_error(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        cluster(
            "percona-server-mongodb",
            metadata="""\
            labels:
              kustomize.toolkit.fluxcd.io/name: apps
            annotations:
              argocd.argoproj.io/tracking-id: "db:psmdb.percona.com/PerconaServerMongoDB:shop/orders"
            """,
            instances="engine: {}\n",
        ),
    )
    assert repo.errors() == [
        "clusters/shop/orders.yaml:7:5: label 'kustomize.toolkit.fluxcd.io/name' is tracking metadata (Flux's Kustomization tracking):"
        " the GitOps tool sets it; remove it (at metadata.labels.kustomize.toolkit.fluxcd.io/name)",
        "clusters/shop/orders.yaml:9:5: annotation 'argocd.argoproj.io/tracking-id' is tracking metadata (Argo CD's annotation tracking):"
        " the GitOps tool sets it; remove it (at metadata.annotations.argocd.argoproj.io/tracking-id)",
    ]


def test_last_applied_configuration_is_dropped_with_a_warning(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        cluster(
            "percona-server-mongodb",
            metadata="annotations:\n  kubectl.kubernetes.io/last-applied-configuration: '{}'\n  team: data\n",
            instances="engine: {}\n",
        ),
    )
    assert repo.warnings() == [
        "clusters/shop/orders.yaml:7:5: warning: annotation 'kubectl.kubernetes.io/last-applied-configuration' is not copied onto the"
        " rendered objects: kubectl writes it on apply; copied, it would describe another object"
        " (at metadata.annotations.kubectl.kubernetes.io/last-applied-configuration)"
    ]
    (obj,) = repo.objects()
    assert annotations(obj) == {"team": "data"}


def test_an_unknown_renderer_setting_is_an_error(repo):
    repo.write(
        "clusters/shop/orders.yaml",
        cluster("percona-server-mongodb", metadata="annotations:\n  everest-render/deletion-protect: confirm\n", instances="engine: {}\n"),
    )
    assert repo.errors() == [
        "clusters/shop/orders.yaml:7:5: unknown setting 'everest-render/deletion-protect'; known: everest-render/deletion-protection,"
        " everest-render/keep-volumes, everest-render/skip-extensions (at metadata.annotations.everest-render/deletion-protect)"
    ]


# --- deletion protection ---------------------------------------------------------------------


def protected(value: str, extra: str = "") -> str:
    return cluster("percona-postgresql", metadata=f"annotations:\n  everest-render/deletion-protection: {value}\n{extra}")


def test_confirm_asks_argo_cd_for_a_confirmation_and_stops_flux_pruning(repo):
    repo.write("clusters/shop/orders.yaml", protected("confirm"))
    (obj,) = repo.objects()
    assert annotations(obj) == {"argocd.argoproj.io/sync-options": "Prune=confirm,Delete=confirm", "kustomize.toolkit.fluxcd.io/prune": "disabled"}
    assert obj["metadata"]["finalizers"] == ["percona.com/delete-pvc", "percona.com/delete-ssl"]


def test_strict_never_prunes_nor_deletes(repo):
    repo.write("clusters/shop/orders.yaml", protected("strict"))
    (obj,) = repo.objects()
    assert annotations(obj)["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
    assert annotations(obj)["kustomize.toolkit.fluxcd.io/prune"] == "disabled"


def test_protection_merges_with_the_sync_options_written(repo):
    repo.write("clusters/shop/orders.yaml", protected("confirm", "  argocd.argoproj.io/sync-options: ServerSideApply=true, Delete=confirm\n"))
    (obj,) = repo.objects()
    assert annotations(obj)["argocd.argoproj.io/sync-options"] == "ServerSideApply=true,Delete=confirm,Prune=confirm"


def test_a_sync_option_that_contradicts_the_protection_is_an_error(repo):
    repo.write("clusters/shop/orders.yaml", protected("confirm", "  argocd.argoproj.io/sync-options: Prune=true\n"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:8:38: sync option Prune=true contradicts deletion protection 'confirm' (Prune=confirm, Delete=confirm):"
        " remove it, or choose another protection (at metadata.annotations.argocd.argoproj.io/sync-options)"
    ]


def test_flux_prune_enabled_contradicts_the_protection(repo):
    repo.write("clusters/shop/orders.yaml", protected("strict", "  kustomize.toolkit.fluxcd.io/prune: enabled\n"))
    assert [e.split(": ", 1)[1] for e in repo.errors()] == [
        "kustomize.toolkit.fluxcd.io/prune: enabled contradicts deletion protection 'strict' (kustomize.toolkit.fluxcd.io/prune: disabled):"
        " remove it, or choose another protection (at metadata.annotations.kustomize.toolkit.fluxcd.io/prune)"
    ]


def test_an_unknown_protection_is_an_error(repo):
    repo.write("clusters/shop/orders.yaml", protected("always"))
    assert repo.errors() == [
        "clusters/shop/orders.yaml:7:41: 'always' is not a deletion protection; known: confirm, none, strict"
        " (at metadata.annotations.everest-render/deletion-protection)"
    ]


@pytest.mark.parametrize(
    ("provider", "instances", "kept"),
    [
        ("percona-postgresql", "engine: {}\nproxy: {}\n", ["percona.com/delete-ssl"]),
        ("percona-xtradb-cluster", "engine: {}\nproxy: {}\n", ["percona.com/delete-pxc-pods-in-order", "percona.com/delete-ssl"]),
        ("percona-server-mongodb", "engine: {}\n", ["percona.com/delete-psmdb-pods-in-order"]),
    ],
)
def test_keep_volumes_drops_the_finalizer_that_deletes_them(repo, provider, instances, kept):
    repo.write(
        "clusters/shop/orders.yaml",
        cluster(provider, metadata='annotations:\n  everest-render/keep-volumes: "true"\n', instances=instances),
    )
    (obj,) = repo.objects()
    assert obj["metadata"]["finalizers"] == kept
    assert annotations(obj) == {}


# --- repository and namespace defaults (everest-render.yaml, spec.gitops) -----------------------

SETTINGS = """\
apiVersion: everest-render/v1alpha1
kind: RepositorySettings
spec:
  gitops:
    deletionProtection: confirm
    annotations:
      argocd.argoproj.io/sync-wave: "2"
      argocd.argoproj.io/compare-options: IgnoreExtraneous
    namespaces:
      dev:
        deletionProtection: none
        keepVolumes: false
        annotations:
          argocd.argoproj.io/sync-wave: "9"
"""


def test_the_repository_defaults_apply_to_every_cluster_and_a_namespace_overrides_them(repo):
    repo.write("everest-render.yaml", SETTINGS)
    repo.write("clusters/shop/orders.yaml", cluster("percona-postgresql"))
    repo.write("clusters/dev/orders.yaml", cluster("percona-postgresql").replace("namespace: shop", "namespace: dev"))
    shop, dev = sorted(repo.objects(), key=lambda o: o["metadata"]["namespace"], reverse=True)
    assert annotations(shop) == {
        "argocd.argoproj.io/compare-options": "IgnoreExtraneous",
        "argocd.argoproj.io/sync-options": "Prune=confirm,Delete=confirm",
        "argocd.argoproj.io/sync-wave": "2",
        "kustomize.toolkit.fluxcd.io/prune": "disabled",
    }
    assert annotations(dev) == {"argocd.argoproj.io/compare-options": "IgnoreExtraneous", "argocd.argoproj.io/sync-wave": "9"}


def test_a_cluster_overrides_the_defaults_key_by_key(repo):
    repo.write("everest-render.yaml", SETTINGS)
    repo.write("clusters/shop/orders.yaml", protected("strict", '  argocd.argoproj.io/sync-wave: "0"\n'))
    (obj,) = repo.objects()
    assert annotations(obj)["argocd.argoproj.io/sync-wave"] == "0"
    assert annotations(obj)["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
    (resolved,) = repo.resolved()
    assert resolved.gitops.origins == {"deletionProtection": "clusters/shop/orders.yaml, metadata.annotations", "keepVolumes": "default"}


def test_explain_shows_the_protection_and_where_it_was_set(repo):
    from everest_render.commands.explain import explain_json, explain_text

    repo.write("everest-render.yaml", SETTINGS.replace("    namespaces:", "    keepVolumes: true\n    namespaces:"))
    repo.write("clusters/shop/orders.yaml", cluster("percona-postgresql"))
    (resolved,) = repo.resolved()
    data = explain_json(resolved, None)["gitops"]
    assert data["deletionProtection"] == {"level": "confirm", "origin": "everest-render.yaml (gitops)"}
    assert data["keepVolumes"] == {"enabled": True, "origin": "everest-render.yaml (gitops)", "finalizersDropped": ["percona.com/delete-pvc"]}
    text = explain_text(resolved, None)
    assert "deletion protection: confirm (everest-render.yaml (gitops)): Argo CD prunes or deletes it only when confirmed" in text
    assert "keep volumes: finalizers percona.com/delete-pvc dropped (everest-render.yaml (gitops))" in text


def test_a_tracking_or_setting_annotation_is_no_default(repo):
    repo.write("clusters/shop/orders.yaml", cluster("percona-postgresql"))
    repo.write(
        "everest-render.yaml",
        "apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\nspec:\n  gitops:\n    annotations:\n"
        "      argocd.argoproj.io/tracking-id: x\n      everest-render/keep-volumes: 'true'\n",
    )
    assert repo.errors() == [
        "everest-render.yaml:6:7: annotation 'argocd.argoproj.io/tracking-id' is tracking metadata (Argo CD's annotation tracking):"
        " the GitOps tool sets it (at spec.gitops.annotations.argocd.argoproj.io/tracking-id)",
        "everest-render.yaml:7:7: annotation 'everest-render/keep-volumes' cannot be a default (deletionProtection and keepVolumes"
        " are keys of this section) (at spec.gitops.annotations.everest-render/keep-volumes)",
    ]


def test_an_unknown_protection_in_the_settings_is_refused_by_the_schema(repo):
    repo.write("clusters/shop/orders.yaml", cluster("percona-postgresql"))
    repo.write("everest-render.yaml", "apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\nspec:\n  gitops: {deletionProtection: yes}\n")
    (error,) = repo.errors()
    assert error.startswith("everest-render.yaml:4:32: ") and error.endswith("(at spec.gitops.deletionProtection)")


def test_what_flux_would_rewrite_is_looked_for_in_each_key_and_string_not_across_them():
    from everest_render.render.postprocess import flux_would_rewrite

    assert not flux_would_rewrite({"a": "cost $", "b": "{x}", "c": ["$", "$"], "$": {"{": 1}})
    assert flux_would_rewrite({"a": ["x", {"b": "pay $$5"}]}) and flux_would_rewrite({"k": {"${v}": 1}})
    assert flux_would_rewrite(["${v"]) and not flux_would_rewrite({"a": 5, "b": None, "c": ("${v}",)})
