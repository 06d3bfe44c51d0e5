"""MaxSim and cosine against brute-force Python loops on random vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lfm_retrievers.scoring import (
    SCORE_MODES,
    check_score_mode,
    cosine_scores,
    maxsim,
    maxsim_flat,
    maxsim_padded,
    normalize_score,
)


def brute_maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    """Σ_i max_j q_i·d_j with plain Python loops (a document with no vectors scores 0)."""
    if len(doc) == 0:
        return 0.0
    total = 0.0
    for q in query.tolist():
        best = -float("inf")
        for d in doc.tolist():
            best = max(best, sum(a * b for a, b in zip(q, d, strict=True)))
        total += best
    return total


def unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def corpus() -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    lengths = [5, 1, 0, 12, 7, 7, 3, 0, 20, 2]
    return unit(rng, 6, 8), [unit(rng, n, 8) for n in lengths]


@pytest.mark.parametrize("chunk_tokens", [1, 3, 8, 16, 1000])
def test_maxsim_flat_equals_brute_force(corpus, chunk_tokens):
    query, docs = corpus
    offsets = np.cumsum([0] + [len(d) for d in docs])
    tokens = np.concatenate(docs)
    got = maxsim_flat(
        torch.from_numpy(query), torch.from_numpy(tokens), offsets, chunk_tokens=chunk_tokens
    )
    want = [brute_maxsim(query, d) for d in docs]
    assert got.dtype == torch.float32 and got.shape == (len(docs),)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


@pytest.mark.parametrize("chunk_tokens", [1, 5, 40, 16384])
def test_maxsim_padded_equals_brute_force(corpus, chunk_tokens):
    query, docs = corpus
    width = max(len(d) for d in docs)
    padded = torch.full((len(docs), width, 8), 7.0)  # garbage in pads must be ignored
    mask = torch.zeros((len(docs), width), dtype=torch.bool)
    for i, d in enumerate(docs):
        padded[i, : len(d)] = torch.from_numpy(d)
        mask[i, : len(d)] = True
    got = maxsim_padded(torch.from_numpy(query), padded, mask, chunk_tokens=chunk_tokens)
    np.testing.assert_allclose(got.numpy(), [brute_maxsim(query, d) for d in docs], atol=1e-5)


@pytest.mark.parametrize("chunk_tokens", [1, 7, 16384])
def test_maxsim_list_equals_brute_force(corpus, chunk_tokens):
    query, docs = corpus
    got = maxsim(query, docs, chunk_tokens=chunk_tokens)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_allclose(got, [brute_maxsim(query, d) for d in docs], atol=1e-5)


def test_equal_length_fast_path_matches_brute_force():
    rng = np.random.default_rng(1)
    query, docs = unit(rng, 4, 6), [unit(rng, 9, 6) for _ in range(5)]
    np.testing.assert_allclose(
        maxsim(query, docs), [brute_maxsim(query, d) for d in docs], atol=1e-5
    )


def test_fp16_storage_is_upcast_and_scores_like_fp32(corpus):
    query, docs = corpus
    tokens16 = np.concatenate(docs).astype(np.float16)
    offsets = np.cumsum([0] + [len(d) for d in docs])
    got = maxsim_flat(query, tokens16, offsets, chunk_tokens=10)
    want = [brute_maxsim(query, d.astype(np.float16).astype(np.float32)) for d in docs]
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    assert got.dtype == torch.float32


def test_read_only_memory_map_is_scored_without_copy_warnings(tmp_path, corpus):
    query, docs = corpus
    np.save(tmp_path / "t.npy", np.concatenate(docs).astype(np.float16))
    tokens = np.load(tmp_path / "t.npy", mmap_mode="r")
    offsets = np.cumsum([0] + [len(d) for d in docs])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = maxsim_flat(query, tokens, offsets, chunk_tokens=4)
    assert got.shape == (len(docs),)


def test_empty_inputs():
    q = np.ones((2, 3), np.float32)
    assert maxsim(q, []).shape == (0,)
    assert maxsim_flat(q, np.zeros((0, 3), np.float32), [0]).shape == (0,)
    assert maxsim_padded(q, torch.zeros(0, 0, 3), torch.zeros(0, 0, dtype=torch.bool)).shape == (0,)


@pytest.mark.parametrize(
    "offsets",
    [[1, 3], [0, 2], [0, 3, 2, 3], np.array([0.0, 3.0])],
    ids=["not-from-0", "not-to-T", "decreasing", "float"],
)
def test_bad_offsets_raise(offsets):
    with pytest.raises(ValueError, match="offsets"):
        maxsim_flat(np.ones((1, 2), np.float32), np.ones((3, 2), np.float32), offsets)


def test_dim_mismatch_and_bad_shapes_raise():
    with pytest.raises(ValueError, match="dim"):
        maxsim_flat(np.ones((1, 2), np.float32), np.ones((3, 4), np.float32), [0, 3])
    with pytest.raises(ValueError, match=r"docs\[1\]"):
        maxsim(np.ones((1, 2), np.float32), [np.ones((1, 2)), np.ones((1, 3))])
    with pytest.raises(ValueError, match="query"):
        maxsim(np.ones(2, np.float32), [np.ones((1, 2))])
    with pytest.raises(ValueError, match="chunk_tokens"):
        maxsim(np.ones((1, 2), np.float32), [np.ones((1, 2))], chunk_tokens=0)


def test_score_modes():
    assert SCORE_MODES == ("raw", "mean")
    raw = np.array([32.0, 16.0])
    np.testing.assert_allclose(normalize_score(raw, 32, "mean"), [1.0, 0.5])
    assert normalize_score(raw, 32, "raw") is raw
    with pytest.raises(ValueError, match=r"'raw', 'mean'"):
        check_score_mode("max")


def test_mean_mode_bounded_for_unit_vectors(corpus):
    query, docs = corpus
    mean = normalize_score(maxsim(query, docs), len(query), "mean")
    assert np.all(mean <= 1.0 + 1e-6) and np.all(mean >= -1.0 - 1e-6)


def test_cosine_scores_brute_force():
    rng = np.random.default_rng(2)
    q, d = rng.standard_normal((3, 5)), rng.standard_normal((4, 5)).astype(np.float32)
    d[2] = 0.0
    want = [
        [
            0.0 if not np.any(dj) else float(qi @ dj / np.linalg.norm(qi) / np.linalg.norm(dj))
            for dj in d
        ]
        for qi in q
    ]
    np.testing.assert_allclose(cosine_scores(q, d), want, atol=1e-6)
    np.testing.assert_allclose(cosine_scores(q[0], d), want[0], atol=1e-6)
    torch_out = cosine_scores(torch.from_numpy(q[0]), torch.from_numpy(d))
    assert isinstance(torch_out, torch.Tensor)
    np.testing.assert_allclose(torch_out.numpy(), want[0], atol=1e-6)
    with pytest.raises(ValueError, match="cosine_scores"):
        cosine_scores(q, d[:, :3])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_query_scores_cpu_tokens(corpus):
    query, docs = corpus
    offsets = np.cumsum([0] + [len(d) for d in docs])
    tokens = np.concatenate(docs).astype(np.float16)
    got = maxsim_flat(torch.from_numpy(query).cuda(), tokens, offsets, chunk_tokens=8)
    assert got.device.type == "cuda"
    want = maxsim_flat(query, tokens, offsets)
    np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), atol=1e-4)
