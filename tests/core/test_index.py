"""DenseIndex / ColBERTIndex: exact search, filters, add/delete semantics, atomic persistence."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import lfm_retrievers._io.files as io_files
import lfm_retrievers._io.folder as io_folder
import lfm_retrievers.indexes.format as index_format
from lfm_retrievers import (
    ColBERTEncoder,
    ColBERTIndex,
    DenseEncoder,
    DenseIndex,
    IndexFormatError,
    SearchHit,
    load,
)

TEXTS = [
    "Mars is called the red planet.",
    "Venus is the hottest planet in the solar system.",
    "Bananas are rich in potassium.",
    "Jupiter is a gas giant with a great red spot.",
    "Saturn has rings made of ice!!",
    "Rust threads share state with Arc<Mutex<T>>.",
    "",
    "The quick brown fox jumps over the lazy dog.",
]
IDS = [f"doc{i}" for i in range(len(TEXTS))]
META = [{"group": "space" if i in (0, 1, 3, 4) else "other", "i": i} for i in range(len(TEXTS))]
QUERIES = ["red planet", "which fruit has potassium?", "threads", "   ", "?!.,", ""]


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


@pytest.fixture(params=["colbert", "dense"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make(kind, colbert, dense):
    def build(**kwargs):
        return ColBERTIndex(colbert, **kwargs) if kind == "colbert" else DenseIndex(dense, **kwargs)

    return build


def brute_scores(index, query: str) -> np.ndarray:
    """Scores of every document from the encoder's own vectors, in plain loops."""
    enc = index.encoder
    if index.kind == "dense":
        q = enc.encode_queries([query])[0]
        return np.array([float(np.dot(q, d)) for d in enc.encode_documents(TEXTS)])
    q = enc.encode_queries([query])[0]
    docs = enc.encode_documents(TEXTS)
    # The index stores float16 vectors; score what it stores.
    docs = [d.astype(np.float16).astype(np.float32) for d in docs]
    return np.array([sum(max(float(np.dot(qi, dj)) for dj in d) for qi in q) for d in docs])


def hit_tuples(hits: list[SearchHit]) -> list[tuple[str, str, dict, int]]:
    return [(h.id, h.text, h.metadata, h.rank) for h in hits]


def assert_same_hits(got: list[SearchHit], want: list[SearchHit]) -> None:
    """Same documents, order, texts, metadata and ranks; scores equal up to float rounding
    (BLAS kernels may round the last bit differently when a chunk holds other rows)."""
    assert hit_tuples(got) == hit_tuples(want)
    np.testing.assert_allclose([h.score for h in got], [h.score for h in want], rtol=1e-6)


@pytest.mark.parametrize("query", QUERIES)
def test_search_is_exact(make, query):
    index = make()
    assert index.add(TEXTS, ids=IDS, metadata=META) == IDS
    hits = index.search(query, k=len(TEXTS))
    want = brute_scores(index, query)
    order = sorted(range(len(TEXTS)), key=lambda i: -want[i])
    assert [h.rank for h in hits] == list(range(1, len(TEXTS) + 1))
    np.testing.assert_allclose([h.score for h in hits], want[order], atol=1e-4)
    assert {h.id for h in hits} == set(IDS)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        assert h.text == TEXTS[IDS.index(h.id)] and h.metadata == META[IDS.index(h.id)]
    assert [h.id for h in index.search(query, k=3)] == [h.id for h in hits[:3]]


def test_chunk_size_does_not_change_results(make):
    small, large = make(chunk_tokens=3), make()
    for index in (small, large):
        index.add(TEXTS, ids=IDS)
    assert [h.id for h in small.search("red planet", k=8)] == [
        h.id for h in large.search("red planet", k=8)
    ]
    np.testing.assert_allclose(
        [h.score for h in small.search("red planet", k=8)],
        [h.score for h in large.search("red planet", k=8)],
        atol=1e-5,
    )


def test_mean_score_mode(colbert):
    index = ColBERTIndex(colbert)
    index.add(TEXTS, ids=IDS)
    raw = index.search("red planet", k=4)
    mean = index.search("red planet", k=4, score="mean")
    assert [h.id for h in raw] == [h.id for h in mean]
    np.testing.assert_allclose([h.score for h in mean], [h.score / 32 for h in raw], rtol=1e-6)
    with pytest.raises(ValueError, match="raw"):
        index.search("x", score="max")


