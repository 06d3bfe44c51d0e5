"""One bounded thread pool for every async entry point of the package's adapters.

Encoding is CPU/GPU bound: running it on the event loop would block it, and one thread per
call would oversubscribe the same cores. Context variables (LangChain callbacks, Haystack
tracing spans, LlamaIndex instrumentation) are carried into the worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

MAX_ASYNC_WORKERS = max(1, min(4, os.cpu_count() or 1))

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(MAX_ASYNC_WORKERS, thread_name_prefix="lfm_retrievers")
        return _executor


async def run_in_worker(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Await ``fn(*args, **kwargs)`` run on the shared pool, keeping the event loop free."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await loop.run_in_executor(_get_executor(), call)
