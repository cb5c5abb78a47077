"""What the model sees of a paragraph, in pure Python so that prediction needs no scikit-learn or numpy.

Three kinds of features:

* text features, hashed into ``2**HASH_BITS`` columns with CRC-32 (no vocabulary to store or load): word
  unigrams and bigrams, the first and last token, and character 3- to 5-grams inside each word (German
  compounds: "Gratis-Analyse", "Depoteröffnung"). Digits are folded to ``0`` so that prices and dates
  generalise. For HTML input the words of the class and id attributes above the paragraph ("ad", "teaser",
  "newsletter") are hashed into the same columns as a third block. Training weights them by idf and divides
  each block by the square root of its number of occurrences, which keeps the score a plain sum over
  occurrences and lets the scorer cache it per word;
* dense features (``DENSE_NAMES``): the paragraph's form (length and make-up), its markup (tag, link text,
  landmarks; all zero for text input), its place in the page and the form of its neighbours, because
  boilerplate comes in runs and at the edges of a page;
* the second stage's features (``STAGE2_NAMES``): what the first stage thinks of the paragraph, of its
  neighbours near and far, and of the page, and where the page's article run (the densest run of editorial
  scores) lies: the article is one contiguous run inside the chrome of a full page; the same run weighed by
  text length (``text_run``), which a share bar between headline and body does not cut; for HTML input what
  the other paragraphs of its box and of the box around it look like; and how many of a paragraph's content
  words the article run holds (a teaser of another story shares few of them).

Each group of dense features is declared once, as the keys of the dict its function returns; the names and the
values cannot drift apart.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import pairwise

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at run time (see _named_tuple)
if TYPE_CHECKING:
    from detector.markup import Block

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


_UNSEEN_IN_WORDS = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")  # soft hyphen, zero-width characters
# What needs more than that, found in one search: the marks of decomposed letters (NFD: "u" + U+0308 for "ü"),
# fullwidth forms, the ideographic space and ligatures (NFKC: "ＤＡＸ", "ﬁ"), and the first characters of UTF-8
# read as Windows-1252 or Latin-1 ("Ã¼" for "ü", "â€ž" for "„").
_UNUSUAL = re.compile("[\u0300-\u036f\u3000\uff01-\uff5e\ufb00-\ufb06Ãâ]")  # one class: a fast scan
# Patterns most pages never need are kept as strings, compiled on first use through re's cache: compiling
# every pattern of the package at import took a tenth of a one-page run's start.
_COMPATIBLE = "[\u3000\uff01-\uff5e\ufb00-\ufb06]"
_MOJIBAKE = "Ã|â[\u0080\u20ac]"
_ENTITY = r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});"


def reader_text(text: str) -> str:
    """A paragraph as a reader sees it, which is how the model reads it (the output keeps the text as it
    stood): HTML entities decoded ("B&ouml;rse", as escaped twice by feeds and exports), UTF-8 that was read
    as Windows-1252 or Latin-1 read again ("BÃ¶rse", where the whole paragraph allows it), composed letters
    (NFC: "ü", not "u" and a combining diaeresis, as text from macOS or some CMSs arrives), fullwidth letters
    and ligatures as plain ones (NFKC, on those characters alone), and no soft hyphens or
    zero-width characters inside words (sites hyphenate headlines with ``&shy;``). Each cuts words into
    tokens the model never saw."""
    if "&" in text and re.search(_ENTITY, text):
        import html

        text = html.unescape(text)
    if text.isascii():
        return text
    if _UNUSUAL.search(text):
        text = _normalised(text)
    return _UNSEEN_IN_WORDS.sub("", text)


def _normalised(text: str) -> str:
    import unicodedata

    if re.search(_MOJIBAKE, text):
        for encoding in ("cp1252", "latin-1"):
            try:
                text = text.encode(encoding).decode("utf-8")
                break
            except UnicodeError:  # not every character fits, or the bytes are not UTF-8: as it stands
                pass
    # NFKC on the fullwidth letters and ligatures alone: on the whole paragraph it would also turn "…" into
    # "...", "²" into "2" and "™" into "TM" wherever one of them stood beside a ligature, and not elsewhere.
    text = re.sub(_COMPATIBLE, lambda found: unicodedata.normalize("NFKC", found.group()), text)
    return unicodedata.normalize("NFC", text)


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


def phrase_feature_ids(unigrams: Sequence[int]) -> list[int]:
    """Bigrams and the first and last token, computed from the unigram columns (no string hashing on the
    hot path); a single "empty" feature for a paragraph without tokens."""
    if not unigrams:
        return [_EMPTY_ID]
    ids = [(a * _PAIR ^ b) & HASH_MASK for a, b in pairwise(unigrams)]
    ids.append((unigrams[0] * _PAIR + 1) & HASH_MASK)
    ids.append((unigrams[-1] * _PAIR + 2) & HASH_MASK)
    return ids


# CRC-32 continues from a prefix's value: crc32(rest, crc32(prefix)) == crc32(prefix + rest), so the columns of
# ``hash_feature(f"w|{token}")`` and ``hash_feature(f"c|{gram}")`` are computed without building those strings.
_UNIGRAM_SEED = zlib.crc32(b"w|")
_NGRAM_SEED = zlib.crc32(b"c|")


@lru_cache(maxsize=1 << 18)
def unigram_id(token: str) -> int:
    """Column of a word unigram (``hash_feature(f"w|{token}")``)."""
    return zlib.crc32(token.encode("utf-8", "surrogatepass"), _UNIGRAM_SEED) & HASH_MASK


@lru_cache(maxsize=1 << 18)
def char_ngram_ids(token: str) -> tuple[int, ...]:
    """Columns of the character n-grams of one token, padded with spaces; empty for punctuation."""
    if not token[0].isalnum() and token[0] != "_":
        return ()
    padded = f" {token} "
    crc, seed, size = zlib.crc32, _NGRAM_SEED, len(padded)
    starts = [(n, range(max(1, size - n + 1))) for n in CHAR_NGRAMS]
    if padded.isascii():  # one byte per character: the n-grams are slices of the encoded token (the first pass)
        data = padded.encode("ascii")
        return tuple([crc(data[i : i + n], seed) & HASH_MASK for n, at in starts for i in at])
    return tuple(
        [crc(padded[i : i + n].encode("utf-8", "surrogatepass"), seed) & HASH_MASK for n, at in starts for i in at]
    )


def char_ngram_count(token: str) -> int:
    """``len(char_ngram_ids(token))`` without hashing: the count a word of the model's word table needs."""
    if not token[0].isalnum() and token[0] != "_":
        return 0
    size = len(token) + 2
    return sum(max(1, size - n + 1) for n in CHAR_NGRAMS)


