"""BM25 -> ColBERT pipeline on the tiny real-format ColBERT checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lfm_retrievers import ColBERTEncoder, load
from lfm_retrievers.cache import EmbeddingCache
from lfm_retrievers.indexes.analyzers import default_analyzer as default_words
from lfm_retrievers.indexes.bm25 import BM25Index
from lfm_retrievers.pipeline import BM25ColBERT
from lfm_retrievers.results import SearchHit

DOCS = [
    "The cat sat on the mat near the door.",
    "Dogs and cats are common household pets.",
    "A cat chased a mouse across the kitchen floor.",
    "Stock markets fell sharply on Monday morning.",
    "The mouse hid under the mat from the cat.",
    "Interest rates and stock prices move together.",
    "Kittens are young cats that love to play.",
    "The kitchen door was left open all night.",
    "Pets need food, water and a warm place to sleep.",
    "Cats sleep for most of the day.",
]
IDS = [f"doc{i}" for i in range(len(DOCS))]
META = [{"i": i, "topic": "market" if i in (3, 5) else "pets"} for i in range(len(DOCS))]


@pytest.fixture(scope="module")
def encoder(tiny_colbert_path: Path) -> ColBERTEncoder:
    enc = load(tiny_colbert_path, device="cpu", expect="colbert")
    assert isinstance(enc, ColBERTEncoder)
    return enc


@pytest.fixture
def doc_counter(encoder: ColBERTEncoder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Number of documents the encoder is asked to encode, per call."""
    calls: list[int] = []
    for name in ("encode_documents", "encode_documents_padded"):
        original: Callable[..., Any] = getattr(encoder, name)

        def counted(texts: Any, *args: Any, _orig: Callable[..., Any] = original, **kw: Any) -> Any:
            calls.append(len(texts))
            return _orig(texts, *args, **kw)

        monkeypatch.setattr(encoder, name, counted)
    return calls


def _maxsim(q: np.ndarray, d: np.ndarray) -> float:
    return float(sum(max(float(np.dot(qv, dv)) for dv in d) for qv in q))


def test_rerank_scores_and_bm25_fields(encoder: ColBERTEncoder) -> None:
    pipe = BM25ColBERT(encoder, DOCS, ids=IDS, metadata=META, candidates=5)
    query = "cat on the mat"
    hits = pipe.search(query, k=4)
    bm25 = BM25Index(DOCS, IDS).search(query, k=5)
    assert len(hits) == 4
    assert all(isinstance(h, SearchHit) for h in hits)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # candidates are exactly BM25's top 5; each hit carries its BM25 score and rank
    by_id = {h.id: h for h in bm25}
    for h in hits:
        assert h.id in by_id
        assert h.bm25_score == pytest.approx(by_id[h.id].score)
        assert h.bm25_rank == by_id[h.id].rank
        assert h.score == h.colbert_score  # fusion=None: sorted by ColBERT
        assert h.text == DOCS[IDS.index(h.id)] and h.metadata == META[IDS.index(h.id)]
    # ColBERT score = brute-force MaxSim over the encoder's own vectors; order = sort by it
    qv = encoder.encode_queries([query])[0]
    cand = [h.id for h in bm25]
    dv = encoder.encode_documents([DOCS[IDS.index(i)] for i in cand])
    brute = {i: _maxsim(qv, d) for i, d in zip(cand, dv, strict=True)}
    for h in hits:
        assert h.colbert_score == pytest.approx(brute[h.id], rel=1e-4, abs=1e-4)
    expected = sorted(cand, key=lambda i: (-brute[i], by_id[i].rank))[:4]
    assert [h.id for h in hits] == expected
    assert [h.colbert_rank for h in hits] == [1, 2, 3, 4]


def test_mean_score_divides_by_query_vectors(encoder: ColBERTEncoder) -> None:
    raw = BM25ColBERT(encoder, DOCS, candidates=5).search("cat mouse", k=3)
    mean = BM25ColBERT(encoder, DOCS, candidates=5, score="mean").search("cat mouse", k=3)
    n_q = encoder.encode_queries(["cat mouse"])[0].shape[0]
    assert [h.id for h in raw] == [h.id for h in mean]
    for r, m in zip(raw, mean, strict=True):
        assert m.colbert_score == pytest.approx(r.colbert_score / n_q, rel=1e-5)
        assert -1.0 <= m.colbert_score <= 1.0


