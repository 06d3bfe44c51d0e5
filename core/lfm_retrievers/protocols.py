"""What the scoring, rerank, explain and cache functions need of an encoder, as Protocols.

These functions sit below :mod:`lfm_retrievers.models` and never import it: they work with
anything that encodes queries and documents into vectors (the torch encoders, another backend,
or a test double). :class:`Tokenized` is here for the same reason: it is the tokenization
record the ColBERT encoders produce and :func:`~lfm_retrievers.explain.explain` reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Tokenized:
    """One text as the model sees it, with character spans into the original text."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    attention: list[int]
    keep: list[bool]


@runtime_checkable
class TextEncoder(Protocol):
    """Encodes queries and documents; ``kind`` is ``"dense"`` or ``"colbert"``."""

    @property
    def kind(self) -> str:
        """``"dense"`` or ``"colbert"``."""
        ...

    @property
    def name(self) -> str:
        """The model's name or path."""
        ...

    @property
    def fingerprint(self) -> str:
        """A content identity of the model's weights and tokenizer."""
        ...

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    def encode_queries(
        self, texts: Sequence[str], *, batch_size: int = ..., show_progress: bool | None = ...
    ) -> Any:
        """One array per query."""
        ...

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int = ..., show_progress: bool | None = ...
    ) -> Any:
        """One array per document."""
        ...


@runtime_checkable
class TokenEncoder(TextEncoder, Protocol):
    """A ColBERT-style encoder that also exposes its tokenization (for explanations)."""

    def tokenize(self, texts: Sequence[str], *, is_query: bool) -> list[Tokenized]:
        """The model-side tokenization of each text, with kept positions and spans."""
        ...


VectorList = list[np.ndarray]

__all__ = ["TextEncoder", "TokenEncoder", "Tokenized"]
