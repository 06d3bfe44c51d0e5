"""End-to-end Haystack pipelines: indexing and hybrid querying, serialized and re-created.

``Pipeline.loads`` is called with no ``allowed_modules``, no ``unsafe`` and no
``HAYSTACK_DESERIALIZATION_ALLOWLIST``: the components load because they live under
``haystack_integrations``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from haystack import Document, Pipeline
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import (
    InMemoryBM25Retriever,
    InMemoryEmbeddingRetriever,
)
from haystack.components.writers import DocumentWriter
from haystack.core.errors import DeserializationError
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack_integrations.components.embedders.lfm import LFMDocumentEmbedder, LFMTextEmbedder
from haystack_integrations.components.rankers.lfm import LFMColBERTRanker
from haystack_integrations.components.retrievers.lfm import (
    LFMColBERTDocumentStore,
    LFMColBERTRetriever,
)

QUERIES = [
    "how do I return an item within 30 days?",
    "password reset from settings",
    "shipping business days",
]


@pytest.fixture(autouse=True)
def _no_allowlist_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAYSTACK_DESERIALIZATION_ALLOWLIST", raising=False)


def indexing_pipeline(embedding_model: Path, store: InMemoryDocumentStore) -> Pipeline:
    pipe = Pipeline()
    pipe.add_component(
        "embedder", LFMDocumentEmbedder(embedding_model, meta_fields_to_embed=["category"])
    )
    pipe.add_component("writer", DocumentWriter(document_store=store))
    pipe.connect("embedder.documents", "writer.documents")
    return pipe


def query_pipeline(
    embedding_model: Path,
    colbert_model: Path,
    store: InMemoryDocumentStore,
    colbert_store: LFMColBERTDocumentStore,
) -> Pipeline:
    """BM25 -> ColBERT ranker, dense embedding retrieval, and ColBERT index retrieval, fused."""
    pipe = Pipeline()
    pipe.add_component("bm25", InMemoryBM25Retriever(document_store=store, top_k=6))
    pipe.add_component("ranker", LFMColBERTRanker(colbert_model, top_k=4))
    pipe.add_component("text_embedder", LFMTextEmbedder(embedding_model))
    pipe.add_component("dense", InMemoryEmbeddingRetriever(document_store=store, top_k=4))
    pipe.add_component("colbert", LFMColBERTRetriever(colbert_store, top_k=4))
    pipe.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=5))
    pipe.connect("bm25.documents", "ranker.documents")
    pipe.connect("text_embedder.embedding", "dense.query_embedding")
    pipe.connect("ranker.documents", "joiner.documents")
    pipe.connect("dense.documents", "joiner.documents")
    pipe.connect("colbert.documents", "joiner.documents")
    return pipe


def query_inputs(query: str) -> dict[str, dict[str, Any]]:
    return {
        "bm25": {"query": query},
        "ranker": {"query": query},
        "text_embedder": {"text": query},
        "colbert": {"query": query},
    }


def fused(documents: list[Document]) -> tuple[list[float], dict[str, float]]:
    """A fused ranking up to ties: its sorted scores, and the documents above the lowest one.

    RRF gives documents with mirrored ranks equal scores; their order, and which of them
    survives the joiner's top_k cut, follow the order in which the branches finished.
    """
    scores = sorted(d.score or 0.0 for d in documents)
    cut = scores[0] if scores else 0.0
    return scores, {d.id: d.score or 0.0 for d in documents if (d.score or 0.0) > cut}


def results(pipe: Pipeline, query: str) -> tuple[list[tuple[str, float | None]], tuple]:
    """The ranker's ranked list and the fused ranking (up to ties)."""
    out = pipe.run(query_inputs(query), include_outputs_from={"ranker"})
    assert out["ranker"]["documents"], "the BM25 -> ranker branch returned nothing"
    ranked = [(d.id, d.score) for d in out["ranker"]["documents"]]
    return ranked, fused(out["joiner"]["documents"])


