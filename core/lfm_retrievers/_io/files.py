"""Files of a saved folder: checksums, fsync, the one manifest, sealed single files.

See :mod:`lfm_retrievers._io` for the conventions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from lfm_retrievers._version import __version__
from lfm_retrievers.errors import IndexFormatError

MANIFEST_FILE: Final = "manifest.json"
FORMAT_PREFIX: Final = "lfm-retrievers/"
TMP_MARK: Final = ".tmp-"
SELF_CHECKSUM: Final = "manifest_sha256"
_BLOCK = 1 << 20


# ------------------------------------------------------------------------------ files


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def fsync_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to disk."""
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_file(path: Path) -> None:
    """Flush an already written file to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def listed_files(folder: Path) -> list[str]:
    """Relative POSIX paths of the files a manifest of ``folder`` lists.

    Every regular file except the manifest itself and hidden temporary files, and except the
    contents of a subfolder that has its own manifest (a saved artifact nested in another,
    checked by its own manifest when it is loaded).
    """
    out = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not (here / d / MANIFEST_FILE).is_file())
        for name in sorted(files):
            path = here / name
            rel = path.relative_to(folder).as_posix()
            if rel == MANIFEST_FILE or TMP_MARK in name or path.is_symlink():
                continue
            out.append(rel)
    return out


def file_entries(folder: Path, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{name: {"bytes": size, "sha256": hex}}`` for ``names`` (default: every file)."""
    names = listed_files(folder) if names is None else names
    return {
        n: {"bytes": (folder / n).stat().st_size, "sha256": sha256_file(folder / n)} for n in names
    }


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace the file ``path`` with ``data`` in one step (temporary file, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TMP_MARK}", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_SEAL = b"\nlfm-sha256:"
_SEAL_LEN = len(_SEAL) + 32


def seal(payload: bytes, context: str) -> bytes:
    """``payload`` followed by its SHA-256 (bound to ``context``), for :func:`unseal`.

    Used where one manifest per folder does not fit: an embedding-cache entry is written by
    many processes at any time, so each entry carries its own checksum instead.
    """
    digest = hashlib.sha256(context.encode("utf-8") + b"\0" + payload).digest()
    return payload + _SEAL + digest


def unseal(data: bytes, context: str) -> bytes | None:
    """The payload of :func:`seal` output, or None if it is damaged or of another context."""
    if len(data) < _SEAL_LEN or data[-_SEAL_LEN:-32] != _SEAL:
        return None
    payload = data[:-_SEAL_LEN]
    digest = hashlib.sha256(context.encode("utf-8") + b"\0" + payload).digest()
    return payload if digest == data[-32:] else None


# ------------------------------------------------------------------------------ manifest


def format_error(path: Path, why: str, exc: BaseException | None = None) -> IndexFormatError:
    err = IndexFormatError(f"cannot load {path}: {why}")
    if exc is not None:
        err.__cause__ = exc
    return err


