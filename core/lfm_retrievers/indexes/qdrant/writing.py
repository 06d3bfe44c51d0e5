"""Writing into a Qdrant collection: argument checks, batched upserts with retries, migration.

The functions here are the write path of :class:`~lfm_retrievers.QdrantIndex`; they take the
index as their first argument.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lfm_retrievers._validation import check_texts
from lfm_retrievers.indexes.qdrant import layout as lay
from lfm_retrievers.indexes.table import check_id, check_metadata

logger = logging.getLogger(__name__)

Document = tuple[str, str, dict[str, Any]]
VectorsOf = Callable[[list[Document]], list[tuple[Any, Any]]]


def check_documents(
    texts: Sequence[str],
    ids: Sequence[str] | None,
    metadata: Sequence[Mapping[str, Any] | None] | None,
) -> list[Document]:
    """``(id, text, metadata)`` triples, every argument checked.

    Documents get random hex ids when ``ids`` is None.
    """
    texts = check_texts(texts)
    for name, values in (("ids", ids), ("metadata", metadata)):
        if values is None:
            continue
        if isinstance(values, str | bytes | Mapping) or not isinstance(values, Sequence):
            msg = f"{name} must be a list with one entry per text, got {type(values).__name__}"
            raise TypeError(msg)
        if len(values) != len(texts):
            msg = f"got {len(texts)} texts but {len(values)} {name}"
            raise ValueError(msg)
    id_list = (
        [uuid.uuid4().hex for _ in texts]
        if ids is None
        else [check_id(v, i) for i, v in enumerate(ids)]
    )
    dup = sorted(i for i, c in Counter(id_list).items() if c > 1)
    if dup:
        msg = f"repeated ids in one call: {lay.show(dup)}"
        raise ValueError(msg)
    metas = [
        check_metadata(None if metadata is None else metadata[i], i) for i in range(len(texts))
    ]
    return list(zip(id_list, texts, metas, strict=True))


def check_shapes(arrays: Any, shape: tuple[int | None, ...], name: str, n: int) -> None:
    """``n`` arrays of ``shape`` (``None``: any positive length)."""
    if len(arrays) != n:
        msg = f"got {n} documents but {len(arrays)} {name}"
        raise ValueError(msg)
    for j, a in enumerate(arrays):
        s = np.shape(a)
        if (
            len(s) != len(shape)
            or not s[0]
            or any(w is not None and w != v for w, v in zip(shape, s, strict=True))
        ):
            want = ", ".join("n" if w is None else str(w) for w in shape)
            msg = f"{name}[{j}] must have shape ({want}), got {s}"
            raise ValueError(msg)


def fix_avgdl(index: Any, texts: Sequence[str]) -> None:
    """Fix the collection's BM25 ``avgdl`` from ``texts`` and record it, unless already set."""
    bm = index._open()[lay.BM25]
    if bm is None or bm["avgdl"] is not None:
        return
    info = index.client.get_collection(index.collection_name)
    stored = ((info.config.metadata or {}).get(lay.RECORD_KEY) or {}).get(lay.BM25) or {}
    if stored.get("avgdl") is not None:  # another client fixed it meanwhile
        bm["avgdl"] = stored["avgdl"]
        return
    bm["avgdl"] = max(1.0, float(np.mean([len(index._analyzer(t)) for t in texts])))
    index.client.update_collection(index.collection_name, metadata={lay.RECORD_KEY: index._open()})
    logger.info("BM25 avgdl of %r fixed at %.2f", index.collection_name, bm["avgdl"])


def upload(
    index: Any, docs: list[Document], vectors_of: VectorsOf, show_progress: bool | None, desc: str
) -> list[str]:
    """Upload ``docs`` in batches; returns the ids stored.

    ``vectors_of`` gives each batch's ColBERT and dense vectors. A batch that fails for good
    raises :class:`~.layout.QdrantWriteError`.
    """
    if not docs:
        return []
    m = lay.models()
    size = index.upload_batch_size
    fix_avgdl(index, [t for _, t, _ in docs[:size]])
    half = index.record["storage"] == "float16"
    with_bm25 = index.has_bm25
    stored: list[str] = []
    bar = tqdm(
        total=len(docs),
        desc=f"{desc} ({index.collection_name})",
        unit="doc",
        disable=show_progress is False,
        delay=0.0 if show_progress else 2.0,
    )
    with bar:
        for start in range(0, len(docs), size):
            chunk = docs[start : start + size]
            try:
                points = []
                for (doc_id, text, meta), (col, den) in zip(chunk, vectors_of(chunk), strict=True):
                    vec = np.asarray(col, dtype=np.float16 if half else np.float32)
                    vector: dict[str, Any] = {lay.COLBERT: vec.astype(np.float32).tolist()}
                    if den is not None:
                        vector[lay.DENSE] = np.asarray(den, dtype=np.float32).tolist()
                    if with_bm25:
                        w = index.bm25_weights(text)
                        vector[lay.BM25] = m.SparseVector(indices=list(w), values=list(w.values()))
                    payload = {lay.TEXT_FIELD: text, lay.METADATA_FIELD: meta, lay.ID_FIELD: doc_id}
                    points.append(
                        m.PointStruct(id=lay.point_id(doc_id), vector=vector, payload=payload)
                    )
                upsert_with_retries(index, points)
            except Exception as exc:
                if not stored and isinstance(exc, ValueError | TypeError):
                    raise  # bad input (e.g. a vector of the wrong width): nothing stored
                unstored = [d for d, _, _ in docs[start:]]
                msg = (
                    f"upload to Qdrant collection {index.collection_name!r} failed "
                    f"({type(exc).__name__}: {exc}); stored {len(stored)} documents "
                    f"{lay.show(stored)}, not stored {len(unstored)} {lay.show(unstored)}. "
                    "Adding them again is safe (point ids are deterministic)"
                )
                raise lay.QdrantWriteError(msg, stored, unstored) from exc
            stored.extend(d for d, _, _ in chunk)
            bar.update(len(chunk))
    return stored


