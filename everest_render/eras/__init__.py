"""Foreign input APIs: each translates its object into the DatabaseCluster document it means.

Parse consults `FOREIGN_APIS` by ``(apiVersion, kind)`` and nothing else knows an API is
foreign: the translated document then takes the DatabaseCluster path unchanged, so resolve,
render, check and emit never see one. Adding an API is one module (its translator, pure, a
function of the document and the providers' declared names), its schema under ``schemas/``
and one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from everest_render.diagnostics import Diagnostic
from everest_render.eras import openeverest_instance, openeverest_provider
from everest_render.eras.openeverest_provider import ForeignDefinition
from everest_render.load.documents import Document
from everest_render.model import Definition, Provider

# (the foreign document, every provider known, every definition known (for what it declares),
#  the ConfigMaps under clusters/ by (namespace, name)) -> (the DatabaseCluster document or None, problems)
Translator = Callable[
    [Document, Sequence[Provider], Sequence[Definition], Mapping[tuple[str, str], Document]], tuple[Document | None, list[Diagnostic]]
]

FOREIGN_APIS: Mapping[tuple[str, str], Translator] = {
    (openeverest_instance.API_VERSION, openeverest_instance.KIND): openeverest_instance.translate_instance,
}

# Foreign catalogues, read where definitions are (definitions/, providers/) and translated
# before the foreign clusters, which may name them:
# (the foreign document, every provider known, every definition known) -> (what it means or None, problems)
DefinitionTranslator = Callable[[Document, Sequence[Provider], Sequence[Definition]], tuple[ForeignDefinition | None, list[Diagnostic]]]

FOREIGN_DEFINITIONS: Mapping[tuple[str, str], DefinitionTranslator] = {
    (openeverest_provider.API_VERSION, openeverest_provider.KIND): openeverest_provider.translate_provider,
}
