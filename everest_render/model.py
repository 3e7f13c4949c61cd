"""Typed values passed between the stages. Frozen: a stage returns new values, never edits old ones."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

# What the read stage gives and the values of a whole run are named here too, where most of
# the package finds them (load/files.py, results.py: a replayed render defines no class here).
from everest_render.load.files import ProviderAssets
from everest_render.results import RepositorySettings

if TYPE_CHECKING:  # only named in annotations: the model loads no stage (nor YAML library)
    from everest_render.load.documents import Document
    from everest_render.resolve.suppliers import ExtensionSupply

RENDERER_LABELS = ("app.kubernetes.io/managed-by", "everest.percona.com/cluster")
MANAGED_BY = "everest-render"


@dataclass(frozen=True, order=True)
class ObjectRef:
    """The identity of a namespaced object: sort key, dict key and error label in one."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


# --- repository settings ---------------------------------------------------------------


@dataclass(frozen=True)
class AddedVersion:
    """One entry of the settings file's ``spec.catalogue.<definition>.<component type>``."""

    definition: str
    component_type: str
    version: CatalogueVersion
    at: tuple[str | int, ...]  # its path in the settings file, for messages


@dataclass(frozen=True)
class ReleasePin:
    """One entry of the settings file's ``spec.operatorReleases``: the operator release a
    provider targets in this repository, instead of its default (the newest it supports)."""

    provider: str
    version: str
    at: tuple[str | int, ...]  # its path in the settings file, for messages


@dataclass(frozen=True)
class GitopsDefaults:
    """The settings file's ``gitops`` section: defaults for every cluster, then per namespace."""

    annotations: Mapping[str, str] = field(default_factory=dict)
    deletion_protection: str | None = None
    keep_volumes: bool | None = None
    namespaces: Mapping[str, GitopsDefaults] = field(default_factory=dict)
    source: str = ""  # the settings file, for explain


@dataclass(frozen=True)
class ExtensionChoice:
    """One entry of the settings file's ``spec.extensions``: an extension turned on (or, with
    ``enabled: false``, kept configured but off) and its settings, checked later against the
    extension's own settings schema."""

    name: str
    enabled: bool
    settings: Mapping[str, Any]
    at: tuple[str | int, ...]  # its path in the settings file, for messages


DEFAULT_SETTINGS = RepositorySettings()


# --- catalogue: definitions and providers ------------------------------------------------


@dataclass(frozen=True)
class CatalogueVersion:
    """One version a component type offers: its image, and whether it is the default."""

    version: str
    image: str
    default: bool
    # Where the entry comes from: for a definition's entry, its `source` (the upstream release
    # file it was taken from); for one the repository's settings file adds, file:line:col there.
    source: str | None = None
    added_by_repository: bool = False


@dataclass(frozen=True)
class ComponentType:
    """A component type of a definition (an engine, a proxy) and the versions it offers."""

    name: str
    versions: tuple[CatalogueVersion, ...]

    def find(self, version: str) -> CatalogueVersion | None:
        return next((v for v in self.versions if v.version == version), None)

    @property
    def default(self) -> CatalogueVersion | None:
        return next((v for v in self.versions if v.default), None)


@dataclass(frozen=True)
class DefinitionComponent:
    """A component a definition's clusters have (engine, proxy, ...) and the types it may take."""

    name: str
    type: str
    allowed_types: tuple[str, ...]
    replicas_from: str | None = None  # without replicas, take this component's


@dataclass(frozen=True)
class TopologyComponent:
    """A component as one topology has it: whether it may be left out, and its defaults."""

    name: str
    optional: bool
    defaults: Mapping[str, Any]


@dataclass(frozen=True)
class Topology:
    """One way a definition lays out its components (replica set, sharded, ...)."""

    name: str
    default: bool
    components: Mapping[str, TopologyComponent]
    config_schema: Mapping[str, Any] | None


@dataclass(frozen=True)
class Bundle:
    """A named set of component versions known to work together (upstream OpenEverest's
    ``Provider.spec.versions``), keyed by component name as upstream keys it."""

    name: str
    default: bool
    components: Mapping[str, str]  # component -> version
    source: str | None = None


