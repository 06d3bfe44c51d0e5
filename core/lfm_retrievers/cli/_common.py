"""What every subcommand shares: model loading (with the tiny fallback), output helpers, errors."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from lfm_retrievers._io import package_cache_dir
from lfm_retrievers._version import __version__
from lfm_retrievers.models.checkpoints import DEFAULT_COLBERT_MODEL as DEFAULT_COLBERT
from lfm_retrievers.models.checkpoints import DEFAULT_DENSE_MODEL as DEFAULT_DENSE

if TYPE_CHECKING:
    from lfm_retrievers.models.encoders import ColBERTEncoder, DenseEncoder

PROG = "lfm-retrievers"
TINY = "tiny"

UNTRAINED_WARNING = (
    "WARNING: --model tiny is an UNTRAINED miniature model with random weights, built locally "
    "so the pipeline runs without the Hugging Face Hub. Its scores and the order they give are "
    "meaningless (BM25 candidates are real). For real results use --model {real} or a local "
    "checkpoint folder."
)


class CLIError(Exception):
    """A user error: printed as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), not usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def cache_dir() -> Path:
    """Where the CLI keeps what it builds: the package cache (``$LFM_RETRIEVERS_CACHE``)."""
    return package_cache_dir()


def tiny_checkpoint(kind: str) -> Path:
    """The untrained miniature checkpoint of ``kind`` ("colbert" | "embedding").

    It is built once into the cache directory (atomically, so concurrent runs never see half a
    checkpoint).
    """
    from lfm_retrievers.testing import build_tiny_checkpoint

    target = cache_dir() / f"tiny-{kind}-{__version__}"
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    build_tiny_checkpoint(kind, tmp)  # type: ignore[arg-type]
    try:
        os.replace(tmp, target)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _model_name(arg: str | None, kind: str) -> str:
    if arg:
        return arg
    if kind == "dense":
        return os.environ.get("LFM_RETRIEVERS_DENSE_MODEL") or DEFAULT_DENSE
    return os.environ.get("LFM_RETRIEVERS_MODEL") or DEFAULT_COLBERT


def load_model(
    arg: str | None, kind: str, args: argparse.Namespace
) -> DenseEncoder | ColBERTEncoder:
    """Load ``--model`` (or the default of ``kind``); ``tiny`` builds an untrained miniature.

    The device, dtype, quantization and backend come from the parsed ``args`` of the
    subcommand, so every model a subcommand loads runs as its options say. With
    ``--fallback-tiny``, a model that cannot be found (offline, no Hub) is replaced by the tiny
    one, loudly, instead of failing.
    """
    from lfm_retrievers.errors import CheckpointNotFoundError
    from lfm_retrievers.models.registry import load

    device, dtype, quantize = args.device, args.dtype, args.quantize
    backend, fallback_tiny = args.backend, getattr(args, "fallback_tiny", False)

    name = _model_name(arg, kind)
    expect = "dense" if kind == "dense" else "colbert"
    real = DEFAULT_DENSE if kind == "dense" else DEFAULT_COLBERT
    tiny_kind = "embedding" if kind == "dense" else "colbert"
    if name == TINY:
        print(UNTRAINED_WARNING.format(real=real), file=sys.stderr)
        path: str | Path = tiny_checkpoint(tiny_kind)
    else:
        path = name
    try:
        return load(
            path,
            device=device,
            dtype=dtype,
            quantize=quantize,
            expect=expect,  # type: ignore[arg-type]
            backend=backend,
        )
    except CheckpointNotFoundError as exc:
        if not fallback_tiny:
            msg = f"{exc} (To try the pipeline offline: --model tiny.)"
            raise CLIError(msg) from exc
        print(f"could not load {name!r}: {str(exc).split('. ')[0]}.", file=sys.stderr)
        print(UNTRAINED_WARNING.format(real=real), file=sys.stderr)
        return load(
            tiny_checkpoint(tiny_kind),
            device=device,
            dtype=dtype,
            expect=expect,  # type: ignore[arg-type]
            backend=backend,
        )


def is_tiny(enc: DenseEncoder | ColBERTEncoder) -> bool:
    """True for the untrained miniature that ``--model tiny`` builds into the cache."""
    path = Path(enc.path)
    return path.name.startswith("tiny-") and path.parent.resolve() == cache_dir().resolve()


def _model_info(
    enc: DenseEncoder | ColBERTEncoder, arg: str | None, kind: str, index: Path | None = None
) -> dict[str, Any]:
    if is_tiny(enc):
        name = TINY
    elif index is not None and arg is None:
        name = str(enc.name)
    else:
        name = _model_name(arg, kind)
    return {
        "name": name,
        "path": str(enc.path),
        "kind": enc.kind,
        "fingerprint": enc.fingerprint,
        "dim": enc.dim,
        "device": str(enc.device),
        "dtype": str(enc.dtype).removeprefix("torch."),
        "quantize": enc.quantize,
        "backend": enc.backend,
        "untrained": name == TINY,
    }


def _use_color(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A Markdown table (readable in a terminal, pasteable into a README)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)

    def line(row: Sequence[str]) -> str:
        out = []
        for c, w, a in zip(row, widths, align, strict=True):
            out.append(c.rjust(w) if a == "r" else c.ljust(w))
        return "| " + " | ".join(out) + " |"

    sep = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if a == "r" else "-" * (w + 2)
            for w, a in zip(widths, align, strict=True)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _write_json(path: str | None, data: Any) -> None:
    if path:
        out = Path(path).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _fmt_bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _device_options(p: argparse.ArgumentParser) -> None:
    from lfm_retrievers.models.devices import DTYPE_CHOICES

    p.add_argument(
        "--device", default="auto", help="auto (cuda > mps > xpu > cpu), cpu, cuda, cuda:1, ..."
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=DTYPE_CHOICES,
        help="compute dtype (auto: float32 on CPU, bfloat16 on GPUs)",
    )
    p.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="dynamic int8 Linear layers (CPU only; with torch: torch.ao, deprecated upstream)",
    )
    p.add_argument(
        "--backend",
        choices=["torch", "onnx"],
        default="torch",
        help="torch (eager) or onnx (ONNX Runtime; exported once per model and cached)",
    )
