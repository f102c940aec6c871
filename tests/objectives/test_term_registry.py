"""The term registry: one declaration per term, and everything that names the terms follows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clv.errors import DataError
from objectives.catalog import NUMERIC_RANGES, validate_catalog
from objectives.config import (
    DEFAULT_CONFIG_TEXT,
    ConfigError,
    TermWeights,
    parse_config,
)
from objectives.term_registry import TERM_COLUMNS, TERM_NAMES, TERMS, contributions_header
from objectives.terms import compute_terms
from ranking import bundle, features
from ranking.app.cli import format_results
from ranking.ranker import Catalog, SearchResult


def test_names_schema_and_defaults_come_from_the_declarations() -> None:
    assert TERM_NAMES == tuple(t.name for t in TERMS)
    assert len(set(TERM_NAMES)) == len(TERM_NAMES)
    assert tuple(TermWeights.model_fields) == TERM_NAMES
    defaults = parse_config(DEFAULT_CONFIG_TEXT)
    np.testing.assert_array_equal(defaults.weight_vector(), [t.default_weight for t in TERMS])
    for t in TERMS:  # each term is written in the default file with its doc as the comment
        assert any(line.strip().startswith(f"{t.name}:") and line.endswith(f"# {t.doc}")
                   for line in DEFAULT_CONFIG_TEXT.splitlines()), t.name


def test_the_generated_schema_keeps_file_line_key_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("version: 1\nweights:\n  marign: 0.3\n  clv: -1\n", source="w.yaml")
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("w.yaml:3: weights.marign: unknown key 'marign'")
    assert "did you mean 'margin'" in lines[0]
    assert lines[1].startswith("w.yaml:4: weights.clv:")
    with pytest.raises(ConfigError, match=r"w.yaml:3: weights.margin:"):
        parse_config("version: 1\nweights:\n  margin: '0.3'\n", source="w.yaml")


def test_every_term_column_is_an_optional_catalog_column_counted_when_missing() -> None:
    for column, bounds in TERM_COLUMNS.items():
        assert NUMERIC_RANGES[column] == bounds
    frame = pd.DataFrame({"product_id": ["a", "b"], "title": ["x", "y"]})
    out, report = validate_catalog(frame)
    for column in TERM_COLUMNS:
        assert out[column].isna().all() and report.missing[column] == 2
    terms = compute_terms(out)
    assert terms.names == TERM_NAMES and terms.values.shape == (2, len(TERM_NAMES))
    assert not terms.values.any()  # every term is neutral without its inputs
    assert terms.missing == {name: 2 for name in TERM_NAMES}


def test_the_cli_header_names_every_term() -> None:
    result = SearchResult(rank=1, product_id="p", title="t", score=1.0, pinned=False,
                          contributions={"relevance": 1.0, **{n: 0.0 for n in TERM_NAMES}})
    text = format_results([result], explain=True)
    assert "contributions: " + contributions_header() in text
    assert contributions_header() == ", ".join(("relevance", *TERM_NAMES))


def test_a_bundle_with_other_terms_is_refused_with_a_bundle_error(tmp_path: Path) -> None:
    """Chosen behaviour for bundles built before a term was added: refuse, naming the file and
    both term lists (rebuilding recomputes every term; guessing a neutral column would serve
    a bundle whose tuned weights never saw the new term)."""
    n = 3
    catalog = Catalog(["a", "b", "c"], ["x", "y", "z"], ["", "", ""],
                      np.zeros((n, len(TERM_NAMES)), np.float32), np.ones(n, bool),
                      np.full((n, len(features.PRIORS)), np.nan, np.float32))
    catalog.save(tmp_path)
    assert Catalog.load(tmp_path).terms.shape == (n, len(TERM_NAMES))
    with np.load(tmp_path / "products.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["terms"] = arrays["terms"][:, :-1]
    arrays["term_names"] = np.array(TERM_NAMES[:-1])
    np.savez(tmp_path / "products.npz", **arrays)
    with pytest.raises(bundle.BundleError, match=r"products\.npz: term names .* differ from "
                                                 r"this version's"):
        Catalog.load(tmp_path)


def test_delivery_speed_fewer_days_is_better_and_missing_is_neutral() -> None:
    frame = pd.DataFrame({"product_id": list("abcde"), "title": list("abcde"),
                          "lead_time_days": [1, 2, 5, 10, None]})
    out, report = validate_catalog(frame, source="catalog.csv")
    assert report.missing["lead_time_days"] == 1
    terms = compute_terms(out)
    speed = terms.values[:, TERM_NAMES.index("delivery_speed")]
    assert np.all(np.diff(speed[:4]) < 0)  # more days, lower term
    assert speed[4] == 0.0 and terms.missing["delivery_speed"] == 1  # neutral, and counted
    assert "delivery_speed: 1" in terms.summary()
    cfg = parse_config("version: 1\nweights:\n  delivery_speed: 0.5\n")
    scores = terms.values @ cfg.weight_vector()
    known = [row for row in np.argsort(-scores, kind="stable") if row != 4]
    assert known == [0, 1, 2, 3]  # a positive weight promotes fast delivery
    assert scores[1] > scores[4] > scores[2]  # unknown lead time: neutral, at the median (3.5)
    with pytest.raises(DataError, match="catalog.csv.*lead_time_days"):
        validate_catalog(frame.assign(lead_time_days=[1, -2, 5, 10, None]), source="catalog.csv")
