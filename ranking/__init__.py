"""The query-time path: text analysis, BM25, features, LambdaMART, the Numba blend core,
the Ranker facade and its bundle, the CLI and the HTTP service."""
