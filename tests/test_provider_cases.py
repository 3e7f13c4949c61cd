"""Every provider's case files (providers/<name>/cases/*.yaml) hold, run by everest_render.testing."""

from __future__ import annotations

import pytest

from everest_render.testing import provider_cases, read_case, run_case
from tests.conftest import PROJECT_ROOT

ROOTS = [PROJECT_ROOT, *sorted(p.parent for p in PROJECT_ROOT.glob("examples/*/providers"))]
CASES = [case for root in ROOTS for case in provider_cases(root)]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.path.parent.parent.name}/{c.path.stem}" for c in CASES])
def test_provider_case(case, tmp_path):
    assert run_case(case, tmp_path) == []


def test_every_builtin_provider_carries_cases():
    builtins = {p.parent.name for p in PROJECT_ROOT.glob("providers/*/provider.yaml")}
    assert len(builtins) >= 4 and {c.path.parent.parent.name for c in CASES} >= builtins


def test_a_case_whose_errors_differ_reports_both(tmp_path):
    (case,) = [c for c in CASES if c.path.stem == "expose-on-the-engine-is-refused"]
    wrong = tmp_path / "providers/x/cases/wrong.yaml"
    wrong.parent.mkdir(parents=True)
    wrong.write_text(case.path.read_text().replace("only 'proxy' can be exposed", "only 'engine' can be exposed"))
    moved = read_case(wrong)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (difference,) = run_case(type(moved)(**{**moved.__dict__, "provider_root": case.provider_root}), scratch)
    assert difference.startswith("errors: expected\n  clusters/c.yaml:7:14: expose is not allowed on 'engine': only 'engine'")
    assert "got\n  clusters/c.yaml:7:14: expose is not allowed on 'engine': only 'proxy'" in difference
