"""``lfm-retrievers bench``: latency, encoder and retrieval benchmarks."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ._common import (
    TINY,
    CLIError,
    _device_options,
    _fmt_bytes,
    _print_json,
    _table,
    _write_json,
    tiny_checkpoint,
)

BENCH_TARGETS = ("latency", "encoder", "retrieval", "qdrant")


def register(sub: Any) -> None:
    """Add the subcommand's parser to ``sub`` (argparse subparsers)."""
    b = sub.add_parser(
        "bench",
        help="latency of the model cards' four regimes; 'bench encoder', 'bench retrieval'",
        description=(
            "latency (default): p50/p95/p99 of the model cards' four regimes (32-token queries, "
            "256-token documents). encoder: query latency, document throughput vs transformers, "
            "GFLOP/s, memory, int8. retrieval: BM25 / MaxSim / index timings. Full-size random "
            "weights by default: speed does not depend on weight values. qdrant: the Qdrant "
            "engine (ingest, latency per mode, bytes per document, recall of each prefetch "
            "mode) on SciFact documents encoded beforehand (tiny models unless --model)."
        ),
    )
    b.add_argument("target", nargs="?", default="latency", choices=BENCH_TARGETS)
    b.add_argument(
        "--model",
        action="append",
        help="a real checkpoint instead of random weights (repeatable: one per kind)",
    )
    b.add_argument(
        "--quick", action="store_true", help="tiny preset, few iterations (a smoke test)"
    )
    b.add_argument("--iterations", type=int, default=None, help="timed runs per measurement")
    b.add_argument("--warmup", type=int, default=None, help="untimed runs first")
    b.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="stop a measurement after this long (>= 10 runs)",
    )
    b.add_argument(
        "--docs",
        type=int,
        default=None,
        help="latency: documents per query (default 1); encoder: documents (default 128)",
    )
    b.add_argument(
        "--data",
        metavar="DIR",
        help="encoder: SciFact folder (default ../shared/data if present, else synthetic)",
    )
    b.add_argument(
        "--url",
        help="qdrant: a Qdrant server (QDRANT_API_KEY is used); default: local mode (:memory:)",
    )
    b.add_argument("--queries", type=int, default=50, help="qdrant: queries to time (default 50)")
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument(
        "--no-baseline", action="store_true", help="encoder: skip the transformers comparison"
    )
    b.add_argument("--threads", type=int, default=None, help="torch threads")
    b.add_argument(
        "--under-load",
        action="store_true",
        help="encoder, retrieval: also measure with a CPU-bound helper process running",
    )
    b.add_argument("--json", action="store_true")
    b.add_argument("--output", metavar="FILE", help="also write the JSON results to FILE")
    _device_options(b)
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``lfm-retrievers bench``."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    # Speed is the subject here; per-call truncation notes would only interleave the output.
    quiet = logging.getLogger("lfm_retrievers.models.encoders")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        if args.target == "encoder":
            return _bench_encoder(args)
        if args.target == "retrieval":
            return _bench_retrieval(args)
        if args.target == "qdrant":
            return _bench_qdrant(args)
        return _bench_latency(args)
    finally:
        quiet.setLevel(level)


def _quick(args: argparse.Namespace, iterations: int, warmup: int) -> tuple[int, int, str]:
    if args.quick:
        return args.iterations or 3, 1 if args.warmup is None else args.warmup, "tiny"
    return (
        args.iterations or iterations,
        warmup if args.warmup is None else args.warmup,
        "full",
    )


