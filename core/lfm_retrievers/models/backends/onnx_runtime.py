"""The ONNX Runtime backend: one shared inference session over an export folder.

The session uses as many intra-op threads as torch (``torch.get_num_threads()``, which
``OMP_NUM_THREADS`` and ``torch.set_num_threads`` set), full graph optimization, and is shared
by every caller of the encoder (``InferenceSession.run`` is thread-safe).

**Memory.** ONNX Runtime keeps every intermediate of a run in its arena, and the exported
attention materialises its ``(rows, heads, seq, seq)`` scores several times over, where torch's
fused attention does not. Measured on the 350M export, a run costs about 45 floats per hidden
unit per token plus about 5 float copies of the scores (8 rows of 512 tokens: +1.4 GB over the
1.35 GB of weights), and the arena keeps blocks of every run shape it has seen.
:class:`OnnxRunner` therefore splits a padded batch into runs whose estimate stays under
``max_activation_bytes`` (128 MiB by default: one row of 256 tokens or more, four of 128, ten
of 64). Each row's vectors do not depend on its batch, so the split changes no result. On the
32 SciFact documents of ``bench encoder`` (batch 32, up to 512 tokens) the peak RSS is 1.40x
the fp32 weights, against 1.52x with 256 MiB and 1.80x unsplit, at the same throughput: a run
of a few hundred tokens still keeps the matrix multiplies busy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lfm_retrievers._optional import require
from lfm_retrievers.models.backends.onnx_export import GRAPH, INPUTS, OUTPUT, ExportInfo
from lfm_retrievers.models.trunk import TrunkConfig

logger = logging.getLogger(__name__)

GPU_PROVIDERS = {"cuda": "CUDAExecutionProvider"}
#: The default cap on one run's estimated activation memory (see the module docstring).
ACTIVATION_BUDGET = 128 * 2**20


def rows_per_run(trunk: TrunkConfig, width: int, budget: int) -> int:
    """How many padded rows of ``width`` tokens one run may hold within ``budget`` bytes.

    The estimate is the measured cost of the exported graph: ``45 * hidden_size`` floats per
    token and five float copies of each head's ``width x width`` attention scores per row.
    Always at least one row.
    """
    per_row = 4 * (45 * trunk.hidden_size * width + 5 * trunk.num_attention_heads * width * width)
    return max(1, budget // per_row)


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
    """Session options: ``threads`` intra-op threads, one inter-op thread, all graph passes.

    ``OMP_WAIT_POLICY=PASSIVE`` in the environment, the setting that makes torch's idle threads
    sleep instead of spin, also turns ONNX Runtime's spinning off, so one variable serves both
    backends on a machine shared with other busy processes. Spinning stays on otherwise: on
    2 cores it was 13-15% faster when quiet, and within 3x of that with a busy neighbour.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: no provider chatter in the caller's logs
    if os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE":
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxRunner:
    """Runs one padded batch through an export's ONNX Runtime session."""

    name = "onnx"

    def __init__(self, export: ExportInfo, device: torch.device, trunk: TrunkConfig) -> None:
        """Open the session of a checked export folder on ``device`` (cpu, or cuda with its EP)."""
        ort = require("onnx", "onnxruntime", "backend='onnx'")
        providers = providers_for(device.type, ort.get_available_providers())
        self.export = export
        self.dim = export.dim
        self.trunk_config = trunk
        #: The cap on one run's estimated activation memory; larger batches are split.
        self.max_activation_bytes = ACTIVATION_BUDGET
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
        """Normalised float32 vectors for one right-padded batch (pads zeroed in the graph).

        The batch runs in slices of :func:`rows_per_run` rows, so that its activations stay
        within ``max_activation_bytes``.
        """
        conv = real if zero_pads else torch.ones_like(real)
        arrays = [t.numpy().astype(np.int64, copy=False) for t in (ids, attention, conv)]
        step = rows_per_run(self.trunk_config, ids.shape[1], self.max_activation_bytes)
        parts = []
        for start in range(0, ids.shape[0], step):
            feeds = {name: a[start : start + step] for name, a in zip(INPUTS, arrays, strict=True)}
            (out,) = self.session.run([OUTPUT], feeds)
            parts.append(np.asarray(out, dtype=np.float32))
        return torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts))


__all__ = ["ACTIVATION_BUDGET", "OnnxRunner", "providers_for", "rows_per_run", "session_options"]
