"""Learning from real logs: examination by slot and off-policy estimates on the Open Bandit
Dataset (ZOZOTOWN, "men" campaign; ../shared/data/open-bandit-dataset, read its SOURCE.md).

Two logs of 10,000 impressions each, one from a uniform-random policy (every item equally likely
in every slot, propensity 1/34) and one from Bernoulli Thompson sampling (BTS). Checks:

1. **Examination by slot.** From the random log, where an item's slot is independent of its
   appeal, the click-through ratio of slot k to slot 1 is the examination ratio
   (:func:`ranking.experiments.position_bias.from_randomized`). From the BTS log, where good items
   sit in the slots BTS favours, the PBM EM (:func:`~ranking.experiments.position_bias.em_pbm`)
   must separate slot from item; it is "consistent" with the random-log estimate when each slot's
   two intervals overlap.
2. **Off-policy value of BTS from the random log.** The target policy's probability of item ``a``
   in slot ``s`` is its frequency in the BTS log (BTS is not contextual; the frequency estimates
   its time-averaged choice probabilities). IPS and SNIPS on the random log estimate the BTS CTR;
   the report says whether their interval covers BTS's on-policy CTR in its own log (with its own
   interval). The logs are from different days and users, so a miss can be drift as well as
   estimator error; the report says so.

There are 46 and 69 clicks: every interval is wide, and the report says so.

    python benchmarks/open_bandit_logs.py [--data ../shared/data/open-bandit-dataset]
        [--out docs/open_bandit_logs]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from report_env import command, environment, finish, header, write_report  # noqa: E402

from ranking.experiments.offpolicy import ips, snips  # noqa: E402
from ranking.experiments.position_bias import Examination, em_pbm, from_randomized  # noqa: E402
from ranking.experiments.stats import ratio  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "open-bandit-dataset"
COLUMNS = ("item_id", "position", "click", "propensity_score")


def read_log(path: Path) -> pd.DataFrame:
    """The columns the checks use, typed; a missing column is named."""
    frame = pd.read_csv(path, usecols=lambda c: c in COLUMNS)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise SystemExit(f"{path}: missing column(s) {missing}")
    return frame.astype({"item_id": np.int64, "position": np.int64, "click": np.int64,
                         "propensity_score": np.float64})


def target_probabilities(bts: pd.DataFrame) -> dict[tuple[int, int], float]:
    """BTS's frequency of each (item, slot) among its impressions in that slot."""
    counts = bts.groupby(["position", "item_id"]).size()
    per_slot = bts.groupby("position").size()
    return {(int(item), int(slot)): float(n / per_slot[slot])
            for (slot, item), n in counts.items()}


def on_policy_ctr(log: pd.DataFrame) -> dict[str, float]:
    est = ratio(log["click"].to_numpy(float), np.ones(len(log)))
    half = 1.959963984540054 * est.se
    return {"value": est.value, "low": est.value - half, "high": est.value + half,
            "clicks": int(log["click"].sum()), "impressions": int(len(log))}


def _exam_rows(exam: Examination) -> list[dict[str, object]]:
    return exam.to_dict()["positions"]  # type: ignore[return-value]


def _overlap(a: Examination, b: Examination) -> list[bool]:
    return [bool(max(lo1, lo2) <= min(hi1, hi2))
            for lo1, hi1, lo2, hi2 in zip(a.low, a.high, b.low, b.high, strict=True)]


