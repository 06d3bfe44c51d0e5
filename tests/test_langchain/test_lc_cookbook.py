"""cookbooks/langchain_rag.py runs end to end on the tiny checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COOKBOOK = Path(__file__).resolve().parents[2] / "cookbooks" / "langchain_rag.py"


def test_langchain_rag_cookbook_runs(tiny_dir: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LFM_RETRIEVERS_MODEL_DIR": str(tiny_dir),
        "HF_HUB_OFFLINE": "1",
        "LFM_RETRIEVERS_CHAT_MODEL": "",
    }
    proc = subprocess.run(
        [sys.executable, str(COOKBOOK)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "relevance=" in proc.stdout
    assert "Standard delivery takes" in proc.stdout  # the fake chat model's first answer