def _bench_latency(args: argparse.Namespace) -> int:
    import tempfile

    from lfm_retrievers.bench.latency import latency_benchmark
    from lfm_retrievers.bench.machine import build_random_checkpoint, load_average
    from lfm_retrievers.models.encoders import ColBERTEncoder, DenseEncoder
    from lfm_retrievers.models.registry import load

    load_before = load_average()  # before this command's own work (building, loading)
    iterations, warmup, preset = _quick(args, 50, 3)
    given: dict[str, DenseEncoder | ColBERTEncoder] = {}
    for name in args.model or []:
        path: str | Path = tiny_checkpoint("colbert") if name == TINY else name
        try:
            enc = load(
                path,
                device=args.device,
                dtype=args.dtype,
                quantize=args.quantize,
                backend=args.backend,
            )
        except FileNotFoundError as exc:
            raise CLIError(str(exc)) from exc
        given[enc.kind] = enc
    with tempfile.TemporaryDirectory(prefix="lfm-bench-") as tmp:
        encoders: dict[str, Any] = dict(given)
        for kind, ck in (("dense", "embedding"), ("colbert", "colbert")):
            if kind not in encoders:
                print(
                    f"building a {preset}-size {ck} checkpoint with random weights ...",
                    file=sys.stderr,
                )
                path = build_random_checkpoint(ck, Path(tmp) / ck, preset=preset)
                encoders[kind] = load(
                    path,
                    device=args.device,
                    dtype=args.dtype,
                    quantize=args.quantize,
                    backend=args.backend,
                )
        dense, colbert = encoders["dense"], encoders["colbert"]
        assert isinstance(dense, DenseEncoder) and isinstance(colbert, ColBERTEncoder)
        print("timing the four regimes ...", file=sys.stderr)
        result = latency_benchmark(
            dense=dense,
            colbert=colbert,
            random_weights=not given,
            n_docs=args.docs or 1,
            iterations=iterations,
            warmup=warmup,
            max_seconds=args.max_seconds,
            load_before=load_before,
        )
        if given:
            result["note"] = (
                "real checkpoint: "
                + ", ".join(str(e.name) for e in given.values())
                + ("" if len(given) == 2 else "; the other kind uses random weights")
            )
        result["settings"]["preset"] = preset
    _write_json(args.output, result)
    if args.json:
        _print_json(result)
        return 0
    rows = [
        [
            r["model"],
            r["stage"],
            r["docs_cached"],
            f"{r['p50_ms']:.1f} ms",
            f"{r['p95_ms']:.1f} ms",
            f"{r['p99_ms']:.1f} ms",
            r["n"],
        ]
        for r in result["rows"]
    ]
    print(_table(["Model", "Stage", "Docs cached", "p50", "p95", "p99", "n"], rows, "lllrrrr"))
    _print_machine(result)
    s: dict[str, Any] = result["settings"]
    print(
        f"settings: {s['query_tokens']['dense']}-token dense / "
        f"{s['query_tokens']['colbert']}-token ColBERT queries, "
        f"{s['documents_per_query']} document(s) of {s['document_tokens']} tokens "
        f"per query, batch size 1, {s['warmup']} warm-up + up to {s['iterations']} timed runs "
        f"per regime (max {s['max_seconds_per_regime']} s), {s['device']} {s['dtype']}"
        + (f", quantize={s['quantize']}" if s["quantize"] else "")
        + f", preset {s['preset']}"
    )
    print(
        f"note: {result['note']}"
        + (" (full-size random weights)" if not given and preset == "full" else "")
    )
    print(
        "model cards (llama.cpp fp16, MacBook Pro M4 Max): 7.3 / 8.1 / 8.2 / 34.3 ms p50 "
        "for the same four rows."
    )
    return 0


def _print_machine(result: dict[str, Any]) -> None:
    m = result["machine"]
    acc = f", {m['accelerator']}" if m.get("accelerator") else ""
    if m.get("load_average_1m_before") is not None:
        acc += f"; load average {m['load_average_1m_before']} before the run"
    print(
        f"machine: {m['cpu']} ({m['cpu_count']} cores, torch threads {m['torch_threads']}){acc}; "
        f"{m['platform']}; python {m['python']}, torch {m['torch']}, "
        f"transformers {m['transformers']}"
    )


