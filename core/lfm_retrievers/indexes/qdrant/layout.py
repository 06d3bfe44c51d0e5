"""The collection layout of :class:`~lfm_retrievers.QdrantIndex`, and its pure helpers.

**Vectors** (created up front, because Qdrant cannot add a multivector to a collection later):

* ``colbert``: each document's ColBERT token vectors, a multivector of the model's width (128
  for LFM2.5-ColBERT), dot product, ``MAX_SIM``, no HNSW graph (``m=0``: it only rescores or
  scans). ``storage="float16"`` (the default, as in the in-process ``ColBERTIndex``) rounds
  the vectors to float16 *on the client* and declares ``datatype=float16``, so a server (which
  stores float16) and local mode (which keeps float32) hold the same values and give the same
  scores; ``on_disk=True`` memory-maps them on the server.
* ``dense`` (optional): one cosine vector per document, HNSW.
* ``bm25`` (optional): a sparse vector with Qdrant's ``IDF`` modifier. The document side holds
  BM25's saturated term frequency ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl))``
  over the terms of one of the package's analyzers; the query side holds each query term's
  count; the engine multiplies by ``idf = ln(1 + (N - n + 0.5) / (n + 0.5))`` at query time,
  so document frequencies stay right as the collection grows. ``avgdl`` is fixed once (by
  default from the first batch added) and recorded.

**Payload**: ``text``, ``metadata`` (the caller's dict) and ``doc_id`` (the caller's id).

**Stable term hash.** A term's sparse index is
``int.from_bytes(blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")``
(:func:`term_index`, a uint32). Python's ``hash()`` is salted per process and would scatter
the same term over different indices; two distinct terms collide with probability about
``vocabulary / 2**32``. Hand-written because it is one line of :mod:`hashlib`.

**Point ids**: ``uuid5(POINT_NAMESPACE, doc_id)`` (:func:`point_id`), so re-adding an id
replaces the document and any client finds it without a lookup table.

**Record**: the collection's metadata (``config.metadata["lfm_retrievers"]``) holds the layout
version, the ColBERT and dense models (name, fingerprint, width), the storage type and the BM25
settings (analyzer, language, term hash, k1, b, avgdl). It needs Qdrant >= 1.16 (collection
metadata).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lfm_retrievers._optional import require
from lfm_retrievers._validation import check_choice, check_float, check_positive_int, check_str

#: Search modes of :meth:`QdrantIndex.search`.
SEARCH_MODES: tuple[str, ...] = (
    "colbert",
    "dense",
    "bm25",
    "dense+colbert",
    "bm25+colbert",
    "hybrid",
)
#: Storage types of the ColBERT vectors.
STORAGES: tuple[str, ...] = ("float16", "float32")
#: Namespace of the point ids: ``uuid5(POINT_NAMESPACE, doc_id)``.
POINT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/lfm-retrievers/qdrant")
#: Name of the term hash, recorded in the collection (see :func:`term_index`).
TERM_HASH = "blake2b-32-le"
RECORD_KEY = "lfm_retrievers"
LAYOUT_FORMAT = "lfm-retrievers/qdrant"
LAYOUT_VERSION = 1
COLBERT, DENSE, BM25 = "colbert", "dense", "bm25"
TEXT_FIELD, METADATA_FIELD, ID_FIELD = "text", "metadata", "doc_id"
DEFAULT_K1, DEFAULT_B = 1.2, 0.75
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_RETRY_GRPC = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})


def models() -> Any:
    """``qdrant_client.models``, or the install hint of the ``qdrant`` extra."""
    return require("qdrant", "qdrant_client.models", "QdrantIndex")


def point_id(doc_id: str) -> str:
    """The Qdrant point id of a document id: ``str(uuid5(POINT_NAMESPACE, doc_id))``.

    >>> point_id("faq-17") == point_id("faq-17") != point_id("faq-18")
    True
    """
    return str(uuid.uuid5(POINT_NAMESPACE, doc_id))


def term_index(term: str) -> int:
    """The sparse index of a BM25 term: its 4-byte BLAKE2b digest as a little-endian uint32.

    >>> term_index("return")
    3445749139
    """
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def bm25_document_weights(
    terms: Sequence[str], *, k1: float, b: float, avgdl: float
) -> dict[int, float]:
    """Document-side BM25 weights ``{term_index: saturated tf}`` (the engine applies IDF).

    >>> w = bm25_document_weights(["a", "b", "a"], k1=1.2, b=0.75, avgdl=3.0)
    >>> round(w[term_index("a")], 4), round(w[term_index("b")], 4)
    (1.375, 1.0)
    """
    counts = Counter(term_index(t) for t in terms)
    norm = k1 * (1.0 - b + b * len(terms) / avgdl)
    return {i: tf * (k1 + 1.0) / (tf + norm) for i, tf in counts.items()}


def bm25_query_weights(terms: Sequence[str]) -> dict[int, float]:
    """Query-side BM25 weights: how often each term occurs in the query.

    >>> bm25_query_weights(["a", "b", "a"]) == {term_index("a"): 2.0, term_index("b"): 1.0}
    True
    """
    return {i: float(n) for i, n in Counter(term_index(t) for t in terms).items()}


def payload_key(field: str) -> str:
    """The payload path of a document field, for native Qdrant filters.

    ``"id"`` is the caller's document id, ``"text"`` the text; any other name is a metadata
    key (quoted when it holds characters a Qdrant path would split on).

    >>> payload_key("lang"), payload_key("a.b"), payload_key("id"), payload_key("text")
    ('metadata.lang', 'metadata."a.b"', 'doc_id', 'text')
    """
    if not isinstance(field, str):
        msg = f"field must be str, got {type(field).__name__}"
        raise TypeError(msg)
    if field in ("id", "text"):
        return ID_FIELD if field == "id" else TEXT_FIELD
    return metadata_key(field)


def metadata_key(key: str) -> str:
    """The payload path of a metadata key, ``"id"`` and ``"text"`` included.

    >>> metadata_key("lang"), metadata_key("id"), metadata_key("größe")
    ('metadata.lang', 'metadata.id', 'metadata."größe"')
    """
    if not key or '"' in key:
        msg = f"metadata key {key!r} cannot be addressed in a Qdrant filter (empty or has '\"')"
        raise ValueError(msg)
    plain = key.isascii() and all(c.isalnum() or c in "_-" for c in key)
    return f"{METADATA_FIELD}.{key}" if plain else f'{METADATA_FIELD}."{key}"'


def vectors_config(record: Mapping[str, Any], on_disk: bool) -> tuple[dict[str, Any], Any]:
    """``(vectors_config, sparse_vectors_config)`` of a new collection with ``record``."""
    m = models()
    vectors = {
        COLBERT: m.VectorParams(
            size=record[COLBERT]["dim"],
            distance=m.Distance.DOT,
            multivector_config=m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM),
            hnsw_config=m.HnswConfigDiff(m=0),
            datatype=m.Datatype.FLOAT16 if record["storage"] == "float16" else m.Datatype.FLOAT32,
            on_disk=on_disk,
        )
    }
    if record[DENSE] is not None:
        vectors[DENSE] = m.VectorParams(size=record[DENSE]["dim"], distance=m.Distance.COSINE)
    sparse = {BM25: m.SparseVectorParams(modifier=m.Modifier.IDF)} if record[BM25] else None
    return vectors, sparse


def check_layout(name: str, info: Any) -> dict[str, Any]:
    """The record of an existing collection, after checking the engine's layout matches it."""
    m = models()
    record = (info.config.metadata or {}).get(RECORD_KEY)
    if not isinstance(record, dict) or record.get("format") != LAYOUT_FORMAT:
        msg = (
            f"the Qdrant collection {name!r} exists but was not created by lfm-retrievers "
            f"(no {RECORD_KEY!r} record in its metadata); choose another collection_name"
        )
        raise ValueError(msg)
    version = record.get("version")
    if not isinstance(version, int) or version > LAYOUT_VERSION:
        msg = (
            f"the Qdrant collection {name!r} has layout v{version}; this lfm-retrievers reads "
            f"up to v{LAYOUT_VERSION}: upgrade lfm-retrievers"
        )
        raise ValueError(msg)
    vectors = info.config.params.vectors
    vectors = vectors if isinstance(vectors, dict) else {}
    sparse = info.config.params.sparse_vectors or {}
    col = vectors.get(COLBERT)
    ok = (
        col is not None
        and col.multivector_config is not None
        and col.multivector_config.comparator == m.MultiVectorComparator.MAX_SIM
        and col.size == record[COLBERT]["dim"]
        and (DENSE in vectors) == (record[DENSE] is not None)
        and (BM25 in sparse) == (record[BM25] is not None)
    )
    if not ok:
        msg = (
            f"the Qdrant collection {name!r} does not match its lfm-retrievers record (it has "
            f"vectors {sorted(vectors)} and sparse vectors {sorted(sparse)}); it was altered "
            "outside lfm-retrievers"
        )
        raise ValueError(msg)
    if record[BM25] is not None and record[BM25].get("term_hash") != TERM_HASH:
        msg = (
            f"the Qdrant collection {name!r} hashes BM25 terms with "
            f"{record[BM25].get('term_hash')!r}; this lfm-retrievers uses {TERM_HASH!r}"
        )
        raise ValueError(msg)
    return record


