"""Export a checkpoint's trunk + head to ONNX, once, into a folder ONNX Runtime can run.

The graph is :class:`~lfm_retrievers.models.backends.torch_backend.VectorsGraph` (the module the
torch backend runs), traced by ``torch.onnx.export(dynamo=True)`` with dynamic batch and
sequence axes. Its inputs are ``input_ids``, ``attention_mask`` and ``conv_mask`` (1 = real
token; pads are zeroed before every conv inside the graph); its output ``vectors`` is the
L2-normalised CLS vector ``(batch, dim)`` of a dense model or the token vectors
``(batch, seq, dim)`` of a ColBERT model.

An export folder is self-contained: the checkpoint's configuration and tokenizer files, the
graph (``model.onnx`` and its external weights) and the package's one ``manifest.json`` (see
:mod:`lfm_retrievers._io`: format ``lfm-retrievers/onnx-export``, version, the source model's
name, fingerprint, kind and dimension, the dtype and quantization, and the size and sha256 of
every file), written by the same crash-safe folder save as every index. :func:`cached_export`
keeps one per (fingerprint, dtype, quantization) in the package cache (``$LFM_RETRIEVERS_CACHE``),
under a file lock so two processes never export the same model twice or see half a folder;
:func:`export_onnx` copies one to a folder of the user's choice, which
``load(folder, backend="onnx")`` reads without torch weights.
``quantize="int8"`` applies ONNX Runtime's dynamic quantization (int8 weights) to the fp32 graph.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lfm_retrievers._io import MANIFEST_FILE, open_folder, package_cache_dir, save_folder
from lfm_retrievers._optional import require
from lfm_retrievers.errors import CheckpointError, IndexFormatError
from lfm_retrievers.models.checkpoints import (
    LEGACY_ONNX_MANIFEST,
    ONNX_FORMAT,
    ONNX_FORMAT_VERSION,
    Checkpoint,
    is_onnx_export,
    legacy_export_error,
)
from lfm_retrievers.models.devices import dtype_name

logger = logging.getLogger(__name__)

FORMAT = ONNX_FORMAT
FORMAT_VERSION = ONNX_FORMAT_VERSION
MANIFEST = MANIFEST_FILE
GRAPH = "model.onnx"
INPUTS = ("input_ids", "attention_mask", "conv_mask")
OUTPUT = "vectors"
#: The export's own manifest fields (the source model is the manifest's ``model``).
EXPORT_FIELDS = ("causal", "dtype", "quantize", "inputs", "output", "torch_version", "seconds")
EXPORT_DTYPES = ("float32", "float16")
#: The checkpoint files an export carries so that it loads without the original folder.
CONFIG_FILES = (
    "config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "1_Pooling/config.json",
    "1_Dense/config.json",
)


def is_export(path: Path) -> bool:
    """Whether ``path`` is an ONNX export folder (its ``manifest.json`` says so)."""
    return is_onnx_export(path)


@dataclass(frozen=True)
class ExportInfo:
    """What an export folder's manifest says, after its files were checked."""

    path: Path
    fingerprint: str
    kind: str
    causal: bool
    dtype: str
    quantize: str | None
    dim: int
    package_version: str


