"""``lfm-retrievers bench encoder --backend onnx``: the torch and ONNX Runtime encoders in one run.

Both encoders are loaded in this process and timed interleaved (a torch call, then an ONNX
call, and so on), so a busy neighbour slows both alike and the ratio stays meaningful on a
shared machine. The ONNX encoder's memory is measured in a child process that loads the cached
export alone (the export itself, which needs the torch weights, is excluded and timed on its
own). Full-size random weights by default: speed does not depend on weight values.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lfm_retrievers.bench.encoder import _scifact_texts
from lfm_retrievers.bench.machine import (
    QUERY_TOKENS,
    Timing,
    build_random_checkpoint,
    load_average,
    machine_info,
    text_of_length,
)
from lfm_retrievers.models.encoders import DenseEncoder
from lfm_retrievers.models.registry import load

_CHILD = """
import json, sys, time
from lfm_retrievers.bench.machine import vm_status
from lfm_retrievers.models.registry import load
texts = json.loads(open(sys.argv[2], encoding="utf-8").read())
before = vm_status("VmRSS")
t0 = time.perf_counter()
enc = load(sys.argv[1], backend="onnx", quantize=sys.argv[3] or None)
load_s = time.perf_counter() - t0
enc.encode_queries(texts["queries"], show_progress=False)
enc.encode_documents(texts["documents"], batch_size=int(sys.argv[4]), show_progress=False)
print(json.dumps({"load_s": load_s, "rss_before_load_bytes": before,
                  "peak_rss_bytes": vm_status("VmHWM")}))
