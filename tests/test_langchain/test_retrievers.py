"""LFMColBERTRetriever and LFMBM25ColBERTRetriever beyond the standard suite."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document
from lc_helpers import CORPUS, QUERY, tiny_path
from lc_oracle import maxsim_scores, ranking

from langchain_lfm import LFMBM25ColBERTRetriever, LFMColBERTRetriever


@pytest.fixture
def colbert(corpus_docs: list[Document]) -> LFMColBERTRetriever:
    return LFMColBERTRetriever.from_documents(corpus_docs, model=tiny_path("colbert"), k=3)


def _no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        msg = "constructor must not load the model"
        raise AssertionError(msg)

    monkeypatch.setattr("lfm_retrievers.models.registry.load", boom)


# ---------------------------------------------------------------------- ColBERT index retriever
def test_colbert_constructor_does_not_load(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_loading(monkeypatch)
    r = LFMColBERTRetriever(k=2, index_path="does/not/matter/yet")
    assert r._encoder is None and r._index is None
    assert r.model == "LiquidAI/LFM2.5-ColBERT-350M"
    assert "_index" not in r.model_dump()


def test_colbert_results_follow_maxsim(
    colbert: LFMColBERTRetriever, corpus_docs: list[Document]
) -> None:
    out = colbert.invoke(QUERY)
    texts = [d.page_content for d in corpus_docs]
    expected = maxsim_scores(colbert.encoder, QUERY, texts, stored=np.float16)
    order = ranking(expected)[:3]
    assert [d.id for d in out] == [corpus_docs[i].id for i in order]
    np.testing.assert_allclose(
        [d.metadata["relevance_score"] for d in out], expected[order], rtol=1e-4
    )
    by_id = {d.id: d for d in corpus_docs}
    for d in out:
        assert d.page_content == by_id[d.id].page_content
        assert {k: v for k, v in d.metadata.items() if k != "relevance_score"} == by_id[
            d.id
        ].metadata


def test_colbert_does_not_mutate_inputs(corpus_docs: list[Document]) -> None:
    before = copy.deepcopy(corpus_docs)
    r = LFMColBERTRetriever.from_documents(corpus_docs, model=tiny_path("colbert"))
    out = r.invoke(QUERY)
    assert corpus_docs == before
    assert all(d.metadata is not src.metadata for d in out for src in corpus_docs)


async def test_colbert_k_sync_and_async(colbert: LFMColBERTRetriever) -> None:
    assert len(colbert.invoke(QUERY)) == 3
    assert len(colbert.invoke(QUERY, k=1)) == 1
    assert len(await colbert.ainvoke(QUERY, k=2)) == 2
    assert await colbert.ainvoke(QUERY, k=5) == colbert.invoke(QUERY, k=5)
    assert len(colbert.invoke(QUERY, k=100)) == len(CORPUS)
    assert [len(x) for x in await colbert.abatch([QUERY, "Berlin"], k=1)] == [1, 1]


def test_colbert_metadata_filter(colbert: LFMColBERTRetriever) -> None:
    en = colbert.invoke(QUERY, k=10, filter={"lang": "en"})
    assert en and all(d.metadata["lang"] == "en" for d in en)
    assert len(en) == sum(m["lang"] == "en" for _, m in CORPUS)
    geo_de = colbert.invoke(QUERY, k=10, filter={"lang": "de", "topic": "geo"})
    assert [d.id for d in geo_de] == ["d2"]
    fixed = LFMColBERTRetriever(model=tiny_path("colbert"), filter={"lang": "es"}, k=5)
    fixed.add_documents([Document(page_content=t, metadata=m) for t, m in CORPUS])
    assert [d.metadata["lang"] for d in fixed.invoke(QUERY)] == ["es"]
    assert len(fixed.invoke(QUERY, filter={"topic": "geo"})) == 4  # a per-call filter replaces it


def test_colbert_filter_shapes(colbert: LFMColBERTRetriever) -> None:
    by_ids = colbert.invoke(QUERY, k=10, filter={"ids": ["d1", "d3", "nope"]})
    assert sorted(str(d.id) for d in by_ids) == ["d1", "d3"]
    both = colbert.invoke(QUERY, k=10, filter={"ids": ["d0", "d2"], "metadata": {"lang": "de"}})
    assert [d.id for d in both] == ["d2"]
    assert colbert.invoke(QUERY, filter={"lang": "fi"}) == []
    with pytest.raises(ValueError, match="mixes"):
        colbert.invoke(QUERY, filter={"ids": ["d0"], "lang": "en"})
    with pytest.raises(TypeError, match="filter must be a dict"):
        colbert.invoke(QUERY, filter=[("lang", "en")])  # type: ignore[arg-type]


def test_colbert_load_uses_the_index_model_by_default(
    colbert: LFMColBERTRetriever, tmp_path: Path
) -> None:
    colbert.save(tmp_path / "index")
    loaded = LFMColBERTRetriever.load(tmp_path / "index", k=3)
    assert loaded.model == tiny_path("colbert")
    assert loaded.encoder is colbert.encoder
    assert loaded.invoke(QUERY) == colbert.invoke(QUERY)
    with pytest.raises(ValueError, match="is a dense checkpoint"):
        LFMColBERTRetriever.load(tmp_path / "index", model=tiny_path("embedding"))
    colbert.add_texts(["Lisbon is the capital of Portugal."], ids=["lisbon"])
    colbert.save(tmp_path / "index")  # saving again replaces the folder atomically
    assert "lisbon" in LFMColBERTRetriever.load(tmp_path / "index").index


def test_reopened_index_encoder_is_the_index_model_before_and_after_search(
    colbert: LFMColBERTRetriever, tmp_path: Path
) -> None:
    """Regression: reading ``.encoder`` before the first search loaded the default hub model."""
    colbert.save(tmp_path / "index")
    fresh = LFMColBERTRetriever(index_path=tmp_path / "index", k=3)
    before = fresh.encoder  # read before any search: must not reach for the hub default
    assert before.path == colbert.encoder.path
    assert before.fingerprint == colbert.encoder.fingerprint
    assert fresh.invoke(QUERY) == colbert.invoke(QUERY)
    assert fresh.encoder is before
    assert fresh.model == tiny_path("colbert")


def test_colbert_save_load_round_trip(colbert: LFMColBERTRetriever, tmp_path: Path) -> None:
    colbert.save(tmp_path / "index")
    loaded = LFMColBERTRetriever.load(tmp_path / "index", model=tiny_path("colbert"), k=3)
    for q in (QUERY, "Berlin night train", "capital de España"):
        assert loaded.invoke(q) == colbert.invoke(q)
    assert loaded.invoke(QUERY, filter={"lang": "en"}) == colbert.invoke(
        QUERY, filter={"lang": "en"}
    )
    lazy = LFMColBERTRetriever(model=tiny_path("colbert"), index_path=tmp_path / "index", k=3)
    assert lazy.invoke(QUERY) == colbert.invoke(QUERY)
    assert lazy.encoder is colbert.encoder  # one shared encoder per model/device/dtype


def test_colbert_add_and_delete(colbert: LFMColBERTRetriever) -> None:
    ids = colbert.add_texts(["Rome is the capital of Italy."], metadatas=[{"lang": "en"}])
    assert len(colbert.index) == len(CORPUS) + 1
    assert ids[0] in [d.id for d in colbert.invoke("Rome Italy", k=10)]
    colbert.delete(ids)
    assert len(colbert.index) == len(CORPUS)
    assert ids[0] not in [d.id for d in colbert.invoke("Rome Italy", k=10)]


def test_colbert_generated_ids_are_stable_and_unique() -> None:
    docs = [
        Document(page_content="same text", metadata={"a": 1}),
        Document(page_content="same text", metadata={"a": 1}),
        Document(page_content="other text"),
        Document(page_content="with id", id="mine"),
    ]
    r1 = LFMColBERTRetriever.from_documents(docs, model=tiny_path("colbert"))
    r2 = LFMColBERTRetriever.from_documents(copy.deepcopy(docs), model=tiny_path("colbert"))
    ids1 = sorted(d.id for d in r1.invoke("text", k=10))  # type: ignore[type-var]
    ids2 = sorted(d.id for d in r2.invoke("text", k=10))  # type: ignore[type-var]
    assert ids1 == ids2
    assert len(set(ids1)) == 4 and "mine" in ids1
    assert all(d.id is None for d in docs[:3])  # inputs not given ids


def test_colbert_bad_input(colbert: LFMColBERTRetriever) -> None:
    with pytest.raises(TypeError, match="query must be str"):
        colbert.invoke(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be a positive int"):
        colbert.invoke(QUERY, k=0)
    with pytest.raises(TypeError):
        colbert.invoke(QUERY, k="3")
    with pytest.raises(ValueError):
        LFMColBERTRetriever(k=0)
    with pytest.raises(ValueError):
        LFMColBERTRetriever(k=-1)
    with pytest.raises(ValueError):
        LFMColBERTRetriever(unknown_option=True)  # type: ignore[call-arg]
    empty = LFMColBERTRetriever.from_documents([], model=tiny_path("colbert"))
    assert empty.invoke(QUERY) == []
    with pytest.raises(FileNotFoundError):
        LFMColBERTRetriever(model=tiny_path("colbert"), index_path="/nonexistent/x").invoke("q")


async def test_colbert_async_bad_input(colbert: LFMColBERTRetriever) -> None:
    with pytest.raises(TypeError):
        await colbert.ainvoke(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await colbert.ainvoke(QUERY, k=-2)


# ---------------------------------------------------------------------- BM25 -> ColBERT
@pytest.fixture
def hybrid(corpus_docs: list[Document]) -> LFMBM25ColBERTRetriever:
    return LFMBM25ColBERTRetriever(documents=corpus_docs, model=tiny_path("colbert"), k=3)


def test_bm25_constructor_does_not_load(
    monkeypatch: pytest.MonkeyPatch, corpus_docs: list[Document]
) -> None:
    _no_loading(monkeypatch)
    r = LFMBM25ColBERTRetriever(documents=corpus_docs, k=2, candidates=10, fusion="rrf")
    assert r._encoder is None and r._pipeline is None


def test_bm25_scores_and_copies(
    hybrid: LFMBM25ColBERTRetriever, corpus_docs: list[Document]
) -> None:
    before = copy.deepcopy(corpus_docs)
    out = hybrid.invoke(QUERY)
    assert corpus_docs == before
    assert len(out) == 3
    by_id = {d.id: d for d in corpus_docs}
    texts = [by_id[d.id].page_content for d in out]
    expected = maxsim_scores(hybrid.encoder, QUERY, texts)
    for d, colbert_score in zip(out, expected, strict=True):
        m = d.metadata
        assert m["relevance_score"] == m["colbert_score"]
        assert m["colbert_score"] == pytest.approx(colbert_score, rel=1e-4)
        assert type(m["bm25_score"]) is float and m["bm25_score"] >= 0  # 0: a zero-score filler
        assert {
            k: v
            for k, v in m.items()
            if k not in ("relevance_score", "colbert_score", "bm25_score")
        } == by_id[d.id].metadata
        assert d.metadata is not by_id[d.id].metadata
    scores = [d.metadata["relevance_score"] for d in out]
    assert scores == sorted(scores, reverse=True)


def test_bm25_candidates_bound_the_pool(corpus_docs: list[Document]) -> None:
    """With candidates=2, results come from the two best BM25 documents only."""
    wide = LFMBM25ColBERTRetriever(
        documents=corpus_docs, model=tiny_path("colbert"), k=10, fusion="rrf"
    )
    position = {d.id: i for i, d in enumerate(corpus_docs)}
    bm25_order = sorted(  # BM25 ties keep corpus order
        wide.invoke(QUERY), key=lambda d: (-d.metadata["bm25_score"], position[d.id])
    )
    narrow = LFMBM25ColBERTRetriever(
        documents=corpus_docs, model=tiny_path("colbert"), k=2, candidates=2
    )
    assert {d.id for d in narrow.invoke(QUERY)} == {d.id for d in bm25_order[:2]}


async def test_bm25_k_sync_async_and_fusion(hybrid: LFMBM25ColBERTRetriever) -> None:
    assert len(hybrid.invoke(QUERY, k=1)) == 1
    assert len(await hybrid.ainvoke(QUERY, k=2)) == 2
    assert await hybrid.ainvoke(QUERY) == hybrid.invoke(QUERY)
    rrf = LFMBM25ColBERTRetriever(
        documents=hybrid.documents, model=tiny_path("colbert"), k=3, fusion="rrf"
    )
    out = rrf.invoke(QUERY)
    assert all(0 < d.metadata["relevance_score"] <= 2 / 61 for d in out)
    assert all(d.metadata["relevance_score"] != d.metadata["colbert_score"] for d in out)


def test_bm25_no_shared_term_and_empty_corpus(hybrid: LFMBM25ColBERTRetriever) -> None:
    out = hybrid.invoke("zzzz qqqq")  # k documents, like rank-bm25's get_top_n
    assert len(out) == 3 and all(d.metadata["bm25_score"] == 0.0 for d in out)
    strict = LFMBM25ColBERTRetriever(
        documents=hybrid.documents, model=tiny_path("colbert"), k=3, require_match=True
    )
    assert strict.invoke("zzzz qqqq") == []
    assert len(strict.invoke("Berlin")) == 2  # only the two documents that mention it
    assert LFMBM25ColBERTRetriever(model=tiny_path("colbert")).invoke(QUERY) == []
    assert LFMBM25ColBERTRetriever.from_texts([], model=tiny_path("colbert")).invoke(QUERY) == []


def test_bm25_analyzer_and_weighted_fusion(corpus_docs: list[Document]) -> None:
    for analyzer in ("english", "model"):
        r = LFMBM25ColBERTRetriever(
            documents=corpus_docs, model=tiny_path("colbert"), analyzer=analyzer, k=2
        )
        assert len(r.invoke(QUERY)) == 2
    weighted = LFMBM25ColBERTRetriever(
        documents=corpus_docs, model=tiny_path("colbert"), fusion="weighted", weight=1.0, k=6
    )
    plain = LFMBM25ColBERTRetriever(documents=corpus_docs, model=tiny_path("colbert"), k=6)
    # weight=1 ranks by (normalised) ColBERT alone: the same order as no fusion
    assert [d.id for d in weighted.invoke(QUERY)] == [d.id for d in plain.invoke(QUERY)]
    assert all(0.0 <= d.metadata["relevance_score"] <= 1.0 for d in weighted.invoke(QUERY))


def test_bm25_generated_ids_are_stable() -> None:
    texts = ["Paris is big", "Paris is old", "Paris is big"]
    a = LFMBM25ColBERTRetriever.from_texts(texts, model=tiny_path("colbert"), k=5)
    b = LFMBM25ColBERTRetriever.from_texts(texts, model=tiny_path("colbert"), k=5)
    ids_a = sorted(str(d.id) for d in a.invoke("Paris"))
    assert ids_a == sorted(str(d.id) for d in b.invoke("Paris"))
    assert len(set(ids_a)) == 3
    assert all(i.startswith("lfm-") for i in ids_a)


def test_bm25_bad_input(hybrid: LFMBM25ColBERTRetriever) -> None:
    with pytest.raises(TypeError, match="query must be str"):
        hybrid.invoke(["a list"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        hybrid.invoke(QUERY, k=0)
    with pytest.raises(ValueError):
        LFMBM25ColBERTRetriever(k=0)
    with pytest.raises(ValueError):
        LFMBM25ColBERTRetriever(candidates=0)
    with pytest.raises(ValueError):
        LFMBM25ColBERTRetriever(fusion="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LFMBM25ColBERTRetriever(documents=["not a Document"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="analyzer"):
        LFMBM25ColBERTRetriever(analyzer="klingon")
    with pytest.raises(ValueError, match="weight"):
        LFMBM25ColBERTRetriever(weight=0.3)  # weight without fusion="weighted"
    with pytest.raises(ValueError, match="rrf_k"):
        LFMBM25ColBERTRetriever(fusion="weighted", rrf_k=10)
    with pytest.raises(ValueError, match="ISO 639-1"):
        LFMBM25ColBERTRetriever(language="spanish")
    with pytest.raises(ValueError):
        LFMBM25ColBERTRetriever(dense_candidates=0)


def test_bm25_language_and_dense_model(corpus_docs: list[Document]) -> None:
    """language= stems BM25 terms; dense_model= adds dense candidates with their scores."""
    german = LFMBM25ColBERTRetriever(
        documents=corpus_docs, model=tiny_path("colbert"), language="de", require_match=True
    )
    assert german.pipeline.bm25.language == "de"
    assert [d.page_content for d in german.invoke("Hauptstädte")] == [
        "Die Hauptstadt von Deutschland ist Berlin."
    ]
    auto = LFMBM25ColBERTRetriever(
        documents=corpus_docs, model=tiny_path("colbert"), language="auto", require_match=True
    )
    assert [d.page_content for d in auto.invoke("Hauptstädte")] == [
        "Die Hauptstadt von Deutschland ist Berlin."
    ]
    dense = LFMBM25ColBERTRetriever(
        documents=corpus_docs,
        model=tiny_path("colbert"),
        dense_model=tiny_path("embedding"),
        dense_candidates=2,
        k=2,
    )
    out = dense.invoke("zzzz")  # no BM25 match: the dense top 2 are the candidates
    assert len(out) == 2
    assert all(d.metadata["bm25_score"] is None for d in out)
    assert all(isinstance(d.metadata["dense_score"], float) for d in out)
