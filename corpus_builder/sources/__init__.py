"""One reader module per movie source. Each exposes `NAME`, `DEFAULT_PATHS` (globs under the
data directory) and `read(paths, skips) -> SourceResult`; `corpus_builder.build` picks them by name."""
