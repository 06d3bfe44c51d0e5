"""LlamaIndex's LFMQdrantRetriever on local mode (and the server at QDRANT_URL when set)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("qdrant_client")

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.retrievers.lfm import LFMColBERTRetriever, LFMQdrantRetriever

QUERY = "How do I return my order?"

F = FilterOperator
FILTERS = [
    MetadataFilters(filters=[MetadataFilter(key="lang", value="en")]),
    MetadataFilters(filters=[MetadataFilter(key="lang", value="en", operator=F.NE)]),
    MetadataFilters(filters=[MetadataFilter(key="year", value=2023, operator=F.GTE)]),
    MetadataFilters(filters=[MetadataFilter(key="year", value=2022, operator=F.LT)]),
    MetadataFilters(
        filters=[MetadataFilter(key="category", value=["shipping", "account"], operator=F.IN)]
    ),
    MetadataFilters(filters=[MetadataFilter(key="category", value=["shipping"], operator=F.NIN)]),
    MetadataFilters(filters=[MetadataFilter(key="missing", value="x", operator=F.NE)]),
    MetadataFilters(filters=[MetadataFilter(key="missing", value=None, operator=F.IS_EMPTY)]),
    MetadataFilters(
        filters=[
            MetadataFilter(key="lang", value="en"),
            MetadataFilter(key="category", value="returns"),
        ],
        condition=FilterCondition.OR,
    ),
    MetadataFilters(
        filters=[
            MetadataFilter(key="lang", value="en"),
            MetadataFilters(
                filters=[MetadataFilter(key="year", value=2021, operator=F.LTE)],
                condition=FilterCondition.NOT,
            ),
        ]
    ),
]


@pytest.fixture
def retriever(
    nodes: list[TextNode], qdrant_client, collection_name: str, tiny_colbert_path: Path
) -> LFMQdrantRetriever:
    return LFMQdrantRetriever(
        nodes,
        client=qdrant_client,
        collection_name=collection_name,
        model=tiny_colbert_path,
        mode="colbert",
        similarity_top_k=len(nodes),
    )


def test_class() -> None:
    assert BaseRetriever.__name__ in [c.__name__ for c in LFMQdrantRetriever.__mro__]
    assert LFMQdrantRetriever.class_name() == "LFMQdrantRetriever"


def test_scores_and_ids_equal_the_in_process_retriever(
    retriever: LFMQdrantRetriever, nodes: list[TextNode], tiny_colbert_path: Path
) -> None:
    from llama_index.core.schema import MetadataMode

    local = LFMColBERTRetriever(
        nodes, model=tiny_colbert_path, similarity_top_k=len(nodes), metadata_mode=MetadataMode.NONE
    )
    want = {n.node.node_id: n.score for n in local.retrieve(QUERY)}
    got = {n.node.node_id: n.score for n in retriever.retrieve(QUERY)}
    assert got.keys() == want.keys()
    assert max(abs(got[i] - want[i]) for i in got) <= 1e-4
    first = retriever.retrieve(QUERY)[0].node
    original = next(n for n in nodes if n.node_id == first.node_id)
    assert (first.text, first.metadata) == (original.text, original.metadata)


def test_filters_select_what_the_in_process_matcher_selects(
    retriever: LFMQdrantRetriever, nodes: list[TextNode], tiny_colbert_path: Path
) -> None:
    local = LFMColBERTRetriever(nodes, model=tiny_colbert_path, similarity_top_k=len(nodes))
    for filters in FILTERS:
        local.filters = filters
        want = {n.node.node_id for n in local.retrieve(QUERY)}
        retriever.filters = filters
        assert {n.node.node_id for n in retriever.retrieve(QUERY)} == want, filters
    assert 0 < len(want) < len(nodes)


async def test_add_delete_and_async(retriever: LFMQdrantRetriever, nodes: list[TextNode]) -> None:
    assert len(retriever.retrieve(QUERY)) == len(nodes)
    retriever.add_nodes([TextNode(id_="n-new", text="Gift cards never expire.", metadata={})])
    retriever.similarity_top_k = 100
    assert "n-new" in {n.node.node_id for n in await retriever.aretrieve(QUERY)}
    retriever.delete_nodes(["n-new", nodes[0].node_id])
    ids = {n.node.node_id for n in retriever.retrieve(QUERY)}
    assert "n-new" not in ids and nodes[0].node_id not in ids
    with pytest.raises(KeyError):
        retriever.delete_nodes(["never-added"])


def test_bad_arguments(qdrant_client, collection_name: str) -> None:
    with pytest.raises(ValueError, match="mode"):
        LFMQdrantRetriever(client=qdrant_client, collection_name=collection_name, mode="x")
    with pytest.raises(ValueError, match="similarity_top_k"):
        LFMQdrantRetriever(
            client=qdrant_client, collection_name=collection_name, similarity_top_k=0
        )
    with pytest.raises(ValueError, match="text_match_insensitive"):
        LFMQdrantRetriever(
            client=qdrant_client,
            collection_name=collection_name,
            filters=MetadataFilters(
                filters=[MetadataFilter(key="lang", value="E", operator=F.TEXT_MATCH_INSENSITIVE)]
            ),
        )


def test_quantize_and_backend_reach_the_encoder(
    qdrant_client, collection_name: str, tiny_colbert_path: Path
) -> None:
    """The model settings pass through the seam like every other adapter's."""
    retriever = LFMQdrantRetriever(
        client=qdrant_client,
        collection_name=collection_name,
        model=tiny_colbert_path,
        quantize="int8",
        backend="torch",
    )
    encoder = retriever._index.colbert_encoder
    assert encoder.quantize == "int8" and encoder.backend == "torch"


def test_language_reaches_the_bm25_vector(
    qdrant_client, collection_name: str, tiny_colbert_path: Path
) -> None:
    nodes = [
        TextNode(id_="haus", text="Die Häuser am See sind teuer."),
        TextNode(id_="auto", text="Das Auto fährt schnell."),
    ]
    retriever = LFMQdrantRetriever(
        nodes,
        client=qdrant_client,
        collection_name=collection_name,
        model=tiny_colbert_path,
        language="de",
        mode="bm25",
    )
    assert [n.node.node_id for n in retriever.retrieve("Haus")][:1] == ["haus"]
    assert retriever._index.record["bm25"]["language"] == "de"
