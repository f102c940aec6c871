"""The merchandiser's weights file: schema, validation with file:line messages, layering.

A weights file says how much each business term (margin, CLV, returns, inventory) is worth next
to relevance, which guardrails apply, and how customer segments and category prefixes override
the defaults (schema: "The weights file" in DESIGN.md). Merchandisers edit it by hand, so a
mistake must be refused with a message that points at the file, the line and the key, and every
mistake in a file is reported at once rather than one per edit-and-retry round.

Validation happens in three passes over one document:

1. ruamel.yaml composes the node tree (the ``safe`` loader, so no tag can run code; YAML 1.2,
   so ``yes``/``no``/``on``/``off`` are text, not booleans, and a pin for the query ``no`` stays a
   string). The tree gives the line of every key and sequence item, and shows duplicate keys,
   which a plain load would silently collapse to one value.
2. Pydantic checks the schema and collects every error; each error's ``loc`` is mapped back
   to the nearest line we know.
3. Semantic checks the schema cannot express: products in pins and buries exist, segment names
   are plain identifiers, no two segments share a threshold, category paths are well formed.

The models are frozen and their sequences are tuples: the ranker swaps a whole config in
atomically while other threads read the old one, so a config must never change under a reader.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from ruamel.yaml import YAML
from ruamel.yaml import events as yaml_events
from ruamel.yaml import nodes as yaml_nodes
from ruamel.yaml.error import YAMLError

from clv.errors import ConfigError, ConfigIssue, UnknownSegmentError
from objectives.guardrail import DEFAULT_MAX_NDCG_DROP
from objectives.term_registry import TERM_NAMES, TERMS, weights_yaml_lines

#: A key path: mapping keys and sequence indices from the top of the document.
Loc = tuple[Any, ...]
#: A problem found before it has a line: where it is and what is wrong.
Problem = tuple[Loc, str]

_SEGMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_/\-]+")
_MERGE_TAG = "tag:yaml.org,2002:merge"
#: Validation-context flag: parse_config has already run the rule checks with line numbers.
_RULES_CHECKED = "rules_checked"


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------

#: Strict so that YAML ``true`` or a quoted ``"0.3"`` is refused instead of coerced to a number.
Weight = Annotated[float, Field(ge=0.0, allow_inf_nan=False, strict=True)]


class _Schema(BaseModel):
    """Common settings: a typo is an error, not a silently ignored key; snapshots are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _TermWeightsBase(_Schema):
    """Weights of the business terms; relevance counts 1.

    One field per term of :mod:`objectives.term_registry` (see :data:`TermWeights`), default 0.
    Also used as a partial override (segments, categories): only the terms written in the file
    (``model_fields_set``) replace the layer below; the others inherit. Equality therefore
    includes which terms are set, since ``{margin: 0.0}`` and ``{}`` resolve differently.
    """

    @classmethod
    def from_vector(cls, vector: Any) -> Self:
        """Build complete weights from a vector in TERM_NAMES order (what the tuner produces).

        Values must already be non-negative and finite; solver noise such as -1e-12 is the
        caller's to clip, because silently changing a weight here would hide a real bug.
        """
        values = np.asarray(vector, dtype=np.float64)
        if values.shape != (len(TERM_NAMES),):
            raise ValueError(f"expected {len(TERM_NAMES)} weights {TERM_NAMES}, got {values.shape}")
        return cls(**{name: float(value) for name, value in zip(TERM_NAMES, values, strict=True)})

    def overrides(self) -> dict[str, float]:
        """The terms this layer sets, in TERM_NAMES order."""
        return {name: getattr(self, name) for name in TERM_NAMES if name in self.model_fields_set}

    def apply_to(self, base: np.ndarray) -> np.ndarray:
        """A copy of ``base`` with the terms this layer sets replaced."""
        result = np.array(base, dtype=np.float64)
        for index, name in enumerate(TERM_NAMES):
            if name in self.model_fields_set:
                result[index] = getattr(self, name)
        return result

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _TermWeightsBase):
            return NotImplemented
        return super().__eq__(other) and self.model_fields_set == other.model_fields_set


#: The weights model: one strict, non-negative field per declared term; unknown keys are errors.
TermWeights = create_model(  # type: ignore[call-overload]
    "TermWeights", __base__=_TermWeightsBase, __module__=__name__,
    **{t.name: (Weight, 0.0) for t in TERMS})
TermWeights.__doc__ = _TermWeightsBase.__doc__


class Guardrails(_Schema):
    """Limits on what the business terms may do to a result list."""

    max_ndcg_drop: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False, strict=True)] = \
        DEFAULT_MAX_NDCG_DROP
    out_of_stock: Literal["demote", "hide", "ignore"] = "demote"
    relevance_tiers: StrictBool = False
    #: 0: the blended score orders the whole list. N: the blended score only chooses which
    #: products take the first N places; those N, and every product after them, are shown in
    #: relevance order. Business terms then decide what makes the top N, where a cut-off
    #: metric such as margin@N counts it, without reordering the products shown, which costs
    #: NDCG and buys nothing at that cut-off.
    business_slots: Annotated[int, Field(ge=0, le=1000, strict=True)] = 0


class SegmentRule(_Schema):
    """Weights for customers whose CLV quantile is at least ``min_clv_quantile``."""

    min_clv_quantile: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
    weights: TermWeights = TermWeights()


