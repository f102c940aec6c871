"""The facade a search service imports: ``Ranker.load(bundle_dir)`` then ``ranker.search()``.

One query runs: analyzer -> BM25 candidates (``all`` field) -> features -> LambdaMART ->
blend core (:mod:`ranking.core`; the rule: :mod:`objectives._blend_kernels`) -> top-k with
optional per-term explanation. Everything per product is an array loaded from the
bundle; query time touches arrays only. The weights config is an immutable snapshot swapped in
whole by :meth:`Ranker.reload_config`, so searches are safe from many threads and never see a
half-applied config.
"""

from __future__ import annotations

import copy
import json
import numbers
import threading
import time
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from clv.errors import QueryError
from clv.segments import load_customers, save_customers
from objectives.config import TERM_NAMES, WeightsConfig, parse_config, read_config_text
from ranking import bundle, bundle_checks, core, features
from ranking.bm25 import MultiFieldIndex
from ranking.exploration import Exploration, shuffle
from ranking.ltr import LambdaMART
from ranking.query import query_key
from ranking.text import Analyzer

#: Longest query text accepted; longer input is refused rather than silently cut.
MAX_QUERY_CHARS = 4096
MAX_K = 1000
#: The stages :meth:`Ranker.search_timed` reports, in the order a search runs them.
SEARCH_STAGES = ("analysis", "retrieval", "features", "relevance", "blend", "results")
WEIGHTS_FILE = "weights.yaml"
#: What a bundle serves as the relevance score: LambdaMART's output, or (when the build found
#: that LambdaMART does not beat BM25) the BM25 score of the ``all`` field, the feature
#: ``bm25_all`` the model also reads.
RELEVANCE_MODEL, RELEVANCE_BM25 = "lambdamart", "bm25"
RELEVANCE_SOURCES = (RELEVANCE_MODEL, RELEVANCE_BM25)
#: Optional bundle file: the build's judged query texts, the real queries ``preview`` samples.
QUERIES_FILE = "queries.json"
#: Files every bundle must list in its manifest (``Ranker.load`` reads each of them).
BUNDLE_FILES = (*(f for f in features.BUNDLE_FILES if f not in features.OPTIONAL_FILES),
                "analyzer.json", WEIGHTS_FILE, "customers.npz",
                "bm25.npz", "bm25_vocab.json",
                "model.ubj", "model.json", "products.json", "products.npz")


@dataclass(frozen=True)
class SearchResult:
    """One ranked product; ``contributions`` (relevance and each term) only with explain."""

    rank: int
    product_id: str
    title: str
    score: float | None  # None for a pinned product (placed by rule, not by score)
    pinned: bool = False
    contributions: dict[str, float] | None = None
    arm: str | None = None  # the customer's experiment arm, when an experiment runs
    #: With explain: the terms whose value is a prior (a new product's brand or category
    #: estimate, not its own data); empty for bundles written before this was stored.
    from_prior: list[str] | None = None
    #: The logging policy's probability of this product at this place (item-position
    #: propensity, :mod:`ranking.exploration`); None below the explored top k or
    #: without exploration (share 0, or a search without a request id).
    propensity: float | None = None
    randomized: bool | None = None  # this search was shuffled; None: exploration not applied

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


_new, _set = object.__new__, object.__setattr__


def _search_result(rank: int, product_id: str, title: str, score: float | None, pinned: bool,
                   contributions: dict[str, float] | None, arm: str | None,
                   from_prior: list[str] | None) -> SearchResult:
    """``SearchResult(rank, ..., from_prior)`` (propensity and randomized None), equal to the
    one its ``__init__`` makes, at a quarter of the cost: a frozen dataclass's ``__init__``
    sets each of its ten fields through ``object.__setattr__``, this sets the instance dict
    once (a test holds the two to the same fields and values)."""
    result = _new(SearchResult)
    _set(result, "__dict__", {"rank": rank, "product_id": product_id, "title": title,
                              "score": score, "pinned": pinned, "contributions": contributions,
                              "arm": arm, "from_prior": from_prior, "propensity": None,
                              "randomized": None})
    return result


