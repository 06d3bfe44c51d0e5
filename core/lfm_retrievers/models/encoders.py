"""Encoders: text in, vectors out, for the dense and the ColBERT checkpoints.

The tokenization contract of each kind (prompts, [Q]/[D] markers, query expansion, skiplist)
lives here and is read from the checkpoint, never hard-coded (contract sections 6.1-6.3).
Batches are sorted by length and right-padded; pad positions are zeroed before every conv,
so a text's vectors do not depend on what else is in its batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from lfm_retrievers._optional import require
from lfm_retrievers._validation import check_batch_size, check_choice, check_str, check_texts
from lfm_retrievers.cache import EmbeddingCache
from lfm_retrievers.errors import CheckpointError
from lfm_retrievers.explain import Explanation, explain
from lfm_retrievers.protocols import Tokenized
from lfm_retrievers.rerank import RerankResult, rerank

from .backends import BACKENDS
from .backends.torch_backend import TorchRunner
from .checkpoints import Checkpoint, ColBERTSettings, Kind, is_onnx_export
from .devices import dtype_name, resolve_device, resolve_dtype
from .files import load_tokenizer, read_json
from .trunk import Lfm2Trunk

if TYPE_CHECKING:
    from .backends.onnx_runtime import OnnxRunner

logger = logging.getLogger(__name__)

QUANTIZE_CHOICES = (None, "int8")
_PROGRESS_MIN_BATCHES = 4


@dataclass(frozen=True)
class PaddedVectors:
    """Per-token vectors of several texts in one padded tensor, for fast scoring."""

    vectors: torch.Tensor  # (n, L, dim) float32
    mask: torch.Tensor  # (n, L) bool

    def to_list(self) -> list[np.ndarray]:
        """One ``(n_i, dim)`` array per text, holding only its unmasked vectors."""
        return [v[m].numpy() for v, m in zip(self.vectors, self.mask, strict=True)]


def _load_tokenizer(path: Path) -> Tokenizer:
    tok = load_tokenizer(path / "tokenizer.json")
    tok.no_truncation()
    tok.no_padding()
    return tok


def _special_token_id(path: Path, tok: Tokenizer, key: str) -> int | None:
    """Id of a special token named in tokenizer_config / special_tokens_map (e.g. 'eos_token')."""
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        file = path / name
        if not file.exists():
            continue
        value = read_json(file, dict).get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str) and tok.token_to_id(value) is not None:
            return tok.token_to_id(value)
    return None


def _onnx_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` with ``backend="onnx"``: cuda only where ONNX Runtime has its provider."""
    if device is not None and device != "auto":
        return resolve_device(device)
    found = resolve_device("auto")
    if found.type == "cuda":
        from .backends.onnx_runtime import GPU_PROVIDERS

        ort = require("onnx", "onnxruntime", "backend='onnx'")
        if GPU_PROVIDERS["cuda"] in ort.get_available_providers():
            return found
    if found.type != "cpu":
        logger.info("backend='onnx': device='auto' resolved to cpu (no ONNX Runtime provider)")
    return torch.device("cpu")


