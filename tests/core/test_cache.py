"""Embedding cache: a second rerank encodes nothing; LRU in bytes; persistence; keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lfm_retrievers import ColBERTEncoder, DenseEncoder, EmbeddingCache, load
from lfm_retrievers.cache import CacheKey, document_keys, encode_documents_cached


class Counting:
    """Wraps ``encoder.encode_documents`` to count calls and texts encoded."""

    def __init__(self, encoder, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.texts: list[str] = []
        original = encoder.encode_documents

        def counted(texts, **kwargs):
            self.calls += 1
            self.texts.extend(texts)
            return original(texts, **kwargs)

        monkeypatch.setattr(encoder, "encode_documents", counted)


@pytest.fixture(scope="module")
def colbert(tiny_colbert_path: Path) -> ColBERTEncoder:
    enc = load(tiny_colbert_path, device="cpu")
    assert isinstance(enc, ColBERTEncoder)
    return enc


@pytest.fixture(scope="module")
def dense(tiny_embedding_path: Path) -> DenseEncoder:
    enc = load(tiny_embedding_path, device="cpu")
    assert isinstance(enc, DenseEncoder)
    return enc


DOCS = ["alpha beta gamma", "delta epsilon", "the quick brown fox", "zeta eta theta iota"]


def test_second_rerank_encodes_nothing(colbert, monkeypatch):
    counter = Counting(colbert, monkeypatch)
    cache = EmbeddingCache()
    first = colbert.rerank("fox", DOCS, cache=cache)
    assert counter.calls == 1 and sorted(counter.texts) == sorted(DOCS)
    assert (cache.hits, cache.misses) == (0, 4)
    second = colbert.rerank("quick fox", list(reversed(DOCS)), cache=cache)
    assert counter.calls == 1 and len(counter.texts) == 4  # nothing encoded again
    assert (cache.hits, cache.misses) == (4, 4)
    assert cache.stats()["hit_rate"] == 0.5
    # Same query, same candidates: identical result with and without the cache.
    assert colbert.rerank("fox", DOCS, cache=cache) == first
    assert colbert.rerank("fox", DOCS) == first
    assert len(second) == 4


def test_only_misses_are_encoded_and_duplicates_once(colbert, monkeypatch):
    texts = [DOCS[0], DOCS[2], DOCS[2], DOCS[1], DOCS[3]]
    reference = colbert.encode_documents(texts)
    cache = EmbeddingCache()
    encode_documents_cached(colbert, DOCS[:2], cache)
    counter = Counting(colbert, monkeypatch)
    out = encode_documents_cached(colbert, texts, cache)
    assert counter.calls == 1 and counter.texts == [DOCS[2], DOCS[3]]
    assert out[1] is out[2]  # one encoding for the repeated text
    for got, want in zip(out, reference, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    encode_documents_cached(colbert, DOCS, cache)
    assert counter.calls == 1


def test_vectors_handed_out_are_read_only_and_caller_arrays_untouched(colbert):
    cache = EmbeddingCache()
    (vec,) = encode_documents_cached(colbert, ["some text"], cache)
    with pytest.raises(ValueError, match="read-only"):
        vec[0, 0] = 1.0
    mine = np.ones((2, 3), np.float32)
    key = CacheKey("m", "colbert", "x", "0" * 64)
    cache.put(key, mine)
    assert mine.flags.writeable
    mine[:] = 5.0
    cached = cache.get(key)
    assert cached is not None and float(cached[0, 0]) == 1.0


def test_dense_encoder_is_supported(dense, monkeypatch):
    cache = EmbeddingCache()
    out = encode_documents_cached(dense, DOCS, cache)
    ref = dense.encode_documents(DOCS)
    assert [v.shape for v in out] == [(dense.dim,)] * len(DOCS)
    np.testing.assert_array_equal(np.stack(out), ref)
    counter = Counting(dense, monkeypatch)
    encode_documents_cached(dense, DOCS, cache)
    assert counter.calls == 0


def test_keys_depend_on_model_kind_marker_and_text(colbert, dense, tiny_causal_colbert_path):
    causal = load(tiny_causal_colbert_path, device="cpu")
    (k_colbert,) = document_keys(colbert, ["same text"])
    (k_causal,) = document_keys(causal, ["same text"])
    (k_dense,) = document_keys(dense, ["same text"])
    (k_other,) = document_keys(colbert, ["other text"])
    assert len({k_colbert, k_causal, k_dense, k_other}) == 4
    assert k_colbert.model.startswith(colbert.fingerprint) and k_colbert.kind == "colbert"
    assert "[D] " in k_colbert.marker
    assert k_colbert.text_sha256 == __import__("hashlib").sha256(b"same text").hexdigest()
    assert document_keys(colbert, ["same text"]) == [k_colbert]


def _key(i: int) -> CacheKey:
    return CacheKey("model", "colbert", "[D] ", f"{i:064x}")


def test_lru_bounded_in_bytes():
    one = np.zeros((10, 16), np.float32)  # 640 bytes + overhead
    per_entry = one.nbytes + 256
    cache = EmbeddingCache(max_bytes=3 * per_entry)
    for i in range(3):
        cache.put(_key(i), one)
    assert len(cache) == 3 and cache.nbytes == 3 * per_entry
    assert cache.get(_key(0)) is not None  # 0 is now the most recent
    cache.put(_key(3), one)
    assert len(cache) == 3 and cache.nbytes <= cache.max_bytes
    assert cache.get(_key(1)) is None  # the least recently used went
    assert all(cache.get(_key(i)) is not None for i in (0, 2, 3))
    assert cache.stats()["evictions"] == 1
    cache.put(_key(9), np.zeros((1000, 16), np.float32))  # larger than the bound: not kept
    assert cache.get(_key(9)) is None and len(cache) == 3
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0 and cache.hits == cache.misses == 0


def test_bad_max_bytes():
    with pytest.raises(ValueError, match="max_bytes"):
        EmbeddingCache(max_bytes=-1)
    for bad in (1.5, "1", True):  # a wrong type is a TypeError
        with pytest.raises(TypeError, match="max_bytes"):
            EmbeddingCache(max_bytes=bad)  # type: ignore[arg-type]


def test_persistence_across_instances(colbert, tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    first = EmbeddingCache(directory=directory)
    vectors = encode_documents_cached(colbert, DOCS, first)
    assert len(list(directory.glob("*.npy"))) == len(DOCS)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["format"] == "lfm-retrievers/embedding-cache"
    assert manifest["format_version"] == 2 and manifest["package_version"]

    counter = Counting(colbert, monkeypatch)
    second = EmbeddingCache(directory=directory)
    again = encode_documents_cached(colbert, DOCS, second)
    assert counter.calls == 0
    assert second.stats()["disk_hits"] == len(DOCS) and second.hits == len(DOCS)
    for a, b in zip(vectors, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_unreadable_entry_is_a_miss_and_is_rewritten(colbert, tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    encode_documents_cached(colbert, DOCS[:1], EmbeddingCache(directory=directory))
    (entry,) = directory.glob("*.npy")
    entry.write_bytes(entry.read_bytes()[:50])  # truncated
    counter = Counting(colbert, monkeypatch)
    cache = EmbeddingCache(directory=directory)
    (vec,) = encode_documents_cached(colbert, DOCS[:1], cache)
    assert counter.calls == 1 and cache.misses == 1
    third = EmbeddingCache(directory=directory)  # the entry was written again, whole
    (again,) = encode_documents_cached(colbert, DOCS[:1], third)
    assert third.stats()["disk_hits"] == 1
    np.testing.assert_array_equal(again, vec)


@pytest.mark.parametrize(
    "damage",
    ["bitflip-header", "bitflip-data", "bitflip-seal", "truncate", "append", "empty", "swap"],
)
def test_a_damaged_entry_is_a_miss_never_a_hit(colbert, tmp_path, monkeypatch, damage):
    """Issue 14 item 4: before, 43 of 70 corruptions of entries were served as hits."""
    directory = tmp_path / "cache"
    reference = encode_documents_cached(colbert, DOCS[:2], EmbeddingCache(directory=directory))
    entries = sorted(directory.glob("*.npy"))
    entry = entries[0]
    data = bytearray(entry.read_bytes())
    if damage.startswith("bitflip"):
        pos = {"bitflip-header": 20, "bitflip-data": len(data) // 2, "bitflip-seal": -3}[damage]
        data[pos] ^= 0x10
    elif damage == "truncate":
        data = data[:-40]
    elif damage == "append":
        data += b"\0\0\0\0"
    elif damage == "empty":
        data = bytearray()
    else:  # another entry's (valid) file under this entry's name
        data = bytearray(entries[1].read_bytes())
    entry.write_bytes(bytes(data))
    counter = Counting(colbert, monkeypatch)
    cache = EmbeddingCache(directory=directory)
    got = encode_documents_cached(colbert, DOCS[:2], cache)
    assert cache.misses == 1 and cache.stats()["disk_hits"] == 1 and counter.calls == 1
    for a, b in zip(got, reference, strict=True):
        np.testing.assert_array_equal(a, b)


def test_directory_checks(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an embedding cache"):
        EmbeddingCache(directory=foreign)
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "manifest.json").write_text(
        json.dumps(
            {
                "format": "lfm-retrievers/embedding-cache",
                "format_version": 99,
                "generation": 1,
                "files": {},
            }
        )
    )
    with pytest.raises(ValueError, match=r"v99.*upgrade"):
        EmbeddingCache(directory=newer)


def test_disk_cache_survives_memory_eviction(tmp_path):
    cache = EmbeddingCache(max_bytes=0, directory=tmp_path / "c")
    cache.put(_key(1), np.ones((2, 2), np.float32))
    assert len(cache) == 0 and _key(1) in cache
    got = cache.get(_key(1))
    assert got is not None and cache.stats()["disk_hits"] == 1
