"""Saving a folder atomically and crash-safely, recovering it, one writer at a time.

See :mod:`lfm_retrievers._io` for the guarantees and why this is written by hand.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lfm_retrievers._version import __version__
from lfm_retrievers.errors import ConcurrentWriteError, IndexFormatError

from .files import (
    MANIFEST_FILE,
    TMP_MARK,
    file_entries,
    fsync_dir,
    fsync_file,
    listed_files,
    make_manifest,
    read_format,
    read_generation,
    read_manifest,
    verify_files,
    write_manifest,
)

logger = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT: Final = 600.0
_OLD = ".old-"


class _AnyGeneration:
    def __repr__(self) -> str:
        return "ANY_GENERATION"


#: ``expected_generation`` value that replaces whatever the target holds.
ANY_GENERATION: Final = _AnyGeneration()


@dataclass(frozen=True)
class SavedFolder:
    """The outcome of a save: where it landed and its manifest.

    Attributes:
        path: The folder written (a symbolic link's destination when the target was a link).
        generation: The new generation (1 for the first save to a path).
        manifest: The manifest written.
    """

    path: Path
    generation: int
    manifest: dict[str, Any]


# ------------------------------------------------------------------------------ swap


def _load_exchange() -> Callable[[Path, Path], bool] | None:
    """An atomic ``exchange(a, b)`` from the C library, or None where the OS has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        fn = libc.renameat2
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        at_fdcwd, rename_exchange = -100, 2

        def call(a: bytes, b: bytes) -> int:
            return int(fn(at_fdcwd, a, at_fdcwd, b, rename_exchange))

    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        fn = libc.renamex_np
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
        rename_swap = 2

        def call(a: bytes, b: bytes) -> int:
            return int(fn(a, b, rename_swap))

    else:
        return None

    def exchange(a: Path, b: Path) -> bool:
        if call(os.fsencode(a), os.fsencode(b)) == 0:
            return True
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            return False  # this file system cannot exchange: use the fallback
        raise OSError(err, os.strerror(err), str(b))

    return exchange


_EXCHANGE = _load_exchange()


def _swap_in(tmp: Path, target: Path) -> None:
    """Make the complete folder ``tmp`` the ``target``; the old version ends at ``tmp``."""
    if not target.exists():
        os.replace(tmp, target)
    elif _EXCHANGE is not None and _EXCHANGE(tmp, target):
        pass
    else:  # two renames; recover() repairs a crash between them
        old = target.parent / f".{target.name}{_OLD}{uuid.uuid4().hex[:12]}"
        os.replace(target, old)
        os.replace(tmp, target)
        os.replace(old, tmp)
    fsync_dir(target.parent)


# ------------------------------------------------------------------------------ locking


@contextlib.contextmanager
def _locked(target: Path, *, timeout: float, blocking: bool = True) -> Iterator[bool]:
    """Hold the writers' lock of ``target`` (yields False when ``blocking=False`` and taken)."""
    parent = target.parent
    if os.name != "nt":
        import fcntl

        fd = os.open(parent, os.O_RDONLY)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not blocking:
                        yield False
                        return
                    if time.monotonic() > deadline:
                        msg = (
                            f"another writer has held the lock of {target} for {timeout:.0f} s; "
                            "two processes cannot save one path at the same time"
                        )
                        raise ConcurrentWriteError(msg) from None
                    time.sleep(0.02)
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return
    from filelock import FileLock, Timeout  # pragma: no cover - Windows

    lock = FileLock(str(parent / f".{target.name}.lock"))  # pragma: no cover
    try:  # pragma: no cover
        lock.acquire(timeout=timeout if blocking else 0)
    except Timeout:  # pragma: no cover
        if not blocking:
            yield False
            return
        msg = f"another writer holds the lock of {target}"
        raise ConcurrentWriteError(msg) from None
    try:  # pragma: no cover
        yield True
    finally:
        lock.release()


# ------------------------------------------------------------------------------ recovery


def resolve_target(path: str | os.PathLike[str]) -> Path:
    """The folder a save to ``path`` writes: a symbolic link is followed to its destination."""
    target = Path(os.path.abspath(os.fspath(path)))
    if target.is_symlink():
        real = Path(os.path.realpath(target))
        logger.debug("%s is a symbolic link: saving to %s", target, real)
        target = real
    if target.exists() and not target.is_dir():
        msg = f"{target} exists and is not a folder; refusing to overwrite it"
        raise ValueError(msg)
    return target


def _leftovers(target: Path) -> list[Path]:
    prefix = f".{target.name}"
    if not target.parent.is_dir():
        return []
    return [
        p
        for p in target.parent.iterdir()
        if p.name.startswith((prefix + TMP_MARK, prefix + _OLD)) and not p.is_symlink()
    ]


def _complete(folder: Path) -> bool:
    """Whether ``folder`` holds a manifest whose files are all present with their sizes."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_bytes().decode("utf-8"))
        return all((folder / n).stat().st_size == e["bytes"] for n, e in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return False


def _recover_locked(target: Path) -> None:
    """Put back a complete version if ``target`` is missing, then remove stale leftovers."""
    leftovers = _leftovers(target)
    if not (target / MANIFEST_FILE).exists() and leftovers:
        complete = [p for p in leftovers if p.is_dir() and _complete(p)]
        if complete:
            best = max(complete, key=read_generation)
            if target.exists():
                if any(target.iterdir()):
                    msg = f"{target} holds files but no {MANIFEST_FILE}; not replacing it"
                    raise IndexFormatError(msg)
                target.rmdir()
            os.replace(best, target)
            fsync_dir(target.parent)
            logger.warning(
                "recovered %s (generation %d) from %s left by an interrupted save",
                target,
                read_generation(target),
                best.name,
            )
            leftovers.remove(best)
        elif any(p.name.startswith(f".{target.name}{_OLD}") for p in leftovers):
            msg = (
                f"{target} is missing and the previous version left by an interrupted save is "
                f"incomplete ({', '.join(p.name for p in leftovers)}); restore it from a backup"
            )
            raise IndexFormatError(msg)
    for p in leftovers:
        logger.info("removing %s left by an interrupted save", p)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()


def recover(path: str | os.PathLike[str], *, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Path:
    """Repair what an interrupted save left at ``path``; returns the folder to read.

    If the folder is missing but an interrupted save left a complete version next to it, that
    version is put back (waiting for a running save to finish first). Stale temporary folders
    are removed when no save is running. Safe to call from any process at any time.
    """
    target = resolve_target(path)
    missing = not (target / MANIFEST_FILE).exists()
    if not missing and not _leftovers(target):
        return target
    try:
        with _locked(target, timeout=timeout, blocking=missing) as got:
            if got:
                _recover_locked(target)
    except PermissionError:
        logger.debug("cannot lock %s (read-only?); leftovers not examined", target.parent)
    return target


def open_folder(
    path: str | os.PathLike[str],
    *,
    formats: tuple[str, ...],
    max_version: int,
    what: str = "folder",
    verify: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Recover ``path`` if needed, then read and check its manifest and every listed file.

    Returns:
        The folder (a symbolic link's destination) and its manifest.

    Raises:
        IndexFormatError: No manifest, another format, a newer version, or a missing,
            truncated or (``verify``) corrupted file.
    """
    folder = recover(path)
    manifest = read_manifest(folder, formats=formats, max_version=max_version, what=what)
    verify_files(folder, manifest, verify=verify)
    return folder, manifest


# ------------------------------------------------------------------------------ writing


def _check_generation(target: Path, expected: int | _AnyGeneration | None) -> int:
    current = read_generation(target) if (target / MANIFEST_FILE).exists() else 0
    if isinstance(expected, _AnyGeneration):
        return current
    want = expected or 0
    if current != want:
        if want == 0:
            state = "that did not exist when this writer started"
        else:
            state = f"at generation {want} when this writer loaded or last saved it"
        msg = (
            f"{target} was saved by another writer (it is now at generation {current}, "
            f"{state}); saving would discard those changes: reload it and apply yours again"
        )
        raise ConcurrentWriteError(msg)
    return current


def save_folder(
    path: str | os.PathLike[str],
    write: Callable[[Path], Mapping[str, Any]],
    *,
    format: str,
    format_version: int,
    model: Mapping[str, Any] | None = None,
    expected_generation: int | _AnyGeneration | None = ANY_GENERATION,
    replaces: tuple[str, ...] | None = (),
    what: str = "folder",
    timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> SavedFolder:
    """Write a new version of the folder ``path`` atomically and crash-safely.

    Args:
        path: The folder to (re)place; a symbolic link is followed.
        write: Writes the artifact's files into the empty folder it is given and returns the
            artifact's own manifest fields. Files need not be fsynced; this function does it.
        format: The manifest ``format`` (``"lfm-retrievers/<kind>"``).
        format_version: The manifest ``format_version``.
        model: The model identity stamped in the manifest, or None.
        expected_generation: The generation the caller loaded or last saved (``None``: the
            path must not hold a saved folder yet); :data:`ANY_GENERATION` replaces anything.
        replaces: Names of files that mark an earlier layout of the same artifact; a
            non-empty folder is replaced only if it holds ``format`` or one of them
            (``None``: the caller checked the folder itself; anything is replaced).
        what: How errors name the artifact (``"index"``, ``"BM25 index"``...).
        timeout: Seconds to wait for another writer of the same path.

    Returns:
        Where the folder landed and its new generation.

    Raises:
        ConcurrentWriteError: Another writer saved since ``expected_generation``.
        ValueError: ``path`` is a file or a folder of something else.
    """
    target = resolve_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target, timeout=timeout):
        _recover_locked(target)
        if (
            replaces is not None
            and target.exists()
            and any(target.iterdir())
            and read_format(target) != format
            and not any((target / n).is_file() for n in replaces)
        ):
            msg = f"{target} exists and is not a saved {what} ({format}); refusing to overwrite it"
            raise ValueError(msg)
        generation = _check_generation(target, expected_generation) + 1
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{TMP_MARK}", dir=target.parent))
        try:
            fields = write(tmp)
            names = listed_files(tmp)
            for name in names:
                fsync_file(tmp / name)
            manifest = make_manifest(
                format=format,
                format_version=format_version,
                model=model,
                files=file_entries(tmp, names),
                generation=generation,
                fields=fields,
            )
            write_manifest(tmp, manifest)
            _swap_in(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # the failed write, or the old version
    logger.debug("saved %s (generation %d)", target, generation)
    return SavedFolder(target, generation, manifest)


def append_files(
    path: str | os.PathLike[str],
    write: Callable[[Path], tuple[Mapping[str, Any], list[str]]],
    *,
    expected_generation: int,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> SavedFolder:
    """Add files to a saved folder in place and swap in a new manifest (cost: the new data).

    ``write(folder)`` writes new files under names the current manifest does not use and
    returns ``(fields, obsolete)``: the manifest fields to update and the listed files the
    new version no longer needs (removed after the new manifest is in place). A crash leaves
    the previous version intact; unlisted files it leaves are removed by a later save.

    Raises:
        ConcurrentWriteError: Another writer saved since ``expected_generation``.
    """
    target = resolve_target(path)
    with _locked(target, timeout=timeout):
        _recover_locked(target)
        _check_generation(target, expected_generation)
        manifest = json.loads((target / MANIFEST_FILE).read_bytes().decode("utf-8"))
        _remove_unlisted(target, manifest)
        try:
            fields, obsolete = write(target)
            files = dict(manifest["files"])
            new = [n for n in listed_files(target) if n not in files]
            for name in new:
                fsync_file(target / name)
            files.update(file_entries(target, new))
            for name in obsolete:
                files.pop(name, None)
            updated = {k: v for k, v in manifest.items() if k != "files"}
            updated.update(fields)
            updated["package_version"] = __version__
            updated["generation"] = int(manifest["generation"]) + 1
            updated["files"] = files
            write_manifest(target, updated)
        except BaseException:
            _remove_unlisted(target, manifest)  # what this failed save wrote
            raise
        for name in obsolete:
            with contextlib.suppress(OSError):
                (target / name).unlink()
    return SavedFolder(target, updated["generation"], updated)


def _remove_unlisted(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Remove files an interrupted :func:`append_files` left (caller holds the lock)."""
    listed = set(manifest["files"])
    for name in listed_files(folder):
        if name not in listed:
            logger.info("removing %s/%s left by an interrupted save", folder, name)
            with contextlib.suppress(OSError):
                (folder / name).unlink()
    for p in folder.glob(f".{MANIFEST_FILE}{TMP_MARK}*"):
        with contextlib.suppress(OSError):
            p.unlink()


__all__ = [
    "ANY_GENERATION",
    "DEFAULT_LOCK_TIMEOUT",
    "SavedFolder",
    "append_files",
    "open_folder",
    "recover",
    "resolve_target",
    "save_folder",
]
