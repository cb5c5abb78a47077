"""Training with scikit-learn: the feature transformer, the pipeline, grouped cross-validation, and the
export of a fitted pipeline into the code-free model file that ``detector.model`` predicts with.

Imported only by ``detector train`` and ``detector evaluate``; cleaning never loads scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

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
    CLASS_WORD_WEIGHT,
    DENSE_NAMES,
    HASH_BITS,
    SHAPE_NAMES,
    STAGE2_NAMES,
    STAGE2_SIZE,
    SiteMemory,
    box_paths,
    char_ngram_ids,
    class_word_ids,
    known_words,
    neighbour_features,
    page_features,
    page_shape,
    reader_text,
    recurring,
    tokens,
    topic_words,
    word_feature_ids,
)
from detector.pages import LABELS, corpus_pages, load_corpus
from detector.workbench.markdown import markdown_page
from detector.workbench.metrics import rounded, scores

N_HASHED = 1 << HASH_BITS
C = 2.0  # inverse regularisation strength, chosen by grouped cross-validation on training_data/
C_STAGE2 = 0.01  # the second stage's, chosen the same way (0.001 to 1 tried): its few features want small weights


COLUMNS = ["page", "site", "text", "block"]  # what the features read of a corpus table


class ParagraphFeatures(TransformerMixin, BaseEstimator):
    """Paragraph table (``COLUMNS``; each page's rows together and in order; ``block`` is the markup of an
    HTML paragraph or None) to the feature matrix: idf-weighted hashed text features, then the standardised
    dense features."""

    def fit(self, X: pd.DataFrame, y: object = None) -> ParagraphFeatures:
        self.vocabulary_ = class_vocabulary(X)
        self._fit(*_raw_features(X, self.vocabulary_))
        return self

    def fit_transform(self, X: pd.DataFrame, y: object = None, **params: object) -> sp.csr_matrix:
        self.vocabulary_ = class_vocabulary(X)
        hashed, dense = _raw_features(X, self.vocabulary_)
        self._fit(hashed, dense)
        return self._combine(hashed, dense)

    def transform(self, X: pd.DataFrame) -> sp.csr_matrix:
        return self._combine(*_raw_features(X, self.vocabulary_))

    def _fit(self, hashed: sp.csr_matrix, dense: np.ndarray) -> None:
        df = np.bincount(hashed.indices, minlength=N_HASHED)
        self.idf_ = np.log((1 + hashed.shape[0]) / (1 + df)) + 1.0
        self.mean_ = dense.mean(axis=0)
        std = dense.std(axis=0)
        self.scale_ = np.where(std > 1e-12, std, 1.0)

    def _combine(self, hashed: sp.csr_matrix, dense: np.ndarray) -> sp.csr_matrix:
        weighted = hashed @ sp.diags(self.idf_)
        return sp.hstack([weighted, sp.csr_matrix((dense - self.mean_) / self.scale_)], format="csr")


MIN_CLASS_WORD_SITES = 3  # a class or id word counts when pages of this many site styles use it


def class_vocabulary(X: pd.DataFrame) -> frozenset[str]:
    """The class and id words used on HTML pages of at least ``MIN_CLASS_WORD_SITES`` site styles (the first
    folders): "ad", "teaser", "footer" are shared by many sites, where "fzf" or "sc-bdVaJa"
    name one site's styles and would only teach the model that site."""
    sites: dict[str, set[str]] = {}
    for site, block in zip(X["site"], X["block"]):
        if block is not None:
            for word in block.class_words:
                sites.setdefault(word, set()).add(site)
    return frozenset(word for word, found in sites.items() if len(found) >= MIN_CLASS_WORD_SITES)


def _raw_features(X: pd.DataFrame, vocabulary: frozenset[str]) -> tuple[sp.csr_matrix, np.ndarray]:
    """Hashed counts (each block divided by the root of its occurrences) and raw dense features."""
    indptr: list[int] = [0]
    indices: list[int] = []
    values: list[float] = []
    dense: list[list[float]] = []
    for _, page in X.groupby("page", sort=False):
        texts = page["text"].tolist()
        blocks = page["block"].tolist()
        markup = blocks if blocks[0] is not None else None
        dense.extend(page_features(texts, markup))
        for text, block in zip(texts, blocks):
            toks = tokens(text)
            words = word_feature_ids(toks)
            chars = [f for t in toks for f in char_ngram_ids(t)]
            classes = list(class_word_ids(known_words(block.class_words, vocabulary))) if block is not None else []
            for ids, scale in ((words, 1.0), (chars, 1.0), (classes, CLASS_WORD_WEIGHT)):
                if ids:
                    indices.extend(ids)
                    values.extend([scale / math.sqrt(len(ids))] * len(ids))
            indptr.append(len(indices))
    hashed = sp.csr_matrix((values, indices, indptr), shape=(len(indptr) - 1, N_HASHED))
    hashed.sum_duplicates()
    return hashed, np.asarray(dense, dtype=np.float64).reshape(-1, len(DENSE_NAMES))


def build_pipeline() -> Pipeline:
    """The untrained pipeline: features, then a multinomial logistic regression."""
    return Pipeline(
        [
            ("features", ParagraphFeatures()),
            ("classify", LogisticRegression(C=C, max_iter=3000)),
        ]
    )


