"""The ONNX Runtime backend: same vectors as torch, exported once, portable, clear errors.

Exports are the slow part (a few seconds per tiny model), so each kind is exported once per
session into one cache folder and every test reuses it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lfm_retrievers import (
    CheckpointError,
    ColBERTEncoder,
    EncoderSpec,
    export_onnx,
    get_encoder,
    load,
)
from lfm_retrievers.models.backends import onnx_export
from lfm_retrievers.models.backends.onnx_runtime import (
    OnnxRunner,
    providers_for,
    rows_per_run,
    session_options,
)

KINDS = ("embedding", "colbert", "colbert-causal")
TOL = 1e-5
# Texts we did not tune: several scripts, one character, one far longer than the others.
TEXTS = [
    "How do I reset my password?",
    "x",
    "Die Rücksendung ist innerhalb von 30 Tagen möglich; das Geld geht auf die Karte zurück.",
    "كيف أعيد تعيين كلمة المرور الخاصة بي؟",
    "パスワードをリセットするにはどうすればよいですか？",
    " ".join(["Shipping takes three days and returns are free within a month."] * 6),
]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(autouse=True)
def _use_cache(onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LFM_RETRIEVERS_CACHE", str(onnx_cache))


@pytest.fixture(scope="session")
def pairs(tiny_dir: Path, onnx_cache: Path) -> dict[str, tuple[object, object]]:
    """(torch encoder, onnx encoder) per kind; the onnx ones export into the session cache."""
    out: dict[str, tuple[object, object]] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LFM_RETRIEVERS_CACHE", str(onnx_cache))
        for kind in KINDS:
            out[kind] = (load(tiny_dir / kind), load(tiny_dir / kind, backend="onnx"))
    return out


def _encode(
    enc: object, texts: list[str], is_query: bool, batch_size: int = 32
) -> list[np.ndarray]:
    fn = getattr(enc, "encode_queries" if is_query else "encode_documents")
    out = fn(texts, batch_size=batch_size)
    return [np.asarray(v) for v in out]


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [x.shape for x in a] == [y.shape for y in b]
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("is_query", [True, False], ids=["queries", "documents"])
def test_onnx_matches_torch_single_and_padded_batches(
    pairs: dict[str, tuple[object, object]], kind: str, is_query: bool
) -> None:
    torch_enc, onnx_enc = pairs[kind]
    assert onnx_enc.backend == "onnx"  # type: ignore[attr-defined]
    assert isinstance(onnx_enc.runner, OnnxRunner)  # type: ignore[attr-defined]
    # One mixed-length batch (right-padded) and each text alone.
    assert _max_diff(_encode(torch_enc, TEXTS, is_query), _encode(onnx_enc, TEXTS, is_query)) <= TOL
    for text in TEXTS[:3]:
        assert (
            _max_diff(_encode(torch_enc, [text], is_query), _encode(onnx_enc, [text], is_query))
            <= TOL
        )


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_batched_equals_one_by_one(pairs: dict[str, tuple[object, object]], kind: str) -> None:
    _, onnx_enc = pairs[kind]
    batched = _encode(onnx_enc, TEXTS, is_query=False)
    alone = [_encode(onnx_enc, [t], is_query=False)[0] for t in TEXTS]
    assert _max_diff(batched, alone) <= TOL


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_over_the_activation_budget_runs_in_slices_with_the_same_vectors(
    pairs: dict[str, tuple[object, object]], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch_enc, onnx_enc = pairs[kind]
    runner = onnx_enc.runner  # type: ignore[attr-defined]
    whole = _encode(onnx_enc, TEXTS, is_query=False)
    calls: list[int] = []
    real_run = runner.session.run

    class Counting:  # InferenceSession.run is read-only on the instance: wrap the session
        def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            calls.append(len(feeds["input_ids"]))
            return list(real_run(names, feeds))

    monkeypatch.setattr(runner, "session", Counting())
    unsplit = _encode(onnx_enc, TEXTS, is_query=False)
    assert len(calls) < len(TEXTS)  # the texts share padded batches ...
    calls.clear()
    monkeypatch.setattr(runner, "max_activation_bytes", 1)  # ... that no longer fit: one row a run
    sliced = _encode(onnx_enc, TEXTS, is_query=False)
    assert calls == [1] * len(TEXTS)
    assert _max_diff(unsplit, whole) == 0.0
    assert _max_diff(sliced, whole) <= TOL
    assert _max_diff(sliced, _encode(torch_enc, TEXTS, is_query=False)) <= TOL


def test_rows_per_run_shrinks_with_width_and_never_reaches_zero(tiny_dir: Path) -> None:
    from lfm_retrievers.models.checkpoints import read_checkpoint

    trunk = read_checkpoint(tiny_dir / "embedding").trunk
    budget = 64 * 2**20
    counts = [rows_per_run(trunk, w, budget) for w in (16, 128, 512, 4096)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    assert rows_per_run(trunk, 100_000, 1) == 1


@pytest.mark.parametrize("kind", ["colbert", "colbert-causal"])
def test_colbert_query_expansion_positions_are_kept(
    pairs: dict[str, tuple[object, object]], kind: str
) -> None:
    torch_enc, onnx_enc = pairs[kind]
    assert isinstance(onnx_enc, ColBERTEncoder)
    length = onnx_enc.settings.query_length
    tok = onnx_enc.tokenize(["x", TEXTS[0]], is_query=True)
    # Expansion tokens are masked from attention but kept as vectors (PyLate's contract).
    assert all(len(t.ids) == length and 0 in t.attention for t in tok)
    got = _encode(onnx_enc, ["x", TEXTS[0]], is_query=True)
    want = _encode(torch_enc, ["x", TEXTS[0]], is_query=True)
    for t, g, w in zip(tok, got, want, strict=True):
        first_expansion = t.attention.index(0)
        assert g.shape == (length, onnx_enc.dim)
        assert float(np.abs(g[first_expansion:] - w[first_expansion:]).max()) <= TOL
        # Zeroing those positions as pads would change them: the graph must not do that.
        zeroed = onnx_enc.runner.vectors(
            torch.tensor([t.ids]),
            torch.tensor([t.attention]),
            torch.tensor([t.attention]),
            zero_pads=True,
        )[0].numpy()
        assert float(np.abs(zeroed[first_expansion:] - w[first_expansion:]).max()) > 1e-3


def test_second_load_reuses_the_cached_export(
    pairs: dict[str, tuple[object, object]],
    tiny_dir: Path,
    onnx_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_export(*args: object) -> None:
        msg = "exported again although the cache holds the export"
        raise AssertionError(msg)

    monkeypatch.setattr(onnx_export, "_export_graph", no_export)
    again = load(tiny_dir / "colbert", backend="onnx")
    assert again.runner is not pairs["colbert"][1].runner  # type: ignore[attr-defined]
    folders = sorted(p.name for p in (onnx_cache / "onnx").iterdir() if p.is_dir())
    fingerprints = {load_fp.split("-")[0] for load_fp in folders}
    assert len(fingerprints) == len(folders)  # one folder per model, nothing half-written
    assert not [p for p in (onnx_cache / "onnx").iterdir() if ".tmp-" in p.name]
    np.testing.assert_allclose(
        np.stack(again.encode_documents(["x"])[0]),
        np.stack(pairs["colbert"][1].encode_documents(["x"])[0]),  # type: ignore[attr-defined]
        atol=0,
    )


def test_shared_encoders_are_keyed_by_backend(pairs: object, tiny_dir: Path) -> None:
    path = tiny_dir / "embedding"
    onnx_enc = get_encoder(path, backend="onnx")
    assert onnx_enc is get_encoder(EncoderSpec(str(path), backend="onnx"))
    assert onnx_enc is not get_encoder(path)
    assert onnx_enc.backend == "onnx" and get_encoder(path).backend == "torch"


def test_session_uses_torch_threads_and_full_optimization(
    pairs: dict[str, tuple[object, object]],
) -> None:
    import onnxruntime as ort

    runner = pairs["embedding"][1].runner  # type: ignore[attr-defined]
    options = runner.session.get_session_options()
    assert options.intra_op_num_threads == torch.get_num_threads()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


@pytest.mark.parametrize(("policy", "spinning"), [(None, None), ("passive", "0"), ("ACTIVE", None)])
def test_omp_wait_policy_passive_turns_ort_spinning_off(
    policy: str | None, spinning: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    if policy is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", policy)
    options = session_options(ort, 2)
    try:
        got = options.get_session_config_entry("session.intra_op.allow_spinning")
    except RuntimeError:  # not set: ONNX Runtime's default, spinning on
        got = None
    assert got == spinning


def test_exported_folder_loads_in_a_fresh_process_without_torch_weights(
    pairs: dict[str, tuple[object, object]], tmp_path: Path
) -> None:
    torch_enc = pairs["colbert"][0]
    folder = export_onnx(torch_enc, tmp_path / "shipped")
    assert not list(folder.rglob("*.safetensors"))
    empty_cache = tmp_path / "empty-cache"
    code = textwrap.dedent(
        """
        import json, sys
        from lfm_retrievers import load
        enc = load(sys.argv[1], backend="onnx")
        vecs = enc.encode_documents(json.loads(sys.argv[2]))
        print(json.dumps({"runner": type(enc.runner).__name__, "fp": enc.fingerprint,
                          "vectors": [v.tolist() for v in vecs]}))
        """
    )
    env = {**os.environ, "LFM_RETRIEVERS_CACHE": str(empty_cache)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder), json.dumps(TEXTS[:3])],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["runner"] == "OnnxRunner"
    assert got["fp"] == torch_enc.fingerprint  # type: ignore[attr-defined]
    assert not empty_cache.exists()  # nothing was exported in that process
    want = _encode(torch_enc, TEXTS[:3], is_query=False)
    assert _max_diff(want, [np.asarray(v, dtype=np.float32) for v in got["vectors"]]) <= TOL


def test_two_processes_exporting_at_once_share_one_export(
    pairs: object, tiny_dir: Path, onnx_cache: Path, tmp_path: Path
) -> None:
    # Both processes race for the int8 export (the fp32 graph it quantizes is seeded from the
    # session cache, to keep this test fast): the key's lock lets exactly one of them write it.
    cache = tmp_path / "race-cache"
    for entry in (onnx_cache / "onnx").iterdir():
        if entry.is_dir() and "-float32-none-" in entry.name:
            shutil.copytree(entry, cache / "onnx" / entry.name)
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "from lfm_retrievers import load\n"
        "enc = load(sys.argv[1], backend='onnx', quantize='int8')\n"
        "print(enc.encode_queries(['x'])[0][:4].tolist())\n"
    )
    env = {**os.environ, "LFM_RETRIEVERS_CACHE": str(cache)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tiny_dir / "embedding")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in results]
    assert results[0][0] == results[1][0]
    logs = "".join(err for _, err in results)
    assert logs.count("exporting ") == 1 and "int8" in logs
    int8 = [p for p in (cache / "onnx").iterdir() if "-int8-" in p.name and p.is_dir()]
    assert len(int8) == 1
    assert not [p for p in (cache / "onnx").iterdir() if ".tmp-" in p.name]
    assert onnx_export.read_export(int8[0]).quantize == "int8"


def test_int8_keeps_shapes_and_reports_cosine_to_fp32(
    pairs: dict[str, tuple[object, object]],
    tiny_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def no_export(*args: object) -> None:
        msg = "int8 must quantize the cached fp32 graph, not export again"
        raise AssertionError(msg)

    monkeypatch.setattr(onnx_export, "_export_graph", no_export)
    report = []
    for kind in ("embedding", "colbert"):
        fp32 = pairs[kind][1]
        int8 = load(tiny_dir / kind, backend="onnx", quantize="int8")
        assert int8.quantize == "int8" and int8.backend == "onnx"
        a, b = _encode(fp32, TEXTS, False), _encode(int8, TEXTS, False)
        assert [x.shape for x in a] == [y.shape for y in b]
        cos = float(np.mean([np.sum(x * y, axis=-1).mean() for x, y in zip(a, b, strict=True)]))
        report.append(f"{kind}: mean cosine int8 vs fp32 {cos:.4f}")
        assert 0.5 < cos < 1.0  # quantized, so not identical; still the same model
    with capsys.disabled():
        print("\n" + "\n".join(report))


def test_torch_int8_is_kept_and_quiet(tiny_dir: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc = load(tiny_dir / "embedding", quantize="int8")
        enc.encode_queries(["x"])
        enc.encode_queries(["y"])
    assert enc.backend == "torch" and enc.quantize == "int8"
    assert [w for w in caught if "quantiz" in str(w.message).lower()] == []


def test_bad_backend_values_and_types(tiny_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"backend must be one of \['torch', 'onnx'\], got 'tens"):
        load(tiny_dir / "embedding", backend="tensorflow")
    with pytest.raises(TypeError, match="backend must be str"):
        load(tiny_dir / "embedding", backend=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        EncoderSpec("m", backend="tf")
    with pytest.raises(ValueError, match="dtype='bfloat16' is not supported with backend='onnx'"):
        load(tiny_dir / "embedding", backend="onnx", dtype="bfloat16")
    with pytest.raises(ValueError, match="runs on a GPU only"):
        load(tiny_dir / "embedding", backend="onnx", dtype="float16", device="cpu")


def test_missing_extra_names_the_pip_line(
    pairs: object, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install 'lfm-retrievers\[onnx\]'"):
        load(tiny_dir / "embedding", backend="onnx")


def test_gpu_without_gpu_provider_is_a_clear_error() -> None:
    assert providers_for("cpu", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match=r"CUDAExecutionProvider.*onnxruntime-gpu"):
        providers_for("cuda", ["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="runs on cpu or cuda, not 'mps'"):
        providers_for("mps", ["CPUExecutionProvider", "CoreMLExecutionProvider"])
    gpu = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers_for("cuda", gpu) == gpu


def _shipped(pairs: dict[str, tuple[object, object]], kind: str, where: Path) -> Path:
    return export_onnx(pairs[kind][0], where)


def test_other_format_version_or_foreign_graph_is_refused(
    pairs: dict[str, tuple[object, object]], tmp_path: Path
) -> None:
    colbert = _shipped(pairs, "colbert", tmp_path / "colbert")
    dense = _shipped(pairs, "embedding", tmp_path / "dense")
    assert load(colbert, backend="onnx").dim == pairs["colbert"][1].dim  # type: ignore[attr-defined]

    old = tmp_path / "old"
    shutil.copytree(colbert, old)
    manifest = json.loads((old / onnx_export.MANIFEST).read_text())
    manifest["format_version"] = 99
    (old / onnx_export.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"format v99.*export the model again"):
        load(old, backend="onnx")

    # A folder exported before the one manifest convention (format 1, onnx_manifest.json).
    legacy = tmp_path / "legacy"
    shutil.copytree(colbert, legacy)
    (legacy / onnx_export.MANIFEST).rename(legacy / "onnx_manifest.json")
    with pytest.raises(CheckpointError, match=r"format version 1 .*Export the model again"):
        load(legacy, backend="onnx")
    with pytest.raises(CheckpointError, match=r"format version 1 "):
        onnx_export.read_export(legacy)

    foreign = tmp_path / "foreign"
    shutil.copytree(colbert, foreign)
    for name in ("model.onnx", "model.onnx.data"):
        if (dense / name).exists():
            shutil.copyfile(dense / name, foreign / name)
    with pytest.raises(CheckpointError, match=r"model.onnx"):
        load(foreign, backend="onnx")

    with pytest.raises(ValueError, match=r"is an ONNX export .*backend='onnx'"):
        load(colbert)  # the torch backend needs weights the folder does not have
    with pytest.raises(ValueError, match="not empty"):
        export_onnx(pairs["colbert"][0], tmp_path / "old" / "1_Dense")


def test_every_adapter_passes_backend_through(
    pairs: dict[str, tuple[object, object]], tiny_dir: Path
) -> None:
    dense, colbert = str(tiny_dir / "embedding"), str(tiny_dir / "colbert")
    want = pairs["embedding"][0].encode_queries(["how do I return an item?"])[0]  # type: ignore[attr-defined]
    checked = 0
    if _has("langchain_core"):
        from langchain_lfm import LFMColBERTReranker, LFMColBERTRetriever, LFMEmbeddings

        emb = LFMEmbeddings(model=dense, backend="onnx")
        np.testing.assert_allclose(emb.embed_query("how do I return an item?"), want, atol=TOL)
        assert emb.encoder.backend == "onnx"
        assert LFMColBERTReranker(model=colbert, backend="onnx").encoder.backend == "onnx"
        assert LFMColBERTRetriever(model=colbert, backend="onnx").encoder.backend == "onnx"
        checked += 1
    if _has("llama_index.core"):
        from llama_index.embeddings.lfm import LFMEmbedding
        from llama_index.postprocessor.lfm_rerank import LFMColBERTRerank
        from llama_index.retrievers.lfm import LFMColBERTRetriever as LIRetriever

        li = LFMEmbedding(model_name=dense, backend="onnx")
        np.testing.assert_allclose(
            li.get_query_embedding("how do I return an item?"), want, atol=TOL
        )
        assert li.encoder.backend == "onnx"
        assert LFMColBERTRerank(model=colbert, backend="onnx").encoder.backend == "onnx"
        assert LIRetriever(model=colbert, backend="onnx").encoder.backend == "onnx"
        checked += 1
    if _has("haystack"):
        from haystack_integrations.components.embedders.lfm import LFMTextEmbedder
        from haystack_integrations.components.rankers.lfm import LFMColBERTRanker

        hs = LFMTextEmbedder(model=dense, backend="onnx")
        again = LFMTextEmbedder.from_dict(hs.to_dict())
        assert again.backend == "onnx"
        again.warm_up()
        np.testing.assert_allclose(
            again.run(text="how do I return an item?")["embedding"], want, atol=TOL
        )
        old = hs.to_dict()
        del old["init_parameters"]["backend"]  # a pipeline saved before the field existed
        assert LFMTextEmbedder.from_dict(old).backend == "torch"
        ranker = LFMColBERTRanker(model=colbert, backend="onnx")
        ranker.warm_up()
        assert ranker._encoder is not None and ranker._encoder.backend == "onnx"
        with pytest.raises(ValueError, match="backend"):
            LFMTextEmbedder(model=dense, backend="tf")
        checked += 1
    assert checked == 3


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module.split(".")[0]) is not None and (
        importlib.util.find_spec(module) is not None
    )


def test_cli_takes_backend_and_under_load() -> None:
    from lfm_retrievers.cli import build_parser

    args = build_parser().parse_args(["bench", "encoder", "--backend", "onnx", "--under-load"])
    assert args.backend == "onnx" and args.under_load
    assert build_parser().parse_args(["bench", "retrieval", "--under-load"]).under_load
    args = build_parser().parse_args(["search", "--backend", "onnx", "q"])
    assert args.backend == "onnx"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["search", "--backend", "tf", "q"])


def test_an_index_built_with_torch_searches_the_same_with_onnx(
    pairs: dict[str, tuple[object, object]], tiny_dir: Path, tmp_path: Path
) -> None:
    from lfm_retrievers import ColBERTIndex

    torch_enc = pairs["colbert"][0]
    index = ColBERTIndex(torch_enc)
    index.add(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
    index.save(tmp_path / "index")
    reopened = ColBERTIndex.load(tmp_path / "index", model=tiny_dir / "colbert", backend="onnx")
    assert (
        reopened.encoder.backend == "onnx"
    )  # same fingerprint: the model the index was built with
    for query in ("reset password", "Rücksendung", "nothing like this appears anywhere"):
        want = index.search(query, k=len(TEXTS))
        got = reopened.search(query, k=len(TEXTS))
        by_id = {h.id: h.score for h in got}
        assert sorted(by_id) == sorted(h.id for h in want)
        np.testing.assert_allclose([by_id[h.id] for h in want], [h.score for h in want], atol=1e-4)
