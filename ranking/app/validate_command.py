"""``marginrank validate-config``: check a weights YAML file, and with ``--catalog`` or
``--bundle`` that its pins, buries and category rules match products."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``validate-config``."""
    check = subparsers.add_parser("validate-config", help="check a weights YAML file")
    check.add_argument("file", type=Path, help="the weights YAML file to check")
    known = check.add_mutually_exclusive_group()
    known.add_argument("--catalog", type=Path,
                       help="also check that pins, buries and category rules match products in "
                            "this catalog")
    known.add_argument("--bundle", type=Path,
                       help="also check that pins, buries and category rules match products in "
                            "this bundle, and its inventory target")
    check.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from clv.errors import ConfigError
    from objectives.config import load_config, read_config_text
    from objectives.config import unmatched_category_rules as unmatched

    products, categories, target = _known_products(args)
    rule = None
    if args.bundle:  # pins are checked by the rule the bundle's ranker serves them by
        from ranking.ranker import bundle_pin_rule
        rule = bundle_pin_rule(args.bundle)
    config = load_config(args.file, product_ids=products, target_weeks_of_cover=target,
                         pin_rule=rule)
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
