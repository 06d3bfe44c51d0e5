"""The public toolkit of the framework adapters: everything they need beyond the front door.

The LangChain, LlamaIndex and Haystack adapters hold configuration and framework idioms only.
They reach the core through :mod:`lfm_retrievers` (encoders, indexes, pipelines) and through
this module, which gathers the small helpers every adapter shares: the optional-dependency
check, the async worker pool, the argument checks and the one crash-safe, checksummed folder
write (``save_folder`` / ``open_folder``, see :mod:`lfm_retrievers._io`) for what an adapter
persists itself. No adapter imports a private module.
"""

from __future__ import annotations

from ._io import ANY_GENERATION, FORMAT_PREFIX, SavedFolder, open_folder, save_folder
from ._optional import require as require_extra
from ._validation import (
    check_batch_size,
    check_bool,
    check_choice,
    check_float,
    check_id_list,
    check_ids,
    check_json,
    check_optional_float,
    check_optional_positive_int,
    check_optional_str,
    check_positive_int,
    check_str,
    check_texts,
    check_vectors,
    type_error,
)
from ._workers import run_in_worker
from .indexes.bm25 import ANALYZERS
from .indexes.languages import check_language
from .indexes.qdrant.layout import SEARCH_MODES, payload_key
from .models.registry import EncoderSpec, resolve_encoder
from .pipeline import FUSIONS
from .scoring import SCORE_MODES

__all__ = [
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
    "check_language",
    "check_optional_float",
    "check_optional_positive_int",
    "check_optional_str",
    "check_positive_int",
    "check_str",
    "check_texts",
    "check_vectors",
    "open_folder",
    "payload_key",
    "require_extra",
    "resolve_encoder",
    "run_in_worker",
    "save_folder",
    "type_error",
]
