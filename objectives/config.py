"""The merchandiser's weights file: schema, validation with file:line messages, layering.

A weights file says how much each business term (margin, CLV, returns, inventory, ...) is worth
next to relevance, which guardrails apply, and how customer segments and category prefixes
override the defaults (docs/guide/merchandisers.md). Merchandisers edit it by hand, so a
mistake must be refused with a message that points at the file, the line and the key, and every
mistake in a file is reported at once rather than one per edit-and-retry round.

:func:`parse_config` validates in three passes over one document:

1. :mod:`objectives.yaml_source` composes the YAML node tree and the line of every key;
2. pydantic checks the schema (:mod:`objectives.weights_schema`) and collects every error,
   each mapped back to the nearest line we know (:mod:`objectives.config_messages`);
3. the rules the schema cannot express (:mod:`objectives.weights_rules`) and, when a catalog
   or bundle is given, whether the file fits it (:mod:`objectives.catalog_match`).

This module is the public face: it re-exports the names callers import from
``objectives.config``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from pydantic import ValidationError

from clv.errors import ConfigError, ConfigIssue, UnknownSegmentError
from objectives.catalog_match import product_problems, target_problems, unmatched_category_rules
from objectives.config_dump import DEFAULT_CONFIG_TEXT, dump_config
from objectives.config_messages import Loc, Problem, error_problem, to_issues
from objectives.term_registry import TERM_NAMES
from objectives.weights_rules import DEFAULT_SEGMENT, SHARE_TOLERANCE, pin_key, rule_problems
from objectives.weights_schema import (
    RULES_CHECKED,
    Arm,
    CategoryRule,
    Experiment,
    ExplorationSettings,
    Guardrails,
    InventorySettings,
    SegmentRule,
    Share,
    TermWeights,
    Weight,
    WeightsConfig,
    traffic_position,
)
from objectives.yaml_source import compose, read_config_text

__all__ = [
    "DEFAULT_CONFIG_TEXT", "DEFAULT_SEGMENT", "SHARE_TOLERANCE", "TERM_NAMES", "Arm",
    "CategoryRule", "ConfigError", "ConfigIssue", "Experiment", "ExplorationSettings",
    "Guardrails", "InventorySettings", "Loc", "Problem", "SegmentRule", "Share", "TermWeights",
    "UnknownSegmentError", "Weight", "WeightsConfig", "dump_config", "load_config",
    "parse_config", "pin_key", "read_config_text", "traffic_position",
    "unmatched_category_rules",
]


def parse_config(
    text: str, *, source: str = "<string>", product_ids: Collection[str] | None = None,
    target_weeks_of_cover: float | None = None, pin_rule: Callable[[str], str] | None = None,
) -> WeightsConfig:
    """Validate weights-file text and return the config, or raise a ConfigError listing every
    problem found. ``source`` names the file in messages; with ``product_ids``, pins and
    buries must name products that exist; with ``target_weeks_of_cover`` (the target a
    bundle's inventory term was computed with), the file must not set another one; with
    ``pin_rule`` (a bundle's query key, which the ranker passes), pinned queries must be
    distinct and have words under that rule rather than :func:`pin_key`."""
    document = compose(text, source)
    problems = document.problems + rule_problems(document.data, pin_rule)
    if product_ids is not None:
        problems += product_problems(document.data, frozenset(product_ids))
    if target_weeks_of_cover is not None:
        problems += target_problems(document.data, target_weeks_of_cover)
    try:
        config = WeightsConfig.model_validate(document.data, context={RULES_CHECKED: True})
    except ValidationError as exc:
        problems += [error_problem(error, WeightsConfig) for error in exc.errors()]
    if problems:
        raise ConfigError(to_issues(source, document.lines, problems))
    return config


def load_config(path: str | Path, *, product_ids: Collection[str] | None = None,
                target_weeks_of_cover: float | None = None,
                pin_rule: Callable[[str], str] | None = None) -> WeightsConfig:
    """Read and validate a weights file (see :func:`parse_config`); messages name ``path``."""
    return parse_config(read_config_text(path), source=str(path), product_ids=product_ids,
                        target_weeks_of_cover=target_weeks_of_cover, pin_rule=pin_rule)
