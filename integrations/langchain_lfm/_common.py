"""Shared plumbing of the LangChain adapters: the shared encoder, input checks, ids, async.

Every adapter gets its model through ``lfm_retrievers.get_encoder``, so an ``LFMEmbeddings``,
a retriever and a reranker over the same (model, device, dtype, quantize) hold one copy of
the weights. Async entry points run the blocking work on one small, bounded thread pool,
so the event loop stays free and many concurrent calls do not oversubscribe the CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from lfm_retrievers.seam import require_extra as require

require("langchain", "langchain_core", "langchain_lfm")

from langchain_core.documents import Document  # noqa: E402
from pydantic import BeforeValidator  # noqa: E402

from lfm_retrievers.seam import (  # noqa: E402
    check_ids,
    check_str,
    check_texts,
)

T = TypeVar("T")

DEFAULT_EMBEDDING_MODEL = "LiquidAI/LFM2.5-Embedding-350M"
DEFAULT_COLBERT_MODEL = "LiquidAI/LFM2.5-ColBERT-350M"
ScoreMode = Literal["raw", "mean"]
#: What runs the model: eager torch or ONNX Runtime (``lfm_retrievers`` ``backend=``).
Backend = Literal["torch", "onnx"]


def path_to_str(value: Any) -> Any:
    """Pydantic ``before`` validator body: accept ``pathlib.Path`` for model and index paths."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def none_is_auto(value: Any) -> Any:
    """Pydantic ``before`` validator body: ``device=None`` / ``dtype=None`` mean ``"auto"``."""
    return "auto" if value is None else value


#: A model field: a hub id or a local folder (``pathlib.Path`` accepted, stored as ``str``).
ModelPath = Annotated[str, BeforeValidator(path_to_str)]
#: A device or dtype field where ``None`` means ``"auto"``.
AutoStr = Annotated[str, BeforeValidator(none_is_auto)]


def check_query(query: object) -> str:
    """A query must be a ``str`` (valid UTF-8); anything else is a ``TypeError`` naming it."""
    return check_str(query, "query")


def check_documents(documents: object, what: str = "documents") -> list[Document]:
    """A sequence of LangChain ``Document`` objects whose text is valid UTF-8.

    A bare Document (or str) is a TypeError; a lone surrogate in a text is a ValueError naming
    the document's position and id.
    """
    if isinstance(documents, Document | str | bytes) or not isinstance(documents, Sequence):
        msg = f"{what} must be a list of Document, got {type(documents).__name__}"
        raise TypeError(msg)
    for i, doc in enumerate(documents):
        if not isinstance(doc, Document):
            msg = f"{what}[{i}] must be a langchain_core Document, got {type(doc).__name__}"
            raise TypeError(msg)
        label = f"{what}[{i}].page_content" + (f" (id {doc.id!r})" if doc.id else "")
        check_str(doc.page_content, label)
    return list(documents)


def texts_to_documents(
    texts: Iterable[str],
    metadatas: Sequence[dict[str, Any]] | None = None,
    ids: Sequence[str] | None = None,
) -> list[Document]:
    """``from_texts`` helper: one Document per text, with its metadata and id when given."""
    texts = check_texts(texts)
    if ids is not None:
        ids = check_ids(ids, len(texts))
    if metadatas is not None:
        if isinstance(metadatas, str | bytes | Mapping) or not isinstance(metadatas, Sequence):
            kind = type(metadatas).__name__
            msg = f"metadatas must be a list of dicts (one per text), got {kind}"
            raise TypeError(msg)
        if len(metadatas) != len(texts):
            msg = f"metadatas must have one entry per text ({len(texts)}), got {len(metadatas)}"
            raise ValueError(msg)
    return [
        Document(
            page_content=text,
            metadata=dict(metadatas[i]) if metadatas is not None else {},
            id=ids[i] if ids is not None else None,
        )
        for i, text in enumerate(texts)
    ]


def generated_id(text: str, metadata: dict[str, Any]) -> str:
    """A stable id for a document without one: a hash of its text and metadata."""
    payload = json.dumps([text, metadata], sort_keys=True, ensure_ascii=False, default=str)
    return "lfm-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def document_ids(documents: Sequence[Document]) -> list[str]:
    """Each document's own id, or a stable generated one (same content -> same id).

    An explicit id given twice is a ValueError naming it (nothing is renamed behind the
    caller's back); identical documents *without* ids get ``-2``, ``-3``, ... suffixes so the
    generated ids stay unique.
    """
    explicit = [doc.id for doc in documents if doc.id not in (None, "")]
    check_ids([str(i) for i in explicit], name="document ids")
    ids: list[str] = []
    seen: set[str] = set(map(str, explicit))
    for doc in documents:
        if doc.id not in (None, ""):
            ids.append(str(doc.id))
            continue
        base = generated_id(doc.page_content, doc.metadata)
        doc_id, n = base, 1
        while doc_id in seen:
            n += 1
            doc_id = f"{base}-{n}"
        seen.add(doc_id)
        ids.append(doc_id)
    return ids


def scored_copy(
    doc: Document, relevance_score: float, *, doc_id: str | None = None, **extra: Any
) -> Document:
    """A new Document with copied metadata plus ``relevance_score`` (the input is untouched)."""
    metadata = {**doc.metadata, **extra, "relevance_score": float(relevance_score)}
    return Document(
        page_content=doc.page_content,
        metadata=metadata,
        id=doc.id if doc_id is None else doc_id,
    )
