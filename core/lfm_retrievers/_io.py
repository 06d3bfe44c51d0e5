"""Atomic writes: a save either lands whole or leaves the previous version in place."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


def replace_dir(tmp: Path, target: Path) -> None:
    """Move the complete folder ``tmp`` to ``target``, replacing a previous ``target``."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def atomic_dir_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write a folder through ``write(tmp)`` in a sibling temporary folder, then swap it in.

    If ``write`` raises, the temporary folder is removed and ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        write(tmp)
        replace_dir(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