@dataclass(frozen=True)
class Definition:
    """A database definition: its component types and versions, components and topologies."""

    name: str
    component_types: Mapping[str, ComponentType]
    components: Mapping[str, DefinitionComponent]
    topologies: Mapping[str, Topology]
    document: Document
    builtin: bool
    # Per operator release (its crVersion), the component types whose catalogue differs in
    # that release (``spec.releases``); resolve/releases.py applies the one in effect.
    releases: Mapping[str, Mapping[str, ComponentType]] = field(default_factory=dict)
    bundles: tuple[Bundle, ...] = ()  # spec.versions, in the order written
    # Per operator release, its own bundles (``spec.releases.<v>.versions``), which replace
    # ``bundles`` while it is in effect (resolve/releases.py).
    release_bundles: Mapping[str, tuple[Bundle, ...]] = field(default_factory=dict)

    def bundle(self, name: str) -> Bundle | None:
        return next((b for b in self.bundles if b.name == name), None)

    @property
    def default_bundle(self) -> Bundle | None:
        return next((b for b in self.bundles if b.default), None)


@dataclass(frozen=True)
class ObjectSchema:
    """A kind a provider renders, and the file (in its folder) holding its strict schema."""

    api_version: str
    kind: str
    schema_file: str


@dataclass(frozen=True)
class OperatorRelease:
    """One operator release a provider supports (``spec.operator`` and ``spec.operator.releases``):
    its version (the crVersion it emits), the strict schema of each kind it renders (by kind),
    the folder its CRDs are vendored in, and whether it is a preview (CRDs from an unreleased
    branch head: never the default, used only when a repository pins it)."""

    version: str
    schemas: Mapping[str, str]  # kind -> schema file, relative to the provider folder
    crds: str  # the folder under crds/<operator>/ holding this release's CRDs
    preview: bool = False


@dataclass(frozen=True)
class InstanceAliases:
    """How an OpenEverest ``core.openeverest.io`` Instance may name a provider, its topologies
    and its topology parameters (``spec.instanceAliases``; read by eras/openeverest_instance.py)."""

    names: tuple[str, ...] = ()
    topologies: Mapping[str, str] = field(default_factory=dict)
    topology_parameters: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # per topology


@dataclass(frozen=True)
class InstanceSchemas:
    """The parameter schemas of an upstream ``core.openeverest.io`` Provider read as this
    provider's catalogue (eras/openeverest_provider.py): an Instance's parameters are checked
    against them, in upstream's names, before they are translated."""

    components: Mapping[str, Mapping[str, Any]]  # component name -> its parameters' schema
    topologies: Mapping[str, Mapping[str, Any]]  # topology (the renderer's name) -> its parameters' schema
    instance: Mapping[str, Any] | None  # spec.parameters / spec.global
    source: str  # the upstream Provider's file, named in messages


@dataclass(frozen=True)
class ChangeMeaning:
    """What a change of one field of a provider's object means for the database
    (``spec.gitops.changes``); ``diff`` lists the destructive ones first. ``path`` is dotted,
    ``[]`` standing for every item of a list (items compared in order)."""

    kind: str
    path: str
    meaning: str  # size | count | identity | toggle | presence | version (commands/guardrails.py)
    what: str  # the field in the user's words, e.g. "engine storage size"


@dataclass(frozen=True)
class DerivedField:
    """A field the templates derive from another (``spec.gitops.derived``), so that ``diff`` can
    say in one line why it moved: ``memory 8G → 32G: size class medium → large``."""

    kind: str
    path: str
    source: str  # the field it follows
    what: str  # the source in the user's words
    classes: str | None  # sizeClass: also name the class each value falls in


@dataclass(frozen=True)
class ProviderGitops:
    """What the GitOps guardrails need to know of a provider's objects (``spec.gitops``)."""

    volume_finalizers: tuple[str, ...] = ()  # finalizers whose operator deletes the volumes
    changes: tuple[ChangeMeaning, ...] = ()
    derived: tuple[DerivedField, ...] = ()


class TemplateSource(Protocol):
    """What runs templates and owns schemas: a provider or an extension (both data folders)."""

    @property
    def name(self) -> str: ...
    @property
    def folder(self) -> str: ...
    @property
    def assets(self) -> ProviderAssets: ...
    @property
    def objects(self) -> tuple[ObjectSchema, ...]: ...
    @property
    def templates(self) -> tuple[str, ...]: ...
    @property
    def document(self) -> Document: ...
    @property
    def builtin(self) -> bool: ...