"""


def _child(path: Path, texts_file: Path, quantize: str | None, batch_size: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(texts_file), quantize or "", str(batch_size)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@contextlib.contextmanager
def busy_neighbour(active: bool = True) -> Iterator[None]:
    """Run a CPU-bound helper process (a Python busy loop) for the duration, if ``active``."""
    if not active:
        yield
        return
    helper = subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
    try:
        time.sleep(0.5)  # let it reach the scheduler before measuring
        yield
    finally:
        helper.kill()
        helper.wait()


def _interleaved(
    calls: dict[str, Callable[[], Any]], rounds: int, *, warmup: bool = True
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Time each call ``rounds`` times, alternating between them; also the last outputs."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    outputs: dict[str, Any] = {}
    if warmup:
        for fn in calls.values():
            fn()
    for _ in range(rounds):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            outputs[name] = fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: Timing(tuple(s)) for name, s in samples.items()}, outputs


def _query_calls(encs: dict[str, Any], query: str) -> dict[str, Callable[[], Any]]:
    """One call per encoder: encode ``query`` alone (batch 1), as a search does."""
    return {k: partial(e.encode_queries, [query], show_progress=False) for k, e in encs.items()}


def _document_calls(
    encs: dict[str, Any], docs: list[str], batch_size: int
) -> dict[str, Callable[[], Any]]:
    """One call per encoder: encode ``docs`` in batches of ``batch_size``."""
    return {
        k: partial(e.encode_documents, docs, batch_size=batch_size, show_progress=False)
        for k, e in encs.items()
    }


def _cosines(a: list[np.ndarray] | np.ndarray, b: list[np.ndarray] | np.ndarray) -> dict[str, Any]:
    cos = np.array([float(np.dot(x, y)) for x, y in zip(a, b, strict=True)])
    return {"mean": float(cos.mean()), "min": float(cos.min()), "texts": len(cos)}


def onnx_benchmark(
    *,
    preset: str = "full",
    model: str | None = None,
    data: Path | None = None,
    n_docs: int = 32,
    batch_size: int = 32,
    iterations: int = 30,
    doc_rounds: int = 2,
    under_load: bool = False,
) -> dict[str, Any]:
    """Torch vs ONNX Runtime on one dense checkpoint (random full-size weights by default).

    Returns query p50/p95 for 32-token queries (batch 1), document tokens/s on the SciFact
    length mix, the ratios, the first-load export time, the cached load time, the ONNX
    encoder's peak RSS against the fp32 weights, and int8 rows (torch ``torch.ao`` and ONNX
    Runtime dynamic quantization) with their cosine to fp32. With ``under_load`` the query
    timings are repeated with a CPU-bound helper process running.
    """
    load_before = load_average()
    saved_cache = os.environ.get("LFM_RETRIEVERS_CACHE")
    with tempfile.TemporaryDirectory(prefix="lfm-bench-onnx-") as tmp:
        os.environ["LFM_RETRIEVERS_CACHE"] = str(Path(tmp) / "cache")  # exports stay temporary
        try:
            return _run(
                Path(tmp),
                preset=preset,
                model=model,
                data=data,
                n_docs=n_docs,
                batch_size=batch_size,
                iterations=iterations,
                doc_rounds=doc_rounds,
                under_load=under_load,
                load_before=load_before,
            )
        finally:
            if saved_cache is None:
                os.environ.pop("LFM_RETRIEVERS_CACHE", None)
            else:
                os.environ["LFM_RETRIEVERS_CACHE"] = saved_cache


def _run(
    tmp: Path,
    *,
    preset: str,
    model: str | None,
    data: Path | None,
    n_docs: int,
    batch_size: int,
    iterations: int,
    doc_rounds: int,
    under_load: bool,
    load_before: float | None,
) -> dict[str, Any]:
    if model is None:
        path = build_random_checkpoint("embedding", tmp / "embedding", preset=preset)
    else:
        path = Path(model)
    docs, source = _scifact_texts(data, n_docs)
    t0 = time.perf_counter()
    fp32 = load(path, expect="dense")
    torch_load_s = time.perf_counter() - t0
    assert isinstance(fp32, DenseEncoder)
    weights = sum(p.numel() * 4 for p in fp32.trunk.parameters())  # fp32 bytes

    def q_len(t: str) -> int:
        return len(fp32.tokenize([t], is_query=True)[0].ids)

    query = text_of_length(q_len, QUERY_TOKENS, seed=1)
    texts_file = tmp / "texts.json"
    texts_file.write_text(json.dumps({"queries": [query], "documents": docs}), encoding="utf-8")

    # First load: export (+ session), in a child so the export's memory is not counted below.
    t0 = time.perf_counter()
    first = _child(path, texts_file, None, batch_size)
    first_load_s = time.perf_counter() - t0
    cached = _child(path, texts_file, None, batch_size)  # cached load, memory of ORT alone

    onnx = load(path, backend="onnx", expect="dense")
    tokens = sum(len(t.ids) for t in fp32.tokenize(docs, is_query=False))
    encs = {"torch": fp32, "onnx": onnx}
    queries, _ = _interleaved(
        _query_calls(encs, query),
        iterations,
    )
    # The query rounds warmed both backends up; documents are timed from the first pass.
    documents, outputs = _interleaved(
        _document_calls(encs, docs, batch_size),
        doc_rounds,
        warmup=False,
    )
    ref, got = outputs["torch"], outputs["onnx"]
    rows: dict[str, Any] = {}
    for name in encs:
        seconds = min(documents[name].samples)
        rows[name] = {
            "query": queries[name].summary(),
            "documents_tokens_per_s": tokens / seconds,
            "documents_seconds": seconds,
        }

    # int8: torch.ao (deprecated) and ONNX Runtime dynamic quantization, cosine to fp32.
    int8: dict[str, Any] = {}
    t0 = time.perf_counter()
    onnx8 = load(path, backend="onnx", quantize="int8", expect="dense")
    quantize_s = time.perf_counter() - t0
    torch8 = load(path, quantize="int8", expect="dense")
    subset = docs[: max(1, min(len(docs), 16))]
    sub_tokens = sum(len(t.ids) for t in fp32.tokenize(subset, is_query=False))
    i8 = {"torch": torch8, "onnx": onnx8}
    q8, _ = _interleaved(
        _query_calls(i8, query),
        iterations,
    )
    d8, out8 = _interleaved(
        _document_calls(i8, subset, batch_size),
        1,
        warmup=False,
    )
    for name in i8:
        int8[name] = {
            "query": q8[name].summary(),
            "documents_tokens_per_s": sub_tokens / min(d8[name].samples),
            "cosine_to_fp32": _cosines(out8[name], ref[: len(subset)]),
        }
    int8["onnx"]["quantize_s"] = quantize_s
    int8["onnx"]["peak_rss_bytes"] = _child(path, texts_file, "int8", batch_size)["peak_rss_bytes"]

    result: dict[str, Any] = {
        "model": str(path) if model else f"random {preset}-size LFM2.5-Embedding layout",
        "parameters": sum(p.numel() for p in fp32.trunk.parameters()),
        "query_tokens": q_len(query),
        "documents": {"count": len(docs), "tokens": tokens, "source": source},
        "batch_size": batch_size,
        "torch": {**rows["torch"], "load_s": torch_load_s},
        "onnx": {
            **rows["onnx"],
            "first_load_s": first_load_s,
            "first_load_in_child_s": first["load_s"],
            "cached_load_s": cached["load_s"],
            "peak_rss_bytes": cached["peak_rss_bytes"],
            "rss_before_load_bytes": cached["rss_before_load_bytes"],
            "max_abs_diff_to_torch": float(np.abs(got - ref).max()),
        },
        "weights_fp32_bytes": weights,
        "ratio": {
            "query": rows["torch"]["query"]["p50_ms"] / rows["onnx"]["query"]["p50_ms"],
            "documents": rows["onnx"]["documents_tokens_per_s"]
            / rows["torch"]["documents_tokens_per_s"],
        },
        "int8": int8,
        "machine": machine_info(torch.device("cpu"), load_before),
        "load_average_1m_after": load_average(),
    }
    result["onnx"]["peak_rss_over_weights"] = cached["peak_rss_bytes"] / weights
    if under_load:
        result["under_load"] = _quiet_vs_loaded(encs, query, iterations)
    return result


def _quiet_vs_loaded(encs: dict[str, Any], query: str, iterations: int) -> dict[str, Any]:
    """Query p50 of each backend without and with a busy neighbour process."""
    out: dict[str, Any] = {}
    for label, busy in (("quiet", False), ("loaded", True)):
        with busy_neighbour(busy):
            timing, _ = _interleaved(
                _query_calls(encs, query),
                iterations,
            )
        out[label] = {k: t.summary() for k, t in timing.items()}
    out["loaded_over_quiet"] = {
        k: out["loaded"][k]["p50_ms"] / out["quiet"][k]["p50_ms"] for k in encs
    }
    return out


def format_onnx_report(r: dict[str, Any]) -> str:
    """The human-readable report, with the one ``ratio onnx/torch`` line scripts grep for."""
    mib = 2**20
    t, o = r["torch"], r["onnx"]
    lines = [
        f"model: {r['model']}, {r['parameters'] / 1e6:.1f}M parameters; "
        f"{r['query_tokens']}-token query, batch 1; {r['documents']['count']} documents "
        f"({r['documents']['tokens']} tokens, {r['documents']['source']}), batch {r['batch_size']}",
        f"{'backend':<14}{'query p50':>11}{'query p95':>11}{'docs tok/s':>12}",
    ]
    for name, row in (("torch fp32", t), ("onnx fp32", o)):
        q = row["query"]
        lines.append(
            f"{name:<14}{q['p50_ms']:>8.1f} ms{q['p95_ms']:>8.1f} ms"
            f"{row['documents_tokens_per_s']:>12.0f}"
        )
    for name in ("torch", "onnx"):
        i = r["int8"][name]
        q = i["query"]
        c = i["cosine_to_fp32"]
        lines.append(
            f"{name + ' int8':<14}{q['p50_ms']:>8.1f} ms{q['p95_ms']:>8.1f} ms"
            f"{i['documents_tokens_per_s']:>12.0f}   cosine to fp32 mean {c['mean']:.4f} "
            f"min {c['min']:.4f}"
        )
    lines.append(
        f"ratio onnx/torch: query {r['ratio']['query']:.2f}x "
        f"documents {r['ratio']['documents']:.2f}x"
    )
    lines.append(
        f"onnx: first load (export + session) {o['first_load_s']:.1f} s, cached load "
        f"{o['cached_load_s']:.1f} s, int8 quantization {r['int8']['onnx']['quantize_s']:.1f} s; "
        f"max |onnx - torch| {o['max_abs_diff_to_torch']:.1e}"
    )
    lines.append(
        f"onnx peak RSS while encoding (own process, export excluded): "
        f"{o['peak_rss_bytes'] / mib:.0f} MiB = {o['peak_rss_over_weights']:.2f}x the fp32 "
        f"weights ({r['weights_fp32_bytes'] / mib:.0f} MiB); int8: "
        f"{r['int8']['onnx']['peak_rss_bytes'] / mib:.0f} MiB"
    )
    if "under_load" in r:
        u = r["under_load"]
        for name in ("torch", "onnx"):
            lines.append(
                f"under load ({name}): query p50 quiet {u['quiet'][name]['p50_ms']:.1f} ms, "
                f"with a busy neighbour {u['loaded'][name]['p50_ms']:.1f} ms "
                f"({u['loaded_over_quiet'][name]:.1f}x)"
            )
    m = r["machine"]
    lines.append(
        f"machine: {m['cpu']} ({m['cpu_count']} cores, torch threads {m['torch_threads']}); "
        f"load average {r['machine'].get('load_average_1m_before')} before, "
        f"{r['load_average_1m_after']} after"
    )
    return "\n".join(lines)


__all__ = ["busy_neighbour", "format_onnx_report", "onnx_benchmark"]
