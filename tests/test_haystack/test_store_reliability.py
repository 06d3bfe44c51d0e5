"""Issue 14 on the Haystack store: failed overwrites, crashes, autosave cost, two writers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from haystack import Document
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.document_stores.lfm import LFMColBERTDocumentStore

from lfm_retrievers.errors import ConcurrentWriteError


def _contents(store: LFMColBERTDocumentStore) -> dict[str, tuple[str | None, dict]]:
    return {d.id: (d.content, d.meta) for d in store.filter_documents()}


def test_a_failed_overwrite_keeps_the_old_document_in_memory_and_on_disk(
    tiny_colbert_path: Path, tmp_path: Path, documents: list[Document], monkeypatch
) -> None:
    """Issue 14 item 1: the old version was deleted before the new one was encoded."""
    path = tmp_path / "store"
    store = LFMColBERTDocumentStore(path, model=tiny_colbert_path)
    store.write_documents(documents)
    before = _contents(store)
    target = documents[0].id

    def out_of_memory(texts, **kwargs):
        msg = "simulated: out of memory while encoding"
        raise MemoryError(msg)

    monkeypatch.setattr(store.index.encoder, "encode_documents", out_of_memory)
    new = Document(id=target, content="A brand new answer.", meta={"v": 2})
    with pytest.raises(MemoryError):
        store.write_documents([new], policy=DuplicatePolicy.OVERWRITE)
    monkeypatch.undo()
    assert _contents(store) == before
    assert _contents(LFMColBERTDocumentStore(path, model=tiny_colbert_path)) == before
    store.write_documents([new], policy=DuplicatePolicy.OVERWRITE)  # the next write works
    assert _contents(store)[target] == ("A brand new answer.", {"v": 2})
    assert store.count_documents() == len(documents)


def test_a_crash_between_the_renames_reopens_the_index_not_an_empty_store(
    tiny_colbert_path: Path, tmp_path: Path, documents: list[Document]
) -> None:
    """Issue 14 item 2: the store reopened empty and overwrote the path on its next write."""
    path = tmp_path / "store"
    LFMColBERTDocumentStore(path, model=tiny_colbert_path).write_documents(documents)
    os.replace(path, tmp_path / ".store.old-0c0ffee0")  # the state the crash left
    reopened = LFMColBERTDocumentStore(path, model=tiny_colbert_path)
    assert reopened.count_documents() == len(documents)
    reopened.write_documents([Document(id="new", content="One more answer.")])
    assert (
        LFMColBERTDocumentStore(path, model=tiny_colbert_path).count_documents()
        == len(documents) + 1
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_autosave_writes_about_what_changed(tiny_colbert_path: Path, tmp_path: Path) -> None:
    """Issue 14 item 14: 2,000 single writes wrote 4.09 GB for a 4.09 MB index."""
    path = tmp_path / "store"
    store = LFMColBERTDocumentStore(path, model=tiny_colbert_path)
    written = 0
    seen: set[tuple[int, int]] = set()
    n_writes = 30
    for i in range(n_writes):
        store.write_documents([Document(id=f"d{i}", content=f"answer number {i} about returns")])
        for p in path.iterdir():
            st = p.stat()
            if p.name != "manifest.json" and (st.st_ino, st.st_mtime_ns) not in seen:
                seen.add((st.st_ino, st.st_mtime_ns))
                written += st.st_size
    size = sum(p.stat().st_size for p in path.iterdir() if p.name != "manifest.json")
    # Rewriting the whole index on each write costs about n_writes / 2 times its size.
    assert written < 4 * size < n_writes / 2 * size
    assert LFMColBERTDocumentStore(path, model=tiny_colbert_path).count_documents() == n_writes


def test_two_stores_writing_one_folder_the_second_is_refused(
    tiny_colbert_path: Path, tmp_path: Path, documents: list[Document]
) -> None:
    """Issue 14 item 13: the second writer's save silently discarded the first's."""
    path = tmp_path / "store"
    first = LFMColBERTDocumentStore(path, model=tiny_colbert_path)
    second = LFMColBERTDocumentStore(path, model=tiny_colbert_path)
    assert first.count_documents() == second.count_documents() == 0
    first.write_documents(documents[:2])
    with pytest.raises(ConcurrentWriteError, match="another writer"):
        second.write_documents(documents[2:4])
    assert {
        d.id for d in LFMColBERTDocumentStore(path, model=tiny_colbert_path).filter_documents()
    } == {d.id for d in documents[:2]}
