"""The seam between configuration and loaded weights: :class:`EncoderSpec` and shared encoders.

An adapter (LangChain, LlamaIndex, Haystack), an index or a pipeline describes the model it
wants as an :class:`EncoderSpec` (model, device, dtype, quantize, backend). :func:`get_encoder`
turns a spec into a loaded encoder and keeps one instance per resolved key, so an Embeddings, a
Retriever and a Reranker in one process hold one copy of the weights. :func:`load` always
loads a fresh, private encoder.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch

from lfm_retrievers._validation import check_choice, check_str

from .backends import BACKENDS
from .checkpoints import DEFAULT_COLBERT_MODEL, DEFAULT_DENSE_MODEL, read_checkpoint, resolve_path
from .devices import dtype_name, resolve_device, resolve_dtype
from .encoders import ColBERTEncoder, DenseEncoder

Expect = Literal["dense", "colbert"]
AnyEncoder = DenseEncoder | ColBERTEncoder


@dataclass(frozen=True)
class EncoderSpec:
    """Which model to run, and how: the one configuration every adapter passes through.

    Args:
        model: A hub id, a known short name or a local checkpoint folder.
        device: ``"auto"`` (cuda > mps > xpu > cpu) or a torch device string.
        dtype: ``"auto"`` (float32 on CPU, bfloat16 on capable GPUs), ``"float32"``,
            ``"bfloat16"`` or ``"float16"``.
        quantize: ``None`` or ``"int8"`` (dynamic int8 weights on CPU: ONNX Runtime's with
            ``backend="onnx"``; with ``"torch"``, ``torch.ao``, which torch deprecates).
        backend: ``"torch"`` (eager) or ``"onnx"`` (ONNX Runtime; needs the ``onnx`` extra).
    """

    model: str
    device: str = "auto"
    dtype: str = "auto"
    quantize: str | None = None
    backend: str = "torch"

    def __post_init__(self) -> None:
        """Accept ``pathlib.Path`` models and ``None`` for the auto device and dtype."""
        if isinstance(self.model, os.PathLike):
            object.__setattr__(self, "model", os.fspath(self.model))
        if not isinstance(self.model, str):
            msg = f"model must be a str or a path, got {type(self.model).__name__}"
            raise TypeError(msg)
        for name in ("device", "dtype"):
            value = getattr(self, name)
            if value is None:
                object.__setattr__(self, name, "auto")
            elif isinstance(value, torch.device | torch.dtype):
                text = str(value).replace("torch.", "")
                object.__setattr__(self, name, text)
            elif not isinstance(value, str):
                msg = f"{name} must be a str, got {type(value).__name__}: {value!r}"
                raise TypeError(msg)
        check_choice(check_str(self.backend, "backend"), "backend", BACKENDS)

    def with_model(self, model: str | os.PathLike[str]) -> EncoderSpec:
        """The same settings for another model."""
        return replace(self, model=os.fspath(model))

    def load(self, expect: Expect | None = None) -> AnyEncoder:
        """The shared encoder of this spec (see :func:`get_encoder`)."""
        return get_encoder(self, expect=expect)


def _check_kind(name: str, kind: str, expect: str | None) -> None:
    check_choice(expect, "expect", (None, "dense", "colbert"))
    if expect is not None and kind != expect:
        hint = DEFAULT_DENSE_MODEL if expect == "dense" else DEFAULT_COLBERT_MODEL
        msg = (
            f"model {name!r} is a {kind} checkpoint, but a {expect} one is needed here "
            f"(e.g. {hint})"
        )
        raise ValueError(msg)


def load(
    name_or_path: str | os.PathLike[str],
    *,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = "auto",
    quantize: str | None = None,
    expect: Expect | None = None,
    backend: str = "torch",
) -> AnyEncoder:
    """Load a checkpoint (local folder, known name or hub id) as the right kind of encoder.

    The encoder is private to the caller; use :func:`get_encoder` to share one. With
    ``backend="onnx"`` the model is exported once (cached) and run by ONNX Runtime; a folder
    written by :func:`lfm_retrievers.export_onnx` loads with ``backend="onnx"`` directly.
    """
    ckpt = read_checkpoint(name_or_path)
    _check_kind(ckpt.name, ckpt.kind, expect)
    cls = DenseEncoder if ckpt.kind == "dense" else ColBERTEncoder
    return cls(ckpt, device=device, dtype=dtype, quantize=quantize, backend=backend)


_SHARED: dict[tuple[str, str, str, str | None, str], AnyEncoder] = {}
_SHARED_LOCK = threading.Lock()


def _as_spec(
    source: EncoderSpec | str | os.PathLike[str],
    device: str | torch.device | None,
    dtype: str | torch.dtype | None,
    quantize: str | None,
    backend: str,
) -> EncoderSpec:
    if isinstance(source, EncoderSpec):
        return source
    return EncoderSpec(source, device, dtype, quantize, backend)  # type: ignore[arg-type]


def get_encoder(
    name_or_path: EncoderSpec | str | os.PathLike[str],
    *,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = "auto",
    quantize: str | None = None,
    expect: Expect | None = None,
    backend: str = "torch",
) -> AnyEncoder:
    """The shared encoder of a model: one per (model, device, dtype, quantize, backend).

    ``name_or_path`` may be an :class:`EncoderSpec`, whose settings then replace the keyword
    arguments. ``expect`` makes a checkpoint of the other kind a ``ValueError``.
    """
    spec = _as_spec(name_or_path, device, dtype, quantize, backend)
    if expect not in (None, "dense", "colbert"):
        _check_kind(spec.model, "", expect)
    path = str(resolve_path(spec.model))
    dev = resolve_device(spec.device)
    dtype_key = "auto" if spec.backend == "onnx" and spec.dtype == "auto" else None
    dtype_key = dtype_key or dtype_name(resolve_dtype(spec.dtype, dev))
    key = (path, str(dev), dtype_key, spec.quantize, spec.backend)
    with _SHARED_LOCK:
        enc = _SHARED.get(key)
        if enc is None:
            enc = load(
                path,
                device=dev if spec.backend == "torch" else spec.device,
                dtype=spec.dtype,
                quantize=spec.quantize,
                backend=spec.backend,
            )
            _SHARED[key] = enc
    _check_kind(spec.model, enc.kind, expect)
    return enc


def get_dense_encoder(
    name_or_path: EncoderSpec | str | os.PathLike[str],
    *,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = "auto",
    quantize: str | None = None,
    backend: str = "torch",
) -> DenseEncoder:
    """The shared encoder of a dense checkpoint; ValueError if the checkpoint is ColBERT."""
    enc = get_encoder(
        name_or_path,
        device=device,
        dtype=dtype,
        quantize=quantize,
        expect="dense",
        backend=backend,
    )
    assert isinstance(enc, DenseEncoder)
    return enc


def get_colbert_encoder(
    name_or_path: EncoderSpec | str | os.PathLike[str],
    *,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = "auto",
    quantize: str | None = None,
    backend: str = "torch",
) -> ColBERTEncoder:
    """The shared encoder of a ColBERT checkpoint; ValueError if the checkpoint is dense."""
    enc = get_encoder(
        name_or_path,
        device=device,
        dtype=dtype,
        quantize=quantize,
        expect="colbert",
        backend=backend,
    )
    assert isinstance(enc, ColBERTEncoder)
    return enc


def resolve_encoder(source: Any, expect: Expect) -> Any:
    """An encoder from whatever a caller passed: a loaded encoder, a spec, a name or a path.

    Loaded encoders (or test doubles) must have ``kind == expect`` (``TypeError`` otherwise);
    names, paths and specs go through :func:`get_encoder`.
    """
    if isinstance(source, EncoderSpec | str | os.PathLike):
        return get_encoder(source, expect=expect)
    kind = getattr(source, "kind", None)
    if kind != expect:
        want = "DenseEncoder" if expect == "dense" else "ColBERTEncoder"
        msg = (
            f"expected a {want}, an EncoderSpec, or a model name or path, got "
            f"{type(source).__name__}" + (f" (a {kind} encoder)" if kind else "")
        )
        raise TypeError(msg)
    return source


def clear_encoder_cache() -> None:
    """Forget the shared encoders (frees their weights once no one else holds them)."""
    with _SHARED_LOCK:
        _SHARED.clear()


__all__ = [
    "EncoderSpec",
    "clear_encoder_cache",
    "get_colbert_encoder",
    "get_dense_encoder",
    "get_encoder",
    "load",
    "resolve_encoder",
]
