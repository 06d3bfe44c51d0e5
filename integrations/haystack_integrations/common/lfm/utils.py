"""Shared plumbing of the Haystack components: devices, the shared encoder, checks, async.

The three ``lfm`` leaves (embedders, rankers, retrievers) import from here; the namespace
levels above them may hold no code. Every component gets its model through
``lfm_retrievers.get_encoder``, so components over the same (model, device, dtype, quantize)
share one copy of the weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TypeVar

import lfm_retrievers.seam as seam
from lfm_retrievers.seam import require_extra as require

require("haystack", "haystack", "haystack_integrations.components.*.lfm")

from haystack import Document  # noqa: E402
from haystack.utils import ComponentDevice  # noqa: E402

from lfm_retrievers import (  # noqa: E402
    ColBERTEncoder,
    DenseEncoder,
    get_colbert_encoder,
    get_dense_encoder,
)

T = TypeVar("T")

DEFAULT_EMBEDDING_MODEL = "LiquidAI/LFM2.5-Embedding-350M"
DEFAULT_COLBERT_MODEL = "LiquidAI/LFM2.5-ColBERT-350M"
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
QUANTIZE_CHOICES = (None, "int8")
BACKEND_CHOICES = ("torch", "onnx")


# ---------------------------------------------------------------- configuration checks


def model_to_str(model: str | os.PathLike[str]) -> str:
    """Accept a hub id, a known name or a local folder (``str`` or ``Path``); store a ``str``."""
    if isinstance(model, os.PathLike):
        return os.fspath(model)
    if not isinstance(model, str) or not model:
        msg = f"model must be a hub id or a local checkpoint folder, got {model!r}"
        raise TypeError(msg)
    return model


def check_device(device: object) -> ComponentDevice | None:
    """``None`` (auto: cuda > mps > xpu > cpu, resolved at warm-up) or a single ComponentDevice.

    ``None`` is kept as ``None`` rather than resolved here, so a serialized pipeline stays
    portable between a GPU machine and a laptop.
    """
    if device is None:
        return None
    if not isinstance(device, ComponentDevice):
        msg = (
            "device must be a haystack.utils.ComponentDevice or None, "
            f"got {type(device).__name__}: {device!r}"
        )
        raise ValueError(msg)
    if device.has_multiple_devices:
        msg = (
            "device maps are not supported: pass a single device, "
            "e.g. ComponentDevice.from_str('cuda:0')"
        )
        raise ValueError(msg)
    return device


def device_to_str(device: ComponentDevice | None) -> str:
    """The core's device spelling: ``"auto"`` for None, else the torch string (``"cuda:0"``)."""
    return "auto" if device is None else device.to_torch_str()


def device_to_dict(device: ComponentDevice | None) -> dict[str, Any] | None:
    """The device serialized for ``to_dict`` (None stays None, meaning auto)."""
    return None if device is None else device.to_dict()


#: The core's check, re-exported for the leaves: ``check_choice(value, name, choices)``.
check_choice = seam.check_choice


def check_top_k(top_k: object, name: str = "top_k") -> int:
    """A positive int: ``TypeError`` for another type (bool included), ``ValueError`` if < 1."""
    return seam.check_positive_int(top_k, name)


def check_batch_size(batch_size: object) -> int:
    """A positive int: ``TypeError`` for another type, ``ValueError`` if < 1."""
    return seam.check_batch_size(batch_size)


def check_threshold(value: object, name: str = "score_threshold") -> float | None:
    """None, or a finite number as a float: ``TypeError`` for a non-number, ``ValueError`` NaN."""
    return seam.check_optional_float(value, name)


def check_query(query: object, component: str) -> str:
    """The query, if it is a str of valid UTF-8 (``TypeError`` / ``ValueError`` otherwise)."""
    return seam.check_str(query, f"{component}: query")


