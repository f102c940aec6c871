"""Reading a weights file's YAML: the data, the line of every key, and syntax errors in plain
words.

ruamel.yaml composes the node tree with the ``safe`` loader, so no tag can run code, and YAML
1.2, so ``yes``/``no``/``on``/``off`` are text, not booleans, and a pin for the query ``no``
stays a string. The tree gives the line of every key and sequence item, and shows duplicate
keys, which a plain load would silently collapse to one value. A syntax error is located by
replaying the parser's events up to it, and the commonest ones (indentation, a missing ':')
are explained in plain words before the parser's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml import events as yaml_events
from ruamel.yaml import nodes as yaml_nodes
from ruamel.yaml.error import YAMLError

from clv.errors import ConfigError, ConfigIssue
from objectives.config_messages import Loc, Problem, format_path, to_issues

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class Document:
    """A composed YAML document: the plain data, the line of every key path, early problems."""

    data: Any
    lines: dict[Loc, int]
    problems: list[Problem]


def _safe_yaml() -> YAML:
    """A fresh safe YAML 1.2 loader (ruamel's YAML objects keep state, so one per parse keeps
    concurrent parses apart). Duplicate keys are allowed through to the node walk, which
    reports each of them with both lines instead of stopping at the first."""
    loader = YAML(typ="safe", pure=True)
    loader.allow_duplicate_keys = True
    return loader


class _NodeIndex:
    """Walks a composed node tree, recording the 1-based line of each key (or sequence item),
    duplicate keys, and scalars that cannot be constructed (bad tags, impossible dates)."""

    def __init__(self, loader: YAML) -> None:
        self.lines: dict[Loc, int] = {}
        self.duplicates: list[Problem] = []
        self.unreadable: list[Problem] = []
        self._constructor = loader.constructor
        self._active: set[int] = set()

    def visit(self, node: yaml_nodes.Node, loc: Loc) -> None:
        if id(node) in self._active:  # a recursive alias; its lines are already known
            return
        self._active.add(id(node))
        if isinstance(node, yaml_nodes.MappingNode):
            self._visit_mapping(node, loc)
        elif isinstance(node, yaml_nodes.SequenceNode):
            for index, item in enumerate(node.value):
                self.lines[(*loc, index)] = item.start_mark.line + 1
                self.visit(item, (*loc, index))
        else:
            self._construct(node, loc)
        self._active.discard(id(node))

    def _visit_mapping(self, node: yaml_nodes.MappingNode, loc: Loc) -> None:
        """Merge keys (``<<``) are skipped: merged entries then report at the mapping's line."""
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml_nodes.ScalarNode):
                continue
            key = self._construct(key_node, loc)
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.duplicates.append(((*loc, key), f"duplicate key {key!r} (first on line "
                                        f"{first_line[key]}); a key may appear only once"))
            else:
                first_line[key] = line
            self.lines[(*loc, key)] = line
            self.visit(value_node, (*loc, key))

    def _construct(self, node: yaml_nodes.Node, loc: Loc) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except (YAMLError, ValueError) as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            self.unreadable.append((loc, f"cannot read value {node.value!r}: {reason}"))
            return node.value


def compose(text: str, source: str) -> Document:
    """Parse ``text`` with safe-load semantics, keeping line numbers; raise a ConfigError for
    what leaves nothing to validate (syntax errors, empty file)."""
    loader = _safe_yaml()
    try:
        root = loader.compose(text)
    except YAMLError as exc:
        raise ConfigError([_yaml_issue(exc, text, source)]) from None
    if root is None:
        raise ConfigError([ConfigIssue(source, 1, "", "empty file; a weights file needs at least "
                                       "'version: 1'")])
    index = _NodeIndex(loader)
    index.lines[()] = root.start_mark.line + 1
    index.visit(root, ())
    if index.unreadable:
        raise ConfigError(to_issues(source, index.lines, index.unreadable + index.duplicates))
    try:
        data = _safe_yaml().constructor.construct_document(root)
    except (YAMLError, ValueError) as exc:
        raise ConfigError([_yaml_issue(exc, text, source)]) from None
    return Document(data, index.lines, index.duplicates)