@dataclass(frozen=True)
class Catalog:
    """Per-product arrays the query path reads."""

    product_ids: list[str]
    titles: list[str]
    categories: list[str]
    terms: np.ndarray  # float32 (n, len(TERM_NAMES))
    in_stock: np.ndarray  # bool
    priors: np.ndarray  # float32 (n, len(features.PRIORS)) (NaN = unknown)
    #: Raw business fields in currency and rate (NaN = unknown), for ``preview``'s margin@10
    #: and return rate@10; None in bundles written before they were stored.
    unit_margin: np.ndarray | None = None
    return_rate: np.ndarray | None = None
    #: bool (n, len(TERM_NAMES)): the term's value came from a prior (see objectives.priors);
    #: None in bundles written before it was stored.
    from_prior: np.ndarray | None = None

    @cached_property
    def row_of(self) -> dict[str, int]:
        """Product id -> catalog row (pins, buries, and the lists preview reads back)."""
        return {p: i for i, p in enumerate(self.product_ids)}

    def rows(self, ids: list[str]) -> np.ndarray:
        """Catalog rows of the product ids ``ids``, in order (int64)."""
        return np.array([self.row_of[p] for p in ids], dtype=np.int64)

    def save(self, directory: Path) -> list[Path]:
        meta, arrays = directory / "products.json", directory / "products.npz"
        meta.write_text(json.dumps({"product_id": self.product_ids, "title": self.titles,
                                    "category": self.categories}, ensure_ascii=False))
        raw = {name: values for name, values in (("unit_margin", self.unit_margin),
                                                 ("return_rate", self.return_rate),
                                                 ("from_prior", self.from_prior))
               if values is not None}
        np.savez(arrays, terms=self.terms, in_stock=self.in_stock, priors=self.priors,
                 term_names=np.array(TERM_NAMES), **raw)
        return [meta, arrays]

    @classmethod
    def load(cls, directory: Path) -> Catalog:
        """Reopen :meth:`save`'s files; every array is checked (shapes, dtypes, finite
        business terms) before a kernel can see it (:mod:`ranking.bundle_checks`)."""
        meta_path, npz_path = directory / "products.json", directory / "products.npz"
        meta = bundle_checks.read_json(meta_path)
        n = bundle_checks.check_products_json(meta_path, meta)
        npz = bundle_checks.load_npz(npz_path)
        if "term_names" not in npz or tuple(np.atleast_1d(npz["term_names"])) != TERM_NAMES:
            raise bundle.BundleError(f"{npz_path}: term names "
                                     f"{np.atleast_1d(npz.get('term_names', [])).tolist()} "
                                     f"differ from this version's {list(TERM_NAMES)}")
        bundle_checks.check_products_npz(npz_path, npz, n, len(TERM_NAMES), len(features.PRIORS))
        raw = {name: npz[name] for name in ("unit_margin", "return_rate", "from_prior")
               if name in npz}
        catalog = cls(meta["product_id"], meta["title"], meta["category"], npz["terms"],
                      npz["in_stock"], npz["priors"], **raw)
        catalog.check_shapes(directory)
        return catalog

    def check_shapes(self, directory: Path) -> None:
        """Every per-product array has one row per product (the kernels index them blindly)."""
        n = len(self.product_ids)
        shapes = {"title": (len(self.titles),), "category": (len(self.categories),),
                  "terms": self.terms.shape, "in_stock": self.in_stock.shape,
                  "priors": self.priors.shape}
        expected = {"title": (n,), "category": (n,), "terms": (n, len(TERM_NAMES)),
                    "in_stock": (n,), "priors": (n, len(features.PRIORS))}
        for name in ("unit_margin", "return_rate"):
            if getattr(self, name) is not None:
                shapes[name], expected[name] = getattr(self, name).shape, (n,)
        if self.from_prior is not None:
            shapes["from_prior"] = self.from_prior.shape
            expected["from_prior"] = (n, len(TERM_NAMES))
        wrong = {k: v for k, v in shapes.items() if v != expected[k]}
        if wrong:
            raise bundle.BundleError(f"{directory}: product arrays disagree with {n:,} products: "
                                     f"{wrong} (expected {expected})")


