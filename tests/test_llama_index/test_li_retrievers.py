"""LFMColBERTRetriever and LFMBM25ColBERTRetriever: BaseRetriever contract, filters, persistence."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import MetadataMode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.retrievers.lfm import LFMBM25ColBERTRetriever, LFMColBERTRetriever

from lfm_retrievers import ColBERTEncoder, get_encoder, load
from lfm_retrievers.indexes.bm25 import BM25Index

QUERY = "how do I return my order within 30 days?"


@pytest.fixture(scope="module")
def oracle(tiny_colbert_path: Path) -> ColBERTEncoder:
    enc = load(tiny_colbert_path)
    assert isinstance(enc, ColBERTEncoder)
    return enc


def maxsim(enc: ColBERTEncoder, query: str, texts: list[str]) -> np.ndarray:
    """Summed MaxSim written out by hand over the core's token vectors."""
    q = enc.encode_queries([query])[0]
    return np.array([(q @ d.T).max(axis=1).sum() for d in enc.encode_documents(texts)])


def expected_ranking(
    enc: ColBERTEncoder, nodes: list[TextNode], query: str, k: int
) -> tuple[list[str], np.ndarray]:
    scores = maxsim(enc, query, [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes])
    order = np.argsort(-scores, kind="stable")[:k]
    return [nodes[i].node_id for i in order], scores[order]


def ids(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.node.node_id for h in hits]


def boom(*args: object, **kwargs: object) -> None:
    msg = "weights loaded in a constructor"
    raise AssertionError(msg)


# --------------------------------------------------------------------------- LFMColBERTRetriever


@pytest.fixture
def retriever(tiny_colbert_path: Path, nodes: list[TextNode]) -> LFMColBERTRetriever:
    return LFMColBERTRetriever(nodes, model=tiny_colbert_path, similarity_top_k=3)


