"""What every foreign input's translation shares: the document it writes, and where each of its
paths came from, so a problem found after translation points at the field the user wrote."""

from __future__ import annotations

from typing import Any

from everest_render.diagnostics import Diagnostic, ObjectPath
from everest_render.load.documents import DeferredPositions, Document, Positions


class Translation:
    """The working state of translating one foreign document: the output, its origins, the problems."""

    def __init__(self, document: Document) -> None:
        self.doc = document
        self.problems: list[Diagnostic] = []
        self.out: dict[str, Any] = {}
        # translated path -> foreign path, recorded by put for every path it writes
        self.origins: dict[ObjectPath, ObjectPath] = {}

    def put(self, target: ObjectPath, value: Any, source: ObjectPath) -> Any:
        """Write ``value`` at ``target`` (parents are mappings made on the way, or a list it
        appends to) and record that it came from ``source``."""
        parent: Any = self.out
        for part in target[:-1]:
            parent = parent.setdefault(part, {}) if isinstance(parent, dict) else parent[part]
        if isinstance(parent, list):
            parent.append(value)
        else:
            parent[target[-1]] = value
        self.origins[target] = source
        return value

    def translated(self, data: Any) -> Document:
        """``data`` as a document of the foreign one's file, each path at the position of the
        field it came from."""
        return Document(self.doc.source, self.doc.index, data, TranslatedPositions(self.doc.positions, data, self.origins))


class TranslatedPositions(DeferredPositions):
    """A translated document's positions: each of its paths at the position, in the foreign
    document, of the path it came from (found when first asked for, as a loaded document's are)."""

    def __init__(self, foreign: Positions, data: Any, origins: dict[ObjectPath, ObjectPath]) -> None:
        super().__init__(origins)
        self.foreign, self.data = foreign, data

    def find(self) -> Positions:
        source = self.foreign
        positions = Positions(origins=self.origins)

        def walk(node: Any, path: ObjectPath) -> None:
            origin = positions.written(path)
            positions.values[path] = source.value(origin)
            if origin in source.keys:
                positions.keys[path] = source.keys[origin]
            if isinstance(node, dict):
                for key, value in node.items():
                    walk(value, (*path, key))
            elif isinstance(node, list):
                for index, value in enumerate(node):
                    walk(value, (*path, index))

        walk(self.data, ())
        return positions