def mode_parts(mode: str) -> set[str]:
    """The vectors a search mode uses.

    >>> sorted(mode_parts("hybrid")), sorted(mode_parts("bm25+colbert"))
    (['bm25', 'colbert', 'dense'], ['bm25', 'colbert'])
    """
    return {COLBERT, DENSE, BM25} if mode == "hybrid" else set(mode.split("+"))


class QdrantWriteError(RuntimeError):
    """An upload that failed for good, naming the ids stored and the ids not stored.

    ``stored_ids`` are in the collection, ``unstored_ids`` are not; adding them again is safe
    (point ids are deterministic).
    """

    def __init__(self, msg: str, stored_ids: list[str], unstored_ids: list[str]) -> None:
        """Keep the ids next to the message."""
        super().__init__(msg)
        self.stored_ids = stored_ids
        self.unstored_ids = unstored_ids


def is_transient(exc: BaseException) -> bool:
    """Whether a client error is worth retrying.

    Connection errors, timeouts, HTTP 408/429/5xx and gRPC UNAVAILABLE and the like are.

    >>> is_transient(ConnectionResetError()), is_transient(ValueError("bad vector"))
    (True, False)
    """
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if type(exc).__name__ == "ResponseHandlingException":  # qdrant-client's transport wrapper
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status in _RETRY_STATUS
    code = getattr(exc, "code", None)
    if callable(code):  # grpc.RpcError
        try:
            return getattr(code(), "name", "") in _RETRY_GRPC
        except Exception:  # pragma: no cover - a broken error object is not retried
            return False
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx comes with qdrant-client
        return False
    return isinstance(exc, httpx.TransportError)


