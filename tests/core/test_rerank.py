"""Index-free rerank: order equals sorting by brute-force MaxSim; typed results; bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lfm_retrievers import ColBERTEncoder, RerankResult, load, rerank_vectors


def brute_maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    return sum(max(float(np.dot(q, d)) for d in doc) for q in query) if len(doc) else 0.0


def unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def colbert(tiny_colbert_path: Path) -> ColBERTEncoder:
    enc = load(tiny_colbert_path, device="cpu")
    assert isinstance(enc, ColBERTEncoder)
    return enc


def expected_order(query: np.ndarray, docs: list[np.ndarray]) -> list[int]:
    scores = [brute_maxsim(query, d) for d in docs]
    # Python's sort is stable: equal scores keep their input order.
    return sorted(range(len(docs)), key=lambda i: -scores[i])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_order_equals_brute_force_sort(seed):
    rng = np.random.default_rng(seed)
    query = unit(rng, 8, 16)
    docs = [unit(rng, int(n), 16) for n in rng.integers(1, 30, size=40)]
    results = rerank_vectors(query, docs)
    assert [r.index for r in results] == expected_order(query, docs)
    np.testing.assert_allclose(
        [r.score for r in results], [brute_maxsim(query, docs[r.index]) for r in results], atol=1e-5
    )
    assert all(isinstance(r, RerankResult) and isinstance(r.score, float) for r in results)


def test_top_k_and_mean_mode():
    rng = np.random.default_rng(3)
    query = unit(rng, 5, 8)
    docs = [unit(rng, 4, 8) for _ in range(10)]
    full = rerank_vectors(query, docs)
    top = rerank_vectors(query, docs, top_k=3)
    assert top == full[:3]
    assert rerank_vectors(query, docs, top_k=100) == full
    mean = rerank_vectors(query, docs, score="mean")
    assert [r.index for r in mean] == [r.index for r in full]
    np.testing.assert_allclose([r.score for r in mean], [r.score / 5 for r in full], rtol=1e-6)


def test_ties_keep_input_order():
    rng = np.random.default_rng(4)
    query = unit(rng, 3, 4)
    a, b = unit(rng, 2, 4), unit(rng, 2, 4)
    docs = [a, b, a.copy(), b.copy(), a.copy()]
    results = rerank_vectors(query, docs)
    first = [0, 2, 4] if brute_maxsim(query, a) > brute_maxsim(query, b) else [1, 3]
    assert [r.index for r in results][: len(first)] == first


@pytest.mark.parametrize(
    ("top_k", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("3", TypeError)],
)
def test_bad_top_k_raises(top_k, error):
    with pytest.raises(error, match="top_k"):
        rerank_vectors(np.ones((1, 2), np.float32), [np.ones((1, 2), np.float32)], top_k=top_k)


def test_bad_score_mode_raises():
    with pytest.raises(ValueError, match="raw"):
        rerank_vectors(np.ones((1, 2), np.float32), [np.ones((1, 2), np.float32)], score="max")


def test_empty_candidates():
    assert rerank_vectors(np.ones((1, 2), np.float32), []) == []


def test_encoder_rerank_matches_brute_force(colbert):
    docs = [
        "Mars is called the red planet because of iron oxide.",
        "Venus is the hottest planet.",
        "Bananas are rich in potassium.",
        "The red planet has two moons, Phobos and Deimos.",
        "",
        "!!!",
    ]
    query = "Which planet is known as the red planet?"
    results = colbert.rerank(query, docs)
    q = colbert.encode_queries([query])[0]
    d = colbert.encode_documents(docs)
    assert [r.index for r in results] == expected_order(q, d)
    np.testing.assert_allclose(
        [r.score for r in results], [brute_maxsim(q, d[r.index]) for r in results], atol=1e-4
    )
    assert colbert.rerank(query, docs, top_k=2) == results[:2]
    mean = colbert.rerank(query, docs, score="mean")
    np.testing.assert_allclose(
        [r.score for r in mean], [r.score / len(q) for r in results], rtol=1e-5
    )


@pytest.mark.parametrize("query", ["", "   ", "?!...", "\n\t"])
def test_punctuation_or_whitespace_query_gives_results(colbert, query):
    results = colbert.rerank(query, ["one text", "another text"])
    assert sorted(r.index for r in results) == [0, 1]


def test_encoder_rerank_bad_input(colbert):
    assert colbert.rerank("q", []) == []
    with pytest.raises(TypeError, match="documents"):
        colbert.rerank("q", "a single string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="query"):
        colbert.rerank(None, ["a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top_k"):
        colbert.rerank("q", ["a"], top_k=0)
    with pytest.raises(ValueError, match="score"):
        colbert.rerank("q", ["a"], score="max")