class CategoryRule(_Schema):
    """Weights for products under a category path prefix."""

    weights: TermWeights = TermWeights()


class InventorySettings(_Schema):
    """How the inventory term measures pressure: log weeks of cover over this target, so a
    product holding more weeks than the target is pushed up and a scarcer one down. The terms
    are computed when the bundle is built, so a bundle serves only files with its own target."""

    target_weeks_of_cover: Annotated[
        float, Field(gt=0.0, le=520.0, allow_inf_nan=False, strict=True)] = 8.0


#: A fraction of customers.
Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
#: The key of ``shares_by_segment`` for customers in no segment (unknown or below every
#: threshold), who get the default weights.
DEFAULT_SEGMENT = "default"
#: How far a segment's shares may be from the arms' total (they are written rounded).
SHARE_TOLERANCE = 1e-6


class Arm(_Schema):
    """One arm of an experiment: the share of customers in it, and the terms it overrides.

    ``frozen``: the arm failed the guardrail (``marginrank experiment allocate`` sets it); its
    share is 0 in every segment and allocation keeps it there until a person removes the flag.
    """

    share: Share
    weights: TermWeights = TermWeights()
    frozen: StrictBool = False


class Experiment(_Schema):
    """Arms in file order; a customer's hash position falls into the first arm whose cumulative
    share exceeds it, or into none (the base weights) past the last one.

    ``shares_by_segment`` (written by the bandit, ``marginrank experiment allocate``) gives the
    customers of a CLV segment (``default``: those in none) their own shares: every arm's share
    there (an arm left out has 0), adding up to the same total as the arms' ``share``. Segments
    not listed use the arms' ``share``."""

    arms: dict[StrictStr, Arm]
    shares_by_segment: dict[StrictStr, dict[StrictStr, Share]] = {}


class ExplorationSettings(_Schema):
    """Randomized exploration (:mod:`ranking.exploration`): ``share`` of searches,
    picked by a hash of the request id and ``seed``, show their top ``top_k`` unpinned results
    in a uniformly random order, so logs carry item-position propensities. Costs ``share``
    times the NDCG of a top-k shuffle; 0 (the default) turns it off."""

    share: Annotated[float, Field(ge=0.0, le=0.5, allow_inf_nan=False, strict=True)] = 0.0
    top_k: Annotated[int, Field(ge=2, le=10, strict=True)] = 3
    seed: Annotated[int, Field(ge=0, strict=True)] = 0


