"""The built-in extensions (credentials, network-policy, monitoring) on the example fleet, and the
example extension of examples/ run by the provider test harness (docs/extensions.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jinja2
import jsonschema
import pytest
import yaml

from everest_render.commands.explain import explain_json, explain_text
from everest_render.emit.yaml_text import dump_documents
from everest_render.pipeline import Selection, read_repository, render_repository, resolve_repository
from everest_render.testing import Repo, provider_cases, run_case
from tests.conftest import PROJECT_ROOT

SETTINGS = (PROJECT_ROOT / "examples/builtin-extensions/everest-render.yaml").read_text()
EXTENSIONS = PROJECT_ROOT / "extensions"


@pytest.fixture(scope="module")
def fleet_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example fleet (clusters/) with the three built-in extensions turned on."""
    root = tmp_path_factory.mktemp("fleet")
    shutil.copytree(PROJECT_ROOT / "clusters", root / "clusters")
    (root / "everest-render.yaml").write_text(SETTINGS)
    return root


@pytest.fixture(scope="module")
def fleet(fleet_repo):
    result = render_repository(read_repository(fleet_repo), keep_objects=True)
    assert not result.failed, [str(d) for d in result.diagnostics]
    return result


def _added(fleet, extension: str | None = None) -> list[dict]:
    return [dict(o.obj) for o in fleet.objects if o.extension is not None and extension in (None, o.extension)]


def test_every_extension_object_of_the_fleet_matches_its_snapshot(fleet, snapshot):
    # One reviewed text: what the three extensions add to the fleet, in out/ order.
    order = {path: index for index, path in enumerate(fleet.plan.files)}
    added = sorted(
        (o for o in fleet.objects if o.extension is not None),
        key=lambda o: (order[f"{o.cluster.namespace}/{'_extensions' if o.shared else o.cluster.name}.yaml"], json.dumps(o.obj)),
    )
    assert dump_documents([o.obj for o in added]) == snapshot


def test_every_extension_object_is_valid_for_its_schema_by_the_reference_implementation(fleet):
    # jsonschema (the reference implementation) against the vendored schemas, beside the
    # renderer's own jsonschema-rs check.
    schemas = {}
    for manifest in EXTENSIONS.glob("*/extension.yaml"):
        for entry in yaml.safe_load(manifest.read_text())["spec"]["objects"]:
            schemas[entry["kind"]] = json.loads((manifest.parent / entry["schema"]).read_text())
    kinds = set()
    for obj in _added(fleet):
        jsonschema.Draft202012Validator(schemas[obj["kind"]]).validate(obj)
        kinds.add(obj["kind"])
    assert kinds == {"ExternalSecret", "NetworkPolicy", "PodMonitor"}


def test_no_secret_value_is_rendered(fleet):
    kinds = {o.obj["kind"] for o in fleet.objects}
    assert "Secret" not in kinds
    for obj in _added(fleet, "credentials"):
        assert set(obj["spec"]) == {"data", "refreshInterval", "secretStoreRef", "target"}
        assert all(set(item) == {"secretKey", "remoteRef"} for item in obj["spec"]["data"])


def test_a_secret_several_clusters_share_gets_one_external_secret_in_one_file(fleet):
    shared = [o for o in fleet.objects if o.shared and o.obj["metadata"]["name"] == "s3-main-credentials"]
    assert len(shared) == 1 and shared[0].obj["metadata"]["namespace"] == "shop"
    text = fleet.plan.files["shop/_extensions.yaml"].decode()
    assert text.count("name: s3-main-credentials\n") == 2  # metadata.name and target.name
    assert not [o for o in fleet.objects if not o.shared and o.obj["metadata"]["name"] == "s3-main-credentials"]


def test_every_secret_the_clusters_need_is_supplied_or_left_to_the_operator(fleet_repo):
    resolved = resolve_repository(read_repository(fleet_repo))
    # One cluster of each provider, the one with the most Secrets (explain compiles templates).
    chosen = {}
    for cluster in resolved.clusters:
        best = chosen.get(cluster.provider.name)
        if best is None or len(cluster.backup.storages) + (cluster.monitoring is not None) > len(best.backup.storages) + (best.monitoring is not None):
            chosen[cluster.provider.name] = cluster
    assert len(chosen) == 4
    for cluster in chosen.values():
        for secret in explain_json(cluster, resolved.catalog)["secrets"]:
            generated_only = set(secret["keys"]) <= {*secret["operatorGenerates"], *secret["operatorWrites"]}
            assert secret["suppliedBy"] or (generated_only and (secret["leftToOperatorBy"] or secret["operatorWrites"])), (cluster.ref, secret)


def _users(repo: Repo, mode: str) -> dict:
    repo.write("everest-render.yaml", SETTINGS.split("    network-policy")[0] + f"        operatorGenerated: {mode}\n")
    (obj,) = [o for o in repo.objects() if o["kind"] == "ExternalSecret" and o["spec"]["target"]["name"] == "everest-secrets-orders"]
    return obj


