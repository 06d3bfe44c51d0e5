"""BM25 first stage on rank-bm25, with analyzers that work beyond English.

``BM25Index`` holds texts, ids and metadata, returns scored hits, supports ``add`` / ``delete``
and saves as JSON + ``.npy`` (no pickle). It is the lexical half of :class:`BM25ColBERT`.

**Variant.** The default is rank-bm25's ``BM25Plus`` (k1 = 1.5, b = 0.75, delta = 1). Its idf,
``ln((N + 1) / df)``, is positive for every term, so a document that shares a term with the
query always scores > 0, even in a 2-4 document corpus. ``BM25Okapi`` does not: a term in
half of the documents gets idf 0 and more common terms get a floored or negative idf
(dorianbrown/rank_bm25#39, #43), so toy corpora can return all-zero scores. rank-bm25's
``BM25Plus`` also adds ``delta * idf(t)`` for every query term to *every* document, matching
or not. That per-query constant does not change the ranking; we subtract it, so documents
with no query term score exactly 0 and are never returned. The score that remains is Okapi
BM25 with the idf above. ``BM25L`` is available but ranks poorly at these settings.
**Analyzers** are in :mod:`.analyzers`.

Measured NDCG@10 with rank-bm25 0.2.2, k1 = 1.5, b = 0.75, doc = title + " " + text, all judged
queries, pytrec_eval (see ``tests/core/test_bm25.py``; BEIR paper BM25: 0.665 / 0.325):

================================  ==============  ==============  ==============
analyzer                          BM25Plus        BM25Okapi       BM25L
================================  ==============  ==============  ==============
default                           0.665 / 0.310   0.652 / 0.306   0.445 / 0.261
english (stopwords + Porter)      0.687 / 0.325   0.683 / 0.326   0.457 / 0.274
model (LFM2-ColBERT tokenizer)    0.653 / 0.246   0.648 / 0.244   0.411 / 0.167
================================  ==============  ==============  ==============

(SciFact / NFCorpus.) BM25Plus is the best or close to it in every row, so it is the default.
``"default"`` stays language-neutral and reaches both targets. Pick ``"english"`` for
English-only corpora.

Cost: ``search`` calls rank-bm25's ``get_scores``, O(corpus) per query term (about 30 ms per
query on SciFact's 5k documents). ``add`` / ``delete`` update term counts in place; the rank-bm25
object is rebuilt lazily on the next search, in O(vocabulary), never re-tokenizing the corpus.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rank_bm25
from tokenizers import Tokenizer

from lfm_retrievers import _io
from lfm_retrievers._validation import (
    check_choice,
    check_float,
    check_id_list,
    check_ids,
    check_metadata_list,
    check_positive_int,
    check_str,
    check_texts,
)
from lfm_retrievers.errors import IndexFormatError
from lfm_retrievers.results import SearchHit

from ._rank_bm25 import (
    DEFAULT_DELTA,
    VARIANT_ALIASES,
    VARIANTS,
    build_model,
    rank_bm25_scores,
)
from .analyzers import (
    ANALYZER_ALIASES,
    ANALYZER_VERSION,
    ANALYZERS,
    Analyzer,
    AutoLanguageAnalyzer,
    ModelAnalyzer,
    default_analyzer,
    english_analyzer,
    get_analyzer,
)
from .languages import check_language

logger = logging.getLogger(__name__)

__all__ = [
    "ANALYZERS",
    "VARIANTS",
    "BM25Index",
    "ModelAnalyzer",
    "default_analyzer",
    "english_analyzer",
    "get_analyzer",
]

FORMAT = "lfm-retrievers/bm25-index"
FORMAT_VERSION = 2
_LEGACY_CONFIG = "config.json"  # format v1 (no checksums): replaced on save, refused on load


def _check_ids(ids: object, n: int) -> list[str] | None:
    return None if ids is None else check_ids(ids, n)


def _show(items: Sequence[str], limit: int = 10) -> str:
    head = ", ".join(repr(x) for x in items[:limit])
    return head + (f" ... ({len(items)} in all)" if len(items) > limit else "")


class BM25Index:
    """A BM25 index over texts with string ids and metadata.

    >>> index = BM25Index(["the cat sat", "a dog barked", "cats and dogs"], ids=["a", "b", "c"])
    >>> [(h.id, h.rank) for h in index.search("cat", k=2)]
    [('a', 1)]
    >>> [(h.id, h.score) for h in index.search("cat", k=2, require_match=False)]
    [('a', 1.386...), ('b', 0.0)]

    By default only documents sharing at least one analyzed term with the query are returned,
    best first (ties in corpus order), so a query of only punctuation gives ``[]``;
    ``require_match=False`` fills up to ``k`` with zero-score documents in corpus order, as
    rank-bm25's ``get_top_n`` does. ``language`` adds a Snowball stemmer to the default
    analyzer (an ISO 639-1 code, or ``"auto"`` per text; see :mod:`.analyzers`). With
    ``variant="okapi"`` a matching document can score 0 on tiny corpora and is then not
    returned; that is why it is not the default. ``ids`` default to ``"0"``, ``"1"``, ... and
    are never reused. Methods are thread-safe.
    """

    def __init__(
        self,
        texts: Iterable[str] = (),
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        analyzer: str | Analyzer = "default",
        tokenizer: Any = None,
        language: str | None = None,
        variant: str = "plus",
        k1: float = 1.5,
        b: float = 0.75,
        delta: float | None = None,
        epsilon: float | None = None,
    ) -> None:
        self.language = check_language(language)
        self.analyzer_name, self.analyzer = get_analyzer(analyzer, tokenizer, language=language)
        if not isinstance(variant, str) or variant.lower() not in VARIANT_ALIASES:
            check_choice(variant, "variant", VARIANTS)
        self.variant = VARIANT_ALIASES[variant.lower()]
        self.k1 = check_float(k1, "k1", 0.0)
        self.b = check_float(b, "b", 0.0, 1.0)
        if self.variant == "okapi":
            if delta is not None:
                msg = "delta is a BM25Plus/BM25L parameter; variant='okapi' takes epsilon"
                raise ValueError(msg)
            self.param = check_float(0.25 if epsilon is None else epsilon, "epsilon", 0.0)
        else:
            if epsilon is not None:
                msg = f"epsilon is a BM25Okapi parameter; variant={self.variant!r} takes delta"
                raise ValueError(msg)
            default = DEFAULT_DELTA[self.variant]
            self.param = check_float(default if delta is None else delta, "delta", 0.0)

        self._lock = threading.RLock()
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._texts: list[str] = []
        self._metadata: list[dict[str, Any]] = []
        self._doc_freqs: list[dict[str, int]] = []
        self._doc_len: list[int] = []
        self._df: Counter[str] = Counter()
        self._langs: list[str | None] = []  # each document's language (language="auto")
        self._lang_counts: Counter[str | None] = Counter()
        self._n_tokens = 0
        self._next_auto = 0
        self._generations: dict[Path, int] = {}  # folders loaded from or saved to
        self._model: rank_bm25.BM25 | None = None
        self.add(texts, ids, metadata)

    # ------------------------------------------------------------------ corpus
    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._pos

    def __repr__(self) -> str:
        return (
            f"BM25Index(n_docs={len(self)}, analyzer={self.analyzer_name!r}, "
            f"language={self.language!r}, "
            f"variant={self.variant!r}, k1={self.k1}, b={self.b})"
        )

    @property
    def ids(self) -> list[str]:
        """Document ids in index order (a copy)."""
        return list(self._ids)

    @property
    def params(self) -> dict[str, Any]:
        """Scoring parameters: variant, k1, b and delta (plus/l) or epsilon (okapi)."""
        extra = "epsilon" if self.variant == "okapi" else "delta"
        return {"variant": self.variant, "k1": self.k1, "b": self.b, extra: self.param}

    def get(self, doc_id: str) -> tuple[str, dict[str, Any]]:
        """``(text, metadata)`` of one document (metadata is a copy). KeyError if unknown."""
        with self._lock:
            if doc_id not in self._pos:
                msg = f"unknown id {doc_id!r}"
                raise KeyError(msg)
            i = self._pos[doc_id]
            return self._texts[i], copy.deepcopy(self._metadata[i])

    def _analyze_many(self, texts: Sequence[str]) -> tuple[list[list[str]], list[str | None]]:
        """Terms of each text, and each text's language (detected with language="auto")."""
        an = self.analyzer
        if isinstance(an, AutoLanguageAnalyzer):
            langs: list[str | None] = [an.detect(t) for t in texts]
            return [an.analyze(t, g) for t, g in zip(texts, langs, strict=True)], langs
        batch = getattr(an, "batch", None)
        tokens = list(batch(texts)) if callable(batch) else [list(an(t)) for t in texts]
        return tokens, [self.language] * len(texts)

    def add(
        self,
        texts: Iterable[str],
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Add documents; returns their ids. Duplicate ids raise ValueError, nothing added."""
        texts = check_texts(texts)
        given = _check_ids(ids, len(texts))
        metas = check_metadata_list(metadata, len(texts))
        tokens, langs = self._analyze_many(texts)
        for i, toks in enumerate(tokens):
            if not all(isinstance(t, str) for t in toks):
                msg = (
                    "the analyzer must return a list of str; "
                    f"for texts[{i}] it returned {toks!r:.80}"
                )
                raise TypeError(msg)
        with self._lock:
            if given is not None:
                clash = sorted(x for x in given if x in self._pos)
                if clash:
                    msg = f"ids already in the index: {_show(clash)}"
                    raise ValueError(msg)
                new_ids = given
            else:
                new_ids = []
                while len(new_ids) < len(texts):
                    cand = str(self._next_auto)
                    self._next_auto += 1
                    if cand not in self._pos:
                        new_ids.append(cand)
            for doc_id, text, meta, toks in zip(new_ids, texts, metas, tokens, strict=True):
                freqs = Counter(toks)
                self._pos[doc_id] = len(self._ids)
                self._ids.append(doc_id)
                self._texts.append(text)
                self._metadata.append(meta)
                self._doc_freqs.append(dict(freqs))
                self._doc_len.append(len(toks))
                self._n_tokens += len(toks)
                self._df.update(freqs.keys())
            self._langs.extend(langs)
            self._lang_counts.update(langs)
            if texts:
                self._model = None
            return list(new_ids)

    def delete(self, ids: str | Iterable[str]) -> None:
        """Remove documents by id (a single str is one id).

        Unknown ids raise KeyError, and nothing is removed.
        """
        wanted = [check_str(ids, "ids")] if isinstance(ids, str) else check_id_list(ids, "ids")
        with self._lock:
            unknown = sorted({x for x in wanted if x not in self._pos}, key=str)
            if unknown:
                msg = f"unknown ids: {_show(unknown)}"
                raise KeyError(msg)
            gone = {self._pos[x] for x in wanted}
            if not gone:
                return
            for i in gone:
                self._lang_counts[self._langs[i]] -= 1
                self._df.subtract(self._doc_freqs[i].keys())
                self._n_tokens -= self._doc_len[i]
            self._df = Counter({t: c for t, c in self._df.items() if c > 0})
            keep = [i for i in range(len(self._ids)) if i not in gone]
            self._ids = [self._ids[i] for i in keep]
            self._texts = [self._texts[i] for i in keep]
            self._metadata = [self._metadata[i] for i in keep]
            self._doc_freqs = [self._doc_freqs[i] for i in keep]
            self._doc_len = [self._doc_len[i] for i in keep]
            self._langs = [self._langs[i] for i in keep]
            self._pos = {x: i for i, x in enumerate(self._ids)}
            self._model = None

    # ------------------------------------------------------------------ scoring
    def _bm25(self) -> rank_bm25.BM25 | None:
        """The rank-bm25 object for the current corpus, rebuilt from kept counts if stale."""
        if self._model is not None:
            return self._model
        if not self._ids or not self._df:
            return None
        model = build_model(
            self.variant,
            k1=self.k1,
            b=self.b,
            param=self.param,
            doc_freqs=self._doc_freqs,
            doc_len=self._doc_len,
            df=self._df,
        )
        self._model = model
        return model

    def get_scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (index order; 0 = no shared term)."""
        query = check_str(query, "query")
        with self._lock:
            model = self._bm25()
            if model is None:
                return np.zeros(len(self._ids))
            if isinstance(self.analyzer, AutoLanguageAnalyzer):
                prior = {g: c for g, c in self._lang_counts.items() if g and c > 0}
                analyzed = self.analyzer.query(query, prior)
            else:
                analyzed = self.analyzer(query)
            terms = [t for t in analyzed if t in self._df]
            if not terms:
                return np.zeros(len(self._ids))
            scores = rank_bm25_scores(model, terms)
        if not np.isfinite(scores).all():  # b = 1 and an empty document: 0 / 0
            scores = np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)
        return scores

    def search(self, query: str, k: int = 10, *, require_match: bool = True) -> list[SearchHit]:
        """Top ``k`` documents for ``query``, best first (ties: index order).

        With ``require_match`` (default) only documents sharing a term with the query;
        otherwise zero-score documents fill up to ``k`` in index order (rank-bm25's
        ``get_top_n``). Hits carry copies of text and metadata; ``bm25_*`` = ``score``/``rank``.
        """
        k = check_positive_int(k, "k")
        if not isinstance(require_match, bool):
            msg = f"require_match must be True or False, got {require_match!r}"
            raise TypeError(msg)
        with self._lock:
            scores = self.get_scores(query)
            hit = np.flatnonzero(scores)
            if hit.size > k:
                # Keep every document scoring at least the k-th best (argpartition may cut
                # inside a tie), then order by score and break ties by index.
                kth = -np.partition(-scores[hit], k - 1)[k - 1]
                hit = hit[scores[hit] >= kth]
            top = hit[np.lexsort((hit, -scores[hit]))[:k]].tolist()
            if not require_match and len(top) < k:
                matched = set(top)
                top += [i for i in range(len(self._ids)) if i not in matched][: k - len(top)]
            return [
                SearchHit(
                    id=self._ids[i],
                    score=float(scores[i]),
                    text=self._texts[i],
                    metadata=copy.deepcopy(self._metadata[i]),
                    rank=r,
                    bm25_score=float(scores[i]),
                    bm25_rank=r,
                )
                for r, i in enumerate(top, 1)
            ]

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index to ``directory``: crash-safe, checksummed, one writer per folder.

        As :meth:`lfm_retrievers.ColBERTIndex.save`: texts, ids and metadata (JSON-serializable)
        in ``documents.jsonl``, term counts in ``.npy`` arrays, ``vocab.json``, a ``"model"``
        analyzer's ``tokenizer.json``, settings and every file's SHA-256 in ``manifest.json``.
        A custom analyzer callable must be passed again to :meth:`load`.
        """
        target = _io.resolve_target(directory)
        with self._lock:
            vocab = sorted(self._df)
            term_id = {t: i for i, t in enumerate(vocab)}
            offsets = np.zeros(len(self._ids) + 1, dtype=np.int64)
            np.cumsum([len(f) for f in self._doc_freqs], out=offsets[1:])
            terms = np.fromiter(
                (term_id[t] for f in self._doc_freqs for t in f), dtype=np.int64, count=offsets[-1]
            )
            counts = np.fromiter(
                (c for f in self._doc_freqs for c in f.values()), dtype=np.int64, count=offsets[-1]
            )
            config: dict[str, Any] = {
                "analyzer": self.analyzer_name,
                "language": self.language,
                "analyzer_version": ANALYZER_VERSION,
                "params": self.params,
                "n_docs": len(self._ids),
                "n_terms": len(vocab),
                "next_auto_id": self._next_auto,
            }
            if self.analyzer_name == "custom":
                fn = self.analyzer
                config["analyzer_callable"] = (
                    f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
                )

            def write(tmp: Path) -> dict[str, Any]:
                with (tmp / "documents.jsonl").open("w", encoding="utf-8") as f:
                    for doc_id, text, meta, lang in zip(
                        self._ids, self._texts, self._metadata, self._langs, strict=True
                    ):
                        row: dict[str, Any] = {"id": doc_id, "text": text, "metadata": meta}
                        if self.language == "auto":
                            row["language"] = lang
                        try:
                            line = json.dumps(row, ensure_ascii=False)
                        except (TypeError, ValueError) as exc:
                            msg = f"metadata of document {doc_id!r} is not JSON-serializable: {exc}"
                            raise TypeError(msg) from exc
                        f.write(line + "\n")
                (tmp / "vocab.json").write_text(
                    json.dumps(vocab, ensure_ascii=False), encoding="utf-8"
                )
                np.save(tmp / "doc_offsets.npy", offsets, allow_pickle=False)
                np.save(tmp / "term_ids.npy", terms, allow_pickle=False)
                np.save(tmp / "counts.npy", counts, allow_pickle=False)
                if isinstance(self.analyzer, ModelAnalyzer):
                    (tmp / "tokenizer.json").write_text(
                        self.analyzer.tokenizer.to_str(), encoding="utf-8"
                    )
                return config

            expected = self._generations.get(target, _io.ANY_GENERATION)
            saved = _io.save_folder(
                target, write, format=FORMAT, format_version=FORMAT_VERSION,
                expected_generation=expected, replaces=(_LEGACY_CONFIG,), what="BM25 index",
            )  # fmt: skip
            self._generations[target] = saved.generation
        return saved.path

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        analyzer: str | Analyzer | None = None,
        tokenizer: Any = None,
        verify: bool = True,
    ) -> BM25Index:
        """Load an index written by :meth:`save`.

        The saved analyzer is restored; an index saved with a custom callable needs it again
        as ``analyzer=``. Every file is checked against its size and SHA-256 in
        ``manifest.json`` first (``verify=False``: sizes only). A missing folder raises
        FileNotFoundError; a corrupted, truncated or newer-format one
        :class:`~lfm_retrievers.errors.IndexFormatError` (a ValueError) naming the file.
        """
        root = _io.recover(directory)
        if not root.exists():
            msg = f"no BM25 index at {root} (the folder does not exist)"
            raise FileNotFoundError(msg)
        if (root / _LEGACY_CONFIG).is_file() and not (root / _io.MANIFEST_FILE).exists():
            msg = f"cannot load {root}: BM25 format v1 (no checksums); rebuild it with this version"
            raise IndexFormatError(msg)
        config = _io.read_manifest(
            root, formats=(FORMAT,), max_version=FORMAT_VERSION, what="BM25 index"
        )
        _io.verify_files(root, config, verify=verify)

        saved = config["analyzer"]
        if analyzer is None:
            if saved == "custom":
                msg = (
                    f"{root} was built with a custom analyzer "
                    f"({config.get('analyzer_callable', '?')}); pass it again as analyzer="
                )
                raise ValueError(msg)
            analyzer = saved
        if (
            isinstance(analyzer, str)
            and ANALYZER_ALIASES.get(analyzer.lower()) == "model"
            and tokenizer is None
        ):
            tok_path = root / "tokenizer.json"
            if not tok_path.is_file():
                msg = f"corrupted BM25 index at {root}: tokenizer.json missing"
                raise ValueError(msg)
            tokenizer = Tokenizer.from_file(str(tok_path))
        language = config.get("language")
        index = cls(
            analyzer=analyzer, tokenizer=tokenizer, language=language, **dict(config["params"])
        )
        if index.analyzer_name != saved:
            msg = f"{root} was built with analyzer {saved!r}, not {index.analyzer_name!r}"
            raise ValueError(msg)

        try:
            docs = [json.loads(line) for line in (root / "documents.jsonl").open(encoding="utf-8")]
            vocab = json.loads((root / "vocab.json").read_text(encoding="utf-8"))
            offsets = np.load(root / "doc_offsets.npy", allow_pickle=False)
            terms = np.load(root / "term_ids.npy", allow_pickle=False)
            counts = np.load(root / "counts.npy", allow_pickle=False)
        except (OSError, ValueError, EOFError, RecursionError) as exc:
            msg = f"corrupted BM25 index at {root}: {exc}"
            raise IndexFormatError(msg) from exc
        n = len(docs)
        problems = []
        if n != config.get("n_docs"):
            problems.append(f"{n} documents, manifest.json says {config.get('n_docs')}")
        if offsets.shape != (n + 1,) or (n and (offsets[0] != 0 or np.any(np.diff(offsets) < 0))):
            problems.append("doc_offsets.npy does not match the documents")
        elif terms.shape != counts.shape or terms.shape != (int(offsets[-1]),):
            problems.append("term_ids.npy / counts.npy do not match doc_offsets.npy")
        elif terms.size and (terms.min() < 0 or terms.max() >= len(vocab) or counts.min() <= 0):
            problems.append("term ids or counts out of range")
        if problems:
            msg = f"corrupted BM25 index at {root}: " + "; ".join(problems)
            raise IndexFormatError(msg)

        vocab_arr = list(vocab)
        term_list = terms.tolist()
        count_list = counts.tolist()
        off = offsets.tolist()
        for j, d in enumerate(docs):
            freqs = {
                vocab_arr[t]: c
                for t, c in zip(
                    term_list[off[j] : off[j + 1]], count_list[off[j] : off[j + 1]], strict=True
                )
            }
            doc_id = str(d["id"])
            index._pos[doc_id] = j
            index._ids.append(doc_id)
            index._texts.append(str(d["text"]))
            index._metadata.append(dict(d.get("metadata") or {}))
            index._doc_freqs.append(freqs)
            index._doc_len.append(sum(freqs.values()))
            index._n_tokens += index._doc_len[-1]
            index._df.update(freqs.keys())
            index._langs.append(d.get("language") if language == "auto" else language)
        index._lang_counts.update(index._langs)
        if len(index._pos) != n:
            msg = f"corrupted BM25 index at {root}: duplicate ids in documents.jsonl"
            raise IndexFormatError(msg)
        index._next_auto = int(config.get("next_auto_id", n))
        index._generations[root] = int(config["generation"])
        if saved in ("default", "english") and config.get("analyzer_version") != ANALYZER_VERSION:
            logger.info("%s: saved by an older analyzer; analyzing its %d texts again", root, n)
            kw = dict(config["params"], analyzer=saved, language=language)
            again = cls(index._texts, index._ids, index._metadata, **kw)
            again._next_auto = index._next_auto
            again._generations[root] = index._generations[root]  # it may be saved back there
            return again
        return index
