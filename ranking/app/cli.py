"""The ``marginrank`` command: demo, build, search, serve, validate-config, preview, tune, bench,
audit."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from clv.errors import MarginRankError

# Command modules are imported at start, so they import only argparse-level things at their top
# and their heavy libraries inside their run functions: `marginrank --help` stays fast.
# preview, tune and audit predate that rule: they are imported only when their command runs.
from ranking.app import allocate_command, bench_command, config_command, experiment_command
from ranking.app.cluster import add_cluster_argument, dask_client

if TYPE_CHECKING:
    from objectives.tuner import TuneResult
    from ranking.app import preview
    from ranking.app.build import BuildInputs, BuildResult
    from ranking.ranker import SearchResult

#: The embedded demo world: shipped inside the package (a wheel install), or, in a source
#: checkout or an editable install, its source in data/demo.
DEMO_DATA = next((d for d in (Path(__file__).resolve().parent / "demo_world",
                              Path(__file__).resolve().parents[2] / "data" / "demo")
                  if (d / "catalog.csv").is_file()),
                 Path(__file__).resolve().parent / "demo_world")

DESCRIPTION = """\
Rank product search results for relevance first, then for the business (margin, customer
lifetime value, returns, inventory), with blend weights tuned so that relevance does not fall.
Start with `marginrank demo`; `marginrank COMMAND --help` explains each command."""

#: Optional dependencies by the extra that installs them, and what needs them.
EXTRAS = {
    "fastapi": ("service", "the service"), "uvicorn": ("service", "the service"),
    "httpx": ("service", "the service"), "prometheus_client": ("service", "the service"),
    "dask": ("scale", "running on a cluster"), "distributed": ("scale", "running on a cluster"),
    "bm25s": ("bench", "this benchmark"), "tantivy": ("bench", "this benchmark"),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; every MarginRankError becomes a one-line message and exit code 2, and so
    does a missing optional dependency (naming the extra that installs it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(_command_in(argv)).parse_args(argv)
    try:
        return args.run(args)
    except MarginRankError as exc:
        print(f"marginrank: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(f"marginrank: error: {extra[1]} needs the '{extra[0]}' extra: "
              f"pip install 'marginrank[{extra[0]}]'", file=sys.stderr)
        return 2


def _command_in(argv: list[str]) -> str | None:
    """The command named on the line: the first word that is not an option (the top level
    has no option that takes a value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _lazy_command(sub: argparse._SubParsersAction, selected: str | None, name: str,
                  module: str, help: str) -> None:
    """A command whose module is imported (and its options added) only when it runs."""
    parser = sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")
    if name == selected:
        importlib.import_module(module).add_arguments(parser)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"marginrank {version('marginrank')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "marginrank (not installed)"


class _VersionAction(argparse.Action):
    """--version, reading the installed version only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(_version())
        parser.exit()


def _parser(selected: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marginrank", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="build, tune and evaluate on the embedded demo world")
    demo.add_argument("--data", type=Path, default=DEMO_DATA,
                      help="folder of the demo world (default: the one shipped with marginrank)")
    demo.add_argument("--out", type=Path, default=Path("marginrank-demo"),
                      help="folder for the bundle and the report (default: marginrank-demo)")
    demo.add_argument("--seed", type=int, default=7,
                      help="random seed for the query split, training and tuning (default: 7)")
    demo.set_defaults(run=_demo)

    bld = sub.add_parser("build", help="build a tuned bundle from your own tables")
    bld.add_argument("--catalog", type=Path, required=True,
                     help="products table: CSV, CSV.GZ, TSV or Parquet (see data/README.md)")
    bld.add_argument("--judgments", type=Path, required=True,
                     help="graded (query, product) pairs to train and tune on")
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
    bld.set_defaults(run=_build)

    search = sub.add_parser("search", help="search a bundle and print a table")
    search.add_argument("query", help="the search text, in quotes if it has spaces")
    search.add_argument("--bundle", type=Path, required=True,
                        help="bundle folder written by demo or build")
    search.add_argument("--k", type=int, default=10, help="how many results (default: 10)")
    search.add_argument("--customer", default=None, help="customer id (selects the segment)")
    search.add_argument("--explain", action="store_true", help="show each term's contribution")
    search.set_defaults(run=_search)

    check = sub.add_parser("validate-config", help="check a weights YAML file")
    check.add_argument("file", type=Path, help="the weights YAML file to check")
    known = check.add_mutually_exclusive_group()
    known.add_argument("--catalog", type=Path,
                       help="also check that pins, buries and category rules match products in "
                            "this catalog")
    known.add_argument("--bundle", type=Path,
                       help="also check that pins, buries and category rules match products in "
                            "this bundle, and its inventory target")
    check.set_defaults(run=_validate)

    _lazy_command(sub, selected, "preview", "ranking.app.preview",
                  help="what a new weights file changes on real queries, before applying it")
    _lazy_command(sub, selected, "tune", "ranking.app.tune_command",
                  help="tune a bundle's weights on judged queries; writes the YAML back")
    bench_command.add_arguments(sub.add_parser(
        "bench", help="run a benchmark script of the source checkout (quality)"))
    _lazy_command(sub, selected, "clv", "ranking.app.clv_command",
                  help="customer lifetime value from partitioned transactions (clv fit)")
    _lazy_command(sub, selected, "audit", "ranking.app.audit_command",
                  help="audit the tables before a build: duplicates, stale records, "
                       "inconsistencies, coverage, drift")

    experiment_sub = sub.add_parser(
        "experiment", help="experiments on live traffic: readouts from event logs"
    ).add_subparsers(required=True, metavar="ACTION")
    experiment_command.add_arguments(experiment_sub)
    allocate_command.add_arguments(experiment_sub)
    config_command.add_arguments(sub)
    _lazy_command(sub, selected, "simulate", "ranking.app.simulate_command",
                  help="simulated traffic with a known truth (event logs for experiments)")

    serve = sub.add_parser("serve", help="run the HTTP search service (the service extra)")
    serve.add_argument("--bundle", type=Path, required=True,
                       help="bundle folder written by demo or build")
    serve.add_argument("--config", type=Path, help="weights YAML to serve and reload "
                       "(default: the bundle's)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument("--state-dir", type=Path, help="where the last good config is kept "
                       "(it then survives restarts; default: a private temporary directory)")
    serve.add_argument("--admin-token-file", type=Path, help="file holding the bearer token of "
                       "PUT /config and POST /reload (or env MARGINRANK_ADMIN_TOKEN; neither: "
                       "those endpoints are off)")
    serve.add_argument("--events", type=Path, help="log impressions and accept POST /events "
                       "into this directory (default: off; env MARGINRANK_EVENTS)")
    serve.set_defaults(run=_serve)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from ranking.app.build import BuildInputs

    if not (args.data / "catalog.csv").is_file():
        raise MarginRankError(f"{args.data}: no demo world here (catalog.csv missing); "
                              "run from a source checkout or pass --data")
    config = args.data / "weights.yaml"
    inputs = BuildInputs(args.data / "catalog.csv", args.data / "judgments.csv",
                         args.data / "transactions.csv.gz", config if config.is_file() else None)
    return _run_build(inputs, args.out, args.seed, title="marginrank demo (simulated world)")


def _build(args: argparse.Namespace) -> int:
    from objectives.audit_findings import parse_severity
    from ranking import bundle
    from ranking.app.build import BuildInputs

    inputs = BuildInputs(args.catalog, args.judgments, args.transactions, args.config)
    key = bundle.read_key_file(args.sign_key_file) if args.sign_key_file else None
    return _run_build(inputs, args.out, args.seed, title="marginrank build",
                      audit_severity=tuple(parse_severity(args.audit_severity).items()),
                      cluster=args.cluster, sign_key=key)


def _run_build(inputs: BuildInputs, out: Path, seed: int, title: str,
               audit_severity: tuple[tuple[str, str], ...] = (),
               cluster: str | None = None, sign_key: bytes | None = None) -> int:
    from ranking.app import preview
    from ranking.app.build import BuildSettings, build
    from ranking.app.progress import Progress
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
        "relevance_served": result.relevance_source,
        "relevance_check": result.relevance_check.to_dict(), "warnings": result.warnings,
        "clv": result.clv.to_dict(),
        "feature_importance": result.ranker.model.feature_importance(),
    }


def _search(args: argparse.Namespace) -> int:
    from ranking.ranker import Ranker

    ranker = Ranker.load(args.bundle)
    results = ranker.search(args.query, customer_id=args.customer, k=args.k, explain=args.explain)
    print(format_results(results, explain=args.explain))
    return 0


def format_results(results: list[SearchResult], explain: bool) -> str:
    """A plain-text table of search results, with each term's contribution under each row."""
    if not results:
        return "no results"
    lines = [f"{'#':>3}  {'product':<10} {'score':>7}  title"]
    if explain:
        from objectives.term_registry import contributions_header

        lines.append(" " * 23 + "contributions: " + contributions_header())
    for r in results:
        score = "pinned" if r.pinned else f"{r.score:7.3f}"
        lines.append(f"{r.rank:>3}  {r.product_id:<10} {score:>7}  {r.title}")
        if r.contributions:
            lines.append(" " * 23 + "  ".join(f"{n} {v:+.3f}" for n, v in r.contributions.items()))
        if r.from_prior:
            lines.append(" " * 23 + "from priors (no own data): " + ", ".join(r.from_prior))
    return "\n".join(lines)


def _serve(args: argparse.Namespace) -> int:
    from ranking.app.service import serve  # imported here: fastapi is an optional extra

    if args.events is not None:  # the service factory (every worker) reads it from the env
        from ranking.app.events_api import ENV_EVENTS

        try:
            args.events.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MarginRankError(f"--events {args.events}: cannot create: {exc.strerror}") from exc
        os.environ[ENV_EVENTS] = str(args.events.resolve())
    return serve(args.bundle, args.config, args.host, args.port, args.workers,
                 state_dir=args.state_dir, admin_token_file=args.admin_token_file)


def _validate(args: argparse.Namespace) -> int:
    from objectives.config import ConfigError, load_config, read_config_text
    from objectives.config import unmatched_category_rules as unmatched

    products, categories, target = _known_products(args)
    config = load_config(args.file, product_ids=products, target_weeks_of_cover=target)
    if categories is not None and (issues := unmatched(read_config_text(args.file), categories,
                                                       source=str(args.file))):
        raise ConfigError(issues)
    weights = ", ".join(f"{name} {w:g}" for name, w in config.weights.model_dump().items())
    print(f"{args.file}: OK (weights: {weights}; segments: {len(config.segments)}, "
          f"category rules: {len(config.categories)}, pins: {len(config.pins)}, "
          f"buries: {len(config.buries)})")
    if products is None and (config.pins or config.buries or config.categories):
        print("note: pinned and buried products and category rules were not checked against "
              "products; pass --catalog or --bundle")
    return 0


def _known_products(args: argparse.Namespace
                    ) -> tuple[set[str] | None, list[str] | None, float | None]:
    """Products pins and buries must name, the category paths category rules must match, and
    (for a bundle) the inventory target its terms were built with."""
    from objectives.catalog import load_catalog
    from ranking import bundle, bundle_checks
    from ranking.ranker import BUNDLE_FILES, Catalog

    if args.catalog:
        catalog = load_catalog(args.catalog)[0]
        return set(catalog["product_id"]), catalog["category"].fillna("").tolist(), None
    if args.bundle:
        manifest = bundle.verify(args.bundle, BUNDLE_FILES)
        target = bundle_checks.number_setting(Path(args.bundle) / bundle.MANIFEST,
                                              manifest["settings"], "target_weeks_of_cover", 8.0)
        known = Catalog.load(args.bundle)
        return set(known.product_ids), list(known.categories), target
    return None, None, None


if __name__ == "__main__":
    sys.exit(main())
