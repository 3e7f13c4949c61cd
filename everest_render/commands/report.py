"""What a command tells people and CI about a run, besides its data: the summary line and
GitHub Actions workflow annotations. Pure text; the command line decides where it goes.

The formats are contract (docs/api.md, "Summary line" and "GitHub Actions annotations"):

    everest-render: 3 clusters rendered; 2 files written, 1 unchanged, 0 removed
    everest-render: 2 errors in 1 file, 1 warning; nothing written
    ::error file=clusters/shop/orders.yaml,line=9,col=24,title=everest-render::0 is less than ...
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from everest_render.diagnostics import Diagnostic, format_path

PROGRAM = "everest-render"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@dataclass(frozen=True)
class Tally:
    """The problems of a run: errors, the distinct files they are in, and warnings."""

    errors: int
    error_files: int
    warnings: int

    @classmethod
    def of(cls, diagnostics: Iterable[Diagnostic], unlocated_errors: int = 0) -> Tally:
        listed = list(diagnostics)
        errors = [d for d in listed if d.is_error]
        return cls(len(errors) + unlocated_errors, len({d.file for d in errors}), len(listed) - len(errors))

    def verdict(self, success: str) -> str:
        """``3 clusters rendered`` or ``2 errors in 1 file``, then the warnings if any."""
        if self.errors:
            text = plural(self.errors, "error") + (f" in {plural(self.error_files, 'file')}" if self.error_files else "")
        else:
            text = success
        return text + (f", {plural(self.warnings, 'warning')}" if self.warnings else "")


def failure_summary(tally: Tally) -> str:
    return f"{PROGRAM}: {tally.verdict('')}; nothing written"


def render_summary(clusters: int, tally: Tally, written: int, unchanged: int, removed: int) -> str:
    files = f"{plural(written, 'file')} written, {unchanged} unchanged, {removed} removed"
    return f"{PROGRAM}: {tally.verdict(plural(clusters, 'cluster') + ' rendered')}; {files}"


def check_summary(clusters: int, tally: Tally, current: int, changes: Sequence[str]) -> str:
    """``changes`` are --check's lines (``stale: out/...``); none means out/ is up to date."""
    verdict = tally.verdict(plural(clusters, "cluster") + " checked")
    if not changes:
        return f"{PROGRAM}: {verdict}; {plural(current, 'file')} up to date"
    counts = {status: sum(1 for c in changes if c.startswith(status + ":")) for status in ("stale", "missing", "extra")}
    files = f"{plural(counts['stale'], 'file')} stale, {counts['missing']} missing, {counts['extra']} extra"
    return f"{PROGRAM}: {verdict}; {files}: run {PROGRAM} render"


def validate_summary(clusters: int, tally: Tally) -> str:
    return f"{PROGRAM}: {tally.verdict(plural(clusters, 'cluster') + ' valid')}; nothing written"


# --- GitHub Actions workflow commands ----------------------------------------------------
# https://docs.github.com/actions/reference/workflow-commands-for-github-actions: the message
# ("data") escapes %, CR and LF; property values also escape ":" and ",", which would
# otherwise end the value.


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(error: bool, message: str, file: str | None = None, line: int | None = None, column: int | None = None) -> str:
    """One ``::error``/``::warning`` command; ``file`` relative to the workspace root."""
    properties = []
    if file is not None:
        properties.append(f"file={escape_property(file)}")
        if line is not None:
            properties.append(f"line={line}")
        if column is not None:
            properties.append(f"col={column}")
    properties.append(f"title={escape_property(PROGRAM)}")
    return f"::{'error' if error else 'warning'} {','.join(properties)}::{escape_data(message)}"


def diagnostic_annotation(diagnostic: Diagnostic, file: str | None) -> str:
    """The annotation of one diagnostic: its position as properties, its message (and object
    path) as the text. ``file`` is None for a file the workspace does not hold (a built-in)."""
    if file is None:
        return annotation(diagnostic.is_error, str(diagnostic))
    where = f" (at {format_path(diagnostic.path)})" if diagnostic.path else ""
    return annotation(diagnostic.is_error, diagnostic.message + where, file, diagnostic.line, diagnostic.column)
