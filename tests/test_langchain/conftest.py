"""Fixtures for the LangChain adapter tests: tiny checkpoints and a small shared corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from langchain_core.documents import Document
from lc_helpers import CORPUS


@pytest.fixture(scope="session", autouse=True)
def _tiny_checkpoints(tiny_dir: Path) -> Path:
    """Build the tiny checkpoints before any test, including the standard suites.

    langchain-tests reads ``embedding_model_params`` / ``retriever_constructor_params`` inside
    test bodies and plain fixtures, so those properties take the paths from
    ``LFM_RETRIEVERS_TINY_DIR`` (which the session fixture exports).
    """
    assert os.environ["LFM_RETRIEVERS_TINY_DIR"] == str(tiny_dir)
    return tiny_dir


@pytest.fixture
def corpus_docs() -> list[Document]:
    """Six short documents with ids and metadata (fresh objects per test)."""
    return [
        Document(page_content=text, metadata=dict(meta), id=f"d{i}")
        for i, (text, meta) in enumerate(CORPUS)
    ]