def _yaml_issue(exc: Exception, text: str, source: str) -> ConfigIssue:
    """Locate a YAML error by its problem mark (or its character position for reader errors)
    and name the key being read when it happened."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    position = mark.index if mark is not None else getattr(exc, "position", 0)
    # A mark at the end of the stream sits after the last newline: report the last real line.
    line = min(text.count("\n", 0, position) + 1, len(text.splitlines()) or 1)
    reason = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"YAML error: {reason}" + (f" ({context})" if context else "")
    if plain := _plain_yaml_reason(str(reason), text, line):
        message = f"{plain}; {message}"
    return ConfigIssue(source, line, format_path(_path_at(text, position)), message)


def _plain_yaml_reason(reason: str, text: str, line: int) -> str:
    """The commonest YAML syntax errors in plain words (a merchandiser does not know what a
    '<block end>' is); the parser's own words follow in the message. Empty if none applies."""
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    indent = len(here) - len(here.lstrip(" "))
    above = next((s for s in reversed(lines[:line - 1]) if s.strip()
                  and not s.lstrip().startswith("#")), "")
    if "\\t" in reason or "\t" in reason:
        return f"line {line} is indented with a tab; YAML indents with spaces only"
    if reason.startswith("expected <block end>") and here.lstrip().startswith("- "):
        return (f"line {line} starts a list item ('- ') among 'key: value' lines; a block holds "
                "either keys or list items, not both")
    if reason.startswith("expected <block end>"):
        return (f"line {line} is indented by {indent} space{'s' * (indent != 1)}, which lines up "
                "with no key above it; the keys of one block must start in the same column, "
                "and a nested block one step further in")
    if reason.startswith("mapping values are not allowed"):
        if here.split("#")[0].count(":") >= 2:
            return (f"line {line} has a second 'key:' after the first one; put the inner key "
                    "on its own line, indented, or quote a value that contains ': '")
        if ":" not in above and not above.lstrip().startswith("-"):
            return f"the line above line {line} ('{above.strip()}') has no ':'; write 'key: value'"
        key = above.strip().split(":")[0]
        return (f"line {line} is indented under '{key}', which already has a value; line it "
                "up with the keys above it")
    if reason.startswith("expected ',' or '}'"):
        return "a '{' is not closed with '}', or two entries inside it lack a ',' between them"
    if reason.startswith("expected ',' or ']'"):
        return "a '[' is not closed with ']', or two items inside it lack a ',' between them"
    if reason.startswith("could not find expected ':'"):
        return f"line {line} should read 'key: value' but has no ':' after its key"
    return ""


@dataclass
class _Frame:
    """An open collection while replaying parser events: its current key or item index."""

    is_mapping: bool
    key: Any = None
    expects_key: bool = True


def _path_at(text: str, position: int) -> Loc:
    """Best-effort key path at character ``position``, found by replaying parser events up to
    it (or up to the syntax error), so that even a YAML error names where in the schema it is."""
    frames: list[_Frame] = []
    try:
        for event in _safe_yaml().parse(text):
            if event.start_mark.index >= position:
                break
            if isinstance(event, yaml_events.CollectionEndEvent):
                frames.pop()
                _value_done(frames)
            elif isinstance(event, yaml_events.NodeEvent):
                _node_started(frames, event)
    except YAMLError:
        pass
    return tuple(frame.key for frame in frames if frame.key is not None)


def _node_started(frames: list[_Frame], event: yaml_events.NodeEvent) -> None:
    top = frames[-1] if frames else None
    if top is not None and top.is_mapping and top.expects_key:
        top.key = getattr(event, "value", "?")
        top.expects_key = False
        return
    if top is not None and not top.is_mapping:
        top.key = 0 if top.key is None else top.key + 1
    if isinstance(event, yaml_events.CollectionStartEvent):
        frames.append(_Frame(is_mapping=isinstance(event, yaml_events.MappingStartEvent)))
    else:
        _value_done(frames)


def _value_done(frames: list[_Frame]) -> None:
    if frames and frames[-1].is_mapping:
        frames[-1].key = None
        frames[-1].expects_key = True


def read_config_text(path: str | Path) -> str:
    """The text of a weights file, or a :class:`ConfigError` saying why it cannot be read.
    (Callers that keep the text, such as a hot reload, read once and parse that text.)"""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text ({exc.reason})"
        raise ConfigError([ConfigIssue(str(path), None, "", f"cannot read: {reason}")]) from exc