def make_manifest(
    *,
    format: str,
    format_version: int,
    model: Mapping[str, Any] | None,
    files: Mapping[str, Mapping[str, Any]],
    generation: int,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A manifest dict in the one convention (artifact ``fields`` go after the common ones)."""
    manifest: dict[str, Any] = {
        "format": format,
        "format_version": int(format_version),
        "package_version": __version__,
        "generation": int(generation),
        "model": None if model is None else dict(model),
    }
    for key, value in (fields or {}).items():
        if key in manifest or key == "files":
            msg = f"manifest field {key!r} is reserved"
            raise ValueError(msg)
        manifest[key] = value
    manifest["files"] = {k: dict(v) for k, v in files.items()}
    return manifest


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of a manifest's content (canonical JSON, its own ``manifest_sha256`` left out)."""
    body = {k: v for k, v in manifest.items() if k != SELF_CHECKSUM}
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` (sealed with its own SHA-256) through a temporary file + rename."""
    sealed = {k: v for k, v in manifest.items() if k != SELF_CHECKSUM}
    sealed[SELF_CHECKSUM] = manifest_digest(sealed)
    tmp = folder / f".{MANIFEST_FILE}{TMP_MARK}{uuid.uuid4().hex[:12]}"
    try:
        fsync_write(tmp, json.dumps(sealed, indent=1, ensure_ascii=False).encode("utf-8"))
        os.replace(tmp, folder / MANIFEST_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(folder)


def read_manifest(
    folder: str | os.PathLike[str],
    *,
    formats: tuple[str, ...],
    max_version: int,
    what: str = "folder",
) -> dict[str, Any]:
    """The parsed, checked manifest of ``folder``.

    Args:
        folder: The saved folder.
        formats: Accepted ``format`` values (the first names the expected kind in errors).
        max_version: The newest ``format_version`` this package reads.
        what: How errors name the artifact (``"index"``, ``"embedding cache"``...).

    Raises:
        IndexFormatError: No manifest, not JSON, another format, a newer version or a
            malformed ``files`` table.
    """
    path = Path(folder)
    file = path / MANIFEST_FILE
    if not file.is_file():
        why = f"no {MANIFEST_FILE}: not a saved {what}, or an incomplete copy"
        raise format_error(path, why)
    try:
        manifest = json.loads(file.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise format_error(path, f"{MANIFEST_FILE} is not valid JSON (corrupted?)", exc) from exc
    if not isinstance(manifest, dict) or manifest.get("format") not in formats:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise format_error(path, f"{MANIFEST_FILE} is of format {got!r}, expected {formats[0]!r}")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise format_error(path, f"{MANIFEST_FILE} has an invalid format_version {version!r}")
    if version > max_version:
        why = (
            f"it was written in {what} format v{version} (format_version {version}) by "
            f"lfm-retrievers {manifest.get('package_version')}; this version reads up to "
            f"v{max_version}: upgrade lfm-retrievers"
        )
        raise format_error(path, why)
    if manifest.get(SELF_CHECKSUM) != manifest_digest(manifest):
        why = f"{MANIFEST_FILE} does not match its own SHA-256 (corrupted or edited by hand)"
        raise format_error(path, why)
    files = manifest.get("files")
    generation = manifest.get("generation")
    if (
        not isinstance(files, dict)
        or not all(
            isinstance(k, str)
            and isinstance(v, dict)
            and isinstance(v.get("bytes"), int)
            and isinstance(v.get("sha256"), str)
            for k, v in files.items()
        )
        or isinstance(generation, bool)
        or not isinstance(generation, int)
    ):
        raise format_error(path, f"{MANIFEST_FILE} lacks a valid files table or generation")
    for name in files:
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or name == MANIFEST_FILE:
            raise format_error(path, f"{MANIFEST_FILE} lists an invalid file name {name!r}")
    return manifest


def verify_files(
    folder: str | os.PathLike[str], manifest: Mapping[str, Any], *, verify: bool = True
) -> None:
    """Check that every file of ``manifest`` exists with its size and (``verify``) SHA-256.

    Raises:
        IndexFormatError: Naming the first missing, truncated or corrupted file.
    """
    path = Path(folder)
    for name, entry in manifest["files"].items():
        file = path / name
        try:
            size = file.stat().st_size
        except FileNotFoundError as exc:
            raise format_error(path, f"{name} is missing", exc) from exc
        if size != entry["bytes"]:
            why = f"{name} has {size} bytes, the manifest says {entry['bytes']} (truncated?)"
            raise format_error(path, why)
        if verify and sha256_file(file) != entry["sha256"]:
            raise format_error(path, f"{name} does not match its SHA-256 (corrupted)")


def read_format(folder: str | os.PathLike[str]) -> str | None:
    """The ``format`` named by ``folder``'s manifest, or None (no readable manifest)."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST_FILE).read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    found = manifest.get("format") if isinstance(manifest, dict) else None
    return found if isinstance(found, str) else None


def read_generation(folder: Path) -> int:
    """The ``generation`` of ``folder``'s manifest; 0 if it has none (absent or unreadable)."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_bytes().decode("utf-8"))
        generation = manifest["generation"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return 0
    return generation if isinstance(generation, int) and not isinstance(generation, bool) else 0


__all__ = [
    "FORMAT_PREFIX",
    "MANIFEST_FILE",
    "atomic_write_bytes",
    "file_entries",
    "format_error",
    "fsync_dir",
    "fsync_file",
    "fsync_write",
    "listed_files",
    "make_manifest",
    "manifest_digest",
    "read_format",
    "read_generation",
    "read_manifest",
    "seal",
    "sha256_file",
    "unseal",
    "verify_files",
    "write_manifest",
]


def package_cache_dir() -> Path:
    """The package cache: ``$LFM_RETRIEVERS_CACHE``, else ``$XDG_CACHE_HOME/lfm-retrievers``.

    ONNX exports and the CLI's tiny checkpoints live here; one definition, so they agree.
    """
    env = os.environ.get("LFM_RETRIEVERS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lfm-retrievers"
