"""Languages for BM25: ISO 639-1 codes and their Snowball stemmers.

Stemmers come from ``snowballstemmer`` (the Snowball project's own generated Python; it uses
PyStemmer's C build when that is installed). :func:`snowball_stemmer` maps an ISO 639-1 code to
that language's algorithm and memoizes each word, since a corpus repeats a small vocabulary
many times. :data:`STEMMED_LANGUAGES` lists the codes that have a stemmer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import cache, lru_cache

import snowballstemmer

logger = logging.getLogger(__name__)

__all__ = [
    "ISO_639_1",
    "STEMMED_LANGUAGES",
    "algorithm_stemmer",
    "check_language",
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
