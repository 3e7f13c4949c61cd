"""Argo CD's config management plugin: what an application asks for, and where its repository is.

The CMP server runs `argocd generate` in the application's directory of a copy of the whole
repository, with the application's choices in three forms that mean the same thing:

- plugin env, `spec.source.plugin.env`, as `ARGOCD_ENV_<NAME>`;
- parameters, `spec.source.plugin.parameters`, as `PARAM_<NAME>` (an array also as
  `PARAM_<NAME>_<i>`), and all of them as JSON in `ARGOCD_APP_PARAMETERS`.

Everything here is pure but `discover`, which reads the application's directory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

# The choices an application can make, by parameter name, with their announced defaults.
ONLY, ALLOW_EMPTY, SOPS = "only", "allow-empty", "sops"
CHOICES = {ONLY: "", ALLOW_EMPTY: "false", SOPS: "refuse"}
SOPS_CHOICES = ("refuse", "omit", "keep")
_TRUE, _FALSE = frozenset({"true", "yes", "1", "on"}), frozenset({"false", "no", "0", "off", ""})


class ChoiceError(ValueError):
    """An application's choices that cannot be honoured (a usage error)."""


@dataclass(frozen=True)
class ApplicationChoices:
    """What one Argo CD application asks for (plugin env or parameters, read_choices)."""

    only: tuple[str, ...] = ()  # NAMESPACE or NAMESPACE/NAME entries; empty: every cluster
    allow_empty: bool = False  # an empty stream prunes every database: only when asked for
    sops: str = "refuse"  # SOPS files in the stream: refuse, omit, or keep (a decrypting plugin)


def read_choices(environ: Mapping[str, str]) -> ApplicationChoices:
    """The application's choices from every form Argo CD passes them in; forms that disagree
    are an error naming both, never a silent precedence."""
    values: dict[str, tuple[str, str]] = {}  # name -> (value, where it came from)
    for name, value, where in [*_from_env(environ), *_from_params(environ), *_from_parameters_json(environ)]:
        if name not in CHOICES:
            continue  # Argo CD passes every parameter; unknown ones are the application's own business
        seen = values.get(name)
        if seen is not None and _normalised(name, seen[0]) != _normalised(name, value):
            raise ChoiceError(f"{name}: {seen[1]} says {seen[0]!r} but {where} says {value!r}; set it in one place")
        values.setdefault(name, (value, where))
    only = values.get(ONLY, ("", ""))[0]
    sops = values.get(SOPS, ("refuse", ""))[0].strip().lower() or "refuse"
    if sops not in SOPS_CHOICES:
        raise ChoiceError(f"{SOPS}: expected one of {', '.join(SOPS_CHOICES)}, got {sops!r}")
    return ApplicationChoices(
        only=split_selection(only), allow_empty=_boolean(ALLOW_EMPTY, values.get(ALLOW_EMPTY, ("", ""))[0]), sops=sops
    )


def split_selection(text: str) -> tuple[str, ...]:
    """`shop, dev/sandbox` or one entry per line: spaces, commas and newlines all separate."""
    return tuple(entry for entry in re.split(r"[\s,]+", text) if entry)


def _normalised(name: str, value: str) -> object:
    if name == SOPS:
        return value.strip().lower() or "refuse"
    return split_selection(value) if name == ONLY else _boolean(name, value)


