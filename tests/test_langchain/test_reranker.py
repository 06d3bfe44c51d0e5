"""LFMColBERTReranker.

Copies, sorted, MaxSim order, top_n, async, ContextualCompressionRetriever.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from lc_helpers import tiny_path
from lc_oracle import maxsim_scores, ranking

from langchain_lfm import LFMColBERTReranker, LFMColBERTRetriever, LFMEmbeddings

QUERY = "Which river flows through Paris?"


@pytest.fixture
def reranker() -> LFMColBERTReranker:
    return LFMColBERTReranker(model=tiny_path("colbert"), top_n=None)


def test_constructor_does_not_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        msg = "constructor must not load the model"
        raise AssertionError(msg)

    monkeypatch.setattr("lfm_retrievers.models.registry.load", boom)
    r = LFMColBERTReranker(top_n=2)
    assert r._encoder is None
    assert r.model == "LiquidAI/LFM2.5-ColBERT-350M"


def test_order_and_scores_equal_core_maxsim(
    reranker: LFMColBERTReranker, corpus_docs: list[Document]
) -> None:
    out = reranker.compress_documents(corpus_docs, QUERY)
    expected = maxsim_scores(reranker.encoder, QUERY, [d.page_content for d in corpus_docs])
    assert [d.id for d in out] == [corpus_docs[i].id for i in ranking(expected)]
    np.testing.assert_allclose(
        [d.metadata["relevance_score"] for d in out], sorted(expected, reverse=True), rtol=1e-4
    )


def test_copies_sorted_and_inputs_untouched(
    reranker: LFMColBERTReranker, corpus_docs: list[Document]
) -> None:
    before = copy.deepcopy(corpus_docs)
    out = reranker.compress_documents(corpus_docs, QUERY)
    assert corpus_docs == before  # content, metadata and ids unchanged
    assert all("relevance_score" not in d.metadata for d in corpus_docs)
    originals = {id(d) for d in corpus_docs} | {id(d.metadata) for d in corpus_docs}
    assert not any(id(d) in originals or id(d.metadata) in originals for d in out)

    scores = [d.metadata["relevance_score"] for d in out]
    assert all(type(s) is float for s in scores)
    assert scores == sorted(scores, reverse=True)
    by_id = {d.id: d for d in corpus_docs}
    for d in out:  # everything but the score is carried over
        src = by_id[d.id]
        assert d.page_content == src.page_content
        assert {k: v for k, v in d.metadata.items() if k != "relevance_score"} == src.metadata


def test_top_n(corpus_docs: list[Document]) -> None:
    full = LFMColBERTReranker(model=tiny_path("colbert"), top_n=None)
    top2 = LFMColBERTReranker(model=tiny_path("colbert"), top_n=2)
    assert top2.top_n == 2
    assert full.compress_documents(corpus_docs, QUERY)[:2] == top2.compress_documents(
        corpus_docs, QUERY
    )
    many = LFMColBERTReranker(model=tiny_path("colbert"), top_n=100)
    assert len(many.compress_documents(corpus_docs, QUERY)) == len(corpus_docs)
    assert LFMColBERTReranker().top_n == 3


def test_mean_score_is_raw_over_query_vectors(
    reranker: LFMColBERTReranker, corpus_docs: list[Document]
) -> None:
    mean = LFMColBERTReranker(model=tiny_path("colbert"), top_n=None, score="mean")
    raw_out = reranker.compress_documents(corpus_docs, QUERY)
    mean_out = mean.compress_documents(corpus_docs, QUERY)
    assert [d.id for d in raw_out] == [d.id for d in mean_out]
    n_query_vectors = len(reranker.encoder.encode_queries([QUERY])[0])
    for r, m in zip(raw_out, mean_out, strict=True):
        assert m.metadata["relevance_score"] == pytest.approx(
            r.metadata["relevance_score"] / n_query_vectors, rel=1e-5
        )
        assert -1.0 <= m.metadata["relevance_score"] <= 1.0


def test_shares_the_encoder_with_the_retriever(reranker: LFMColBERTReranker) -> None:
    retriever = LFMColBERTRetriever(model=tiny_path("colbert"))
    assert retriever.encoder is reranker.encoder


def test_bad_input(reranker: LFMColBERTReranker, corpus_docs: list[Document]) -> None:
    assert reranker.compress_documents([], QUERY) == []
    with pytest.raises(TypeError, match="query must be str"):
        reranker.compress_documents(corpus_docs, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Document"):
        reranker.compress_documents(["plain text"], QUERY)  # type: ignore[list-item]
    with pytest.raises(ValueError):
        LFMColBERTReranker(top_n=0)
    with pytest.raises(ValueError):
        LFMColBERTReranker(score="sigmoid")  # type: ignore[arg-type]


async def test_async_matches_sync(
    reranker: LFMColBERTReranker, corpus_docs: list[Document]
) -> None:
    expected = reranker.compress_documents(corpus_docs, QUERY)
    assert await reranker.acompress_documents(corpus_docs, QUERY) == expected
    assert await reranker.acompress_documents([], QUERY) == []
    with pytest.raises(TypeError):
        await reranker.acompress_documents(corpus_docs, 3)  # type: ignore[arg-type]


async def test_contextual_compression_retriever(corpus_docs: list[Document]) -> None:
    ccr_module = pytest.importorskip("langchain_classic.retrievers")
    store = InMemoryVectorStore.from_documents(
        corpus_docs, embedding=LFMEmbeddings(model=tiny_path("embedding"))
    )
    base = store.as_retriever(search_kwargs={"k": 5})
    reranker = LFMColBERTReranker(model=tiny_path("colbert"), top_n=2)
    retriever = ccr_module.ContextualCompressionRetriever(
        base_compressor=reranker, base_retriever=base
    )

    candidates = base.invoke(QUERY)
    expected = reranker.compress_documents(candidates, QUERY)
    got = retriever.invoke(QUERY)
    assert len(got) == 2
    assert got == expected
    assert await retriever.ainvoke(QUERY) == expected
    assert all("relevance_score" not in d.metadata for d in base.invoke(QUERY))


def test_optional_cache_avoids_re_encoding(corpus_docs: list[Document]) -> None:
    cached = LFMColBERTReranker(model=tiny_path("colbert"), top_n=None, cache_max_bytes=2**20)
    first = cached.compress_documents(corpus_docs, QUERY)
    assert cached._cache is not None and cached._cache.misses == len(corpus_docs)
    second = cached.compress_documents(corpus_docs, "another question about Paris")
    assert cached._cache.hits == len(corpus_docs)
    assert {d.id for d in first} == {d.id for d in second}
    plain = LFMColBERTReranker(model=tiny_path("colbert"), top_n=None)
    assert plain.compress_documents(corpus_docs, QUERY) == first
    assert plain._cache is None