class WeightsConfig(_Schema):
    """One validated weights file: an immutable snapshot the ranker can share across threads."""

    version: Literal[1]
    weights: TermWeights = Field(default_factory=TermWeights, validate_default=True)
    guardrails: Guardrails = Guardrails()
    segments: dict[StrictStr, SegmentRule] = {}
    categories: dict[StrictStr, CategoryRule] = {}
    pins: dict[StrictStr, tuple[StrictStr, ...]] = {}
    buries: tuple[StrictStr, ...] = ()
    inventory: InventorySettings = InventorySettings()
    experiments: dict[StrictStr, Experiment] = {}
    exploration: ExplorationSettings = ExplorationSettings()

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_one(cls, value: Any) -> Any:
        """Refuse ``true`` and ``1.0``, which a plain Literal[1] would accept as equal to 1."""
        if type(value) is not int or value != 1:
            raise PydanticCustomError(
                "unsupported_version",
                "must be 1, the only version this release reads; got {got}",
                {"got": _describe(value)},
            )
        return value

    @field_validator("weights", mode="after")
    @classmethod
    def _complete_defaults(cls, value: TermWeights) -> TermWeights:
        """The defaults are the bottom layer, where an unwritten term simply means 0: mark every
        term set so that equality and dumps do not depend on which zeros were spelled out."""
        return TermWeights(**value.model_dump())

    @model_validator(mode="after")
    def _check_rules(self, info: ValidationInfo) -> Self:
        """Apply the rule checks to configs built in code too (parse_config runs them itself,
        with line numbers, and tells us so through the validation context)."""
        if info.context and info.context.get(_RULES_CHECKED):
            return self
        problems = _rule_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(f"{_format_path(loc)}: {text}" for loc, text in problems))
        return self

    def with_weights(self, weights: Mapping[str, float]) -> WeightsConfig:
        """A copy whose default weights take the given terms (e.g. the tuner's result); terms not
        given keep their value. Validated, unlike a bare ``model_copy(update=...)``."""
        merged = {**self.weights.model_dump(), **{name: float(v) for name, v in weights.items()}}
        return self.model_copy(update={"weights": TermWeights(**merged)})

    def tuned(self, weights: np.ndarray) -> WeightsConfig:
        """The file as the tuner leaves it: default weights replaced by ``weights`` (TERM_NAMES
        order), every segment, category and arm weight multiplied by the same overall factor
        sum(new defaults) / sum(old defaults). The tuner sets how strongly the merchandiser's
        intent is applied; the shape of the rules relative to the defaults is kept, and at
        strength 0 the ranking is relevance alone."""
        weights = np.asarray(weights, dtype=np.float64)
        old = float(self.weight_vector().sum())
        factor = float(weights.sum()) / old if old > 0 else 1.0

        def scaled(layer: TermWeights) -> TermWeights:
            # Rounded like the tuned defaults, so the file a merchandiser reads is short and is
            # exactly what was checked and is served.
            return TermWeights(**{name: round(v * factor, 4)
                                  for name, v in layer.overrides().items()})

        return self.model_copy(update={
            "segments": {name: rule.model_copy(update={"weights": scaled(rule.weights)})
                         for name, rule in self.segments.items()},
            "categories": {name: rule.model_copy(update={"weights": scaled(rule.weights)})
                           for name, rule in self.categories.items()},
            "experiments": {name: experiment.model_copy(update={"arms": {
                arm: rule.model_copy(update={"weights": scaled(rule.weights)})
                for arm, rule in experiment.arms.items()}})
                for name, experiment in self.experiments.items()},
        }).with_weights(dict(zip(TERM_NAMES, weights.tolist(), strict=True)))

    def weight_vector(self) -> np.ndarray:
        """The default weights as float64 in TERM_NAMES order."""
        return np.array([getattr(self.weights, name) for name in TERM_NAMES], dtype=np.float64)

    def resolved(self, segment: str | None = None, category: str | None = None,
                 arm: str | None = None) -> np.ndarray:
        """Weights for one customer segment, product category and experiment arm, in
        TERM_NAMES order.

        Layers, each replacing only the terms it sets: the defaults, then the segment, then the
        longest category prefix that matches ``category`` on whole path components, then the
        arm. Only that one category rule applies: shorter matching prefixes do not cascade into
        it. The arm comes last so that what an experiment tests is what its customers get,
        whatever their segment or the product's category.
        """
        vector = self.weight_vector()
        if segment is not None:
            vector = self._segment(segment).weights.apply_to(vector)
        key = None if category is None else self.category_rule_for(category)
        if key is not None:
            vector = self.categories[key].weights.apply_to(vector)
        if arm is not None:
            vector = self.arms()[arm].weights.apply_to(vector)
        return vector

    def arms(self) -> dict[str, Arm]:
        """The running experiment's arms in file order (empty when none runs)."""
        return next((experiment.arms for experiment in self.experiments.values()), {})

    def arm_shares(self, segment: str | None = None) -> dict[str, float]:
        """Each arm's share (file order) among the customers of ``segment`` (None: those in no
        segment): the experiment's ``shares_by_segment`` entry when it has one, else the arms'
        ``share``."""
        experiment = next(iter(self.experiments.values()), None)
        if experiment is None:
            return {}
        listed = experiment.shares_by_segment.get(
            DEFAULT_SEGMENT if segment is None else segment)
        if listed is None:
            return {name: arm.share for name, arm in experiment.arms.items()}
        return {name: listed.get(name, 0.0) for name in experiment.arms}

    def arm_for(self, customer_id: str | None, segment: str | None = None) -> str | None:
        """The running experiment's arm for ``customer_id`` (in ``segment``, None: no
        segment): the first arm whose cumulative share (:meth:`arm_shares`) exceeds the
        customer's :func:`traffic_position`. None (the base weights) for an anonymous
        request, for customers past the last arm, and when no experiment runs."""
        if customer_id is None or not self.experiments:
            return None
        position = traffic_position(next(iter(self.experiments)), customer_id)
        cumulative = 0.0
        for name, share in self.arm_shares(segment).items():
            cumulative += share
            if position < cumulative:
                return name
        return None

    def segment_for_quantile(self, q: float) -> str | None:
        """The segment with the highest ``min_clv_quantile`` <= ``q``; None means the defaults
        (also for NaN, i.e. a customer without a CLV estimate)."""
        eligible = [(rule.min_clv_quantile, name) for name, rule in self.segments.items()
                    if rule.min_clv_quantile <= q]
        return max(eligible)[1] if eligible else None

    def category_rule_for(self, path: str) -> str | None:
        """The longest category key that is a prefix of ``path`` in whole components, so that
        ``Tools/Power`` matches ``Tools/Power/Drills`` but not ``Tools/Powerful``. Components
        compare case-sensitively after trimming surrounding spaces."""
        parts = _path_parts(path)
        matches = [key for key in self.categories if _is_prefix(_path_parts(key), parts)]
        return max(matches, key=lambda key: len(_path_parts(key)), default=None)

    def _segment(self, name: str) -> SegmentRule:
        try:
            return self.segments[name]
        except KeyError:
            known = ", ".join(sorted(self.segments)) or "none"
            raise UnknownSegmentError(f"unknown segment {name!r}; defined: {known}") from None


