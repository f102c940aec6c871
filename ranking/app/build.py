"""The main job: catalog + judgments + transactions + weights -> a tuned, evaluated bundle.

Steps: load and validate the three tables; build the BM25 indexes; split queries (by text)
into train, validation and test; train LambdaMART on the train queries' judged pools (its
hyperparameters searched on the train queries alone, early stopping on validation; train
queries get cross-fitted scores); fit BG/NBD + Gamma-Gamma and
derive customer CLV, segments and product CLV affinity; compute the business terms; tune the
blend weights with cvxpy under the NDCG constraint, checked by cross-validation over the train
and validation queries; evaluate BM25, LambdaMART and the tuned blend on the held-out test
queries, which nothing before has seen; write the bundle and a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from clv.errors import AuditError, CLVFitError, DataError
from clv.model import CLVModel
from clv.rfm import rfm_summary
from clv.segments import clv_quantiles, product_clv_affinity
from clv.tables import raise_at_first
from clv.transactions import load_transactions
from objectives.audit import AuditSettings, AuditTables, audit_frames
from objectives.catalog import load_catalog, load_judgments
from objectives.config import (
    DEFAULT_CONFIG_TEXT,
    TERM_NAMES,
    WeightsConfig,
    load_config,
    parse_config,
    read_config_text,
)
from objectives.evaluation import Evaluation, evaluate
from objectives.groups import QueryGroups
from objectives.guardrail import (
    VERDICT_CUTOFFS,
    RelevanceCheck,
    compare_with_bm25,
    too_few_queries,
)
from objectives.metrics import Verdict
from objectives.plan import Plan
from objectives.priors import catalog_with_priors
from objectives.terms import TermTable, compute_terms
from objectives.tuned_yaml import tuned_yaml_text
from objectives.tuner import TuneResult, tune_weights
from ranking import features
from ranking.app.progress import Progress
from ranking.bundle import prepare_directory
from ranking.ltr import (
    MAX_LABEL,
    LambdaMART,
    grade_labels,
    label_values,
    train_and_cross_fit,
)
from ranking.ranker import (
    QUERIES_FILE,
    RELEVANCE_BM25,
    RELEVANCE_MODEL,
    WEIGHTS_FILE,
    Catalog,
    Customers,
    Ranker,
)
from ranking.text import Analyzer


@dataclass(frozen=True)
class BuildInputs:
    """Paths of the input tables; ``config`` None means the default weights file.

    ``events`` (with ``served_bundle``, the bundle that served them) trains from logged
    interactions: without ``judgments`` the labels are the debiased interaction labels of
    :mod:`ranking.experiments.learn`; with them, judged queries keep their judgments and the
    other logged queries get interaction labels."""

    catalog: Path
    judgments: Path | None
    transactions: Path
    config: Path | None = None
    events: Path | None = None
    served_bundle: Path | None = None


@dataclass(frozen=True)
class BuildSettings:
    """Knobs of the job. Query split fractions are train / validation (rest is test)."""

    seed: int = 7
    train_fraction: float = 0.5
    valid_fraction: float = 0.25
    n_candidates: int = 200
    k: int = 10
    #: Run the data audit on the loaded tables and stop on blocking findings.
    audit: bool = True
    #: Severity overrides of audit finding codes, e.g. (("price_below_cost", "blocking"),).
    audit_severity: tuple[tuple[str, str], ...] = ()
    #: Operator key signing the bundle's manifest (None: the key configured in the
    #: environment, if any; see ranking.bundle.configured_key).
    sign_key: bytes | None = field(default=None, repr=False)


@dataclass
class BuildResult:
    """What the job made and measured."""

    ranker: Ranker
    evaluation: Evaluation
    tune: TuneResult
    clv: CLVModel
    weights_file: Path
    sample_query: str  # a held-out test query, for showing the bundle at work
    test_judgments: pd.DataFrame  # the held-out test queries' judgments
    #: The tuned blend against LambdaMART on the held-out test queries, at every cut-off of
    #: :data:`VERDICT_CUTOFFS` and the one tuned at.
    guardrails: dict[int, Verdict]
    relevance_check: RelevanceCheck  # LambdaMART against BM25 on the tuning queries
    relevance_source: str  # what the bundle serves as relevance: "lambdamart" or "bm25"
    reports: list[str] = field(default_factory=list)
    starting_weights: dict[str, float] = field(default_factory=dict)
    #: Loud messages a report must show first (a model that loses to BM25, too few queries,
    #: terms without information).
    warnings: list[str] = field(default_factory=list)
    #: Which labels trained, tuned and evaluated: "judgments" or a line on interaction labels.
    labels_used: str = "judgments"

    @property
    def guardrail(self) -> Verdict:
        """The verdict at the cut-off tuned at."""
        return self.guardrails[self.evaluation.k]

    @property
    def guardrail_held(self) -> bool:
        return self.guardrail.held


#: Fewest judged queries the job accepts: each of train, validation and test needs some.
MIN_QUERIES = 8


def split_queries(query_keys: np.ndarray, settings: BuildSettings) -> tuple[np.ndarray, ...]:
    """Seeded split of distinct query keys into (train, validation, test) boolean masks."""
    unique = np.unique(query_keys)
    rng = np.random.default_rng(settings.seed)
    shuffled = unique[rng.permutation(unique.size)]
    n_train = int(round(settings.train_fraction * unique.size))
    n_valid = int(round(settings.valid_fraction * unique.size))
    parts = (shuffled[:n_train], shuffled[n_train:n_train + n_valid], shuffled[n_train + n_valid:])
    return tuple(np.isin(query_keys, p) for p in parts)


def judgment_labels(judgments: pd.DataFrame, source: Path) -> np.ndarray:
    """One label per judgment from one mapping of all grades; too large a grade is refused."""
    values = label_values(judgments["grade"].to_numpy())
    raise_at_first(values > MAX_LABEL, judgments["grade"], "grade", source,
                   f"grade maps to a label above {MAX_LABEL}, the most LambdaMART's exponential "
                   "gain allows; use grades such as 0-3")
    return grade_labels(judgments["grade"].to_numpy())


#: The product priors in the order the model reads them (declared in :data:`features.PRIORS`).
product_priors = features.product_priors


def pool_features(space: features.FeatureSpace, judgments: pd.DataFrame, rows: np.ndarray,
                  priors: np.ndarray, progress: Progress) -> np.ndarray:
    """Feature rows for every judgment (each query's pool in one call of the kernels)."""
    X = np.empty((len(judgments), len(features.FEATURE_NAMES)), dtype=np.float32)
    groups = judgments.groupby("query_id", sort=False).indices
    for qid in progress.bar(groups, "features", total=len(groups)):
        at = groups[qid]
        X[at] = space.extract(judgments["query"].iat[at[0]], rows[at], priors)
    return X


def judged_features(catalog: pd.DataFrame, judgments: pd.DataFrame,
                    progress: Progress) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of every judgment and the catalog row of each judged product, over
    indexes of the whole catalog (what the quality benchmark evaluates)."""
    space = features.FeatureSpace.build(catalog, Analyzer())
    rows = pd.Index(catalog["product_id"]).get_indexer(judgments["product_id"])
    return pool_features(space, judgments, rows, product_priors(catalog), progress), rows


@dataclass(frozen=True)
class Served:
    """Per-product arrays and the compiled plan that make evaluation rank as the ranker
    serves: the same plan and kernel (:class:`objectives.plan.Plan`)."""

    terms: np.ndarray  # float32 (n_products, n_terms)
    margin: np.ndarray  # unit margin in currency
    plan: Plan  # the weights config compiled for the catalog and its stock

    @classmethod
    def of(cls, config: WeightsConfig, terms: TermTable, catalog: pd.DataFrame) -> Served:
        """The arrays for a catalog table and its computed terms (a build, the benchmarks)."""
        return cls.build(config, terms.values, terms.raw["unit_margin"], terms.in_stock,
                         catalog["product_id"].tolist(), catalog["category"].tolist())

    @classmethod
    def build(cls, config: WeightsConfig, terms: np.ndarray, margin: np.ndarray,
              in_stock: np.ndarray, product_ids: list[str], categories: list[str]) -> Served:
        """Per-product arrays and ``config`` compiled for them (:meth:`Plan.compile`)."""
        return cls(terms, margin, Plan.compile(config, product_ids, categories, in_stock))


def query_groups(judgments: pd.DataFrame, mask: np.ndarray, relevance: np.ndarray,
                 rows: np.ndarray, served: Served) -> QueryGroups:
    """Flat per-query arrays of the masked judgments, grouped by query id, ranked under the
    served plan (:meth:`QueryGroups.of_products`)."""
    sel = np.flatnonzero(mask)
    order = sel[np.argsort(judgments["query_id"].to_numpy()[sel], kind="stable")]
    qids = judgments["query_id"].to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, qids[1:] != qids[:-1]]) if qids.size else np.zeros(0, int)
    qptr = np.r_[starts, qids.size].astype(np.int64)
    return QueryGroups.of_products(served.plan, qptr, relevance[order], rows[order],
                                   served.terms, judgments["grade"].to_numpy(np.float64)[order],
                                   served.margin)


def _served_text(source: Path | None, tuned: WeightsConfig) -> str:
    """The bundle's weights file: the merchandiser's own file (or the built-in one) with the
    tuned numbers written in and every comment kept, so the file served is the file they edit
    next, and previewing it unchanged against its bundle changes nothing."""
    text = read_config_text(source) if source is not None else DEFAULT_CONFIG_TEXT
    origin = str(source) if source is not None else "the built-in weights"
    return tuned_yaml_text(text, tuned, source=origin,
                           note=f"Served weights: {origin} with the weights tuned by marginrank "
                                "build.\nEdit this copy, check it with marginrank preview, and "
                                "reload it.")


def _scale() -> ModuleType:
    import ranking.scale

    return ranking.scale


def _scale_training(client: object, space: features.FeatureSpace, out_dir: Path,
                    judgments: pd.DataFrame, rows: np.ndarray, priors: np.ndarray,
                    base: LambdaMART, y: np.ndarray, qid: np.ndarray, train: np.ndarray,
                    valid: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Feature rows on the workers (which load the indexes from a scratch directory beside
    the bundle, removed after) and training on the cluster."""
    import shutil

    scale = _scale()
    scratch = out_dir.parent / f".{out_dir.name}.scale"
    try:
        X = scale.pool_features_partitioned(client, scale.save_space(space, scratch), judgments,
                                            rows, priors)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return X, scale.train_and_cross_fit_distributed(client, base, X, y, qid, train, valid)


def _event_judgments(inputs: BuildInputs,
                     catalog: pd.DataFrame) -> tuple[pd.DataFrame, str, tuple]:
    """Training labels from the logged interactions of ``inputs.events`` (beside the
    judgments when given), a line saying which labels, and the serving bundle's feature space
    and priors: the logged products' features are recomputed as they were served, so the
    catalog must be the one that bundle indexed."""
    from ranking.experiments.learn import judgments_beside, labels_from_events

    if inputs.served_bundle is None:
        raise DataError("training from --events needs the bundle that served them "
                        "(--served-bundle): features are recomputed from it", file=inputs.events)
    logs = labels_from_events(inputs.events, inputs.served_bundle)
    served = logs.ranker.catalog
    ids, titles = catalog["product_id"].tolist(), catalog["title"].tolist()
    if served.product_ids != ids or list(served.titles) != titles:
        differ = (len(set(ids) ^ set(served.product_ids)) if set(ids) != set(served.product_ids)
                  else sum(a != b for a, b in zip(served.titles, titles, strict=False)))
        raise DataError(f"this catalog is not the one {inputs.served_bundle} indexed "
                        f"({differ:,} products or titles differ, or another order): the logged "
                        "impressions' features are recomputed from the serving bundle; build "
                        "from its catalog, or train from judgments", file=inputs.catalog)
    frame = logs.frame()
    if frame["query"].nunique() == 0:
        raise DataError("the logs show no product of this catalog", file=inputs.events)
    used = logs.description()
    if inputs.judgments is not None:
        judged = load_judgments(inputs.judgments, pd.Index(ids))
        judged["grade"] = judgment_labels(judged, inputs.judgments)
        frame, note = judgments_beside(frame, judged)
        used = f"judgments ({inputs.judgments}) beside {used}: {note}"
    return (frame[["query", "product_id", "grade", "query_id"]].reset_index(drop=True), used,
            (logs.ranker.feature_space, served.priors))


def _foreign_products(tx: pd.DataFrame, product_index: pd.Index) -> str:
    """Say how many transaction lines name products the catalog does not have."""
    foreign = int((~tx["product_id"].isin(product_index)).sum())
    return (f"{foreign:,} transaction lines name products not in the catalog (they count for "
            "customer CLV, not for product CLV affinity)")


def build(inputs: BuildInputs, out_dir: Path, settings: BuildSettings = BuildSettings(),
          progress: Progress | None = None, client: object | None = None) -> BuildResult:
    """Run the whole job and write the bundle into ``out_dir``.

    With a ``distributed.Client``, the index is built in partitions, feature rows are computed
    in query partitions and LambdaMART boosts with ``xgboost.dask`` (:mod:`ranking.scale`);
    the bundle's index equals the one-process one bit for bit.
    """
    progress = progress or Progress()
    prepare_directory(out_dir)  # fail before the work, not after it
    with progress.stage("loading tables"):
        catalog, catalog_report = load_catalog(inputs.catalog)
        product_index = pd.Index(catalog["product_id"])
        served_space, labels_used, label_source = None, "judgments", inputs.judgments
        if inputs.events is None:
            judgments = load_judgments(inputs.judgments, product_index)
        else:
            judgments, labels_used, served_space = _event_judgments(inputs, catalog)
            label_source = inputs.events
        # Queries are split by text, so one query judged under two ids cannot sit on both sides.
        query_text = judgments["query"].str.casefold().str.strip().to_numpy()
        n_queries = len(set(query_text))
        if n_queries < MIN_QUERIES:
            raise DataError(f"{n_queries} judged queries; the job needs at least {MIN_QUERIES} "
                            "to train, validate and test", file=label_source)
        y = judgment_labels(judgments, label_source)
        tx, tx_report = load_transactions(inputs.transactions)
        products = set(catalog["product_id"])
        config = (load_config(inputs.config, product_ids=products) if inputs.config else
                  parse_config(DEFAULT_CONFIG_TEXT, source="<default config>",
                               product_ids=products))
    audit_lines = []
    if settings.audit:
        with progress.stage("auditing tables"):
            audit = audit_frames(AuditTables(
                catalog, tx, judgments,
                tuple(p for ids in config.pins.values() for p in ids) + config.buries,
                {"catalog": str(inputs.catalog), "transactions": str(inputs.transactions),
                 "judgments": str(label_source)}),
                AuditSettings(severity=settings.audit_severity))
        audit_lines = audit.summary_lines()
        if audit.blocking:
            raise AuditError("blocking data-audit findings; `marginrank audit` writes the full "
                             "report, a severity can be changed per code:\n"
                             + "\n".join(audit_lines))
    with progress.stage("building BM25 indexes"):
        space = (served_space[0] if served_space is not None else
                 features.FeatureSpace.build(catalog, Analyzer()) if client is None else
                 _scale().build_feature_space(client, catalog, Analyzer()))
    rows = product_index.get_indexer(judgments["product_id"])
    # Trained from logs, the features are the served ones: the serving bundle's priors too.
    priors = product_priors(catalog, tx) if served_space is None else served_space[1]
    train, valid, test = split_queries(query_text, settings)
    with progress.stage("training LambdaMART"):
        qid = pd.factorize(judgments["query_id"])[0]
        base = LambdaMART(feature_names=features.FEATURE_NAMES, eval_at=settings.k,
                          seed=settings.seed)
        if client is None:
            X = pool_features(space, judgments, rows, priors, progress)
            model, search, relevance = train_and_cross_fit(base, X, y, qid, train, valid)
        else:
            X, (model, search, relevance) = _scale_training(client, space, out_dir, judgments,
                                                            rows, priors, base, y, qid,
                                                            train, valid)
        progress.note(f"hyperparameters (chosen on training queries): {search.best}")
    with progress.stage("fitting BG/NBD + Gamma-Gamma"):
        summary = rfm_summary(tx)
        try:
            clv_model = CLVModel().fit(summary)
        except CLVFitError as exc:
            raise CLVFitError(f"{inputs.transactions}: {exc}") from exc
        customer_clv = clv_model.customer_clv(summary)
        affinity, buyers = product_clv_affinity(tx, pd.Series(customer_clv,
                                                              index=summary.index),
                                                catalog["product_id"].tolist())
    bm25 = X[:, features.FEATURE_NAMES.index("bm25_all")].astype(np.float64)
    with progress.stage("computing business terms"):
        term_catalog, from_prior, prior_notes = catalog_with_priors(catalog, buyers)
        for line in prior_notes:
            progress.note(line)
        terms = compute_terms(term_catalog, affinity,
                              target_weeks=config.inventory.target_weeks_of_cover)
        served = Served.of(config, terms, catalog)
        tuning = query_groups(judgments, train | valid, relevance, rows, served)
        tuning_bm25 = query_groups(judgments, train | valid, bm25, rows, served)
    # Business weight is only added on top of a model that beats BM25 on the tuning queries
    # (their LambdaMART scores are out of fold); otherwise BM25 is served, relevance only.
    check = compare_with_bm25(tuning.ndcg(tuning.z_relevance(), settings.k),
                              tuning_bm25.ndcg(tuning_bm25.z_relevance(), settings.k),
                              settings.k, settings.seed)
    source = RELEVANCE_MODEL if check.model_ahead else RELEVANCE_BM25
    warnings = [] if check.model_ahead else [
        check.warning(f"the {tuning.n_queries} tuning queries (out-of-fold scores)")]
    if few := too_few_queries(tuning.n_queries):
        warnings.append(few)
    with progress.stage("tuning weights (cvxpy)"):
        if source == RELEVANCE_MODEL:
            tune = tune_weights(tuning, config.weight_vector(), k=settings.k,
                                max_ndcg_drop=config.guardrails.max_ndcg_drop,
                                seed=settings.seed, progress=progress.note)
        else:
            tune = TuneResult(np.zeros(len(TERM_NAMES)), 0.0,
                              "not tuned: LambdaMART does not beat BM25, so BM25 is served and "
                              "the weights stay at relevance only",
                              max_ndcg_drop=config.guardrails.max_ndcg_drop,
                              n_queries=tuning.n_queries)
        warnings += [f"note: {n}" for n in tune.notes]
        for line in warnings:
            progress.note(line)
        tuned_config = config.tuned(tune.weights)
    with progress.stage("evaluating on held-out queries"):
        test_groups = query_groups(judgments, test, relevance, rows, served)
        test_bm25 = query_groups(judgments, test, bm25, rows, served)
        evaluation = evaluate(test_groups, test_bm25, tune.weights, k=settings.k,
                              seed=settings.seed, serve_bm25=source == RELEVANCE_BM25)
        guardrails = {c: (evaluation if c == settings.k else
                          evaluate(test_groups, test_bm25, tune.weights, k=c, seed=settings.seed,
                                   serve_bm25=source == RELEVANCE_BM25))
                      .guardrail(config.guardrails.max_ndcg_drop)
                      for c in sorted({*VERDICT_CUTOFFS, settings.k})}
        on_test = compare_with_bm25(np.array(evaluation.row("LambdaMART").per_query_ndcg),
                                    np.array(evaluation.row("BM25").per_query_ndcg),
                                    settings.k, settings.seed)
        if source == RELEVANCE_MODEL and not on_test.model_ahead:
            warnings.append(
                f"WARNING: LambdaMART does not beat BM25 on the {test_groups.n_queries} held-out "
                f"test queries: NDCG@{settings.k} {on_test.model_ndcg:.4f} vs "
                f"{on_test.bm25_ndcg:.4f}. It was ahead on the tuning queries, so it is served "
                "and the weights were tuned; with more judged queries the choice would be "
                "surer.")
    with progress.stage("writing bundle"):
        order = np.argsort(summary.index.to_numpy().astype(str))
        ranker = Ranker(
            feature_space=space, model=model,
            catalog=Catalog(catalog["product_id"].tolist(), catalog["title"].tolist(),
                            catalog["category"].tolist(), terms.values, terms.in_stock, priors,
                            terms.raw["unit_margin"].astype(np.float32),
                            catalog["return_rate"].to_numpy(np.float32), from_prior),
            customers=Customers(summary.index.to_numpy().astype(str)[order], customer_clv[order],
                                clv_quantiles(customer_clv)[order]),
            config=tuned_config, config_text=_served_text(inputs.config, tuned_config),
            n_candidates=settings.n_candidates, relevance=source,
        )
        ranker.save(out_dir, settings={
            "seed": settings.seed, "k": settings.k,
            "target_weeks_of_cover": config.inventory.target_weeks_of_cover,
        }, extra_json={"clv.json": clv_model.to_dict(),
                       QUERIES_FILE: {"queries": judgments["query"].drop_duplicates().tolist()}},
                   key=settings.sign_key)
    return BuildResult(
        ranker=ranker, evaluation=evaluation, tune=tune, clv=clv_model,
        weights_file=out_dir / WEIGHTS_FILE,
        sample_query=str(judgments["query"].to_numpy()[test][0]),
        test_judgments=judgments[test],
        reports=[catalog_report.summary(), tx_report.summary(),
                 _foreign_products(tx, product_index), terms.summary(), *audit_lines],
        starting_weights=dict(zip(TERM_NAMES, config.weight_vector().tolist(), strict=True)),
        guardrails=guardrails, relevance_check=check, relevance_source=source,
        warnings=warnings, labels_used=labels_used,
    )
