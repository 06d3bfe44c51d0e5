"""The ONNX Runtime backend: one shared inference session over an export folder.

The session uses as many intra-op threads as torch (``torch.get_num_threads()``, which
``OMP_NUM_THREADS`` and ``torch.set_num_threads`` set), full graph optimization, and is shared
by every caller of the encoder (``InferenceSession.run`` is thread-safe).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lfm_retrievers._optional import require
from lfm_retrievers.models.backends.onnx_export import GRAPH, INPUTS, OUTPUT, ExportInfo

logger = logging.getLogger(__name__)

GPU_PROVIDERS = {"cuda": "CUDAExecutionProvider"}


def providers_for(device_type: str, available: Sequence[str]) -> list[str]:
    """ONNX Runtime execution providers for a device; ``ValueError`` if none can run there."""
    if device_type == "cpu":
        return ["CPUExecutionProvider"]
    wanted = GPU_PROVIDERS.get(device_type)
    if wanted is None:
        msg = (
            f"backend='onnx' runs on cpu or cuda, not {device_type!r}; "
            "use backend='torch' on this device, or device='cpu'"
        )
        raise ValueError(msg)
    if wanted not in available:
        msg = (
            f"backend='onnx' on {device_type} needs ONNX Runtime's {wanted}, which this install "
            f"lacks (available: {list(available)}); install the GPU build "
            "(pip install onnxruntime-gpu) or use backend='torch' or device='cpu'"
        )
        raise ValueError(msg)
    return [wanted, "CPUExecutionProvider"]


def session_options(ort: Any, threads: int) -> Any:
    """Session options: ``threads`` intra-op threads, one inter-op thread, all graph passes."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: no provider chatter in the caller's logs
    return options


class OnnxRunner:
    """Runs one padded batch through an export's ONNX Runtime session."""

    name = "onnx"

    def __init__(self, export: ExportInfo, device: torch.device) -> None:
        """Open the session of a checked export folder on ``device`` (cpu, or cuda with its EP)."""
        ort = require("onnx", "onnxruntime", "backend='onnx'")
        providers = providers_for(device.type, ort.get_available_providers())
        self.export = export
        self.dim = export.dim
        self.threads = torch.get_num_threads()
        self.session = ort.InferenceSession(
            str(export.path / GRAPH),
            sess_options=session_options(ort, self.threads),
            providers=providers,
        )
        names = [i.name for i in self.session.get_inputs()]
        outputs = self.session.get_outputs()
        rank = 2 if export.kind == "dense" else 3
        if names != list(INPUTS) or [o.name for o in outputs] != [OUTPUT]:
            msg = f"{export.path}/{GRAPH}: inputs {names} are not {list(INPUTS)}"
            raise ValueError(msg)
        if len(outputs[0].shape) != rank or outputs[0].shape[-1] != export.dim:
            msg = (
                f"{export.path}/{GRAPH}: output shape {outputs[0].shape} does not fit a "
                f"{export.kind} model of dimension {export.dim}"
            )
            raise ValueError(msg)

    @property
    def path(self) -> Path:
        """The export folder."""
        return self.export.path

    def vectors(
        self, ids: torch.Tensor, attention: torch.Tensor, real: torch.Tensor, zero_pads: bool
    ) -> torch.Tensor:
        """Normalised float32 vectors for one right-padded batch (pads zeroed in the graph)."""
        conv = real if zero_pads else torch.ones_like(real)
        feeds = {
            INPUTS[0]: ids.numpy().astype(np.int64, copy=False),
            INPUTS[1]: attention.numpy().astype(np.int64, copy=False),
            INPUTS[2]: conv.numpy().astype(np.int64, copy=False),
        }
        (out,) = self.session.run([OUTPUT], feeds)
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


__all__ = ["OnnxRunner", "providers_for", "session_options"]
