"""The CRDs' CEL rules, checked offline: inventory, one violating object per rule, the fleet
passing them all, and the evaluator agreeing with a reference CEL implementation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cel  # common-expression-language: the reference the evaluator is checked against
import pytest
import yaml

from everest_render.check.cel_rules import (
    RULES_KEY,
    CelError,
    CelSyntaxError,
    RuleSet,
    apply_defaults,
    compile_expression,
    is_url,
    rules_from_schema,
)
from tests.conftest import PROJECT_ROOT

SCHEMAS = {
    "PerconaPGCluster": PROJECT_ROOT / "providers/percona-postgresql/schemas/PerconaPGCluster.json",
    "PerconaServerMongoDB": PROJECT_ROOT / "providers/percona-server-mongodb/schemas/PerconaServerMongoDB.json",
    "PerconaXtraDBCluster": PROJECT_ROOT / "providers/percona-xtradb-cluster/schemas/PerconaXtraDBCluster.json",
    "Cluster": PROJECT_ROOT / "providers/cloudnative-pg/schemas/Cluster.json",
    "Pooler": PROJECT_ROOT / "providers/cloudnative-pg/schemas/Pooler.json",
    "ScheduledBackup": PROJECT_ROOT / "providers/cloudnative-pg/schemas/ScheduledBackup.json",
    "Instance": PROJECT_ROOT / "everest_render/schemas/Instance.json",
}


def records(kind: str) -> list[dict[str, Any]]:
    return json.loads(SCHEMAS[kind].read_text())[RULES_KEY]


def rule_set(kind: str) -> RuleSet:
    return RuleSet(records(kind))


# --- inventory: a new CRD's rules cannot be silently ignored ---------------------------------


def vendored_crds() -> list[Path]:
    # The engines' CRDs in their provider folders, and the Instance input's in the top-level crds/.
    return sorted([*PROJECT_ROOT.glob("providers/*/crds/*/*.yaml"), *PROJECT_ROOT.glob("crds/*/*/*.yaml")])


def test_every_vendored_crd_rule_is_inventoried():
    # Rules per CRD (every served version), checked and transition (oldSelf, not checked).
    # A CRD update that adds, drops or changes a rule fails here: add its row to VIOLATIONS.
    counts = {}
    for path in vendored_crds():
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        for version in crd["spec"]["versions"]:
            found = rules_from_schema(version["schema"]["openAPIV3Schema"])
            if found:
                checked = sum(not r.get("transition") for r in found)
                counts[(crd["spec"]["names"]["kind"], version["name"])] = (checked, len(found) - checked)
    assert counts == {
        ("Instance", "v1alpha1"): (1, 0),
        ("PerconaPGCluster", "v2"): (20, 0),
        ("PerconaServerMongoDB", "v1"): (3, 0),
        ("PerconaXtraDBCluster", "v1"): (5, 0),
        ("Cluster", "v1"): (8, 1),
        ("Pooler", "v1"): (3, 2),
        ("ScheduledBackup", "v1"): (0, 1),
    }
    assert sum(c + t for c, t in counts.values()) == 44


def test_the_committed_schemas_carry_every_rule_and_the_table_covers_each_checked_one():
    committed = {(kind, r["rule"], tuple(r["at"])) for kind in SCHEMAS for r in records(kind) if not r.get("transition")}
    tabled = {(kind, rule, tuple(at)) for kind, at, rule, *_ in VIOLATIONS}
    assert committed == tabled
    assert len(committed) == 40


# --- one violating value per rule: rule -> value at its location -> expected message ---------

PG_PARAMS = ["spec", "config", "parameters"]
LBC = "'loadBalancerClass' can only be set when service type is 'LoadBalancer'"

# (kind, location, rule, the value at the location that breaks it, expected message)
VIOLATIONS: list[tuple[str, list[str], str, Any, str]] = [
    ("PerconaPGCluster", ["spec"], "!has(self.users) || self.postgresVersion >= 15 || self.users.all(u, !has(u.grantPublicSchemaAccess) || !u.grantPublicSchemaAccess)",
     {"postgresVersion": 14, "users": [{"name": "app", "grantPublicSchemaAccess": True}]},
     "PostgresVersion must be >= 15 if grantPublicSchemaAccess exists and is true"),
    ("PerconaPGCluster", ["spec", "backups"], "(has(self.enabled) && self.enabled == false) || (has(self.pgbackrest.repos) && size(self.pgbackrest.repos) > 0)",
     {"pgbackrest": {"repos": []}}, "At least one repository must be configured when backups are enabled"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.config_file) && !has(self.data_directory)", {"data_directory": "/x"},
     "cannot change PGDATA path: config_file, data_directory"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.external_pid_file)", {"external_pid_file": "x"}, "cannot change external_pid_file"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.hba_file) && !has(self.ident_file)", {"ident_file": "x"},
     "cannot change authentication path: hba_file, ident_file"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.listen_addresses)", {"listen_addresses": "*"}, "network connectivity is always enabled: listen_addresses"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.port)", {"port": 5433}, "change port using .spec.port instead"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.ssl) && !self.exists(k, k.startsWith(\"ssl_\") && !(k == 'ssl_groups' || k == 'ssl_ecdh_curve'))",
     {"ssl_groups": "x", "ssl_ciphers": "HIGH"}, "TLS is always enabled"),
    ("PerconaPGCluster", PG_PARAMS, '!self.exists(k, k.startsWith("unix_socket_"))', {"unix_socket_group": "g"}, "domain socket paths cannot be changed"),
    ("PerconaPGCluster", PG_PARAMS, '!has(self.wal_level) || self.wal_level in ["logical"]', {"wal_level": "minimal"},
     'wal_level must be "replica" or higher'),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.wal_log_hints)", {"wal_log_hints": "on"}, "wal_log_hints are always enabled"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.archive_mode) && !has(self.archive_command) && !has(self.restore_command)",
     {"restore_command": "cp"}, "failed rule: !has(self.archive_mode) && !has(self.archive_command) && !has(self.restore_command)"),
    ("PerconaPGCluster", PG_PARAMS, '!has(self.recovery_target) && !self.exists(k, k.startsWith("recovery_target_"))',
     {"recovery_target_time": "now"}, 'failed rule: !has(self.recovery_target) && !self.exists(k, k.startsWith("recovery_target_"))'),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.hot_standby)", {"hot_standby": "off"}, "hot_standby is always enabled"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.synchronous_standby_names)", {"synchronous_standby_names": "*"},
     "failed rule: !has(self.synchronous_standby_names)"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.primary_conninfo) && !has(self.primary_slot_name)", {"primary_slot_name": "s"},
     "failed rule: !has(self.primary_conninfo) && !has(self.primary_slot_name)"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.recovery_min_apply_delay)", {"recovery_min_apply_delay": "1h"},
     "delayed replication is not supported at this time"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.cluster_name)", {"cluster_name": "c"}, "cluster_name is derived from the PostgresCluster name"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.logging_collector)", {"logging_collector": "off"}, "disabling logging_collector is unsafe"),
    ("PerconaPGCluster", PG_PARAMS, "!has(self.log_file_mode)", {"log_file_mode": "0600"}, "log_file_mode cannot be changed"),
    ("PerconaServerMongoDB", ["spec", "storageScaling"],
     "!has(self.autoscaling) || !has(self.autoscaling.enabled) || !self.autoscaling.enabled || self.enableVolumeScaling",
     {"autoscaling": {"enabled": True}, "enableVolumeScaling": False}, "autoscaling cannot be enabled when enableVolumeScaling is disabled"),
    ("PerconaServerMongoDB", ["spec", "storageScaling"],
     "!has(self.autoscaling) || !has(self.autoscaling.enabled) || !self.autoscaling.enabled || !has(self.enableExternalAutoscaling) || !self.enableExternalAutoscaling",
     {"autoscaling": {"enabled": True}, "enableVolumeScaling": True, "enableExternalAutoscaling": True},
     "autoscaling cannot be enabled when enableExternalAutoscaling is enabled"),
    ("PerconaServerMongoDB", ["spec", "vault", "endpointURL"], "isURL(self)", "vault.svc/v1", "endpointURL must be a valid URL"),
    ("PerconaXtraDBCluster", ["spec", "haproxy", "exposePrimary"], "!(has(self.loadBalancerClass)) || self.type == 'LoadBalancer'",
     {"type": "ClusterIP", "loadBalancerClass": "x"}, LBC),
    ("PerconaXtraDBCluster", ["spec", "haproxy", "exposeReplicas"], "!(has(self.loadBalancerClass)) || self.type == 'LoadBalancer'",
     {"type": "NodePort", "loadBalancerClass": "x"}, LBC),
    ("PerconaXtraDBCluster", ["spec", "passwordGenerationOptions"], "self.maxLength >= self.minLength",
     {"maxLength": 8, "minLength": 12, "symbols": "!"}, "failed rule: self.maxLength >= self.minLength"),
    ("PerconaXtraDBCluster", ["spec", "proxysql", "expose"], "!(has(self.loadBalancerClass)) || self.type == 'LoadBalancer'",
     {"loadBalancerClass": "x"}, "rule \"!(has(self.loadBalancerClass)) || self.type == 'LoadBalancer'\" cannot be evaluated: no such key: type"),
    ("PerconaXtraDBCluster", ["spec", "pxc", "expose"], "!(has(self.loadBalancerClass)) || self.type == 'LoadBalancer'",
     {"type": "ClusterIP", "loadBalancerClass": "x"}, LBC),
    ("Cluster", ["spec"], "!(has(self.imageCatalogRef) && has(self.imageName))", {"imageName": "pg", "imageCatalogRef": {}},
     "imageName and imageCatalogRef are mutually exclusive"),
    ("Cluster", ["spec", "bootstrap", "initdb"], "!has(self.builtinLocale) || self.localeProvider == 'builtin'",
     {"builtinLocale": "C", "localeProvider": "icu"}, "builtinLocale is only available when localeProvider is set to `builtin`"),
    ("Cluster", ["spec", "bootstrap", "initdb"], "!has(self.icuLocale) || self.localeProvider == 'icu'",
     {"icuLocale": "en", "localeProvider": "libc"}, "icuLocale is only available when localeProvider is set to `icu`"),
    ("Cluster", ["spec", "bootstrap", "initdb"], "!has(self.icuRules) || self.localeProvider == 'icu'",
     {"icuRules": "&a < b", "localeProvider": "libc"}, "icuRules is only available when localeProvider is set to `icu`"),
    ("Cluster", ["spec", "imageCatalogRef"], "self.kind == 'ImageCatalog' || self.kind == 'ClusterImageCatalog'",
     {"kind": "ConfigMap", "apiGroup": "postgresql.cnpg.io", "name": "c", "major": 17}, "Only image catalogs are supported"),
    ("Cluster", ["spec", "imageCatalogRef"], "self.apiGroup == 'postgresql.cnpg.io'",
     {"kind": "ImageCatalog", "apiGroup": "", "name": "c", "major": 17}, "Only image catalogs are supported"),
    ("Cluster", ["spec", "postgresql", "synchronous"],
     "self.dataDurability!='preferred' || ((!has(self.standbyNamesPre) || self.standbyNamesPre.size()==0) && (!has(self.standbyNamesPost) || self.standbyNamesPost.size()==0))",
     {"method": "any", "number": 1, "dataDurability": "preferred", "standbyNamesPost": ["a"]},
     "dataDurability set to 'preferred' requires empty 'standbyNamesPre' and empty 'standbyNamesPost'"),
    ("Cluster", ["spec", "postgresql", "synchronous", "number"], "self > 0", 0, "The number of synchronous replicas should be greater than zero"),
    ("Pooler", ["spec", "pgbouncer"], "!(has(self.image) && has(self.imageCatalogRef))", {"image": "x", "imageCatalogRef": {}},
     "image and imageCatalogRef are mutually exclusive"),
    ("Pooler", ["spec", "pgbouncer", "imageCatalogRef"], "self.kind == 'ImageCatalog' || self.kind == 'ClusterImageCatalog'",
     {"kind": "Secret", "apiGroup": "postgresql.cnpg.io"}, "Only ImageCatalog and ClusterImageCatalog are supported"),
    ("Pooler", ["spec", "pgbouncer", "imageCatalogRef"], "self.apiGroup == 'postgresql.cnpg.io'",
     {"kind": "ImageCatalog", "apiGroup": "apps"}, "apiGroup must be postgresql.cnpg.io"),
    ("Instance", ["spec", "backup"],
     "!has(self.storages) || self.storages.all(s1, !has(s1.schedules) || s1.schedules.all(sch1, self.storages.filter(s2, has(s2.schedules) && s2.schedules.exists(sch2, sch2.name == sch1.name)).size() <= 1 && s1.schedules.filter(sch2, sch2.name == sch1.name).size() == 1))",
     {"storages": [{"schedules": [{"name": "daily"}]}, {"schedules": [{"name": "daily"}]}]}, "schedule names must be unique across all storages"),
]


def nest(at: list[str], value: Any) -> dict[str, Any]:
    for step in reversed(at):
        value = {step: value}
    return value


@pytest.mark.parametrize(("kind", "at", "rule", "value", "message"), VIOLATIONS, ids=[f"{v[0]}:{'.'.join(v[1])}:{v[2][:40]}" for v in VIOLATIONS])
def test_each_rule_refuses_a_value_that_breaks_it(kind, at, rule, value, message):
    rules = RuleSet([r for r in records(kind) if r["rule"] == rule and r["at"] == at])
    assert len(rules.rules) == 1
    (violation,) = rules.problems(nest(at, value))
    assert violation.path == tuple(at)
    assert violation.message == message
    # The reference implementation agrees that the value breaks the rule.
    assert reference(rule, apply_defaults(value, rules.rules[0].defaults or {})) is not True


def reference(rule: str, value: Any) -> Any:
    context = cel.Context()
    context.add_variable("self", value)
    context.add_function("isURL", is_url)
    try:
        return cel.evaluate(rule, context)
    except Exception as error:  # the library raises KeyError, TypeError, RuntimeError...
        return f"error: {error}"


# --- the example fleet passes every rule, and the reference agrees on each evaluation --------


def rendered_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted((PROJECT_ROOT / "out").rglob("*.yaml")):
        objects.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and d.get("kind") in SCHEMAS)
    return objects


def test_every_rendered_object_of_the_example_fleets_passes_every_rule():
    objects = rendered_objects()
    assert {o["kind"] for o in objects} >= {"PerconaPGCluster", "PerconaServerMongoDB", "PerconaXtraDBCluster", "Cluster", "Pooler"}
    evaluated = 0
    for obj in objects:
        rules = rule_set(obj["kind"])
        assert list(rules.problems(obj)) == [], obj["metadata"]
        for rule in rules.rules:
            node: Any = obj
            for step in rule.at:
                node = node.get(step) if isinstance(node, dict) else None
            if node is not None:
                assert reference(rule.text, apply_defaults(node, rule.defaults or {})) is True, (rule.text, obj["metadata"])
                evaluated += 1
    assert evaluated >= 30


# --- the evaluator's CEL semantics, against the reference where it is exact ------------------

AGREED = [
    ("!has(self.x) || self.y == 1", {"x": 1, "y": 1}, True),
    ("!has(self.x) || self.y == 1", {"x": 1}, CelError),
    ("self.exists(k, k.startsWith('ssl_'))", {"ssl_a": "1"}, True),
    ("self.all(k, k.startsWith('ssl_'))", {"ssl_a": "1", "b": 2}, False),
    ("size(self.a) > 0 && self.a.size() == 1", {"a": [1]}, True),
    ("self.w in ['logical']", {"w": "replica"}, False),
    ("'a' in self", {"a": 1}, True),
    ("self.a.filter(x, x > 1).size()", {"a": [1, 2, 3]}, 2),
    ("self.a.map(x, x * 2)", {"a": [1, 2]}, [2, 4]),
    ("self.a.exists_one(x, x == 2)", {"a": [1, 2, 2]}, False),
    ("self.m >= self.n", {"m": 20}, CelError),
    ("has(self.a.b)", {"a": {}}, False),
    ("has(self.a.b)", {}, CelError),  # has() on a missing parent is an error, as in Kubernetes
    ("false && self.nokey", {}, False),
    ("self.nokey && false", {}, False),  # CEL's && and || are commutative over errors
    ("self.nokey || true", {}, True),
    ("self.nokey || false", {}, CelError),
    ("self.a.all(x, x > 0 || self.nokey)", {"a": [1, 2]}, True),
    ("self.a.all(x, x.v > 5)", {"a": [{"v": 1}, {}]}, False),  # a false element wins over an error
    ("1 == 1.0 && 2 > 1.5", {}, True),  # Kubernetes compares numbers across int and double
    ("self.i == 1 && self.i != 'x'", {"i": 1}, True),
    ("true == 1", {}, False),
    ("'a' + 1", {}, CelError),
    ("-7 / 2 == -3 && -7 % 2 == -1", {}, True),
    ("self.flag ? 'y' : 'n'", {"flag": False}, "n"),
    ("{'a': 1}.a + [1, 2][1]", {}, 3),
    ("'abc'.matches('^a.c$') && !'abc'.matches('d')", {}, True),
    ("'x\\ty' == \"x\\ty\" && r'a\\n'.size() == 3", {}, True),
    ("self.s.endsWith('lo') && self.s.contains('el')", {"s": "hello"}, True),
    ("self.a[5]", {"a": [1]}, CelError),
    ("9223372036854775807 + 1", {}, CelError),
    ("self == null", None, True),
]


@pytest.mark.parametrize(("expression", "value", "expected"), AGREED, ids=[a[0] for a in AGREED])
def test_the_evaluator_agrees_with_the_reference(expression, value, expected):
    program = compile_expression(expression)
    if expected is CelError:
        with pytest.raises(CelError):
            program.evaluate({"self": value})
        assert str(reference(expression, value)).startswith("error")
    else:
        assert program.evaluate({"self": value}) == expected
        assert reference(expression, value) == expected


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        # Where the reference (Rust cel 0.14) differs from Kubernetes' cel-go, cel-go's answer:
        ("self.size()", "héllo", 5),  # code points, not UTF-8 bytes
        ("self.exists(x, x.v > 5)", [{}, {"v": 9}], True),  # a true element wins over an error
        ("'ÀB'.lowerAscii()", None, "Àb"),  # Kubernetes' strings library; only A-Z change
        ("'àb'.upperAscii()", None, "àB"),
    ],
)
def test_the_evaluator_follows_kubernetes_where_the_reference_differs(expression, value, expected):
    assert compile_expression(expression).evaluate({"self": value}) == expected


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        # Go's url.ParseRequestURI, which Kubernetes' isURL calls.
        ("https://vault.example.com:8200", True),
        ("http://[::1]:8200/v1", True),
        ("https://user:pw@vault/v1?x=1", True),
        ("/v1/secret", True),
        ("mailto:ops@example.com", True),
        ("vault:8200", True),  # a scheme "vault" and an opaque part, as Go reads it
        ("vault.svc:8200", True),
        ("s3.amazonaws.com", False),
        ("vault/v1", False),
        ("", False),
        (":8200", False),
        ("http://vault:port", False),
        ("http://[::1/x", False),
        ("http://va ult", False),
        ("http://vault/%zz", False),
        ("http://vault/a\nb", False),
    ],
)
def test_is_url_follows_go_parse_request_uri(url, valid):
    assert is_url(url) is valid


def test_is_url_of_a_non_string_is_an_error():
    with pytest.raises(CelError):
        compile_expression("isURL(self)").evaluate({"self": 1})


# --- preparing rules: defaults, locations, refusals ------------------------------------------


def test_rules_see_the_defaults_the_api_server_applies():
    schema = {
        "type": "object",
        "properties": {
            "opts": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": "self.maxLength >= self.minLength"}],
                "properties": {"maxLength": {"type": "integer", "default": 20}, "minLength": {"type": "integer", "default": 16}},
            }
        },
    }
    rules = RuleSet(rules_from_schema(schema))
    assert list(rules.problems({"opts": {}})) == []
    (violation,) = rules.problems({"opts": {"minLength": 30}})
    assert violation.message == "failed rule: self.maxLength >= self.minLength"


def test_rules_under_items_and_maps_apply_to_each_element_with_field_path_and_reason():
    rule = {"rule": "self.size() <= 3", "message": "too long", "fieldPath": ".name", "reason": "FieldValueTooLong"}
    schema = {
        "type": "object",
        "properties": {
            "list": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [rule]}},
            "map": {"type": "object", "additionalProperties": {"type": "string", "x-kubernetes-validations": [{"rule": "self != 'x'"}]}},
        },
    }
    rules = RuleSet(rules_from_schema(schema))
    found = [(v.path, v.message) for v in rules.problems({"list": ["ab", "abcd"], "map": {"k": "x", "l": "y"}})]
    assert found == [(("list", 1, "name"), "too long (FieldValueTooLong)"), (("map", "k"), "failed rule: self != 'x'")]


def test_a_message_expression_words_the_violation():
    schema = {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0", "messageExpression": "'got ' + string(self)"}]}
    with pytest.raises(CelSyntaxError, match="'string' is not supported"):
        rules_from_schema(schema)
    schema["x-kubernetes-validations"][0]["messageExpression"] = "self < -5 ? 'far too small' : 'too small'"
    (violation,) = RuleSet(rules_from_schema(schema)).problems(-9)
    assert violation.message == "far too small"


def test_transition_rules_are_kept_marked_and_not_evaluated():
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}]}
    (record,) = rules_from_schema(schema)
    assert record["transition"] is True
    assert list(RuleSet([record]).problems({"a": 1})) == []


@pytest.mark.parametrize(
    "rule",
    ["quantity(self).isGreaterThan(quantity('1Gi'))", "self.x.?y.orValue(1)", "self > 1u", "other.x == 1", "has(self)"],
)
def test_a_rule_outside_the_supported_subset_is_refused_when_prepared(rule):
    with pytest.raises(CelSyntaxError):
        rules_from_schema({"type": "object", "x-kubernetes-validations": [{"rule": rule}]})


def test_schemas_fails_on_a_crd_rule_it_cannot_check(tmp_path):
    from click.testing import CliRunner

    from everest_render.commands.cli import main

    shutil.copytree(PROJECT_ROOT / "providers/cloudnative-pg", tmp_path / "providers/cloudnative-pg")
    crd = tmp_path / "providers/cloudnative-pg/crds/1.30.0/poolers.postgresql.cnpg.io.yaml"
    crd.write_text(crd.read_text().replace("rule: self.apiGroup == 'postgresql.cnpg.io'", "rule: self.apiGroup.lowerAscii().reverse() == 'x'"))
    result = CliRunner().invoke(main, ["schemas", "--repo", str(tmp_path), "--check"])
    assert result.exit_code == 3
    assert "function 'reverse' is not supported by everest-render's CEL evaluator" in result.stderr


# --- through the pipeline: a located error, and `providers list` -----------------------------


def test_a_rendered_object_that_breaks_a_rule_is_a_located_error(repo):
    # A repository's own copy of the PXC provider whose template sets a loadBalancerClass on a
    # ClusterIP Service: the API server would refuse the object; the check stage does.
    shutil.copytree(PROJECT_ROOT / "providers/percona-xtradb-cluster", repo.root / "providers/percona-xtradb-cluster")
    macros = repo.root / "providers/percona-xtradb-cluster/_macros.j2"
    macros.write_text(macros.read_text().replace("type: {{ e.type | tojson }}\n", "type: {{ e.type | tojson }}\nloadBalancerClass: internal\n", 1))
    repo.write("clusters/shop/orders.yaml", """
        apiVersion: everest.percona.com/v2alpha1
        kind: DatabaseCluster
        metadata: {name: orders, namespace: shop}
        spec:
          provider: percona-xtradb-cluster
          instances:
            engine: {storage: {size: 10Gi}}
            proxy: {type: haproxy, expose: {type: ClusterIP}}
        """)
    errors = repo.errors()
    assert errors == [
        f"clusters/shop/orders.yaml:5:3: rendered PerconaXtraDBCluster shop/orders breaks a rule of the operator's CRD at {at}: "
        f"{LBC} (template providers/percona-xtradb-cluster/perconaxtradbcluster.yaml.j2)"
        for at in ("spec.haproxy.exposePrimary", "spec.haproxy.exposeReplicas")
    ]


def test_providers_list_reports_the_rules_and_those_not_checked():
    from click.testing import CliRunner

    from everest_render.commands.cli import main

    result = CliRunner().invoke(main, ["providers", "list", "--repo", str(PROJECT_ROOT)])
    assert result.exit_code == 0
    assert "  PerconaPGCluster CEL rules: 20 checked\n" in result.stdout
    assert (
        "  Pooler CEL rules: 3 checked, 2 not checked:\n"
        "    spec.cluster: self == oldSelf (transition rule, compares with the live object: oldSelf)\n"
        "    spec.serviceAccountName: self == oldSelf (transition rule, compares with the live object: oldSelf)\n"
    ) in result.stdout
    listing = json.loads(CliRunner().invoke(main, ["providers", "list", "--repo", str(PROJECT_ROOT), "--format", "json"]).stdout)
    (cnpg,) = [p for p in listing if p["name"] == "cloudnative-pg"]
    assert cnpg["celRules"]["Cluster"] == {
        "checked": 8,
        "notChecked": [{"at": "spec.serviceAccountName", "rule": "self == oldSelf", "why": "transition rule, compares with the live object: oldSelf"}],
    }



def test_a_verdict_is_taken_again_only_for_the_very_same_value():
    # A rule that held for a value is not evaluated again for the same bytes (a fleet repeats
    # them); True, equal to 1 in Python but not in CEL, is evaluated, and so is another value.
    rules = RuleSet(rules_from_schema({"x-kubernetes-validations": [{"rule": "self[0] == 1"}]}))
    verdicts = [[v.message for v in rules.problems(value)] for value in ([1], [True], [1], [True], [2])]
    broken = ["failed rule: self[0] == 1"]
    assert verdicts == [[], broken, [], broken, broken]
