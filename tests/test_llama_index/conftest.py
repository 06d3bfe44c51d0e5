"""LlamaIndex fixtures: a multilingual node corpus and a clean global ``Settings``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Settings
from llama_index.core.llms import MockLLM
from llama_index.core.schema import TextNode


@pytest.fixture
def nodes(support_corpus: list[tuple[str, str, str, str]]) -> list[TextNode]:
    return [
        TextNode(
            id_=f"n-{key}", text=text, metadata={"category": cat, "lang": lang, "year": 2020 + i}
        )
        for i, (key, text, cat, lang) in enumerate(support_corpus)
    ]


@pytest.fixture
def clean_settings() -> Iterator[None]:
    """Restore LlamaIndex's global Settings (embed model, LLM) after the test."""
    saved = (Settings._embed_model, Settings._llm)
    Settings.llm = MockLLM()
    try:
        yield
    finally:
        Settings._embed_model, Settings._llm = saved
