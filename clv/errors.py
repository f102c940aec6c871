"""The one error hierarchy of marginrank.

It lives in ``clv`` because ``clv`` is the bottom of the import graph (``objectives`` and
``ranking`` import it, it imports nothing of ours), so every package can raise and catch the
same base class. Callers catch :class:`MarginRankError` to handle any of our failures.
"""

from __future__ import annotations

from pathlib import Path


class MarginRankError(Exception):
    """Base of every error marginrank raises on purpose."""


class ArgumentError(MarginRankError, ValueError):
    """An argument is outside what the function accepts (a setting, not a table row).

    Also a ``ValueError``, so callers that caught the built-in keep working.
    """


class DataError(MarginRankError):
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
