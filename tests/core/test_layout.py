"""The house rules of the core's layout, enforced: layers, no import circle, small modules.

Every import counts, including the ones inside functions and under ``TYPE_CHECKING``: a circle
held together by deferred imports is still a circle.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core" / "lfm_retrievers"
INTEGRATIONS = ROOT / "integrations"
MAX_LINES = 600

#: Lowest first. A module may import its own layer and the layers below, never one above.
LAYERS: list[tuple[str, ...]] = [
    (
        "_version",
        "_validation",
        "_io",
        "_optional",
        "_workers",
        "errors",
        "protocols",
        "results",
    ),
    ("scoring",),
    ("cache",),
    ("rerank", "explain"),
    ("models",),
    ("indexes",),
    ("pipeline",),
    ("corpus", "evaluation", "testing", "seam"),
    ("bench",),
    ("cli",),
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    rel = path.relative_to(CORE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``lfm_retrievers`` module ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lfm_retrievers"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("lfm_retrievers"):
                continue
            for alias in node.names:  # `from . import cli` imports the module `cli`
                candidate = f"{target}.{alias.name}"
                as_path = CORE.parent / candidate.replace(".", "/")
                if as_path.is_dir() or as_path.with_suffix(".py").is_file():
                    found.add(candidate)
                else:
                    found.add(target)
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


MODULES = {_module_name(p): p for p in sorted(CORE.rglob("*.py"))}


def test_every_core_module_has_a_layer() -> None:
    missing = [m for m in MODULES if m != "lfm_retrievers" and _layer(m) is None]
    assert missing == [], f"add these to LAYERS: {missing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module: str) -> None:
    if module == "lfm_retrievers":
        return  # the front door re-exports every layer
    own = _layer(module)
    assert own is not None
    upward = sorted(
        m for m in _imports(MODULES[module]) if m == "lfm_retrievers" or (_layer(m) or 0) > own
    )
    assert upward == [], f"{module} (layer {own}) imports from above: {upward}"


def test_no_import_circle() -> None:
    graph = {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}
    # A package's __init__ importing its own submodules is how packages re-export; a submodule
    # importing its package __init__ back is a circle and is caught here.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                msg = f"import circle: {' -> '.join(cycle)}"
                raise AssertionError(msg)
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.name))
def test_no_core_module_over_the_line_limit(path: Path) -> None:
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines (limit {MAX_LINES})"


ADAPTER_FILES = sorted(INTEGRATIONS.rglob("*.py"))


@pytest.mark.parametrize(
    "path", ADAPTER_FILES, ids=lambda p: str(p.relative_to(INTEGRATIONS)).replace("/", ".")
)
def test_adapters_import_public_core_names_only(path: Path) -> None:
    """Adapters reach the core through ``lfm_retrievers`` and ``lfm_retrievers.seam`` only."""
    allowed = {"lfm_retrievers", "lfm_retrievers.seam"}
    used = {m for m in _imports_absolute(path) if m.startswith("lfm_retrievers")}
    assert used <= allowed, f"{path.name} imports {sorted(used - allowed)}"


def _imports_absolute(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module)
    return out


#: The public names of every import root. A change here is a change of the public API.
PUBLIC_API = {
    "lfm_retrievers": [
        "DEFAULT_COLBERT_MODEL",
        "DEFAULT_DENSE_MODEL",
        "SCORE_MODES",
        "BM25ColBERT",
        "BM25Index",
        "CheckpointError",
        "CheckpointNotFoundError",
        "ColBERTEncoder",
        "ColBERTIndex",
        "ColBERTSettings",
        "ConcurrentWriteError",
        "CorpusError",
        "DenseEncoder",
        "DenseIndex",
        "EmbeddingCache",
        "EncoderSpec",
        "Explanation",
        "IndexFormatError",
        "IndexInfo",
        "ModelInfo",
        "PaddedVectors",
        "QdrantIndex",
        "QdrantWriteError",
        "RerankResult",
        "SearchHit",
        "SyncResult",
        "TokenMatch",
        "Tokenized",
        "__version__",
        "clear_encoder_cache",
        "cosine_scores",
        "encode_documents_cached",
        "export_onnx",
        "get_colbert_encoder",
        "get_dense_encoder",
        "get_encoder",
        "list_models",
        "load",
        "maxsim",
        "maxsim_flat",
        "maxsim_padded",
        "normalize_score",
        "rerank",
        "rerank_vectors",
        "resolve_device",
        "resolve_dtype",
        "sync_index",
    ],
    "lfm_retrievers.seam": [
        "ANALYZERS",
        "ANY_GENERATION",
        "FORMAT_PREFIX",
        "FUSIONS",
        "SCORE_MODES",
        "SEARCH_MODES",
        "EncoderSpec",
        "SavedFolder",
        "check_batch_size",
        "check_bool",
        "check_choice",
        "check_float",
        "check_id_list",
        "check_ids",
        "check_json",
        "check_optional_float",
        "check_optional_positive_int",
        "check_optional_str",
        "check_language",
        "check_positive_int",
        "check_str",
        "check_texts",
        "check_vectors",
        "type_error",
        "open_folder",
        "payload_key",
        "require_extra",
        "resolve_encoder",
        "run_in_worker",
        "save_folder",
    ],
    "langchain_lfm": [
        "LFMBM25ColBERTRetriever",
        "LFMColBERTReranker",
        "LFMColBERTRetriever",
        "LFMEmbeddings",
        "LFMQdrantRetriever",
    ],
    "llama_index.embeddings.lfm": ["DEFAULT_EMBEDDING_MODEL", "LFMEmbedding"],
    "llama_index.retrievers.lfm": [
        "DEFAULT_COLBERT_MODEL",
        "LFMBM25ColBERTRetriever",
        "LFMColBERTRetriever",
        "LFMQdrantRetriever",
    ],
    "llama_index.postprocessor.lfm_rerank": ["DEFAULT_COLBERT_MODEL", "LFMColBERTRerank"],
    "haystack_integrations.components.embedders.lfm": ["LFMDocumentEmbedder", "LFMTextEmbedder"],
    "haystack_integrations.components.rankers.lfm": ["LFMColBERTRanker"],
    "haystack_integrations.components.retrievers.lfm": [
        "LFMColBERTDocumentStore",
        "LFMColBERTRetriever",
        "LFMQdrantRetriever",
        "UnsupportedFilterError",
    ],
    "haystack_integrations.document_stores.lfm": [
        "LFMColBERTDocumentStore",
        "LFMQdrantDocumentStore",
        "UnsupportedFilterError",
    ],
}


@pytest.mark.parametrize("root", sorted(PUBLIC_API))
def test_all_is_pinned(root: str) -> None:
    module = importlib.import_module(root)
    assert sorted(module.__all__) == sorted(PUBLIC_API[root])
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
