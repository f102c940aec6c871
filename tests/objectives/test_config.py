"""The merchandiser's weights file: it parses, refuses mistakes with file:line:key messages,
layers overrides as documented and survives a dump/parse round trip."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clv.errors import MarginRankError
from objectives.config import (
    DEFAULT_CONFIG_TEXT,
    TERM_NAMES,
    ConfigError,
    ConfigIssue,
    SegmentRule,
    TermWeights,
    UnknownSegmentError,
    WeightsConfig,
    dump_config,
    load_config,
    parse_config,
    traffic_position,
)

DESIGN_EXAMPLE = """\
version: 1
weights:            # relevance counts 1; each weight is how much one unit of the term is worth
  margin: 0.30
  clv: 0.10
  returns: 0.20
  inventory: 0.15
guardrails:
  max_ndcg_drop: 0.0          # relative NDCG@10 drop the tuner may accept on held-out queries
  out_of_stock: demote        # demote | hide | ignore
  relevance_tiers: false      # true: business terms only reorder within a relevance tier
segments:                     # by customer CLV tier
  top_decile: {min_clv_quantile: 0.9, weights: {margin: 0.10}}
categories:                   # by category path prefix
  "Furniture/Sofas": {weights: {inventory: 0.30}}
pins: {"patio umbrella": ["P123"]}
buries: ["P999"]
"""

LAYERED = """\
version: 1
weights: {margin: 0.3, clv: 0.1, returns: 0.2, inventory: 0.15}
segments:
  gold: {min_clv_quantile: 0.8, weights: {margin: 0.5}}
  vip: {min_clv_quantile: 0.95, weights: {margin: 0.9, clv: 0.4}}
categories:
  Tools: {weights: {inventory: 0.5}}
  Tools/Power: {weights: {inventory: 0.7, returns: 0.0}}
  Tools/Power/Drills: {weights: {clv: 0.05}}
