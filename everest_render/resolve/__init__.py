"""Stage 3, resolve: cluster x definition x provider x references -> ResolvedCluster, every default applied."""