@dataclass(frozen=True)
class Provider:
    """A provider: the operator it renders for, its templates and the objects they make."""

    name: str
    definition: str
    operator_name: str
    operator_version: str
    templates: tuple[str, ...]
    objects: tuple[ObjectSchema, ...]
    expose: Mapping[str, tuple[str, ...]]  # per topology, candidates in order
    max_name_length: int
    max_backup_storages: int | None
    secrets: tuple[Mapping[str, Any], ...]  # the Secrets a cluster needs (docs, explain)
    checks: tuple[Mapping[str, str], ...]  # operator rules checked before rendering ({require, message, at})
    kind_order: tuple[str, ...]  # its own kinds' place in the output, after the API kinds
    instance_aliases: InstanceAliases
    gitops: ProviderGitops
    folder: str  # relative to its root, for messages
    assets: ProviderAssets
    document: Document
    builtin: bool
    # Every release it supports, its own (spec.operator.version) first; ``operator_version`` and
    # ``objects`` are those of the release in effect, and ``release_origin`` says why it is.
    releases: tuple[OperatorRelease, ...] = ()
    release_origin: str = "its only operator release"
    # Set when an upstream core.openeverest.io Provider is this provider's catalogue.
    instance_schemas: InstanceSchemas | None = None


# --- extensions: objects around the clusters they select ------------------------------------