def fit_stage1(corpus: pd.DataFrame) -> Pipeline:
    """Fit the pipeline on a corpus table, shift the weights so that the first class's are zero, and round
    the text weights to float32 as the model file stores them: the pipeline and the exported scorer are then
    the same model. BLAS and OpenMP run on one thread: parallel sums change the last bits from run to run."""
    with threadpool_limits(limits=1):
        pipeline = build_pipeline().fit(
            corpus[COLUMNS], corpus["label"], classify__sample_weight=training_weights(corpus)
        )
    features, classify = pipeline.named_steps["features"], pipeline.named_steps["classify"]
    classify.coef_ -= classify.coef_[0]  # the softmax is unchanged, and the first class needs no weights
    classify.intercept_ -= classify.intercept_[0]
    folded = (classify.coef_[:, :N_HASHED] * features.idf_).astype(np.float32).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        classify.coef_[:, :N_HASHED] = folded / features.idf_
    return pipeline


WORD_TABLE_SIZE = 20_000  # words: about 0.7 MB of the model file; past this, words are rare on real pages


def frequent_words(texts: Iterable[str]) -> list[str]:
    """The words (tokens with character n-grams) that occur at least twice in the corpus, the most frequent
    first, at most WORD_TABLE_SIZE: the model file's word table (``detector.model.word_table``)."""
    counts = Counter(t for text in texts for t in tokens(text) if char_ngram_ids(t))
    ranked = sorted((word for word, n in counts.items() if n >= 2), key=lambda w: (-counts[w], w))
    return ranked[:WORD_TABLE_SIZE]


def export(detector: DetectorModel) -> tuple[dict, np.ndarray]:
    """The model-file header and the flat float32 text weights: for each expert, a block of hashed columns
    for each class but the first, whose weights are zero."""
    experts, blocks = [], []
    for expert in detector.experts:
        header, weights = _export_expert(expert)
        experts.append(header)
        blocks.append(weights)
    header = {
        "classes": [str(c) for c in detector.classes_],
        "hash_bits": HASH_BITS,
        "char_ngrams": list(CHAR_NGRAMS),
        "dense_names": list(DENSE_NAMES),
        "stage2_names": list(STAGE2_NAMES),
        "shape_names": list(SHAPE_NAMES),
        "experts": experts,
        "gate": detector.gate.export(),
        "thresholds": detector.thresholds,
        "site_memory_thresholds": detector.site_memory_thresholds,
    }
    return header, np.concatenate(blocks)


def _export_expert(expert: Expert) -> tuple[dict, np.ndarray]:
    features, classify = expert.stage1.named_steps["features"], expert.stage1.named_steps["classify"]
    weights = (classify.coef_[1:, :N_HASHED] * features.idf_).astype(np.float32)  # the first class's are 0
    header = {
        "name": expert.name,
        "class_vocabulary": sorted(features.vocabulary_),
        "dense_mean": features.mean_.tolist(),
        "dense_scale": features.scale_.tolist(),
        "dense_coef": classify.coef_[:, N_HASHED:].tolist(),
        "intercept": classify.intercept_.tolist(),
        "stage2": None,
        "temperature": expert.temperature,
    }
    if expert.stage2 is not None:
        if list(expert.stage2.classes_) != list(classify.classes_):
            raise ValueError("the two stages disagree on the classes")
        header["stage2"] = {"coef": expert.stage2.coef_.tolist(), "intercept": expert.stage2.intercept_.tolist()}
    return header, weights.ravel()


class Expert:
    """One model of two stages as scikit-learn objects: the text pipeline, and a small logistic regression over
    its scores for each paragraph, its neighbours and its page (``features.neighbour_features``); then the
    temperature that calibrates its probabilities."""

    def __init__(self, name: str, stage1: Pipeline, stage2: LogisticRegression | None, temperature: float = 1.0):
        self.name = name
        self.stage1 = stage1
        self.stage2 = stage2
        self.temperature = temperature

    def decision_function(self, X: pd.DataFrame, memories: dict[str, SiteMemory] | None = None) -> np.ndarray:
        logits = self.stage1.decision_function(X[COLUMNS])
        if self.stage2 is None:
            return logits
        return self.stage2.decision_function(stage2_matrix(X, logits, memories))

    def predict_proba(self, X: pd.DataFrame, memories: dict[str, SiteMemory] | None = None) -> np.ndarray:
        return softmax_rows(self.decision_function(X, memories) / self.temperature)


class Gate:
    """Page shape to the weight of the full-page expert: a logistic regression over ``features.page_shape``,
    trained on pages of both shapes (one row per page)."""

    def __init__(
        self, model: LogisticRegression | None, mean: np.ndarray, scale: np.ndarray, constant: float = 1.0
    ) -> None:
        self.model, self.mean, self.scale, self.constant = model, mean, scale, constant

    def weight(self, texts: list[str]) -> float:
        if self.model is None:
            return self.constant
        x = (np.asarray(page_shape(texts)) - self.mean) / self.scale
        return float(1.0 / (1.0 + np.exp(-(x @ self.model.coef_[0] + self.model.intercept_[0]))))

    def export(self) -> dict:
        if self.model is None and len(self.mean):  # one expert read every page better: a gate of no slope
            intercept = 40.0 if self.constant else -40.0  # a weight of 1.0 or 4e-18
            return {
                "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "coef": [0.0] * len(self.mean),
                "intercept": intercept,
            }
        if self.model is None:
            return {"mean": [], "scale": [], "coef": [], "intercept": 20.0}
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.model.coef_[0].tolist(),
            "intercept": float(self.model.intercept_[0]),
        }


