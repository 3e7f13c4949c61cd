"""The render cache: what a cluster rendered to, kept between runs, keyed by its content.

`entries` is pure: the key of a resolved cluster (everything its render depends on, the
renderer's own files included) and the encoding of what rendering it gave. `store` is the
one place that touches the cache folder. A run without a cache, or with an empty one, gives
exactly the same output and diagnostics; a cache only saves work (docs/api.md, "Cache").
"""