@dataclass(frozen=True)
class Customers:
    """Sorted customer ids and their CLV quantile, for segment lookup."""

    ids: np.ndarray  # sorted unicode
    clv: np.ndarray
    quantile: np.ndarray

    def quantile_of(self, customer_id: str | None) -> float | None:
        """CLV quantile of a known customer; None (the default segment) for unknown ones."""
        if customer_id is None or self.ids.size == 0:
            return None
        pos = int(np.searchsorted(self.ids, customer_id))
        if pos < self.ids.size and self.ids[pos] == customer_id:
            return float(self.quantile[pos])
        return None


class Ranker:
    """Search over one bundle. Build one with :func:`ranking.app.build.build` (or
    ``marginrank build``), open it with :meth:`load`."""

    def __init__(self, *, feature_space: features.FeatureSpace, model: LambdaMART,
                 catalog: Catalog, customers: Customers, config: WeightsConfig,
                 config_text: str, n_candidates: int = 200,
                 relevance: str = RELEVANCE_MODEL) -> None:
        if relevance not in RELEVANCE_SOURCES:
            raise ValueError(f"relevance must be one of {RELEVANCE_SOURCES}, got {relevance!r}")
        self.feature_space = feature_space
        #: The relevance score served (:data:`RELEVANCE_SOURCES`).
        self.relevance = relevance
        self._bm25_column = features.COLUMN["bm25_all"]
        self.analyzer = feature_space.analyzer  # exact tokens: retrieval and pins
        self.index = feature_space.index
        self.model = model
        self.catalog = catalog
        self.customers = customers
        self.n_candidates = n_candidates
        #: The target the inventory term was computed with; files setting another are refused.
        self.target_weeks_of_cover = config.inventory.target_weeks_of_cover
        self._reload_lock = threading.Lock()
        self._serving = self._serving_config(config, config_text)

    # -- configuration ---------------------------------------------------------------------
    def _serving_config(self, config: WeightsConfig, text: str,
                        source: str = WEIGHTS_FILE) -> core.ServingConfig:
        return core.ServingConfig.build(config, self.catalog.row_of, self.catalog.categories,
                                        pin_rule(self.analyzer), text, source,
                                        in_stock=self.catalog.in_stock)

    @property
    def serving(self) -> core.ServingConfig:
        """The config snapshot a search started now would use."""
        return self._serving

    @property
    def config(self) -> WeightsConfig:
        return self._serving.config

    @property
    def config_version(self) -> str:
        return self._serving.version

    def reload_config(self, path: str | Path) -> core.ServingConfig:
        """Validate ``path`` and swap it in atomically; on any error the old config stays.

        Raises :class:`objectives.config.ConfigError` naming file, line and key.
        """
        with self._reload_lock:
            text = read_config_text(path)
            config = parse_config(text, source=str(path), product_ids=self.catalog.row_of.keys(),
                                  target_weeks_of_cover=self.target_weeks_of_cover,
                                  pin_rule=pin_rule(self.analyzer))
            serving = self._serving_config(config, text, str(path))
            self._serving = serving  # a single reference assignment: atomic for readers
            return serving

    def variant(self, path: str | Path) -> Ranker:
        """A ranker over the same (shared, read-only) bundle arrays serving the weights file
        ``path`` instead, validated like :meth:`reload_config`; this ranker is untouched.
        ``marginrank preview`` compares the two."""
        other = copy.copy(self)
        other._reload_lock = threading.Lock()
        other.reload_config(path)
        return other

    def relevance_only(self) -> Ranker:
        """A ranker over the same bundle arrays with every business weight at 0, the
        guardrails (out of stock, buries, pins, slots) kept: the served baseline that the
        demo compares its weights against. Its ``config`` still names the file's weights;
        the weight table is zeroed and the version marked, so it is never taken for the file.
        Not for saving: :meth:`save` would write the file's weights."""
        other = copy.copy(self)
        other._reload_lock = threading.Lock()
        other._serving = replace(
            self._serving, weight_table=np.zeros_like(self._serving.weight_table),
            version=f"{self._serving.version}-relevance-only")
        return other

    # -- search ----------------------------------------------------------------------------
    def search(self, query: str, customer_id: str | None = None, k: int = 20,
               explain: bool = False, request_id: str | None = None) -> list[SearchResult]:
        """Ranked products for ``query``; an empty or all-unknown query returns [].

        ``request_id``: with the config's ``exploration`` on, a search whose id hashes into
        the exploration share shows its top k shuffled (reproducibly, from the id), and every
        result carries its propensity (:mod:`ranking.exploration`)."""
        return self._search(query, customer_id, k, explain, _Laps(None), request_id)

    def search_timed(self, query: str, customer_id: str | None = None,
                     k: int = 20) -> tuple[list[SearchResult], dict[str, float]]:
        """The same search, also returning the seconds spent in each stage it ran (see
        :data:`SEARCH_STAGES`), so a benchmark times the real path."""
        times: dict[str, float] = {}
        return self._search(query, customer_id, k, False, _Laps(times)), times

    def _search(self, query: str, customer_id: str | None, k: int, explain: bool,
                laps: _Laps, request_id: str | None = None) -> list[SearchResult]:
        _check_request(query, k, customer_id)
        serving = self._serving  # one snapshot for the whole request
        analyzed = self.feature_space.analyze(query)  # the only analysis of this query
        if not analyzed.tokens:
            return []
        pins = serving.pinned(analyzed)
        laps.lap("analysis")
        cand = self.index.fields["all"].search(analyzed.exact, self.n_candidates)[0]
        laps.lap("retrieval")
        if cand.size == 0 and pins is None:
            return []
        X = self.feature_space.extract(analyzed, cand, self.catalog.priors)
        laps.lap("features")
        relevance = self.relevance_scores(X) if cand.size else np.zeros(0)
        laps.lap("relevance")
        segment = serving.segment_index(self.customers.quantile_of(customer_id))
        arm = serving.arm_index(customer_id, segment)
        out = core.blend(relevance, cand, self.catalog.terms, self.catalog.in_stock, serving,
                         segment, int(k), pins, arm)
        laps.lap("blend")
        arm_name = serving.arm_names[arm]
        results = self._results(out, explain, arm_name)
        if request_id is not None and serving.exploration.active and results:
            results = _explored(results, request_id, serving.exploration)
        laps.lap("results")
        return results

    def relevance_scores(self, X: np.ndarray) -> np.ndarray:
        """The served relevance of the candidates' feature rows ``X``."""
        if self.relevance == RELEVANCE_BM25:
            return np.nan_to_num(X[:, self._bm25_column].astype(np.float64), nan=0.0)
        return self.model.predict(X)

    def _results(self, out: core.Blended, explain: bool,
                 arm: str | None) -> list[SearchResult]:
        """The blended top k as :class:`SearchResult` objects, ranks from 1. Read as Python
        lists once (not an array element per field per result), and made by
        :func:`_search_result`: a search builds up to k of them."""
        ids, titles = self.catalog.product_ids, self.catalog.titles
        rows, scores, pinned = out.rows.tolist(), out.scores.tolist(), out.pinned.tolist()
        if not explain:
            return [_search_result(i + 1, ids[row], titles[row], None if pin else score, pin,
                                   None, arm, None)
                    for i, (row, score, pin) in enumerate(zip(rows, scores, pinned, strict=True))]
        names, flags = ("relevance", *TERM_NAMES), self.catalog.from_prior
        results = []
        for i, (row, score, pin, parts) in enumerate(
                zip(rows, scores, pinned, out.contributions.tolist(), strict=True)):
            contributions = from_prior = None
            if not pin:
                contributions = dict(zip(names, parts, strict=True))
                from_prior = ([] if flags is None else
                              [n for n, f in zip(TERM_NAMES, flags[row], strict=True) if f])
            results.append(_search_result(i + 1, ids[row], titles[row], None if pin else score,
                                          pin, contributions, arm, from_prior))
        return results

    def warm(self) -> None:
        """Run one search through every kernel so the first real query is not slow. Kernels
        missing from Numba's cache are compiled here: that still works, and is logged as a
        slow first start with its cause and fix (:mod:`ranking.kernel_cache`)."""
        from ranking import kernel_cache

        before, started = kernel_cache.compiled_kernels(), time.perf_counter()
        probe = next((self.index.vocab.token(i) for i in range(len(self.index.vocab))), "")
        self.search(probe or "warm", k=1, explain=True)
        kernel_cache.report_compiles(before, time.perf_counter() - started)

    # -- bundle ----------------------------------------------------------------------------
    def save(self, directory: str | Path, settings: dict[str, object] | None = None,
             extra_json: dict[str, object] | None = None, key: bytes | None = None) -> Path:
        """Write the bundle and its manifest (last, so a half-written bundle has none).

        ``extra_json`` adds checksummed JSON documents such as ``clv.json`` (CLV parameters).
        With ``key`` (or a key configured in the environment,
        :func:`ranking.bundle.configured_key`) the manifest is signed.
        """
        directory = bundle.prepare_directory(Path(directory))
        (directory / bundle.MANIFEST).unlink(missing_ok=True)
        analyzer = directory / "analyzer.json"
        analyzer.write_text(json.dumps(self.analyzer.to_dict()))
        weights = directory / WEIGHTS_FILE
        weights.write_text(self._serving.text, encoding="utf-8")
        customers = directory / "customers.npz"
        save_customers(customers, self.customers.ids, self.customers.clv, self.customers.quantile)
        files = [analyzer, weights, customers, *self.index.save(directory),
                 *self.feature_space.save(directory),
                 *self.model.save(directory), *self.catalog.save(directory)]
        for name, document in (extra_json or {}).items():
            files.append(directory / name)
            files[-1].write_text(json.dumps(document, indent=2))
        bundle.write_manifest(directory, files,
                              {"n_candidates": self.n_candidates, "relevance": self.relevance,
                               **(settings or {})},
                              key if key is not None else bundle.configured_key())
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, warm: bool = True,
             key: bytes | None = None) -> Ranker:
        """Open a bundle after verifying every file against its manifest (and, with ``key``
        or a key configured in the environment, the manifest's signature: see
        :func:`ranking.bundle.configured_key`), and every array against the others
        (:mod:`ranking.bundle_checks`): anything wrong is a :class:`ranking.bundle.BundleError`
        naming the file and the array, before any kernel runs."""
        from ranking import kernel_cache

        # Numba's registries load in a thread while the files are read (lean in the workers)
        registries = kernel_cache.Registries()
        directory = Path(directory)
        manifest = bundle.verify(directory, BUNDLE_FILES, key=key)
        settings, manifest_path = manifest["settings"], directory / bundle.MANIFEST
        n_candidates = settings.get("n_candidates")
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 1:
            raise bundle.BundleError(f"{directory}: settings.n_candidates must be an integer >= 1")
        relevance = settings.get("relevance", RELEVANCE_MODEL)  # older bundles
        if relevance not in RELEVANCE_SOURCES:
            raise bundle.BundleError(f"{directory}: settings.relevance must be one of "
                                     f"{list(RELEVANCE_SOURCES)}, got {relevance!r}")
        # 8: bundles written before the target was stored
        target = bundle_checks.number_setting(manifest_path, settings, "target_weeks_of_cover",
                                              8.0)
        text = bundle_checks.read_text(directory / WEIGHTS_FILE)
        with bundle_checks.reading(directory / "products.json"):
            catalog = Catalog.load(directory)
        customers_path = directory / "customers.npz"
        with bundle_checks.reading(customers_path):
            bundle_checks.check_npz(customers_path)
            customers = Customers(*load_customers(customers_path))  # sorted, finite: checked
        with bundle_checks.reading(directory / "analyzer.json"):
            analyzer = Analyzer.from_dict(bundle_checks.read_json(directory / "analyzer.json"))
        with bundle_checks.reading(directory / "bm25.npz"):
            index = MultiFieldIndex.load(directory)
        with bundle_checks.reading(directory / f"{features.STEM_INDEX}.npz"):
            _check_fields(directory / "bm25.npz", index, len(catalog.product_ids))
            if features.TERM_CHARS not in manifest["files"]:
                registries.wait()  # an older bundle: a kernel computes its trigram keys
            space = features.FeatureSpace.load(directory, analyzer, index, manifest["files"])
            _check_fields(directory / f"{features.STEM_INDEX}.npz", space.stem_index,
                          len(catalog.product_ids))
        with bundle_checks.reading(directory / "model.ubj"):
            model = LambdaMART.load(directory)
            if model.feature_names != features.FEATURE_NAMES or (
                    model.trees_ is not None
                    and model.trees_.n_features != len(features.FEATURE_NAMES)):
                raise ValueError(f"model.json's features {list(model.feature_names)} are not "
                                 "the features.json ones")
        config = parse_config(text, source=str(directory / WEIGHTS_FILE),
                              product_ids=set(catalog.product_ids), target_weeks_of_cover=target,
                              pin_rule=pin_rule(analyzer))
        ranker = cls(feature_space=space, model=model, catalog=catalog,
                     customers=customers, config=config, config_text=text,
                     n_candidates=n_candidates, relevance=relevance)
        registries.wait()  # before the first kernel
        if warm:
            ranker.warm()
        return ranker


