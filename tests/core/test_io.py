"""The one atomic folder write of ``_io``: crash safety, recovery, leftovers, writers, links.

Crashes are real: a forked child runs the save and ends with ``os._exit`` (no cleanup handler,
no ``finally``) either after a random delay or just before its n-th file-system call.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lfm_retrievers import _io
from lfm_retrievers._io import folder as io_folder
from lfm_retrievers.errors import ConcurrentWriteError, IndexFormatError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

FORMAT = "lfm-retrievers/test-folder"


def writer(version: int, n_files: int = 3, size: int = 20_000) -> Callable[[Path], dict]:
    def write(tmp: Path) -> dict:
        for i in range(n_files):
            np.save(tmp / f"part{i}.npy", np.full(size // 4, version, dtype=np.float32))
        (tmp / "docs.json").write_text(json.dumps({"version": version}), "utf-8")
        return {"version": version}

    return write


def save(target: Path, version: int, size: int = 20_000, **kwargs) -> _io.SavedFolder:
    return _io.save_folder(
        target, writer(version, size=size), format=FORMAT, format_version=1, **kwargs
    )


def read_version(target: Path) -> int | str:
    """The version a reader gets after recovery, or why it cannot read one."""
    path = _io.recover(target)
    try:
        manifest = _io.read_manifest(path, formats=(FORMAT,), max_version=1)
        _io.verify_files(path, manifest)
    except IndexFormatError as exc:
        return f"error: {exc}"
    version = manifest["version"]
    assert json.loads((path / "docs.json").read_text("utf-8"))["version"] == version
    assert all((np.load(path / f"part{i}.npy") == version).all() for i in range(3)), (
        "a file of another version"
    )
    return version


FS_CALLS = [
    (os, "replace"),
    (os, "rename"),
    (os, "mkdir"),
    (os, "fsync"),
    (os, "unlink"),
    (os, "rmdir"),
    (os, "open"),
    (builtins, "open"),
    (io, "open"),
    (shutil, "rmtree"),
]


def crash_at_call(n: int) -> list[int]:
    """Make this process die (no cleanup) just before its ``n``-th file-system call."""
    count = [0]
    for module, name in FS_CALLS:
        original = getattr(module, name)

        def wrapper(*args, __original=original, **kwargs):
            count[0] += 1
            if count[0] == n:
                os._exit(137)
            return __original(*args, **kwargs)

        setattr(module, name, wrapper)
    return count


def run_child(action: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            action()
        finally:
            os._exit(0)
    return pid


def count_calls(target: Path) -> int:
    r, w = os.pipe()

    def child() -> None:
        count = crash_at_call(-1)
        save(target, 2)
        os.write(w, str(count[0]).encode())

    os.waitpid(run_child(child), 0)
    os.close(w)
    return int(os.read(r, 64))


@pytest.fixture(params=["exchange", "two-renames"])
def swap(request, monkeypatch):
    if request.param == "two-renames":
        monkeypatch.setattr(io_folder, "_EXCHANGE", None)
    elif io_folder._EXCHANGE is None:
        pytest.skip("this OS or file system has no atomic exchange")
    return request.param


def test_a_crash_at_each_file_system_call_keeps_a_complete_version(tmp_path, swap):
    target = tmp_path / "idx"
    save(target, 1)
    total = count_calls(target)
    assert total >= 10
    seen = []
    for n in range(1, total + 1):
        shutil.rmtree(target)
        save(target, 1)
        os.waitpid(run_child(lambda n=n: (crash_at_call(n), save(target, 2))), 0)
        got = read_version(target)
        assert got in (1, 2), f"crash before call {n} of {total}: {got}"
        assert not io_folder._leftovers(target), f"crash before call {n}: leftovers not removed"
        seen.append(got)
    assert seen[0] == 1 and seen[-1] == 2  # the harness crashed the save at both ends


def test_random_kills_during_a_save_keep_a_complete_version(tmp_path):
    target = tmp_path / "idx"
    save(target, 1)
    start = time.perf_counter()
    save(target, 2, size=2_000_000)
    duration = time.perf_counter() - start
    rng = random.Random(0)
    outcomes = []
    for _ in range(16):
        shutil.rmtree(target)
        save(target, 1)
        pid = run_child(lambda: save(target, 2, size=2_000_000))
        time.sleep(rng.uniform(0, duration * 1.5))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        outcomes.append(read_version(target))
        assert not io_folder._leftovers(target)
    assert set(outcomes) <= {1, 2}


def test_recovery_after_a_crash_between_the_two_renames(tmp_path, monkeypatch):
    """The reproduction of issue 14 item 2: old moved away, new not yet moved in."""
    monkeypatch.setattr(io_folder, "_EXCHANGE", None)
    target = tmp_path / "idx"
    save(target, 1)
    real_replace = os.replace
    calls = []

    def replace(src, dst):
        calls.append((src, dst))
        if Path(dst) == target and Path(src).name.startswith(".idx.tmp-"):
            os._exit(137)
        real_replace(src, dst)

    def child() -> None:
        monkeypatch.setattr(os, "replace", replace)
        save(target, 2)

    os.waitpid(run_child(child), 0)
    assert not target.exists()  # the window the issue found
    assert read_version(target) == 2  # a reader puts the complete new version back
    assert target.is_dir() and not io_folder._leftovers(target)


def test_a_writer_never_treats_missing_with_leftovers_as_new(tmp_path, monkeypatch):
    monkeypatch.setattr(io_folder, "_EXCHANGE", None)
    target = tmp_path / "idx"
    save(target, 1)
    old = tmp_path / ".idx.old-crashed"
    os.replace(target, old)  # the state after the first rename, nothing else
    saved = save(target, 3, expected_generation=1)  # the writer that loaded generation 1
    assert saved.generation == 2 and read_version(target) == 3
    assert not old.exists()


def test_missing_with_an_incomplete_previous_version_is_an_error(tmp_path):
    target = tmp_path / "idx"
    save(target, 1)
    old = tmp_path / ".idx.old-crashed"
    os.replace(target, old)
    (old / "part0.npy").write_bytes(b"short")
    with pytest.raises(IndexFormatError, match="incomplete"):
        _io.recover(target)


def test_stale_leftovers_are_removed_but_not_a_live_write(tmp_path):
    target = tmp_path / "idx"
    save(target, 1)
    stale = tmp_path / ".idx.tmp-stale"
    stale.mkdir()
    (stale / "part0.npy").write_bytes(b"x" * 1000)
    r, w = os.pipe()
    go_r, go_w = os.pipe()

    def slow_write(tmp: Path) -> dict:
        os.write(w, str(tmp).encode())
        os.read(go_r, 1)  # wait until the parent has tried to clean up
        return writer(2)(tmp)

    pid = run_child(lambda: _io.save_folder(target, slow_write, format=FORMAT, format_version=1))
    live = Path(os.read(r, 4096).decode())
    assert not stale.exists()  # the writer removed the stale one under its lock
    assert read_version(target) == 1  # a reader during the write: cleanup skipped
    assert live.is_dir()  # the live write was left alone
    os.write(go_w, b"x")
    os.waitpid(pid, 0)
    assert read_version(target) == 2 and not io_folder._leftovers(target)


def test_a_second_writer_that_loaded_an_older_generation_is_refused(tmp_path):
    target = tmp_path / "idx"
    first = save(target, 1)
    mine = first.generation
    theirs = save(target, 2, expected_generation=mine)  # another writer saves in between
    with pytest.raises(ConcurrentWriteError, match="generation 2"):
        save(target, 3, expected_generation=mine)
    assert read_version(target) == 2  # the other writer's changes survive
    assert save(target, 3, expected_generation=theirs.generation).generation == 3
    save(tmp_path / "new", 1, expected_generation=None)  # first writer of a new path
    with pytest.raises(ConcurrentWriteError, match="did not exist"):
        save(tmp_path / "new", 2, expected_generation=None)  # second one that saw it missing


def test_a_symlinked_target_is_followed_and_the_link_kept(tmp_path):
    real = tmp_path / "real"
    save(real, 1)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    saved = save(link, 2)
    assert link.is_symlink() and saved.path == real.resolve()
    assert read_version(real) == 2 and read_version(link) == 2


def test_a_file_or_a_foreign_folder_is_not_replaced(tmp_path):
    file = tmp_path / "file"
    file.write_text("keep me")
    with pytest.raises(ValueError, match="not a folder"):
        save(file, 1)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(ValueError, match="not a saved"):
        save(foreign, 1)
    assert file.read_text() == "keep me" and (foreign / "cat.jpg").read_bytes() == b"meow"


def test_every_flipped_byte_is_caught_and_verify_false_checks_sizes_only(tmp_path):
    target = tmp_path / "idx"
    save(target, 1)
    manifest = _io.read_manifest(target, formats=(FORMAT,), max_version=1)
    rng = random.Random(0)
    for name in manifest["files"]:
        original = (target / name).read_bytes()
        for _ in range(5):
            data = bytearray(original)
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
            (target / name).write_bytes(bytes(data))
            with pytest.raises(IndexFormatError, match=f"{name} does not match its SHA-256"):
                _io.verify_files(target, manifest)
            _io.verify_files(target, manifest, verify=False)  # same size: not checked
        (target / name).write_bytes(original[:-1])
        with pytest.raises(IndexFormatError, match=f"{name} has .* bytes"):
            _io.verify_files(target, manifest, verify=False)
        (target / name).unlink()
        with pytest.raises(IndexFormatError, match=f"{name} is missing"):
            _io.verify_files(target, manifest)
        save(target, 1)  # restore for the next file


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"format": "something-else"}',
        json.dumps({"format": FORMAT, "format_version": 99, "files": {}, "generation": 1}),
        json.dumps({"format": FORMAT, "format_version": 0, "files": {}, "generation": 1}),
        json.dumps({"format": FORMAT, "format_version": 1, "files": [], "generation": 1}),
        json.dumps(
            {
                "format": FORMAT,
                "format_version": 1,
                "generation": 1,
                "files": {"../outside": {"bytes": 1, "sha256": "0"}},
            }
        ),
        "[" * 100_000,
    ],
)
def test_a_damaged_manifest_is_an_index_format_error(tmp_path, text):
    target = tmp_path / "idx"
    save(target, 1)
    (target / _io.MANIFEST_FILE).write_text(text, "utf-8")
    with pytest.raises(IndexFormatError, match=str(target)):
        _io.read_manifest(target, formats=(FORMAT,), max_version=1)
