"""Issue 14 on the LlamaIndex retriever: ghost nodes, checked persist folders, texts once."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from llama_index.core.schema import TextNode
from llama_index.retrievers.lfm import LFMColBERTRetriever

from lfm_retrievers.errors import IndexFormatError

QUERY = "how do I return an item?"


def _fail_on(retriever: LFMColBERTRetriever, bad_text: str, monkeypatch) -> None:
    """Make encoding fail for a batch holding ``bad_text`` (as a broken string would)."""
    encoder = retriever.encoder
    original = encoder.encode_documents

    def encode(texts, **kwargs):
        if any(bad_text in t for t in texts):
            msg = "simulated tokenizer failure"
            raise RuntimeError(msg)
        return original(texts, **kwargs)

    monkeypatch.setattr(encoder, "encode_documents", encode)


def test_a_node_that_fails_to_encode_leaves_no_ghost(
    tiny_colbert_path: Path, nodes: list[TextNode], tmp_path: Path, monkeypatch
) -> None:
    """Issue 14 item 3: the node was registered before it was encoded."""
    retriever = LFMColBERTRetriever(nodes, model=tiny_colbert_path, similarity_top_k=100)
    before = [(h.node.node_id, h.score) for h in retriever.retrieve(QUERY)]
    _fail_on(retriever, "BROKEN", monkeypatch)
    bad = TextNode(id_="ghost", text="BROKEN text")
    with pytest.raises(RuntimeError, match="simulated"):
        retriever.add_nodes([bad])
    assert "ghost" not in retriever.node_ids and len(retriever) == len(nodes)
    assert [(h.node.node_id, h.score) for h in retriever.retrieve(QUERY)] == before
    retriever.persist(tmp_path / "store")
    assert "ghost" not in LFMColBERTRetriever.from_persist_dir(tmp_path / "store").node_ids
    monkeypatch.undo()
    assert retriever.add_nodes([bad]) == ["ghost"]  # it can be added once it encodes


def test_a_failing_first_batch_is_not_silently_dropped(
    tiny_colbert_path: Path, nodes: list[TextNode], monkeypatch
) -> None:
    """Issue 14 item 3: a bad node in the first batch made the whole batch vanish."""
    bad = TextNode(id_="bad", text="BROKEN text")
    retriever = LFMColBERTRetriever([*nodes, bad], model=tiny_colbert_path, similarity_top_k=100)
    _fail_on(retriever, "BROKEN", monkeypatch)
    for _ in range(2):  # the failure is reported every time, never an empty result
        with pytest.raises(RuntimeError, match="simulated"):
            retriever.retrieve(QUERY)
    retriever.delete_nodes(["bad"])  # the bad node can be removed ...
    found = {h.node.node_id for h in retriever.retrieve(QUERY)}
    assert found == {n.node_id for n in nodes}  # ... and the batch is all there


def test_persist_stores_each_text_once_and_checks_every_file(
    tiny_colbert_path: Path, nodes: list[TextNode], tmp_path: Path
) -> None:
    """Issue 10 / 14 item 4: texts were stored twice and nodes.json had no checksum."""
    store = tmp_path / "store"
    retriever = LFMColBERTRetriever(nodes, model=tiny_colbert_path)
    retriever.persist(store)
    everything = b"".join(p.read_bytes() for p in store.rglob("*") if p.is_file())
    for node in nodes:
        needle = json.dumps(node.text, ensure_ascii=False)[1:-1].encode()
        assert everything.count(needle) == 1, node.node_id
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and "nodes.json" in manifest["files"]

    rng = random.Random(0)
    for file in sorted(p for p in store.rglob("*") if p.is_file() and p.name != "manifest.json"):
        original = file.read_bytes()
        data = bytearray(original)
        data[rng.randrange(len(data))] ^= 0x04
        file.write_bytes(bytes(data))
        with pytest.raises(IndexFormatError, match=file.name.replace(".", r"\.")):
            LFMColBERTRetriever.from_persist_dir(store).retrieve(QUERY)
        file.write_bytes(original)
    back = LFMColBERTRetriever.from_persist_dir(store)
    assert [h.node.node_id for h in back.retrieve(QUERY)] == [
        h.node.node_id for h in retriever.retrieve(QUERY)
    ]


def test_an_old_or_zero_format_version_is_refused(
    tiny_colbert_path: Path, nodes: list[TextNode], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    LFMColBERTRetriever(nodes, model=tiny_colbert_path).persist(store)
    manifest = json.loads((store / "manifest.json").read_text())
    for version in (0, 3, "2", None):
        (store / "manifest.json").write_text(json.dumps({**manifest, "format_version": version}))
        with pytest.raises(IndexFormatError, match="format"):
            LFMColBERTRetriever.from_persist_dir(store)
