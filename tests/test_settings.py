"""The repository settings file, everest-render.yaml: optional, strict, located, an input."""

from __future__ import annotations

from tests.conftest import mongodb

HEADER = "apiVersion: everest-render/v1alpha1\nkind: RepositorySettings\n"


def test_without_the_file_every_default_applies(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    (cluster,) = repo.resolved()
    assert cluster.settings.document is None and cluster.settings.file is None


def test_a_file_with_no_sections_changes_nothing(repo, tmp_path_factory):
    repo.write("clusters/shop/orders.yaml", mongodb())
    before = repo.result().plan.stream()
    repo.write("everest-render.yaml", HEADER + "spec: {}\n")
    assert repo.result().plan.stream() == before
    (cluster,) = repo.resolved()
    assert cluster.settings.file == "everest-render.yaml"  # resolve sees the file it came from


def test_an_empty_file_is_every_default(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yaml", "# nothing set yet\n")
    assert repo.errors() == []


def test_unknown_top_level_keys_are_refused_with_a_suggestion(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yaml", HEADER + "specs: {}\n")
    assert repo.errors() == ["everest-render.yaml:3:1: unknown field 'specs'; did you mean \"spec\"? (at specs)"]


def test_an_unknown_section_is_refused_at_its_key(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yaml", HEADER + "spec:\n  colour: blue\n")
    assert repo.errors() == ["everest-render.yaml:4:3: unknown field 'colour' (at spec.colour)"]


def test_the_api_version_and_kind_are_checked(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yaml", "apiVersion: everest-render/v1\nkind: Settings\n")
    assert repo.errors() == [
        "everest-render.yaml:1:13: must be 'everest-render/v1alpha1', not 'everest-render/v1' (at apiVersion)",
        "everest-render.yaml:2:7: must be 'RepositorySettings', not 'Settings' (at kind)",
    ]


def test_a_missing_kind_points_at_the_document(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yaml", "apiVersion: everest-render/v1alpha1\nspec: {}\n")
    assert repo.errors() == ["everest-render.yaml:1:1: missing required field 'kind'"]


def test_the_file_holds_one_document(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yaml", HEADER + "---\n" + HEADER)
    assert repo.errors() == ["everest-render.yaml:4:1: everest-render.yaml holds one document (RepositorySettings), not several"]


def test_a_document_that_is_not_a_mapping_is_refused(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yaml", "- a\n")
    assert repo.errors() == [
        "everest-render.yaml:1:1: everest-render.yaml holds a mapping: apiVersion: everest-render/v1alpha1, kind: RepositorySettings, spec"
    ]


def test_a_broken_file_does_not_hide_the_clusters_problems(repo):
    repo.write("clusters/shop/orders.yaml", mongodb(body="  instances:\n    engine: {replicaz: 3}\n"))
    repo.write("everest-render.yaml", HEADER + "spec: [\n")
    errors = repo.errors()
    assert len(errors) == 2
    assert errors[0].startswith("clusters/shop/orders.yaml:9:14: unknown field 'replicaz'")
    assert errors[1].startswith("everest-render.yaml:")


def test_everestignore_does_not_hide_it(repo):
    # It changes what is rendered: ignoring it would render something else than the repository says.
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write(".everestignore", "everest-render.yaml\n/*.yaml\n")
    repo.write("everest-render.yaml", HEADER + "specs: {}\n")
    assert repo.errors() == ["everest-render.yaml:3:1: unknown field 'specs'; did you mean \"spec\"? (at specs)"]


def test_the_yml_spelling_is_refused_rather_than_silently_skipped(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yml", HEADER)
    assert repo.errors() == ["everest-render.yml:1:1: the repository settings file is named everest-render.yaml; rename this file"]


def test_only_the_root_holds_it(repo):
    # A settings file elsewhere is no settings file: under clusters/ it is a pass-through
    # object without a namespace, as any other unknown kind there.
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("clusters/everest-render.yaml", HEADER)
    assert repo.errors() == ["clusters/everest-render.yaml:1:1: an object passed through to out/ needs metadata.namespace (at metadata)"]


def test_errors_in_it_write_nothing(repo, tmp_path):
    from click.testing import CliRunner

    from everest_render.commands.cli import main

    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yaml", HEADER + "specs: {}\n")
    result = CliRunner().invoke(main, ["render", "--repo", str(repo.root)])
    assert result.exit_code == 3 and result.stdout == ""
    assert not (repo.root / "out").exists()
