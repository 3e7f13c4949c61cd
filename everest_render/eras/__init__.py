"""Foreign input APIs, each translated into the DatabaseCluster document it means before parse checks it."""
