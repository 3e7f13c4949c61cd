"""Stage 4, render: ResolvedCluster -> native objects, by the provider's templates (data, no Python per engine)."""
