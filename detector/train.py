"""Training with scikit-learn: the feature transformer, the pipeline, grouped cross-validation, and the
export of a fitted pipeline into the code-free model file that ``detector.model`` predicts with.

Imported only by ``detector train`` and ``detector evaluate``; cleaning never loads scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline

from detector import model
from detector.features import (
    CHAR_NGRAMS,
    DENSE_NAMES,
    HASH_BITS,
    char_ngram_ids,
    form_features,
    page_features,
    tokens,
    word_feature_ids,
)
from detector.metrics import rounded, scores
from detector.pages import LABELS, load_corpus

N_HASHED = 1 << HASH_BITS
C = 8.0  # inverse regularisation strength, chosen by grouped cross-validation on training_data/


class ParagraphFeatures(TransformerMixin, BaseEstimator):
    """Paragraph table (columns ``page``, ``text``; each page's rows together and in order) to the feature
    matrix: idf-weighted hashed text features, then the standardised form and context features."""

    def fit(self, X: pd.DataFrame, y: object = None) -> ParagraphFeatures:
        self._fit(*_raw_features(X))
        return self

    def fit_transform(self, X: pd.DataFrame, y: object = None, **params: object) -> sp.csr_matrix:
        hashed, dense = _raw_features(X)
        self._fit(hashed, dense)
        return self._combine(hashed, dense)

    def transform(self, X: pd.DataFrame) -> sp.csr_matrix:
        return self._combine(*_raw_features(X))

    def _fit(self, hashed: sp.csr_matrix, dense: np.ndarray) -> None:
        df = np.bincount(hashed.indices, minlength=N_HASHED)
        self.idf_ = np.log((1 + hashed.shape[0]) / (1 + df)) + 1.0
        self.mean_ = dense.mean(axis=0)
        std = dense.std(axis=0)
        self.scale_ = np.where(std > 1e-12, std, 1.0)

    def _combine(self, hashed: sp.csr_matrix, dense: np.ndarray) -> sp.csr_matrix:
        weighted = hashed @ sp.diags(self.idf_)
        return sp.hstack([weighted, sp.csr_matrix((dense - self.mean_) / self.scale_)], format="csr")


def _raw_features(X: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray]:
    """Hashed counts (each block divided by the root of its occurrences) and raw dense features."""
    indptr, indices, values, dense = [0], [], [], []
    for _, page in X.groupby("page", sort=False):
        texts = page["text"].tolist()
        dense.extend(page_features([form_features(t) for t in texts]))
        for text in texts:
            toks = tokens(text)
            words = word_feature_ids(toks)
            chars = [f for t in toks for f in char_ngram_ids(t)]
            indices.extend(words)
            values.extend([1.0 / math.sqrt(len(words))] * len(words))
            if chars:
                indices.extend(chars)
                values.extend([1.0 / math.sqrt(len(chars))] * len(chars))
            indptr.append(len(indices))
    hashed = sp.csr_matrix((values, indices, indptr), shape=(len(indptr) - 1, N_HASHED))
    hashed.sum_duplicates()
    return hashed, np.asarray(dense, dtype=np.float64).reshape(-1, len(DENSE_NAMES))


def build_pipeline() -> Pipeline:
    """The untrained pipeline: features, then a multinomial logistic regression."""
    return Pipeline(
        [
            ("features", ParagraphFeatures()),
            ("classify", LogisticRegression(C=C, max_iter=3000, class_weight="balanced")),
        ]
    )


def fit(corpus: pd.DataFrame) -> Pipeline:
    """Fit the pipeline on a corpus table and round its text weights to float32, as the model file stores
    them, so that the pipeline and the exported scorer are the same model."""
    pipeline = build_pipeline().fit(corpus[["page", "text"]], corpus["label"])
    features, classify = pipeline.named_steps["features"], pipeline.named_steps["classify"]
    folded = (classify.coef_[:, :N_HASHED] * features.idf_).astype(np.float32).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        classify.coef_[:, :N_HASHED] = folded / features.idf_
    return pipeline


def export(pipeline: Pipeline) -> tuple[dict, np.ndarray]:
    """The model-file header and the flat float32 weights (column-major by class) of a fitted pipeline."""
    features, classify = pipeline.named_steps["features"], pipeline.named_steps["classify"]
    classes = [str(c) for c in classify.classes_]
    weights = (classify.coef_[:, :N_HASHED] * features.idf_).T.astype(np.float32)
    header = {
        "classes": classes,
        "hash_bits": HASH_BITS,
        "char_ngrams": list(CHAR_NGRAMS),
        "dense_names": list(DENSE_NAMES),
        "dense_mean": features.mean_.tolist(),
        "dense_scale": features.scale_.tolist(),
        "dense_coef": classify.coef_[:, N_HASHED:].tolist(),
        "intercept": classify.intercept_.tolist(),
    }
    return header, weights.ravel()


def cross_validate(corpus: pd.DataFrame, folds: int = 5) -> pd.Series:
    """Out-of-fold predicted labels, grouped by site: no site is ever in training and test at once."""
    predicted = pd.Series(index=corpus.index, dtype=object)
    groups = corpus["site"]
    for train_idx, test_idx in GroupKFold(n_splits=min(folds, groups.nunique())).split(corpus, groups=groups):
        pipeline = fit(corpus.iloc[train_idx])
        predicted.iloc[test_idx] = pipeline.predict(corpus.iloc[test_idx][["page", "text"]])
    return predicted


def fingerprint(root: Path) -> str:
    """SHA-256 over the corpus files' relative paths and bytes."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.txt")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def train(data: Path, out: Path, folds: int = 5) -> dict:
    """Train on a corpus folder, write ``out`` (the model) and ``out`` with ``.json`` (its metadata)."""
    corpus = load_corpus(data)
    if corpus.empty:
        raise ValueError(f"no annotated pages under {data}")
    cv = rounded(scores(corpus["label"], cross_validate(corpus, folds))) if folds > 1 else None
    pipeline = fit(corpus)
    header, weights = export(pipeline)
    model.save(out, header, weights)
    metadata = {
        "model_file": out.name,
        "training_data": {
            "fingerprint_sha256": fingerprint(data),
            "pages": int(corpus["page"].nunique()),
            "sites": int(corpus["site"].nunique()),
            "paragraphs": {label: int((corpus["label"] == label).sum()) for label in LABELS},
        },
        "grouped_cross_validation": {"folds": folds, "group": "site folder", "scores": cv},
        "settings": {"hash_bits": HASH_BITS, "char_ngrams": list(CHAR_NGRAMS), "C": C},
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "pandas": pd.__version__,
        },
    }
    out.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata
