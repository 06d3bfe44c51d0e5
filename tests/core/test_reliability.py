"""Issue 14 (reliability) on the real indexes: each test starts from the issue's reproduction.

Crashes are real: a forked child saves and dies with ``os._exit`` (no ``finally``, no cleanup)
just before its n-th file-system call. Corruptions are made to the saved bytes on disk.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from lfm_retrievers import BM25Index, ColBERTEncoder, ColBERTIndex, DenseIndex, load
from lfm_retrievers._io import folder as io_folder
from lfm_retrievers.errors import ConcurrentWriteError, IndexFormatError
from lfm_retrievers.models import fingerprint as fp

TEXTS = [
    "Mars is called the red planet.",
    "Venus is the hottest planet in the solar system.",
    "Bananas are rich in potassium.",
    "Jupiter is a gas giant with a great red spot.",
    "Saturn has rings made of ice.",
    "El zorro marrón salta sobre el perro perezoso.",
]
IDS = [f"d{i}" for i in range(len(TEXTS))]
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
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@pytest.fixture(scope="module")
def colbert(tiny_colbert_path: Path) -> ColBERTEncoder:
    enc = load(tiny_colbert_path, device="cpu")
    assert isinstance(enc, ColBERTEncoder)
    return enc


def _crash_before_call(n: int) -> list[int]:
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


def _in_child(action, kill_at: int) -> int:
    """Run ``action`` in a forked child that dies before file-system call ``kill_at``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            count = _crash_before_call(kill_at)
            action()
            os.write(w, str(count[0]).encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    out = os.read(r, 64)
    os.close(r)
    return int(out) if out else -1


# ------------------------------------------------------------------ items 2 and 12: crashes


@needs_fork
@pytest.mark.parametrize("how", ["rewrite", "append", "bm25"])
def test_a_crash_at_each_file_system_call_of_a_save_keeps_old_or_new(colbert, tmp_path, how):
    """Issue 14 item 2: 1 of 23 kills (between the renames) left nothing at the path before."""
    target = tmp_path / "ix"
    template = tmp_path / "template"
    new: BM25Index | ColBERTIndex
    if how == "bm25":
        BM25Index(TEXTS[:3], ids=IDS[:3]).save(template)
        new = BM25Index(TEXTS, ids=IDS)

        def state() -> list[str]:
            return BM25Index.load(target).ids

    else:
        old = ColBERTIndex(colbert)
        old.add(TEXTS[:3], ids=IDS[:3])
        old.save(template)
        shutil.copytree(template, target)
        if how == "append":  # bound to the folder: the save appends a segment
            new = ColBERTIndex.load(target, colbert)
        else:  # never saw the folder: the save rewrites it
            new = ColBERTIndex(colbert)
            new.add(TEXTS[:3], ids=IDS[:3])
        new.add(TEXTS[3:], ids=IDS[3:])
        new.delete("d1")

        def state() -> list[str]:
            return ColBERTIndex.load(target, colbert).ids

    def reset() -> None:  # the parent's index is untouched by the child's save
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(template, target)

    reset()
    total = _in_child(lambda: new.save(target), -1)
    assert total > 5
    seen = set()
    for n in range(1, total + 1):
        reset()
        _in_child(lambda: new.save(target), n)
        try:
            ids = state()
        except IndexFormatError as exc:
            msg = f"crash before call {n} of {total}"
            raise AssertionError(msg) from exc
        want_new = [i for i in IDS if how == "bm25" or i != "d1"]
        assert ids in (IDS[:3], want_new), f"crash before call {n} of {total}: {ids}"
        seen.add(tuple(ids))
        leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("ix", "template")]
        assert leftovers == [], f"crash before call {n}: {leftovers} left after a load"
    assert len(seen) == 2


def test_a_store_reopening_never_mistakes_missing_for_empty(colbert, tmp_path, monkeypatch):
    """Issue 14 item 2: the Haystack store reopened empty and overwrote the path."""
    monkeypatch.setattr(io_folder, "_EXCHANGE", None)
    target = tmp_path / "ix"
    index = ColBERTIndex(colbert)
    index.add(TEXTS, ids=IDS)
    index.save(target)
    os.replace(target, tmp_path / ".ix.old-1234")  # a crash after the first rename
    reopened = ColBERTIndex.open(target, colbert)
    assert reopened.ids == IDS  # recovered, not a new empty index
    assert not (tmp_path / ".ix.old-1234").exists()


