"""What the model sees of a paragraph, in pure Python so that prediction needs no scikit-learn or numpy.

Two kinds of features:

* text features, hashed into ``2**HASH_BITS`` columns with CRC-32 (no vocabulary to store or load): word
  unigrams and bigrams, the first and last token, and character 3- to 5-grams inside each word (German
  compounds: "Gratis-Analyse", "Depoteröffnung"). Digits are folded to ``0`` so that prices and dates
  generalise. Training weights them by idf and divides each block by the square root of its number of
  occurrences, which keeps the score a plain sum over occurrences and lets the scorer cache it per word;
* form and context features (``DENSE_NAMES``): the paragraph's length and make-up, its place in the page and
  the form of its neighbours, because boilerplate comes in runs and at the edges of a page.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterator
from functools import lru_cache
from itertools import pairwise

HASH_BITS = 19
HASH_MASK = (1 << HASH_BITS) - 1
CHAR_NGRAMS = (3, 4, 5)
MAX_TEXT_CHARS = 20_000  # text features read this much of a paragraph: bounded time and memory on huge ones

_TOKEN = re.compile(r"\w+|[^\w\s]+")
_DIGIT = re.compile(r"\d")
_PRICE = re.compile(r"\d\s?(?:€|eur\b|euro\b|usd\b|\$|chf\b|fr\.|dollar\b|franken\b)")  # on lower case
_PERCENT = re.compile(r"\d\s?(?:%|prozent\b)")  # on lower case
_BULLET = re.compile(r"^\s*(?:[•·▪►▶✓✔\-–—*+>]|\d+[.)])\s", re.M)
_URL = re.compile(r"https?://|www\.|\.(?:de|com|ch|at|net)\b")  # on lower case
_LINK_WORD = re.compile(r"\b(?:hier|klicken|klick|weiterlesen)\b")  # on lower case: the anchor words of links
_DATE_TIME = re.compile(r"\d(?:\.\d\d?\.|:\d\d\b)")
_SENTENCE_MARKS = '.!?…"“”»«'
_CLAUSE_MARKS = _SENTENCE_MARKS + ":;)"


def hash_feature(name: str) -> int:
    """The column of a named text feature."""
    return zlib.crc32(name.encode("utf-8", "surrogatepass")) & HASH_MASK


def tokens(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens of the paragraph's first MAX_TEXT_CHARS, digits folded to 0."""
    return _TOKEN.findall(_DIGIT.sub("0", text[:MAX_TEXT_CHARS].lower()))


def word_feature_ids(toks: list[str]) -> list[int]:
    """Columns of the word block, one entry per occurrence: unigrams, then ``phrase_feature_ids``."""
    unigrams = [unigram_id(t) for t in toks]
    return unigrams + phrase_feature_ids(unigrams)


_EMPTY_ID = hash_feature("empty")
_PAIR = 0x01000193  # FNV prime: mixes two unigram columns into one bigram column


def phrase_feature_ids(unigrams: list[int] | tuple[int, ...]) -> list[int]:
    """Bigrams and the first and last token, computed from the unigram columns (no string hashing on the
    hot path); a single "empty" feature for a paragraph without tokens."""
    if not unigrams:
        return [_EMPTY_ID]
    ids = [(a * _PAIR ^ b) & HASH_MASK for a, b in pairwise(unigrams)]
    ids.append((unigrams[0] * _PAIR + 1) & HASH_MASK)
    ids.append((unigrams[-1] * _PAIR + 2) & HASH_MASK)
    return ids


@lru_cache(maxsize=1 << 18)
def unigram_id(token: str) -> int:
    """Column of a word unigram."""
    return hash_feature(f"w|{token}")


@lru_cache(maxsize=1 << 18)
def char_ngram_ids(token: str) -> tuple[int, ...]:
    """Columns of the character n-grams of one token, padded with spaces; empty for punctuation."""
    if not token[0].isalnum() and token[0] != "_":
        return ()
    padded = f" {token} "
    return tuple(
        hash_feature(f"c|{padded[i : i + n]}") for n in CHAR_NGRAMS for i in range(max(1, len(padded) - n + 1))
    )


