"""BEIR loading and pytrec_eval metrics, checked against values computed by hand."""

from __future__ import annotations

import gzip
import json
import math
import sys
from pathlib import Path

import pytest

from lfm_retrievers.evaluation import document_text, evaluate, evaluate_per_query, load_beir

QRELS = {"q1": {"d1": 1, "d2": 2}, "q2": {"d9": 1}}
RUN = {"q1": {"d3": 0.9, "d1": 0.8, "d2": 0.7}}  # q2 missing from the run


def test_metrics_by_hand() -> None:
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    per_q = evaluate_per_query(
        RUN, QRELS, ["ndcg@10", "recall@2", "precision@2", "mrr", "mrr@1", "map"]
    )
    assert per_q["q1"] == pytest.approx(
        {
            "ndcg@10": dcg / idcg,
            "recall@2": 0.5,
            "precision@2": 0.5,
            "mrr": 0.5,
            "mrr@1": 0.0,
            "map": (1 / 2 + 2 / 3) / 2,
        }
    )
    assert set(per_q["q2"].values()) == {0.0}
    # the mean is over every judged query: the missing q2 counts as 0
    assert evaluate(RUN, QRELS, ["ndcg@10"]) == pytest.approx({"ndcg@10": dcg / idcg / 2})


def test_metric_names_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(RUN, QRELS, ["bleu"])
    with pytest.raises(ValueError, match="needs a cutoff"):
        evaluate(RUN, QRELS, ["ndcg"])


def test_missing_pytrec_eval_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytrec_eval", None)
    with pytest.raises(ImportError, match=r"lfm-retrievers\[eval\]"):
        evaluate(RUN, QRELS)


def test_load_beir_both_layouts(tmp_path: Path) -> None:
    root = tmp_path / "toy"
    (root / "qrels").mkdir(parents=True)
    with gzip.open(root / "corpus.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"_id": "d1", "title": "T", "text": "body"}) + "\n")
        f.write(json.dumps({"_id": 2, "title": "", "text": "only text"}) + "\n")
    (root / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "hello"})
        + "\n"
        + json.dumps({"_id": "q2", "text": "unjudged"})
        + "\n"
    )
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\n")
    corpus, queries, qrels = load_beir(root)
    assert corpus == {"d1": {"title": "T", "text": "body"}, "2": {"title": "", "text": "only text"}}
    assert queries == {"q1": "hello"}  # only judged queries are kept
    assert qrels == {"q1": {"d1": 2}}
    assert document_text(corpus["d1"]) == "T body" and document_text(corpus["2"]) == "only text"
    with pytest.raises(FileNotFoundError, match="qrels"):
        load_beir(root, split="dev")


def test_shared_scifact_loads(shared_data_dir: Path) -> None:
    corpus, queries, qrels = load_beir(shared_data_dir / "scifact")
    assert (len(corpus), len(queries)) == (5183, 300)
    assert sum(len(v) for v in qrels.values()) == 339
