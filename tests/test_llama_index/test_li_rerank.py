"""LFMColBERTRerank: the LlamaIndex BaseNodePostprocessor contract with true ColBERT MaxSim."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.postprocessor.lfm_rerank import LFMColBERTRerank

from lfm_retrievers import ColBERTEncoder, get_encoder, load

QUERY = "how do I send back an order?"


@pytest.fixture(scope="module")
def oracle(tiny_colbert_path: Path) -> ColBERTEncoder:
    enc = load(tiny_colbert_path)
    assert isinstance(enc, ColBERTEncoder)
    return enc


def maxsim(enc: ColBERTEncoder, query: str, texts: list[str]) -> np.ndarray:
    """Summed MaxSim written out by hand over the core's projected, marked token vectors."""
    q = enc.encode_queries([query])[0]
    return np.array([(q @ d.T).max(axis=1).sum() for d in enc.encode_documents(texts)])


def scored(nodes: list[TextNode], scores: list[float | None] | None = None) -> list[NodeWithScore]:
    scores = scores or [None] * len(nodes)
    return [NodeWithScore(node=n, score=s) for n, s in zip(nodes, scores, strict=True)]


@pytest.fixture
def rerank(tiny_colbert_path: Path) -> LFMColBERTRerank:
    return LFMColBERTRerank(model=str(tiny_colbert_path), top_n=3)


def test_is_a_node_postprocessor_with_its_own_class_name() -> None:
    assert BaseNodePostprocessor in LFMColBERTRerank.__mro__
    assert LFMColBERTRerank.class_name() == "LFMColBERTRerank"
    r = LFMColBERTRerank()
    assert r.to_dict()["class_name"] == "LFMColBERTRerank"
    assert (r.model, r.top_n, r.score, r.keep_retrieval_score) == (
        "LiquidAI/LFM2.5-ColBERT-350M",
        5,
        "raw",
        False,
    )


def test_config_round_trips_through_to_dict(tiny_colbert_path: Path) -> None:
    r = LFMColBERTRerank(
        model=tiny_colbert_path,  # type: ignore[arg-type]  # a Path is accepted at run time
        top_n=4,
        score="mean",
        keep_retrieval_score=True,
    )
    back = LFMColBERTRerank.from_dict(r.to_dict())
    assert back.to_dict() == r.to_dict()
    assert (back.model, back.top_n, back.score) == (str(tiny_colbert_path), 4, "mean")


def test_constructor_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        msg = "weights loaded in the constructor"
        raise AssertionError(msg)

    monkeypatch.setattr("llama_index.postprocessor.lfm_rerank.base.get_colbert_encoder", boom)
    LFMColBERTRerank(model="/no/such/folder", top_n=2, device="cpu")


def test_order_and_scores_equal_core_maxsim(
    rerank: LFMColBERTRerank, oracle: ColBERTEncoder, nodes: list[TextNode]
) -> None:
    out = rerank.postprocess_nodes(scored(nodes), query_str=QUERY)
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    expected = maxsim(oracle, QUERY, texts)
    order = np.argsort(-expected, kind="stable")[:3]
    assert [o.node.node_id for o in out] == [nodes[i].node_id for i in order]
    np.testing.assert_allclose(
        [o.get_score(True) for o in out], expected[order], rtol=1e-4, atol=1e-4
    )


def test_mean_score_divides_by_query_vectors(
    tiny_colbert_path: Path, oracle: ColBERTEncoder, nodes: list[TextNode]
) -> None:
    raw = LFMColBERTRerank(model=str(tiny_colbert_path), top_n=len(nodes))
    mean = LFMColBERTRerank(model=str(tiny_colbert_path), top_n=len(nodes), score="mean")
    a = raw.postprocess_nodes(scored(nodes), query_str=QUERY)
    b = mean.postprocess_nodes(scored(nodes), query_str=QUERY)
    n_query = oracle.encode_queries([QUERY])[0].shape[0]
    assert [x.node.node_id for x in a] == [x.node.node_id for x in b]
    np.testing.assert_allclose(
        [x.get_score(True) / n_query for x in a], [x.get_score(True) for x in b], rtol=1e-5
    )
    assert all(-1.0 <= x.get_score(True) <= 1.0 for x in b)


def test_shares_the_encoder(rerank: LFMColBERTRerank, tiny_colbert_path: Path) -> None:
    assert rerank.encoder is get_encoder(tiny_colbert_path)


