# %% [markdown]
# # Haystack: LFM2.5 embedders, ColBERT ranker and ColBERT retriever in pipelines
#
# What this shows, on the shared FAQ (`cookbooks/data/faq.jsonl`, 11 languages):
#
# 1. an indexing pipeline: `LFMDocumentEmbedder` (document prompt, title embedded with the
#    answer) -> `DocumentWriter` -> `InMemoryDocumentStore`;
# 2. ColBERT with no index build: `InMemoryBM25Retriever` -> `LFMColBERTRanker`;
# 3. hybrid candidates: `InMemoryBM25Retriever` and `LFMTextEmbedder` (query prompt) ->
#    `InMemoryEmbeddingRetriever`, joined by `DocumentJoiner(join_mode="concatenate")`, then
#    `LFMColBERTRanker` over the union (what `BM25ColBERT(dense=...)` does in the core);
# 4. a persistent ColBERT index: `LFMColBERTDocumentStore` filled by a `DocumentWriter`,
#    searched by `LFMColBERTRetriever` with Haystack metadata filters;
# 5. the pipeline saved with `Pipeline.dumps` and loaded back with `Pipeline.loads` (no
#    allowlist changes: the components live under `haystack_integrations`), giving the same
#    results, and run asynchronously.
#
# Models: set `LFM_RETRIEVERS_MODEL_DIR` to a folder holding `embedding/` and `colbert/`
# checkpoints (e.g. the downloaded LiquidAI/LFM2.5-Embedding-350M and LFM2.5-ColBERT-350M).
# Without it, tiny random checkpoints are built in a temporary folder: everything runs, but
# the rankings are meaningless.

# %%
import asyncio
import json
import tempfile
from pathlib import Path

from haystack import Document, Pipeline
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import (
    InMemoryBM25Retriever,
    InMemoryEmbeddingRetriever,
)
from haystack.components.writers import DocumentWriter
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack_integrations.components.embedders.lfm import LFMDocumentEmbedder, LFMTextEmbedder
from haystack_integrations.components.rankers.lfm import LFMColBERTRanker
from haystack_integrations.components.retrievers.lfm import (
    LFMColBERTDocumentStore,
    LFMColBERTRetriever,
)

from lfm_retrievers.testing import example_models

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path("cookbooks")
work = Path(tempfile.mkdtemp(prefix="lfm-haystack-"))

EMBEDDING_MODEL, COLBERT_MODEL = example_models(work)


def show(title: str, documents: list[Document]) -> None:
    print(f"\n{title}")
    for rank, doc in enumerate(documents, 1):
        print(f"  {rank}. [{doc.id}] score={doc.score:.4f}  {doc.meta['title']}")


# %% [markdown]
# ## The FAQ as Haystack Documents
# The answer is the content; the title, language and category are metadata. The embedders and
# the ranker put the title in front of the answer (`meta_fields_to_embed=["title"]`).

