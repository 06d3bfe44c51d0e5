"""Language-aware BM25: Snowball stemmers per ISO 639-1 code, and language="auto"."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import snowballstemmer

from lfm_retrievers import BM25Index, _io
from lfm_retrievers.evaluation import document_text, evaluate, load_beir
from lfm_retrievers.indexes.analyzers import (
    AutoLanguageAnalyzer,
    LanguageAnalyzer,
    default_analyzer,
    get_analyzer,
)
from lfm_retrievers.indexes.languages import (
    STEMMED_LANGUAGES,
    check_language,
    get_detector,
    snowball_stemmer,
)

# Spanish, German and English documents; each query below uses other inflections of a word.
MIXED = {
    "es1": "Los gatos negros duermen en las casas antiguas del pueblo.",
    "es2": "El tren nocturno sale de la estación central a medianoche.",
    "de1": "Die Kinder spielten gestern im großen Garten hinter den Häusern.",
    "de2": "Der Zug fährt morgen früh vom Hauptbahnhof ab.",
    "en1": "Engineers were running several experiments on the cooling systems.",
    "en2": "The library opens its reading rooms to visiting researchers.",
}


def test_every_stemmed_language_is_the_snowball_algorithm() -> None:
    """Our stems are snowballstemmer's own, for every code we map, on its own sample words."""
    words = {"es": "corriendo", "de": "häuser", "ar": "والكتاب", "hi": "लड़कियों", "sv": "husen"}
    for code, word in words.items():
        assert code in STEMMED_LANGUAGES
        stem = snowball_stemmer(code)
        assert stem is not None
        algo = {"es": "spanish", "de": "german", "ar": "arabic", "hi": "hindi", "sv": "swedish"}
        assert stem(word) == snowballstemmer.stemmer(algo[code]).stemWord(word)
    # the user languages of the issue that Snowball covers
    assert {"ar", "de", "en", "es", "fr", "it", "no", "pt", "sv"} <= STEMMED_LANGUAGES


def test_language_analyzer_is_the_default_analyzer_plus_a_stemmer() -> None:
    text = "Die Kinder SPIELTEN im Garten 東京タワー"
    stem = snowball_stemmer("de")
    assert stem is not None
    expected = [t if any(ord(c) > 0x3000 for c in t) else stem(t) for t in default_analyzer(text)]
    assert LanguageAnalyzer("de")(text) == expected
    assert "spielt" in expected and "東京" in expected  # stemmed word, CJK bigram kept


def test_language_without_stemmer_falls_back_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="lfm_retrievers.indexes.languages")
    text = "東京は日本の首都です tokyo"
    assert LanguageAnalyzer("ja")(text) == default_analyzer(text)
    LanguageAnalyzer("ja")
    BM25Index(["東京"], language="ja")
    lines = [r for r in caplog.records if "'ja'" in r.getMessage()]
    assert len(lines) <= 1  # once per process (0 if an earlier test already logged it)
    assert snowball_stemmer("ja") is None


def test_bad_language_values() -> None:
    for bad in ("spanish", "xx", "e", "en-US", ""):
        with pytest.raises(ValueError, match="ISO 639-1"):
            BM25Index(["a"], language=bad)
    for bad_type in (1, ["en"], b"en"):
        with pytest.raises(TypeError, match="language must be"):
            check_language(bad_type)
    assert check_language(" DE ") == "de"
    with pytest.raises(ValueError, match="'default' analyzer"):
        get_analyzer("english", language="en")
    with pytest.raises(ValueError, match="'default' analyzer"):
        BM25Index(["a"], analyzer=str.split, language="en")
    index = BM25Index(["the cat"])
    with pytest.raises(TypeError, match="require_match"):
        index.search("cat", require_match="no")  # type: ignore[arg-type]


def test_named_language_matches_other_inflections() -> None:
    texts, ids = list(MIXED.values()), list(MIXED)
    plain = BM25Index(texts, ids)
    german = BM25Index(texts, ids, language="de")
    assert german.language == "de"
    assert plain.search("Kind spielen Haus") == []  # no exact word in common
    assert german.search("Kind spielen Haus", k=1)[0].id == "de1"


def test_auto_detects_each_document_and_query() -> None:
    texts, ids = list(MIXED.values()), list(MIXED)
    auto = BM25Index(texts, ids, language="auto")
    assert isinstance(auto.analyzer, AutoLanguageAnalyzer)
    assert dict(zip(ids, auto._langs, strict=True)) == {i: i[:2] for i in ids}
    assert auto.search("gato casa antigua", k=1)[0].id == "es1"
    assert auto.search("Kind spielen Haus", k=1)[0].id == "de1"
    assert auto.search("engineer run experiment", k=1)[0].id == "en1"
    # the query's language is chosen among the corpus's languages, weighted by their share
    det = get_detector()
    assert det.query_language("tren estación", {"es": 2, "de": 2, "en": 2}) == "es"
    assert det.query_language("apnea", {"en": 1000, "de": 1}) == "en"
    assert det.query_language("apnea", {"it": 5}) == "it"  # only corpus languages count


