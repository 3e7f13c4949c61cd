"""Stage 2, parse: documents -> typed, frozen model objects; shape errors are collected here."""