"""

CATALOG = {"P123", "P999"}


def W(*first: float) -> list[float]:  # noqa: N802 - reads like the vectors it stands for
    """A weight vector: the given leading terms, then 0 for the terms declared after them."""
    return [*first, *[0.0] * (len(TERM_NAMES) - len(first))]


def weights_file(*lines: str) -> str:
    """A file whose line 1 is ``version: 1`` and whose line 2 is ``lines[0]``."""
    return "\n".join(("version: 1", *lines)) + "\n"


def issues_of(text: str, **kwargs: object) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="w.yaml", **kwargs)
    return caught.value.issues


def only_issue(text: str, **kwargs: object) -> ConfigIssue:
    issues = issues_of(text, **kwargs)
    assert len(issues) == 1, "\n".join(map(str, issues))
    return issues[0]


# --- the design example --------------------------------------------------------------------


def test_design_example_parses() -> None:
    cfg = parse_config(DESIGN_EXAMPLE, product_ids=CATALOG)
    assert cfg.version == 1
    np.testing.assert_array_equal(cfg.weight_vector(), W(0.30, 0.10, 0.20, 0.15))
    assert cfg.weight_vector().dtype == np.float64
    assert cfg.guardrails.out_of_stock == "demote"
    assert cfg.guardrails.max_ndcg_drop == 0.0
    assert cfg.guardrails.relevance_tiers is False
    assert cfg.segments["top_decile"].min_clv_quantile == 0.9
    assert cfg.segments["top_decile"].weights.overrides() == {"margin": 0.10}
    assert cfg.categories["Furniture/Sofas"].weights.overrides() == {"inventory": 0.30}
    assert cfg.pins == {"patio umbrella": ("P123",)}
    assert cfg.buries == ("P999",)


def test_design_example_parses_without_a_catalog() -> None:
    assert parse_config(DESIGN_EXAMPLE).buries == ("P999",)


def test_default_config_text_parses() -> None:
    cfg = parse_config(DEFAULT_CONFIG_TEXT)
    np.testing.assert_array_equal(cfg.weight_vector(), W(0.3, 0.1, 0.2, 0.1))
    assert cfg.guardrails.out_of_stock == "demote"
    assert not cfg.segments and not cfg.categories and not cfg.pins and not cfg.buries
    assert "#" in DEFAULT_CONFIG_TEXT


def test_term_order() -> None:
    assert TERM_NAMES[:4] == ("margin", "clv", "returns", "inventory")  # new terms append


def test_minimal_file_means_relevance_only() -> None:
    cfg = parse_config("version: 1\n")
    np.testing.assert_array_equal(cfg.weight_vector(), np.zeros(len(TERM_NAMES)))
    assert cfg.guardrails.out_of_stock == "demote"


def test_merge_keys_follow_safe_load() -> None:
    cfg = parse_config(weights_file(
        "segments:",
        "  gold: &gold {min_clv_quantile: 0.8, weights: {margin: 0.5}}",
        "  vip:",
        "    <<: *gold",
        "    min_clv_quantile: 0.95",
    ))
    assert cfg.segments["vip"].min_clv_quantile == 0.95
    assert cfg.segments["vip"].weights.overrides() == {"margin": 0.5}


# --- one mistake, one message at the right place ---------------------------------------------

BAD_FILES = {
    "typo": (weights_file("weights:", "  margin: 0.3", "  marign: 0.1"),
             4, "weights.marign", "unknown key 'marign'; did you mean 'margin'?"),
    "nested typo": (weights_file("segments:", "  gold:", "    min_clv_quantile: 0.8",
                                 "    weights: {margn: 0.1}"),
                    5, "segments.gold.weights.margn", "did you mean 'margin'?"),
    "top-level typo": (weights_file("weight: {margin: 0.3}"),
                       2, "weight", "did you mean 'weights'?"),
    "unknown key without a near match": (weights_file("colour: red"),
                                         2, "colour", "allowed keys: version, weights, "),
    "negative weight": (weights_file("weights:", "  returns: -0.2"),
                        3, "weights.returns", "must be >= 0.0; got -0.2"),
    "nan weight": (weights_file("weights:", "  clv: .nan"),
                   3, "weights.clv", "must be a finite number; got .nan"),
    "inf weight": (weights_file("weights:", "  clv: .inf"),
                   3, "weights.clv", "must be a finite number; got .inf"),
    "-inf weight": (weights_file("weights:", "  clv: -.inf"),
                    3, "weights.clv", "must be a finite number; got -.inf"),
    "string weight": (weights_file("weights:", '  margin: "0.3"'),
                      3, "weights.margin", "must be a number; got '0.3'"),
    "bool weight": (weights_file("weights:", "  margin: true"),
                    3, "weights.margin", "must be a number; got true"),
    # YAML 1.2 (ruamel.yaml): yes/no/on/off are text, not booleans.
    "yes weight": (weights_file("weights:", "  inventory: yes"),
                   3, "weights.inventory", "must be a number; got 'yes'"),
    "empty weight": (weights_file("weights:", "  margin:"),
                     3, "weights.margin", "must be a number; got an empty value"),
    "unknown guardrail value": (weights_file("guardrails:", "  out_of_stock: delete"),
                                3, "guardrails.out_of_stock",
                                "must be one of 'demote', 'hide' or 'ignore'; got 'delete'"),
    "ndcg drop of 1": (weights_file("guardrails: {max_ndcg_drop: 1.0}"),
                       2, "guardrails.max_ndcg_drop", "must be < 1.0"),
    "tiers not a bool": (weights_file("guardrails:", "  relevance_tiers: 1"),
                         3, "guardrails.relevance_tiers", "must be true or false; got 1"),
    "segments as a list": (weights_file("segments: [top_decile]"),
                           2, "segments", "must be a mapping (key: value pairs); got a list"),
    "quantile above 1": (weights_file("segments:", "  top: {min_clv_quantile: 1.5}"),
                         3, "segments.top.min_clv_quantile", "must be <= 1.0; got 1.5"),
    "segment without quantile": (weights_file("segments:", "  top: {weights: {margin: 1}}"),
                                 3, "segments.top.min_clv_quantile",
                                 "required key 'min_clv_quantile' is missing"),
    "segment name with a space": (weights_file("segments:",
                                               '  "top decile": {min_clv_quantile: 0.9}'),
                                  3, 'segments."top decile"',
                                  "must use only letters, digits and underscores"),
    "segment name starting with a digit": (weights_file("segments:",
                                                        '  "9th": {min_clv_quantile: 0.9}'),
                                           3, "segments.9th", "not start with a digit"),
    "segments sharing a quantile": (weights_file("segments:", "  a: {min_clv_quantile: 0.9}",
                                                 "  b: {min_clv_quantile: 0.9}"),
                                    4, "segments.b.min_clv_quantile",
                                    "min_clv_quantile 0.9 is already used by segment 'a'"),
    "empty category component": (weights_file("categories:", '  "Tools//Power": {}'),
                                 3, "categories.Tools//Power", "has an empty component"),
    "same category twice": (weights_file("categories:", "  Tools/Power: {}",
                                         '  "Tools / Power": {}'),
                            4, 'categories."Tools / Power"', "is the same as 'Tools/Power'"),
    "numeric product id": (weights_file("buries: [P123, 4711]"),
                           2, "buries[1]", "must be a string; got 4711 (quote it"),
    "pins not a list": (weights_file("pins: {umbrella: P123}"),
                        2, "pins.umbrella", "must be a list; got 'P123'"),
    "wrong version": ("version: 2\n", 1, "version", "must be 1"),
    "quoted version": ('version: "1"\n', 1, "version", "got '1'"),
    "bool version": ("version: true\n", 1, "version", "got true"),
    "float version": ("version: 1.0\n", 1, "version", "got 1.0"),
    "missing version": ("# weights\nweights:\n  margin: 0.3\n",
                        2, "version", "required key 'version' is missing"),
    "top-level list": ("- version: 1\n", 1, "", "must be a mapping (key: value pairs); got a list"),
    "top-level scalar": ("hello\n", 1, "", "must be a mapping (key: value pairs); got 'hello'"),
    "top-level null": ("~\n", 1, "", "got an empty value"),
    "duplicate key": (weights_file("weights:", "  margin: 0.3", "  clv: 0.1", "  margin: 0.5"),
                      5, "weights.margin", "duplicate key 'margin' (first on line 3)"),
    "duplicate top-level key": ("version: 1\nburies: []\nversion: 1\n",
                                3, "version", "duplicate key 'version' (first on line 1)"),
    "yaml syntax": (weights_file("weights:", "  margin: 0.3", "  clv: : 0.1"),
                    4, "weights.clv", "YAML error: mapping values are not allowed here"),
    "unclosed flow sequence": (weights_file("pins:", "  umbrella: [P123", "buries: []"),
                               4, "pins.umbrella[0]", "YAML error: "),
    "tab indentation": (weights_file("weights:", "  margin: 0.3", "\tclv: 0.1"),
                        4, "weights", "YAML error: found character '\\t'"),
    "impossible date": (weights_file("weights: {margin: 2024-02-30}"),
                        2, "weights.margin", "cannot read value '2024-02-30'"),
    "python tag": (weights_file("weights: !!python/object/apply:os.getcwd []"),
                   2, "weights", "could not determine a constructor"),
}


BAD_EXPERIMENTS = {
    "shares over 1": (weights_file("experiments:", "  e:", "    arms:", "      a: {share: 0.7}",
                                   "      b:", "        share: 0.4"),
                      7, "experiments.e.arms.b.share", "arm shares add up to 1.1 by arm 'b'"),
    "share above 1": (weights_file("experiments: {e: {arms: {a: {share: 1.5}}}}"),
                      2, "experiments.e.arms.a.share", "must be <= 1.0; got 1.5"),
    "negative share": (weights_file("experiments:", "  e:", "    arms:", "      a: {share: -0.1}"),
                       5, "experiments.e.arms.a.share", "must be >= 0.0"),
    "share as text": (weights_file("experiments:", "  e:", "    arms:", "      a:",
                                   '        share: "half"'),
                      6, "experiments.e.arms.a.share", "must be a number; got 'half'"),
    "arm without share": (weights_file("experiments:", "  e:", "    arms:", "      a: {}"),
                          5, "experiments.e.arms.a.share", "required key 'share' is missing"),
    "arm weight typo": (weights_file("experiments:", "  e:", "    arms:",
                                     "      a: {share: 0.5, weights: {marign: 1}}"),
                        5, "experiments.e.arms.a.weights.marign", "did you mean 'margin'?"),
    "arms as a list": (weights_file("experiments:", "  e:", "    arms: [a, b]"),
                       4, "experiments.e.arms", "must be a mapping"),
    "no arms": (weights_file("experiments:", "  e: {arms: {}}"),
                3, "experiments.e.arms", "needs an arm"),
    "two experiments": (weights_file("experiments:", "  e: {arms: {a: {share: 0.1}}}",
                                     "  f: {arms: {a: {share: 0.1}}}"),
                        4, "experiments.f", "only one experiment can run at a time"),
    "arm name with a space": (weights_file("experiments:", '  e: {arms: {"a b": {share: 0.1}}}'),
                              3, 'experiments.e.arms."a b"', "arm name 'a b' must use only"),
    "zero target": (weights_file("inventory:", "  target_weeks_of_cover: 0"),
                    3, "inventory.target_weeks_of_cover", "must be > 0.0; got 0"),
    "nan target": (weights_file("inventory: {target_weeks_of_cover: .nan}"),
                   2, "inventory.target_weeks_of_cover", "must be a finite number"),
    "target typo": (weights_file("inventory:", "  target_weeks: 8"),
                    3, "inventory.target_weeks", "did you mean 'target_weeks_of_cover'?"),
}


ALL_BAD = {**BAD_FILES, **BAD_EXPERIMENTS}


@pytest.mark.parametrize(("text", "line", "key_path", "fragment"), ALL_BAD.values(),
                         ids=ALL_BAD.keys())
def test_bad_file_is_reported_at_its_line_and_key(
    text: str, line: int, key_path: str, fragment: str
) -> None:
    issue = only_issue(text)
    assert (issue.file, issue.line, issue.key_path) == ("w.yaml", line, key_path)
    assert fragment in issue.message
    assert str(issue).startswith(f"w.yaml:{line}: {key_path + ': ' if key_path else ''}")


def test_unknown_pinned_product() -> None:
    issue = only_issue(weights_file("pins:", '  "patio umbrella": [P123, P404]'),
                       product_ids=CATALOG)
    assert (issue.line, issue.key_path) == (3, 'pins."patio umbrella"[1]')
    assert "unknown product 'P404'" in issue.message


def test_unknown_buried_product() -> None:
    issue = only_issue(weights_file("buries:", "  - P999", "  - P404"), product_ids=CATALOG)
    assert (issue.line, issue.key_path) == (4, "buries[1]")
    assert "unknown product 'P404'" in issue.message


def test_every_unknown_product_is_reported() -> None:
    text = weights_file("pins:", "  umbrella: [P1]", "  sofa: [P123, P2]", "buries: [P3]")
    issues = issues_of(text, product_ids=CATALOG)
    assert [(i.line, i.key_path) for i in issues] == [
        (3, "pins.umbrella[0]"), (4, "pins.sofa[1]"), (5, "buries[0]")]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(text: str) -> None:
    issue = only_issue(text)
    assert issue.line == 1
    assert "empty file" in issue.message


def test_python_tags_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = weights_file(f"weights: !!python/object/apply:pathlib.Path.touch [{str(marker)!r}]")
    issues_of(text)
    assert not marker.exists()


# --- all mistakes at once --------------------------------------------------------------------


def test_several_errors_are_all_reported_in_file_order() -> None:
    text = """\
