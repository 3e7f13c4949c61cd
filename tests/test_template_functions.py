"""Template helpers, called directly: each rule of a helper is one test."""

from __future__ import annotations

import pytest

from everest_render.render.functions import TemplateFailure, parse_settings


def test_parse_settings_reads_both_line_forms():
    assert parse_settings("shared_buffers = 128MB\nwork_mem 4MB\nmax_connections=200\n") == {
        "shared_buffers": "128MB",
        "work_mem": "4MB",
        "max_connections": "200",
    }


def test_parse_settings_drops_blank_lines_and_comments():
    text = "\n# tuned for OLTP\n   \nwork_mem = 4MB  # per sort\n#shared_buffers = 1GB\n"
    assert parse_settings(text) == {"work_mem": "4MB"}


def test_parse_settings_keeps_a_hash_inside_quotes():
    assert parse_settings("log_line_prefix = '%m # [%p] '") == {"log_line_prefix": "%m # [%p] "}


def test_parse_settings_removes_one_pair_of_surrounding_quotes():
    text = "timezone = 'UTC'\napplication_name \"app\"\nsearch_path = '\"$user\", public'\nodd = 'it''s'\n"
    assert parse_settings(text) == {
        "timezone": "UTC",
        "application_name": "app",
        "search_path": '"$user", public',
        "odd": "'it''s'",  # more than one pair: kept as written, like everest's parser
    }


def test_parse_settings_values_are_always_strings():
    assert parse_settings("max_connections = 100\nfsync off") == {"max_connections": "100", "fsync": "off"}


def test_parse_settings_a_later_line_wins():
    assert parse_settings("work_mem = 4MB\nwork_mem = 8MB") == {"work_mem": "8MB"}


def test_parse_settings_an_equals_sign_with_nothing_after_is_the_empty_string():
    assert parse_settings("default_text_search_config =") == {"default_text_search_config": ""}


def test_parse_settings_space_form_keeps_an_equals_sign_inside_the_value():
    assert parse_settings("options value=x") == {"options": "value=x"}


def test_parse_settings_of_nothing_is_empty():
    assert parse_settings(None) == {}
    assert parse_settings("") == {}


def test_parse_settings_refuses_a_name_without_value():
    with pytest.raises(TemplateFailure, match=r"config line 2: 'fsync' is not 'name = value' or 'name value'"):
        parse_settings("work_mem = 4MB\nfsync\n")


def test_quantities_parse_exactly():
    from decimal import Decimal

    from everest_render.render.functions import quantity

    assert quantity("4G") == Decimal(4_000_000_000)
    assert quantity("8Gi") == Decimal(8 * 2**30)
    assert quantity("500m") == Decimal("0.5")
    assert quantity(2) == Decimal(2)
    with pytest.raises(ValueError):
        quantity("lots")


@pytest.mark.parametrize(
    ("memory", "expected"),
    [(None, "small"), ("7999M", "small"), ("8G", "medium"), ("8Gi", "medium"), ("31999M", "medium"), ("32G", "large"),
     ({"limits": {"memory": "32Gi"}}, "large"), ({"requests": {"memory": "1G"}}, "small"), ({"cpu": "1"}, "small")],
)
def test_size_class_follows_everests_memory_thresholds(memory, expected):
    from everest_render.render.functions import size_class

    assert size_class(memory) == expected
