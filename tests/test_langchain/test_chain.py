"""An LCEL RAG chain: retriever | format_docs | prompt | FakeListChatModel, end to end."""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from lc_helpers import QUERY, tiny_path

from langchain_lfm import LFMBM25ColBERTRetriever, LFMColBERTRetriever

PROMPT = ChatPromptTemplate.from_messages(
    [("system", "Answer from the context only.\n\n{context}"), ("human", "{question}")]
)


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(f"[{d.id}] {d.page_content}" for d in docs)


async def test_lcel_chain_end_to_end(corpus_docs: list[Document]) -> None:
    for retriever in (
        LFMColBERTRetriever.from_documents(corpus_docs, model=tiny_path("colbert"), k=2),
        LFMBM25ColBERTRetriever(documents=corpus_docs, model=tiny_path("colbert"), k=2),
    ):
        seen: list[str] = []

        def spy(prompt_value: PromptValue, seen: list[str] = seen) -> PromptValue:
            seen.append(prompt_value.to_string())
            return prompt_value

        llm = FakeListChatModel(responses=["answer one", "answer two", "answer three"])
        chain = (
            {"context": retriever | format_docs, "question": RunnablePassthrough()}
            | PROMPT
            | RunnableLambda(spy)
            | llm
            | StrOutputParser()
        )
        assert chain.invoke(QUERY) == "answer one"
        expected_context = format_docs(retriever.invoke(QUERY))
        assert expected_context and expected_context in seen[0]
        assert QUERY in seen[0]
        assert await chain.ainvoke(QUERY) == "answer two"
        assert expected_context in seen[1]
        # k can be bound on the retriever inside a chain, too.
        one = retriever.bind(k=1) | format_docs
        assert one.invoke(QUERY).count("\n\n") == 0
