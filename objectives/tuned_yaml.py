"""Write tuned weights back into the merchandiser's own weights file, comments kept.

The tuner's result is a new :class:`~objectives.config.WeightsConfig` (``config.tuned(w)``:
new default weights, segment and category weights scaled by the same factor). A merchandiser
reviews it as a diff of the file they wrote, so the file is edited in place through a
ruamel.yaml round trip: only the numbers change, and comments, key order, flow style and
quoting stay as they were. The text written is parsed back and must equal the tuned config,
so what the merchandiser reads is exactly what was checked and will be served.
"""

from __future__ import annotations

import io
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from clv.errors import MarginRankError
from objectives.config import TERM_NAMES, WeightsConfig, parse_config, read_config_text


def tuned_yaml_text(text: str, tuned: WeightsConfig, *, source: str = "<weights>",
                    note: str = "") -> str:
    """``text`` (a weights file) with its weights replaced by those of ``tuned``.

    Every default weight is written (a term the file left out gets its tuned value), and every
    segment, category and experiment-arm override the file sets is replaced by its tuned
    value. ``note``, if given, becomes a comment at the top (e.g. how the weights were tuned).
    """
    yaml = YAML()  # round-trip mode: keeps comments, order and style
    yaml.preserve_quotes = True
    document = yaml.load(text)
    if not isinstance(document, CommentedMap):
        raise MarginRankError(f"{source}: a weights file is a mapping; cannot write into it")
    _set_weights(document, "weights", tuned.weights.model_dump(), every_term=True)
    for name, rule in tuned.segments.items():
        _set_weights(document["segments"][name], "weights", rule.weights.overrides())
    for key, rule in tuned.categories.items():
        _set_weights(document["categories"][key], "weights", rule.weights.overrides())
    for name, experiment in tuned.experiments.items():
        for arm, rule in experiment.arms.items():
            _set_weights(document["experiments"][name]["arms"][arm], "weights",
                         rule.weights.overrides())
    out = io.StringIO()
    yaml.dump(document, out)
    # Prepended as text: ruamel's start comment would replace the file's own opening comment.
    written = "".join(f"# {line}\n" for line in note.splitlines()) + out.getvalue()
    if parse_config(written, source=f"{source} (tuned)") != tuned:
        raise MarginRankError(f"{source}: the rewritten file does not read back as the tuned "
                              "weights; refusing to write it")
    return written


def _set_weights(parent: CommentedMap, key: str, values: dict[str, float], *,
                 every_term: bool = False) -> None:
    """Replace the numbers under ``parent[key]`` in place (creating the mapping if absent).
    With ``every_term`` all terms are written in TERM_NAMES order, else only those given."""
    if parent.get(key) is None:
        parent[key] = CommentedMap()
    mapping = parent[key]
    for name in TERM_NAMES if every_term else values:
        mapping[name] = float(values[name])


def write_tuned_yaml(source: Path, tuned: WeightsConfig, out: Path, *, note: str = "") -> Path:
    """Write ``tuned`` into a copy of the weights file ``source`` at ``out`` (``source`` itself
    is not modified unless it is ``out``)."""
    text = read_config_text(source)
    out.write_text(tuned_yaml_text(text, tuned, source=str(source), note=note), encoding="utf-8")
    return out