def _bench_encoder(args: argparse.Namespace) -> int:
    from lfm_retrievers.bench.encoder import encoder_benchmark
    from lfm_retrievers.bench.machine import shared_data_dir

    iterations, warmup, preset = _quick(args, 30, 3)
    data: Path | None = Path(args.data) if args.data else shared_data_dir()
    if args.data and not data.exists():  # type: ignore[union-attr]
        msg = f"data folder not found: {args.data}"
        raise CLIError(msg)
    model = args.model[0] if args.model else None
    if model == TINY:
        model = str(tiny_checkpoint("embedding"))
    if args.backend == "onnx" or args.under_load:
        return _bench_onnx(args, model, data, preset, iterations)
    n_docs = args.docs or (8 if args.quick else 128)
    print(
        "encoder benchmark: "
        f"{'building random ' + preset + '-size weights, ' if model is None else ''}"
        f"{n_docs} documents ...",
        file=sys.stderr,
    )
    result = encoder_benchmark(
        model=model,
        device=args.device,
        dtype=args.dtype,
        preset=preset,
        data=data,
        n_docs=n_docs,
        batch_size=args.batch_size,
        iterations=iterations,
        warmup=warmup,
        max_seconds=args.max_seconds,
        transformers_baseline=not args.no_baseline,
        gemm_size=512 if args.quick else 2048,
    )
    _write_json(args.output, result)
    if args.json:
        _print_json(result)
        return 0
    q, d, mem = result["query"], result["documents"], result["memory"]
    print(
        f"model: {result['model']}, {result['parameters'] / 1e6:.1f}M parameters ({result['note']})"
    )
    print(
        f"query latency ({q['tokens']} tokens, batch 1): p50 {q['p50_ms']:.1f} ms, "
        f"p95 {q['p95_ms']:.1f} ms (n={q['n']})"
    )
    print(
        f"documents: {d['count']} from {d['source']}; {d['tokens']} tokens "
        f"(mean {d['mean_tokens']}, truncated at {d['truncated_at']}), batch size {d['batch_size']}"
    )
    rows = [
        [
            "lfm_retrievers encode_documents",
            f"{d['ours']['tokens_per_s']:.0f}",
            f"{d['ours']['seconds']:.1f}",
            f"{d['ours']['gflops_per_s']:.1f}",
            f"{d['ours']['percent_of_peak']:.0f}%",
        ]
    ]
    if "transformers" in d:
        t = d["transformers"]
        rows.append(
            [
                "transformers Lfm2Model",
                f"{t['tokens_per_s']:.0f}",
                f"{t['seconds']:.1f}",
                f"{t['gflops_per_s']:.1f}",
                f"{t['percent_of_peak']:.0f}%",
            ]
        )
    print(_table(["path", "tokens/s", "seconds", "GFLOP/s", "of peak"], rows, "lrrrr"))
    if "ratio" in d:
        print(f"throughput ratio (ours / transformers): {d['ratio']:.2f}x")
    print(
        f"measured fp32 GEMM peak: {result['gemm_peak_gflops_fp32']:.1f} GFLOP/s "
        "(useful FLOPs only: padding not counted)"
    )
    w = f"{_fmt_bytes(mem['weights_bytes'])} {mem['weights_dtype']}"
    if mem["peak_rss_encoding_bytes"] is not None:
        print(
            f"peak resident memory while encoding: {_fmt_bytes(mem['peak_rss_encoding_bytes'])} "
            f"= {mem['peak_rss_encoding_over_weights']:.2f}x the weights ({w}); while loading "
            f"{_fmt_bytes(mem['peak_rss_loading_bytes'])}; before loading "
            f"{_fmt_bytes(mem['rss_before_load_bytes'])}"
        )
    else:
        print(
            f"peak resident memory (loading + encoding): {_fmt_bytes(mem['peak_rss_bytes'])} = "
            f"{mem['peak_rss_over_weights']:.2f}x the weights ({w})"
        )
    i8 = result.get("int8")
    if i8 and "skipped" not in i8:
        print(
            f"int8 (dynamic, Linear layers): query p50 {i8['query']['p50_ms']:.1f} ms, p95 "
            f"{i8['query']['p95_ms']:.1f} ms ({i8['speedup_p50']:.2f}x fp32); cosine to fp32 "
            f"mean {i8['cosine_to_fp32']['mean']:.4f}, min {i8['cosine_to_fp32']['min']:.4f} "
            f"over {i8['cosine_to_fp32']['texts']} texts"
        )
    elif i8:
        print(f"int8: {i8['skipped']}")
    _print_machine(result)
    return 0


