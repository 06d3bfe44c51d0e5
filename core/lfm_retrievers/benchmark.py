"""Speed measurements behind ``lfm-retrievers bench``: the model cards' four latency regimes and
the encoder benchmark (query latency, document throughput against transformers, memory, int8).

Speed does not depend on weight values, so by default the benchmarks run on **full-size random
weights** written by :func:`lfm_retrievers.testing.build_tiny_checkpoint` (``preset="full"``):
the exact 350M shapes, no download. A real checkpoint can be passed instead. Results are plain
dicts (JSON-ready); the CLI formats them.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from .encoders import ColBERTEncoder, DenseEncoder, load
from .modeling import trunk_flops_per_token

logger = logging.getLogger(__name__)

__all__ = [
    "DOCUMENT_TOKENS",
    "QUERY_TOKENS",
    "Timing",
    "build_random_checkpoint",
    "encoder_benchmark",
    "gemm_peak_gflops",
    "latency_benchmark",
    "load_average",
    "machine_info",
    "measure",
    "shared_data_dir",
    "text_of_length",
]

QUERY_TOKENS = 32
DOCUMENT_TOKENS = 256
REPO_ROOT = Path(__file__).resolve().parents[2]

_WORD_TEXT = (
    "the model retrieves relevant documents for each query using late interaction over token "
    "vectors while the dense encoder pools one vector per text cells proteins vitamin patients "
    "study results increase decrease risk treatment clinical trial effect gene expression data "
    "analysis shows that higher levels of activity were observed in samples from mice and humans "
    "shipping returns refund policy account password settings order delivery warranty battery "
    "screen camera price discount support customer service language search index cache latency"
)
_WORDS = tuple(_WORD_TEXT.split())


# -- machine and timing helpers ------------------------------------------------------------------


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews CPU timings)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def machine_info(device: torch.device, load_before: float | None = None) -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, threads, accelerator, library versions,
    and the load average before the measurement started (when given)."""
    import transformers

    info: dict[str, Any] = {
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": str(device),
    }
    if load_before is not None:
        info["load_average_1m_before"] = load_before
    if device.type == "cuda":
        info["accelerator"] = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        info["accelerator"] = "Apple MPS"
    return info


def _sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return lambda: torch.mps.synchronize()
    return lambda: None


@dataclass(frozen=True)
class Timing:
    """Wall-clock samples of one operation, in seconds."""

    samples: tuple[float, ...]

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.samples), q) * 1000.0)

    def summary(self) -> dict[str, float | int]:
        return {
            "p50_ms": round(self.percentile_ms(50), 3),
            "p95_ms": round(self.percentile_ms(95), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "mean_ms": round(float(np.mean(self.samples)) * 1000.0, 3),
            "n": len(self.samples),
        }


def measure(
    fn: Callable[[], object],
    *,
    iterations: int,
    warmup: int = 2,
    max_seconds: float | None = None,
    min_iterations: int = 10,
    sync: Callable[[], None] = lambda: None,
) -> Timing:
    """Time ``fn`` ``iterations`` times after ``warmup`` untimed calls.

    With ``max_seconds`` the loop stops early once that much time has passed and at least
    ``min(min_iterations, iterations)`` samples exist, so slow devices finish in bounded time.
    """
    for _ in range(warmup):
        fn()
        sync()
    samples: list[float] = []
    start = time.perf_counter()
    floor = min(min_iterations, iterations)
    while len(samples) < iterations:
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t0)
        if (
            max_seconds is not None
            and len(samples) >= floor
            and time.perf_counter() - start > max_seconds
        ):
            break
    return Timing(tuple(samples))