def test_open_creates_a_bound_new_index_and_detects_a_racing_creator(colbert, tmp_path):
    target = tmp_path / "new"
    first = ColBERTIndex.open(target, colbert)
    second = ColBERTIndex.open(target, colbert)
    assert len(first) == 0 and not target.exists()
    first.add(TEXTS[:2], ids=IDS[:2])
    first.save(target)
    second.add(TEXTS[2:4], ids=IDS[2:4])
    with pytest.raises(ConcurrentWriteError, match="did not exist"):
        second.save(target)
    assert ColBERTIndex.load(target, colbert).ids == IDS[:2]
    with pytest.raises(ValueError, match="pass encoder= or model="):
        ColBERTIndex.open(tmp_path / "other")


# ------------------------------------------------------------------ item 13: two writers


def test_two_writers_of_one_folder_the_second_is_refused(colbert, tmp_path):
    """Issue 14 item 13: two processes saving one path, the second silently won."""
    target = tmp_path / "ix"
    base = ColBERTIndex(colbert)
    base.add(TEXTS[:2], ids=IDS[:2])
    base.save(target)
    a = ColBERTIndex.load(target, colbert)
    b = ColBERTIndex.load(target, colbert)
    a.add([TEXTS[2]], ids=["from-a"])
    a.save(target)
    b.add([TEXTS[3]], ids=["from-b"])
    with pytest.raises(ConcurrentWriteError, match="reload it"):
        b.save(target)
    assert "from-a" in ColBERTIndex.load(target, colbert)  # A's update survives
    fresh = ColBERTIndex.load(target, colbert)  # the documented way out: reload, reapply
    fresh.add([TEXTS[3]], ids=["from-b"])
    fresh.save(target)
    assert ColBERTIndex.load(target, colbert).ids == [*IDS[:2], "from-a", "from-b"]

    bm = BM25Index(TEXTS[:2], ids=IDS[:2])
    bm.save(tmp_path / "bm")
    x, y = BM25Index.load(tmp_path / "bm"), BM25Index.load(tmp_path / "bm")
    x.add(["one"], ids=["x"])
    x.save(tmp_path / "bm")
    y.add(["two"], ids=["y"])
    with pytest.raises(ConcurrentWriteError):
        y.save(tmp_path / "bm")


# ------------------------------------------------------------------ item 14: appending saves


def test_repeated_saves_append_and_stay_small(colbert, tmp_path):
    """Issue 14 item 14: every autosave rewrote the whole index (250x write amplification)."""
    target = tmp_path / "ix"
    index = ColBERTIndex(colbert)
    index.add(TEXTS * 8, ids=[f"base{i}" for i in range(len(TEXTS) * 8)])
    index.save(target)
    index = ColBERTIndex.load(target, colbert)
    rng = random.Random(0)
    written = 0
    for i in range(16):
        before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
        index.add([rng.choice(TEXTS)], ids=[f"new{i}"])
        if i % 7 == 3:
            index.delete(f"new{i - 1}")
        index.save(target)
        written += sum(
            p.stat().st_size
            for p in target.iterdir()
            if p.name != "manifest.json" and before.get(p.name) != p.stat().st_mtime_ns
        )
    size = sum(p.stat().st_size for p in target.iterdir() if p.name != "manifest.json")
    manifest = json.loads((target / "manifest.json").read_text())
    assert len(manifest["segments"]) <= 12  # merged as they accumulate
    assert written < 3 * size  # a full rewrite per save would be ~16x
    reloaded = ColBERTIndex.load(target, colbert)
    assert reloaded.ids == index.ids
    for query in ("red planet", "ice rings", "zorro"):
        got = [(h.id, round(h.score, 3)) for h in reloaded.search(query, k=8)]
        assert got == [(h.id, round(h.score, 3)) for h in index.search(query, k=8)]


def test_deleting_a_quarter_rewrites_the_folder_without_them(colbert, tmp_path):
    target = tmp_path / "ix"
    index = ColBERTIndex(colbert)
    index.add(TEXTS, ids=IDS)
    index.save(target)
    index.delete(IDS[:2])
    index.save(target)
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["deleted"] is None and manifest["n_rows"] == len(TEXTS) - 2
    assert ColBERTIndex.load(target, colbert).ids == IDS[2:]


# ------------------------------------------------------------------ item 15: symlinks


