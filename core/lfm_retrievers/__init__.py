"""Liquid AI LFM2.5 retrieval models, loaded natively: dense embeddings and ColBERT.

>>> from lfm_retrievers import load
>>> encoder = load("LiquidAI/LFM2.5-ColBERT-350M")  # or a local checkpoint folder

Importing this package imports no retrieval framework; the LangChain, LlamaIndex and
Haystack adapters live in ``langchain_lfm``, ``llama_index.*.lfm*`` and
``haystack_integrations.components.*.lfm``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .checkpoints import (
    CheckpointError,
    CheckpointNotFoundError,
    ColBERTSettings,
    ModelInfo,
    list_models,
)
from .devices import resolve_device, resolve_dtype
from .encoders import (
    ColBERTEncoder,
    DenseEncoder,
    PaddedVectors,
    Tokenized,
    clear_encoder_cache,
    get_encoder,
    load,
)

try:
    __version__ = version("lfm-retrievers")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "ColBERTEncoder",
    "ColBERTSettings",
    "DenseEncoder",
    "ModelInfo",
    "PaddedVectors",
    "Tokenized",
    "__version__",
    "clear_encoder_cache",
    "get_encoder",
    "list_models",
    "load",
    "resolve_device",
    "resolve_dtype",
]
