"""The Porter (1980) English suffix stripper, original algorithm, for the "english" analyzer.

M. F. Porter, "An algorithm for suffix stripping", Program 14(3), 1980. Written here so the
BM25 "english" analyzer needs no extra dependency; the tests check it word for word against
NLTK's ``PorterStemmer(mode=ORIGINAL_ALGORITHM)`` on a real vocabulary when NLTK is installed.
Input is expected lowercase; characters other than a-z count as consonants.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["porter_stem"]

_VOWELS = frozenset("aeiou")


def _cons_flags(word: str) -> list[bool]:
    """True where word[i] is a consonant (y is a consonant at the start or after a vowel)."""
    flags: list[bool] = []
    for i, ch in enumerate(word):
        if ch in _VOWELS:
            flags.append(False)
        elif ch == "y":
            flags.append(True if i == 0 else not flags[i - 1])
        else:
            flags.append(True)
    return flags


def _measure(stem: str) -> int:
    """M in [C](VC){m}[V]: the number of vowel-run -> consonant-run transitions."""
    m = 0
    prev_vowel = False
    for is_cons in _cons_flags(stem):
        if is_cons and prev_vowel:
            m += 1
        prev_vowel = not is_cons
    return m


def _has_vowel(stem: str) -> bool:
    return not all(_cons_flags(stem))


def _ends_double_cons(word: str) -> bool:
    return len(word) >= 2 and word[-1] == word[-2] and _cons_flags(word)[-1]


def _ends_cvc(word: str) -> bool:
    """*o: the stem ends consonant-vowel-consonant, the last not w, x or y."""
    if len(word) < 3 or word[-1] in "wxy":
        return False
    f = _cons_flags(word)
    return f[-3] and not f[-2] and f[-1]


def _step1a(w: str) -> str:
    if w.endswith("sses"):
        return w[:-2]
    if w.endswith("ies"):
        return w[:-2]
    if w.endswith("ss"):
        return w
    if w.endswith("s"):
        return w[:-1]
    return w


def _step1b(w: str) -> str:
    if w.endswith("eed"):
        return w[:-1] if _measure(w[:-3]) > 0 else w
    for suffix in ("ed", "ing"):
        if w.endswith(suffix) and _has_vowel(w[: -len(suffix)]):
            w = w[: -len(suffix)]
            break
    else:
        return w
    if w.endswith(("at", "bl", "iz")):
        return w + "e"
    if _ends_double_cons(w) and w[-1] not in "lsz":
        return w[:-1]
    if _measure(w) == 1 and _ends_cvc(w):
        return w + "e"
    return w


def _step1c(w: str) -> str:
    if w.endswith("y") and _has_vowel(w[:-1]):
        return w[:-1] + "i"
    return w


_STEP2 = (
    ("ational", "ate"),
    ("tional", "tion"),
    ("enci", "ence"),
    ("anci", "ance"),
    ("izer", "ize"),
    ("abli", "able"),
    ("alli", "al"),
    ("entli", "ent"),
    ("eli", "e"),
    ("ousli", "ous"),
    ("ization", "ize"),
    ("ation", "ate"),
    ("ator", "ate"),
    ("alism", "al"),
    ("iveness", "ive"),
    ("fulness", "ful"),
    ("ousness", "ous"),
    ("aliti", "al"),
    ("iviti", "ive"),
    ("biliti", "ble"),
)
_STEP3 = (
    ("icate", "ic"),
    ("ative", ""),
    ("alize", "al"),
    ("iciti", "ic"),
    ("ical", "ic"),
    ("ful", ""),
    ("ness", ""),
)
_STEP4 = (
    "al",
    "ance",
    "ence",
    "er",
    "ic",
    "able",
    "ible",
    "ant",
    "ement",
    "ment",
    "ent",
    "ion",
    "ou",
    "ism",
    "ate",
    "iti",
    "ous",
    "ive",
    "ize",
)


def _longest(w: str, suffixes: tuple[str, ...]) -> str | None:
    best = None
    for s in suffixes:
        if w.endswith(s) and (best is None or len(s) > len(best)):
            best = s
    return best


def _replace_m0(w: str, rules: tuple[tuple[str, str], ...]) -> str:
    """Steps 2 and 3: the longest matching suffix is replaced when m(stem) > 0."""
    table = dict(rules)
    suffix = _longest(w, tuple(table))
    if suffix is None:
        return w
    stem = w[: -len(suffix)]
    return stem + table[suffix] if _measure(stem) > 0 else w


def _step4(w: str) -> str:
    suffix = _longest(w, _STEP4)
    if suffix is None:
        return w
    stem = w[: -len(suffix)]
    if _measure(stem) <= 1:
        return w
    if suffix == "ion" and not stem.endswith(("s", "t")):
        return w
    return stem


def _step5(w: str) -> str:
    if w.endswith("e"):
        stem = w[:-1]
        m = _measure(stem)
        if m > 1 or (m == 1 and not _ends_cvc(stem)):
            w = stem
    if w.endswith("ll") and _measure(w) > 1:
        w = w[:-1]
    return w


@lru_cache(maxsize=1 << 17)
def porter_stem(word: str) -> str:
    """Stem one lowercase word (cached: a corpus has far fewer distinct words than tokens)."""
    w = _step1a(word)
    w = _step1b(w)
    w = _step1c(w)
    w = _replace_m0(w, _STEP2)
    w = _replace_m0(w, _STEP3)
    w = _step4(w)
    return _step5(w)
