"""Loading: positions beside the data, duplicate keys, what is read and what is not."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from everest_render.load.documents import parse_yaml
from everest_render.load.files import discover_input_files
from everest_render.load.text import SourceFile


def test_positions_of_values_and_keys_are_one_based():
    (doc,), problems = parse_yaml(SourceFile("f.yaml", "a: 1\nb:\n  c: [x, y]\n"))
    assert problems == []
    assert doc.data == {"a": 1, "b": {"c": ["x", "y"]}}
    assert (doc.positions.value(("b", "c", 1)).line, doc.positions.value(("b", "c", 1)).column) == (3, 10)
    assert (doc.positions.key(("b", "c")).line, doc.positions.key(("b", "c")).column) == (3, 3)


def test_a_missing_path_falls_back_to_its_closest_ancestor():
    (doc,), _ = parse_yaml(SourceFile("f.yaml", "a:\n  b: 1\n"))
    assert doc.positions.value(("a", "zz", 3)) == doc.positions.value(("a",))


def test_empty_documents_are_skipped_and_indexes_kept():
    docs, problems = parse_yaml(SourceFile("f.yaml", "---\n---\na: 1\n---\n# only a comment\n---\nb: 2\n"))
    assert problems == []
    assert [(d.index, d.data) for d in docs] == [(1, {"a": 1}), (3, {"b": 2})]


def test_positions_found_later_are_those_of_their_own_document():
    # Positions are found from the text when first asked for: past empty documents, each
    # document's own, and one with a problem keeps the others' positions right.
    text = "---\n---\na: 1\n---\n# only a comment\n---\nb:\n  c: 2\n  c: 3\n"
    docs, problems = parse_yaml(SourceFile("f.yaml", text))
    assert [p.message for p in problems] == ["duplicate key 'c' (first at line 8)"]
    first, second = docs
    assert (first.positions.value(("a",)).line, first.positions.value(("a",)).column) == (3, 4)
    assert (second.positions.key(("b", "c")).line, second.positions.value(("b", "c")).column) == (8, 6)


def test_dates_stay_strings():
    (doc,), _ = parse_yaml(SourceFile("f.yaml", "d: 2024-01-01\n"))
    assert doc.data == {"d": "2024-01-01"}


def test_merge_keys_are_refused():
    _, problems = parse_yaml(SourceFile("f.yaml", "a: &x {b: 1}\nc:\n  <<: *x\n"))
    assert [str(p) for p in problems] == ["f.yaml:3:3: mapping keys must be plain strings (no merge keys, no collections) (at c)"]


def test_discovery_skips_hidden_folders_out_and_ignored_files(tmp_path):
    for path in ["clusters/a.yaml", "clusters/.hidden/b.yaml", "clusters/c.txt", "clusters/skip/d.yaml", "clusters/e.yml",
                 "out/shop/x.yaml", "providers/p/provider.yaml", "providers/p/other.yaml", "definitions/d.yaml", "README.yaml"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("a: 1\n")
    (tmp_path / ".everestignore").write_text("clusters/skip/\n")
    found = [p.relative_to(tmp_path).as_posix() for p in discover_input_files(tmp_path, tmp_path / "out")]
    assert found == ["clusters/a.yaml", "clusters/e.yml", "definitions/d.yaml", "providers/p/provider.yaml"]


def test_an_output_folder_inside_clusters_is_not_read(tmp_path):
    for path in ["clusters/a.yaml", "clusters/rendered/x.yaml"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("a: 1\n")
    found = [p.relative_to(tmp_path).as_posix() for p in discover_input_files(tmp_path, tmp_path / "clusters/rendered")]
    assert found == ["clusters/a.yaml"]


def test_a_formatted_path_parses_back():
    from everest_render.diagnostics import format_path, parse_path

    path = ("spec", "instances", "engine", "expose", "sourceRanges", 1)
    assert parse_path(format_path(path)) == path


def test_an_alias_bomb_is_refused_not_expanded():
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    docs, problems = parse_yaml(SourceFile("bomb.yaml", "\n".join(levels) + "\n"))
    assert docs == []
    assert [str(p) for p in problems] == ["bomb.yaml:1:1: document too large: more than 100000 values (aliases expanding?)"]


@pytest.mark.parametrize("depth", [900, 5000])
def test_a_document_nested_too_deeply_is_refused_without_a_traceback(depth):
    # Which check trips first (libyaml's own depth limit or ours) and how it words it is not
    # the contract; the contract is one located error for the file and no document.
    text = "a: " + "[" * depth + "]" * depth + "\n"
    docs, problems = parse_yaml(SourceFile("deep.yaml", text))
    assert docs == []
    assert len(problems) == 1
    assert (problems[0].file, problems[0].line) == ("deep.yaml", 1)
    assert problems[0].column >= 1 and problems[0].message


def test_a_document_nested_too_deeply_is_exit_3_without_a_traceback(tmp_path):
    from everest_render.commands.cli import main as cli_main

    (tmp_path / "clusters").mkdir()
    (tmp_path / "clusters/deep.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    result = CliRunner().invoke(cli_main, ["validate", "--repo", str(tmp_path)])
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("clusters/deep.yaml:1:")


def test_a_link_out_of_the_repository_is_not_read(tmp_path):
    from everest_render.load.files import read_sources

    secret = tmp_path / "elsewhere.yaml"
    secret.write_text("password: hunter2\n")
    repo = tmp_path / "repo"
    (repo / "clusters").mkdir(parents=True)
    (repo / "clusters/link.yaml").symlink_to(secret)
    sources, problems = read_sources(repo, [repo / "clusters/link.yaml"])
    assert sources == []
    assert [str(p) for p in problems] == ["clusters/link.yaml:1:1: a symbolic link that leads outside the repository is not read"]
