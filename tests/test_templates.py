"""The provider mechanism: data-only providers, sandboxed templates, errors that name the template line."""

from __future__ import annotations

import json

from tests.conftest import mongodb

CLUSTER = (
    "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\nmetadata: {name: db, namespace: ns, labels: {team: a}}\n"
    "spec: {provider: toy, instances: {engine: {config: 'x = 1'}}}\n"
)
CONFIGMAP_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata"],
    "properties": {
        "apiVersion": {"const": "v1"},
        "kind": {"const": "ConfigMap"},
        "metadata": {"type": "object"},
        "data": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def write_toy_provider(repo, template: str, *, partial: str = "") -> None:
    """A provider written as data only: one definition, one template producing a ConfigMap."""
    repo.write("definitions/toy.yaml", """
        apiVersion: everest.percona.com/v2alpha1
        kind: DatabaseClusterDefinition
        metadata: {name: toy}
        spec:
          componentTypes:
            db: {versions: [{version: "1.0", image: "db:1.0", default: true}]}
          components: {engine: {type: db}}
          topologies:
            single: {components: {engine: {defaults: {replicas: 1}}}}
        """)
    repo.write("providers/toy/provider.yaml", """
        apiVersion: everest.percona.com/v2alpha1
        kind: Provider
        metadata: {name: toy}
        spec:
          databaseClusterDefinition: toy
          operator: {name: toy-operator, version: 2.0.0}
          templates: [configmap.yaml.j2]
          objects: [{apiVersion: v1, kind: ConfigMap, schema: configmap.json}]
        """)
    repo.write("providers/toy/configmap.yaml.j2", template)
    repo.write("providers/toy/configmap.json", json.dumps(CONFIGMAP_SCHEMA))
    if partial:
        repo.write("providers/toy/_partial.j2", partial)


GOOD_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ (cluster.name ~ "-settings") | tojson }}
data:
  image: {{ components.engine.image | tojson }}
  replicas: {{ components.engine.replicas | string | tojson }}
  config: {{ components.engine.config | tojson }}
  crVersion: {{ cluster.crVersion | tojson }}