@pytest.fixture
def stores(
    tiny_embedding_path: Path,
    tiny_colbert_path: Path,
    documents: list[Document],
    tmp_path: Path,
) -> tuple[InMemoryDocumentStore, LFMColBERTDocumentStore]:
    store = InMemoryDocumentStore(index=f"lfm-test-{uuid.uuid4().hex}")
    result = indexing_pipeline(tiny_embedding_path, store).run(
        {"embedder": {"documents": documents}}
    )
    assert result["writer"]["documents_written"] == len(documents)
    colbert_store = LFMColBERTDocumentStore(tmp_path / "colbert-index", model=tiny_colbert_path)
    writer = Pipeline()
    writer.add_component("writer", DocumentWriter(document_store=colbert_store))
    assert writer.run({"writer": {"documents": documents}})["writer"]["documents_written"] == len(
        documents
    )
    return store, colbert_store


def test_indexing_pipeline_round_trip(tiny_embedding_path: Path, documents: list[Document]) -> None:
    first = InMemoryDocumentStore(index=f"lfm-a-{uuid.uuid4().hex}")
    pipe = indexing_pipeline(tiny_embedding_path, first)
    pipe.run({"embedder": {"documents": documents}})

    yaml = pipe.dumps()
    assert "haystack_integrations.components.embedders.lfm" in yaml
    second_index = f"lfm-b-{uuid.uuid4().hex}"
    loaded = Pipeline.loads(yaml.replace(first.index, second_index))
    assert isinstance(loaded.get_component("embedder"), LFMDocumentEmbedder)
    loaded.run({"embedder": {"documents": documents}})

    second = InMemoryDocumentStore(index=second_index)
    a = sorted(first.filter_documents(), key=lambda d: d.id)
    b = sorted(second.filter_documents(), key=lambda d: d.id)
    assert [d.id for d in a] == sorted(d.id for d in documents)
    assert [(d.id, d.content, d.meta, d.embedding) for d in a] == [
        (d.id, d.content, d.meta, d.embedding) for d in b
    ]
    assert all(d.embedding is not None for d in a)


def test_query_pipeline_round_trip_gives_identical_results(
    tiny_embedding_path: Path,
    tiny_colbert_path: Path,
    stores: tuple[InMemoryDocumentStore, LFMColBERTDocumentStore],
) -> None:
    store, colbert_store = stores
    pipe = query_pipeline(tiny_embedding_path, tiny_colbert_path, store, colbert_store)
    before = {q: results(pipe, q) for q in QUERIES}
    assert all(len(scores) == 5 for _, (scores, _) in before.values())

    yaml = pipe.dumps()
    for module in ("embedders.lfm", "rankers.lfm", "retrievers.lfm"):
        assert f"haystack_integrations.components.{module}" in yaml
    assert "haystack_integrations.document_stores.lfm" in yaml
    assert str(colbert_store.index_path) in yaml  # the index location travels with it

    loaded = Pipeline.loads(yaml)
    assert loaded.to_dict()["components"] == pipe.to_dict()["components"]
    edges = [sorted(c.items()) for c in pipe.to_dict()["connections"]]
    assert sorted(sorted(c.items()) for c in loaded.to_dict()["connections"]) == sorted(edges)
    assert isinstance(loaded.get_component("ranker"), LFMColBERTRanker)
    assert loaded.get_component("colbert").document_store is not colbert_store
    after = {q: results(loaded, q) for q in QUERIES}
    assert after == before


async def test_query_pipeline_run_async_matches_run(
    tiny_embedding_path: Path,
    tiny_colbert_path: Path,
    stores: tuple[InMemoryDocumentStore, LFMColBERTDocumentStore],
) -> None:
    store, colbert_store = stores
    pipe = query_pipeline(tiny_embedding_path, tiny_colbert_path, store, colbert_store)
    query = QUERIES[0]
    sync = pipe.run(query_inputs(query))["joiner"]["documents"]
    async_out = await pipe.run_async(query_inputs(query))
    assert fused(async_out["joiner"]["documents"]) == fused(sync)