def test_operator_generated_values_come_from_the_store_or_the_operator_as_the_repository_chooses(tmp_path):
    repo = Repo(tmp_path)
    shutil.copytree(PROJECT_ROOT / "clusters" / "shop", tmp_path / "clusters" / "shop")
    to_operator = _users(repo, "operator")
    assert to_operator["spec"]["target"] == {"name": "everest-secrets-orders", "creationPolicy": "Merge", "deletionPolicy": "Retain"}
    assert [d["secretKey"] for d in to_operator["spec"]["data"]] == ["PMM_SERVER_TOKEN"]
    assert "argocd.argoproj.io/sync-wave" not in to_operator["metadata"].get("annotations", {})  # it waits for the operator's Secret
    from_store = _users(repo, "store")
    assert from_store["spec"]["target"]["creationPolicy"] == "CreateOrMerge"
    assert from_store["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"  # before the database
    assert len(from_store["spec"]["data"]) == 11
    assert from_store["spec"]["data"][0] == {"secretKey": "MONGODB_BACKUP_USER", "remoteRef": {"key": "shop/orders/users", "property": "MONGODB_BACKUP_USER"}}
    (cluster,) = [c for c in repo.resolved() if c.ref.name == "orders"]
    assert "from the store, created before the database if missing" in explain_text(cluster, None)


def test_explain_says_which_values_the_operator_keeps(fleet_repo):
    resolved = resolve_repository(read_repository(fleet_repo))
    (cluster,) = [c for c in resolved.clusters if str(c.ref) == "shop/orders"]
    text = explain_text(cluster, resolved.catalog)
    assert "  orders-mongodb-encryption-key: keys encryption-key; created by the operator, when it does not exist (left to the operator by extension credentials)\n" in text
    assert "PMM_SERVER_TOKEN from the store, merged into the Secret the operator creates; its other keys are the operator's" in text
    assert "ExternalSecret shop/s3-main-credentials (extension credentials, out/shop/_extensions.yaml)" in text


def test_a_secret_supplied_twice_is_refused(tmp_path):
    repo = Repo(tmp_path)
    shutil.copytree(PROJECT_ROOT / "clusters" / "shop", tmp_path / "clusters" / "shop")
    repo.write("everest-render.yaml", SETTINGS.split("    network-policy")[0])
    repo.write("clusters/shop/sealed.yaml", """\
        apiVersion: bitnami.com/v1alpha1
        kind: SealedSecret
        metadata: {name: s3-main-credentials, namespace: shop}
        spec: {encryptedData: {AWS_ACCESS_KEY_ID: AgBy}}
        """)
    assert repo.errors() == [
        "clusters/shop/sealed.yaml:3:18: Secret shop/s3-main-credentials is supplied twice: by this object and by extension "
        "credentials's ExternalSecret shop/s3-main-credentials; keep one (remove this object, or opt the clusters out of the extension) (at metadata.name)"
    ]


def test_a_selection_holds_the_namespaces_shared_objects_once(tmp_path):
    shutil.copytree(PROJECT_ROOT / "clusters" / "shop", tmp_path / "clusters" / "shop")
    (tmp_path / "everest-render.yaml").write_text(SETTINGS.split("    network-policy")[0])
    files = read_repository(tmp_path)
    one = render_repository(files, Selection(("shop/orders",))).plan.files
    assert sorted(one) == ["shop/orders.yaml"]
    shared = render_repository(files, Selection(("shop/_shared",))).plan.files
    assert "shop/_extensions.yaml" in shared and "shop/orders.yaml" not in shared


def test_network_policies_admit_the_clients_listed_for_the_cluster_namespace_or_repository(fleet):
    policies = {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in _added(fleet, "network-policy")}
    shop = policies["shop/orders-database"]["spec"]["ingress"][1]["from"]
    assert shop == [{"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["storefront"]}]}}]
    dev = policies["dev/events-database"]["spec"]["ingress"][1]
    assert dev == {"from": [{"podSelector": {"matchLabels": {"everest.example.com/db-client": "true"}}}], "ports": [{"protocol": "TCP", "port": 27017}]}


def test_monitoring_covers_only_the_engines_whose_pods_expose_metrics(fleet):
    monitored = {o.cluster for o in fleet.objects if o.extension == "monitoring"}
    cnpg = {o.cluster for o in fleet.objects if o.obj["apiVersion"].startswith("postgresql.cnpg.io/")}
    assert monitored == cnpg and monitored


@pytest.mark.parametrize("case", provider_cases(PROJECT_ROOT / "examples" / "pdb-guard"), ids=lambda c: c.path.stem)
def test_the_example_extensions_cases_hold(case, tmp_path):
    assert run_case(case, tmp_path) == []


def test_the_example_extension_has_cases():
    assert len(provider_cases(PROJECT_ROOT / "examples" / "pdb-guard")) >= 2


def test_the_example_extensions_schema_is_generated_from_its_vendored_definitions():
    # The built-ins' are checked with every provider's (tests/test_vendored_schemas.py).
    from everest_render.authoring.crd_schema import expected_schemas

    (found,) = list(expected_schemas(PROJECT_ROOT / "examples" / "pdb-guard"))
    assert found[0].read_text() == found[1]


def test_the_built_in_extensions_assets_are_sound():
    # A repository's extension folders are checked on every run; the built-ins once, here.
    from everest_render.check.provider_assets import asset_problems
    from everest_render.extend.manifest import parse_extensions

    files = read_repository(PROJECT_ROOT)
    extensions, problems = parse_extensions(files.extensions)
    assert problems == [] and sorted(e.name for e in extensions) == ["credentials", "monitoring", "network-policy"]
    assert [p for e in extensions for p in asset_problems(e)] == []


def test_a_render_through_the_cache_gives_the_same_plan_with_extensions(tmp_path):
    # Cached slices keep which objects an extension rendered and which are shared; a change
    # of an extension's settings is a new key (the settings are part of the resolved cluster).
    from everest_render.cache.store import Store

    shutil.copytree(PROJECT_ROOT / "clusters" / "shop", tmp_path / "repo" / "clusters" / "shop")
    (tmp_path / "repo" / "everest-render.yaml").write_text(SETTINGS.split("    network-policy")[0])
    files = read_repository(tmp_path / "repo")
    expected = render_repository(files).plan
    store = Store.open(tmp_path / "cache")
    assert render_repository(files, cache=store).plan == expected  # filling the cache
    assert render_repository(files, cache=Store.open(tmp_path / "cache")).plan == expected  # from it
    (tmp_path / "repo" / "everest-render.yaml").write_text(SETTINGS.split("    network-policy")[0].replace("vault", "openbao"))
    changed = render_repository(read_repository(tmp_path / "repo"), cache=Store.open(tmp_path / "cache")).plan
    assert b"name: openbao" in changed.files["shop/_extensions.yaml"] and b"name: openbao" in changed.files["shop/orders.yaml"]


def _compiles(monkeypatch: pytest.MonkeyPatch, root: Path, only: Selection | None = None) -> tuple[int, int]:
    """How many templates and expressions Jinja compiles from source to render ``root``, and
    how many folders' templates are set up (a built-in's load prepared code, not compiled)."""
    from everest_render.render.templates import TemplateRenderer

    counts = [0, 0]

    def counting(at: int, method):
        def counted(*args, **kwargs):
            counts[at] += 1
            return method(*args, **kwargs)

        return counted

    monkeypatch.setattr(jinja2.Environment, "compile", counting(0, jinja2.Environment.compile))
    monkeypatch.setattr(TemplateRenderer, "__init__", counting(1, TemplateRenderer.__init__))
    result = render_repository(read_repository(root), only)
    monkeypatch.undo()
    assert not result.failed, [str(d) for d in result.diagnostics]
    return counts[0], counts[1]


def test_each_template_is_compiled_once_a_run_whatever_the_number_of_clusters(tmp_path, monkeypatch):
    # The extensions' templates and the providers' spec.secrets expressions (which an extension
    # reads) are compiled once a run, not once a cluster: that was 47 s instead of 1.3 s for
    # 1,000 clusters. Two copies of the fleet and four: the same compiles; and for one cluster
    # selected, whose pass-through objects are assigned by every cluster's Secrets.
    counts = []
    for copies in (2, 4):
        root = tmp_path / f"copies-{copies}"
        for copy in range(copies):
            for path in sorted((PROJECT_ROOT / "clusters").rglob("*.yaml")):
                text = path.read_text().replace("namespace: ", f"namespace: c{copy}-")
                target = root / "clusters" / f"c{copy}-{path.parent.name}" / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        (root / "everest-render.yaml").write_text(SETTINGS)
        counts.append((_compiles(monkeypatch, root), _compiles(monkeypatch, root, Selection(("c0-shop/orders",)))))
    assert counts[0] == counts[1], counts


def test_a_clusters_template_context_is_made_once_for_its_provider_and_its_extensions(fleet_repo, monkeypatch):
    # The providers' render keeps the template context of each cluster that applies an
    # extension for its extensions' render and its provider's spec.secrets, rather than each
    # making it again (the same values: a template cannot change them).
    from everest_render.extend import render as extension_render
    from everest_render.render import context, templates

    made = []

    def counted(resolved):
        made.append(resolved.ref)
        return context.template_context(resolved)

    monkeypatch.setattr(templates, "template_context", counted)
    monkeypatch.setattr(extension_render, "template_context", counted)
    result = render_repository(read_repository(fleet_repo))
    assert not result.failed, [str(d) for d in result.diagnostics]
    assert len(made) == 18 and len(set(made)) == 18  # the fleet's clusters, each once (before: twice)
