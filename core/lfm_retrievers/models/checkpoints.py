"""Known checkpoints, resolving a name or path to a local folder, and reading its layout.

Everything about a checkpoint is read from its own files (``config.json``, ``modules.json``,
``1_Pooling`` / ``1_Dense``, the sentence-transformers / PyLate configs, the tokenizer): the kind
is detected, never guessed from the name, and no code from the checkpoint is executed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lfm_retrievers._io import read_format, read_manifest
from lfm_retrievers.errors import CheckpointError, CheckpointNotFoundError, IndexFormatError

from .files import read_json, settings_value
from .fingerprint import fingerprint as content_fingerprint
from .trunk import TrunkConfig

Kind = Literal["dense", "colbert"]

#: The ``manifest.json`` format of an ONNX export folder (see ``models.backends.onnx_export``).
ONNX_FORMAT = "lfm-retrievers/onnx-export"
#: The export format version this package writes and reads (1 had its own manifest file).
ONNX_FORMAT_VERSION = 2
#: The manifest of ONNX exports written before they followed the one manifest convention.
LEGACY_ONNX_MANIFEST = "onnx_manifest.json"


def is_onnx_export(path: Path) -> bool:
    """Whether ``path`` is an ONNX export folder (of this or an earlier format version)."""
    return read_format(path) == ONNX_FORMAT or (path / LEGACY_ONNX_MANIFEST).is_file()


def legacy_export_error(path: Path) -> CheckpointError:
    """The error for an export folder written before format version 2."""
    msg = (
        f"{path}: ONNX export format version 1 (written by an earlier lfm-retrievers, with "
        f"{LEGACY_ONNX_MANIFEST}); this version reads format version "
        f"{ONNX_FORMAT_VERSION}. Export the model again "
        "with lfm_retrievers.export_onnx."
    )
    return CheckpointError(msg)


BIDIRECTIONAL_ARCHS = ("Lfm2BidirectionalModel",)
CAUSAL_ARCHS = ("Lfm2Model",)
MODEL_TYPES = ("lfm2", "lfm2_bidirectional")


@dataclass(frozen=True)
class ModelInfo:
    """One known retrieval checkpoint (the registry is read-only data)."""

    model_id: str
    kind: Kind
    architecture: str
    causal: bool
    dim: int
    parameters: int
    storage_dtype: str
    revision: str
    description: str


KNOWN_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        model_id="LiquidAI/LFM2.5-Embedding-350M",
        kind="dense",
        architecture="Lfm2BidirectionalModel",
        causal=False,
        dim=1024,
        parameters=354_483_968,
        storage_dtype="bfloat16",
        revision="85a23d142ff20a1204f4103ca0d4c86be06a9cfe",
        description="Dense bi-encoder: one 1024-d CLS vector per text, cosine; "
        "prompts 'query: ' / 'document: '.",
    ),
    ModelInfo(
        model_id="LiquidAI/LFM2.5-ColBERT-350M",
        kind="colbert",
        architecture="Lfm2BidirectionalModel",
        causal=False,
        dim=128,
        parameters=353_453_824,
        storage_dtype="bfloat16",
        revision="d6d91b3d9468d373abdec3679538017d16c75d0f",
        description="Late interaction: 128-d per token, MaxSim; [Q]/[D] markers, "
        "32-token query expansion, punctuation skiplist.",
    ),
    ModelInfo(
        model_id="LiquidAI/LFM2-ColBERT-350M",
        kind="colbert",
        architecture="Lfm2Model",
        causal=True,
        dim=128,
        parameters=353_453_824,
        storage_dtype="float32",
        revision="370cc1088cb5722499830bab3ff37a39c963fcd7",
        description="The older causal ColBERT (stock LFM2 trunk), same head contract.",
    ),
)


DEFAULT_DENSE_MODEL = "LiquidAI/LFM2.5-Embedding-350M"
DEFAULT_COLBERT_MODEL = "LiquidAI/LFM2.5-ColBERT-350M"


def list_models() -> tuple[ModelInfo, ...]:
    """The checkpoints this package knows by name (any compatible local folder also loads)."""
    return KNOWN_MODELS


def _known(name: str) -> ModelInfo | None:
    for info in KNOWN_MODELS:
        if name in (info.model_id, info.model_id.split("/", 1)[1]):
            return info
    return None


@dataclass(frozen=True)
class ColBERTSettings:
    """PyLate's ColBERT settings, as stored in ``config_sentence_transformers.json``."""

    query_prefix: str = "[Q] "
    document_prefix: str = "[D] "
    query_length: int = 32
    document_length: int = 512
    do_query_expansion: bool = True
    attend_to_expansion_tokens: bool = False
    skiplist_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checkpoint:
    """A resolved, validated checkpoint folder and everything read from it."""

    name: str
    path: Path
    kind: Kind
    causal: bool
    trunk: TrunkConfig
    max_length: int
    raw_config: Mapping[str, Any] = field(repr=False)
    prompts: Mapping[str, str] = field(default_factory=dict)
    colbert: ColBERTSettings | None = None
    dense_dir: Path | None = None

    @property
    def fingerprint(self) -> str:
        """The identity of this checkpoint's content: every weight byte (see ``fingerprint``)."""
        return fingerprint(self.path)