def _bench_onnx(
    args: argparse.Namespace, model: str | None, data: Path | None, preset: str, iterations: int
) -> int:
    from lfm_retrievers.bench.onnx import format_onnx_report, onnx_benchmark

    print(
        "encoder benchmark, torch vs ONNX Runtime: "
        f"{'building random ' + preset + '-size weights, ' if model is None else ''}"
        "exporting once, then timing both interleaved ...",
        file=sys.stderr,
    )
    result = onnx_benchmark(
        preset=preset,
        model=model,
        data=data,
        n_docs=args.docs or (8 if args.quick else 32),
        batch_size=args.batch_size,
        iterations=iterations,
        doc_rounds=1 if args.quick else 2,
        under_load=args.under_load,
    )
    _write_json(args.output, result)
    if args.json:
        _print_json(result)
    else:
        print(format_onnx_report(result))
    return 0


def _bench_retrieval(args: argparse.Namespace) -> int:
    """Run the retrieval benchmarks and print their report.

    These are retrieval-A's MaxSim rerank / ColBERTIndex benchmark (synthetic vectors) and
    retrieval-B's BM25 / BM25 -> ColBERT benchmark (BEIR SciFact, when available).
    """
    from lfm_retrievers.bench.machine import shared_data_dir
    from lfm_retrievers.bench.retrieval import format_retrieval_report, run_retrieval_bench

    data = Path(args.data).expanduser() if args.data else None
    if data is not None and not data.is_dir():
        msg = f"data folder not found: {data}"
        raise CLIError(msg)
    if data is None and shared_data_dir() is not None:
        data = shared_data_dir() / "scifact"  # type: ignore[operator]
    model = args.model[0] if args.model else None
    if model == TINY:
        model = str(tiny_checkpoint("colbert"))
    quick = args.quick
    print("retrieval benchmark: MaxSim rerank and ColBERTIndex search ...", file=sys.stderr)
    result: dict[str, Any] = {"maxsim_and_index": run_retrieval_bench(quick=quick)}
    if args.under_load:
        from lfm_retrievers.bench.onnx import busy_neighbour

        print("retrieval benchmark: again, with a CPU-bound helper process ...", file=sys.stderr)
        with busy_neighbour():
            result["maxsim_and_index_under_load"] = run_retrieval_bench(quick=quick)
    if data is not None:
        from lfm_retrievers.bench.bm25 import bm25_bench

        print(f"retrieval benchmark: BM25 and BM25 -> ColBERT on {data} ...", file=sys.stderr)
        result["bm25"] = bm25_bench(
            data,
            model=model,
            pipeline_queries=args.iterations or (3 if quick else 30),
            builds=1 if quick else 3,
        )
    else:
        result["bm25"] = {"skipped": "no BEIR SciFact folder: pass --data DIR"}
    _write_json(args.output, result)
    if args.json:
        _print_json(result)
        return 0
    print(format_retrieval_report(result["maxsim_and_index"]))
    if "maxsim_and_index_under_load" in result:
        print("\nthe same, with a CPU-bound helper process running (--under-load):")
        print(format_retrieval_report(result["maxsim_and_index_under_load"]))
    print()
    b = result["bm25"]
    if "skipped" in b:
        print(f"BM25: skipped ({b['skipped']})")
        return 0
    ds, bm, pipe = b["dataset"], b["bm25"], b["bm25_colbert"]
    print(
        f"BM25 and BM25 -> ColBERT on {ds['path']} ({ds['documents']} documents, "
        f"{ds['queries']} queries, {ds['tokens']} BM25 tokens):"
    )
    search = next(v for k, v in bm.items() if k.startswith("search_top"))
    cold, warm = pipe["cold_cache"], pipe["warm_cache"]
    rows = [
        [
            f"BM25 index build (rank-bm25, {bm['analyzer']})",
            f"{bm['build_s'] * 1000:.0f} ms",
            "-",
            len(bm["build_samples_s"]),
        ],
        [
            "BM25 search, top 100",
            f"{search['p50_ms']:.1f} ms",
            f"{search['p95_ms']:.1f} ms",
            search["n"],
        ],
        [
            f"BM25 -> ColBERT top 10 of {pipe['candidates']}, cold cache",
            f"{cold['p50_ms']:.1f} ms",
            f"{cold['p95_ms']:.1f} ms",
            cold["n"],
        ],
        [
            f"BM25 -> ColBERT top 10 of {pipe['candidates']}, warm cache",
            f"{warm['p50_ms']:.1f} ms",
            f"{warm['p95_ms']:.1f} ms",
            warm["n"],
        ],
    ]
    print(_table(["stage", "p50", "p95", "n"], rows, "lrrr"))
    print(f"ColBERT model: {pipe['model']}")
    _print_machine(b)
    return 0


