"""Loaders for the public datasets we benchmark on, into the generic data contracts.

Each returns the same validated frames as :mod:`objectives.catalog`, so every benchmark and the
build job run unchanged on a public dataset or on a user's own catalog and judgments.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

from clv.tables import read_table, require_columns
from objectives.catalog import validate_catalog, validate_judgments

#: Home Depot Product Search Relevance (Kaggle 2016), ``train.csv``: the columns we read.
HOME_DEPOT_COLUMNS = ("product_uid", "product_title", "search_term", "relevance")


class PublicDataset(NamedTuple):
    """A public dataset in the generic form, with what the loader had to decide about it."""

    catalog: pd.DataFrame
    judgments: pd.DataFrame
    notes: list[str]


def load_home_depot(path: str | Path) -> PublicDataset:
    """The Home Depot ``train.csv`` (ISO-8859-1) as a catalog and judgments.

    The catalog is the distinct judged products (``product_uid`` -> ``product_id``, title); the
    judgments are (search term, product, mean rater grade 1-3). A search term is its own query,
    so the same text under two Kaggle row ids is one query. 15 products carry two different
    titles in the file; the first one seen is kept and the count goes into ``notes``. The file
    has no business fields: :mod:`objectives.simulate` has the seeded, documented stand-ins.
    """
    frame = read_table(path, encoding="latin-1", dtype={"product_uid": str})
    require_columns(frame, HOME_DEPOT_COLUMNS, file=str(path))
    products = frame.drop_duplicates("product_uid")
    retitled = int(frame.groupby("product_uid")["product_title"].nunique().gt(1).sum())
    catalog, _ = validate_catalog(
        pd.DataFrame({"product_id": products["product_uid"], "title": products["product_title"]}),
        source=f"{path} (distinct products)")
    judgments = validate_judgments(
        pd.DataFrame({"query": frame["search_term"], "product_id": frame["product_uid"],
                      "grade": frame["relevance"]}),
        source=str(path), product_ids=pd.Index(catalog["product_id"]))
    notes = [f"{path}: {len(catalog):,} products, {judgments['query_id'].nunique():,} queries, "
             f"{len(judgments):,} judgments"]
    if retitled:
        notes.append(f"{path}: {retitled} products appear with two titles; the first is kept")
    return PublicDataset(catalog, judgments, notes)
