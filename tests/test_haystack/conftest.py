"""Haystack fixtures: a small multilingual Document corpus and independently loaded oracles."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("haystack")

from haystack import Document

from lfm_retrievers import ColBERTEncoder, DenseEncoder, load

CORPUS = [
    (
        "h-ret",
        "To return an item, open your orders and choose Return within 30 days.",
        "returns",
        "en",
    ),
    (
        "h-pwd",
        "Reset your password from Settings, then Account, then Reset password.",
        "account",
        "en",
    ),
    ("h-ship", "Standard shipping takes three to five business days.", "shipping", "en"),
    ("h-de", "Sie können Ihre Bestellung innerhalb von 14 Tagen zurückgeben.", "returns", "de"),
    ("h-fr", "Vous pouvez suivre votre colis depuis la page Mes commandes.", "shipping", "fr"),
    (
        "h-es",
        "Para cambiar la dirección de envío, edite el pedido antes del envío.",
        "shipping",
        "es",
    ),
    ("h-ja", "パスワードを忘れた場合は、ログイン画面から再設定してください。", "account", "ja"),
    ("h-pay", "We accept credit cards, PayPal and bank transfer for every order.", "payment", "en"),
]


def make_documents() -> list[Document]:
    return [
        Document(id=did, content=text, meta={"category": cat, "lang": lang, "year": 2020 + i})
        for i, (did, text, cat, lang) in enumerate(CORPUS)
    ]


@pytest.fixture
def documents() -> list[Document]:
    return make_documents()


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
