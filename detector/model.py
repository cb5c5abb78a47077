"""The trained model as a code-free file, and the pure-Python scorer that predicts with it.

Training (``detector.workbench.train``) uses scikit-learn; predicting needs only the standard library, so that
``clean-article`` starts in milliseconds. The file holds a JSON header (classes, feature settings, the dense
features' scaling and coefficients, intercepts, the second stage), one float32 array of text weights of the
second and third class, idf already folded in, the word table (``word_table``: the corpus's frequent words with
their n-gram sums, float64, the words, and an index to find them: ``word_index``), and a CRC-32 of everything
before it. Nothing in it is ever executed: loading is ``json.loads`` and views of the bytes as numbers.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import stat
import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import islice, pairwise
from operator import itemgetter, mul
from types import MappingProxyType

from detector.features import (
    CHAR_NGRAMS,
    DENSE_NAMES,
    HASH_BITS,
    SHAPE_NAMES,
    STAGE2_NAMES,
    STAGE2_SIZE,
    box_paths,
    char_ngram_count,
    char_ngram_ids,
    class_word_ids,
    class_word_scale,
    known_words,
    neighbour_features,
    page_features,
    page_shape,
    phrase_feature_ids,
    reader_text,
    softmax,
    tokens,
    topic_stem,
    unigram_id,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at run time (see _named_tuple)
if TYPE_CHECKING:
    from _thread import LockType
    from pathlib import Path
    from typing import NoReturn

    from detector.markup import Block

FORMAT = 5  # 5: the word table carries its index; files of format 4 (without it) and 3 (no table) are still read
READABLE_FORMATS = (3, 4, 5)
MAGIC = b"DETECTOR-MODEL\n"
CLASSES = ("editorial", "navigational", "promotional")  # the order training gives them (sorted)
# A scorer's word caches hold up to this many distinct tokens each (about 0.6 KB a token): enough for every
# word of a day's news on warm pages, and a page of random words stays within the memory bound.
_WORD_CACHE_LIMIT = 1 << 14
# Longer tokens (a 20,000-letter "word" of a page of garbage) are scored every time, not kept: bounded by count
# alone, the cache grew by 20 KB a page towards 330 MB. A German compound is rarely longer than 40 letters.
CACHED_TOKEN_CHARS = 64
# The features' own caches serve training, which featurises every token many times; the scorer caches a token's
# whole entry, so it hashes through them uncached (they would hold ~1 KB more per distinct token, unbounded by
# _WORD_CACHE_LIMIT).
_unigram_id = unigram_id.__wrapped__
_char_ngram_ids = char_ngram_ids.__wrapped__


class ModelError(Exception):
    """A model file that cannot be used: missing, damaged, or made for another version of the features."""


class _Expert:
    """One expert's exported weights, ready for summing: dense coefficients divided by their scale with the
    centring folded into the intercepts, its second stage, temperature, class vocabulary, and a view of its
    two blocks of text weights."""

    def __init__(self, header: dict, weights: Sequence[float]) -> None:
        self.name: str = header["name"]
        scale, mean = header["dense_scale"], header["dense_mean"]
        self.dense_mean: list[float] = mean
        self.dense_coef = [[c / s for c, s in zip(row, scale)] for row in header["dense_coef"][1:]]
        self.intercept = [
            b - sum(c * m for c, m in zip(row, mean)) for b, row in zip(header["intercept"][1:], self.dense_coef)
        ]
        stage2 = header.get("stage2")
        self.stage2: tuple[list[list[float]], list[float]] | None = (
            (stage2["coef"], stage2["intercept"]) if stage2 else None
        )
        self.temperature: float = header["temperature"]
        self.class_vocabulary = frozenset(header["class_vocabulary"])
        n = 1 << HASH_BITS
        self.w1, self.w2 = weights[:n], weights[n:]


def column_sums(columns: Sequence[int], arrays: Sequence[Sequence[float]]) -> list[float]:
    """Each array's sum over the columns (one per occurrence). One ``itemgetter`` serves every array: half the
    time of a ``sum(map(...))`` per array, on the path of every word seen for the first time."""
    if len(columns) > 1:
        get = itemgetter(*columns)
        return [sum(get(w)) for w in arrays]
    return [w[columns[0]] if columns else 0.0 for w in arrays]


def _verified() -> None:
    """A model checked when it was loaded: nothing to wait for."""


class Scorer:
    """Class probabilities for the paragraphs of a page, from the exported weights alone.

    The model has two experts: one for full pages, one for article regions. HTML input is scored by the
    full-page expert; text input by both, mixed by the gate's reading of the page's shape
    (``features.page_shape``). Each expert's first class has zero text and dense weights (training subtracts
    them, which leaves the softmax unchanged), so only two classes' weights are stored and summed.
    """

    def __init__(
        self,
        header: dict,
        weights: Sequence[float],
        word_sums: Sequence[float] = (),
        words: bytes | memoryview = b"",
        index: tuple[Sequence[int], Sequence[int]] | None = None,
    ) -> None:
        self.header = header
        self.classes: tuple[str, ...] = tuple(header["classes"])
        size = 2 << HASH_BITS
        self.experts = [_Expert(e, weights[i * size : (i + 1) * size]) for i, e in enumerate(header["experts"])]
        gate = header["gate"]
        self._gate = (gate["mean"], gate["scale"], gate["coef"], gate["intercept"])
        # Read-only: a loaded model is shared by every caller of the process (load_model's cache; a deep copy
        # is the model itself), and a caller's change of a threshold changed every later clean().
        self.thresholds: Mapping[str, float] = MappingProxyType(dict(header["thresholds"]))
        self.site_memory_thresholds: Mapping[str, float] = MappingProxyType(dict(header["site_memory_thresholds"]))
        self.editorial = self.classes.index("editorial")
        self._arrays = [w for expert in self.experts for w in (expert.w1, expert.w2)]
        self._word_sums = word_sums
        self._words = words
        offsets, slots = index or word_index(word_list(words))  # formats 3 and 4: the index is made here
        self._word_offsets: Sequence[int] = offsets
        self._word_slots: Sequence[int] = slots
        self._token_caches: list[dict[str, tuple]] = [{} for _ in self.experts]  # by experts scored - 1
        self._class_cache: dict[tuple[int, tuple[str, ...]], tuple[float, float]] = {}
        self.verify: Callable[[], None] = _verified  # a model whose checksum is still being taken waits here
        self.not_finite = "the model holds weights that are not finite numbers"  # with its file's name: load

    @property
    def reads_markup(self) -> bool:
        """Whether the model learnt anything of HTML markup (its full-page expert weighs the markup features or
        knows class words): a model trained on text pages alone reads HTML by its text, where the chrome that
        markup gives away (menus in lists of links, footers) reads much like article."""
        expert = self.experts[0]
        names = self.header["dense_names"]
        markup = ("html", "tag_", "in_", "link_")
        columns = [i for i, name in enumerate(names) if name.startswith(markup)]
        return bool(expert.class_vocabulary) or any(row[i] != 0.0 for row in expert.dense_coef for i in columns)

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a loaded model cannot be pickled (sent to another process): pass its path and call "
            "detector.load_model(path) there (a forked process already has the models loaded before the fork)"
        )

    def __copy__(self) -> Scorer:
        return self  # nothing in a model changes once loaded: a copy is the model itself

    def __deepcopy__(self, memo: dict) -> Scorer:
        return self

    def _token(self, token: str, experts: int = 0) -> tuple:
        """A token's unigram column, the number of its character n-grams, per expert the weights of its unigram
        and the summed weights of its n-grams, and its topic stem (``features.topic_stem``): computed once per
        distinct token and cached. ``experts``: for the first that many experts only (all by default), as HTML
        pages need the full-page expert alone: a new word then costs half the sums."""
        n = experts or len(self.experts)
        for cache in self._token_caches[n:]:  # a token seen on a page that needed more experts
            if entry := cache.get(token):
                return entry
        uid = _unigram_id(token)
        row = self._word_row(token)
        grams: Sequence[float]
        if row is None:
            ids = _char_ngram_ids(token)
            count, grams = len(ids), column_sums(ids, self._arrays[: 2 * n])
        else:
            width = len(self._arrays)
            count, grams = char_ngram_count(token), self._word_sums[row * width : row * width + 2 * n]
        sums: list[float] = []
        for k, expert in enumerate(self.experts[:n]):
            sums += [expert.w1[uid], expert.w2[uid], grams[2 * k], grams[2 * k + 1]]
        entry = (uid, count, tuple(sums), topic_stem(token))
        if len(token) > CACHED_TOKEN_CHARS:
            return entry
        cache = self._token_caches[n - 1]
        if len(cache) >= _WORD_CACHE_LIMIT:
            cache.clear()
        cache[token] = entry
        return entry

    def _word_row(self, token: str) -> int | None:
        """The token's row in the word table (None when it is not there), found through the file's index:
        nothing to build when a process starts, which would cost a fresh worker's first page a third of its
        time."""
        key = token.encode("utf-8", "surrogatepass")
        slots, offsets, words = self._word_slots, self._word_offsets, self._words
        mask = len(slots) - 1
        at = zlib.crc32(key) & mask
        while row := slots[at]:
            if words[offsets[row - 1] : offsets[row] - 1] == key:
                return row - 1
            at = (at + 1) & mask
        return None

    def _class_words(self, index: int, words: tuple[str, ...]) -> tuple[float, float]:
        """The class-word block's contribution to an expert's two scores, cached per distinct word tuple."""
        key = (index, words)
        entry = self._class_cache.get(key)
        if entry is None:
            expert = self.experts[index]
            ids = class_word_ids(known_words(words, expert.class_vocabulary))
            scale = class_word_scale(len(ids))
            entry = (sum(map(expert.w1.__getitem__, ids)) * scale, sum(map(expert.w2.__getitem__, ids)) * scale)
            if len(self._class_cache) >= _WORD_CACHE_LIMIT:
                self._class_cache.clear()
            self._class_cache[key] = entry
        return entry

    def logits(
        self,
        paragraphs: Sequence[str],
        blocks: Sequence[Block] | None = None,
        experts: int | None = None,
        topics: list[tuple[str, ...]] | None = None,
    ) -> list[list[list[float]]]:
        """First-stage class scores of every paragraph of one page (the first class's is always 0), for each
        of the first ``experts`` experts (all by default); with ``blocks`` (HTML input), markup counts too.
        ``topics``, when given, gets each paragraph's ``features.topic_words``, read from the same tokens."""
        chosen = self.experts[: experts or len(self.experts)]
        cache = self._token_caches[len(chosen) - 1]
        make = partial(self._token, experts=len(chosen))
        out: list[list[list[float]]] = [[] for _ in chosen]
        for i, dense in enumerate(page_features(paragraphs, blocks)):
            entries = [cache.get(t) or make(t) for t in tokens(paragraphs[i])]
            uids: tuple[int, ...] = ()
            n_chars = 0
            sums = [0.0] * (4 * len(chosen))
            stems: tuple[str | None, ...] = ()
            if entries:
                uids, counts, per_token, stems = zip(*entries)
                n_chars = sum(counts)
                sums = [sum(column) for column in islice(zip(*per_token), 4 * len(chosen))]  # the chosen experts'
            if topics is not None:
                topics.append(tuple(dict.fromkeys(filter(None, stems))))  # a set's worth in a fifth of the memory
            phrases = phrase_feature_ids(uids)
            inv_w = 1.0 / math.sqrt(len(uids) + len(phrases))
            inv_c = 1.0 / math.sqrt(n_chars) if n_chars else 0.0
            phrase_sums = column_sums(phrases, self._arrays[: 2 * len(chosen)])
            for k, expert in enumerate(chosen):
                u1, u2, c1, c2 = sums[4 * k : 4 * k + 4]
                s1 = u1 + phrase_sums[2 * k]
                s2 = u2 + phrase_sums[2 * k + 1]
                k1, k2 = self._class_words(k, blocks[i].class_words) if blocks else (0.0, 0.0)
                (b1, b2), (d1, d2) = expert.intercept, expert.dense_coef
                out[k].append(
                    [
                        0.0,
                        s1 * inv_w + c1 * inv_c + k1 + b1 + sum(map(mul, d1, dense)),
                        s2 * inv_w + c2 * inv_c + k2 + b2 + sum(map(mul, d2, dense)),
                    ]
                )
        return out

    def gate(self, paragraphs: Sequence[str]) -> float:
        """The full-page expert's weight for a text page, from the page's shape."""
        mean, scale, coef, intercept = self._gate
        if not coef:
            return 1.0
        z = intercept + sum(c * (v - m) / s for c, v, m, s in zip(coef, page_shape(paragraphs), mean, scale))
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def probabilities(
        self,
        paragraphs: Sequence[str],
        blocks: Sequence[Block] | None = None,
        repeats: Sequence[float] | None = None,
    ) -> list[list[float]]:
        """One calibrated probability per class, in the order of ``classes``. Each expert's are the softmax of
        its second stage's scores divided by its temperature; HTML input takes the full-page expert's, text
        input the mix the gate weighs. ``repeats``: for a page of a batch of its site's pages, the share of
        the site's other pages that hold each paragraph (``features.SiteMemory.shares``)."""
        if not paragraphs:
            return []
        paragraphs = [reader_text(p) for p in paragraphs]
        boxes = box_paths(blocks) if blocks else None
        lengths = [len(p) for p in paragraphs]
        weight = 1.0 if blocks else self.gate(paragraphs)
        needed = 1 if weight >= 1.0 else len(self.experts)
        mixed: list[list[float]] | None = None
        words: list[tuple[str, ...]] = []
        for expert, logits in zip(self.experts, self.logits(paragraphs, blocks, needed, words)):
            if expert.stage2 is not None:
                coef, intercept = expert.stage2
                logits = [
                    [b + sum(map(mul, row, features)) for row, b in zip(coef, intercept)]
                    for features in neighbour_features(logits, boxes, repeats, words, lengths)
                ]
            scale = 1.0 / expert.temperature
            probs = [softmax([v * scale for v in row]) for row in logits]
            if mixed is None:
                mixed = [[weight * p for p in row] for row in probs]
            else:
                rest = 1.0 - weight
                mixed = [[a + rest * b for a, b in zip(m, row)] for m, row in zip(mixed, probs)]
        # A weight that is not a finite number shows here, where it is used: summing the file's 2 million
        # weights when it is loaded was half of a one-page run with --model
        if mixed and not math.isfinite(sum(map(sum, mixed))):
            raise ModelError(self.not_finite)
        return mixed or []

    def explain(
        self,
        paragraphs: Sequence[str],
        blocks: Sequence[Block] | None = None,
        top: int = 5,
        repeats: Sequence[float] | None = None,
        labels: Sequence[str] | None = None,
    ) -> list[dict]:
        """Why each paragraph got its label (``labels``, as a threshold decided them; else its most likely
        label) rather than the most likely of the others: the features that pushed towards it and against it,
        resolved back to text (words, phrases, the spelling of a word, class words) or named (form, markup,
        place, context), with their share of the score difference. Cheap, because both stages are linear: a
        feature's push is its weight difference times its value. Explained with the expert that weighs most
        for the page (the gate's weight is given)."""
        probabilities = self.probabilities(paragraphs, blocks, repeats)  # reads the texts itself: once, not twice
        paragraphs = [reader_text(p) for p in paragraphs]
        weight = 1.0 if blocks else self.gate(paragraphs)
        index = 0 if weight >= 0.5 else 1
        expert = self.experts[index]
        words: list[tuple[str, ...]] = []
        logits = self.logits(paragraphs, blocks, index + 1, words)[index]
        boxes = box_paths(blocks) if blocks else None
        stage2 = neighbour_features(logits, boxes, repeats, words, [len(p) for p in paragraphs])
        dense_rows = list(page_features(paragraphs, blocks))
        out = []
        for i, probs in enumerate(probabilities):
            ranked = sorted(range(len(self.classes)), key=probs.__getitem__, reverse=True)
            a = ranked[0] if labels is None else self.classes.index(labels[i])
            b = next(c for c in ranked if c != a)
            pushes = self._text_pushes(expert, paragraphs[i], blocks[i] if blocks else None, a, b)
            pushes += self._dense_pushes(expert, dense_rows[i], a, b)
            if expert.stage2 is not None:
                coef = expert.stage2[0]
                pushes += [
                    (f"context {_readable(name, self.classes)}", (coef[a][j] - coef[b][j]) * value)
                    for j, (name, value) in enumerate(zip(STAGE2_NAMES, stage2[i]))
                    if value
                ]
            pushes.sort(key=lambda item: item[1])
            strongest = pushes[max(0, len(pushes) - top) :]
            out.append(
                {
                    "index": i,
                    "label": self.classes[a],
                    "runner_up": self.classes[b],
                    "probability": round(probs[a], 6),
                    "expert": expert.name,
                    "expert_weight": round(weight if index == 0 else 1.0 - weight, 4),
                    "for": [(name, round(v, 4)) for name, v in reversed(strongest) if v > 0],
                    "against": [(name, round(v, 4)) for name, v in pushes[:top] if v < 0],
                }
            )
        return out

    @staticmethod
    def _class_weights(expert: _Expert, a: int, b: int) -> Callable[[int], float]:
        """The text weight difference of classes ``a`` and ``b`` at a column (the first class has none)."""
        arrays = (None, expert.w1, expert.w2)
        wa, wb = arrays[a], arrays[b]
        return lambda column: (wa[column] if wa is not None else 0.0) - (wb[column] if wb is not None else 0.0)

    def _text_pushes(self, expert: _Expert, text: str, block: Block | None, a: int, b: int) -> list[tuple]:
        diff = self._class_weights(expert, a, b)
        toks = tokens(text)
        uids = [_unigram_id(t) for t in toks]
        phrases = phrase_feature_ids(uids)
        chars = [_char_ngram_ids(t) for t in toks]
        inv_w = 1.0 / math.sqrt(len(uids) + len(phrases))
        n_chars = sum(map(len, chars))
        inv_c = 1.0 / math.sqrt(n_chars) if n_chars else 0.0
        pushes: dict[str, float] = {}

        def add(name: str, value: float) -> None:
            pushes[name] = pushes.get(name, 0.0) + value

        for token, uid, grams in zip(toks, uids, chars):
            add(f"word «{token}»", diff(uid) * inv_w)
            if grams:
                add(f"spelling of «{token}»", sum(map(diff, grams)) * inv_c)
        if toks:
            for j, column in enumerate(phrases[:-2]):
                add(f"phrase «{toks[j]} {toks[j + 1]}»", diff(column) * inv_w)
            add(f"first word «{toks[0]}»", diff(phrases[-2]) * inv_w)
            add(f"last word «{toks[-1]}»", diff(phrases[-1]) * inv_w)
        if block is not None:
            words = known_words(block.class_words, expert.class_vocabulary)
            ids = class_word_ids(words)
            scale = class_word_scale(len(ids))
            for word in dict.fromkeys(words):
                add(f"class word «{word}»", diff(class_word_ids((word,))[0]) * scale)
        return [(name, value) for name, value in pushes.items() if value]

    @staticmethod
    def _dense_pushes(expert: _Expert, row: list[float], a: int, b: int) -> list[tuple]:
        rows = ([0.0] * len(row), *expert.dense_coef)
        means = expert.dense_mean
        return [
            (f"feature {name}", (rows[a][j] - rows[b][j]) * (value - means[j]))
            for j, (name, value) in enumerate(zip(DENSE_NAMES, row))
            if (rows[a][j] - rows[b][j]) * (value - means[j])
        ]

    def threshold(
        self, favor: str = "balanced", min_editorial: float | None = None, site_memory: bool = False
    ) -> float:
        """The editorial probability a paragraph needs to be kept: ``min_editorial``, else the preset's; with
        ``site_memory`` (a paragraph the memory of its site tells something of: ``features.recurring``), the
        preset's threshold for those, chosen so that the preset keeps as much article as it does for pages on
        their own."""
        if favor not in self.thresholds:
            raise ValueError(f"unknown preset {favor!r}; choose one of {', '.join(sorted(self.thresholds))}")
        if min_editorial is not None:
            return min_editorial
        return (self.site_memory_thresholds if site_memory else self.thresholds)[favor]

    def decide(self, probabilities: Sequence[float], threshold: float) -> str:
        """A paragraph's label: editorial when its editorial probability reaches the threshold, else the
        likelier of the other two classes. A higher threshold never keeps more paragraphs."""
        if probabilities[self.editorial] >= threshold:
            return self.classes[self.editorial]
        best = max((i for i in range(len(self.classes)) if i != self.editorial), key=probabilities.__getitem__)
        return self.classes[best]


def _readable(name: str, classes: Sequence[str]) -> str:
    """A second-stage feature name with class indices spelled out: ``p-1_1`` → ``p-1_navigational``."""
    head, _, tail = name.rpartition("_")
    return f"{head}_{classes[int(tail)]}" if tail.isdigit() and head else name


def shipped_model() -> str:
    """The path of the model file installed with the package (package data ``detector.models``, which is the
    repository's ``models/`` folder in a checkout); a string, as pathlib is not imported to clean a page."""
    from importlib import import_module

    package = os.path.dirname(os.path.realpath(__file__))
    try:  # the package's own file: importlib.resources would cost a fifth of a cold start in imports
        models = import_module("detector.models")
    except ModuleNotFoundError:  # the package imported from a checkout that is not installed, or damaged
        root = os.path.dirname(package)
        if os.path.isfile(os.path.join(root, "pyproject.toml")):
            return os.path.join(root, "models", "model.bin")
        return os.path.join(package, "models", "model.bin")  # where it belongs: "not found" names it
    found = getattr(models, "__file__", None)
    if not found:  # its __init__.py lost: a namespace package, and never the working folder's model.bin
        return os.path.join(package, "models", "model.bin")
    return os.path.join(os.path.dirname(found), "model.bin")


def word_list(blob: bytes | memoryview) -> list[str]:
    """The words of a model's word table (UTF-8, one per line; a token never holds white space)."""
    return bytes(blob).decode("utf-8", "surrogatepass").split("\n") if blob else []


def word_index(words: Sequence[str]) -> tuple[array, array]:
    """The word table's index: where each word starts in the table's bytes (one more entry for the end; words
    are separated by a newline), and an open-addressing hash table over the words' CRC-32, a power of two at
    least three times their number, whose slots hold a word's row + 1 (0: empty; a collision takes the next
    free slot). A lookup hashes the token once and compares its bytes with one word, rarely two."""
    encoded = [w.encode("utf-8", "surrogatepass") for w in words]
    offsets = array("I", [0])
    for word in encoded:
        offsets.append(offsets[-1] + len(word) + 1)
    size = 1
    while size < 3 * len(encoded):
        size <<= 1
    slots, mask = array("I", bytes(4 * size)), size - 1
    for row, word in enumerate(encoded):
        at = zlib.crc32(word) & mask
        while slots[at]:
            at = (at + 1) & mask
        slots[at] = row + 1
    return offsets, slots


def word_table(header: dict, weights: Sequence[float], words: Sequence[str]) -> tuple[array, bytes]:
    """The word table of a model file: for each word (those with character n-grams), the sums of its n-grams'
    weights for every expert and class, exactly as the scorer sums them (``column_sums`` over the float32
    weights), and the words themselves. A word in the table costs a lookup the first time it is seen instead
    of hashing and summing a score of n-grams: the first pages of a run go at nearly the warm speed."""
    stored = array("f", weights)
    words = [w for w in dict.fromkeys(words) if w and char_ngram_ids(w)]
    size, n = (len(CLASSES) - 1) << HASH_BITS, 1 << HASH_BITS
    arrays = [
        stored[i * size + k * n : i * size + (k + 1) * n] for i in range(len(header["experts"])) for k in (0, 1)
    ]
    sums = array("d")
    for word in words:
        sums.extend(column_sums(char_ngram_ids(word), arrays))
    return sums, "\n".join(words).encode("utf-8", "surrogatepass")


def save(path: Path, header: dict, weights: Sequence[float], words: Sequence[str] = ()) -> None:
    """Write a model file atomically (temporary file, then rename; no temporary file is left when that fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically({path: model_bytes(header, weights, words)})


def write_atomically(files: dict[Path, bytes]) -> None:
    """Write each file to a temporary name beside it, then put them all in place: a failure (a full disk, a
    folder in the way, a file that cannot be replaced) leaves every file as it was and no temporary file
    behind. The renames are one step for Ctrl-C and SIGTERM, which wait until it is done (a model put in
    place beside the old ``model.json`` was described by it), and a file already replaced when a later one
    cannot be is put back from a hard link to the old one (where the file system has them)."""
    written: list[Path] = []
    backups: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            tmp = _beside(path, "tmp")
            with open(tmp, "xb") as handle:  # (x: never over a file that is there)
                written.append(tmp)
                handle.write(data)
        held = _hold_interruptions()
        try:
            for path in files:
                backup = _beside(path, "old")
                try:
                    os.link(path, backup)  # fails where a file has the name: never over one
                    backups[path] = backup
                except OSError:  # none to keep (the first model), or no hard links here
                    pass
            done: list[Path] = []
            try:
                for path, tmp in zip(files, written):
                    tmp.replace(path)
                    done.append(path)
            except BaseException:
                for path in done:
                    if path in backups:
                        backups.pop(path).replace(path)
                raise
        finally:
            for backup in backups.values():
                backup.unlink(missing_ok=True)
            _release_interruptions(held)
    except BaseException:
        for tmp in written:
            if tmp.is_file():
                tmp.unlink()
        raise


def _beside(path: Path, kind: str) -> Path:
    """A name beside ``path`` for one of ``write_atomically``'s own files, which no other file has: with the
    fixed names ``model.bin.tmp`` and ``model.bin.old``, a user's backup of that name was deleted."""
    return path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.{kind}")


def _hold_interruptions() -> set | None:
    """Ctrl-C, SIGTERM and SIGHUP held back in this thread until ``_release_interruptions`` (then handled)."""
    import signal  # here, not at the top: only training writes files

    if not hasattr(signal, "pthread_sigmask"):
        return None
    held = {signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])}
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, held))