def known_words(words: tuple[str, ...], vocabulary: frozenset[str]) -> tuple[str, ...]:
    """The class and id words a model knows (its ``class_vocabulary``), in their order."""
    return tuple(w for w in words if w in vocabulary)


@lru_cache(maxsize=1 << 14)
def class_word_ids(words: tuple[str, ...]) -> tuple[int, ...]:
    """Columns of the class and id words above an HTML paragraph: each distinct word once, and the words of
    the nearest element that has any once more, marked as near (``detector.markup.Block.class_words``)."""
    seen = dict.fromkeys(words)
    return tuple(hash_feature(f"k|{w}") for w in seen) + tuple(hash_feature(f"K|{w}") for w in words[:4])


CLASS_WORD_WEIGHT = 0.5  # the class-word block's values against the text blocks' (1 / root of its size each)


def class_word_scale(count: int) -> float:
    """The value of each of ``count`` class-word columns of a paragraph. Below 1, the shared L2 penalty holds
    class words shorter than words of the text: a site's naming scheme ("name", "x", "a" of hashed or
    utility classes) must not outvote what the paragraph says."""
    return CLASS_WORD_WEIGHT / math.sqrt(count) if count else 0.0


# ---------------------------------------------------------------------------------------------------------
# Form: the make-up of one paragraph

_SHARE_SAMPLE = 200  # characters: the shares of digits, capitals and punctuation are read from this prefix
_SALES_MARKER = re.compile(
    r"\b(?:anzeigen?|werbung|sponsored|gesponsert|partner(?:angebot|inhalt|content)?(?:e|en|n)?|"
    r"in kooperation mit|advertorial|promotion|paid content|präsentiert von|unterstützt von)\b"
)  # on lower case, with the plural and dative endings ("Partnerangebote", "unseren Partnern"); a short line
# holding one marks what stands under it (page_features)
_POINTER = 15  # words: a line this short with a link word (_LINK_WORD) is most often a link, wherever it stands