version: 2
weights:
  marign: 0.3
  clv: -1
  returns: .nan
  inventory: true
guardrails: {out_of_stock: delete}
segments:
  gold: {min_clv_quantile: 0.9}
  "top decile": {min_clv_quantile: 0.9}
pins: {umbrella: [P404]}
buries: [P999, P405]
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="w.yaml", product_ids=CATALOG)
    found = [(issue.line, issue.key_path) for issue in caught.value.issues]
    assert found == [
        (1, "version"),
        (3, "weights.marign"),
        (4, "weights.clv"),
        (5, "weights.returns"),
        (6, "weights.inventory"),
        (7, "guardrails.out_of_stock"),
        (10, 'segments."top decile"'),
        (10, 'segments."top decile".min_clv_quantile'),
        (11, "pins.umbrella[0]"),
        (12, "buries[1]"),
    ]
    lines = str(caught.value).splitlines()
    assert lines == [str(issue) for issue in caught.value.issues]
    assert lines[1] == "w.yaml:3: weights.marign: unknown key 'marign'; did you mean 'margin'?"


def test_duplicates_are_reported_with_schema_errors() -> None:
    issues = issues_of(weights_file("weights:", "  clv: 0.1", "  clv: 0.2", "  margin: -1"))
    assert [(i.line, i.key_path) for i in issues] == [(4, "weights.clv"), (5, "weights.margin")]