def show(ids: Sequence[str], limit: int = 10) -> str:
    """A short rendering of many ids."""
    head = ", ".join(repr(i) for i in ids[:limit])
    return f"[{head}" + (f", ... ({len(ids) - limit} more)]" if len(ids) > limit else "]")


def unique_ids(ids: Iterable[str]) -> list[str]:
    """``ids`` without repeats, in order."""
    return list(dict.fromkeys(ids))


def check_wanted(
    *,
    colbert: Any,
    dense: Any,
    bm25: object,
    analyzer: object,
    language: object,
    storage: object,
    k1: object,
    b: object,
    avgdl: object,
) -> dict[str, Any]:
    """The collection settings a :class:`QdrantIndex` asks for, checked (``None``: any)."""
    from lfm_retrievers.indexes.analyzers import get_analyzer

    if bm25 is not None and not isinstance(bm25, bool):
        msg = f"bm25 must be a bool or None, got {type(bm25).__name__}: {bm25!r}"
        raise TypeError(msg)
    if storage is not None:
        check_choice(storage, "storage", STORAGES)
    if analyzer is not None:
        check_str(analyzer, "analyzer")
        assert isinstance(analyzer, str)
        if analyzer.lower() != "model":
            analyzer = get_analyzer(analyzer)[0]  # validates the name
    if language is not None:
        check_str(language, "language")
    if bm25 is False and (analyzer or language):
        msg = "analyzer= and language= need the BM25 vector; drop them or set bm25=True"
        raise ValueError(msg)
    check_model_arg(colbert, COLBERT, allow_false=False)
    check_model_arg(dense, DENSE, allow_false=True)
    return {
        "colbert": colbert,
        "dense": dense,
        "bm25": bm25,
        "analyzer": analyzer,
        "language": language,
        "storage": storage,
        "k1": None if k1 is None else check_float(k1, "bm25_k1", 0.0),
        "b": None if b is None else check_float(b, "bm25_b", 0.0, 1.0),
        "avgdl": None if avgdl is None else check_float(avgdl, "bm25_avgdl", 1e-9),
    }