def gemm_peak_gflops(device: torch.device, size: int = 2048, repeats: int = 8) -> float:
    """Measured fp32 matmul throughput of ``device`` (the best of several square GEMMs)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    sync = _sync(device)
    best = float("inf")
    for _ in range(2):
        a @ b
    sync()
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best / 1e9


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (``getrusage``; KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def _vm_status(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process from ``/proc/self/status`` in bytes (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark (Linux ``clear_refs`` 5), to measure one phase."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside a source checkout (the project's evaluation data), if present."""
    candidate = REPO_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def _real_tokenizer(kind: str) -> Path | None:
    """A real LFM2 tokenizer folder for random full-size checkpoints, so the vocabulary (and the
    embedding matrix, hence the parameter count and memory) has the real size."""
    env = os.environ.get("LFM_RETRIEVERS_TOKENIZER_DIR")
    roots = [Path(env)] if env else []
    data = shared_data_dir()
    if data is not None:
        roots.append(data / "tokenizers")
    sub = "lfm2-base" if kind == "embedding" else "lfm2-colbert-350m"
    for root in roots:
        for folder in (root / sub, root):
            if (folder / "tokenizer.json").is_file():
                return folder
    return None


def build_random_checkpoint(kind: str, directory: Path, *, preset: str = "full") -> Path:
    """Write a random-weight checkpoint of ``kind`` (``embedding``/``colbert``) in a child
    process, so building it (an fp32 copy of 350M weights) never counts in this process's peak
    memory. Uses a real LFM2 tokenizer when one is found (see ``_real_tokenizer``)."""
    tok = _real_tokenizer(kind) if preset == "full" else None
    code = (
        "import sys; from lfm_retrievers.testing import build_tiny_checkpoint as b; "
        "b(sys.argv[1], sys.argv[2], preset=sys.argv[3], "
        "tokenizer_dir=sys.argv[4] or None, overwrite=True)"
    )
    subprocess.run(
        [sys.executable, "-c", code, kind, str(directory), preset, str(tok or "")],
        check=True,
    )
    return directory


def text_of_length(
    count: Callable[[str], int], target: int, *, seed: int = 0, words: Sequence[str] = _WORDS
) -> str:
    """A text whose tokenized length (as ``count`` measures it, specials included) is ``target``,
    or the closest reachable length below it."""
    rng = random.Random(seed)
    pool = [rng.choice(words) for _ in range(target * 2)]
    lo, hi = 0, len(pool)
    while lo < hi:  # the most words that still fit
        mid = (lo + hi + 1) // 2
        if count(" ".join(pool[:mid])) <= target:
            lo = mid
        else:
            hi = mid - 1
    text = " ".join(pool[:lo])
    for filler in (" a", " I", " x", "1"):
        while count(text + filler) <= target and count(text + filler) > count(text):
            text += filler
        if count(text) == target:
            break
    return text


# -- the four latency regimes of the model cards -------------------------------------------------


def _label(enc: DenseEncoder | ColBERTEncoder, random_weights: bool) -> str:
    if random_weights:
        base = "LFM2.5-Embedding-350M" if enc.kind == "dense" else "LFM2.5-ColBERT-350M"
        return f"{base} (random weights)"
    return str(enc.name).rstrip("/").split("/")[-1]


def _params(enc: DenseEncoder | ColBERTEncoder) -> int:
    """Parameter count from the checkpoint's tensors (int8 modules hide theirs as packed)."""
    from safetensors import safe_open

    n = 0
    files = [enc.path / "model.safetensors", enc.path / "1_Dense" / "model.safetensors"]
    for file in files:
        if file.is_file():
            with safe_open(str(file), framework="pt") as fh:
                for key in fh.keys():  # noqa: SIM118 - safe_open is not a Mapping
                    n += int(np.prod(fh.get_slice(key).get_shape()))
    return n