"""


def test_a_provider_written_as_data_renders_without_python(repo):
    write_toy_provider(repo, GOOD_TEMPLATE)
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.only_object() == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "db-settings",
            "namespace": "ns",
            "labels": {"app.kubernetes.io/managed-by": "everest-render", "everest.percona.com/cluster": "db", "team": "a"},
        },
        "data": {"image": "db:1.0", "replicas": "1", "config": "x = 1", "crVersion": "2.0.0"},
    }


def test_an_undefined_variable_is_an_error_at_the_template_line(repo):
    write_toy_provider(repo, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: {{ cluster.nope | tojson }}}\n")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == ["providers/toy/configmap.yaml.j2:4:1: while rendering ns/db: 'dict object' has no attribute 'nope'; cluster clusters/db.yaml:4:7 (at spec)"]


def test_an_error_in_a_partial_names_the_partial_and_where_it_was_included(repo):
    write_toy_provider(repo, "apiVersion: v1\nkind: ConfigMap\n{% include '_partial.j2' %}\n", partial="metadata:\n  name: {{ nope }}\n")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == [
        "providers/toy/_partial.j2:2:1: while rendering ns/db: 'nope' is undefined, included from providers/toy/configmap.yaml.j2:3; cluster clusters/db.yaml:4:7 (at spec)"
    ]


def test_a_syntax_error_names_the_template_line(repo):
    write_toy_provider(repo, "apiVersion: v1\n{% if %}\n")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == ["providers/toy/configmap.yaml.j2:2:1: template syntax error: Expected an expression, got 'end of statement block'"]


def test_fail_refuses_the_cluster_at_its_file(repo):
    write_toy_provider(repo, "{{ fail('toy clusters need three replicas') }}\n")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == ["clusters/db.yaml:4:7: provider toy: toy clusters need three replicas (providers/toy/configmap.yaml.j2:1) (at spec)"]


def test_output_that_is_not_yaml_quotes_the_rendered_line(repo):
    write_toy_provider(repo, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x}\n")
    repo.write("clusters/db.yaml", CLUSTER)
    (error,) = repo.errors()
    assert error.startswith("providers/toy/configmap.yaml.j2:1:1: rendering ns/db gave invalid YAML at output line 3")
    assert error.endswith("'metadata: {name: [x}'; cluster at clusters/db.yaml:1")


def test_a_kind_the_provider_does_not_list_is_refused(repo):
    write_toy_provider(repo, "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == [
        "providers/toy/configmap.yaml.j2:1:1: rendering ns/db produced ('v1', 'Secret'), which spec.objects does not list (v1 ConfigMap)"
    ]


def test_an_object_may_not_leave_the_cluster_namespace(repo):
    write_toy_provider(repo, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kube-system}\n")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == ["providers/toy/configmap.yaml.j2:1:1: rendering ns/db produced an object in namespace 'kube-system'"]


def test_a_rendered_object_that_breaks_the_schema_is_reported_with_its_path(repo):
    write_toy_provider(repo, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: 1}\nextra: true\n")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == [
        "clusters/db.yaml:4:7: rendered ConfigMap ns/db does not match the operator's schema at data.a: 1 is not of type \"string\""
        " (template providers/toy/configmap.yaml.j2)",
        "clusters/db.yaml:4:7: rendered ConfigMap ns/db does not match the operator's schema at extra: unknown field 'extra'"
        " (template providers/toy/configmap.yaml.j2)",
    ]


def test_a_repository_provider_replaces_the_builtin_of_the_same_name(repo):
    write_toy_provider(repo, GOOD_TEMPLATE)
    repo.write("providers/toy/provider.yaml", (repo.root / "providers/toy/provider.yaml").read_text().replace("name: toy}", "name: percona-server-mongodb}"))
    repo.write("clusters/db.yaml", mongodb(body="  topology: {type: single}\n  instances:\n    engine: {config: 'x = 1'}\n"))
    (obj,) = repo.objects()
    assert obj["kind"] == "ConfigMap"


def test_a_template_missing_from_the_folder_is_reported_on_the_provider(repo):
    write_toy_provider(repo, GOOD_TEMPLATE)
    (repo.root / "providers/toy/configmap.yaml.j2").unlink()
    repo.write("clusters/db.yaml", CLUSTER)
    # The cluster that uses the broken provider gets no second, misleading "unknown provider" error.
    assert repo.errors() == ["providers/toy/provider.yaml:7:15: no template 'configmap.yaml.j2' in providers/toy/ (at spec.templates[0])"]


def test_fail_can_point_at_the_field_it_refuses(repo):
    write_toy_provider(repo, "{{ fail('no config here', at='spec.instances.engine.config') }}\n")
    repo.write("clusters/db.yaml", "apiVersion: everest.percona.com/v2alpha1\nkind: DatabaseCluster\nmetadata: {name: db, namespace: ns}\n"
               "spec:\n  provider: toy\n  instances:\n    engine:\n      config: 'x = 1'\n")
    assert repo.errors() == [
        "clusters/db.yaml:8:15: provider toy: no config here (providers/toy/configmap.yaml.j2:1) (at spec.instances.engine.config)"
    ]


def test_templates_can_tell_a_written_value_from_a_default(repo):
    write_toy_provider(repo, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
                             "data: {crVersionWritten: {{ ('spec.crVersion' not in defaulted) | string | tojson }}}\n")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.only_object()["data"] == {"crVersionWritten": "False"}
    repo.write("clusters/db.yaml", CLUSTER.replace("spec: {provider: toy,", "spec: {crVersion: 2.0.0, provider: toy,"))
    assert repo.only_object()["data"] == {"crVersionWritten": "True"}


def test_expose_may_name_candidates_and_the_first_listed_component_is_exposed(repo):
    write_toy_provider(repo, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
                             "data: {exposed: {{ (components.values() | selectattr('expose') | map(attribute='name') | join(',')) | tojson }}}\n")
    definition = (repo.root / "definitions/toy.yaml").read_text()
    repo.write("definitions/toy.yaml", definition.replace("components: {engine: {type: db}}", "components: {engine: {type: db}, proxy: {type: db}}")
               .replace("single: {components: {engine: {defaults: {replicas: 1}}}}", "single: {components: {engine: {}, proxy: {optional: true}}}"))
    provider = (repo.root / "providers/toy/provider.yaml").read_text()
    repo.write("providers/toy/provider.yaml", provider + "  expose: {single: [proxy, engine]}\n")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.only_object()["data"] == {"exposed": "engine"}
    repo.write("clusters/db.yaml", CLUSTER.replace("{engine: {config: 'x = 1'}}", "{engine: {}, proxy: {}}"))
    assert repo.only_object()["data"] == {"exposed": "proxy"}


def test_a_provider_folder_may_hold_its_definition(repo):
    write_toy_provider(repo, GOOD_TEMPLATE)
    (repo.root / "definitions/toy.yaml").rename(repo.root / "providers/toy/definition.yaml")
    repo.write("clusters/db.yaml", CLUSTER)
    assert [o["kind"] for o in repo.objects()] == ["ConfigMap"]


def test_a_provider_folders_definition_file_holds_only_a_definition(repo):
    write_toy_provider(repo, GOOD_TEMPLATE)
    (repo.root / "providers/toy/definition.yaml").write_text((repo.root / "providers/toy/provider.yaml").read_text())
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == [
        "providers/toy/definition.yaml:2:7: a provider folder's definition file holds a DatabaseClusterDefinition, not Provider (at kind)"
    ]


def test_an_error_inside_a_built_in_template_names_the_cluster_field_that_led_to_it(repo, monkeypatch):
    """A failure of a built-in provider is reported at the user's cluster file and field (the
    last one the template read), not only at a template the user cannot edit."""
    from everest_render.render import functions as helpers

    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setitem(helpers.FILTERS, "pmm_resources", broken)
    repo.write("clusters/shop/orders.yaml", mongodb(body=(
        "  instances:\n    engine: {}\n    monitoring:\n      monitoringConfig: pmm\n      resources: {memory: 1G}\n"
    )))
    repo.write("clusters/shop/pmm.yaml", """
        apiVersion: everest.percona.com/v1alpha1
        kind: MonitoringConfig
        metadata: {name: pmm, namespace: shop}
        spec: {type: pmm, credentialsSecretName: pmm, pmm: {url: "https://pmm.example.com"}}
        """)
    (error,) = repo.errors()
    assert error.startswith("clusters/shop/orders.yaml:12:18: provider percona-server-mongodb failed on this field: ValueError: boom"
                            " (in <built-in>/providers/percona-server-mongodb/_macros.j2:")
    assert error.endswith("; if the cluster is valid, report it) (at spec.instances.monitoring.resources)")


def test_provider_checks_refuse_every_broken_rule_at_its_field_before_any_template(repo):
    write_toy_provider(repo, "{{ fail('templates must not run') }}")
    provider = repo.root / "providers/toy/provider.yaml"
    provider.write_text(provider.read_text() + """  checks:
    - {require: "components.engine.replicas > 1", message: "more than one, got {{ components.engine.replicas }}", at: spec.instances.engine.replicas}
    - {require: "cluster.paused", message: "paused only", at: spec.paused}