@dataclass(frozen=True)
class LabelRequirement:
    """One ``matchExpressions`` entry of a label selector, as Kubernetes reads it."""

    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()

    def holds(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        inside = self.key in labels and labels[self.key] in self.values
        return inside if self.operator == "In" else not inside


@dataclass(frozen=True)
class ExtensionSelection:
    """Which clusters an extension applies to (``spec.select``); an empty list selects all."""

    namespaces: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[LabelRequirement, ...] = ()

    def why_not(self, namespace: str, provider: str, labels: Mapping[str, str]) -> str | None:
        """None when a cluster is selected, else the reason it is not (explain shows it)."""
        if self.namespaces and namespace not in self.namespaces:
            return f"namespace {namespace} is not one of {', '.join(self.namespaces)}"
        if self.providers and provider not in self.providers:
            return f"provider {provider} is not one of {', '.join(self.providers)}"
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return f"label {key}={value} is not on the cluster"
        for requirement in self.match_expressions:
            if not requirement.holds(labels):
                return f"label selector {requirement.key} {requirement.operator} {list(requirement.values)} does not hold"
        return None


@dataclass(frozen=True)
class ExtensionTemplate:
    """One template of an extension."""

    file: str
    # A shared template renders objects of the namespace, not of one cluster (one BackupStorage's
    # credentials): rendered for every selected cluster, identical results kept once, in
    # out/<namespace>/_extensions.yaml.
    shared: bool = False


@dataclass(frozen=True)
class Extension:
    """An extension folder (``extensions/<name>/extension.yaml``, templates, schemas): objects
    rendered around every cluster it selects, never a provider's own objects."""

    name: str
    description: str
    order: int  # extensions apply by (order, name)
    selection: ExtensionSelection
    settings_schema: Mapping[str, Any]
    template_files: tuple[ExtensionTemplate, ...]
    objects: tuple[ObjectSchema, ...]
    folder: str
    assets: ProviderAssets
    document: Document
    builtin: bool

    @property
    def templates(self) -> tuple[str, ...]:
        return tuple(t.file for t in self.template_files)


@dataclass(frozen=True)
class AppliedExtension:
    """An enabled extension with the repository's settings, validated, defaults filled in."""

    extension: Extension
    settings: Mapping[str, Any]


# --- clusters --------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseCluster:
    """One DatabaseCluster document, its spec checked against the input schema."""

    ref: ObjectRef
    labels: Mapping[str, str]
    spec: Mapping[str, Any]  # schema-validated input, read by resolve
    document: Document
    # Values the schema refused, already reported and left out of ``spec`` so that resolve still
    # reports the cluster's other problems; resolve stays quiet at and around these paths.
    refused: tuple[tuple[str | int, ...], ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    # Which versions a cluster naming no bundle runs: False, each type's catalogue default
    # (everest); True, the definition's default bundle first (an upstream Instance, as
    # upstream's PrepareForSync does). Set by parse for a translated Instance.
    default_bundle: bool = False


# Each endpoint URL's parts, by its text (`BackupStorage.endpoint_parts`: a fleet's clusters
# share a few storages, each asked once per cluster rendered).
_ENDPOINT_PARTS: dict[str, tuple[str | None, str | None, str]] = {}


@dataclass(frozen=True)
class BackupStorage:
    """Where backups go (everest.percona.com/v1alpha1 BackupStorage), read from clusters/."""

    ref: ObjectRef
    type: str  # s3 | azure
    bucket: str
    region: str | None
    endpoint_url: str | None
    verify_tls: bool
    force_path_style: bool
    credentials_secret_name: str
    document: Document

    @property
    def endpoint_parts(self) -> tuple[str | None, str | None, str]:
        """``endpointURL`` as (scheme or None, host[:port], path): a scheme is optional."""
        if not self.endpoint_url:
            return None, None, ""
        known = _ENDPOINT_PARTS.get(self.endpoint_url)
        if known is None:
            from urllib.parse import urlsplit

            written = self.endpoint_url if "://" in self.endpoint_url else "//" + self.endpoint_url
            parts = urlsplit(written)
            known = (parts.scheme or None, parts.netloc, parts.path)
            if len(_ENDPOINT_PARTS) >= 10_000:
                _ENDPOINT_PARTS.clear()
            _ENDPOINT_PARTS[self.endpoint_url] = known
        return known


@dataclass(frozen=True)
class MonitoringConfig:
    """A PMM server (everest.percona.com/v1alpha1 MonitoringConfig), read from clusters/."""

    ref: ObjectRef
    url: str
    image: str | None
    credentials_secret_name: str
    verify_tls: bool
    document: Document

    @property
    def server_host(self) -> str:
        """everest's serverHost: the URL's host name, scheme and port dropped."""
        from urllib.parse import urlsplit

        return urlsplit(self.url).hostname or ""


@dataclass(frozen=True)
class PassthroughObject:
    """A non-everest object under clusters/ that goes to out/<namespace>/ as it is."""

    namespace: str
    document: Document
    encrypted: bool  # a SOPS file: copied byte for byte


# --- resolution ------------------------------------------------------------------------


@dataclass(frozen=True)
class AppliedDefault:
    """A value the user did not write, and where it came from (shown by `explain`)."""

    path: str
    value: Any
    origin: str


@dataclass(frozen=True)
class Expose:
    """How a component is reached from outside the cluster."""

    type: str  # ClusterIP | LoadBalancer | NodePort
    source_ranges: tuple[str, ...]
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class ResolvedComponent:
    """One component of a cluster with every default and catalogue choice applied."""

    name: str
    type: str
    version: str
    image: str
    replicas: int | None
    resources: Mapping[str, Any] | None
    storage: Mapping[str, Any] | None
    config: str | None
    affinity: Mapping[str, Any] | None
    expose: Expose | None
    settings: Mapping[str, Any] = field(default_factory=dict)  # other instance fields, as written


@dataclass(frozen=True)
class ResolvedSchedule:
    """One backup schedule as the templates see it."""

    name: str
    schedule: str
    retention_copies: int | None
    storage: str


@dataclass(frozen=True)
class ResolvedPitr:
    """Point-in-time recovery as the templates see it."""

    enabled: bool
    storage: str | None
    upload_interval_sec: int | None


@dataclass(frozen=True)
class ResolvedBackup:
    """Backups as the templates see them: enabled schedules only, and the storages they use."""

    path_prefix: str
    storages: Mapping[str, BackupStorage]  # in order of first use: enabled schedules, then PITR
    schedules: tuple[ResolvedSchedule, ...]
    pitr: ResolvedPitr | None
    disabled_schedules: tuple[ResolvedSchedule, ...] = ()  # checked, never rendered; explain shows them


@dataclass(frozen=True)
class ResolvedMonitoring:
    """Monitoring as the templates see it: the configuration and the agent image."""

    config: MonitoringConfig
    image: str


@dataclass(frozen=True)
class ResolvedVersion:
    """The version and image a component type runs."""

    type: str
    version: str
    image: str


@dataclass(frozen=True)
class ResolvedBundle:
    """The version bundle a cluster runs, and where it was named."""

    name: str
    origin: str  # where it was named: spec.components.bundle, or the definition's default


@dataclass(frozen=True)
class GitopsControls:
    """What a cluster's objects carry for Argo CD and Flux, and where each choice came from
    (resolve/gitops.py decides it; explain shows it)."""

    annotations: Mapping[str, str]  # copied onto every rendered object, protection merged in
    deletion_protection: str  # none | confirm | strict
    keep_volumes: bool  # drop the provider's volume-deleting finalizers
    origins: Mapping[str, str]  # deletionProtection / keepVolumes -> where it was set
    substitution_opt_in: bool  # kustomize.toolkit.fluxcd.io/substitute written by the user


NO_CONTROLS = GitopsControls({}, "none", False, {"deletionProtection": "default", "keepVolumes": "default"}, False)


@dataclass(frozen=True)
class ResolvedCluster:
    """A cluster with everything resolved that its provider's templates read."""

    cluster: DatabaseCluster
    provider: Provider
    definition: Definition
    topology: str
    topology_config: Mapping[str, Any]
    components: Mapping[str, ResolvedComponent]
    versions: Mapping[str, ResolvedVersion]
    pinned: tuple[str, ...]  # the component types whose version spec.components.versions pins, sorted
    secrets_name: str
    paused: bool
    allow_unsafe_configuration: bool
    cr_version: str
    labels: Mapping[str, str]  # renderer labels first, then the cluster's own
    backup: ResolvedBackup
    monitoring: ResolvedMonitoring | None
    defaults: tuple[AppliedDefault, ...]
    settings: RepositorySettings = DEFAULT_SETTINGS  # the repository's, for resolve and render
    gitops: GitopsControls = field(default_factory=lambda: NO_CONTROLS)
    bundle: ResolvedBundle | None = None  # the version bundle in effect, if any
    # The enabled extensions that apply to this cluster, in order, and those that do not, with why.
    extensions: tuple[AppliedExtension, ...] = ()
    extensions_skipped: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> ObjectRef:
        return self.cluster.ref


@dataclass(frozen=True)
class TextMarks:
    """Which of the characters two checks look for first an object's text holds: most objects
    hold none, which a search of one text in C says before either walks the object's keys and
    strings in Python. The text is the object's canonical YAML when it is written first (the
    emit takes it: `RenderedObject.text`), else its JSON. Neither writer escapes any of these
    characters, both write every key and string, and no key or string of them continues across
    a line break ("://" cannot span one); a value neither can write may hold any of them."""

    dollar: bool  # "$": Flux could substitute in it (render/postprocess.py)
    url: bool  # "://" and "@": a URL could carry credentials (check/core.py)

    @staticmethod
    def of(value: Any) -> TextMarks:
        try:
            text = _JSON.encode(value)
        except (TypeError, ValueError, RecursionError):
            return _MARKS[True, True]
        return TextMarks.in_text(text)

    @staticmethod
    def in_text(text: str) -> TextMarks:
        return _MARKS["$" in text, "://" in text and "@" in text]


_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False)
_MARKS = {(dollar, url): TextMarks(dollar, url) for dollar in (False, True) for url in (False, True)}


@dataclass(frozen=True)
class RenderedObject:
    """A native object and where it came from; provenance stays beside the object."""

    obj: Mapping[str, Any]
    cluster: ObjectRef
    template: str
    extension: str | None = None  # the extension that rendered it; None: the cluster's provider
    shared: bool = False  # an extension's namespace object (out/<namespace>/_extensions.yaml)

    def with_obj(self, obj: Mapping[str, Any]) -> RenderedObject:
        """This object's provenance around ``obj`` (post-processing's steps: built directly,
        as `dataclasses.replace` looks every field up anew on each call)."""
        return RenderedObject(obj, self.cluster, self.template, self.extension, self.shared)

    @functools.cached_property
    def text(self) -> str:
        """``obj`` as its file holds it (emit/yaml_text.py), written once: for the marks, on
        first use (the Flux guard's, then the URL check's), and then for the file, which
        forgets it (emit/output.py: the object is what is kept, and sent between processes)."""
        from everest_render.emit.yaml_text import dump_document

        return dump_document(self.obj)

    @functools.cached_property
    def marks(self) -> TextMarks:
        """Of ``obj``'s text (`TextMarks`)."""
        try:
            text = self.text
        except (TypeError, ValueError, RecursionError):
            return TextMarks.of(self.obj)  # not YAML the emit can write: the emit says so
        return TextMarks.in_text(text)


@dataclass(frozen=True, slots=True)
class EmittedObject:
    """A rendered object once its bytes are in its file: what the checks across clusters (an
    identity rendered twice) and the incremental render need of it. A large fleet's objects
    would be most of its memory held to the end; these are a few strings each (slots: no
    dictionary, 40 bytes less each; its template's name one copy, `pipeline.emitted_objects`)."""

    identity: tuple[str, str, str, str]  # (group, kind, namespace, name), as check.core.identity
    cluster: ObjectRef
    template: str
    shared: bool = False


@dataclass(frozen=True)
class SharedObject:
    """An extension's shared object (its namespace's ``_extensions.yaml``) once rendered and
    checked: what a render keeps of it to the end, when one of each identity is kept for the
    namespace (the first cluster's, by name) and written. ``text``, its document as written
    (emit/yaml_text.py), stands for the object: the clusters of a namespace render one shared
    object when they write the same bytes for it. Kept as its mappings, a fleet's shared objects
    (one or two a cluster) were a fifth of what a large render added to the resolved fleet."""

    identity: tuple[str, str, str, str]  # (group, kind, namespace, name), as check.core.identity
    cluster: ObjectRef
    template: str
    extension: str | None
    text: str
    order: tuple[str, str, int, str, str, str]  # its place in the namespace's file (emit/order.py)
    supplies: tuple[ExtensionSupply, ...] = ()  # the Secret it supplies, if an ExternalSecret