def latency_benchmark(
    *,
    dense: DenseEncoder,
    colbert: ColBERTEncoder,
    random_weights: bool,
    n_docs: int = 1,
    iterations: int = 50,
    warmup: int = 3,
    max_seconds: float | None = 60.0,
    query_tokens: int = QUERY_TOKENS,
    document_tokens: int = DOCUMENT_TOKENS,
    load_before: float | None = None,
) -> dict[str, Any]:
    """p50/p95/p99 of the cards' four regimes, one query at a time (batch size 1).

    1. dense query embedding; 2. ColBERT query embedding; 3. ColBERT query embedding + MaxSim
    over ``n_docs`` cached document embeddings; 4. ColBERT query + ``n_docs`` document embeddings
    + MaxSim (nothing cached). Queries are ``query_tokens`` long (dense: BOS + prompt + text),
    documents ``document_tokens`` (ColBERT: BOS + [D] + text).
    """
    from .scoring import maxsim_padded

    if load_before is None:
        load_before = load_average()
    if n_docs < 1:
        msg = f"n_docs must be >= 1, got {n_docs}"
        raise ValueError(msg)
    device = colbert.device
    sync = _sync(device)

    def dense_len(t: str) -> int:
        return len(dense.tokenize([t], is_query=True)[0].ids)

    def doc_len(t: str) -> int:
        return len(colbert.tokenize([t], is_query=False)[0].ids)

    query = text_of_length(dense_len, query_tokens, seed=1)
    documents = [text_of_length(doc_len, document_tokens, seed=10 + i) for i in range(n_docs)]
    q_len = len(colbert.tokenize([query], is_query=True)[0].ids)
    d_lens = [doc_len(d) for d in documents]

    cached = colbert.encode_documents_padded(documents, show_progress=False)
    cached_vectors = cached.vectors.to(device)
    cached_mask = cached.mask.to(device)

    def dense_query() -> object:
        return dense.encode_queries([query], show_progress=False)

    def colbert_query() -> object:
        return colbert.encode_queries_padded([query], show_progress=False)

    def colbert_cached() -> object:
        q = colbert.encode_queries_padded([query], show_progress=False)
        return maxsim_padded(q.vectors[0].to(device), cached_vectors, cached_mask).cpu()

    def colbert_uncached() -> object:
        q = colbert.encode_queries_padded([query], show_progress=False)
        d = colbert.encode_documents_padded(documents, show_progress=False)
        return maxsim_padded(q.vectors[0].to(device), d.vectors.to(device), d.mask.to(device)).cpu()

    regimes: list[tuple[DenseEncoder | ColBERTEncoder, str, str, Callable[[], object]]] = [
        (dense, "Query embedding", "yes", dense_query),
        (colbert, "Query embedding", "yes", colbert_query),
        (colbert, "Query embedding + MaxSim", "yes", colbert_cached),
        (colbert, "Query + doc embedding + MaxSim", "no", colbert_uncached),
    ]
    rows = []
    for enc, stage, docs_cached, fn in regimes:
        logger.info("timing %s / %s", enc.kind, stage)
        timing = measure(
            fn, iterations=iterations, warmup=warmup, max_seconds=max_seconds, sync=sync
        )
        rows.append(
            {
                "model": _label(enc, random_weights),
                "stage": stage,
                "docs_cached": docs_cached,
                **timing.summary(),
            }
        )
    return {
        "benchmark": "latency",
        "rows": rows,
        "settings": {
            "query_tokens": {
                "dense": dense_len(query),
                "colbert": q_len,
            },
            "document_tokens": d_lens[0] if len(set(d_lens)) == 1 else d_lens,
            "documents_per_query": n_docs,
            "batch_size": 1,
            "iterations": iterations,
            "warmup": warmup,
            "max_seconds_per_regime": max_seconds,
            "device": str(device),
            "dtype": str(colbert.dtype).removeprefix("torch."),
            "quantize": colbert.quantize,
            "random_weights": random_weights,
            "models": {
                "dense": {"name": str(dense.name), "parameters": _params(dense)},
                "colbert": {"name": str(colbert.name), "parameters": _params(colbert)},
            },
            "maxsim": "lfm_retrievers.scoring.maxsim_padded",
        },
        "machine": machine_info(device, load_before),
        "note": "speed does not depend on weight values"
        if random_weights
        else "real checkpoint weights",
    }


