"""Stage 2, parse (extensions): ``extensions/<name>/extension.yaml`` -> `Extension`.

The manifest is checked against schemas/Extension.yaml; then what a schema cannot say: the
name is the folder's, every listed template and schema is in the folder, the settings schema
is a JSON Schema, and the folder's assets are sound (the checks providers' assets get).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from everest_render.diagnostics import Diagnostic
from everest_render.load.documents import load_documents
from everest_render.load.files import ExtensionFolder
from everest_render.model import Extension, ExtensionSelection, ExtensionTemplate, LabelRequirement, ObjectSchema
from everest_render.parse.inputs import check_against_schema
from everest_render.schema_check import compile_schema

API_VERSION = "everest-render/v1alpha1"
KIND = "Extension"


# An extension folder parsed: the extension (None if it could not be read) and its problems.
ParsedExtension = tuple[Extension | None, list[Diagnostic]]


def parse_extensions(
    folders: Iterable[ExtensionFolder], parsed: Mapping[str, ParsedExtension] | None = None
) -> tuple[list[Extension], list[Diagnostic]]:
    """``parsed``: folders parsed before (the built-ins, pipeline.parse_builtins), by folder."""
    extensions: list[Extension] = []
    problems: list[Diagnostic] = []
    for folder in folders:
        known = parsed.get(folder.folder) if parsed is not None else None
        extension, found = known if known is not None else parse_extension(folder)
        problems.extend(found)
        if extension is not None and not found:
            extensions.append(extension)
    return extensions, problems


def parse_extension(folder: ExtensionFolder) -> tuple[Extension | None, list[Diagnostic]]:
    documents, problems = load_documents([folder.manifest])
    if problems:
        return None, list(problems)
    path = folder.manifest.path
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        return None, [Diagnostic(path, 1, 1, f"an extension manifest holds one document: apiVersion: {API_VERSION}, kind: {KIND}")]
    document = documents[0]
    problems = check_against_schema(document, KIND)[0]
    if problems:
        return None, problems
    data = document.data
    spec = data["spec"]
    name = data["metadata"]["name"]
    expected = folder.folder.rsplit("/", 1)[-1]
    if name != expected:
        problems.append(document.at(("metadata", "name"), f"the extension in folder {expected} must be named {expected}"))
    templates = tuple(ExtensionTemplate(t["file"], bool(t.get("shared", False))) for t in spec["templates"])
    for index, template in enumerate(templates):
        if template.file not in folder.assets.templates and template.file not in folder.assets.unreadable:
            problems.append(document.at(("spec", "templates", index, "file"), f"no template {template.file} in {folder.folder}/"))
    objects = tuple(ObjectSchema(o["apiVersion"], o["kind"], o["schema"]) for o in spec["objects"])
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(objects):
        if entry.schema_file not in folder.assets.schemas and entry.schema_file not in folder.assets.unreadable:
            problems.append(document.at(("spec", "objects", index, "schema"), f"no schema {entry.schema_file} in {folder.folder}/"))
        identity = (entry.api_version, entry.kind)
        if identity in seen:
            message = f"{entry.api_version} {entry.kind} is listed twice (first at [{seen[identity]}])"
            problems.append(document.at(("spec", "objects", index), message))
        seen.setdefault(identity, index)
    settings_schema = dict(spec.get("settingsSchema") or {"type": "object", "additionalProperties": False})
    try:
        compile_schema(settings_schema)
    except Exception as error:  # jsonschema-rs raises its own ValidationError or ValueError
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        problems.append(document.at(("spec", "settingsSchema"), f"not a valid JSON Schema: {first}"))
    select = spec.get("select") or {}
    labels = select.get("labelSelector") or {}
    selection = ExtensionSelection(
        tuple(select.get("namespaces", ())),
        tuple(select.get("providers", ())),
        dict(labels.get("matchLabels") or {}),
        tuple(LabelRequirement(e["key"], e["operator"], tuple(e.get("values", ()))) for e in labels.get("matchExpressions", ())),
    )
    for index, requirement in enumerate(selection.match_expressions):
        needs_values = requirement.operator in ("In", "NotIn")
        if needs_values != bool(requirement.values):
            why = "needs values" if needs_values else "takes no values"
            at = ("spec", "select", "labelSelector", "matchExpressions", index)
            problems.append(document.at(at, f"operator {requirement.operator} {why}"))
    extension = Extension(
        name=name,
        description=str(spec.get("description", "")),
        order=int(spec.get("order", 0)),
        selection=selection,
        settings_schema=settings_schema,
        template_files=templates,
        objects=objects,
        folder=folder.folder,
        assets=folder.assets,
        document=document,
        builtin=folder.builtin,
    )
    if not problems and not folder.builtin:  # built-ins are checked by the test suite, not on every run
        from everest_render.check.provider_assets import asset_problems  # Jinja, for the repository's own

        problems.extend(asset_problems(extension))
    return extension, problems
