"""Explanations: spans point at the right substrings (real LFM2-ColBERT tokenizer), and the
per-token similarities add up to the MaxSim score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lfm_retrievers import ColBERTEncoder, Explanation, TokenMatch, load, maxsim

QUERY = "how do I stop two threads corrupting shared state"
DOC0 = "Arc<Mutex<T>> is the idiomatic way to share mutable state across threads in Rust."
DOC2 = "Punctuation!! Should, be; skipped: right? (yes)"
# checkpoint-contract 7.3 / 7.4: doc 0's kept tokens (skiplisted "<" and "." dropped).
DOC0_KEPT_TEXT = [
    "Ar", "c", "M", "utex", "<T", ">>", " is", " the", " idi", "omatic", " way", " to",
    " share", " mutable", " state", " across", " threads", " in", " Rust",
]  # fmt: skip


@pytest.fixture(scope="module")
def colbert(tiny_colbert_real_tok_path: Path) -> ColBERTEncoder:
    enc = load(tiny_colbert_real_tok_path, device="cpu")
    assert isinstance(enc, ColBERTEncoder)
    return enc


def brute_force(encoder: ColBERTEncoder, query: str, document: str) -> np.ndarray:
    q = encoder.encode_queries([query])[0]
    d = encoder.encode_documents([document])[0]
    return q @ d.T


def test_every_query_vector_is_explained_and_scores_add_up(colbert):
    exp = colbert.explain(QUERY, DOC0)
    assert isinstance(exp, Explanation) and exp.query == QUERY and exp.document == DOC0
    assert len(exp.tokens) == 32 and all(isinstance(m, TokenMatch) for m in exp.tokens)
    sims = brute_force(colbert, QUERY, DOC0)
    np.testing.assert_allclose([m.similarity for m in exp.tokens], sims.max(axis=1), atol=1e-5)
    want = float(maxsim(colbert.encode_queries([QUERY])[0], colbert.encode_documents([DOC0]))[0])
    assert exp.score == pytest.approx(want, abs=1e-4)
    assert exp.score == pytest.approx(sum(m.similarity for m in exp.tokens), abs=1e-6)
    (ranked,) = colbert.rerank(QUERY, [DOC0])
    assert exp.score == pytest.approx(ranked.score, abs=1e-4)


def test_query_spans_and_expansion_flags(colbert):
    exp = colbert.explain(QUERY, DOC0)
    # [BOS, [Q], 10 text tokens, 20 expansion tokens] (contract 7.3, query 0).
    text_tokens = [m for m in exp.tokens if m.query_span is not None]
    assert len(text_tokens) == 10
    assert "".join(m.query_token for m in text_tokens) == QUERY
    assert [m.query_token for m in text_tokens][:6] == [
        "how",
        " do",
        " I",
        " stop",
        " two",
        " threads",
    ]
    for m in text_tokens:
        a, b = m.query_span
        assert QUERY[a:b] == m.query_token and not m.is_expansion
    assert [m.is_expansion for m in exp.tokens] == [False] * 12 + [True] * 20
    assert [m.query_position for m in exp.tokens] == list(range(32))
    assert exp.tokens[1].query_token == "[Q] " and exp.tokens[1].query_span is None
    assert all(m.query_span is None for m in exp.tokens[12:])


def test_document_spans_point_at_the_right_substrings(colbert):
    exp = colbert.explain(QUERY, DOC0)
    tok = colbert.tokenize([DOC0], is_query=False)[0]
    kept_text = [DOC0[a:b] for (a, b), k in zip(tok.offsets, tok.keep, strict=True) if k and b > a]
    assert kept_text == DOC0_KEPT_TEXT  # the contract's oracle, not our own tokenizer use
    for m in exp.tokens:
        assert m.doc_position >= 0 and tok.keep[m.doc_position]
        if m.doc_span is None:
            assert m.doc_token in ("[D] ", "<|startoftext|>") or tok.offsets[m.doc_position] == (
                0,
                0,
            )
            continue
        a, b = m.doc_span
        assert DOC0[a:b] == m.doc_token
        assert (a, b) == tok.offsets[m.doc_position]
        # The tokenizer's own decoding of that token id is the same text.
        assert colbert.tokenizer.decode([tok.ids[m.doc_position]]) == m.doc_token
        assert m.doc_token not in ("<", ".")  # skiplisted tokens never match


def test_spans_survive_leading_whitespace_and_unicode(colbert):
    document = "   \n Café au lait, 日本語のテキスト検索 and threads."
    exp = colbert.explain("日本語 threads", document)
    tok = colbert.tokenize([document], is_query=False)[0]
    spans = [(a, b) for (a, b), k in zip(tok.offsets, tok.keep, strict=True) if b > a]
    # Consecutive spans tile the stripped text (skiplisted tokens included in the tiling).
    all_spans = [(a, b) for a, b in tok.offsets if b > a]
    assert "".join(document[a:b] for a, b in all_spans) == document.strip()
    for m in exp.tokens:
        if m.doc_span is not None:
            a, b = m.doc_span
            assert 0 <= a < b <= len(document) and document[a:b] == m.doc_token
            assert (a, b) in spans
        if m.query_span is not None:
            a, b = m.query_span
            assert "日本語 threads"[a:b] == m.query_token


def test_top_and_str(colbert):
    exp = colbert.explain(QUERY, DOC2)
    top = exp.top(3)
    assert len(top) == 3 and all(m.query_span is not None for m in top)
    assert [m.similarity for m in top] == sorted((m.similarity for m in top), reverse=True)
    assert "MaxSim" in str(exp)


def test_empty_document_and_bad_input(colbert):
    exp = colbert.explain(QUERY, "")
    assert len(exp.tokens) == 32 and all(m.doc_span is None for m in exp.tokens)
    want = float(maxsim(colbert.encode_queries([QUERY])[0], colbert.encode_documents([""]))[0])
    assert exp.score == pytest.approx(want, abs=1e-4)
    with pytest.raises(TypeError, match="str"):
        colbert.explain(QUERY, None)  # type: ignore[arg-type]