def test_none_scores_are_kept_and_inputs_untouched(
    rerank: LFMColBERTRerank, nodes: list[TextNode]
) -> None:
    rerank.top_n = len(nodes)
    rerank.keep_retrieval_score = True
    before = [n.model_dump() for n in nodes]
    inputs = scored(nodes, [None, 0.0, None, 1.5, None, 0.0, None, -2.0])
    out = rerank.postprocess_nodes(inputs, query_str=QUERY)
    assert sorted(o.node.node_id for o in out) == sorted(n.node_id for n in nodes)
    assert [o.get_score(True) for o in out] == sorted(
        (o.get_score(True) for o in out), reverse=True
    )
    original = {i.node.node_id: i.score for i in inputs}
    for o in out:
        assert o.node.metadata["retrieval_score"] == original[o.node.node_id]
        assert "retrieval_score" not in o.node.get_content(metadata_mode=MetadataMode.EMBED)
    assert [n.model_dump() for n in nodes] == before
    assert [i.score for i in inputs] == [None, 0.0, None, 1.5, None, 0.0, None, -2.0]


def test_retrieval_score_not_kept_by_default(
    rerank: LFMColBERTRerank, nodes: list[TextNode]
) -> None:
    out = rerank.postprocess_nodes(scored(nodes, [1.0] * len(nodes)), query_str=QUERY)
    assert all("retrieval_score" not in o.node.metadata for o in out)


class _Collect(BaseEventHandler):
    events: list[Any] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "_Collect"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


def test_emits_instrumentation_and_callback_events(
    tiny_colbert_path: Path, nodes: list[TextNode]
) -> None:
    debug = LlamaDebugHandler()
    rerank = LFMColBERTRerank(
        model=str(tiny_colbert_path), top_n=2, callback_manager=CallbackManager([debug])
    )
    handler = _Collect()
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        out = rerank.postprocess_nodes(scored(nodes), query_str=QUERY)
    finally:
        root.event_handlers.remove(handler)
    starts = [e for e in handler.events if isinstance(e, ReRankStartEvent)]
    ends = [e for e in handler.events if isinstance(e, ReRankEndEvent)]
    assert len(starts) == 1 and len(ends) == 1
    assert starts[0].top_n == 2 and starts[0].model_name == str(tiny_colbert_path)
    assert len(starts[0].nodes) == len(nodes)
    assert [n.node.node_id for n in ends[0].nodes] == [n.node.node_id for n in out]
    pairs = debug.get_event_pairs(CBEventType.RERANKING)
    assert len(pairs) == 1
    assert pairs[0][0].payload is not None and pairs[0][0].payload["query_str"] == QUERY
    assert pairs[0][1].payload is not None
    assert [n.node.node_id for n in pairs[0][1].payload["nodes"]] == [n.node.node_id for n in out]


def test_nodes_without_text_are_skipped_with_a_warning(
    rerank: LFMColBERTRerank, nodes: list[TextNode], caplog: pytest.LogCaptureFixture
) -> None:
    rerank.top_n = 20
    empty = [TextNode(id_="blank-1", text="   "), TextNode(id_="blank-2", text="")]
    with caplog.at_level(logging.WARNING):
        out = rerank.postprocess_nodes(scored([*nodes[:2], *empty]), query_str=QUERY)
    assert {o.node.node_id for o in out} == {nodes[0].node_id, nodes[1].node_id}
    assert "blank-1" in caplog.text and "blank-2" in caplog.text
    assert rerank.postprocess_nodes(scored(empty), query_str=QUERY) == []


def test_bad_input(
    rerank: LFMColBERTRerank, nodes: list[TextNode], tiny_embedding_path: Path
) -> None:
    with pytest.raises(ValueError, match="query"):
        rerank.postprocess_nodes(scored(nodes))
    assert rerank.postprocess_nodes([], query_str=QUERY) == []
    for bad in (0, -1):
        with pytest.raises(ValueError, match="top_n"):
            LFMColBERTRerank(top_n=bad)
    rerank.top_n = 0
    with pytest.raises(ValueError, match="top_n"):
        rerank.postprocess_nodes(scored(nodes), query_str=QUERY)
    with pytest.raises(ValueError):
        LFMColBERTRerank(score="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="colbert"):
        LFMColBERTRerank(model=str(tiny_embedding_path)).postprocess_nodes(
            scored(nodes), query_str=QUERY
        )


async def test_async_matches_sync(rerank: LFMColBERTRerank, nodes: list[TextNode]) -> None:
    bundle = QueryBundle(QUERY)
    sync = rerank.postprocess_nodes(scored(nodes), bundle)
    out = await rerank.apostprocess_nodes(scored(nodes), bundle)
    assert [(o.node.node_id, o.score) for o in out] == [(s.node.node_id, s.score) for s in sync]
    with pytest.raises(ValueError, match="query"):
        await rerank.apostprocess_nodes(scored(nodes))