def upsert_with_retries(index: Any, points: list[Any]) -> None:
    """One ``upsert(wait=True)``, retried with exponential backoff on transient errors."""
    for attempt in range(index.max_retries + 1):
        try:
            index.client.upsert(index.collection_name, points=points, wait=True)
            return
        except Exception as exc:
            if attempt == index.max_retries or not lay.is_transient(exc):
                raise
            delay = index.retry_backoff * 2**attempt
            logger.warning(
                "upsert of %d points to %r failed (%s); retry %d of %d in %.1f s",
                len(points),
                index.collection_name,
                exc,
                attempt + 1,
                index.max_retries,
                delay,
            )
            time.sleep(delay)


def copy_index(index: Any, source: Any, dense_index: Any, show_progress: bool | None) -> list[str]:
    """Upload a ``ColBERTIndex``'s stored vectors (see :meth:`QdrantIndex.add_index`)."""
    from lfm_retrievers.indexes.colbert import ColBERTIndex
    from lfm_retrievers.indexes.dense import DenseIndex

    if not isinstance(source, ColBERTIndex):
        msg = f"index must be a ColBERTIndex, got {type(source).__name__}"
        raise TypeError(msg)
    if dense_index is not None and not isinstance(dense_index, DenseIndex):
        msg = f"dense_index must be a DenseIndex or None, got {type(dense_index).__name__}"
        raise TypeError(msg)
    rec = index.record
    index._check_model(source.encoder, rec[lay.COLBERT], "ColBERT")
    if dense_index is not None:
        if rec[lay.DENSE] is None:
            msg = "dense_index given, but the collection has no dense vector"
            raise ValueError(msg)
        index._check_model(dense_index.encoder, rec[lay.DENSE], "dense")
        missing = [i for i in source.ids if i not in dense_index]
        if missing:
            msg = f"dense_index lacks documents of index: {lay.show(missing)}"
            raise ValueError(msg)
    docs = [(doc_id, *source.get(doc_id)) for doc_id in source.ids]
    dense_encoder = index.dense_encoder

    def stored(chunk: list[Document]) -> list[tuple[Any, Any]]:
        den: Any = [None] * len(chunk)
        if dense_index is not None:
            den = [dense_index.vectors(d)[0] for d, _, _ in chunk]
        elif dense_encoder is not None:
            den = dense_encoder.encode_documents([t for _, t, _ in chunk], show_progress=False)
        return [(source.vectors(d), den[j]) for j, (d, _, _) in enumerate(chunk)]

    return upload(index, docs, stored, show_progress, "copying")


def sync(
    index: Any,
    texts: Sequence[str],
    ids: Sequence[str],
    metadata: Sequence[Mapping[str, Any] | None] | None,
    show_progress: bool | None,
) -> tuple[int, int]:
    """Make the collection hold exactly this corpus; returns ``(uploaded, deleted)``.

    Documents whose id is new, or whose text or metadata changed, are encoded and uploaded;
    ids no longer in the corpus are deleted. Unchanged documents are not encoded again.
    """
    docs = check_documents(texts, ids, metadata)
    stored = {doc_id: (text, meta) for doc_id, text, meta in index.documents()}
    changed = [d for d in docs if stored.get(d[0]) != (d[1], d[2])]
    gone = sorted(set(stored) - {d[0] for d in docs})
    if changed:
        index.add(
            [t for _, t, _ in changed],
            ids=[i for i, _, _ in changed],
            metadata=[m for _, _, m in changed],
            show_progress=show_progress,
        )
    if gone:
        index.delete(gone)
    return len(changed), len(gone)
