"""The ``lfm-retrievers bench encoder`` benchmark.

Query latency, document throughput against transformers' ``Lfm2Model``, GFLOP/s, peak memory
and int8.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from lfm_retrievers.models.encoders import DenseEncoder
from lfm_retrievers.models.registry import load
from lfm_retrievers.models.trunk import trunk_flops_per_token

from .machine import (
    _WORDS,
    QUERY_TOKENS,
    build_random_checkpoint,
    device_sync,
    gemm_peak_gflops,
    load_average,
    machine_info,
    measure,
    parameter_count,
    peak_rss_bytes,
    reset_peak_rss,
    text_of_length,
    vm_status,
)

logger = logging.getLogger(__name__)


def _scifact_texts(data: Path | None, n: int) -> tuple[list[str], str]:
    """The first ``n`` SciFact documents, or a synthetic stand-in when the data is absent.

    Documents are ``title + " " + text`` in corpus order; the synthetic mix has lengths shaped
    like them.
    """
    if data is not None:
        folder = data if (data / "corpus.jsonl.gz").exists() else data / "scifact"
        path = folder / "corpus.jsonl.gz"
        if not path.exists():
            path = folder / "corpus.jsonl"
        if path.exists():
            from lfm_retrievers.corpus import load_corpus

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
    """Transformers' own ``Lfm2Model`` on the same weights: the straightforward path."""
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
        sync = device_sync(dev)
        weights_bytes = sum(p.numel() * p.element_size() for p in enc.trunk.parameters())
        cfg = enc.checkpoint.trunk
        # Loading (safetensors pages mapped while each tensor is converted) and encoding are
        # measured separately: the peak mark is reset after loading where Linux allows it.
        rss_load = vm_status("VmHWM") or peak_rss_bytes()
        rss_loaded = vm_status("VmRSS")
        phase_reset = reset_peak_rss()

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
        rss_encode = vm_status("VmHWM") if phase_reset else None
        rss_ours = max(peak_rss_bytes(), rss_encode or 0)
        peak_gflops = gemm_peak_gflops(dev, size=gemm_size)

        result: dict[str, Any] = {
            "benchmark": "encoder",
            "model": "LFM2.5-Embedding-350M (random weights)" if random_weights else str(model),
            "parameters": parameter_count(enc),
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
                    "path": (
                        "lfm_retrievers DenseEncoder.encode_documents "
                        "(length-sorted batches, pads zeroed)"
                    ),
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