def test_filters(make):
    index = make()
    index.add(TEXTS, ids=IDS, metadata=META)
    full = {h.id: h.score for h in index.search("red planet", k=len(TEXTS))}
    only = index.search("red planet", k=10, filter={"ids": ["doc2", "doc5", "nope"]})
    assert {h.id for h in only} == {"doc2", "doc5"}
    for h in only:
        assert h.score == pytest.approx(full[h.id], abs=1e-5)
    space = index.search("red planet", k=10, filter={"metadata": {"group": "space"}})
    assert {h.id for h in space} == {"doc0", "doc1", "doc3", "doc4"}
    both = index.search(
        "red planet", k=10, filter={"ids": ["doc0", "doc2"], "metadata": {"group": "space"}}
    )
    assert [h.id for h in both] == ["doc0"]
    assert index.search("red planet", filter={"metadata": {"group": "none"}}) == []
    assert index.search("red planet", filter={"ids": []}) == []
    with pytest.raises(ValueError, match="unknown filter keys"):
        index.search("x", filter={"group": "space"})
    with pytest.raises(TypeError, match="ids"):
        index.search("x", filter={"ids": "doc0"})


def test_empty_index_and_bad_k(make):
    index = make()
    assert index.search("anything") == [] and len(index) == 0
    for k in (0, -1):
        with pytest.raises(ValueError, match="k must be a positive int"):
            index.search("anything", k=k)
    for k in (1.5, "3", True, None):
        with pytest.raises(TypeError, match="k must be a positive int"):
            index.search("anything", k=k)
    with pytest.raises(TypeError, match="query"):
        index.search(None)
    index.add(["one"])
    assert len(index.search("one", k=np.int64(5))) == 1


def test_duplicate_ids_add_nothing(make):
    index = make()
    index.add(TEXTS[:3], ids=IDS[:3])
    with pytest.raises(ValueError, match="doc1"):
        index.add(["x", "y"], ids=["new", "doc1"])
    with pytest.raises(ValueError, match="twice"):
        index.add(["x", "y"], ids=["twice", "twice"])
    # A generator whose duplicate only shows up in a later chunk: still nothing added.
    small = make(add_chunk=2)
    small.add(["a"], ids=["a"])
    with pytest.raises(ValueError, match="'a'"):
        small.add((t for t in ["b", "c", "d", "e", "f"]), ids=iter(["b", "c", "d", "a", "f"]))
    assert small.ids == ["a"]
    assert small.n_vectors == (
        1 if small.kind == "dense" else len(small.encoder.encode_documents(["a"])[0])
    )
    assert index.ids == IDS[:3] and len(index) == 3


def test_add_argument_errors(make):
    index = make()
    with pytest.raises(TypeError, match="iterable of str"):
        index.add("a single string")
    with pytest.raises(ValueError, match=r"ids must have one entry per text \(2\), got 1"):
        index.add(["a", "b"], ids=["a"])
    with pytest.raises(ValueError, match="fewer ids"):
        index.add(iter(["a", "b"]), ids=iter(["a"]))
    with pytest.raises(ValueError, match="more ids"):
        index.add(iter(["a"]), ids=iter(["a", "b"]))
    with pytest.raises(TypeError, match=r"ids\[0\]"):
        index.add(["a"], ids=[1])
    with pytest.raises(TypeError, match="JSON"):
        index.add(["a"], metadata=[{"x": object()}])
    with pytest.raises(TypeError, match=r"metadata\[0\]"):
        index.add(["a"], metadata=["not a dict"])
    assert len(index) == 0


def test_streaming_add_equals_list_add(make):
    streamed, listed = make(add_chunk=3), make()
    streamed.add((t for t in TEXTS), ids=(i for i in IDS), metadata=iter(META), show_progress=False)
    listed.add(TEXTS, ids=IDS, metadata=META)
    assert streamed.ids == listed.ids
    a, b = streamed.search("red planet", k=8), listed.search("red planet", k=8)
    assert [h.id for h in a] == [h.id for h in b]
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)


def test_delete(make):
    index = make()
    index.add(TEXTS, ids=IDS, metadata=META)
    with pytest.raises(KeyError, match="nope"):
        index.delete(["doc0", "nope"])
    assert len(index) == len(TEXTS)  # nothing deleted
    index.delete(["doc0", "doc3"])
    index.delete("doc4")
    assert "doc0" not in index and len(index) == len(TEXTS) - 3
    hits = index.search("red planet", k=10)
    assert {h.id for h in hits} == set(IDS) - {"doc0", "doc3", "doc4"}
    with pytest.raises(KeyError, match="doc0"):
        index.get("doc0")
    # Re-adding a deleted id is fine.
    index.add([TEXTS[0]], ids=["doc0"], metadata=[META[0]])
    assert index.ids[-1] == "doc0"


