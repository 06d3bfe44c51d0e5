"""cookbooks/haystack_pipeline.py runs end to end on the tiny checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_haystack_cookbook_runs(tiny_dir: Path) -> None:
    env = {
        **os.environ,
        "LFM_RETRIEVERS_MODEL_DIR": str(tiny_dir),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("HAYSTACK_DESERIALIZATION_ALLOWLIST", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cookbooks" / "haystack_pipeline.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    out = proc.stdout
    assert "building tiny random checkpoints" not in out  # it used the given model folder
    for text in (
        "18 FAQ entries in ar, de, en, es, fr, it, ja, ko, no, pt, sv",
        "indexed 18 documents",
        "BM25 -> ColBERT for",
        "hybrid (BM25 + dense -> ColBERT) for",
        "ColBERT index, lang de OR fr",
        "loaded back: identical results",
        "run_async: identical results",
    ):
        assert text in out, text
