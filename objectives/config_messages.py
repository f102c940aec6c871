"""Where a problem in a weights file is, and how to say it: key paths and their lines, and
pydantic's errors reworded for the merchandiser who edits the file.

A problem is found first as a key path (:data:`Loc`) and a message; :func:`to_issues` then
gives each the line of the deepest part of its path that the file has, so a missing key is
reported at its parent.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from clv.errors import ConfigIssue

#: A key path: mapping keys and sequence indices from the top of the document.
Loc = tuple[Any, ...]
#: A problem found before it has a line: where it is and what is wrong.
Problem = tuple[Loc, str]


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_/\-]+")


def to_issues(source: str, lines: dict[Loc, int], problems: Iterable[Problem]) -> list[ConfigIssue]:
    return [ConfigIssue(source, _line_of(lines, loc), format_path(loc), text)
            for loc, text in problems]


def _line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """Line of the deepest prefix of ``loc`` present in the file (a missing key reports at its
    parent); the document root is always present."""
    parts = tuple(part for part in loc if part != "[key]")
    return next(lines[parts[:end]] for end in range(len(parts), -1, -1) if parts[:end] in lines)


def format_path(loc: Loc) -> str:
    """``weights.margin``, ``buries[1]``, ``pins."patio umbrella"[0]``."""
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
            continue
        name = str(part)
        name = name if _PLAIN_KEY.fullmatch(name) else f'"{name}"'
        text += f".{name}" if text else name
    return text


_TYPE_MESSAGES = {
    "model_type": "must be a mapping (key: value pairs)",
    "dict_type": "must be a mapping (key: value pairs)",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "string_type": "must be a string",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "finite_number": "must be a finite number",
}
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
           "less_than": "<"}


def error_problem(error: Any, root: type[BaseModel]) -> Problem:
    """A pydantic error as (loc, message) in a merchandiser's words rather than pydantic's;
    ``root`` is the model of the whole document (for the keys allowed where one is unknown)."""
    loc, kind, got = tuple(error["loc"]), error["type"], error["input"]
    context = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return loc, _unknown_key_message(root, loc)
    if kind == "missing":
        return loc, f"required key {loc[-1]!r} is missing"
    if kind == "literal_error":
        return loc, f"must be one of {context['expected']}; got {describe(got)}"
    if kind in _BOUNDS:
        bound = next(iter(context.values()))
        return loc, f"must be {_BOUNDS[kind]} {bound}; got {describe(got)}"
    if kind not in _TYPE_MESSAGES:
        return loc, error["msg"]
    text = f"{_TYPE_MESSAGES[kind]}; got {describe(got)}"
    if kind == "string_type" and is_number(got):
        text += " (quote it to make it text)"
    return loc, ("key " + text) if loc and loc[-1] == "[key]" else text


def _unknown_key_message(root: type[BaseModel], loc: Loc) -> str:
    allowed = _allowed_keys(root, loc[:-1])
    message = f"unknown key {loc[-1]!r}"
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    return f"{message}; allowed keys: {', '.join(allowed)}"


def _allowed_keys(root: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the model found at ``loc``, by walking ``root``'s field types
    (dict values and sequence items consume one element of ``loc``)."""
    annotation: Any = root
    for part in loc:
        if _is_model(annotation):
            field = annotation.model_fields.get(part)
            if field is None:
                return []
            annotation = field.annotation
        else:
            args = getattr(annotation, "__args__", ())
            if not args:
                return []
            annotation = args[-1] if getattr(annotation, "__origin__", None) is dict else args[0]
    return list(annotation.model_fields) if _is_model(annotation) else []


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def describe(value: Any) -> str:
    """A value as the merchandiser wrote it in YAML, not as Python prints it."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