def test_bm25_then_ranker_is_the_no_index_build_mode(
    tiny_colbert_path: Path,
    stores: tuple[InMemoryDocumentStore, LFMColBERTDocumentStore],
) -> None:
    """BM25 candidates reranked by ColBERT equal the ranker run on those candidates directly."""
    store, _ = stores
    pipe = Pipeline()
    pipe.add_component("bm25", InMemoryBM25Retriever(document_store=store, top_k=5))
    pipe.add_component("ranker", LFMColBERTRanker(tiny_colbert_path, top_k=3))
    pipe.connect("bm25.documents", "ranker.documents")
    query = QUERIES[0]
    out = pipe.run({"bm25": {"query": query}, "ranker": {"query": query}})["ranker"]["documents"]
    candidates = InMemoryBM25Retriever(document_store=store, top_k=5).run(query=query)["documents"]
    direct = LFMColBERTRanker(tiny_colbert_path, top_k=3).run(query=query, documents=candidates)
    assert [(d.id, d.score) for d in out] == [(d.id, d.score) for d in direct["documents"]]
    loaded = Pipeline.loads(pipe.dumps())
    again = loaded.run({"bm25": {"query": query}, "ranker": {"query": query}})
    assert [(d.id, d.score) for d in again["ranker"]["documents"]] == [(d.id, d.score) for d in out]


def test_the_allowlist_is_active(tiny_colbert_path: Path) -> None:
    """Control: the same YAML with our class moved outside haystack_integrations is refused."""
    pipe = Pipeline()
    pipe.add_component("ranker", LFMColBERTRanker(tiny_colbert_path))
    yaml = pipe.dumps().replace(
        "haystack_integrations.components.rankers.lfm.ranker.LFMColBERTRanker",
        "lfm_retrievers.rerank.LFMColBERTRanker",
    )
    with pytest.raises(DeserializationError):
        Pipeline.loads(yaml)


def test_hybrid_candidates_pipeline_reaches_what_bm25_cannot(
    tiny_embedding_path: Path,
    tiny_colbert_path: Path,
    stores: tuple[InMemoryDocumentStore, LFMColBERTDocumentStore],
    documents: list[Document],
) -> None:
    """BM25 + dense candidates, concatenated, reranked by ColBERT: the idiomatic Haystack form
    of ``BM25ColBERT(dense=...)``. A document sharing no word with the query comes in through
    the dense branch and is scored by the ranker like the BM25 candidates."""
    store, _ = stores
    query = "how long until my parcel arrives"
    words = set(query.split())
    embedding = LFMTextEmbedder(tiny_embedding_path).run(text=query)["embedding"]
    everything = InMemoryEmbeddingRetriever(document_store=store, top_k=len(documents)).run(
        query_embedding=embedding
    )["documents"]
    # the constructed case: the dense branch's best document that shares no word with the query
    rank = next(
        i for i, d in enumerate(everything, 1) if not words & set((d.content or "").lower().split())
    )
    target = everything[rank - 1].id

    pipe = Pipeline()
    pipe.add_component("bm25", InMemoryBM25Retriever(document_store=store, top_k=2))
    pipe.add_component("text_embedder", LFMTextEmbedder(tiny_embedding_path))
    pipe.add_component("dense", InMemoryEmbeddingRetriever(document_store=store, top_k=rank))
    pipe.add_component("joiner", DocumentJoiner(join_mode="concatenate"))
    pipe.add_component("ranker", LFMColBERTRanker(tiny_colbert_path, top_k=len(documents)))
    pipe.connect("text_embedder.embedding", "dense.query_embedding")
    pipe.connect("bm25.documents", "joiner.documents")
    pipe.connect("dense.documents", "joiner.documents")
    pipe.connect("joiner.documents", "ranker.documents")
    inputs = {
        "bm25": {"query": query},
        "text_embedder": {"text": query},
        "ranker": {"query": query},
    }
    out = pipe.run(inputs, include_outputs_from={"bm25"})
    bm25_ids = {d.id for d in out["bm25"]["documents"]}
    ranked = out["ranker"]["documents"]
    assert target not in bm25_ids
    assert {d.id for d in ranked} == bm25_ids | {d.id for d in everything[:rank]}
    union = [d for d in documents if d.id in {r.id for r in ranked}]
    direct = LFMColBERTRanker(tiny_colbert_path, top_k=len(documents)).run(
        query=query, documents=union
    )
    assert sorted((d.id, d.score) for d in ranked) == sorted(
        (d.id, d.score) for d in direct["documents"]
    )
    loaded = Pipeline.loads(pipe.dumps())
    again = loaded.run(inputs)["ranker"]["documents"]
    assert sorted((d.id, d.score) for d in again) == sorted((d.id, d.score) for d in ranked)
