"""The query-time path: text analysis, BM25, features, LambdaMART, the Numba blend core,
the Ranker facade and its bundle. The application (CLI, build, service) is :mod:`ranking.app`."""