def _release_interruptions(held: set | None) -> None:
    import signal

    if held is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def model_bytes(header: dict, weights: Sequence[float], words: Sequence[str] = ()) -> bytes:
    """A model file's bytes: the header, the text weights, and the table of ``words`` (``word_table``) with its
    index (``word_index``), and the CRC over all of it."""
    sums, blob = word_table(header, weights, words)
    offsets, slots = word_index(word_list(blob))
    header = {
        **header,
        "format": FORMAT,
        "word_table": {"words": len(offsets) - 1, "bytes": len(blob), "slots": len(slots)},
    }
    blob_header = json.dumps(header, ensure_ascii=True, sort_keys=True).encode("ascii")
    body = MAGIC + struct.pack("<I", len(blob_header)) + blob_header + array("f", weights).tobytes()
    body += sums.tobytes() + offsets.tobytes() + slots.tobytes() + blob
    if sys.byteorder != "little":
        raise ModelError("model files are written on little-endian machines only")
    return body + struct.pack("<I", zlib.crc32(body))


MAX_MODEL_BYTES = 256 * 1024 * 1024  # a model file larger than this is not one of ours: refused before reading


def load(
    path: Path | str | None = None, mapped: bool = False, verify_later: bool = False, shown: str | None = None
) -> Scorer:
    """Read and check a model file; every problem becomes a ModelError that says what to do.

    The file is read into one buffer, or mapped (``mapped``: for short runs, see ``_read_model_file``), its
    size known and capped first, and only from a regular file (never a FIFO or a device); the CRC is taken
    over a view of it, and the header is checked against the arrays: the format and feature settings, the
    classes and their order, every shape, and that every number of the header is finite (a text weight that
    is not is refused where a page uses it: ``Scorer.probabilities``). A model that passes predicts exactly
    what it was trained to; nothing in it is executed.

    ``verify_later``: the CRC is taken in a second thread while the caller goes on (zlib lets go of the
    interpreter for it: a one-page run reads and scores its page meanwhile instead of waiting 4 ms); the
    caller must call the scorer's ``verify()``, which waits for it, before it trusts or shows any result.
    ``shown``: the file's name in messages (the path as the user gave it, where ``path`` is made absolute).
    """
    shipped = path is None
    path = shipped_model() if path is None else os.fspath(path)
    name = shown or path
    hint = (
        "the installed package is damaged: reinstall it from the checkout or the wheel it came from (pip "
        "install --force-reinstall PATH; on PyPI the name detector is another project), or in a checkout "
        "restore it (git checkout models/)"
        if shipped
        else "give the path of a model file written by `detector train`, or none for the shipped one"
    )
    data = _read_model_file(path, hint, mapped, name)
    view = memoryview(data)
    if view[: len(MAGIC)] != MAGIC:
        raise ModelError(f"{name} is not a detector model file; {hint}")
    corrupted = f"model file {name} is truncated or corrupted; {hint}"
    if len(data) < len(MAGIC) + 8:
        raise ModelError(corrupted)
    expected = struct.unpack("<I", view[-4:])[0]
    if not verify_later:
        if zlib.crc32(view[:-4]) != expected:
            raise ModelError(corrupted)
        return _scorer(view, name, hint, shipped)
    checksum = _Checksum(view[:-4], expected, corrupted)
    try:
        scorer = _scorer(view, name, hint, shipped)
    except ModelError:
        checksum.verify()  # a damaged file is told as damaged, whatever part of it shows it first
        raise
    scorer.verify = checksum.verify
    return scorer