def test_compaction_keeps_results(make):
    index, fresh = make(), make()
    index.add(TEXTS, ids=IDS)
    index.delete(IDS[:5])  # more than half: vectors are compacted
    fresh.add(TEXTS[5:], ids=IDS[5:])
    assert index.n_vectors == fresh.n_vectors and index.ids == fresh.ids
    a, b = index.search("threads", k=5), fresh.search("threads", k=5)
    assert [h.id for h in a] == [h.id for h in b]
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)


def test_metadata_is_copied(make):
    index = make()
    meta = {"tags": ["a"], "n": (1, 2)}
    index.add(["text"], ids=["x"], metadata=[meta])
    assert meta == {"tags": ["a"], "n": (1, 2)}  # caller's dict untouched
    _, got = index.get("x")
    assert got == {"tags": ["a"], "n": [1, 2]}  # stored as JSON
    got["tags"].append("b")
    index.search("text")[0].metadata["tags"].append("c")
    assert index.get("x")[1] == {"tags": ["a"], "n": [1, 2]}
    assert index.search("text", filter={"metadata": {"n": (1, 2)}})[0].id == "x"


def test_wrong_encoder_kind(colbert, dense):
    with pytest.raises(TypeError, match="ColBERTEncoder"):
        ColBERTIndex(dense)
    with pytest.raises(TypeError, match="DenseEncoder"):
        DenseIndex(colbert)


# ---------------------------------------------------------------- persistence


def test_save_load_identical_results(make, tmp_path):
    index = make()
    index.add(TEXTS, ids=IDS, metadata=META)
    index.delete("doc7")
    index.save(tmp_path / "ix")
    loaded = type(index).load(tmp_path / "ix", encoder=index.encoder)
    assert loaded.ids == index.ids and len(loaded) == len(index)
    assert all(isinstance(s.vectors, np.memmap) for s in loaded._vectors.segments)
    for query in QUERIES:
        assert_same_hits(loaded.search(query, k=10), index.search(query, k=10))
    space = {"metadata": {"group": "space"}}
    assert_same_hits(loaded.search("planet", filter=space), index.search("planet", filter=space))
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["format_version"] == index_format.FORMAT_VERSION
    assert manifest["model"]["fingerprint"] == index.encoder.fingerprint
    assert manifest["model"]["name"] == str(index.encoder.name)
    assert manifest["package_version"]
    dtype = np.load(tmp_path / "ix" / "vectors.npy", mmap_mode="r").dtype
    assert dtype == (np.float16 if index.kind == "colbert" else np.float32)
    # A loaded (memory-mapped) index still takes additions and deletions, and saves again.
    loaded.add(["brand new text"], ids=["new"])
    loaded.delete("doc1")
    loaded.save(tmp_path / "ix")
    again = type(index).load(tmp_path / "ix")  # the model named in the index
    assert again.ids == [i for i in IDS if i not in ("doc1", "doc7")] + ["new"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_save_empty_index_round_trips(make, tmp_path):
    index = make()
    index.save(tmp_path / "empty")
    loaded = type(index).load(tmp_path / "empty", encoder=index.encoder)
    assert len(loaded) == 0 and loaded.search("x") == []
    loaded.add(["now one"], ids=["one"])
    assert loaded.search("one")[0].id == "one"


@pytest.mark.parametrize("mode", ["append", "rewrite"])
@pytest.mark.parametrize(
    ("module", "where"),
    [(io_files, "fsync_write"), (io_files, "sha256_file"), (io_folder, "_swap_in")],
)
def test_interrupted_save_leaves_previous_index(make, tmp_path, monkeypatch, module, where, mode):
    index = make()
    index.add(TEXTS[:4], ids=IDS[:4])
    index.save(tmp_path / "ix")
    before = type(index).load(tmp_path / "ix", encoder=index.encoder).search("red")
    if mode == "rewrite":  # an index that never saw the folder: a full rewrite
        index = make()
        index.add(TEXTS[:4], ids=IDS[:4])
    elif where == "_swap_in":
        pytest.skip("an appending save swaps the manifest, not the folder")
    index.add(TEXTS[4:], ids=IDS[4:])

    original = getattr(module, where)
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            msg = "simulated crash mid-save"
            raise KeyboardInterrupt(msg)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, where, failing)
    with pytest.raises(KeyboardInterrupt):
        index.save(tmp_path / "ix")
    monkeypatch.undo()
    reloaded = type(index).load(tmp_path / "ix", encoder=index.encoder)
    assert reloaded.ids == IDS[:4]
    assert_same_hits(reloaded.search("red"), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]  # temporary folder removed


