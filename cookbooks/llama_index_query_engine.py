# %% [markdown]
# # LlamaIndex: a multilingual FAQ query engine with LFM2.5 retrievers
#
# What this shows, on the shared FAQ (`cookbooks/data/faq.jsonl`, 11 languages):
#
# 1. `LFMEmbedding` as `Settings.embed_model` behind a plain `VectorStoreIndex`
#    (query prompt for questions, document prompt for the FAQ entries);
# 2. `LFMColBERTRetriever`: a persistent ColBERT index with metadata filters,
#    `persist()` / `from_persist_dir()`;
# 3. `LFMBM25ColBERTRetriever` -> `LFMColBERTRerank` in a `RetrieverQueryEngine`
#    (BM25 candidates, ColBERT MaxSim; no vector index to build), sync and async.
#
# Models: set `LFM_RETRIEVERS_MODEL_DIR` to a folder holding `embedding/` and `colbert/`
# checkpoints (e.g. the downloaded LiquidAI/LFM2.5-Embedding-350M and LFM2.5-ColBERT-350M).
# Without it, tiny random checkpoints are built in a temporary folder: everything runs, but
# the rankings are meaningless. The LLM is `MockLLM` so no API key is needed; swap in a real
# one (`Settings.llm = ...`) for real answers.

# %%
import asyncio
import json
import shutil
import tempfile
from pathlib import Path

from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters
from llama_index.embeddings.lfm import LFMEmbedding
from llama_index.postprocessor.lfm_rerank import LFMColBERTRerank
from llama_index.retrievers.lfm import LFMBM25ColBERTRetriever, LFMColBERTRetriever

from lfm_retrievers.testing import example_models

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path("cookbooks")
WORK = Path(tempfile.mkdtemp(prefix="lfm-llama-index-"))

EMBEDDING_MODEL, COLBERT_MODEL = example_models(WORK)

Settings.llm = MockLLM(max_tokens=32)

# %% [markdown]
# ## The FAQ as LlamaIndex nodes
# One node per entry: title and answer as the text; language and category as metadata
# (the language is kept out of the text the models see).

# %%
rows = [
    json.loads(line)
    for line in (HERE / "data" / "faq.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
nodes = [
    TextNode(
        id_=row["id"],
        text=f"{row['title']}\n{row['text']}",
        metadata={"lang": row["lang"], "category": row["category"]},
        excluded_embed_metadata_keys=["lang"],
    )
    for row in rows
]
print(len(nodes), "FAQ entries in", sorted({n.metadata["lang"] for n in nodes}))

# %% [markdown]
# ## 1. Dense: LFMEmbedding behind a VectorStoreIndex

# %%
Settings.embed_model = LFMEmbedding(model_name=str(EMBEDDING_MODEL))
dense_index = VectorStoreIndex(nodes)
for hit in dense_index.as_retriever(similarity_top_k=3).retrieve("How can I send an item back?"):
    print(f"{hit.score:.3f}  {hit.node.node_id}")

# %% [markdown]
# ## 2. ColBERT index: filters, persist, reload
# `similarity_top_k` and `MetadataFilters` are honoured; the reloaded retriever returns the
# same nodes with the same scores.

# %%
german_or_french = MetadataFilters(
    filters=[MetadataFilter(key="lang", value=["de", "fr"], operator=FilterOperator.IN)]
)
colbert = LFMColBERTRetriever(
    nodes, model=COLBERT_MODEL, similarity_top_k=3, filters=german_or_french
)
before = colbert.retrieve("Rücksendung und Erstattung")
for hit in before:
    print(f"{hit.score:7.3f}  {hit.node.node_id}  {hit.node.metadata['lang']}")
assert all(hit.node.metadata["lang"] in ("de", "fr") for hit in before)

colbert.persist(WORK / "colbert-store")
reloaded = LFMColBERTRetriever.from_persist_dir(WORK / "colbert-store")
after = reloaded.retrieve("Rücksendung und Erstattung")
assert [(h.node.node_id, round(h.score or 0, 5)) for h in after] == [
    (h.node.node_id, round(h.score or 0, 5)) for h in before
]
print("reloaded from", WORK / "colbert-store", "-> same results")

# %% [markdown]
# ## 3. BM25 -> ColBERT retriever + ColBERT reranker in a query engine
# The retriever keeps the BM25 score and rank in each node's metadata (hidden from the
# LLM and embed text); the reranker's score is the raw MaxSim sum (higher is better;
# `score="mean"` divides by the number of query vectors).

# %%
retriever = LFMBM25ColBERTRetriever(nodes, model=COLBERT_MODEL, similarity_top_k=5, candidates=10)
rerank = LFMColBERTRerank(model=str(COLBERT_MODEL), top_n=3, keep_retrieval_score=True)
engine = RetrieverQueryEngine.from_args(retriever, llm=Settings.llm, node_postprocessors=[rerank])

question = "How long does delivery take?"
response = engine.query(question)
print("answer:", str(response)[:80], "...")
for hit in response.source_nodes:
    meta = hit.node.metadata
    print(
        f"{hit.score:7.3f}  {hit.node.node_id:10s}  bm25={meta['bm25_score']:.2f} "
        f"(rank {meta['bm25_rank']})  retrieval_score={meta['retrieval_score']:.3f}"
    )
assert 0 < len(response.source_nodes) <= 3

# %% [markdown]
# ## Async
# Every class has real async entry points (the model runs in a worker thread).


# %%
async def ask_many(questions: list[str]) -> list[str]:
    answers = await asyncio.gather(*(engine.aquery(q) for q in questions))
    return [a.source_nodes[0].node.node_id if a.source_nodes else "-" for a in answers]


print(asyncio.run(ask_many(["Zahlungsarten", "suivre ma commande", "reset password"])))

# %%
shutil.rmtree(WORK, ignore_errors=True)  # the temporary store (and tiny checkpoints, if any)
