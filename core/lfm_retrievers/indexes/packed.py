"""Packed vectors: every document's vectors in flat matrices plus offsets, no padding.

Document ``i`` of a :class:`Segment` owns rows ``offsets[i]:offsets[i + 1]`` of its matrix. A
dense index stores one row per document, a ColBERT index one row per kept token. New documents
arrive as segments; small in-memory segments are merged as they come, and a loaded index is one
read-only memory-mapped segment. Deleted documents stay in place (masked out) until
:meth:`PackedVectors.compact`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_MERGE_BELOW_BYTES = 16 * 2**20

#: ``score(query, vectors, offsets) -> one score per document`` of a block.
BlockScorer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Segment:
    """Documents ``first_row .. first_row + n``.

    Document ``i``'s vectors are ``vectors[offsets[i]:offsets[i+1]]``.
    """

    vectors: np.ndarray  # (T, dim), storage dtype; may be a read-only memory map
    offsets: np.ndarray  # (n + 1,) int64
    first_row: int

    @property
    def n_docs(self) -> int:
        """Documents in the segment."""
        return len(self.offsets) - 1

    @property
    def in_memory(self) -> bool:
        """Whether the vectors are an ordinary (mergeable) array, not a memory map."""
        return not isinstance(self.vectors, np.memmap)


def runs(keep: np.ndarray) -> Iterator[tuple[int, int]]:
    """``[a, b)`` ranges of consecutive True values."""
    if not len(keep):
        return
    padded = np.concatenate([[False], keep, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        yield int(a), int(b)


class PackedVectors:
    """The vectors of an index as a list of :class:`Segment` objects of one storage dtype."""

    def __init__(self, dtype: type[np.floating[Any]]) -> None:
        """No vectors yet; ``dtype`` is the storage dtype (float32 dense, float16 ColBERT)."""
        self.dtype = dtype
        self.segments: list[Segment] = []
        self.dim: int | None = None

    @property
    def n_vectors(self) -> int:
        """Stored vectors, deleted documents' included until the next compaction."""
        return sum(len(s.vectors) for s in self.segments)

    @property
    def nbytes(self) -> int:
        """Bytes of stored vectors and offsets (memory-mapped ones included)."""
        return sum(int(s.vectors.nbytes) + int(s.offsets.nbytes) for s in self.segments)

    def block(self, row: int) -> np.ndarray:
        """A copy of the vectors of the document in table row ``row``."""
        for s in self.segments:
            if s.first_row <= row < s.first_row + s.n_docs:
                local = row - s.first_row
                return np.array(s.vectors[s.offsets[local] : s.offsets[local + 1]])
        msg = f"no vectors for row {row}"
        raise KeyError(msg)

    def pack(self, blocks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Documents' vector blocks as one flat storage-dtype matrix plus offsets."""
        lengths = np.array([len(b) for b in blocks], dtype=np.int64)
        offsets = np.zeros(len(blocks) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        dim = blocks[0].shape[1] if blocks else (self.dim or 0)
        if self.dim is not None and dim != self.dim:
            msg = f"vectors of dim {dim} cannot join an index of dim {self.dim}"
            raise ValueError(msg)
        vectors = np.empty((int(offsets[-1]), dim), dtype=self.dtype)
        for b, a, z in zip(blocks, offsets[:-1], offsets[1:], strict=True):
            vectors[a:z] = b
        return vectors, offsets

    def append(self, vectors: np.ndarray, offsets: np.ndarray, first_row: int) -> None:
        """Add packed documents starting at table row ``first_row``."""
        last = self.segments[-1] if self.segments else None
        if (
            last is not None
            and last.in_memory
            and last.vectors.nbytes < _MERGE_BELOW_BYTES
            and last.first_row + last.n_docs == first_row
        ):
            merged_vectors = np.concatenate([last.vectors, vectors])
            merged_offsets = np.concatenate([last.offsets, offsets[1:] + last.offsets[-1]])
            self.segments = [
                *self.segments[:-1],
                Segment(merged_vectors, merged_offsets, last.first_row),
            ]
        else:
            self.segments = [*self.segments, Segment(vectors, offsets, first_row)]
        self.dim = int(vectors.shape[1])

    def compact(self, alive: np.ndarray) -> None:
        """Drop the vectors of rows that are not ``alive``; rows are renumbered from 0."""
        segments = []
        first = 0
        for vectors, offsets in self._alive_blocks(alive):
            segments.append(Segment(vectors, offsets, first))
            first += len(offsets) - 1
        self.segments = segments

    def _alive_blocks(self, alive: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per segment, the living documents' vectors (copied) and offsets."""
        for s in self.segments:
            keep = alive[s.first_row : s.first_row + s.n_docs]
            if keep.all():
                yield np.array(s.vectors), s.offsets.copy()
                continue
            lengths = np.diff(s.offsets)[keep]
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            vectors = np.empty((int(offsets[-1]), s.vectors.shape[1]), dtype=s.vectors.dtype)
            for j, local in enumerate(np.flatnonzero(keep)):
                vectors[offsets[j] : offsets[j + 1]] = s.vectors[
                    s.offsets[local] : s.offsets[local + 1]
                ]
            if len(lengths):
                yield vectors, offsets

    @staticmethod
    def score(
        segments: Sequence[Segment],
        mask: np.ndarray,
        query: np.ndarray,
        scorer: BlockScorer,
        chunk_tokens: int,
    ) -> np.ndarray:
        """One score per row (``-inf`` where ``mask`` is False), block by block.

        When few rows pass the mask, only their vectors are gathered (in groups of at most
        ``chunk_tokens`` vectors) instead of scoring whole segments.
        """
        scores = np.full(len(mask), -np.inf, dtype=np.float32)
        sparse = int(mask.sum()) * 4 < len(mask)
        for s in segments:
            local = mask[s.first_row : s.first_row + s.n_docs]
            if not local.any():
                continue
            if not sparse:
                block = scorer(query, s.vectors, s.offsets)
                scores[s.first_row : s.first_row + s.n_docs] = np.where(local, block, -np.inf)
                continue
            for rows, vectors, offsets in _gather(s, np.flatnonzero(local), chunk_tokens):
                scores[s.first_row + rows] = scorer(query, vectors, offsets)
        return scores

    @staticmethod
    def write_npy(
        segments: Sequence[Segment],
        alive: np.ndarray,
        dim: int,
        dtype: type[np.floating[Any]],
        vectors_path: Path,
        offsets_path: Path,
    ) -> int:
        """Stream the living documents' vectors into one ``.npy`` (never all in memory).

        Returns the number of vectors written; both files are fsynced.
        """
        lengths = [
            np.diff(s.offsets)[alive[s.first_row : s.first_row + s.n_docs]] for s in segments
        ]
        all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
        offsets = np.zeros(len(all_lengths) + 1, dtype=np.int64)
        np.cumsum(all_lengths, out=offsets[1:])
        n_vectors = int(offsets[-1])
        if n_vectors == 0:
            np.save(vectors_path, np.zeros((0, dim), dtype=dtype), allow_pickle=False)
        else:
            out = np.lib.format.open_memmap(
                vectors_path, mode="w+", dtype=dtype, shape=(n_vectors, dim)
            )
            pos = 0
            for s in segments:
                keep = alive[s.first_row : s.first_row + s.n_docs]
                for a_doc, z_doc in runs(keep):
                    a, z = int(s.offsets[a_doc]), int(s.offsets[z_doc])
                    out[pos : pos + z - a] = s.vectors[a:z]
                    pos += z - a
            out.flush()
            del out
        with vectors_path.open("rb+") as f:
            os.fsync(f.fileno())
        with offsets_path.open("wb") as f:
            np.save(f, offsets, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        return n_vectors


def _gather(
    s: Segment, local_rows: np.ndarray, chunk_tokens: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Selected documents of a segment, copied in groups of at most ``chunk_tokens`` vectors."""
    lengths = s.offsets[local_rows + 1] - s.offsets[local_rows]
    start = 0
    while start < len(local_rows):
        total, end = 0, start
        while end < len(local_rows) and (end == start or total + lengths[end] <= chunk_tokens):
            total += int(lengths[end])
            end += 1
        rows = local_rows[start:end]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths[start:end], out=offsets[1:])
        vectors = np.empty((total, s.vectors.shape[1]), dtype=s.vectors.dtype)
        for j, r in enumerate(rows):
            vectors[offsets[j] : offsets[j + 1]] = s.vectors[s.offsets[r] : s.offsets[r + 1]]
        yield rows, vectors, offsets
        start = end
