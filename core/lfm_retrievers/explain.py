"""Explanations: which document token each query token matched, and where it is in the text.

MaxSim is a sum of one maximum per query vector, so it decomposes exactly: for every query
vector, the best document vector, its similarity, and both tokens' character spans in the
original texts (from the tokenizer's offset mapping). The similarities add up to the MaxSim
score, so a user can highlight the parts of a document that made it match.

Every query vector is reported, in order, including BOS, the ``[Q]`` marker and the
query-expansion tokens: they contribute to the score too. Those carry no span
(``query_span is None``); expansion tokens have ``is_expansion=True``. Document tokens without
a span (BOS, ``[D]``) likewise have ``doc_span=None``.

>>> explanation = encoder.explain("red planet", "Mars is called the Red Planet.")  # doctest: +SKIP
>>> [(m.query_token, m.doc_token) for m in explanation.tokens if m.query_span]  # doctest: +SKIP
[('red', ' Red'), (' planet', ' Planet')]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_str
from .protocols import TokenEncoder, Tokenized


@dataclass(frozen=True, slots=True)
class TokenMatch:
    """One query vector and its best-matching document vector.

    ``query_token`` / ``doc_token`` are the covered text where the token has a span, else the
    tokenizer's token string (e.g. ``"[Q] "``). Positions index the token sequences that
    ``ColBERTEncoder.tokenize`` returns.
    """

    query_token: str
    query_span: tuple[int, int] | None
    doc_token: str
    doc_span: tuple[int, int] | None
    similarity: float
    query_position: int
    doc_position: int
    is_expansion: bool = False


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why ``document`` scored ``score`` for ``query``: one :class:`TokenMatch` per query vector.

    ``score`` is the raw MaxSim: the sum of the similarities.
    """

    query: str
    document: str
    score: float
    tokens: list[TokenMatch]

    def top(self, n: int = 5, *, include_special: bool = False) -> list[TokenMatch]:
        """The ``n`` strongest matches; by default only query tokens from the query text."""
        pool = [m for m in self.tokens if include_special or m.query_span is not None]
        return sorted(pool, key=lambda m: -m.similarity)[:n]

    def __str__(self) -> str:
        lines = [f"MaxSim {self.score:.4f} for query {self.query!r}"]
        for m in self.tokens:
            if m.query_span is None and not m.is_expansion:
                continue
            label = repr(m.query_token) + (" (expansion)" if m.is_expansion else "")
            lines.append(f"  {label:>28} -> {m.doc_token!r:<18} {m.similarity:+.4f}")
        return "\n".join(lines)


def _label(encoder: TokenEncoder, text: str, token_id: int, span: tuple[int, int]) -> str:
    a, b = span
    if b > a:
        return text[a:b]
    tok = encoder.tokenizer.id_to_token(token_id) if hasattr(encoder, "tokenizer") else None
    return tok if tok is not None else f"<{token_id}>"


def _expansion_start(encoder: TokenEncoder, tok: Tokenized) -> int:
    """Index where the appended query-expansion tokens begin (len(ids) when there are none)."""
    expansion_id = getattr(encoder, "expansion_id", None)
    start = len(tok.ids)
    while (
        start > 2 and tok.ids[start - 1] == expansion_id and tuple(tok.offsets[start - 1]) == (0, 0)
    ):
        start -= 1
    return start


def explain(encoder: TokenEncoder, query: str, document: str) -> Explanation:
    """Decompose the MaxSim of ``query`` and ``document`` into per-query-token matches."""
    query = check_str(query, "query")
    document = check_str(document, "document")
    q_tok = encoder.tokenize([query], is_query=True)[0]
    d_tok = encoder.tokenize([document], is_query=False)[0]
    q_vec = np.asarray(encoder.encode_queries([query], show_progress=False)[0], np.float32)
    d_vec = np.asarray(encoder.encode_documents([document], show_progress=False)[0], np.float32)
    q_pos = [i for i, k in enumerate(q_tok.keep) if k]
    d_pos = [i for i, k in enumerate(d_tok.keep) if k]
    if len(q_pos) != len(q_vec) or len(d_pos) != len(d_vec):
        msg = (
            f"tokenization and encoding disagree: {len(q_pos)}/{len(d_pos)} kept positions "
            f"vs {len(q_vec)}/{len(d_vec)} vectors"
        )
        raise RuntimeError(msg)
    expansion_from = _expansion_start(encoder, q_tok)
    sims = q_vec @ d_vec.T if len(d_vec) else np.zeros((len(q_vec), 0), np.float32)
    matches = []
    for r, qi in enumerate(q_pos):
        q_span = tuple(q_tok.offsets[qi])
        if len(d_vec):
            c = int(np.argmax(sims[r]))
            di, sim = d_pos[c], float(sims[r, c])
            d_span = tuple(d_tok.offsets[di])
            doc_label = _label(encoder, document, d_tok.ids[di], (d_span[0], d_span[1]))
        else:
            di, sim, d_span, doc_label = -1, 0.0, (0, 0), ""
        matches.append(
            TokenMatch(
                query_token=_label(encoder, query, q_tok.ids[qi], (q_span[0], q_span[1])),
                query_span=(q_span[0], q_span[1]) if q_span[1] > q_span[0] else None,
                doc_token=doc_label,
                doc_span=(d_span[0], d_span[1]) if d_span[1] > d_span[0] else None,
                similarity=sim,
                query_position=qi,
                doc_position=di,
                is_expansion=qi >= expansion_from,
            )
        )
    score = float(np.sum([m.similarity for m in matches], dtype=np.float64))
    return Explanation(query=query, document=document, score=score, tokens=matches)


__all__ = ["Explanation", "TokenMatch", "explain"]