def traffic_position(experiment: str, customer_id: str) -> float:
    """A customer's stable place in [0, 1) for an experiment: BLAKE2b of (experiment, customer)
    as a uniform fraction. Not Python's ``hash()``, which changes between processes; keyed by
    the experiment, so a customer's arm in one experiment says nothing about the next one."""
    digest = hashlib.blake2b(f"{experiment}\x00{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _path_parts(path: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in path.split("/"))


def _is_prefix(prefix: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    return parts[: len(prefix)] == prefix


# ---------------------------------------------------------------------------------------------
# Rule checks (shared by parse_config, which knows lines, and by WeightsConfig itself)
# ---------------------------------------------------------------------------------------------


def _rule_problems(data: Any) -> list[Problem]:
    """Checks on segments and categories that the field types cannot express. Works on raw
    YAML data, so it skips whatever has the wrong type (the schema pass reports that)."""
    if not isinstance(data, dict):
        return []
    return [*_segment_problems(data.get("segments")), *_category_problems(data.get("categories")),
            *_pin_problems(data.get("pins"), data.get("buries")),
            *_experiment_problems(data.get("experiments")),
            *_segment_share_problems(data.get("experiments"), data.get("segments"))]


def _experiment_problems(experiments: Any) -> list[Problem]:
    """One experiment at a time (two would need a rule for customers in an arm of each), names
    that are identifiers, at least one arm, and shares that add up to at most 1."""
    if not isinstance(experiments, dict):
        return []
    problems: list[Problem] = []
    for position, (name, experiment) in enumerate(experiments.items()):
        if position == 1:
            problems.append((("experiments", name), "only one experiment can run at a time; "
                             f"end {next(iter(experiments))!r} before starting {name!r}"))
        arms = experiment.get("arms") if isinstance(experiment, dict) else None
        named = [("experiment", name, ("experiments", name))]
        if isinstance(arms, dict):
            named += [("arm", arm, ("experiments", name, "arms", arm)) for arm in arms]
            if not arms:
                problems.append((("experiments", name, "arms"), "an experiment needs an arm"))
            problems += _share_problems(name, arms)
        problems += [(loc, f"{kind} name {label!r} must use only letters, digits and "
                      "underscores, and not start with a digit")
                     for kind, label, loc in named
                     if isinstance(label, str) and not _SEGMENT_NAME.fullmatch(label)]
    return problems


def _share_problems(name: str, arms: dict[Any, Any]) -> list[Problem]:
    """Shares are fractions of all customers: reported at the arm whose share crosses 1."""
    total = 0.0
    for arm, rule in arms.items():
        share = rule.get("share") if isinstance(rule, dict) else None
        if not _is_number(share) or not 0.0 <= share <= 1.0:
            continue  # the schema pass reports it
        total += share
        if total > 1.0 + 1e-9:
            return [(("experiments", name, "arms", arm, "share"),
                     f"arm shares add up to {total:.4g} by arm {arm!r}; they may add up to at "
                     "most 1 (customers past the last arm get the base weights)")]
    return []


def _segment_share_problems(experiments: Any, segments: Any) -> list[Problem]:
    """``shares_by_segment``: known segments and arms, totals equal to the arms' total (so the
    experiment reaches the same fraction of every segment), frozen arms at 0 everywhere."""
    if not isinstance(experiments, dict):
        return []
    known = set(segments) if isinstance(segments, dict) else set()
    problems: list[Problem] = []
    for name, experiment in experiments.items():
        arms = experiment.get("arms") if isinstance(experiment, dict) else None
        if not isinstance(arms, dict):
            continue
        frozen = [arm for arm, rule in arms.items()
                  if isinstance(rule, dict) and rule.get("frozen") is True]
        problems += [(("experiments", name, "arms", arm, "share"), f"arm {arm!r} is frozen "
                      "(it failed the guardrail), so its share must be 0; delete 'frozen: "
                      "true' to unfreeze it") for arm in frozen
                     if _is_number(arms[arm].get("share")) and arms[arm]["share"] != 0]
        by_segment = experiment.get("shares_by_segment")
        if not isinstance(by_segment, dict):
            continue
        if by_segment and DEFAULT_SEGMENT in known:
            problems.append((("segments", DEFAULT_SEGMENT), f"segment name {DEFAULT_SEGMENT!r} "
                             "is reserved for customers in no segment when an experiment has "
                             "shares_by_segment; rename the segment"))
        shares = [rule.get("share") if isinstance(rule, dict) else None for rule in arms.values()]
        expected = sum(s for s in shares if _is_number(s))
        for segment, listed in by_segment.items():
            loc: Loc = ("experiments", name, "shares_by_segment", segment)
            if segment != DEFAULT_SEGMENT and segment not in known:
                defined = ", ".join([DEFAULT_SEGMENT, *sorted(str(s) for s in known)])
                problems.append((loc, f"unknown segment {segment!r}; defined: {defined}"))
            if not isinstance(listed, dict):
                continue  # the schema pass reports it
            problems += [((*loc, arm), f"unknown arm {arm!r}; the experiment's arms are "
                          f"{', '.join(map(str, arms))}") for arm in listed if arm not in arms]
            problems += [((*loc, arm), f"arm {arm!r} is frozen (it failed the guardrail), so "
                          "its share must be 0; delete 'frozen: true' to unfreeze it")
                         for arm in frozen if _is_number(listed.get(arm)) and listed[arm] != 0]
            values = [v for v in listed.values() if _is_number(v) and 0.0 <= v <= 1.0]
            if len(values) == len(listed) and abs(sum(values) - expected) > SHARE_TOLERANCE:
                problems.append((loc, f"shares of segment {segment!r} add up to "
                                 f"{sum(values):.6g}; they must add up to {expected:.6g}, the "
                                 "total of the arms' share (the experiment reaches the same "
                                 "fraction of every segment)"))
    return problems


def _segment_problems(segments: Any) -> list[Problem]:
    """Names must be identifiers (they travel through YAML, logs and metrics labels), and
    thresholds must differ, or which tier a customer falls in would be arbitrary."""
    if not isinstance(segments, dict):
        return []
    problems: list[Problem] = []
    owner_of: dict[float, str] = {}
    for name, rule in segments.items():
        if isinstance(name, str) and not _SEGMENT_NAME.fullmatch(name):
            problems.append((("segments", name), f"segment name {name!r} must use only letters, "
                             "digits and underscores, and not start with a digit"))
        threshold = rule.get("min_clv_quantile") if isinstance(rule, dict) else None
        if not _is_number(threshold):
            continue
        if threshold in owner_of:
            problems.append((("segments", name, "min_clv_quantile"), f"min_clv_quantile "
                             f"{threshold} is already used by segment {owner_of[threshold]!r}"))
        else:
            owner_of[threshold] = name
    return problems


def _category_problems(categories: Any) -> list[Problem]:
    """Paths need non-empty components, and two keys must not name the same path."""
    if not isinstance(categories, dict):
        return []
    problems: list[Problem] = []
    owner_of: dict[tuple[str, ...], str] = {}
    for key in categories:
        if not isinstance(key, str):
            continue
        parts = _path_parts(key)
        if not all(parts):
            problems.append((("categories", key), f"category path {key!r} has an empty "
                             "component; write it like 'Furniture/Sofas'"))
        elif parts in owner_of:
            problems.append((("categories", key), f"category path {key!r} is the same as "
                             f"{owner_of[parts]!r}"))
        else:
            owner_of[parts] = key
    return problems


def pin_key(query: str) -> str:
    """The form pins are compared in: Unicode width, case, spacing and punctuation do not
    matter. (The ranker matches pins by its analyzer's tokens, which also ignore them, and
    refuses at load any two pins that its analyzer still finds equal.)"""
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", query).casefold()))


def _pin_problems(pins: Any, buries: Any) -> list[Problem]:
    """A pin must be reachable (its query has words), unambiguous (no two keys for the same
    query), list a product once, and not also bury it."""
    if not isinstance(pins, dict):
        return []
    buried = {b for b in buries if isinstance(b, str)} if isinstance(buries, list) else set()
    problems: list[Problem] = []
    owner_of: dict[str, str] = {}
    for query, ids in pins.items():
        if not isinstance(query, str):
            continue
        key = pin_key(query)
        if not key:
            problems.append((("pins", query), f"pinned query {query!r} has no words to match"))
        elif key in owner_of:
            problems.append((("pins", query), f"pinned query {query!r} is the same query as "
                             f"{owner_of[key]!r} (case and punctuation are ignored)"))
        else:
            owner_of[key] = query
        for index, product in enumerate(ids if isinstance(ids, list) else []):
            if not isinstance(product, str):
                continue  # the schema pass reports the wrong type
            if product in ids[:index]:
                problems.append((("pins", query, index), f"product {product!r} is pinned twice"))
            elif product in buried:
                problems.append((("pins", query, index), f"product {product!r} is both pinned "
                                 "and buried"))
    return problems


def _product_problems(data: Any, known: Collection[str]) -> list[Problem]:
    """Every pinned or buried product must exist, or the rule would silently do nothing."""
    if not isinstance(data, dict):
        return []
    pins = data.get("pins")
    problems: list[Problem] = []
    if isinstance(pins, dict):
        for query, ids in pins.items():
            problems += _unknown_products(("pins", query), ids, known)
    return problems + _unknown_products(("buries",), data.get("buries"), known)


def _target_problems(data: Any, target: float) -> list[Problem]:
    """A served bundle's inventory term is fixed at build time: a file asking for another
    target would silently not apply, so it is refused until the bundle is rebuilt."""
    inventory = data.get("inventory") if isinstance(data, dict) else None
    written = inventory.get("target_weeks_of_cover", 8.0) if isinstance(inventory, dict) else 8.0
    if not _is_number(written) or written == target:
        return []
    return [(("inventory", "target_weeks_of_cover"), f"is {written:g} but this bundle's "
             f"inventory term was built with {target:g}; rebuild the bundle to change it")]


def _unknown_products(loc: Loc, ids: Any, known: Collection[str]) -> list[Problem]:
    if not isinstance(ids, list):
        return []
    return [((*loc, index), f"unknown product {product!r}; it is not in the catalog")
            for index, product in enumerate(ids)
            if isinstance(product, str) and product not in known]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------------------------------------
# YAML: compose, index lines, construct
# ---------------------------------------------------------------------------------------------


@dataclass
class _Document:
    """A composed YAML document: the plain data, the line of every key path, early problems."""

    data: Any
    lines: dict[Loc, int]
    problems: list[Problem]


def _safe_yaml() -> YAML:
    """A fresh safe YAML 1.2 loader (ruamel's YAML objects keep state, so one per parse keeps
    concurrent parses apart). Duplicate keys are allowed through to the node walk, which
    reports each of them with both lines instead of stopping at the first."""
    loader = YAML(typ="safe", pure=True)
    loader.allow_duplicate_keys = True
    return loader


class _NodeIndex:
    """Walks a composed node tree, recording the 1-based line of each key (or sequence item),
    duplicate keys, and scalars that cannot be constructed (bad tags, impossible dates)."""

    def __init__(self, loader: YAML) -> None:
        self.lines: dict[Loc, int] = {}
        self.duplicates: list[Problem] = []
        self.unreadable: list[Problem] = []
        self._constructor = loader.constructor
        self._active: set[int] = set()

    def visit(self, node: yaml_nodes.Node, loc: Loc) -> None:
        if id(node) in self._active:  # a recursive alias; its lines are already known
            return
        self._active.add(id(node))
        if isinstance(node, yaml_nodes.MappingNode):
            self._visit_mapping(node, loc)
        elif isinstance(node, yaml_nodes.SequenceNode):
            for index, item in enumerate(node.value):
                self.lines[(*loc, index)] = item.start_mark.line + 1
                self.visit(item, (*loc, index))
        else:
            self._construct(node, loc)
        self._active.discard(id(node))

    def _visit_mapping(self, node: yaml_nodes.MappingNode, loc: Loc) -> None:
        """Merge keys (``<<``) are skipped: merged entries then report at the mapping's line."""
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml_nodes.ScalarNode):
                continue
            key = self._construct(key_node, loc)
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.duplicates.append(((*loc, key), f"duplicate key {key!r} (first on line "
                                        f"{first_line[key]}); a key may appear only once"))
            else:
                first_line[key] = line
            self.lines[(*loc, key)] = line
            self.visit(value_node, (*loc, key))

    def _construct(self, node: yaml_nodes.Node, loc: Loc) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except (YAMLError, ValueError) as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            self.unreadable.append((loc, f"cannot read value {node.value!r}: {reason}"))
            return node.value


def _compose(text: str, source: str) -> _Document:
    """Parse ``text`` with safe-load semantics, keeping line numbers; raise a ConfigError for
    what leaves nothing to validate (syntax errors, empty file)."""
    loader = _safe_yaml()
    try:
        root = loader.compose(text)
    except YAMLError as exc:
        raise ConfigError([_yaml_issue(exc, text, source)]) from None
    if root is None:
        raise ConfigError([ConfigIssue(source, 1, "", "empty file; a weights file needs at least "
                                       "'version: 1'")])
    index = _NodeIndex(loader)
    index.lines[()] = root.start_mark.line + 1
    index.visit(root, ())
    if index.unreadable:
        raise ConfigError(_issues(source, index.lines, index.unreadable + index.duplicates))
    try:
        data = _safe_yaml().constructor.construct_document(root)
    except (YAMLError, ValueError) as exc:
        raise ConfigError([_yaml_issue(exc, text, source)]) from None
    return _Document(data, index.lines, index.duplicates)


def _yaml_issue(exc: Exception, text: str, source: str) -> ConfigIssue:
    """Locate a YAML error by its problem mark (or its character position for reader errors)
    and name the key being read when it happened."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    position = mark.index if mark is not None else getattr(exc, "position", 0)
    # A mark at the end of the stream sits after the last newline: report the last real line.
    line = min(text.count("\n", 0, position) + 1, len(text.splitlines()) or 1)
    reason = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"YAML error: {reason}" + (f" ({context})" if context else "")
    if plain := _plain_yaml_reason(str(reason), text, line):
        message = f"{plain}; {message}"
    return ConfigIssue(source, line, _format_path(_path_at(text, position)), message)


def _plain_yaml_reason(reason: str, text: str, line: int) -> str:
    """The commonest YAML syntax errors in plain words (a merchandiser does not know what a
    '<block end>' is); the parser's own words follow in the message. Empty if none applies."""
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    indent = len(here) - len(here.lstrip(" "))
    above = next((s for s in reversed(lines[:line - 1]) if s.strip()
                  and not s.lstrip().startswith("#")), "")
    if "\\t" in reason or "\t" in reason:
        return f"line {line} is indented with a tab; YAML indents with spaces only"
    if reason.startswith("expected <block end>") and here.lstrip().startswith("- "):
        return (f"line {line} starts a list item ('- ') among 'key: value' lines; a block holds "
                "either keys or list items, not both")
    if reason.startswith("expected <block end>"):
        return (f"line {line} is indented by {indent} space{'s' * (indent != 1)}, which lines up "
                "with no key above it; the keys of one block must start in the same column, "
                "and a nested block one step further in")
    if reason.startswith("mapping values are not allowed"):
        if here.split("#")[0].count(":") >= 2:
            return (f"line {line} has a second 'key:' after the first one; put the inner key "
                    "on its own line, indented, or quote a value that contains ': '")
        if ":" not in above and not above.lstrip().startswith("-"):
            return f"the line above line {line} ('{above.strip()}') has no ':'; write 'key: value'"
        key = above.strip().split(":")[0]
        return (f"line {line} is indented under '{key}', which already has a value; line it "
                "up with the keys above it")
    if reason.startswith("expected ',' or '}'"):
        return "a '{' is not closed with '}', or two entries inside it lack a ',' between them"
    if reason.startswith("expected ',' or ']'"):
        return "a '[' is not closed with ']', or two items inside it lack a ',' between them"
    if reason.startswith("could not find expected ':'"):
        return f"line {line} should read 'key: value' but has no ':' after its key"
    return ""


@dataclass
class _Frame:
    """An open collection while replaying parser events: its current key or item index."""

    is_mapping: bool
    key: Any = None
    expects_key: bool = True


def _path_at(text: str, position: int) -> Loc:
    """Best-effort key path at character ``position``, found by replaying parser events up to
    it (or up to the syntax error), so that even a YAML error names where in the schema it is."""
    frames: list[_Frame] = []
    try:
        for event in _safe_yaml().parse(text):
            if event.start_mark.index >= position:
                break
            if isinstance(event, yaml_events.CollectionEndEvent):
                frames.pop()
                _value_done(frames)
            elif isinstance(event, yaml_events.NodeEvent):
                _node_started(frames, event)
    except YAMLError:
        pass
    return tuple(frame.key for frame in frames if frame.key is not None)


def _node_started(frames: list[_Frame], event: yaml_events.NodeEvent) -> None:
    top = frames[-1] if frames else None
    if top is not None and top.is_mapping and top.expects_key:
        top.key = getattr(event, "value", "?")
        top.expects_key = False
        return
    if top is not None and not top.is_mapping:
        top.key = 0 if top.key is None else top.key + 1
    if isinstance(event, yaml_events.CollectionStartEvent):
        frames.append(_Frame(is_mapping=isinstance(event, yaml_events.MappingStartEvent)))
    else:
        _value_done(frames)


def _value_done(frames: list[_Frame]) -> None:
    if frames and frames[-1].is_mapping:
        frames[-1].key = None
        frames[-1].expects_key = True


# ---------------------------------------------------------------------------------------------
# Locating and wording problems
# ---------------------------------------------------------------------------------------------


def _issues(source: str, lines: dict[Loc, int], problems: Iterable[Problem]) -> list[ConfigIssue]:
    return [ConfigIssue(source, _line_of(lines, loc), _format_path(loc), text)
            for loc, text in problems]


def _line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """Line of the deepest prefix of ``loc`` present in the file (a missing key reports at its
    parent); the document root is always present."""
    parts = tuple(part for part in loc if part != "[key]")
    return next(lines[parts[:end]] for end in range(len(parts), -1, -1) if parts[:end] in lines)


def _format_path(loc: Loc) -> str:
    """``weights.margin``, ``buries[1]``, ``pins."patio umbrella"[0]``."""
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
            continue
        name = str(part)
        name = name if _PLAIN_KEY.fullmatch(name) else f'"{name}"'
        text += f".{name}" if text else name
    return text


_TYPE_MESSAGES = {
    "model_type": "must be a mapping (key: value pairs)",
    "dict_type": "must be a mapping (key: value pairs)",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "string_type": "must be a string",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "finite_number": "must be a finite number",
}
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
           "less_than": "<"}


