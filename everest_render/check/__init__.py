"""Stage 5, check: rendered objects against the CRD schemas the provider targets."""
