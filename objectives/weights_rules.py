"""Rules of a weights file that field types cannot express: segment names and thresholds,
category paths, pins and buries, experiments and their shares.

They work on the raw YAML data, so that :func:`objectives.config.parse_config` can report
each problem at its line, and skip whatever has the wrong type (the schema pass reports that).
:class:`~objectives.weights_schema.WeightsConfig` runs them too, for configs built in code.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from objectives.config_messages import Loc, Problem, is_number

_SEGMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


#: The key of ``shares_by_segment`` for customers in no segment (unknown or below every
#: threshold), who get the default weights.
DEFAULT_SEGMENT = "default"
#: How far a segment's shares may be from the arms' total (they are written rounded).
SHARE_TOLERANCE = 1e-6


def path_parts(path: str) -> tuple[str, ...]:
    """A category path's components, trimmed: ``"Tools / Power"`` is ``("Tools", "Power")``."""
    return tuple(part.strip() for part in path.split("/"))


def is_prefix(prefix: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Whether a category rule's components start a product's, on whole components."""
    return parts[: len(prefix)] == prefix


def rule_problems(data: Any, pin_rule: Callable[[str], str] | None = None) -> list[Problem]:
    """Every rule problem in ``data`` (segments, categories, pins and buries, experiments).
    ``pin_rule`` is the form pinned queries are matched in (:func:`pin_key` when None)."""
    if not isinstance(data, dict):
        return []
    return [*_segment_problems(data.get("segments")), *_category_problems(data.get("categories")),
            *_pin_problems(data.get("pins"), data.get("buries"), pin_rule or pin_key),
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
        if not is_number(share) or not 0.0 <= share <= 1.0:
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
                     if is_number(arms[arm].get("share")) and arms[arm]["share"] != 0]
        by_segment = experiment.get("shares_by_segment")
        if not isinstance(by_segment, dict):
            continue
        if by_segment and DEFAULT_SEGMENT in known:
            problems.append((("segments", DEFAULT_SEGMENT), f"segment name {DEFAULT_SEGMENT!r} "
                             "is reserved for customers in no segment when an experiment has "
                             "shares_by_segment; rename the segment"))
        shares = [rule.get("share") if isinstance(rule, dict) else None for rule in arms.values()]
        expected = sum(s for s in shares if is_number(s))
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
                         for arm in frozen if is_number(listed.get(arm)) and listed[arm] != 0]
            values = [v for v in listed.values() if is_number(v) and 0.0 <= v <= 1.0]
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
        if not is_number(threshold):
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
        parts = path_parts(key)
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
    """The form pins are compared in when no bundle says otherwise: Unicode width, case,
    spacing and punctuation do not matter. A pin is matched by the bundle's analyzer (its
    settings are the bundle's), so the ranker validates a file with that rule instead
    (``parse_config(pin_rule=...)``): the one it keys pins and searched queries by."""
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", query).casefold()))


def _pin_problems(pins: Any, buries: Any, key_of: Callable[[str], str]) -> list[Problem]:
    """A pin must be reachable (its query has words), unambiguous (no two keys for the same
    query under ``key_of``), list a product once, and not also bury it."""
    if not isinstance(pins, dict):
        return []
    buried = {b for b in buries if isinstance(b, str)} if isinstance(buries, list) else set()
    problems: list[Problem] = []
    owner_of: dict[str, str] = {}
    for query, ids in pins.items():
        if not isinstance(query, str):
            continue
        key = key_of(query)
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
