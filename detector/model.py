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
import os
import stat
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
CLASSES = ("editorial", "navigational", "promotional")  # the order training gives them (sorted)
_WORD_CACHE_LIMIT = 1 << 18


class ModelError(Exception):
    """A model file that cannot be used: missing, damaged, or made for another version of the features."""


class Scorer:
    """Class probabilities for the paragraphs of a page, from the exported weights alone.

    The first class's text and dense weights are zero (training subtracts them, which leaves the softmax
    unchanged), so only two classes' weights are stored and summed.
    """

    def __init__(self, header: dict, weights: Sequence[float]) -> None:
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

    try:
        return Path(str(files("detector.models").joinpath("model.bin")))
    except ModuleNotFoundError:  # the package imported from a checkout that is not installed
        return Path(__file__).resolve().parent.parent / "models" / "model.bin"


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


MAX_MODEL_BYTES = 256 * 1024 * 1024  # a model file larger than this is not one of ours: refused before reading


def load(path: Path | str | None = None) -> Scorer:
    """Read and check a model file; every problem becomes a ModelError that says what to do.

    The file is read once into one buffer (its size known and capped first, and only from a regular file:
    never a FIFO or a device), the CRC is taken over a view of it, and the header is checked against the
    arrays: the format and feature settings, the classes and their order, every shape, and that every number
    is finite. A model that passes predicts exactly what it was trained to; nothing in it is executed.
    """
    shipped = path is None
    path = shipped_model() if path is None else Path(path)
    hint = (
        "the installed package is damaged: reinstall it (pip install --force-reinstall detector), or in a "
        "checkout run `make train`"
        if shipped
        else "give the path of a model file written by `detector train`, or leave out --model for the shipped one"
    )
    data = _read_model_file(path, hint)
    view = memoryview(data)
    if not data.startswith(MAGIC):
        raise ModelError(f"{path} is not a detector model file; {hint}")
    if len(data) < len(MAGIC) + 8 or struct.unpack("<I", view[-4:])[0] != zlib.crc32(view[:-4]):
        raise ModelError(f"model file {path} is truncated or corrupted; {hint}")
    start = len(MAGIC) + 4
    (size,) = struct.unpack("<I", view[len(MAGIC) : start])
    if start + size > len(data) - 4:
        raise ModelError(f"model file {path} has a damaged header; {hint}")
    try:
        header = json.loads(bytes(view[start : start + size]))
    except (ValueError, RecursionError):
        raise ModelError(f"model file {path} has a damaged header; {hint}") from None
    body = view[start + size : -4]
    if len(body) % 4:
        raise ModelError(f"model file {path} has a damaged weight array; {hint}")
    weights = body.cast("f")
    problem = check_header(header, len(weights))
    if problem:
        raise ModelError(f"model file {path} {problem}; {hint}")
    if not shipped and not math.isfinite(sum(weights)):
        raise ModelError(f"model file {path} holds weights that are not finite numbers; {hint}")
    return Scorer(header, weights)


def _read_model_file(path: Path, hint: str) -> bytearray:
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block here
        with open(descriptor, "rb", closefd=True) as handle:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise ModelError(f"model file {path} is not a regular file; {hint}")
            os.set_blocking(descriptor, True)
            if info.st_size > MAX_MODEL_BYTES:
                raise ModelError(f"model file {path} is larger than {MAX_MODEL_BYTES} bytes; {hint}")
            data = bytearray(info.st_size)
            if handle.readinto(data) != info.st_size or handle.read(1):
                raise ModelError(f"model file {path} changed while it was read; {hint}")
            return data
    except FileNotFoundError:
        raise ModelError(f"model file {path} not found; {hint}") from None
    except IsADirectoryError:
        raise ModelError(f"model file {path} is a folder; {hint}") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {(exc.strerror or str(exc)).lower()}") from None


def _finite_matrix(value: object, rows: int, columns: int) -> bool:
    return isinstance(value, list) and len(value) == rows and all(_finite_vector(row, columns) for row in value)


def _finite_vector(value: object, length: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == length
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


def check_header(header: object, n_weights: int) -> str | None:
    """What is wrong with a model header for the features of this version and ``n_weights`` text weights
    (None when nothing is)."""
    if not isinstance(header, dict):
        return "has a damaged header"
    expected = {
        "format": FORMAT,
        "hash_bits": HASH_BITS,
        "char_ngrams": list(CHAR_NGRAMS),
        "dense_names": list(DENSE_NAMES),
    }
    for key, value in expected.items():
        if header.get(key) != value:
            return f"was made by an incompatible version ({key} differs)"
    if header.get("classes") != list(CLASSES):
        return f"has classes {header.get('classes')!r}, expected {list(CLASSES)!r}"
    n_dense = len(DENSE_NAMES)
    shapes_ok = (
        _finite_vector(header.get("dense_mean"), n_dense)
        and _finite_vector(header.get("dense_scale"), n_dense)
        and all(v != 0 for v in header["dense_scale"])
        and _finite_matrix(header.get("dense_coef"), len(CLASSES), n_dense)
        and _finite_vector(header.get("intercept"), len(CLASSES))
    )
    if not shapes_ok:
        return "has a damaged header (dense weights of the wrong shape or not finite)"
    if any(header["dense_coef"][0]) or header["intercept"][0]:
        return "was made by an incompatible version (the first class has weights)"
    stage2 = header.get("stage2")
    if stage2 is not None and not (
        isinstance(stage2, dict)
        and _finite_matrix(stage2.get("coef"), len(CLASSES), STAGE2_SIZE)
        and _finite_vector(stage2.get("intercept"), len(CLASSES))
    ):
        return "has a damaged header (second stage of the wrong shape or not finite)"
    if n_weights != (len(CLASSES) - 1) << HASH_BITS:
        return f"has {n_weights} weights, expected {(len(CLASSES) - 1) << HASH_BITS}"
    return None