def check_documents(documents: object, component: str) -> list[Document]:
    """A list (or tuple) of ``haystack.Document`` whose content is valid UTF-8.

    ``TypeError`` for anything else; ``ValueError`` naming the position and id of a document
    whose text holds a lone surrogate.
    """
    if not isinstance(documents, list | tuple):
        msg = (
            f"{component}: documents must be a list of haystack.Document, got "
            f"{type(documents).__name__}: {documents!r:.80}"
        )
        raise TypeError(msg)
    for i, doc in enumerate(documents):
        if not isinstance(doc, Document):
            msg = (
                f"{component}: documents[{i}] must be a haystack.Document, got "
                f"{type(doc).__name__}: {doc!r:.60}"
            )
            raise TypeError(msg)
        if doc.content is not None:
            seam.check_str(doc.content, f"{component}: documents[{i}].content (id {doc.id!r})")
    return list(documents)


def check_meta_fields(fields: object) -> list[str] | None:
    """None, or ``meta_fields_to_embed`` as a list of str; ``TypeError`` otherwise."""
    if fields is None:
        return None
    if isinstance(fields, str) or not isinstance(fields, Sequence):
        msg = f"meta_fields_to_embed must be a list of str or None, got {fields!r}"
        raise TypeError(msg)
    out = list(fields)
    if not all(isinstance(f, str) for f in out):
        msg = f"meta_fields_to_embed must hold str only, got {out!r}"
        raise TypeError(msg)
    return out


# ---------------------------------------------------------------- documents


def split_missing_content(
    documents: Sequence[Document], logger: logging.Logger, component: str
) -> tuple[list[int], list[str]]:
    """Indices of the documents with text, and the ids of those without (warned about)."""
    keep: list[int] = []
    skipped: list[str] = []
    for i, doc in enumerate(documents):
        if doc.content is None:
            skipped.append(doc.id)
        else:
            keep.append(i)
    if skipped:
        logger.warning(
            "%s skips %d document(s) with content=None: ids %s", component, len(skipped), skipped
        )
    return keep, skipped


def text_to_encode(doc: Document, meta_fields: Sequence[str] | None, separator: str) -> str:
    """The selected meta values (those present and not None), then the content, joined."""
    parts = [str(doc.meta[key]) for key in meta_fields or () if doc.meta.get(key) is not None]
    parts.append(doc.content or "")
    return separator.join(parts)


def deduplicate_by_id(documents: Sequence[Document]) -> list[Document]:
    """One document per id, at its first position; the highest-scored duplicate wins.

    Same rule as Haystack's own rankers (a score of None counts as lowest).
    """
    best: dict[str, Document] = {}
    for doc in documents:
        current = best.get(doc.id)
        if current is None or _score(doc) > _score(current):
            best[doc.id] = doc
    return list(best.values())


def _score(doc: Document) -> float:
    return float("-inf") if doc.score is None else doc.score


def copy_with(doc: Document, **changes: Any) -> Document:
    """``dataclasses.replace`` with its own ``meta`` dict.

    The copy gets its own ``meta`` so the caller's document stays untouched.
    """
    return replace(doc, **{"meta": dict(doc.meta), **changes})


# ---------------------------------------------------------------- shared encoders


def dense_encoder(
    model: str,
    device: ComponentDevice | None,
    dtype: str,
    quantize: str | None,
    backend: str = "torch",
) -> DenseEncoder:
    """The process-wide shared dense encoder for this configuration (loads on first call)."""
    return get_dense_encoder(
        model, device=device_to_str(device), dtype=dtype, quantize=quantize, backend=backend
    )


def colbert_encoder(
    model: str,
    device: ComponentDevice | None,
    dtype: str,
    quantize: str | None,
    backend: str = "torch",
) -> ColBERTEncoder:
    """The process-wide shared ColBERT encoder for this configuration (loads on first call)."""
    return get_colbert_encoder(
        model, device=device_to_str(device), dtype=dtype, quantize=quantize, backend=backend
    )
