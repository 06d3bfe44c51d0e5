"""How an in-process index is written to its folder and read back (see :mod:`.format`).

:func:`save_index` chooses between a full rewrite (a new folder swapped in by
:func:`lfm_retrievers._io.save_folder`) and an appending save (one new segment and a new
manifest, :func:`lfm_retrievers._io.append_files`) from what the index knows of the folder: an
appending save needs the folder to be the one this index loaded or last saved, with its rows
still numbered as on disk. :func:`fill` makes a loaded folder an index's contents.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

from lfm_retrievers import _io

from . import format as fmt
from .packed import PackedVectors, Segment
from .table import DocumentTable


class VectorIndex(Protocol):
    """What saving and loading use of an index (``base.VectorIndex`` has it all)."""

    kind: ClassVar[Literal["dense", "colbert"]]
    storage_dtype: ClassVar[type[np.floating[Any]]]
    _lock: threading.RLock
    _table: DocumentTable
    _vectors: PackedVectors
    _mutations: int
    _epoch: int
    _disk: dict[Path, fmt.DiskState]

    def _model_stamp(self) -> dict[str, Any]: ...

    def _compact_locked(self) -> None: ...


logger = logging.getLogger(__name__)

_MAX_SEGMENTS = 48  # an appending save rewrites the folder beyond this many segments
_MAX_DELETED = 0.25  # ... or when this fraction of its rows are deleted


def save_index(index: VectorIndex, directory: str | os.PathLike[str]) -> None:
    """Save ``index`` to ``directory``: appending when it can, else a full rewrite."""
    target = _io.resolve_target(directory)
    model = index._model_stamp()
    with index._lock:
        n_rows = index._table.n_rows
        snapshot = index._mutations
        segments = list(index._vectors.segments)
        alive = index._table.alive.copy()
        table = index._table
        rows = (table.ids[:n_rows], table.texts[:n_rows], table.metadata[:n_rows])
        dim = index._vectors.dim if index._vectors.dim is not None else model["dim"]
        state = index._disk.get(target)
        epoch = index._epoch
    if state is not None and state.generation and _io.read_generation(_io.recover(target)) == 0:
        state = fmt.DiskState(0, [], None)  # the folder was removed: write it anew
    if state is not None and state.epoch == epoch and _appendable(state, alive):
        new_state = _append_save(index, target, state, segments, alive, rows, dim, model)
        new_state.epoch = epoch
    else:
        expected = _io.ANY_GENERATION if state is None else state.generation
        new_state = _full_save(index, target, segments, alive, rows, dim, model, expected)
        with index._lock:
            if index._mutations != snapshot:
                new_state.epoch = -1  # rows changed meanwhile: the next save rewrites
            else:
                if not alive.all():  # the folder holds the living rows only
                    index._compact_locked()
                new_state.epoch = index._epoch
    with index._lock:
        index._disk[target] = new_state
    logger.info(
        "saved %s of %d documents to %s (generation %d)",
        type(index).__name__,
        int(alive.sum()),
        target,
        new_state.generation,
    )


def _full_save(
    index: VectorIndex,
    target: Path,
    segments: list[Segment],
    alive: np.ndarray,
    rows: tuple[list[str], list[str], list[dict[str, Any]]],
    dim: int,
    model: dict[str, Any],
    expected: Any,
) -> fmt.DiskState:
    """The living documents as one segment, written next to ``target`` and swapped in."""
    living = np.flatnonzero(alive)
    ids, texts, metadata = rows
    docs = ([ids[r] for r in living], [texts[r] for r in living], [metadata[r] for r in living])
    names = fmt.segment_names(None)
    written: list[fmt.DiskSegment] = []

    def write(tmp: Path) -> dict[str, Any]:
        n_vectors = PackedVectors.write_npy(
            segments, alive, dim, index.storage_dtype, tmp / names[1], tmp / names[2]
        )
        fmt.write_docs(tmp / names[0], docs[0], docs[1], docs[2])
        written.append(fmt.DiskSegment(*names, 0, len(living), n_vectors))
        return _manifest_fields(index, dim, len(living), written, None)

    saved = _io.save_folder(
        target,
        write,
        format=fmt.index_format(index.kind),
        format_version=fmt.FORMAT_VERSION,
        model=model,
        expected_generation=expected,
        replaces=(fmt.LEGACY_MANIFEST,),
        what="index",
    )
    return fmt.DiskState(saved.generation, written, None)


def _append_save(
    index: VectorIndex,
    target: Path,
    state: fmt.DiskState,
    segments: list[Segment],
    alive: np.ndarray,
    rows: tuple[list[str], list[str], list[dict[str, Any]]],
    dim: int,
    model: dict[str, Any],
) -> fmt.DiskState:
    """Append the rows added since ``state`` as one segment, merged with small tail ones."""
    n_rows = len(alive)
    ids, texts, metadata = rows
    kept = list(state.segments)
    first = state.n_rows
    new_vectors = _count_vectors(segments, first, n_rows)
    while first < n_rows and kept and kept[-1].n_vectors <= 2 * new_vectors:
        new_vectors += kept[-1].n_vectors  # merge: keeps the segment count logarithmic
        first = kept.pop().first_row
    deleted = np.flatnonzero(~alive).astype(np.int64)
    deletes_changed = not np.array_equal(deleted, state.deleted)
    if first == n_rows and not deletes_changed:
        return state  # nothing changed since the last save
    generation = state.generation + 1
    out = list(kept)
    deleted_file = state.deleted_file
    obsolete = [f for s in state.segments[len(kept) :] for f in s.files()]

    def write(folder: Path) -> tuple[dict[str, Any], list[str]]:
        nonlocal deleted_file
        if first < n_rows:
            names = fmt.segment_names(generation)
            select = np.zeros(n_rows, dtype=bool)
            select[first:] = True
            n_vectors = PackedVectors.write_npy(
                segments, select, dim, index.storage_dtype, folder / names[1], folder / names[2]
            )
            fmt.write_docs(
                folder / names[0], ids[first:n_rows], texts[first:n_rows], metadata[first:n_rows]
            )
            out.append(fmt.DiskSegment(*names, first, n_rows - first, n_vectors))
        if deletes_changed:
            if state.deleted_file is not None:
                obsolete.append(state.deleted_file)
            deleted_file = None
            if len(deleted):
                deleted_file = f"deleted-{generation:06d}.npy"
                np.save(folder / deleted_file, deleted, allow_pickle=False)
        return _manifest_fields(index, dim, int(alive.sum()), out, deleted_file), obsolete

    saved = _io.append_files(target, write, expected_generation=state.generation)
    return fmt.DiskState(saved.generation, out, deleted_file, deleted)


def _manifest_fields(
    index: VectorIndex,
    dim: int,
    n_documents: int,
    segments: list[fmt.DiskSegment],
    deleted: str | None,
) -> dict[str, Any]:
    """The index's own manifest fields (the common ones are added by ``_io``)."""
    return {
        "dtype": np.dtype(index.storage_dtype).name,
        "dim": int(dim),
        "n_documents": n_documents,
        "n_rows": segments[-1].first_row + segments[-1].n_rows if segments else 0,
        "n_vectors": sum(s.n_vectors for s in segments),
        "segments": [s.to_json() for s in segments],
        "deleted": deleted,
    }


def fill(index: VectorIndex, path: Path, loaded: fmt.LoadedIndex) -> None:
    """Make a folder read by :func:`~.format.read_index` the contents of a new ``index``."""
    index._table.load_rows(loaded.ids, loaded.texts, loaded.metadata, loaded.alive)
    for vectors, offsets, first_row in loaded.blocks:
        if len(offsets) > 1:
            index._vectors.append(vectors, offsets, first_row)
    index._vectors.dim = int(loaded.manifest["dim"])
    index._disk[path] = loaded.state


def _count_vectors(segments: Sequence[Segment], first: int, end: int) -> int:
    """Vectors of rows ``first .. end``."""
    total = 0
    for s in segments:
        a, b = max(first, s.first_row), min(end, s.first_row + s.n_docs)
        if a < b:
            total += int(s.offsets[b - s.first_row] - s.offsets[a - s.first_row])
    return total


def _appendable(state: fmt.DiskState, alive: np.ndarray) -> bool:
    """Whether a save can append to the folder of ``state`` instead of rewriting it."""
    return (
        bool(state.segments)
        and len(alive) >= state.n_rows
        and len(state.segments) < _MAX_SEGMENTS
        and int((~alive).sum()) <= _MAX_DELETED * len(alive)
    )
