"""LlamaIndex fixtures: a multilingual node corpus and a clean global ``Settings``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Settings
from llama_index.core.llms import MockLLM
from llama_index.core.schema import TextNode

CORPUS = [
    (
        "n-ret",
        "To return an item, open your orders and choose Return within 30 days.",
        "returns",
        "en",
    ),
    (
        "n-pwd",
        "Reset your password from Settings, then Account, then Reset password.",
        "account",
        "en",
    ),
    ("n-ship", "Standard shipping takes three to five business days.", "shipping", "en"),
    ("n-de", "Sie können Ihre Bestellung innerhalb von 14 Tagen zurückgeben.", "returns", "de"),
    ("n-fr", "Vous pouvez suivre votre colis depuis la page Mes commandes.", "shipping", "fr"),
    (
        "n-es",
        "Para cambiar la dirección de envío, edite el pedido antes del envío.",
        "shipping",
        "es",
    ),
    ("n-ja", "パスワードを忘れた場合は、ログイン画面から再設定してください。", "account", "ja"),
    ("n-pay", "We accept credit cards, PayPal and bank transfer for every order.", "payment", "en"),
]


def make_nodes() -> list[TextNode]:
    return [
        TextNode(id_=nid, text=text, metadata={"category": cat, "lang": lang, "year": 2020 + i})
        for i, (nid, text, cat, lang) in enumerate(CORPUS)
    ]


@pytest.fixture
def nodes() -> list[TextNode]:
    return make_nodes()


@pytest.fixture
def clean_settings() -> Iterator[None]:
    """Restore LlamaIndex's global Settings (embed model, LLM) after the test."""
    saved = (Settings._embed_model, Settings._llm)
    Settings.llm = MockLLM()
    try:
        yield
    finally:
        Settings._embed_model, Settings._llm = saved