def _form(text: str) -> dict[str, float]:
    # A paragraph longer than MAX_TEXT_CHARS is read from its first MAX_TEXT_CHARS characters (its word count
    # extrapolated): one enormous line must not cost a list of its million words.
    whole = len(text.strip())
    stripped = text.strip() if whole <= MAX_TEXT_CHARS else text.strip()[:MAX_TEXT_CHARS]
    lower = stripped.lower()
    n_chars = whole
    words = stripped.split()
    n_words = len(words) if whole <= MAX_TEXT_CHARS else round(len(words) * whole / max(len(stripped), 1))
    sample = stripped[:_SHARE_SAMPLE]
    letters = sum(map(str.isalpha, sample))
    uppers = sum(map(str.isupper, sample))
    digits = sum(map(str.isdigit, sample))
    spaces = sample.count(" ") + sample.count("\n") + sample.count("\t") + sample.count("\u00a0")
    puncts = len(sample) - letters - digits - spaces
    denominator = max(len(sample), 1)
    last = stripped[-1:]
    has_digit = digits > 0 or any(map(str.isdigit, stripped[_SHARE_SAMPLE:]))
    return {
        "log_chars": math.log1p(n_chars),
        "log_words": math.log1p(n_words),
        "lines": float(min(stripped.count("\n") + 1, 20)),
        "digit_share": digits / denominator,
        "upper_share": uppers / max(letters, 1),
        "punct_share": puncts / denominator,
        "ends_sentence": float(bool(last) and last in _SENTENCE_MARKS),
        "ends_question": float(last == "?"),
        "ends_exclamation": float(last == "!"),
        "ends_colon": float(last == ":"),
        "ends_ellipsis": float(stripped.endswith(("...", "…"))),
        "has_qmark_bang": float("?!" in stripped or "!?" in stripped),
        "prices": math.log1p(len(_PRICE.findall(lower))) if has_digit else 0.0,
        "percents": math.log1p(len(_PERCENT.findall(lower))) if has_digit else 0.0,
        "bullets": math.log1p(len(_BULLET.findall(stripped))),
        "has_url": float(("." in lower or "/" in lower) and _URL.search(lower) is not None),
        "pipes": math.log1p(stripped.count("|")),
        "date_time": float(has_digit and _DATE_TIME.search(stripped) is not None),
        "short_no_stop": float(n_words <= 6 and not (bool(last) and last in _CLAUSE_MARKS)),
        "all_caps_words": sum(1 for w in words if len(w) > 1 and w.isupper()) / max(n_words, 1),
        "short_first_line": float(_short_first_line(stripped)),
        "short_link_word": float(n_words <= _POINTER and _LINK_WORD.search(lower) is not None),
    }


def _short_first_line(stripped: str) -> bool:
    """A paragraph of several lines whose first line is a short label, not a sentence: an ad tile
    ("Advertiser" over its headline), a list title, a widget row."""
    first, newline, _ = stripped.partition("\n")
    first = first.strip()
    return bool(newline) and len(first.split()) <= 5 and first[-1:] not in _CLAUSE_MARKS


FORM_NAMES = tuple(_form("x"))


def form_features(text: str) -> list[float]:
    """The make-up of one paragraph (in the order of FORM_NAMES)."""
    return list(_form(text).values())


# ---------------------------------------------------------------------------------------------------------
# Markup: what the HTML around a paragraph tells (all zero for text input)

_TAG_GROUPS = {
    "h1": "h1",
    "h2": "h2",
    "h3": "h3_6",
    "h4": "h3_6",
    "h5": "h3_6",
    "h6": "h3_6",
    "p": "p",
    "li": "li",
    "dt": "list_term",
    "dd": "list_term",
    "tr": "table_row",
    "table": "table_row",
    "thead": "table_row",
    "tbody": "table_row",
    "caption": "caption",
    "figcaption": "caption",
    "blockquote": "quote",
    "pre": "pre",
    "div": "div",
    "section": "section",
    "article": "section",
    "main": "section",
    "aside": "section",
    "header": "section",
    "footer": "section",
    "nav": "section",
    "form": "form",
    "fieldset": "form",
    "legend": "form",
    "option": "form",
    "summary": "summary",
    "details": "summary",
}
_TAG_NAMES = tuple(dict.fromkeys([*_TAG_GROUPS.values(), "other"]))
_LANDMARK_NAMES = (
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "main",
    "article",
    "figure",
    "table",
    "li",
    "quote",
    "dialog",
)  # markup.LANDMARKS, bit by bit


_MARKUP_ZERO = {
    "html": 0.0,
    "link_share": 0.0,
    "all_link": 0.0,
    "paid_link": 0.0,
    "paid_share": 0.0,
    "log_depth": 0.0,
    **{f"tag_{name}": 0.0 for name in _TAG_NAMES},
    **{f"in_{name}": 0.0 for name in _LANDMARK_NAMES},
}


def _markup(block: Block | None) -> dict[str, float]:
    values = dict(_MARKUP_ZERO)
    if block is None:
        return values
    share = block.link_chars / max(len(block.text), 1)
    values["html"] = 1.0
    values["link_share"] = share
    values["all_link"] = float(share >= 0.95)
    if block.paid_chars:
        values["paid_link"] = 1.0
        values["paid_share"] = block.paid_chars / max(len(block.text), 1)
    values["log_depth"] = math.log1p(block.depth)
    values[f"tag_{_TAG_GROUPS.get(block.tag, 'other')}"] = 1.0
    for bit, name in enumerate(_LANDMARK_NAMES):
        if block.landmarks >> bit & 1:
            values[f"in_{name}"] = 1.0
    return values


MARKUP_NAMES = tuple(_markup(None))
_NO_MARKUP = [0.0] * len(MARKUP_NAMES)


def markup_features(block: Block | None) -> list[float]:
    """What the markup tells of one paragraph (in the order of MARKUP_NAMES); zeros without markup."""
    return _NO_MARKUP if block is None else list(_markup(block).values())