def test_colbert_retriever_is_a_base_retriever(
    nodes: list[TextNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert BaseRetriever in LFMColBERTRetriever.__mro__
    assert LFMColBERTRetriever.class_name() == "LFMColBERTRetriever"
    monkeypatch.setattr("llama_index.retrievers.lfm.base.get_colbert_encoder", boom)
    r = LFMColBERTRetriever(nodes, model="/no/such/folder")
    assert (r.model, r.similarity_top_k, len(r)) == ("/no/such/folder", 10, len(nodes))


def test_colbert_retriever_ranks_by_core_maxsim(
    retriever: LFMColBERTRetriever, oracle: ColBERTEncoder, nodes: list[TextNode]
) -> None:
    hits = retriever.retrieve(QUERY)
    want_ids, want_scores = expected_ranking(oracle, nodes, QUERY, 3)
    assert ids(hits) == want_ids
    np.testing.assert_allclose([h.get_score(True) for h in hits], want_scores, rtol=2e-3, atol=2e-3)
    assert retriever.encoder is get_encoder(retriever.model)


def test_colbert_retriever_returns_copies(
    retriever: LFMColBERTRetriever, nodes: list[TextNode]
) -> None:
    first = retriever.retrieve(QUERY)
    first[0].node.metadata["category"] = "tampered"
    again = retriever.retrieve(QUERY)
    assert again[0].node.metadata["category"] != "tampered"
    nodes[0].metadata["category"] = "changed-by-caller"
    assert all(
        h.node.metadata["category"] != "changed-by-caller" for h in retriever.retrieve(QUERY)
    )


def test_similarity_top_k(retriever: LFMColBERTRetriever, nodes: list[TextNode]) -> None:
    retriever.similarity_top_k = 1
    assert len(retriever.retrieve(QUERY)) == 1
    retriever.similarity_top_k = 100
    assert len(retriever.retrieve(QUERY)) == len(nodes)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="similarity_top_k"):
            retriever.similarity_top_k = bad
        with pytest.raises(ValueError, match="similarity_top_k"):
            LFMColBERTRetriever(nodes, similarity_top_k=bad)


@pytest.mark.parametrize(
    ("filters", "allowed"),
    [
        (
            MetadataFilters(filters=[MetadataFilter(key="category", value="returns")]),
            {"n-ret", "n-de"},
        ),
        (
            MetadataFilters(
                filters=[
                    MetadataFilter(key="category", value="shipping"),
                    MetadataFilter(key="lang", value="en"),
                ]
            ),
            {"n-ship"},
        ),
        (
            MetadataFilters(
                filters=[
                    MetadataFilter(key="lang", value="fr"),
                    MetadataFilter(key="lang", value="ja"),
                ],
                condition=FilterCondition.OR,
            ),
            {"n-fr", "n-ja"},
        ),
        (
            MetadataFilters(
                filters=[MetadataFilter(key="lang", value=["de", "es"], operator=FilterOperator.IN)]
            ),
            {"n-de", "n-es"},
        ),
        (
            MetadataFilters(
                filters=[MetadataFilter(key="year", value=2025, operator=FilterOperator.GTE)]
            ),
            {"n-es", "n-ja", "n-pay"},
        ),
        (
            MetadataFilters(
                filters=[
                    MetadataFilter(key="lang", value="en"),
                    MetadataFilters(
                        filters=[MetadataFilter(key="category", value="account")],
                        condition=FilterCondition.NOT,
                    ),
                ]
            ),
            {"n-ret", "n-ship", "n-pay"},
        ),
    ],
)
def test_metadata_filters(
    tiny_colbert_path: Path,
    oracle: ColBERTEncoder,
    nodes: list[TextNode],
    filters: MetadataFilters,
    allowed: set[str],
) -> None:
    r = LFMColBERTRetriever(nodes, model=tiny_colbert_path, similarity_top_k=10, filters=filters)
    hits = r.retrieve(QUERY)
    assert set(ids(hits)) == allowed
    subset = [n for n in nodes if n.node_id in allowed]
    assert ids(hits) == expected_ranking(oracle, subset, QUERY, 10)[0]


def test_filters_that_match_nothing_and_unsupported_ones(
    retriever: LFMColBERTRetriever,
) -> None:
    retriever.filters = MetadataFilters(filters=[MetadataFilter(key="lang", value="xx")])
    assert retriever.retrieve(QUERY) == []
    retriever.filters = None
    assert len(retriever.retrieve(QUERY)) == 3
    unknown = MetadataFilter.model_construct(key="lang", value="en", operator="regex")
    with pytest.raises(ValueError, match="not supported"):
        retriever.filters = MetadataFilters.model_construct(filters=[unknown], condition="and")
    with pytest.raises(TypeError, match="MetadataFilters"):
        retriever.filters = {"lang": "en"}  # type: ignore[assignment]


def test_persist_and_reload_give_identical_results(
    tiny_colbert_path: Path, nodes: list[TextNode], tmp_path: Path
) -> None:
    nodes[0].relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id="doc-1")
    filters = MetadataFilters(
        filters=[MetadataFilter(key="category", value="account", operator=FilterOperator.NE)]
    )
    r = LFMColBERTRetriever(nodes, model=tiny_colbert_path, similarity_top_k=4, filters=filters)
    store = tmp_path / "store"
    r.persist(store)
    assert json.loads((store / "manifest.json").read_text())["similarity_top_k"] == 4
    back = LFMColBERTRetriever.from_persist_dir(store)
    assert (back.similarity_top_k, back.filters, back.node_ids) == (4, filters, r.node_ids)
    for query in (QUERY, "password", "livraison colis"):
        a, b = r.retrieve(query), back.retrieve(query)
        assert ids(a) == ids(b)
        np.testing.assert_allclose(
            [h.get_score(True) for h in a], [h.get_score(True) for h in b], rtol=1e-6
        )
        assert [h.node.model_dump() for h in a] == [h.node.model_dump() for h in b]
    everything = LFMColBERTRetriever.from_persist_dir(store, similarity_top_k=100)
    restored = {h.node.node_id: h.node for h in everything.retrieve(QUERY)}
    assert restored["n-ret"].source_node is not None
    assert restored["n-ret"].source_node.node_id == "doc-1"
    # A second persist into the same folder replaces it.
    back.delete_nodes(["n-pay"])
    back.persist(store)
    again = LFMColBERTRetriever.from_persist_dir(store, filters=None)
    assert "n-pay" not in again.node_ids and len(again) == len(nodes) - 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp folders left behind"


