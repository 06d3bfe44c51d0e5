"""LangChain's LFMQdrantRetriever on qdrant-client's local mode (and QDRANT_URL when set)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

pytest.importorskip("qdrant_client")

from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests
from lc_helpers import CORPUS, QUERY, tiny_path
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from langchain_lfm import LFMColBERTRetriever, LFMQdrantRetriever
from lfm_retrievers import QdrantIndex

_FILLED: dict[str, tuple[QdrantClient, str]] = {}


def _filled(engine: str) -> tuple[QdrantClient, str]:
    """A collection over CORPUS, built once per engine and session (the standard suite reads
    its constructor parameters in properties, outside fixtures)."""
    if engine not in _FILLED:
        client = (
            QdrantClient(url=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY"))
            if engine == "server"
            else QdrantClient(":memory:")
        )
        name = f"lfm-test-lc-{uuid.uuid4().hex[:8]}"
        LFMQdrantRetriever.from_texts(
            [t for t, _ in CORPUS],
            [m for _, m in CORPUS],
            ids=[f"d{i}" for i in range(len(CORPUS))],
            client=client,
            collection_name=name,
            model=tiny_path("colbert"),
        )
        _FILLED[engine] = (client, name)
    return _FILLED[engine]


class TestLFMQdrantRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[LFMQdrantRetriever]:
        return LFMQdrantRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        client, name = _filled("local")
        return {"client": client, "collection_name": name, "mode": "colbert", "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


@pytest.mark.qdrant_server
@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="set QDRANT_URL to run on a server")
class TestLFMQdrantRetrieverStandardOnServer(TestLFMQdrantRetrieverStandard):
    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        client, name = _filled("server")
        return {"client": client, "collection_name": name, "mode": "colbert", "k": 2}


@pytest.fixture
def retriever(qdrant_client, collection_name, corpus_docs) -> LFMQdrantRetriever:
    return LFMQdrantRetriever.from_documents(
        corpus_docs,
        client=qdrant_client,
        collection_name=collection_name,
        model=tiny_path("colbert"),
        dense_model=tiny_path("embedding"),
        k=3,
    )


def test_same_scores_as_the_in_process_retriever(retriever, corpus_docs):
    local = LFMColBERTRetriever.from_documents(corpus_docs, model=tiny_path("colbert"), k=6)
    want = {d.id: d.metadata["relevance_score"] for d in local.invoke(QUERY)}
    retriever.mode = "colbert"
    got = {d.id: d.metadata["relevance_score"] for d in retriever.invoke(QUERY, k=6)}
    assert got.keys() == want.keys()
    assert max(abs(got[i] - want[i]) for i in got) <= 1e-4


def test_documents_are_copies_with_ids_and_scores(retriever, corpus_docs):
    docs = retriever.invoke(QUERY)
    assert len(docs) == 3
    by_id = {d.id: d for d in corpus_docs}
    for doc in docs:
        original = by_id[doc.id]
        assert doc.page_content == original.page_content
        assert {
            k: v for k, v in doc.metadata.items() if k != "relevance_score"
        } == original.metadata
        assert isinstance(doc.metadata["relevance_score"], float)
        assert "relevance_score" not in original.metadata
    scores = [d.metadata["relevance_score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


async def test_filters_k_and_async(retriever):
    docs = retriever.invoke(QUERY, k=5, filter={"lang": "de"})
    assert [d.metadata["lang"] for d in docs] == ["de"]
    native = qm.Filter(
        must=[
            qm.FieldCondition(
                key=QdrantIndex.payload_key("topic"), match=qm.MatchValue(value="geo")
            )
        ]
    )
    docs = await retriever.ainvoke(QUERY, k=5, filter=native)
    assert docs and all(d.metadata["topic"] == "geo" for d in docs)
    assert len(await retriever.ainvoke(QUERY, k=1)) == 1
    with pytest.raises(ValueError):
        retriever.invoke(QUERY, k=0)


def test_add_delete_and_modes(retriever):
    n = len(retriever.index)
    ids = retriever.add_documents([Document(page_content="Lyon is on the Rhône.", id="lyon")])
    assert ids == ["lyon"] and len(retriever.index) == n + 1
    retriever.add_texts(["Lyon lies where the Rhône meets the Saône."], ids=["lyon"])
    assert len(retriever.index) == n + 1  # same id: replaced
    retriever.delete(["lyon"])
    assert len(retriever.index) == n
    for mode in ("colbert", "dense", "bm25", "dense+colbert", "bm25+colbert", "hybrid"):
        retriever.mode = mode
        assert retriever.invoke(QUERY), mode


def test_a_second_retriever_reads_the_same_collection(retriever, qdrant_client, collection_name):
    other = LFMQdrantRetriever(client=qdrant_client, collection_name=collection_name, k=2)
    assert [d.id for d in other.invoke(QUERY)] == [d.id for d in retriever.invoke(QUERY)][:2]
    with pytest.raises(ValueError, match="mode"):
        LFMQdrantRetriever(client=qdrant_client, collection_name=collection_name, mode="fast")


def test_quantize_and_backend_reach_the_encoder() -> None:
    """The model settings pass through the seam like every other adapter's."""
    retriever = LFMQdrantRetriever(
        client=":memory:",
        collection_name=f"settings-{uuid.uuid4().hex[:8]}",
        model=tiny_path("colbert"),
        quantize="int8",
    )
    assert retriever.backend == "torch"
    encoder = retriever.index.colbert_encoder
    assert encoder.quantize == "int8" and encoder.backend == "torch"
    with pytest.raises(ValueError, match="backend"):
        LFMQdrantRetriever(client=":memory:", collection_name="x", backend="tensorflow")


def test_language_reaches_the_bm25_vector() -> None:
    retriever = LFMQdrantRetriever.from_texts(
        ["Die Häuser am See sind teuer.", "Das Auto fährt schnell."],
        ids=["haus", "auto"],
        client=":memory:",
        collection_name=f"lang-{uuid.uuid4().hex[:8]}",
        model=tiny_path("colbert"),
        language="de",
        mode="bm25",
    )
    assert retriever.index.record["bm25"]["language"] == "de"
    assert [d.id for d in retriever.invoke("Haus", k=2)][:1] == ["haus"]
