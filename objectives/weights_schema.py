"""The weights file's schema: pydantic models, one weight field per declared term.

The term fields come from :mod:`objectives.term_registry`, so adding a term adds its weight
here. The models are frozen and their sequences are tuples: the ranker swaps a whole config in
atomically while other threads read the old one, so a config must never change under a reader.
The layering rules (defaults, segment, category, arm) live on :class:`WeightsConfig`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from clv.errors import UnknownSegmentError
from objectives.config_messages import describe, format_path
from objectives.guardrail import DEFAULT_MAX_NDCG_DROP
from objectives.term_registry import TERM_NAMES, TERMS
from objectives.weights_rules import DEFAULT_SEGMENT, is_prefix, path_parts, rule_problems

#: Validation-context flag: parse_config has already run the rule checks with line numbers.
RULES_CHECKED = "rules_checked"


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
                {"got": describe(value)},
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
        if info.context and info.context.get(RULES_CHECKED):
            return self
        problems = rule_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(f"{format_path(loc)}: {text}" for loc, text in problems))
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
        parts = path_parts(path)
        matches = [key for key in self.categories if is_prefix(path_parts(key), parts)]
        return max(matches, key=lambda key: len(path_parts(key)), default=None)

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
