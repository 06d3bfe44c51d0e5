"""LangChain's own standard test suites (langchain-tests), run on the tiny checkpoints.

Only the properties are implemented; no standard test is overridden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_tests.integration_tests import (
    EmbeddingsIntegrationTests,
    RetrieversIntegrationTests,
)
from langchain_tests.unit_tests import EmbeddingsUnitTests
from lc_helpers import CORPUS, QUERY, tiny_path

from langchain_lfm import LFMBM25ColBERTRetriever, LFMColBERTRetriever, LFMEmbeddings


class TestLFMEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[LFMEmbeddings]:
        return LFMEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": tiny_path("embedding")}


class TestLFMEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[LFMEmbeddings]:
        return LFMEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": tiny_path("embedding")}


class TestLFMColBERTRetrieverStandard(RetrieversIntegrationTests):
    """Constructed from a saved index folder (``index_path``), which is loaded lazily."""

    @property
    def retriever_constructor(self) -> type[LFMColBERTRetriever]:
        return LFMColBERTRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"model": tiny_path("colbert"), "index_path": _saved_index(), "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


class TestLFMBM25ColBERTRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[LFMBM25ColBERTRetriever]:
        return LFMBM25ColBERTRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        docs = [Document(page_content=t, metadata=m) for t, m in CORPUS]
        return {"model": tiny_path("colbert"), "documents": docs, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


class TestLFMBM25ColBERTRetrieverNoMatchQuery(RetrieversIntegrationTests):
    """The standard suite with a query that shares no word with any document: k results."""

    @property
    def retriever_constructor(self) -> type[LFMBM25ColBERTRetriever]:
        return LFMBM25ColBERTRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        docs = [Document(page_content=t, metadata=m) for t, m in CORPUS]
        return {"model": tiny_path("colbert"), "documents": docs, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        assert not set(NO_MATCH_QUERY.lower().split()) & {
            w.strip(".,").lower() for t, _ in CORPUS for w in t.split()
        }
        return NO_MATCH_QUERY


class TestLFMBM25ColBERTHybridRetrieverNoMatchQuery(TestLFMBM25ColBERTRetrieverNoMatchQuery):
    """The same with hybrid candidates (a dense model); require_match stays False."""

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        params = super().retriever_constructor_params
        return {**params, "dense_model": tiny_path("embedding"), "dense_candidates": 3}


NO_MATCH_QUERY = "quantum chromodynamics lattice"


def _saved_index() -> str:
    """An index over CORPUS, saved once per session next to the tiny checkpoints."""
    folder = tiny_path("langchain-colbert-index")
    if not Path(folder).exists():
        retriever = LFMColBERTRetriever.from_texts(
            [t for t, _ in CORPUS], [m for _, m in CORPUS], model=tiny_path("colbert")
        )
        retriever.save(folder)
    return folder
