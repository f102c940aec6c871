from ranking.text import Analyzer


def test_units_and_numbers_stay_useful() -> None:
    tokens = Analyzer()("DeWalt 20V MAX 1/2 in. Drill 2x4 60-Watt 1.5 gal.")
    assert tokens == ["dewalt", "20v", "max", "1/2", "in", "drill", "2x4", "60", "watt", "1.5",
                      "gal"]


def test_nfkc_lowercase_and_non_latin() -> None:
    assert Analyzer()("ＬＥＤ Türgriff 日本語 Лампа") == ["led", "türgriff", "日本語", "лампа"]


def test_empty_and_punctuation_only() -> None:
    assert Analyzer()("") == []
    assert Analyzer()("  ,;!  ") == []


def test_stopwords_optional_and_round_trip() -> None:
    a = Analyzer(stopwords=True)
    assert a("a drill for the wall") == ["drill", "wall"]
    assert Analyzer.from_dict(a.to_dict()) == a


def test_stemming_is_an_option_and_round_trips() -> None:
    stemmed = Analyzer(stem=True)
    assert stemmed("Drilling cordless DRILLS") == ["drill", "cordless", "drill"]
    assert Analyzer()("Drilling drills") == ["drilling", "drills"]
    assert Analyzer.from_dict(stemmed.to_dict()) == stemmed