def read_export(path: Path, *, verify: bool = True) -> ExportInfo:
    """Read and check an export folder's manifest; ``CheckpointError`` if it cannot be run.

    Every file listed must exist with its recorded size and (with ``verify``) sha256, so a
    folder from another format version, a half-copied folder or a graph swapped in from another
    model is refused before anything is loaded.
    """
    if (path / LEGACY_ONNX_MANIFEST).is_file():
        raise legacy_export_error(path)
    try:
        folder, manifest = open_folder(
            path, formats=(FORMAT,), max_version=FORMAT_VERSION, what="ONNX export", verify=verify
        )
    except IndexFormatError as exc:
        msg = f"{exc}; export the model again with lfm_retrievers.export_onnx"
        raise CheckpointError(msg) from exc
    model = manifest.get("model")
    if not isinstance(model, dict) or GRAPH not in manifest["files"]:
        msg = f"{path}/{MANIFEST}: no source model or no {GRAPH} in its file table"
        raise CheckpointError(msg)
    return ExportInfo(
        path=folder,
        fingerprint=str(model["fingerprint"]),
        kind=str(model["kind"]),
        causal=bool(manifest["causal"]),
        dtype=str(manifest["dtype"]),
        quantize=manifest.get("quantize"),
        dim=int(model["dim"]),
        package_version=str(manifest.get("package_version")),
    )


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Hold the exporter's loggers at ERROR while it runs (it logs every graph pass)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.ERROR))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _export_graph(checkpoint: Checkpoint, dtype: torch.dtype, target: Path) -> None:
    """Trace the trunk + head of ``checkpoint`` and save it as ``target`` (+ external data)."""
    from lfm_retrievers.models.backends.torch_backend import load_graph

    require("onnx", "onnxscript", "exporting to ONNX")
    graph = load_graph(checkpoint, dtype, torch.device("cpu"))
    ids = torch.tensor([[1, 5, 6, 7, 8, 9, 10, 11], [1, 5, 6, 7, 8, 0, 0, 0]])
    real = (ids != 0).long()
    attention = real.clone()  # distinct tensors: the exporter would merge one passed twice
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    axes = {name: {0: batch, 1: seq} for name in INPUTS}
    chatter = io.StringIO()  # the exporter prints progress lines; a library must not
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(chatter),
        _quiet_loggers("onnx_ir", "onnxscript", "torch.onnx", "torch.export"),
        torch.no_grad(),
    ):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            (ids, attention, real),
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_shapes=axes,
            dynamo=True,
            verbose=False,
        )
        assert program is not None
        program.save(str(target), external_data=True)
    logger.debug("torch.onnx.export said: %s", chatter.getvalue().strip())


def _quantize_graph(source: Path, target: Path) -> None:
    """ONNX Runtime dynamic quantization: int8 weights, activations quantized per call."""
    quantization = require("onnx", "onnxruntime.quantization", "quantize='int8' with ONNX")
    # The quantizer advises "pre-processing" on the root logger; that step targets CNNs.
    with warnings.catch_warnings(), _quiet_loggers("", "onnxruntime"):
        warnings.simplefilter("ignore")
        quantization.quantize_dynamic(
            str(source),
            str(target),
            weight_type=quantization.QuantType.QInt8,
            per_channel=True,
        )


def _head_dim(checkpoint: Checkpoint) -> int:
    if checkpoint.kind == "dense":
        return checkpoint.trunk.hidden_size
    assert checkpoint.dense_dir is not None
    cfg = json.loads((checkpoint.dense_dir / "config.json").read_text(encoding="utf-8"))
    return int(cfg["out_features"])


def _model_stamp(checkpoint: Checkpoint) -> dict[str, Any]:
    """The source model, in the same fields a saved index records."""
    return {
        "name": checkpoint.name,
        "fingerprint": checkpoint.fingerprint,
        "kind": checkpoint.kind,
        "dim": _head_dim(checkpoint),
    }


