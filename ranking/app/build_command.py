"""``marginrank build``: a tuned bundle from your own tables, its report, and hints to use it.

:func:`run_build` is also the demo's job (``marginrank demo`` builds on the embedded world):
build, write the report, load the bundle the way a service does and evaluate it as served.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from clv.errors import MarginRankError
from ranking.app.cluster import add_cluster_argument, dask_client

if TYPE_CHECKING:
    from objectives.tuner import TuneResult
    from ranking.app import preview
    from ranking.app.build import BuildInputs, BuildResult


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``build``."""
    bld = subparsers.add_parser("build", help="build a tuned bundle from your own tables")
    bld.add_argument("--catalog", type=Path, required=True,
                     help="products table: CSV, CSV.GZ, TSV or Parquet (see data/README.md)")
    bld.add_argument("--judgments", type=Path,
                     help="graded (query, product) pairs to train and tune on (or --events)")
    bld.add_argument("--events", type=Path,
                     help="event directory (impressions/, outcomes/): train and tune on "
                          "debiased click/cart/purchase labels, beside --judgments if given "
                          "(docs/learning_from_logs.md)")
    bld.add_argument("--served-bundle", type=Path,
                     help="with --events: the bundle that served the logged impressions "
                          "(their features are recomputed from it)")
    bld.add_argument("--transactions", type=Path, required=True,
                     help="order lines, for customer lifetime value and sales")
    bld.add_argument("--config", type=Path,
                     help="your weights YAML; the tuned copy, comments kept, is the one served "
                          "(default: built-in weights)")
    bld.add_argument("--out", type=Path, required=True,
                     help="folder for the bundle and the report")
    bld.add_argument("--seed", type=int, default=7,
                     help="random seed for the query split, training and tuning (default: 7)")
    bld.add_argument("--audit-severity", action="append", default=[], metavar="CODE=LEVEL",
                     help="severity of a data-audit finding code (blocking, warning, off); "
                          "blocking findings stop the build (see marginrank audit)")
    bld.add_argument("--sign-key-file", type=Path, metavar="FILE",
                     help="sign the bundle's manifest (HMAC-SHA256) with the key in FILE; "
                          "services holding the key load only bundles it signed "
                          "(docs/bundles.md)")
    add_cluster_argument(bld)
    bld.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from objectives.audit_findings import parse_severity
    from ranking import bundle
    from ranking.app.build import BuildInputs

    if args.judgments is None and args.events is None:
        raise MarginRankError("build needs --judgments, --events (with --served-bundle), "
                              "or both")
    if args.events is not None and args.served_bundle is None:
        raise MarginRankError("--events needs --served-bundle: the bundle that served the "
                              "logged impressions (their features are recomputed from it)")
    inputs = BuildInputs(args.catalog, args.judgments, args.transactions, args.config,
                         events=args.events, served_bundle=args.served_bundle)
    key = bundle.read_key_file(args.sign_key_file) if args.sign_key_file else None
    return run_build(inputs, args.out, args.seed, title="marginrank build",
                     audit_severity=tuple(parse_severity(args.audit_severity).items()),
                     cluster=args.cluster, sign_key=key)


def run_build(inputs: BuildInputs, out: Path, seed: int, title: str,
              audit_severity: tuple[tuple[str, str], ...] = (),
              cluster: str | None = None, sign_key: bytes | None = None) -> int:
    """Build into ``out/bundle``, write ``out/report.md`` and ``.json``, then load the bundle as
    a service would (checksums and signature verified), evaluate it as served and print the
    report, a sample search and the commands to go on with."""
    from ranking.app import preview
    from ranking.app.build import BuildSettings, build
    from ranking.app.progress import Progress
    from ranking.app.search_command import format_results
    from ranking.ranker import Ranker

    start = time.perf_counter()
    progress = Progress()
    with dask_client(cluster) as client:
        result = build(inputs, out / "bundle",
                       BuildSettings(seed=seed, audit_severity=audit_severity,
                                     sign_key=sign_key), progress, client)
    report, summary = _report(result, title, time.perf_counter() - start), _report_json(result)
    _write_report(out, report, summary)  # kept even if the bundle then fails to load
    # the serving path, checksums (and the signature) verified, as a service would
    ranker = Ranker.load(out / "bundle", key=sign_key)
    with progress.stage("evaluating the bundle as served"):
        served = preview.served_evaluation(ranker, result.test_judgments, seed)
    report += _served_section(served, ranker.n_candidates)
    summary |= {"served_evaluation": served.to_dict()}
    _write_report(out, report, summary)
    print(report)
    query = result.sample_query
    print(f"Sample search on the bundle, held-out query {query!r} (top 5, with explanation):\n")
    print(format_results(ranker.search(query, k=5, explain=True), explain=True))
    if slots := ranker.config.guardrails.business_slots:
        print(f"\n(business_slots: {slots}: the blended score chose the first {slots} products; "
              "they are listed in relevance order)")
    me, bundle_dir = command_name(), shlex.quote(str(out / "bundle"))
    served = shlex.quote(str(out / "bundle" / "weights.yaml"))
    print(f"\nbundle: {out / 'bundle'}\nreport: {out / 'report.md'}\n"
          f"served weights: {out / 'bundle' / 'weights.yaml'} (the tuned copy of "
          f"{inputs.config or 'the built-in weights'}, comments kept)\n"
          f"try:    {me} search --bundle {bundle_dir} --explain {shlex.quote(query)}\n"
          f"        {me} preview --bundle {bundle_dir} {served}")
    return 0


