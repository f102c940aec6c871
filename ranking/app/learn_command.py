"""``marginrank experiment learn``: LambdaMART trained from logged interactions instead of
judgments (:mod:`ranking.experiments.learn`), written as a new bundle beside the labels.

The labels are the debiased mean gains of :mod:`ranking.experiments.click_labels` (``--raw``:
without debiasing), examination from the randomized searches when the logs have them and EM
otherwise. The labels are also written as ``labels.csv`` in the judgments format (query,
product_id, grade), so ``marginrank tune --judgments OUT/labels.csv`` tunes, and checks its
NDCG guardrail, on interaction labels where no judgments exist; ``report.md`` says which
labels were used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``learn`` on the ``experiment`` group."""
    learn = subparsers.add_parser(
        "learn", help="train LambdaMART from logged clicks, carts and purchases (debiased)")
    learn.add_argument("--events", type=Path, required=True,
                       help="event directory: impressions/*, outcomes/*")
    learn.add_argument("--bundle", type=Path, required=True,
                       help="the bundle that served the logs (features are recomputed from it)")
    learn.add_argument("--out", type=Path, required=True,
                       help="folder: bundle/ (the retrained bundle), labels.csv, report.md/json")
    learn.add_argument("--raw", action="store_true",
                       help="train on raw interaction labels (no position debiasing)")
    learn.add_argument("--trees", type=int, default=300, help="boosting rounds (default 300)")
    learn.add_argument("--max-weight", type=float, default=10.0,
                       help="clip inverse examination weights here (default 10)")
    learn.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ranking.app.events_api import bundle_version
    from ranking.experiments.click_labels import interaction_labels
    from ranking.experiments.estimate import examination, logged
    from ranking.experiments.events import load_events
    from ranking.experiments.learn import check_bundle_version, integer_labels, training_set
    from ranking.ranker import Ranker

    events = load_events(args.events)
    rows = logged(events.impressions, events.outcomes)
    check_bundle_version(rows.bundle_version.tolist(), bundle_version(args.bundle))
    ranker = Ranker.load(args.bundle)
    bias = examination(rows, bootstrap=10, em=None)
    labels = interaction_labels(events.impressions, events.outcomes, bias.combined,
                                max_weight=args.max_weight)
    data = training_set(ranker, labels, debiased=not args.raw)
    model = ranker.model.clone(n_estimators=args.trees).fit(data.X, data.y, data.qid)
    ranker.model = model
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    extra = {}
    if (args.bundle / "clv.json").is_file():
        extra["clv.json"] = json.loads((args.bundle / "clv.json").read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    ranker.save(args.out / "bundle", settings=manifest.get("settings"), extra_json=extra)
    values = labels.label if not args.raw else labels.raw
    import pandas as pd

    pd.DataFrame({"query": labels.query, "product_id": labels.product_id,
                  "grade": integer_labels(values), "shown": labels.shown}).to_csv(
        args.out / "labels.csv", index=False)
    report = {"events": str(args.events), "bundle": str(args.bundle),
              "labels_used": data.labels_used, "examination": bias.combined.to_dict(),
              "queries": len(data.queries), "rows": int(data.y.size),
              "clipped_rows": labels.clipped_rows, "max_weight": labels.max_weight,
              "gains": dict(labels.gains), "label_counts": np.bincount(data.y).tolist()}
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "report.md").write_text(
        f"# LambdaMART from logs\n\nLabels used: **{data.labels_used}** (gains "
        f"{dict(labels.gains)}, inverse-examination weights clipped at {labels.max_weight}: "
        f"{labels.clipped_rows:,} rows clipped; examination: {bias.combined.method}).\n"
        f"Trained on {data.y.size:,} shown (query, product) pairs of {len(data.queries):,} "
        f"queries; groups are the products actually shown. Bundle: `{args.out / 'bundle'}`; "
        f"labels in the judgments format: `{args.out / 'labels.csv'}` (for "
        "`marginrank tune --judgments`).\n")
    print(f"trained on {data.labels_used}: {data.y.size:,} rows, {len(data.queries):,} queries;"
          f" wrote {args.out / 'bundle'}, labels.csv, report.md")
    return 0
