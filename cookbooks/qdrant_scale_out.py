# %% [markdown]
# # From laptop to cluster: the FAQ on Qdrant
#
# The same ColBERT search as the in-process `ColBERTIndex`, in a Qdrant collection that can be
# sharded and replicated across machines. This cookbook:
#
# 1. uploads the shared FAQ (`cookbooks/data/faq.jsonl`) into one collection: ColBERT token
#    vectors (a MAX_SIM multivector), a dense vector and a BM25 sparse vector per entry;
# 2. searches it in every mode, with a metadata filter;
# 3. checks that Qdrant's MaxSim equals the in-process index's, and copies a `ColBERTIndex`
#    into a collection without encoding anything again;
# 4. serves the same collection through the LangChain, LlamaIndex and Haystack retrievers.
#
# By default the engine is qdrant-client's local mode (`:memory:`, pure numpy: fine for a
# few thousand documents). Set `QDRANT_URL` (and `QDRANT_API_KEY`) to use a server, e.g.
# `docker run -p 6333:6333 qdrant/qdrant`. Models: as in the other cookbooks
# (`LFM_RETRIEVERS_MODEL_DIR`, else tiny random checkpoints whose rankings are meaningless).
#
# Needs `pip install 'lfm-retrievers[qdrant,all]'`.

# %%
import json
import os
import tempfile
import uuid
from pathlib import Path

from qdrant_client import QdrantClient

from lfm_retrievers import ColBERTIndex, QdrantIndex, get_colbert_encoder
from lfm_retrievers.testing import example_models

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path("cookbooks")
WORK = Path(tempfile.mkdtemp(prefix="lfm-qdrant-"))
EMBEDDING_MODEL, COLBERT_MODEL = example_models(WORK)

url = os.environ.get("QDRANT_URL")
client = (
    QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY"))
    if url
    else QdrantClient(":memory:")
)
collection = f"faq-{uuid.uuid4().hex[:6]}"  # a fresh collection per run
print("engine:", url or "local mode (:memory:)", "| collection:", collection)

faq = [
    json.loads(line)
    for line in (HERE / "data" / "faq.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
ids = [row["id"] for row in faq]
texts = [f"{row['title']}\n{row['text']}" for row in faq]
meta = [{"lang": row["lang"], "category": row["category"]} for row in faq]

# %% [markdown]
# ## 1. One collection, three vectors per document
# `QdrantIndex` creates the collection on first use and records the models in it: reopening it
# with another model is refused. Re-adding an id replaces the document (point ids are UUID5
# of the document ids).

# %%
index = QdrantIndex(client, collection, colbert=COLBERT_MODEL, dense=EMBEDDING_MODEL, bm25=True)
index.add(texts, ids=ids, metadata=meta)
record = index.record
print(len(index), "documents; models:", record["colbert"]["name"], "+", record["dense"]["name"])

# %% [markdown]
# ## 2. Every mode, and a filter
# `hybrid` (the default with a dense model) prefetches `candidates` points by dense and by BM25
# and reranks them by MaxSim on the server, in one request. `colbert` is exact MaxSim over the
# whole collection (or the filtered part).

# %%
question = "How long does delivery take?"
for mode in ("colbert", "dense", "bm25", "dense+colbert", "bm25+colbert", "hybrid"):
    hits = index.search(question, k=3, mode=mode, candidates=10)
    print(f"{mode:>14}: {[(h.id, round(h.score, 3)) for h in hits]}")
german = index.search(question, k=3, filter={"metadata": {"lang": "de"}})
print("only German answers:", [h.id for h in german])

# %% [markdown]
# ## 3. The same scores as in process, and a migration without re-encoding
# Qdrant stores the ColBERT vectors as float16 (the default), exactly as `ColBERTIndex` does,
# so both give the same MaxSim. `add_index` copies an existing `ColBERTIndex`'s stored vectors
# into a collection: nothing is encoded again (the dense vectors, if any, are).

# %%
local = ColBERTIndex(get_colbert_encoder(COLBERT_MODEL))
local.add(texts, ids=ids, metadata=meta)
in_process = {h.id: h.score for h in local.search(question, k=5)}
on_qdrant = {h.id: h.score for h in index.search(question, k=5, mode="colbert")}
print("max |difference|:", max(abs(in_process[i] - on_qdrant[i]) for i in in_process))

copied = QdrantIndex(client, collection + "-copy", colbert=COLBERT_MODEL)
copied.add_index(local)
print("copied", len(copied), "documents; top hit:", copied.search(question, k=1)[0].id)
copied.drop()

# %% [markdown]
# ## 4. Each framework's retriever on the same collection
# The payload (text, metadata, id) is the same for every framework, so any of them can read
# what another wrote.

# %%
from langchain_lfm import LFMQdrantRetriever as LangChainRetriever  # noqa: E402

lc = LangChainRetriever(client=client, collection_name=collection, k=3, mode="hybrid")
english = lc.invoke(question, filter={"lang": "en"})
print("LangChain:", [(d.id, d.metadata["lang"]) for d in english])

# %%
from llama_index.retrievers.lfm import LFMQdrantRetriever as LlamaIndexRetriever  # noqa: E402

li = LlamaIndexRetriever(client=client, collection_name=collection, similarity_top_k=3)
print("LlamaIndex:", [n.node.node_id for n in li.retrieve(question)])

# %%
from haystack import Document, Pipeline  # noqa: E402
from haystack.document_stores.types import DuplicatePolicy  # noqa: E402
from haystack_integrations.components.retrievers.lfm import (  # noqa: E402
    LFMQdrantRetriever as HaystackRetriever,
)
from haystack_integrations.document_stores.lfm import LFMQdrantDocumentStore  # noqa: E402

# A Haystack store opens a collection by location (it is serialized with the pipeline). On a
# server that is the same collection; in local mode each client has its own memory, so the
# store is filled here through Haystack (OVERWRITE: re-adding an id replaces it).
store = LFMQdrantDocumentStore(location=url or ":memory:", index=collection, model=COLBERT_MODEL)
store.write_documents(
    [Document(id=i, content=t, meta=m) for i, t, m in zip(ids, texts, meta, strict=True)],
    policy=DuplicatePolicy.OVERWRITE,
)
pipeline = Pipeline()
pipeline.add_component("retriever", HaystackRetriever(document_store=store, top_k=3))
result = pipeline.run({"retriever": {"query": question}})
print("Haystack:", [d.id for d in result["retriever"]["documents"]])
print("pipeline YAML mentions the store:", "LFMQdrantDocumentStore" in pipeline.dumps())

index.drop()
