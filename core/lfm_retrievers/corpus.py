"""Read a document collection from disk: a JSONL file, a BEIR folder or a folder of text files.

This is what ``lfm-retrievers search --corpus`` accepts, exposed so scripts can read corpora the
same way. Every error names the file (and, for JSONL, the line) so a bad row is easy to find.

>>> docs = load_corpus("cookbooks/data/faq.jsonl")  # doctest: +SKIP
>>> docs[0].id, docs[0].title, docs[0].search_text[:30]  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lfm_retrievers._validation import check_json, check_text

from .errors import CorpusError

__all__ = ["CorpusDocument", "CorpusError", "find_beir_folders", "is_beir_folder", "load_corpus"]

BEIR_CORPUS_FILES = ("corpus.jsonl", "corpus.jsonl.gz")
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson")
_ID_KEYS = ("id", "_id", "doc_id")
_RESERVED = {"text", "title", "metadata", *_ID_KEYS}


@dataclass(frozen=True)
class CorpusDocument:
    """One document: its id, optional title, body text and free-form metadata."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def search_text(self) -> str:
        """What retrieval sees: ``title + " " + text`` (the BEIR convention), stripped."""
        return f"{self.title} {self.text}".strip() if self.title else self.text.strip()


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; errors name ``file:line``."""
    try:
        with _open_text(path) as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    msg = f"{path}:{n}: not valid JSON ({exc.msg} at column {exc.colno})"
                    raise CorpusError(msg) from exc
                except RecursionError as exc:
                    msg = f"{path}:{n}: JSON nested too deeply"
                    raise CorpusError(msg) from exc
                if not isinstance(row, dict):
                    msg = (
                        f"{path}:{n}: expected a JSON object with a 'text' field, "
                        f"got {type(row).__name__}"
                    )
                    raise CorpusError(msg)
                yield n, row
    except UnicodeDecodeError as exc:
        msg = f"{path}: not UTF-8 text ({exc.reason})"
        raise CorpusError(msg) from exc
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        msg = f"{path}: cannot be read ({exc})"
        raise CorpusError(msg) from exc


def _from_row(path: Path, n: int, row: dict[str, Any]) -> CorpusDocument:
    text = row.get("text")
    if not isinstance(text, str):
        what = "no 'text' field" if text is None else f"'text' is {type(text).__name__}, not str"
        msg = f"{path}:{n}: {what}"
        raise CorpusError(msg)
    doc_id: Any = next((row[k] for k in _ID_KEYS if row.get(k) not in (None, "")), None)
    if doc_id is None:
        doc_id = str(n)  # the line number: easy to find again
    elif not isinstance(doc_id, str | int):
        msg = f"{path}:{n}: id must be a string or an integer, got {type(doc_id).__name__}"
        raise CorpusError(msg)
    title = row.get("title") or ""
    if not isinstance(title, str):
        msg = f"{path}:{n}: 'title' is {type(title).__name__}, not str"
        raise CorpusError(msg)
    metadata: dict[str, Any] = {}
    nested = row.get("metadata")
    if isinstance(nested, dict):
        metadata.update(nested)
    elif nested is not None:
        msg = f"{path}:{n}: 'metadata' must be an object, got {type(nested).__name__}"
        raise CorpusError(msg)
    metadata.update({k: v for k, v in row.items() if k not in _RESERVED})
    try:  # lone surrogates (JSON "\ud800" escapes) break the tokenizer and every save
        for name, value in (("text", text), ("title", title), ("id", str(doc_id))):
            check_text(value, name)
        metadata = check_json(metadata, "metadata")
    except (TypeError, ValueError) as exc:
        msg = f"{path}:{n}: {exc}"
        raise CorpusError(msg) from exc
    return CorpusDocument(str(doc_id), text, title, metadata)


def _check_unique(docs: list[CorpusDocument], source: Path) -> None:
    seen: set[str] = set()
    for d in docs:
        if d.id in seen:
            msg = f"{source}: duplicate document id {d.id!r}; ids must be unique"
            raise CorpusError(msg)
        seen.add(d.id)


def is_beir_folder(folder: Path) -> bool:
    """True when ``folder`` holds a BEIR ``corpus.jsonl`` or ``corpus.jsonl.gz``."""
    return any((folder / name).is_file() for name in BEIR_CORPUS_FILES)


def find_beir_folders(folder: Path) -> list[Path]:
    """``[folder]`` if it is a BEIR collection, else its BEIR subfolders (sorted by name)."""
    if is_beir_folder(folder):
        return [folder]
    return sorted(p for p in folder.iterdir() if p.is_dir() and is_beir_folder(p))


def _load_jsonl(path: Path) -> list[CorpusDocument]:
    return [_from_row(path, n, row) for n, row in _rows(path)]


def _title_of(path: Path, text: str) -> str:
    if path.suffix.lower() in (".md", ".markdown"):
        for line in text.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
    return path.stem


def _load_text_folder(folder: Path) -> list[CorpusDocument]:
    docs = []
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in TEXT_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            msg = f"{path}: not UTF-8 text ({exc.reason})"
            raise CorpusError(msg) from exc
        if not text.strip():
            continue
        rel = path.relative_to(folder).as_posix()
        try:  # a file name that is not UTF-8 decodes to lone surrogates (surrogateescape)
            check_text(rel, "the file name")
        except ValueError as exc:
            msg = f"{os.fsencode(path)!r}: {exc}; rename the file"
            raise CorpusError(msg) from exc
        docs.append(CorpusDocument(rel, text, _title_of(path, text), {"path": rel}))
    return docs


def load_corpus(path: str | os.PathLike[str]) -> list[CorpusDocument]:
    """Read a corpus: a JSONL file, a BEIR folder (``corpus.jsonl[.gz]``) or a folder of files.

    JSONL rows need ``text``; ``id`` (or ``_id``), ``title`` and ``metadata`` are optional and
    any other key becomes metadata. A row without an id gets its line number. In a folder of
    ``.txt`` / ``.md`` files the id is the relative path and the title the first Markdown
    heading (or the file name). Raises ``FileNotFoundError`` for a missing path and
    ``CorpusError`` (a ``ValueError``) for bad rows, duplicate ids or an empty corpus.
    """
    root = Path(path).expanduser()
    if not root.exists():
        msg = f"corpus not found: {root}"
        raise FileNotFoundError(msg)
    if root.is_dir():
        beir = next((root / n for n in BEIR_CORPUS_FILES if (root / n).is_file()), None)
        if beir is not None:
            docs = _load_jsonl(beir)
            source = beir
        else:
            docs = _load_text_folder(root)
            source = root
            if not docs:
                msg = (
                    f"{root}: no documents: expected a BEIR folder (corpus.jsonl[.gz]) or "
                    f"non-empty {'/'.join(TEXT_SUFFIXES)} files"
                )
                raise CorpusError(msg)
    else:
        name = root.name.lower()
        source = root
        if name.endswith((*JSONL_SUFFIXES, ".json")):
            docs = _load_jsonl(root)
        elif root.suffix.lower() in TEXT_SUFFIXES:
            text = root.read_text(encoding="utf-8")
            docs = [CorpusDocument(root.name, text, _title_of(root, text))] if text.strip() else []
        else:
            msg = (
                f"{root}: unsupported corpus file; use a .jsonl file (one JSON object with "
                f"'text' per line), a BEIR folder or a folder of .txt/.md files"
            )
            raise CorpusError(msg)
    if not docs:
        msg = f"{source}: the corpus is empty (no documents)"
        raise CorpusError(msg)
    _check_unique(docs, source)
    return docs
