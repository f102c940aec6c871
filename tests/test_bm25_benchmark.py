"""The BM25 benchmark script at a tiny scale: every library is built and timed on the same
tokens, and the report carries each figure the README quotes. Timings are never asserted."""

from __future__ import annotations

import pytest
from conftest import load_benchmark

LIBS = {"marginrank", "rank_bm25", "bm25s"}


def test_report_has_every_figure_for_every_library() -> None:
    pytest.importorskip("bm25s", reason="bm25s is in the bench extra")
    bench = load_benchmark("bm25_speed")
    docs, queries = bench.synthetic(3_000, 12)
    assert len(docs) == 3_000 and all(4 <= len(d) <= 16 for d in docs)
    result = bench.compare(docs, queries, rank_bm25_queries=4)
    assert result["documents"] == 3_000 and result["rank_bm25_queries"] == 4
    assert set(result["build"]) == LIBS
    for build in result["build"].values():
        assert build["s"] > 0 and build["peak_mb"] > 0
    assert set(result["per_query_ms"]) == {"score all docs", "top 100"}
    for libs in result["per_query_ms"].values():
        assert set(libs) == LIBS
        for t in libs.values():
            assert 0 < t["p50"] <= t["p99"] and 0 <= t["cpu_p50"] <= t["cpu_p99"]
    text = bench.table("tiny", result)
    assert text.count("| top 100 |") == 3 and "marginrank index arrays" in text
