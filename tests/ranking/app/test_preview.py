"""``marginrank preview``: real queries under the current and a new weights file, compared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clv.errors import MarginRankError
from objectives.metrics import ndcg_at_k
from ranking.app.cli import main
from ranking.app.preview import (
    JUDGED_METRICS,
    METRICS,
    format_report,
    ndcg_of,
    preview,
    sample_queries,
    served_evaluation,
)
from ranking.ranker import QUERIES_FILE, Ranker
from tests.ranking.test_concurrency import tiny_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_world(tmp_path_factory)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_bundle_keeps_the_judged_queries(world: Path) -> None:
    stored = json.loads((world / "bundle" / QUERIES_FILE).read_text())["queries"]
    judged = pd.read_csv(world / "judgments.csv")["query"].drop_duplicates().tolist()
    assert stored == judged
    manifest = json.loads((world / "bundle" / "manifest.json").read_text())
    assert QUERIES_FILE in json.dumps(manifest)  # checksummed like every other file
    sample = sample_queries(world / "bundle", None, 10, seed=1)
    assert len(sample) == len(set(sample)) == 10 and set(sample) <= set(judged)
    assert sample == sample_queries(world / "bundle", None, 10, seed=1)


def test_same_file_changes_nothing(world: Path) -> None:
    current = Ranker.load(world / "bundle")
    queries = sample_queries(world / "bundle", None, 12)
    report = preview(current, current, queries)
    assert all(not q.entered and not q.left for q in report.queries)
    for metric in set(METRICS) - set(JUDGED_METRICS):
        assert report.mean("current", metric) == report.mean("new", metric)
    assert "0 of 12" in format_report(report, "a", "b")


def test_margin_push_raises_margin_and_lists_what_moves(world: Path, tmp_path: Path) -> None:
    current = Ranker.load(world / "bundle")
    new = current.variant(write(tmp_path / "push.yaml",
                                "version: 1\nweights: {margin: 3.0}\n"
                                "guardrails: {out_of_stock: hide}\n"))
    judgments = pd.read_csv(world / "judgments.csv", dtype={"product_id": str})
    queries = judgments["query"].drop_duplicates().tolist()
    report = preview(current, new, queries, judgments)
    assert report.mean("new", "margin@10") > report.mean("current", "margin@10")
    assert report.mean("new", "out-of-stock share@10") == 0.0  # hidden
    assert np.isfinite(report.mean("current", "ndcg@10"))
    moved = [q for q in report.queries if q.entered]
    assert moved
    for q in report.queries:
        before = [r.product_id for r in current.search(q.query, k=10)]
        after = [r.product_id for r in new.search(q.query, k=10)]
        assert list(q.entered) == [p for p in after if p not in before]
        assert list(q.left) == [p for p in before if p not in after]
    text = format_report(report, "current.yaml", "push.yaml")
    assert "| margin@10 |" in text and "| ndcg@10 |" in text
    most = min(moved, key=lambda q: (-q.moved, q.query))  # listed first
    assert "Queries that move most" in text and f"+ {most.entered[0]}" in text


def test_relevance_only_zeroes_the_weights_and_keeps_the_guardrails(world: Path,
                                                                   tmp_path: Path) -> None:
    """The served baseline: every business contribution 0, the same lists as a file with zero
    weights and the same guardrails, and the ranker it came from untouched."""
    current = Ranker.load(world / "bundle")
    guardrails = "guardrails: {out_of_stock: hide, business_slots: 4}\n"
    rules = ("segments: {top: {min_clv_quantile: 0.5, weights: {clv: 2.0}}}\n"
             "categories: {'Tools': {weights: {inventory: 2.0}}}\n"
             "experiments: {e: {arms: {a: {share: 0.5, weights: {returns: 2.0}}}}}\n")
    pushed = current.variant(write(tmp_path / "push.yaml", "version: 1\nweights: {margin: 3.0}\n"
                                   + guardrails + rules))
    zero = pushed.variant(write(tmp_path / "zero.yaml", "version: 1\nweights: {margin: 0, "
                                "clv: 0, returns: 0, inventory: 0}\n" + guardrails))
    alone = pushed.relevance_only()
    customers = [None, *map(str, current.customers.ids[:6])]  # segments and arms vary
    moved = 0
    for i, query in enumerate(sample_queries(world / "bundle", None, 12)):
        who = customers[i % len(customers)]
        hits = alone.search(query, customer_id=who, k=10, explain=True)
        assert [h.product_id for h in hits] == [h.product_id for h in zero.search(query, k=10)]
        assert all(v == 0.0 for h in hits for n, v in h.contributions.items() if n != "relevance")
        pushed_ids = [h.product_id for h in pushed.search(query, customer_id=who, k=10)]
        moved += [h.product_id for h in hits] != pushed_ids
    assert moved and pushed.serving.weight_table.any()


def test_served_evaluation_compares_the_weights_with_relevance_alone(world: Path,
                                                                   tmp_path: Path) -> None:
    current = Ranker.load(world / "bundle")
    pushed = current.variant(write(tmp_path / "push.yaml",
                                   "version: 1\nweights: {margin: 3.0}\n"))
    judgments = pd.read_csv(world / "judgments.csv", dtype={"product_id": str})
    result = served_evaluation(pushed, judgments)
    served, judged = result.judged_only, result.judged_share
    queries = judgments["query"].drop_duplicates().tolist()
    report = preview(pushed.relevance_only(), pushed, queries, judgments)
    base, tuned = served.row("LambdaMART"), served.row("tuned blend")
    assert served.n_queries == len(queries) and served.k == 10
    assert base.ndcg == pytest.approx(report.mean("current", "ndcg@10"))
    assert tuned.margin == pytest.approx(report.mean("new", "margin@10"))
    assert tuned.margin > base.margin
    assert tuned.ndcg_diff.mean == pytest.approx(tuned.ndcg - base.ndcg)
    assert set(judged) == {"LambdaMART", "tuned blend"}
    assert judged["tuned blend"] == pytest.approx(report.mean("new", "judged share@10"))
    assert all(0.0 < v <= 1.0 for v in judged.values())
    assert len(tuned.per_query_ndcg) == len(queries)
    assert pushed.relevance_only().config_version.endswith("-relevance-only")
    # condensed: the first 10 judged products of the whole served list, in served order
    first = judgments[judgments["query"] == queries[0]]
    grades = dict(zip(first["product_id"], first["grade"], strict=True))
    served_ids = [h.product_id for h in pushed.search(queries[0], k=pushed.n_candidates)]
    assert result.condensed.row("tuned blend").per_query_ndcg[0] == pytest.approx(
        ndcg_of([p for p in served_ids if p in grades], grades))
    assert result.condensed.row("tuned blend").margin == tuned.margin
    same = served_evaluation(current.relevance_only(), judgments)
    assert same.judged_only.row("tuned blend").ndcg_diff.mean == 0.0
    assert same.condensed.row("tuned blend").ndcg_diff.mean == 0.0


def test_ndcg_of_agrees_with_the_shared_metric() -> None:
    grades = {"a": 3.0, "b": 0.0, "c": 2.0, "d": 1.0}
    served = ["c", "a", "d", "b"]
    assert ndcg_of(served, grades) == pytest.approx(ndcg_at_k(np.array([2.0, 3, 1, 0]), 10))
    assert ndcg_of(["x", "a"], grades) < ndcg_of(["a", "x"], grades)  # unjudged gain nothing
    assert np.isnan(ndcg_of(["a"], {"a": 0.0}))


def test_cli_preview(world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = write(tmp_path / "new.yaml", "version: 1\nweights: {margin: 1.5, returns: 0.5}\n")
    assert main(["preview", "--bundle", str(world / "bundle"), str(new), "--queries", "6"]) == 0
    out = capsys.readouterr().out
    assert "on 6 real queries" in out and "| return rate@10 |" in out
    assert "NDCG@10 needs judgments" in out
    code = main(["preview", "--bundle", str(world / "bundle"), str(new),
                 "--judgments", str(world / "judgments.csv"), "--queries", "5"])
    assert code == 0 and "| ndcg@10 |" in capsys.readouterr().out
    bad = write(tmp_path / "bad.yaml", "version: 1\nweights:\n  marign: 1\n")
    assert main(["preview", "--bundle", str(world / "bundle"), str(bad)]) == 2
    assert "bad.yaml:3: weights.marign" in capsys.readouterr().err


def test_bundle_without_queries_needs_judgments(world: Path, tmp_path: Path) -> None:
    copy = tmp_path / "old"
    shutil.copytree(world / "bundle", copy)
    (copy / QUERIES_FILE).unlink()
    with pytest.raises(MarginRankError, match="pass --judgments"):
        sample_queries(copy, None, 5)


def test_another_inventory_target_is_refused_by_preview_and_validate(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write(tmp_path / "target.yaml", "version: 1\ninventory:\n  target_weeks_of_cover: 4\n")
    for command in (["preview", "--bundle", str(world / "bundle"), str(other)],
                    ["validate-config", str(other), "--bundle", str(world / "bundle")]):
        assert main(command) == 2
        assert "target.yaml:3: inventory.target_weeks_of_cover: is 4 but this bundle's" in (
            capsys.readouterr().err)
    assert main(["validate-config", str(other)]) == 0  # without a bundle, any target is valid
