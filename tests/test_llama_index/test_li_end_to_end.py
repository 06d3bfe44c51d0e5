"""End to end: LFMEmbedding in a VectorStoreIndex query engine, and a BM25 -> ColBERT
RetrieverQueryEngine with LFMColBERTRerank as node postprocessor, answering with MockLLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, TextNode
from llama_index.embeddings.lfm import LFMEmbedding
from llama_index.postprocessor.lfm_rerank import LFMColBERTRerank
from llama_index.retrievers.lfm import LFMBM25ColBERTRetriever

from lfm_retrievers import ColBERTEncoder, load

QUERY = "how do I return an order?"


def test_vector_store_index_query_engine(
    tiny_embedding_path: Path, nodes: list[TextNode], clean_settings: None
) -> None:
    index = VectorStoreIndex(nodes, embed_model=LFMEmbedding(model_name=str(tiny_embedding_path)))
    engine = index.as_query_engine(llm=MockLLM(max_tokens=8), similarity_top_k=2)
    response = engine.query(QUERY)
    assert str(response).strip()
    assert len(response.source_nodes) == 2
    assert {s.node.node_id for s in response.source_nodes} <= {n.node_id for n in nodes}


@pytest.fixture
def engine_parts(
    tiny_colbert_path: Path, nodes: list[TextNode]
) -> tuple[LFMBM25ColBERTRetriever, LFMColBERTRerank]:
    retriever = LFMBM25ColBERTRetriever(
        nodes, model=tiny_colbert_path, similarity_top_k=5, candidates=6
    )
    rerank = LFMColBERTRerank(model=str(tiny_colbert_path), top_n=2, keep_retrieval_score=True)
    return retriever, rerank


def test_bm25_colbert_query_engine_with_rerank(
    engine_parts: tuple[LFMBM25ColBERTRetriever, LFMColBERTRerank],
    tiny_colbert_path: Path,
    clean_settings: None,
) -> None:
    retriever, rerank = engine_parts
    engine = RetrieverQueryEngine.from_args(
        retriever, llm=MockLLM(max_tokens=8), node_postprocessors=[rerank]
    )
    response = engine.query(QUERY)
    assert str(response).strip()
    sources = response.source_nodes
    assert len(sources) == 2
    retrieved = {h.node.node_id: h for h in retriever.retrieve(QUERY)}
    assert {s.node.node_id for s in sources} <= set(retrieved)
    # The reranker's scores are MaxSim over the retrieved copies, recomputed by hand here.
    enc = load(tiny_colbert_path)
    assert isinstance(enc, ColBERTEncoder)
    q = enc.encode_queries([QUERY])[0]
    for s in sources:
        text = s.node.get_content(metadata_mode=MetadataMode.EMBED)
        (d,) = enc.encode_documents([text])
        assert s.score == pytest.approx(float((q @ d.T).max(axis=1).sum()), rel=1e-4, abs=1e-4)
        meta = s.node.metadata
        assert meta["retrieval_score"] == pytest.approx(retrieved[s.node.node_id].score)
        assert meta["bm25_score"] == pytest.approx(
            retrieved[s.node.node_id].node.metadata["bm25_score"]
        )
    assert [s.get_score(True) for s in sources] == sorted(
        (s.get_score(True) for s in sources), reverse=True
    )
    # Retriever and reranker run on one shared copy of the weights.
    assert retriever.encoder is rerank.encoder


async def test_bm25_colbert_query_engine_async(
    engine_parts: tuple[LFMBM25ColBERTRetriever, LFMColBERTRerank], clean_settings: None
) -> None:
    retriever, rerank = engine_parts
    engine = RetrieverQueryEngine.from_args(
        retriever, llm=MockLLM(max_tokens=8), node_postprocessors=[rerank]
    )
    a = await engine.aquery(QUERY)
    b = engine.query(QUERY)
    assert [s.node.node_id for s in a.source_nodes] == [s.node.node_id for s in b.source_nodes]
    np.testing.assert_allclose(
        [s.get_score(True) for s in a.source_nodes],
        [s.get_score(True) for s in b.source_nodes],
        rtol=1e-6,
    )