def test_language_is_persisted(tmp_path: Path) -> None:
    texts, ids = list(MIXED.values()), list(MIXED)
    for language in ("de", "auto"):
        index = BM25Index(texts, ids, language=language)
        index.save(tmp_path / language)
        back = BM25Index.load(tmp_path / language)
        assert back.language == language
        assert back._langs == index._langs
        for q in ("Kind spielen Haus", "gato casa", "engineer run"):
            assert [(h.id, h.score) for h in back.search(q)] == [
                (h.id, h.score) for h in index.search(q)
            ]
    index.delete(["de1", "es2"])  # language counts follow deletions
    assert index._lang_counts["de"] == 1 and index._lang_counts["es"] == 1


def _ndcg(folder: Path, language: str | None, max_queries: int) -> float:
    corpus, queries, qrels = load_beir(folder)
    queries = dict(list(queries.items())[:max_queries])
    ids = list(corpus)
    index = BM25Index([document_text(corpus[i]) for i in ids], ids, language=language)
    run = {q: {h.id: h.score for h in index.search(t, k=100)} for q, t in queries.items()}
    return evaluate(run, {q: qrels[q] for q in queries}, ["ndcg@10"])["ndcg@10"]


@pytest.mark.parametrize(("name", "code"), [("xquad-es", "es"), ("xquad-ar", "ar")])
def test_auto_matches_the_named_language_on_real_data(
    shared_data_dir: Path, name: str, code: str
) -> None:
    """XQuAD (held-out questions -> paragraphs): stemming helps; auto = naming the language."""
    if not (shared_data_dir / name).is_dir():
        pytest.skip(f"{name} not in the shared data")
    default = _ndcg(shared_data_dir / name, None, 400)
    named = _ndcg(shared_data_dir / name, code, 400)
    auto = _ndcg(shared_data_dir / name, "auto", 400)
    assert named > default, (default, named)
    assert abs(auto - named) <= 0.01, (auto, named)


# --------------------------------------------------------------------------- words with marks


def test_words_keep_their_combining_marks() -> None:
    """Python's \\w stops at combining marks; a word must not (Devanagari vowel signs)."""
    assert default_analyzer("हिन्दी भाषा में प्रश्न।") == ["हिन्दी", "भाषा", "में", "प्रश्न"]
    # Arabic harakat are optional in writing: with or without them, one term
    assert default_analyzer("أيضاً مؤمّن") == default_analyzer("أيضا مؤمن") == ["أيضا", "مؤمن"]
    assert default_analyzer("ภาษาไทย") == ["ภา", "าษ", "ษา", "าไ", "ไท", "ทย"]  # unspaced
    assert default_analyzer("\u0301s cafe\u0301") == ["s", "café"]  # a stray mark starts nothing
    assert LanguageAnalyzer("hi")("लड़कियों") == [snowballstemmer.stemmer("hindi").stemWord("लड़कियों")]


def test_whole_hindi_words_on_real_data(shared_data_dir: Path) -> None:
    """XQuAD-hi, 400 questions: 0.78 NDCG@10 when words were cut at their marks."""
    if not (shared_data_dir / "xquad-hi").is_dir():
        pytest.skip("xquad-hi not in the shared data")
    assert _ndcg(shared_data_dir / "xquad-hi", None, 400) > 0.9


def test_index_saved_by_an_older_analyzer_is_analyzed_again(tmp_path: Path) -> None:
    import json

    index = BM25Index(["हिन्दी भाषा", "other words"], ids=["hi", "en"], language="auto")
    index.save(tmp_path / "new")
    assert BM25Index.load(tmp_path / "new").search("भाषा")[0].id == "hi"
    # an index saved before analyzer_version 2 holds terms of the old tokenization
    old = tmp_path / "old"
    index.save(old)
    vocab = json.loads((old / "vocab.json").read_text(encoding="utf-8"))
    stale = [f"old-term-{i}" for i in range(len(vocab))]
    (old / "vocab.json").write_text(json.dumps(stale), encoding="utf-8")
    manifest = json.loads((old / _io.MANIFEST_FILE).read_text(encoding="utf-8"))
    del manifest["analyzer_version"]
    manifest["files"].update(_io.file_entries(old, ["vocab.json"]))
    _io.write_manifest(old, manifest)  # a consistent, sealed folder, as the old version wrote
    again = BM25Index.load(old)
    assert again.search("भाषा")[0].id == "hi"  # counted from the stored texts again
    assert again.ids == ["hi", "en"] and again.language == "auto"
