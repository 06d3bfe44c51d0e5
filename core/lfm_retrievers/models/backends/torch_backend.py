"""The eager torch backend: the native trunk, then the head of the checkpoint's kind.

The ONNX export (:mod:`.onnx_export`) traces :class:`VectorsGraph`, the same trunk + head
module this backend runs, so both backends compute one function.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from lfm_retrievers.models.checkpoints import Checkpoint
from lfm_retrievers.models.trunk import Lfm2Trunk, load_dense_head, load_trunk


class VectorsGraph(nn.Module):
    """Trunk + head: ids in, L2-normalised vectors out (CLS for dense, per token for ColBERT).

    ``conv_mask`` (1 = real token) zeroes pad positions before every conv layer inside the
    module, so a padded row gives the vectors it would give alone.
    """

    def __init__(self, trunk: Lfm2Trunk, head: nn.Linear | None) -> None:
        """Wrap a loaded trunk and, for ColBERT, its Dense projection."""
        super().__init__()
        self.trunk = trunk
        self.head = head

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        conv_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """``(batch, dim)`` CLS vectors (dense) or ``(batch, seq, dim)`` token vectors."""
        hidden = self.trunk(input_ids, attention_mask, conv_mask)
        out = hidden[:, 0] if self.head is None else self.head(hidden)
        return F.normalize(out.float(), dim=-1)


def quantize_int8(trunk: Lfm2Trunk) -> Lfm2Trunk:
    """Dynamic int8 Linear layers with ``torch.ao`` (deprecated upstream; kept working).

    torch warns that ``torch.ao.quantization`` will be removed; the warning is silenced here so
    that it does not repeat on every load. ``backend="onnx"`` has the maintained int8 path.
    """
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(trunk, {torch.nn.Linear}, dtype=torch.qint8)


def load_graph(checkpoint: Checkpoint, dtype: torch.dtype, device: torch.device) -> VectorsGraph:
    """Load the trunk and (for ColBERT) the head of ``checkpoint`` as one eval module."""
    trunk = load_trunk(checkpoint.path, checkpoint.trunk, dtype, device)
    head = None
    if checkpoint.kind == "colbert":
        assert checkpoint.dense_dir is not None
        head = load_dense_head(checkpoint.dense_dir, dtype, device)
    return VectorsGraph(trunk, head).eval()


class TorchRunner:
    """Runs one padded batch through the eager module on the encoder's device."""

    name = "torch"

    def __init__(
        self,
        checkpoint: Checkpoint,
        *,
        device: torch.device,
        dtype: torch.dtype,
        quantize: str | None,
    ) -> None:
        """Load the weights (and quantize them when asked)."""
        self.device = device
        self.graph = load_graph(checkpoint, dtype, device)
        if quantize == "int8":
            self.graph.trunk = quantize_int8(self.graph.trunk)

    @property
    def dim(self) -> int:
        """The output vector dimension (hidden size, or the ColBERT projection's width)."""
        head = self.graph.head
        return int(head.out_features) if head is not None else self.graph.trunk.config.hidden_size

    @property
    def trunk(self) -> Lfm2Trunk:
        """The native trunk module."""
        return self.graph.trunk

    @property
    def weights_bytes(self) -> int:
        """Bytes held by the parameters (fp32/bf16 tensors; packed int8 weights not counted)."""
        return sum(p.numel() * p.element_size() for p in self.graph.parameters())

    def vectors(
        self, ids: torch.Tensor, attention: torch.Tensor, real: torch.Tensor, zero_pads: bool
    ) -> torch.Tensor:
        """Normalised float32 vectors on the CPU for one right-padded batch."""
        ids, attention, real = (t.to(self.device) for t in (ids, attention, real))
        conv_mask = real if zero_pads and not bool(real.all()) else None
        with torch.inference_mode():
            return self.graph(ids, attention, conv_mask).cpu()


__all__ = ["TorchRunner", "VectorsGraph", "load_graph", "quantize_int8"]
