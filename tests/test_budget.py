"""The step budget counts what docs/api.md says it counts, one step each, however the sandbox
counts it (in the template's own code or in a wrapper): a call, an attribute or item access, a
filter or test, an item of ``range``, an output chunk."""

from __future__ import annotations

import traceback

import jinja2
import pytest

from everest_render.render import limits
from everest_render.render.limits import BoundedSandbox, TemplateLimit, render_bounded


class _Mapping(dict):  # type: ignore[type-arg]
    """Not a plain dict: its fields go the sandbox's general way, never the inline one."""


def _sandbox() -> BoundedSandbox:
    sandbox = BoundedSandbox(undefined=jinja2.StrictUndefined)
    sandbox.filters["twice"] = lambda value: value * 2
    sandbox.bound_helpers()
    return sandbox


def _steps(text: str, context: dict) -> tuple[str, int]:
    sandbox = _sandbox()
    output = render_bounded(sandbox.from_string(text), context, sandbox.budget)
    return output, sandbox.budget.steps


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("{{ d.a }}", 2),  # an attribute, a chunk
        ("{{ d.a | tojson }}!", 4),  # an attribute, a filter, two chunks
        ("{{ d.a | twice }}", 3),
        ("{{ d.b is none }}", 3),  # a missing field is read as one step too, then tested
        ("{{ d['a'] }}{{ d.items() | list | length }}", 7),  # item, chunk; attribute, call, two filters, chunk
        ("{% for i in range(3) %}{{ i }}{% endfor %}", 1 + 3 + 3),  # the call, each item, each chunk
        ("{% if d.a and d.c %}x{% endif %}", 2),  # only what runs: d.c is never read
        ("{{ d.a if d.c else d.c }}", 3),
        ("{{ d[d.a] }}{{ d[k] }}{{ l[0] }}{{ l[-1:] }}", 3 + 2 + 2 + 1),  # items read by a read key, a variable, an index; a slice is no step
        ("{{ d['items'] is defined }}", 3),  # no such key: the method of that name, as the sandbox reads it
        ("{{ d.x | tojson }}{{ d.n | tojson }}{{ l | tojson }}", 3 + 3 + 2),
    ],
)
def test_each_operation_is_one_step_plain_dict_or_not(text, steps):
    context = {"d": {"a": "x", "b": None, "c": "", "x": "q\"\n", "n": 3}, "k": "a", "l": [1, 2]}
    traced = {**context, "d": _Mapping(context["d"])}
    assert _steps(text, context)[1] == steps
    assert _steps(text, traced) == _steps(text, context)


