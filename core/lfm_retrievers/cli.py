"""The ``lfm-retrievers`` command: search a corpus, evaluate on BEIR data, benchmark, list models.

    lfm-retrievers search --corpus docs.jsonl "how do I return an item?"
    lfm-retrievers eval --data ../shared/data --mode bm25
    lfm-retrievers bench [latency|encoder|retrieval] [--quick]
    lfm-retrievers models

User errors (a missing file, a malformed JSONL line, an unknown option value, a model that is not
available offline) print one ``lfm-retrievers: error: ...`` line on stderr and exit non-zero;
set ``LFM_RETRIEVERS_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from .corpus import CorpusDocument
    from .encoders import ColBERTEncoder, DenseEncoder

logger = logging.getLogger("lfm_retrievers.cli")

PROG = "lfm-retrievers"
DEFAULT_COLBERT = "LiquidAI/LFM2.5-ColBERT-350M"
DEFAULT_DENSE = "LiquidAI/LFM2.5-Embedding-350M"
TINY = "tiny"
EVAL_MODES = ("bm25", "dense", "colbert", "bm25+colbert")
EVAL_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
BENCH_TARGETS = ("latency", "encoder", "retrieval")
#: Published BM25 NDCG@10 (BEIR paper, Thakur et al. 2021, Table 2), for side-by-side output.
PUBLISHED_BM25_NDCG10 = {"scifact": 0.665, "nfcorpus": 0.325}
UNTRAINED_WARNING = (
    "WARNING: --model tiny is an UNTRAINED miniature model with random weights, built locally "
    "so the pipeline runs without the Hugging Face Hub. Its scores and the order they give are "
    "meaningless (BM25 candidates are real). For real results use --model {real} or a local "
    "checkpoint folder."
)


class CLIError(Exception):
    """A user error: printed as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), not usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# -- models: names, the tiny fallback -----------------------------------------------------------


