"""BEIR-style evaluation: load a test collection and score a run with pytrec_eval.

A collection folder holds ``corpus.jsonl`` (or ``corpus.jsonl.gz``) with ``{"_id", "title",
"text"}`` rows, ``queries.jsonl`` with ``{"_id", "text"}`` rows and graded judgments in
``qrels.tsv`` (or BEIR's ``qrels/<split>.tsv``): header ``query-id<TAB>corpus-id<TAB>score``.

Metrics are computed by ``pytrec_eval`` (the ``eval`` extra), the reference implementation
behind the published BEIR numbers, and are **averaged over every judged query**: a query the
run misses counts as 0 instead of being silently dropped (pytrec_eval alone averages only over
the queries present in the run).

>>> corpus, queries, qrels = load_beir("../shared/data/scifact")  # doctest: +SKIP
>>> run = {qid: {doc_id: score, ...} for qid in queries}            # doctest: +SKIP
>>> evaluate(run, qrels, metrics=("ndcg@10", "recall@100"))         # doctest: +SKIP
{'ndcg@10': 0.67, 'recall@100': 0.89}
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ._optional import require
from ._validation import check_choice

__all__ = [
    "DEFAULT_METRICS",
    "document_text",
    "evaluate",
    "evaluate_per_query",
    "load_beir",
]

Corpus = dict[str, dict[str, str]]
Queries = dict[str, str]
Qrels = dict[str, dict[str, int]]
Run = Mapping[str, Mapping[str, float]]

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "recall@100")

_FRIENDLY = re.compile(r"^(ndcg|recall|precision|p|map|mrr)(?:@(\d+))?$")
_TREC = {"ndcg": "ndcg_cut", "recall": "recall", "precision": "P", "p": "P", "map": "map_cut"}


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with _open_text(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    msg = f"{path}:{n} is not valid JSON: {exc.msg}"
                    raise ValueError(msg) from exc


def _first_existing(folder: Path, names: Sequence[str], what: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    msg = f"no {what} in {folder}: expected one of {list(names)}"
    raise FileNotFoundError(msg)


def load_beir(folder: str | Path, *, split: str = "test") -> tuple[Corpus, Queries, Qrels]:
    """Load a BEIR-layout collection: ``(corpus, queries, qrels)``.

    ``corpus`` maps doc id -> ``{"title": str, "text": str}``; ``queries`` maps query id ->
    text and keeps only queries with at least one judgment; ``qrels`` maps query id ->
    {doc id: int grade}. All ids are strings. ``split`` picks ``qrels/<split>.tsv`` when the
    folder has no top-level ``qrels.tsv``.
    """
    root = Path(folder)
    if not root.is_dir():
        msg = f"BEIR folder not found: {root}"
        raise FileNotFoundError(msg)
    corpus_path = _first_existing(root, ["corpus.jsonl", "corpus.jsonl.gz"], "corpus")
    queries_path = _first_existing(root, ["queries.jsonl", "queries.jsonl.gz"], "queries")
    qrels_path = _first_existing(root, ["qrels.tsv", f"qrels/{split}.tsv"], "qrels")

    corpus: Corpus = {}
    for row in _jsonl(corpus_path):
        corpus[str(row["_id"])] = {
            "title": str(row.get("title") or ""),
            "text": str(row.get("text") or ""),
        }

    qrels: Qrels = {}
    with qrels_path.open(encoding="utf-8", newline="") as f:
        for n, cols in enumerate(csv.reader(f, delimiter="\t")):
            if not cols or (n == 0 and cols[0] == "query-id"):  # blank line or header
                continue
            if len(cols) < 3:
                msg = f"{qrels_path}:{n + 1}: expected query-id, corpus-id, score; got {cols!r}"
                raise ValueError(msg)
            qrels.setdefault(cols[0], {})[cols[1]] = int(cols[2])

    queries: Queries = {}
    for row in _jsonl(queries_path):
        qid = str(row["_id"])
        if qid in qrels:
            queries[qid] = str(row["text"])
    return corpus, queries, qrels


def document_text(doc: Mapping[str, str]) -> str:
    """The BEIR document text: ``title + " " + text`` (stripped; either part may be empty)."""
    return f"{doc.get('title') or ''} {doc.get('text') or ''}".strip()


def _parse_metric(name: str) -> tuple[str, int | None]:
    """``"ndcg@10"`` -> (pytrec_eval measure, cutoff for run truncation or None)."""
    m = _FRIENDLY.match(name.strip().lower())
    if m is None:
        msg = (
            f"unknown metric {name!r}; use ndcg@k, recall@k, precision@k, map, map@k, mrr or mrr@k"
        )
        raise ValueError(msg)
    base, cut = m.group(1), m.group(2)
    if base == "mrr":
        return "recip_rank", int(cut) if cut else None
    if base == "map" and cut is None:
        return "map", None
    if cut is None:
        msg = f"metric {name!r} needs a cutoff, e.g. {base}@10"
        raise ValueError(msg)
    return f"{_TREC[base]}.{int(cut)}", None


def _truncate(run: Run, k: int) -> dict[str, dict[str, float]]:
    out = {}
    for qid, docs in run.items():
        top = sorted(docs.items(), key=lambda kv: kv[1], reverse=True)[:k]
        out[qid] = dict(top)
    return out


def evaluate_per_query(
    run: Run, qrels: Mapping[str, Mapping[str, int]], metrics: Iterable[str] = DEFAULT_METRICS
) -> dict[str, dict[str, float]]:
    """Per-query metric values: ``{query_id: {metric: value}}`` for every judged query.

    Queries absent from ``run`` (or with an empty ranking) get 0.0. Metric names are
    ``ndcg@k``, ``recall@k``, ``precision@k``, ``map``, ``map@k``, ``mrr`` and ``mrr@k``.
    """
    pytrec_eval = require("eval", "pytrec_eval", "evaluation")
    names = list(metrics)
    if not names:
        msg = "metrics must name at least one metric"
        raise ValueError(msg)
    parsed = {name: _parse_metric(name) for name in names}
    trec_qrels = {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    clean_run = {
        str(q): {str(d): float(s) for d, s in docs.items()} for q, docs in run.items() if docs
    }

    out: dict[str, dict[str, float]] = {q: dict.fromkeys(names, 0.0) for q in trec_qrels}
    by_cut: dict[int | None, list[str]] = {}
    for name, (_, cut) in parsed.items():
        by_cut.setdefault(cut, []).append(name)
    for cut, group in by_cut.items():
        measures = {parsed[n][0] for n in group}
        evaluator = pytrec_eval.RelevanceEvaluator(trec_qrels, measures)
        scored = evaluator.evaluate(clean_run if cut is None else _truncate(clean_run, cut))
        for qid, values in scored.items():
            if qid not in out:
                continue
            for name in group:
                out[qid][name] = float(values[parsed[name][0].replace(".", "_")])
    return out


def evaluate(
    run: Run, qrels: Mapping[str, Mapping[str, int]], metrics: Iterable[str] = DEFAULT_METRICS
) -> dict[str, float]:
    """Mean of each metric over all judged queries in ``qrels`` (missing queries count 0).

    ``run`` maps query id -> {doc id: score}; higher scores rank first (ties are broken by
    pytrec_eval, i.e. trec_eval's rule). Needs the ``eval`` extra (pytrec-eval-terrier).
    """
    names = list(metrics)
    per_query = evaluate_per_query(run, qrels, names)
    n = len(per_query)
    if n == 0:
        msg = "qrels has no judged queries"
        raise ValueError(msg)
    return {name: sum(v[name] for v in per_query.values()) / n for name in names}


EVAL_MODES = ("bm25", "dense", "colbert", "bm25+colbert", "hybrid")


def make_searcher(
    mode: str,
    texts: Sequence[str],
    ids: Sequence[str],
    *,
    encoder: Any = None,
    depth: int = 100,
    candidates: int = 100,
    analyzer: str = "default",
    language: str | None = None,
    bm25_variant: str = "plus",
    k1: float = 1.5,
    b: float = 0.75,
    batch_size: int = 32,
    dense_encoder: Any = None,
    dense_candidates: int = 100,
) -> Callable[[str], dict[str, float]]:
    """A ``query -> {doc id: score}`` function over a corpus, for :func:`evaluate` runs.

    Args:
        mode: ``"bm25"``, ``"dense"`` (a ``DenseIndex``), ``"colbert"`` (a ``ColBERTIndex``),
            ``"bm25+colbert"`` (:class:`~lfm_retrievers.pipeline.BM25ColBERT`) or ``"hybrid"``
            (``BM25ColBERT`` with BM25 and dense candidates).
        texts: Document texts (for BEIR data, :func:`document_text`).
        ids: One id per text.
        encoder: The encoder for every mode but ``"bm25"``.
        depth: Documents returned per query.
        candidates: BM25 candidates reranked in ``"bm25+colbert"``.
        analyzer: BM25 analyzer.
        language: BM25 language (None, an ISO 639-1 code or ``"auto"``).
        bm25_variant: rank-bm25 variant for ``"bm25"``.
        k1: BM25 ``k1`` for ``"bm25"``.
        b: BM25 ``b`` for ``"bm25"``.
        batch_size: Encoding batch size of the index modes.
        dense_encoder: The dense encoder of ``"hybrid"``.
        dense_candidates: Dense candidates of ``"hybrid"``.

    Building the searcher does the one-time work (BM25 statistics, or encoding every document
    for the index modes).
    """
    from .indexes.bm25 import BM25Index
    from .indexes.colbert import ColBERTIndex
    from .indexes.dense import DenseIndex
    from .pipeline import BM25ColBERT

    check_choice(mode, "mode", EVAL_MODES)
    if mode == "bm25":
        bm25 = BM25Index(
            texts,
            ids=ids,
            analyzer=analyzer,
            language=language,
            variant=bm25_variant,
            k1=k1,
            b=b,
        )
        return lambda q: {h.id: h.score for h in bm25.search(q, k=depth)}
    if encoder is None:
        msg = f"mode {mode!r} needs an encoder"
        raise ValueError(msg)
    if mode in ("bm25+colbert", "hybrid"):
        if mode == "hybrid" and dense_encoder is None:
            msg = "mode 'hybrid' needs dense_encoder="
            raise ValueError(msg)
        pipe = BM25ColBERT(
            encoder,
            texts,
            ids=ids,
            candidates=candidates,
            analyzer=analyzer,
            language=language,
            dense=dense_encoder if mode == "hybrid" else None,
            dense_candidates=dense_candidates,
            batch_size=batch_size,
        )
        return lambda q: {h.id: float(h.score) for h in pipe.search(q, k=depth)}
    index: Any = DenseIndex(encoder) if mode == "dense" else ColBERTIndex(encoder)
    index.add(list(texts), ids=list(ids), batch_size=batch_size)
    return lambda q: {h.id: float(h.score) for h in index.search(q, k=depth)}
