"""Document-embedding cache: reranking the same candidate twice encodes it once.

An entry is keyed by everything that determines a document's vectors: the model's identity
(checkpoint fingerprint, plus the compute dtype and quantization, which change the numbers
slightly), the encoder kind, the document marker or prompt and its length limit, and the
SHA-256 of the text. The cache is an LRU bounded in bytes (the vectors' ``nbytes`` plus a
small per-entry overhead); entries larger than the bound are returned but not kept.

With ``directory`` the entries are also written there, one ``<sha256 of the key>.npy`` per
entry, so a later process starts warm. Each entry is written atomically (temporary file, fsync,
``os.replace``) and sealed with its own SHA-256 (bound to its key): the directory's
``manifest.json`` (the package's one manifest convention) cannot list entries that many
processes add at any time. An entry that is damaged, truncated, renamed or unreadable is a
miss, removed and encoded again, never a hit; arrays load with ``allow_pickle=False``. The
directory is not bounded by ``max_bytes``; ``clear()`` empties it.

``hits`` / ``misses`` count lookups; ``stats()`` has the full picture. Vectors handed out are
read-only numpy arrays shared with the cache: copy before modifying.

>>> cache = EmbeddingCache(max_bytes=64 * 2**20)
>>> vectors = encode_documents_cached(encoder, ["a text", "another"], cache)  # doctest: +SKIP
>>> cache.stats()["misses"]  # doctest: +SKIP
2
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import _io
from ._validation import check_finite, check_nonnegative_int, check_texts
from .errors import IndexFormatError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 256 * 2**20
CACHE_FORMAT = "lfm-retrievers/embedding-cache"
CACHE_FORMAT_VERSION = 2
_LEGACY_MANIFEST = "cache.json"  # format v1: entries without checksums
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
        if (directory / _io.MANIFEST_FILE).exists():
            _io.read_manifest(
                directory,
                formats=(CACHE_FORMAT,),
                max_version=CACHE_FORMAT_VERSION,
                what="embedding cache",
            )
            _remove_stale_temporaries(directory)
            return
        legacy = directory / _LEGACY_MANIFEST
        if legacy.is_file():
            try:
                legacy_ok = json.loads(legacy.read_text("utf-8")).get("version") == 1
            except (OSError, ValueError, AttributeError, RecursionError):
                legacy_ok = False
            if not legacy_ok:
                msg = f"{legacy} is not a readable embedding-cache manifest of format v1"
                raise IndexFormatError(msg)
        elif directory.exists() and any(directory.iterdir()):
            msg = (
                f"{directory} is not empty and not an embedding cache; pick an empty or new folder"
            )
            raise ValueError(msg)
        # New, or written by an earlier version: its unsealed entries read as misses.
        directory.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(directory)
        manifest = _io.make_manifest(
            format=CACHE_FORMAT,
            format_version=CACHE_FORMAT_VERSION,
            model=None,
            files={},
            generation=1,
            fields={"entries": "<sha256 of the key>.npy, each sealed with its own SHA-256"},
        )
        _io.write_manifest(directory, manifest)
        legacy.unlink(missing_ok=True)

    def _path(self, key: CacheKey) -> Path:
        assert self.directory is not None
        return self.directory / f"{key.digest()}.npy"

    def _read_disk(self, key: CacheKey) -> np.ndarray | None:
        """The entry of ``key`` on disk; a missing, damaged or foreign one is a miss."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cannot read cache entry %s: %s", path, exc)
            return None
        payload = _io.unseal(data, key.digest())
        array: Any = None
        if payload is not None:
            try:
                array = np.load(io.BytesIO(payload), allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                logger.warning("ignoring unreadable cache entry %s: %s", path, exc)
        if (
            not isinstance(array, np.ndarray)
            or array.ndim not in (1, 2)
            or not np.issubdtype(array.dtype, np.floating)
        ):
            if payload is None:
                logger.warning("ignoring damaged cache entry %s (checksum mismatch)", path)
            path.unlink(missing_ok=True)
            return None
        array.setflags(write=False)
        return array

    def _write_disk(self, key: CacheKey, array: np.ndarray) -> None:
        path = self._path(key)
        if path.exists():
            return
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        try:
            _io.atomic_write_bytes(path, _io.seal(buffer.getvalue(), key.digest()))
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


def _remove_stale_temporaries(directory: Path, max_age_s: float = 3600.0) -> None:
    """Remove temporary files of entry writes killed long ago (a live one takes milliseconds)."""
    now = time.time()
    for path in directory.glob(".*.tmp-*"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > max_age_s:
                path.unlink()


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
