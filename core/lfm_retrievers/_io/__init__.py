"""One manifest convention and one crash-safe folder write for every artifact the package saves.

Every saved folder (a ``DenseIndex`` / ``ColBERTIndex`` / ``BM25Index``, a persisted
``EmbeddingCache``, a persisted LlamaIndex retriever) holds a ``manifest.json``::

    {"format": "lfm-retrievers/colbert-index", "format_version": 2,
     "package_version": "0.3.0", "generation": 7, "model": {...} or null,
     "files": {"docs.json": {"bytes": 5123, "sha256": "9f2c..."}, ...}, ...artifact fields}

``files`` lists the size and SHA-256 of every other file in the folder, and the manifest carries
its own (``manifest_sha256``, over its canonical JSON). :func:`verify_files`
checks them streaming (1 MiB blocks), so a flipped byte anywhere is an
:class:`~lfm_retrievers.errors.IndexFormatError` naming the file, never a wrong result;
``verify=False`` checks sizes only (for very large folders whose storage is trusted).

**Saving** (:func:`save_folder`) writes a complete new version into a hidden sibling
``.<name>.tmp-<random>`` (every file and the folder fsynced, the manifest last), then swaps it
with the target in one step: ``renameat2(RENAME_EXCHANGE)`` on Linux, ``renamex_np(RENAME_SWAP)``
on macOS, so there is no moment at which the path holds nothing. Where the OS has no exchange
(Windows, some network file systems) the fallback is two renames; :func:`recover` then finds a
complete version in the leftovers (highest ``generation`` wins) and puts it back, so a crash
between the renames loses nothing. :func:`append_files` adds files to a folder in place and
swaps only the manifest (an ``os.replace`` of one file): the cost of a small change stays
proportional to the change (the Haystack store's autosave uses it through the indexes).

**One writer at a time.** A save holds an advisory lock (``flock`` on the parent folder, or a
``filelock`` sidecar where directories cannot be locked) for its whole duration, so two saves
to one path never interleave and leftovers found while holding the lock are stale: they are
removed at the next save, and at the next load when no save is running. A writer that passes
``expected_generation`` (the generation it loaded or last saved) gets a
:class:`~lfm_retrievers.errors.ConcurrentWriteError` when another writer saved in between,
instead of silently overwriting that writer's changes.

A target that is a symbolic link is followed: the folder it points to is replaced, the link
stays.

Why hand-written: the standard library has no atomic replacement of a folder, and the
maintained atomic-write packages (``atomicwrites`` is archived) cover single files only.
``filelock`` (already a dependency of torch and huggingface-hub) provides the sidecar lock.
"""

from __future__ import annotations

from .files import (
    FORMAT_PREFIX,
    MANIFEST_FILE,
    atomic_write_bytes,
    file_entries,
    fsync_write,
    make_manifest,
    package_cache_dir,
    read_format,
    read_generation,
    read_manifest,
    seal,
    sha256_file,
    unseal,
    verify_files,
    write_manifest,
)
from .folder import (
    ANY_GENERATION,
    DEFAULT_LOCK_TIMEOUT,
    SavedFolder,
    append_files,
    open_folder,
    recover,
    resolve_target,
    save_folder,
)

__all__ = [
    "ANY_GENERATION",
    "DEFAULT_LOCK_TIMEOUT",
    "FORMAT_PREFIX",
    "MANIFEST_FILE",
    "SavedFolder",
    "append_files",
    "atomic_write_bytes",
    "file_entries",
    "fsync_write",
    "make_manifest",
    "open_folder",
    "package_cache_dir",
    "read_format",
    "read_generation",
    "read_manifest",
    "recover",
    "resolve_target",
    "save_folder",
    "seal",
    "sha256_file",
    "unseal",
    "verify_files",
    "write_manifest",
]
