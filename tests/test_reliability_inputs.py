"""Regression tests for issue 14, items 6-11, each built from its reproduction.

6. operator filters returned ``[]`` (more in ``core/test_filter_operators.py``);
7. a NaN query / document vector or ``score_threshold`` was accepted (one NaN document made
   every search return k-1 results);
8. strings that are not UTF-8 (lone surrogates) gave a cryptic tokenizer ``TypeError``, broke
   every later save, or every query of the LangChain BM25 -> ColBERT retriever;
9. damaged checkpoint folders raised raw library errors, and the CLI printed tracebacks;
10. LangChain renamed a repeated explicit id and ``delete("ab")`` deleted ``a`` and ``b``;
11. LlamaIndex ``get_text_embedding_batch("hello")`` embedded each character, ``None`` gave
    ``'NoneType' object is not iterable``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lfm_retrievers as lr
from lfm_retrievers import CheckpointError, ColBERTIndex, DenseIndex, load

SURROGATE = "caf\udce9 menu"  # what os.fsdecode gives for the Latin-1 bytes b"caf\xe9"
TEXTS = ["red planet mars", "venus is hot", "earth has blue water", "jupiter is a giant"]
IDS = ["mars", "venus", "earth", "jupiter"]


@pytest.fixture(scope="module")
def colbert(tiny_colbert_path: Path) -> Any:
    return load(tiny_colbert_path)


@pytest.fixture(scope="module")
def dense(tiny_embedding_path: Path) -> Any:
    return load(tiny_embedding_path)


# ----------------------------------------------------------------------------- 6: filters


def test_langchain_retriever_applies_operator_filters(tiny_colbert_path: Path) -> None:
    from langchain_lfm import LFMColBERTRetriever

    meta = [{"n": i, "lang": lang} for i, lang in enumerate(["en", "de", "en", "fr"])]
    retriever = LFMColBERTRetriever.from_texts(
        TEXTS, metadatas=meta, ids=IDS, model=str(tiny_colbert_path), k=4
    )
    got = {d.id for d in retriever.invoke("planet", filter={"n": {"$gt": 1}})}
    assert got == {"earth", "jupiter"}
    got = {d.id for d in retriever.invoke("planet", filter={"lang": {"$in": ["de", "fr"]}})}
    assert got == {"venus", "jupiter"}
    both = {"$and": [{"lang": "en"}, {"n": {"$gte": 1}}]}
    assert {d.id for d in retriever.invoke("planet", filter=both)} == {"earth"}
    with pytest.raises(ValueError, match=r"\$regex"):
        retriever.invoke("planet", filter={"lang": {"$regex": "e.*"}})


# ----------------------------------------------------------------------------- 7: NaN


@pytest.mark.parametrize("kind", ["colbert", "dense"])
def test_nan_query_vectors_are_rejected(kind: str, colbert: Any, dense: Any) -> None:
    enc = colbert if kind == "colbert" else dense
    index = (ColBERTIndex if kind == "colbert" else DenseIndex)(enc)
    index.add(TEXTS, ids=IDS)
    query = np.array(enc.encode_queries(["planet"])[0], dtype=np.float32)
    query.flat[3] = np.nan
    with pytest.raises(ValueError, match=r"nan at index"):
        index.search_vectors(query, k=4)
    assert len(index.search("planet", k=4)) == 4


def test_a_nan_document_from_the_encoder_is_refused_and_nothing_is_added(colbert: Any) -> None:
    index = ColBERTIndex(colbert)
    index.add(TEXTS[:2], ids=IDS[:2])
    real = index._encode_documents

    def poisoned(texts: list[str], batch_size: int) -> list[np.ndarray]:
        out = [np.array(v, dtype=np.float32) for v in real(texts, batch_size)]
        out[1][0, 0] = np.nan  # e.g. a float16 overflow in the model
        return out

    index._encode_documents = poisoned  # type: ignore[method-assign]
    with pytest.raises(ValueError, match=r"'jupiter'.*finite"):
        index.add(TEXTS[2:], ids=IDS[2:])
    assert index.ids == IDS[:2]
    # Before: the NaN document stayed in the index and searches lost a result.
    assert len(index.search("planet", k=2)) == 2


def test_nan_document_vectors_in_rerank_are_rejected(colbert: Any) -> None:
    query = np.asarray(colbert.encode_queries(["planet"])[0])
    docs = [np.array(v) for v in colbert.encode_documents(TEXTS)]
    docs[2][1, 0] = np.nan
    with pytest.raises(ValueError, match=r"docs\[2\] must be finite"):
        lr.rerank_vectors(query, docs)


def test_nan_score_threshold_is_rejected(tiny_colbert_path: Path) -> None:
    from haystack import Document
    from haystack_integrations.components.rankers.lfm import LFMColBERTRanker

    with pytest.raises(ValueError, match="score_threshold"):
        LFMColBERTRanker(tiny_colbert_path, score_threshold=float("nan"))
    ranker = LFMColBERTRanker(tiny_colbert_path)
    ranker.warm_up()
    with pytest.raises(ValueError, match="score_threshold"):
        ranker.run("q", [Document(content="x")], score_threshold=float("nan"))


# ----------------------------------------------------------------------------- 8: UTF-8


def test_surrogates_are_rejected_at_the_boundary_naming_the_position(colbert: Any) -> None:
    for call in (
        lambda: colbert.encode_documents(["fine", SURROGATE]),
        lambda: colbert.encode_queries(["fine", SURROGATE]),
    ):
        with pytest.raises(ValueError, match=r"\[1\] is not valid UTF-8.*position 3"):
            call()
    index = ColBERTIndex(colbert)
    index.add(TEXTS, ids=IDS)
    with pytest.raises(ValueError, match=r"texts\[1\] is not valid UTF-8"):
        index.add(["ok", SURROGATE], ids=["a", "b"])
    with pytest.raises(ValueError, match=r"ids\[0\] is not valid UTF-8"):
        index.add(["ok"], ids=["id\udcff"])
    with pytest.raises(ValueError, match=r"query is not valid UTF-8"):
        index.search(SURROGATE)
    assert index.ids == IDS  # nothing changed ...


def test_a_rejected_surrogate_id_no_longer_breaks_later_saves(colbert: Any, tmp_path: Path) -> None:
    index = ColBERTIndex(colbert)
    with pytest.raises(ValueError, match="UTF-8"):
        index.add(["ok"], ids=["id\udcff"])  # before: accepted, then every save failed
    index.add(["ok"], ids=["fine"])
    index.save(tmp_path / "idx")
    assert ColBERTIndex.load(tmp_path / "idx", encoder=colbert).ids == ["fine"]


def test_langchain_bm25_colbert_rejects_the_document_instead_of_breaking_every_query(
    tiny_colbert_path: Path,
) -> None:
    from langchain_core.documents import Document

    from langchain_lfm import LFMBM25ColBERTRetriever

    docs = [Document(page_content=t, id=i) for t, i in zip(TEXTS, IDS, strict=True)]
    docs.append(Document(page_content=SURROGATE, id="menu"))
    with pytest.raises(ValueError, match=r"documents\[4\].*'menu'.*not valid UTF-8"):
        LFMBM25ColBERTRetriever.from_documents(docs, model=str(tiny_colbert_path))
    ok = LFMBM25ColBERTRetriever.from_documents(docs[:4], model=str(tiny_colbert_path))
    assert ok.invoke("planet")


def test_corpus_rows_with_surrogates_name_file_and_line(tmp_path: Path) -> None:
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": "caf\\udce9"}\n')
    with pytest.raises(lr.CorpusError, match=r"docs\.jsonl:2: text is not valid UTF-8"):
        from lfm_retrievers.corpus import load_corpus

        load_corpus(corpus)


# ----------------------------------------------------------------------------- 9: checkpoints


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    ("name", "damage", "match"),
    [
        ("model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:1000]), "safetensors"),
        ("tokenizer.json", lambda p: p.write_bytes(p.read_bytes()[:500]), "tokenizer"),
        ("config.json", lambda p: p.write_text("[1, 2]"), "JSON object, got list"),
        ("config.json", lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "nested"),
        ("modules.json", lambda p: p.write_text("[1, 2]"), "entry 0"),
        (
            "config_sentence_transformers.json",
            lambda p: p.write_text('{"query_length": "x"}'),
            "query_length",
        ),
    ],
)
def test_damaged_checkpoint_files_raise_checkpoint_error_naming_them(
    tiny_colbert_path: Path, tmp_path: Path, name: str, damage: Any, match: str
) -> None:
    folder = _copy(tiny_colbert_path, tmp_path / "ckpt")
    damage(folder / name)
    with pytest.raises(CheckpointError, match=match) as info:
        load(folder).encode_queries(["hello"])
    assert name in str(info.value)


def test_a_tokenizer_larger_than_the_embedding_is_a_checkpoint_error(
    tiny_colbert_path: Path, real_tokenizer_dir: Path, tmp_path: Path
) -> None:
    folder = _copy(tiny_colbert_path, tmp_path / "ckpt")
    shutil.copy(real_tokenizer_dir / "lfm2-colbert-350m" / "tokenizer.json", folder)
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    with pytest.raises(CheckpointError, match=rf"64\d{{3}} token ids .* {vocab} rows"):
        load(folder)  # before: IndexError "index out of range in self" at the first long text


def test_cli_prints_one_line_for_a_damaged_checkpoint(
    tiny_colbert_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lfm_retrievers.cli import main

    folder = _copy(tiny_colbert_path, tmp_path / "ckpt")
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "red planet"}\n')
    status = main(["search", "--corpus", str(corpus), "--model", str(folder), "planet"])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("lfm-retrievers: error:")
    assert "config.json" in err


# ----------------------------------------------------------------------------- 10: LangChain ids


def test_langchain_repeated_explicit_id_is_an_error_not_a_rename(tiny_colbert_path: Path) -> None:
    from langchain_core.documents import Document

    from langchain_lfm import LFMColBERTRetriever

    retriever = LFMColBERTRetriever(model=str(tiny_colbert_path))
    docs = [Document(page_content="x", id="doc"), Document(page_content="y", id="doc")]
    with pytest.raises(ValueError, match="'doc'"):
        retriever.add_documents(docs)  # before: stored as "doc" and "doc-2"
    assert retriever.index.ids == []
    # Documents without ids still get distinct generated ids.
    same = [Document(page_content="x"), Document(page_content="x")]
    ids = retriever.add_documents(same)
    assert len(set(ids)) == 2


def test_langchain_delete_of_a_bare_string_is_a_type_error(tiny_colbert_path: Path) -> None:
    from langchain_lfm import LFMColBERTRetriever

    retriever = LFMColBERTRetriever.from_texts(
        ["x", "y", "z"], ids=["a", "b", "ab"], model=str(tiny_colbert_path)
    )
    with pytest.raises(TypeError, match="ids must be a list"):
        retriever.delete("ab")  # type: ignore[arg-type]  # before: deleted "a" and "b"
    assert retriever.index.ids == ["a", "b", "ab"]
    retriever.delete(["ab"])
    assert retriever.index.ids == ["a", "b"]


# ----------------------------------------------------------------------------- 11: LlamaIndex


def test_llama_index_embedding_batch_of_a_bare_string_is_a_type_error(
    tiny_embedding_path: Path,
) -> None:
    from llama_index.embeddings.lfm import LFMEmbedding

    emb = LFMEmbedding(model_name=str(tiny_embedding_path))
    with pytest.raises(TypeError, match=r"texts must be a list of str, got a single str"):
        emb.get_text_embedding_batch("hello")  # type: ignore[arg-type]  # before: 5 vectors
    with pytest.raises(TypeError, match="texts must be a list of str, got NoneType"):
        emb.get_text_embedding_batch(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"text must be str, got NoneType"):
        emb.get_text_embedding(None)  # type: ignore[arg-type]
    assert len(emb.get_text_embedding_batch(["hello"])) == 1


def test_llama_index_none_in_places_is_a_clear_type_error(tiny_colbert_path: Path) -> None:
    from llama_index.core.schema import TextNode
    from llama_index.postprocessor.lfm_rerank import LFMColBERTRerank
    from llama_index.retrievers.lfm import LFMColBERTRetriever

    retriever = LFMColBERTRetriever([TextNode(text="hello", id_="h")], model=tiny_colbert_path)
    with pytest.raises(TypeError, match="node_ids must be a list of str ids, got NoneType"):
        retriever.delete_nodes(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nodes must be a list"):
        retriever.add_nodes(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nodes must be a list of NodeWithScore, got NoneType"):
        LFMColBERTRerank(model=str(tiny_colbert_path)).postprocess_nodes(None, query_str="x")
    assert retriever.node_ids == ["h"]