class Encoder:
    """Shared machinery: lazy weights, device/dtype, sorted batching, progress, truncation notes.

    ``backend`` chooses what runs the trunk and head: ``"torch"`` (eager, the default) or
    ``"onnx"`` (ONNX Runtime over an export made once per model and cached; see
    :func:`lfm_retrievers.export_onnx`). Tokenization and batching are the same for both.
    ``quantize="int8"`` with ``"torch"`` uses ``torch.ao`` dynamic quantization, which torch
    deprecates; prefer ``backend="onnx", quantize="int8"``.
    """

    kind: Kind

    def __init__(
        self,
        checkpoint: Checkpoint,
        *,
        device: str | torch.device | None = "auto",
        dtype: str | torch.dtype | None = "auto",
        quantize: str | None = None,
        backend: str = "torch",
    ) -> None:
        check_choice(quantize, "quantize", QUANTIZE_CHOICES)
        check_choice(check_str(backend, "backend"), "backend", BACKENDS)
        self.checkpoint = checkpoint
        self.backend = backend
        self.device = resolve_device(device) if backend == "torch" else _onnx_device(device)
        if backend == "onnx" and dtype in (None, "auto"):
            self.dtype = torch.float32
        else:
            self.dtype = resolve_dtype(dtype, self.device)
        if quantize == "int8" and (self.device.type != "cpu" or self.dtype != torch.float32):
            msg = (
                "quantize='int8' runs on cpu in float32 only, "
                f"not {self.device}/{dtype_name(self.dtype)}"
            )
            raise ValueError(msg)
        self.quantize = quantize
        self._warned_truncation = False
        self.max_batch_tokens = 4096 if self.device.type == "cpu" else 65536
        self.tokenizer = _load_tokenizer(checkpoint.path)
        n_ids = max(self.tokenizer.get_vocab(with_added_tokens=True).values(), default=-1) + 1
        if n_ids > checkpoint.trunk.vocab_size:
            msg = (
                f"{checkpoint.path / 'tokenizer.json'} has {n_ids} token ids but the embedding "
                f"table has {checkpoint.trunk.vocab_size} rows (config.json vocab_size): the "
                "tokenizer belongs to another model; re-download the checkpoint"
            )
            raise CheckpointError(msg)
        self.bos_id = _special_token_id(checkpoint.path, self.tokenizer, "bos_token")
        if self.bos_id is None:
            self.bos_id = checkpoint.raw_config.get("bos_token_id")
        probe = self.tokenizer.encode("a").ids
        self._add_bos = self.bos_id is not None and (not probe or probe[0] != self.bos_id)
        self.runner: TorchRunner | OnnxRunner = self._load_runner()

    def _load_runner(self) -> TorchRunner | OnnxRunner:
        exported = is_onnx_export(self.checkpoint.path)
        if self.backend == "torch":
            if exported:
                msg = (
                    f"{self.checkpoint.path} is an ONNX export (no torch weights); "
                    "load it with backend='onnx'"
                )
                raise ValueError(msg)
            return TorchRunner(
                self.checkpoint, device=self.device, dtype=self.dtype, quantize=self.quantize
            )
        from .backends.onnx_export import cached_export, check_export_settings, read_export
        from .backends.onnx_runtime import OnnxRunner

        check_export_settings(self.dtype, self.quantize)
        if self.dtype != torch.float32 and self.device.type == "cpu":
            msg = (
                f"dtype={dtype_name(self.dtype)!r} with backend='onnx' runs on a GPU only; "
                "use dtype='float32' (or 'auto') on cpu"
            )
            raise ValueError(msg)
        if exported:
            export = read_export(self.checkpoint.path)
            wanted = (dtype_name(self.dtype), self.quantize)
            if (export.dtype, export.quantize) != wanted:
                msg = (
                    f"{self.checkpoint.path} is an ONNX export in {export.dtype}, "
                    f"quantize={export.quantize!r}; it cannot run as dtype={wanted[0]!r}, "
                    f"quantize={wanted[1]!r}"
                )
                raise ValueError(msg)
        else:
            folder = cached_export(self.checkpoint, self.dtype, self.quantize)
            export = read_export(folder)
        if export.kind != self.checkpoint.kind or export.fingerprint != self.fingerprint:
            msg = (
                f"{export.path}: the ONNX export is of another model ({export.kind}, "
                f"fingerprint {export.fingerprint}) than {self.checkpoint.path} "
                f"({self.checkpoint.kind}, {self.fingerprint}); export it again"
            )
            raise ValueError(msg)
        return OnnxRunner(export, self.device, self.checkpoint.trunk)

    @property
    def trunk(self) -> Lfm2Trunk:
        """The native torch trunk (``backend="torch"`` only)."""
        if not isinstance(self.runner, TorchRunner):
            msg = "this encoder runs ONNX Runtime (backend='onnx') and holds no torch trunk"
            raise AttributeError(msg)
        return self.runner.trunk

    @property
    def name(self) -> str:
        """The checkpoint's name."""
        return self.checkpoint.name

    @property
    def path(self) -> Path:
        """The local checkpoint folder."""
        return self.checkpoint.path

    @property
    def fingerprint(self) -> str:
        """A short identity of the checkpoint's content, for cache keys."""
        return self.checkpoint.fingerprint

    @property
    def max_length(self) -> int:
        """The most tokens the checkpoint reads per text."""
        return self.checkpoint.max_length

    @property
    def dim(self) -> int:
        """The vector dimension (set by each subclass)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, device={self.device}, "
            f"dtype={dtype_name(self.dtype)}"
            f"{', quantize=' + repr(self.quantize) if self.quantize else ''}"
            f"{', backend=' + repr(self.backend) if self.backend != 'torch' else ''})"
        )

    def _encode_raw(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Token ids (BOS included) and char offsets into the stripped-then-restored text."""
        stripped = [t.strip() for t in texts]
        encs = self.tokenizer.encode_batch(stripped, add_special_tokens=True)
        out = []
        for text, s, enc in zip(texts, stripped, encs, strict=True):
            shift = len(text) - len(text.lstrip()) if s else 0
            ids = list(enc.ids)
            offsets = [(a + shift, b + shift) if b > a else (0, 0) for a, b in enc.offsets]
            if self._add_bos:
                assert self.bos_id is not None
                ids.insert(0, self.bos_id)
                offsets.insert(0, (0, 0))
            for i, tid in enumerate(ids):
                if tid == self.bos_id:
                    offsets[i] = (0, 0)
            out.append((ids, offsets))
        return out

    def _batches(
        self, lengths: Sequence[int], batch_size: int, show_progress: bool | None, desc: str
    ) -> Iterator[list[int]]:
        """Indices grouped into batches of similar length, longest first.

        A batch holds at most ``batch_size`` texts and at most ``max_batch_tokens`` padded
        tokens, which bounds activation memory (the FFN is 4.5x wider than the hidden state)
        without costing speed: a few thousand rows already saturate a CPU matmul.
        """
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches: list[list[int]] = []
        for i in order:
            if batches:
                current = batches[-1]
                width = lengths[current[0]]  # the longest, since sorted
                if (
                    len(current) < batch_size
                    and width * (len(current) + 1) <= self.max_batch_tokens
                ):
                    current.append(i)
                    continue
            batches.append([i])
        show = len(batches) >= _PROGRESS_MIN_BATCHES if show_progress is None else show_progress
        yield from tqdm(batches, desc=desc, disable=not show, unit="batch")

    def _forward(
        self, rows: Sequence[Sequence[int]], masks: Sequence[Sequence[int]], zero_pads: bool
    ) -> torch.Tensor:
        """Run one right-padded batch through the backend; returns its normalised vectors.

        ``(batch, dim)`` CLS vectors for a dense model, ``(batch, width, dim)`` token vectors
        for ColBERT, float32 on the CPU.
        """
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        att = torch.zeros((len(rows), width), dtype=torch.long)
        real = torch.zeros((len(rows), width), dtype=torch.long)
        for j, (r, m) in enumerate(zip(rows, masks, strict=True)):
            ids[j, : len(r)] = torch.tensor(r)
            att[j, : len(r)] = torch.tensor(m)
            real[j, : len(r)] = 1
        return self.runner.vectors(ids, att, real, zero_pads)

    def _note_truncation(self, truncated: int, total: int, what: str, limit: int) -> None:
        """Warn the first time inputs are truncated; later calls log at debug level."""
        if truncated:
            level = logging.DEBUG if self._warned_truncation else logging.WARNING
            self._warned_truncation = True
            logger.log(
                level,
                "%d of %d %s exceeded %d tokens and were truncated",
                truncated,
                total,
                what,
                limit,
            )


