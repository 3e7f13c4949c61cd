"""Stage 1, load: files -> documents, each value with its source file, line and column."""
