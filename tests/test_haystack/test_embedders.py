"""LFMTextEmbedder / LFMDocumentEmbedder: the Haystack embedder contract on tiny checkpoints."""

from __future__ import annotations

import copy
import inspect
import logging
from pathlib import Path

import numpy as np
import pytest
from haystack import Document
from haystack.components.embedders.types import DocumentEmbedder, TextEmbedder
from haystack.utils import ComponentDevice, DeviceMap
from haystack_integrations.components.embedders.lfm import LFMDocumentEmbedder, LFMTextEmbedder

import lfm_retrievers.models.registry
from lfm_retrievers import DenseEncoder, clear_encoder_cache

TEXT_TYPE = "haystack_integrations.components.embedders.lfm.text_embedder.LFMTextEmbedder"
DOC_TYPE = "haystack_integrations.components.embedders.lfm.document_embedder.LFMDocumentEmbedder"


# ---------------------------------------------------------------- construction and serialization


def test_constructors_load_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        msg = "weights loaded in the constructor"
        raise AssertionError(msg)

    monkeypatch.setattr(lfm_retrievers.models.registry, "load", boom)
    LFMTextEmbedder("/no/such/folder")
    LFMDocumentEmbedder("/no/such/folder")


def test_defaults_are_hub_ids() -> None:
    assert LFMTextEmbedder().model == "LiquidAI/LFM2.5-Embedding-350M"
    assert LFMDocumentEmbedder().model == "LiquidAI/LFM2.5-Embedding-350M"


def test_text_embedder_to_dict_defaults() -> None:
    assert LFMTextEmbedder().to_dict() == {
        "type": TEXT_TYPE,
        "init_parameters": {
            "model": "LiquidAI/LFM2.5-Embedding-350M",
            "device": None,
            "dtype": "auto",
            "quantize": None,
            "backend": "torch",
            "query_prompt": None,
        },
    }


def test_text_embedder_to_dict_custom_and_round_trip(tmp_path: Path) -> None:
    emb = LFMTextEmbedder(
        tmp_path / "model",
        device=ComponentDevice.from_str("cpu"),
        dtype="float32",
        quantize="int8",
        query_prompt="question: ",
    )
    data = emb.to_dict()
    assert data == {
        "type": TEXT_TYPE,
        "init_parameters": {
            "model": str(tmp_path / "model"),
            "device": {"type": "single", "device": "cpu"},
            "dtype": "float32",
            "quantize": "int8",
            "backend": "torch",
            "query_prompt": "question: ",
        },
    }
    back = LFMTextEmbedder.from_dict(data)
    assert isinstance(back.device, ComponentDevice)
    assert back.device.to_torch_str() == "cpu"
    assert back.to_dict() == data
    assert data["init_parameters"]["device"] == {"type": "single", "device": "cpu"}  # not mutated


def test_document_embedder_to_dict_defaults() -> None:
    assert LFMDocumentEmbedder().to_dict() == {
        "type": DOC_TYPE,
        "init_parameters": {
            "model": "LiquidAI/LFM2.5-Embedding-350M",
            "device": None,
            "dtype": "auto",
            "quantize": None,
            "backend": "torch",
            "document_prompt": None,
            "batch_size": 32,
            "progress_bar": True,
            "meta_fields_to_embed": None,
            "embedding_separator": "\n",
        },
    }


