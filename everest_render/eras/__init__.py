"""Foreign input APIs: each translates its object into the DatabaseCluster document it means.

Parse consults `FOREIGN_APIS` by ``(apiVersion, kind)`` and nothing else knows an API is
foreign: the translated document then takes the DatabaseCluster path unchanged, so resolve,
render, check and emit never see one. Adding an API is one module (its translator, pure, a
function of the document and the providers' declared names), its schema under ``schemas/``
and one line here. A translator's module is imported when a document of its API is first met:
most repositories hold none, and a run that meets none does not pay for them (the Argo CD
plugin's start-up, issue 12). Each line names the API as its module does (tested).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from everest_render.diagnostics import Diagnostic
from everest_render.load.documents import Document
from everest_render.model import Definition, Provider

if TYPE_CHECKING:
    from everest_render.eras.openeverest_provider import ForeignDefinition

# (the foreign document, every provider known, every definition known (for what it declares),
#  the ConfigMaps under clusters/ by (namespace, name)) -> (the DatabaseCluster document or None, problems)
Translator = Callable[
    [Document, Sequence[Provider], Sequence[Definition], Mapping[tuple[str, str], Document]], tuple[Document | None, list[Diagnostic]]
]


def _imported_on_use(module: str, function: str) -> Any:
    """``everest_render.eras.<module>.<function>``, its module imported at the first call."""

    def translate(*arguments: Any) -> Any:
        return getattr(importlib.import_module(f"{__name__}.{module}"), function)(*arguments)

    return translate


FOREIGN_APIS: Mapping[tuple[str, str], Translator] = {
    ("core.openeverest.io/v1alpha1", "Instance"): _imported_on_use("openeverest_instance", "translate_instance"),
}

# Foreign catalogues, read where definitions are (definitions/, providers/) and translated
# before the foreign clusters, which may name them:
# (the foreign document, every provider known, every definition known) -> (what it means or None, problems)
DefinitionTranslator = Callable[[Document, Sequence[Provider], Sequence[Definition]], tuple["ForeignDefinition | None", list[Diagnostic]]]

FOREIGN_DEFINITIONS: Mapping[tuple[str, str], DefinitionTranslator] = {
    ("core.openeverest.io/v1alpha1", "Provider"): _imported_on_use("openeverest_provider", "translate_provider"),
}
