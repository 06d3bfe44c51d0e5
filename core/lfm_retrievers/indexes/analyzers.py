r"""BM25 analyzers: how a text becomes the terms BM25 counts.

* ``"default"``: Unicode NFKC, ``casefold``, then words: a word character followed by word
  characters and combining marks (so Devanagari vowel signs stay in their word; Arabic and
  Hebrew diacritics are dropped). Runs of CJK characters (Han, Hiragana, Katakana, Hangul) and
  of Thai, Lao, Myanmar and Khmer become overlapping character bigrams (a lone character
  stays a unigram), because those scripts do not separate words with spaces. Splitting on
  whitespace scores NDCG@10 of about 0.1-0.25 on Japanese and Chinese QA sets; bigrams score
  about 0.9. The analyzer does no stemming and removes no stopwords, so no language is
  favoured. ``"cjk"`` is an alias.
* ``"english"``: ``"default"`` plus Lucene's 33 English stopwords and the original Porter
  (1980) stemmer (``snowballstemmer``'s ``"porter"`` algorithm). It scores best on English
  collections.
* ``"model"``: the checkpoint's own subword tokens (token ids, computed on NFKC-casefolded
  text; tokens that cover no word character are dropped). Pass ``tokenizer=`` an encoder or
  a ``tokenizers.Tokenizer``.
* Any callable ``str -> list[str]``.

**Languages.** ``language=`` (on :func:`get_analyzer`, ``BM25Index``, ``BM25ColBERT`` and every
BM25-using adapter) adds a Snowball stemmer to ``"default"``: an ISO 639-1 code picks that
language's stemmer (:class:`LanguageAnalyzer`; a language without one keeps the default
analyzer and logs that once), and ``"auto"`` detects each text's language and stems it with its
own (:class:`AutoLanguageAnalyzer`, detection in :mod:`.languages`). Measured NDCG@10 per
language is in the README.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import regex
from tokenizers import Tokenizer

from .languages import AUTO, algorithm_stemmer, check_language, get_detector, snowball_stemmer

Analyzer = Callable[[str], list[str]]

#: Version of the built-in analyzers' tokenization, stamped into saved BM25 indexes. 2: words
#: keep their combining marks, Arabic/Hebrew diacritics are removed, Thai-like runs are bigrams.
ANALYZER_VERSION = 2

# Scripts written without spaces between words: Han (CJK ideographs and their extensions),
# the iteration marks 々〆〇, Hiragana, Katakana (incl. ー), Hangul syllables and jamo.
_CJK_RANGES = (
    "\u1100-\u11ff\u3005-\u3007\u3040-\u309f\u30a0-\u30ff\u3130-\u318f\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f"
)
# Thai, Lao, Myanmar and Khmer are written without spaces between words too: their runs become
# character bigrams like CJK runs (whole space-separated runs would be phrases, not words).
_UNSPACED_RANGES = _CJK_RANGES + "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
_WORD = re.compile(r"\w+")

#: Lucene's English stop set (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, 33 words).
ENGLISH_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _cjk_grams(run: str) -> Iterator[str]:
    if len(run) == 1:
        yield run
    else:
        for i in range(len(run) - 1):
            yield run[i : i + 2]


# Outside ASCII a word keeps the combining marks (Unicode category M) that follow its first
# character: Devanagari vowel signs and viramas, Thai vowels. Python's ``\w`` excludes them, which
# cut "हिन्दी" into "ह", "न", "द" (BM25 NDCG@10 on XQuAD-hi: 0.78 cut, 0.95 whole). Arabic
# harakat and Hebrew points are optional in writing, so they are removed instead ("أيضاً" and
# "أيضا" are one term). The ``regex`` module (a dependency of transformers) knows ``\p{M}``.
_DIACRITICS = regex.compile(
    "[\u064b-\u065f\u0670\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7]"
)
_UNSPACED = regex.compile(f"[{_UNSPACED_RANGES}]")
_WORD_M = regex.compile(r"[^\W\p{M}][\w\p{M}]*")
_TOKEN_M = regex.compile(
    f"([{_UNSPACED_RANGES}]+)|((?![{_UNSPACED_RANGES}])[^\\W\\p{{M}}](?:(?![{_UNSPACED_RANGES}])[\\w\\p{{M}}])*)"
)


def _words(text: str) -> Iterator[tuple[str, bool]]:
    """(token, is_cjk) pairs of normalized text: words, and bigrams of unspaced-script runs."""
    if text.isascii():  # fast path: English and other ASCII text
        for w in _WORD.findall(text):
            yield w, False
        return
    text = _DIACRITICS.sub("", text)
    if not _UNSPACED.search(text):
        for w in _WORD_M.findall(text):
            yield w, False
        return
    for cjk, word in _TOKEN_M.findall(text):
        if cjk:
            for gram in _cjk_grams(cjk):
                yield gram, True
        else:
            yield word, False


def default_analyzer(text: str) -> list[str]:
    r"""NFKC + casefold + ``\w+`` words; CJK runs become character bigrams."""
    return [w for w, _ in _words(_normalize(text))]


def english_analyzer(text: str) -> list[str]:
    """``default_analyzer`` minus Lucene's English stopwords, Porter-stemmed."""
    stem = algorithm_stemmer("porter")
    return [
        w if cjk else stem(w)
        for w, cjk in _words(_normalize(text))
        if cjk or w not in ENGLISH_STOPWORDS
    ]


def _stemmed(text: str, stem: Callable[[str], str] | None) -> list[str]:
    if stem is None:
        return default_analyzer(text)
    return [w if cjk else stem(w) for w, cjk in _words(_normalize(text))]


