"""Keep a saved :class:`ColBERTIndex` in step with a corpus that changes between runs.

:func:`sync_index` opens the index saved in a folder (or builds it there on the first run),
removes documents that left the corpus or whose text changed, adds the new ones, and saves the
folder again only when something changed. Only changed documents are encoded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfm_retrievers.models.registry import EncoderSpec

from .colbert import ColBERTIndex

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult:
    """What :func:`sync_index` did.

    Attributes:
        index: The up-to-date index.
        built: True when the folder held no index and one was built from the corpus.
        added: Documents added (new ids, or changed texts).
        removed: Documents removed (gone from the corpus, or changed texts).
    """

    index: ColBERTIndex
    built: bool
    added: int
    removed: int


def sync_index(
    directory: str | os.PathLike[str],
    texts: Sequence[str],
    ids: Sequence[str],
    metadata: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    model: Any = None,
    show_progress: bool | None = None,
) -> SyncResult:
    """Open, build or update the ColBERT index in ``directory`` so it holds exactly this corpus.

    Args:
        directory: The index folder (created on the first run).
        texts: The corpus texts.
        ids: One id per text; a document is identified by its id and compared by its text.
        metadata: One metadata dict (or None) per text, stored with new documents.
        model: The encoder, an ``EncoderSpec``, or a model name or path; ``None`` uses the
            model the saved index was built with (and is required to build a new index).
        show_progress: Progress bar while encoding (``None``: only for long builds).

    Returns:
        The index and what changed; the folder is saved again only when something changed.
    """
    path = Path(directory)
    meta = list(metadata) if metadata is not None else [None] * len(texts)
    if len(ids) != len(texts) or len(meta) != len(texts):
        msg = f"got {len(texts)} texts, {len(ids)} ids and {len(meta)} metadata entries"
        raise ValueError(msg)
    exists = ColBERTIndex.exists(path) or (path.is_dir() and any(path.iterdir()))
    if not exists:
        if model is None:
            msg = f"no index in {path} yet, and no model to build one: pass model="
            raise ValueError(msg)
        index = ColBERTIndex(
            EncoderSpec(os.fspath(model)) if isinstance(model, str | os.PathLike) else model
        )
        index.add(list(texts), ids=list(ids), metadata=meta, show_progress=show_progress)
        index.save(path)
        logger.info("built a ColBERT index of %d documents in %s", len(texts), path)
        return SyncResult(index, built=True, added=len(texts), removed=0)
    if isinstance(model, EncoderSpec | str | os.PathLike) or model is None:
        index = ColBERTIndex.load(path, model=model)
    else:
        index = ColBERTIndex.load(path, encoder=model)
    wanted = dict(zip(ids, range(len(ids)), strict=True))
    gone = [i for i in index.ids if i not in wanted]
    changed = [i for i in index.ids if i in wanted and index.get(i)[0] != texts[wanted[i]]]
    have = set(index.ids)
    todo = [wanted[i] for i in changed] + [j for j, i in enumerate(ids) if i not in have]
    if todo:  # encoded first; a changed document's old version goes only once all are ready
        index.add(
            [texts[j] for j in todo],
            ids=[ids[j] for j in todo],
            metadata=[meta[j] for j in todo],
            replace=True,
            show_progress=show_progress,
        )
    if gone:
        index.delete(gone)
    if todo or gone:
        index.save(path)
        logger.info(
            "index %s: %d added, %d removed or replaced", path, len(todo), len(gone) + len(changed)
        )
    return SyncResult(index, built=False, added=len(todo), removed=len(gone) + len(changed))