def _error_problem(error: Any) -> Problem:
    """A pydantic error as (loc, message) in a merchandiser's words rather than pydantic's."""
    loc, kind, got = tuple(error["loc"]), error["type"], error["input"]
    context = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return loc, _unknown_key_message(loc)
    if kind == "missing":
        return loc, f"required key {loc[-1]!r} is missing"
    if kind == "literal_error":
        return loc, f"must be one of {context['expected']}; got {_describe(got)}"
    if kind in _BOUNDS:
        bound = next(iter(context.values()))
        return loc, f"must be {_BOUNDS[kind]} {bound}; got {_describe(got)}"
    if kind not in _TYPE_MESSAGES:
        return loc, error["msg"]
    text = f"{_TYPE_MESSAGES[kind]}; got {_describe(got)}"
    if kind == "string_type" and _is_number(got):
        text += " (quote it to make it text)"
    return loc, ("key " + text) if loc and loc[-1] == "[key]" else text


def _unknown_key_message(loc: Loc) -> str:
    allowed = _allowed_keys(loc[:-1])
    message = f"unknown key {loc[-1]!r}"
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    return f"{message}; allowed keys: {', '.join(allowed)}"


def _allowed_keys(loc: Loc) -> list[str]:
    """Field names of the model found at ``loc``, by walking WeightsConfig's field types
    (dict values and sequence items consume one element of ``loc``)."""
    annotation: Any = WeightsConfig
    for part in loc:
        if _is_model(annotation):
            field = annotation.model_fields.get(part)
            if field is None:
                return []
            annotation = field.annotation
        else:
            args = getattr(annotation, "__args__", ())
            if not args:
                return []
            annotation = args[-1] if getattr(annotation, "__origin__", None) is dict else args[0]
    return list(annotation.model_fields) if _is_model(annotation) else []


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _describe(value: Any) -> str:
    """A value as the merchandiser wrote it in YAML, not as Python prints it."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def parse_config(
    text: str, *, source: str = "<string>", product_ids: Collection[str] | None = None,
    target_weeks_of_cover: float | None = None,
) -> WeightsConfig:
    """Validate weights-file text and return the config, or raise a ConfigError listing every
    problem found. ``source`` names the file in messages; with ``product_ids``, pins and
    buries must name products that exist; with ``target_weeks_of_cover`` (the target a
    bundle's inventory term was computed with), the file must not set another one."""
    document = _compose(text, source)
    problems = document.problems + _rule_problems(document.data)
    if product_ids is not None:
        problems += _product_problems(document.data, frozenset(product_ids))
    if target_weeks_of_cover is not None:
        problems += _target_problems(document.data, target_weeks_of_cover)
    try:
        config = WeightsConfig.model_validate(document.data, context={_RULES_CHECKED: True})
    except ValidationError as exc:
        problems += [_error_problem(error) for error in exc.errors()]
    if problems:
        raise ConfigError(_issues(source, document.lines, problems))
    return config


def load_config(path: str | Path, *, product_ids: Collection[str] | None = None,
                target_weeks_of_cover: float | None = None) -> WeightsConfig:
    """Read and validate a weights file (see :func:`parse_config`); messages name ``path``."""
    return parse_config(read_config_text(path), source=str(path), product_ids=product_ids,
                        target_weeks_of_cover=target_weeks_of_cover)


def unmatched_category_rules(text: str, categories: Iterable[str], *,
                             source: str = "<string>") -> list[ConfigIssue]:
    """The category rules of a (valid) weights file that match none of ``categories`` (a
    catalog's category paths), each at its line with the closest path as a suggestion. A rule
    that matches nothing is not wrong YAML, but a typo there ('Toolz/Power') would silently
    never apply, so ``validate-config`` with a catalog or bundle refuses it."""
    document = _compose(text, source)
    paths = {_path_parts(c) for c in set(categories)}
    problems: list[Problem] = []
    for key in (document.data or {}).get("categories") or {}:
        parts = _path_parts(str(key))
        if any(_is_prefix(parts, path) for path in paths):
            continue
        same_depth = sorted({"/".join(p[:len(parts)]) for p in paths if len(p) >= len(parts)})
        close = difflib.get_close_matches(str(key), same_depth, n=1, cutoff=0.6)
        problems.append((("categories", key), "matches no product's category"
                         + (f"; did you mean '{close[0]}'?" if close else "")))
    return _issues(source, document.lines, problems)


def read_config_text(path: str | Path) -> str:
    """The text of a weights file, or a :class:`ConfigError` saying why it cannot be read.
    (Callers that keep the text, such as a hot reload, read once and parse that text.)"""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text ({exc.reason})"
        raise ConfigError([ConfigIssue(str(path), None, "", f"cannot read: {reason}")]) from exc


_DUMP_HEADER = "# marginrank weights file, written by marginrank (comments are not preserved).\n"


def dump_config(cfg: WeightsConfig) -> str:
    """YAML text that :func:`parse_config` reads back to an equal config (the tuner writes
    weights back with this for a merchandiser to review).

    This writes a config from scratch, so a merchandiser's comments in the file the config came
    from are lost; the output says so in its header. Defaults and guardrails are written in
    full so the reviewer sees every value; overrides keep only the terms they set, because an
    unset term inherits and writing it would change its meaning.
    """
    document = {
        "version": cfg.version,
        "weights": cfg.weights.model_dump(mode="json"),
        "guardrails": cfg.guardrails.model_dump(mode="json"),
        "segments": {name: {"min_clv_quantile": rule.min_clv_quantile,
                            "weights": rule.weights.overrides()}
                     for name, rule in cfg.segments.items()},
        "categories": {key: {"weights": rule.weights.overrides()}
                       for key, rule in cfg.categories.items()},
        "pins": {query: list(ids) for query, ids in cfg.pins.items()},
        "buries": list(cfg.buries),
        "inventory": cfg.inventory.model_dump(mode="json"),
        "experiments": {name: {"arms": {arm: {"share": rule.share,
                                              "weights": rule.weights.overrides(),
                                              **({"frozen": True} if rule.frozen else {})}
                                        for arm, rule in experiment.arms.items()},
                               **({"shares_by_segment": {
                                   segment: dict(shares)
                                   for segment, shares in experiment.shares_by_segment.items()}}
                                  if experiment.shares_by_segment else {})}
                        for name, experiment in cfg.experiments.items()},
        **({"exploration": cfg.exploration.model_dump(mode="json")}
           if "exploration" in cfg.model_fields_set else {}),
    }
    dumper = YAML(typ="safe", pure=True)
    dumper.default_flow_style = False
    dumper.allow_unicode = True
    dumper.sort_base_mapping_type_on_output = False  # the schema's order, version first
    body = io.StringIO()
    dumper.dump(document, body)
    return _DUMP_HEADER + body.getvalue()


DEFAULT_CONFIG_TEXT = """\
# marginrank weights file.
# Relevance counts 1; each weight is how much one unit of a business term is worth next to it.
# Terms are scaled to comparable units, and a positive weight always means "care more".
version: 1
weights:
""" + "".join(f"{line}\n" for line in weights_yaml_lines()) + """\
guardrails:
  max_ndcg_drop: 0.002      # NDCG@10 may fall at most 0.2% (relative), certified at 95%
  out_of_stock: demote      # demote | hide | ignore
  relevance_tiers: false    # true: business terms only reorder within a relevance tier
  business_slots: 0         # N: business picks the first N places, relevance orders all
# Overrides replace only the terms they set; the others inherit from `weights`.
# segments:                 # by customer CLV tier: the highest min_clv_quantile <= the customer's
#   top_decile: {min_clv_quantile: 0.9, weights: {margin: 0.1}}
# categories:               # by category path prefix: the longest matching prefix wins
#   "Furniture/Sofas": {weights: {inventory: 0.3}}
# pins: {"patio umbrella": ["P123"]}    # query -> products placed first, in this order
# buries: ["P999"]                      # products placed last
inventory:
  target_weeks_of_cover: 8  # inventory pressure is log(weeks of cover / this target)
# experiments:              # one at a time; a customer's arm is a stable hash of (name, id)
#   margin_push:            # arms' overrides apply last, over segment and category weights
#     arms:
#       control: {share: 0.5}
#       push: {share: 0.25, weights: {margin: 0.5}}   # the other 25%: base weights
"""