class _Checksum:
    """The CRC of a model file, taken in a second thread; ``verify`` waits for it and raises ModelError when
    it is not the one the file ends with."""

    def __init__(self, view: memoryview, expected: int, problem: str) -> None:
        import _thread  # not threading: its import would cost more than the wait it saves

        self._done = _thread.allocate_lock()
        self._done.acquire()
        self._problem = problem
        self._ok = False
        self._view, self._expected, self._pid = view, expected, os.getpid()
        started = _thread.allocate_lock()
        started.acquire()
        _thread.start_new_thread(self._take, (started,))
        # Wait until the thread runs: a new thread needs the interpreter to reach zlib, and a caller that keeps
        # it (scoring a page) hands it over only after the switch interval (5 ms). Without this wait the CRC
        # began when the page was nearly done, and a one-page run then waited 4 ms for it.
        started.acquire()

    def _take(self, started: LockType) -> None:
        try:
            started.release()  # the caller goes on once zlib lets go of the interpreter, at once
            self._ok = zlib.crc32(self._view) == self._expected
        finally:
            self._done.release()

    def verify(self) -> None:
        if os.getpid() != self._pid and self._done.locked():
            # forked while the CRC was taken: the thread that would finish it is not in this process, so the
            # CRC is taken here, once (the lock the child inherited stays held for ever: it is replaced)
            import _thread

            self._ok = zlib.crc32(self._view) == self._expected
            self._done, self._pid = _thread.allocate_lock(), os.getpid()
        else:
            with self._done:
                pass
        if not self._ok:
            raise ModelError(self._problem)


