"""One path for one query: a search analyzes its text once, reads the compiled plan only (never
the pydantic config), and the declarations the stages share (units, match columns, priors)
exist once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydantic
import pytest

from objectives.config import ConfigError, parse_config
from ranking import _feature_kernels as kernels
from ranking import features, text, units
from ranking.ranker import Ranker
from ranking.text import Analyzer
from tests.ranking.test_concurrency import tiny_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_world(tmp_path_factory)


@pytest.fixture(scope="module")
def ranker(world: Path) -> Ranker:
    return Ranker.load(world / "bundle")


def judged_queries(world: Path) -> list[str]:
    return pd.read_csv(world / "judgments.csv")["query"].drop_duplicates().tolist()


def every_rule_config(ranker: Ranker, query: str, tmp_path: Path) -> Path:
    """A weights file with every part a search resolves: segments, a category rule, an
    experiment, exploration, hidden out-of-stock products, slots, a pin and a bury."""
    category = next(c for c in ranker.catalog.categories if c).split("/")[0]
    pinned, buried = ranker.catalog.product_ids[:2]
    path = tmp_path / "every_rule.yaml"
    path.write_text(
        "version: 1\nweights: {margin: 0.3, returns: 0.1}\n"
        "guardrails: {out_of_stock: hide, business_slots: 1, relevance_tiers: true}\n"
        "segments: {top: {min_clv_quantile: 0.5, weights: {margin: 0.8}}}\n"
        f"categories: {{{category!r}: {{weights: {{inventory: 0.4}}}}}}\n"
        "experiments: {e: {arms: {push: {share: 0.5, weights: {margin: 2.0}}}}}\n"
        "exploration: {share: 0.5, top_k: 3, seed: 4}\n"
        f"pins: {{{query!r}: [{pinned}]}}\nburies: [{buried}]\n")
    return path


def test_a_search_reads_no_pydantic_model(ranker: Ranker, world: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Searches with segments, arms, a category rule, pins, exploration and explain run while
    every pydantic model refuses attribute access: the search reads the compiled plan only.
    The plan recompiled for another stock array (the restock path of the blend) too."""
    queries = judged_queries(world)
    served = ranker.variant(every_rule_config(ranker, queries[0], tmp_path))
    customers = [str(c) for c in ranker.customers.ids[:: max(1, ranker.customers.ids.size // 40)]]
    calls = [(q, c, f"r{i}") for i, (q, c) in enumerate(zip(queries * 3, customers * 3,
                                                            strict=False))]
    expected = [served.search(q, customer_id=c, k=10, explain=True, request_id=r)
                for q, c, r in calls]
    assert served.serving.config.guardrails.out_of_stock == "hide"

    def refuse(self: object, name: str) -> object:
        raise AssertionError(f"a search read pydantic attribute {type(self).__name__}.{name}")

    monkeypatch.setattr(pydantic.BaseModel, "__getattribute__", refuse)
    got = [served.search(q, customer_id=c, k=10, explain=True, request_id=r)
           for q, c, r in calls]
    plan = served.serving.stocked(~ranker.catalog.in_stock)
    monkeypatch.undo()
    assert got == expected
    assert any(r.pinned for results in got for r in results)
    assert {r.arm for results in got for r in results} >= {None, "push"}
    assert plan.hidden.tolist() == ranker.catalog.in_stock.tolist()  # hidden: the stock flipped


def test_a_search_analyzes_its_text_once(ranker: Ranker, world: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """One pass of the analyzer over the text per search, giving both the exact and the
    stemmed tokens (:meth:`Analyzer.with_stems`), however many stages read the query."""
    calls: list[str] = []
    original = Analyzer._runs

    def counting(self: Analyzer, value: str) -> list:
        calls.append(value)
        return original(self, value)

    query = judged_queries(world)[1]
    monkeypatch.setattr(Analyzer, "_runs", counting)
    results = ranker.search(query, k=5)
    assert results and calls == [query]


def test_extract_takes_the_analyzed_query_or_its_text(ranker: Ranker, world: Path) -> None:
    space = ranker.feature_space
    docs = np.arange(min(50, len(ranker.catalog.product_ids)))
    for query in [*judged_queries(world)[:5], '3/4" x 10 ft pipe 60-watt', "zzz", ""]:
        analyzed = space.analyze(query)
        assert analyzed.tokens == tuple(space.analyzer(query))
        assert analyzed.key == " ".join(space.analyzer(query))
        np.testing.assert_array_equal(space.extract(analyzed, docs, ranker.catalog.priors),
                                      space.extract(query, docs, ranker.catalog.priors))


def test_pins_and_queries_take_one_key(ranker: Ranker, tmp_path: Path) -> None:
    """A pin written one way matches the query typed another (case, width, unit spelling):
    both are keyed by the analyzer, the one rule."""
    product = ranker.catalog.product_ids[3]
    path = tmp_path / "pins.yaml"
    path.write_text(f'version: 1\npins: {{"3/4 Inch Pipe": [{product}]}}\n')
    served = ranker.variant(path)
    for typed in ('3/4" pipe', "３/４ in PIPE", "3/4-inch pipe"):
        assert served.search(typed, k=3)[0].product_id == product, typed


def test_pins_are_validated_by_the_rule_they_are_served_by(ranker: Ranker,
                                                          tmp_path: Path) -> None:
    """A file read by the ranker has its pins checked with the analyzer's key, at their line:
    two spellings of one quantity are one query; "3/4" and "3 4" are two (the analyzer keeps
    the fraction), though the bundle-less rule, which drops punctuation, cannot tell them
    apart."""
    a, b = ranker.catalog.product_ids[3:5]
    same = tmp_path / "same.yaml"
    same.write_text(f'version: 1\npins:\n  "3/4 inch pipe": [{a}]\n  \'3/4" pipe\': [{b}]\n')
    with pytest.raises(ConfigError) as err:
        ranker.variant(same)
    assert [(i.line, "is the same query as" in i.message) for i in err.value.issues] == [
        (4, True)]
    distinct = tmp_path / "distinct.yaml"
    distinct.write_text(f'version: 1\npins:\n  "3/4 pipe": [{a}]\n  "3 4 pipe": [{b}]\n')
    with pytest.raises(ConfigError, match="is the same query as"):
        parse_config(distinct.read_text(), source=str(distinct))
    served = ranker.variant(distinct)
    assert served.search("3/4 pipe", k=1)[0].product_id == a
    assert served.search("3 4 pipe", k=1)[0].product_id == b


def test_each_unit_is_declared_once_for_tokens_and_quantities() -> None:
    token_spellings = [s for u in units.UNIT_TABLE for s in (*u.spellings, *u.token_only)]
    quantity_spellings = [s for u in units.UNIT_TABLE
                          for s in (*u.spellings, *u.quantity_only)]
    assert len(token_spellings) == len(set(token_spellings))
    assert len(quantity_spellings) == len(set(quantity_spellings))
    assert text.UNIT_SPELLINGS == units.token_spellings()
    assert all(u.quantity in units.UNITS for u in units.UNIT_TABLE if u.quantity is not None)
    # "ft": its own token for the analyzer, 12 inches as a quantity, from one row
    assert Analyzer()("8 feet") == ["8", "ft", "8ft"]
    assert units.quantities("8 feet") == [(96.0, units.UNITS.index("in"))]


def test_match_columns_are_named_once() -> None:
    assert kernels.FIELD_COLUMNS[:2] == ("bm25", "bm25_stem")
    assert kernels.FIELD_COLUMNS[2:] == kernels.MATCH_COLUMNS
    assert len(kernels.MATCH_COLUMNS) == kernels.N_MATCH == len(set(kernels.MATCH_COLUMNS))
    assert set(features._TITLE_MATCH.values()) <= set(kernels.MATCH_COLUMNS)
    assert len(features.TITLE_TEXT_COLUMNS) == len(set(features.TITLE_TEXT_COLUMNS))
    assert set(features.TITLE_TEXT_COLUMNS) <= set(features.FEATURE_NAMES)


def test_priors_are_declared_once_in_the_order_the_model_reads_them() -> None:
    names = tuple(p.name for p in features.PRIORS)
    assert features.FEATURE_NAMES[-len(names):] == names
    catalog = pd.DataFrame({"product_id": ["a", "b"], "rating": [4.5, np.nan],
                            "review_count": [9.0, 0.0]})
    tx = pd.DataFrame({"product_id": ["b", "b", "a"], "quantity": [2, 1, -1]})
    priors = features.product_priors(catalog, tx)
    assert priors.dtype == np.float32 and priors.shape == (2, len(names))
    by_name = dict(zip(names, priors.T, strict=True))
    np.testing.assert_array_equal(by_name["rating"], np.float32([4.5, np.nan]))
    np.testing.assert_array_equal(by_name["log_reviews"], np.float32(np.log1p([9.0, 0.0])))
    np.testing.assert_array_equal(by_name["log_sales"], np.float32(np.log1p([0.0, 3.0])))
    assert np.isnan(features.product_priors(catalog)[:, names.index("log_sales")]).all()


def test_validate_config_and_the_service_store_check_pins_by_the_bundles_rule(
        world: Path, ranker: Ranker, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``validate-config --bundle`` and the service's validator apply the served pin rule: the
    same two files as above give the same verdicts as :meth:`Ranker.variant`."""
    from ranking.app.cli import main
    from ranking.app.config_store import Validator

    a, b = ranker.catalog.product_ids[3:5]
    same = tmp_path / "same.yaml"
    same.write_text(f'version: 1\npins:\n  "3/4 inch pipe": [{a}]\n  \'3/4" pipe\': [{b}]\n')
    distinct = tmp_path / "distinct.yaml"
    distinct.write_text(f'version: 1\npins:\n  "3/4 pipe": [{a}]\n  "3 4 pipe": [{b}]\n')
    bundle = world / "bundle"
    assert main(["validate-config", str(distinct), "--bundle", str(bundle)]) == 0
    assert "pins: 2" in capsys.readouterr().out
    assert main(["validate-config", str(same), "--bundle", str(bundle)]) == 2
    assert f"{same}:4" in capsys.readouterr().err
    validator = Validator.for_bundle(bundle)
    assert len(validator.validate(distinct.read_text(), str(distinct)).pins) == 2
    with pytest.raises(ConfigError, match="is the same query as"):
        validator.validate(same.read_text(), str(same))
