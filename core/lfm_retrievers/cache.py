"""Document-embedding cache: reranking the same candidate twice encodes it once.

An entry is keyed by everything that determines a document's vectors: the model's identity
(checkpoint fingerprint, plus the compute dtype and quantization, which change the numbers
slightly), the encoder kind, the document marker or prompt and its length limit, and the
SHA-256 of the text. The cache is an LRU bounded in bytes (the vectors' ``nbytes`` plus a
small per-entry overhead); entries larger than the bound are returned but not kept.

With ``directory`` the entries are also written there, one ``<sha256 of the key>.npy`` per
entry (atomically: temporary file, then ``os.replace``; loaded with ``allow_pickle=False``),
so a later process starts warm. The directory is not bounded by ``max_bytes``; ``clear()``
empties it. A file that cannot be read is treated as a miss and replaced.

``hits`` / ``misses`` count lookups; ``stats()`` has the full picture. Vectors handed out are
read-only numpy arrays shared with the cache: copy before modifying.

>>> cache = EmbeddingCache(max_bytes=64 * 2**20)
>>> vectors = encode_documents_cached(encoder, ["a text", "another"], cache)  # doctest: +SKIP
>>> cache.stats()["misses"]  # doctest: +SKIP
2
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._validation import check_finite, check_nonnegative_int, check_texts

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 256 * 2**20
CACHE_FORMAT = "lfm-retrievers-embedding-cache"
CACHE_FORMAT_VERSION = 1
_MANIFEST = "cache.json"
_ENTRY_OVERHEAD = 256  # bytes charged per entry for the key and bookkeeping


class CacheKey(NamedTuple):
    """What determines a document's vectors (the text enters as its SHA-256)."""

    model: str
    kind: str
    marker: str
    text_sha256: str

    def digest(self) -> str:
        """SHA-256 hex of the whole key: the entry's file name on disk."""
        blob = json.dumps(list(self), ensure_ascii=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def encoder_cache_fields(encoder: Any) -> tuple[str, str, str]:
    """``(model, kind, marker)`` of an encoder's document vectors, for :class:`CacheKey`."""
    dtype = str(getattr(encoder, "dtype", "")).replace("torch.", "")
    model = f"{encoder.fingerprint}:{dtype}:{getattr(encoder, 'quantize', None) or 'none'}"
    if encoder.kind == "colbert":
        s = encoder.settings
        marker = json.dumps([s.document_prefix, s.document_length, sorted(s.skiplist_words)])
    else:
        marker = json.dumps([encoder.prompts.get("document", ""), encoder.max_length])
    return model, encoder.kind, marker


def document_keys(encoder: Any, texts: Iterable[str]) -> list[CacheKey]:
    """The cache keys of ``texts`` as documents of ``encoder``."""
    model, kind, marker = encoder_cache_fields(encoder)
    return [CacheKey(model, kind, marker, text_sha256(t)) for t in texts]


def _frozen_copy(array: Any) -> np.ndarray:
    """A read-only copy that no caller holds a writable reference to."""
    out = np.array(array, copy=True)
    out.setflags(write=False)
    return out


class EmbeddingCache:
    """LRU cache of document vectors, bounded in bytes, optionally persisted to ``directory``.

    Thread-safe. ``max_bytes=0`` keeps nothing in memory (a directory still works).
    """

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        self.max_bytes = check_nonnegative_int(max_bytes, "max_bytes")
        self.directory: Path | None = None if directory is None else Path(directory)
        self._entries: OrderedDict[CacheKey, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0
        self.disk_hits = 0
        self.evictions = 0
        if self.directory is not None:
            self._open_directory(self.directory)

    # ----------------------------------------------------------------- directory
    @staticmethod
    def _open_directory(directory: Path) -> None:
        manifest = directory / _MANIFEST
        if manifest.exists():
            try:
                info = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                msg = f"{manifest} is not a readable embedding-cache manifest"
                raise ValueError(msg) from exc
            if info.get("format") != CACHE_FORMAT:
                msg = (
                    f"{directory} is not an lfm-retrievers embedding cache "
                    f"(format {info.get('format')!r})"
                )
                raise ValueError(msg)
            if int(info.get("version", 0)) > CACHE_FORMAT_VERSION:
                msg = (
                    f"{directory} was written by a newer lfm-retrievers (cache format "
                    f"v{info.get('version')}, this version reads v{CACHE_FORMAT_VERSION}); upgrade"
                )
                raise ValueError(msg)
            return
        if directory.exists() and any(directory.iterdir()):
            msg = (
                f"{directory} is not empty and not an embedding cache; pick an empty or new folder"
            )
            raise ValueError(msg)
        directory.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(
            manifest,
            json.dumps({"format": CACHE_FORMAT, "version": CACHE_FORMAT_VERSION}).encode(),
        )

    def _path(self, key: CacheKey) -> Path:
        assert self.directory is not None
        return self.directory / f"{key.digest()}.npy"

    def _read_disk(self, key: CacheKey) -> np.ndarray | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            logger.warning("ignoring unreadable cache entry %s: %s", path, exc)
            path.unlink(missing_ok=True)
            return None
        if not isinstance(array, np.ndarray) or array.ndim not in (1, 2):
            path.unlink(missing_ok=True)
            return None
        array.setflags(write=False)
        return array

    def _write_disk(self, key: CacheKey, array: np.ndarray) -> None:
        path = self._path(key)
        if path.exists():
            return
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.save(f, array, allow_pickle=False)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            logger.warning("could not write cache entry %s: %s", path, exc)

    # ----------------------------------------------------------------- memory
    def _charge(self, array: np.ndarray) -> int:
        return int(array.nbytes) + _ENTRY_OVERHEAD

    def _remember(self, key: CacheKey, array: np.ndarray) -> None:
        """Put into the in-memory LRU (caller holds the lock)."""
        size = self._charge(array)
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= self._charge(old)
        if size > self.max_bytes:
            return
        self._entries[key] = array
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= self._charge(evicted)
            self.evictions += 1

    # ----------------------------------------------------------------- public
    def get_many(self, keys: Sequence[CacheKey]) -> list[np.ndarray | None]:
        """Cached vectors for each key, or None; each lookup counts as a hit or a miss."""
        out: list[np.ndarray | None] = []
        with self._lock:
            for key in keys:
                array = self._entries.get(key)
                if array is not None:
                    self._entries.move_to_end(key)
                elif self.directory is not None:
                    array = self._read_disk(key)
                    if array is not None:
                        self.disk_hits += 1
                        self._remember(key, array)
                if array is None:
                    self.misses += 1
                else:
                    self.hits += 1
                out.append(array)
        return out

    def get(self, key: CacheKey) -> np.ndarray | None:
        """Cached vectors for ``key`` or None (counts as a hit or a miss)."""
        return self.get_many([key])[0]

    def put_many(self, keys: Sequence[CacheKey], arrays: Sequence[np.ndarray]) -> None:
        """Store read-only copies of ``arrays`` under ``keys``."""
        if len(keys) != len(arrays):
            msg = f"put_many got {len(keys)} keys but {len(arrays)} arrays"
            raise ValueError(msg)
        for i, array in enumerate(arrays):
            check_finite(array, f"arrays[{i}]")  # a NaN entry would poison every later hit
        self._put_owned(keys, [_frozen_copy(a) for a in arrays])

    def _put_owned(self, keys: Sequence[CacheKey], frozen: Sequence[np.ndarray]) -> None:
        with self._lock:
            for key, array in zip(keys, frozen, strict=True):
                self._remember(key, array)
                if self.directory is not None:
                    self._write_disk(key, array)

    def put(self, key: CacheKey, array: np.ndarray) -> None:
        """Store a read-only copy of ``array`` under ``key``."""
        self.put_many([key], [array])

    def __contains__(self, key: object) -> bool:
        """In memory or on disk (does not count as a hit or a miss)."""
        if not isinstance(key, CacheKey):
            return False
        with self._lock:
            if key in self._entries:
                return True
            return self.directory is not None and self._path(key).exists()

    def __len__(self) -> int:
        """Entries held in memory."""
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes charged for the entries in memory (vectors + per-entry overhead)."""
        return self._bytes

    def stats(self) -> dict[str, Any]:
        """Counters and sizes: hits, misses, hit_rate, disk_hits, evictions, entries, bytes."""
        with self._lock:
            lookups = self.hits + self.misses
            return {
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": self.hits / lookups if lookups else 0.0,
                "disk_hits": self.disk_hits,
                "evictions": self.evictions,
                "entries": len(self._entries),
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
                "directory": None if self.directory is None else str(self.directory),
            }

    def reset_stats(self) -> None:
        """Zero the counters (the entries stay)."""
        with self._lock:
            self.hits = self.misses = self.disk_hits = self.evictions = 0

    def clear(self) -> None:
        """Drop every entry, in memory and on disk, and zero the counters."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            if self.directory is not None and self.directory.exists():
                for path in self.directory.glob("*.npy"):
                    path.unlink(missing_ok=True)
            self.reset_stats()

    def __repr__(self) -> str:
        return (
            f"EmbeddingCache(entries={len(self._entries)}, bytes={self._bytes}, "
            f"max_bytes={self.max_bytes}, hits={self.hits}, misses={self.misses}"
            + (f", directory={str(self.directory)!r})" if self.directory else ")")
        )


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def encode_documents_cached(
    encoder: Any,
    texts: Sequence[str],
    cache: EmbeddingCache | None,
    *,
    batch_size: int = 32,
    show_progress: bool | None = None,
) -> list[np.ndarray]:
    """Document vectors of ``texts``, encoding only the texts ``cache`` does not hold.

    Repeated texts within the call are encoded once. ColBERT encoders give ``(n_i, dim)`` arrays,
    dense encoders ``(dim,)`` arrays. Without a cache this is ``encoder.encode_documents``.
    """
    texts = check_texts(texts, "documents")
    if cache is None:
        vectors = encoder.encode_documents(
            texts, batch_size=batch_size, show_progress=show_progress
        )
        return list(vectors)
    if not isinstance(cache, EmbeddingCache):
        msg = f"cache must be an EmbeddingCache or None, got {type(cache).__name__}"
        raise TypeError(msg)
    keys = document_keys(encoder, texts)
    first: dict[CacheKey, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    unique = list(first)
    found = dict(zip(unique, cache.get_many(unique), strict=True))
    missing = [k for k in unique if found[k] is None]
    if missing:
        encoded = encoder.encode_documents(
            [texts[first[k]] for k in missing], batch_size=batch_size, show_progress=show_progress
        )
        arrays = [_frozen_copy(v) for v in encoded]
        for key, vectors in zip(missing, arrays, strict=True):
            check_finite(vectors, f"the vectors of document {texts[first[key]]!r:.40}")
        cache._put_owned(missing, arrays)
        found.update(zip(missing, arrays, strict=True))
    out = []
    for key in keys:
        array = found[key]
        assert array is not None
        out.append(array)
    return out


__all__ = [
    "CacheKey",
    "EmbeddingCache",
    "document_keys",
    "encode_documents_cached",
    "encoder_cache_fields",
]
