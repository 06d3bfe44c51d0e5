"""The ``lfm-retrievers`` command: search a corpus, evaluate on BEIR data, benchmark, list models.

    lfm-retrievers search --corpus docs.jsonl "how do I return an item?"
    lfm-retrievers eval --data ../shared/data --mode bm25
    lfm-retrievers bench [latency|encoder|retrieval] [--quick]
    lfm-retrievers models

User errors (a missing file, a malformed JSONL line, an unknown option value, a model that is not
available offline) print one ``lfm-retrievers: error: ...`` line on stderr and exit non-zero;
set ``LFM_RETRIEVERS_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from . import bench, eval, models, search
from ._common import PROG, CLIError, _Parser

__all__ = ["build_parser", "main"]


def build_parser() -> _Parser:
    """The ``lfm-retrievers`` argument parser: one subcommand per module of this package."""
    from lfm_retrievers._version import __version__

    parser = _Parser(
        prog=PROG,
        description="Search, evaluate and benchmark Liquid AI's LFM2.5 retrieval models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in (search, eval, bench, models):
        module.register(sub)
    return parser


def _error(message: str) -> int:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lfm-retrievers`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "no_progress", False):
        os.environ["TQDM_DISABLE"] = "1"
    debug = os.environ.get("LFM_RETRIEVERS_DEBUG", "") not in ("", "0")
    from lfm_retrievers.errors import CheckpointError, CheckpointNotFoundError

    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lfm-retrievers ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (CLIError, CheckpointError, CheckpointNotFoundError) as exc:
        if debug:
            raise
        return _error(str(exc))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        if debug:
            raise
        detail = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
        return _error(detail)
    except (ValueError, ImportError, TypeError) as exc:
        # Library input validation (bad corpus rows, bad option values, a missing extra).
        if debug:
            raise
        return _error(str(exc).strip("'\""))
    except Exception as exc:  # anything else: still one line, as the README promises
        if debug:
            raise
        return _error(
            f"unexpected {type(exc).__name__}: {exc} (set LFM_RETRIEVERS_DEBUG=1 for the "
            "traceback, and please report it)"
        )