def test_tojson_of_a_string_is_checked_after_encoding_too():
    """Escaping grows a string six times: within the limit before, beyond it after."""
    text = "\x01" * (limits.MAX_OUTPUT_CHARS // 5)
    with pytest.raises(TemplateLimit, match="more than the limit"):
        _steps("{{ s | tojson }}", {"s": text})
    assert _steps("{{ s | tojson }}", {"s": "\x01"})[0] == '"\\u0001"'


def test_a_missing_field_is_undefined_on_either_path():
    for d in ({"a": 1}, _Mapping({"a": 1})):
        with pytest.raises(jinja2.UndefinedError, match="has no attribute 'zz'"):
            _steps("{{ d.zz }}", {"d": d})


def test_the_budget_is_exact_and_keeps_refusing(monkeypatch):
    """A template of exactly the budget renders; one step more is refused, at the step itself,
    and every step after it (a caller that caught the first refusal gets no more)."""
    monkeypatch.setattr(limits, "STEP_BUDGET", 2050)  # across two wall-clock checks, at 1,024 and 2,048
    loop = "{% for i in range(n) %}{{ d.a }}{% endfor %}"  # 1 + 3 a turn (item, attribute, chunk)
    assert _steps(loop, {"n": 683, "d": {"a": ""}})[1] == 2050
    with pytest.raises(TemplateLimit, match=r"step budget \(2,050 steps\)"):
        _steps(loop, {"n": 684, "d": {"a": ""}})
    sandbox = _sandbox()
    with pytest.raises(TemplateLimit):
        render_bounded(sandbox.from_string(loop), {"n": 684, "d": {"a": ""}}, sandbox.budget)
    assert sandbox.budget.steps == 2051
    for _ in range(3):
        with pytest.raises(TemplateLimit, match="step budget"):
            sandbox.budget.step()
    sandbox.budget.reset()
    assert sandbox.budget.steps == 0
    sandbox.budget.step()
    assert sandbox.budget.steps == 1


def test_a_chunk_beyond_the_budget_is_refused_outside_the_template(monkeypatch):
    """The step of an output chunk is taken by the render, not the template: its refusal has no
    template line; a step the template takes itself is refused at its line."""
    monkeypatch.setattr(limits, "STEP_BUDGET", 2)
    for text, inside in (("a{{ d.a }}", False), ("{{ d.a }}{{ d.a }}", True)):  # the 3rd step: a chunk; an attribute
        sandbox = _sandbox()
        with pytest.raises(TemplateLimit, match="step budget") as refused:
            render_bounded(sandbox.from_string(text), {"d": {"a": "x"}}, sandbox.budget)
        frames = traceback.extract_tb(refused.value.__traceback__)
        assert any(f.filename == "<template>" for f in frames) is inside, text


# Macros, loops, namespaces and imported templates: read and called in the sandbox's quick
# ways where they apply, Jinja's own where not (defaults, varargs, kwargs, caller, a bad call).
# The outputs and step counts are what the sandbox gave before it had quick ways.
MACROS = [
    ("{% macro f(a, b=2) %}{{ a }}{{ b }}{% endmacro %}{{ f(1) }}|{{ f(1, 3) }}|{{ f(1, b=4) }}", "12|13|14", 8),
    ("{% macro g() %}{{ varargs | length }}{% endmacro %}{{ g(1, 2) }}", "2", 3),
    ("{% macro h() %}{{ kwargs | length }}{% endmacro %}{{ h(x=1) }}", "1", 3),
    ("{% macro c() %}[{{ caller() }}]{% endmacro %}{% call c() %}in{% endcall %}", "[in]", 3),
    ("{% macro f(a) %}{{ a }}{% endmacro %}{{ f(1, 2) }}", "TypeError: macro 'f' takes not more than 1 argument(s)", 1),
    ("{% macro f(a) %}{{ a }}{% endmacro %}{{ f(a=1, b=2) }}", "TypeError: macro 'f' takes no keyword argument 'b'", 1),
    ("{% for i in l %}{{ loop.index }}{{ loop.last }}{{ loop.cycle('a', 'b') }}{% endfor %}", "1Falsea2Falseb3Truea", 21),
    ("{% set ns = namespace(x=1) %}{% set ns.x = 2 %}{{ ns.x }}{{ ns.y is defined }}", "2False", 6),
    ("{% import 'm.j2' as m %}{{ m.two(l) }}{{ m.value }}{{ m.missing is defined }}{{ m._private is defined }}", "3vFalseFalse", 12),
]


@pytest.mark.parametrize(("text", "output", "steps"), MACROS)
def test_macros_loops_namespaces_and_modules_read_as_before(text, output, steps):
    module = "{% set value = 'v' %}{% set _private = 1 %}{% macro two(x) %}{{ x | length }}{% endmacro %}"
    sandbox = BoundedSandbox(undefined=jinja2.StrictUndefined, loader=jinja2.DictLoader({"m.j2": module}))
    sandbox.bound_helpers()
    try:
        got = render_bounded(sandbox.from_string(text), {"l": [1, 2, 3]}, sandbox.budget)
    except TypeError as error:
        got = f"TypeError: {error}"
    assert (got, sandbox.budget.steps) == (output, steps)


# Inheritance, blocks, includes and macros reading names set around them: names are looked
# up in place and filters looked up for each function as before (outputs and step counts of
# the sandbox before it looked them up in place).
TEMPLATES = {
    "base.j2": "{% set a = 'A' %}[{% block body %}{{ a }}{{ b is defined }}{% endblock %}]{{ c | default('noc') }}",
    "child.j2": "{% extends 'base.j2' %}{% set c = 'C' %}{% block body %}{{ super() }}|{{ a is defined }}{{ c }}{% endblock %}",
    "inc.j2": "<{{ x }}{{ y | default('ny') }}>",
    "loop.j2": "{% for x in [1, 2] %}{% set y = x * 2 %}{% include 'inc.j2' %}{% endfor %}{% with x = 5 %}{% include 'inc.j2' %}{% endwith %}",
    "scoped.j2": "{% set outer = 'o' %}{% macro m() %}{{ outer }}{{ later is defined }}{% endmacro %}{% set later = 1 %}{{ m() }}",
}


@pytest.mark.parametrize(
    ("name", "output", "steps"),
    [("child.j2", "[AFalse|TrueC]C", 11), ("loop.j2", "<12><24><5ny>", 17), ("scoped.j2", "oTrue", 3), ("base.j2", "[AFalse]noc", 7)],
)
def test_inheritance_blocks_and_includes_render_as_before(name, output, steps):
    sandbox = BoundedSandbox(undefined=jinja2.StrictUndefined, loader=jinja2.DictLoader(TEMPLATES))
    sandbox.bound_helpers()
    assert render_bounded(sandbox.get_template(name), {"x": "X"}, sandbox.budget) == output
    assert sandbox.budget.steps == steps
