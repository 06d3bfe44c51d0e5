"""Helpers shared by the LangChain tests (importable from test modules and properties)."""

from __future__ import annotations

import os
from pathlib import Path

#: Six short documents; "Paris capital Seine" shares BM25 terms with at least three of them.
CORPUS: list[tuple[str, dict[str, str]]] = [
    ("The capital of France is Paris, a city on the Seine.", {"lang": "en", "topic": "geo"}),
    (
        "Paris hosts the Louvre, the most visited museum in the world.",
        {"lang": "en", "topic": "art"},
    ),
    ("Die Hauptstadt von Deutschland ist Berlin.", {"lang": "de", "topic": "geo"}),
    ("Berlin and Paris are connected by a direct night train.", {"lang": "en", "topic": "travel"}),
    (
        "Madrid es la capital de España y está en el centro del país.",
        {"lang": "es", "topic": "geo"},
    ),
    ("The Seine flows through Paris into the English Channel.", {"lang": "en", "topic": "geo"}),
]
QUERY = "Paris capital Seine"


def tiny_path(kind: str) -> str:
    """A path under the session's tiny-checkpoint folder (exported by tests/conftest.py)."""
    return str(Path(os.environ["LFM_RETRIEVERS_TINY_DIR"]) / kind)