# -- the encoder benchmark (issue 2) --------------------------------------------------------------


def _scifact_texts(data: Path | None, n: int) -> tuple[list[str], str]:
    """The first ``n`` SciFact documents (``title + " " + text``, corpus order), or a synthetic
    mix of lengths shaped like them when the data is absent."""
    if data is not None:
        folder = data if (data / "corpus.jsonl.gz").exists() else data / "scifact"
        path = folder / "corpus.jsonl.gz"
        if not path.exists():
            path = folder / "corpus.jsonl"
        if path.exists():
            from .corpus import load_corpus

            docs = load_corpus(path)[:n]
            return [
                d.search_text for d in docs
            ], f"{path} (first {len(docs)} documents, corpus order)"
    rng = np.random.default_rng(0)
    # SciFact: ~315 tokens mean, median ~300, 8% over 512 -> a log-normal with those moments.
    lengths = np.clip(rng.lognormal(mean=5.68, sigma=0.42, size=n), 16, 900).astype(int)
    words = list(_WORDS)
    texts = []
    for i, length in enumerate(lengths):
        r = random.Random(i)
        texts.append(" ".join(r.choice(words) for _ in range(int(length * 0.8))))
    return texts, f"synthetic (no SciFact found; {n} log-normal lengths, mean ~315 tokens)"


def _transformers_model(path: Path, dtype: torch.dtype, device: torch.device) -> Any:
    """transformers' own ``Lfm2Model`` on the same weights: the straightforward path."""
    from safetensors.torch import load_file
    from transformers import Lfm2Config, Lfm2Model

    raw = json.loads((path / "config.json").read_text(encoding="utf-8"))
    config = Lfm2Config(**raw)
    config.is_causal = False  # bidirectional attention, as the retrievers are (conv stays causal)
    config.use_cache = False
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = Lfm2Model(config)
    finally:
        torch.set_default_dtype(prev)
    state = load_file(str(path / "model.safetensors"))
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True)
    del state
    return cast(Any, model).to(device).eval()


def encoder_benchmark(
    *,
    model: str | os.PathLike[str] | None = None,
    device: str = "auto",
    dtype: str = "auto",
    preset: str = "full",
    data: Path | None = None,
    n_docs: int = 128,
    batch_size: int = 32,
    iterations: int = 30,
    warmup: int = 3,
    max_seconds: float | None = 60.0,
    transformers_baseline: bool = True,
    int8: bool = True,
    workdir: Path | None = None,
    gemm_size: int = 2048,
) -> dict[str, Any]:
    """Issue 2's benchmark for the dense encoder (LFM2.5-Embedding layout).

    Reports 32-token query latency, document throughput on SciFact's length mix for our
    ``encode_documents`` and for transformers' ``Lfm2Model`` (batches of ``batch_size`` in
    input order, padded to the longest), their ratio, achieved GFLOP/s against a measured fp32
    GEMM peak, peak resident memory, and int8 query latency with its cosine deviation from fp32.
    """
    quiet = logging.getLogger("lfm_retrievers.encoders")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # truncation notes: the length mix is reported instead
    try:
        return _encoder_benchmark(
            model=model,
            device=device,
            dtype=dtype,
            preset=preset,
            data=data,
            n_docs=n_docs,
            batch_size=batch_size,
            iterations=iterations,
            warmup=warmup,
            max_seconds=max_seconds,
            transformers_baseline=transformers_baseline,
            int8=int8,
            workdir=workdir,
            gemm_size=gemm_size,
        )
    finally:
        quiet.setLevel(level)


