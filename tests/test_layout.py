"""The package's shape: engines are data in their provider folders, never names in core code."""

from __future__ import annotations

import json
import re

import yaml

from tests.conftest import PROJECT_ROOT

PROVIDER_FILES = sorted([*PROJECT_ROOT.glob("providers/*/provider.yaml"), *PROJECT_ROOT.glob("examples/*/providers/*/provider.yaml")])


def engine_words() -> set[str]:
    """Every provider's name, the names an Instance may call it by, and the kinds it renders."""
    words: set[str] = set()
    for path in PROVIDER_FILES:
        provider = yaml.safe_load(path.read_text())
        spec = provider["spec"]
        words |= {provider["metadata"]["name"], spec["databaseClusterDefinition"], spec["operator"]["name"]}
        words |= set(spec.get("instanceAliases", {}).get("names", []))
        words |= {entry["kind"] for entry in spec["objects"]}
    return words


def test_every_provider_is_seen_by_the_engine_name_check():
    assert len(PROVIDER_FILES) >= 4 and {"PerconaServerMongoDB", "Pooler", "psmdb"} <= engine_words()


def test_the_package_code_names_no_engine():
    # Adding an engine is a provider folder: no provider, alias or engine kind in core Python,
    # nor in the input schemas the package ships beside it.
    pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(word)}(?![\w-])" for word in sorted(engine_words())))
    found = []
    package = sorted(p for p in (PROJECT_ROOT / "everest_render").rglob("*") if p.suffix in (".py", ".yaml", ".json"))
    assert len([p for p in package if p.suffix != ".py"]) >= 9  # the input schemas are looked at too
    for path in package:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert found == []


def context_names(typed: type, prefix: str = "") -> set[str]:
    """The leaf names a TypedDict declares: ``a.b``; ``<*>`` for a key, ``[]`` for a list item."""
    import types
    import typing

    names: set[str] = set()
    for key, hint in typing.get_type_hints(typed).items():
        path = f"{prefix}{key}"
        options = [a for a in typing.get_args(hint) if a is not types.NoneType] if isinstance(hint, types.UnionType) else [hint]
        (hint,) = options
        hint = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.NotRequired else hint
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if typing.is_typeddict(hint):
            names |= context_names(hint, f"{path}.")
        elif origin is dict and typing.is_typeddict(args[1]):
            names |= context_names(args[1], f"{path}.<*>.")
        elif origin is dict and typing.get_origin(args[1]) is list:
            names |= context_names(typing.get_args(args[1])[0], f"{path}.<*>[].")
        elif origin is list and args and typing.is_typeddict(args[0]):
            names |= context_names(args[0], f"{path}[].")
        else:
            names.add(path)
    return names


def documented_context_names() -> set[str]:
    text = (PROJECT_ROOT / "docs/providers.md").read_text()
    table = text[text.index("### The context") : text.index("### Helpers")]
    names: set[str] = set()
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        for token in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
            token = re.sub(r"<[a-z]+>", "<*>", token)
            head, _, rest = token.partition("{")
            names |= {head + leaf.strip() for leaf in rest.rstrip("}").split(",")} if rest else {token}
    return names


def test_the_template_context_is_exactly_what_docs_providers_md_lists():
    from everest_render.render.context import TemplateContext

    assert documented_context_names() == context_names(TemplateContext)


def undeclared(value, typed: type, path: str = "") -> list[str]:
    """Where ``value`` (a built context) has a key ``typed`` does not declare, or lacks a required one."""
    import types
    import typing

    hints = typing.get_type_hints(typed)
    problems = [f"{path}{key}: undeclared" for key in value.keys() - hints.keys()]
    problems += [f"{path}{key}: missing" for key in typed.__required_keys__ - value.keys()]
    for key, hint in hints.items():
        if key not in value or value[key] is None:
            continue
        hint = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.NotRequired else hint
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        for inner in options:
            origin, args = typing.get_origin(inner), typing.get_args(inner)
            if typing.is_typeddict(inner):
                problems += undeclared(value[key], inner, f"{path}{key}.")
            elif origin is dict and typing.is_typeddict(args[1]):
                for name, item in value[key].items():
                    problems += undeclared(item, args[1], f"{path}{key}.{name}.")
            elif origin is dict and typing.get_origin(args[1]) is list:
                for name, items in value[key].items():
                    for index, item in enumerate(items):
                        problems += undeclared(item, typing.get_args(args[1])[0], f"{path}{key}.{name}[{index}].")
            elif origin is list and args and typing.is_typeddict(args[0]):
                for index, item in enumerate(value[key]):
                    problems += undeclared(item, args[0], f"{path}{key}[{index}].")
    return problems


def test_every_template_context_of_the_example_fleet_has_exactly_the_declared_names():
    from everest_render.pipeline import read_repository, resolve_repository
    from everest_render.render.context import TemplateContext, template_context

    resolved = resolve_repository(read_repository(PROJECT_ROOT))
    assert len(resolved.clusters) >= 10
    for cluster in resolved.clusters:
        assert undeclared(template_context(cluster), TemplateContext) == [], cluster.ref


def test_the_documented_example_context_is_the_real_one():
    # docs/providers.md shows one cluster's context, abridged: every value it shows is the real value.
    from everest_render.pipeline import read_repository, resolve_repository
    from everest_render.render.context import template_context

    text = (PROJECT_ROOT / "docs/providers.md").read_text()
    section = text[text.index("### The context of one cluster") :]
    shown = yaml.safe_load(section[section.index("```yaml\n") + 8 : section.index("```\n", section.index("```yaml\n") + 8)])
    (cluster,) = [c for c in resolve_repository(read_repository(PROJECT_ROOT)).clusters if str(c.ref) == "apps/orders"]
    real = json.loads(json.dumps(template_context(cluster), default=list))

    def contained(part, whole, at="context"):
        if isinstance(part, dict):
            assert isinstance(whole, dict), at
            for key, value in part.items():
                assert key in whole, f"{at}.{key}"
                contained(value, whole[key], f"{at}.{key}")
        else:
            assert part == whole, at

    contained(shown, real)