def check_model_arg(value: object, name: str, *, allow_false: bool) -> None:
    """A model argument: a name or folder, an ``EncoderSpec``, an encoder of kind ``name``."""
    from lfm_retrievers.models.registry import EncoderSpec

    if value is None or isinstance(value, str | os.PathLike | EncoderSpec):
        return
    if (allow_false and value is False) or getattr(value, "kind", None) == name:
        return
    want = "DenseEncoder" if name == DENSE else "ColBERTEncoder"
    also = ", False" if allow_false else ""
    msg = (
        f"{name} must be a model name or folder, an EncoderSpec, a {want}{also} or None, "
        f"got {type(value).__name__}"
    )
    raise TypeError(msg)


def model_record(encoder: Any) -> dict[str, Any]:
    """What the collection records of a model: name, fingerprint, width."""
    return {
        "name": str(encoder.name),
        "fingerprint": str(encoder.fingerprint),
        "dim": int(encoder.dim),
    }


def check_search(
    mode: object,
    k: object,
    candidates: object,
    score: object,
    record: Mapping[str, Any],
    name: str,
) -> tuple[str, set[str]]:
    """A search's ``(mode, vectors it uses)``, every argument checked against the layout."""
    from lfm_retrievers.scoring import SCORE_MODES

    check_positive_int(k, "k")
    check_positive_int(candidates, "candidates")
    check_choice(score, "score", SCORE_MODES)
    check_choice(mode, "mode", SEARCH_MODES)
    assert isinstance(mode, str)
    parts = mode_parts(mode)
    missing = sorted(p for p in parts if p != COLBERT and record[p] is None)
    if missing:
        usable = [x for x in SEARCH_MODES if not mode_parts(x) & set(missing)]
        msg = (
            f"mode {mode!r} needs the {' and '.join(missing)} vector, which collection "
            f"{name!r} does not hold; usable modes: {usable}"
        )
        raise ValueError(msg)
    if score != "raw" and COLBERT not in parts:
        msg = f"score={score!r} applies to the MaxSim modes, not mode={mode!r}"
        raise ValueError(msg)
    return mode, parts


def check_same_layout(record: Mapping[str, Any], want: Mapping[str, Any], name: str) -> None:
    """``ValueError`` naming every setting asked for that differs from the collection's."""
    bm = record[BM25] or {}
    keys = ("analyzer", "language", "k1", "b", "avgdl")
    asked = {
        "dense": None if want["dense"] is None else want["dense"] is not False,
        "bm25": want["bm25"],
        "storage": want["storage"],
        **{f"bm25 {k}": want[k] for k in keys},
    }
    has = {
        "dense": record[DENSE] is not None,
        "bm25": record[BM25] is not None,
        "storage": record["storage"],
        **{f"bm25 {k}": bm.get(k) for k in keys},
    }
    problems = [
        f"{key}: the collection has {has[key]!r}, this index asks for {value!r}"
        for key, value in asked.items()
        if value is not None and value != has[key]
    ]
    if problems:
        msg = (
            f"the Qdrant collection {name!r} was built differently; nothing was written: "
            + "; ".join(problems)
        )
        raise ValueError(msg)
