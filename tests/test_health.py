"""Health checks for every kind the built-in providers render: Argo CD Lua (ours where Argo CD
ships none) and Flux healthCheckExprs (CEL), run through a real Lua runtime (lupa) and a CEL
library (common-expression-language) against status objects of each state.

The states are the operators' AppState constants: PXC and PostgreSQL `initializing`,
`paused`, `stopping`, `ready`, `error` (pxc-operator pkg/apis/pxc/v1 and
percona-postgresql-operator pkg/apis/pgv2.percona.com/v2); PSMDB the same plus `sharding`
(psmdb-operator pkg/apis/psmdb/v1). Each object also reports status.observedGeneration.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from everest_render.pipeline import read_repository, resolve_repository
from tests.conftest import PROJECT_ROOT

FLUX = PROJECT_ROOT / "deploy/flux/kustomization.yaml"
ARGOCD_HEALTH = PROJECT_ROOT / "deploy/argocd/health"
# Argo CD ships these itself (argo-cd resource_customizations/<group>/<Kind>/health.lua).
ARGOCD_BUILT_IN = {
    ("pxc.percona.com", "PerconaXtraDBCluster"),
    ("psmdb.percona.com", "PerconaServerMongoDB"),
    ("postgresql.cnpg.io", "Cluster"),
}
# Kinds with no health state of their own, as docs/argocd.md says (Argo CD shows them present).
ARGOCD_NO_HEALTH = {("postgresql.cnpg.io", "ScheduledBackup")}


def built_in_kinds() -> list[tuple[str, str]]:
    catalog = resolve_repository(read_repository(Path(PROJECT_ROOT))).catalog
    assert catalog is not None
    return sorted({(o.api_version, o.kind) for p in catalog.providers.values() if p.builtin for o in p.objects})


def rendered_object(api_version: str, kind: str) -> dict:
    from everest_render.pipeline import render_repository

    result = render_repository(read_repository(Path(PROJECT_ROOT)), keep_objects=True)
    return next(dict(o.obj) for o in result.objects if (o.obj["apiVersion"], o.obj["kind"]) == (api_version, kind))


def test_every_built_in_kind_has_an_argo_cd_health_check():
    for api_version, kind in built_in_kinds():
        group = api_version.split("/")[0]
        ours = (ARGOCD_HEALTH / f"{group}_{kind}.lua").is_file()
        assert (group, kind) in ARGOCD_BUILT_IN | ARGOCD_NO_HEALTH or ours, kind
        assert not ((group, kind) in ARGOCD_BUILT_IN and ours), f"{kind}: Argo CD ships one already"


def test_every_built_in_kind_has_flux_health_check_expressions():
    exprs = yaml.safe_load(FLUX.read_text())["spec"]["healthCheckExprs"]
    covered = {(e["apiVersion"], e["kind"]) for e in exprs}
    assert set(built_in_kinds()) <= covered
    for entry in exprs:
        assert "current" in entry, entry["kind"]


def _flux_verdict(entry: dict, obj: dict) -> str:
    import cel  # common-expression-language

    context = cel.Context()
    for key, value in obj.items():
        context.add_variable(key, value)
    verdicts = [name for name in ("current", "failed", "inProgress") if name in entry and cel.evaluate(entry[name], context) is True]
    assert len(verdicts) == 1, (entry["kind"], obj.get("status"), verdicts)  # the order Flux checks them in cannot matter
    return verdicts[0]


STATES = [
    ({}, False, "inProgress"),  # just created: no status yet
    ({"state": "initializing", "observedGeneration": 1}, False, "inProgress"),
    ({"state": "stopping", "observedGeneration": 1}, False, "inProgress"),
    ({"state": "ready", "observedGeneration": 1}, False, "current"),
    ({"state": "ready", "observedGeneration": 0}, False, "inProgress"),  # the operator has not seen this generation
    ({"state": "error", "observedGeneration": 1}, False, "failed"),
    ({"state": "paused", "observedGeneration": 1}, True, "current"),  # paused as asked
    ({"state": "paused", "observedGeneration": 1}, False, "inProgress"),  # resuming
]


@pytest.mark.parametrize(("status", "pause", "expected"), STATES, ids=[f"{s.get('state', 'none')}-{e}" for s, _, e in STATES])
@pytest.mark.parametrize("kind", ["PerconaXtraDBCluster", "PerconaServerMongoDB", "PerconaPGCluster"])
def test_flux_reads_the_operator_state(kind, status, pause, expected):
    (entry,) = [e for e in yaml.safe_load(FLUX.read_text())["spec"]["healthCheckExprs"] if e["kind"] == kind]
    obj = rendered_object(entry["apiVersion"], kind)
    obj = {**obj, "metadata": {**obj["metadata"], "generation": 1}, "spec": {**obj["spec"], "pause": pause}, "status": status}
    assert _flux_verdict(entry, obj) == expected


def test_flux_treats_the_psmdb_sharding_state_as_in_progress():
    (entry,) = [e for e in yaml.safe_load(FLUX.read_text())["spec"]["healthCheckExprs"] if e["kind"] == "PerconaServerMongoDB"]
    obj = rendered_object(entry["apiVersion"], "PerconaServerMongoDB")
    obj = {**obj, "metadata": {**obj["metadata"], "generation": 1}, "status": {"state": "sharding", "observedGeneration": 1}}
    assert _flux_verdict(entry, obj) == "inProgress"


def test_the_flux_example_is_a_valid_kustomization_for_out():
    doc = yaml.safe_load(FLUX.read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    assert doc["spec"]["wait"] is True and doc["spec"]["path"] == "./out"


CNPG_UNRECOVERABLE = "Cluster is in an unrecoverable state, needs manual intervention"
CNPG_STATES = [
    ({}, "inProgress"),
    ({"phase": "Setting up primary", "conditions": [{"type": "Ready", "status": "False"}]}, "inProgress"),
    ({"phase": "Cluster in healthy state", "conditions": [{"type": "Ready", "status": "True"}]}, "current"),
    ({"phase": CNPG_UNRECOVERABLE, "conditions": [{"type": "Ready", "status": "False"}]}, "failed"),
    ({"phase": "Cluster in healthy state", "conditions": [{"type": "cnpg.io/hibernation", "status": "True"}]}, "current"),  # paused
]


@pytest.mark.parametrize(("status", "expected"), CNPG_STATES, ids=["none", "initializing", "ready", "error", "hibernated"])
def test_flux_reads_the_cloudnative_pg_cluster_conditions(status, expected):
    (entry,) = [e for e in yaml.safe_load(FLUX.read_text())["spec"]["healthCheckExprs"] if e["kind"] == "Cluster"]
    obj = {**rendered_object(entry["apiVersion"], "Cluster"), "status": status}
    assert _flux_verdict(entry, obj) == expected


@pytest.mark.parametrize(("status", "expected"), [({}, "inProgress"), ({"instances": 0}, "inProgress"), ({"instances": 9}, "current")])
def test_flux_counts_the_pooler_instances(status, expected):
    (entry,) = [e for e in yaml.safe_load(FLUX.read_text())["spec"]["healthCheckExprs"] if e["kind"] == "Pooler"]
    obj = {**rendered_object(entry["apiVersion"], "Pooler"), "status": status}
    assert _flux_verdict(entry, obj) == expected