def problem_of(body: bytes) -> str:
    """What the loader would refuse in a model file's bytes ('' when nothing): ``detector train`` never writes
    a model that cannot be loaded."""
    try:
        _scorer(memoryview(body), "", "", shipped=False, every_weight=True)
    except ModelError as exc:
        return str(exc).removeprefix("model file  ").removesuffix("; ")
    return ""


def _scorer(view: memoryview, path: str, hint: str, shipped: bool, every_weight: bool = False) -> Scorer:
    """The scorer of a model file's bytes, its header checked against its arrays (and ``every_weight``
    summed: for a model ``detector train`` is about to write)."""
    start = len(MAGIC) + 4
    (size,) = struct.unpack("<I", view[len(MAGIC) : start])
    if start + size > len(view) - 4:
        raise ModelError(f"model file {path} has a damaged header; {hint}")
    try:
        header = json.loads(bytes(view[start : start + size]))
    except (ValueError, RecursionError):
        raise ModelError(f"model file {path} has a damaged header; {hint}") from None
    body = view[start + size : -4]
    problem = check_header(header, len(body))
    if problem:
        raise ModelError(f"model file {path} {problem}; {hint}")
    n_weights, n_sums, n_words, n_slots = body_sizes(header)
    weights = body[: 4 * n_weights].cast("f")
    start = 4 * n_weights + 8 * n_sums
    word_sums = body[4 * n_weights : start].cast("d")
    index = None
    if n_slots:  # format 5: the index is in the file
        end = start + 4 * (n_words + 1 + n_slots)
        offsets, slots = body[start : start + 4 * (n_words + 1)].cast("I"), body[start + 4 * (n_words + 1) : end]
        index, start = (offsets, slots.cast("I")), end
    words = body[start:]
    if not shipped or index is None:  # the shipped file's CRC is its check; another's index could point anywhere
        problem = _check_word_table(words, n_words, index)
        if problem:
            raise ModelError(f"model file {path} has a damaged word table ({problem}); {hint}")
    not_finite = f"model file {path} holds weights that are not finite numbers; {hint}"
    if every_weight and not (math.isfinite(sum(weights)) and math.isfinite(sum(word_sums))):
        raise ModelError(not_finite)
    scorer = Scorer(header, weights, word_sums, words, index)
    scorer.not_finite = not_finite  # any other file's are checked as they are used (Scorer.probabilities)
    return scorer