def test_persist_refuses_a_foreign_folder_and_reload_checks_it(
    retriever: LFMColBERTRetriever, tmp_path: Path
) -> None:
    (tmp_path / "mine.txt").write_text("not an index")
    with pytest.raises(ValueError, match="refusing"):
        retriever.persist(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "not an index"
    with pytest.raises(FileNotFoundError):
        LFMColBERTRetriever.from_persist_dir(tmp_path / "nothing-here")


def test_incremental_add_and_delete(
    retriever: LFMColBERTRetriever, nodes: list[TextNode], oracle: ColBERTEncoder
) -> None:
    retriever.similarity_top_k = 100
    assert len(retriever.retrieve(QUERY)) == len(nodes)
    extra = TextNode(id_="n-new", text="Returns are free: print the label from your order page.")
    assert retriever.add_nodes([extra]) == ["n-new"]
    retriever.delete_nodes(["n-ret", "n-pwd"])
    hits = retriever.retrieve(QUERY)
    current = [n for n in nodes if n.node_id not in {"n-ret", "n-pwd"}] + [extra]
    assert sorted(ids(hits)) == sorted(n.node_id for n in current)
    assert ids(hits) == expected_ranking(oracle, current, QUERY, 100)[0]
    with pytest.raises(ValueError, match="unique"):
        retriever.add_nodes([extra])
    with pytest.raises(ValueError, match="unknown"):
        retriever.delete_nodes(["n-ret"])


def test_nodes_without_text_and_empty_corpus(
    tiny_colbert_path: Path, nodes: list[TextNode], caplog: pytest.LogCaptureFixture
) -> None:
    blank = [TextNode(id_="blank-a", text=""), TextNode(id_="blank-b", text="  \n")]
    with caplog.at_level(logging.WARNING):
        r = LFMColBERTRetriever([*nodes[:3], *blank], model=tiny_colbert_path)
    assert "blank-a" in caplog.text and "blank-b" in caplog.text
    assert set(ids(r.retrieve(QUERY))) == {n.node_id for n in nodes[:3]}
    assert LFMColBERTRetriever([], model=tiny_colbert_path).retrieve(QUERY) == []
    assert LFMColBERTRetriever(model=tiny_colbert_path).retrieve(QUERY) == []
    with pytest.raises(TypeError):
        LFMColBERTRetriever(["just a string"], model=tiny_colbert_path)  # type: ignore[list-item]


def test_colbert_retriever_bad_model_and_warm_up(
    tiny_embedding_path: Path, tiny_colbert_path: Path, nodes: list[TextNode]
) -> None:
    with pytest.raises(ValueError, match="colbert"):
        LFMColBERTRetriever(nodes, model=tiny_embedding_path).retrieve(QUERY)
    with pytest.raises(ValueError, match="score"):
        LFMColBERTRetriever(nodes, score="max")  # type: ignore[arg-type]
    r = LFMColBERTRetriever(nodes, model=tiny_colbert_path)
    r.warm_up()
    assert r._index is not None and len(r._index) == len(nodes)


async def test_colbert_retriever_mean_score(
    retriever: LFMColBERTRetriever, tiny_colbert_path: Path, nodes: list[TextNode]
) -> None:
    mean = LFMColBERTRetriever(nodes, model=tiny_colbert_path, similarity_top_k=3, score="mean")
    raw_hits, mean_hits = retriever.retrieve(QUERY), await mean.aretrieve(QUERY)
    assert ids(raw_hits) == ids(mean_hits)
    n_query = retriever.encoder.encode_queries([QUERY])[0].shape[0]
    np.testing.assert_allclose(
        [h.get_score(True) / n_query for h in raw_hits],
        [h.get_score(True) for h in mean_hits],
        rtol=1e-5,
    )


async def test_colbert_retriever_async(retriever: LFMColBERTRetriever) -> None:
    a = await retriever.aretrieve(QUERY)
    b = retriever.retrieve(QUERY)
    assert [(h.node.node_id, h.score) for h in a] == [(h.node.node_id, h.score) for h in b]


# -------------------------------------------------------------------------- LFMBM25ColBERTRetriever


def test_bm25_retriever_is_a_base_retriever(
    nodes: list[TextNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert BaseRetriever in LFMBM25ColBERTRetriever.__mro__
    assert LFMBM25ColBERTRetriever.class_name() == "LFMBM25ColBERTRetriever"
    monkeypatch.setattr("llama_index.retrievers.lfm.base.get_colbert_encoder", boom)
    r = LFMBM25ColBERTRetriever(nodes, model="/no/such/folder", candidates=7)
    assert (r.similarity_top_k, r.candidates) == (10, 7)


def test_bm25_retriever_reranks_bm25_candidates_by_maxsim(
    tiny_colbert_path: Path,
    oracle: ColBERTEncoder,
    nodes: list[TextNode],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("llama_index.retrievers.lfm.base.ColBERTIndex", boom)  # no index build
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    bm25 = {h.id: h for h in BM25Index(texts, ids=[n.node_id for n in nodes]).search(QUERY, k=3)}
    r = LFMBM25ColBERTRetriever(nodes, model=tiny_colbert_path, similarity_top_k=2, candidates=3)
    hits = r.retrieve(QUERY)
    assert len(hits) == 2 and set(ids(hits)) <= set(bm25)
    pool = [n for n in nodes if n.node_id in bm25]
    want_ids, want_scores = expected_ranking(oracle, pool, QUERY, 2)
    assert ids(hits) == want_ids
    np.testing.assert_allclose([h.get_score(True) for h in hits], want_scores, rtol=1e-4, atol=1e-4)
    for h in hits:
        meta = h.node.metadata
        assert meta["bm25_score"] == pytest.approx(bm25[h.node.node_id].score)
        assert meta["bm25_rank"] == bm25[h.node.node_id].rank
        assert meta["colbert_score"] == pytest.approx(h.score)
        embed_text = h.node.get_content(metadata_mode=MetadataMode.EMBED)
        assert "bm25_score" not in embed_text and "colbert_score" not in embed_text
    assert all("bm25_score" not in n.metadata for n in nodes)


def test_bm25_retriever_with_all_candidates_equals_full_maxsim(
    tiny_colbert_path: Path, oracle: ColBERTEncoder, nodes: list[TextNode]
) -> None:
    r = LFMBM25ColBERTRetriever(nodes, model=tiny_colbert_path, similarity_top_k=3, candidates=100)
    query = "order"  # a term of few nodes; the others have no BM25 overlap at all
    # a corpus no larger than `candidates` is ranked by ColBERT alone (zero-score fillers)
    assert ids(r.retrieve(query)) == expected_ranking(oracle, nodes, query, 3)[0]
    strict = LFMBM25ColBERTRetriever(
        nodes, model=tiny_colbert_path, similarity_top_k=3, require_match=True
    )
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    matching = {h.id for h in BM25Index(texts, ids=[n.node_id for n in nodes]).search(query, k=100)}
    pool = [n for n in nodes if n.node_id in matching]
    assert 1 <= len(pool) < 3
    assert ids(strict.retrieve(query)) == expected_ranking(oracle, pool, query, 3)[0]
    assert strict.retrieve("zzzz qqqq") == []
    assert len(r.retrieve("zzzz qqqq")) == 3  # k results always


def test_bm25_retriever_language_and_dense_model(
    tiny_colbert_path: Path, tiny_embedding_path: Path, nodes: list[TextNode]
) -> None:
    r = LFMBM25ColBERTRetriever(
        nodes,
        model=tiny_colbert_path,
        dense_model=tiny_embedding_path,
        dense_candidates=2,
        similarity_top_k=2,
        language="auto",
    )
    hits = r.retrieve("zzzz qqqq")  # no BM25 match: the dense top 2 are the candidates
    assert len(hits) == 2
    for h in hits:
        meta = h.node.metadata
        assert meta["bm25_score"] is None and meta["bm25_rank"] is None
        assert isinstance(meta["dense_score"], float) and meta["dense_rank"] in (1, 2)
        assert "dense_score" not in h.node.get_content(metadata_mode=MetadataMode.EMBED)
    with pytest.raises(ValueError, match="ISO 639-1"):
        LFMBM25ColBERTRetriever(nodes, language="klingon")
    with pytest.raises(TypeError, match="require_match"):
        LFMBM25ColBERTRetriever(nodes, require_match=1)  # type: ignore[arg-type]


def test_bm25_retriever_bad_input(
    tiny_colbert_path: Path, nodes: list[TextNode], caplog: pytest.LogCaptureFixture
) -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="similarity_top_k"):
            LFMBM25ColBERTRetriever(nodes, similarity_top_k=bad)
        with pytest.raises(ValueError, match="candidates"):
            LFMBM25ColBERTRetriever(nodes, candidates=bad)
    with pytest.raises(ValueError, match="fusion"):
        LFMBM25ColBERTRetriever(nodes, fusion="max")  # type: ignore[arg-type]
    assert LFMBM25ColBERTRetriever([], model=tiny_colbert_path).retrieve(QUERY) == []
    with caplog.at_level(logging.WARNING):
        r = LFMBM25ColBERTRetriever(
            [nodes[0], TextNode(id_="blank-x", text="")], model=tiny_colbert_path
        )
    assert "blank-x" in caplog.text
    assert ids(r.retrieve(QUERY)) == [nodes[0].node_id]


async def test_bm25_retriever_async(tiny_colbert_path: Path, nodes: list[TextNode]) -> None:
    r = LFMBM25ColBERTRetriever(nodes, model=tiny_colbert_path, similarity_top_k=3)
    a = await r.aretrieve(QUERY)
    b = r.retrieve(QUERY)
    assert [(h.node.node_id, h.score) for h in a] == [(h.node.node_id, h.score) for h in b]
