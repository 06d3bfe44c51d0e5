"""LFMEmbedding: the LlamaIndex BaseEmbedding contract on a tiny real-format checkpoint."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import MetadataMode, TextNode
from llama_index.embeddings.lfm import LFMEmbedding

import lfm_retrievers
from lfm_retrievers import DenseEncoder, load


@pytest.fixture(scope="module")
def oracle(tiny_embedding_path: Path) -> DenseEncoder:
    """An independently loaded encoder (not the shared one the adapter uses)."""
    enc = load(tiny_embedding_path)
    assert isinstance(enc, DenseEncoder)
    return enc


@pytest.fixture
def embed(tiny_embedding_path: Path) -> LFMEmbedding:
    return LFMEmbedding(model_name=str(tiny_embedding_path))


def test_is_a_base_embedding_with_its_own_class_name() -> None:
    assert BaseEmbedding.__name__ in [c.__name__ for c in LFMEmbedding.__mro__]
    assert LFMEmbedding.class_name() == "LFMEmbedding"
    emb = LFMEmbedding()
    assert emb.to_dict()["class_name"] == "LFMEmbedding"
    assert emb.model_name == "LiquidAI/LFM2.5-Embedding-350M"


def test_config_round_trips_through_to_dict(tiny_embedding_path: Path) -> None:
    emb = LFMEmbedding(model_name=str(tiny_embedding_path), query_prompt="q: ", embed_batch_size=7)
    back = LFMEmbedding.from_dict(emb.to_dict())
    assert back.to_dict() == emb.to_dict()
    assert (back.query_prompt, back.embed_batch_size) == ("q: ", 7)


def test_constructor_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        msg = "weights loaded in the constructor"
        raise AssertionError(msg)

    monkeypatch.setattr("llama_index.embeddings.lfm.base.get_dense_encoder", boom)
    emb = LFMEmbedding(model_name="/no/such/folder", device="cpu")
    assert emb._encoder is None
    assert emb.to_dict()["model_name"] == "/no/such/folder"


def test_accepts_a_path_object(tiny_embedding_path: Path) -> None:
    emb = LFMEmbedding(model_name=tiny_embedding_path)  # type: ignore[arg-type]
    assert emb.model_name == str(tiny_embedding_path)


def test_query_and_text_use_different_prompts(embed: LFMEmbedding, oracle: DenseEncoder) -> None:
    text = "how do I return an item?"
    q = np.array(embed.get_query_embedding(text))
    d = np.array(embed.get_text_embedding(text))
    assert not np.allclose(q, d)
    np.testing.assert_allclose(q, oracle.encode_queries([text])[0], atol=1e-5)
    np.testing.assert_allclose(d, oracle.encode_documents([text])[0], atol=1e-5)
    # The prompts really are the checkpoint's: spelled out by hand with an empty prompt.
    prompts = oracle.prompts
    assert prompts["query"] != prompts["document"]
    np.testing.assert_allclose(
        q, oracle.encode_documents([prompts["query"] + text], prompt="")[0], atol=1e-5
    )
    np.testing.assert_allclose(
        d, oracle.encode_documents([prompts["document"] + text], prompt="")[0], atol=1e-5
    )
    assert all(type(x) is float for x in q.tolist())


def test_custom_prompts_override(tiny_embedding_path: Path, oracle: DenseEncoder) -> None:
    emb = LFMEmbedding(
        model_name=str(tiny_embedding_path), query_prompt="search: ", document_prompt=""
    )
    np.testing.assert_allclose(
        emb.get_query_embedding("x"),
        oracle.encode_documents(["search: x"], prompt="")[0],
        atol=1e-5,
    )
    np.testing.assert_allclose(
        emb.get_text_embedding("x"), oracle.encode_documents(["x"], prompt="")[0], atol=1e-5
    )


def test_text_batches_are_one_forward_call_per_chunk(
    tiny_embedding_path: Path, oracle: DenseEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    emb = LFMEmbedding(model_name=str(tiny_embedding_path), embed_batch_size=3)
    texts = [f"document number {i} about returns" for i in range(7)]
    calls: list[int] = []
    real = emb.encoder.encode_documents

    def spy(batch: list[str], **kwargs: object) -> np.ndarray:
        calls.append(len(batch))
        return real(batch, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(emb.encoder, "encode_documents", spy)
    out = emb.get_text_embedding_batch(texts)
    assert calls == [3, 3, 1]
    np.testing.assert_allclose(np.array(out), oracle.encode_documents(texts), atol=1e-5)


async def test_async_matches_sync(embed: LFMEmbedding) -> None:
    texts = ["returns policy", "reset password"]
    assert np.allclose(await embed.aget_query_embedding("q"), embed.get_query_embedding("q"))
    assert np.allclose(await embed.aget_text_embedding("t"), embed.get_text_embedding("t"))
    assert np.allclose(
        await embed.aget_text_embedding_batch(texts), embed.get_text_embedding_batch(texts)
    )


async def test_async_does_not_block_the_event_loop(
    embed: LFMEmbedding, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encode waits for an event only the loop can set: a blocking call would time out."""
    released = threading.Event()
    real = embed.encoder.encode_queries

    def slow(texts: list[str], **kwargs: object) -> np.ndarray:
        assert released.wait(timeout=10), "the event loop was blocked during the encode"
        return real(texts, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embed.encoder, "encode_queries", slow)

    async def release() -> None:
        await asyncio.sleep(0)
        released.set()

    vec, _ = await asyncio.gather(embed.aget_query_embedding("q"), release())
    assert len(vec) == embed.encoder.dim


def test_instances_share_one_encoder(tiny_embedding_path: Path) -> None:
    a = LFMEmbedding(model_name=str(tiny_embedding_path))
    b = LFMEmbedding(model_name=str(tiny_embedding_path), embed_batch_size=4)
    assert a.encoder is b.encoder
    assert a.encoder is lfm_retrievers.get_encoder(tiny_embedding_path)


def test_vector_store_index_via_settings(
    embed: LFMEmbedding, oracle: DenseEncoder, nodes: list[TextNode], clean_settings: None
) -> None:
    Settings.embed_model = embed
    index = VectorStoreIndex(nodes)
    query = "how can I send back my order?"
    hits = index.as_retriever(similarity_top_k=3).retrieve(query)
    assert len(hits) == 3
    # Oracle: cosine of the core's query vector against the core's vectors of the EMBED text.
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    expected = oracle.encode_documents(texts) @ oracle.encode_queries([query])[0]
    order = np.argsort(-expected, kind="stable")[:3]
    assert [h.node.node_id for h in hits] == [nodes[i].node_id for i in order]
    np.testing.assert_allclose([h.get_score(True) for h in hits], expected[order], atol=1e-4)


async def test_vector_store_index_async(
    embed: LFMEmbedding, nodes: list[TextNode], clean_settings: None
) -> None:
    index = VectorStoreIndex(nodes, embed_model=embed, use_async=True)
    hits = await index.as_retriever(similarity_top_k=2).aretrieve("reset my password")
    assert len(hits) == 2
    sync_hits = index.as_retriever(similarity_top_k=2).retrieve("reset my password")
    assert [h.node.node_id for h in hits] == [h.node.node_id for h in sync_hits]


def test_bad_input(tiny_colbert_path: Path) -> None:
    with pytest.raises(ValueError):
        LFMEmbedding(embed_batch_size=0)
    with pytest.raises(ValueError, match="dense"):
        LFMEmbedding(model_name=str(tiny_colbert_path)).get_query_embedding("x")
