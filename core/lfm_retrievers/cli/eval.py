"""``lfm-retrievers eval``: NDCG@10, Recall@10/100 and MRR@10 on BEIR-layout data."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lfm_retrievers.evaluation import EVAL_MODES

from ._common import (
    DEFAULT_COLBERT,
    DEFAULT_DENSE,
    CLIError,
    _device_options,
    _model_info,
    _print_json,
    _table,
    _write_json,
    load_model,
)

if TYPE_CHECKING:
    from lfm_retrievers.models.encoders import ColBERTEncoder, DenseEncoder


EVAL_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


PUBLISHED_BM25_NDCG10 = {"scifact": 0.665, "nfcorpus": 0.325}


def register(sub: Any) -> None:
    """Add the subcommand's parser to ``sub`` (argparse subparsers)."""
    e = sub.add_parser(
        "eval",
        help="NDCG@10, Recall@10/100, MRR@10 on BEIR-layout data",
        description=(
            "Evaluate on BEIR-layout data (corpus.jsonl[.gz], queries.jsonl, qrels.tsv): one "
            "dataset folder, or a folder of dataset folders (each is reported). Metrics by "
            "pytrec_eval, averaged over all judged queries."
        ),
    )
    e.add_argument(
        "--data", required=True, metavar="DIR", help="a BEIR dataset folder or a folder of them"
    )
    e.add_argument(
        "--mode",
        default="bm25+colbert",
        choices=EVAL_MODES,
        help="retrieval method (default bm25+colbert)",
    )
    e.add_argument(
        "--model",
        help="hub id, local folder or 'tiny' (default: $LFM_RETRIEVERS_MODEL / "
        f"$LFM_RETRIEVERS_DENSE_MODEL or {DEFAULT_COLBERT} / {DEFAULT_DENSE})",
    )
    e.add_argument(
        "--max-queries", type=int, default=None, metavar="N", help="first N judged queries only"
    )
    e.add_argument(
        "--depth", type=int, default=100, help="documents retrieved per query (default 100)"
    )
    e.add_argument(
        "--candidates", type=int, default=100, help="BM25 candidates for bm25+colbert (default 100)"
    )
    e.add_argument("--analyzer", default="default", help="BM25 analyzer (default: default)")
    e.add_argument(
        "--language",
        default=None,
        help="BM25 stemming: an ISO 639-1 code (its Snowball stemmer) or 'auto' (each text's "
        "detected language); default: none",
    )
    e.add_argument(
        "--dense-model",
        metavar="MODEL",
        help="dense model of --mode hybrid (hub id, folder or 'tiny'; default "
        f"$LFM_RETRIEVERS_DENSE_MODEL or {DEFAULT_DENSE})",
    )
    e.add_argument(
        "--dense-candidates", type=int, default=100, help="dense candidates of hybrid (100)"
    )
    e.add_argument(
        "--bm25-variant", default="plus", help="rank-bm25 variant: plus, okapi, l (default plus)"
    )
    e.add_argument("--k1", type=float, default=1.5)
    e.add_argument("--b", type=float, default=0.75)
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--json", action="store_true", help="print the results as JSON")
    e.add_argument("--output", metavar="FILE", help="also write the JSON results to FILE")
    e.add_argument("--no-progress", action="store_true")
    _device_options(e)
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``lfm-retrievers eval``."""
    from lfm_retrievers.corpus import find_beir_folders
    from lfm_retrievers.evaluation import document_text, evaluate, load_beir, make_searcher

    root = Path(args.data).expanduser()
    if not root.exists():
        msg = f"data folder not found: {root}"
        raise CLIError(msg)
    if not root.is_dir():
        msg = f"--data must be a folder in the BEIR layout, not a file: {root}"
        raise CLIError(msg)
    folders = find_beir_folders(root)
    if not folders:
        msg = (
            f"{root}: no BEIR dataset (corpus.jsonl[.gz] + queries.jsonl + qrels.tsv) in it "
            "or in its subfolders"
        )
        raise CLIError(msg)
    if args.max_queries is not None and args.max_queries < 1:
        msg = f"--max-queries must be >= 1, got {args.max_queries}"
        raise CLIError(msg)
    mode = args.mode
    enc: DenseEncoder | ColBERTEncoder | None = None
    dense: DenseEncoder | ColBERTEncoder | None = None
    if mode == "hybrid":
        dense = load_model(args.dense_model, "dense", args)
    elif args.dense_model is not None:
        msg = "--dense-model is used by --mode hybrid only"
        raise CLIError(msg)
    if mode != "bm25":
        enc = load_model(args.model, "dense" if mode == "dense" else "colbert", args)
    show = not args.no_progress

    results: list[dict[str, Any]] = []
    for folder in folders:
        corpus, queries, qrels = load_beir(folder)
        if not corpus:
            msg = f"{folder}: the corpus is empty"
            raise CLIError(msg)
        if args.max_queries is not None:
            queries = dict(list(queries.items())[: args.max_queries])
        qrels = {q: qrels[q] for q in queries}
        if not queries:
            msg = f"{folder}: no judged queries (queries.jsonl vs qrels)"
            raise CLIError(msg)
        ids = list(corpus)
        texts = [document_text(corpus[i]) for i in ids]
        t0 = time.perf_counter()
        search = make_searcher(
            mode,
            texts,
            ids,
            encoder=enc,
            depth=args.depth,
            candidates=args.candidates,
            analyzer=args.analyzer,
            language=args.language,
            bm25_variant=args.bm25_variant,
            k1=args.k1,
            b=args.b,
            batch_size=args.batch_size,
            dense_encoder=dense,
            dense_candidates=args.dense_candidates,
        )
        index_s = time.perf_counter() - t0
        run: dict[str, dict[str, float]] = {}
        t0 = time.perf_counter()
        from tqdm.auto import tqdm

        bar = {} if show else {"disable": True}  # an unset `disable` honours TQDM_DISABLE
        for qid, qtext in tqdm(queries.items(), desc=f"{folder.name}: queries", unit="q", **bar):
            run[qid] = search(qtext)
        search_s = time.perf_counter() - t0
        metrics = evaluate(run, qrels, EVAL_METRICS)
        results.append(
            {
                "dataset": folder.name,
                "path": str(folder),
                "documents": len(corpus),
                "queries": len(queries),
                "metrics": {k: round(v, 4) for k, v in metrics.items()},
                "published_bm25_ndcg@10": PUBLISHED_BM25_NDCG10.get(folder.name.lower()),
                "seconds": {"index": round(index_s, 2), "search": round(search_s, 2)},
            }
        )

    settings = _eval_settings(args, enc, dense)
    if args.json:
        _print_json({"mode": mode, "settings": settings, "results": results})
    else:
        rows = []
        for r in results:
            m = r["metrics"]
            pub = r["published_bm25_ndcg@10"]
            rows.append(
                [
                    r["dataset"],
                    mode,
                    r["queries"],
                    r["documents"],
                    f"{m['ndcg@10']:.4f}",
                    f"{m['recall@10']:.4f}",
                    f"{m['recall@100']:.4f}",
                    f"{m['mrr@10']:.4f}",
                    "-" if pub is None else f"{pub:.3f}",
                ]
            )
        print(
            _table(
                [
                    "dataset",
                    "mode",
                    "queries",
                    "docs",
                    "NDCG@10",
                    "Recall@10",
                    "Recall@100",
                    "MRR@10",
                    "published BM25 NDCG@10",
                ],
                rows,
                "llrrrrrrr",
            )
        )
        print("settings: " + json.dumps(settings, ensure_ascii=False))
    _write_json(args.output, {"mode": mode, "settings": settings, "results": results})
    return 0


def _eval_settings(
    args: argparse.Namespace,
    enc: DenseEncoder | ColBERTEncoder | None,
    dense: DenseEncoder | ColBERTEncoder | None = None,
) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from lfm_retrievers._version import __version__

    try:
        pytrec = version("pytrec-eval-terrier")
    except PackageNotFoundError:  # pragma: no cover
        pytrec = "unknown"
    s: dict[str, Any] = {
        "mode": args.mode,
        "depth": args.depth,
        "document_text": 'title + " " + text',
        "metrics": list(EVAL_METRICS),
        "metrics_library": (
            f"pytrec_eval (pytrec-eval-terrier {pytrec}), mean over all judged queries"
        ),
        "max_queries": args.max_queries,
        "lfm_retrievers": __version__,
    }
    if args.mode in ("bm25", "bm25+colbert", "hybrid"):
        s["bm25"] = {"library": "rank-bm25", "analyzer": args.analyzer, "language": args.language}
        if args.mode == "bm25":
            s["bm25"].update({"variant": args.bm25_variant, "k1": args.k1, "b": args.b})
        else:
            s["bm25"]["variant"] = "pipeline default"
            s["candidates"] = args.candidates
    if enc is not None:
        kind = "dense" if args.mode == "dense" else "colbert"
        s["model"] = _model_info(enc, args.model, kind)
    if dense is not None:
        s["dense_model"] = _model_info(dense, args.dense_model, "dense")
        s["dense_candidates"] = args.dense_candidates
    return s