def test_config_error_is_a_marginrank_error() -> None:
    assert issubclass(ConfigError, MarginRankError)


# --- layering ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def layered() -> WeightsConfig:
    return parse_config(LAYERED)


def test_resolved_without_layers_is_the_defaults(layered: WeightsConfig) -> None:
    np.testing.assert_array_equal(layered.resolved(), W(0.3, 0.1, 0.2, 0.15))
    np.testing.assert_array_equal(layered.resolved(), layered.weight_vector())


def test_segment_replaces_only_the_terms_it_sets(layered: WeightsConfig) -> None:
    np.testing.assert_array_equal(layered.resolved("gold"), W(0.5, 0.1, 0.2, 0.15))
    np.testing.assert_array_equal(layered.resolved("vip"), W(0.9, 0.4, 0.2, 0.15))


def test_category_applies_after_segment(layered: WeightsConfig) -> None:
    # Tools/Power sets inventory and an explicit zero for returns; margin comes from gold.
    np.testing.assert_array_equal(layered.resolved("gold", "Tools/Power/Saws"),
                                  W(0.5, 0.1, 0.0, 0.7))


def test_longest_prefix_wins_and_shorter_ones_do_not_cascade(layered: WeightsConfig) -> None:
    np.testing.assert_array_equal(layered.resolved(None, "Tools/Power/Drills/Cordless"),
                                  W(0.3, 0.05, 0.2, 0.15))
    np.testing.assert_array_equal(layered.resolved(None, "Tools/Hand"), W(0.3, 0.1, 0.2, 0.5))