def test_save_refuses_foreign_directory(make, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a saved index"):
        make().save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


@pytest.fixture
def saved(make, tmp_path) -> tuple[type, Path, object]:
    index = make()
    index.add(TEXTS, ids=IDS, metadata=META)
    index.save(tmp_path / "ix")
    return type(index), tmp_path / "ix", index.encoder


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda d: _truncate(d / "vectors.npy"), "truncated"),
        (lambda d: _truncate(d / "offsets.npy", 0.9), "truncated"),
        (lambda d: _truncate(d / "docs.json"), "truncated"),
        (lambda d: _truncate(d / "manifest.json"), "not valid JSON"),
        (lambda d: (d / "vectors.npy").unlink(), "missing"),
        (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
        (
            lambda d: (d / "docs.json").write_bytes(
                (d / "docs.json").read_bytes().replace(b"Mars", b"Marz")
            ),
            "SHA-256",
        ),
    ],
    ids=["vectors", "offsets", "docs", "manifest", "missing-file", "no-manifest", "bitflip"],
)
def test_corrupted_index_gives_clear_error(saved, damage, match):
    cls, directory, encoder = saved
    damage(directory)
    with pytest.raises(IndexFormatError, match=match):
        cls.load(directory, encoder=encoder)


def _edit_manifest(directory: Path, **changes) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest.update(changes)
    io_files.write_manifest(directory, manifest)  # resealed: an edit, not a corruption


def test_newer_format_and_other_kind(saved):
    cls, directory, encoder = saved
    other = DenseIndex if cls is ColBERTIndex else ColBERTIndex
    with pytest.raises(IndexFormatError, match=f"open it with {cls.__name__}.load"):
        other.load(directory)
    _edit_manifest(directory, format_version=index_format.FORMAT_VERSION + 1)
    with pytest.raises(IndexFormatError, match="upgrade"):
        cls.load(directory, encoder=encoder)


def test_wrong_model_gives_clear_error(tmp_path, colbert, tiny_causal_colbert_path, dense):
    index = ColBERTIndex(colbert)
    index.add(TEXTS, ids=IDS)
    index.save(tmp_path / "ix")
    other = load(tiny_causal_colbert_path, device="cpu")
    assert other.fingerprint != colbert.fingerprint
    with pytest.raises(ValueError, match="fingerprint") as err:
        ColBERTIndex.load(tmp_path / "ix", encoder=other)
    assert colbert.fingerprint in str(err.value) and other.fingerprint in str(err.value)
    with pytest.raises(ValueError, match="fingerprint"):
        ColBERTIndex.load(tmp_path / "ix", model=tiny_causal_colbert_path)
    with pytest.raises(TypeError, match="ColBERTEncoder"):
        ColBERTIndex.load(tmp_path / "ix", encoder=dense)
    _edit_manifest(tmp_path / "ix", model={"name": str(tmp_path / "gone"), "fingerprint": "0" * 16})
    with pytest.raises(ValueError, match="pass encoder= or model="):
        ColBERTIndex.load(tmp_path / "ix")


def test_lazy_encoder_from_model_name(tmp_path, tiny_colbert_path):
    index = ColBERTIndex(str(tiny_colbert_path))
    assert index._encoder is None  # nothing loaded by the constructor
    index.add(TEXTS[:2], ids=IDS[:2])
    assert index.search("red planet", k=1)[0].id in IDS[:2]
    assert os.fspath(index.encoder.path) == os.fspath(tiny_colbert_path)


def test_search_vectors_on_a_synthetic_index_matches_maxsim():
    from lfm_retrievers import maxsim
    from lfm_retrievers.bench.retrieval import synthetic_colbert_index

    index = synthetic_colbert_index(300, mean_tokens=20, dim=16, chunk_tokens=64)
    assert len(index) == 300 and index.nbytes == index.n_vectors * 16 * 2 + 301 * 8
    rng = np.random.default_rng(5)
    query = rng.standard_normal((4, 16)).astype(np.float32)
    (segment,) = index._vectors.segments
    docs = [
        segment.vectors[a:b].astype(np.float32)
        for a, b in zip(segment.offsets[:-1], segment.offsets[1:], strict=True)
    ]
    want = maxsim(query, docs)
    hits = index.search_vectors(query, k=20)
    assert [h.id for h in hits] == [f"d{i}" for i in np.argsort(-want, kind="stable")[:20]]
    np.testing.assert_allclose([h.score for h in hits], np.sort(want)[::-1][:20], atol=1e-5)
    some = index.search_vectors(query, k=5, filter={"ids": ["d3", "d7", "d250"]})
    assert {h.id for h in some} == {"d3", "d7", "d250"}
    np.testing.assert_allclose(
        sorted((h.score for h in some), reverse=True),
        sorted((float(want[i]) for i in (3, 7, 250)), reverse=True),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="query_vectors"):
        index.search_vectors(np.ones((2, 8), np.float32))
