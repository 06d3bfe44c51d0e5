"""Oracle values of the real checkpoints (checkpoint contract section 7.5).

The weights cannot be downloaded on this project's machines, so these tests are deselected by
default. Wherever the checkpoints exist, run them unchanged with::

    LFM_RETRIEVERS_REAL_WEIGHTS=/models python -m pytest -m real_weights

where ``/models`` holds ``LFM2.5-Embedding-350M/`` and ``LFM2.5-ColBERT-350M/``. The reference
values were computed by the vendor pipeline in float32, unpadded, batch size 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lfm_retrievers import ColBERTEncoder, DenseEncoder, load
from lfm_retrievers.scoring import maxsim

pytestmark = pytest.mark.real_weights

FOX = "the quick brown fox jumps over the lazy dog"
THREADS = "how do I stop two threads corrupting shared state"
DOCS = [
    "Arc<Mutex<T>> is the idiomatic way to share mutable state across threads in Rust.",
    "Preheat the oven to 200C, then butter a cake tin.",
    "Punctuation!! Should, be; skipped: right? (yes)",
]


def _model(name: str) -> Path:
    root = os.environ.get("LFM_RETRIEVERS_REAL_WEIGHTS")
    if not root or not (Path(root) / name / "model.safetensors").exists():
        pytest.skip(f"set LFM_RETRIEVERS_REAL_WEIGHTS to a folder holding {name}/")
    return Path(root) / name


def test_embedding_cls_oracle() -> None:
    enc = load(_model("LFM2.5-Embedding-350M"), device="cpu", dtype="float32")
    assert isinstance(enc, DenseEncoder)
    expected = {
        True: ([-2.30905, -1.82310, 1.19164, -0.93878], 47.38),
        False: ([-0.97007, 0.99165, 3.10312, -2.03045], 74.52),
    }
    for is_query, (head, norm) in expected.items():
        ids = enc.tokenize([FOX], is_query=is_query)[0].ids
        with torch.inference_mode():
            cls = enc.trunk(torch.tensor([ids]))[0, 0]
        np.testing.assert_allclose(cls[:4].numpy(), head, atol=5e-4)
        assert float(cls.norm()) == pytest.approx(norm, abs=0.05)


def test_colbert_oracle() -> None:
    enc = load(_model("LFM2.5-ColBERT-350M"), device="cpu", dtype="float32")
    assert isinstance(enc, ColBERTEncoder)
    (query,) = enc.encode_queries([THREADS])
    np.testing.assert_allclose(query[0, :4], [0.03558, -0.01556, 0.08958, -0.16910], atol=2e-3)
    docs = enc.encode_documents(DOCS)
    assert [len(d) for d in docs] == [21, 15, 13]
    np.testing.assert_allclose(maxsim(query, docs), [28.12215, 27.29046, 27.48533], atol=1e-2)
