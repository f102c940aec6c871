"""Write allocated arm shares back into the merchandiser's weights file, comments kept.

The bandit's result is a new :class:`~objectives.config.WeightsConfig` (new ``share`` and
``shares_by_segment``, arms it froze marked ``frozen: true``). The file is edited in place
through a ruamel.yaml round trip, as the tuner does (:mod:`objectives.tuned_yaml`): only those
numbers and flags change; comments, key order, flow style and quoting stay. The new text must
read back as the allocated config, and the file on disk is replaced only after the written
temporary file has passed :func:`~objectives.config.load_config`, by an atomic rename, so a
service watching the file never reads half of it or an invalid one.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from clv.errors import MarginRankError
from objectives.config import WeightsConfig, load_config, parse_config, read_config_text


def allocated_yaml_text(text: str, allocated: WeightsConfig, *,
                        source: str = "<weights>") -> str:
    """``text`` (a weights file) with the running experiment's shares, per-segment shares and
    frozen flags replaced by those of ``allocated``."""
    yaml = YAML()  # round-trip mode: keeps comments, order and style
    yaml.preserve_quotes = True
    document = yaml.load(text)
    name, experiment = next(iter(allocated.experiments.items()))
    try:
        written = document["experiments"][name]
        arms = written["arms"]
    except (KeyError, TypeError):
        raise MarginRankError(f"{source}: experiment {name!r} is not in the file") from None
    for arm, rule in experiment.arms.items():
        arms[arm]["share"] = float(rule.share)
        if rule.frozen:
            arms[arm]["frozen"] = True
        elif "frozen" in arms[arm]:
            arms[arm]["frozen"] = False
    by_segment = written.get("shares_by_segment")
    if by_segment is None:
        by_segment = CommentedMap()
        written["shares_by_segment"] = by_segment
    for segment in [s for s in by_segment if s not in experiment.shares_by_segment]:
        del by_segment[segment]
    for segment, shares in experiment.shares_by_segment.items():
        if segment in by_segment and isinstance(by_segment[segment], CommentedMap):
            mapping = by_segment[segment]
            for arm in [a for a in mapping if a not in shares]:
                del mapping[arm]
        else:
            mapping = CommentedMap()
            mapping.fa.set_flow_style()  # one line per segment: easy to read in a diff
            by_segment[segment] = mapping
        for arm, share in shares.items():
            mapping[arm] = float(share)
    out = io.StringIO()
    yaml.dump(document, out)
    result = out.getvalue()
    if parse_config(result, source=f"{source} (allocated)") != allocated:
        raise MarginRankError(f"{source}: the rewritten file does not read back as the "
                              "allocated shares; refusing to write it")
    return result


def write_allocated_yaml(source: Path, allocated: WeightsConfig, out: Path) -> Path:
    """Write ``allocated`` into a copy of the weights file ``source`` at ``out`` (which may be
    ``source`` itself): a temporary file beside ``out`` is written, checked by
    :func:`load_config` and renamed over ``out``."""
    text = allocated_yaml_text(read_config_text(source), allocated, source=str(source))
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        if load_config(tmp) != allocated:
            raise MarginRankError(f"{out}: the written file does not load as the allocated "
                                  "shares; the old file is kept")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
