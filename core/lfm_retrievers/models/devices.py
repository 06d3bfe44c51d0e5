"""The one place that turns ``device="auto"`` / ``dtype="auto"`` into torch objects."""

from __future__ import annotations

import logging
import warnings

import torch

logger = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps", "xpu")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _available(kind: str) -> bool:
    if kind == "cpu":
        return True
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if kind == "xpu":
        return bool(getattr(torch, "xpu", None) and torch.xpu.is_available())
    return False


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device to run on: cuda > mps > xpu > cpu for ``"auto"``.

    An explicitly requested accelerator that is missing falls back to the CPU with a warning,
    so a pipeline written on a GPU machine still runs (slowly) on a laptop.
    """
    if device is None or device == "auto":
        for kind in ("cuda", "mps", "xpu"):
            if _available(kind):
                logger.info("device='auto' resolved to %s", kind)
                return torch.device(kind)
        logger.info("device='auto' resolved to cpu (no accelerator found)")
        return torch.device("cpu")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            msg = (
                f"device must be one of {list(DEVICE_CHOICES)} (optionally with an index, "
                f"e.g. 'cuda:1'), got {device!r}"
            )
            raise ValueError(msg) from exc
    else:
        msg = f"device must be a str or torch.device, got {type(device).__name__}: {device!r}"
        raise TypeError(msg)
    if dev.type not in DEVICE_CHOICES:
        msg = f"device must be one of {list(DEVICE_CHOICES)}, got {device!r}"
        raise ValueError(msg)
    if not _available(dev.type):
        warnings.warn(
            f"device={device!r} was requested but is not available; falling back to cpu",
            RuntimeWarning,
            stacklevel=2,
        )
        return torch.device("cpu")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Return the compute dtype: ``"auto"`` is float32 on CPU and bfloat16 on bf16-capable GPUs.

    float16 is never chosen automatically: the checkpoints are stored in bfloat16, whose wider
    exponent range can overflow float16.
    """
    if dtype is None or dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if device.type == "xpu":
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            msg = f"dtype must be one of {list(DTYPE_CHOICES)}, got {dtype!r}"
            raise ValueError(msg)
        return dtype
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            msg = f"dtype must be one of {list(DTYPE_CHOICES)}, got {dtype!r}"
            raise ValueError(msg)
        return _DTYPES[dtype]
    msg = f"dtype must be a str or torch.dtype, got {type(dtype).__name__}: {dtype!r}"
    raise TypeError(msg)


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``: the spelling used in keys and configs."""
    return str(dtype).removeprefix("torch.")