# ---------------------------------------------------------------------------------------------------------
# Form and context features

FORM_NAMES = (
    "log_chars",
    "log_words",
    "lines",
    "digit_share",
    "upper_share",
    "punct_share",
    "ends_sentence",
    "ends_question",
    "ends_exclamation",
    "ends_colon",
    "ends_ellipsis",
    "has_qmark_bang",
    "prices",
    "percents",
    "bullets",
    "has_url",
    "pipes",
    "date_time",
    "short_no_stop",
    "all_caps_words",
    "short_first_line",
    "short_link_word",
)
_CONTEXT_OFFSETS = (-3, -2, -1, 1, 2, 3)
DENSE_NAMES = (
    FORM_NAMES
    + (
        "rel_pos",
        "rel_pos_from_end",
        "is_first",
        "is_last",
        "log_pos",
        "log_pos_from_end",
        "log_page_len",
        "long_before",
        "long_after",
        "before_first_long",
        "after_last_long",
        "short_share_window",
        "page_share_long",
        "statement",
        "statement_among_short",
    )
    + tuple(f"{name}_{o:+d}" for o in _CONTEXT_OFFSETS for name in ("exists", "log_words", "ends_sentence"))
)
_SHARE_SAMPLE = 200  # characters: the shares of digits, capitals and punctuation are read from this prefix
_LONG = 25  # words: a paragraph this long is almost always running text
_STATEMENT = 8  # words: this long and ending a sentence, but not with ? or !, it is a statement, not a title
_POINTER = 15  # words: a line this short with a link word (_LINK_WORD) is most often a link, wherever it stands
_SHORT = 6  # words: a neighbour this short is a label, a link or a title
_WORDS, _ENDS, _QUESTION, _EXCLAMATION = (
    FORM_NAMES.index(name) for name in ("log_words", "ends_sentence", "ends_question", "ends_exclamation")
)


def form_features(text: str) -> list[float]:
    """The make-up of one paragraph (in the order of FORM_NAMES)."""
    stripped = text.strip()
    lower = stripped.lower()
    n_chars = len(stripped)
    words = stripped.split()
    n_words = len(words)
    sample = stripped[:_SHARE_SAMPLE]
    letters = sum(map(str.isalpha, sample))
    uppers = sum(map(str.isupper, sample))
    digits = sum(map(str.isdigit, sample))
    spaces = sample.count(" ") + sample.count("\n") + sample.count("\t") + sample.count("\u00a0")
    puncts = len(sample) - letters - digits - spaces
    denominator = max(len(sample), 1)
    caps_words = sum(1 for w in words if len(w) > 1 and w.isupper())
    last = stripped[-1:]
    has_digit = digits > 0 or any(map(str.isdigit, stripped[_SHARE_SAMPLE:]))
    return [
        math.log1p(n_chars),
        math.log1p(n_words),
        float(min(stripped.count("\n") + 1, 20)),
        digits / denominator,
        uppers / max(letters, 1),
        puncts / denominator,
        float(bool(last) and last in _SENTENCE_MARKS),
        float(last == "?"),
        float(last == "!"),
        float(last == ":"),
        float(stripped.endswith(("...", "…"))),
        float("?!" in stripped or "!?" in stripped),
        math.log1p(len(_PRICE.findall(lower))) if has_digit else 0.0,
        math.log1p(len(_PERCENT.findall(lower))) if has_digit else 0.0,
        math.log1p(len(_BULLET.findall(stripped))),
        float(("." in lower or "/" in lower) and _URL.search(lower) is not None),
        math.log1p(stripped.count("|")),
        float(has_digit and _DATE_TIME.search(stripped) is not None),
        float(n_words <= 6 and not (bool(last) and last in _CLAUSE_MARKS)),
        caps_words / max(n_words, 1),
        float(_short_first_line(stripped)),
        float(n_words <= _POINTER and _LINK_WORD.search(lower) is not None),
    ]


