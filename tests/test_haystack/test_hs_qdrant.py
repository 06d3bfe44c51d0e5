"""Haystack: LFMQdrantDocumentStore (Haystack's own DocumentStoreBaseTests) and its retriever.

Runs on qdrant-client's local mode, and again on the server at ``QDRANT_URL`` when it is set.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

pytest.importorskip("qdrant_client")

from haystack import Document, Pipeline
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError
from haystack.testing.document_store import DocumentStoreBaseTests
from haystack.utils import Secret
from haystack_integrations.components.retrievers.lfm import LFMQdrantRetriever
from haystack_integrations.document_stores.lfm import (
    LFMColBERTDocumentStore,
    LFMQdrantDocumentStore,
)


def _store(location: str, model: Path, **kwargs: object) -> LFMQdrantDocumentStore:
    name = f"lfm-test-hs-{uuid.uuid4().hex[:10]}"
    if location == ":memory:":
        return LFMQdrantDocumentStore(location=location, index=name, model=model, **kwargs)
    return LFMQdrantDocumentStore(
        url=location,
        api_key=Secret.from_env_var("QDRANT_API_KEY", strict=False),
        index=name,
        model=model,
        **kwargs,
    )


def _fresh_store(qdrant_location: str, tiny_colbert_path: Path):
    store = _store(qdrant_location, tiny_colbert_path)
    yield store
    if store._qdrant is not None:  # drop what the test created
        store.qdrant_index.drop()


document_store = pytest.fixture(_fresh_store, name="document_store")


class TestLFMQdrantDocumentStore(DocumentStoreBaseTests):
    """Haystack's standard DocumentStore suite, unmodified but for two documented points.

    * Documents come back in Qdrant's point order (by UUID), not in insertion order, and
      without ``embedding`` (the store computes its own vectors from ``content``): documents
      are compared by id, content and meta, in id order.
    * ``test_write_documents`` must be written by each store (the suite leaves the default
      policy open): here ``DuplicatePolicy.NONE`` means ``FAIL``.
    """

    @pytest.fixture
    def document_store(self, qdrant_location: str, tiny_colbert_path: Path):
        yield from _fresh_store(qdrant_location, tiny_colbert_path)

    @staticmethod
    def assert_documents_are_equal(received: list[Document], expected: list[Document]) -> None:
        def key(docs: list[Document]) -> list[tuple[str, str | None, dict]]:
            return sorted((d.id, d.content, d.meta) for d in docs)

        assert key(received) == key(expected)
        assert all(d.embedding is None and d.score is None for d in received)

    def test_write_documents(self, document_store: LFMQdrantDocumentStore) -> None:
        docs = [Document(id="1", content="first"), Document(id="2", content="second")]
        assert document_store.write_documents(docs) == 2
        with pytest.raises(DuplicateDocumentError, match="'1'"):
            document_store.write_documents([Document(id="1", content="again")])
        self.assert_documents_are_equal(document_store.filter_documents(), docs)


def test_search_equals_the_in_process_colbert_store(
    document_store: LFMQdrantDocumentStore, documents: list[Document], tiny_colbert_path: Path
) -> None:
    document_store.write_documents(documents)
    local = LFMColBERTDocumentStore(model=tiny_colbert_path)
    local.write_documents(documents)
    query = "How do I send back my order?"
    want = {d.id: d.score for d in local.search(query, top_k=len(documents))}
    got = {d.id: d.score for d in document_store.search(query, top_k=8, mode="colbert")}
    assert got.keys() == want.keys()
    assert max(abs(got[i] - want[i]) for i in got) <= 1e-4


def test_retriever_filters_and_policies(
    document_store: LFMQdrantDocumentStore, documents: list[Document]
) -> None:
    document_store.write_documents(documents)
    only_en = {"field": "meta.lang", "operator": "==", "value": "en"}
    retriever = LFMQdrantRetriever(document_store, top_k=3, mode="colbert", filters=only_en)
    out = retriever.run(query="shipping time")["documents"]
    assert len(out) == 3 and all(d.meta["lang"] == "en" for d in out)
    scores = [d.score for d in out]
    assert scores == sorted(scores, reverse=True)
    recent = {"field": "meta.year", "operator": ">=", "value": 2025}
    out = retriever.run(query="shipping time", filters=recent)["documents"]  # REPLACE
    assert {d.id for d in out} <= {d.id for d in documents if d.meta["year"] >= 2025}
    assert any(d.meta["lang"] != "en" for d in out)
    with pytest.raises(FilterError):
        retriever.run(query="x", filters={"field": "meta.year", "operator": ">", "value": "1"})
    assert document_store.write_documents(documents[:2], policy=DuplicatePolicy.SKIP) == 0
    assert document_store.write_documents(documents[:2], policy=DuplicatePolicy.OVERWRITE) == 2
    assert document_store.count_documents() == len(documents)


def test_to_dict_keeps_the_api_key_a_reference(tiny_colbert_path: Path) -> None:
    store = LFMQdrantDocumentStore(
        url="http://qdrant.example:6333",
        api_key=Secret.from_env_var("QDRANT_API_KEY"),
        index="faq",
        model=tiny_colbert_path,
        shard_number=2,
    )
    retriever = LFMQdrantRetriever(store, top_k=4, mode="hybrid")
    data = retriever.to_dict()
    params = data["init_parameters"]["document_store"]["init_parameters"]
    assert params["api_key"] == {"type": "env_var", "env_vars": ["QDRANT_API_KEY"], "strict": True}
    assert params["url"] == "http://qdrant.example:6333" and params["shard_number"] == 2
    again = LFMQdrantRetriever.from_dict(data)
    assert again.to_dict() == data
    assert isinstance(again.document_store.api_key, Secret)
    pipe = Pipeline()
    pipe.add_component("retriever", retriever)
    loaded = Pipeline.loads(pipe.dumps())  # no allowed_modules: the allowlist accepts us
    assert loaded.get_component("retriever").to_dict() == data
    with pytest.raises(ValueError, match="token"):
        LFMQdrantDocumentStore(url="http://x", api_key=Secret.from_token("s3cret")).to_dict()


def test_pipeline_round_trip_searches_the_same_collection(
    qdrant_location: str, tiny_colbert_path: Path, documents: list[Document]
) -> None:
    if qdrant_location == ":memory:":
        pytest.skip("a :memory: collection lives in one client; needs a server")
    store = _store(qdrant_location, tiny_colbert_path)
    store.write_documents(documents)
    pipe = Pipeline()
    pipe.add_component("retriever", LFMQdrantRetriever(store, top_k=3))
    loaded = Pipeline.loads(pipe.dumps())
    query = {"retriever": {"query": "password reset"}}
    first = [d.id for d in pipe.run(query)["retriever"]["documents"]]
    assert [d.id for d in loaded.run(query)["retriever"]["documents"]] == first
    store.qdrant_index.drop()


def test_bad_arguments(tiny_colbert_path: Path) -> None:
    with pytest.raises(ValueError, match="at most one"):
        LFMQdrantDocumentStore(location=":memory:", url="http://x")
    with pytest.raises(TypeError, match="Secret"):
        LFMQdrantDocumentStore(url="http://x", api_key="plain")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="LFMQdrantDocumentStore"):
        LFMQdrantRetriever(LFMColBERTDocumentStore())  # type: ignore[arg-type]
    store = LFMQdrantDocumentStore(model=tiny_colbert_path)
    with pytest.raises(ValueError, match="mode"):
        LFMQdrantRetriever(store, mode="fast")
    with pytest.raises(TypeError):
        store.search(3)  # type: ignore[arg-type]


def test_quantize_and_backend_serialize_and_reach_the_encoder(tiny_colbert_path: Path) -> None:
    store = LFMQdrantDocumentStore(
        location=":memory:", index="settings", model=tiny_colbert_path, quantize="int8"
    )
    params = store.to_dict()["init_parameters"]
    assert params["quantize"] == "int8" and params["backend"] == "torch"
    encoder = LFMQdrantDocumentStore.from_dict(store.to_dict()).qdrant_index.colbert_encoder
    assert encoder.quantize == "int8" and encoder.backend == "torch"
    with pytest.raises(ValueError, match="backend"):
        LFMQdrantDocumentStore(location=":memory:", backend="tensorflow")


def test_language_serializes_and_reaches_the_bm25_vector(tiny_colbert_path: Path) -> None:
    store = LFMQdrantDocumentStore(
        location=":memory:", index="lang", model=tiny_colbert_path, language="de"
    )
    assert store.to_dict()["init_parameters"]["language"] == "de"
    store.write_documents(
        [
            Document(id="haus", content="Die Häuser am See sind teuer."),
            Document(id="auto", content="Das Auto fährt schnell."),
        ]
    )
    assert store.qdrant_index.record["bm25"]["language"] == "de"