def _bench_qdrant(args: argparse.Namespace) -> int:
    """The Qdrant engine under ``QdrantIndex``: see :mod:`lfm_retrievers.bench.qdrant`."""
    import os

    from lfm_retrievers.bench.machine import shared_data_dir
    from lfm_retrievers.bench.qdrant import qdrant_bench, qdrant_corpus
    from lfm_retrievers.models.registry import get_colbert_encoder, get_dense_encoder

    models = list(args.model or [])
    if models:
        colbert, dense = models[0], models[1] if len(models) > 1 else None
    else:  # tiny random models with the real tokenizers: real token counts per document
        colbert, dense = (
            _tiny_with_real_tokenizer("colbert"),
            _tiny_with_real_tokenizer("embedding"),
        )
    data = Path(args.data).expanduser() if args.data else None
    if data is None and shared_data_dir() is not None:
        data = shared_data_dir() / "scifact"  # type: ignore[operator]
    n_docs = args.docs or (300 if args.quick else 2000)
    texts, queries = qdrant_corpus(data, n_docs, 10 if args.quick else args.queries)
    print(
        f"qdrant benchmark: {len(texts)} documents, {len(queries)} queries, "
        f"engine {args.url or 'local mode'} ...",
        file=sys.stderr,
    )
    result = qdrant_bench(
        texts,
        queries,
        colbert=get_colbert_encoder(colbert, device=args.device, dtype=args.dtype),
        dense=None if dense is None else get_dense_encoder(dense, device=args.device),
        url=args.url,
        api_key=os.environ.get("QDRANT_API_KEY") or None,
    )
    result["data"] = str(data) if data is not None else "synthetic"
    _write_json(args.output, result)
    if args.json:
        _print_json(result)
        return 0
    print(f"Qdrant engine: {result['engine']}; {result['documents']} documents ({result['data']}), "
          f"{result['queries']} queries, ColBERT {result['colbert_model']} "
          f"(dim {result['dims']['colbert']}), dense {result['dense_model']}")  # fmt: skip
    ingest = result["ingest"]
    print(f"ingest: {ingest['docs_per_s']} documents/s (precomputed vectors, batches of "
          f"{ingest['upload_batch_size']}, wait=True)")  # fmt: skip
    rows = [
        [mode, f"{v['p50_ms']:.1f} ms", f"{v['p95_ms']:.1f} ms",
         "exact" if mode == "colbert" else f"{result['recall_at_k_vs_colbert'][mode]:.3f}"]
        for mode, v in result["latency"].items()
    ]  # fmt: skip
    print(_table(["mode", "p50", "p95", f"recall@{result['k']} vs colbert"], rows, "lrrr"))
    b = result["bytes_per_document"]
    print(f"bytes per document: {b['lfm2.5_dims'] / 1024:.1f} KiB of vectors and payload at "
          f"LFM2.5's widths (128-d ColBERT x {b['tokens_mean']} tokens in {result['storage']}, "
          f"1024-d dense, {b['bm25_entries_mean']} BM25 entries, "
          f"{b['payload_mean']} B payload)")  # fmt: skip
    if not args.url:
        print("local mode scans every point per query: its latencies are not a server's")
    return 0


def _tiny_with_real_tokenizer(kind: str) -> str:
    """A tiny random checkpoint of ``kind`` with the real LFM2 tokenizer when one is found."""
    import tempfile

    from lfm_retrievers.bench.machine import _real_tokenizer
    from lfm_retrievers.testing import build_tiny_checkpoint

    tokenizer = _real_tokenizer(kind)
    if tokenizer is None:
        return str(tiny_checkpoint(kind))
    folder = Path(tempfile.mkdtemp(prefix="lfm-bench-qdrant-")) / kind
    return str(build_tiny_checkpoint(kind, folder, tokenizer_dir=tokenizer))  # type: ignore[arg-type]