def _short_first_line(stripped: str) -> bool:
    """A paragraph of several lines whose first line is a short label, not a sentence: an ad tile
    ("Advertiser" over its headline), a list title, a widget row."""
    first, newline, _ = stripped.partition("\n")
    first = first.strip()
    return bool(newline) and len(first.split()) <= 5 and first[-1:] not in _CLAUSE_MARKS


def page_features(forms: list[list[float]]) -> Iterator[list[float]]:
    """Form features of every paragraph of a page, extended by its place in the page and its neighbours'
    form (in the order of DENSE_NAMES)."""
    n = len(forms)
    log_words = [f[_WORDS] for f in forms]
    ends = [f[_ENDS] for f in forms]
    is_long = [w >= math.log1p(_LONG) for w in log_words]
    long_before = [0] * n
    running = 0
    for i in range(n):
        long_before[i] = running
        running += is_long[i]
    total_long = running
    first_long = is_long.index(True) if total_long else n
    last_long = n - 1 - is_long[::-1].index(True) if total_long else -1
    short = [w <= math.log1p(_SHORT) for w in log_words]
    # A full sentence between short lines is an item of a digest (between its "Zur Meldung" links), where
    # a title between short lines is a link list: the form of the paragraph decides how its neighbours count.
    statement = [
        f[_ENDS] > 0 and not (f[_QUESTION] or f[_EXCLAMATION]) and f[_WORDS] >= math.log1p(_STATEMENT)
        for f in forms
    ]
    for i, form in enumerate(forms):
        window = short[max(0, i - 3) : i] + short[i + 1 : i + 4]
        row = form + [
            i / max(n - 1, 1),
            (n - 1 - i) / max(n - 1, 1),
            float(i == 0),
            float(i == n - 1),
            math.log1p(i),
            math.log1p(n - 1 - i),
            math.log1p(n),
            math.log1p(long_before[i]),
            math.log1p(total_long - long_before[i] - is_long[i]),
            float(i < first_long),
            float(i > last_long),
            sum(window) / len(window) if window else 0.0,
            total_long / n,
            float(statement[i]),
            float(statement[i] and (i == 0 or short[i - 1]) and (i == n - 1 or short[i + 1])),
        ]
        for o in _CONTEXT_OFFSETS:
            j = i + o
            if 0 <= j < n:
                row += [1.0, log_words[j], ends[j]]
            else:
                row += [0.0, 0.0, 0.0]
        yield row


# ---------------------------------------------------------------------------------------------------------
# Second stage: what the first stage thinks of the neighbours

_STAGE2_OFFSETS = (-2, -1, 1, 2)
STAGE2_SIZE = 3 + 4 * len(_STAGE2_OFFSETS) + 3


def softmax(scores: list[float]) -> list[float]:
    """Class scores to probabilities."""
    top = max(scores)
    exp = [math.exp(v - top) for v in scores]
    total = sum(exp)
    return [e / total for e in exp]


def neighbour_features(logits: list[list[float]]) -> list[list[float]]:
    """Per paragraph: its own first-stage scores, the first-stage probabilities of the two paragraphs before
    and after it (with a flag for "exists"), and the page's mean probabilities. Sales blocks and link lists
    come in runs ("Anzeige" and its ad tiles, "Weitere Artikel" and its titles): the neighbours tell."""
    probs = [softmax(row) for row in logits]
    n = len(probs)
    mean = [sum(p[k] for p in probs) / n for k in range(3)] if n else [0.0, 0.0, 0.0]
    rows = []
    for i in range(n):
        top = max(logits[i])
        row = [(v - top) / 5.0 for v in logits[i]]
        for o in _STAGE2_OFFSETS:
            j = i + o
            row += [1.0, *probs[j]] if 0 <= j < n else [0.0, 0.0, 0.0, 0.0]
        rows.append(row + mean)
    return rows
