"""What an audit reports: findings with a stable code, a severity, a count and examples.

Every check of :mod:`objectives.audit` returns :class:`Finding` objects. A finding keeps the
keys of everything it flagged (``keys``: product ids, customer ids, id pairs), so a test or a
caller can compare two audits exactly; the JSON report carries the count and a few examples.
Severities come from :data:`DEFAULT_SEVERITY` and can be overridden per code (``blocking``,
``warning`` or ``off``); ``build`` stops on blocking findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from clv.errors import ArgumentError, AuditError  # noqa: F401 (AuditError: re-exported)

BLOCKING, WARNING, OFF = "blocking", "warning", "off"
SEVERITIES = (BLOCKING, WARNING, OFF)
#: Severity of findings that describe the data rather than fault it; never stops a build.
INFO = "info"

#: The findings of the event-log audit (:mod:`objectives.audit_events`), part of :data:`CODES`.
EVENT_CODES: dict[str, tuple[str, str]] = {
    "duplicate_event_id": (BLOCKING, "outcome event ids on more than one row (the readout "
                                     "keeps one; with different content it cannot know which)"),
    "orphan_outcome": (WARNING, "outcomes whose (request_id, product_id) no impression shows"),
    "outcome_before_impression": (BLOCKING, "outcomes timestamped before the impression they "
                                            "answer"),
    "purchase_without_click": (WARNING, "purchases or returns with no earlier click on that "
                                        "product in that request"),
    "non_positive_price": (WARNING, "purchases or returns with a unit price of 0 or less"),
    "returns_exceed_purchases": (BLOCKING, "(request, product) pairs with more units returned "
                                           "than purchased"),
    "impressed_product_missing": (WARNING, "shown products that are not in the catalog"),
    "stray_config_version": (WARNING, "config versions carried by fewer searches than the "
                                      "stated minimum (seen nowhere else in the log)"),
    "mixed_bundle_versions": (WARNING, "days whose searches carry more than one bundle "
                                       "version"),
    "propensity_invalid": (BLOCKING, "shown rows of an experiment arm that logs propensities "
                                     "with a propensity missing or outside (0, 1]"),
    "assignment_leak": (BLOCKING, "customers in more than one arm of the same experiment"),
    "no_result_searches": (INFO, "searches that showed nothing"),
    "customer_not_in_transactions": (INFO, "customers in the events with no transaction"),
    "ctr_drift": (INFO, "days whose CTR is far from the median day's (relative and "
                        "binomial z thresholds)"),
}

#: Every finding code, its default severity and what it means. Blocking by default: what makes a
#: build wrong rather than worse (an id that names two products, a value outside its range, a
#: judgment or pin on a product that does not exist). A price below cost is a warning: loss
#: leaders and clearance are deliberate (the demo world has 41); make it blocking with
#: ``--severity price_below_cost=blocking`` where it can only be an error.
CODES: dict[str, tuple[str, str]] = {
    "duplicate_product_id": (BLOCKING, "product ids that appear on more than one row"),
    "exact_duplicate_product": (WARNING, "products whose every field but the id is identical "
                                         "to another product's"),
    "near_duplicate_title": (WARNING, "pairs of titles in one category whose character-shingle "
                                      "Jaccard similarity reaches the threshold"),
    "duplicate_customer_id": (WARNING, "customer ids that differ only by case, width, "
                                       "whitespace or Unicode form"),
    "stale_stock": (WARNING, "products with stock but no sale in the last N days"),
    "stale_price": (WARNING, "prices not updated since the stated date"),
    "stale_customer": (WARNING, "customers whose last order is older than the CLV horizon"),
    "judged_product_missing": (BLOCKING, "judged products that are not in the catalog"),
    "pinned_product_missing": (BLOCKING, "pinned or buried products that are not in the "
                                         "catalog"),
    "price_below_cost": (WARNING, "products priced below their unit cost"),
    "negative_value": (BLOCKING, "negative prices, costs, stock or sales"),
    "margin_outlier": (WARNING, "margin rates far from the catalog's (robust z)"),
    "return_rate_out_of_range": (BLOCKING, "return rates outside [0, 1]"),
    "return_rate_high": (WARNING, "return rates far above their category's (robust z)"),
    "stock_without_velocity": (WARNING, "products with stock and a daily_sales of 0 or none"),
    "single_product_category": (WARNING, "categories with one product"),
    "price_scale_outlier": (WARNING, "prices 20x above or below their category's median (a "
                                     "currency or unit mix, cents for dollars)"),
    "mixed_currency": (WARNING, "more than one currency in a currency column"),
    "field_mostly_missing": (WARNING, "business fields missing on more than half the products"),
    "drift": (WARNING, "figures that changed beyond the threshold since the previous audit"),
    **EVENT_CODES,
}


@dataclass
class Finding:
    """One kind of problem: its code, how many, a few examples and every flagged key."""

    code: str
    count: int
    examples: list[dict[str, object]]
    keys: frozenset[object] = frozenset()
    detail: str = ""
    severity: str = WARNING

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "severity": self.severity, "count": self.count,
                "description": CODES[self.code][1], "detail": self.detail,
                "examples": self.examples}

    def line(self) -> str:
        """One human line: severity, code, count and the detail."""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.severity.upper()} {self.code} ({self.count:,}){detail}"


def finding(code: str, keys: object, examples: list[dict[str, object]],
            detail: str = "", count: int | None = None) -> Finding | None:
    """A finding of ``keys`` (an iterable), or None when nothing was flagged."""
    keyset = frozenset(keys)  # type: ignore[arg-type]
    n = len(keyset) if count is None else count
    return Finding(code, n, examples, keyset, detail) if n else None


def parse_severity(items: Mapping[str, str] | list[str] | tuple[str, ...]) -> dict[str, str]:
    """``{"code": "level"}`` from a mapping or ``CODE=LEVEL`` strings, every code checked."""
    pairs = items.items() if isinstance(items, Mapping) else [_split(s) for s in items]
    out = {}
    for code, level in pairs:
        if code not in CODES:
            raise ArgumentError(f"unknown audit finding code {code!r}; known: {sorted(CODES)}")
        if level not in SEVERITIES:
            raise ArgumentError(f"severity of {code!r} must be one of {SEVERITIES}, not "
                                f"{level!r}")
        out[code] = level
    return out


def _split(item: str) -> tuple[str, str]:
    code, sep, level = item.partition("=")
    if not sep:
        raise ArgumentError(f"write a severity as CODE=LEVEL (e.g. price_below_cost=warning), "
                            f"not {item!r}")
    return code.strip(), level.strip()


@dataclass
class AuditResult:
    """Every finding (severity applied, ``off`` ones dropped), coverage tables and the flat
    metrics that the next audit's drift check compares against."""

    sources: dict[str, str]
    findings: list[Finding]
    coverage: dict[str, object]
    metrics: dict[str, float]
    settings: dict[str, object]

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == BLOCKING]

    def by_code(self, code: str) -> Finding | None:
        return next((f for f in self.findings if f.code == code), None)

    def keys(self, code: str) -> frozenset[object]:
        """Everything flagged under ``code`` (empty when nothing was)."""
        found = self.by_code(code)
        return found.keys if found else frozenset()

    def to_dict(self) -> dict[str, object]:
        return {"sources": self.sources, "settings": self.settings,
                "findings": [f.to_dict() for f in self.findings],
                "blocking": len(self.blocking), "coverage": self.coverage,
                "metrics": self.metrics}

    def summary_lines(self) -> list[str]:
        """One line per finding, blocking first, for a build report."""
        ordered = sorted(self.findings, key=lambda f: (f.severity != BLOCKING, f.code))
        return [f"audit: {f.line()}" for f in ordered] or ["audit: no findings"]


def apply_severity(findings: list[Finding | None], overrides: Mapping[str, str]) -> list[Finding]:
    """Drop the Nones, set each finding's severity (override, else default), drop ``off``."""
    out = []
    for f in findings:
        if f is None:
            continue
        f.severity = overrides.get(f.code, CODES[f.code][0])
        if f.severity != OFF:
            out.append(f)
    return out