# ---------------------------------------------------------------------------------------------------------
# Place and neighbours

_CONTEXT_OFFSETS = (-3, -2, -1, 1, 2, 3)
_LONG = 25  # words: a paragraph this long is almost always running text
_STATEMENT = 8  # words: this long and ending a sentence, but not with ? or !, it is a statement, not a title
_SHORT = 6  # words: a neighbour this short is a label, a link or a title
# Paragraphs: a page's length and a paragraph's distances to its ends count up to this many, the corpus's full
# pages' 95th percentile when round 22 set it (229 today; most are 134 to 207 paragraphs long, 10th to 90th
# percentile; round 22's 32 long pages run from 384 to 446, as real ones do): beyond the lengths it learnt from
# densely, a linear model extrapolates its page-length prior and pushed every paragraph of a long page, headline
# and body too, towards navigational.
# tests/test_corpus.py keeps the cap inside the corpus's range.
LENGTH_CAP = 238
_WORDS, _ENDS, _QUESTION, _EXCLAMATION = (
    FORM_NAMES.index(name) for name in ("log_words", "ends_sentence", "ends_question", "ends_exclamation")
)
_LINK_SHARE = MARKUP_NAMES.index("link_share")


def _context_names() -> tuple[str, ...]:
    place = (
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
        "short_run",
        "repeats_on_page",
        "seen_before",
        "sales_marker",
        "marker_in_short_run",
        "under_marker_box",
    )
    per_neighbour = ("exists", "log_words", "ends_sentence", "link_share")
    neighbours = tuple(f"{name}_{o:+d}" for o in _CONTEXT_OFFSETS for name in per_neighbour)
    return place + neighbours


CONTEXT_NAMES = _context_names()
DENSE_NAMES = FORM_NAMES + MARKUP_NAMES + CONTEXT_NAMES


def page_features(texts: Sequence[str], blocks: Sequence[Block] | None = None) -> Iterator[list[float]]:
    """Dense features of every paragraph of a page (in the order of DENSE_NAMES): its form, its markup, its
    place in the page and its neighbours' form."""
    forms = [form_features(t) for t in texts]
    marks = [markup_features(b) for b in blocks] if blocks else [_NO_MARKUP] * len(forms)
    n = len(forms)
    log_words = [f[_WORDS] for f in forms]
    ends = [f[_ENDS] for f in forms]
    links = [m[_LINK_SHARE] for m in marks]
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
    runs = _run_lengths(short)
    markers = [
        w <= math.log1p(_SHORT) and _SALES_MARKER.search(t[:200].lower()) is not None
        for t, w in zip(texts, log_words)
    ]
    marked_runs = _marked_runs(markers, short)
    marked_boxes = _marked_boxes(markers, blocks) if blocks else [False] * n
    # The same paragraph twice on a page: a menu printed for desktop and mobile, the title repeated in the
    # page's chrome, a teaser list printed again at the end.
    keys = [_key(t) for t in texts]
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    seen: set[str] = set()
    for i in range(n):
        window = short[max(0, i - 3) : i] + short[i + 1 : i + 4]
        row = forms[i] + marks[i]
        row += [
            i / max(n - 1, 1),
            (n - 1 - i) / max(n - 1, 1),
            float(i == 0),
            float(i == n - 1),
            math.log1p(min(i, LENGTH_CAP)),
            math.log1p(min(n - 1 - i, LENGTH_CAP)),
            math.log1p(min(n, LENGTH_CAP)),
            math.log1p(long_before[i]),
            math.log1p(total_long - long_before[i] - is_long[i]),
            float(i < first_long),
            float(i > last_long),
            sum(window) / len(window) if window else 0.0,
            total_long / n,
            float(statement[i]),
            float(statement[i] and (i == 0 or short[i - 1]) and (i == n - 1 or short[i + 1])),
            math.log1p(runs[i]),
            math.log1p(counts[keys[i]] - 1),
            float(keys[i] in seen),
            float(markers[i]),
            float(marked_runs[i]),
            float(marked_boxes[i]),
        ]
        seen.add(keys[i])
        for o in _CONTEXT_OFFSETS:
            j = i + o
            if 0 <= j < n:
                row += [1.0, log_words[j], ends[j], links[j]]
            else:
                row += [0.0, 0.0, 0.0, 0.0]
        yield row


def _marked_runs(markers: list[bool], short: list[bool]) -> list[bool]:
    """Per paragraph, whether a sales marker stands before it in the same run of short paragraphs: the
    entries of a menu or a list under an "Anzeige" line."""
    out, active = [], False
    for marker, is_short in zip(markers, short):
        out.append(active and is_short)
        active = (active and is_short) or marker
    return out


_MARKED_BOX_MAX = 60  # paragraphs: a box larger than this is a page's wrapper, not an ad slot or a menu section


