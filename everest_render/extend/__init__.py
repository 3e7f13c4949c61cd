"""Extensions: objects rendered around the clusters an extension selects (docs/extensions.md).

The render-time counterpart of OpenEverest's Generic Plugins. An extension is data, like a
provider: a manifest, sandboxed templates that read the documented cluster context plus the
extension's validated settings, and the strict schemas of what it renders. manifest.py parses
folders into `Extension` values, catalog.py turns the settings file's choices into the
extensions in effect, select.py decides which apply to each cluster, render.py renders them.
"""
