"""LFMColBERTDocumentStore + LFMColBERTRetriever: a persistent ColBERT index behind Haystack.

The store is also run through Haystack's own DocumentStore test suite
(``haystack.testing.document_store``), an oracle for the protocol and the filter semantics.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

import numpy as np
import pytest
from haystack import Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DocumentStore, DuplicatePolicy, FilterPolicy
from haystack.errors import FilterError
from haystack.testing.document_store import DocumentStoreBaseTests
from haystack.utils import ComponentDevice
from haystack_integrations.components.retrievers.lfm import (
    LFMColBERTDocumentStore,
    LFMColBERTRetriever,
    UnsupportedFilterError,
)

from lfm_retrievers import ColBERTEncoder, ColBERTIndex

STORE_TYPE = "haystack_integrations.document_stores.lfm.document_store.LFMColBERTDocumentStore"
#: Where the store lived before it moved to ``document_stores/lfm`` (pipelines saved then).
OLD_STORE_TYPE = (
    "haystack_integrations.components.retrievers.lfm.document_store.LFMColBERTDocumentStore"
)
RETRIEVER_TYPE = "haystack_integrations.components.retrievers.lfm.retriever.LFMColBERTRetriever"
QUERY = "how do I send an item back?"


def _visible(docs: list[Document]) -> list[tuple[str, str | None, dict]]:
    return [(d.id, d.content, d.meta) for d in docs]


class TestHaystackDocumentStoreSuite(DocumentStoreBaseTests):
    """Haystack's protocol tests: count, write (all policies), delete, every filter operator."""

    @pytest.fixture
    def document_store(self, tiny_colbert_path: Path) -> LFMColBERTDocumentStore:
        return LFMColBERTDocumentStore(model=tiny_colbert_path)

    def assert_documents_are_equal(
        self, received: list[Document], expected: list[Document]
    ) -> None:
        # The store keeps id, content and meta; dense embeddings are not stored.
        assert _visible(received) == _visible(expected)

    def test_write_documents(self, document_store: LFMColBERTDocumentStore) -> None:
        doc = Document(content="test doc")
        assert document_store.write_documents([doc]) == 1
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([doc])
        self.assert_documents_are_equal(document_store.filter_documents(), [doc])


@pytest.fixture
def store(tiny_colbert_path: Path, documents: list[Document]) -> LFMColBERTDocumentStore:
    store = LFMColBERTDocumentStore(model=tiny_colbert_path)
    store.write_documents(documents)
    return store


@pytest.fixture
def index_oracle(colbert_oracle: ColBERTEncoder, documents: list[Document]) -> ColBERTIndex:
    """The core index built directly, with an independently loaded encoder."""
    index = ColBERTIndex(colbert_oracle)
    index.add(
        [d.content for d in documents], [d.id for d in documents], [d.meta for d in documents]
    )  # type: ignore[misc]
    return index


# ---------------------------------------------------------------- serialization


def test_store_has_the_document_store_protocol(store: LFMColBERTDocumentStore) -> None:
    protocol: DocumentStore = store  # statically: matches the protocol
    for name in (
        "to_dict",
        "from_dict",
        "count_documents",
        "filter_documents",
        "write_documents",
        "delete_documents",
    ):
        assert callable(getattr(protocol, name))
        assert callable(getattr(store, f"{name}_async", None)) or name in ("to_dict", "from_dict")


def test_store_to_dict_and_round_trip(tmp_path: Path) -> None:
    store = LFMColBERTDocumentStore(
        tmp_path / "idx",
        model="some/colbert",
        device=ComponentDevice.from_str("cpu"),
        dtype="float32",
        batch_size=4,
        autosave=False,
    )
    data = store.to_dict()
    assert data == {
        "type": STORE_TYPE,
        "init_parameters": {
            "index_path": str(tmp_path / "idx"),
            "model": "some/colbert",
            "device": {"type": "single", "device": "cpu"},
            "dtype": "float32",
            "quantize": None,
            "backend": "torch",
            "batch_size": 4,
            "autosave": False,
        },
    }
    assert LFMColBERTDocumentStore.from_dict(data).to_dict() == data


def test_retriever_to_dict_nests_the_index_location(tmp_path: Path) -> None:
    store = LFMColBERTDocumentStore(tmp_path / "idx")
    flt = {"field": "meta.lang", "operator": "==", "value": "en"}
    retriever = LFMColBERTRetriever(
        store, filters=flt, top_k=3, score_mode="mean", filter_policy=FilterPolicy.MERGE
    )
    data = retriever.to_dict()
    assert data == {
        "type": RETRIEVER_TYPE,
        "init_parameters": {
            "document_store": {
                "type": STORE_TYPE,
                "init_parameters": {
                    "index_path": str(tmp_path / "idx"),
                    "model": "LiquidAI/LFM2.5-ColBERT-350M",
                    "device": None,
                    "dtype": "auto",
                    "quantize": None,
                    "backend": "torch",
                    "batch_size": 32,
                    "autosave": True,
                },
            },
            "filters": flt,
            "top_k": 3,
            "score_mode": "mean",
            "filter_policy": "merge",
        },
    }
    back = LFMColBERTRetriever.from_dict(data)
    assert isinstance(back.document_store, LFMColBERTDocumentStore)
    assert back.filter_policy is FilterPolicy.MERGE
    assert back.to_dict() == data
    assert data["init_parameters"]["filter_policy"] == "merge"  # from_dict did not mutate it


def test_constructors_load_nothing(tmp_path: Path) -> None:
    store = LFMColBERTDocumentStore(tmp_path / "nothing-here", model="/no/such/model")
    LFMColBERTRetriever(store)
    assert store._index is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"top_k": 0}, ValueError),
        ({"score_mode": "max"}, ValueError),
        ({"filters": {"field": "meta.lang", "operator": "like", "value": "e%"}}, ValueError),
        ({"filters": "lang == en"}, ValueError),
    ],
)
def test_retriever_rejects_bad_config(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        LFMColBERTRetriever(LFMColBERTDocumentStore(), **kwargs)


def test_retriever_needs_our_store() -> None:
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    with pytest.raises(TypeError, match="LFMColBERTDocumentStore"):
        LFMColBERTRetriever(InMemoryDocumentStore())  # type: ignore[arg-type]


def test_run_async_has_exactly_runs_signature() -> None:
    assert inspect.signature(LFMColBERTRetriever.run) == inspect.signature(
        LFMColBERTRetriever.run_async
    )


# ---------------------------------------------------------------- retrieval


def test_results_equal_the_core_index(
    store: LFMColBERTDocumentStore, index_oracle: ColBERTIndex, documents: list[Document]
) -> None:
    out = LFMColBERTRetriever(store, top_k=5).run(query=QUERY)["documents"]
    hits = index_oracle.search(QUERY, k=5)
    assert [d.id for d in out] == [h.id for h in hits]
    np.testing.assert_allclose([d.score for d in out], [h.score for h in hits], rtol=1e-5)
    by_id = {d.id: d for d in documents}
    assert all(d.content == by_id[d.id].content and d.meta == by_id[d.id].meta for d in out)


def test_mean_scores(store: LFMColBERTDocumentStore, colbert_oracle: ColBERTEncoder) -> None:
    raw = LFMColBERTRetriever(store).run(query=QUERY)["documents"]
    mean = LFMColBERTRetriever(store, score_mode="mean").run(query=QUERY)["documents"]
    n_query = len(colbert_oracle.encode_queries([QUERY])[0])
    assert [d.id for d in mean] == [d.id for d in raw]
    np.testing.assert_allclose(
        [d.score for d in mean],
        [d.score / n_query for d in raw],
        rtol=1e-5,  # type: ignore[operator]
    )


@pytest.mark.parametrize(
    ("filters", "expected_ids"),
    [
        (
            {"field": "meta.lang", "operator": "==", "value": "en"},
            {"h-ret", "h-pwd", "h-ship", "h-pay"},
        ),
        (
            {
                "operator": "AND",
                "conditions": [
                    {"field": "meta.lang", "operator": "==", "value": "en"},
                    {"field": "meta.category", "operator": "==", "value": "shipping"},
                ],
            },
            {"h-ship"},
        ),
        (
            {
                "operator": "OR",
                "conditions": [
                    {"field": "meta.lang", "operator": "==", "value": "de"},
                    {"field": "meta.category", "operator": "==", "value": "account"},
                ],
            },
            {"h-de", "h-pwd", "h-ja"},
        ),
        (
            {
                "operator": "AND",
                "conditions": [
                    {"field": "meta.year", "operator": ">=", "value": 2024},
                    {
                        "operator": "NOT",
                        "conditions": [
                            {"field": "meta.lang", "operator": "in", "value": ["fr", "ja"]}
                        ],
                    },
                ],
            },
            {"h-es", "h-pay"},
        ),
        ({"field": "meta.lang", "operator": "==", "value": "xx"}, set()),
    ],
)
def test_filters(
    store: LFMColBERTDocumentStore,
    index_oracle: ColBERTIndex,
    filters: dict,
    expected_ids: set[str],
) -> None:
    before = copy.deepcopy(filters)
    out = LFMColBERTRetriever(store, top_k=100).run(query=QUERY, filters=filters)["documents"]
    assert {d.id for d in out} == expected_ids
    assert filters == before
    oracle = (
        index_oracle.search(QUERY, k=100, filter={"ids": sorted(expected_ids)})
        if expected_ids
        else []
    )
    assert [d.id for d in out] == [h.id for h in oracle]


def test_equality_filter_matches_the_core_metadata_filter(
    store: LFMColBERTDocumentStore, index_oracle: ColBERTIndex
) -> None:
    out = LFMColBERTRetriever(store, top_k=3).run(
        query=QUERY, filters={"field": "meta.category", "operator": "==", "value": "returns"}
    )["documents"]
    hits = index_oracle.search(QUERY, k=3, filter={"metadata": {"category": "returns"}})
    assert [d.id for d in out] == [h.id for h in hits]


def test_filter_policy(store: LFMColBERTDocumentStore) -> None:
    en = {"field": "meta.lang", "operator": "==", "value": "en"}
    account = {"field": "meta.category", "operator": "==", "value": "account"}
    replace = LFMColBERTRetriever(store, filters=en, top_k=100)
    merge = LFMColBERTRetriever(store, filters=en, top_k=100, filter_policy=FilterPolicy.MERGE)
    assert {d.id for d in replace.run(query=QUERY)["documents"]} == {
        "h-ret",
        "h-pwd",
        "h-ship",
        "h-pay",
    }
    assert {d.id for d in replace.run(query=QUERY, filters=account)["documents"]} == {
        "h-pwd",
        "h-ja",
    }
    assert {d.id for d in merge.run(query=QUERY, filters=account)["documents"]} == {"h-pwd"}


@pytest.mark.parametrize(
    "filters",
    [
        {"field": "meta.lang", "operator": "like", "value": "e%"},
        {"field": "meta.lang", "operator": "exists", "value": True},
        {"operator": "XOR", "conditions": []},
        {"operator": "AND", "conditions": [{"field": "meta.lang", "operator": "~", "value": 1}]},
        {"field": "meta.lang", "value": "en"},
        {"operator": "AND"},
        ["not", "a", "dict"],
    ],
)
def test_unsupported_filters_raise_a_clear_error(
    store: LFMColBERTDocumentStore, filters: object
) -> None:
    retriever = LFMColBERTRetriever(store)
    with pytest.raises(UnsupportedFilterError) as info:
        retriever.run(query=QUERY, filters=filters)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError) and isinstance(info.value, FilterError)
    if isinstance(filters, dict) and filters.get("operator") in ("like", "exists", "XOR"):
        assert "supported" in str(info.value) and "==" in str(info.value)


@pytest.mark.parametrize(("top_k", "error"), [(0, ValueError), (-3, ValueError), (2.0, TypeError)])
def test_bad_top_k(store: LFMColBERTDocumentStore, top_k: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="top_k"):
        LFMColBERTRetriever(store).run(query=QUERY, top_k=top_k)  # type: ignore[arg-type]


def test_empty_store_returns_nothing(tiny_colbert_path: Path) -> None:
    retriever = LFMColBERTRetriever(LFMColBERTDocumentStore(model=tiny_colbert_path))
    assert retriever.run(query=QUERY) == {"documents": []}


def test_top_k_and_run_async(store: LFMColBERTDocumentStore) -> None:
    import asyncio

    retriever = LFMColBERTRetriever(store, top_k=2)
    sync = retriever.run(query=QUERY)
    assert len(sync["documents"]) == 2
    assert len(retriever.run(query=QUERY, top_k=4)["documents"]) == 4
    assert asyncio.run(retriever.run_async(query=QUERY)) == sync


# ---------------------------------------------------------------- the store


def test_writes_copy_and_skip_missing_content(
    tiny_colbert_path: Path, documents: list[Document], caplog: pytest.LogCaptureFixture
) -> None:
    store = LFMColBERTDocumentStore(model=tiny_colbert_path)
    before = copy.deepcopy(documents)
    with caplog.at_level("WARNING"):
        written = store.write_documents([*documents, Document(id="empty", content=None)])
    assert written == len(documents)
    assert documents == before
    assert "empty" in caplog.text
    assert store.count_documents() == len(documents)