def _encoder_benchmark(
    *,
    model: str | os.PathLike[str] | None,
    device: str,
    dtype: str,
    preset: str,
    data: Path | None,
    n_docs: int,
    batch_size: int,
    iterations: int,
    warmup: int,
    max_seconds: float | None,
    transformers_baseline: bool,
    int8: bool,
    workdir: Path | None,
    gemm_size: int,
) -> dict[str, Any]:
    ctx: AbstractContextManager[Any]
    if model is None:
        ctx = tempfile.TemporaryDirectory(prefix="lfm-bench-", dir=workdir)
    else:
        ctx = nullcontext(None)
    load_before = load_average()
    with ctx as tmp:
        rss_start = peak_rss_bytes()
        if model is None:
            path = build_random_checkpoint("embedding", Path(tmp) / "embedding", preset=preset)
            random_weights = True
        else:
            path = Path(os.fspath(model))
            random_weights = False
        t0 = time.perf_counter()
        enc = load(path, device=device, dtype=dtype, expect="dense")
        assert isinstance(enc, DenseEncoder)
        load_s = time.perf_counter() - t0
        dev = enc.device
        sync = _sync(dev)
        weights_bytes = sum(p.numel() * p.element_size() for p in enc.trunk.parameters())
        cfg = enc.checkpoint.trunk
        # Loading (safetensors pages mapped while each tensor is converted) and encoding are
        # measured separately: the peak mark is reset after loading where Linux allows it.
        rss_load = _vm_status("VmHWM") or peak_rss_bytes()
        rss_loaded = _vm_status("VmRSS")
        phase_reset = _reset_peak_rss()

        def q_len(t: str) -> int:
            return len(enc.tokenize([t], is_query=True)[0].ids)

        query = text_of_length(q_len, QUERY_TOKENS, seed=1)
        q_timing = measure(
            lambda: enc.encode_queries([query], show_progress=False),
            iterations=iterations,
            warmup=warmup,
            max_seconds=max_seconds,
            sync=sync,
        )

        texts, source = _scifact_texts(data, n_docs)
        toks = enc.tokenize(texts, is_query=False)
        lengths = [len(t.ids) for t in toks]
        n_tokens = sum(lengths)
        useful_flops = sum(trunk_flops_per_token(cfg, n) * n for n in lengths)
        enc.encode_documents(texts[: min(4, len(texts))], show_progress=False)  # warm-up
        sync()
        t0 = time.perf_counter()
        ours_vecs = enc.encode_documents(texts, batch_size=batch_size, show_progress=False)
        sync()
        ours_s = time.perf_counter() - t0
        rss_encode = _vm_status("VmHWM") if phase_reset else None
        rss_ours = max(peak_rss_bytes(), rss_encode or 0)
        peak_gflops = gemm_peak_gflops(dev, size=gemm_size)

        result: dict[str, Any] = {
            "benchmark": "encoder",
            "model": "LFM2.5-Embedding-350M (random weights)" if random_weights else str(model),
            "parameters": _params(enc),
            "load_seconds": round(load_s, 2),
            "query": {"tokens": q_len(query), **q_timing.summary()},
            "documents": {
                "source": source,
                "count": len(texts),
                "tokens": n_tokens,
                "mean_tokens": round(n_tokens / max(len(texts), 1), 1),
                "truncated_at": enc.max_length,
                "batch_size": batch_size,
                "ours": {
                    "path": "lfm_retrievers DenseEncoder.encode_documents (length-sorted batches, pads zeroed)",
                    "seconds": round(ours_s, 3),
                    "tokens_per_s": round(n_tokens / ours_s, 1),
                    "gflops_per_s": round(useful_flops / ours_s / 1e9, 1),
                },
            },
            "gemm_peak_gflops_fp32": round(peak_gflops, 1),
            "memory": {
                "weights_bytes": int(weights_bytes),
                "weights_dtype": str(enc.dtype).removeprefix("torch."),
                "rss_before_load_bytes": rss_start,
                "peak_rss_loading_bytes": rss_load,
                "rss_after_load_bytes": rss_loaded,
                "peak_rss_encoding_bytes": rss_encode,
                "peak_rss_encoding_over_weights": None
                if rss_encode is None
                else round(rss_encode / weights_bytes, 2),
                "peak_rss_bytes": rss_ours,
                "peak_rss_over_weights": round(rss_ours / weights_bytes, 2),
                "measured": "resident set size of this process (/proc/self/status VmHWM, reset "
                "after loading via clear_refs; getrusage where that is unavailable); the "
                "checkpoint is written by a child process and does not count",
            },
            "settings": {
                "device": str(dev),
                "dtype": str(enc.dtype).removeprefix("torch."),
                "iterations": iterations,
                "warmup": warmup,
                "random_weights": random_weights,
                "preset": preset if random_weights else None,
            },
            "machine": machine_info(dev, load_before),
            "note": "speed does not depend on weight values"
            if random_weights
            else "real checkpoint weights",
        }
        docs = result["documents"]
        docs["ours"]["percent_of_peak"] = round(100 * docs["ours"]["gflops_per_s"] / peak_gflops, 1)

        if transformers_baseline:
            hf = _transformers_model(path, enc.dtype, dev)
            from transformers import PreTrainedTokenizerFast

            hf_tok = PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json"))
            hf_tok.pad_token_id = 0
            prompt = enc.prompts["document"]

            def hf_encode(batch: list[str]) -> np.ndarray:
                inputs = hf_tok(
                    [prompt + t for t in batch],
                    padding="longest",
                    truncation=True,
                    max_length=enc.max_length,
                    return_tensors="pt",
                )
                with torch.inference_mode():
                    out = hf(
                        input_ids=inputs["input_ids"].to(dev),
                        attention_mask=inputs["attention_mask"].to(dev),
                        use_cache=False,
                    ).last_hidden_state[:, 0]
                    return torch.nn.functional.normalize(out.float(), dim=-1).cpu().numpy()

            hf_encode(texts[: min(4, len(texts))])
            sync()
            t0 = time.perf_counter()
            padded_tokens = 0
            for i in range(0, len(texts), batch_size):
                batch = texts[i : i + batch_size]
                padded_tokens += len(batch) * max(lengths[i : i + batch_size])
                hf_encode(batch)
            sync()
            hf_s = time.perf_counter() - t0
            del hf
            docs["transformers"] = {
                "path": "transformers.Lfm2Model (is_causal=False: bidirectional attention; its "
                "short conv stays causal, same FLOPs), batches in input order padded to the "
                "longest, use_cache=False, torch.inference_mode",
                "seconds": round(hf_s, 3),
                "tokens_per_s": round(n_tokens / hf_s, 1),
                "gflops_per_s": round(useful_flops / hf_s / 1e9, 1),
                "percent_of_peak": round(100 * useful_flops / hf_s / 1e9 / peak_gflops, 1),
                "padded_tokens": padded_tokens,
            }
            docs["ratio"] = round(hf_s / ours_s, 2)

        if int8 and dev.type == "cpu":
            q8 = load(path, device="cpu", dtype="float32", quantize="int8", expect="dense")
            assert isinstance(q8, DenseEncoder)
            t8 = measure(
                lambda: q8.encode_queries([query], show_progress=False),
                iterations=iterations,
                warmup=warmup,
                max_seconds=max_seconds,
            )
            sample_q = [text_of_length(q_len, QUERY_TOKENS, seed=s) for s in range(8)]
            sample_d = texts[:8]
            fp = np.concatenate([enc.encode_queries(sample_q), ours_vecs[: len(sample_d)]], axis=0)
            iq = np.concatenate(
                [q8.encode_queries(sample_q), q8.encode_documents(sample_d)], axis=0
            )
            cos = np.sum(fp * iq, axis=1)
            result["int8"] = {
                "query": t8.summary(),
                "speedup_p50": round(q_timing.percentile_ms(50) / t8.percentile_ms(50), 2),
                "cosine_to_fp32": {
                    "mean": round(float(cos.mean()), 4),
                    "min": round(float(cos.min()), 4),
                    "texts": len(cos),
                },
            }
        elif int8:
            result["int8"] = {"skipped": f"quantize='int8' runs on cpu only (device is {dev})"}
    return result