def _explored(results: list[SearchResult], request_id: str,
              exploration: Exploration) -> list[SearchResult]:
    """``results`` reordered by the exploration draw of ``request_id``, ranks renumbered,
    each with its item-position propensity and the search's ``randomized`` flag."""
    drawn = shuffle(request_id, [r.pinned for r in results], exploration)
    out = []
    for place, source in enumerate(drawn.order.tolist()):
        p = float(drawn.propensity[place])
        out.append(replace(results[source], rank=place + 1, randomized=drawn.randomized,
                           propensity=None if np.isnan(p) else p))
    return out


def _check_fields(source: Path, index: MultiFieldIndex, n_products: int) -> None:
    """Every field the features read is indexed, over one document per product."""
    missing = sorted(set(features.INDEXED_FIELDS) - set(index.fields))
    if missing:
        raise bundle_checks.refuse(source, f"missing field(s) {missing}")
    for name, field in index.fields.items():
        if field.n_docs != n_products:
            raise bundle_checks.refuse(source, f"{name}.doc_indptr covers {field.n_docs:,} "
                                               f"documents for {n_products:,} products")


class _Laps:
    """Stage stopwatch for :meth:`Ranker.search_timed`; does nothing when ``times`` is None,
    so plain searches pay only a method call per stage."""

    def __init__(self, times: dict[str, float] | None) -> None:
        self.times = times
        self.last = time.perf_counter() if times is not None else 0.0

    def lap(self, stage: str) -> None:
        if self.times is not None:
            now = time.perf_counter()
            self.times[stage] = now - self.last
            self.last = now


def _check_request(query: object, k: object, customer_id: object) -> None:
    if not isinstance(query, str):
        raise QueryError(f"query must be a string, got {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"query is {len(query):,} characters; the limit is {MAX_QUERY_CHARS:,}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= MAX_K:
        raise QueryError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    if customer_id is not None and not isinstance(customer_id, str):
        raise QueryError(f"customer_id must be a string or None, got {type(customer_id).__name__}")


def pin_rule(analyzer: Analyzer):
    """A pinned query's key: the analyzer's, as every searched query's
    (:attr:`ranking.query.AnalyzedQuery.key`), so a pin is validated by the rule it is served by."""
    return lambda pinned: query_key(analyzer(pinned))


def bundle_pin_rule(directory: str | Path):
    """:func:`pin_rule` of a bundle's analyzer, read from its ``analyzer.json`` alone (for
    ``validate-config --bundle`` and the service's config store, which load no index)."""
    path = Path(directory) / "analyzer.json"
    with bundle_checks.reading(path):
        return pin_rule(Analyzer.from_dict(bundle_checks.read_json(path)))
