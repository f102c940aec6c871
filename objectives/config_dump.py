"""The weights file written out: the commented default file, and a config dumped to YAML that
reads back equal.

(A merchandiser's own file, comments kept, is rewritten by :mod:`objectives.tuned_yaml`.)
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ruamel.yaml import YAML

from objectives.term_registry import weights_yaml_lines

if TYPE_CHECKING:
    from objectives.weights_schema import WeightsConfig


_DUMP_HEADER = "# marginrank weights file, written by marginrank (comments are not preserved).\n"


def dump_config(cfg: WeightsConfig) -> str:
    """YAML text that :func:`parse_config` reads back to an equal config (the tuner writes
    weights back with this for a merchandiser to review).

    This writes a config from scratch, so a merchandiser's comments in the file the config came
    from are lost; the output says so in its header. Defaults and guardrails are written in
    full so the reviewer sees every value; overrides keep only the terms they set, because an
    unset term inherits and writing it would change its meaning.
    """
    document = {
        "version": cfg.version,
        "weights": cfg.weights.model_dump(mode="json"),
        "guardrails": cfg.guardrails.model_dump(mode="json"),
        "segments": {name: {"min_clv_quantile": rule.min_clv_quantile,
                            "weights": rule.weights.overrides()}
                     for name, rule in cfg.segments.items()},
        "categories": {key: {"weights": rule.weights.overrides()}
                       for key, rule in cfg.categories.items()},
        "pins": {query: list(ids) for query, ids in cfg.pins.items()},
        "buries": list(cfg.buries),
        "inventory": cfg.inventory.model_dump(mode="json"),
        "experiments": {name: {"arms": {arm: {"share": rule.share,
                                              "weights": rule.weights.overrides(),
                                              **({"frozen": True} if rule.frozen else {})}
                                        for arm, rule in experiment.arms.items()},
                               **({"shares_by_segment": {
                                   segment: dict(shares)
                                   for segment, shares in experiment.shares_by_segment.items()}}
                                  if experiment.shares_by_segment else {})}
                        for name, experiment in cfg.experiments.items()},
        **({"exploration": cfg.exploration.model_dump(mode="json")}
           if "exploration" in cfg.model_fields_set else {}),
    }
    dumper = YAML(typ="safe", pure=True)
    dumper.default_flow_style = False
    dumper.allow_unicode = True
    dumper.sort_base_mapping_type_on_output = False  # the schema's order, version first
    body = io.StringIO()
    dumper.dump(document, body)
    return _DUMP_HEADER + body.getvalue()


DEFAULT_CONFIG_TEXT = """\
# marginrank weights file.
# Relevance counts 1; each weight is how much one unit of a business term is worth next to it.
# Terms are scaled to comparable units, and a positive weight always means "care more".
version: 1
weights:
""" + "".join(f"{line}\n" for line in weights_yaml_lines()) + """\
guardrails:
  max_ndcg_drop: 0.002      # NDCG@10 may fall at most 0.2% (relative), certified at 95%
  out_of_stock: demote      # demote | hide | ignore
  relevance_tiers: false    # true: business terms only reorder within a relevance tier
  business_slots: 0         # N: business picks the first N places, relevance orders all
# Overrides replace only the terms they set; the others inherit from `weights`.
# segments:                 # by customer CLV tier: the highest min_clv_quantile <= the customer's
#   top_decile: {min_clv_quantile: 0.9, weights: {margin: 0.1}}
# categories:               # by category path prefix: the longest matching prefix wins
#   "Furniture/Sofas": {weights: {inventory: 0.3}}
# pins: {"patio umbrella": ["P123"]}    # query -> products placed first, in this order
# buries: ["P999"]                      # products placed last
inventory:
  target_weeks_of_cover: 8  # inventory pressure is log(weeks of cover / this target)
# experiments:              # one at a time; a customer's arm is a stable hash of (name, id)
#   margin_push:            # arms' overrides apply last, over segment and category weights
#     arms:
#       control: {share: 0.5}
#       push: {share: 0.25, weights: {margin: 0.5}}   # the other 25%: base weights
"""
