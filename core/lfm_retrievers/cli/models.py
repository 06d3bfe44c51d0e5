"""``lfm-retrievers models``: the checkpoints this package knows by name."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import _print_json, _table, cache_dir


def register(sub: Any) -> None:
    """Add the subcommand's parser to ``sub`` (argparse subparsers)."""
    m = sub.add_parser("models", help="list the known checkpoints")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``lfm-retrievers models``."""
    from lfm_retrievers.models.checkpoints import list_models

    models = list_models()
    if args.json:
        _print_json(
            [
                {
                    "model_id": m.model_id,
                    "kind": m.kind,
                    "architecture": m.architecture,
                    "causal": m.causal,
                    "dim": m.dim,
                    "parameters": m.parameters,
                    "storage_dtype": m.storage_dtype,
                    "revision": m.revision,
                    "description": m.description,
                }
                for m in models
            ]
        )
        return 0
    rows = [
        [
            m.model_id,
            m.kind,
            m.dim,
            f"{m.parameters / 1e6:.1f}M",
            "causal" if m.causal else "bidirectional",
            m.storage_dtype,
            m.description,
        ]
        for m in models
    ]
    print(
        _table(
            ["model", "kind", "dim", "params", "trunk", "weights", "description"], rows, "llrrlll"
        )
    )
    print(
        f"`--model tiny` builds an untrained miniature checkpoint (random weights) into "
        f"{cache_dir()} for offline trials."
    )
    return 0
