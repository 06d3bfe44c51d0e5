"""LFMColBERTRanker: MaxSim reranking of Haystack Documents on a tiny ColBERT checkpoint."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import logging
from pathlib import Path

import numpy as np
import pytest
from haystack import Document
from haystack.utils import ComponentDevice
from haystack_integrations.components.rankers.lfm import LFMColBERTRanker

import lfm_retrievers.models.registry
from lfm_retrievers import ColBERTEncoder, clear_encoder_cache
from lfm_retrievers.scoring import maxsim

RANKER_TYPE = "haystack_integrations.components.rankers.lfm.ranker.LFMColBERTRanker"
QUERY = "how can I return my order?"


def brute_force_maxsim(encoder: ColBERTEncoder, query: str, texts: list[str]) -> np.ndarray:
    """Σ over query vectors of the best dot product with a document vector, in float64."""
    q = encoder.encode_queries([query])[0].astype(np.float64)
    docs = encoder.encode_documents(texts)
    return np.array([(q @ d.astype(np.float64).T).max(axis=1).sum() for d in docs])


@pytest.fixture
def ranker(tiny_colbert_path: Path) -> LFMColBERTRanker:
    return LFMColBERTRanker(tiny_colbert_path, top_k=100)


# ---------------------------------------------------------------- configuration


def test_to_dict_defaults() -> None:
    assert LFMColBERTRanker().to_dict() == {
        "type": RANKER_TYPE,
        "init_parameters": {
            "model": "LiquidAI/LFM2.5-ColBERT-350M",
            "device": None,
            "dtype": "auto",
            "quantize": None,
            "backend": "torch",
            "top_k": 10,
            "score_threshold": None,
            "score_mode": "raw",
            "meta_fields_to_embed": None,
            "embedding_separator": "\n",
            "batch_size": 32,
            "cache_max_bytes": 256 * 1024 * 1024,
        },
    }


def test_to_dict_custom_and_round_trip() -> None:
    ranker = LFMColBERTRanker(
        "./my-colbert",
        device=ComponentDevice.from_str("cuda:0"),
        dtype="float16",
        top_k=3,
        score_threshold=0.5,
        score_mode="mean",
        meta_fields_to_embed=["title"],
        embedding_separator=" - ",
        batch_size=8,
        cache_max_bytes=0,
    )
    data = ranker.to_dict()
    assert data == {
        "type": RANKER_TYPE,
        "init_parameters": {
            "model": "./my-colbert",
            "device": {"type": "single", "device": "cuda:0"},
            "dtype": "float16",
            "quantize": None,
            "backend": "torch",
            "top_k": 3,
            "score_threshold": 0.5,
            "score_mode": "mean",
            "meta_fields_to_embed": ["title"],
            "embedding_separator": " - ",
            "batch_size": 8,
            "cache_max_bytes": 0,
        },
    }
    back = LFMColBERTRanker.from_dict(data)
    assert back.device == ComponentDevice.from_str("cuda:0")
    assert back.to_dict() == data


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"top_k": 0}, ValueError),
        ({"top_k": -2}, ValueError),
        ({"score_mode": "sigmoid"}, ValueError),
        ({"cache_max_bytes": -1}, ValueError),
        ({"score_threshold": "high"}, TypeError),
        ({"device": "cuda"}, ValueError),
    ],
)
def test_rejects_bad_config(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        LFMColBERTRanker(**kwargs)


def test_run_async_has_exactly_runs_signature() -> None:
    assert inspect.signature(LFMColBERTRanker.run) == inspect.signature(LFMColBERTRanker.run_async)


def test_warm_up_twice_loads_once(tiny_colbert_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_encoder_cache()
    calls: list[object] = []
    real_load = lfm_retrievers.models.registry.load

    def counting_load(*args: object, **kwargs: object) -> object:
        calls.append(args[0])
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lfm_retrievers.models.registry, "load", counting_load)
    ranker = LFMColBERTRanker(tiny_colbert_path, device=ComponentDevice.from_str("cpu"))
    ranker.warm_up()
    cache = ranker.cache
    ranker.warm_up()
    other = LFMColBERTRanker(str(tiny_colbert_path), device=ComponentDevice.from_str("cpu"))
    other.warm_up()
    assert len(calls) == 1
    assert ranker._encoder is other._encoder
    assert ranker.cache is cache and cache is not None


# ---------------------------------------------------------------- scoring


def test_order_and_scores_equal_brute_force_maxsim(
    ranker: LFMColBERTRanker, colbert_oracle: ColBERTEncoder, documents: list[Document]
) -> None:
    out = ranker.run(query=QUERY, documents=documents)["documents"]
    texts = [d.content for d in documents]
    expected = brute_force_maxsim(colbert_oracle, QUERY, texts)  # type: ignore[arg-type]
    order = sorted(range(len(texts)), key=lambda i: -expected[i])
    assert [d.id for d in out] == [documents[i].id for i in order]
    np.testing.assert_allclose([d.score for d in out], expected[order], rtol=1e-4, atol=1e-4)
    assert all(type(d.score) is float for d in out)
    core = maxsim(colbert_oracle.encode_queries([QUERY])[0], colbert_oracle.encode_documents(texts))  # type: ignore[arg-type]
    assert [d.id for d in out] == [documents[i].id for i in np.argsort(-core, kind="stable")]
    scores = [d.score for d in out]
    assert scores == sorted(scores, reverse=True)


def test_mean_mode_divides_by_the_query_vectors(
    tiny_colbert_path: Path, colbert_oracle: ColBERTEncoder, documents: list[Document]
) -> None:
    raw = LFMColBERTRanker(tiny_colbert_path).run(query=QUERY, documents=documents)["documents"]
    mean = LFMColBERTRanker(tiny_colbert_path, score_mode="mean").run(
        query=QUERY, documents=documents
    )["documents"]
    n_query = len(colbert_oracle.encode_queries([QUERY])[0])
    assert [d.id for d in mean] == [d.id for d in raw]
    np.testing.assert_allclose(
        [d.score for d in mean],
        [d.score / n_query for d in raw],
        rtol=1e-6,  # type: ignore[operator]
    )
    assert all(-1.0 <= d.score <= 1.0 for d in mean)  # type: ignore[operator]


def test_markers_and_meta_fields_reach_the_encoder(
    ranker: LFMColBERTRanker, colbert_oracle: ColBERTEncoder
) -> None:
    docs = [
        Document(id="a", content="Free returns within 30 days.", meta={"title": "Returns"}),
        Document(id="b", content="Parcels ship in 3 days.", meta={"title": "Shipping"}),
    ]
    ranker_meta = LFMColBERTRanker(
        ranker.model, meta_fields_to_embed=["title"], embedding_separator=": "
    )
    out = ranker_meta.run(query=QUERY, documents=docs)["documents"]
    expected = brute_force_maxsim(
        colbert_oracle,
        QUERY,
        ["Returns: Free returns within 30 days.", "Shipping: Parcels ship in 3 days."],
    )
    got = {d.id: d.score for d in out}
    np.testing.assert_allclose([got["a"], got["b"]], expected, rtol=1e-4, atol=1e-4)


def test_top_k_and_score_threshold(ranker: LFMColBERTRanker, documents: list[Document]) -> None:
    full = ranker.run(query=QUERY, documents=documents)["documents"]
    top3 = ranker.run(query=QUERY, documents=documents, top_k=3)["documents"]
    assert [d.id for d in top3] == [d.id for d in full[:3]]
    cut = full[4].score
    kept = ranker.run(query=QUERY, documents=documents, score_threshold=cut)["documents"]
    assert [d.id for d in kept] == [d.id for d in full[:5]]
    both = ranker.run(query=QUERY, documents=documents, top_k=2, score_threshold=cut)
    assert [d.id for d in both["documents"]] == [d.id for d in full[:2]]


def test_init_top_k_and_threshold_are_defaults(
    tiny_colbert_path: Path, documents: list[Document]
) -> None:
    full = LFMColBERTRanker(tiny_colbert_path).run(query=QUERY, documents=documents)["documents"]
    ranker = LFMColBERTRanker(tiny_colbert_path, top_k=2)
    assert [d.id for d in ranker.run(query=QUERY, documents=documents)["documents"]] == [
        d.id for d in full[:2]
    ]
    strict = LFMColBERTRanker(tiny_colbert_path, score_threshold=full[0].score + 1.0)
    assert strict.run(query=QUERY, documents=documents) == {"documents": []}


def test_deduplicates_by_id_keeping_the_best_scored(
    ranker: LFMColBERTRanker, documents: list[Document]
) -> None:
    low = Document(id="h-ret", content=documents[0].content, meta={"copy": "low"}, score=1.0)
    high = Document(id="h-ret", content=documents[0].content, meta={"copy": "high"}, score=5.0)
    out = ranker.run(query=QUERY, documents=[low, *documents[1:], high])["documents"]
    ids = [d.id for d in out]
    assert len(ids) == len(set(ids)) == len(documents)
    assert next(d for d in out if d.id == "h-ret").meta == {"copy": "high"}


def test_inputs_are_never_mutated(ranker: LFMColBERTRanker, documents: list[Document]) -> None:
    scored = [dataclasses.replace(d, score=0.0) for d in documents]
    before = copy.deepcopy(scored)
    out = ranker.run(query=QUERY, documents=scored)["documents"]
    assert scored == before
    assert all(d.score == 0.0 for d in scored)
    by_id = {d.id: d for d in scored}
    assert all(d is not by_id[d.id] and d.meta is not by_id[d.id].meta for d in out)
    out[0].meta["touched"] = True
    assert "touched" not in by_id[out[0].id].meta


def test_missing_content_is_skipped_with_a_warning(
    ranker: LFMColBERTRanker, documents: list[Document], caplog: pytest.LogCaptureFixture
) -> None:
    empty = Document(id="no-content", content=None, meta={"lang": "en"})
    with caplog.at_level(logging.WARNING):
        out = ranker.run(query=QUERY, documents=[empty, *documents])["documents"]
    assert "no-content" not in [d.id for d in out]
    assert len(out) == len(documents)
    assert "no-content" in caplog.text


def test_empty_input_returns_empty(ranker: LFMColBERTRanker) -> None:
    assert ranker.run(query=QUERY, documents=[]) == {"documents": []}
    assert ranker.run(query=QUERY, documents=[Document(content=None)]) == {"documents": []}


@pytest.mark.parametrize(
    ("top_k", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_bad_run_top_k(
    ranker: LFMColBERTRanker, documents: list[Document], top_k: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="top_k"):
        ranker.run(query=QUERY, documents=documents, top_k=top_k)  # type: ignore[arg-type]


def test_bad_run_top_k_is_rejected_even_without_documents(ranker: LFMColBERTRanker) -> None:
    with pytest.raises(ValueError, match="top_k"):
        ranker.run(query=QUERY, documents=[], top_k=0)


@pytest.mark.parametrize(
    ("query", "documents"),
    [(["a list"], []), (QUERY, "not a list"), (QUERY, ["plain", "strings"]), (None, [])],
)
def test_bad_run_types(ranker: LFMColBERTRanker, query: object, documents: object) -> None:
    with pytest.raises(TypeError):
        ranker.run(query=query, documents=documents)  # type: ignore[arg-type]


def test_cache_avoids_re_encoding_the_same_candidates(
    tiny_colbert_path: Path, documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    ranker = LFMColBERTRanker(tiny_colbert_path)
    ranker.warm_up()
    encoder = ranker._encoder
    assert encoder is not None
    encoded: list[int] = []
    real = encoder.encode_documents

    def spy(texts: list[str], **kwargs: object) -> list[np.ndarray]:
        encoded.append(len(texts))
        return real(texts, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(encoder, "encode_documents", spy)
    first = ranker.run(query=QUERY, documents=documents)["documents"]
    second = ranker.run(query="shipping time?", documents=documents[::-1])["documents"]
    third = ranker.run(query=QUERY, documents=documents)["documents"]
    assert encoded == [len(documents)]
    assert ranker.cache is not None and ranker.cache.hits == 2 * len(documents)
    assert [(d.id, d.score) for d in third] == [(d.id, d.score) for d in first]
    assert {d.id for d in second} == {d.id for d in first}


def test_cache_can_be_disabled(tiny_colbert_path: Path, documents: list[Document]) -> None:
    ranker = LFMColBERTRanker(tiny_colbert_path, cache_max_bytes=0)
    out = ranker.run(query=QUERY, documents=documents)["documents"]
    assert ranker.cache is None and len(out) == len(documents)


async def test_run_async_matches_run(ranker: LFMColBERTRanker, documents: list[Document]) -> None:
    sync = ranker.run(query=QUERY, documents=documents, top_k=4)
    assert await ranker.run_async(query=QUERY, documents=documents, top_k=4) == sync
