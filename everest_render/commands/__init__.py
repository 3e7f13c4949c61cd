"""The command-line layer over the pipeline: commands, views, diff and its baselines, the KRM adapter."""
