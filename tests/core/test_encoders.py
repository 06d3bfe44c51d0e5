"""Encoders: vendor token ids, ColBERT layouts, batch invariance, devices, errors."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import lfm_retrievers
from lfm_retrievers import (
    CheckpointError,
    CheckpointNotFoundError,
    ColBERTEncoder,
    DenseEncoder,
    get_encoder,
    list_models,
    load,
)
from lfm_retrievers.models.devices import resolve_device, resolve_dtype
from lfm_retrievers.testing import build_tiny_checkpoint

# checkpoint-contract 7.3: strings -> vendor token ids (add_special_tokens on).
ORACLE = [
    (
        "query: the quick brown fox jumps over the lazy dog",
        [1, 11582, 535, 779, 4605, 10800, 36387, 56586, 1391, 779, 46199, 4949],
    ),
    (
        "document: the quick brown fox jumps over the lazy dog",
        [1, 27729, 535, 779, 4605, 10800, 36387, 56586, 1391, 779, 46199, 4949],
    ),
    (
        "how do I stop two threads corrupting shared state",
        [1, 12128, 1112, 859, 5910, 1547, 34443, 30639, 800, 9071, 2425],
    ),
    ("日本語のテキスト検索", [1, 62506, 1084, 4374, 4459, 7133, 35206]),
    (
        "Arc<Mutex<T>> is the idiomatic way to share mutable state across threads in Rust.",
        [
            1,
            2598,
            576,
            537,
            554,
            50316,
            14949,
            13221,
            856,
            779,
            31931,
            14355,
            1959,
            811,
            5611,
            64297,
            2425,
            3648,
            34443,
            797,
            47801,
            523,
        ],
    ),
    (
        "Preheat the oven to 200C, then butter a cake tin.",
        [1, 8013, 30658, 779, 25743, 811, 730, 1086, 544, 521, 1757, 12908, 768, 29411, 22654, 523],
    ),
]
DOCS = {
    "doc0": (
        "Arc<Mutex<T>> is the idiomatic way to share mutable state across threads in Rust.",
        23,
        21,
    ),
    "doc1": ("Preheat the oven to 200C, then butter a cake tin.", 17, 15),
    "doc2": ("Punctuation!! Should, be; skipped: right? (yes)", 18, 13),
    "card": (
        "Venus is often called Earth's twin because of its similar size and proximity.",
        18,
        17,
    ),
}
THREADS_QUERY = "how do I stop two threads corrupting shared state"


@pytest.fixture(scope="module")
def dense_real(tiny_embedding_real_tok_path: Path) -> DenseEncoder:
    enc = load(tiny_embedding_real_tok_path)
    assert isinstance(enc, DenseEncoder)
    return enc


@pytest.fixture(scope="module")
def colbert_real(tiny_colbert_real_tok_path: Path) -> ColBERTEncoder:
    enc = load(tiny_colbert_real_tok_path)
    assert isinstance(enc, ColBERTEncoder)
    return enc


@pytest.fixture(scope="module")
def dense(tiny_embedding_path: Path) -> DenseEncoder:
    enc = load(tiny_embedding_path)
    assert isinstance(enc, DenseEncoder)
    return enc


@pytest.fixture(scope="module")
def colbert(tiny_colbert_path: Path) -> ColBERTEncoder:
    enc = load(tiny_colbert_path)
    assert isinstance(enc, ColBERTEncoder)
    return enc


# --- vendor token ids (real tokenizers) --------------------------------------------------------


@pytest.mark.parametrize(("text", "ids"), ORACLE)
def test_dense_pipeline_gives_vendor_ids(
    dense_real: DenseEncoder, text: str, ids: list[int]
) -> None:
    for prefix in ("query: ", "document: "):
        if text.startswith(prefix):
            is_query = prefix == "query: "
            got = dense_real.tokenize([text[len(prefix) :]], is_query=is_query)[0].ids
            break
    else:
        got = dense_real.tokenize([text], is_query=True, prompt="")[0].ids
    assert got == ids


def test_colbert_query_layout(colbert_real: ColBERTEncoder) -> None:
    tok = colbert_real.tokenize([THREADS_QUERY, "日本語のテキスト検索"], is_query=True)
    assert (
        tok[0].ids
        == [1, 64400, 12128, 1112, 859, 5910, 1547, 34443, 30639, 800, 9071, 2425] + [7] * 20
    )
    assert tok[0].attention == [1] * 12 + [0] * 20
    assert tok[1].ids == [1, 64400, 62506, 1084, 4374, 4459, 7133, 35206] + [7] * 24
    assert tok[1].attention == [1] * 8 + [0] * 24
    # The expansion id is the checkpoint's EOS (7), read from its tokenizer files.
    assert colbert_real.expansion_id == 7
    assert [len(v) for v in colbert_real.encode_queries([THREADS_QUERY, "x" * 5000])] == [32, 32]


@pytest.mark.parametrize("name", sorted(DOCS))
def test_colbert_document_counts_after_skiplist(colbert_real: ColBERTEncoder, name: str) -> None:
    text, n_tokens, n_kept = DOCS[name]
    tok = colbert_real.tokenize([text], is_query=False)[0]
    assert len(tok.ids) == n_tokens and tok.ids[1] == 64401
    assert sum(tok.keep) == n_kept
    assert colbert_real.encode_documents([text])[0].shape == (n_kept, colbert_real.dim)


def test_skiplist_maps_punctuation_through_tokenizer(colbert_real: ColBERTEncoder) -> None:
    # contract 6.2: each single-character punctuation id = ASCII code + 477.
    assert colbert_real.skiplist_ids == frozenset(
        ord(c) + 477 for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    )


def test_offsets_point_into_original_text(colbert_real: ColBERTEncoder) -> None:
    text = "  Preheat the oven to 200C, then butter a cake tin."
    tok = colbert_real.tokenize([text], is_query=False)[0]
    pieces = [text[a:b] for a, b in tok.offsets[2:]]
    assert "".join(pieces).strip() == text.strip()
    assert tok.offsets[:2] == [(0, 0), (0, 0)]


# --- encoders on tiny checkpoints ----------------------------------------------------------------


def test_dense_shapes_norms_and_prompts(dense: DenseEncoder) -> None:
    q = dense.encode_queries(["hello world", "reset my password"])
    d = dense.encode_documents(["hello world"])
    assert q.dtype == np.float32 and q.shape == (2, dense.dim) and d.shape == (1, dense.dim)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    # The query and document prompts make the same text encode differently.
    assert not np.allclose(q[0], d[0], atol=1e-4)
    same = dense.encode_documents(["hello world"], prompt="query: ")
    np.testing.assert_allclose(same[0], q[0], atol=1e-6)
    assert dense.encode_queries([]).shape == (0, dense.dim)


def test_dense_different_texts_differ(dense: DenseEncoder) -> None:
    # A loader that silently falls back to causal attention gives every text the same CLS vector.
    v = dense.encode_documents(["apples and pears", "a completely unrelated sentence"])
    assert float(v[0] @ v[1]) < 0.9999


def test_empty_string_encodes(dense: DenseEncoder, colbert: ColBERTEncoder) -> None:
    assert dense.encode_documents([""]).shape == (1, dense.dim)
    assert colbert.tokenize([""], is_query=False)[0].ids == [1, colbert.document_marker_id]
    assert colbert.encode_documents([""])[0].shape == (2, colbert.dim)
    assert colbert.encode_queries([""])[0].shape == (32, colbert.dim)


@pytest.mark.parametrize("fixture", ["colbert", "colbert_causal"])
def test_document_vectors_do_not_depend_on_batch(
    request: pytest.FixtureRequest, fixture: str, tiny_causal_colbert_path: Path
) -> None:
    enc = (
        request.getfixturevalue("colbert")
        if fixture == "colbert"
        else load(tiny_causal_colbert_path)
    )
    texts = [
        "short",
        "a medium length document about shipping and returns",
        "a much longer document " * 12,
        "Refunds go to the original payment method, usually within five days.",
        "x",
    ]
    alone = [enc.encode_documents([t])[0] for t in texts]
    for batch_size in (2, 3, 5):
        batched = enc.encode_documents(texts, batch_size=batch_size)
        for a, b in zip(alone, batched, strict=True):
            assert a.shape == b.shape
            assert np.abs(a - b).max() <= 1e-6


def test_dense_vectors_do_not_depend_on_batch(dense: DenseEncoder) -> None:
    texts = ["one", "two words here", "a longer document " * 9, "and another one of medium size"]
    alone = np.stack([dense.encode_documents([t])[0] for t in texts])
    batched = dense.encode_documents(texts, batch_size=4)
    assert np.abs(alone - batched).max() <= 1e-6


def test_query_expansion_states_are_not_zeroed(colbert: ColBERTEncoder) -> None:
    # Queries are all 32 tokens; batching them must not change them either.
    qs = ["short", "a rather longer query about returns and refunds"]
    alone = [colbert.encode_queries([q])[0] for q in qs]
    together = colbert.encode_queries(qs)
    for a, b in zip(alone, together, strict=True):
        assert np.abs(a - b).max() <= 1e-6
    # Expansion vectors differ from one another (they were not collapsed by zeroing).
    assert np.abs(alone[0][10] - alone[0][20]).max() > 1e-4


def test_padded_form_matches_list_form(colbert: ColBERTEncoder) -> None:
    texts = ["alpha beta", "gamma delta epsilon zeta eta theta", "iota"]
    padded = colbert.encode_documents_padded(texts)
    listed = colbert.encode_documents(texts)
    assert padded.vectors.shape[0] == 3 and padded.mask.sum(1).tolist() == [len(v) for v in listed]
    for v, row, m in zip(listed, padded.vectors, padded.mask, strict=True):
        np.testing.assert_array_equal(row[m].numpy(), v)
        assert not row[~m].any()


def test_truncation_is_counted_in_a_warning(
    tiny_embedding_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dense = load(tiny_embedding_path)
    with caplog.at_level(logging.DEBUG, logger="lfm_retrievers.models.encoders"):
        dense.encode_documents(["word " * 2000, "short"])
        dense.encode_documents(["word " * 2000, "word " * 3000, "short"])
    notes = [(r.levelno, r.getMessage()) for r in caplog.records if "truncated" in r.getMessage()]
    # Counted, and said loudly once per encoder: a pipeline re-encoding candidates stays quiet.
    assert notes[0] == (logging.WARNING, "1 of 2 documents exceeded 512 tokens and were truncated")
    assert notes[1] == (logging.DEBUG, "2 of 3 documents exceeded 512 tokens and were truncated")


def test_int8_quantization_is_close_to_fp32(tiny_embedding_path: Path) -> None:
    fp32 = load(tiny_embedding_path)
    int8 = load(tiny_embedding_path, quantize="int8")
    texts = ["how do I reset my password", "shipping takes three days"]
    cos = (fp32.encode_queries(texts) * int8.encode_queries(texts)).sum(1)
    assert cos.min() > 0.95
    with pytest.raises(ValueError, match="quantize"):
        load(tiny_embedding_path, quantize="int4")


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, "a bare string", ["ok", 3], ("ok", None), 42])
def test_bad_texts_raise_type_error(
    dense: DenseEncoder, colbert: ColBERTEncoder, bad: object
) -> None:
    for call in (
        dense.encode_queries,
        dense.encode_documents,
        colbert.encode_queries,
        colbert.encode_documents,
    ):
        with pytest.raises(TypeError):
            call(bad)  # type: ignore[arg-type]


def test_bad_batch_size(dense: DenseEncoder) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        dense.encode_documents(["a"], batch_size=0)


# --- layouts, registry, errors, sharing ----------------------------------------------------------


def test_kind_detected_from_files(tiny_dir: Path) -> None:
    assert isinstance(load(tiny_dir / "embedding"), DenseEncoder)
    colbert = load(tiny_dir / "colbert")
    causal = load(tiny_dir / "colbert-causal")
    assert isinstance(colbert, ColBERTEncoder) and not colbert.checkpoint.causal
    assert isinstance(causal, ColBERTEncoder) and causal.checkpoint.causal
    with pytest.raises(ValueError, match=r"colbert checkpoint.*dense"):
        load(tiny_dir / "colbert", expect="dense")


def test_registry_is_frozen_data() -> None:
    models = list_models()
    assert [m.model_id for m in models] == [
        "LiquidAI/LFM2.5-Embedding-350M",
        "LiquidAI/LFM2.5-ColBERT-350M",
        "LiquidAI/LFM2-ColBERT-350M",
    ]
    assert [m.causal for m in models] == [False, False, True]
    with pytest.raises(AttributeError):
        models[0].dim = 3  # type: ignore[misc]


def test_offline_hub_id_names_model_and_remedy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(CheckpointNotFoundError) as err:
        load("LiquidAI/LFM2.5-ColBERT-350M")
    text = str(err.value)
    assert "LiquidAI/LFM2.5-ColBERT-350M" in text and "HF_HUB_OFFLINE" in text and "folder" in text
    with pytest.raises(CheckpointNotFoundError, match="neither a local folder"):
        load("./no/such/dir/here")


def test_missing_file_is_named(tiny_colbert_path: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_colbert_path, broken)
    (broken / "1_Dense" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"1_Dense/model\.safetensors is missing"):
        load(broken)


def test_unsupported_pooling_and_architecture(tiny_embedding_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "mean"
    shutil.copytree(tiny_embedding_path, bad)
    pool = json.loads((bad / "1_Pooling" / "config.json").read_text())
    pool.update(pooling_mode_cls_token=False, pooling_mode_mean_tokens=True)
    (bad / "1_Pooling" / "config.json").write_text(json.dumps(pool))
    with pytest.raises(CheckpointError, match="pooling_mode_mean_tokens"):
        load(bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["architectures"] = ["BertModel"]
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="architectures"):
        load(bad)


def test_get_encoder_shares_one_instance(tiny_embedding_path: Path) -> None:
    lfm_retrievers.clear_encoder_cache()
    a = get_encoder(tiny_embedding_path)
    b = get_encoder(str(tiny_embedding_path), device="cpu", dtype="float32")
    assert a is b
    assert get_encoder(tiny_embedding_path, dtype="bfloat16") is not a
    with pytest.raises(ValueError, match="dense checkpoint"):
        get_encoder(tiny_embedding_path, expect="colbert")
    # The typed getters the adapters use return the same shared instance, or refuse the kind.
    assert lfm_retrievers.get_dense_encoder(tiny_embedding_path) is a
    with pytest.raises(ValueError, match="dense checkpoint"):
        lfm_retrievers.get_colbert_encoder(tiny_embedding_path)


def test_tiny_builder_refuses_to_clobber(tmp_path: Path) -> None:
    build_tiny_checkpoint("embedding", tmp_path / "e")
    with pytest.raises(FileExistsError):
        build_tiny_checkpoint("embedding", tmp_path / "e")
    with pytest.raises(ValueError, match="kind"):
        build_tiny_checkpoint("bert", tmp_path / "x")  # type: ignore[arg-type]


# --- devices -------------------------------------------------------------------------------------


def test_auto_device_prefers_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    import lfm_retrievers.models.devices as devices

    monkeypatch.setattr(devices, "_available", lambda kind: kind in ("cpu", "mps", "xpu"))
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(devices, "_available", lambda kind: kind in ("cpu", "cuda", "mps"))
    assert resolve_device(None) == torch.device("cuda")
    monkeypatch.setattr(devices, "_available", lambda kind: kind == "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.warns(RuntimeWarning, match="'cuda' was requested but is not available"):
        assert resolve_device("cuda") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"device must be one of .*, got 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(TypeError):
        resolve_device(3)  # type: ignore[arg-type]


def test_auto_dtype_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    # Never float16 automatically: bf16 weights can overflow it.
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float32
    with pytest.raises(ValueError, match=r"dtype must be one of .*, got 'int8'"):
        resolve_dtype("int8", torch.device("cpu"))