def run(data: Path, seed: int = 0, bootstrap: int = 200) -> dict[str, object]:
    random_log = read_log(data / "random" / "men" / "men.csv")
    bts_log = read_log(data / "bts" / "men" / "men.csv")
    exam_random = from_randomized(random_log["position"], random_log["click"])
    exam_em = em_pbm(bts_log["position"], bts_log["click"], bts_log["item_id"],
                     bootstrap=bootstrap, seed=seed)
    pi = target_probabilities(bts_log)
    target = np.array([pi.get((int(a), int(s)), 0.0)
                       for a, s in zip(random_log["item_id"], random_log["position"],
                                       strict=True)])
    reward = random_log["click"].to_numpy(float)
    logging = random_log["propensity_score"].to_numpy()
    # the target's CTR per impression over the random log's slots: the slot mix is the same
    # (every impression has one slot), so both estimators target the per-impression CTR
    est_ips = ips(reward, target, logging, source="random/men/men.csv")
    est_snips = snips(reward, target, logging, group=random_log["position"].to_numpy(),
                      source="random/men/men.csv")
    # SNIPS per slot sums the slots' CTRs; divide by the number of slots for per impression
    n_slots = random_log["position"].nunique()
    snips_per_impression = {k: (v / n_slots if k in ("value", "low", "high", "se") else v)
                            for k, v in est_snips.to_dict().items()}
    truth = on_policy_ctr(bts_log)
    return {
        "clicks": {"random": int(random_log["click"].sum()), "bts": int(bts_log["click"].sum())},
        "examination_random": _exam_rows(exam_random),
        "examination_em_bts": _exam_rows(exam_em),
        "consistent_by_slot": _overlap(exam_random, exam_em),
        "bts_on_policy_ctr": truth,
        "random_on_policy_ctr": on_policy_ctr(random_log),
        "ips": {**est_ips.to_dict(), "covers_on_policy": est_ips.covers(truth["value"])},
        "snips": {**snips_per_impression,
                  "covers_on_policy": bool(snips_per_impression["low"] <= truth["value"]
                                           <= snips_per_impression["high"])},
        "largest_weight": float(np.max(target / logging)),
        "em_bootstrap": bootstrap, "seed": seed,
    }


def _markdown(r: dict[str, object], cmd: str, env: dict[str, object]) -> str:
    ex_r, ex_e = r["examination_random"], r["examination_em_bts"]
    lines = [
        *header("Learning from real logs: Open Bandit Dataset (men)", cmd, env),
        f"Real logs, real clicks: **{r['clicks']['random']}** clicks in the uniform-random log "
        f"and **{r['clicks']['bts']}** in the Thompson-sampling log (10,000 impressions each). "
        "With so few clicks every interval below is wide; read them as such.", "",
        "## Examination by slot (relative to slot 1, 95% intervals)", "",
        "| slot | random log: CTR ratio | clicks | BTS log: PBM EM | clicks | consistent |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for a, b, ok in zip(ex_r, ex_e, r["consistent_by_slot"], strict=True):
        lines.append(f"| {a['position']} | {a['examination']:.2f} [{a['low']:.2f}, "
                     f"{a['high']:.2f}] | {a['clicks']} | {b['examination']:.2f} "
                     f"[{b['low']:.2f}, {b['high']:.2f}] | {b['clicks']} | "
                     f"{'yes' if ok else 'no'} |")
    t = r["bts_on_policy_ctr"]
    lines += [
        "", "The random log's ratios are delta-method intervals (each impression a cluster); "
        "the EM's are percentile intervals of a Poisson bootstrap "
        f"({r['em_bootstrap']} resamples, seed {r['seed']}). \"Consistent\" means the two "
        "intervals overlap.", "",
        "## The Thompson-sampling policy's CTR, estimated from the random log", "",
        "| estimate | CTR | 95% interval | covers BTS on-policy |", "| --- | --- | --- | --- |",
        f"| BTS on-policy (its own log, {t['clicks']} clicks) | {t['value']:.5f} | "
        f"[{t['low']:.5f}, {t['high']:.5f}] | |",
    ]
    for name in ("ips", "snips"):
        e = r[name]
        lines.append(f"| {name.upper()} on the random log | {e['value']:.5f} | "
                     f"[{e['low']:.5f}, {e['high']:.5f}] | "
                     f"{'yes' if e['covers_on_policy'] else 'no'} |")
    u = r["random_on_policy_ctr"]
    lines += [
        f"| (random policy on-policy, for scale) | {u['value']:.5f} | "
        f"[{u['low']:.5f}, {u['high']:.5f}] | |", "",
        "The target's choice probabilities are BTS's (item, slot) frequencies in its own log "
        "(BTS is not contextual). No weight was clipped: the largest is "
        f"{r['largest_weight']:.1f} (at most 34, one over the random log's propensity 1/34). "
        "The two logs come from different days and users: a miss can be drift between them as "
        "well as estimator error.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="the Open Bandit Dataset folder")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "open_bandit_logs",
                        help="report path prefix (.md, .json)")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = parser.parse_args(argv)
    cmd, env = command(__file__, argv), environment("numpy", "pandas")
    if not (args.data / "random" / "men" / "men.csv").exists():
        print(f"no Open Bandit data at {args.data}", file=sys.stderr)
        return 2
    result = run(args.data, args.seed, args.bootstrap)
    env = finish(env)
    text = _markdown(result, cmd, env)
    write_report(args.out, text, result, cmd, env)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