class DetectorModel:
    """Two experts and a gate: the full-page expert (trained on everything: full pages as HTML and as text,
    article regions) reads HTML input alone; for text input the gate mixes its probabilities with those of
    the article-region expert (trained on article regions only) by the page's shape. One linear model cannot
    hold both tasks: a short line between headline and body is a standfirst in an article region and a menu
    item or a teaser on a full page."""

    def __init__(
        self,
        experts: list[Expert],
        gate: Gate,
        thresholds: dict[str, float] | None = None,
        site_memory_thresholds: dict[str, float] | None = None,
    ) -> None:
        self.experts = experts
        self.gate = gate
        self.classes_ = experts[0].stage1.classes_
        self.thresholds = thresholds or {"precision": 0.5, "balanced": 0.5, "recall": 0.5}
        self.site_memory_thresholds = site_memory_thresholds or dict(self.thresholds)

    def predict_proba(self, X: pd.DataFrame, memories: dict[str, SiteMemory] | None = None) -> np.ndarray:
        """Per row, the probability of each class; with ``memories`` (per site, ``site_memories``), each page
        as one of a batch of its site's pages."""
        full = self.experts[0].predict_proba(X, memories)
        if len(self.experts) == 1:
            return full
        region = self.experts[1].predict_proba(X, memories)
        out = full.copy()
        for rows in page_slices(X):
            if X["block"].iloc[rows.start] is None:
                g = self.gate.weight(X["text"].iloc[rows].tolist())
                out[rows] = g * full[rows] + (1.0 - g) * region[rows]
        return out

    def predict(self, X: pd.DataFrame, threshold: float | None = None) -> np.ndarray:
        chosen = self.thresholds["balanced"] if threshold is None else threshold
        return decide(self.predict_proba(X), self.classes_, chosen)


