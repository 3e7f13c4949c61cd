"""Stage 6, emit: objects -> the canonical order and YAML bytes -> out/ (atomically) or a stream."""
