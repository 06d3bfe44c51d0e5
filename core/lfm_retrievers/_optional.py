"""One sentence for every missing optional dependency, with the exact install line."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(extra: str, module: str, feature: str | None = None) -> ModuleType:
    """Import ``module`` or raise ImportError naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = feature or module
        msg = f"{what} needs the '{extra}' extra: pip install 'lfm-retrievers[{extra}]'"
        raise ImportError(msg) from exc
