"""The identity of a checkpoint: a SHA-256 over its configuration and every weight byte.

Saved indexes and the embedding cache are stamped with it, so that vectors made by one model
are never mixed with another's. It covers every file that changes what the model computes
(configs, tokenizer, the trunk's and the projection's weights), each hashed in full.

Hashing 700 MB of weights takes a few seconds, so each file's SHA-256 is computed once and
remembered: in memory, and in ``.lfm-retrievers-fingerprint.json`` next to the checkpoint
(keyed by the file's size, mtime, ctime and inode, so any rewrite is noticed). A file of the
Hugging Face hub cache needs no hashing at all: the hub stores large files under their SHA-256
(``blobs/<sha256>``), which is read from the link. A read-only checkpoint folder still works;
its hashes are then kept in memory only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

from lfm_retrievers._io import atomic_write_bytes, sha256_file

logger = logging.getLogger(__name__)

#: The files whose bytes make up a checkpoint's identity (those present are hashed).
IDENTITY_FILES = (
    "config.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "modules.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors",
    "1_Pooling/config.json",
    "1_Dense/config.json",
    "1_Dense/model.safetensors",
)
CACHE_FILE = ".lfm-retrievers-fingerprint.json"
_CACHE_VERSION = 1
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MEMORY: dict[tuple[str, int, int, int, int], str] = {}
_LOCK = threading.Lock()


def _stat_key(file: Path) -> tuple[str, int, int, int, int]:
    st = file.stat()
    return (str(file.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _hub_sha256(file: Path) -> str | None:
    """The SHA-256 a Hugging Face cache link names (``.../blobs/<sha256>``), if it is one."""
    if not file.is_symlink():
        return None
    blob = Path(os.readlink(file))
    if blob.parent.name == "blobs" and _HEX64.match(blob.name):
        return blob.name
    return None


def _read_cache(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _write_cache(folder: Path, files: dict[str, Any]) -> None:
    data = json.dumps({"version": _CACHE_VERSION, "files": files}).encode("utf-8")
    try:
        atomic_write_bytes(folder / CACHE_FILE, data)
    except OSError as exc:  # a read-only folder: keep the hashes in memory only
        logger.debug("cannot cache the fingerprint in %s: %s", folder, exc)


def file_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of each identity file present in ``folder`` (computed once, then cached)."""
    cached = _read_cache(folder)
    out: dict[str, str] = {}
    changed = False
    for rel in IDENTITY_FILES:
        file = folder / rel
        if not file.is_file():
            continue
        key = _stat_key(file)
        digest = _MEMORY.get(key) or _hub_sha256(file)
        entry = cached.get(rel)
        if digest is None and isinstance(entry, dict) and entry.get("key") == list(key[1:]):
            digest = entry.get("sha256") if _HEX64.match(str(entry.get("sha256"))) else None
        if digest is None:
            digest = sha256_file(file)
        if not isinstance(entry, dict) or entry != {"key": list(key[1:]), "sha256": digest}:
            cached[rel] = {"key": list(key[1:]), "sha256": digest}
            changed = True
        with _LOCK:
            _MEMORY[key] = digest
        out[rel] = digest
    if changed:
        _write_cache(folder, cached)
    return out


def fingerprint(folder: str | os.PathLike[str]) -> str:
    """A 16-hex identity of the checkpoint in ``folder``, covering every weight byte.

    Used to key the embedding cache and to stamp saved indexes. Two checkpoints share it only
    if their configs, tokenizers and weights are byte-identical.
    """
    path = Path(folder)
    h = hashlib.sha256()
    for rel, digest in sorted(file_digests(path).items()):
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()[:16]


__all__ = ["CACHE_FILE", "IDENTITY_FILES", "file_digests", "fingerprint"]
