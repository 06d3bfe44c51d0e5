"""The on-disk format of the in-process indexes: a JSON manifest, ``docs.json`` and ``.npy`` arrays.

A saved index is a folder::

    index.json    format, versions, the model's identity, counts, file sizes and checksums
    docs.json     {"ids": [...], "texts": [...], "metadata": [...]}
    vectors.npy   (n_vectors, dim) float32 (dense) or float16 (ColBERT), memory-mappable
    offsets.npy   (n_documents + 1,) int64

Arrays are read with ``allow_pickle=False``; nothing in a folder is ever executed.
:func:`read_index` checks sizes, checksums, shapes and counts and raises
:class:`~lfm_retrievers.errors.IndexFormatError` for anything wrong, before anything is used.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lfm_retrievers._version import __version__
from lfm_retrievers.errors import IndexFormatError

INDEX_FORMAT = "lfm-retrievers-index"
INDEX_FORMAT_VERSION = 1
MANIFEST = "index.json"
DOCS_FILE = "docs.json"
VECTORS_FILE = "vectors.npy"
OFFSETS_FILE = "offsets.npy"


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
        n_vectors: Stored vectors.
        format_version: The folder's format version.
        package_version: The lfm-retrievers version that wrote it.
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


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to disk."""
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_docs_and_manifest(
    folder: Path,
    *,
    kind: str,
    model: dict[str, Any],
    dtype: str,
    dim: int,
    docs: tuple[list[str], list[str], list[dict[str, Any]]],
    n_vectors: int,
) -> None:
    """Write ``docs.json`` and then ``index.json`` (last, so its presence means complete)."""
    ids, texts, metadata = docs
    data = json.dumps({"ids": ids, "texts": texts, "metadata": metadata}, ensure_ascii=False)
    fsync_write(folder / DOCS_FILE, data.encode("utf-8"))
    files = {
        name: {"bytes": (folder / name).stat().st_size, "sha256": sha256_file(folder / name)}
        for name in (DOCS_FILE, OFFSETS_FILE)
    }
    files[VECTORS_FILE] = {"bytes": (folder / VECTORS_FILE).stat().st_size}
    manifest = {
        "format": INDEX_FORMAT,
        "format_version": INDEX_FORMAT_VERSION,
        "index_kind": kind,
        "package": "lfm-retrievers",
        "package_version": __version__,
        "model": model,
        "dtype": dtype,
        "dim": int(dim),
        "n_documents": len(ids),
        "n_vectors": n_vectors,
        "files": files,
    }
    fsync_write(folder / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))


def _error(path: Path, why: str, exc: BaseException | None = None) -> IndexFormatError:
    err = IndexFormatError(f"cannot load the index in {path}: {why}")
    if exc is not None:
        err.__cause__ = exc
    return err


def read_manifest(path: Path, kind: str | None = None) -> dict[str, Any]:
    """The checked manifest of the index in ``path`` (of ``kind``, when given)."""
    if not (path / MANIFEST).is_file():
        raise _error(path, f"no {MANIFEST} (not a saved index, or an incomplete copy)")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _error(path, f"{MANIFEST} is not valid JSON (corrupted?)", exc) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT:
        raise _error(path, f"{MANIFEST} is not an lfm-retrievers index manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > INDEX_FORMAT_VERSION:
        why = (
            f"it was written in index format v{version} by lfm-retrievers "
            f"{manifest.get('package_version')}; this version reads up to "
            f"v{INDEX_FORMAT_VERSION}: upgrade lfm-retrievers"
        )
        raise _error(path, why)
    if kind is not None and manifest.get("index_kind") != kind:
        other = "DenseIndex" if manifest.get("index_kind") == "dense" else "ColBERTIndex"
        raise _error(path, f"it is a {manifest.get('index_kind')} index: open it with {other}.load")
    try:
        for key in ("n_documents", "n_vectors", "dim"):
            manifest[key] = int(manifest[key])
        stamp = manifest["model"]
        if not isinstance(stamp["name"], str) or not isinstance(stamp["fingerprint"], str):
            msg = "model name and fingerprint must be strings"
            raise TypeError(msg)
        if not isinstance(manifest["files"], dict):
            msg = "files must be an object"
            raise TypeError(msg)
    except (KeyError, TypeError, ValueError) as exc:
        raise _error(path, f"{MANIFEST} lacks required fields", exc) from exc
    return manifest


def info_from_manifest(path: Path, manifest: dict[str, Any]) -> IndexInfo:
    """An :class:`IndexInfo` of a checked manifest."""
    return IndexInfo(
        path=path,
        kind=str(manifest.get("index_kind")),
        model=manifest["model"]["name"],
        fingerprint=manifest["model"]["fingerprint"],
        dim=manifest["dim"],
        n_documents=manifest["n_documents"],
        n_vectors=manifest["n_vectors"],
        format_version=int(manifest["format_version"]),
        package_version=str(manifest.get("package_version")),
    )


def read_index(
    path: Path, kind: str, dtype: type[np.floating[Any]], mmap: bool
) -> tuple[dict[str, Any], dict[str, Any], np.ndarray, np.ndarray]:
    """``(manifest, docs, vectors, offsets)`` of a saved index, every file checked."""
    manifest = read_manifest(path, kind)
    files = manifest["files"]
    n_docs, n_vectors, dim = manifest["n_documents"], manifest["n_vectors"], manifest["dim"]
    for name in (DOCS_FILE, OFFSETS_FILE, VECTORS_FILE):
        file = path / name
        if not file.is_file():
            raise _error(path, f"{name} is missing")
        want = files.get(name, {})
        size = file.stat().st_size
        if size != want.get("bytes"):
            raise _error(
                path, f"{name} has {size} bytes, expected {want.get('bytes')} (truncated?)"
            )
        if "sha256" in want and sha256_file(file) != want["sha256"]:
            raise _error(path, f"{name} does not match its checksum (corrupted)")
    try:
        docs = json.loads((path / DOCS_FILE).read_text(encoding="utf-8"))
        offsets = np.load(path / OFFSETS_FILE, allow_pickle=False)
        vectors = np.load(path / VECTORS_FILE, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as exc:
        raise _error(path, f"unreadable file: {exc}", exc) from exc
    if (
        not isinstance(docs, dict)
        or not all(isinstance(docs.get(k), list) for k in ("ids", "texts", "metadata"))
        or not len(docs["ids"]) == len(docs["texts"]) == len(docs["metadata"]) == n_docs
        or len(set(docs["ids"])) != n_docs
    ):
        raise _error(path, f"{DOCS_FILE} does not hold {n_docs} unique ids, texts and metadata")
    want_dtype = np.dtype(dtype)
    if vectors.shape != (n_vectors, dim) or vectors.dtype != want_dtype:
        why = (
            f"{VECTORS_FILE} is {vectors.shape} {vectors.dtype}, expected "
            f"({n_vectors}, {dim}) {want_dtype.name}"
        )
        raise _error(path, why)
    if (
        offsets.shape != (n_docs + 1,)
        or offsets.dtype != np.int64
        or offsets[0] != 0
        or offsets[-1] != n_vectors
        or (np.diff(offsets) < 0).any()
    ):
        raise _error(
            path, f"{OFFSETS_FILE} does not describe {n_docs} documents of {n_vectors} vectors"
        )
    return manifest, docs, vectors, offsets