class LanguageAnalyzer:
    """The ``"default"`` analyzer plus one language's Snowball stemmer.

    >>> LanguageAnalyzer("es")("Las casas blancas")
    ['las', 'cas', 'blanc']
    """

    def __init__(self, language: str) -> None:
        code = check_language(language)
        if code is None or code == AUTO:
            msg = f"LanguageAnalyzer needs an ISO 639-1 code, got {language!r}"
            raise ValueError(msg)
        self.language: str = code
        self._stem = snowball_stemmer(code)

    def __call__(self, text: str) -> list[str]:
        """Analyze one text."""
        return _stemmed(text, self._stem)


class AutoLanguageAnalyzer:
    """The ``"default"`` analyzer plus the Snowball stemmer of each text's detected language.

    Calling it analyzes a document (detected from its own text). :meth:`query` analyzes a
    query, whose language is chosen among the corpus's languages with their mix as the prior
    (short queries are where detection fails; see :mod:`.languages`).
    """

    language = AUTO

    def detect(self, text: str) -> str:
        """The detected language (ISO 639-1) of a document."""
        return get_detector().document_language(text)

    def analyze(self, text: str, language: str | None) -> list[str]:
        """Analyze ``text`` as ``language`` (``None``: no stemming)."""
        return _stemmed(text, None if language is None else snowball_stemmer(language))

    def query(self, text: str, prior: Mapping[str, float] | None = None) -> list[str]:
        """Analyze a query; ``prior`` maps each corpus language to its document count."""
        return self.analyze(text, get_detector().query_language(text, prior))

    def __call__(self, text: str) -> list[str]:
        """Analyze one document in its detected language."""
        return self.analyze(text, self.detect(text))


class ModelAnalyzer:
    """The checkpoint's own subword tokens as BM25 terms (token ids as strings).

    Text is NFKC-normalized and casefolded first so case does not split terms. Special tokens
    are not added, and tokens whose span holds no word character are dropped.
    """

    def __init__(self, tokenizer: Any) -> None:
        tok = getattr(tokenizer, "tokenizer", tokenizer)
        if not isinstance(tok, Tokenizer):
            msg = (
                "the 'model' analyzer needs an encoder (with a .tokenizer) or a "
                f"tokenizers.Tokenizer, got {type(tokenizer).__name__}"
            )
            raise TypeError(msg)
        self.tokenizer: Tokenizer = tok

    def __call__(self, text: str) -> list[str]:
        """Analyze one text (see ``batch``)."""
        return self.batch([text])[0]

    def batch(self, texts: Sequence[str]) -> list[list[str]]:
        """Analyze many texts in one call (the tokenizer encodes them in parallel)."""
        normed = [_normalize(t) for t in texts]
        encs = self.tokenizer.encode_batch(normed, add_special_tokens=False)
        out = []
        for text, enc in zip(normed, encs, strict=True):
            out.append(
                [
                    str(tid)
                    for tid, (a, b) in zip(enc.ids, enc.offsets, strict=True)
                    if _WORD.search(text, a, b) is not None
                ]
            )
        return out


ANALYZERS = ("default", "english", "model")
ANALYZER_ALIASES = {"default": "default", "cjk": "default", "english": "english", "model": "model"}


def get_analyzer(
    analyzer: str | Analyzer = "default", tokenizer: Any = None, *, language: str | None = None
) -> tuple[str, Analyzer]:
    """Resolve an analyzer name or callable to ``(name, function)``.

    Names: ``"default"`` (alias ``"cjk"``), ``"english"``, ``"model"`` (needs ``tokenizer``:
    an encoder or a ``tokenizers.Tokenizer``). A callable gets the name ``"custom"``.
    ``language`` (``"default"`` only): an ISO 639-1 code gives a :class:`LanguageAnalyzer`,
    ``"auto"`` an :class:`AutoLanguageAnalyzer`; ``None`` (default) stems nothing.

    >>> get_analyzer("default", language="de")[1]("Die Häuser")
    ['die', 'haus']
    """
    code = check_language(language)
    if isinstance(analyzer, str):
        name = ANALYZER_ALIASES.get(analyzer.lower())
        if name is None:
            msg = f"analyzer must be one of {[*ANALYZERS, 'cjk']} or a callable, got {analyzer!r}"
            raise ValueError(msg)
        if code is not None and name != "default":
            msg = (
                f"language= applies to the 'default' analyzer, not analyzer={analyzer!r} "
                "(leave language=None, or use analyzer='default')"
            )
            raise ValueError(msg)
        if name == "model":
            if tokenizer is None:
                msg = "analyzer='model' needs tokenizer= (an encoder or a tokenizers.Tokenizer)"
                raise ValueError(msg)
            return name, ModelAnalyzer(tokenizer)
        if tokenizer is not None:
            msg = f"tokenizer= is only used by analyzer='model', not {analyzer!r}"
            raise ValueError(msg)
        if code == AUTO:
            return name, AutoLanguageAnalyzer()
        if code is not None:
            return name, LanguageAnalyzer(code)
        return name, default_analyzer if name == "default" else english_analyzer
    if code is not None:
        msg = "language= applies to the 'default' analyzer, not to a custom analyzer"
        raise ValueError(msg)
    if isinstance(analyzer, ModelAnalyzer):
        return "model", analyzer
    if callable(analyzer):
        if tokenizer is not None:
            msg = "tokenizer= is only used by analyzer='model', not by a callable analyzer"
            raise ValueError(msg)
        return "custom", analyzer
    msg = (
        f"analyzer must be one of {list(ANALYZERS)} or a callable str -> list[str], "
        f"got {type(analyzer).__name__}: {analyzer!r:.60}"
    )
    raise TypeError(msg)
