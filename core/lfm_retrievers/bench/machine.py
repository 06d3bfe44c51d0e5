"""Machine facts and timing helpers shared by every ``lfm-retrievers bench`` target.

Speed does not depend on weight values, so the benchmarks run on **full-size random weights**
written by :func:`lfm_retrievers.testing.build_tiny_checkpoint` (``preset="full"``): the exact
350M shapes, no download. Results are plain dicts (JSON-ready); the CLI formats them.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lfm_retrievers.models.encoders import ColBERTEncoder, DenseEncoder

logger = logging.getLogger(__name__)

QUERY_TOKENS = 32


DOCUMENT_TOKENS = 256


REPO_ROOT = Path(__file__).resolve().parents[3]


_WORD_TEXT = (
    "the model retrieves relevant documents for each query using late interaction over token "
    "vectors while the dense encoder pools one vector per text cells proteins vitamin patients "
    "study results increase decrease risk treatment clinical trial effect gene expression data "
    "analysis shows that higher levels of activity were observed in samples from mice and humans "
    "shipping returns refund policy account password settings order delivery warranty battery "
    "screen camera price discount support customer service language search index cache latency"
)


_WORDS = tuple(_WORD_TEXT.split())


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews CPU timings)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def machine_info(device: torch.device, load_before: float | None = None) -> dict[str, Any]:
    """What the numbers were measured on.

    CPU, cores, threads, accelerator, library versions, and the load average before the
    measurement started (when given).
    """
    import transformers

    info: dict[str, Any] = {
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": str(device),
    }
    if load_before is not None:
        info["load_average_1m_before"] = load_before
    if device.type == "cuda":
        info["accelerator"] = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        info["accelerator"] = "Apple MPS"
    return info


def device_sync(device: torch.device) -> Callable[[], None]:
    """A function that waits for ``device``'s queued work to finish (a no-op on CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return lambda: torch.mps.synchronize()
    return lambda: None


@dataclass(frozen=True)
class Timing:
    """Wall-clock samples of one operation, in seconds."""

    samples: tuple[float, ...]

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile of the samples, in milliseconds."""
        return float(np.percentile(np.asarray(self.samples), q) * 1000.0)

    def summary(self) -> dict[str, float | int]:
        """p50/p95/p99 and mean in milliseconds (rounded), and the sample count."""
        return {
            "p50_ms": round(self.percentile_ms(50), 3),
            "p95_ms": round(self.percentile_ms(95), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "mean_ms": round(float(np.mean(self.samples)) * 1000.0, 3),
            "n": len(self.samples),
        }


def measure(
    fn: Callable[[], object],
    *,
    iterations: int,
    warmup: int = 2,
    max_seconds: float | None = None,
    min_iterations: int = 10,
    sync: Callable[[], None] = lambda: None,
) -> Timing:
    """Time ``fn`` ``iterations`` times after ``warmup`` untimed calls.

    With ``max_seconds`` the loop stops early once that much time has passed and at least
    ``min(min_iterations, iterations)`` samples exist, so slow devices finish in bounded time.
    """
    for _ in range(warmup):
        fn()
        sync()
    samples: list[float] = []
    start = time.perf_counter()
    floor = min(min_iterations, iterations)
    while len(samples) < iterations:
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t0)
        if (
            max_seconds is not None
            and len(samples) >= floor
            and time.perf_counter() - start > max_seconds
        ):
            break
    return Timing(tuple(samples))


def gemm_peak_gflops(device: torch.device, size: int = 2048, repeats: int = 8) -> float:
    """Measured fp32 matmul throughput of ``device`` (the best of several square GEMMs)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    sync = device_sync(device)
    best = float("inf")
    for _ in range(2):
        a @ b
    sync()
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best / 1e9


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (``getrusage``; KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def vm_status(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process from ``/proc/self/status`` in bytes (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark (Linux ``clear_refs`` 5), to measure one phase."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside a source checkout (the project's evaluation data), if present."""
    candidate = REPO_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def _real_tokenizer(kind: str) -> Path | None:
    """A real LFM2 tokenizer folder for random full-size checkpoints, or None if none is found.

    With it the vocabulary (and the embedding matrix, hence the parameter count and memory) has
    the real size.
    """
    env = os.environ.get("LFM_RETRIEVERS_TOKENIZER_DIR")
    roots = [Path(env)] if env else []
    data = shared_data_dir()
    if data is not None:
        roots.append(data / "tokenizers")
    sub = "lfm2-base" if kind == "embedding" else "lfm2-colbert-350m"
    for root in roots:
        for folder in (root / sub, root):
            if (folder / "tokenizer.json").is_file():
                return folder
    return None


def build_random_checkpoint(kind: str, directory: Path, *, preset: str = "full") -> Path:
    """Write a random-weight checkpoint of ``kind`` (``embedding``/``colbert``) to ``directory``.

    It is built in a child process, so building it (an fp32 copy of 350M weights) never counts in
    this process's peak memory. Uses a real LFM2 tokenizer when one is found (see
    ``_real_tokenizer``).
    """
    tok = _real_tokenizer(kind) if preset == "full" else None
    code = (
        "import sys; from lfm_retrievers.testing import build_tiny_checkpoint as b; "
        "b(sys.argv[1], sys.argv[2], preset=sys.argv[3], "
        "tokenizer_dir=sys.argv[4] or None, overwrite=True)"
    )
    subprocess.run(
        [sys.executable, "-c", code, kind, str(directory), preset, str(tok or "")],
        check=True,
    )
    return directory


def text_of_length(
    count: Callable[[str], int], target: int, *, seed: int = 0, words: Sequence[str] = _WORDS
) -> str:
    """A text whose tokenized length is ``target``, or the closest reachable length below it.

    The length is as ``count`` measures it, special tokens included.
    """
    rng = random.Random(seed)
    pool = [rng.choice(words) for _ in range(target * 2)]
    lo, hi = 0, len(pool)
    while lo < hi:  # the most words that still fit
        mid = (lo + hi + 1) // 2
        if count(" ".join(pool[:mid])) <= target:
            lo = mid
        else:
            hi = mid - 1
    text = " ".join(pool[:lo])
    for filler in (" a", " I", " x", "1"):
        while count(text + filler) <= target and count(text + filler) > count(text):
            text += filler
        if count(text) == target:
            break
    return text


def model_label(enc: DenseEncoder | ColBERTEncoder, random_weights: bool) -> str:
    """The model's display name for reports, marked when its weights are random."""
    if random_weights:
        base = "LFM2.5-Embedding-350M" if enc.kind == "dense" else "LFM2.5-ColBERT-350M"
        return f"{base} (random weights)"
    return str(enc.name).rstrip("/").split("/")[-1]


def parameter_count(enc: DenseEncoder | ColBERTEncoder) -> int:
    """Parameter count from the checkpoint's tensors (int8 modules hide theirs as packed)."""
    from safetensors import safe_open

    n = 0
    files = [enc.path / "model.safetensors", enc.path / "1_Dense" / "model.safetensors"]
    for file in files:
        if file.is_file():
            with safe_open(str(file), framework="pt") as fh:
                for key in fh.keys():  # noqa: SIM118 - safe_open is not a Mapping
                    n += int(np.prod(fh.get_slice(key).get_shape()))
    return n
