# %% [markdown]
# # Quickstart: the core API of lfm-retrievers
#
# What this shows, with no framework installed (the core package only):
#
# 1. **Dense search**: `DenseEncoder` query/document vectors and cosine scores;
# 2. **ColBERT rerank**: index-free MaxSim reranking of candidate documents;
# 3. **Explanations**: which query token matched which document token, with character spans;
# 4. **BM25 -> ColBERT** in one object, and a persistent **ColBERT index**.
#
# Models: set `LFM_RETRIEVERS_MODEL_DIR` to a folder holding `embedding/` and `colbert/`
# checkpoints (e.g. the downloaded LiquidAI/LFM2.5-Embedding-350M and LFM2.5-ColBERT-350M).
# Without it, tiny random checkpoints are built in a temporary folder: everything runs, but
# the rankings are meaningless.

# %%
import tempfile
from pathlib import Path

import numpy as np

from lfm_retrievers import ColBERTIndex, load
from lfm_retrievers.pipeline import BM25ColBERT
from lfm_retrievers.scoring import cosine_scores
from lfm_retrievers.testing import example_models

WORK = Path(tempfile.mkdtemp(prefix="lfm-quickstart-"))
EMBEDDING_MODEL, COLBERT_MODEL = example_models(WORK)

docs = [
    "Returns: you can return unused items within 30 days of delivery for a full refund.",
    "Shipping: standard delivery takes 3 to 5 business days; express arrives next day.",
    "Passwords: choose 'Forgot password' on the sign-in page to get a reset link by email.",
    "Warranty: electronics carry a two-year warranty covering manufacturing defects.",
    "Payments: we accept credit cards, PayPal and invoices for business customers.",
]
query = "how do I get my money back for something I bought?"

# %% [markdown]
# ## 1. Dense search
# `encode_queries` adds the model's `query: ` prompt, `encode_documents` the `document: `
# prompt. Vectors are L2-normalised float32, so cosine is a dot product.

# %%
dense = load(EMBEDDING_MODEL)
print(dense)
q = dense.encode_queries([query])  # (1, dim)
d = dense.encode_documents(docs)  # (5, dim)
scores = cosine_scores(q[0], d)
for i in np.argsort(-scores)[:3]:
    print(f"{scores[i]:.3f}  {docs[i][:70]}")

# %% [markdown]
# ## 2. ColBERT rerank (no index)
# One 128-d vector per token (`dim` is smaller for the tiny test model); a document's score
# is MaxSim: for every query vector, its best match among the document's vectors, summed.

# %%
colbert = load(COLBERT_MODEL)
print(colbert)
ranked = colbert.rerank(query, docs, top_k=3)
for r in ranked:
    print(f"{r.score:7.3f}  {docs[r.index][:70]}")

# %% [markdown]
# ## 3. Why did the best document win?
# `explain` pairs every real query token with its best-matching document token; the spans are
# character offsets into the original strings.

# %%
best = docs[ranked[0].index]
explanation = colbert.explain(query, best)
print(f"score {explanation.score:.3f}")
for m in sorted(explanation.tokens, key=lambda t: -t.similarity)[:8]:
    if m.query_span is None or m.doc_span is None:
        continue  # BOS, the [Q] marker and query-expansion tokens have no span
    a, b = m.doc_span
    print(f"{m.query_token!r:>12} -> {best[a:b]!r:<16} sim {m.similarity:.3f}")

# %% [markdown]
# ## 4. BM25 -> ColBERT, and a persistent ColBERT index
# `BM25ColBERT` takes BM25's top candidates and reranks them (document vectors are cached, so
# a document is encoded once). `ColBERTIndex` encodes everything up front, saves atomically
# (JSON + .npy, no pickle) and loads back.

# %%
pipe = BM25ColBERT(colbert, docs, ids=[f"doc{i}" for i in range(len(docs))], candidates=10)
for hit in pipe.search("return an item for a refund", k=3):
    print(f"{hit.rank}. {hit.id}  colbert {hit.colbert_score:.3f}  bm25 {hit.bm25_score:.3f}")

index = ColBERTIndex(colbert)
index.add(docs, ids=[f"doc{i}" for i in range(len(docs))])
index.save(WORK / "colbert-index")
reloaded = ColBERTIndex.load(WORK / "colbert-index", encoder=colbert)
for hit in reloaded.search("when will my parcel arrive?", k=2):
    print(f"{hit.rank}. {hit.id}  {hit.score:.3f}  {hit.text[:60]}")
