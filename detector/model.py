"""The trained model as a code-free file, and the pure-Python scorer that predicts with it.

Training (``detector.workbench.train``) uses scikit-learn; predicting needs only the standard library, so that
``clean-article`` starts in milliseconds. The file holds a JSON header (classes, feature settings, the dense
features' scaling and coefficients, intercepts, the second stage) and one float32 array of text weights of the
second and third class, idf already folded in, followed by a CRC-32 of everything before it. Nothing in it is
ever executed: loading is ``json.loads`` and ``array.frombytes``.
"""

from __future__ import annotations

import json
import math
import struct
import sys
import zlib
from array import array
from collections.abc import Sequence
from operator import mul
from pathlib import Path

from detector.features import (
    CHAR_NGRAMS,
    DENSE_NAMES,
    HASH_BITS,
    STAGE2_SIZE,
    char_ngram_ids,
    form_features,
    neighbour_features,
    page_features,
    phrase_feature_ids,
    softmax,
    tokens,
    unigram_id,
)

FORMAT = 2
MAGIC = b"DETECTOR-MODEL\n"
_WORD_CACHE_LIMIT = 1 << 18


class ModelError(Exception):
    """A model file that cannot be used: missing, damaged, or made for another version of the features."""


class Scorer:
    """Class probabilities for the paragraphs of a page, from the exported weights alone.

    The first class's text and dense weights are zero (training subtracts them, which leaves the softmax
    unchanged), so only two classes' weights are stored and summed.
    """

    def __init__(self, header: dict, weights: array) -> None:
        self.header = header
        self.classes: tuple[str, ...] = tuple(header["classes"])
        scale = header["dense_scale"]
        mean = header["dense_mean"]
        rows = header["dense_coef"][1:]
        self.dense_coef = [[c / s for c, s in zip(row, scale)] for row in rows]
        self.intercept = [
            b - sum(c * m for c, m in zip(row, mean)) for b, row in zip(header["intercept"][1:], self.dense_coef)
        ]
        stage2 = header.get("stage2")
        self.stage2: tuple[list[list[float]], list[float]] | None = (
            (stage2["coef"], stage2["intercept"]) if stage2 else None
        )
        self._token_cache: dict[str, tuple] = {}
        n = 1 << HASH_BITS
        self._w1, self._w2 = weights[:n], weights[n:]

    def _token(self, token: str) -> tuple:
        """A token's unigram column, the weights of its unigram, and the summed weights and number of its
        character n-grams: computed once per distinct token and cached."""
        uid = unigram_id(token)
        ids = char_ngram_ids(token)
        w1, w2 = self._w1, self._w2
        entry = (uid, w1[uid], w2[uid], sum(map(w1.__getitem__, ids)), sum(map(w2.__getitem__, ids)), len(ids))
        if len(self._token_cache) >= _WORD_CACHE_LIMIT:
            self._token_cache.clear()
        self._token_cache[token] = entry
        return entry

    def logits(self, paragraphs: Sequence[str]) -> list[list[float]]:
        """First-stage class scores of every paragraph of one page (the first class's is always 0)."""
        cache = self._token_cache
        make = self._token
        w1, w2 = self._w1, self._w2
        (b1, b2), (d1, d2) = self.intercept, self.dense_coef
        dense_rows = page_features([form_features(p) for p in paragraphs])
        out = []
        for text, dense in zip(paragraphs, dense_rows):
            toks = tokens(text)
            entries = [cache.get(t) or make(t) for t in toks]
            uids: tuple[int, ...] = ()
            s1 = s2 = c1 = c2 = 0.0
            n_chars = 0
            if entries:
                uids, u1s, u2s, c1s, c2s, counts = zip(*entries)
                s1, s2, c1, c2, n_chars = sum(u1s), sum(u2s), sum(c1s), sum(c2s), sum(counts)
            phrases = phrase_feature_ids(uids)
            s1 += sum(map(w1.__getitem__, phrases))
            s2 += sum(map(w2.__getitem__, phrases))
            inv_w = 1.0 / math.sqrt(len(uids) + len(phrases))
            inv_c = 1.0 / math.sqrt(n_chars) if n_chars else 0.0
            out.append(
                [
                    0.0,
                    s1 * inv_w + c1 * inv_c + b1 + sum(map(mul, d1, dense)),
                    s2 * inv_w + c2 * inv_c + b2 + sum(map(mul, d2, dense)),
                ]
            )
        return out

    def probabilities(self, paragraphs: Sequence[str]) -> list[list[float]]:
        """One probability per class, in the order of ``classes``: the softmax of the first stage's scores,
        or of the second stage's when the model has one."""
        logits = self.logits(paragraphs)
        if self.stage2 is not None and logits:
            coef, intercept = self.stage2
            logits = [
                [b + sum(map(mul, row, features)) for row, b in zip(coef, intercept)]
                for features in neighbour_features(logits)
            ]
        return [softmax(row) for row in logits]


