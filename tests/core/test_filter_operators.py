"""The one metadata filter language (issue 14 item 6): LangChain's operator vocabulary.

Before the fix, ``{"n": {"$gt": 1}}``, ``{"lang": {"$in": [...]}}`` and ``{"$and": [...]}``
returned ``[]`` from every core index and the LangChain retriever. Each operator is checked
against a predicate written here by hand and, on random metadata, against Haystack's reference
matcher (``haystack.utils.filters.document_matches_filter``) for the operators both share.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lfm_retrievers import ColBERTIndex, DenseIndex, load
from lfm_retrievers.indexes.filters import (
    COMPARISON_OPERATORS,
    And,
    Condition,
    Not,
    Or,
    matches,
    parse_filter,
)

META: list[dict[str, Any]] = [
    {"n": 1, "lang": "en", "tags": ["a"]},
    {"n": 2, "lang": "de"},
    {"n": 3.5, "lang": "en", "flag": True},
    {"n": 4, "lang": "fr", "flag": False},
    {"lang": "ja"},
    {"n": "5", "lang": None},
]

#: (filter, the same condition as a plain Python predicate)
CASES: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({"lang": "en"}, lambda m: m.get("lang") == "en"),
    ({"lang": {"$eq": "en"}}, lambda m: m.get("lang") == "en"),
    ({"lang": {"$ne": "en"}}, lambda m: m.get("lang") != "en"),
    ({"n": {"$gt": 1}}, lambda m: type(m.get("n")) in (int, float) and m["n"] > 1),
    ({"n": {"$gte": 2}}, lambda m: type(m.get("n")) in (int, float) and m["n"] >= 2),
    ({"n": {"$lt": 3.5}}, lambda m: type(m.get("n")) in (int, float) and m["n"] < 3.5),
    ({"n": {"$lte": 3.5}}, lambda m: type(m.get("n")) in (int, float) and m["n"] <= 3.5),
    ({"n": {"$gt": 1, "$lt": 4}}, lambda m: type(m.get("n")) in (int, float) and 1 < m["n"] < 4),
    ({"lang": {"$in": ["en", "de"]}}, lambda m: m.get("lang") in ("en", "de")),
    ({"lang": {"$nin": ["en", "de"]}}, lambda m: m.get("lang") not in ("en", "de")),
    (
        {"$and": [{"lang": "en"}, {"n": {"$gt": 2}}]},
        lambda m: m.get("lang") == "en" and type(m.get("n")) in (int, float) and m["n"] > 2,
    ),
    ({"$or": [{"lang": "fr"}, {"n": 1}]}, lambda m: m.get("lang") == "fr" or m.get("n") == 1),
    ({"$not": {"lang": "en"}}, lambda m: m.get("lang") != "en"),
    ({"lang": "en", "n": 1}, lambda m: m.get("lang") == "en" and m.get("n") == 1),
    ({"flag": True}, lambda m: m.get("flag") is True),
    ({"n": 1.0}, lambda m: m.get("n") == 1 and not isinstance(m.get("n"), bool)),
    ({"tags": ("a",)}, lambda m: m.get("tags") == ["a"]),
    ({"lang": None}, lambda m: m.get("lang") is None),
    (
        {"lang": {"$gte": "e", "$lt": "f"}},
        lambda m: isinstance(m.get("lang"), str) and "e" <= m["lang"] < "f",
    ),
    ({}, lambda m: True),
]


@pytest.mark.parametrize(("flt", "predicate"), CASES, ids=[repr(c[0]) for c in CASES])
def test_matches_agrees_with_a_plain_predicate(
    flt: dict[str, Any], predicate: Callable[[dict[str, Any]], bool]
) -> None:
    tree = parse_filter(flt)
    assert [matches(tree, m) for m in META] == [predicate(m) for m in META]


def test_parse_gives_the_documented_tree() -> None:
    assert parse_filter({"$or": [{"a": 1}, {"$not": {"b": {"$in": [1, 2]}}}]}) == Or(
        (Condition("a", "$eq", 1), Not(Condition("b", "$in", [1, 2])))
    )
    assert parse_filter({"a": {"$gt": 1, "$lt": 3}}) == And(
        (Condition("a", "$gt", 1), Condition("a", "$lt", 3))
    )


@pytest.mark.parametrize(
    ("flt", "exc", "names"),
    [
        ({"n": {"$regex": "x"}}, ValueError, "$regex"),
        ({"n": {"$exists": True}}, ValueError, "$exists"),
        ({"$xor": [{"n": 1}]}, ValueError, "$xor"),
        ({"$and": {"n": 1}}, TypeError, "$and"),
        ({"$and": []}, ValueError, "$and"),
        ({"$or": ["n"]}, TypeError, "$or"),
        ({"$not": [{"n": 1}]}, TypeError, "$not"),
        ({"lang": {"$in": "en"}}, TypeError, "$in"),
        ({"lang": {"$nin": None}}, TypeError, "$nin"),
        ({"n": {"$gt": 1, "x": 2}}, ValueError, "$gt"),
        ({"n": {"$gt": float("nan")}}, ValueError, "nan"),
        ({1: "x"}, TypeError, "1"),
        ("lang", TypeError, "filter"),
    ],
)
def test_bad_filters_raise_naming_the_part(flt: Any, exc: type[Exception], names: str) -> None:
    with pytest.raises(exc) as info:
        parse_filter(flt)
    assert names.lower() in str(info.value).lower()


def test_every_comparison_operator_of_the_vocabulary_is_supported() -> None:
    assert set(COMPARISON_OPERATORS) == {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"}
    for op in COMPARISON_OPERATORS:
        value = [1] if op in ("$in", "$nin") else 1
        assert isinstance(parse_filter({"n": {op: value}}), Condition)


# ----------------------------------------------------------------------------- Haystack oracle

_HAYSTACK_OPS = {
    "$eq": "==",
    "$ne": "!=",
    "$gt": ">",
    "$gte": ">=",
    "$lt": "<",
    "$lte": "<=",
    "$in": "in",
    "$nin": "not in",
}


def _random_filter(rng: random.Random, depth: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """A random core filter and the same filter in Haystack syntax."""
    if depth < 2 and rng.random() < 0.4:
        kind = rng.choice(["$and", "$or", "$not"])
        subs = [_random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]
        if kind == "$not":
            core: dict[str, Any] = {"$not": {"$and": [s[0] for s in subs]}}
            return core, {"operator": "NOT", "conditions": [s[1] for s in subs]}
        return {kind: [s[0] for s in subs]}, {
            "operator": kind[1:].upper(),
            "conditions": [s[1] for s in subs],
        }
    key = rng.choice(["n", "m", "lang"])
    op = rng.choice(list(_HAYSTACK_OPS))
    if key == "lang":
        op = rng.choice(["$eq", "$ne", "$in", "$nin"])  # Haystack orders strings as dates
        pool: list[Any] = ["en", "de", "fr"]
    else:
        pool = [0, 1, 2, 2.5, 3]
    value = rng.sample(pool, 2) if op in ("$in", "$nin") else rng.choice(pool)
    return {key: {op: value}}, {
        "field": f"meta.{key}",
        "operator": _HAYSTACK_OPS[op],
        "value": value,
    }


def test_matches_agrees_with_haystacks_reference_matcher() -> None:
    haystack = pytest.importorskip("haystack")
    from haystack.utils.filters import document_matches_filter

    rng = random.Random(0)
    docs = []
    for _ in range(60):
        meta: dict[str, Any] = {}
        for key, pool in (
            ("n", [0, 1, 2, 2.5, 3, None]),
            ("m", [1, 2, 3]),
            ("lang", ["en", "de", "fr", None]),
        ):
            if rng.random() < 0.8:
                meta[key] = rng.choice(pool)
        docs.append(meta)
    compared = 0
    for _ in range(300):
        core, hay = _random_filter(rng)
        tree = parse_filter(core)
        for meta in docs:
            want = document_matches_filter(hay, haystack.Document(content="x", meta=meta))
            assert matches(tree, meta) == want, (core, meta)
            compared += 1
    assert compared == 300 * 60


# ----------------------------------------------------------------------------- indexes


@pytest.fixture(scope="module")
def indexes(tiny_colbert_path: Path, tiny_embedding_path: Path) -> list[Any]:
    texts = [f"document number {i} about planets" for i in range(len(META))]
    ids = [f"d{i}" for i in range(len(META))]
    out = []
    for cls, path in ((ColBERTIndex, tiny_colbert_path), (DenseIndex, tiny_embedding_path)):
        index = cls(load(path))
        index.add(texts, ids=ids, metadata=META)
        out.append(index)
    return out


@pytest.mark.parametrize(("flt", "predicate"), CASES, ids=[repr(c[0]) for c in CASES])
def test_index_search_applies_operator_filters(
    indexes: list[Any], flt: dict[str, Any], predicate: Callable[[dict[str, Any]], bool]
) -> None:
    want = {f"d{i}" for i, m in enumerate(META) if predicate(m)}
    for index in indexes:
        hits = index.search("planets", k=len(META), filter={"metadata": flt})
        assert {h.id for h in hits} == want
        assert all(predicate(h.metadata) for h in hits)


def test_index_search_rejects_an_unknown_operator_instead_of_returning_nothing(
    indexes: list[Any],
) -> None:
    for index in indexes:
        with pytest.raises(ValueError, match=r"\$regex"):
            index.search("planets", filter={"metadata": {"lang": {"$regex": "e.*"}}})