def test_duplicate_policies_leave_the_store_consistent(
    store: LFMColBERTDocumentStore, documents: list[Document]
) -> None:
    new = Document(id="new", content="Brand new document.", meta={"lang": "en"})
    with pytest.raises(DuplicateDocumentError):
        store.write_documents([new, documents[0]])
    assert store.count_documents() == len(documents)  # nothing written
    assert store.write_documents([new, documents[0]], policy=DuplicatePolicy.SKIP) == 1
    changed = Document(id="h-ret", content="Returns are free.", meta={"lang": "en", "v": 2})
    assert store.write_documents([changed], policy=DuplicatePolicy.OVERWRITE) == 1
    assert store.count_documents() == len(documents) + 1
    top = LFMColBERTRetriever(store, top_k=100).run(query="Returns are free.")["documents"]
    assert next(d for d in top if d.id == "h-ret").meta == {"lang": "en", "v": 2}
    store.delete_documents(["h-ret", "unknown-id"])
    assert "h-ret" not in {d.id for d in store.filter_documents()}


def test_persists_and_reopens(
    tiny_colbert_path: Path, tmp_path: Path, documents: list[Document]
) -> None:
    path = tmp_path / "faq-index"
    store = LFMColBERTDocumentStore(path, model=tiny_colbert_path)
    store.write_documents(documents)
    first = LFMColBERTRetriever(store, top_k=4).run(query=QUERY)["documents"]
    assert (path / "manifest.json").exists()

    reopened = LFMColBERTRetriever.from_dict(LFMColBERTRetriever(store, top_k=4).to_dict())
    again = reopened.run(query=QUERY)["documents"]
    assert [(d.id, d.score, d.content, d.meta) for d in again] == [
        (d.id, d.score, d.content, d.meta) for d in first
    ]
    reopened.document_store.delete_documents([first[0].id])
    third = LFMColBERTDocumentStore(path, model=tiny_colbert_path)
    assert third.count_documents() == len(documents) - 1


def test_no_autosave_until_save(
    tiny_colbert_path: Path, tmp_path: Path, documents: list[Document]
) -> None:
    path = tmp_path / "manual"
    store = LFMColBERTDocumentStore(path, model=tiny_colbert_path, autosave=False)
    store.write_documents(documents)
    assert not path.exists()
    store.save()
    assert LFMColBERTDocumentStore(path, model=tiny_colbert_path).count_documents() == len(
        documents
    )
    with pytest.raises(ValueError, match="no path"):
        LFMColBERTDocumentStore(model=tiny_colbert_path).save()


def test_reopening_with_another_model_fails_clearly(
    tiny_colbert_path: Path,
    tiny_causal_colbert_path: Path,
    tmp_path: Path,
    documents: list[Document],
) -> None:
    path = tmp_path / "idx"
    LFMColBERTDocumentStore(path, model=tiny_colbert_path).write_documents(documents[:2])
    with pytest.raises(ValueError, match="fingerprint"):
        LFMColBERTDocumentStore(path, model=tiny_causal_colbert_path).count_documents()


def test_non_json_meta_is_rejected(store: LFMColBERTDocumentStore) -> None:
    bad = Document(id="h-ret", content="x", meta={"when": object()})
    with pytest.raises(TypeError, match="JSON"):
        store.write_documents([bad], policy=DuplicatePolicy.OVERWRITE)
    assert "h-ret" in {d.id for d in store.filter_documents()}  # the old version survived


def test_pipeline_saved_with_the_old_store_path_still_loads(
    tiny_colbert_path: Path, tmp_path: Path
) -> None:
    from haystack import Pipeline
    from haystack_integrations.document_stores.lfm import LFMColBERTDocumentStore as NewPath

    assert NewPath is LFMColBERTDocumentStore
    store = LFMColBERTDocumentStore(model=str(tiny_colbert_path), index_path=str(tmp_path / "ix"))
    store.write_documents([Document(id="a", content="returns within 30 days")])
    pipe = Pipeline()
    pipe.add_component("retriever", LFMColBERTRetriever(document_store=store, top_k=1))
    yaml = pipe.dumps()
    assert STORE_TYPE in yaml
    old_yaml = yaml.replace(STORE_TYPE, OLD_STORE_TYPE)
    assert OLD_STORE_TYPE in old_yaml and STORE_TYPE not in old_yaml
    loaded = Pipeline.loads(old_yaml)
    retriever = loaded.get_component("retriever")
    assert isinstance(retriever.document_store, LFMColBERTDocumentStore)
    docs = loaded.run({"retriever": {"query": "returns"}})["retriever"]["documents"]
    assert [d.id for d in docs] == ["a"]
