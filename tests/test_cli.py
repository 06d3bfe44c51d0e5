"""The ``lfm-retrievers`` command, run as a subprocess (and in process where startup cost
would dominate), with the tiny checkpoints."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lfm_retrievers import cli
from lfm_retrievers.corpus import CorpusError, load_corpus

ROOT = Path(__file__).resolve().parent.parent
FAQ = ROOT / "cookbooks" / "data" / "faq.jsonl"


@pytest.fixture(autouse=True)
def _cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs: no progress bars, no colour, no model from the environment."""
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("LFM_RETRIEVERS_MODEL", raising=False)
    monkeypatch.delenv("LFM_RETRIEVERS_DENSE_MODEL", raising=False)


def run_cli(*args: str, cache: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "NO_COLOR": "1",
        "TQDM_DISABLE": "1",
        "LFM_RETRIEVERS_CACHE": str(cache),
    }
    env.pop("LFM_RETRIEVERS_MODEL", None)
    return subprocess.run(
        [sys.executable, "-m", "lfm_retrievers.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in lines if "error:" in ln]
    assert len(errors) == 1 and errors[0] == lines[-1], proc.stderr
    return errors[0]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# A corpus where BM25's answer is known without running it: each query shares words with
# exactly the documents listed, all documents have the same length (3 words).
DOCS = [
    {"_id": "d1", "title": "", "text": "alpha beta gamma"},
    {"_id": "d2", "title": "", "text": "alpha delta epsilon"},
    {"_id": "d3", "title": "", "text": "zeta eta theta"},
    {"_id": "d4", "title": "", "text": "iota kappa lambda"},
]
QUERIES = [
    {"_id": "q1", "text": "alpha beta"},  # d1 (2 terms) then d2 (1 term); relevant: d2 -> rank 2
    {"_id": "q2", "text": "theta"},  # d3 only; relevant: d3 -> rank 1
    {"_id": "q3", "text": "omega"},  # nothing matches; relevant: d4 -> never retrieved
    {"_id": "q4", "text": "beta alpha"},  # d1, d2; graded d1=2, d2=1 -> the ideal order
]
QRELS = [("q1", "d2", 1), ("q2", "d3", 1), ("q3", "d4", 1), ("q4", "d1", 2), ("q4", "d2", 1)]


def write_beir(folder: Path, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(d) + "\n" for d in DOCS)
    if gz:
        with gzip.open(folder / "corpus.jsonl.gz", "wt", encoding="utf-8") as f:
            f.write(lines)
    else:
        (folder / "corpus.jsonl").write_text(lines, encoding="utf-8")
    write_jsonl(folder / "queries.jsonl", QUERIES)
    (folder / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS),
        encoding="utf-8",
    )
    return folder


# -- corpus loading (in process) ------------------------------------------------------------------


def test_load_corpus_formats(tmp_path: Path) -> None:
    jsonl = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"id": "a", "text": "first", "title": "T", "lang": "en"},
            {"text": "no id", "metadata": {"k": 1}},
            {"_id": 7, "text": "int id"},
        ],
    )
    (tmp_path / "c.jsonl").write_text(jsonl.read_text() + "\n", encoding="utf-8")  # blank line ok
    docs = load_corpus(jsonl)
    assert [d.id for d in docs] == ["a", "2", "7"]  # a row without id gets its line number
    assert docs[0].metadata == {"lang": "en"} and docs[0].search_text == "T first"
    assert docs[1].metadata == {"k": 1}

    beir = load_corpus(write_beir(tmp_path / "beir"))
    assert [d.id for d in beir] == ["d1", "d2", "d3", "d4"]

    texts = tmp_path / "notes"
    (texts / "sub").mkdir(parents=True)
    (texts / "a.md").write_text("# Returns\nSend it back.", encoding="utf-8")
    (texts / "sub" / "b.txt").write_text("plain text", encoding="utf-8")
    (texts / "empty.txt").write_text("  \n", encoding="utf-8")
    (texts / "skip.bin").write_bytes(b"\x00")
    folder = load_corpus(texts)
    assert [(d.id, d.title) for d in folder] == [("a.md", "Returns"), ("sub/b.txt", "b")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"text": "ok"}\n{"text": broken}\n', r"c\.jsonl:2: not valid JSON"),
        ('{"text": "ok"}\n\n["a list"]\n', r"c\.jsonl:3: expected a JSON object"),
        ('{"title": "no text"}\n', r"c\.jsonl:1: no 'text' field"),
        ('{"id": "x", "text": "a"}\n{"id": "x", "text": "b"}\n', "duplicate document id 'x'"),
        ("\n\n", "the corpus is empty"),
    ],
)
def test_load_corpus_errors_name_file_and_line(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError, match=expected):
        load_corpus(path)


