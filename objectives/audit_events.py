"""The audit of experiment event logs: impressions and outcomes looked at across rows.

The event contract (``ranking.experiments.events``) validates each row as it is read: a bad type,
a position of 0 or a propensity of 1.5 stops with file, line or row and column. What no single
row shows is what this module finds: an event id on two rows, a click on a product the request
never showed, a purchase timed before its impression, more units returned than bought, one
customer in two arms of an experiment (the randomization unit is the customer), a config or
bundle version that does not belong, the CTR of one day far from the log's.

The caller passes the tables in (``objectives`` does not import ``ranking``): every row as
written, *not* de-duplicated and *not* filtered to known requests, since those repeats and
orphans are findings here. ``ranking.app.audit_command`` reads them with the contract's own
per-file validation.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from objectives.audit_findings import Finding, finding
from objectives.audit_settings import DEFAULT_EVENT_SETTINGS, EventSettings

#: How many examples a finding carries.
EXAMPLES = 5



@dataclass(frozen=True)
class EventTables:
    """Impressions and outcomes as written (columns of the event contract), and their source."""

    impressions: pd.DataFrame
    outcomes: pd.DataFrame
    source: str = ""


def event_findings(events: EventTables, catalog_ids: Collection[str] | None = None,
                   customers: Collection[str] | None = None,
                   settings: EventSettings = DEFAULT_EVENT_SETTINGS) -> list[Finding | None]:
    """Every event finding (None where nothing was flagged). ``catalog_ids``: products that
    exist (``impressed_product_missing`` runs only with it); ``customers``: customer ids in the
    transactions (``customer_not_in_transactions`` runs only with it)."""
    imp, out = _impressions(events.impressions), _outcomes(events.outcomes)
    shown = imp[imp["product_id"].notna()]
    first_shown = (shown.groupby(["request_id", "product_id"], sort=False)["timestamp"].min()
                   .rename("shown_at"))
    unique = out.drop_duplicates("event_id")
    joined = unique.join(first_shown, on=["request_id", "product_id"])
    known = joined[joined["shown_at"].notna()]
    found = [duplicate_event_ids(out), orphan_outcomes(joined, set(imp["request_id"])),
             outcome_before_impression(known), purchase_without_click(known),
             non_positive_price(known), returns_exceed_purchases(known)]
    if catalog_ids is not None:
        found.append(impressed_product_missing(shown, catalog_ids))
    found += [stray_config_versions(imp, settings.min_config_searches),
              mixed_bundle_versions(imp), propensity_invalid(shown), assignment_leak(imp),
              no_result_searches(imp)]
    if customers is not None:
        found.append(customers_not_in_transactions(imp, customers))
    found.append(ctr_drift(shown, known, settings.ctr_drift_relative, settings.ctr_drift_z))
    return found


def event_summary(events: EventTables) -> dict[str, object]:
    """Figures for the report's coverage and the next audit's drift check."""
    imp, out = _impressions(events.impressions), _outcomes(events.outcomes)
    searches = imp["request_id"].nunique()
    shown = int(imp["product_id"].notna().sum())
    kinds = out.drop_duplicates("event_id")["type"].value_counts()
    days = imp["timestamp"].dt.floor("D")
    return {"impression_rows": len(imp), "searches": searches, "shown": shown,
            "outcomes": {k: int(v) for k, v in kinds.items()},
            "ctr": float(kinds.get("click", 0) / shown) if shown else None,
            "no_result_share": (float(imp.loc[imp["position"] < 1, "request_id"].nunique()
                                      / searches) if searches else None),
            "days": int(days.nunique()),
            "first": str(imp["timestamp"].min()) if len(imp) else None,
            "last": str(imp["timestamp"].max()) if len(imp) else None,
            "experiments": sorted(imp["experiment"].dropna().unique().tolist())}


# ---------------------------------------------------------------------------------------------
# The checks: each takes frames, returns a Finding or None


def duplicate_event_ids(out: pd.DataFrame) -> Finding | None:
    rows = out[out["event_id"].duplicated(keep=False)]
    if rows.empty:
        return None
    groups = rows.groupby("event_id", sort=True)
    conflicting = sorted(e for e, g in groups if len(g.drop_duplicates()) > 1)
    examples = [{"event_id": e, "rows": len(g), "same content": len(g.drop_duplicates()) == 1}
                for e, g in list(groups)[:EXAMPLES]]
    return finding("duplicate_event_id", groups.groups.keys(), examples,
                   f"{len(rows):,} rows; {len(conflicting):,} ids with different content")


def orphan_outcomes(joined: pd.DataFrame, requests: Collection[str]) -> Finding | None:
    orphans = joined[joined["shown_at"].isna()]
    examples = [{"event_id": r.event_id, "type": r.type, "request_id": r.request_id,
                 "product_id": r.product_id,
                 "why": ("product not shown in that request" if r.request_id in requests
                         else "request never logged")}
                for r in orphans.head(EXAMPLES).itertuples()]
    unknown = int((~orphans["request_id"].isin(requests)).sum())
    return finding("orphan_outcome", orphans["event_id"], examples,
                   f"{unknown:,} of them name a request with no impression at all")


def outcome_before_impression(known: pd.DataFrame) -> Finding | None:
    early = known[known["timestamp"] < known["shown_at"]]
    examples = [{"event_id": r.event_id, "type": r.type, "at": str(r.timestamp),
                 "shown at": str(r.shown_at)} for r in early.head(EXAMPLES).itertuples()]
    lead = (early["shown_at"] - early["timestamp"]).max() if len(early) else None
    return finding("outcome_before_impression", early["event_id"], examples,
                   f"up to {lead} early" if lead is not None else "")


def purchase_without_click(known: pd.DataFrame) -> Finding | None:
    clicks = (known[known["type"] == "click"].groupby(["request_id", "product_id"])
              ["timestamp"].min().rename("clicked_at"))
    money = known[known["type"].isin(("purchase", "return"))].join(
        clicks, on=["request_id", "product_id"])
    bad = money[~(money["clicked_at"] <= money["timestamp"])]  # NaT compares False
    examples = [{"event_id": r.event_id, "type": r.type, "request_id": r.request_id,
                 "product_id": r.product_id,
                 "click": "none" if pd.isna(r.clicked_at) else f"later ({r.clicked_at})"}
                for r in bad.head(EXAMPLES).itertuples()]
    return finding("purchase_without_click", bad["event_id"], examples)


def non_positive_price(known: pd.DataFrame) -> Finding | None:
    money = known[known["type"].isin(("purchase", "return"))]
    bad = money[~(money["unit_price"] > 0)]
    examples = [{"event_id": r.event_id, "type": r.type, "product_id": r.product_id,
                 "unit_price": r.unit_price} for r in bad.head(EXAMPLES).itertuples()]
    return finding("non_positive_price", bad["event_id"], examples)


def returns_exceed_purchases(known: pd.DataFrame) -> Finding | None:
    money = known[known["type"].isin(("purchase", "return"))]
    units = money.pivot_table(index=["request_id", "product_id"], columns="type",
                              values="quantity", aggfunc="sum", fill_value=0)
    for col in ("purchase", "return"):
        if col not in units.columns:
            units[col] = 0
    bad = units[units["return"] > units["purchase"]]
    examples = [{"request_id": r, "product_id": p, "returned": int(row["return"]),
                 "purchased": int(row["purchase"])}
                for (r, p), row in bad.head(EXAMPLES).iterrows()]
    return finding("returns_exceed_purchases", bad.index.tolist(), examples)


def impressed_product_missing(shown: pd.DataFrame,
                              catalog_ids: Collection[str]) -> Finding | None:
    missing = shown[~shown["product_id"].isin(pd.Index(list(catalog_ids)))]
    counts = missing["product_id"].value_counts()
    examples = [{"product_id": p, "impressions": int(n)}
                for p, n in counts.head(EXAMPLES).items()]
    return finding("impressed_product_missing", counts.index, examples,
                   f"{len(missing):,} impression rows")


def stray_config_versions(imp: pd.DataFrame, minimum: int) -> Finding | None:
    per = imp.groupby("config_version")["request_id"].nunique()
    stray = per[per < minimum]
    first = imp.groupby("config_version")["timestamp"].min()
    examples = [{"config_version": v, "searches": int(n), "at": str(first[v])}
                for v, n in stray.head(EXAMPLES).items()]
    return finding("stray_config_version", stray.index, examples,
                   f"fewer than {minimum} searches each; {per.size} versions in the log")


def mixed_bundle_versions(imp: pd.DataFrame) -> Finding | None:
    searches = imp.drop_duplicates("request_id")
    searches = searches[searches["bundle_version"].notna()]
    day = searches["timestamp"].dt.strftime("%Y-%m-%d")
    versions = searches.groupby(day)["bundle_version"].value_counts()
    per_day = versions.groupby(level=0).size()
    mixed = per_day[per_day > 1].index
    examples = [{"day": d, "searches by bundle": {v: int(n) for v, n in versions[d].items()}}
                for d in mixed[:EXAMPLES]]
    return finding("mixed_bundle_versions", mixed, examples)


def propensity_invalid(shown: pd.DataFrame) -> Finding | None:
    armed = shown[shown["experiment"].notna() & shown["arm"].notna()]
    prop = armed["propensity"]
    logs = prop.notna().groupby([armed["experiment"], armed["arm"]]).transform("any")
    if "randomized" in armed.columns:
        logs = logs | armed["randomized"].eq(True).groupby(
            [armed["experiment"], armed["arm"], armed["request_id"]]).transform("any")
    bad = armed[(logs & prop.isna()) | (prop <= 0) | (prop > 1)]
    examples = [{"request_id": r.request_id, "position": int(r.position),
                 "experiment": r.experiment, "arm": r.arm,
                 "propensity": None if pd.isna(r.propensity) else float(r.propensity)}
                for r in bad.head(EXAMPLES).itertuples()]
    return finding("propensity_invalid", zip(bad["request_id"], bad["position"], strict=True),
                   examples)


def assignment_leak(imp: pd.DataFrame) -> Finding | None:
    armed = imp[imp["experiment"].notna() & imp["arm"].notna() & imp["customer_id"].notna()]
    arms = armed.groupby(["experiment", "customer_id"])["arm"].unique()
    leak = arms[arms.map(len) > 1]
    examples = [{"experiment": e, "customer_id": c, "arms": sorted(a)}
                for (e, c), a in leak.head(EXAMPLES).items()]
    return finding("assignment_leak", leak.index.tolist(), examples,
                   f"of {arms.size:,} (experiment, customer) pairs" if leak.size else "")


def no_result_searches(imp: pd.DataFrame) -> Finding | None:
    empty = imp.loc[imp["position"] < 1, ["request_id", "query"]].drop_duplicates("request_id")
    searches = imp["request_id"].nunique()
    examples = [{"request_id": r.request_id, "query": r.query}
                for r in empty.head(EXAMPLES).itertuples()]
    share = len(empty) / searches if searches else 0.0
    return finding("no_result_searches", empty["request_id"], examples,
                   f"{share:.1%} of {searches:,} searches")


def customers_not_in_transactions(imp: pd.DataFrame,
                                  customers: Collection[str]) -> Finding | None:
    seen = pd.Index(imp["customer_id"].dropna().unique())
    missing = seen[~seen.isin(pd.Index(list(customers)))]
    examples = [{"customer_id": c} for c in missing[:EXAMPLES]]
    share = len(missing) / len(seen) if len(seen) else 0.0
    return finding("customer_not_in_transactions", missing, examples,
                   f"{share:.1%} of {len(seen):,} customers in the events (their segment is "
                   "the default)")


def ctr_drift(shown: pd.DataFrame, known: pd.DataFrame, relative: float,
              z: float) -> Finding | None:
    """Clicks (distinct clicked (request, product) pairs) over shown rows, per day of the
    impression, against the median day's CTR (three days or more)."""
    day = shown["timestamp"].dt.strftime("%Y-%m-%d")
    rows = day.value_counts().sort_index()
    clicked = known[known["type"] == "click"].drop_duplicates(["request_id", "product_id"])
    pairs = shown.assign(day=day).drop_duplicates(["request_id", "product_id"])
    hit = pairs.merge(clicked[["request_id", "product_id"]], on=["request_id", "product_id"])
    clicks = hit["day"].value_counts().reindex(rows.index, fill_value=0)
    if rows.size < 3:
        return None
    ctr = clicks / rows
    p = float(ctr.median())  # robust: a drifting day does not move the reference
    se = np.sqrt(p * (1 - p) / rows)
    gap = (ctr - p).abs()
    drift = ctr[(gap > relative * p) & (gap > z * se)] if p > 0 else ctr[ctr > 0]
    examples = [{"day": d, "ctr": round(float(c), 5), "median day ctr": round(p, 5),
                 "shown": int(rows[d])} for d, c in drift.head(EXAMPLES).items()]
    return finding("ctr_drift", drift.index, examples,
                   f"median daily CTR {p:.4f}; a day drifts beyond {relative:.0%} relative "
                   f"and {z:g} standard errors")


# ---------------------------------------------------------------------------------------------


def _impressions(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in ("customer_id", "query", "bundle_version", "experiment", "arm", "product_id",
                "propensity", "randomized"):
        if col not in out.columns:
            out[col] = None
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    out["propensity"] = pd.to_numeric(out["propensity"], errors="coerce")
    return out


def _outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in ("quantity", "unit_price", "unit_margin"):
        out[col] = pd.to_numeric(out[col], errors="coerce") if col in out.columns else np.nan
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    return out
