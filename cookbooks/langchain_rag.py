# %% [markdown]
# # LangChain: RAG over a multilingual FAQ with BM25 -> LFM2.5-ColBERT
#
# What this shows, on the shared FAQ (`cookbooks/data/faq.jsonl`, 11 languages):
#
# 1. `LFMBM25ColBERTRetriever`: BM25 picks candidates from the documents, ColBERT reranks
#    them (no index to build); every result is a copy carrying `relevance_score`,
#    `colbert_score` and `bm25_score`;
# 2. an LCEL RAG chain: `retriever | format_docs | prompt | chat model | parser`, sync,
#    batched and async;
# 3. dense retrieval (`LFMEmbeddings` in LangChain's `InMemoryVectorStore`) reranked by
#    `LFMColBERTReranker` in a `ContextualCompressionRetriever` (when langchain-classic is
#    installed).
#
# Models: set `LFM_RETRIEVERS_MODEL_DIR` to a folder holding `embedding/` and `colbert/`
# checkpoints (e.g. the downloaded LiquidAI/LFM2.5-Embedding-350M and LFM2.5-ColBERT-350M).
# Without it, tiny random checkpoints are built in a temporary folder: everything runs, but
# the rankings are meaningless.
#
# Chat model: a `FakeListChatModel` (no API key needed). To use a real one, install
# `langchain` and the provider package and set `LFM_RETRIEVERS_CHAT_MODEL`, e.g.
# `openai:gpt-4o-mini` (anything `init_chat_model` accepts).

# %%
import asyncio
import json
import os
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel, FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from langchain_lfm import LFMBM25ColBERTRetriever, LFMColBERTReranker, LFMEmbeddings
from lfm_retrievers.testing import example_models

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path("cookbooks")

EMBEDDING_MODEL, COLBERT_MODEL = example_models()

# %% [markdown]
# ## The FAQ as LangChain documents
# Title and answer are the text the models see; id, language and category stay in the
# document's id and metadata (and are returned with every hit).

# %%
rows = [
    json.loads(line)
    for line in (HERE / "data" / "faq.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
docs = [
    Document(
        id=row["id"],
        page_content=f"{row['title']}\n{row['text']}",
        metadata={"title": row["title"], "lang": row["lang"], "category": row["category"]},
    )
    for row in rows
]
print(len(docs), "FAQ entries in", sorted({d.metadata["lang"] for d in docs}))

# %% [markdown]
# ## 1. BM25 -> ColBERT retriever
# Nothing is encoded until a document is a BM25 candidate for some query; its vectors are
# then cached. `relevance_score` is the raw MaxSim sum (pass `score="mean"` for a value in
# [-1, 1]); `fusion="rrf"` would blend the BM25 and ColBERT rankings instead. Only documents
# that share at least one term with the question are BM25 candidates, so a question can get
# fewer than `k` results (the analyzer splits Chinese, Japanese and Korean into character
# bigrams, so those languages match too).

# %%
retriever = LFMBM25ColBERTRetriever.from_documents(
    docs, model=str(COLBERT_MODEL), k=3, candidates=10
)
for question in [
    "How long does delivery take?",
    "Wie lösche ich mein Konto?",
    "パスワードを忘れました",
]:
    print(f"\n{question}")
    for doc in retriever.invoke(question):
        m = doc.metadata
        print(
            f"  {doc.id:10} [{m['lang']}] relevance={m['relevance_score']:.3f} "
            f"bm25={m['bm25_score']:.2f}  {m['title']}"
        )

# `k` can also be given per call, sync or async:
print(len(retriever.invoke("delivery", k=1)), "result for k=1")

# %% [markdown]
# ## 2. A RAG chain (LCEL)
# The retriever is a Runnable: pipe it into a formatter, a prompt and a chat model.


# %%
def format_docs(documents: list[Document]) -> str:
    return "\n\n".join(f"[{d.id}] {d.page_content}" for d in documents)


def chat_model() -> BaseChatModel:
    """A real chat model when LFM_RETRIEVERS_CHAT_MODEL is set, else a fake one."""
    name = os.environ.get("LFM_RETRIEVERS_CHAT_MODEL")
    if name:
        try:
            from langchain.chat_models import init_chat_model
        except ImportError:  # langchain-classic ships the same helper
            from langchain_classic.chat_models import init_chat_model
        return init_chat_model(name)
    return FakeListChatModel(
        responses=[
            "Standard delivery takes 3 to 5 business days in the EU [faq-en-02].",
            "Einstellungen > Datenschutz > Konto löschen [faq-de-02].",
            "ログイン画面からパスワードを再設定できます [faq-ja-02].",
        ]
    )


prompt = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Answer the customer's question using only the FAQ entries below, in the "
            "language of the question, and cite the entry id.\n\n{context}",
        ),
        ("human", "{question}"),
    ]
)
rag_chain = (
    {"context": retriever | format_docs, "question": RunnablePassthrough()}
    | prompt
    | chat_model()
    | StrOutputParser()
)

answer = rag_chain.invoke("How long does delivery take?")
print(answer)
assert isinstance(answer, str) and answer

# %% [markdown]
# Several questions at once, and the async entry point (the encoders run on a worker
# thread, so the event loop stays free for other requests).

# %%
for reply in rag_chain.batch(["Wie lösche ich mein Konto?", "パスワードを忘れました"]):
    print("-", reply)


async def ask_async() -> list[str]:
    return await rag_chain.abatch(["Can I return an item?", "¿Cómo obtengo una factura?"])


for reply in asyncio.run(ask_async()):
    print("- (async)", reply)

# %% [markdown]
# ## 3. Dense retrieval + ColBERT reranking
# A dense retriever is simply `LFMEmbeddings` (query and document prompts applied) inside a
# LangChain vector store. `LFMColBERTReranker` reranks its candidates in a
# `ContextualCompressionRetriever`; it returns scored copies and never touches the inputs.

# %%
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402

store = InMemoryVectorStore.from_documents(
    docs, embedding=LFMEmbeddings(model=str(EMBEDDING_MODEL))
)
dense = store.as_retriever(search_kwargs={"k": 8})
reranker = LFMColBERTReranker(model=str(COLBERT_MODEL), top_n=3)

try:
    from langchain_classic.retrievers import ContextualCompressionRetriever
except ImportError:
    print("langchain-classic is not installed: reranking the dense hits directly")
    question = "Can I pick up my order in a shop?"
    reranked = reranker.compress_documents(dense.invoke(question), question)
else:
    dense_then_colbert = ContextualCompressionRetriever(
        base_compressor=reranker, base_retriever=dense
    )
    reranked = dense_then_colbert.invoke("Can I pick up my order in a shop?")
for doc in reranked:
    print(f"  {doc.id:10} relevance={doc.metadata['relevance_score']:.3f}  {doc.metadata['title']}")
assert len(reranked) == 3