def test_saving_to_a_symlinked_folder_follows_the_link(colbert, tmp_path):
    """Issue 14 item 15: the link was replaced by a folder."""
    real = tmp_path / "volume" / "index"
    real.parent.mkdir()
    link = tmp_path / "index"
    link.symlink_to(real, target_is_directory=True)
    index = ColBERTIndex(colbert)
    index.add(TEXTS, ids=IDS)
    index.save(link)
    assert link.is_symlink() and (real / "manifest.json").is_file()
    index.add(["one more"], ids=["more"])
    index.save(link)
    assert link.is_symlink() and ColBERTIndex.load(link, colbert).ids == [*IDS, "more"]
    bm = BM25Index(TEXTS)
    (tmp_path / "bm-real").mkdir()
    (tmp_path / "bm-link").symlink_to(tmp_path / "bm-real", target_is_directory=True)
    bm.save(tmp_path / "bm-link")
    assert (tmp_path / "bm-link").is_symlink() and (tmp_path / "bm-real" / "vocab.json").exists()


# ------------------------------------------------------------------ item 4: corruption


def _saved_files(target: Path) -> list[str]:
    return sorted(p.name for p in target.iterdir() if p.name != "manifest.json")


@pytest.mark.parametrize("kind", ["colbert", "dense", "bm25"])
def test_every_byte_flip_truncation_or_deletion_of_a_saved_file_is_detected(
    kind, colbert, tiny_embedding_path, tmp_path
):
    """Issue 14 item 4: a flipped bit in vectors.npy loaded in 80 of 80 trials."""
    target = tmp_path / "ix"
    if kind == "bm25":
        BM25Index(TEXTS, ids=IDS).save(target)

        def open_it(verify: bool = True) -> object:
            return BM25Index.load(target, verify=verify)

    else:
        enc = colbert if kind == "colbert" else load(tiny_embedding_path, device="cpu")
        index = ColBERTIndex(enc) if kind == "colbert" else DenseIndex(enc)
        index.add(TEXTS, ids=IDS)
        index.save(target)
        cls = type(index)

        def open_it(verify: bool = True) -> object:
            return cls.load(target, enc, verify=verify)

    rng = random.Random(0)
    for name in _saved_files(target):
        original = (target / name).read_bytes()
        for _ in range(4):
            data = bytearray(original)
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            (target / name).write_bytes(bytes(data))
            with pytest.raises(IndexFormatError, match=f"{name} does not match its SHA-256"):
                open_it()
        for damaged, match in (
            (original[: len(original) // 2], "truncated"),
            (original + b"x", "bytes"),
        ):
            (target / name).write_bytes(damaged)
            with pytest.raises(IndexFormatError, match=match):
                open_it(verify=False)  # sizes are checked even without checksums
        (target / name).unlink()
        with pytest.raises(IndexFormatError, match=f"{name} is missing"):
            open_it()
        (target / name).write_bytes(original)
    open_it()  # all restored: loads again


def test_verify_false_skips_the_checksums_only(colbert, tmp_path):
    target = tmp_path / "ix"
    index = ColBERTIndex(colbert)
    index.add(TEXTS, ids=IDS)
    index.save(target)
    data = bytearray((target / "vectors.npy").read_bytes())
    data[-1] ^= 0x01  # inside a float16: a slightly different number
    (target / "vectors.npy").write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match=r"vectors\.npy"):
        ColBERTIndex.load(target, colbert)
    assert ColBERTIndex.load(target, colbert, verify=False).ids == IDS


def test_an_index_of_the_previous_format_is_refused_clearly(colbert, tmp_path):
    target = tmp_path / "old"
    target.mkdir()
    (target / "index.json").write_text(json.dumps({"format": "lfm-retrievers-index"}))
    with pytest.raises(IndexFormatError, match=r"format v1.*rebuild"):
        ColBERTIndex.load(target, colbert)
    index = ColBERTIndex(colbert)
    index.add(TEXTS[:1], ids=IDS[:1])
    index.save(target)  # replacing the old layout is allowed
    assert ColBERTIndex.load(target, colbert).ids == IDS[:1]


# ------------------------------------------------------------------ items 1 and 3: encode first


def test_a_failed_replace_changes_nothing(colbert, tmp_path, monkeypatch):
    """Issue 14 item 1: deleting the old version before encoding the new one lost it."""
    index = ColBERTIndex(colbert)
    index.add(TEXTS, ids=IDS, metadata=[{"v": 1}] * len(TEXTS))
    index.save(tmp_path / "ix")
    before = [(h.id, h.score) for h in index.search("red planet", k=6)]

    def broken(texts, **kwargs):
        msg = "simulated: out of memory while encoding"
        raise MemoryError(msg)

    monkeypatch.setattr(index.encoder, "encode_documents", broken)
    with pytest.raises(MemoryError):
        index.add(["Mars, new text"], ids=["d0"], metadata=[{"v": 2}], replace=True)
    monkeypatch.undo()
    assert index.get("d0") == (TEXTS[0], {"v": 1}) and index.ids == IDS
    assert [(h.id, h.score) for h in index.search("red planet", k=6)] == before
    index.add(["Mars, new text"], ids=["d0"], metadata=[{"v": 2}], replace=True)
    assert index.get("d0") == ("Mars, new text", {"v": 2}) and len(index) == len(IDS)
    assert index.ids == [*IDS[1:], "d0"]
    with pytest.raises(ValueError, match="duplicate"):
        index.add(["x"], ids=["d1"])  # without replace=True an existing id is an error


def test_add_vectors_stores_other_text_than_it_encodes(colbert):
    index = ColBERTIndex(colbert)
    vectors = colbert.encode_documents(["title: Mars\n\nThe red planet."])
    index.add_vectors(vectors, ids=["m"], texts=["The red planet."])
    plain = ColBERTIndex(colbert)
    plain.add(["title: Mars\n\nThe red planet."], ids=["m"])
    assert index.get("m") == ("The red planet.", {})
    assert index.search("red", k=1)[0].score == pytest.approx(plain.search("red", k=1)[0].score)
    bad = np.full((3, colbert.dim), np.nan, dtype=np.float32)
    with pytest.raises(ValueError, match="NaN"):
        index.add_vectors([bad], ids=["nan"])
    with pytest.raises(ValueError, match="shape"):
        index.add_vectors([np.ones((2, colbert.dim + 1), np.float32)], ids=["wrong"])
    with pytest.raises(TypeError, match="list of"):
        index.add_vectors(np.ones((2, colbert.dim), np.float32), ids=["a", "b"])
    assert index.ids == ["m"]


# ------------------------------------------------------------------ item 5: model identity


def test_the_fingerprint_covers_every_weight_byte_and_is_cached(tiny_colbert_path, tmp_path):
    """Issue 14 item 5: two checkpoints differing outside the sampled 1 MiB shared it."""
    a = tmp_path / "a"
    shutil.copytree(tiny_colbert_path, a)
    rng = np.random.default_rng(0)
    save_file(
        {"w": rng.standard_normal(1_000_000).astype(np.float32)}, str(a / "model.safetensors")
    )
    b = tmp_path / "b"
    shutil.copytree(a, b)
    size = (b / "model.safetensors").stat().st_size
    offset = size * 7 // 16 + 300_000  # between two of the old 64 KiB sample windows
    with (b / "model.safetensors").open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x01]))
    assert fp.fingerprint(a) != fp.fingerprint(b)

    cached = json.loads((a / fp.CACHE_FILE).read_text())
    assert cached["files"]["model.safetensors"]["sha256"] == fp.sha256_file(a / "model.safetensors")
    fp._MEMORY.clear()
    calls = []
    original = fp.sha256_file
    fp.sha256_file = lambda path: calls.append(path) or original(path)  # type: ignore[assignment]
    try:
        first = fp.fingerprint(a)
        assert calls == []  # a new process: read from the cache file, no weight read
        (a / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes())
        assert fp.fingerprint(a) == fp.fingerprint(b) != first  # a rewrite is noticed
        assert any(Path(p).name == "model.safetensors" for p in calls)
    finally:
        fp.sha256_file = original  # type: ignore[assignment]


def test_a_hub_cache_link_gives_the_sha256_without_reading(
    tiny_colbert_path, tmp_path, monkeypatch
):
    snapshot = tmp_path / "snapshots" / "rev"
    blobs = tmp_path / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    for src in tiny_colbert_path.rglob("*"):
        if src.is_file() and src.name != fp.CACHE_FILE:
            rel = src.relative_to(tiny_colbert_path)
            digest = fp.sha256_file(src)
            (blobs / digest).write_bytes(src.read_bytes())
            (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
            (snapshot / rel).symlink_to(blobs / digest)
    expected = fp.fingerprint(tiny_colbert_path)
    fp._MEMORY.clear()

    def no_read(path):
        msg = f"read {path}"
        raise AssertionError(msg)

    monkeypatch.setattr(fp, "sha256_file", no_read)
    assert fp.fingerprint(snapshot) == expected


def test_saving_again_after_the_folder_was_removed_writes_it_anew(colbert, tmp_path):
    target = tmp_path / "ix"
    index = ColBERTIndex(colbert)
    index.add(TEXTS, ids=IDS)
    index.save(target)
    shutil.rmtree(target)
    index.save(target)  # nothing changed in memory, but the folder is gone
    assert ColBERTIndex.load(target, colbert).ids == IDS