def test_second_search_encodes_nothing(encoder: ColBERTEncoder, doc_counter: list[int]) -> None:
    cache = EmbeddingCache()
    pipe = BM25ColBERT(encoder, DOCS, ids=IDS, candidates=6, cache=cache)
    first = pipe.search("cats and the mouse", k=5)
    encoded_first = sum(doc_counter)
    assert encoded_first == 6
    doc_counter.clear()
    second = pipe.search("cats and the mouse", k=5)
    assert sum(doc_counter) == 0
    assert second == first
    # another query whose candidates overlap: only the new candidates are encoded
    third = pipe.search("cat kitchen door", k=5)
    bm25 = BM25Index(DOCS, IDS)
    new = {h.id for h in bm25.search("cat kitchen door", k=6, require_match=False)} - {
        h.id for h in bm25.search("cats and the mouse", k=6, require_match=False)
    }
    assert sum(doc_counter) == len(new)
    assert third


def test_rrf_by_hand(encoder: ColBERTEncoder) -> None:
    query = "cat mouse kitchen"
    strict = {"require_match": True}
    plain = BM25ColBERT(encoder, DOCS, ids=IDS, candidates=100, **strict).search(query, k=100)
    bm25 = {h.id: h.rank for h in BM25Index(DOCS, IDS).search(query, k=100)}
    colbert = {h.id: r for r, h in enumerate(plain, 1)}  # pure rerank order = ColBERT ranks
    assert set(bm25) == set(colbert) and len(bm25) >= 4
    hand = {i: 1 / (60 + colbert[i]) + 1 / (60 + bm25[i]) for i in bm25}
    hits = BM25ColBERT(encoder, DOCS, ids=IDS, fusion="rrf", **strict).search(query, k=100)
    assert [h.id for h in hits] == sorted(hand, key=lambda i: (-hand[i], bm25[i]))
    for h in hits:
        assert h.score == pytest.approx(hand[h.id], abs=1e-15)
        assert (h.colbert_rank, h.bm25_rank) == (colbert[h.id], bm25[h.id])
    # e.g. a document ranked 1st by BM25 and 3rd by ColBERT scores 1/61 + 1/63
    other = BM25ColBERT(encoder, DOCS, ids=IDS, fusion="rrf", rrf_k=0, **strict).search(
        query, k=100
    )
    assert {h.id: h.score for h in other} == pytest.approx(
        {i: 1 / colbert[i] + 1 / bm25[i] for i in bm25}
    )
    # without require_match the zero-score fillers join the pool; they get no BM25 term
    filled = BM25ColBERT(encoder, DOCS, ids=IDS, fusion="rrf").search(query, k=100)
    assert len(filled) == len(DOCS) > len(bm25)
    for h in filled:
        assert h.bm25_score is not None and h.bm25_rank is not None and h.colbert_rank is not None
        expected = 1 / (60 + h.colbert_rank) + (1 / (60 + h.bm25_rank) if h.id in bm25 else 0.0)
        assert h.score == pytest.approx(expected, abs=1e-15)
        assert (h.bm25_score == 0.0) == (h.id not in bm25)


def test_weighted_fusion(encoder: ColBERTEncoder) -> None:
    query = "cat mouse kitchen"
    strict = {"ids": IDS, "require_match": True}
    plain = BM25ColBERT(encoder, DOCS, **strict).search(query, k=100)
    bm25 = BM25Index(DOCS, IDS).search(query, k=100)
    only_colbert = BM25ColBERT(encoder, DOCS, fusion="weighted", weight=1.0, **strict).search(
        query, k=100
    )
    only_bm25 = BM25ColBERT(encoder, DOCS, fusion="weighted", weight=0.0, **strict).search(
        query, k=100
    )
    assert [h.id for h in only_colbert] == [h.id for h in plain]
    assert [h.id for h in only_bm25] == [h.id for h in bm25]

    c = {h.id: h.colbert_score for h in plain}
    b = {h.id: h.score for h in bm25}

    def norm(x: dict[str, float]) -> dict[str, float]:
        lo, hi = min(x.values()), max(x.values())
        return {k: (v - lo) / (hi - lo) for k, v in x.items()}

    nc, nb = norm(c), norm(b)
    hand = {i: 0.3 * nc[i] + 0.7 * nb[i] for i in c}
    hits = BM25ColBERT(encoder, DOCS, fusion="weighted", weight=0.3, **strict).search(query, k=100)
    assert {h.id: h.score for h in hits} == pytest.approx(hand)
    assert [h.score for h in hits] == sorted(hand.values(), reverse=True)
    assert all(0.0 <= h.score <= 1.0 for h in hits)


