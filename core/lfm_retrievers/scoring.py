"""Scoring: cosine for dense vectors, MaxSim for ColBERT token vectors. Pure functions.

**MaxSim** (late interaction) scores a query of ``q`` vectors against a document of ``n``
vectors as the sum, over the query vectors, of the best dot product with any document vector:

    score = Σ_i max_j  query[i] · doc[j]

Three forms compute the same number:

* :func:`maxsim_padded`: one query against a padded ``(n, L, d)`` batch with a ``(n, L)`` mask
  (what :meth:`ColBERTEncoder.encode_documents_padded` returns);
* :func:`maxsim_flat`: one query against a flat ``(T, d)`` token matrix with ``n + 1`` int64
  offsets (document ``i`` owns rows ``offsets[i]:offsets[i + 1]``), no padding waste; this is
  how :class:`~lfm_retrievers.index.ColBERTIndex` stores its vectors;
* :func:`maxsim`: one query against a list of ``(n_i, d)`` numpy arrays (what
  :meth:`ColBERTEncoder.encode_documents` and the embedding cache return).

All three work through the documents in chunks of at most ``chunk_tokens`` document vectors
(a single longer document forms its own chunk), so the working memory is bounded by the chunk,
not by the corpus. Chunks stored as float16/bfloat16 are upcast to float32 before the matmul:
on CPUs without native half-precision GEMM that is several times faster (≈ 6x measured on
this project's AVX-512 machine) and the accumulation is exact to float32. The scores come
back as float32 on the query's device; document chunks are moved there as needed, so a query
on the GPU scores a memory-mapped CPU corpus chunk by chunk.

A document with no vectors scores 0.

**Score modes** (``SCORE_MODES``, shared by every adapter):

* ``"raw"``: the vendor's MaxSim sum, as in PyLate and the model cards. With unit vectors it
  lies in ``[-q, q]``; LFM2.5-ColBERT queries have ``q = 32`` (expansion included), so relevant
  documents typically score in the 20s.
* ``"mean"``: raw / number of query vectors, in ``[-1, 1]``: comparable across query lengths,
  and convenient for thresholds. The ranking is the same.

>>> import torch
>>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
>>> tokens = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
>>> maxsim_flat(q, tokens, torch.tensor([0, 2, 3]))
tensor([1.8000, 1.0000])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal, TypeVar, cast

import numpy as np
import torch

from ._validation import check_choice, check_finite, check_positive_int

ScoreMode = Literal["raw", "mean"]
SCORE_MODES: tuple[str, ...] = ("raw", "mean")

#: Document vectors per chunk: a float32 chunk of 16384 x 128 is 8 MiB (sims: 2 MiB).
DEFAULT_CHUNK_TOKENS = 16384
#: Chunk of :func:`maxsim` (float32 arrays copied into one buffer): smaller, so the buffer
#: stays in cache between the copy and the matmul (measured fastest on the project's CPU).
LIST_CHUNK_TOKENS = 8192

_T = TypeVar("_T", np.ndarray, torch.Tensor, float)


def check_score_mode(mode: object) -> ScoreMode:
    """Return ``mode`` if it is one of :data:`SCORE_MODES`, else raise ValueError."""
    return cast(ScoreMode, check_choice(mode, "score", SCORE_MODES))


def normalize_score(scores: _T, n_query_vectors: int, mode: str) -> _T:
    """Raw MaxSim scores in the given mode: ``"raw"`` unchanged, ``"mean"`` / n_query_vectors."""
    mode = check_score_mode(mode)
    if mode == "raw":
        return scores
    if n_query_vectors <= 0:
        msg = f"n_query_vectors must be positive for mode 'mean', got {n_query_vectors}"
        raise ValueError(msg)
    return cast(_T, scores / n_query_vectors)


def _check_chunk(chunk_tokens: object) -> int:
    return check_positive_int(chunk_tokens, "chunk_tokens")


def as_tensor(x: Any) -> torch.Tensor:
    """A tensor view of ``x`` (no copy for numpy arrays, read-only memory maps included)."""
    if isinstance(x, torch.Tensor):
        return x
    arr = np.asarray(x)
    if arr.flags.writeable:
        return torch.from_numpy(arr)
    with warnings.catch_warnings():
        # Read-only arrays (memory maps, cached vectors) are only ever read here.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(arr)


def _query_matrix(query: Any, dim: int | None = None) -> torch.Tensor:
    """The query as a float32 ``(q, d)`` tensor, transposed for ``tokens @ qT``."""
    q = as_tensor(query)
    if q.ndim != 2:
        msg = f"query must be a 2-d (n_query_vectors, dim) array, got shape {tuple(q.shape)}"
        raise ValueError(msg)
    if dim is not None and q.shape[1] != dim:
        msg = f"query dim {q.shape[1]} does not match document dim {dim}"
        raise ValueError(msg)
    if not q.is_floating_point():
        msg = f"query must be a floating-point array, got {q.dtype}"
        raise TypeError(msg)
    check_finite(q, "query")
    return q.to(torch.float32).T


def _segment_sum_max(sims: torch.Tensor, lengths: np.ndarray) -> torch.Tensor:
    """Per document: the max over its rows of ``sims`` (T, q), summed over q; empty docs -> 0."""
    n, width = len(lengths), sims.shape[1]
    if n and lengths[0] > 0 and (lengths == lengths[0]).all():
        return sims.view(n, int(lengths[0]), width).amax(dim=1).sum(dim=1)
    lens = torch.from_numpy(np.ascontiguousarray(lengths, dtype=np.int64)).to(sims.device)
    segment = torch.repeat_interleave(torch.arange(n, device=sims.device), lens)
    best = torch.full((n, width), -torch.inf, dtype=sims.dtype, device=sims.device)
    best.scatter_reduce_(0, segment[:, None].expand(-1, width), sims, reduce="amax")
    best[lens == 0] = 0.0
    return best.sum(dim=1)


def _chunk_bounds(offsets: np.ndarray, chunk_tokens: int) -> list[tuple[int, int]]:
    """Document ranges ``[d0, d1)`` holding at most ``chunk_tokens`` vectors (at least one doc)."""
    n = len(offsets) - 1
    bounds = []
    d0 = 0
    while d0 < n:
        d1 = int(np.searchsorted(offsets, offsets[d0] + chunk_tokens, side="right")) - 1
        d1 = min(max(d1, d0 + 1), n)
        bounds.append((d0, d1))
        d0 = d1
    return bounds


def _as_float32(x: torch.Tensor, buffer: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """``x`` as float32 on ``device``: a view when it already is, else a copy into ``buffer``."""
    if x.dtype == torch.float32 and x.device == device:
        return x
    if x.device != device:
        x = x.to(device, non_blocking=True)
        if x.dtype == torch.float32:
            return x
    if buffer is None:
        return x.to(torch.float32)
    out = buffer[: len(x)]
    out.copy_(x)
    return out


def _offsets_array(offsets: Any, n_tokens: int) -> np.ndarray:
    off = np.asarray(offsets.cpu() if isinstance(offsets, torch.Tensor) else offsets)
    if off.ndim != 1 or len(off) < 1 or not np.issubdtype(off.dtype, np.integer):
        msg = (
            "offsets must be a 1-d integer array of n_documents + 1 entries, "
            f"got shape {off.shape} {off.dtype}"
        )
        raise ValueError(msg)
    off = off.astype(np.int64, copy=False)
    if off[0] != 0 or off[-1] != n_tokens or (len(off) > 1 and (np.diff(off) < 0).any()):
        msg = (
            f"offsets must start at 0, never decrease and end at the number of token rows "
            f"({n_tokens}); got {off[0]}..{off[-1]}"
        )
        raise ValueError(msg)
    return off


def maxsim_flat(
    query: torch.Tensor | np.ndarray,
    tokens: torch.Tensor | np.ndarray,
    offsets: torch.Tensor | np.ndarray | Sequence[int],
    *,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> torch.Tensor:
    """Raw MaxSim of one query against documents stored as one flat token matrix.

    ``query`` is ``(q, d)``; ``tokens`` is ``(T, d)`` (any float dtype, numpy arrays and memory
    maps included, read without copying); ``offsets`` has ``n + 1`` non-decreasing entries from
    0 to ``T``. Returns ``(n,)`` float32 on the query's device.
    """
    chunk_tokens = _check_chunk(chunk_tokens)
    tok = as_tensor(tokens)
    if tok.ndim != 2:
        msg = f"tokens must be a 2-d (n_tokens, dim) array, got shape {tuple(tok.shape)}"
        raise ValueError(msg)
    q_t = as_tensor(query)
    qT = _query_matrix(q_t, tok.shape[1])
    off = _offsets_array(offsets, tok.shape[0])
    device = q_t.device
    n = len(off) - 1
    out = torch.zeros(n, dtype=torch.float32, device=device)
    bounds = _chunk_bounds(off, chunk_tokens)
    needs_copy = tok.dtype != torch.float32 or tok.device != device
    widest = max((int(off[d1] - off[d0]) for d0, d1 in bounds), default=0)
    buffer = (
        torch.empty((widest, tok.shape[1]), dtype=torch.float32, device=device)
        if needs_copy and widest
        else None
    )
    for d0, d1 in bounds:
        t0, t1 = int(off[d0]), int(off[d1])
        x = _as_float32(tok[t0:t1], buffer, device)
        out[d0:d1] = _segment_sum_max(x @ qT, np.diff(off[d0 : d1 + 1]))
    return out


def maxsim_padded(
    query: torch.Tensor | np.ndarray,
    docs: torch.Tensor | np.ndarray,
    mask: torch.Tensor | np.ndarray,
    *,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> torch.Tensor:
    """Raw MaxSim of one query ``(q, d)`` against a padded batch ``(n, L, d)`` with mask ``(n, L)``.

    Positions where ``mask`` is False are ignored. Returns ``(n,)`` float32 on the query's device.
    """
    chunk_tokens = _check_chunk(chunk_tokens)
    d = as_tensor(docs)
    m = as_tensor(mask)
    if d.ndim != 3 or m.shape != d.shape[:2]:
        msg = f"docs must be (n, L, dim) and mask (n, L); got {tuple(d.shape)} and {tuple(m.shape)}"
        raise ValueError(msg)
    q_t = as_tensor(query)
    qT = _query_matrix(q_t, d.shape[2])
    device = q_t.device
    n, width = d.shape[0], d.shape[1]
    out = torch.zeros(n, dtype=torch.float32, device=device)
    if n == 0 or width == 0:
        return out
    step = max(1, chunk_tokens // width)
    for a in range(0, n, step):
        x = _as_float32(d[a : a + step], None, device)
        keep = m[a : a + step].to(device=device, dtype=torch.bool)
        sims = (x @ qT).masked_fill_(~keep[:, :, None], -torch.inf)
        best = sims.amax(dim=1)
        best[~keep.any(dim=1)] = 0.0
        out[a : a + step] = best.sum(dim=1)
    return out


def maxsim(
    query: np.ndarray | torch.Tensor,
    docs: Sequence[np.ndarray | torch.Tensor],
    *,
    chunk_tokens: int = LIST_CHUNK_TOKENS,
) -> np.ndarray:
    """Raw MaxSim of one query ``(q, d)`` against a list of ``(n_i, d)`` arrays; ``(n,)`` float32.

    The convenience form for vectors from :meth:`ColBERTEncoder.encode_documents` or the
    embedding cache: the arrays are copied chunk by chunk into one float32 buffer, never
    concatenated as a whole.
    """
    chunk_tokens = _check_chunk(chunk_tokens)
    qT = _query_matrix(as_tensor(query).cpu())
    dim = int(qT.shape[0])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        blocks = [torch.from_numpy(x) if isinstance(x, np.ndarray) else as_tensor(x) for x in docs]
    for i, b in enumerate(blocks):
        if b.ndim != 2 or b.shape[1] != dim:
            msg = f"docs[{i}] must be a 2-d (n_vectors, {dim}) array, got shape {tuple(b.shape)}"
            raise ValueError(msg)
        check_finite(b, f"docs[{i}]")
    lengths = np.fromiter((b.shape[0] for b in blocks), dtype=np.int64, count=len(blocks))
    off = np.zeros(len(blocks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=off[1:])
    out = torch.zeros(len(blocks), dtype=torch.float32)
    bounds = _chunk_bounds(off, chunk_tokens)
    widest = max((int(off[d1] - off[d0]) for d0, d1 in bounds), default=0)
    buffer = torch.empty((widest, dim), dtype=torch.float32)
    for d0, d1 in bounds:
        group = [b if b.device.type == "cpu" else b.cpu() for b in blocks[d0:d1]]
        x = buffer[: int(off[d1] - off[d0])]
        if len(group) == 1:
            x.copy_(group[0])
        else:
            torch.cat(group, out=x)
        out[d0:d1] = _segment_sum_max(x @ qT, lengths[d0:d1])
    return out.numpy()


def cosine_scores(query: np.ndarray | torch.Tensor, docs: np.ndarray | torch.Tensor) -> Any:
    """Cosine similarity of ``query`` ``(d,)`` or ``(q, d)`` with ``docs`` ``(n, d)``.

    Returns ``(n,)`` for one query, ``(q, n)`` for several; numpy in, numpy out (float32 unless
    float64 came in); a tensor in gives a tensor. Zero vectors score 0.
    """
    if isinstance(query, torch.Tensor) or isinstance(docs, torch.Tensor):
        qt, dt = as_tensor(query), as_tensor(docs)
        if qt.ndim not in (1, 2) or dt.ndim != 2 or qt.shape[-1] != dt.shape[1]:
            msg = (
                "cosine_scores needs query (d,) or (q, d) and docs (n, d); "
                f"got {tuple(qt.shape)} and {tuple(dt.shape)}"
            )
            raise ValueError(msg)
        check_finite(qt, "query")
        check_finite(dt, "docs")
        t_dtype = torch.promote_types(torch.promote_types(qt.dtype, dt.dtype), torch.float32)
        qn = torch.nn.functional.normalize(qt.to(t_dtype), dim=-1)
        dn = torch.nn.functional.normalize(dt.to(device=qt.device, dtype=t_dtype), dim=-1)
        return qn @ dn.T
    q = np.asarray(query)
    d = np.asarray(docs)
    if q.ndim not in (1, 2) or d.ndim != 2 or q.shape[-1] != d.shape[1]:
        msg = (
            f"cosine_scores needs query (d,) or (q, d) and docs (n, d); got {q.shape} and {d.shape}"
        )
        raise ValueError(msg)
    check_finite(q, "query")
    check_finite(d, "docs")
    dtype = np.float64 if np.float64 in (q.dtype, d.dtype) else np.float32
    q = q.astype(dtype, copy=False)
    d = d.astype(dtype, copy=False)
    tiny = float(np.finfo(dtype).tiny)
    qn = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), tiny)
    dn = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), tiny)
    return qn @ dn.T


__all__ = [
    "DEFAULT_CHUNK_TOKENS",
    "LIST_CHUNK_TOKENS",
    "SCORE_MODES",
    "ScoreMode",
    "check_score_mode",
    "cosine_scores",
    "maxsim",
    "maxsim_flat",
    "maxsim_padded",
    "normalize_score",
]