def test_prefix_matches_whole_components_only(layered: WeightsConfig) -> None:
    np.testing.assert_array_equal(layered.resolved(category="Tools/Powerful"),
                                  W(0.3, 0.1, 0.2, 0.5))
    np.testing.assert_array_equal(layered.resolved(category="Toolset"), layered.weight_vector())


def test_category_rule_for(layered: WeightsConfig) -> None:
    assert layered.category_rule_for("Tools") == "Tools"
    assert layered.category_rule_for("Tools/Power") == "Tools/Power"
    assert layered.category_rule_for(" Tools / Power /Drills") == "Tools/Power/Drills"
    assert layered.category_rule_for("Tools/Powerful/X") == "Tools"
    assert layered.category_rule_for("Garden/Tools") is None
    assert layered.category_rule_for("") is None


def test_resolved_returns_a_fresh_array(layered: WeightsConfig) -> None:
    vector = layered.resolved("gold")
    vector[:] = 99.0
    np.testing.assert_array_equal(layered.resolved("gold"), W(0.5, 0.1, 0.2, 0.15))
    assert layered.resolved().dtype == np.float64


def test_unknown_segment_is_refused(layered: WeightsConfig) -> None:
    with pytest.raises(UnknownSegmentError, match="'platinum'; defined: gold, vip"):
        layered.resolved("platinum")
    assert issubclass(UnknownSegmentError, MarginRankError)
    assert issubclass(UnknownSegmentError, LookupError)