def shipped_model() -> Path:
    """The model file installed with the package (package data ``detector.models``, which is the repository's
    ``models/`` folder in a checkout)."""
    from importlib.resources import files

    return Path(str(files("detector.models").joinpath("model.bin")))


def save(path: Path, header: dict, weights: Sequence[float]) -> None:
    """Write a model file atomically (temporary file, then rename)."""
    header = {**header, "format": FORMAT}
    blob = json.dumps(header, ensure_ascii=True, sort_keys=True).encode("ascii")
    body = MAGIC + struct.pack("<I", len(blob)) + blob + array("f", weights).tobytes()
    if sys.byteorder != "little":
        raise ModelError("model files are written on little-endian machines only")
    body += struct.pack("<I", zlib.crc32(body))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(body)
    tmp.replace(path)


def load(path: Path | str | None = None) -> Scorer:
    """Read and check a model file; every problem becomes a ModelError that says what to do."""
    shipped = path is None
    path = shipped_model() if path is None else Path(path)
    hint = (
        "the installed package is damaged: reinstall it (pip install --force-reinstall detector), or in a "
        "checkout run `make train`"
        if shipped
        else "give the path of a model file written by `detector train`, or leave out --model for the shipped one"
    )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"model file {path} not found; {hint}") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None
    if not data.startswith(MAGIC):
        raise ModelError(f"{path} is not a detector model file; {hint}")
    if len(data) < len(MAGIC) + 8 or struct.unpack("<I", data[-4:])[0] != zlib.crc32(data[:-4]):
        raise ModelError(f"model file {path} is truncated or corrupted; {hint}")
    start = len(MAGIC) + 4
    (size,) = struct.unpack("<I", data[len(MAGIC) : start])
    try:
        header = json.loads(data[start : start + size])
    except ValueError:
        raise ModelError(f"model file {path} has a damaged header; {hint}") from None
    expected = {"format": FORMAT, "hash_bits": HASH_BITS, "char_ngrams": list(CHAR_NGRAMS)}
    expected["dense_names"] = list(DENSE_NAMES)
    for key, value in expected.items():
        if header.get(key) != value:
            raise ModelError(f"model file {path} was made by an incompatible version ({key} differs); {hint}")
    stage2 = header.get("stage2")
    if stage2 and any(len(row) != STAGE2_SIZE for row in stage2["coef"]):
        raise ModelError(f"model file {path} was made by an incompatible version (stage2 differs); {hint}")
    weights = array("f")
    weights.frombytes(data[start + size : -4])
    if len(weights) != 2 << HASH_BITS:
        raise ModelError(f"model file {path} has {len(weights)} weights, expected {2 << HASH_BITS}; {hint}")
    if len(header["classes"]) != 3 or any(header["dense_coef"][0]) or header["intercept"][0]:
        raise ModelError(f"model file {path} was made by an incompatible version (classes differ); {hint}")
    return Scorer(header, weights)