def _check_word_table(words: memoryview, n_words: int, index: tuple[Sequence[int], Sequence[int]] | None) -> str:
    """What is wrong with a word table and its index ('' when nothing is): the words must be as many as the
    header says, and the index must point at them and nowhere else."""
    if words.nbytes and bytes(words).count(b"\n") + 1 != n_words:
        return "number of words"
    if index is not None:
        offsets, slots = index
        if offsets[0] != 0 or offsets[-1] != words.nbytes + (1 if n_words else 0):
            return "offsets"
        if any(a >= b for a, b in pairwise(offsets)) or max(slots) > n_words:
            return "index"
    return ""


def _read_model_file(path: str, hint: str, mapped: bool = False, shown: str = "") -> bytes | mmap.mmap:
    """The model file's bytes: read into one buffer (not zeroed first), or ``mapped``. The copy of its 10 MB
    is a tenth of a one-page run (a fresh buffer's page faults and the copy) and a mapping costs nothing until
    a page is read, but a mapped file written over in place (``cp`` onto it; ``detector train`` renames a new
    file over the old, which is safe) would change the weights under a running process or kill it with
    SIGBUS: so only short runs map it. A file too small to map, or on a file system that cannot, is read."""
    name = shown or path
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block here
        with open(descriptor, "rb", closefd=True) as handle:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise ModelError(f"model file {name} is not a regular file; {hint}")
            os.set_blocking(descriptor, True)
            if info.st_size > MAX_MODEL_BYTES:
                raise ModelError(f"model file {name} is larger than {MAX_MODEL_BYTES} bytes; {hint}")
            if mapped and info.st_size >= mmap.PAGESIZE:
                try:
                    return mmap.mmap(descriptor, info.st_size, access=mmap.ACCESS_READ)
                except (OSError, ValueError):
                    pass
            data = handle.read(info.st_size + 1)
            if len(data) != info.st_size:
                raise ModelError(f"model file {name} changed while it was read; {hint}")
            return data
    except FileNotFoundError:
        raise ModelError(f"model file {name} not found; {hint}") from None
    except IsADirectoryError:
        raise ModelError(f"model file {name} is a folder; {hint}") from None
    except NotADirectoryError:  # a package imported from a zip (a wheel on PYTHONPATH) has no model file
        raise ModelError(
            f"model file {name} is below a file, not a folder (a zipped install? install the wheel with pip); "
            f"{hint}"
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {name}: {(exc.strerror or str(exc)).lower()}") from None


def _finite_matrix(value: object, rows: int, columns: int) -> bool:
    return isinstance(value, list) and len(value) == rows and all(_finite_vector(row, columns) for row in value)


def _finite_vector(value: object, length: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == length
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


def body_sizes(header: dict) -> tuple[int, int, int, int]:
    """How many float32 text weights and float64 word sums follow a (checked) header, for how many words, and
    how many slots the word table's index has (0: the index is not in the file, formats 3 and 4)."""
    experts = len(header["experts"])
    table = header.get("word_table") or {"words": 0}
    words = table["words"]
    return (
        experts * ((len(CLASSES) - 1) << HASH_BITS),
        words * experts * (len(CLASSES) - 1),
        words,
        table.get("slots", 0),
    )


def check_header(header: object, n_body: int) -> str | None:
    """What is wrong with a model header for the features of this version and a body of ``n_body`` bytes
    (the text weights and the word table; None when nothing is)."""
    if not isinstance(header, dict):
        return "has a damaged header"
    if header.get("format") not in READABLE_FORMATS:
        return "was made by an incompatible version (format differs)"
    expected = {
        "hash_bits": HASH_BITS,
        "char_ngrams": list(CHAR_NGRAMS),
        "dense_names": list(DENSE_NAMES),
        "stage2_names": list(STAGE2_NAMES),
        "shape_names": list(SHAPE_NAMES),
    }
    for key, value in expected.items():
        if header.get(key) != value:
            return f"was made by an incompatible version ({key} differs)"
    if header.get("classes") != list(CLASSES):
        return f"has classes {header.get('classes')!r}, expected {list(CLASSES)!r}"
    experts = header.get("experts")
    if not isinstance(experts, list) or not 1 <= len(experts) <= 2:
        return "has a damaged header (experts)"
    for expert in experts:
        problem = _check_expert(expert)
        if problem:
            return problem
    gate = header.get("gate")
    n_shape = len(SHAPE_NAMES) if len(experts) == 2 else 0
    if not (
        isinstance(gate, dict)
        and _finite_vector(gate.get("mean"), n_shape)
        and _finite_vector(gate.get("scale"), n_shape)
        and all(v != 0 for v in gate["scale"])
        and _finite_vector(gate.get("coef"), n_shape)
        and _finite_vector([gate.get("intercept")], 1)
    ):
        return "has a damaged header (gate)"
    for key in ("thresholds", "site_memory_thresholds"):
        thresholds = header.get(key)
        if not (
            isinstance(thresholds, dict)
            and set(thresholds) == {"precision", "balanced", "recall"}
            and _finite_vector(list(thresholds.values()), 3)
            and all(0.0 <= t <= 1.0 for t in thresholds.values())
        ):
            return f"has a damaged header ({key})"
    table = header.get("word_table", {"words": 0, "bytes": 0} if header["format"] == 3 else None)
    keys = ("words", "bytes", "slots") if header["format"] >= 5 else ("words", "bytes")
    if not (
        isinstance(table, dict)
        and all(isinstance(table.get(k), int) and not isinstance(table[k], bool) and table[k] >= 0 for k in keys)
        and (table["words"] > 0) == (table["bytes"] > 0)
        and (header["format"] < 5 or (table["slots"] >= 3 * table["words"] and table["slots"].bit_count() == 1))
    ):
        return "has a damaged header (word_table)"
    n_weights, n_sums, n_words, n_slots = body_sizes(header)
    expected = 4 * n_weights + 8 * n_sums + (4 * (n_words + 1 + n_slots) if n_slots else 0) + table["bytes"]
    if n_body != expected:
        return f"has {n_body} bytes of weights, expected {expected}"
    return None


def _check_expert(expert: object) -> str | None:
    if not isinstance(expert, dict) or not isinstance(expert.get("name"), str):
        return "has a damaged header (experts)"
    n_dense = len(DENSE_NAMES)
    shapes_ok = (
        _finite_vector(expert.get("dense_mean"), n_dense)
        and _finite_vector(expert.get("dense_scale"), n_dense)
        and all(v != 0 for v in expert["dense_scale"])
        and _finite_matrix(expert.get("dense_coef"), len(CLASSES), n_dense)
        and _finite_vector(expert.get("intercept"), len(CLASSES))
    )
    if not shapes_ok:
        return "has a damaged header (dense weights of the wrong shape or not finite)"
    if any(expert["dense_coef"][0]) or expert["intercept"][0]:
        return "was made by an incompatible version (the first class has weights)"
    stage2 = expert.get("stage2")
    if stage2 is not None and not (
        isinstance(stage2, dict)
        and _finite_matrix(stage2.get("coef"), len(CLASSES), STAGE2_SIZE)
        and _finite_vector(stage2.get("intercept"), len(CLASSES))
    ):
        return "has a damaged header (second stage of the wrong shape or not finite)"
    vocabulary = expert.get("class_vocabulary")
    if not isinstance(vocabulary, list) or not all(isinstance(w, str) for w in vocabulary):
        return "has a damaged header (class vocabulary)"
    temperature = expert.get("temperature")
    if not _finite_vector([temperature], 1) or not 0.01 <= temperature <= 100:  # type: ignore[operator]
        return "has a damaged header (temperature)"
    return None
