"""The on-disk format of the in-process indexes: the one manifest of ``_io``, JSON and ``.npy``.

A saved index is a folder of segments; a fresh save writes one::

    manifest.json   the package's one manifest (format ``lfm-retrievers/<kind>-index``, format
                    version, package version, generation, the model's identity, the size and
                    SHA-256 of every file) plus dtype, dim, counts and the segment list
    docs.json       {"ids": [...], "texts": [...], "metadata": [...]}
    vectors.npy     (n_vectors, dim) float32 (dense) or float16 (ColBERT), memory-mappable
    offsets.npy     (n_rows + 1,) int64

A later save of the same index to the same folder appends only what is new: one more segment
(``seg-<generation>.docs.json`` / ``.vectors.npy`` / ``.offsets.npy``) and, when documents
were deleted, ``deleted-<generation>.npy`` (the deleted rows, int64), then a new manifest.
Small trailing segments are merged as they accumulate, and the folder is rewritten whole (one
segment, deleted rows dropped) when a quarter of its rows are deleted, so a save costs about
the size of the change.

Arrays are read with ``allow_pickle=False``; nothing in a folder is ever executed.
:func:`read_index` checks the manifest, every file's size and SHA-256 (``verify=False``:
sizes only), shapes and counts, and raises :class:`~lfm_retrievers.errors.IndexFormatError`
naming the file for anything wrong, before anything is used.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lfm_retrievers import _io
from lfm_retrievers.errors import IndexFormatError

FORMAT_VERSION = 2
DOCS_FILE = "docs.json"
VECTORS_FILE = "vectors.npy"
OFFSETS_FILE = "offsets.npy"
logger = logging.getLogger(__name__)

MANIFEST = _io.MANIFEST_FILE
LEGACY_MANIFEST = "index.json"


def index_format(kind: str) -> str:
    """The manifest ``format`` of an index of ``kind`` (``"dense"`` or ``"colbert"``)."""
    return f"{_io.FORMAT_PREFIX}{kind}-index"


@dataclass(frozen=True)
class IndexInfo:
    """What a saved index folder says about itself, read from its manifest alone.

    Attributes:
        path: The folder.
        kind: ``"dense"`` or ``"colbert"``.
        model: The name or path of the model that built it.
        fingerprint: That model's content fingerprint.
        dim: Vector dimension.
        n_documents: Documents in the index.
        n_vectors: Stored vectors (deleted documents' included until the folder is rewritten).
        format_version: The folder's format version.
        package_version: The lfm-retrievers version that wrote it.
        generation: How many times the folder was saved.
    """

    path: Path
    kind: str
    model: str
    fingerprint: str
    dim: int
    n_documents: int
    n_vectors: int
    format_version: int
    package_version: str
    generation: int


@dataclass(frozen=True)
class DiskSegment:
    """One segment of a saved folder: rows ``first_row .. first_row + n_rows``."""

    docs: str
    vectors: str
    offsets: str
    first_row: int
    n_rows: int
    n_vectors: int

    def files(self) -> list[str]:
        """The segment's three file names."""
        return [self.docs, self.vectors, self.offsets]

    def to_json(self) -> dict[str, Any]:
        """The manifest entry."""
        return {
            "docs": self.docs,
            "vectors": self.vectors,
            "offsets": self.offsets,
            "first_row": self.first_row,
            "n_rows": self.n_rows,
            "n_vectors": self.n_vectors,
        }


@dataclass
class DiskState:
    """What an index knows of a folder it loaded from or saved to (for appending saves)."""

    generation: int
    segments: list[DiskSegment]
    deleted_file: str | None
    deleted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    epoch: int = 0

    @property
    def n_rows(self) -> int:
        """Rows stored in the folder, deleted ones included."""
        return self.segments[-1].first_row + self.segments[-1].n_rows if self.segments else 0


def segment_names(generation: int | None) -> tuple[str, str, str]:
    """File names of a segment written at ``generation`` (None: the first segment's)."""
    if generation is None:
        return DOCS_FILE, VECTORS_FILE, OFFSETS_FILE
    tag = f"seg-{generation:06d}"
    return f"{tag}.docs.json", f"{tag}.vectors.npy", f"{tag}.offsets.npy"


def write_docs(path: Path, ids: list[str], texts: list[str], metadata: list[Any]) -> None:
    """Write one segment's documents."""
    data = json.dumps({"ids": ids, "texts": texts, "metadata": metadata}, ensure_ascii=False)
    path.write_bytes(data.encode("utf-8"))


def _error(path: Path, why: str, exc: BaseException | None = None) -> IndexFormatError:
    err = IndexFormatError(f"cannot load the index in {path}: {why}")
    if exc is not None:
        err.__cause__ = exc
    return err


def read_manifest(path: Path, kind: str | None = None) -> dict[str, Any]:
    """The checked manifest of the index in ``path`` (of ``kind``, when given)."""
    kinds = (kind,) if kind else ("colbert", "dense")
    formats = tuple(index_format(k) for k in kinds)
    if not (path / MANIFEST).is_file() and (path / LEGACY_MANIFEST).is_file():
        msg = (
            "it was saved in index format v1 by an earlier lfm-retrievers (index.json, no "
            "checksum of the vectors, a weaker model fingerprint): rebuild it with this version"
        )
        raise _error(path, msg)
    try:
        manifest = _io.read_manifest(
            path, formats=formats, max_version=FORMAT_VERSION, what="index"
        )
    except IndexFormatError as exc:
        other = next((k for k in ("colbert", "dense") if k != kind), None)
        if kind and other and _io.read_format(path) == index_format(other):
            name = "DenseIndex" if other == "dense" else "ColBERTIndex"
            raise _error(path, f"it is a {other} index: open it with {name}.load") from exc
        raise
    try:
        for key in ("n_documents", "n_vectors", "n_rows", "dim"):
            if isinstance(manifest[key], bool) or not isinstance(manifest[key], int):
                raise TypeError(key)
        stamp = manifest["model"]
        if not isinstance(stamp["name"], str) or not isinstance(stamp["fingerprint"], str):
            msg = "model"
            raise TypeError(msg)
        segments = [DiskSegment(**s) for s in manifest["segments"]]
        first = 0
        for s in segments:
            if s.first_row != first or not set(s.files()) <= set(manifest["files"]):
                msg = "segments"
                raise ValueError(msg)
            first += s.n_rows
        if (
            first != manifest["n_rows"]
            or sum(s.n_vectors for s in segments) != manifest["n_vectors"]
        ):
            msg = "counts"
            raise ValueError(msg)
        deleted = manifest["deleted"]
        if deleted is not None and deleted not in manifest["files"]:
            msg = "deleted"
            raise ValueError(msg)
    except (KeyError, TypeError, ValueError) as exc:
        raise _error(path, f"{MANIFEST} lacks required fields or is inconsistent", exc) from exc
    manifest["segments"] = segments
    return manifest


def info_from_manifest(path: Path, manifest: dict[str, Any]) -> IndexInfo:
    """An :class:`IndexInfo` of a checked manifest."""
    return IndexInfo(
        path=path,
        kind=str(manifest["model"].get("kind", "")),
        model=manifest["model"]["name"],
        fingerprint=manifest["model"]["fingerprint"],
        dim=manifest["dim"],
        n_documents=manifest["n_documents"],
        n_vectors=manifest["n_vectors"],
        format_version=int(manifest["format_version"]),
        package_version=str(manifest.get("package_version")),
        generation=int(manifest["generation"]),
    )


@dataclass(frozen=True)
class LoadedIndex:
    """A saved index read from disk, every file checked."""

    manifest: dict[str, Any]
    ids: list[str]
    texts: list[str]
    metadata: list[dict[str, Any]]
    alive: np.ndarray
    blocks: list[tuple[np.ndarray, np.ndarray, int]]  # (vectors, offsets, first_row)
    state: DiskState


def read_index(
    path: Path, kind: str, dtype: type[np.floating[Any]], *, mmap: bool, verify: bool
) -> LoadedIndex:
    """Every segment of a saved index, with sizes, checksums, shapes and counts checked."""
    manifest = read_manifest(path, kind)
    _io.verify_files(path, manifest, verify=verify)
    dim, n_rows = manifest["dim"], manifest["n_rows"]
    want_dtype = np.dtype(dtype)
    ids: list[str] = []
    texts: list[str] = []
    metadata: list[dict[str, Any]] = []
    blocks = []
    for s in manifest["segments"]:
        try:
            docs = json.loads((path / s.docs).read_bytes().decode("utf-8"))
            offsets = np.load(path / s.offsets, allow_pickle=False)
            vectors = np.load(path / s.vectors, allow_pickle=False, mmap_mode="r" if mmap else None)
        except (OSError, ValueError, EOFError, RecursionError) as exc:
            raise _error(path, f"unreadable segment file: {exc}", exc) from exc
        if (
            not isinstance(docs, dict)
            or not all(isinstance(docs.get(k), list) for k in ("ids", "texts", "metadata"))
            or not len(docs["ids"]) == len(docs["texts"]) == len(docs["metadata"]) == s.n_rows
            or not all(isinstance(i, str) for i in docs["ids"])
            or not all(isinstance(t, str) for t in docs["texts"])
            or not all(isinstance(m, dict) for m in docs["metadata"])
        ):
            raise _error(path, f"{s.docs} does not hold {s.n_rows} ids, texts and metadata")
        if vectors.shape != (s.n_vectors, dim) or vectors.dtype != want_dtype:
            why = (
                f"{s.vectors} is {vectors.shape} {vectors.dtype}, expected "
                f"({s.n_vectors}, {dim}) {want_dtype.name}"
            )
            raise _error(path, why)
        if (
            offsets.shape != (s.n_rows + 1,)
            or offsets.dtype != np.int64
            or offsets[0] != 0
            or offsets[-1] != s.n_vectors
            or (np.diff(offsets) < 0).any()
        ):
            why = f"{s.offsets} does not describe {s.n_rows} documents of {s.n_vectors} vectors"
            raise _error(path, why)
        ids += docs["ids"]
        texts += docs["texts"]
        metadata += docs["metadata"]
        blocks.append((vectors, offsets, s.first_row))
    deleted = np.zeros(0, dtype=np.int64)
    if manifest["deleted"] is not None:
        try:
            deleted = np.load(path / manifest["deleted"], allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise _error(path, f"unreadable {manifest['deleted']}: {exc}", exc) from exc
        if (
            deleted.dtype != np.int64
            or deleted.ndim != 1
            or (len(deleted) and (deleted.min() < 0 or deleted.max() >= n_rows))
        ):
            raise _error(path, f"{manifest['deleted']} does not list rows of this index")
    alive = np.ones(n_rows, dtype=bool)
    alive[deleted] = False
    living = [ids[r] for r in np.flatnonzero(alive)]
    if len(living) != manifest["n_documents"] or len(set(living)) != len(living):
        why = f"the segments do not hold {manifest['n_documents']} documents with unique ids"
        raise _error(path, why)
    state = DiskState(
        generation=int(manifest["generation"]),
        segments=list(manifest["segments"]),
        deleted_file=manifest["deleted"],
        deleted=np.sort(deleted),
    )
    return LoadedIndex(manifest, ids, texts, metadata, alive, blocks, state)


def read_index_consistent(
    path: Path, kind: str, dtype: type[np.floating[Any]], *, mmap: bool, verify: bool
) -> LoadedIndex:
    """:func:`read_index`, read again if a writer swapped in a new version meanwhile."""
    for attempt in range(3):
        generation = _io.read_generation(path)
        try:
            return read_index(path, kind, dtype, mmap=mmap, verify=verify)
        except IndexFormatError:
            if attempt == 2 or _io.read_generation(path) == generation:
                raise
            logger.debug("%s changed while it was read; reading it again", path)
    raise AssertionError  # pragma: no cover - the loop returns or raises
