"""Every docstring example of the core runs, as part of the default test command.

Examples that need the real weights (a hub download) are marked ``# doctest: +SKIP``; the
rest execute against what they show. ``__main__`` modules are not imported (importing one runs
the command).
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core" / "lfm_retrievers"


def _modules() -> list[str]:
    names = []
    for path in sorted(CORE.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


MODULES = _modules()


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_some_examples_actually_run() -> None:
    """Guard against a collector that finds nothing: the pure-function examples execute."""
    attempted = 0
    for name in ("lfm_retrievers.scoring", "lfm_retrievers.rerank", "lfm_retrievers.indexes.bm25"):
        finder = doctest.DocTestFinder()
        tests = finder.find(importlib.import_module(name))
        attempted += sum(len([e for e in t.examples if not e.options]) for t in tests)
    assert attempted >= 5
