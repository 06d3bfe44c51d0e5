"""Shared fixtures: tiny real-format checkpoints (built once per session) and shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from lfm_retrievers.testing import build_tiny_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
TOKENIZERS = SHARED_DATA / "tokenizers"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with embedding/, colbert/ and colbert-causal/ tiny checkpoints.

    Exported as LFM_RETRIEVERS_TINY_DIR (and LFM_RETRIEVERS_MODEL_DIR for cookbooks) so
    subprocesses reuse the same checkpoints.
    """
    root = tmp_path_factory.mktemp("tiny-checkpoints")
    for kind in ("embedding", "colbert", "colbert-causal"):
        build_tiny_checkpoint(kind, root / kind)  # type: ignore[arg-type]
    os.environ["LFM_RETRIEVERS_TINY_DIR"] = str(root)
    os.environ.setdefault("LFM_RETRIEVERS_MODEL_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def tiny_embedding_path(tiny_dir: Path) -> Path:
    return tiny_dir / "embedding"


@pytest.fixture(scope="session")
def tiny_colbert_path(tiny_dir: Path) -> Path:
    return tiny_dir / "colbert"


@pytest.fixture(scope="session")
def tiny_causal_colbert_path(tiny_dir: Path) -> Path:
    return tiny_dir / "colbert-causal"


@pytest.fixture(scope="session")
def real_tokenizer_dir() -> Path:
    """../shared/data/tokenizers (the vendor-verified LFM2 tokenizers); skip when absent."""
    if not (TOKENIZERS / "lfm2-base" / "tokenizer.json").exists():
        pytest.skip("real tokenizers not found in ../shared/data/tokenizers")
    return TOKENIZERS


@pytest.fixture(scope="session")
def tiny_colbert_real_tok_path(
    real_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A tiny LFM2.5-ColBERT layout with the real LFM2-ColBERT-350M tokenizer (64,402 ids)."""
    out = tmp_path_factory.mktemp("tiny-colbert-realtok") / "colbert"
    return build_tiny_checkpoint(
        "colbert", out, tokenizer_dir=real_tokenizer_dir / "lfm2-colbert-350m"
    )


@pytest.fixture(scope="session")
def tiny_embedding_real_tok_path(
    real_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A tiny LFM2.5-Embedding layout with the real LFM2 base tokenizer (64,400 ids)."""
    out = tmp_path_factory.mktemp("tiny-embedding-realtok") / "embedding"
    return build_tiny_checkpoint("embedding", out, tokenizer_dir=real_tokenizer_dir / "lfm2-base")


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """../shared/data (BEIR SciFact, NFCorpus); skip when absent."""
    if not (SHARED_DATA / "scifact" / "queries.jsonl").exists():
        pytest.skip("shared evaluation data not found in ../shared/data")
    return SHARED_DATA


#: A small multilingual support corpus shared by the framework suites:
#: (key, text, category, lang); each suite prefixes the key into its own ids.
SUPPORT_CORPUS = [
    (
        "ret",
        "To return an item, open your orders and choose Return within 30 days.",
        "returns",
        "en",
    ),
    (
        "pwd",
        "Reset your password from Settings, then Account, then Reset password.",
        "account",
        "en",
    ),
    ("ship", "Standard shipping takes three to five business days.", "shipping", "en"),
    ("de", "Sie können Ihre Bestellung innerhalb von 14 Tagen zurückgeben.", "returns", "de"),
    ("fr", "Vous pouvez suivre votre colis depuis la page Mes commandes.", "shipping", "fr"),
    (
        "es",
        "Para cambiar la dirección de envío, edite el pedido antes del envío.",
        "shipping",
        "es",
    ),
    ("ja", "パスワードを忘れた場合は、ログイン画面から再設定してください。", "account", "ja"),
    ("pay", "We accept credit cards, PayPal and bank transfer for every order.", "payment", "en"),
]


@pytest.fixture(scope="session")
def support_corpus() -> list[tuple[str, str, str, str]]:
    return list(SUPPORT_CORPUS)


QDRANT_TEST_PREFIX = "lfm-test-"


@pytest.fixture(params=["local", pytest.param("server", marks=pytest.mark.qdrant_server)])
def qdrant_location(request: pytest.FixtureRequest) -> str:
    """``":memory:"`` (qdrant-client's local mode), then the server at ``QDRANT_URL`` if set.

    Every test that takes it (or ``qdrant_client``) runs on both engines; the server run is
    skipped without ``QDRANT_URL`` (``QDRANT_API_KEY`` is used when set).
    """
    pytest.importorskip("qdrant_client")
    if request.param == "local":
        return ":memory:"
    url = os.environ.get("QDRANT_URL")
    if not url:
        pytest.skip("set QDRANT_URL to run the Qdrant tests against a server")
    return url


@pytest.fixture
def qdrant_client(qdrant_location: str):
    """A ``QdrantClient`` on ``qdrant_location``."""
    from qdrant_client import QdrantClient

    if qdrant_location == ":memory:":
        client = QdrantClient(":memory:")
    else:
        client = QdrantClient(url=qdrant_location, api_key=os.environ.get("QDRANT_API_KEY"))
    yield client
    client.close()


@pytest.fixture
def collection_name(qdrant_client):
    """A fresh collection name; it and any collection named after it are dropped afterwards."""
    import uuid

    name = f"{QDRANT_TEST_PREFIX}{uuid.uuid4().hex[:12]}"
    yield name
    for c in qdrant_client.get_collections().collections:
        if c.name.startswith(name):
            qdrant_client.delete_collection(c.name)
