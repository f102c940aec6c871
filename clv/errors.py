"""The one error hierarchy of marginrank: every error class is defined here, once.

It lives in ``clv`` because ``clv`` is the bottom of the import graph (``objectives`` and
``ranking`` import it, it imports nothing of ours), so every package raises and catches the same
classes, and the query path pays only for this small module (no pandas, no pydantic). Callers
catch :class:`MarginRankError` to handle any of our failures; bad queries, tables and weights
files are also ``ValueError``. Each package's ``__init__`` exports its own errors
(``from ranking import QueryError``, ``from objectives import ConfigError``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class MarginRankError(Exception):
    """Base of every error marginrank raises on purpose."""


class ArgumentError(MarginRankError, ValueError):
    """An argument is outside what the function accepts (a setting, not a table row).

    Also a ``ValueError``, so callers that caught the built-in keep working.
    """


class DataError(MarginRankError, ValueError):
    """A table (catalog, judgments, transactions) is malformed.

    The message always says where: the file, the 1-based line in that file (header is line 1
    for CSV), the column and the offending value, so a user can open the file and fix it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
        value: object = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.value = value.item() if hasattr(value, "item") else value  # numpy scalar -> plain
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.file or "<table>"
        if self.line is not None:
            where += f":{self.line}"
        parts = [where]
        if self.column is not None:
            parts.append(f"column '{self.column}'")
        text = ": ".join(parts) + f": {self.reason}"
        if self.value is not None:
            text += f" (value: {self.value!r})"
        return text


# clv ------------------------------------------------------------------------------------------


class CLVFitError(MarginRankError):
    """The CLV model cannot be fitted on this summary (or has not been fitted yet)."""


# objectives -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a weights file, located well enough for a person to open and fix it.

    ``line`` is 1-based (None when the file could not be read at all); ``key_path`` is like
    ``weights.marign`` or ``pins."patio umbrella"[0]``, and empty for the document itself.
    """

    file: str
    line: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return ": ".join(part for part in (where, self.key_path, self.message) if part)


class ConfigError(MarginRankError, ValueError):
    """A weights file was refused; ``issues`` holds every problem found, in file order.

    Also a ``ValueError``: the file holds a value the schema refuses.
    """

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = sorted(issues, key=lambda issue: issue.line or 0)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class UnknownSegmentError(MarginRankError, LookupError):
    """A segment name was asked for that the config does not define (a caller bug, not a
    file problem: names come from :meth:`objectives.WeightsConfig.segment_for_quantile`)."""


class AuditError(MarginRankError):
    """Blocking audit findings stopped a build; the message lists them."""


# ranking --------------------------------------------------------------------------------------


class QueryError(MarginRankError, ValueError):
    """A search request is invalid (wrong type, too long, k out of range).

    Also a ``ValueError``, as the built-in would be for a bad argument.
    """


class AnalyzerError(MarginRankError):
    """Analyzer settings (e.g. a bundle's analyzer.json) that cannot be used."""


class BM25IndexError(MarginRankError):
    """A BM25 index cannot be built, loaded or queried as asked."""


class ModelError(MarginRankError):
    """Training data or a saved model is unusable."""


class UBJSONError(MarginRankError):
    """A file is not the UBJSON it should be."""


class BundleError(MarginRankError):
    """A bundle directory is missing, incomplete, altered or of another format version."""


class AllocationError(MarginRankError):
    """The allocation cannot be made as asked (unknown arm, no experiment, bad bounds)."""