# -- search ---------------------------------------------------------------------------------------


def test_search_jsonl_json_schema(tiny_colbert_path: Path, tmp_path: Path) -> None:
    corpus = write_jsonl(
        tmp_path / "docs.jsonl",
        [
            {
                "id": "ret",
                "title": "Returns",
                "text": "Return unused items within 30 days.",
                "lang": "en",
            },
            {"id": "pw", "text": "Reset your password from the sign-in page."},
            {"id": "ship", "text": "Delivery takes three days.", "metadata": {"tier": "std"}},
            {"id": "cake", "text": "Preheat the oven and butter the tin."},
        ],
    )
    proc = run_cli(
        "search", "--corpus", str(corpus), "--model", str(tiny_colbert_path),
        "-k", "5", "--json", "--require-match", "return items password",
        cache=tmp_path / "cache",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["query"] == "return items password"
    assert out["model"]["kind"] == "colbert" and out["model"]["untrained"] is False
    assert out["corpus"]["documents"] == 4
    assert out["settings"]["method"] == "bm25+colbert" and out["settings"]["k"] == 5
    results = out["results"]
    # --require-match: BM25 proposes only documents sharing a term with the query.
    assert sorted(r["id"] for r in results) == ["pw", "ret"]
    assert [r["rank"] for r in results] == [1, 2]
    assert results[0]["score"] >= results[1]["score"]
    by_id = {r["id"]: r for r in results}
    assert by_id["ret"]["title"] == "Returns" and by_id["ret"]["metadata"] == {"lang": "en"}
    assert by_id["ret"]["text"] == "Returns Return unused items within 30 days."
    for r in results:
        assert set(r) >= {
            "rank",
            "id",
            "score",
            "colbert_score",
            "bm25_score",
            "bm25_rank",
            "title",
            "text",
            "metadata",
            "highlights",
        }
        assert r["score"] == pytest.approx(r["colbert_score"])
        assert r["bm25_score"] > 0 and r["bm25_rank"] in (1, 2)
        assert r["highlights"], "every hit has at least one highlighted span"
        for h in r["highlights"]:
            assert r["text"][h["start"] : h["end"]] == h["text"] and h["text"].strip()


def test_search_beir_folder_table_with_tiny_model(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir")
    proc = run_cli(
        "search", "--corpus", str(folder), "--model", "tiny", "alpha beta", cache=tmp_path / "cache"
    )
    assert proc.returncode == 0, proc.stderr
    assert "UNTRAINED" in proc.stderr  # the tiny model says loudly what it is
    assert list((tmp_path / "cache").glob("tiny-colbert-*/model.safetensors"))
    lines = proc.stdout.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.split()[:3] == ["#", "score", "bm25"])
    rows = [ln for ln in lines[header + 2 :] if ln.strip()]
    # all four documents (k=10): d1 and d2 share words with the query, d3 and d4 fill the pool
    assert [r.split()[0] for r in rows] == ["1", "2", "3", "4"]
    bm25 = {r.split()[3]: float(r.split()[2]) for r in rows}
    assert bm25["d1"] > 0 and bm25["d2"] > 0 and bm25["d3"] == bm25["d4"] == 0.0
    scores = [float(r.split()[1]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert "[" in proc.stdout and "]" in proc.stdout  # highlights as brackets when not a tty


def test_search_fallback_tiny_over_the_faq(tmp_path: Path) -> None:
    """The README's first command: the default model, or (no Hub) the tiny one, loudly."""
    proc = run_cli(
        "search", "--fallback-tiny", "--corpus", str(FAQ), "--json", "-k", "3",
        "how do I return an item?", cache=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    if "could not load 'LiquidAI/LFM2.5-ColBERT-350M'" in proc.stderr:
        assert "UNTRAINED" in proc.stderr
        assert out["model"]["name"] == "tiny" and out["model"]["untrained"] is True
    else:  # the real model is in the local Hugging Face cache
        assert out["model"]["untrained"] is False
    assert out["corpus"]["documents"] == 18 and len(out["results"]) == 3


def test_search_with_persistent_index(
    tiny_colbert_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_jsonl(
        tmp_path / "docs.jsonl",
        [{"id": "a", "text": "alpha beta"}, {"id": "b", "text": "gamma delta"}],
    )
    index_dir = tmp_path / "index"
    args = ["search", "--model", str(tiny_colbert_path), "--json", "--no-progress"]
    assert cli.main([*args, "--corpus", str(corpus), "--index", str(index_dir), "alpha"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["settings"]["method"] == "index" and index_dir.is_dir()
    assert sorted(r["id"] for r in first["results"]) == ["a", "b"]  # the index scores all docs
    # Reuse without the corpus; then sync a changed corpus into it.
    assert cli.main([*args, "--index", str(index_dir), "alpha"]) == 0
    assert sorted(r["id"] for r in json.loads(capsys.readouterr().out)["results"]) == ["a", "b"]
    write_jsonl(corpus, [{"id": "a", "text": "alpha beta"}, {"id": "c", "text": "epsilon"}])
    assert cli.main([*args, "--corpus", str(corpus), "--index", str(index_dir), "alpha"]) == 0
    captured = capsys.readouterr()
    assert "1 added, 1 removed" in captured.err
    assert sorted(r["id"] for r in json.loads(captured.out)["results"]) == ["a", "c"]


def test_search_qdrant_creates_and_syncs_a_collection(
    tiny_colbert_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("qdrant_client")
    corpus = write_jsonl(
        tmp_path / "docs.jsonl",
        [{"id": "a", "text": "alpha beta", "lang": "en"}, {"id": "b", "text": "gamma delta"}],
    )
    where = ["--qdrant", str(tmp_path / "qdrant"), "--collection", "docs"]
    args = ["search", "--model", str(tiny_colbert_path), "--json", "--no-progress", *where]
    assert cli.main([*args, "--corpus", str(corpus), "--mode", "colbert", "alpha"]) == 0
    captured = capsys.readouterr()
    first = json.loads(captured.out)
    assert first["settings"]["method"] == "qdrant" and "2 uploaded, 0 deleted" in captured.err
    assert sorted(r["id"] for r in first["results"]) == ["a", "b"]
    write_jsonl(corpus, [{"id": "a", "text": "alpha beta", "lang": "en"}, {"id": "c", "text": "x"}])
    assert cli.main([*args, "--corpus", str(corpus), "--mode", "colbert", "alpha"]) == 0
    captured = capsys.readouterr()
    assert "1 uploaded, 1 deleted" in captured.err  # "a" was not encoded again
    assert sorted(r["id"] for r in json.loads(captured.out)["results"]) == ["a", "c"]
    assert cli.main(["search", "--no-progress", "--json", *where, "alpha"]) == 0  # no corpus
    assert json.loads(capsys.readouterr().out)["results"][0]["id"] == "a"
    assert cli.main(["search", "--qdrant", ":memory:", "alpha"]) == 1
    assert "--collection" in capsys.readouterr().err


@pytest.mark.parametrize("store", ["qdrant", "in-process"])
def test_search_passes_backend_to_the_model_on_every_path(
    store: str, tiny_colbert_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store == "qdrant":
        pytest.importorskip("qdrant_client")
    from lfm_retrievers.models import registry

    seen: list[str] = []
    real_load = registry.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("backend", "torch"))
        return real_load(*args, **{**kwargs, "backend": "torch"})  # no export needed here

    monkeypatch.setattr(registry, "load", spy)
    corpus = write_jsonl(tmp_path / "docs.jsonl", [{"id": "a", "text": "alpha beta"}])
    where = ["--qdrant", str(tmp_path / "q"), "--collection", "d"] if store == "qdrant" else []
    argv = ["search", "--model", str(tiny_colbert_path), "--corpus", str(corpus), *where]
    assert cli.main([*argv, "--json", "--no-progress", "--backend", "onnx", "alpha"]) == 0
    assert seen and set(seen) == {"onnx"}


# -- eval -----------------------------------------------------------------------------------------


def test_eval_bm25_known_answer_and_parent_folder(tmp_path: Path) -> None:
    write_beir(tmp_path / "sets" / "one")
    write_beir(tmp_path / "sets" / "two", gz=False)
    proc = run_cli(
        "eval", "--data", str(tmp_path / "sets"), "--mode", "bm25", "--json", cache=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [r["dataset"] for r in out["results"]] == ["one", "two"]
    # q1: relevant doc at rank 2; q2 rank 1; q3 never retrieved; q4 ideal graded order.
    ndcg = (1 / math.log2(3) + 1 + 0 + 1) / 4
    for r in out["results"]:
        m = r["metrics"]
        assert r["queries"] == 4 and r["documents"] == 4
        assert m["ndcg@10"] == pytest.approx(ndcg, abs=1e-4)
        assert m["mrr@10"] == pytest.approx((0.5 + 1 + 0 + 1) / 4, abs=1e-4)
        assert m["recall@10"] == pytest.approx(0.75, abs=1e-4)
        assert m["recall@100"] == pytest.approx(0.75, abs=1e-4)
    s = out["settings"]
    assert s["bm25"] == {
        "library": "rank-bm25",
        "analyzer": "default",
        "language": None,
        "variant": "plus",
        "k1": 1.5,
        "b": 0.75,
    }
    assert s["depth"] == 100 and "pytrec_eval" in s["metrics_library"]


def test_eval_model_modes_in_process(
    tiny_colbert_path: Path,
    tiny_embedding_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = write_beir(tmp_path / "one")
    # recall@100 over 4 docs: every mode ranks every document (BM25 candidates are filled
    # with zero-score documents up to the depth, like rank-bm25's get_top_n)
    expected = {"dense": 1.0, "colbert": 1.0, "bm25+colbert": 1.0, "hybrid": 1.0}
    for mode, model in (
        ("dense", tiny_embedding_path),
        ("colbert", tiny_colbert_path),
        ("bm25+colbert", tiny_colbert_path),
        ("hybrid", tiny_colbert_path),
    ):
        extra = ["--dense-model", str(tiny_embedding_path)] if mode == "hybrid" else []
        code = cli.main(
            [
                "eval",
                "--data",
                str(folder),
                "--mode",
                mode,
                "--model",
                str(model),
                "--json",
                "--no-progress",
                *extra,
            ]
        )
        assert code == 0
        out = json.loads(capsys.readouterr().out)
        m = out["results"][0]["metrics"]
        # Dense and ColBERT indexes rank every document (depth 100 > 4); BM25 candidates don't
        # include q3's document. Those recalls hold whatever the (random) weights.
        assert m["recall@100"] == pytest.approx(expected[mode]), mode
        assert all(0.0 <= v <= 1.0 for v in m.values())
        assert out["settings"]["model"]["path"] == str(model)
        if mode == "hybrid":
            assert out["settings"]["dense_model"]["path"] == str(tiny_embedding_path)
    # --max-queries keeps the first N judged queries only
    assert (
        cli.main(["eval", "--data", str(folder), "--mode", "bm25", "--max-queries", "2", "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["queries"] == 2
    assert out["results"][0]["metrics"]["mrr@10"] == pytest.approx(0.75)


def test_search_language_and_dense_model(
    tiny_colbert_path: Path,
    tiny_embedding_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corpus = write_jsonl(
        tmp_path / "docs.jsonl",
        [
            {"id": "es", "text": "Los gatos duermen en las casas."},
            {"id": "de", "text": "Die Kinder spielen im Garten."},
            {"id": "en", "text": "Engineers were running experiments."},
        ],
    )
    base = ["search", "--corpus", str(corpus), "--model", str(tiny_colbert_path), "--json"]
    assert cli.main([*base, "--language", "auto", "--require-match", "gato casa"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in out["results"]] == ["es"]  # only through Spanish stemming
    assert out["settings"]["language"] == "auto"
    assert cli.main([*base, "--dense-model", str(tiny_embedding_path), "-k", "3", "zzz"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 3  # no BM25 match: dense candidates (k results always)
    assert all(r["bm25_score"] is None and r["dense_rank"] for r in out["results"])
    assert out["settings"]["dense_model"] == str(tiny_embedding_path)
    assert cli.main([*base, "--language", "klingon", "zzz"]) == 1
    assert "ISO 639-1" in capsys.readouterr().err


def test_eval_bm25_reproduces_published_numbers(shared_data_dir: Path, tmp_path: Path) -> None:
    proc = run_cli(
        "eval", "--data", str(shared_data_dir), "--mode", "bm25", "--json", cache=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    got = {r["dataset"]: r["metrics"]["ndcg@10"] for r in json.loads(proc.stdout)["results"]}
    assert got["scifact"] == pytest.approx(0.665, abs=0.02)
    assert got["nfcorpus"] == pytest.approx(0.325, abs=0.02)


# -- bench, models ------------------------------------------------------------------------------


def test_bench_quick_runs(tmp_path: Path) -> None:
    proc = run_cli("bench", "--quick", "--json", cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [(r["stage"], r["docs_cached"]) for r in out["rows"]] == [
        ("Query embedding", "yes"),
        ("Query embedding", "yes"),
        ("Query embedding + MaxSim", "yes"),
        ("Query + doc embedding + MaxSim", "no"),
    ]
    for r in out["rows"]:
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]
    s = out["settings"]
    assert s["query_tokens"] == {"dense": 32, "colbert": 32} and s["document_tokens"] == 256
    assert "speed does not depend on weight values" in out["note"]


def test_bench_encoder_quick_table(tmp_path: Path) -> None:
    proc = run_cli("bench", "encoder", "--quick", "--docs", "4", cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "query latency (32 tokens" in text and "tokens/s" in text
    ratio = [ln for ln in text.splitlines() if "ratio" in ln]
    assert len(ratio) == 1 and ratio[0].rstrip().endswith("x")
    assert "GEMM peak" in text and "peak resident memory" in text and "int8" in text


def test_bench_retrieval_quick_wiring(
    tiny_colbert_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_beir(tmp_path / "beir")
    argv = [
        "bench",
        "retrieval",
        "--quick",
        "--data",
        str(folder),
        "--model",
        str(tiny_colbert_path),
    ]
    assert cli.main([*argv, "--output", str(tmp_path / "r.json")]) == 0
    text = capsys.readouterr().out
    assert "MaxSim rerank" in text and "BM25 -> ColBERT top 10" in text
    out = json.loads((tmp_path / "r.json").read_text())
    assert out["bm25"]["dataset"]["documents"] == 4
    assert out["maxsim_and_index"]["colbert_index"][0]["n_docs"] == 10_000


def test_models_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "--json"]) == 0
    ids = [m["model_id"] for m in json.loads(capsys.readouterr().out)]
    assert ids == [
        "LiquidAI/LFM2.5-Embedding-350M",
        "LiquidAI/LFM2.5-ColBERT-350M",
        "LiquidAI/LFM2-ColBERT-350M",
    ]
    assert cli.main(["models"]) == 0
    assert "| LiquidAI/LFM2.5-ColBERT-350M" in capsys.readouterr().out


# -- user errors: one line, non-zero, no traceback -------------------------------------------------


def test_user_errors_subprocess(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": oops}\n', encoding="utf-8")
    line = one_error_line(run_cli("search", "--corpus", str(bad), "query", cache=tmp_path))
    assert f"{bad}:2" in line
    line = one_error_line(
        run_cli("eval", "--data", str(tmp_path), "--mode", "sparse", cache=tmp_path)
    )
    assert "--mode" in line and "bm25+colbert" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["search", "--corpus", "{tmp}/missing.jsonl", "q"], "corpus not found"),
        (["search", "--corpus", "{tmp}/empty.jsonl", "q"], "the corpus is empty"),
        (
            ["search", "--corpus", "{tmp}/ok.jsonl", "--model", "LiquidAI/No-Such-Model", "q"],
            "No-Such-Model",
        ),
        (
            ["search", "--corpus", "{tmp}/ok.jsonl", "--model", "{tmp}/not-a-model", "q"],
            "not-a-model",
        ),
        (["search", "--corpus", "{tmp}/ok.jsonl", "--model", "{emb}", "q"], "colbert"),
        (["search", "--index", "{tmp}/no-index", "q"], "pass --corpus to build it"),
        (["search", "--corpus", "{tmp}/ok.jsonl", "-k", "0", "q"], "-k and --candidates"),
        (["eval", "--data", "{tmp}/ok.jsonl", "--mode", "dense", "--model", "{emb}"], "folder"),
        (["eval", "--data", "{tmp}/beir", "--mode", "dense", "--model", "{col}"], "dense"),
        (["eval", "--data", "{tmp}/nowhere"], "data folder not found"),
        (["eval", "--data", "{tmp}/not-a-model", "--mode", "bm25"], "no BEIR dataset"),
    ],
)
def test_user_errors_in_process(
    argv: list[str],
    expected: str,
    tmp_path: Path,
    tiny_embedding_path: Path,
    tiny_colbert_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LFM_RETRIEVERS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    write_jsonl(tmp_path / "ok.jsonl", [{"text": "hello"}])
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "config.json").write_text("{}", encoding="utf-8")
    write_beir(tmp_path / "beir")
    args = [a.format(tmp=tmp_path, emb=tiny_embedding_path, col=tiny_colbert_path) for a in argv]
    assert cli.main(args) != 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("lfm-retrievers: error:"), err
    assert expected in err[0]
