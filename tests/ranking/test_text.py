import pytest

from ranking.text import Analyzer, AnalyzerError


def test_units_and_numbers_stay_useful() -> None:
    tokens = Analyzer()("DeWalt 20V MAX 1/2 in. Drill 2x4 60-Watt 1.5 gal.")
    assert tokens == ["dewalt", "20", "v", "20v", "max", "1/2", "in", "1/2in", "drill", "2x4",
                      "60", "w", "60w", "1.5", "gal", "1.5gal"]


@pytest.mark.parametrize("spellings, tokens", [
    (['3/4 in.', '3/4"', "3/4-inch", "3/4 inches", "3/4in", "3/4 \u2033"], ["3/4", "in", "3/4in"]),
    (["1-1/2 in.", "1 1/2 inch", "1-1/2-in."], ["1-1/2", "in", "1-1/2in"]),
    (["60-watt", "60 Watt", "60W", "60 watts"], ["60", "w", "60w"]),
    (["8 ft.", "8'", "8-foot", "8 feet"], ["8", "ft", "8ft"]),
    (["2 gal.", "2-gallon", "2 gallons"], ["2", "gal", "2gal"]),
    (["2x4", "2 x 4", "2 \u00d7 4"], ["2x4"]),
    ([".75 oz", "0.75 ounces"], ["0.75", "oz", "0.75oz"]),
])
def test_every_spelling_of_a_quantity_gives_the_same_tokens(spellings: list[str],
                                                            tokens: list[str]) -> None:
    for text in spellings:
        assert Analyzer()(text) == tokens, text


def test_a_word_is_a_unit_only_after_a_number() -> None:
    assert Analyzer()("drill in case") == ["drill", "in", "case"]
    assert Analyzer()("20vmax 1t5 r13") == ["20vmax", "1t5", "r13"]  # not a number + unit
    assert Analyzer()("the 90's") == ["the", "90", "s"]


def test_units_off_is_the_plain_tokenizer() -> None:
    tokens = Analyzer(units=False)("DeWalt 20V MAX 1/2 in. Drill 2x4 60-Watt 1.5 gal.")
    assert tokens == ["dewalt", "20v", "max", "1/2", "in", "drill", "2x4", "60", "watt", "1.5",
                      "gal"]


def test_nfkc_lowercase_and_non_latin() -> None:
    assert Analyzer()("ＬＥＤ Türgriff 日本語 Лампа") == ["led", "türgriff", "日本語", "лампа"]
    assert Analyzer()("Лампа 60 Вт") == ["лампа", "60", "вт"]


def test_empty_and_punctuation_only() -> None:
    assert Analyzer()("") == []
    assert Analyzer()("  ,;!  ") == []


def test_stopwords_optional_and_round_trip() -> None:
    a = Analyzer(stopwords=True)
    assert a("a drill for the wall") == ["drill", "wall"]
    assert a("drill in case, 3/4 in") == ["drill", "case", "3/4", "in", "3/4in"]  # a unit stays
    assert Analyzer.from_dict(a.to_dict()) == a


def test_stemming_is_an_option_and_round_trips() -> None:
    stemmed = Analyzer(stem=True)
    assert stemmed("Drilling cordless DRILLS") == ["drill", "cordless", "drill"]
    assert stemmed("2-packs of drills") == ["2", "pack", "2pack", "of", "drill"]
    assert Analyzer()("Drilling drills") == ["drilling", "drills"]
    assert Analyzer.from_dict(stemmed.to_dict()) == stemmed


def test_settings_from_an_older_bundle_keep_their_tokenization() -> None:
    old = Analyzer.from_dict({"lowercase": True, "stopwords": False, "stem": False})
    assert not old.units
    assert old("60-watt") == ["60", "watt"]


def test_bad_settings_are_refused_clearly() -> None:
    with pytest.raises(AnalyzerError, match="unknown analyzer settings"):
        Analyzer.from_dict({"lowercase": True, "stemming": True})
    with pytest.raises(AnalyzerError, match="'stem' must be true or false"):
        Analyzer.from_dict({"stem": "yes"})


WITH_STEMS_TEXTS = [
    "", " ", "Cordless Drills 20V", '3/4 in. x 50 ft Hoses 60-Watt 3/4" 1 1/2 ft .5 gal',
    "drilling in cases", "the running sprinklers of the lawns", "ΟΔΟΣ Σ σ tests",
    "ﬁnes ｆｕｌｌ１２ｉｎ",
    "1,000 lbs. and 3-1/2 in. (Pack of 2) batteries", "tab\there 12\tin and 5 -ft", "٣/٤ in bulbs",
]


@pytest.mark.parametrize("analyzer", [
    Analyzer(lowercase=lower, stopwords=stop, units=units, stem=stem)
    for lower in (True, False) for stop in (True, False) for units in (True, False)
    for stem in (True, False)])
def test_with_stems_is_both_analyzers_in_one_pass(analyzer: Analyzer) -> None:
    stemming = Analyzer(**{**analyzer.to_dict(), "stem": True})
    for text in WITH_STEMS_TEXTS:
        assert analyzer.with_stems(text) == (analyzer(text), stemming(text)), text


@pytest.mark.realdata
def test_with_stems_is_both_analyzers_on_home_depot(home_depot) -> None:  # noqa: ANN001
    import pandas as pd

    frame = pd.read_csv(home_depot, encoding="latin-1", usecols=["search_term", "product_title"])
    texts = [*frame["search_term"].drop_duplicates(), *frame["product_title"].iloc[:5000]]
    analyzer, stemming = Analyzer(), Analyzer(stem=True)
    for text in texts:
        assert analyzer.with_stems(text) == (analyzer(text), stemming(text)), text