@pytest.mark.parametrize(("q", "segment"), [
    (0.0, None), (0.79, None), (0.8, "gold"), (0.9, "gold"), (0.95, "vip"), (1.0, "vip"),
    (math.nan, None),
])
def test_segment_for_quantile(layered: WeightsConfig, q: float, segment: str | None) -> None:
    assert layered.segment_for_quantile(q) == segment


def test_segment_for_quantile_without_segments() -> None:
    assert parse_config("version: 1\n").segment_for_quantile(0.99) is None


# --- round trip -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [DESIGN_EXAMPLE, LAYERED, DEFAULT_CONFIG_TEXT, "version: 1\n"])
def test_dump_round_trip(text: str) -> None:
    cfg = parse_config(text)
    dumped = dump_config(cfg)
    assert parse_config(dumped) == cfg
    assert dumped.startswith("#") and "comments are not preserved" in dumped.splitlines()[0]
    assert dumped.splitlines()[1] == "version: 1"  # the schema's order, not sorted keys


def test_dump_round_trip_keeps_awkward_strings_and_explicit_zero_overrides() -> None:
    cfg = parse_config(weights_file(
        "segments:",
        "  zero_margin: {min_clv_quantile: 0.5, weights: {margin: 0.0}}",
        "  no_override: {min_clv_quantile: 0.6}",
        'pins: {"yes": ["007"], "null": ["1.5"], "садовый зонт": ["P-1"], "a: b": ["#x"]}',
        'buries: ["true", "~"]',
    ))
    back = parse_config(dump_config(cfg))
    assert back == cfg
    assert back.segments["zero_margin"].weights.overrides() == {"margin": 0.0}
    assert back.segments["no_override"].weights.overrides() == {}
    assert back.pins["yes"] == ("007",)


@settings(max_examples=50, deadline=None)
@given(
    defaults=st.lists(st.floats(0, 1e6), min_size=len(TERM_NAMES), max_size=len(TERM_NAMES)),
    threshold=st.floats(0, 1),
    override=st.dictionaries(st.sampled_from(TERM_NAMES), st.floats(0, 1e6)),
)
def test_dump_round_trip_property(
    defaults: list[float], threshold: float, override: dict[str, float]
) -> None:
    cfg = WeightsConfig(
        version=1,
        weights=TermWeights.from_vector(defaults),
        segments={"s": SegmentRule(min_clv_quantile=threshold, weights=TermWeights(**override))},
    )
    assert parse_config(dump_config(cfg)) == cfg


# --- files --------------------------------------------------------------------------------------


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.yaml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    assert load_config(path, product_ids=CATALOG) == parse_config(DESIGN_EXAMPLE)
    assert load_config(str(path)).buries == ("P999",)


