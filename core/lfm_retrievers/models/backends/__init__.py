"""Backends: what runs an encoder's trunk and head once its texts are tokenized and batched.

``"torch"`` runs the native trunk eagerly (:mod:`.torch_backend`); ``"onnx"`` runs the same
trunk and head exported once to ONNX (:mod:`.onnx_export`) in an ONNX Runtime session
(:mod:`.onnx_runtime`). Both take the same right-padded batch and return the same L2-normalised
vectors, so tokenization, batching and the ColBERT query/document contract are shared.
"""

from __future__ import annotations

BACKENDS = ("torch", "onnx")

__all__ = ["BACKENDS"]
