"""QdrantIndex on qdrant-client's local mode (and on a server when QDRANT_URL is set).

Every test takes the ``qdrant_client`` fixture, so it runs once in local mode and once more,
unchanged, against ``QDRANT_URL`` (``-m qdrant_server`` selects only those runs).
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from qdrant_client import models as qm

from lfm_retrievers import ColBERTIndex, DenseIndex, get_colbert_encoder, get_dense_encoder, rerank
from lfm_retrievers.indexes.analyzers import get_analyzer
from lfm_retrievers.indexes.filters import matches, parse_filter
from lfm_retrievers.indexes.qdrant import (
    QdrantIndex,
    QdrantWriteError,
    bm25_document_weights,
    point_id,
    term_index,
)

QUERIES = [
    "how do I return an item?",  # English, shares words with one document
    "Passwort vergessen",  # German, matches no word of the corpus
    "配送にかかる日数",  # Japanese
]


@pytest.fixture
def corpus(support_corpus):
    ids = [f"faq-{key}" for key, *_ in support_corpus]
    texts = [text for _, text, _, _ in support_corpus]
    metadata = [{"category": cat, "lang": lang} for _, _, cat, lang in support_corpus]
    return ids, texts, metadata


@pytest.fixture
def colbert(tiny_colbert_path):
    return get_colbert_encoder(tiny_colbert_path)


@pytest.fixture
def dense(tiny_embedding_path):
    return get_dense_encoder(tiny_embedding_path)


@pytest.fixture
def filled(qdrant_client, collection_name, colbert, dense, corpus):
    ids, texts, metadata = corpus
    index = QdrantIndex(qdrant_client, collection_name, colbert=colbert, dense=dense)
    index.add(texts, ids=ids, metadata=metadata)
    return index


def _by_id(hits):
    return {h.id: h.score for h in hits}


# ---------------------------------------------------------------------- MaxSim parity


def test_colbert_scores_equal_rerank_with_float32_storage(
    qdrant_client, collection_name, colbert, corpus
):
    ids, texts, metadata = corpus
    index = QdrantIndex(qdrant_client, collection_name, colbert=colbert, storage="float32")
    index.add(texts, ids=ids, metadata=metadata)
    for query in QUERIES:
        hits = index.search(query, k=len(texts), mode="colbert")
        expected = {ids[r.index]: r.score for r in rerank(colbert, query, texts)}
        assert [h.id for h in hits] == sorted(expected, key=lambda i: -expected[i])
        assert max(abs(h.score - expected[h.id]) for h in hits) <= 1e-4
        assert all(h.colbert_score == h.score and h.colbert_rank == h.rank for h in hits)
    mean = index.search(query, k=3, mode="colbert", score="mean")
    n_q = len(colbert.encode_queries([query])[0])
    assert [h.score for h in mean] == pytest.approx([h.score / n_q for h in hits[:3]], abs=1e-6)


def test_colbert_scores_with_float16_storage_equal_colbert_index(
    qdrant_client, collection_name, colbert, corpus
):
    # float16 storage rounds the vectors as ColBERTIndex does: same numbers, same scores.
    ids, texts, metadata = corpus
    index = QdrantIndex(qdrant_client, collection_name, colbert=colbert)  # float16 default
    index.add(texts, ids=ids, metadata=metadata)
    local = ColBERTIndex(colbert)
    local.add(texts, ids=ids, metadata=metadata)
    worst_vs_float32 = 0.0
    for query in QUERIES:
        got = _by_id(index.search(query, k=len(texts), mode="colbert"))
        want = _by_id(local.search(query, k=len(texts)))
        assert got.keys() == want.keys()
        assert max(abs(got[i] - want[i]) for i in got) <= 1e-4
        exact = {ids[r.index]: r.score for r in rerank(colbert, query, texts)}
        worst_vs_float32 = max(worst_vs_float32, max(abs(got[i] - exact[i]) for i in got))
    # float16 rounding vs float32 vectors: measured ≈ 3e-3 on raw sums of about 20 (tiny model)
    assert 0 < worst_vs_float32 < 2e-2


def test_every_colbert_mode_reports_the_exact_maxsim(filled, corpus):
    exact = _by_id(filled.search(QUERIES[0], k=len(corpus[0]), mode="colbert"))
    for mode in ("dense+colbert", "bm25+colbert", "hybrid"):
        hits = filled.search(QUERIES[0], k=3, mode=mode, candidates=4)
        assert hits, mode
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        for h in hits:
            assert h.score == pytest.approx(exact[h.id], abs=1e-6), mode
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_dense_mode_scores_equal_dense_index(filled, dense, corpus):
    ids, texts, _ = corpus
    local = DenseIndex(dense)
    local.add(texts, ids=ids)
    for query in QUERIES:
        got = _by_id(filled.search(query, k=len(ids), mode="dense"))
        want = _by_id(local.search(query, k=len(ids)))
        assert got.keys() == want.keys()
        assert max(abs(got[i] - want[i]) for i in got) <= 1e-4


def test_bm25_mode_equals_bm25_with_qdrant_idf(filled, corpus):
    # Independent computation: the analyzer's terms, BM25 (k1=1.2, b=0.75) with the IDF that
    # Qdrant documents for its IDF modifier: ln(1 + (N - n + 0.5) / (n + 0.5)).
    ids, texts, _ = corpus
    analyze = get_analyzer("default")[1]
    docs = [analyze(t) for t in texts]
    avgdl = filled.record["bm25"]["avgdl"]
    assert avgdl == pytest.approx(sum(map(len, docs)) / len(docs))
    query = "return an item within 30 days"
    q_terms = Counter(analyze(query))
    expected = {}
    for doc_id, terms in zip(ids, docs, strict=True):
        tf = Counter(terms)
        s = 0.0
        for t, qn in q_terms.items():
            n = sum(t in d for d in docs)
            if not tf[t]:
                continue
            idf = math.log(1 + (len(docs) - n + 0.5) / (n + 0.5))
            s += qn * idf * tf[t] * 2.2 / (tf[t] + 1.2 * (0.25 + 0.75 * len(terms) / avgdl))
        if s > 0:
            expected[doc_id] = s
    got = _by_id(filled.search(query, k=len(ids), mode="bm25"))
    assert got.keys() == expected.keys()
    for doc_id, s in expected.items():
        assert got[doc_id] == pytest.approx(s, rel=1e-4)


def test_query_without_terms_or_matches(filled):
    assert filled.search("zzzz qqqq", k=3, mode="bm25") == []
    assert filled.search("zzzz qqqq", k=3, mode="bm25+colbert") == []
    # hybrid still has its dense candidates
    assert len(filled.search("zzzz qqqq", k=3, mode="hybrid")) == 3
    assert filled.search("!!!", k=3, mode="bm25") == []


def test_default_mode(filled, qdrant_client, colbert, corpus):
    assert filled.default_mode == "hybrid"
    plain = QdrantIndex(qdrant_client, filled.collection_name + "-plain", colbert=colbert)
    assert plain.default_mode == "bm25+colbert"
    plain.drop()


# ---------------------------------------------------------------------- filters


def test_filters(filled, corpus):
    ids, _, metadata = corpus
    de = [i for i, m in zip(ids, metadata, strict=True) if m["lang"] == "de"]
    hits = filled.search(QUERIES[0], k=8, mode="colbert", filter={"metadata": {"lang": "de"}})
    assert [h.id for h in hits] == de
    assert hits[0].metadata == {"category": "returns", "lang": "de"}
    shipping = {i for i, m in zip(ids, metadata, strict=True) if m["category"] == "shipping"}
    for mode in ("colbert", "hybrid", "dense", "bm25+colbert", "dense+colbert"):
        got = filled.search(
            "shipping", k=8, mode=mode, filter={"metadata": {"category": "shipping"}}
        )
        assert {h.id for h in got} <= shipping, mode
    got = filled.search(
        QUERIES[0], k=8, mode="colbert", filter={"ids": ["faq-ret", "faq-de", "nope"]}
    )
    assert {h.id for h in got} == {"faq-ret", "faq-de"}
    got = filled.search(
        QUERIES[0],
        k=8,
        mode="colbert",
        filter={"ids": ["faq-ret", "faq-de"], "metadata": {"lang": "de"}},
    )
    assert [h.id for h in got] == ["faq-de"]
    native = qm.Filter(
        must_not=[
            qm.FieldCondition(key=filled.payload_key("lang"), match=qm.MatchValue(value="en"))
        ]
    )
    got = filled.search(QUERIES[0], k=8, mode="colbert", filter=native)
    assert {h.id for h in got} == {
        i for i, m in zip(ids, metadata, strict=True) if m["lang"] != "en"
    }
    assert filled.search(QUERIES[0], k=8, filter={"metadata": {"lang": "xx"}}) == []
    assert filled.count({"metadata": {"lang": "en"}}) == sum(m["lang"] == "en" for m in metadata)


def test_metadata_keys_named_id_or_text_are_metadata(qdrant_client, collection_name, colbert):
    # "id" and "text" name the payload's own fields only in native filters (payload_key).
    index = QdrantIndex(qdrant_client, collection_name, colbert=colbert, bm25=False)
    index.add(["first", "second"], ids=["a", "b"], metadata=[{"id": "zz", "text": "x"}, {}])
    assert index.count({"metadata": {"id": "zz"}}) == 1
    assert index.count({"metadata": {"id": "a"}}) == 0
    hits = index.search("first", k=2, mode="colbert", filter={"metadata": {"text": "x"}})
    assert [h.id for h in hits] == ["a"]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("lang=de", TypeError),
        ({"lang": "de"}, ValueError),
        ({"ids": "faq-de"}, TypeError),
        ({"metadata": {"tags": ["a"]}}, TypeError),
        ({"metadata": "de"}, TypeError),
    ],
)
def test_bad_filters_raise(filled, bad, error):
    with pytest.raises(error, match="filter"):
        filled.search("x", filter=bad)


# ---------------------------------------------------------------------- writing


def test_readd_is_idempotent_and_delete(filled, corpus):
    ids = corpus[0]
    n = len(filled)
    assert n == len(ids)
    filled.add(["Returns are free within 60 days."], ids=["faq-ret"], metadata=[{"lang": "en"}])
    assert len(filled) == n
    assert filled.get("faq-ret") == ("Returns are free within 60 days.", {"lang": "en"})
    filled.delete(["faq-ret", "faq-de"])
    assert len(filled) == n - 2
    assert "faq-ret" not in filled and "faq-pwd" in filled
    with pytest.raises(KeyError, match="faq-nope"):
        filled.delete(["faq-pwd", "faq-nope"])
    assert "faq-pwd" in filled  # nothing deleted
    filled.delete(["faq-pwd", "faq-nope"], missing_ok=True)
    assert len(filled) == n - 3
    assert sorted(i for i, _, _ in filled.documents()) == sorted(
        set(ids) - {"faq-ret", "faq-de", "faq-pwd"}
    )


def test_point_ids_are_uuid5_of_document_ids(filled):
    stored = filled.client.retrieve(filled.collection_name, ids=[point_id("faq-ret")])
    assert stored[0].payload["doc_id"] == "faq-ret"


def test_add_rejects_bad_input_before_writing(qdrant_client, collection_name, colbert):
    index = QdrantIndex(qdrant_client, collection_name, colbert=colbert)
    with pytest.raises(TypeError, match="texts"):
        index.add("one text")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        index.add(["a", 2])
    with pytest.raises(ValueError, match="repeated ids"):
        index.add(["a", "b"], ids=["x", "x"])
    with pytest.raises(ValueError, match="2 texts but 1 ids"):
        index.add(["a", "b"], ids=["x"])
    with pytest.raises(TypeError, match="metadata"):
        index.add(["a"], ids=["x"], metadata=[{"when": object()}])
    assert len(index) == 0


def test_upload_failure_names_stored_and_unstored_ids(
    qdrant_client, collection_name, colbert, monkeypatch
):
    index = QdrantIndex(
        qdrant_client, collection_name, colbert=colbert, upload_batch_size=2, retry_backoff=0
    )
    real = qdrant_client.upsert
    calls = []

    def flaky(*args, **kwargs):
        calls.append(len(kwargs["points"]))
        if len(calls) == 2:  # one transient failure: retried
            msg = "connection reset by peer"
            raise ConnectionError(msg)
        if len(calls) >= 4:  # the third batch fails for good
            msg = "server went away"
            raise ConnectionError(msg)
        return real(*args, **kwargs)

    monkeypatch.setattr(qdrant_client, "upsert", flaky)
    texts = [f"document number {i}" for i in range(6)]
    ids = [f"d{i}" for i in range(6)]
    with pytest.raises(QdrantWriteError, match="server went away") as info:
        index.add(texts, ids=ids)
    assert info.value.stored_ids == ["d0", "d1", "d2", "d3"]
    assert info.value.unstored_ids == ["d4", "d5"]
    assert "'d4'" in str(info.value) and "'d0'" in str(info.value)
    assert len(calls) == 2 + 1 + 1 + index.max_retries
    monkeypatch.setattr(qdrant_client, "upsert", real)
    assert sorted(i for i, _, _ in index.documents()) == ids[:4]
    index.add(texts[4:], ids=ids[4:])
    assert len(index) == 6


# ---------------------------------------------------------------------- layout and identity


def test_reopening_adopts_the_recorded_layout(filled, qdrant_client, corpus):
    again = QdrantIndex(qdrant_client, filled.collection_name)
    assert again.record == filled.record
    assert again.has_dense and again.has_bm25
    assert _by_id(again.search(QUERIES[0], k=3)) == pytest.approx(
        _by_id(filled.search(QUERIES[0], k=3))
    )


def test_another_model_is_refused_and_nothing_written(
    filled, qdrant_client, tiny_causal_colbert_path
):
    n = len(filled)
    other = QdrantIndex(qdrant_client, filled.collection_name, colbert=tiny_causal_colbert_path)
    with pytest.raises(ValueError, match="fingerprint") as info:
        other.add(["new"], ids=["new"])
    msg = str(info.value)
    assert filled.record["colbert"]["fingerprint"] in msg
    assert get_colbert_encoder(tiny_causal_colbert_path).fingerprint in msg
    assert len(filled) == n


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"bm25": False}, "bm25"),
        ({"dense": False}, "dense"),
        ({"storage": "float32"}, "storage"),
        ({"analyzer": "english"}, "analyzer"),
    ],
)
def test_another_layout_is_refused(filled, qdrant_client, kwargs, words):
    with pytest.raises(ValueError, match=words):
        QdrantIndex(qdrant_client, filled.collection_name, **kwargs).search("x")


def test_foreign_collection_is_refused(qdrant_client, collection_name):
    qdrant_client.create_collection(
        collection_name, vectors_config=qm.VectorParams(size=4, distance=qm.Distance.COSINE)
    )
    with pytest.raises(ValueError, match="not created by lfm-retrievers"):
        QdrantIndex(qdrant_client, collection_name).search("x")


def test_mode_needs_its_vector(qdrant_client, collection_name, colbert):
    index = QdrantIndex(qdrant_client, collection_name, colbert=colbert, bm25=False)
    with pytest.raises(ValueError, match="usable modes: \\['colbert'\\]"):
        index.search("x", mode="hybrid")
    assert index.search("x", mode="colbert") == []


# ---------------------------------------------------------------------- migration


def test_migrate_colbert_index_without_reencoding(
    qdrant_client, collection_name, colbert, corpus, monkeypatch
):
    ids, texts, metadata = corpus
    local = ColBERTIndex(colbert)
    local.add(texts, ids=ids, metadata=metadata)
    index = QdrantIndex(qdrant_client, collection_name, colbert=colbert)

    def no_encoding(*args, **kwargs):
        msg = "documents were encoded again"
        raise AssertionError(msg)

    monkeypatch.setattr(colbert, "encode_documents", no_encoding)
    assert index.add_index(local) == ids
    monkeypatch.undo()
    for query in QUERIES:
        got = _by_id(index.search(query, k=8, mode="colbert"))
        want = _by_id(local.search(query, k=8))
        assert got == pytest.approx(want, abs=1e-4)
    assert index.get("faq-de") == local.get("faq-de")


# ---------------------------------------------------------------------- hashing and input


def test_term_hash_is_stable_across_processes():
    # Python's hash() would differ under another PYTHONHASHSEED; the term hash must not.
    code = "from lfm_retrievers.indexes.qdrant import term_index; print(term_index('Rückgabe'))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    digest = hashlib.blake2b("Rückgabe".encode(), digest_size=4).digest()
    assert (
        out.stdout.strip() == str(int.from_bytes(digest, "little")) == str(term_index("Rückgabe"))
    )
    assert bm25_document_weights([], k1=1.2, b=0.75, avgdl=5) == {}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"client": 3}, TypeError),
        ({"collection_name": ""}, ValueError),
        ({"storage": "int8"}, ValueError),
        ({"colbert": 3}, TypeError),
        ({"bm25": "yes"}, TypeError),
        ({"upload_batch_size": 0}, ValueError),
        ({"analyzer": "klingon"}, ValueError),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, error):
    args = {"client": ":memory:", "collection_name": "c", **kwargs}
    with pytest.raises(error):
        QdrantIndex(**args)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"query": 3}, TypeError, "query"),
        ({"k": 0}, ValueError, "k"),
        ({"mode": "sparse"}, ValueError, "hybrid"),
        ({"candidates": True}, TypeError, "candidates"),
        ({"mode": "dense", "score": "mean"}, ValueError, "score"),
        ({"score": "max"}, ValueError, "score"),
    ],
)
def test_search_rejects_bad_arguments(filled, kwargs, error, words):
    args = {"query": "x", **kwargs}
    with pytest.raises(error, match=words):
        filled.search(**args)


def test_empty_collection_and_one_document(qdrant_client, collection_name, colbert):
    index = QdrantIndex(qdrant_client, collection_name, colbert=colbert)
    assert index.search("anything", k=5) == []
    assert len(index) == 0
    index.add(["Только один документ."], ids=["solo"])
    hits = index.search("документ", k=5)
    assert [h.id for h in hits] == ["solo"]


def test_string_client_connects_lazily(tmp_path: Path, colbert):
    folder = tmp_path / "qdrant"
    index = QdrantIndex(str(folder), "c", colbert=colbert)
    assert not folder.exists()  # nothing connected yet
    index.add(["hello world"], ids=["h"])
    assert folder.exists()
    assert index.search("hello", k=1, mode="colbert")[0].id == "h"
    index.client.close()


def test_add_vectors_and_search_vectors_equal_the_encoding_path(
    filled, qdrant_client, collection_name, colbert, dense, corpus
):
    ids, texts, metadata = corpus
    other = QdrantIndex(qdrant_client, collection_name + "-vec", colbert=colbert, dense=dense)
    with pytest.raises(ValueError, match="dense_vectors are required"):
        other.add_vectors(colbert.encode_documents(texts), ids, texts)
    with pytest.raises(ValueError, match=r"colbert_vectors\[0\] must have shape"):
        other.add_vectors([np.zeros((3, 7))] * len(ids), ids, texts, dense_vectors=[0] * len(ids))
    assert len(other) == 0
    other.add_vectors(
        colbert.encode_documents(texts),
        ids,
        texts,
        metadata,
        dense_vectors=dense.encode_documents(texts),
    )
    query = QUERIES[0]
    for mode in ("colbert", "hybrid", "bm25", "dense"):
        got = other.search_vectors(
            colbert.encode_queries([query])[0],
            k=5,
            dense_vector=dense.encode_queries([query])[0],
            text=query,
            mode=mode,
        )
        want = filled.search(query, k=5, mode=mode)
        assert [h.id for h in got] == [h.id for h in want], mode
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
    with pytest.raises(ValueError, match="needs dense_vector"):
        other.search_vectors(colbert.encode_queries([query])[0], text=query, mode="hybrid")


def test_language_stems_the_bm25_vector_and_is_recorded(qdrant_client, collection_name, colbert):
    """``language="de"``: German Snowball stems on both sides, and the collection remembers it."""
    texts = ["Die Häuser am See sind teuer.", "Das Auto fährt schnell."]
    index = QdrantIndex(qdrant_client, collection_name, colbert=colbert, language="de")
    index.add(texts, ids=["haus", "auto"])
    assert index.record["bm25"]["language"] == "de"
    stemmed = get_analyzer("default", language="de")[1]
    assert stemmed("Häuser") == stemmed("Haus")  # the German stemmer, not the default analyzer
    assert get_analyzer("default")[1]("Häuser") != get_analyzer("default")[1]("Haus")
    hits = index.search("Haus", k=2, mode="bm25")
    assert [h.id for h in hits] == ["haus"]  # only a stemmed vector lets "Haus" match "Häuser"
    reopened = QdrantIndex(qdrant_client, collection_name)  # None: the recorded language
    assert reopened.record["bm25"]["language"] == "de"
    assert [h.id for h in reopened.search("Haus", k=2, mode="bm25")] == ["haus"]
    with pytest.raises(ValueError, match="language"):
        QdrantIndex(qdrant_client, collection_name, colbert=colbert, language="sv").add(["x"])


# ---------------------------------------------------------------------- operator filters

# Varied metadata: strings, ints, floats equal to ints, bools next to 0 / 1, explicit nulls,
# missing keys, an object, keys named like payload fields or that need quoting in a path.
FILTER_DOCS: dict[str, dict[str, object]] = {
    "en-1": {"lang": "en", "n": 1, "price": 2.5, "ok": True},
    "de-2": {"lang": "de", "n": 2, "price": 2, "ok": False},
    "fr-3": {"lang": "fr", "n": 3.0, "ok": 1, "extra": {"k": 1}},
    "en-null": {"lang": "en", "n": None, "price": None, "ok": None},
    "ja-bare": {"lang": "ja"},
    "str-5": {"lang": "EN", "n": "5", "price": 0.001, "ok": 0},
    "neg": {"n": -4, "price": -1.5, "ok": False, "id": "zz", "text": "meta"},
    "de-10": {"lang": "de", "n": 10, "a.b": "dotted", "größe": "L", "ok": True},
    "empty": {},
}

OPERATOR_FILTERS: list[dict[str, object]] = [
    # strings
    {"lang": "en"},
    {"lang": {"$eq": "xx"}},
    {"lang": {"$ne": "en"}},
    {"lang": {"$in": ["de", "fr"]}},
    {"lang": {"$nin": ["en", "de"]}},
    {"lang": {"$in": []}},
    {"lang": {"$nin": []}},
    {"lang": "en", "n": {"$lt": 5}},
    # numbers: ints equal floats, ranges, strings and nulls never ordered
    {"n": 3},
    {"n": 1.0},
    {"n": {"$gt": 1}},
    {"n": {"$gte": 2, "$lt": 10}},
    {"n": {"$gt": 1.5}},
    {"n": {"$lte": -4}},
    {"n": {"$gt": 100}},
    {"n": {"$ne": 2}},
    {"n": {"$in": [1, 3, "5"]}},
    {"n": {"$nin": [1, None]}},
    {"n": {"$gt": True}},
    {"n": {"$lt": None}},
    {"n": {"$gte": [1]}},
    {"price": 2},
    {"price": 2.5},
    {"price": {"$eq": 0.001}},
    {"price": {"$gt": -2, "$lte": 2}},
    # bools are not numbers
    {"ok": True},
    {"ok": 1},
    {"ok": False},
    {"ok": 0},
    {"ok": {"$ne": True}},
    {"ok": {"$in": [True, 0]}},
    # nulls and missing keys
    {"price": None},
    {"price": {"$ne": None}},
    {"price": {"$in": [None, 2.5]}},
    {"price": {"$nin": [None]}},
    {"missing": 1},
    {"missing": None},
    {"missing": {"$ne": 1}},
    {"missing": {"$gt": 0}},
    {"missing": {"$nin": ["x"]}},
    {"$not": {"missing": {"$lt": 0}}},
    # an object, keys named like payload fields or needing quotes
    {"extra": None},
    {"extra": {"$ne": None}},
    {"extra": 1},
    {"id": "zz"},
    {"text": "meta"},
    {"a.b": "dotted"},
    {"größe": {"$in": ["L", "XL"]}},
    # logic, with parts that match everything or nothing
    {"$or": [{"lang": "de"}, {"n": {"$gte": 10}}]},
    {"$and": [{"lang": "en"}, {"$not": {"ok": True}}]},
    {"$not": {"lang": {"$in": ["en", "de"]}}},
    {"$not": {"$or": [{"price": None}, {"ok": False}]}},
    {"$or": [{"lang": {"$in": []}}, {"n": 1}]},
    {"$or": [{"lang": {"$nin": []}}, {"n": 1}]},
    {"$and": [{"lang": {"$nin": []}}, {"n": 2}]},
    {"$and": [{"lang": {"$in": []}}, {"n": 2}]},
    {"$not": {"lang": {"$in": []}}},
    {"$not": {"n": {"$gt": True}}},
    {"$or": [{"n": {"$gt": True}}, {"missing": 1}]},
]


def _passing(flt):
    tree = parse_filter(flt)
    return {i for i, m in FILTER_DOCS.items() if matches(tree, m)}


@pytest.fixture(scope="module")
def varied_vectors(tiny_colbert_path):
    texts = [f"document {i}: returns and shipping" for i in FILTER_DOCS]
    return texts, get_colbert_encoder(tiny_colbert_path).encode_documents(texts)


@pytest.fixture
def varied(qdrant_client, collection_name, colbert, varied_vectors):
    texts, vectors = varied_vectors  # encoded once for the many filter cases
    index = QdrantIndex(qdrant_client, collection_name, colbert=colbert, bm25=False)
    index.add_vectors(vectors, list(FILTER_DOCS), texts, list(FILTER_DOCS.values()))
    return index


def test_operator_filter_cases_keep_none_some_and_all():
    sizes = {len(_passing(f)) for f in OPERATOR_FILTERS}
    assert 0 in sizes and len(FILTER_DOCS) in sizes and len(sizes) > 4


@pytest.mark.parametrize("flt", OPERATOR_FILTERS, ids=repr)
def test_operator_filters_keep_what_the_in_process_evaluator_keeps(varied, flt):
    want = _passing(flt)
    got = varied.search("returns", k=len(FILTER_DOCS), mode="colbert", filter={"metadata": flt})
    assert {h.id for h in got} == want
    assert varied.count({"metadata": flt}) == len(want)
    assert {i for i, _, _ in varied.documents({"metadata": flt})} == want
    assert varied.count({"ids": ["en-1", "neg", "nope"], "metadata": flt}) == len(
        want & {"en-1", "neg"}
    )


def test_null_filter_matches_a_null_and_a_missing_key(varied):
    # In process {"k": None} matches an explicit null and a missing key, and {"$ne": None}
    # neither; Qdrant agrees (IsEmpty, not IsNull, which would miss the missing keys).
    null_or_missing = {"en-null", "fr-3", "ja-bare", "de-10", "empty"}
    assert _passing({"price": None}) == null_or_missing
    assert {i for i, _, _ in varied.documents({"metadata": {"price": None}})} == null_or_missing
    assert varied.count({"metadata": {"price": {"$ne": None}}}) == 4
    assert varied.count({"metadata": {"missing": None}}) == len(FILTER_DOCS)


@pytest.mark.parametrize(
    ("flt", "error", "words"),
    [
        ({"lang": {"$gt": "d"}}, ValueError, r"'\$gt' on metadata key 'lang' compares strings"),
        ({"$or": [{"n": 1}, {"$not": {"lang": {"$lte": "m"}}}]}, ValueError, r"'\$lte'.*'lang'"),
        ({"n": {"$in": []}, "day": {"$gte": "2024-01-01"}}, ValueError, r"'\$gte'.*'day'"),
        ({"n": 2**60}, ValueError, r"'\$eq' on metadata key 'n'.*2\*\*53"),
        ({"n": {"$lt": -(2**53) - 1}}, ValueError, r"'\$lt' on metadata key 'n'.*2\*\*53"),
        ({"tags": ["a"]}, TypeError, r"'\$eq' on metadata key 'tags'.*got list"),
        ({"tags": {"$nin": ["a", {"k": 1}]}}, TypeError, r"'\$nin' on metadata key 'tags'.*dict"),
        ({'a"b': 1}, ValueError, "cannot be addressed"),
    ],
)
def test_filters_qdrant_cannot_express_are_refused(varied, flt, error, words):
    parse_filter(flt)  # valid in process: the refusal is Qdrant's
    n = len(varied)
    for call in (
        lambda f: varied.search("x", mode="colbert", filter=f),
        varied.count,
        lambda f: list(varied.documents(f)),
    ):
        with pytest.raises(error, match=words):
            call({"metadata": flt})
    assert len(varied) == n


def test_a_list_in_metadata_is_matched_item_by_item_on_qdrant(
    qdrant_client, collection_name, colbert
):
    # The one documented difference (qdrant/filters.py): a filter cannot tell Qdrant to compare
    # a stored list as a whole. If this starts failing, Qdrant changed: update the docs.
    index = QdrantIndex(qdrant_client, collection_name, colbert=colbert, bm25=False)
    index.add(["tagged", "bare"], ids=["t", "b"], metadata=[{"tags": ["a", "b"]}, {}])
    assert not matches(parse_filter({"tags": "a"}), {"tags": ["a", "b"]})
    assert index.count({"metadata": {"tags": "a"}}) == 1
