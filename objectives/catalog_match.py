"""Does a weights file fit the catalog and bundle it will serve: pinned and buried products
exist, category rules match some product, the inventory target is the bundle's.

A rule that names nothing is valid YAML, but it would silently never apply; these checks
turn such typos into errors at their line.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from typing import Any

from clv.errors import ConfigIssue
from objectives.config_messages import Loc, Problem, is_number, to_issues
from objectives.weights_rules import is_prefix, path_parts
from objectives.yaml_source import compose


def product_problems(data: Any, known: Collection[str]) -> list[Problem]:
    """Every pinned or buried product must exist, or the rule would silently do nothing."""
    if not isinstance(data, dict):
        return []
    pins = data.get("pins")
    problems: list[Problem] = []
    if isinstance(pins, dict):
        for query, ids in pins.items():
            problems += _unknown_products(("pins", query), ids, known)
    return problems + _unknown_products(("buries",), data.get("buries"), known)


def target_problems(data: Any, target: float) -> list[Problem]:
    """A served bundle's inventory term is fixed at build time: a file asking for another
    target would silently not apply, so it is refused until the bundle is rebuilt."""
    inventory = data.get("inventory") if isinstance(data, dict) else None
    written = inventory.get("target_weeks_of_cover", 8.0) if isinstance(inventory, dict) else 8.0
    if not is_number(written) or written == target:
        return []
    return [(("inventory", "target_weeks_of_cover"), f"is {written:g} but this bundle's "
             f"inventory term was built with {target:g}; rebuild the bundle to change it")]


def _unknown_products(loc: Loc, ids: Any, known: Collection[str]) -> list[Problem]:
    if not isinstance(ids, list):
        return []
    return [((*loc, index), f"unknown product {product!r}; it is not in the catalog")
            for index, product in enumerate(ids)
            if isinstance(product, str) and product not in known]


def unmatched_category_rules(text: str, categories: Iterable[str], *,
                             source: str = "<string>") -> list[ConfigIssue]:
    """The category rules of a (valid) weights file that match none of ``categories`` (a
    catalog's category paths), each at its line with the closest path as a suggestion. A rule
    that matches nothing is not wrong YAML, but a typo there ('Toolz/Power') would silently
    never apply, so ``validate-config`` with a catalog or bundle refuses it."""
    document = compose(text, source)
    paths = {path_parts(c) for c in set(categories)}
    problems: list[Problem] = []
    for key in (document.data or {}).get("categories") or {}:
        parts = path_parts(str(key))
        if any(is_prefix(parts, path) for path in paths):
            continue
        same_depth = sorted({"/".join(p[:len(parts)]) for p in paths if len(p) >= len(parts)})
        close = difflib.get_close_matches(str(key), same_depth, n=1, cutoff=0.6)
        problems.append((("categories", key), "matches no product's category"
                         + (f"; did you mean '{close[0]}'?" if close else "")))
    return to_issues(source, document.lines, problems)