_HUB_FILES = [
    "config.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "1_Pooling/*",
    "1_Dense/*",
]


def resolve_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A local checkpoint folder for a path, a known short name or a Hugging Face hub id."""
    if not isinstance(name_or_path, str | os.PathLike):
        msg = f"model must be a str or path, got {type(name_or_path).__name__}: {name_or_path!r}"
        raise TypeError(msg)
    text = os.fspath(name_or_path)
    local = Path(text).expanduser()
    if local.is_dir():
        return local.resolve()
    info = _known(text)
    repo_id = info.model_id if info else text
    looks_like_hub_id = repo_id.count("/") == 1 and not repo_id.startswith((".", "/", "~"))
    if not looks_like_hub_id:
        known = ", ".join(m.model_id for m in KNOWN_MODELS)
        msg = (
            f"model {text!r} is neither a local folder nor a Hugging Face hub id "
            f"('org/name'). Known models: {known}."
        )
        raise CheckpointNotFoundError(msg)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES))
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        why = "HF_HUB_OFFLINE is set" if offline else f"the download failed ({type(exc).__name__})"
        msg = (
            f"model {repo_id!r} is not in the local Hugging Face cache and {why}. "
            f"Download the checkpoint on a machine with access (e.g. `hf download {repo_id} "
            f"--local-dir ./{repo_id.split('/')[-1]}`) and pass that folder's path as the model."
        )
        raise CheckpointNotFoundError(msg) from exc


def _read_json(path: Path) -> Any:
    return read_json(path, dict)


def _require(path: Path, what: str, name: str) -> Path:
    if not path.exists():
        msg = (
            f"model {name!r}: {what} is missing ({path}). A checkpoint folder needs config.json, "
            f"model.safetensors, tokenizer.json and its sentence-transformers head files "
            f"(1_Pooling for the dense model, 1_Dense for ColBERT); point the model argument at "
            f"a complete local copy."
        )
        raise CheckpointError(msg)
    return path


def detect_kind(path: Path) -> Kind:
    """Dense or colbert, from modules.json, the head folders and the ST/PyLate config."""
    votes: set[str] = set()
    modules_file = path / "modules.json"
    if modules_file.exists():
        for i, module in enumerate(read_json(modules_file, list)):
            if not isinstance(module, dict):
                msg = f"{modules_file}: entry {i} must be a JSON object, got {module!r:.40}"
                raise CheckpointError(msg)
            mtype = str(module.get("type", ""))
            if mtype.endswith("Pooling"):
                votes.add("dense")
            elif mtype.endswith("Dense"):
                votes.add("colbert")
    if (path / "1_Pooling").is_dir():
        votes.add("dense")
    if (path / "1_Dense").is_dir():
        votes.add("colbert")
    st_file = path / "config_sentence_transformers.json"
    if st_file.exists():
        st = _read_json(st_file)
        if "query_prefix" in st or "skiplist_words" in st:
            votes.add("colbert")
    if len(votes) != 1:
        found = "both a pooling and a ColBERT head" if votes else "neither 1_Pooling nor 1_Dense"
        msg = (
            f"{path}: cannot tell the model kind: found {found}. Expected the "
            f"LFM2.5-Embedding layout (modules.json + 1_Pooling) or the ColBERT layout "
            f"(modules.json + 1_Dense + PyLate settings in config_sentence_transformers.json)."
        )
        raise CheckpointError(msg)
    return "dense" if "dense" in votes else "colbert"


def read_checkpoint(name_or_path: str | os.PathLike[str]) -> Checkpoint:
    """Resolve and validate a checkpoint; nothing is loaded into memory yet."""
    name = os.fspath(name_or_path) if isinstance(name_or_path, str | os.PathLike) else name_or_path
    path = resolve_path(name_or_path)
    config = _read_json(_require(path / "config.json", "config.json", str(name)))
    exported = is_onnx_export(path)  # an ONNX export carries no torch weights
    if not exported:
        _require(path / "model.safetensors", "model.safetensors", str(name))
    _require(path / "tokenizer.json", "tokenizer.json", str(name))
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        msg = f"{path}/config.json: model_type {model_type!r} is not an LFM2 model {MODEL_TYPES}"
        raise CheckpointError(msg)
    archs = config.get("architectures") or []
    if any(a in BIDIRECTIONAL_ARCHS for a in archs) or model_type == "lfm2_bidirectional":
        causal = False
    elif any(a in CAUSAL_ARCHS for a in archs):
        causal = True
    else:
        msg = (
            f"{path}/config.json: architectures {archs!r} not supported; expected one of "
            f"{BIDIRECTIONAL_ARCHS + CAUSAL_ARCHS}"
        )
        raise CheckpointError(msg)
    try:
        trunk = TrunkConfig.from_dict(config, causal=causal)
    except ValueError as exc:
        msg_0 = f"{path}: {exc}"
        raise CheckpointError(msg_0) from exc
    kind = detect_kind(path)
    sbert = path / "sentence_bert_config.json"
    max_length = (
        settings_value(sbert, "max_seq_length", int, _read_json(sbert).get("max_seq_length", 512))
        if sbert.exists()
        else 512
    )
    st_file = path / "config_sentence_transformers.json"
    st: dict[str, Any] = _read_json(st_file) if st_file.exists() else {}
    if kind == "dense":
        pool_cfg = _read_json(
            _require(path / "1_Pooling" / "config.json", "1_Pooling/config.json", str(name))
        )
        if not pool_cfg.get("pooling_mode_cls_token", False):
            modes = sorted(k for k, v in pool_cfg.items() if k.startswith("pooling_mode") and v)
            msg = f"{path}/1_Pooling: pooling {modes} is not supported; LFM2.5-Embedding uses CLS"
            raise CheckpointError(msg)
        prompts = {"query": "query: ", "document": "document: "}
        raw_prompts = st.get("prompts") or {}
        if not isinstance(raw_prompts, dict):
            msg = f"{st_file}: prompts must be a JSON object, got {raw_prompts!r:.40}"
            raise CheckpointError(msg)
        prompts.update({k: str(v) for k, v in raw_prompts.items()})
        return Checkpoint(str(name), path, kind, causal, trunk, max_length, config, prompts)
    dense_dir = path / "1_Dense"
    if not exported:
        _require(dense_dir / "model.safetensors", "1_Dense/model.safetensors", str(name))
    _require(dense_dir / "config.json", "1_Dense/config.json", str(name))
    defaults = ColBERTSettings()
    skiplist = st.get("skiplist_words", ())
    if not isinstance(skiplist, list | tuple):
        msg = f"{st_file}: skiplist_words must be a JSON array, got {skiplist!r:.40}"
        raise CheckpointError(msg)
    settings = ColBERTSettings(
        query_prefix=str(st.get("query_prefix", defaults.query_prefix)),
        document_prefix=str(st.get("document_prefix", defaults.document_prefix)),
        query_length=settings_value(
            st_file, "query_length", int, st.get("query_length", defaults.query_length)
        ),
        document_length=settings_value(
            st_file, "document_length", int, st.get("document_length", max_length + 1)
        ),
        do_query_expansion=bool(st.get("do_query_expansion", True)),
        attend_to_expansion_tokens=bool(st.get("attend_to_expansion_tokens", False)),
        skiplist_words=tuple(str(w) for w in skiplist),
    )
    return Checkpoint(
        str(name), path, kind, causal, trunk, max_length, config, {}, settings, dense_dir
    )


def fingerprint(path: Path) -> str:
    """The identity of a checkpoint's content: a SHA-256 over its configs and every weight byte.

    Used to key the embedding cache and to stamp saved indexes, so that vectors made by one
    model are never mixed with another's. Computed once per file and cached next to the
    checkpoint (see :mod:`.fingerprint`); an ONNX export keeps its source's identity.
    """
    if (path / LEGACY_ONNX_MANIFEST).is_file():
        raise legacy_export_error(path)
    if read_format(path) == ONNX_FORMAT:
        try:
            manifest = read_manifest(
                path, formats=(ONNX_FORMAT,), max_version=ONNX_FORMAT_VERSION, what="export"
            )
        except IndexFormatError as exc:
            raise CheckpointError(str(exc)) from exc
        model = manifest.get("model")
        if not isinstance(model, dict) or not isinstance(model.get("fingerprint"), str):
            msg = f"{path}/manifest.json: no source model fingerprint"
            raise CheckpointError(msg)
        return str(model["fingerprint"])
    return content_fingerprint(path)


__all__ = [
    "KNOWN_MODELS",
    "LEGACY_ONNX_MANIFEST",
    "ONNX_FORMAT",
    "ONNX_FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ColBERTSettings",
    "ModelInfo",
    "detect_kind",
    "fingerprint",
    "is_onnx_export",
    "legacy_export_error",
    "list_models",
    "read_checkpoint",
    "resolve_path",
]