class DenseEncoder(Encoder):
    """LFM2.5-Embedding: CLS vector of ``prompt + text``, L2-normalised, cosine = dot product."""

    kind: Kind = "dense"

    @property
    def dim(self) -> int:
        """The vector dimension: the trunk's hidden size."""
        return self.checkpoint.trunk.hidden_size

    @property
    def prompts(self) -> dict[str, str]:
        """A copy of the checkpoint's named prompts (e.g. query and document)."""
        return dict(self.checkpoint.prompts)

    def encode_queries(
        self,
        texts: Sequence[str],
        *,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Query vectors ``(n, dim)`` float32, with the checkpoint's query prompt by default."""
        return self._encode(texts, prompt, batch_size, show_progress, "queries")

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Document vectors ``(n, dim)`` float32.

        Uses the checkpoint's document prompt by default.
        """
        return self._encode(texts, prompt, batch_size, show_progress, "documents")

    def tokenize(
        self, texts: Sequence[str], *, is_query: bool, prompt: str | None = None
    ) -> list[Tokenized]:
        """Ids as the model sees them: ``prompt + text``, stripped, BOS first, cut at max_length."""
        texts = check_texts(texts, "queries" if is_query else "documents")
        if prompt is None:
            prompt = self.prompts["query" if is_query else "document"]
        prompt = check_str(prompt, "prompt")
        limit = self.max_length
        raw = self._encode_raw([prompt + t for t in texts])
        self._note_truncation(
            sum(len(ids) > limit for ids, _ in raw),
            len(raw),
            "queries" if is_query else "documents",
            limit,
        )
        shift = len(prompt)
        out = []
        for ids, offsets in raw:
            # Spans into the caller's text; tokens of the prompt itself get (0, 0).
            offsets = [
                (max(a - shift, 0), b - shift) if b > shift else (0, 0) for a, b in offsets[:limit]
            ]
            ids = ids[:limit]
            out.append(Tokenized(ids, offsets, [1] * len(ids), [True] * len(ids)))
        return out

    def _encode(
        self,
        texts: Sequence[str],
        prompt: str | None,
        batch_size: int,
        show_progress: bool | None,
        what: str,
    ) -> np.ndarray:
        batch_size = check_batch_size(batch_size)
        rows = [t.ids for t in self.tokenize(texts, is_query=what == "queries", prompt=prompt)]
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        for batch in self._batches(
            [len(r) for r in rows], batch_size, show_progress, f"encoding {what}"
        ):
            batch_rows = [rows[i] for i in batch]
            vectors = self._forward(batch_rows, [[1] * len(r) for r in batch_rows], zero_pads=True)
            out[batch] = vectors.numpy()
        return out


class ColBERTEncoder(Encoder):
    """LFM2.5-ColBERT / LFM2-ColBERT: one unit vector per token, scored with MaxSim."""

    kind: Kind = "colbert"

    def __init__(self, checkpoint: Checkpoint, **kwargs: Any) -> None:
        super().__init__(checkpoint, **kwargs)
        assert checkpoint.colbert is not None and checkpoint.dense_dir is not None
        self.settings: ColBERTSettings = checkpoint.colbert
        tok = self.tokenizer
        self.query_marker_id = self._marker_id(self.settings.query_prefix)
        self.document_marker_id = self._marker_id(self.settings.document_prefix)
        mask_id = _special_token_id(checkpoint.path, tok, "mask_token")
        eos_id = _special_token_id(checkpoint.path, tok, "eos_token")
        if eos_id is None:
            eos_id = checkpoint.raw_config.get("eos_token_id")
        # PyLate pads (= expands) queries with the mask token if there is one, else EOS.
        expansion = mask_id if mask_id is not None else eos_id
        if expansion is None:
            msg = (
                f"{checkpoint.path}: the tokenizer names neither a mask nor an eos token "
                "for query expansion"
            )
            raise ValueError(msg)
        self.expansion_id: int = int(expansion)
        skip = {tok.token_to_id(w) for w in self.settings.skiplist_words}
        self.skiplist_ids = frozenset(i for i in skip if i is not None)

    def _marker_id(self, prefix: str) -> int:
        tid = self.tokenizer.token_to_id(prefix)
        if tid is None:
            ids = self.tokenizer.encode(prefix, add_special_tokens=False).ids
            if len(ids) != 1:
                msg = (
                    f"{self.path}: marker {prefix!r} is not a single token of the tokenizer "
                    f"(got {ids})"
                )
                raise ValueError(msg)
            tid = ids[0]
        return int(tid)

    @property
    def dim(self) -> int:
        """The per-token vector dimension: the projection head's output size."""
        return int(self.runner.dim)

    def tokenize(self, texts: Sequence[str], *, is_query: bool) -> list[Tokenized]:
        """Ids, char spans, attention and kept positions, exactly as the model will see them."""
        texts = check_texts(texts, "queries" if is_query else "documents")
        s = self.settings
        limit = (s.query_length if is_query else s.document_length) - 1
        marker = self.query_marker_id if is_query else self.document_marker_id
        out = []
        truncated = 0
        for ids, offsets in self._encode_raw(texts):
            truncated += len(ids) > limit
            ids, offsets = ids[:limit], offsets[:limit]
            ids.insert(1, marker)
            offsets.insert(1, (0, 0))
            attention = [1] * len(ids)
            if is_query and s.do_query_expansion:
                n_pad = s.query_length - len(ids)
                ids += [self.expansion_id] * n_pad
                offsets += [(0, 0)] * n_pad
                attention += [1 if s.attend_to_expansion_tokens else 0] * n_pad
            keep = [True] * len(ids) if is_query else [tid not in self.skiplist_ids for tid in ids]
            out.append(Tokenized(ids, offsets, attention, keep))
        if not is_query:
            self._note_truncation(truncated, len(texts), "documents", limit + 1)
        return out

    def _encode_padded(
        self, texts: Sequence[str], is_query: bool, batch_size: int, show_progress: bool | None
    ) -> PaddedVectors:
        batch_size = check_batch_size(batch_size)
        toks = self.tokenize(texts, is_query=is_query)
        width = max((sum(t.keep) for t in toks), default=0)
        vectors = torch.zeros((len(toks), width, self.dim), dtype=torch.float32)
        mask = torch.zeros((len(toks), width), dtype=torch.bool)
        what = "queries" if is_query else "documents"
        # Expanded queries are never padded: their expansion states must reach the conv.
        zero_pads = not (is_query and self.settings.do_query_expansion)
        for batch in self._batches(
            [len(t.ids) for t in toks], batch_size, show_progress, f"encoding {what}"
        ):
            projected = self._forward(
                [toks[i].ids for i in batch], [toks[i].attention for i in batch], zero_pads
            )
            for row, i in enumerate(batch):
                keep = torch.tensor(toks[i].keep, dtype=torch.bool)
                kept = projected[row, : len(keep)][keep]
                vectors[i, : len(kept)] = kept
                mask[i, : len(kept)] = True
        return PaddedVectors(vectors, mask)

    def encode_queries_padded(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> PaddedVectors:
        """Query vectors in one padded tensor with a mask, expansion vectors included."""
        return self._encode_padded(texts, True, batch_size, show_progress)

    def encode_documents_padded(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> PaddedVectors:
        """Document vectors in one padded tensor; pads and skiplisted tokens are masked out."""
        return self._encode_padded(texts, False, batch_size, show_progress)

    def encode_queries(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> list[np.ndarray]:
        """One ``(query_length, dim)`` float32 array per query, expansion vectors included."""
        return self._encode_padded(texts, True, batch_size, show_progress).to_list()

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> list[np.ndarray]:
        """One ``(n_i, dim)`` float32 array per document: pads and skiplisted tokens dropped."""
        return self._encode_padded(texts, False, batch_size, show_progress).to_list()

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_k: int | None = None,
        cache: EmbeddingCache | None = None,
        score: str = "raw",
    ) -> list[RerankResult]:
        """Rank ``documents`` by MaxSim with ``query``, best first, no index needed.

        ``cache`` (an :class:`~lfm_retrievers.cache.EmbeddingCache`) skips documents encoded
        before; ``score`` is ``"raw"`` or ``"mean"``. See :func:`lfm_retrievers.rerank.rerank`.
        """
        return rerank(self, query, documents, top_k=top_k, cache=cache, score=score)

    def explain(self, query: str, document: str) -> Explanation:
        """Per query token: the best-matching document token, its similarity and text span."""
        return explain(self, query, document)


__all__ = ["ColBERTEncoder", "DenseEncoder", "Encoder", "PaddedVectors"]