def page_slices(X: pd.DataFrame) -> list[slice]:
    """The row ranges of the pages of a corpus table (each page's rows together and in order)."""
    pages = X["page"].to_numpy()
    slices = []
    start = 0
    while start < len(pages):
        end = start
        while end < len(pages) and pages[end] == pages[start]:
            end += 1
        slices.append(slice(start, end))
        start = end
    return slices


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def decide(probabilities: np.ndarray, classes: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """The labels of ``detector.model.Scorer.decide`` for many rows: editorial when its probability reaches
    the threshold, else the likelier of the other two."""
    editorial = list(classes).index("editorial")
    others = probabilities.copy()
    others[:, editorial] = -1.0
    labels = classes[others.argmax(axis=1)]
    labels[probabilities[:, editorial] >= threshold] = "editorial"
    return labels


def stage2_matrix(
    X: pd.DataFrame, logits: np.ndarray, memories: dict[str, SiteMemory] | None = None
) -> np.ndarray:
    """Second-stage features of every paragraph, page by page (rows of a page together and in order); with
    ``memories`` (``site_memories``), each page as one of a batch of its site's pages."""
    rows: list[list[float]] = []
    for page in page_slices(X):
        blocks = X["block"].iloc[page].tolist()
        boxes = box_paths(blocks) if blocks[0] is not None else None
        repeats = None
        memory = memories.get(X["site"].iloc[page.start]) if memories is not None else None
        if memory is not None:
            repeats = memory.shares(X["text"].iloc[page].tolist())
        texts = X["text"].iloc[page].tolist()
        words = [topic_words(text) for text in texts]
        lengths = [len(text) for text in texts]
        rows.extend(neighbour_features(logits[page].tolist(), boxes, repeats, words, lengths))
    return np.asarray(rows, dtype=np.float64).reshape(-1, STAGE2_SIZE)


def site_memories(corpus: pd.DataFrame) -> dict[str, SiteMemory]:
    """Per site folder, the memory a batch of its pages gives (``detector.features.SiteMemory``): the folder's
    own pages, not their training copies, whose pages share their site's chrome as real sites do."""
    memories: dict[str, SiteMemory] = {}
    originals = corpus[~corpus["page"].str.contains(COPY_SUFFIX)]
    for (site, _), rows in originals.groupby(["site", "page"], sort=False):
        memories.setdefault(site, SiteMemory()).add(rows["text"].tolist())
    return memories


def _folds(corpus: pd.DataFrame, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    groups = corpus["site"]
    return list(GroupKFold(n_splits=min(folds, groups.nunique())).split(corpus, groups=groups))


def _fold_stage1(
    corpus: pd.DataFrame, members: np.ndarray, scored: np.ndarray, split: tuple[np.ndarray, np.ndarray] | None
) -> Any:
    """The first stage fitted on a fold's training members, scoring its test rows (their logits); without a
    split, the first stage fitted on all members (the pipeline)."""
    if split is None:
        return fit_stage1(corpus[members])
    train_idx, test_idx = split
    training = corpus.iloc[train_idx[members[train_idx]]]
    if training["label"].nunique() < len(LABELS):  # a fold without all classes among its members is skipped
        return None
    fitted = fit_stage1(training)
    return fitted.decision_function(corpus.iloc[test_idx[scored[test_idx]]][COLUMNS])


def _map(function: Callable[[Any], Any], items: list[Any], jobs: int) -> list[Any]:
    """``[function(item) for item in items]``, in forked worker processes when ``jobs`` > 1."""
    if jobs <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    import multiprocessing

    from detector.batch import abandon_pool, worker_start

    # Ctrl-C reaches the workers too: they ignore it and the parent stops them, so it ends in one line, not in
    # a traceback from each worker; a SIGTERM to the process group kills them, and the pool is left as a batch
    # leaves it (its own teardown could wait for ever). They die with the parent (Linux). Done, the pool is
    # closed and joined: its terminate() now and then waited for ever for the queue's lock, which an idle
    # worker holds while it waits for work, and a killed parent left the workers waiting for ever.
    context = multiprocessing.get_context("fork")
    pool = context.Pool(min(jobs, len(items)), worker_start)
    try:
        results = pool.map(function, items, chunksize=1)
    except BaseException:
        abandon_pool(pool)
        raise
    pool.close()
    pool.join()
    return results


def fit_stage2(features: np.ndarray, labels: pd.Series, weights: np.ndarray) -> LogisticRegression:
    with threadpool_limits(limits=1):
        return LogisticRegression(C=C_STAGE2, max_iter=2000).fit(features, labels, sample_weight=weights)


HTML_WEIGHT = 1.0  # the full pages' (HTML pages and their copies) share of the training weight, against 1.0


def training_weights(corpus: pd.DataFrame) -> np.ndarray:
    """Per row: classes balanced within each shape of page, so that the many menu lines of full pages do not
    outweigh the few navigational lines of article regions. The shapes are article-region text pages (and
    their copies) and full pages (HTML pages and their copies); each class of each shape gets the same total
    weight, whatever the number of its rows, and full pages ``HTML_WEIGHT`` times that of article regions."""
    full = from_html_pages(corpus)
    labels = corpus["label"].to_numpy()
    weights = np.zeros(len(corpus))
    for shape, share in ((full, HTML_WEIGHT), (~full, 1.0)):
        for label in LABELS:
            members = shape & (labels == label)
            if members.any():
                weights[members] = share / members.sum()
    return weights * (len(corpus) / weights.sum())


def with_training_copies(corpus: pd.DataFrame) -> pd.DataFrame:
    """The corpus followed by copies of its pages in the other shapes that pages reach users in. Copies stay
    in their page's site, so grouped cross-validation keeps them with their original; which pages get which
    copy is decided by a hash of the page name, so training stays reproducible.

    * ``…#text``: every HTML page as text, its markup dropped: the same full page as a text scrape, so the
      text features learn full pages on their own, and one model serves text and HTML input;
    * ``…#body``: every text-form page with chrome around its article, cropped to its article region, as
      many scrapers store pages (with the ads and links inside it). The region runs from the first
      editorial paragraph to the last; on half of the pages it keeps the one or two paragraphs that follow,
      as regions cut by scrapers often end with a disclaimer or a link: otherwise the position features would
      learn that a page's last paragraph is always editorial;
    * ``…#markdown``: every ``MARKDOWN_SHARE``-th HTML page (by hash) as Markdown (``markdown_page``), as
      html2text, markdownify and the crawlers built on them store pages;
    * ``…#head``: the first ~2,000 characters of every longer text-form page that has article text in them,
      as pipelines that store the start of a page see it;
    * ``…#menu``: every ``MENU_SHARE``-th text-form page (by hash) that starts with at least ``MENU_MIN``
      paragraphs of chrome, cut to its first ``MENU_MIN`` to ``MENU_MAX`` of them, as scrapes of consent
      walls, error pages and menus without their article reach users: pages with no article at all, which
      neither expert nor the gate must read as an article region (cut from full pages only, the gate still
      sent some to the article-region expert);
    * ``…#short``: every HTML page of more than ``SHORT_BUDGET`` paragraphs as text with its long runs of
      navigational paragraphs shortened (``shortened``), as corpora that keep a page's chrome but not all of
      it store full pages: its shape is then nearer an article region's, and the gate must still learn which
      expert reads it better.
    """
    html = corpus[corpus["block"].notna()]
    text_copies = html.assign(block=None, page=html["page"] + "#text")
    markdown_copies = markdown_pages(html)
    text_form = pd.concat([corpus[corpus["block"].isna()], text_copies, markdown_copies], ignore_index=True)
    copies = [text_copies, markdown_copies]
    for page, rows in text_form.groupby("page", sort=False):
        labels = rows["label"].to_numpy()
        editorial = np.flatnonzero(labels == "editorial")
        if not len(editorial):
            continue
        end = editorial[-1] + 1
        draw = zlib.crc32(str(page).encode("utf-8", "surrogateescape"))  # a name that is not UTF-8 too
        if draw % 2:
            end = min(len(rows), end + 1 + (draw >> 1) % 2)
        crop = rows.iloc[editorial[0] : end]
        if len(crop) <= len(rows) - 2:
            copies.append(crop.assign(page=f"{page}#body"))
        head = head_length(rows["text"])
        if head < len(rows) and editorial[0] < head:
            copies.append(rows.iloc[:head].assign(page=f"{page}#head"))
        if editorial[0] >= MENU_MIN and not (draw >> 3) % MENU_SHARE:
            size = MENU_MIN + (draw >> 8) % (MENU_MAX - MENU_MIN + 1)
            copies.append(rows.iloc[: min(size, editorial[0])].assign(page=f"{page}#menu"))
    for page, rows in text_copies.groupby("page", sort=False):
        if len(rows) > SHORT_BUDGET:
            keep = shortened(rows["label"].tolist())
            copies.append(rows.iloc[keep].assign(page=f"{page.removesuffix('#text')}#short"))
    return pd.concat([corpus, *copies], ignore_index=True)


MARKDOWN_SHARE = 3  # one HTML page in this many gets a Markdown copy
MENU_SHARE = 3  # one text-form page in this many that starts with chrome gets a copy of its chrome alone
MENU_MIN, MENU_MAX = 3, 12  # paragraphs of such a copy


def markdown_pages(html: pd.DataFrame) -> pd.DataFrame:
    """Markdown copies (``…#markdown``) of every ``MARKDOWN_SHARE``-th HTML page of the corpus, by a hash of its
    name; their paragraphs are the Markdown page's, so they are not the HTML page's rows."""
    rows = []
    for page, group in html.groupby("page", sort=False):
        name = f"{page}#markdown"
        if zlib.crc32(name.encode("utf-8", "surrogateescape")) % MARKDOWN_SHARE:
            continue
        site = group["site"].iloc[0]
        written = markdown_page(name, site, zip(group["label"], group["text"], group["block"]))
        rows += [(site, name, index, label, text, None) for index, (label, text) in enumerate(written)]
    return pd.DataFrame(rows, columns=["site", "page", "index", "label", "text", "block"])


HEAD_CHARS = 2000


def head_length(texts: pd.Series) -> int:
    """How many of a page's paragraphs its first ~``HEAD_CHARS`` characters hold (the paragraphs that end
    within them, a blank line after each; at least three): the start of a page as pipelines store it."""
    ends = np.cumsum(texts.str.len().to_numpy() + 2)
    return max(3, int(np.searchsorted(ends, HEAD_CHARS, side="right")))


SHORT_BUDGET = 120  # paragraphs: a shortened copy keeps about this many


def shortened(labels: list[str], budget: int = SHORT_BUDGET) -> list[int]:
    """The positions a shortened page keeps: every editorial and promotional paragraph, and of each run of
    navigational ones its first ``cap`` and its last two, with one cap for the whole page, the largest that
    keeps the page within ``budget`` paragraphs (at least one)."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, label in enumerate([*labels, ""]):
        if label == "navigational" and start is None:
            start = i
        elif label != "navigational" and start is not None:
            runs.append((start, i))
            start = None

    def kept(cap: int) -> list[int]:
        drop: set[int] = set()
        for a, b in runs:
            if b - a > cap + 2:
                drop.update(range(a + cap, b - 2))
        return [i for i in range(len(labels)) if i not in drop]

    cap = 1
    while cap < len(labels) and len(kept(cap + 1)) <= budget:  # the kept count grows with the cap
        cap += 1
    return kept(cap)


class CrossValidation(NamedTuple):
    """What grouped cross-validation says of the corpus's own paragraphs: calibrated out-of-fold
    probabilities (columns in the order of the classes) of each page on its own and the labels the balanced
    preset gives them, and the probabilities with site memory (each page in a batch of its site's pages)."""

    probabilities: np.ndarray
    labels: pd.Series
    in_batch: np.ndarray | None = None  # the probabilities with each page in a batch of its site's pages
    told: np.ndarray | None = None  # the rows the site memory tells something of (``told_rows``)


def region_rows(corpus: pd.DataFrame) -> np.ndarray:
    """Rows the article-region expert learns from: the text pages (article regions as scrapers store them)
    and their copies. The article-region crops of full pages are left to the full-page expert: cut from
    HTML, their paragraphs are shaped unlike those of text scrapes, and they made the expert worse on real
    article regions."""
    return ~from_html_pages(corpus)


def from_html_pages(corpus: pd.DataFrame) -> np.ndarray:
    """Rows of HTML pages and of their training copies (whose names keep the page's name and add a suffix):
    by the name's suffix, not by ".html" anywhere in its path (a folder ``site.html-archiv``)."""
    return corpus["page"].str.contains(r"(?i)\.html?(?:#|$)").to_numpy()  # .htm too: read as HTML, so trained


COPY_SUFFIX = r"#(?:text|body|head|short|markdown|menu)(?:#|$)"  # what ``with_training_copies`` adds to a name


def fit_model(corpus: pd.DataFrame, folds: int = 5, jobs: int = 2) -> tuple[DetectorModel, CrossValidation | None]:
    """Fit both experts and the gate on the corpus and its training copies, calibrate them and choose the
    presets; also return what grouped cross-validation says of the corpus's own paragraphs (``None`` without
    folds).

    Each expert's second stage learns from out-of-fold first-stage scores, so it sees scores as they are on
    unseen sites; the same folds give out-of-fold second-stage scores (stacking cross-validation), on which
    each expert's temperature is fitted, and out-of-fold gate weights, with which the thresholds are chosen:
    calibration and presets come from sites the model did not see, as a user's pages are.
    """
    original = len(corpus)
    corpus = with_training_copies(corpus.assign(text=corpus["text"].map(reader_text)))  # as the scorer reads
    everything = np.ones(len(corpus), dtype=bool)
    text_form = corpus["block"].isna().to_numpy()
    regions = region_rows(corpus)
    if folds < 2 or corpus["site"].nunique() < 2:
        experts = [Expert("full pages", fit_stage1(corpus), None)]
        return DetectorModel(experts, Gate(None, np.zeros(0), np.ones(0))), None
    splits = _folds(corpus, folds)
    full, *full_scores = fit_expert("full pages", corpus, everything, everything, splits, jobs)
    region, *region_scores = fit_expert("article regions", corpus, regions, text_form, splits, jobs)
    classes = full.stage1.classes_
    gate, gate_weights = fit_gate(
        corpus,
        splits,
        softmax_rows(full_scores[0] / full.temperature),
        softmax_rows(region_scores[0] / region.temperature),
        classes,
    )
    mixed = text_form & ~np.isnan(gate_weights)
    g = gate_weights[mixed][:, None]
    both = []
    for full_logits, region_logits in zip(full_scores, region_scores):
        probabilities = softmax_rows(full_logits / full.temperature)
        probabilities[mixed] = g * probabilities[mixed] + (1 - g) * softmax_rows(
            region_logits[mixed] / region.temperature
        )
        both.append(probabilities[:original])
    alone, in_batch = both
    truth = corpus["label"].to_numpy()
    thresholds = choose_thresholds(alone, truth[:original], classes)
    told = told_rows(corpus.iloc[:original], site_memories(corpus))
    memory_thresholds = recall_matched_thresholds(alone, in_batch, truth[:original], classes, thresholds, told)
    detector = DetectorModel([full, region], gate, thresholds, memory_thresholds)
    labels = decide(alone, classes, thresholds["balanced"])
    index = corpus.index[:original]
    return detector, CrossValidation(alone, pd.Series(labels, index=index), in_batch, told)


def told_rows(X: pd.DataFrame, memories: dict[str, SiteMemory]) -> np.ndarray:
    """Per row, whether its site's memory tells anything of it (``features.recurring``)."""
    told: list[bool] = []
    for page in page_slices(X):
        memory = memories.get(X["site"].iloc[page.start])
        repeats = memory.shares(X["text"].iloc[page].tolist()) if memory is not None else None
        told.extend(recurring(repeats) or [False] * (page.stop - page.start))
    return np.asarray(told, dtype=bool)


def memory_decide(
    probabilities: np.ndarray,
    classes: np.ndarray,
    thresholds: dict[str, float],
    memory: dict[str, float],
    told: np.ndarray,
    preset: str = "balanced",
) -> np.ndarray:
    """The labels of pages in their site's batch: the rows the memory tells something of by the preset for
    them, the others by the preset for pages on their own."""
    threshold = np.where(told, memory[preset], thresholds[preset])
    return decide(probabilities, classes, threshold)


def fit_expert(
    name: str,
    corpus: pd.DataFrame,
    members: np.ndarray,
    scored: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    jobs: int,
) -> tuple[Expert, np.ndarray, np.ndarray]:
    """An expert trained on the ``members`` rows, and its out-of-fold second-stage scores of the ``scored``
    rows (NaN elsewhere), each page alone and in a batch of its site's pages: in each fold, both stages are
    fitted on the training sites' members and score the test sites' rows."""
    labels = corpus["label"]
    weights = training_weights(corpus)
    logits = np.full((len(corpus), len(LABELS)), np.nan)
    *fold_logits, stage1 = _map(partial(_fold_stage1, corpus, members, scored), [*splits, None], jobs)
    for (_, test_idx), found in zip(splits, fold_logits):
        if found is not None:
            logits[test_idx[scored[test_idx]]] = found
    known = scored & ~np.isnan(logits[:, 0])
    # Every row twice: as a page on its own (no site memory: a single page, or a batch with one page of its
    # site) and as one of a batch of its site's pages; the second stage learns both.
    alone = np.zeros((len(corpus), STAGE2_SIZE))
    alone[known] = stage2_matrix(corpus[known], logits[known])
    in_batch = np.zeros((len(corpus), STAGE2_SIZE))
    in_batch[known] = stage2_matrix(corpus[known], logits[known], site_memories(corpus))
    out = np.full((len(corpus), len(LABELS)), np.nan)
    out_in_batch = out.copy()
    for train_idx, test_idx in splits:
        train = train_idx[members[train_idx] & known[train_idx]]
        test = test_idx[known[test_idx]]
        if labels.iloc[train].nunique() < len(LABELS) or not len(test):
            continue
        stage2 = fit_stage2(*_both(alone, in_batch, labels, weights, train))
        out[test] = stage2.decision_function(alone[test])
        out_in_batch[test] = stage2.decision_function(in_batch[test])
    fit_rows = np.flatnonzero(members & known)
    if labels.iloc[fit_rows].nunique() < len(LABELS):  # too little data for a second stage (tiny corpora)
        return Expert(name, stage1, None), out, out
    stage2 = fit_stage2(*_both(alone, in_batch, labels, weights, fit_rows))
    validated = members & ~np.isnan(out[:, 0])
    truth = labels.to_numpy()[validated]
    temperature = (
        fit_temperature(
            np.vstack([out[validated], out_in_batch[validated]]),
            np.concatenate([truth, truth]),
            stage1.classes_,
            np.concatenate([weights[validated], weights[validated]]),
        )
        if validated.any()
        else 1.0
    )
    return Expert(name, stage1, stage2, temperature), out, out_in_batch


def _both(
    alone: np.ndarray, in_batch: np.ndarray, labels: pd.Series, weights: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, pd.Series, np.ndarray]:
    """The second stage's training rows: each row alone and in its site's batch, at half weight each."""
    truth = labels.iloc[rows]
    return (
        np.vstack([alone[rows], in_batch[rows]]),
        pd.concat([truth, truth], ignore_index=True),
        np.concatenate([weights[rows], weights[rows]]) / 2,
    )


def fit_gate(
    corpus: pd.DataFrame,
    splits: list[tuple[np.ndarray, np.ndarray]],
    full_probabilities: np.ndarray,
    region_probabilities: np.ndarray,
    classes: np.ndarray,
) -> tuple[Gate, np.ndarray]:
    """The gate, trained on text-form pages (one row per page) to pick the expert that reads the page better:
    its target is whether the full-page expert's out-of-fold probabilities give the page's labels a lower
    (class-weighted) log loss than the article-region expert's, and each page counts by how much lower, so
    that pages both experts read alike teach little. A page's shape (its length, runs of short lines) says
    which task it is, but not which expert is right: a short full-page scrape reads like an article region,
    and a long article region of a guide site like a full page; a gate trained on the shape alone sent to the
    article-region expert many text pages that the full-page expert reads better.
    Also its out-of-fold weights for every text-form row (NaN for HTML rows)."""
    text_form = corpus["block"].isna().to_numpy()
    scored = text_form & ~np.isnan(region_probabilities[:, 0])
    pages = [rows for rows in page_slices(corpus) if scored[rows.start]]
    if not pages:  # no text page was scored by both experts out of fold: no gate (and one expert, see train)
        return Gate(None, np.zeros(0), np.ones(0)), np.full(len(corpus), np.nan)
    shapes = np.asarray([page_shape(corpus["text"].iloc[rows].tolist()) for rows in pages])
    index = np.searchsorted(classes, corpus["label"].to_numpy())  # the probabilities' columns: sorted classes
    weights = training_weights(corpus)

    def loss(probabilities: np.ndarray, rows: slice) -> float:
        found = probabilities[np.arange(rows.start, rows.stop), index[rows]]
        return float(-(weights[rows] * np.log(np.clip(found, 1e-9, 1.0))).sum())

    gain = np.asarray([loss(region_probabilities, rows) - loss(full_probabilities, rows) for rows in pages])
    target = (gain > 0).astype(int)
    importance = np.abs(gain) / max(float(np.abs(gain).mean()), 1e-12)
    sites = np.asarray([corpus["site"].iloc[rows.start] for rows in pages])
    mean = shapes.mean(axis=0)
    std = shapes.std(axis=0)
    scale = np.where(std > 1e-12, std, 1.0)
    x = (shapes - mean) / scale

    def fitted(rows: np.ndarray) -> LogisticRegression:
        with threadpool_limits(limits=1):
            return LogisticRegression(C=1.0, max_iter=3000).fit(x[rows], target[rows], importance[rows])

    gate_weights = np.full(len(corpus), np.nan)
    for _, test_idx in splits:
        test_sites = set(corpus["site"].iloc[test_idx])
        in_test = np.asarray([site in test_sites for site in sites])
        if in_test.all() or not in_test.any():
            continue
        if len(set(target[~in_test])) < 2:  # one expert read every training page better: it takes the pages
            for page in np.flatnonzero(in_test):
                gate_weights[pages[page]] = float(target[~in_test][0])
            continue
        model = fitted(~in_test)
        for page in np.flatnonzero(in_test):
            gate_weights[pages[page]] = model.predict_proba(x[page : page + 1])[0, 1]
    if len(set(target)) < 2:
        return Gate(None, mean, scale, float(target[0])), gate_weights
    return Gate(fitted(np.ones(len(pages), dtype=bool)), mean, scale), gate_weights


def fit_temperature(logits: np.ndarray, truth: np.ndarray, classes: np.ndarray, weights: np.ndarray) -> float:
    """The temperature that makes softmax(logits / T) most likely for the true labels (weighted negative log
    likelihood, one parameter: it changes confidence, never the ranking of the classes); rounded, so that it
    does not carry the last bits of the optimiser."""
    from scipy.optimize import minimize_scalar

    index = np.searchsorted(classes, truth)

    def loss(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_probs = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
        return float(-(weights * log_probs[np.arange(len(index)), index]).sum() / weights.sum())

    found = minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded", options={"xatol": 1e-6})
    return round(float(np.exp(found.x)), 4)


THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def choose_thresholds(probabilities: np.ndarray, truth: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """The editorial thresholds of the presets, from out-of-fold probabilities: ``balanced`` gives the best
    editorial F1; ``precision`` the lowest threshold above it at which both leaks are at most half of
    balanced's (else the strictest of the grid); ``recall`` the highest below it at which at most half as many
    editorial paragraphs are lost (else the most lenient)."""
    curve = {float(t): threshold_scores(probabilities, truth, classes, float(t)) for t in THRESHOLD_GRID}
    balanced = max(curve, key=lambda t: (round(curve[t]["editorial_f1"], 6), -abs(t - 0.5)))
    base = curve[balanced]
    strict = [
        t
        for t in curve
        if t >= balanced
        and curve[t]["promotional_leak"] <= base["promotional_leak"] / 2
        and curve[t]["navigational_leak"] <= base["navigational_leak"] / 2
    ]
    lenient = [t for t in curve if t <= balanced and curve[t]["editorial_lost"] <= base["editorial_lost"] / 2]
    return {
        "precision": min(strict) if strict else float(THRESHOLD_GRID[-1]),
        "balanced": balanced,
        "recall": max(lenient) if lenient else float(THRESHOLD_GRID[0]),
    }


def recall_matched_thresholds(
    alone: np.ndarray,
    in_batch: np.ndarray,
    truth: np.ndarray,
    classes: np.ndarray,
    thresholds: dict[str, float],
    told: np.ndarray,
) -> dict[str, float]:
    """The presets' thresholds for the paragraphs site memory tells something of (``told``): for each preset,
    the highest threshold at which those paragraphs in their site's batch keep at least the editorial recall
    the preset gives them on their own (the others read and are decided as without memory). Site memory then
    removes more boilerplate and never costs article: what recurs on a site includes a few editorial lines
    (bylines, agency sign-offs), which the memory alone would push out."""
    matched = {}
    for name, threshold in thresholds.items():
        if not told.any():
            matched[name] = threshold
            continue
        target = threshold_scores(alone[told], truth[told], classes, threshold)["editorial_recall"]
        keeping = [
            float(t)
            for t in THRESHOLD_GRID
            if threshold_scores(in_batch[told], truth[told], classes, float(t))["editorial_recall"] >= target
        ]
        matched[name] = max(keeping) if keeping else float(THRESHOLD_GRID[0])
    return matched


def threshold_scores(probabilities: np.ndarray, truth: np.ndarray, classes: np.ndarray, threshold: float) -> dict:
    """Editorial precision, recall and F1, loss and both leaks of keeping paragraphs whose editorial
    probability reaches ``threshold``."""
    kept = probabilities[:, list(classes).index("editorial")] >= threshold
    editorial = truth == "editorial"
    tp = int((kept & editorial).sum())
    precision = tp / max(int(kept.sum()), 1)
    recall = tp / max(int(editorial.sum()), 1)
    result = {
        "threshold": threshold,
        "kept": int(kept.sum()),  # none: the precision is not a score ("–"), whatever it is set to
        "editorial_precision": precision,
        "editorial_recall": recall,
        "editorial_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "editorial_lost": 1 - recall,
    }
    for label in ("promotional", "navigational"):
        members = truth == label
        result[f"{label}_leak"] = float(kept[members].mean()) if members.any() else 0.0
    return result


def cross_validate(corpus: pd.DataFrame, folds: int = 5) -> pd.Series:
    """Labels of every paragraph predicted by models that never saw its site (the balanced preset)."""
    _, cv = fit_model(corpus, folds)
    if cv is None:
        raise ValueError("grouped cross-validation needs at least two site folders")
    return cv.labels


def fingerprint(*roots: Path) -> str:
    """SHA-256 over the corpus files' sites, page names and bytes, as training sees them (``corpus_pages``):
    two corpora with one fingerprint train one model (it left out the names of several roots and of a page
    directly in its root, which training used)."""
    digest = hashlib.sha256()
    for path, site, page in corpus_pages(*roots):
        digest.update(os.fsencode(site) + b"\0" + os.fsencode(page) + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# The modules whose code decides what training makes of the corpus: a change to any of them needs a retrain.
TRAINING_CODE = (
    "segment.py",
    "markup.py",
    "pages.py",
    "features.py",
    "model.py",
    "workbench/train.py",
    "workbench/markdown.py",
)


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


def train(data: Path | list[Path], out: Path, folds: int = 5, jobs: int = 2) -> dict:
    """Train on one or more corpus folders (a user's own pages beside ``training_data/``), write ``out`` (the
    model) and ``out`` with ``.json`` (its metadata: which data, data and code fingerprints, the model file's
    SHA-256, versions, scores)."""
    from detector.workbench import PINNED_ENVIRONMENT

    roots = [data] if isinstance(data, Path) else list(data)
    missing = [root for root in roots if not root.exists()]
    if missing:
        raise ValueError(f"no such folder: {missing[0]}")
    corpus = load_corpus(*roots)
    if corpus.empty:
        raise ValueError(f"no annotated pages under {', '.join(map(str, roots))}")
    absent = [label for label in LABELS if not (corpus["label"] == label).any()]
    if absent:
        raise ValueError(
            f"the training data has no {' and no '.join(absent)} paragraphs: "
            "the model needs examples of every label"
        )
    fallback = None
    sites = int(corpus["site"].nunique())
    if folds >= 2 and sites >= 2 and not corpus["block"].isna().any():
        # the article-region expert learns from text pages alone: with none it would be fitted on no rows
        # (numpy's warnings, then scikit-learn's refusal, after a minute of work)
        problem = fallback = "no text pages, so no article-region expert: one expert, as --folds 1 trains it"
    else:
        try:
            detector, validation = fit_model(corpus, folds, jobs)
            header, weights = export(detector)
            body = model.model_bytes(header, weights.tolist(), frequent_words(corpus["text"]))
            problem = model.problem_of(body)
        except ValueError as exc:  # scikit-learn: a fold without rows for one expert
            problem = str(exc)
    if problem:  # too few sites or text pages for folds and two experts: one expert, as --folds 1 trains
        fallback = fallback or (
            f"too few sites or text pages for {min(folds, sites)} folds and two experts: one expert, "
            "as --folds 1 trains it"
        )
        detector, validation = fit_model(corpus, 1, jobs)
        header, weights = export(detector)
        body = model.model_bytes(header, weights.tolist(), frequent_words(corpus["text"]))
    cv = rounded(scores(corpus["label"].tolist(), validation.labels.tolist())) if validation is not None else None
    if validation is None and folds >= 2 and fallback is None:
        fallback = "one site folder: no cross-validation, one expert, as --folds 1 trains it"
    metadata = {
        "model_file": out.name,
        "model_sha256": hashlib.sha256(body).hexdigest(),
        "code_fingerprint_sha256": code_fingerprint(),
        "training_data": {
            "folders": [str(root) for root in roots],  # as given: two folders named alike stay two
            "fingerprint_sha256": fingerprint(*roots),
            "pages": int(corpus["page"].nunique()),
            "sites": int(corpus["site"].nunique()),
            "paragraphs": {label: int((corpus["label"] == label).sum()) for label in LABELS},
            "html_pages": int(corpus.loc[corpus["block"].notna(), "page"].nunique()),
            "training_copies_added": int(with_training_copies(corpus)["page"].nunique())
            - int(corpus["page"].nunique()),
            **({"empty_pages": corpus.attrs["empty_pages"]} if corpus.attrs.get("empty_pages") else {}),
            **(
                {"unannotated_pages": corpus.attrs["unannotated_pages"]}
                if corpus.attrs.get("unannotated_pages")
                else {}
            ),
        },
        "grouped_cross_validation": {
            "folds": min(folds, sites) if validation is not None else 1,
            "group": "site folder",
            "scores": cv,
        },
        **({"fallback": fallback} if fallback else {}),
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
    out.parent.mkdir(parents=True, exist_ok=True)
    model.write_atomically({out: body, out.with_suffix(".json"): (json.dumps(metadata, indent=2) + "\n").encode()})
    return metadata