def _marked_boxes(markers: list[bool], blocks: Sequence[Block]) -> list[bool]:
    """Per HTML paragraph, whether it sits in a box that a sales marker labels: the marker's own box, and
    every box around it that the marker opens (it is the box's first paragraph, as the "Anzeige" label of an
    ad slot or the heading of a partner menu) unless it is as large as a page's wrapper.
    LABELS.md: what stands under such a marker is promotional."""
    sizes: dict[int, int] = {}
    for block in blocks:
        for b in block.boxes:
            sizes[b] = sizes.get(b, 0) + 1
    marked: set[int] = set()
    opened: set[int] = set()
    out = []
    for marker, block in zip(markers, blocks):
        boxes = block.boxes
        out.append(any(b in marked for b in boxes))
        if marker:
            marked.update(
                b for k, b in enumerate(boxes) if k == 0 or (b not in opened and sizes[b] <= _MARKED_BOX_MAX)
            )
        opened.update(boxes)
    return out


def _key(text: str) -> str:
    """A paragraph as compared for repetition: white space collapsed, lower case, its first MAX_TEXT_CHARS
    characters (and its length, beyond them)."""
    if len(text) > MAX_TEXT_CHARS:
        return f"{' '.join(text[:MAX_TEXT_CHARS].split()).lower()}#{len(text)}"
    return " ".join(text.split()).lower()


def _run_lengths(flags: list[bool]) -> list[int]:
    """For each position, the length of the run of true flags it belongs to (0 where the flag is false)."""
    out = [0] * len(flags)
    i = 0
    while i < len(flags):
        if not flags[i]:
            i += 1
            continue
        j = i
        while j < len(flags) and flags[j]:
            j += 1
        out[i:j] = [j - i] * (j - i)
        i = j
    return out


# ---------------------------------------------------------------------------------------------------------
# Second stage: what the first stage thinks of the neighbours, and where the article runs

_STAGE2_OFFSETS = (-3, -2, -1, 1, 2, 3)
_STAGE2_WINDOWS = (5, 15)
_TOPIC_STEM = 6  # letters: a cheap stem, so that "Anleihen" and "Anleihe", "Zinsen" and "Zinssenkung" meet
_TOPIC_MIN_WORDS = 3  # content words: fewer say nothing of a paragraph's topic
# Frequent words of five letters or more that say nothing of a topic (on lower case).
_TOPIC_STOP = frozenset(
    """allem allen aller alles andere anderen ander bereits bisher damit danach dabei daher darauf darum davon
    denen deren derzeit diese diesem diesen dieser dieses durch eigene eigenen einem einen einer eines einige
    einigen etwas gegen geben haben hatte hatten heute immer indem jedoch jetzt kommen konnte können könnte
    lassen letzten machen mehrere menschen nachdem neben neuen nicht prozent schon seine seinen seiner sollen
    sollte sowie stehen steht unter viele vielen weiter weitere weiteren werden wieder wollen worden wurde
    wurden zudem zwischen sagte heißt heisst erste ersten jahre jahren jahres millionen milliarden""".split()  # noqa: SIM905 (a word list reads better so)
)


def softmax(scores: Sequence[float]) -> list[float]:
    """Class scores to probabilities."""
    top = max(scores)
    exp = [math.exp(v - top) for v in scores]
    total = sum(exp)
    return [e / total for e in exp]


def _stage2_names() -> tuple[str, ...]:
    own = ("own_0", "own_1", "own_2")
    near = tuple(f"p{o:+d}_{k}" for o in _STAGE2_OFFSETS for k in ("exists", "0", "1", "2"))
    far = tuple(f"mean{w}_{k}" for w in _STAGE2_WINDOWS for k in ("0", "1", "2"))
    page = ("page_0", "page_1", "page_2")
    run = ("in_article_run", "log_before_run", "log_after_run", "run_share", "editorial_before", "editorial_after")
    text_run = ("in_text_run", "log_before_text_run", "log_after_text_run")
    box = ("in_box", "log_box_size", "box_0", "box_1", "box_2")
    outer = ("in_outer_box", "log_outer_size", "outer_0", "outer_1", "outer_2")
    # No "site known" flag: a paragraph that does not recur reads as it does without site memory, so that the
    # memory can only tell what recurs, never make a page's unique menu entries and teasers look like article.
    site = ("site_repeat", "site_repeat_any", "site_repeat_most", "site_repeat_near")
    topic = ("topic_known", "topic_shared")
    return own + near + far + page + run + text_run + box + outer + site + topic


STAGE2_NAMES = _stage2_names()
STAGE2_SIZE = len(STAGE2_NAMES)
_NO_BOXES = [0.0] * 10


def topic_stem(token: str) -> str | None:
    """The stem of a content word (a token of ``tokens``: five letters or more, no digit, not a frequent
    function word), else None."""
    if len(token) < 5 or token in _TOPIC_STOP or not token.isalpha():
        return None
    return token[:_TOPIC_STEM]