def test_bad_input(encoder: ColBERTEncoder) -> None:
    assert BM25ColBERT(encoder, []).search("cat", k=3) == []
    pipe = BM25ColBERT(encoder, DOCS, ids=IDS)
    for bad, error in ((0, ValueError), (-2, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="k must be a positive int"):
            pipe.search("cat", k=bad)  # type: ignore[arg-type]
    for bad in ("5", None):
        with pytest.raises(TypeError, match="k must be a positive int"):
            pipe.search("cat", k=bad)  # type: ignore[arg-type]
    strict = BM25ColBERT(encoder, DOCS, ids=IDS, require_match=True)
    for query in ("?!.,", "   \t\n", "", "zzzunknown"):
        assert strict.search(query, k=3) == []
        assert len(pipe.search(query, k=3)) == 3  # k results always (ranked by ColBERT)
    with pytest.raises(TypeError, match="require_match"):
        BM25ColBERT(encoder, DOCS, require_match="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dense"):
        BM25ColBERT(encoder, DOCS, dense=encoder)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dense_candidates"):
        BM25ColBERT(encoder, DOCS, dense="x", dense_candidates=0)
    with pytest.raises(ValueError, match="language"):
        BM25ColBERT(encoder, DOCS, language="spanish")
    with pytest.raises(TypeError):
        pipe.search(None, k=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'doc1'"):
        pipe.add(["new text", "other"], ids=["fresh", "doc1"])
    assert len(pipe) == len(DOCS) and "fresh" not in pipe.ids
    with pytest.raises(KeyError, match="'ghost'"):
        pipe.delete(["doc0", "ghost"])
    assert len(pipe) == len(DOCS)
    with pytest.raises(ValueError, match="fusion"):
        BM25ColBERT(encoder, DOCS, fusion="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weight is only used"):
        BM25ColBERT(encoder, DOCS, weight=0.2)
    with pytest.raises(ValueError, match="rrf_k is only used"):
        BM25ColBERT(encoder, DOCS, fusion="weighted", rrf_k=10)
    with pytest.raises(ValueError, match="weight must be"):
        BM25ColBERT(encoder, DOCS, fusion="weighted", weight=1.5)
    with pytest.raises(ValueError, match="candidates"):
        BM25ColBERT(encoder, DOCS, candidates=0)
    with pytest.raises(ValueError, match="score"):
        BM25ColBERT(encoder, DOCS, score="max")
    with pytest.raises(TypeError, match="ColBERTEncoder"):
        BM25ColBERT(object(), DOCS)  # type: ignore[arg-type]


def test_add_delete_pass_through(encoder: ColBERTEncoder) -> None:
    pipe = BM25ColBERT(encoder, DOCS[:3], ids=IDS[:3], metadata=META[:3], require_match=True)
    assert pipe.add(
        ["Bond yields rose as stock markets fell"], ids=["new"], metadata=[{"n": 1}]
    ) == ["new"]
    hits = pipe.search("stock markets", k=3)
    assert [h.id for h in hits] == ["new"] and hits[0].metadata == {"n": 1}
    pipe.delete("new")
    assert pipe.search("stock markets", k=3) == []
    assert pipe.ids == IDS[:3]
    pipe.delete(IDS[:3])
    assert len(pipe) == 0 and pipe.search("cat", k=3) == []


def test_k_larger_than_candidates_widens_the_pool(encoder: ColBERTEncoder) -> None:
    pipe = BM25ColBERT(encoder, DOCS, candidates=2)
    n_match = len(BM25Index(DOCS).search("the cat", k=100))
    assert len(pipe.search("the cat", k=1)) == 1
    assert len(pipe.search("the cat", k=100)) == len(DOCS) > n_match > 2
    strict = BM25ColBERT(encoder, DOCS, candidates=2, require_match=True)
    assert len(strict.search("the cat", k=100)) == n_match


def test_metadata_copies_are_returned(encoder: ColBERTEncoder) -> None:
    meta = [{"tags": ["x"]} for _ in DOCS]
    pipe = BM25ColBERT(encoder, DOCS, metadata=meta)
    meta[0]["tags"].append("caller change")
    hit = pipe.search("cat mat", k=1)[0]
    hit.metadata["tags"].append("hit change")
    assert pipe.get(hit.id)[1] == {"tags": ["x"]}


def test_model_analyzer_and_lazy_encoder(tiny_colbert_path: Path, encoder: ColBERTEncoder) -> None:
    lazy = BM25ColBERT(str(tiny_colbert_path), DOCS)
    assert lazy._encoder is None  # nothing loaded until the first search
    assert lazy.search("cat", k=2)
    assert lazy.encoder.kind == "colbert"
    model = BM25ColBERT(encoder, DOCS, ids=IDS, analyzer="model")
    assert model.bm25.analyzer_name == "model"
    hits = model.search("stock markets", k=2)
    assert hits and hits[0].id in {"doc3", "doc5"}


def test_from_bm25_wraps_a_loaded_index(encoder: ColBERTEncoder, tmp_path: Path) -> None:
    BM25Index(DOCS, IDS, META).save(tmp_path / "bm25")
    pipe = BM25ColBERT.from_bm25(encoder, BM25Index.load(tmp_path / "bm25"), candidates=5)
    assert pipe.search("cat mat", k=3) == BM25ColBERT(
        encoder, DOCS, IDS, META, candidates=5
    ).search("cat mat", k=3)


def test_dense_encoder_is_refused(tiny_embedding_path: Path) -> None:
    dense = load(tiny_embedding_path, device="cpu")
    with pytest.raises(TypeError, match="a dense encoder"):
        BM25ColBERT(dense, DOCS)  # type: ignore[arg-type]
    lazy = BM25ColBERT(str(tiny_embedding_path), DOCS)  # a path is resolved on first search
    with pytest.raises(ValueError, match="colbert"):
        lazy.search("cat", k=1)


# --------------------------------------------------------------------------- k results always


def test_k_results_for_a_query_matching_nothing(encoder: ColBERTEncoder) -> None:
    """Like rank-bm25's get_top_n: zero-score documents fill the pool, in corpus order."""
    pipe = BM25ColBERT(encoder, DOCS, ids=IDS, candidates=4)
    hits = pipe.search("zzz qqq", k=3)
    assert len(hits) == 3
    # the pool is the first 4 documents (corpus order), every one a zero-score BM25 filler
    pool = {h.id for h in pipe.search("zzz qqq", k=4)}
    assert pool == set(IDS[:4])
    assert all(h.bm25_score == 0.0 for h in hits)
    qv = encoder.encode_queries(["zzz qqq"])[0]
    brute = {
        i: _maxsim(qv, d) for i, d in zip(IDS[:4], encoder.encode_documents(DOCS[:4]), strict=True)
    }
    assert [h.id for h in hits] == sorted(brute, key=lambda i: -brute[i])[:3]
    # matches first, then fillers in corpus order
    partial = pipe.bm25.search("stock", k=4, require_match=False)
    assert [h.id for h in partial] == ["doc3", "doc5", "doc0", "doc1"]
    assert [h.bm25_rank for h in partial] == [1, 2, 3, 4]
    assert partial[0].bm25_score > 0 and partial[2].bm25_score == 0.0
    assert len(pipe.search("stock", k=100)) == len(DOCS)
    assert BM25ColBERT(encoder, DOCS[:1]).search("zzz", k=5)[0].text == DOCS[0]


# --------------------------------------------------------------------------- hybrid candidates


def test_dense_side_reaches_a_document_sharing_no_term(
    encoder: ColBERTEncoder, tiny_embedding_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relevant document that shares no term with the query is a candidate through the dense
    stage, with its dense score and rank, and no BM25 score."""
    dense = load(tiny_embedding_path, device="cpu", expect="dense")
    query = "cat mat"
    words = {"cat", "mat"}
    no_term = [i for i, t in zip(IDS, DOCS, strict=True) if not words & set(default_words(t))]
    # the constructed case: the dense model's nearest document among those sharing no term
    qv = dense.encode_queries([query])[0]
    dv = dense.encode_documents(DOCS)
    cos = {i: float(qv @ v) for i, v in zip(IDS, dv, strict=True)}
    dense_order = sorted(IDS, key=lambda i: -cos[i])
    target = next(i for i in dense_order if i in no_term)
    n_dense = dense_order.index(target) + 1

    bm25_only = BM25ColBERT(encoder, DOCS, ids=IDS, candidates=2, require_match=True)
    assert target not in {h.id for h in bm25_only.search(query, k=10)}

    pooled: list[str] = []  # the candidate pool = the texts ColBERT encodes (empty cache)
    for name in ("encode_documents", "encode_documents_padded"):
        original: Callable[..., Any] = getattr(encoder, name)

        def record(texts: Any, *a: Any, _orig: Callable[..., Any] = original, **kw: Any) -> Any:
            pooled.extend(texts)
            return _orig(texts, *a, **kw)

        monkeypatch.setattr(encoder, name, record)
    hybrid = BM25ColBERT(
        encoder, DOCS, ids=IDS, candidates=2, dense=dense, dense_candidates=n_dense
    )
    top = hybrid.search(query, k=1)
    bm25_ids = {h.id for h in BM25Index(DOCS, IDS).search(query, k=2)}
    assert {IDS[DOCS.index(t)] for t in pooled} == bm25_ids | set(dense_order[:n_dense])
    assert DOCS[IDS.index(target)] in pooled and len(top) == 1
    monkeypatch.undo()

    hits = {h.id: h for h in hybrid.search(query, k=len(DOCS))}
    hit = hits[target]
    assert hit.bm25_score is None and hit.bm25_rank is None
    assert hit.dense_rank == n_dense
    assert hit.dense_score == pytest.approx(cos[target], abs=1e-5)
    cq = encoder.encode_queries([query])[0]
    assert hit.colbert_score == pytest.approx(
        _maxsim(cq, encoder.encode_documents([DOCS[IDS.index(target)]])[0]), rel=1e-4
    )
    for h in hits.values():
        assert h.dense_rank == dense_order.index(h.id) + 1  # every document is a dense hit here
        assert h.text == DOCS[IDS.index(h.id)]


def test_dense_vectors_are_computed_once(
    encoder: ColBERTEncoder, tiny_embedding_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dense = load(tiny_embedding_path, device="cpu", expect="dense")
    encoded: list[int] = []
    original = dense.encode_documents

    def counted(texts: Any, *args: Any, **kw: Any) -> Any:
        encoded.append(len(texts))
        return original(texts, *args, **kw)

    monkeypatch.setattr(dense, "encode_documents", counted)
    pipe = BM25ColBERT(encoder, DOCS, ids=IDS, metadata=META, dense=dense, dense_candidates=3)
    assert encoded == []  # nothing is encoded before the first search
    first = pipe.search("pets", k=5)
    assert sum(encoded) == len(DOCS)
    pipe.search("stock markets", k=5)
    assert sum(encoded) == len(DOCS)  # cached
    pipe.add(["A brand new document about whales."], ids=["whale"], metadata=[{"n": 1}])
    pipe.delete("doc9")
    hits = pipe.search("whales", k=len(DOCS))
    assert sum(encoded) == len(DOCS) + 1  # only the new one
    assert pipe.dense_index is not None and sorted(pipe.dense_index.ids) == sorted(pipe.ids)
    assert "doc9" not in {h.id for h in hits}
    by_id = {h.id: h for h in hits}
    assert by_id["whale"].metadata == {"n": 1}  # metadata of dense-only hits comes from BM25
    assert first and all(h.metadata == META[IDS.index(h.id)] for h in first)
