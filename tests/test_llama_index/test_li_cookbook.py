"""The LlamaIndex cookbook runs end to end on the tiny checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COOKBOOK = ROOT / "cookbooks" / "llama_index_query_engine.py"


def test_llama_index_cookbook_runs(tiny_dir: Path) -> None:
    env = {**os.environ, "LFM_RETRIEVERS_MODEL_DIR": str(tiny_dir), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(COOKBOOK)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert "same results" in proc.stdout