# %%
rows = [
    json.loads(line)
    for line in (HERE / "data" / "faq.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
documents = [
    Document(
        id=row["id"],
        content=row["text"],
        meta={"title": row["title"], "lang": row["lang"], "category": row["category"]},
    )
    for row in rows
]
print(len(documents), "FAQ entries in", ", ".join(sorted({d.meta["lang"] for d in documents})))

# %% [markdown]
# ## 1. Indexing pipeline
# `LFMDocumentEmbedder` applies the model's document prompt (`"document: "`); the text
# embedder below applies the query prompt (`"query: "`). Both components share one loaded
# model. The store also builds its BM25 statistics, used by the BM25 retriever.

# %%
store = InMemoryDocumentStore(index="faq")
indexing = Pipeline()
indexing.add_component(
    "embedder", LFMDocumentEmbedder(EMBEDDING_MODEL, meta_fields_to_embed=["title"])
)
indexing.add_component("writer", DocumentWriter(document_store=store))
indexing.connect("embedder.documents", "writer.documents")
written = indexing.run({"embedder": {"documents": documents}})["writer"]["documents_written"]
print("indexed", written, "documents with", store.count_documents(), "in the store")

# %% [markdown]
# ## 2. ColBERT with no index build: BM25 candidates reranked by MaxSim
# `LFMColBERTRanker` encodes the candidates with the model's `[D]` marker and skiplist and the
# query with `[Q]` and query expansion, then scores by MaxSim. `Document.score` is the raw
# MaxSim sum (32 query vectors, so at most 32); `score_mode="mean"` divides it by 32.
# Candidates are cached: a document that comes back for another query is not encoded again.

# %%
QUESTION = "How many days do I have to return an item?"

rerank = Pipeline()
rerank.add_component("bm25", InMemoryBM25Retriever(document_store=store, top_k=10))
rerank.add_component(
    "ranker", LFMColBERTRanker(COLBERT_MODEL, top_k=3, meta_fields_to_embed=["title"])
)
rerank.connect("bm25.documents", "ranker.documents")
result = rerank.run({"bm25": {"query": QUESTION}, "ranker": {"query": QUESTION}})
show(f"BM25 -> ColBERT for {QUESTION!r}", result["ranker"]["documents"])

ranker = rerank.get_component("ranker")
rerank.run({"bm25": {"query": "return policy"}, "ranker": {"query": "return policy"}})
print("ranker cache:", {k: ranker.cache.stats()[k] for k in ("hits", "misses", "entries")})

# %% [markdown]
# ## 3. Hybrid candidates: BM25 and dense retrieval, joined, reranked by ColBERT
# BM25 only finds documents sharing words with the question; the dense branch also finds
# answers written in other languages. `DocumentJoiner(join_mode="concatenate")` takes the union
# of both candidate lists (a document found twice is kept once) and `LFMColBERTRanker` scores
# every candidate by MaxSim. The dense branch needs the documents' embeddings: the indexing
# pipeline above computed them once.

# %%
hybrid = Pipeline()
hybrid.add_component("bm25", InMemoryBM25Retriever(document_store=store, top_k=10))
hybrid.add_component("text_embedder", LFMTextEmbedder(EMBEDDING_MODEL))
hybrid.add_component("dense", InMemoryEmbeddingRetriever(document_store=store, top_k=10))
hybrid.add_component("joiner", DocumentJoiner(join_mode="concatenate"))
hybrid.add_component(
    "ranker", LFMColBERTRanker(COLBERT_MODEL, top_k=5, meta_fields_to_embed=["title"])
)
hybrid.connect("text_embedder.embedding", "dense.query_embedding")
hybrid.connect("bm25.documents", "joiner.documents")
hybrid.connect("dense.documents", "joiner.documents")
hybrid.connect("joiner.documents", "ranker.documents")


def hybrid_inputs(question: str) -> dict:
    return {
        "bm25": {"query": question},
        "text_embedder": {"text": question},
        "ranker": {"query": question},
    }


CROSS = "Wie lange dauert der Versand?"  # German; most FAQ answers are in other languages
hybrid_result = hybrid.run(hybrid_inputs(QUESTION))["ranker"]["documents"]
show(f"hybrid (BM25 + dense -> ColBERT) for {QUESTION!r}", hybrid_result)
show(
    f"hybrid (BM25 + dense -> ColBERT) for {CROSS!r}",
    hybrid.run(hybrid_inputs(CROSS))["ranker"]["documents"],
)

# %% [markdown]
# ## 4. A persistent ColBERT index with metadata filters
# `LFMColBERTDocumentStore` keeps every document's token vectors in a `ColBERTIndex` saved
# to `index_path` (JSON + .npy, written atomically) after each write. It stores `content`
# and `meta`, so the title goes into the content here. `LFMColBERTRetriever` searches it
# exactly by MaxSim; filters use Haystack's syntax (`==`, `!=`, `>`, `>=`, `<`, `<=`,
# `in`, `not in`, combined with `AND`, `OR`, `NOT`).

# %%
colbert_store = LFMColBERTDocumentStore(work / "faq-colbert-index", model=COLBERT_MODEL)
writer = Pipeline()
writer.add_component("writer", DocumentWriter(document_store=colbert_store))
writer.run(
    {
        "writer": {
            "documents": [
                Document(id=d.id, content=f"{d.meta['title']}\n{d.content}", meta=d.meta)
                for d in documents
            ]
        }
    }
)
print(
    "\nColBERT index saved in",
    colbert_store.index_path,
    "with",
    colbert_store.count_documents(),
    "documents",
)

retriever = LFMColBERTRetriever(colbert_store, top_k=3)
show("ColBERT index, no filter", retriever.run(query=QUESTION)["documents"])
european = {
    "operator": "OR",
    "conditions": [
        {"field": "meta.lang", "operator": "==", "value": "de"},
        {"field": "meta.lang", "operator": "==", "value": "fr"},
    ],
}
show("ColBERT index, lang de OR fr", retriever.run(query=QUESTION, filters=european)["documents"])
english_shipping = {
    "operator": "AND",
    "conditions": [
        {"field": "meta.lang", "operator": "==", "value": "en"},
        {"field": "meta.category", "operator": "==", "value": "shipping"},
    ],
}
show(
    "ColBERT index, lang en AND category shipping",
    retriever.run(query="delivery time", filters=english_shipping)["documents"],
)

# A new process reopens the same index from its folder (no re-encoding):
reopened = LFMColBERTRetriever.from_dict(retriever.to_dict())
assert [d.id for d in reopened.run(query=QUESTION)["documents"]] == [
    d.id for d in retriever.run(query=QUESTION)["documents"]
]

# %% [markdown]
# ## 5. Save the pipeline as YAML, load it back, run it (sync and async)
# `Pipeline.loads` accepts the LFM components with its default allowlist, because they live
# under `haystack_integrations`. The loaded pipeline reuses the already loaded models.

# %%
yaml_path = work / "hybrid.yaml"
yaml_path.write_text(hybrid.dumps(), encoding="utf-8")
loaded = Pipeline.loads(yaml_path.read_text(encoding="utf-8"))
again = loaded.run(hybrid_inputs(QUESTION))["ranker"]["documents"]


def same_fusion(a: list[Document], b: list[Document]) -> bool:
    """Equal rankings up to ties: documents with equal MaxSim scores may come in either order,
    which follows the order in which the branches finished (run_async does not fix it)."""
    return [(d.score, d.id) for d in sorted(a, key=lambda d: (-(d.score or 0.0), d.id))] == [
        (d.score, d.id) for d in sorted(b, key=lambda d: (-(d.score or 0.0), d.id))
    ]


assert same_fusion(again, hybrid_result)
print("\npipeline saved to", yaml_path, "and loaded back: identical results")

async_result = asyncio.run(loaded.run_async(hybrid_inputs(QUESTION)))["ranker"]["documents"]
assert same_fusion(async_result, hybrid_result)
print("run_async: identical results")
