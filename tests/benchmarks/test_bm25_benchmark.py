"""The BM25 benchmark script at a tiny scale: every library is built and timed on the same
tokens, and the report carries each figure the README quotes. Timings are never asserted."""

from __future__ import annotations

import pytest

from tests.conftest import load_benchmark

LIBS = {"marginrank", "rank_bm25", "bm25s"}
BUILDS = LIBS | {"tantivy (1 thread)"}
TOP = {"marginrank", "bm25s", "bm25s_numba", "tantivy"}


def test_report_has_every_figure_for_every_library() -> None:
    pytest.importorskip("bm25s", reason="bm25s is in the bench extra")
    pytest.importorskip("tantivy", reason="tantivy is in the bench extra")
    bench = load_benchmark("bm25_speed")
    docs, queries = bench.synthetic(3_000, 12)
    assert len(docs) == 3_000 and all(4 <= len(d) <= 16 for d in docs)
    result = bench.compare(docs, queries, rank_bm25_queries=4, other_work_mb=1)
    assert result["documents"] == 3_000 and result["rank_bm25_queries"] == 4
    assert set(result["build"]) == BUILDS
    for name, build in result["build"].items():
        assert build["s"] > 0 and (build["peak_mb"] > 0 or name.startswith("tantivy"))
    tasks = result["per_query_ms"]
    assert set(tasks) == {"score all docs", "top 10, loop", "top 100, loop",
                          "top 10, interleaved", "top 100, interleaved"}
    assert set(tasks["score all docs"]) == LIBS
    for k in (10, 100):
        assert set(tasks[f"top {k}, loop"]) == TOP | {"rank_bm25"}
        assert set(tasks[f"top {k}, interleaved"]) == TOP
    for libs in tasks.values():
        for t in libs.values():
            assert 0 < t["p50"] <= t["p99"] and 0 <= t["cpu_p50"] <= t["cpu_p99"]
    text = bench.table("tiny", result)
    assert text.count("| top 100, interleaved |") == 4 and "marginrank index arrays" in text
    rows = bench.targets({"home_depot": result, "synthetic": result})
    assert len(rows) == 4 and all(row["verdict"] in ("MET", "MISSED") for row in rows)
    assert "bm25s-numba" in rows[1]["target"] and "Tantivy" in rows[3]["target"]


def test_tantivy_finds_what_we_find_on_a_single_rare_term() -> None:
    """Tantivy indexes our tokens as its own terms: a term in exactly one document is found
    there by both (the benchmark times like for like)."""
    pytest.importorskip("tantivy", reason="tantivy is in the bench extra")
    bench = load_benchmark("bm25_speed")
    docs = [["cordless", "drill", "20v"], ["3/4in", "pipe"], ["drill", "bit"]]
    index = bench.tantivy_index(docs)
    hits = index.searcher().search(bench.tantivy_query(index, ["3/4in"]), limit=5).hits
    assert [address.doc for _, address in hits] == [1]
    ours = bench._ours(docs).fields["title"]
    ids, _ = ours.search(bench._ours(docs).vocab.lookup(["3/4in"]), 5)
    assert ids.tolist() == [1]
