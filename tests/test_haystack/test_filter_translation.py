"""Haystack filters translated into the core's one filter language (issue 10, issue 14 item 6).

The store's ``search`` hands a translatable filter to the index instead of matching documents
itself. Haystack's reference matcher (``filter_documents``) is the oracle: on random filters
over the translatable subset both give the same documents.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from haystack import Document
from haystack_integrations.document_stores.lfm import LFMColBERTDocumentStore
from haystack_integrations.document_stores.lfm.filters import to_core_filter

OPS = ["==", "!=", ">", ">=", "<", "<=", "in", "not in"]


@pytest.fixture(scope="module")
def store(
    tiny_colbert_path: Path, support_corpus: list[tuple[str, str, str, str]]
) -> LFMColBERTDocumentStore:
    rng = random.Random(7)
    s = LFMColBERTDocumentStore(model=tiny_colbert_path)
    docs = []
    for i, (key, text, category, lang) in enumerate(support_corpus):
        meta: dict[str, Any] = {"category": category, "lang": lang, "n": i}
        if rng.random() < 0.7:
            meta["price"] = rng.choice([1, 2.5, 4, 10])
        docs.append(Document(id=f"t-{key}", content=text, meta=meta))
    s.write_documents(docs)
    return s


def _random(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    if depth < 2 and rng.random() < 0.4:
        op = rng.choice(["AND", "OR", "NOT"])
        return {"operator": op, "conditions": [_random(rng, depth + 1) for _ in range(2)]}
    field = rng.choice(["meta.category", "meta.lang", "meta.n", "meta.price", "meta.missing"])
    strings = field in ("meta.category", "meta.lang")
    op = rng.choice(["==", "!=", "in", "not in"] if strings else OPS)
    pool: list[Any] = ["returns", "shipping", "en", "de", None] if strings else [0, 2, 2.5, 4, 7]
    value = rng.sample(pool, 2) if op in ("in", "not in") else rng.choice(pool)
    return {"field": field, "operator": op, "value": value}


def test_search_with_translated_filters_matches_haystacks_reference_matcher(
    store: LFMColBERTDocumentStore,
) -> None:
    rng = random.Random(0)
    n = store.count_documents()
    for _ in range(60):
        flt = _random(rng)
        assert to_core_filter(flt) is not None, flt
        want = {d.id for d in store.filter_documents(flt)}
        got = {d.id for d in store.search("where is my order?", top_k=n, filters=flt)}
        assert got == want, flt


def test_translation_maps_each_operator_and_negates_the_and_of_not() -> None:
    flt = {
        "operator": "NOT",
        "conditions": [
            {"field": "meta.lang", "operator": "in", "value": ["en", "de"]},
            {"field": "meta.n", "operator": ">=", "value": 3},
        ],
    }
    assert to_core_filter(flt) == {
        "$not": {"$and": [{"lang": {"$in": ["en", "de"]}}, {"n": {"$gte": 3}}]}
    }


@pytest.mark.parametrize(
    "flt",
    [
        {"field": "content", "operator": "==", "value": "x"},
        {"field": "id", "operator": "in", "value": ["a"]},
        {"field": "meta.a.b", "operator": "==", "value": 1},
        {"field": "meta.date", "operator": ">", "value": "2024-01-01"},
        {"field": "meta.date", "operator": "==", "value": "2024-01-01T10:00:00"},
        {"field": "meta.flag", "operator": "==", "value": True},
    ],
)
def test_filters_whose_meaning_could_differ_are_not_translated(flt: dict[str, Any]) -> None:
    assert to_core_filter(flt) is None


def test_untranslated_filters_still_work_through_the_reference_matcher(
    store: LFMColBERTDocumentStore,
) -> None:
    flt = {"field": "id", "operator": "in", "value": ["t-ret", "t-de"]}
    got = {d.id for d in store.search("return", top_k=10, filters=flt)}
    assert got == {"t-ret", "t-de"}