def topic_words(text: str) -> frozenset[str]:
    """The stems of a paragraph's content words (``topic_stem``): what ``neighbour_features`` compares with the
    article run, because a teaser of another story shares few of them with the article and a paragraph of the
    article many. (The scorer takes them from the tokens it reads anyway.)"""
    return frozenset(filter(None, map(topic_stem, tokens(text))))


def _topic_shares(words: Sequence[Collection[str]], run_start: int, run_end: int) -> list[tuple[float, float]]:
    """Per paragraph, whether it has enough content words to tell (``_TOPIC_MIN_WORDS``) and the share of them
    that other paragraphs of the article run hold too."""
    held: dict[str, int] = {}
    for i in range(run_start, run_end):
        for w in words[i]:
            held[w] = held.get(w, 0) + 1
    out = []
    for i, own in enumerate(words):
        if len(own) < _TOPIC_MIN_WORDS:
            out.append((0.0, 0.0))
            continue
        mine = 1 if run_start <= i < run_end else 0
        shared = sum(1 for w in own if held.get(w, 0) > mine)
        out.append((1.0, shared / len(own)))
    return out


def article_run(editorial: Sequence[float]) -> tuple[int, int]:
    """The densest run of editorial paragraphs, ``[start, end)``: the run with the largest sum of
    ``p - 0.5`` over its editorial probabilities (an empty page or one without any likely editorial
    paragraph gives the best single paragraph)."""
    best, best_start, best_end = -math.inf, 0, 0
    total, start = 0.0, 0
    for i, p in enumerate(editorial):
        if total <= 0:
            total, start = 0.0, i
        total += p - 0.5
        if total > best:
            best, best_start, best_end = total, start, i + 1
    return best_start, best_end


def text_run(editorial: Sequence[float], lengths: Sequence[int]) -> tuple[int, int]:
    """Like ``article_run``, with each paragraph weighed by the square root of its length in characters: the
    densest run of text rather than of paragraphs. A share bar, a hidden "Hauptinhalt" heading or a one-word
    menu between a page's headline and its body costs little here, where ``article_run`` pays half a point for
    each, so the headline, byline and lead above such a strip join the run."""
    best, best_start, best_end = -math.inf, 0, 0
    total, start = 0.0, 0
    for i, (p, size) in enumerate(zip(editorial, lengths)):
        if total <= 0:
            total, start = 0.0, i
        total += (p - 0.5) * math.sqrt(size)
        if total > best:
            best, best_start, best_end = total, start, i + 1
    return best_start, best_end


def box_paths(blocks: Sequence[Block]) -> list[tuple[int, ...]]:
    """Each HTML paragraph's boxes, its own first and then the ones around it (``Block.boxes``); the page's root
    box 0 for a paragraph outside every box: what ``neighbour_features`` takes as ``boxes``."""
    return [b.boxes or (b.group,) for b in blocks]


def _box_means(boxes: Sequence[tuple[int, ...]], probs: Sequence[Sequence[float]]) -> list[list[float]]:
    """Per paragraph, the box features of its own box (``Block.group``, the first of its ``boxes``) and of the
    nearest box around it that holds another paragraph: flag, log of the other paragraphs' count, their mean
    probabilities; zeros where there is none. The outer box matters where every item of a menu or an ad block
    sits in a wrapper of its own (utility-class markup gives every element a class), so that its own box holds
    it alone and says nothing."""
    sums: dict[int, list[float]] = {}
    sizes: dict[int, int] = {}
    for own, p in zip(boxes, probs):
        for box in own:
            total = sums.setdefault(box, [0.0, 0.0, 0.0])
            total[0] += p[0]
            total[1] += p[1]
            total[2] += p[2]
            sizes[box] = sizes.get(box, 0) + 1
    rows = []
    for own, p in zip(boxes, probs):
        row = []
        for candidates in (own[:1], own[1:]):
            found = next((b for b in candidates if sizes[b] > 1), None)
            if found is None:
                row += [0.0, 0.0, 0.0, 0.0, 0.0]
            else:
                others, total = sizes[found] - 1, sums[found]
                row += [1.0, math.log1p(others)] + [(total[k] - p[k]) / others for k in range(3)]
        rows.append(row)
    return rows


