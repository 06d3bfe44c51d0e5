"""The core cookbooks run end to end on the tiny checkpoints, and the index lists every cookbook.

(The framework cookbooks are run by the LangChain / LlamaIndex / Haystack test folders.)
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COOKBOOKS = ROOT / "cookbooks"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("quickstart.py", ["DenseEncoder(", "ColBERTEncoder(", "score ", "1. doc"]),
        ("multilingual_faq.py", ["entries in ar, de, en", "dense: top hit", "colbert: top hit"]),
    ],
)
def test_core_cookbook_runs(name: str, expected: list[str], tiny_dir: Path) -> None:
    env = {**os.environ, "LFM_RETRIEVERS_MODEL_DIR": str(tiny_dir), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(COOKBOOKS / name)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    for text in expected:
        assert text in proc.stdout, text


def test_qdrant_cookbook_runs(tiny_dir: Path) -> None:
    for module in ("qdrant_client", "langchain_core", "llama_index.core", "haystack"):
        pytest.importorskip(module)
    env = {**os.environ, "LFM_RETRIEVERS_MODEL_DIR": str(tiny_dir), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(COOKBOOKS / "qdrant_scale_out.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    out = proc.stdout
    for mode in ("colbert", "dense", "bm25", "dense+colbert", "bm25+colbert", "hybrid"):
        assert f"{mode:>14}: [(" in out, mode
    german = out.split("only German answers: ")[1].splitlines()[0]
    assert sorted(ast.literal_eval(german)) == ["faq-de-01", "faq-de-02"]
    diff = float(out.split("max |difference|: ")[1].split()[0])
    assert diff <= 1e-4
    for name in ("LangChain: [(", "LlamaIndex: ['", "Haystack: ['"):
        assert name in out, name


def test_cookbook_index_lists_every_cookbook() -> None:
    index = (COOKBOOKS / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"\[`?([\w-]+\.py)`?\]", index))
    present = {p.name for p in COOKBOOKS.glob("*.py")}
    assert present <= listed, f"not in cookbooks/README.md: {sorted(present - listed)}"
    for name in present:
        text = (COOKBOOKS / name).read_text(encoding="utf-8")
        assert text.startswith("# %%"), f"{name} must be a # %% cell script"
