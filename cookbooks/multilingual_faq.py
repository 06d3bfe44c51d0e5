# %% [markdown]
# # A multilingual FAQ, queried across languages
#
# The shared FAQ (`cookbooks/data/faq.jsonl`) has entries in the models' 11 languages (ar, de,
# en, es, fr, it, ja, ko, no, pt, sv). Users ask in their language; the answer may be written
# in another. This cookbook shows:
#
# 1. why BM25 alone cannot bridge languages (no shared words, often not even a shared script);
# 2. dense retrieval over the whole FAQ with `DenseIndex`, and a metadata filter;
# 3. ColBERT reranking of the whole (small) FAQ, index-free.
#
# Models: set `LFM_RETRIEVERS_MODEL_DIR` to a folder holding `embedding/` and `colbert/`
# checkpoints (e.g. the downloaded LiquidAI/LFM2.5-Embedding-350M and LFM2.5-ColBERT-350M).
# Without it, tiny random checkpoints are built in a temporary folder: everything runs, but
# the rankings are meaningless (so the "category matches" counts below are chance level).

# %%
import json
import tempfile
from pathlib import Path

from lfm_retrievers import DenseIndex, load
from lfm_retrievers.indexes.bm25 import BM25Index
from lfm_retrievers.testing import example_models

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path("cookbooks")
WORK = Path(tempfile.mkdtemp(prefix="lfm-multilingual-"))
EMBEDDING_MODEL, COLBERT_MODEL = example_models(WORK)

faq = [
    json.loads(line)
    for line in (HERE / "data" / "faq.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
ids = [row["id"] for row in faq]
texts = [f"{row['title']}\n{row['text']}" for row in faq]
meta = [{"lang": row["lang"], "category": row["category"]} for row in faq]
print(len(faq), "entries in", ", ".join(sorted({row["lang"] for row in faq})))

# Questions in one language whose answers (by category) exist in others.
questions = [
    ("de", "Wie kann ich einen Artikel zurückschicken?", "returns"),
    ("ja", "配送にはどのくらい時間がかかりますか？", "shipping"),
    ("es", "Olvidé mi contraseña, ¿qué hago?", "account"),
    ("en", "Can I pay by invoice?", "billing"),
    ("sv", "Hur lång tid tar leveransen?", "shipping"),
]

# %% [markdown]
# ## 1. BM25 needs shared words
# A German question shares no term with the Japanese, Korean or English entries, so BM25 only
# ever proposes same-language (or same-word) entries - or nothing.

# %%
bm25 = BM25Index(texts, ids=ids, metadata=meta)
for lang, question, _ in questions[:2]:
    hits = bm25.search(question, k=3)
    print(f"[{lang}] {question}\n   BM25: {[h.id for h in hits] or 'no candidates'}")

# %% [markdown]
# ## 2. Dense retrieval across languages
# One vector per entry; the question's language does not have to match. `filter=` restricts
# the search by metadata (here: answers in Japanese only).

# %%
dense = load(EMBEDDING_MODEL)
index = DenseIndex(dense)
index.add(texts, ids=ids, metadata=meta)
matches = 0
for lang, question, category in questions:
    top = index.search(question, k=3)
    matches += top[0].metadata["category"] == category
    shown = ", ".join(f"{h.id} ({h.metadata['lang']}, {h.score:.2f})" for h in top)
    print(f"[{lang}] {question}\n   dense: {shown}")
print(f"dense: top hit has the expected category for {matches}/{len(questions)} questions")

only_ja = index.search("How long does delivery take?", k=2, filter={"metadata": {"lang": "ja"}})
print("answers in Japanese only:", [(h.id, h.metadata["lang"]) for h in only_ja])

# %% [markdown]
# ## 3. ColBERT over the whole FAQ (no index)
# The FAQ is small, so every entry can be reranked directly: token-level MaxSim across
# languages, no BM25 stage to lose the cross-lingual candidates.

# %%
colbert = load(COLBERT_MODEL)
matches = 0
for lang, question, category in questions:
    ranked = colbert.rerank(question, texts, top_k=3)
    matches += meta[ranked[0].index]["category"] == category
    shown = ", ".join(f"{ids[r.index]} ({meta[r.index]['lang']}, {r.score:.2f})" for r in ranked)
    print(f"[{lang}] {question}\n   colbert: {shown}")
print(f"colbert: top hit has the expected category for {matches}/{len(questions)} questions")