def _write_export(
    folder: Path,
    checkpoint: Checkpoint,
    dtype: torch.dtype,
    quantize: str | None,
    fp32_source: Path | None,
) -> dict[str, Any]:
    """Write the configuration files and the graph into ``folder``; the manifest's fields."""
    for rel in CONFIG_FILES:
        src = checkpoint.path / rel
        if src.is_file():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, folder / rel)
    started = time.perf_counter()
    if quantize == "int8":
        assert fp32_source is not None
        _quantize_graph(fp32_source / GRAPH, folder / GRAPH)
    else:
        _export_graph(checkpoint, dtype, folder / GRAPH)
    return {
        "causal": checkpoint.causal,
        "dtype": dtype_name(dtype),
        "quantize": quantize,
        "inputs": list(INPUTS),
        "output": OUTPUT,
        "torch_version": torch.__version__,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _valid(path: Path) -> bool:
    if not is_export(path):
        return False
    try:
        read_export(path, verify=False)
    except CheckpointError as exc:
        logger.warning("ignoring a broken cached ONNX export: %s", exc)
        return False
    return True


def check_export_settings(dtype: torch.dtype, quantize: str | None) -> None:
    """``ValueError`` unless (dtype, quantize) is one the ONNX backend exports."""
    name = dtype_name(dtype)
    if name not in EXPORT_DTYPES:
        msg = f"dtype={name!r} is not supported with backend='onnx'; choose one of {EXPORT_DTYPES}"
        raise ValueError(msg)
    if quantize == "int8" and name != "float32":
        msg = f"quantize='int8' quantizes the float32 graph; dtype must be 'float32', not {name!r}"
        raise ValueError(msg)


def cached_export(checkpoint: Checkpoint, dtype: torch.dtype, quantize: str | None) -> Path:
    """The cached export folder of (checkpoint, dtype, quantize), exported first if missing.

    The first call per key exports (tens of seconds for a 350M model) into a temporary folder
    that is moved into place whole; a second process asking for the same key meanwhile waits
    on the key's file lock and then reuses the result.
    """
    from filelock import FileLock

    check_export_settings(dtype, quantize)
    root = package_cache_dir() / "onnx"
    key = f"{checkpoint.fingerprint}-{dtype_name(dtype)}-{quantize or 'none'}-v{FORMAT_VERSION}"
    target = root / key
    if _valid(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{key}.lock")):
        if _valid(target):
            return target
        source = cached_export(checkpoint, dtype, None) if quantize else None
        logger.info(
            "exporting %s to ONNX (%s%s) into %s; this happens once per model",
            checkpoint.name,
            dtype_name(dtype),
            f", {quantize}" if quantize else "",
            target,
        )
        save_folder(
            target,
            lambda tmp: _write_export(tmp, checkpoint, dtype, quantize, source),
            format=FORMAT,
            format_version=FORMAT_VERSION,
            model=_model_stamp(checkpoint),
            replaces=None,  # a broken leftover under our own cache key
            what="ONNX export",
        )
    return target


def export_onnx(
    model: Any,
    directory: str | os.PathLike[str],
    *,
    quantize: str | None = None,
) -> Path:
    """Write a portable ONNX export of ``model`` to ``directory`` and return its path.

    The folder holds the graph, the tokenizer and configuration files and a checksummed
    manifest; ``load(directory, backend="onnx")`` runs it with ONNX Runtime, without the torch
    weights. The export itself is made once per model and kept in the package cache.

    Args:
        model: A loaded encoder, an ``EncoderSpec``, or a model name or checkpoint folder.
        directory: Where to write; it must not exist, be empty, or hold an earlier export.
        quantize: ``None`` (float32) or ``"int8"`` (ONNX Runtime dynamic quantization).

    Returns:
        The export folder.
    """
    from lfm_retrievers._validation import check_choice
    from lfm_retrievers.models.checkpoints import read_checkpoint

    check_choice(quantize, "quantize", (None, "int8"))
    if not isinstance(directory, str | os.PathLike):
        msg = f"directory must be a str or path, got {type(directory).__name__}"
        raise TypeError(msg)
    target = Path(directory).expanduser()
    if target.exists() and not (
        target.is_dir() and (is_export(target) or not any(target.iterdir()))
    ):
        msg = f"directory {str(target)!r} exists and is not empty or an earlier ONNX export"
        raise ValueError(msg)
    checkpoint = getattr(model, "checkpoint", None)
    if not isinstance(checkpoint, Checkpoint):
        source = getattr(model, "model", model)  # an EncoderSpec names its model
        if not isinstance(source, str | os.PathLike):
            msg = (
                "model must be an encoder, an EncoderSpec, or a model name or path, got "
                f"{type(model).__name__}"
            )
            raise TypeError(msg)
        checkpoint = read_checkpoint(source)
    if is_export(checkpoint.path):
        msg = f"{checkpoint.path} is already an ONNX export; copy that folder instead"
        raise ValueError(msg)
    cached, manifest = open_folder(
        cached_export(checkpoint, torch.float32, quantize),
        formats=(FORMAT,),
        max_version=FORMAT_VERSION,
        what="ONNX export",
    )

    def copy(tmp: Path) -> dict[str, Any]:
        for rel in manifest["files"]:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached / rel, tmp / rel)
        return {key: manifest[key] for key in EXPORT_FIELDS}

    return save_folder(
        target,
        copy,
        format=FORMAT,
        format_version=FORMAT_VERSION,
        model=manifest["model"],
        replaces=None,  # checked above: empty, absent, or an earlier export
        what="ONNX export",
    ).path


__all__ = [
    "EXPORT_DTYPES",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "ExportInfo",
    "cached_export",
    "check_export_settings",
    "export_onnx",
    "is_export",
    "read_export",
]