def command_name() -> str:
    """How to run marginrank again from this shell, as it was run now (so a printed hint works
    even when the virtual environment is not activated)."""
    import shutil

    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "marginrank" and script.is_file():
        return shlex.quote(str(script))
    if shutil.which("marginrank") is not None:  # on PATH: the plain name works
        return "marginrank"
    return f"{shlex.quote(sys.executable)} -m ranking.app.cli"


def _write_report(out: Path, report: str, summary: dict[str, object]) -> None:
    (out / "report.md").write_text(report, encoding="utf-8")
    (out / "report.json").write_text(json.dumps(summary, indent=2))


def _served_section(served: preview.ServedEvaluation, n_candidates: int) -> str:
    """The report's table of the test queries run through the saved bundle."""
    from objectives.evaluation import BASELINE

    shares = " and ".join(f"{share:.1%} ({name})" for name, share in served.judged_share.items())
    base, tuned = (served.condensed.row(n) for n in (BASELINE, "tuned blend"))
    diff = tuned.ndcg_diff
    return "\n".join([
        "As served: the same test queries through the saved bundle (BM25, "
        f"{n_candidates} candidates, relevance z-scored over them), relevance alone against the "
        "tuned weights. NDCG@10 counts unjudged products as irrelevant (judged-only); on "
        f"average {shares} of a query's top 10 are judged.", "",
        served.judged_only.markdown(), "",
        "Condensed NDCG@10 (unjudged products skipped, the first 10 judged ones in served "
        f"order): {base.ndcg:.4f} -> {tuned.ndcg:.4f}, difference {diff.mean:+.4f} "
        f"[{diff.low:+.4f}, {diff.high:+.4f}].", "",
    ])
def _report(result: BuildResult, title: str, seconds: float) -> str:
    from ranking.ranker import RELEVANCE_MODEL

    ev, tune, clv = result.evaluation, result.tune, result.clv
    weights = ", ".join(f"{n} {w:.3f}" for n, w in
                        zip(result.starting_weights, tune.weights, strict=True))
    start = ", ".join(f"{n} {w:.2f}" for n, w in result.starting_weights.items())
    params = ", ".join(f"{n}={v:.4g}" for n, v in clv.bgnbd_params_.items())
    served = ("LambdaMART" if result.relevance_source == RELEVANCE_MODEL
              else "BM25 (LambdaMART did not beat it)")
    return "\n".join([
        f"# {title}", "",
        *(f"**{line}**\n" for line in result.warnings if line.startswith("WARNING")),
        f"Held-out test queries: {ev.n_queries}. Ranked over each query's judged pool; "
        f"margin is the mean unit margin (price - cost) of the top {ev.k}; margin lift's "
        "headline is the ratio of means (money shown).", "",
        ev.markdown(), "",
        *(f"- NDCG guardrail at k = {c} on the held-out queries: {v.text()}"
          for c, v in result.guardrails.items()),
        f"- relevance served: {served}; on the tuning queries LambdaMART "
        f"{result.relevance_check.model_ndcg:.4f} vs BM25 {result.relevance_check.bm25_ndcg:.4f} "
        f"NDCG@{ev.k}",
        f"- labels: {result.labels_used}",
        f"- tuned weights: {weights} (merchandiser's starting weights: {start})",
        f"- tuner: {tune.message}{_cv_change(tune, ev.k)}",
        *([f"- what the data could certify: {tune.certifiable()}"] if tune.certifiable()
          else []),
        *(f"- {line}" for line in result.warnings if not line.startswith("WARNING")),
        f"- tuned weights file: {result.weights_file} (segment and category weights scaled by "
        f"{_strength(result):.3f}, the factor the defaults' sum changed by)",
        f"- BG/NBD: {params}; customers {clv.n_customers_:,}",
        *(f"- {line}" for line in result.reports),
        f"- wall time {seconds:.1f} s", "", "",
    ])


def _strength(result: BuildResult) -> float:
    """How much the tuner scaled the file: sum of tuned over starting default weights."""
    start = sum(result.starting_weights.values())
    return float(result.tune.weights.sum()) / start if start > 0 else 1.0


def _cv_change(tune: TuneResult, k: int) -> str:
    """The tuner's cross-validated NDCG change, when it got as far as measuring one."""
    import numpy as np

    if not np.isfinite(tune.cv_ndcg_base):
        return ""
    return f"; cross-validated NDCG@{k} {tune.cv_ndcg_base:.4f} -> {tune.cv_ndcg_tuned:.4f}"


def _report_json(result: BuildResult) -> dict[str, object]:
    return {
        "evaluation": result.evaluation.to_dict(),
        "tuned_weights": dict(zip(result.starting_weights, result.tune.weights.tolist(),
                                  strict=True)),
        "starting_weights": result.starting_weights, "tuner_message": result.tune.message,
        "tuner": result.tune.to_dict(), "guardrail": {str(c): v.to_dict()
                                                     for c, v in result.guardrails.items()},
        "relevance_served": result.relevance_source, "labels_used": result.labels_used,
        "relevance_check": result.relevance_check.to_dict(), "warnings": result.warnings,
        "clv": result.clv.to_dict(),
        "feature_importance": result.ranker.model.feature_importance(),
    }
