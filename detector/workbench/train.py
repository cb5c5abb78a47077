"""Training with scikit-learn: the feature transformer, the pipeline, grouped cross-validation, and the
export of a fitted pipeline into the code-free model file that ``detector.model`` predicts with.

Imported only by ``detector train`` and ``detector evaluate``; cleaning never loads scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_info, threadpool_limits

from detector import model
from detector.features import (
    CHAR_NGRAMS,
    DENSE_NAMES,
    HASH_BITS,
    STAGE2_SIZE,
    char_ngram_ids,
    form_features,
    neighbour_features,
    page_features,
    tokens,
    word_feature_ids,
)
from detector.pages import LABELS, corpus_files, load_corpus
from detector.workbench.metrics import rounded, scores

N_HASHED = 1 << HASH_BITS
C = 2.0  # inverse regularisation strength, chosen by grouped cross-validation on training_data/
C_STAGE2 = 0.01  # the second stage's, chosen the same way (0.001 to 1 tried): its few features want small weights


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
    indptr: list[int] = [0]
    indices: list[int] = []
    values: list[float] = []
    dense: list[list[float]] = []
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


def fit_stage1(corpus: pd.DataFrame) -> Pipeline:
    """Fit the pipeline on a corpus table, shift the weights so that the first class's are zero, and round
    the text weights to float32 as the model file stores them: the pipeline and the exported scorer are then
    the same model. BLAS and OpenMP run on one thread: parallel sums change the last bits from run to run."""
    with threadpool_limits(limits=1):
        pipeline = build_pipeline().fit(corpus[["page", "text"]], corpus["label"])
    features, classify = pipeline.named_steps["features"], pipeline.named_steps["classify"]
    classify.coef_ -= classify.coef_[0]  # the softmax is unchanged, and the first class needs no weights
    classify.intercept_ -= classify.intercept_[0]
    folded = (classify.coef_[:, :N_HASHED] * features.idf_).astype(np.float32).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        classify.coef_[:, :N_HASHED] = folded / features.idf_
    return pipeline


def export(detector: DetectorModel) -> tuple[dict, np.ndarray]:
    """The model-file header and the flat float32 text weights (a block of hashed columns for each class
    but the first, whose weights are zero)."""
    features, classify = detector.stage1.named_steps["features"], detector.stage1.named_steps["classify"]
    classes = [str(c) for c in classify.classes_]
    weights = (classify.coef_[1:, :N_HASHED] * features.idf_).astype(np.float32)  # the first class's are 0
    header = {
        "classes": classes,
        "hash_bits": HASH_BITS,
        "char_ngrams": list(CHAR_NGRAMS),
        "dense_names": list(DENSE_NAMES),
        "dense_mean": features.mean_.tolist(),
        "dense_scale": features.scale_.tolist(),
        "dense_coef": classify.coef_[:, N_HASHED:].tolist(),
        "intercept": classify.intercept_.tolist(),
        "stage2": None,
    }
    if detector.stage2 is not None:
        if list(detector.stage2.classes_) != classes:
            raise ValueError("the two stages disagree on the classes")
        header["stage2"] = {
            "coef": detector.stage2.coef_.tolist(),
            "intercept": detector.stage2.intercept_.tolist(),
        }
    return header, weights.ravel()


class DetectorModel:
    """The two stages as scikit-learn objects: the text pipeline, and a small logistic regression over its
    scores for each paragraph and its neighbours (``features.neighbour_features``)."""

    def __init__(self, stage1: Pipeline, stage2: LogisticRegression | None) -> None:
        self.stage1 = stage1
        self.stage2 = stage2
        self.classes_ = stage1.classes_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        logits = self.stage1.decision_function(X[["page", "text"]])
        if self.stage2 is None:
            return self.stage1.predict_proba(X[["page", "text"]])
        return self.stage2.predict_proba(stage2_matrix(X, logits))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def stage2_matrix(X: pd.DataFrame, logits: np.ndarray) -> np.ndarray:
    """Second-stage features of every paragraph, page by page (rows of a page together and in order)."""
    rows: list[list[float]] = []
    pages = X["page"].to_numpy()
    start = 0
    while start < len(pages):
        end = start
        while end < len(pages) and pages[end] == pages[start]:
            end += 1
        rows.extend(neighbour_features(logits[start:end].tolist()))
        start = end
    return np.asarray(rows, dtype=np.float64).reshape(-1, STAGE2_SIZE)


def _folds(corpus: pd.DataFrame, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    groups = corpus["site"]
    return list(GroupKFold(n_splits=min(folds, groups.nunique())).split(corpus, groups=groups))


def _fold_logits(corpus: pd.DataFrame, split: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    train_idx, test_idx = split
    return fit_stage1(corpus.iloc[train_idx]).decision_function(corpus.iloc[test_idx][["page", "text"]])


def out_of_fold_logits(corpus: pd.DataFrame, folds: int, jobs: int = 2) -> tuple[np.ndarray, list]:
    """First-stage scores of every paragraph from a pipeline that never saw its site. The folds are fitted
    in ``jobs`` forked processes at once; each fit is single-threaded, so the scores do not depend on it."""
    logits = np.zeros((len(corpus), 3))
    splits = _folds(corpus, folds)
    for (_, test_idx), fold_logits in zip(splits, _map(partial(_fold_logits, corpus), splits, jobs)):
        logits[test_idx] = fold_logits
    return logits, splits


def _map(function: Callable[[Any], Any], items: list[Any], jobs: int) -> list[Any]:
    """``[function(item) for item in items]``, in forked worker processes when ``jobs`` > 1."""
    if jobs <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(min(jobs, len(items))) as pool:
        return pool.map(function, items, chunksize=1)


def fit_stage2(features: np.ndarray, labels: pd.Series) -> LogisticRegression:
    with threadpool_limits(limits=1):
        return LogisticRegression(C=C_STAGE2, max_iter=2000, class_weight="balanced").fit(features, labels)


def with_article_crops(corpus: pd.DataFrame) -> pd.DataFrame:
    """The corpus plus, for every page with chrome around its article, a copy cropped to its article region
    (page name ``…#body``): many scrapers store only the article region of a page, with the ads and links
    inside it, and such pages must not look strange to the model. The region runs from the first editorial
    paragraph to the last; on half of the pages (chosen by a hash of the page name, so training stays
    reproducible) it keeps the one or two paragraphs that follow, as regions cut by scrapers often end with
    a disclaimer or a link: otherwise the position features would learn that a page's last paragraph is
    always editorial. Copies stay in their page's site, so grouped cross-validation keeps them with their
    original."""
    crops = []
    for page, rows in corpus.groupby("page", sort=False):
        editorial = np.flatnonzero(rows["label"].to_numpy() == "editorial")
        if not len(editorial):
            continue
        end = editorial[-1] + 1
        draw = zlib.crc32(str(page).encode("utf-8"))
        if draw % 2:
            end = min(len(rows), end + 1 + (draw >> 1) % 2)
        crop = rows.iloc[editorial[0] : end]
        if len(crop) <= len(rows) - 2:
            crops.append(crop.assign(page=f"{page}#body"))
    return pd.concat([corpus, *crops], ignore_index=True)


def fit_model(corpus: pd.DataFrame, folds: int = 5, jobs: int = 2) -> tuple[DetectorModel, pd.Series | None]:
    """Fit both stages on the corpus and its article crops; also return the cross-validated labels of the
    corpus's own paragraphs, grouped by site (``None`` without folds).

    The second stage learns from out-of-fold first-stage scores, so it sees scores as they are on unseen
    sites. The same folds give the cross-validated labels: each fold's labels come from a second stage
    fitted on the other folds' scores (stacking cross-validation).
    """
    original = len(corpus)
    corpus = with_article_crops(corpus)
    stage1 = fit_stage1(corpus)
    if folds < 2 or corpus["site"].nunique() < 2:
        return DetectorModel(stage1, None), None
    logits, splits = out_of_fold_logits(corpus, folds, jobs)
    features = stage2_matrix(corpus, logits)
    labels = corpus["label"]
    predicted = pd.Series(index=corpus.index, dtype=object)
    for train_idx, test_idx in splits:
        fold_model = fit_stage2(features[train_idx], labels.iloc[train_idx])
        predicted.iloc[test_idx] = fold_model.predict(features[test_idx])
    return DetectorModel(stage1, fit_stage2(features, labels)), predicted.iloc[:original]


def cross_validate(corpus: pd.DataFrame, folds: int = 5) -> pd.Series:
    """Labels of every paragraph predicted by models that never saw its site."""
    _, predicted = fit_model(corpus, folds)
    if predicted is None:
        raise ValueError("grouped cross-validation needs at least two site folders")
    return predicted


def fingerprint(root: Path) -> str:
    """SHA-256 over the corpus files' relative paths and bytes."""
    digest = hashlib.sha256()
    for path in corpus_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# The modules whose code decides what training makes of the corpus: a change to any of them needs a retrain.
TRAINING_CODE = ("segment.py", "markup.py", "pages.py", "features.py", "model.py", "workbench/train.py")


def code_fingerprint() -> str:
    """SHA-256 over the source of the modules that decide the trained model (``TRAINING_CODE``)."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for name in TRAINING_CODE:
        digest.update(name.encode() + b"\0" + (package / name).read_bytes() + b"\0")
    return digest.hexdigest()


def blas_setup() -> list[str]:
    """The BLAS libraries as loaded (kernel architecture, threads): pinned by ``detector.workbench``."""
    return sorted(
        f"{info.get('internal_api')} {info.get('architecture', '')} {info.get('num_threads')} thread(s)".strip()
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    )


def train(data: Path, out: Path, folds: int = 5, jobs: int = 2) -> dict:
    """Train on a corpus folder, write ``out`` (the model) and ``out`` with ``.json`` (its metadata: data and
    code fingerprints, the model file's SHA-256, versions, scores)."""
    from detector.workbench import PINNED_ENVIRONMENT

    corpus = load_corpus(data)
    if corpus.empty:
        raise ValueError(f"no annotated pages under {data}")
    detector, predicted = fit_model(corpus, folds, jobs)
    cv = rounded(scores(corpus["label"].tolist(), predicted.tolist())) if predicted is not None else None
    header, weights = export(detector)
    model.save(out, header, weights.tolist())
    metadata = {
        "model_file": out.name,
        "model_sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "code_fingerprint_sha256": code_fingerprint(),
        "training_data": {
            "fingerprint_sha256": fingerprint(data),
            "pages": int(corpus["page"].nunique()),
            "sites": int(corpus["site"].nunique()),
            "paragraphs": {label: int((corpus["label"] == label).sum()) for label in LABELS},
            "article_crops_added": int(with_article_crops(corpus)["page"].nunique() - corpus["page"].nunique()),
        },
        "grouped_cross_validation": {"folds": folds, "group": "site folder", "scores": cv},
        "settings": {"hash_bits": HASH_BITS, "char_ngrams": list(CHAR_NGRAMS), "C": C, "C_stage2": C_STAGE2},
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "pandas": pd.__version__,
        },
        "reproducibility": {"pinned_environment": PINNED_ENVIRONMENT, "blas": blas_setup()},
    }
    out.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata
