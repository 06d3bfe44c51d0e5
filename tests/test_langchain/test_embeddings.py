"""LFMEmbeddings: prompts forwarded, floats, lazy loading, async off the loop, vector stores."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from lc_helpers import CORPUS, tiny_path

import lfm_retrievers
from langchain_lfm import LFMEmbeddings


@pytest.fixture
def embeddings() -> LFMEmbeddings:
    return LFMEmbeddings(model=tiny_path("embedding"))


def test_constructor_does_not_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        msg = "constructor must not load the model"
        raise AssertionError(msg)

    monkeypatch.setattr("lfm_retrievers.models.registry.load", boom)
    emb = LFMEmbeddings(model="LiquidAI/LFM2.5-Embedding-350M", device="cpu")
    assert emb._encoder is None
    assert "model" in emb.model_dump()
    assert "_encoder" not in emb.model_dump()


def test_query_and_document_prompts_are_forwarded(embeddings: LFMEmbeddings) -> None:
    text = "How long does delivery take?"
    query = np.array(embeddings.embed_query(text))
    doc = np.array(embeddings.embed_documents([text])[0])
    assert not np.allclose(query, doc), "query and document vectors must differ (prompts)"

    enc = lfm_retrievers.load(tiny_path("embedding"))
    assert enc.prompts == {"query": "query: ", "document": "document: "}
    np.testing.assert_allclose(query, enc.encode_queries([text])[0], atol=1e-6)
    np.testing.assert_allclose(doc, enc.encode_documents([text])[0], atol=1e-6)
    # The oracle for "the prompt is applied": the query vector of `text` equals the
    # document vector of `text` encoded with the query prompt instead.
    np.testing.assert_allclose(
        query, enc.encode_documents([text], prompt=enc.prompts["query"])[0], atol=1e-6
    )


def test_custom_prompts_override_the_checkpoint(embeddings: LFMEmbeddings) -> None:
    custom = LFMEmbeddings(model=tiny_path("embedding"), query_prompt="", document_prompt="")
    text = "same text"
    assert np.allclose(custom.embed_query(text), custom.embed_documents([text])[0], atol=1e-6)
    assert not np.allclose(embeddings.embed_query(text), custom.embed_query(text))


def test_values_are_python_floats_and_normalised(embeddings: LFMEmbeddings) -> None:
    vectors = embeddings.embed_documents(["a", "bb", "ccc"])
    assert len(vectors) == 3
    assert all(type(x) is float for v in vectors for x in v)
    assert all(abs(np.linalg.norm(v) - 1.0) < 1e-5 for v in vectors)
    assert embeddings.embed_documents([]) == []


def test_batching_does_not_change_vectors(embeddings: LFMEmbeddings) -> None:
    texts = [t for t, _ in CORPUS]
    one = LFMEmbeddings(model=tiny_path("embedding"), batch_size=1).embed_documents(texts)
    np.testing.assert_allclose(one, embeddings.embed_documents(texts), atol=1e-5)


def test_encoder_is_shared(embeddings: LFMEmbeddings) -> None:
    other = LFMEmbeddings(model=tiny_path("embedding"), batch_size=4)
    embeddings.warm_up()
    assert other.encoder is embeddings.encoder
    assert other.encoder is lfm_retrievers.get_encoder(tiny_path("embedding"))


def test_bad_input(embeddings: LFMEmbeddings) -> None:
    with pytest.raises(TypeError, match="query must be str"):
        embeddings.embed_query(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="single str"):
        embeddings.embed_documents("not a list")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        embeddings.embed_documents(["ok", None])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        LFMEmbeddings(model=tiny_path("embedding"), batch_size=0)
    with pytest.raises(ValueError):
        LFMEmbeddings(model=tiny_path("embedding"), not_a_field=1)  # type: ignore[call-arg]


def test_a_checkpoint_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="colbert checkpoint"):
        LFMEmbeddings(model=tiny_path("colbert")).embed_query("x")


async def test_async_matches_sync(embeddings: LFMEmbeddings) -> None:
    texts = ["first text", "second text"]
    assert await embeddings.aembed_documents(texts) == embeddings.embed_documents(texts)
    assert await embeddings.aembed_query("q") == embeddings.embed_query("q")
    with pytest.raises(TypeError):
        await embeddings.aembed_query(None)  # type: ignore[arg-type]


async def test_async_does_not_block_the_event_loop(
    embeddings: LFMEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encode waits for an event that only another coroutine on the loop can set.

    If the encode ran on the event loop thread, that coroutine could never run and the
    wait would time out.
    """
    embeddings.warm_up()
    released = threading.Event()
    original = embeddings.encoder.encode_queries

    def gated(*args: object, **kwargs: object) -> np.ndarray:
        assert released.wait(timeout=30), "event loop was blocked during aembed_query"
        assert threading.current_thread() is not threading.main_thread()
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embeddings.encoder, "encode_queries", gated)

    async def release() -> None:
        released.set()

    vector, _ = await asyncio.gather(embeddings.aembed_query("q"), release())
    assert len(vector) == embeddings.encoder.dim


def test_in_memory_vector_store(embeddings: LFMEmbeddings) -> None:
    """Dense retrieval = LFMEmbeddings in a LangChain vector store, checked against numpy."""
    docs = [Document(page_content=t, metadata=m) for t, m in CORPUS]
    store = InMemoryVectorStore.from_documents(docs, embedding=embeddings)
    query = "Which river flows through Paris?"
    results = store.similarity_search_with_score(query, k=3)
    assert len(results) == 3

    enc = embeddings.encoder
    expected = enc.encode_documents([d.page_content for d in docs]) @ enc.encode_queries([query])[0]
    order = np.argsort(-expected, kind="stable")[:3]
    assert [doc.page_content for doc, _ in results] == [docs[i].page_content for i in order]
    np.testing.assert_allclose([s for _, s in results], expected[order], atol=1e-5)

    retriever = store.as_retriever(search_kwargs={"k": 2})
    assert len(retriever.invoke(query)) == 2


def test_public_api_and_imports() -> None:
    import langchain_lfm

    assert sorted(langchain_lfm.__all__) == [
        "LFMBM25ColBERTRetriever",
        "LFMColBERTReranker",
        "LFMColBERTRetriever",
        "LFMEmbeddings",
        "LFMQdrantRetriever",
    ]
    for name in langchain_lfm.__all__:
        assert getattr(langchain_lfm, name).__module__.startswith("langchain_lfm.")
    code = (
        "import sys, langchain_lfm; "
        "bad = [m for m in ('llama_index', 'haystack') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
