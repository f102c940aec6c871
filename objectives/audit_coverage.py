"""Coverage and drift of the audit: how much of each business field is missing, judged queries
per category, and what changed since a previous audit's JSON beyond the stated thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from clv.errors import DataError
from objectives.audit_findings import Finding, finding
from objectives.catalog import NUMERIC_RANGES

BUSINESS_TEXT = ("description", "category", "brand", "attributes")
#: A business field missing on more than this share of products is a finding.
MOSTLY_MISSING = 0.5


def missing_shares(catalog: pd.DataFrame) -> dict[str, float]:
    """Share of products without each optional field ("" counts as missing text)."""
    out = {}
    for col in (*BUSINESS_TEXT, *NUMERIC_RANGES):
        if col not in catalog.columns:
            out[col] = 1.0
        elif col in BUSINESS_TEXT:
            out[col] = float((catalog[col].fillna("").astype(str).str.strip() == "").mean())
        else:
            out[col] = float(pd.to_numeric(catalog[col], errors="coerce").isna().mean())
    return out


def mostly_missing(shares: dict[str, float]) -> Finding | None:
    gaps = {c: s for c, s in shares.items() if c in NUMERIC_RANGES and s > MOSTLY_MISSING}
    return finding("field_mostly_missing", gaps,
                   [{"field": c, "missing_share": round(s, 4)} for c, s in gaps.items()],
                   f"missing on more than {MOSTLY_MISSING:.0%} of products; the terms give "
                   "them a neutral value")


def judged_queries_per_category(catalog: pd.DataFrame, judgments: pd.DataFrame) -> dict[str, int]:
    """Distinct judged queries with at least one judged product in each top-level category
    (products not in the catalog are left out; "(none)" for products without a category)."""
    codes, paths = pd.factorize(catalog["category"].fillna("").astype(str))
    heads = np.array([p.split("/")[0].strip() or "(none)" for p in paths] or ["(none)"])
    top = pd.Series(heads[codes], index=catalog["product_id"].to_numpy())
    top = top[~top.index.duplicated()]
    cat = top.reindex(judgments["product_id"].to_numpy()).to_numpy()
    frame = pd.DataFrame({"q": judgments["query_id"].to_numpy(), "c": cat}).dropna()
    counts = frame.drop_duplicates().groupby("c")["q"].count().sort_values(ascending=False)
    for c in top.unique():
        counts.loc[c] = counts.get(c, 0)
    return {str(k): int(v) for k, v in counts.items()}


def load_previous(path: Path) -> dict[str, float]:
    """The metrics of a previous audit's JSON report."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        metrics = data["metrics"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"not a previous audit report (JSON with 'metrics'): {exc}",
                        file=path) from exc
    if not isinstance(metrics, dict):
        raise DataError("'metrics' is not an object", file=path, column="metrics")
    return {str(k): float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def drift(previous: dict[str, float], current: dict[str, float], relative: float,
          share: float) -> Finding | None:
    """Metrics that moved beyond the thresholds: shares (names starting ``missing.`` or
    ending ``_share``) by more than ``share`` absolute; every other figure by more than
    ``relative`` of the previous value (a figure that appears or disappears counts too)."""
    changed = []
    for name in sorted(set(previous) | set(current)):
        old, new = previous.get(name, 0.0), current.get(name, 0.0)
        if name.startswith("missing.") or name.endswith("_share"):
            moved = abs(new - old) > share
        else:
            moved = abs(new - old) > relative * abs(old) if old else new != 0
        if moved and np.isfinite(old) and np.isfinite(new):
            changed.append({"metric": name, "previous": old, "current": new})
    return finding("drift", [c["metric"] for c in changed], changed,
                   f"relative change > {relative:.0%}, shares by > {share:.2f} absolute")