def _boolean(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ChoiceError(f"{name}: expected true or false, got {value!r}")


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def _from_env(environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    return [(name, environ[key], key) for name in CHOICES if (key := "ARGOCD_ENV_" + _env_name(name)) in environ]


def _from_params(environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    found = []
    for name in CHOICES:
        key = "PARAM_" + _env_name(name)
        items: list[str] = []
        while f"{key}_{len(items)}" in environ:
            items.append(environ[f"{key}_{len(items)}"])
        if key in environ:
            found.append((name, environ[key], key))
        elif items:
            found.append((name, " ".join(items), f"{key}_*"))
    return found


def _from_parameters_json(environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    text = environ.get("ARGOCD_APP_PARAMETERS", "").strip()
    if not text:
        return []
    try:
        parameters = json.loads(text)
    except json.JSONDecodeError as error:
        raise ChoiceError(f"ARGOCD_APP_PARAMETERS is not JSON: {error.msg} at character {error.pos}") from None
    if not isinstance(parameters, list):
        raise ChoiceError("ARGOCD_APP_PARAMETERS: expected a list of parameters")
    return [(str(p.get("name")), _parameter_value(p), "ARGOCD_APP_PARAMETERS") for p in parameters if isinstance(p, dict)]


def _parameter_value(parameter: dict[str, Any]) -> str:
    if isinstance(parameter.get("array"), list):
        return " ".join(str(item) for item in parameter["array"])
    if isinstance(parameter.get("map"), dict):
        raise ChoiceError(f"{parameter.get('name')}: a map parameter is not one of this plugin's forms; give a string or an array")
    return str(parameter.get("string", ""))


@dataclass(frozen=True)
class ApplicationSource:
    """Where the application's directory sits in the repository the CMP server copied."""

    root: Path  # the repository's root in the CMP server's copy
    folder: str  # the application's path relative to it ("" for the root)


def application_source(cwd: Path, source_path: str | None) -> ApplicationSource:
    """Where the repository root is: the application's directory minus its path in the
    repository (`ARGOCD_APP_SOURCE_PATH`), so an application per namespace folder of a monorepo
    still reads the repository's definitions, providers and references."""
    parts = [p for p in PurePosixPath(source_path or ".").parts if p not in (".", "/")]
    if ".." in parts:
        raise ChoiceError(f"ARGOCD_APP_SOURCE_PATH {source_path!r} leaves the repository")
    if not parts:
        return ApplicationSource(cwd, "")
    if tuple(cwd.parts[-len(parts) :]) != tuple(parts):
        raise ChoiceError(f"the working directory {cwd} does not end with the application's path {source_path!r}")
    return ApplicationSource(cwd.parents[len(parts) - 1], "/".join(parts))


# Discovery: a directory is this plugin's when it holds a DatabaseCluster or an Instance, not
# merely a clusters/ folder (a Flux bootstrap repository has one too).
_INPUT_KINDS = {("everest.percona.com/", "DatabaseCluster"), ("core.openeverest.io/", "Instance")}
_KIND_LINE = re.compile(rb"^kind:\s*[\"']?(DatabaseCluster|Instance)[\"']?\s*$", re.MULTILINE)
_MAX_DISCOVERY_BYTES = 4 * 1024 * 1024  # a larger file is not a cluster someone wrote by hand


def discover(folder: Path) -> str | None:
    """The first YAML file under ``folder`` (sorted, relative) that holds a DatabaseCluster or
    an Instance document; None when there is none. `out/` is output, not input."""
    import yaml

    for path in sorted(p for suffix in ("*.yaml", "*.yml") for p in folder.rglob(suffix)):
        relative = path.relative_to(folder)
        if relative.parts[0] == "out" or not path.is_file() or path.stat().st_size > _MAX_DISCOVERY_BYTES:
            continue
        data = path.read_bytes()
        if not _KIND_LINE.search(data):
            continue  # cheap pre-filter: most files are not clusters
        try:
            documents = list(yaml.safe_load_all(data))
        except yaml.YAMLError:
            return relative.as_posix()  # looks like one and is broken: generate reports the error
        for document in documents:
            if isinstance(document, dict) and _is_input(document):
                return relative.as_posix()
    return None


def _is_input(document: dict[Any, Any]) -> bool:
    api_version, kind = str(document.get("apiVersion", "")), document.get("kind")
    return any(api_version.startswith(group) and kind == wanted for group, wanted in _INPUT_KINDS)
