"""Bad-input sweep over the core, the CLI and the three adapters.

Every case feeds one bad argument to one public entry point and expects:

* ``TypeError`` for a value of the wrong type, ``ValueError`` (or a package error derived from
  it) for a value of the right type that is not allowed;
* a message that names the argument (and, where listed, the bad value or the valid choices);
* nothing changed (the object's documents are the same before and after).

The CLI cases run ``main([...])`` in process and expect a non-zero exit status and exactly one
``lfm-retrievers: error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

NAN = float("nan")
SURROGATE = "bad \ud800 text"


@dataclass
class Case:
    id: str
    call: Callable[[Any], Any]
    exc: type[BaseException] | None  # None: a CLI case (exit status + one stderr line)
    mentions: tuple[str, ...] = ()
    state: Callable[[Any], Any] | None = None


CASES: list[Case] = []


def case(
    id: str,
    call: Callable[[Any], Any],
    exc: type[BaseException] | None,
    *mentions: str,
    state: Callable[[Any], Any] | None = None,
) -> None:
    CASES.append(Case(id, call, exc, tuple(mentions), state))


# ----------------------------------------------------------------------------- the environment


class Env:
    """Built once: encoders, indexes and adapter objects over the tiny checkpoints."""

    def __init__(self, tiny: Path, tmp: Path) -> None:
        import lfm_retrievers as lr

        self.tiny, self.tmp = tiny, tmp
        self.colbert_path = str(tiny / "colbert")
        self.dense_path = str(tiny / "embedding")
        self.col = lr.load(self.colbert_path)
        self.den = lr.load(self.dense_path)
        self.texts = ["red planet mars", "venus is hot", "earth has blue water", "jupiter giant"]
        self.ids = ["a", "b", "c", "d"]
        self.meta = [
            {"n": 1, "lang": "en"},
            {"n": 2, "lang": "de"},
            {"n": 3, "lang": "en"},
            {"n": 4, "lang": "fr"},
        ]
        self.ci = lr.ColBERTIndex(self.col)
        self.ci.add(self.texts, ids=self.ids, metadata=self.meta)
        self.di = lr.DenseIndex(self.den)
        self.di.add(self.texts, ids=self.ids, metadata=self.meta)
        self.bm = _bm25_cls()(self.texts, ids=self.ids, metadata=self.meta)
        self.pipe = _bm25colbert_cls()(self.col, self.texts, ids=self.ids, metadata=self.meta)
        self.qv = np.asarray(self.col.encode_queries(["planet"], show_progress=False)[0])
        self.dqv = np.asarray(self.den.encode_queries(["planet"], show_progress=False)[0])
        self.dv = [np.asarray(v) for v in self.col.encode_documents(self.texts)]
        self.corpus = tmp / "corpus.jsonl"
        self.corpus.write_text(
            "\n".join(
                json.dumps({"id": i, "text": t}) for i, t in zip(self.ids, self.texts, strict=True)
            ),
            encoding="utf-8",
        )
        self._lc: dict[str, Any] = {}
        self._li: dict[str, Any] = {}
        self._hs: dict[str, Any] = {}

    # --- LangChain
    def lc(self, name: str) -> Any:
        if name not in self._lc:
            from langchain_lfm import (
                LFMBM25ColBERTRetriever,
                LFMColBERTReranker,
                LFMColBERTRetriever,
                LFMEmbeddings,
            )

            self._lc = {
                "emb": LFMEmbeddings(model=self.dense_path),
                "ret": LFMColBERTRetriever.from_texts(
                    self.texts, metadatas=self.meta, ids=self.ids, model=self.colbert_path
                ),
                "bm": LFMBM25ColBERTRetriever.from_texts(
                    self.texts, metadatas=self.meta, model=self.colbert_path
                ),
                "rr": LFMColBERTReranker(model=self.colbert_path),
            }
        return self._lc[name]

    # --- LlamaIndex
    def li(self, name: str) -> Any:
        if name not in self._li:
            from llama_index.core.schema import TextNode
            from llama_index.embeddings.lfm import LFMEmbedding
            from llama_index.postprocessor.lfm_rerank import LFMColBERTRerank
            from llama_index.retrievers.lfm import LFMBM25ColBERTRetriever, LFMColBERTRetriever

            nodes = [
                TextNode(text=t, id_=i, metadata=m)
                for t, i, m in zip(self.texts, self.ids, self.meta, strict=True)
            ]
            self._li = {
                "emb": LFMEmbedding(model_name=self.dense_path),
                "ret": LFMColBERTRetriever(nodes, model=self.colbert_path),
                "bm": LFMBM25ColBERTRetriever(nodes, model=self.colbert_path),
                "rr": LFMColBERTRerank(model=self.colbert_path),
                "nodes": nodes,
            }
        return self._li[name]

    # --- Haystack
    def hs(self, name: str) -> Any:
        if name not in self._hs:
            from haystack import Document
            from haystack_integrations.components.embedders.lfm import (
                LFMDocumentEmbedder,
                LFMTextEmbedder,
            )
            from haystack_integrations.components.rankers.lfm import LFMColBERTRanker

            store_cls, retriever_cls = _haystack_store_classes()
            store = store_cls(model=self.colbert_path)
            store.write_documents(
                [
                    Document(id=i, content=t, meta=m)
                    for t, i, m in zip(self.texts, self.ids, self.meta, strict=True)
                ]
            )
            te, de = LFMTextEmbedder(self.dense_path), LFMDocumentEmbedder(self.dense_path)
            rk = LFMColBERTRanker(self.colbert_path)
            for c in (te, de, rk):
                c.warm_up()
            self._hs = {
                "te": te,
                "de": de,
                "rk": rk,
                "store": store,
                "ret": retriever_cls(store),
                "Document": Document,
            }
        return self._hs[name]


def _bm25_cls() -> Any:
    import lfm_retrievers as lr

    if hasattr(lr, "BM25Index"):
        return lr.BM25Index
    from lfm_retrievers.bm25 import BM25Index  # before the restructure

    return BM25Index


def _bm25colbert_cls() -> Any:
    import lfm_retrievers as lr

    if hasattr(lr, "BM25ColBERT"):
        return lr.BM25ColBERT
    from lfm_retrievers.pipeline import BM25ColBERT

    return BM25ColBERT


def _haystack_store_classes() -> tuple[Any, Any]:
    from haystack_integrations.components.retrievers.lfm import LFMColBERTRetriever

    try:
        from haystack_integrations.document_stores.lfm import LFMColBERTDocumentStore
    except ImportError:
        from haystack_integrations.components.retrievers.lfm import LFMColBERTDocumentStore
    return LFMColBERTDocumentStore, LFMColBERTRetriever


def _cli_main() -> Callable[[list[str]], int]:
    from lfm_retrievers.cli import main

    return main


# ----------------------------------------------------------------------------- bad values

LIST_OF_STR_BAD: list[tuple[str, object, type[BaseException], tuple[str, ...]]] = [
    ("none", None, TypeError, ()),
    ("bare-str", "hello", TypeError, ()),
    ("bytes", b"hello", TypeError, ()),
    ("int", 5, TypeError, ()),
    ("dict", {"a": "b"}, TypeError, ()),
    ("none-item", ["ok", None], TypeError, ("[1]",)),
    ("int-item", [3], TypeError, ("[0]",)),
    ("nested-list", [["x"]], TypeError, ("[0]",)),
    ("surrogate-item", ["ok", SURROGATE], ValueError, ("[1]", "utf-8")),
]
STR_BAD: list[tuple[str, object, type[BaseException], tuple[str, ...]]] = [
    ("none", None, TypeError, ()),
    ("int", 5, TypeError, ()),
    ("bytes", b"x", TypeError, ()),
    ("list", ["x"], TypeError, ()),
    ("surrogate", SURROGATE, ValueError, ("utf-8",)),
]
POS_INT_BAD: list[tuple[str, object, type[BaseException]]] = [
    ("zero", 0, ValueError),
    ("negative", -1, ValueError),
    ("float", 1.5, TypeError),
    ("str", "3", TypeError),
    ("bool", True, TypeError),
    ("nan", NAN, TypeError),
]
FILTER_BAD: list[tuple[str, object, type[BaseException], tuple[str, ...]]] = [
    ("str", "lang", TypeError, ("filter",)),
    ("list", [1], TypeError, ("filter",)),
    ("unknown-operator", {"metadata": {"n": {"$regex": "x"}}}, ValueError, ("$regex",)),
    ("and-not-list", {"metadata": {"$and": {"n": 1}}}, TypeError, ("$and",)),
    ("in-not-list", {"metadata": {"lang": {"$in": "en"}}}, TypeError, ("$in",)),
    ("two-operators-mixed", {"metadata": {"n": {"$gt": 1, "x": 2}}}, ValueError, ("$gt",)),
    ("unknown-top-key", {"bogus": 1}, ValueError, ("bogus",)),
    ("ids-bare-str", {"ids": "ab"}, TypeError, ("ids",)),
]
LC_FILTER_BAD: list[tuple[str, object, type[BaseException], tuple[str, ...]]] = [
    ("str", "lang", TypeError, ("filter",)),
    ("unknown-operator", {"n": {"$regex": "x"}}, ValueError, ("$regex",)),
    ("and-not-list", {"$and": {"n": 1}}, TypeError, ("$and",)),
    ("in-not-list", {"lang": {"$in": "en"}}, TypeError, ("$in",)),
    ("unknown-logical", {"$xor": [{"n": 1}]}, ValueError, ("$xor",)),
]


# ----------------------------------------------------------------------------- core: encoders

for enc_name in ("col", "den"):
    for meth in ("encode_queries", "encode_documents"):
        for vid, value, exc, mentions in LIST_OF_STR_BAD:
            case(
                f"core-{enc_name}.{meth}-texts-{vid}",
                lambda env, e=enc_name, m=meth, v=value: getattr(getattr(env, e), m)(v),
                exc,
                *mentions,
            )
    for vid, value, exc in POS_INT_BAD:
        case(
            f"core-{enc_name}.encode_documents-batch_size-{vid}",
            lambda env, e=enc_name, v=value: getattr(env, e).encode_documents(["x"], batch_size=v),
            exc,
            "batch_size",
        )

for kw, values in (
    ("device", [("gpu", "gpu", ValueError), ("int", 5, TypeError)]),
    ("dtype", [("float64", "float64", ValueError), ("int", 3, TypeError)]),
    ("quantize", [("int4", "int4", ValueError), ("int", 8, TypeError)]),
    ("expect", [("sparse", "sparse", ValueError)]),
):
    for vid, value, exc in values:
        case(
            f"core-load-{kw}-{vid}",
            lambda env, k=kw, v=value: __import__("lfm_retrievers").load(
                env.colbert_path, **{k: v}
            ),
            exc,
            kw,
        )
case("core-load-name-int", lambda env: __import__("lfm_retrievers").load(5), TypeError, "5")

# ----------------------------------------------------------------------------- core: indexes


def _index_state(name: str) -> Callable[[Any], Any]:
    def state(env: Any) -> Any:
        idx = getattr(env, name)
        return (list(idx.ids), len(idx))

    return state


for iname in ("ci", "di"):
    st = _index_state(iname)
    for vid, value, exc, mentions in LIST_OF_STR_BAD:
        if vid == "none-item":
            mentions = ("texts[1]",)
        case(
            f"core-{iname}.add-texts-{vid}",
            lambda env, n=iname, v=value: getattr(env, n).add(v),
            exc,
            *mentions,
            state=st,
        )
    for vid, value, exc, mentions in [
        ("bare-str", "zz", TypeError, ("ids",)),
        ("int-item", [5, "y"], TypeError, ("ids[0]",)),
        ("repeated", ["z", "z"], ValueError, ("z",)),
        ("existing", ["a", "new"], ValueError, ("a",)),
        ("surrogate", ["ok", "id\udcff"], ValueError, ("ids[1]", "utf-8")),
        ("too-few", ["only-one"], ValueError, ("ids",)),
    ]:
        case(
            f"core-{iname}.add-ids-{vid}",
            lambda env, n=iname, v=value: getattr(env, n).add(["x", "y"], ids=v),
            exc,
            *mentions,
            state=st,
        )
    for vid, value, exc, mentions in [
        ("dict", {"a": 1}, TypeError, ("metadata",)),
        ("str-item", ["x", {"a": 1}], TypeError, ("metadata[0]",)),
        ("surrogate-key", [{"\udcff": 1}, {}], ValueError, ("metadata[0]", "utf-8")),
        ("surrogate-value", [{"k": "\udcff"}, {}], ValueError, ("metadata[0]", "utf-8")),
        ("nan-value", [{"k": NAN}, {}], ValueError, ("metadata[0]",)),
        ("object-value", [{"k": object()}, {}], TypeError, ("metadata[0]",)),
    ]:
        case(
            f"core-{iname}.add-metadata-{vid}",
            lambda env, n=iname, v=value: getattr(env, n).add(["x", "y"], metadata=v),
            exc,
            *mentions,
            state=st,
        )
    for vid, value, exc, mentions in STR_BAD:
        case(
            f"core-{iname}.search-query-{vid}",
            lambda env, n=iname, v=value: getattr(env, n).search(v),
            exc,
            "query",
            *mentions,
        )
    for vid, value, exc in POS_INT_BAD:
        case(
            f"core-{iname}.search-k-{vid}",
            lambda env, n=iname, v=value: getattr(env, n).search("planet", k=v),
            exc,
            "k",
        )
    for vid, value, exc, mentions in FILTER_BAD:
        case(
            f"core-{iname}.search-filter-{vid}",
            lambda env, n=iname, v=value: getattr(env, n).search("planet", filter=v),
            exc,
            *mentions,
        )
    for vid, value, exc, mentions in [
        ("bare-str-is-one-id", "ab", KeyError, ("ab",)),  # documented: a str is one id
        ("int", 5, TypeError, ("ids",)),
        ("int-item", ["a", 5], TypeError, ("ids[1]",)),
        ("unknown", ["zzz"], KeyError, ("zzz",)),
    ]:
        case(
            f"core-{iname}.delete-{vid}",
            lambda env, n=iname, v=value: getattr(env, n).delete(v),
            exc,
            *mentions,
            state=st,
        )

case(
    "core-ci.search-score-bad",
    lambda env: env.ci.search("planet", score="max"),
    ValueError,
    "score",
    "raw",
)
case(
    "core-ci.search_vectors-nan",
    lambda env: env.ci.search_vectors(
        np.where(np.arange(env.qv.size).reshape(env.qv.shape) == 0, np.nan, env.qv)
    ),
    ValueError,
    "nan",
)
case(
    "core-di.search_vectors-nan",
    lambda env: env.di.search_vectors(np.where(np.arange(env.dqv.size) == 0, np.nan, env.dqv)),
    ValueError,
    "nan",
)
case(
    "core-ci.search_vectors-inf",
    lambda env: env.ci.search_vectors(np.full_like(env.qv, np.inf)),
    ValueError,
    "finite",
)
case(
    "core-ci.search_vectors-str",
    lambda env: env.ci.search_vectors("planet"),
    TypeError,
    "query_vectors",
)
case(
    "core-di.search_vectors-shape",
    lambda env: env.di.search_vectors(np.zeros((3, 3), np.float32)),
    ValueError,
    "query_vector",
)

# ----------------------------------------------------------------------------- core: scoring


def _nan_doc(env: Any) -> list[np.ndarray]:
    docs = [d.copy() for d in env.dv]
    docs[1][0, 0] = np.nan
    return docs


case(
    "core-rerank_vectors-nan-query",
    lambda env: __import__("lfm_retrievers").rerank_vectors(np.full_like(env.qv, np.nan), env.dv),
    ValueError,
    "nan",
)
case(
    "core-rerank_vectors-nan-doc",
    lambda env: __import__("lfm_retrievers").rerank_vectors(env.qv, _nan_doc(env)),
    ValueError,
    "nan",
    "[1]",
)
case(
    "core-maxsim-nan-doc",
    lambda env: __import__("lfm_retrievers").maxsim(env.qv, _nan_doc(env)),
    ValueError,
    "nan",
)
case(
    "core-cosine_scores-nan",
    lambda env: __import__("lfm_retrievers").cosine_scores(
        np.full_like(env.dqv, np.nan), np.stack([env.dqv, env.dqv])
    ),
    ValueError,
    "nan",
)
for vid, value, exc in POS_INT_BAD:
    case(
        f"core-rerank_vectors-top_k-{vid}",
        lambda env, v=value: __import__("lfm_retrievers").rerank_vectors(env.qv, env.dv, top_k=v),
        exc,
        "top_k",
    )
case(
    "core-rerank_vectors-score",
    lambda env: __import__("lfm_retrievers").rerank_vectors(env.qv, env.dv, score="max"),
    ValueError,
    "score",
    "raw",
)
case(
    "core-rerank_vectors-docs-str",
    lambda env: __import__("lfm_retrievers").rerank_vectors(env.qv, "abc"),
    TypeError,
    "document_vectors",
)

# rerank / explain / pipeline / bm25


def _rerank(env: Any, **kw: Any) -> Any:
    import lfm_retrievers as lr

    fn = getattr(lr, "rerank", None)
    if fn is None or not callable(fn) or isinstance(fn, type(lr)):
        from lfm_retrievers.rerank import rerank as fn
    args = {"query": "planet", "documents": env.texts, **kw}
    return fn(env.col, args.pop("query"), args.pop("documents"), **args)


for vid, value, exc, mentions in STR_BAD:
    case(
        f"core-rerank-query-{vid}",
        lambda env, v=value: _rerank(env, query=v),
        exc,
        "query",
        *mentions,
    )
for vid, value, exc, mentions in LIST_OF_STR_BAD:
    case(
        f"core-rerank-documents-{vid}",
        lambda env, v=value: _rerank(env, documents=v),
        exc,
        *mentions,
    )
for vid, value, exc, mentions in STR_BAD:
    case(
        f"core-explain-query-{vid}",
        lambda env, v=value: env.col.explain(v, "doc"),
        exc,
        "query",
        *mentions,
    )
    case(
        f"core-explain-document-{vid}",
        lambda env, v=value: env.col.explain("q", v),
        exc,
        "document",
        *mentions,
    )

bm_state = _index_state("bm")
for vid, value, exc, mentions in LIST_OF_STR_BAD:
    case(
        f"core-bm25.add-texts-{vid}",
        lambda env, v=value: env.bm.add(v),
        exc,
        *mentions,
        state=bm_state,
    )
case(
    "core-bm25.add-ids-surrogate",
    lambda env: env.bm.add(["x"], ids=["\udcff"]),
    ValueError,
    "ids[0]",
    "utf-8",
    state=bm_state,
)
case(
    "core-bm25.add-ids-repeated",
    lambda env: env.bm.add(["x", "y"], ids=["q", "q"]),
    ValueError,
    "q",
    state=bm_state,
)
for vid, value, exc, mentions in STR_BAD:
    case(
        f"core-bm25.search-query-{vid}",
        lambda env, v=value: env.bm.search(v),
        exc,
        "query",
        *mentions,
    )
for vid, value, exc in POS_INT_BAD:
    case(f"core-bm25.search-k-{vid}", lambda env, v=value: env.bm.search("planet", k=v), exc, "k")
for kw, value, exc in (
    ("k1", NAN, ValueError),
    ("k1", -1.0, ValueError),
    ("k1", "1.5", TypeError),
    ("b", 2.0, ValueError),
    ("variant", "bm99", ValueError),
    ("analyzer", "klingon", ValueError),
    ("analyzer", 5, TypeError),
):
    case(
        f"core-bm25-init-{kw}-{value!r}",
        lambda env, k=kw, v=value: _bm25_cls()(env.texts, **{k: v}),
        exc,
        kw,
    )
case(
    "core-bm25.delete-bare-str-is-one-id",
    lambda env: env.bm.delete("ab"),
    KeyError,
    "ab",
    state=bm_state,
)
case(
    "core-bm25.delete-int-item",
    lambda env: env.bm.delete(["a", 5]),
    TypeError,
    "ids[1]",
    state=bm_state,
)

pipe_state = lambda env: list(env.pipe.bm25.ids)  # noqa: E731
for vid, value, exc, mentions in STR_BAD:
    case(
        f"core-bm25colbert.search-query-{vid}",
        lambda env, v=value: env.pipe.search(v),
        exc,
        "query",
        *mentions,
    )
for vid, value, exc in POS_INT_BAD:
    case(
        f"core-bm25colbert.search-k-{vid}",
        lambda env, v=value: env.pipe.search("planet", k=v),
        exc,
        "k",
    )
for kw, value, exc in (
    ("candidates", 0, ValueError),
    ("candidates", "10", TypeError),
    ("fusion", "max", ValueError),
    ("weight", NAN, ValueError),
    ("score", "max", ValueError),
):
    case(
        f"core-bm25colbert-init-{kw}-{value!r}",
        lambda env, k=kw, v=value: _bm25colbert_cls()(env.col, env.texts, **{k: v}),
        exc,
        kw,
    )
case(
    "core-bm25colbert.add-surrogate",
    lambda env: env.pipe.add(["ok", SURROGATE]),
    ValueError,
    "[1]",
    "utf-8",
    state=pipe_state,
)

# EmbeddingCache
for value, exc in ((-1, ValueError), ("10", TypeError), (1.5, TypeError)):
    case(
        f"core-EmbeddingCache-max_bytes-{value!r}",
        lambda env, v=value: __import__("lfm_retrievers").EmbeddingCache(max_bytes=v),
        exc,
        "max_bytes",
    )

# ----------------------------------------------------------------------------- damaged checkpoints


def _damaged(env: Any, kind: str, fname: str, how: str) -> Path:
    import uuid

    out = env.tmp / f"damaged-{uuid.uuid4().hex[:8]}" / kind
    shutil.copytree(env.tiny / kind, out)
    p = out / fname
    if how == "truncate":
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif how == "header":
        p.write_bytes(p.read_bytes()[:5])
    elif how == "list":
        p.write_text("[1, 2]", encoding="utf-8")
    elif how == "deep":
        p.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    elif how == "string":
        p.write_text('"hello"', encoding="utf-8")
    elif how == "bigtok":
        src = _real_tokenizer()
        shutil.copy(src, p)
    return out


def _real_tokenizer() -> Path:
    for root in (Path("/work/shared/data/tokenizers"),):
        p = root / "lfm2-colbert-350m" / "tokenizer.json"
        if p.exists():
            return p
    pytest.skip("real tokenizer not available")
    raise AssertionError


def _load_and_encode(env: Any, path: Path) -> Any:
    import lfm_retrievers as lr

    enc = lr.load(path)
    return enc.encode_queries(["hello world " * 20 + "ようこそ مرحبا"])


DAMAGES = [
    ("colbert", "model.safetensors", "truncate", ("model.safetensors",)),
    ("colbert", "model.safetensors", "header", ("model.safetensors",)),
    ("colbert", "tokenizer.json", "truncate", ("tokenizer.json",)),
    ("colbert", "tokenizer.json", "deep", ("tokenizer.json",)),
    ("colbert", "tokenizer.json", "list", ("tokenizer.json",)),
    ("colbert", "config.json", "list", ("config.json",)),
    ("colbert", "config.json", "string", ("config.json",)),
    ("colbert", "config.json", "deep", ("config.json",)),
    ("colbert", "modules.json", "list", ("modules.json",)),
    (
        "colbert",
        "config_sentence_transformers.json",
        "deep",
        ("config_sentence_transformers.json",),
    ),
    (
        "colbert",
        "config_sentence_transformers.json",
        "list",
        ("config_sentence_transformers.json",),
    ),
    ("colbert", "tokenizer_config.json", "list", ("tokenizer_config.json",)),
    ("colbert", "special_tokens_map.json", "deep", ("special_tokens_map.json",)),
    ("colbert", "1_Dense/model.safetensors", "truncate", ("1_Dense",)),
    ("colbert", "1_Dense/config.json", "list", ("1_Dense",)),
    ("colbert", "sentence_bert_config.json", "list", ("sentence_bert_config.json",)),
    ("colbert", "tokenizer.json", "bigtok", ("tokenizer",)),
    ("embedding", "config.json", "truncate", ("config.json",)),
    ("embedding", "1_Pooling/config.json", "list", ("1_Pooling",)),
    ("embedding", "model.safetensors", "truncate", ("model.safetensors",)),
]


def _checkpoint_error() -> type[BaseException]:
    import lfm_retrievers as lr

    return lr.CheckpointError


for kind, fname, how, mentions in DAMAGES:
    case(
        f"core-damaged-{kind}-{fname}-{how}",
        lambda env, k=kind, f=fname, h=how: _load_and_encode(env, _damaged(env, k, f, h)),
        ValueError,  # CheckpointError is a ValueError; checked to be CheckpointError below
        *mentions,
    )

# ----------------------------------------------------------------------------- damaged saved files


def _saved(env: Any, what: str) -> Path:
    import uuid

    out = env.tmp / f"saved-{what}-{uuid.uuid4().hex[:8]}"
    import lfm_retrievers as lr

    if what == "colbert":  # fresh objects: a case above may have (wrongly) changed env.ci
        index = lr.ColBERTIndex(env.col)
        index.add(env.texts, ids=env.ids, metadata=env.meta)
        index.save(out)
    elif what == "bm25":
        _bm25_cls()(env.texts, ids=env.ids, metadata=env.meta).save(out)
    elif what == "bm25-model":
        _bm25_cls()(env.texts, analyzer="model", tokenizer=env.col).save(out)
    return out


def _damage_file(p: Path, how: str) -> None:
    if how == "truncate":
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif how == "list":
        p.write_text("[1, 2]", encoding="utf-8")
    elif how == "deep":
        p.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    elif how == "empty":
        p.write_bytes(b"")


def _load_damaged(env: Any, what: str, fname: str, how: str) -> Any:
    import lfm_retrievers as lr

    root = _saved(env, what)
    _damage_file(root / fname, how)
    if what == "colbert":
        return lr.ColBERTIndex.load(root, encoder=env.col)
    return _bm25_cls().load(root)


SAVED_FILES = {
    "colbert": ["manifest.json", "docs.json", "vectors.npy", "offsets.npy"],
    "bm25": [
        "manifest.json",
        "documents.jsonl",
        "vocab.json",
        "counts.npy",
        "term_ids.npy",
        "doc_offsets.npy",
    ],
    "bm25-model": ["tokenizer.json"],
}
for what, files in SAVED_FILES.items():
    for fname in files:
        for how in ("truncate", "list", "deep", "empty"):
            case(
                f"core-saved-{what}-{fname}-{how}",
                lambda env, w=what, f=fname, h=how: _load_damaged(env, w, f, h),
                ValueError,
                fname.split(".")[0] if what != "colbert" else "",
            )

# ----------------------------------------------------------------------------- CLI


def _cli(env: Any, *argv: str) -> int:
    return _cli_main()(["--no-progress", *argv] if False else list(argv))


CLI_CASES = [
    ("k-0-default-model", ["search", "--corpus", "{corpus}", "-k", "0", "planet"], ("k",)),
    ("k-0", ["search", "--corpus", "{corpus}", "--model", "{model}", "-k", "0", "planet"], ("k",)),
    (
        "candidates-0",
        ["search", "--corpus", "{corpus}", "--model", "{model}", "--candidates", "0", "planet"],
        ("candidates",),
    ),
    (
        "analyzer",
        ["search", "--corpus", "{corpus}", "--model", "{model}", "--analyzer", "klingon", "planet"],
        ("analyzer",),
    ),
    (
        "device",
        ["search", "--corpus", "{corpus}", "--model", "{model}", "--device", "gpu", "planet"],
        ("device",),
    ),
    (
        "dtype",
        ["search", "--corpus", "{corpus}", "--model", "{model}", "--dtype", "float64", "planet"],
        ("dtype",),
    ),
    (
        "corpus-missing",
        ["search", "--corpus", "{missing}", "--model", "{model}", "planet"],
        ("missing",),
    ),
    (
        "corpus-bad-json",
        ["search", "--corpus", "{badjson}", "--model", "{model}", "planet"],
        ("badjson",),
    ),
    (
        "corpus-list-row",
        ["search", "--corpus", "{listrow}", "--model", "{model}", "planet"],
        ("listrow",),
    ),
    (
        "corpus-surrogate",
        ["search", "--corpus", "{surrogate}", "--model", "{model}", "planet"],
        ("surrogate",),
    ),
    ("corpus-deep", ["search", "--corpus", "{deep}", "--model", "{model}", "planet"], ("deep",)),
    (
        "model-missing",
        ["search", "--corpus", "{corpus}", "--model", "{missing}", "planet"],
        ("missing",),
    ),
    (
        "index-damaged",
        ["search", "--index", "{damagedindex}", "--model", "{model}", "planet"],
        ("index",),
    ),
    ("eval-data-missing", ["eval", "--data", "{missing}", "--mode", "bm25"], ("missing",)),
    (
        "eval-metric",
        ["eval", "--data", "{corpusdir}", "--mode", "bm25", "--metrics", "foo@10"],
        ("foo",),
    ),
]
for cid, argv, mentions in CLI_CASES:
    case(
        f"cli-{cid}",
        lambda env, a=argv: _cli(env, *[x.format(**env.cli_paths) for x in a]),
        None,
        *mentions,
    )

for kind, fname, how, mentions in DAMAGES:
    if kind != "colbert":
        continue
    case(
        f"cli-damaged-{fname}-{how}",
        lambda env, f=fname, h=how: _cli(
            env,
            "search",
            "--corpus",
            str(env.corpus),
            "--model",
            str(_damaged(env, "colbert", f, h)),
            "--no-progress",
            "planet",
        ),
        None,
        *mentions,
    )


# ----------------------------------------------------------------------------- LangChain


lc_ret_state = lambda env: list(env.lc("ret").index.ids)  # noqa: E731
for vid, value, exc, mentions in LIST_OF_STR_BAD:
    case(
        f"lc-embed_documents-{vid}",
        lambda env, v=value: env.lc("emb").embed_documents(v),
        exc,
        *mentions,
    )
for vid, value, exc, mentions in STR_BAD:
    case(
        f"lc-embed_query-{vid}",
        lambda env, v=value: env.lc("emb").embed_query(v),
        exc,
        *mentions,
    )
    case(
        f"lc-ret.invoke-{vid}",
        lambda env, v=value: env.lc("ret").invoke(v),
        exc,
        *mentions,
    )
    case(
        f"lc-bm.invoke-{vid}",
        lambda env, v=value: env.lc("bm").invoke(v),
        exc,
        *mentions,
    )
for vid, value, exc in POS_INT_BAD:
    case(
        f"lc-ret.invoke-k-{vid}",
        lambda env, v=value: env.lc("ret").invoke("planet", k=v),
        exc,
        "k",
    )
for vid, value, exc, mentions in LC_FILTER_BAD:
    case(
        f"lc-ret.invoke-filter-{vid}",
        lambda env, v=value: env.lc("ret").invoke("planet", filter=v),
        exc,
        *mentions,
    )


def _lc_doc(text: str, id: str | None = None, **meta: Any) -> Any:
    from langchain_core.documents import Document

    return Document(page_content=text, id=id, metadata=meta)


case(
    "lc-ret.add_documents-repeated-id",
    lambda env: env.lc("ret").add_documents([_lc_doc("x", "dup"), _lc_doc("y", "dup")]),
    ValueError,
    "dup",
    state=lc_ret_state,
)
case(
    "lc-ret.add_documents-existing-id",
    lambda env: env.lc("ret").add_documents([_lc_doc("x", "a")]),
    ValueError,
    "a",
    state=lc_ret_state,
)
case(
    "lc-ret.add_documents-surrogate-text",
    lambda env: env.lc("ret").add_documents([_lc_doc("ok", "n1"), _lc_doc(SURROGATE, "n2")]),
    ValueError,
    "utf-8",
    "n2",
    state=lc_ret_state,
)
case(
    "lc-ret.add_documents-surrogate-id",
    lambda env: env.lc("ret").add_documents([_lc_doc("ok", "id\udcff")]),
    ValueError,
    "utf-8",
    state=lc_ret_state,
)
case(
    "lc-ret.add_documents-bare-doc",
    lambda env: env.lc("ret").add_documents(_lc_doc("ok")),
    TypeError,
    "documents",
    state=lc_ret_state,
)
case(
    "lc-ret.add_texts-bare-str",
    lambda env: env.lc("ret").add_texts("hello"),
    TypeError,
    "texts",
    state=lc_ret_state,
)
case(
    "lc-ret.add_texts-ids-bare-str",
    lambda env: env.lc("ret").add_texts(["x", "y"], ids="ab"),
    TypeError,
    "ids",
    state=lc_ret_state,
)
case(
    "lc-ret.delete-bare-str",
    lambda env: env.lc("ret").delete("ab"),
    TypeError,
    "ids",
    state=lc_ret_state,
)
case(
    "lc-ret.delete-none",
    lambda env: env.lc("ret").delete(None),
    TypeError,
    "ids",
    state=lc_ret_state,
)
case(
    "lc-ret.delete-int-item",
    lambda env: env.lc("ret").delete([1]),
    TypeError,
    "ids[0]",
    state=lc_ret_state,
)
for field, value, exc in (
    ("k", 0, ValueError),
    ("k", "x", ValueError),
    ("score", "max", ValueError),
    ("device", "gpu", ValueError),
    ("quantize", "int4", ValueError),
    ("filter", "lang", ValueError),
):
    case(
        f"lc-ret-field-{field}-{value!r}",
        lambda env, f=field, v=value: (
            __import__("langchain_lfm")
            .LFMColBERTRetriever(model=env.colbert_path, **{f: v})
            .invoke("planet")
        ),
        exc,
        field,
    )
for vid, value, exc, mentions in STR_BAD:
    case(
        f"lc-rr.compress-query-{vid}",
        lambda env, v=value: env.lc("rr").compress_documents([_lc_doc("x")], v),
        exc,
        "query",
        *mentions,
    )
case(
    "lc-rr.compress-docs-bare-str",
    lambda env: env.lc("rr").compress_documents("abc", "q"),
    TypeError,
    "documents",
)
case(
    "lc-rr.compress-docs-surrogate",
    lambda env: env.lc("rr").compress_documents([_lc_doc("ok"), _lc_doc(SURROGATE)], "q"),
    ValueError,
    "[1]",
    "utf-8",
)
case(
    "lc-bm.from_texts-surrogate",
    lambda env: __import__("langchain_lfm").LFMBM25ColBERTRetriever.from_texts(
        ["ok", SURROGATE], model=env.colbert_path
    ),
    ValueError,
    "[1]",
    "utf-8",
)

# ----------------------------------------------------------------------------- LlamaIndex

for meth in ("get_text_embedding_batch",):
    for vid, value, exc, mentions in LIST_OF_STR_BAD:
        case(
            f"li-emb.{meth}-{vid}",
            lambda env, m=meth, v=value: getattr(env.li("emb"), m)(v),
            exc,
            "texts",
            *mentions,
        )
for meth in ("get_text_embedding", "get_query_embedding"):
    for vid, value, exc, mentions in STR_BAD:
        case(
            f"li-emb.{meth}-{vid}",
            lambda env, m=meth, v=value: getattr(env.li("emb"), m)(v),
            exc,
            *mentions,
        )

li_state = lambda env: list(env.li("ret").node_ids)  # noqa: E731


def _li_node(text: str, id: str) -> Any:
    from llama_index.core.schema import TextNode

    return TextNode(text=text, id_=id)


for vid, value, exc in (
    ("none", None, TypeError),
    ("bare-node-str", "abc", TypeError),
    ("int-item", [1], TypeError),
):
    case(
        f"li-ret.add_nodes-{vid}",
        lambda env, v=value: env.li("ret").add_nodes(v),
        exc,
        "nodes",
        state=li_state,
    )
case(
    "li-ret.add_nodes-surrogate",
    lambda env: env.li("ret").add_nodes([_li_node("ok", "z1"), _li_node(SURROGATE, "z2")]),
    ValueError,
    "utf-8",
    "z2",
    state=li_state,
)
for vid, value, exc in (
    ("none", None, TypeError),
    ("int", 5, TypeError),
    ("int-item", [5], TypeError),
):
    case(
        f"li-ret.delete_nodes-{vid}",
        lambda env, v=value: env.li("ret").delete_nodes(v),
        exc,
        "node_ids",
        state=li_state,
    )
for vid, value, exc, mentions in STR_BAD:
    if vid != "surrogate":
        continue  # a non-str is rejected by LlamaIndex's own instrumentation first
    case(
        f"li-ret.retrieve-{vid}",
        lambda env, v=value: env.li("ret").retrieve(v),
        exc,
        *mentions,
    )
for kw, value, exc in (
    ("similarity_top_k", 0, ValueError),
    ("similarity_top_k", "3", TypeError),
    ("score", "max", ValueError),
    ("nodes", "abc", TypeError),
):
    case(
        f"li-ret-init-{kw}-{value!r}",
        lambda env, k=kw, v=value: __import__(
            "llama_index.retrievers.lfm", fromlist=["x"]
        ).LFMColBERTRetriever(**{"model": env.colbert_path, **{k: v}}),
        exc,
        kw,
    )
case(
    "li-ret-init-filters-dict",
    lambda env: __import__("llama_index.retrievers.lfm", fromlist=["x"]).LFMColBERTRetriever(
        model=env.colbert_path, filters={"lang": "en"}
    ),
    TypeError,
    "filters",
)
for vid, value, exc, mentions in STR_BAD:
    if vid == "none":
        continue
    case(
        f"li-rr.postprocess-query-{vid}",
        lambda env, v=value: env.li("rr").postprocess_nodes(
            [
                __import__("llama_index.core.schema", fromlist=["x"]).NodeWithScore(
                    node=_li_node("x", "x"), score=1.0
                )
            ],
            query_str=v,
        ),
        exc,
        *mentions,
    )
case(
    "li-rr.postprocess-nodes-none",
    lambda env: env.li("rr").postprocess_nodes(None, query_str="x"),
    TypeError,
    "nodes",
)


def _li_persisted(env: Any, version: Any) -> Path:
    import uuid

    out = env.tmp / f"li-{uuid.uuid4().hex[:8]}"
    env.li("ret").persist(out)
    for p in sorted(out.rglob("*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if isinstance(data, dict) and "format_version" in data:
            data["format_version"] = version
            p.write_text(json.dumps(data), encoding="utf-8")
    return out


for version in (0, -1, "1", 999):
    case(
        f"li-ret.from_persist_dir-format_version-{version!r}",
        lambda env, v=version: (
            __import__("llama_index.retrievers.lfm", fromlist=["x"])
            .LFMColBERTRetriever.from_persist_dir(_li_persisted(env, v))
            .retrieve("planet")
        ),
        ValueError,
        "format_version",
    )

# ----------------------------------------------------------------------------- Haystack

hs_state = lambda env: sorted(d.id for d in env.hs("store").filter_documents())  # noqa: E731
for vid, value, exc, mentions in STR_BAD:
    case(
        f"hs-te.run-{vid}",
        lambda env, v=value: env.hs("te").run(v),
        exc,
        *mentions,
    )
    case(
        f"hs-rk.run-query-{vid}",
        lambda env, v=value: env.hs("rk").run(v, [env.hs("Document")(content="x")]),
        exc,
        *mentions,
    )
    case(
        f"hs-ret.run-query-{vid}",
        lambda env, v=value: env.hs("ret").run(v),
        exc,
        *mentions,
    )
case(
    "hs-de.run-bare-doc",
    lambda env: env.hs("de").run(env.hs("Document")(content="x")),
    TypeError,
    "documents",
)
case(
    "hs-de.run-surrogate",
    lambda env: env.hs("de").run(
        [env.hs("Document")(content="ok"), env.hs("Document")(content=SURROGATE, id="s1")]
    ),
    ValueError,
    "utf-8",
)
case(
    "hs-store.write-surrogate",
    lambda env: env.hs("store").write_documents([env.hs("Document")(content=SURROGATE, id="s2")]),
    ValueError,
    "utf-8",
    "s2",
    state=hs_state,
)
case(
    "hs-store.write-bare-doc",  # ValueError: Haystack's DocumentStore protocol tests demand it
    lambda env: env.hs("store").write_documents(env.hs("Document")(content="x")),
    ValueError,
    "documents",
    state=hs_state,
)
case(
    "hs-store.delete-bare-str",
    lambda env: env.hs("store").delete_documents("ab"),
    TypeError,
    "document_ids",
    state=hs_state,
)
for kw, value, exc in (
    ("top_k", 0, ValueError),
    ("top_k", "3", TypeError),
    ("score_threshold", NAN, ValueError),
    ("score_threshold", "0.5", TypeError),
    ("score_mode", "max", ValueError),
    ("batch_size", 0, ValueError),
):
    case(
        f"hs-rk-init-{kw}-{value!r}",
        lambda env, k=kw, v=value: __import__(
            "haystack_integrations.components.rankers.lfm", fromlist=["x"]
        ).LFMColBERTRanker(env.colbert_path, **{k: v}),
        exc,
        kw,
    )
case(
    "hs-rk.run-score_threshold-nan",
    lambda env: env.hs("rk").run("q", [env.hs("Document")(content="x")], score_threshold=NAN),
    ValueError,
    "score_threshold",
)
for vid, value, exc in POS_INT_BAD:
    case(
        f"hs-ret.run-top_k-{vid}",
        lambda env, v=value: env.hs("ret").run("planet", top_k=v),
        exc,
        "top_k",
    )
for flt, exc, mention in (
    ({"field": "meta.n", "operator": "like", "value": 1}, ValueError, "like"),
    ({"operator": "XOR", "conditions": []}, ValueError, "XOR"),
    ("lang == en", ValueError, "filters"),
):
    case(
        f"hs-ret.run-filters-{mention}",
        lambda env, f=flt: env.hs("ret").run("planet", filters=f),
        exc,
        mention,
    )


# ----------------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Env:
    tmp = tmp_path_factory.mktemp("sweep")
    e = Env(tiny_dir, tmp)
    corpusdir = tmp / "beir"
    corpusdir.mkdir()
    (corpusdir / "corpus.jsonl").write_text(e.corpus.read_text(), encoding="utf-8")
    (corpusdir / "queries.jsonl").write_text('{"_id": "q1", "text": "planet"}\n')
    (corpusdir / "qrels").mkdir()
    (corpusdir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ta\t1\n")
    badjson = tmp / "badjson.jsonl"
    badjson.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": \n', encoding="utf-8")
    listrow = tmp / "listrow.jsonl"
    listrow.write_text('{"id": "a", "text": "x"}\n[1, 2]\n', encoding="utf-8")
    surrogate = tmp / "surrogate.jsonl"
    surrogate.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "\\ud800"}\n')
    deep = tmp / "deep.jsonl"
    deep.write_text('{"id": "a", "text": "x", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    damagedindex = tmp / "damagedindex"
    e.ci.save(damagedindex)
    (damagedindex / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    e.cli_paths = {  # type: ignore[attr-defined]
        "corpus": str(e.corpus),
        "missing": str(tmp / "missing.jsonl"),
        "badjson": str(badjson),
        "listrow": str(listrow),
        "surrogate": str(surrogate),
        "deep": str(deep),
        "damagedindex": str(damagedindex),
        "corpusdir": str(corpusdir),
        "model": e.colbert_path,
    }
    return e


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input(c: Case, env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    before = c.state(env) if c.state else None
    if c.exc is None:  # CLI
        capsys.readouterr()
        try:
            status = c.call(env)
        except SystemExit as exc:  # argparse usage errors
            status = exc.code
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert status not in (0, None), err
        assert "Traceback" not in err
        assert len(lines) == 1 and lines[0].startswith("lfm-retrievers") and "error:" in lines[0], (
            err
        )
        for m in c.mentions:
            assert m.lower() in lines[0].lower(), (m, lines[0])
        return
    with pytest.raises(BaseException) as info:
        c.call(env)
    got = info.value
    assert isinstance(got, c.exc), f"{type(got).__name__}: {got}"
    if c.id.startswith("core-damaged"):
        assert isinstance(got, _checkpoint_error()), f"{type(got).__name__}: {got}"
    if c.id.startswith("core-saved-colbert"):
        import lfm_retrievers as lr

        assert isinstance(got, lr.IndexFormatError), f"{type(got).__name__}: {got}"
    text = str(got).lower()
    for m in c.mentions:
        assert m.lower() in text, (m, str(got))
    if c.state:
        assert c.state(env) == before