def test_load_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.yaml"
    path.write_text(weights_file("weights:", "  marign: 0.3"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}:3: weights.marign: unknown key 'marign'; did you mean 'margin'?")
    assert caught.value.issues[0].file == str(path)


def test_load_config_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "weights.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + DESIGN_EXAMPLE.encode())
    assert load_config(path).weights.margin == 0.30


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read") as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path))
    assert caught.value.issues[0].line is None


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "weights.yaml"
    path.write_bytes(b"version: 1\nburies: [\xff]\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


# --- immutability and building in code ----------------------------------------------------------


def test_models_are_frozen() -> None:
    cfg = parse_config(DESIGN_EXAMPLE)
    with pytest.raises(ValidationError):
        cfg.weights = TermWeights()  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.weights.margin = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.guardrails.out_of_stock = "hide"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.segments["top_decile"].min_clv_quantile = 0.5  # type: ignore[misc]
    assert isinstance(cfg.buries, tuple)
    assert isinstance(cfg.pins["patio umbrella"], tuple)


def test_term_weights_equality_includes_which_terms_are_set() -> None:
    assert TermWeights(margin=0.0) != TermWeights()
    assert TermWeights(margin=0.5) == TermWeights(margin=0.5)
    assert hash(TermWeights(margin=0.5)) == hash(TermWeights(margin=0.5))


def test_from_vector_inverts_weight_vector() -> None:
    cfg = WeightsConfig(version=1, weights=TermWeights.from_vector(W(0.3, 0.1, 0.2, 0.15)))
    np.testing.assert_array_equal(cfg.weight_vector(), W(0.3, 0.1, 0.2, 0.15))
    with pytest.raises(ValueError, match=f"expected {len(TERM_NAMES)} weights"):
        TermWeights.from_vector([0.1, 0.2])
    with pytest.raises(ValidationError):
        TermWeights.from_vector(W(0.1, 0.2, -1e-12, 0.0))


def test_with_weights_replaces_defaults_and_keeps_the_rest(layered: WeightsConfig) -> None:
    tuned = layered.with_weights(dict(zip(TERM_NAMES, np.array(W(0.4, 0.0, 0.25, 0.1)),
                                          strict=True)))
    np.testing.assert_array_equal(tuned.weight_vector(), W(0.4, 0.0, 0.25, 0.1))
    assert tuned.segments == layered.segments and tuned.categories == layered.categories
    np.testing.assert_array_equal(tuned.resolved("gold"), W(0.5, 0.0, 0.25, 0.1))
    np.testing.assert_array_equal(layered.with_weights({"clv": 0.7}).weight_vector(),
                                  W(0.3, 0.7, 0.2, 0.15))
    assert parse_config(dump_config(tuned)) == tuned
    with pytest.raises(ValidationError):
        layered.with_weights({"margin": -0.1})
    with pytest.raises(ValidationError):
        layered.with_weights({"marign": 0.1})


def test_rules_apply_to_configs_built_in_code() -> None:
    with pytest.raises(ValidationError, match="must use only letters"):
        WeightsConfig(version=1, segments={"top decile": SegmentRule(min_clv_quantile=0.9)})
    with pytest.raises(ValidationError, match="already used"):
        WeightsConfig(version=1, segments={"a": SegmentRule(min_clv_quantile=0.9),
                                           "b": SegmentRule(min_clv_quantile=0.9)})
    with pytest.raises(ValidationError):
        WeightsConfig(version=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "line", "needle"), [
    ('version: 1\npins:\n  "???": [P123]\n', 3, "has no words to match"),
    ('version: 1\npins:\n  "Drill": [P123]\n  "drill!": [P999]\n', 4, "is the same query as"),
    ("version: 1\npins:\n  drill: [P123, P123]\n", 3, "is pinned twice"),
    ("version: 1\npins:\n  drill: [P123]\nburies: [P123]\n", 3, "both pinned and buried"),
])
def test_pin_rules(text: str, line: int, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="w.yaml", product_ids={"P123", "P999"})
    issue = next(i for i in err.value.issues if needle in i.message)
    assert issue.line == line


def test_unhashable_pin_and_bury_entries_are_schema_errors_not_crashes() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config('version: 1\npins: {"x": [[1]]}\nburies: [{}, P123]\n', source="w.yaml")
    assert all(issue.line in (2, 3) for issue in err.value.issues)


def test_tuned_scales_rules_with_the_defaults() -> None:
    cfg = parse_config("version: 1\nweights: {margin: 0.4, clv: 0.1}\n"
                       "segments: {top: {min_clv_quantile: 0.9, weights: {clv: 0.2}}}\n"
                       "categories: {\"A/B\": {weights: {inventory: 0.3}}}\n")
    tuned = cfg.tuned(np.array(W(0.2, 0.05, 0.0, 0.0)))  # half the strength
    assert tuned.weight_vector().tolist() == W(0.2, 0.05, 0.0, 0.0)
    assert tuned.segments["top"].weights.overrides() == {"clv": pytest.approx(0.1)}
    assert tuned.categories["A/B"].weights.overrides() == {"inventory": pytest.approx(0.15)}
    assert np.all(cfg.tuned(np.zeros(len(TERM_NAMES))).resolved("top", "A/B/C") == 0)


# --- inventory target and experiments -----------------------------------------------------------

EXPERIMENT = """\
version: 1
weights: {margin: 0.3, clv: 0.1}
segments:
  gold: {min_clv_quantile: 0.8, weights: {margin: 0.5, returns: 0.2}}
categories:
  Tools: {weights: {margin: 0.4, inventory: 0.3}}
inventory: {target_weeks_of_cover: 6}
experiments:
  margin_push:
    arms:
      control: {share: 0.5}
      push: {share: 0.25, weights: {margin: 0.9}}
"""

def test_shares_adding_up_to_exactly_one_are_fine() -> None:
    cfg = parse_config(weights_file("experiments: {e: {arms: {a: {share: 0.7}, b: {share: 0.2},"
                                    " c: {share: 0.1}}}}"))
    assert sum(arm.share for arm in cfg.arms().values()) == pytest.approx(1.0)
    assert all(cfg.arm_for(f"C{i}") is not None for i in range(200))


def test_inventory_target_default_and_bundle_check() -> None:
    assert parse_config("version: 1\n").inventory.target_weeks_of_cover == 8.0
    assert parse_config(EXPERIMENT).inventory.target_weeks_of_cover == 6.0
    parse_config(EXPERIMENT, target_weeks_of_cover=6.0)
    issue = only_issue(EXPERIMENT, target_weeks_of_cover=8.0)
    assert (issue.line, issue.key_path) == (7, "inventory.target_weeks_of_cover")
    assert "built with 8" in issue.message
    only_issue("version: 1\n", target_weeks_of_cover=6.0)  # the default 8 differs from 6 too


def test_arm_precedence_is_defaults_segment_category_arm() -> None:
    cfg = parse_config(EXPERIMENT)
    np.testing.assert_array_equal(cfg.resolved("gold", "Tools/Saws"), W(0.4, 0.1, 0.2, 0.3))
    np.testing.assert_array_equal(cfg.resolved("gold", "Tools/Saws", "push"), W(0.9, 0.1, 0.2, 0.3))
    np.testing.assert_array_equal(cfg.resolved(arm="control"), cfg.weight_vector())


def test_arm_assignment_is_stable_shared_out_and_anonymous_gets_none() -> None:
    cfg = parse_config(EXPERIMENT)
    assert cfg.arm_for(None) is None
    arms = [cfg.arm_for(f"customer-{i}") for i in range(20_000)]
    assert arms == [cfg.arm_for(f"customer-{i}") for i in range(20_000)]
    shares = {name: arms.count(name) / len(arms) for name in ("control", "push", None)}
    assert shares == pytest.approx({"control": 0.5, "push": 0.25, None: 0.25}, abs=0.015)
    # Fixed across processes and releases: BLAKE2b, not Python's salted hash().
    assert traffic_position("margin_push", "C1") == pytest.approx(
        int.from_bytes(hashlib.blake2b(b"margin_push\x00C1", digest_size=8).digest(), "big")
        / 2**64)
    # A different experiment reshuffles customers independently.
    renamed = parse_config(EXPERIMENT.replace("margin_push", "other"))
    moved = sum(a != renamed.arm_for(f"customer-{i}") for i, a in enumerate(arms[:2000]))
    assert moved > 500
    assert parse_config("version: 1\n").arm_for("C1") is None


def test_experiment_round_trip_and_tuning_scales_arms() -> None:
    cfg = parse_config(EXPERIMENT)
    assert parse_config(dump_config(cfg)) == cfg
    tuned = cfg.tuned(np.array(W(0.6, 0.2, 0.0, 0.0)))  # twice the strength
    assert tuned.arms()["push"].weights.overrides() == {"margin": pytest.approx(1.8)}
    assert tuned.arms()["control"].share == 0.5
    assert tuned.inventory == cfg.inventory