def neighbour_features(
    logits: Sequence[Sequence[float]],
    boxes: Sequence[tuple[int, ...]] | None = None,
    repeats: Sequence[float] | None = None,
    words: Sequence[Collection[str]] | None = None,
    lengths: Sequence[int] | None = None,
    editorial_class: int = 0,
) -> list[list[float]]:
    """Per paragraph (in the order of STAGE2_NAMES): its own first-stage scores, the first-stage
    probabilities of the three paragraphs before and after it (with a flag for "exists"), their means over
    windows of 5 and 15 paragraphs on each side, the page's mean, where it stands to the article run and,
    given the paragraphs' ``lengths`` in characters, to the ``text_run``; for HTML input (``boxes``: each
    paragraph's ``box_paths``) the mean probabilities of the other paragraphs in its box and in the box around
    it (``_box_means``): the items of an ad box, a menu or a teaser list share their fate; and, when the page
    is one of a batch of its site's pages (``SiteMemory.shares``), how many of the site's other pages hold it
    and its neighbours; and, given the paragraphs' ``topic_words``, how many of its content words the article
    run holds."""
    probs = [softmax(row) for row in logits]
    n = len(probs)
    if not n:
        return []
    box_rows = _box_means(boxes, probs) if boxes is not None else None
    prefix = [[0.0, 0.0, 0.0]]
    for p in probs:
        last = prefix[-1]
        prefix.append([last[0] + p[0], last[1] + p[1], last[2] + p[2]])
    mean = [v / n for v in prefix[-1]]
    editorial = [p[editorial_class] for p in probs]
    run_start, run_end = article_run(editorial)
    text_start, text_end = text_run(editorial, lengths) if lengths is not None else (0, 0)
    topics = _topic_shares(words, run_start, run_end) if words is not None else [(0.0, 0.0)] * n
    total_editorial = sum(editorial) or 1.0
    rows = []
    for i in range(n):
        top = max(logits[i])
        row = [(v - top) / 5.0 for v in logits[i]]
        for o in _STAGE2_OFFSETS:
            j = i + o
            row += [1.0, *probs[j]] if 0 <= j < n else [0.0, 0.0, 0.0, 0.0]
        for w in _STAGE2_WINDOWS:
            lo, hi = max(0, i - w), min(n, i + w + 1)
            count = hi - lo - 1
            if count:
                row += [(prefix[hi][k] - prefix[lo][k] - probs[i][k]) / count for k in range(3)]
            else:
                row += [0.0, 0.0, 0.0]
        row += mean
        row += [
            float(run_start <= i < run_end),
            math.log1p(max(0, run_start - i)),
            math.log1p(max(0, i - run_end + 1)),
            (run_end - run_start) / n,
            prefix[i][editorial_class] / total_editorial,
            (prefix[n][editorial_class] - prefix[i + 1][editorial_class]) / total_editorial,
        ]
        if lengths is not None:
            row += [
                float(text_start <= i < text_end),
                math.log1p(max(0, text_start - i)),
                math.log1p(max(0, i - text_end + 1)),
            ]
        else:
            row += [0.0, 0.0, 0.0]
        row += box_rows[i] if box_rows is not None else _NO_BOXES
        if repeats is not None:
            near = [repeats[j] for j in range(max(0, i - 2), min(n, i + 3)) if j != i]
            share = repeats[i]
            row += [share, float(share > 0.0), float(share >= 0.5), sum(near) / len(near) if near else 0.0]
        else:
            row += [0.0, 0.0, 0.0, 0.0]
        row += topics[i]
        rows.append(row)
    return rows


def recurring(repeats: Sequence[float] | None) -> list[bool]:
    """Per paragraph, whether site memory tells anything of it: it or one of its two neighbours on each side
    recurs on the site's other pages (its site features are not all zero). The others read as without memory
    and are decided by the presets for pages on their own."""
    if repeats is None:
        return []
    n = len(repeats)
    return [any(repeats[j] > 0.0 for j in range(max(0, i - 2), min(n, i + 3))) for i in range(n)]


# ---------------------------------------------------------------------------------------------------------
# Site memory: what repeats across the pages of one site is its chrome (menus, footers, disclaimers, ad
# slots); articles do not repeat.

SITE_MIN_PAGES = 3  # fewer pages of a site say nothing about what repeats on it
SITE_MEMORY_CAP = 200_000  # distinct paragraphs remembered per site (see SiteMemory._room)
_DIGITS = r"\d+"  # compiled on first use: site memory alone needs it


