"""The ranker's result objects: the fast constructor a search uses makes what
``SearchResult``'s own ``__init__`` makes."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, asdict, fields, replace

import pytest

from ranking.ranker import SearchResult, _search_result


@pytest.mark.parametrize("args", [
    (1, "p1", "Drill", 0.25, False, None, None, None),
    (2, "p2", "Pinned", None, True, None, "treatment", None),
    (3, "p3", "Explained", -1.5, False, {"relevance": 0.5, "margin": -2.0}, "control",
     ["margin"]),
])
def test_the_fast_result_is_the_dataclass_result(args: tuple) -> None:
    fast = _search_result(*args)
    slow = SearchResult(*args)
    assert type(fast) is SearchResult
    assert list(vars(fast)) == [f.name for f in fields(SearchResult)]
    assert fast == slow and repr(fast) == repr(slow) and asdict(fast) == asdict(slow)
    assert fast.to_dict() == slow.to_dict()
    assert replace(fast, rank=9) == replace(slow, rank=9)
    if args[5] is None:
        assert hash(fast) == hash(slow)
    with pytest.raises(FrozenInstanceError):
        fast.rank = 5  # type: ignore[misc]