""")
    repo.write("clusters/db.yaml", CLUSTER.replace("engine: {config: 'x = 1'}", "engine: {replicas: 1}"))
    assert repo.errors() == [  # sorted by position, both at once
        "clusters/db.yaml:4:7: provider toy: paused only (providers/toy/provider.yaml:11) (at spec.paused)",
        "clusters/db.yaml:4:54: provider toy: more than one, got 1 (providers/toy/provider.yaml:10) (at spec.instances.engine.replicas)",
    ]


def test_each_provider_check_sees_the_template_context_alone(repo):
    """A cluster's checks share one Jinja context: what one check set there (its ``result``)
    is gone before the next one runs, as if each ran in a context of its own."""
    write_toy_provider(repo, GOOD_TEMPLATE)
    provider = repo.root / "providers/toy/provider.yaml"
    provider.write_text(provider.read_text() + """  checks:
    - {require: "true", message: "never", at: spec}
    - {require: "result is undefined", message: "saw {{ result }}", at: spec}
""")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == []


def test_replicas_from_must_name_another_component(repo):
    write_toy_provider(repo, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    definition = repo.root / "definitions/toy.yaml"
    definition.write_text(definition.read_text().replace("components: {engine: {type: db}}", "components: {engine: {type: db, replicasFrom: proxy}}"))
    repo.write("clusters/db.yaml", CLUSTER)
    assert any("replicasFrom must name another component; known: (none)" in e for e in repo.errors())


def test_a_template_beyond_the_wall_clock_backstop_is_stopped_at_its_line(repo, monkeypatch):
    """The step budget stops loops the same way everywhere; what it does not count (a slow
    filter) is stopped by the clock. A zero backstop makes any loop of 1,024 steps hit it."""
    from everest_render.render import limits

    monkeypatch.setattr(limits, "WALL_CLOCK_SECONDS", 0.0)
    write_toy_provider(repo, "apiVersion: v1\nkind: ConfigMap\n{% for i in range(5000) %}\n{% endfor %}metadata: {name: x}\n")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == [
        "providers/toy/configmap.yaml.j2:3:1: while rendering ns/db: TemplateLimit: template ran longer than 0 s (the wall-clock backstop); cluster clusters/db.yaml:4:7 (at spec)"
    ]


def test_the_step_budget_is_the_documented_one():
    """docs/api.md promises the numbers users can rely on; a change to a limit changes it too."""
    from everest_render.render import limits
    from tests.conftest import PROJECT_ROOT

    api = (PROJECT_ROOT / "docs/api.md").read_text()
    assert f"step budget of **{limits.STEP_BUDGET:,} steps**" in api
    assert f"wall-clock backstop of **{limits.WALL_CLOCK_SECONDS:.0f} s**" in api
    assert f"macros nested at most **{limits.MAX_DEPTH}** deep" in api
    assert f"({limits.MAX_OUTPUT_CHARS:,} characters" in api


def test_a_partial_beyond_the_step_budget_names_its_line_and_where_it_was_included(repo, monkeypatch):
    """(The corpus runs the real budget once; here a small one keeps the test cheap.)"""
    from everest_render.render import limits

    monkeypatch.setattr(limits, "STEP_BUDGET", 1000)
    partial = "{# loops #}\n{% for i in range(100) %}\n{% for j in range(100) %}{% endfor %}{% endfor %}\n"
    write_toy_provider(repo, "apiVersion: v1\nkind: ConfigMap\n{% include '_partial.j2' %}\nmetadata: {name: x}\n", partial=partial)
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == [
        "providers/toy/_partial.j2:3:1: while rendering ns/db: TemplateLimit: template ran out of its step budget (1,000 steps): a loop or "
        "recursion too long, included from providers/toy/configmap.yaml.j2:3; cluster clusters/db.yaml:4:7 (at spec)"
    ]


def test_a_bad_secrets_expression_is_refused_when_the_provider_loads_and_explain_does_not_crash(repo):
    from click.testing import CliRunner

    from everest_render.commands.cli import main as cli_main

    write_toy_provider(repo, GOOD_TEMPLATE)
    provider = repo.root / "providers/toy/provider.yaml"
    provider.write_text(provider.read_text() + "  secrets:\n    - {name: \"cluster.name ~\", keys: [password], createdBy: user}\n")
    repo.write("clusters/db.yaml", CLUSTER)
    assert repo.errors() == [
        "providers/toy/provider.yaml:10:14: not a valid expression: unexpected 'end of template' (at spec.secrets[0].name)"
    ]
    explained = CliRunner().invoke(cli_main, ["explain", "--repo", str(repo.root), "ns/db"])
    assert explained.exception is None or isinstance(explained.exception, SystemExit), explained.exception
    assert "Traceback" not in explained.stderr and explained.exit_code in (0, 3)


# A width or precision a format takes from its arguments: only the arguments tell it, and
# formatting allocates it before any check on the result (10**10 would be 10 GB).
WIDTHS_FROM_ARGUMENTS = [
    "{{ '{:{w}}'.format(1, w=10**8) }}",
    "{{ '{:{}}'.format(1, 100000000) }}",
    "{{ '{0:{1}}'.format(1, 100000000) }}",
    "{{ '{:.{p}f}'.format(1.0, p=10**8) }}",
    "{{ '{x:{w}}'.format_map({'x': 1, 'w': 10**8}) }}",
    "{{ '%*d' % (10**8, 1) }}",
    "{{ '%.*f' % (10**8, 1.0) }}",
    "{{ '%s %-*d' % ('a', -10**8, 1) }}",
    "{{ '%*d'|format(10**8, 1) }}",
]


def _bounded_render(text):
    from everest_render.render.limits import BoundedSandbox, render_bounded

    sandbox = BoundedSandbox()
    sandbox.bound_helpers()
    return render_bounded(sandbox.from_string(text), {}, sandbox.budget)


def test_a_huge_width_taken_from_the_arguments_is_refused_before_it_is_allocated():
    from everest_render.render.limits import TemplateLimit

    for text in WIDTHS_FROM_ARGUMENTS:
        try:
            _bounded_render(text)
        except TemplateLimit as limit:
            assert str(limit) == "a format width beyond the limit", text
        else:
            raise AssertionError(f"{text} rendered")


def test_widths_taken_from_the_arguments_within_the_limit_format_as_python_does():
    cases = {
        "{{ '%-*s|%s' % (5, 'a', 'b') }}": "a    |b",
        "{{ '%% %*d' % (4, 1) }}": "%    1",
        "{{ '%s %*d' % ('a', 3, 12345678) }}": "a 12345678",  # a big value, not a width
        "{{ '{:{w}}'.format(123456789, w=3) }}": "123456789",
        "{{ '{:{w}}|{{x}}'.format('a', w=5) }}": "a    |{x}",
        "{{ '{{{}}}'.format(7) }}": "{7}",
        "{{ '{x:>{w}}'.format_map({'x': 1, 'w': 3}) }}": "  1",
        "{{ '%*d'|format(3, 1) }}": "  1",
    }
    assert {text: _bounded_render(text) for text in cases} == cases
