"""Customer lifetime value: transactions -> RFM -> BG/NBD + Gamma-Gamma -> CLV, segments,
product CLV affinity. Imports nothing else of marginrank.

Public names resolve lazily (PEP 562): ``ranking`` and ``objectives`` import ``clv.errors`` on
every start, and that should not pay for importing lifetimes (slow: it loads pandas, scipy and
autograd) unless the CLV model is actually used.
"""

from __future__ import annotations

from clv.lazy_exports import lazy_exports

_EXPORTS = {
    "MarginRankError": "clv.errors",
    "ArgumentError": "clv.errors",
    "DataError": "clv.errors",
    "CLVFitError": "clv.errors",
    "ExclusionReport": "clv.tables",
    "TRANSACTION_COLUMNS": "clv.transactions",
    "UCI_ONLINE_RETAIL_COLUMNS": "clv.transactions",
    "load_transactions": "clv.transactions",
    "validate_transactions": "clv.transactions",
    "rfm_summary": "clv.rfm",
    "calibration_holdout_split": "clv.rfm",
    "CLVModel": "clv.model",
    "CustomerCLV": "clv.segments",
    "clv_quantiles": "clv.segments",
    "product_clv_affinity": "clv.segments",
    "save_customers": "clv.segments",
    "load_customers": "clv.segments",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
