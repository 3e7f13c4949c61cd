"""The pytest plugin, run as a team would: pytester builds a GitOps repository and runs pytest in it.

The repository test is docs/testing.md's own code block, so the page cannot drift from what works.
"""

from __future__ import annotations

import os
import re
import shutil
import textwrap

import pytest

from everest_render.pytest_plugin import crd_problems
from tests.conftest import PROJECT_ROOT

pytest_plugins = ["pytester"]

DOC = (PROJECT_ROOT / "docs/testing.md").read_text()
USER_TEST = re.search(r"## A repository's test, in a dozen lines.*?```python\n(.*?)```", DOC, re.S).group(1)

CLUSTER = """\
apiVersion: everest.percona.com/v2alpha1
kind: DatabaseCluster
metadata: {name: orders, namespace: apps}
spec:
  provider: cloudnative-pg
  instances:
    engine: {replicas: 2}
    proxy: {}
"""


@pytest.fixture
def user_repo(pytester):
    """A team's repository: one CloudNativePG cluster, the operator's CRDs vendored, the doc's test."""
    (pytester.path / "clusters").mkdir()
    (pytester.path / "clusters/orders.yaml").write_text(CLUSTER)
    shutil.copytree(PROJECT_ROOT / "providers/cloudnative-pg/crds", pytester.path / "crds/cloudnative-pg")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests/test_repository.py").write_text(USER_TEST)
    return pytester


def test_the_documented_repository_test_is_a_dozen_lines():
    assert len(USER_TEST.strip().splitlines()) <= 13


def test_the_documented_repository_test_passes_once_snapshots_are_written(user_repo):
    user_repo.runpytest("--snapshot-update").assert_outcomes(passed=3)
    snapshot = user_repo.path / "tests/__snapshots__/test_repository/test_cluster_output_matches_its_snapshot[apps-orders].yaml"
    assert snapshot.read_text().startswith("---\napiVersion: postgresql.cnpg.io/v1\nkind: Cluster\n")
    user_repo.runpytest().assert_outcomes(passed=3)


def test_a_changed_cluster_fails_its_snapshot(user_repo):
    user_repo.runpytest("--snapshot-update").assert_outcomes(passed=3)
    (user_repo.path / "clusters/orders.yaml").write_text(CLUSTER.replace("replicas: 2", "replicas: 3"))
    result = user_repo.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_cluster_output_matches_its_snapshot?apps-orders?*"])


def test_an_object_no_given_crd_validates_fails_the_crd_check(user_repo):
    # Only the Cluster CRD is given: the Pooler's group is covered, its kind is not.
    shutil.rmtree(user_repo.path / "crds")
    (user_repo.path / "crds").mkdir()
    shutil.copy(PROJECT_ROOT / "providers/cloudnative-pg/crds/1.30.0/clusters.postgresql.cnpg.io.yaml", user_repo.path / "crds")
    result = user_repo.runpytest("--snapshot-update", "-k", "crds")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Pooler apps/orders-pooler-rw: no CRD given for postgresql.cnpg.io/v1 Pooler*"])


def test_crd_problems_are_located_and_strict():
    crds = (PROJECT_ROOT / "providers/cloudnative-pg/crds/1.30.0",)
    good = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "a", "namespace": "ns"},
            "spec": {"instances": 1, "storage": {"size": "1Gi"}}}
    bad = {**good, "spec": {**good["spec"], "instancez": 2}}
    core = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}
    assert crd_problems([good, core], crds) == []
    assert crd_problems([bad], crds) == ['Cluster ns/a: unknown field \'instancez\'; did you mean "instances"? (at spec.instancez)']


def test_case_files_are_collected_where_pytest_is_pointed(pytester):
    shutil.copytree(PROJECT_ROOT / "providers/cloudnative-pg/cases", pytester.path / "providers/cloudnative-pg/cases")
    count = len(list((PROJECT_ROOT / "providers/cloudnative-pg/cases").glob("*.yaml")))
    pytester.runpytest("providers").assert_outcomes(passed=count)


def test_pytest_runs_without_syrupy_and_only_a_snapshot_test_fails(pytester, monkeypatch):
    # A site without syrupy: a shadow package that cannot be imported, and syrupy's plugin off.
    shadow = pytester.path / "shadow/syrupy"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('syrupy is not installed here')\n")
    pytester.makepyfile(test_user=textwrap.dedent("""
        def test_needs_no_snapshot(everest_scratch):
            everest_scratch.write("clusters/c.yaml", (
                "apiVersion: everest.percona.com/v2alpha1\\nkind: DatabaseCluster\\n"
                "metadata: {name: c, namespace: ns}\\nspec: {provider: cloudnative-pg, instances: {engine: {}}}\\n"
            ))
            assert [o["kind"] for o in everest_scratch.objects()] == ["Cluster"]

        def test_wants_a_snapshot(everest_snapshot):
            pass
    """))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")])))
    result = pytester.runpytest_subprocess("-p", "no:syrupy", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    assert "everest_snapshot needs syrupy: pip install 'everest-render[testing]'\n" in result.stdout.str()
    assert "syrupy is not installed here" not in result.stdout.str()  # the hint, not a chained traceback

