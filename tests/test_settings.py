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


# --- spec.catalogue: versions added to a definition without copying it ----------------------

CATALOGUE = HEADER + "spec:\n  catalogue:\n    percona-server-mongodb:\n      mongod:\n"


def pinned(version: str) -> str:
    return mongodb(body=f"  components:\n    versions:\n      mongod: {{version: {version}}}\n  instances:\n    engine: {{}}\n")


def test_an_added_version_can_be_pinned_and_is_reported(repo):
    repo.write("clusters/shop/orders.yaml", pinned("8.0.20-8"))
    repo.write("everest-render.yaml", CATALOGUE + "        - {version: 8.0.20-8, image: percona/percona-server-mongodb:8.0.20-8}\n")
    assert repo.only_object()["spec"]["image"] == "percona/percona-server-mongodb:8.0.20-8"
    (cluster,) = repo.resolved()
    entry = cluster.definition.component_types["mongod"].find("8.0.20-8")
    assert entry is not None and entry.added_by_repository and entry.source == "everest-render.yaml:7:11"
    assert cluster.definition.component_types["mongod"].default.version == "8.0.19-7"  # the built-in default stays


def test_an_added_default_takes_the_default(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yaml", CATALOGUE + "        - {version: 8.0.20-8, image: percona/percona-server-mongodb:8.0.20-8, default: true}\n")
    assert repo.only_object()["spec"]["image"] == "percona/percona-server-mongodb:8.0.20-8"
    (cluster,) = repo.resolved()
    origins = {d.path: d.origin for d in cluster.defaults}
    assert origins["spec.components.versions.mongod.version"] == (
        "definition percona-server-mongodb catalogue default, added by the repository (everest-render.yaml:7:11)"
    )


def test_at_most_one_added_default(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write(
        "everest-render.yaml",
        CATALOGUE
        + "        - {version: 8.0.20-8, image: percona/percona-server-mongodb:8.0.20-8, default: true}\n"
        + "        - {version: 8.0.21-9, image: percona/percona-server-mongodb:8.0.21-9, default: true}\n",
    )
    assert repo.errors() == [
        "everest-render.yaml:8:88: at most one added mongod version may be default: true (first at [0]) (at spec.catalogue.percona-server-mongodb.mongod[1].default)"
    ]


def test_the_image_must_be_an_image_reference_with_a_tag_or_digest(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write(
        "everest-render.yaml",
        CATALOGUE + "        - {version: a, image: 'Percona/Mongo DB'}\n        - {version: b, image: registry.example.com:5000/percona/mongod}\n",
    )
    assert repo.errors() == [
        "everest-render.yaml:7:31: 'Percona/Mongo DB' is not an image reference (e.g. registry.example.com/team/db:1.2.3) (at spec.catalogue.percona-server-mongodb.mongod[0].image)",
        "everest-render.yaml:8:31: 'registry.example.com:5000/percona/mongod' names no tag or digest: pin one, or the image changes under the cluster (at spec.catalogue.percona-server-mongodb.mongod[1].image)",
    ]


def test_a_digest_or_a_registry_with_a_port_is_an_image_reference(repo):
    digest = "sha256:" + "a" * 64
    repo.write("clusters/shop/orders.yaml", pinned("8.0.20-8"))
    repo.write("everest-render.yaml", CATALOGUE + f"        - {{version: 8.0.20-8, image: 'registry.example.com:5000/psmdb:8.0.20-8@{digest}'}}\n")
    assert repo.errors() == []


def test_a_built_in_version_with_another_image_is_refused(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yaml", CATALOGUE + "        - {version: 8.0.19-7, image: example.com/mongod:8.0.19-7}\n")
    assert repo.errors() == [
        "everest-render.yaml:7:38: version 8.0.19-7 is already in definition percona-server-mongodb (built-in) with image percona/percona-server-mongodb:8.0.19-7 (at spec.catalogue.percona-server-mongodb.mongod[0].image)"
    ]


def test_a_built_in_version_written_identically_is_accepted(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    before = stream_of(repo)
    repo.write("everest-render.yaml", CATALOGUE + "        - {version: 8.0.19-7, image: percona/percona-server-mongodb:8.0.19-7}\n")
    assert stream_of(repo) == before
    (cluster,) = repo.resolved()
    assert [v.version for v in cluster.definition.component_types["mongod"].versions].count("8.0.19-7") == 1


def stream_of(repo):
    return repo.result().plan.stream()


def test_a_version_listed_twice_is_refused(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    line = "        - {version: 8.0.20-8, image: percona/percona-server-mongodb:8.0.20-8}\n"
    repo.write("everest-render.yaml", CATALOGUE + line + line)
    assert repo.errors() == [
        "everest-render.yaml:8:21: version 8.0.20-8 is listed twice (first at [0]) (at spec.catalogue.percona-server-mongodb.mongod[1].version)"
    ]


def test_unknown_definitions_and_component_types_are_refused_with_suggestions(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write(
        "everest-render.yaml",
        HEADER
        + "spec:\n  catalogue:\n    percona-server-mongo:\n      mongod: [{version: a, image: 'x:1'}]\n"
        + "    percona-xtradb-cluster:\n      pxcc: [{version: a, image: 'x:1'}]\n",
    )
    assert repo.errors() == [
        "everest-render.yaml:5:5: unknown DatabaseClusterDefinition 'percona-server-mongo'; known: cloudnative-pg, percona-postgresql, percona-server-mongodb, percona-xtradb-cluster; did you mean \"percona-server-mongodb\"? (at spec.catalogue.percona-server-mongo)",
        "everest-render.yaml:8:7: definition percona-xtradb-cluster has no component type 'pxcc'; known: backup, haproxy, pmm, proxysql, pxc; did you mean \"pxc\"? (at spec.catalogue.percona-xtradb-cluster.pxcc)",
    ]


def test_entries_are_schema_checked(repo):
    repo.write("clusters/shop/orders.yaml", mongodb())
    repo.write("everest-render.yaml", CATALOGUE + "        - {version: 8.0.20-8, imag: x:1}\n")
    assert repo.errors() == [
        "everest-render.yaml:7:11: missing required field 'image' (at spec.catalogue.percona-server-mongodb.mongod[0])",
        "everest-render.yaml:7:31: unknown field 'imag'; did you mean \"image\"? (at spec.catalogue.percona-server-mongodb.mongod[0].imag)",
    ]


def test_providers_list_and_explain_say_where_a_version_came_from(repo):
    import json

    from click.testing import CliRunner

    from everest_render.commands.cli import main

    repo.write("clusters/shop/orders.yaml", pinned("8.0.20-8"))
    repo.write("everest-render.yaml", CATALOGUE + "        - {version: 8.0.20-8, image: percona/percona-server-mongodb:8.0.20-8}\n")
    listed = CliRunner().invoke(main, ["providers", "list", "--repo", str(repo.root)])
    assert listed.exit_code == 0
    assert "8.0.20-8 (added by the repository, everest-render.yaml:7:11)" in listed.stdout
    assert "8.0.19-7 (default)" in listed.stdout
    data = json.loads(CliRunner().invoke(main, ["providers", "list", "--repo", str(repo.root), "--format", "json"]).stdout)
    (psmdb,) = [p for p in data if p["name"] == "percona-server-mongodb"]
    (added,) = [v for v in psmdb["componentTypes"]["mongod"] if v["addedByRepository"]]
    assert added == {"version": "8.0.20-8", "image": "percona/percona-server-mongodb:8.0.20-8", "default": False,
                     "source": "everest-render.yaml:7:11", "addedByRepository": True}
    explained = CliRunner().invoke(main, ["explain", "shop/orders", "--repo", str(repo.root)])
    assert "mongod: 8.0.20-8  (percona/percona-server-mongodb:8.0.20-8)  <- added by the repository (everest-render.yaml:7:11)" in explained.stdout
    assert "pmm: 3.6.0  (percona/pmm-client:3.6.0)  <- built-in definition, from e2e-tests/release_versions@v1.22.0, deploy/cr.yaml@v1.22.0" in explained.stdout


def test_every_built_in_catalogue_entry_names_its_source():
    from everest_render.load.files import read_builtins
    from everest_render.pipeline import _load_and_parse

    _, parsed = _load_and_parse(read_builtins(), ())
    percona = [d for d in parsed.definitions if d.name.startswith("percona-")]
    assert len(percona) == 3
    entries = [v for d in percona for t in d.component_types.values() for v in t.versions]
    assert len(entries) > 40
    assert all(v.source for v in entries), [v.version for v in entries if not v.source]