def test_document_embedder_to_dict_custom_and_round_trip() -> None:
    emb = LFMDocumentEmbedder(
        "some/model",
        device=ComponentDevice.from_str("cuda:1"),
        dtype="bfloat16",
        document_prompt="",
        batch_size=4,
        progress_bar=False,
        meta_fields_to_embed=["title", "lang"],
        embedding_separator=" | ",
    )
    data = emb.to_dict()
    assert data == {
        "type": DOC_TYPE,
        "init_parameters": {
            "model": "some/model",
            "device": {"type": "single", "device": "cuda:1"},
            "dtype": "bfloat16",
            "quantize": None,
            "backend": "torch",
            "document_prompt": "",
            "batch_size": 4,
            "progress_bar": False,
            "meta_fields_to_embed": ["title", "lang"],
            "embedding_separator": " | ",
        },
    }
    back = LFMDocumentEmbedder.from_dict(data)
    assert back.device == ComponentDevice.from_str("cuda:1")
    assert back.to_dict() == data


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"dtype": "float64"}, ValueError),
        ({"quantize": "int4"}, ValueError),
        ({"device": "cpu"}, ValueError),
        ({"device": ComponentDevice.from_multiple(DeviceMap.from_dict({"a": "cpu"}))}, ValueError),
        ({"batch_size": 0}, ValueError),
        ({"meta_fields_to_embed": "title"}, TypeError),
    ],
)
def test_document_embedder_rejects_bad_config(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        LFMDocumentEmbedder(**kwargs)


def test_sockets_follow_haystack_embedder_protocols() -> None:
    text: TextEmbedder = LFMTextEmbedder()  # statically: matches the protocol
    docs: DocumentEmbedder = LFMDocumentEmbedder()
    assert list(text.__haystack_input__._sockets_dict) == ["text"]  # type: ignore[attr-defined]
    assert list(text.__haystack_output__._sockets_dict) == ["embedding"]  # type: ignore[attr-defined]
    assert list(docs.__haystack_input__._sockets_dict) == ["documents"]  # type: ignore[attr-defined]
    assert list(docs.__haystack_output__._sockets_dict) == ["documents"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [LFMTextEmbedder, LFMDocumentEmbedder])
def test_run_async_has_exactly_runs_signature(cls: type) -> None:
    assert inspect.signature(cls.run) == inspect.signature(cls.run_async)
    assert inspect.iscoroutinefunction(cls.run_async)


# ---------------------------------------------------------------- loading


def test_warm_up_twice_loads_once_and_components_share_it(
    tiny_embedding_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_encoder_cache()
    calls: list[str] = []
    real_load = lfm_retrievers.models.registry.load

    def counting_load(*args: object, **kwargs: object) -> object:
        calls.append(str(args[0]))
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lfm_retrievers.models.registry, "load", counting_load)
    cpu = ComponentDevice.from_str("cpu")
    text = LFMTextEmbedder(tiny_embedding_path, device=cpu)
    text.warm_up()
    text.warm_up()
    docs = LFMDocumentEmbedder(str(tiny_embedding_path), device=cpu)
    docs.warm_up()
    assert len(calls) == 1
    assert text._encoder is docs._encoder
    assert text._encoder is not None
    assert text._encoder.device.type == "cpu"


def test_run_warms_up_lazily(tiny_embedding_path: Path) -> None:
    emb = LFMTextEmbedder(tiny_embedding_path)
    assert emb._encoder is None
    emb.run(text="hello")
    assert isinstance(emb._encoder, DenseEncoder)


# ---------------------------------------------------------------- text embedder


def test_text_embedder_applies_the_query_prompt(
    tiny_embedding_path: Path, dense_oracle: DenseEncoder
) -> None:
    text = "how do I return an item?"
    out = LFMTextEmbedder(tiny_embedding_path).run(text=text)
    assert list(out) == ["embedding"]
    vec = out["embedding"]
    assert isinstance(vec, list) and all(type(x) is float for x in vec)
    assert len(vec) == dense_oracle.dim
    np.testing.assert_allclose(vec, dense_oracle.encode_queries([text])[0], atol=1e-5)
    assert not np.allclose(vec, dense_oracle.encode_documents([text])[0], atol=1e-3)


def test_text_embedder_prompt_override(
    tiny_embedding_path: Path, dense_oracle: DenseEncoder
) -> None:
    vec = LFMTextEmbedder(tiny_embedding_path, query_prompt="").run(text="shipping")["embedding"]
    np.testing.assert_allclose(
        vec, dense_oracle.encode_queries(["shipping"], prompt="")[0], atol=1e-5
    )


@pytest.mark.parametrize("bad", [["a list"], None, 3, Document(content="x")])
def test_text_embedder_rejects_non_str(tiny_embedding_path: Path, bad: object) -> None:
    with pytest.raises(TypeError, match="LFMDocumentEmbedder"):
        LFMTextEmbedder(tiny_embedding_path).run(text=bad)  # type: ignore[arg-type]


async def test_text_embedder_run_async_matches_run(tiny_embedding_path: Path) -> None:
    emb = LFMTextEmbedder(tiny_embedding_path)
    assert await emb.run_async(text="parcel tracking") == emb.run(text="parcel tracking")


# ---------------------------------------------------------------- document embedder


def test_document_embedder_embeds_copies_with_the_document_prompt(
    tiny_embedding_path: Path, dense_oracle: DenseEncoder, documents: list[Document]
) -> None:
    before = copy.deepcopy(documents)
    out = LFMDocumentEmbedder(tiny_embedding_path, batch_size=3).run(documents=documents)
    result = out["documents"]
    assert list(out) == ["documents"]
    assert documents == before  # inputs untouched
    assert all(d.embedding is None for d in documents)
    assert [d.id for d in result] == [d.id for d in documents]
    assert all(r is not d and r.meta is not d.meta for r, d in zip(result, documents, strict=True))
    assert [r.meta for r in result] == [d.meta for d in documents]
    expected = dense_oracle.encode_documents([d.content for d in documents])  # type: ignore[misc]
    got = np.array([r.embedding for r in result])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert all(type(x) is float for x in result[0].embedding)  # type: ignore[union-attr]
    queries = dense_oracle.encode_queries([d.content for d in documents])  # type: ignore[misc]
    assert not np.allclose(got, queries, atol=1e-3)


def test_document_embedder_meta_fields_and_separator(
    tiny_embedding_path: Path, dense_oracle: DenseEncoder
) -> None:
    docs = [
        Document(content="Returns take 30 days.", meta={"title": "Returns", "n": 0}),
        Document(content="No title here.", meta={"title": None}),
    ]
    emb = LFMDocumentEmbedder(
        tiny_embedding_path, meta_fields_to_embed=["title", "n"], embedding_separator=" | "
    )
    got = np.array([d.embedding for d in emb.run(documents=docs)["documents"]])
    expected = dense_oracle.encode_documents(
        ["Returns | 0 | Returns take 30 days.", "No title here."]
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_document_embedder_skips_missing_content_with_a_warning(
    tiny_embedding_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docs = [Document(id="has-text", content="text"), Document(id="no-text", content=None)]
    with caplog.at_level(logging.WARNING):
        out = LFMDocumentEmbedder(tiny_embedding_path).run(documents=docs)["documents"]
    assert [d.id for d in out] == ["has-text", "no-text"]
    assert out[0].embedding is not None and out[1].embedding is None
    assert "no-text" in caplog.text and "has-text" not in caplog.text


def test_document_embedder_empty_list(tiny_embedding_path: Path) -> None:
    emb = LFMDocumentEmbedder(tiny_embedding_path)
    assert emb.run(documents=[]) == {"documents": []}


@pytest.mark.parametrize(
    "bad", ["a string", ["a", "list", "of", "str"], Document(content="x"), None]
)
def test_document_embedder_rejects_non_documents(tiny_embedding_path: Path, bad: object) -> None:
    with pytest.raises(
        TypeError, match=r"documents(\[0\])? must be a (list of )?haystack\.Document"
    ):
        LFMDocumentEmbedder(tiny_embedding_path).run(documents=bad)  # type: ignore[arg-type]


async def test_document_embedder_run_async_matches_run(
    tiny_embedding_path: Path, documents: list[Document]
) -> None:
    emb = LFMDocumentEmbedder(tiny_embedding_path)
    assert await emb.run_async(documents=documents) == emb.run(documents=documents)