def cache_dir() -> Path:
    """Where the CLI keeps what it builds: ``$LFM_RETRIEVERS_CACHE`` or the XDG cache."""
    env = os.environ.get("LFM_RETRIEVERS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lfm-retrievers"


def tiny_checkpoint(kind: str) -> Path:
    """The untrained miniature checkpoint of ``kind`` ("colbert" | "embedding"), built once into
    the cache directory (atomically, so concurrent runs never see half a checkpoint)."""
    from . import __version__
    from .testing import build_tiny_checkpoint

    target = cache_dir() / f"tiny-{kind}-{__version__}"
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    build_tiny_checkpoint(kind, tmp)  # type: ignore[arg-type]
    try:
        os.replace(tmp, target)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _model_name(arg: str | None, kind: str) -> str:
    if arg:
        return arg
    if kind == "dense":
        return os.environ.get("LFM_RETRIEVERS_DENSE_MODEL") or DEFAULT_DENSE
    return os.environ.get("LFM_RETRIEVERS_MODEL") or DEFAULT_COLBERT


def load_model(
    arg: str | None,
    kind: str,
    *,
    device: str,
    dtype: str,
    quantize: str | None,
    fallback_tiny: bool = False,
) -> DenseEncoder | ColBERTEncoder:
    """Load ``--model`` (or the default of ``kind``); ``tiny`` builds an untrained miniature.

    With ``fallback_tiny``, a model that cannot be found (offline, no Hub) is replaced by the
    tiny one, loudly, instead of failing.
    """
    from .checkpoints import CheckpointNotFoundError
    from .encoders import load

    name = _model_name(arg, kind)
    expect = "dense" if kind == "dense" else "colbert"
    real = DEFAULT_DENSE if kind == "dense" else DEFAULT_COLBERT
    tiny_kind = "embedding" if kind == "dense" else "colbert"
    if name == TINY:
        print(UNTRAINED_WARNING.format(real=real), file=sys.stderr)
        path: str | Path = tiny_checkpoint(tiny_kind)
    else:
        path = name
    try:
        return load(path, device=device, dtype=dtype, quantize=quantize, expect=expect)  # type: ignore[arg-type]
    except CheckpointNotFoundError as exc:
        if not fallback_tiny:
            raise CLIError(f"{exc} (To try the pipeline offline: --model tiny.)") from exc
        print(f"could not load {name!r}: {str(exc).split('. ')[0]}.", file=sys.stderr)
        print(UNTRAINED_WARNING.format(real=real), file=sys.stderr)
        return load(tiny_checkpoint(tiny_kind), device=device, dtype=dtype, expect=expect)  # type: ignore[arg-type]


def is_tiny(enc: DenseEncoder | ColBERTEncoder) -> bool:
    """True for the untrained miniature that ``--model tiny`` builds into the cache."""
    path = Path(enc.path)
    return path.name.startswith("tiny-") and path.parent.resolve() == cache_dir().resolve()


def _model_info(
    enc: DenseEncoder | ColBERTEncoder, arg: str | None, kind: str, index: Path | None = None
) -> dict[str, Any]:
    if is_tiny(enc):
        name = TINY
    elif index is not None and arg is None:
        name = str(enc.name)
    else:
        name = _model_name(arg, kind)
    return {
        "name": name,
        "path": str(enc.path),
        "kind": enc.kind,
        "fingerprint": enc.fingerprint,
        "dim": enc.dim,
        "device": str(enc.device),
        "dtype": str(enc.dtype).removeprefix("torch."),
        "quantize": enc.quantize,
        "untrained": name == TINY,
    }


# -- output helpers -------------------------------------------------------------------------------


def _use_color(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A Markdown table (readable in a terminal, pasteable into a README)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)

    def line(row: Sequence[str]) -> str:
        out = []
        for c, w, a in zip(row, widths, align, strict=True):
            out.append(c.rjust(w) if a == "r" else c.ljust(w))
        return "| " + " | ".join(out) + " |"

    sep = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if a == "r" else "-" * (w + 2)
            for w, a in zip(widths, align, strict=True)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _write_json(path: str | None, data: Any) -> None:
    if path:
        out = Path(path).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _fmt_bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


# -- highlights -------------------------------------------------------------------------------


_WORDCHAR = re.compile(r"\w")


def highlight_spans(explanation: Any, text: str, limit: int = 5) -> list[dict[str, Any]]:
    """The document spans that the query's real tokens matched best (widened to whole words),
    strongest first, at most ``limit`` distinct spans; from ``ColBERTEncoder.explain``."""
    found: dict[tuple[int, int], dict[str, Any]] = {}
    for m in sorted(explanation.tokens, key=lambda t: -t.similarity):
        if m.query_span is None or m.doc_span is None:
            continue
        a, b = m.doc_span
        while a < b and text[a].isspace():
            a += 1
        if a >= b:
            continue
        while a > 0 and _WORDCHAR.match(text[a - 1]) and _WORDCHAR.match(text[a]):
            a -= 1
        while b < len(text) and _WORDCHAR.match(text[b]) and _WORDCHAR.match(text[b - 1]):
            b += 1
        if (a, b) in found:
            continue
        found[(a, b)] = {
            "start": a,
            "end": b,
            "text": text[a:b],
            "query_token": m.query_token,
            "similarity": round(float(m.similarity), 4),
        }
        if len(found) >= limit:
            break
    return list(found.values())


def _snippet(
    text: str, spans: Sequence[dict[str, Any]], width: int, max_chars: int, color: bool
) -> list[str]:
    """Lines of a window of ``text`` around the best span, matches marked (bold or [brackets])."""
    flat = re.sub(r"\s", " ", text)
    start = 0
    if spans and len(flat) > max_chars:
        best = spans[0]["start"]
        start = max(0, min(best - max_chars // 3, len(flat) - max_chars))
        while start > 0 and flat[start - 1] != " " and best - start < max_chars // 2:
            start -= 1
    end = min(len(flat), start + max_chars)
    marks = sorted((s["start"], s["end"]) for s in spans)
    on, off = ("\033[1m", "\033[0m") if color else ("[", "]")

    def render(a: int, b: int) -> str:
        out, pos = [], a
        for s, e in marks:
            s, e = max(s, a), min(e, b)
            if s >= e or s < pos:
                continue
            out.append(flat[pos:s] + on + flat[s:e] + off)
            pos = e
        out.append(flat[pos:b])
        return "".join(out)

    lines, a = [], start
    while a < end:
        b = min(end, a + width)
        if b < end:
            cut = flat.rfind(" ", a + 1, b)
            b = cut if cut > a else b
        lines.append(render(a, b).strip())
        a = b
        while a < end and flat[a] == " ":
            a += 1
    if lines and start > 0:
        lines[0] = "…" + lines[0]
    if lines and end < len(flat):
        lines[-1] += "…"
    return lines or [""]


# -- search --------------------------------------------------------------------------------------


def _cmd_search(args: argparse.Namespace) -> int:
    query = " ".join(args.query).strip()
    if not query:
        raise CLIError("the query is empty")
    if args.k < 1 or args.candidates < 1:
        raise CLIError(f"-k and --candidates must be >= 1 (got {args.k}, {args.candidates})")
    docs: list[CorpusDocument] = []
    if args.corpus is not None:
        from .corpus import load_corpus

        docs = load_corpus(args.corpus)
    elif args.index is None:
        raise CLIError("give --corpus FILE|DIR (or --index DIR of a saved index)")
    by_id = {d.id: d for d in docs}
    progress = None if not args.no_progress else False

    index_dir = Path(args.index).expanduser() if args.index else None
    reuse = index_dir is not None and index_dir.is_dir() and any(index_dir.iterdir())
    if index_dir is not None and not reuse and not docs:
        raise CLIError(f"no index at {index_dir} yet: pass --corpus to build it")
    enc: Any = None
    if not (reuse and args.model is None):
        enc = load_model(
            args.model,
            "colbert",
            device=args.device,
            dtype=args.dtype,
            quantize=args.quantize,
            fallback_tiny=args.fallback_tiny,
        )
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if index_dir is None:
        from .pipeline import BM25ColBERT

        pipe = BM25ColBERT(
            enc,  # type: ignore[arg-type]
            [d.search_text for d in docs],
            ids=[d.id for d in docs],
            metadata=[d.metadata for d in docs],
            candidates=args.candidates,
            analyzer=args.analyzer,
        )
        for hit in pipe.search(query, k=args.k):
            rows.append(
                {
                    "rank": hit.rank,
                    "id": hit.id,
                    "score": float(hit.score),
                    "colbert_score": float(hit.colbert_score),
                    "bm25_score": None if hit.bm25_score is None else float(hit.bm25_score),
                    "bm25_rank": hit.bm25_rank,
                    "text": hit.text,
                    "metadata": dict(hit.metadata or {}),
                }
            )
        how = f"BM25 top {args.candidates} -> ColBERT rerank (in process, no index)"
    else:
        index = _open_index(index_dir, enc, docs, progress)
        enc = index.encoder
        for hit in index.search(query, k=args.k):
            rows.append(
                {
                    "rank": hit.rank,
                    "id": hit.id,
                    "score": float(hit.score),
                    "colbert_score": float(hit.score),
                    "bm25_score": None,
                    "bm25_rank": None,
                    "text": hit.text,
                    "metadata": dict(hit.metadata or {}),
                }
            )
        how = f"ColBERT index {args.index} ({len(index)} documents)"
    search_s = time.perf_counter() - t0

    for row in rows:
        doc = by_id.get(row["id"])
        row["title"] = doc.title if doc is not None else str(row["metadata"].get("title", ""))
        row["highlights"] = highlight_spans(enc.explain(query, row["text"]), row["text"])

    info = _model_info(enc, args.model, "colbert", index_dir if reuse else None)
    if args.json:
        _print_json(
            {
                "query": query,
                "model": info,
                "corpus": {"path": args.corpus, "documents": len(docs) if docs else None},
                "settings": {
                    "method": "index" if args.index else "bm25+colbert",
                    "index": args.index,
                    "k": args.k,
                    "candidates": None if args.index else args.candidates,
                    "analyzer": None if args.index else args.analyzer,
                    "score": "raw MaxSim (sum over query vectors)",
                },
                "seconds": round(search_s, 3),
                "results": rows,
            }
        )
        return 0

    color = _use_color()
    term = shutil.get_terminal_size((100, 24)).columns
    print(f"query: {query}")
    print(
        f"model: {info['name']} ({enc.device}, "
        f"{str(enc.dtype).removeprefix('torch.')}"
        + (", UNTRAINED: scores are meaningless" if info["untrained"] else "")
        + f")  |  {how}"
        + (f"  |  corpus: {args.corpus} ({len(docs)} documents)" if docs else "")
    )
    if not rows:
        print("no results: no document shares a term with the query")
        return 0
    id_w = min(max(len(r["id"]) for r in rows), 28)
    head = f"{'#':>3}  {'score':>8}  {'bm25':>7}  {'id':<{id_w}}  text"
    print(head)
    print("-" * min(term, max(len(head), 60)))
    indent = 3 + 2 + 8 + 2 + 7 + 2 + id_w + 2
    width = max(30, term - indent - 1)
    for r in rows:
        bm25 = f"{r['bm25_score']:.2f}" if r["bm25_score"] is not None else "-"
        lines = _snippet(r["text"], r["highlights"], width, max_chars=width * 3, color=color)
        doc_id = r["id"] if len(r["id"]) <= id_w else r["id"][: id_w - 1] + "…"
        print(f"{r['rank']:>3}  {r['score']:>8.3f}  {bm25:>7}  {doc_id:<{id_w}}  {lines[0]}")
        for extra in lines[1:]:
            print(" " * indent + extra)
    return 0


def _open_index(
    directory: Path, enc: ColBERTEncoder | None, docs: list[CorpusDocument], progress: Any
) -> Any:
    """Load the ColBERT index in ``directory`` (syncing it with ``docs`` when given), or build
    and save it from ``docs``."""
    from .index import ColBERTIndex

    exists = directory.is_dir() and any(directory.iterdir())
    if exists:
        index = ColBERTIndex.load(directory, encoder=enc)  # enc None: the index's own model
        enc = index.encoder
        if not docs:
            return index
        wanted = {d.id: d for d in docs}
        stale = [
            i for i in index.ids if i not in wanted or index.get(i)[0] != wanted[i].search_text
        ]
        if stale:
            index.delete(stale)
        have = set(index.ids)
        new = [d for d in docs if d.id not in have]
        if new:
            index.add(
                [d.search_text for d in new],
                ids=[d.id for d in new],
                metadata=[_index_metadata(d) for d in new],
                show_progress=progress,
            )
        if stale or new:
            print(
                f"index {directory}: {len(new)} added, {len(stale)} removed or replaced",
                file=sys.stderr,
            )
            index.save(directory)
        return index
    if not docs:
        raise CLIError(f"no index at {directory} yet: pass --corpus to build it")
    index = ColBERTIndex(enc)
    print(f"building ColBERT index of {len(docs)} documents in {directory}", file=sys.stderr)
    index.add(
        [d.search_text for d in docs],
        ids=[d.id for d in docs],
        metadata=[_index_metadata(d) for d in docs],
        show_progress=progress,
    )
    index.save(directory)
    return index


def _index_metadata(doc: CorpusDocument) -> dict[str, Any]:
    return {**doc.metadata, "title": doc.title} if doc.title else dict(doc.metadata)


# -- eval -------------------------------------------------------------------------------------------


def _cmd_eval(args: argparse.Namespace) -> int:
    from .corpus import find_beir_folders
    from .evaluation import document_text, evaluate, load_beir

    root = Path(args.data).expanduser()
    if not root.exists():
        raise CLIError(f"data folder not found: {root}")
    if not root.is_dir():
        raise CLIError(f"--data must be a folder in the BEIR layout, not a file: {root}")
    folders = find_beir_folders(root)
    if not folders:
        raise CLIError(
            f"{root}: no BEIR dataset (corpus.jsonl[.gz] + queries.jsonl + qrels.tsv) in it "
            "or in its subfolders"
        )
    if args.max_queries is not None and args.max_queries < 1:
        raise CLIError(f"--max-queries must be >= 1, got {args.max_queries}")
    mode = args.mode
    enc: DenseEncoder | ColBERTEncoder | None = None
    if mode != "bm25":
        enc = load_model(
            args.model,
            "dense" if mode == "dense" else "colbert",
            device=args.device,
            dtype=args.dtype,
            quantize=args.quantize,
        )
    show = not args.no_progress

    results: list[dict[str, Any]] = []
    for folder in folders:
        corpus, queries, qrels = load_beir(folder)
        if not corpus:
            raise CLIError(f"{folder}: the corpus is empty")
        if args.max_queries is not None:
            queries = dict(list(queries.items())[: args.max_queries])
        qrels = {q: qrels[q] for q in queries}
        if not queries:
            raise CLIError(f"{folder}: no judged queries (queries.jsonl vs qrels)")
        ids = list(corpus)
        texts = [document_text(corpus[i]) for i in ids]
        t0 = time.perf_counter()
        search = _eval_searcher(mode, enc, texts, ids, args, show)
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

    settings = _eval_settings(args, enc)
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


def _eval_searcher(
    mode: str,
    enc: DenseEncoder | ColBERTEncoder | None,
    texts: list[str],
    ids: list[str],
    args: argparse.Namespace,
    show: bool,
) -> Callable[[str], dict[str, float]]:
    depth = args.depth
    if mode == "bm25":
        from .bm25 import BM25Index

        bm25 = BM25Index(
            texts, ids=ids, analyzer=args.analyzer, variant=args.bm25_variant, k1=args.k1, b=args.b
        )
        return lambda q: {h.id: h.score for h in bm25.search(q, k=depth)}
    assert enc is not None
    if mode == "bm25+colbert":
        from .pipeline import BM25ColBERT

        pipe = BM25ColBERT(enc, texts, ids=ids, candidates=args.candidates, analyzer=args.analyzer)  # type: ignore[arg-type]
        return lambda q: {h.id: float(h.score) for h in pipe.search(q, k=depth)}
    from .index import ColBERTIndex, DenseIndex

    index: Any = DenseIndex(enc) if mode == "dense" else ColBERTIndex(enc)  # type: ignore[arg-type]
    index.add(texts, ids=ids, batch_size=args.batch_size)
    return lambda q: {h.id: float(h.score) for h in index.search(q, k=depth)}


def _eval_settings(
    args: argparse.Namespace, enc: DenseEncoder | ColBERTEncoder | None
) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    try:
        pytrec = version("pytrec-eval-terrier")
    except PackageNotFoundError:  # pragma: no cover
        pytrec = "unknown"
    s: dict[str, Any] = {
        "mode": args.mode,
        "depth": args.depth,
        "document_text": 'title + " " + text',
        "metrics": list(EVAL_METRICS),
        "metrics_library": f"pytrec_eval (pytrec-eval-terrier {pytrec}), mean over all judged queries",
        "max_queries": args.max_queries,
        "lfm_retrievers": __version__,
    }
    if args.mode in ("bm25", "bm25+colbert"):
        s["bm25"] = {"library": "rank-bm25", "analyzer": args.analyzer}
        if args.mode == "bm25":
            s["bm25"].update({"variant": args.bm25_variant, "k1": args.k1, "b": args.b})
        else:
            s["bm25"]["variant"] = "pipeline default"
            s["candidates"] = args.candidates
    if enc is not None:
        kind = "dense" if args.mode == "dense" else "colbert"
        s["model"] = _model_info(enc, args.model, kind)
    return s


# -- bench ----------------------------------------------------------------------------------------


def _cmd_bench(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    # Speed is the subject here; per-call truncation notes would only interleave the output.
    quiet = logging.getLogger("lfm_retrievers.encoders")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        if args.target == "encoder":
            return _bench_encoder(args)
        if args.target == "retrieval":
            return _bench_retrieval(args)
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

    from .benchmark import build_random_checkpoint, latency_benchmark, load_average
    from .encoders import ColBERTEncoder, DenseEncoder, load

    load_before = load_average()  # before this command's own work (building, loading)
    iterations, warmup, preset = _quick(args, 50, 3)
    given: dict[str, DenseEncoder | ColBERTEncoder] = {}
    for name in args.model or []:
        path: str | Path = tiny_checkpoint("colbert") if name == TINY else name
        try:
            enc = load(path, device=args.device, dtype=args.dtype, quantize=args.quantize)
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
                    path, device=args.device, dtype=args.dtype, quantize=args.quantize
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
        f"settings: {s['query_tokens']['dense']}-token dense / {s['query_tokens']['colbert']}-token "
        f"ColBERT queries, {s['documents_per_query']} document(s) of {s['document_tokens']} tokens "
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
        f"{m['platform']}; python {m['python']}, torch {m['torch']}, transformers {m['transformers']}"
    )


def _bench_encoder(args: argparse.Namespace) -> int:
    from .benchmark import encoder_benchmark, shared_data_dir

    iterations, warmup, preset = _quick(args, 30, 3)
    data: Path | None = Path(args.data) if args.data else shared_data_dir()
    if args.data and not data.exists():  # type: ignore[union-attr]
        raise CLIError(f"data folder not found: {args.data}")
    model = args.model[0] if args.model else None
    if model == TINY:
        model = str(tiny_checkpoint("embedding"))
    n_docs = args.docs or (8 if args.quick else 128)
    print(
        f"encoder benchmark: {'building random ' + preset + '-size weights, ' if model is None else ''}"
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
        f"measured fp32 GEMM peak: {result['gemm_peak_gflops_fp32']:.1f} GFLOP/s (useful FLOPs only: padding not counted)"
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


def _bench_retrieval(args: argparse.Namespace) -> int:
    """retrieval-A's MaxSim rerank / ColBERTIndex benchmark (synthetic vectors) and
    retrieval-B's BM25 / BM25 -> ColBERT benchmark (BEIR SciFact, when available)."""
    from .bench_retrieval import format_retrieval_report, run_retrieval_bench
    from .benchmark import shared_data_dir

    data = Path(args.data).expanduser() if args.data else None
    if data is not None and not data.is_dir():
        raise CLIError(f"data folder not found: {data}")
    if data is None and shared_data_dir() is not None:
        data = shared_data_dir() / "scifact"  # type: ignore[operator]
    model = args.model[0] if args.model else None
    if model == TINY:
        model = str(tiny_checkpoint("colbert"))
    quick = args.quick
    print("retrieval benchmark: MaxSim rerank and ColBERTIndex search ...", file=sys.stderr)
    result: dict[str, Any] = {"maxsim_and_index": run_retrieval_bench(quick=quick)}
    if data is not None:
        from .bench_bm25 import bm25_bench

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
        [f"BM25 index build (rank-bm25, {bm['analyzer']})", f"{bm['build_s'] * 1000:.0f} ms", "-", len(bm["build_samples_s"])],
        ["BM25 search, top 100", f"{search['p50_ms']:.1f} ms", f"{search['p95_ms']:.1f} ms", search["n"]],
        [f"BM25 -> ColBERT top 10 of {pipe['candidates']}, cold cache", f"{cold['p50_ms']:.1f} ms", f"{cold['p95_ms']:.1f} ms", cold["n"]],
        [f"BM25 -> ColBERT top 10 of {pipe['candidates']}, warm cache", f"{warm['p50_ms']:.1f} ms", f"{warm['p95_ms']:.1f} ms", warm["n"]],
    ]  # fmt: skip
    print(_table(["stage", "p50", "p95", "n"], rows, "lrrr"))
    print(f"ColBERT model: {pipe['model']}")
    _print_machine(b)
    return 0


# -- models ---------------------------------------------------------------------------------------


def _cmd_models(args: argparse.Namespace) -> int:
    from .checkpoints import list_models

    models = list_models()
    if args.json:
        _print_json(
            [
                {
                    "model_id": m.model_id,
                    "kind": m.kind,
                    "architecture": m.architecture,
                    "causal": m.causal,
                    "dim": m.dim,
                    "parameters": m.parameters,
                    "storage_dtype": m.storage_dtype,
                    "revision": m.revision,
                    "description": m.description,
                }
                for m in models
            ]
        )
        return 0
    rows = [
        [
            m.model_id,
            m.kind,
            m.dim,
            f"{m.parameters / 1e6:.1f}M",
            "causal" if m.causal else "bidirectional",
            m.storage_dtype,
            m.description,
        ]
        for m in models
    ]
    print(
        _table(
            ["model", "kind", "dim", "params", "trunk", "weights", "description"], rows, "llrrlll"
        )
    )
    print(
        f"`--model tiny` builds an untrained miniature checkpoint (random weights) into "
        f"{cache_dir()} for offline trials."
    )
    return 0


# -- parser ---------------------------------------------------------------------------------------


def _device_options(p: argparse.ArgumentParser) -> None:
    from .devices import DTYPE_CHOICES

    p.add_argument(
        "--device", default="auto", help="auto (cuda > mps > xpu > cpu), cpu, cuda, cuda:1, ..."
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=DTYPE_CHOICES,
        help="compute dtype (auto: float32 on CPU, bfloat16 on GPUs)",
    )
    p.add_argument(
        "--quantize", choices=["int8"], default=None, help="dynamic int8 Linear layers (CPU only)"
    )


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="Search, evaluate and benchmark Liquid AI's LFM2.5 retrieval models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser(
        "search",
        help="search a corpus: BM25 candidates reranked by ColBERT (no index build)",
        description=(
            "Search a corpus: a JSONL file (one object per line with 'text' and optional 'id', "
            "'title', 'metadata' or other keys), a BEIR folder (corpus.jsonl[.gz]) or a folder "
            "of .txt/.md files. BM25 picks --candidates documents, ColBERT reranks them in "
            "process; matched words are highlighted. --index DIR builds or reuses a persistent "
            "ColBERT index instead."
        ),
    )
    s.add_argument("query", nargs="+", help="the query (several words are joined)")
    s.add_argument(
        "--corpus", metavar="FILE|DIR", help="JSONL file, BEIR folder or folder of .txt/.md"
    )
    s.add_argument(
        "--index", metavar="DIR", help="build (first run) or reuse a ColBERT index in DIR"
    )
    s.add_argument(
        "--model",
        help=f"hub id or local folder (default: $LFM_RETRIEVERS_MODEL or {DEFAULT_COLBERT}); "
        "'tiny' = an untrained miniature for offline trials",
    )
    s.add_argument(
        "--fallback-tiny",
        action="store_true",
        help="if the model cannot be found (e.g. no Hub access), use the untrained tiny model "
        "instead of failing (with a warning)",
    )
    s.add_argument("-k", type=int, default=10, help="results to show (default 10)")
    s.add_argument(
        "--candidates", type=int, default=100, help="BM25 candidates to rerank (default 100)"
    )
    s.add_argument(
        "--analyzer",
        default="default",
        help="BM25 analyzer: default, english, model (default: default)",
    )
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    _device_options(s)
    s.set_defaults(func=_cmd_search)

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
        "--bm25-variant", default="plus", help="rank-bm25 variant: plus, okapi, l (default plus)"
    )
    e.add_argument("--k1", type=float, default=1.5)
    e.add_argument("--b", type=float, default=0.75)
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--json", action="store_true", help="print the results as JSON")
    e.add_argument("--output", metavar="FILE", help="also write the JSON results to FILE")
    e.add_argument("--no-progress", action="store_true")
    _device_options(e)
    e.set_defaults(func=_cmd_eval)

    b = sub.add_parser(
        "bench",
        help="latency of the model cards' four regimes; 'bench encoder', 'bench retrieval'",
        description=(
            "latency (default): p50/p95/p99 of the model cards' four regimes (32-token queries, "
            "256-token documents). encoder: query latency, document throughput vs transformers, "
            "GFLOP/s, memory, int8. retrieval: BM25 / MaxSim / index timings. Full-size random "
            "weights by default: speed does not depend on weight values."
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
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument(
        "--no-baseline", action="store_true", help="encoder: skip the transformers comparison"
    )
    b.add_argument("--threads", type=int, default=None, help="torch threads")
    b.add_argument("--json", action="store_true")
    b.add_argument("--output", metavar="FILE", help="also write the JSON results to FILE")
    _device_options(b)
    b.set_defaults(func=_cmd_bench)

    m = sub.add_parser("models", help="list the known checkpoints")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_cmd_models)
    return parser


def _error(message: str) -> int:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lfm-retrievers`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "no_progress", False):
        os.environ["TQDM_DISABLE"] = "1"
    debug = os.environ.get("LFM_RETRIEVERS_DEBUG", "") not in ("", "0")
    from .checkpoints import CheckpointError, CheckpointNotFoundError

    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lfm-retrievers ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (CLIError, CheckpointError, CheckpointNotFoundError) as exc:
        if debug:
            raise
        return _error(str(exc))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        if debug:
            raise
        detail = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
        return _error(detail)
    except (ValueError, ImportError) as exc:
        # Library input validation (bad corpus rows, bad option values, a missing extra).
        if debug:
            raise
        return _error(str(exc).strip("'\""))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
