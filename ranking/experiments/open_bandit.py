"""The Open Bandit Dataset (ZOZOTOWN, Saito et al. 2021) in the event contract: real logged
e-commerce recommendations with the true propensity of every shown item, read out by the same
code as any experiment.

Each logged row (``timestamp``, ``item_id``, ``position``, ``click``, ``propensity_score``) is
one request showing one item in one slot: an impression with ``position`` = the slot (1-3) and
``propensity`` = the logging policy's probability of that item in that slot; a click is a
``click`` outcome. The two logging policies (``random``: uniform, ``bts``: Bernoulli Thompson
sampling) are the two arms, ``random`` the control.

What the conversion cannot make true, and the readout says: the two logs are **not a randomized
split** of one population of customers; they are two policies' logs of the same week. And the
dataset publishes no user id, so each impression is its own unit (``customer_id`` =
``obd-<policy>-<row>``): the intervals treat impressions as independent, the usual reading of
this dataset, and clicks are rare (46 and 69 in the shipped sample), so they are wide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from clv.errors import DataError
from ranking.experiments.events import IMPRESSION_SCHEMA, OUTCOME_SCHEMA, query_hash, write_events
from ranking.experiments.readout import Readout, readout

#: The logging policies of the dataset, control first.
POLICIES = ("random", "bts")
#: The columns of a log this conversion reads.
LOG_COLUMNS = ("timestamp", "item_id", "position", "click", "propensity_score")

NOTES = (
    "Open Bandit Dataset: the arms are two logging policies' logs of the same week, not a "
    "randomized split of one population; read the lift as a comparison of two logs, not as "
    "a causal effect.",
    "The dataset has no user id: every impression is its own unit (customer), so the "
    "intervals assume impressions are independent.",
    "The sample-ratio test compares the two logs' sizes with equal shares; they are equal by "
    "construction (10,000 rows each), so it checks nothing here.",
)


@dataclass(frozen=True)
class Converted:
    """What :func:`convert_open_bandit` wrote."""

    impressions: int
    clicks: int
    clicks_by_policy: dict[str, int]
    impressions_by_policy: dict[str, int]


def log_path(source: str | Path, policy: str, campaign: str = "men") -> Path:
    return Path(source) / policy / campaign / f"{campaign}.csv"


def read_log(path: Path) -> pd.DataFrame:
    """One policy's log, checked: the columns this conversion needs, slots 1-3, clicks 0/1,
    propensities in (0, 1], timestamps with their UTC offset."""
    if not path.is_file():
        raise DataError("Open Bandit log not found (expected <source>/<policy>/<campaign>/"
                        "<campaign>.csv)", file=path)
    try:
        frame = pd.read_csv(path, usecols=lambda c: c in LOG_COLUMNS)
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        raise DataError(f"cannot parse the log: {exc}", file=path) from exc
    missing = [c for c in LOG_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}", file=path)
    checks = (("position", frame["position"].isin([1, 2, 3]), "slots are 1, 2 or 3"),
              ("click", frame["click"].isin([0, 1]), "clicks are 0 or 1"),
              ("propensity_score", (frame["propensity_score"] > 0)
               & (frame["propensity_score"] <= 1), "a propensity is in (0, 1]"),
              ("item_id", frame["item_id"].notna(), "missing item"))
    for column, ok, reason in checks:
        bad = np.flatnonzero(~ok.to_numpy())
        if bad.size:
            raise DataError(reason, file=path, line=int(bad[0]) + 2, column=column,
                            value=frame[column].iloc[bad[0]])
    try:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataError(f"unparsable timestamp: {exc}", file=path, column="timestamp") from exc
    return frame


def convert_open_bandit(source: str | Path, out: str | Path, *,
                        campaign: str = "men") -> Converted:
    """Write ``out/impressions/<policy>.parquet`` and ``out/outcomes/<policy>.parquet`` for both
    logging policies of ``campaign`` (module docs say how rows map)."""
    clicks, shown = {}, {}
    for policy in POLICIES:
        path = log_path(source, policy, campaign)
        frame = read_log(path)
        n = len(frame)
        request = np.array([f"obd-{policy}-{i}" for i in range(n)], dtype=object)
        stamps = pa.array(frame["timestamp"].to_numpy(), pa.timestamp("us", tz="UTC"))
        text = f"(recommendations: {campaign})"

        def const(value: str | None, size: int = n) -> pa.Array:
            return pa.array([value] * size, pa.string())

        impressions = pa.Table.from_arrays([
            pa.array(request, pa.string()), stamps, pa.array(request, pa.string()),
            const(text), const(query_hash(text)), const(f"obd-{policy}"), const(None),
            const(f"obd-{campaign}"), const(policy), const(None),
            pa.array(frame["item_id"].astype("int64").astype(str).to_numpy(dtype=object),
                     pa.string()),
            pa.array(frame["position"].to_numpy(np.int32), pa.int32()),
            pa.nulls(n, pa.float64()),
            pa.array(frame["propensity_score"].to_numpy(np.float64), pa.float64()),
            pa.array([True if policy == "random" else None] * n, pa.bool_()),  # uniform slots
        ], schema=IMPRESSION_SCHEMA)
        hit = np.flatnonzero(frame["click"].to_numpy() == 1)
        k = hit.size
        outcomes = pa.Table.from_arrays([
            pa.array([f"{r}-click" for r in request[hit]], pa.string()),
            pa.array(request[hit], pa.string()),
            impressions.column("product_id").take(pa.array(hit)),
            const("click", k), stamps.take(pa.array(hit)),
            pa.nulls(k, pa.int32()), pa.nulls(k, pa.float64()), pa.nulls(k, pa.float64()),
        ], schema=OUTCOME_SCHEMA)
        write_events(out, impressions, outcomes, name=policy)
        clicks[policy], shown[policy] = int(k), n
    return Converted(sum(shown.values()), sum(clicks.values()), clicks, shown)


def small_count_check(result: Readout) -> str:
    """The CTR comparison by two methods that do not lean on a normal approximation of a few
    dozen clicks: the log-scale (Katz) interval of the CTR ratio, and the exact conditional
    binomial test (given all clicks, how many are in ``bts``: under no difference, binomial
    with the share of impressions ``bts`` has)."""
    from scipy import stats

    t, c = result.arm("bts"), result.arm("random")
    x1, n1 = int(round(t.metrics["ctr"].numerator)), t.searches
    x0, n0 = int(round(c.metrics["ctr"].numerator)), c.searches
    if min(x0, x1) == 0:
        return "Small-count check: no clicks in one log; no interval can be given."
    ratio = (x1 / n1) / (x0 / n0)
    se = float(np.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0))
    low, high = ratio * np.exp(-1.959964 * se), ratio * np.exp(1.959964 * se)
    p = stats.binomtest(x1, x1 + x0, n1 / (n1 + n0)).pvalue
    return (f"Small-count check ({x0} and {x1} clicks): the CTR lift's log-scale (Katz) 95% "
            f"interval is [{100 * (low - 1):+.1f}%, {100 * (high - 1):+.1f}%] and the exact "
            f"conditional binomial test gives p = {p:.3f}. The delta-method interval above leans "
            "on a normal approximation; with so few clicks the methods can disagree on "
            "significance, so read any CTR difference here as weak evidence.")


def open_bandit_readout(events: str | Path, *, delta: float = 0.002) -> Readout:
    """The readout of a converted directory: ``bts`` against ``random``, with the notes on
    what this comparison is and is not."""
    result = readout(events, control="random", delta=delta,
                     expected_shares={p: 0.5 for p in POLICIES},
                     shares_source="equal log sizes (not a randomized split)")
    result.notes[:0] = [*NOTES, small_count_check(result)]
    result.notes = [n for n in result.notes
                    if not n.startswith("clv_reached omitted")] + [
        "CLV of customers reached: not available (the dataset has no customers' purchases)."]
    return result
