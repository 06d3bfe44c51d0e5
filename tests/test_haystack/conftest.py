"""Haystack fixtures: a small multilingual Document corpus and independently loaded oracles."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("haystack")

from haystack import Document

from lfm_retrievers import ColBERTEncoder, DenseEncoder, load


@pytest.fixture
def documents(support_corpus: list[tuple[str, str, str, str]]) -> list[Document]:
    return [
        Document(
            id=f"h-{key}", content=text, meta={"category": cat, "lang": lang, "year": 2020 + i}
        )
        for i, (key, text, cat, lang) in enumerate(support_corpus)
    ]


@pytest.fixture(scope="session")
def dense_oracle(tiny_embedding_path: Path) -> DenseEncoder:
    """An independently loaded dense encoder (not the shared one the components use)."""
    enc = load(tiny_embedding_path, device="cpu")
    assert isinstance(enc, DenseEncoder)
    return enc


@pytest.fixture(scope="session")
def colbert_oracle(tiny_colbert_path: Path) -> ColBERTEncoder:
    """An independently loaded ColBERT encoder (not the shared one the components use)."""
    enc = load(tiny_colbert_path, device="cpu")
    assert isinstance(enc, ColBERTEncoder)
    return enc
