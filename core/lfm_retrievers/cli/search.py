"""``lfm-retrievers search``: BM25 candidates reranked by ColBERT, or a persistent index."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import (
    DEFAULT_COLBERT,
    CLIError,
    _device_options,
    _model_info,
    _print_json,
    _use_color,
    load_model,
)

if TYPE_CHECKING:
    from lfm_retrievers.corpus import CorpusDocument

_WORDCHAR = re.compile(r"\w")


def highlight_spans(explanation: Any, text: str, limit: int = 5) -> list[dict[str, Any]]:
    """The document spans that the query's real tokens matched best, strongest first.

    Spans are widened to whole words, at most ``limit`` distinct spans; from
    ``ColBERTEncoder.explain``.
    """
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


def register(sub: Any) -> None:
    """Add the subcommand's parser to ``sub`` (argparse subparsers)."""
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
    s.add_argument(
        "--qdrant",
        metavar="URL|:memory:|DIR",
        help="search a Qdrant collection instead (with --collection); --corpus creates or "
        "syncs it. QDRANT_API_KEY is used for a URL",
    )
    s.add_argument("--collection", metavar="NAME", help="the Qdrant collection (with --qdrant)")
    s.add_argument(
        "--mode",
        help="Qdrant search mode: colbert, dense, bm25, dense+colbert, bm25+colbert, hybrid "
        "(default: hybrid with --dense-model, else bm25+colbert)",
    )
    s.add_argument(
        "--language",
        default=None,
        help="BM25 stemming: an ISO 639-1 code (e.g. de: its Snowball stemmer) or 'auto' "
        "(each text's detected language); default: none",
    )
    s.add_argument(
        "--require-match",
        action="store_true",
        help="only documents sharing a word with the query (default: fill up to -k)",
    )
    s.add_argument(
        "--dense-model",
        metavar="MODEL",
        help="a dense model (hub id, folder or 'tiny'): its top --dense-candidates join BM25's "
        "candidates (every document is encoded once); with --qdrant, for the dense and hybrid "
        "modes",
    )
    s.add_argument(
        "--dense-candidates", type=int, default=100, help="dense candidates (default 100)"
    )
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    _device_options(s)
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``lfm-retrievers search``."""
    query = " ".join(args.query).strip()
    if not query:
        msg = "the query is empty"
        raise CLIError(msg)
    if args.k < 1 or args.candidates < 1 or args.dense_candidates < 1:
        msg = (
            "-k and --candidates (and --dense-candidates) must be >= 1 (got "
            f"{args.k}, {args.candidates}, {args.dense_candidates})"
        )
        raise CLIError(msg)
    if args.index is not None and (args.dense_model or args.language or args.require_match):
        msg = "--dense-model, --language and --require-match apply to BM25 -> ColBERT, not --index"
        raise CLIError(msg)
    if (args.qdrant is None) != (args.collection is None):
        msg = "--qdrant and --collection go together"
        raise CLIError(msg)
    if args.qdrant is not None and args.index is not None:
        msg = "give --index DIR or --qdrant ... --collection NAME, not both"
        raise CLIError(msg)
    docs: list[CorpusDocument] = []
    if args.corpus is not None:
        from lfm_retrievers.corpus import load_corpus

        docs = load_corpus(args.corpus)
    elif args.index is None and args.qdrant is None:
        msg = "give --corpus FILE|DIR (or --index DIR of a saved index)"
        raise CLIError(msg)
    by_id = {d.id: d for d in docs}
    progress = None if not args.no_progress else False

    index_dir = Path(args.index).expanduser() if args.index else None
    reuse = index_dir is not None and index_dir.is_dir() and any(index_dir.iterdir())
    if index_dir is not None and not reuse and not docs:
        msg = f"no index at {index_dir} yet: pass --corpus to build it"
        raise CLIError(msg)
    enc: Any = None
    dense: Any = None
    qdrant_s = 0.0
    if args.qdrant is not None:
        enc, rows, how, qdrant_s = _search_qdrant(args, query, docs, progress)
    elif not (reuse and args.model is None):
        enc = load_model(args.model, "colbert", args)
    t0 = time.perf_counter()
    if args.qdrant is not None:
        pass
    elif index_dir is None:
        rows = []
        from lfm_retrievers.pipeline import BM25ColBERT

        dense = None
        if args.dense_model:
            dense = load_model(args.dense_model, "dense", args)
        try:
            pipe = BM25ColBERT(
                enc,  # type: ignore[arg-type]
                [d.search_text for d in docs],
                ids=[d.id for d in docs],
                metadata=[d.metadata for d in docs],
                candidates=args.candidates,
                analyzer=args.analyzer,
                language=args.language,
                require_match=args.require_match,
                dense=dense,  # type: ignore[arg-type]
                dense_candidates=args.dense_candidates,
                show_progress=progress,
            )
        except ValueError as exc:
            raise CLIError(str(exc)) from exc
        for hit in pipe.search(query, k=args.k):
            rows.append(
                {
                    "rank": hit.rank,
                    "id": hit.id,
                    "score": float(hit.score),
                    "colbert_score": hit.colbert_score,
                    "bm25_score": hit.bm25_score,
                    "bm25_rank": hit.bm25_rank,
                    "dense_score": hit.dense_score,
                    "dense_rank": hit.dense_rank,
                    "text": hit.text,
                    "metadata": dict(hit.metadata or {}),
                }
            )
        how = f"BM25 top {args.candidates} -> ColBERT rerank (in process, no index)"
        if dense is not None:
            how = (
                f"BM25 top {args.candidates} + dense top {args.dense_candidates} -> "
                "ColBERT rerank (in process)"
            )
    else:
        rows = []
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
                    "dense_score": None,
                    "dense_rank": None,
                    "text": hit.text,
                    "metadata": dict(hit.metadata or {}),
                }
            )
        how = f"ColBERT index {args.index} ({len(index)} documents)"
    search_s = qdrant_s if args.qdrant is not None else time.perf_counter() - t0

    for row in rows:
        doc = by_id.get(row["id"])
        row["title"] = doc.title if doc is not None else str(row["metadata"].get("title", ""))
        row["highlights"] = highlight_spans(enc.explain(query, row["text"]), row["text"])

    info = _model_info(enc, args.model, "colbert", index_dir if reuse else None)
    dense_info = None if dense is None else _model_info(dense, args.dense_model, "dense")
    if args.json:
        _print_json(
            {
                "query": query,
                "model": info,
                "corpus": {"path": args.corpus, "documents": len(docs) if docs else None},
                "settings": {
                    "method": "qdrant"
                    if args.qdrant
                    else "index"
                    if args.index
                    else "bm25+colbert",
                    "index": args.index,
                    "k": args.k,
                    "candidates": None if args.index else args.candidates,
                    "analyzer": None if args.index else args.analyzer,
                    "language": None if args.index else args.language,
                    "dense_model": None if dense_info is None else dense_info["name"],
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


def _open_index(directory: Path, enc: Any, docs: list[CorpusDocument], progress: Any) -> Any:
    """The ColBERT index in ``directory``, built or brought in step with ``docs``."""
    from lfm_retrievers.indexes.colbert import ColBERTIndex
    from lfm_retrievers.indexes.sync import sync_index

    if not docs:
        return ColBERTIndex.load(directory, encoder=enc)  # enc None: the index's own model
    exists = directory.is_dir() and any(directory.iterdir())
    if not exists:
        print(f"building ColBERT index of {len(docs)} documents in {directory}", file=sys.stderr)
    result = sync_index(
        directory,
        [d.search_text for d in docs],
        [d.id for d in docs],
        [_index_metadata(d) for d in docs],
        model=enc,
        show_progress=progress,
    )
    if not result.built and (result.added or result.removed):
        print(
            f"index {directory}: {result.added} added, {result.removed} removed or replaced",
            file=sys.stderr,
        )
    return result.index


def _index_metadata(doc: CorpusDocument) -> dict[str, Any]:
    return {**doc.metadata, "title": doc.title} if doc.title else dict(doc.metadata)


def _search_qdrant(
    args: argparse.Namespace, query: str, docs: list[CorpusDocument], progress: Any
) -> tuple[Any, list[dict[str, Any]], str, float]:
    """Search a Qdrant collection (created or synced from ``docs`` first, when given)."""
    import os

    from lfm_retrievers.indexes.qdrant import QdrantIndex

    enc = None
    if args.model is not None or docs:
        enc = load_model(args.model, "colbert", args)
    index = QdrantIndex(
        args.qdrant,
        args.collection,
        colbert=enc,
        dense=args.dense_model,
        analyzer=None if args.analyzer == "default" else args.analyzer,
        language=args.language,
        api_key=os.environ.get("QDRANT_API_KEY") or None,
    )
    if docs:
        added, removed = index.sync(
            [d.search_text for d in docs],
            [d.id for d in docs],
            [_index_metadata(d) for d in docs],
            show_progress=progress,
        )
        if added or removed:
            print(
                f"collection {args.collection}: {added} uploaded, {removed} deleted",
                file=sys.stderr,
            )
    t0 = time.perf_counter()
    hits = index.search(query, k=args.k, mode=args.mode, candidates=args.candidates)
    seconds = time.perf_counter() - t0
    rows = [
        {
            "rank": hit.rank,
            "id": hit.id,
            "score": float(hit.score),
            "colbert_score": hit.colbert_score,
            "bm25_score": hit.bm25_score,
            "bm25_rank": hit.bm25_rank,
            "text": hit.text,
            "metadata": dict(hit.metadata or {}),
        }
        for hit in hits
    ]
    mode = args.mode or index.default_mode
    how = f"Qdrant {args.qdrant} collection {args.collection} ({len(index)} documents, {mode})"
    return index.colbert_encoder, rows, how, seconds