def repeat_key(text: str) -> int:
    """A paragraph as compared across pages, as a 64-bit number: lower case, white space collapsed, every
    number folded to 0 (a price ticker or a date line is the same line on every page)."""
    import hashlib  # here, not at the top: its OpenSSL start costs a single page's cold start 4 ms

    normalised = re.sub(_DIGITS, "0", " ".join(reader_text(text[:MAX_TEXT_CHARS]).lower().split()))
    digest = hashlib.blake2b(normalised.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def page_keys(texts: Iterable[str]) -> frozenset[int]:
    """The distinct paragraphs of a page as ``repeat_key`` numbers: what a worker of the first pass sends."""
    return frozenset(map(repeat_key, texts))


class SiteMemory:
    """How many pages of one site hold each paragraph: built in a first pass over a batch (``add`` each page,
    or ``add_keys`` with the ``page_keys`` a worker computed), then read in the second (``shares``). Memory is
    bounded by the site's distinct paragraphs, at most ``cap``; ``repeated`` keeps only what the second pass
    needs. A page seen twice (the same paragraphs) counts once."""

    __slots__ = ("_page_keys", "cap", "counts", "full", "pages", "thinned")

    def __init__(self, cap: int = SITE_MEMORY_CAP) -> None:
        self.pages = 0
        self.counts: dict[int, int] = {}
        self.cap = cap
        self._page_keys: set[int] = set()
        self.thinned = False  # paragraphs seen on one page only were let go to make room (``_room``)
        self.full = False  # what it holds recurs: new paragraphs count as unique

    def add(self, texts: Iterable[str]) -> None:
        """Count one page's paragraphs."""
        self.add_keys(page_keys(texts))

    def add_keys(self, keys: frozenset[int]) -> None:
        """Count one page given as the keys of its paragraphs (``page_keys``)."""
        page_key = hash(keys)
        if not keys or page_key in self._page_keys:
            return
        self._page_keys.add(page_key)
        self.pages += 1
        counts = self.counts
        for key in keys:
            if key in counts:
                counts[key] += 1
            elif len(counts) < self.cap or self._room():
                counts = self.counts
                counts[key] = 1

    def merge(self, other: SiteMemory) -> None:
        """Add what another memory of the same site counted (of another file: a page both saw counts twice,
        unless one of them saw nothing else: then the one that saw more is kept, whichever came first)."""
        if other._page_keys <= self._page_keys:
            return
        if self._page_keys <= other._page_keys:
            self.pages, self.counts, self._page_keys = other.pages, dict(other.counts), set(other._page_keys)
            self.thinned, self.full = other.thinned, other.full
            return
        self.pages += other.pages
        self._page_keys |= other._page_keys
        self.thinned |= other.thinned
        counts = self.counts
        for key, count in other.counts.items():
            if key in counts:
                counts[key] += count
            elif len(counts) < self.cap or self._room():
                counts = self.counts
                counts[key] = count

    def _room(self) -> bool:
        """Whether a paragraph not yet counted can be, the memory being at its cap: the paragraphs seen on one
        page only are let go while that frees a quarter of the cap (a page of 200,000 distinct lines, counted
        first, filled it, and the site's chrome counted after it recurred on no page: memory was off for the
        site, whatever the note said). A paragraph let go and seen again counts from one."""
        if self.full:
            return False
        kept = {key: count for key, count in self.counts.items() if count > 1}
        if len(kept) > self.cap * 3 // 4:
            self.full = True
            return False
        self.counts, self.thinned = kept, True
        return True

    def repeated(self) -> SiteMemory:
        """The same memory without the paragraphs seen once (they read as unique either way)."""
        kept = SiteMemory(self.cap)
        kept.pages, kept.thinned, kept.full = self.pages, self.thinned, self.full
        kept.counts = {key: count for key, count in self.counts.items() if count > 1}
        return kept

    @property
    def active(self) -> bool:
        """Whether the site has enough pages to tell what recurs on it."""
        return self.pages >= SITE_MIN_PAGES

    def shares(self, texts: Sequence[str]) -> list[float] | None:
        """For each paragraph of a page counted in this memory, the share of the site's other pages that hold
        it; None when the site has too few pages to tell."""
        if not self.active:
            return None
        others = self.pages - 1
        return [min(1.0, (self.counts.get(repeat_key(t), 1) - 1) / others) for t in texts]


# ---------------------------------------------------------------------------------------------------------
# Page shape: is this a full page (menus, chrome, article somewhere inside) or an article region?


def _shape(texts: Sequence[str]) -> dict[str, float]:
    n = len(texts)
    words = [len(t[:MAX_TEXT_CHARS].split()) for t in texts]
    short = [w <= _SHORT for w in words]
    long = [w >= _LONG for w in words]
    first_long = long.index(True) if any(long) else n
    runs = _run_lengths(short)
    longest = max(runs, default=0)
    distinct = len({_key(t) for t in texts})
    return {
        "log_paragraphs": math.log1p(n),
        "short_share": sum(short) / max(n, 1),
        "long_share": sum(long) / max(n, 1),
        "first_long_share": first_long / max(n, 1),
        "log_first_long": math.log1p(first_long),
        "longest_short_run_share": longest / max(n, 1),
        "log_longest_short_run": math.log1p(longest),
        "short_share_first_10": sum(short[:10]) / max(min(n, 10), 1),
        "repeated_share": 1.0 - distinct / max(n, 1),
    }


SHAPE_NAMES = tuple(_shape(["x"]))


def page_shape(texts: Sequence[str]) -> list[float]:
    """What a whole page looks like (in the order of SHAPE_NAMES): full pages start with runs of short menu
    lines, repeat chrome and hold their article somewhere inside; article regions are mostly running text
    from the first lines on. The gate between the model's two experts reads these."""
    return list(_shape(texts).values())
