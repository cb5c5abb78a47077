"""``detector evaluate``: the shipped model's scores on annotated pages, side by side with the tools people
use today (trafilatura, jusText, boilerpy3) and trivial baselines, on the same pages in the same run.

Text mode: every system reads the annotated text pages; the competitors, which read HTML, get each page as
minimal HTML, one ``<p>`` per paragraph. HTML mode: every system reads the original HTML files that sit beside
23 of the dev set's pages; the page is turned into paragraphs by ``detector.markup`` and aligned with the gold
paragraphs by their text (the gold paragraphs are a subsequence of the converted page; paragraphs of the long
navigational runs that were shortened in the gold file count as navigational). A competitor's output is mapped
back to paragraphs: a paragraph counts as kept when its text comes out again.
"""

from __future__ import annotations

import errno
import html
import itertools
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from detector import markup
from detector.api import Decision, label_stream, load_model
from detector.batch import display, host_folder
from detector.features import SiteMemory, recurring
from detector.model import CLASSES
from detector.pages import LABELS, load_corpus, parse_annotated
from detector.workbench.metrics import UNCERTAIN, scores

_SPACE = re.compile(r"\s+")
LONG_WORDS = 12


@dataclass
class SetReport:
    """The scores of every system on one set of annotated pages, with the detector's probabilities (columns
    in the order of ``CLASSES``) and the thresholds of its presets when known."""

    name: str
    description: str
    corpus: pd.DataFrame
    predictions: dict[str, list[str]] = field(default_factory=dict)
    probabilities: np.ndarray | None = None
    thresholds: dict[str, float] | None = None
    # site memory: the rows the memory tells something of, which are decided by ``thresholds`` (the memory's
    # presets), and the presets of the others (those of pages on their own)
    told: np.ndarray | None = None
    plain_thresholds: dict[str, float] | None = None

    def scores(self, system: str) -> dict:
        return scores(self.corpus["label"].tolist(), self.predictions[system])

    def per_group(self, column: str, system: str = "detector") -> pd.DataFrame:
        """Scores per site (or per page), worst first."""
        frame = self.corpus.assign(predicted=self.predictions[system])
        if self.probabilities is not None and system == "detector":
            frame = frame.assign(uncertain=self.probabilities.max(axis=1) < UNCERTAIN)
        rows = []
        for key, group in frame.groupby(column):
            s = scores(group["label"].tolist(), group["predicted"].tolist())
            wrong = float((group["label"] != group["predicted"]).mean())
            rows.append(
                {
                    column: key,
                    "paragraphs": len(group),
                    "errors": wrong,
                    "macro_f1": s["macro_f1"],
                    "editorial_f1": s["editorial"]["f1"],
                    "promotional_leak": s["promotional_leak"],
                    "navigational_leak": s["navigational_leak"],
                    "uncertain": float(group["uncertain"].mean()) if "uncertain" in group else float("nan"),
                }
            )
        return pd.DataFrame(rows).sort_values(["errors", column], ascending=[False, True]).reset_index(drop=True)


class Page(NamedTuple):
    """One page as the systems read it: its paragraphs' texts, and its HTML in HTML mode (else None)."""

    texts: list[str]
    html: str | None


def pages_of(corpus: pd.DataFrame) -> list[Page]:
    """The pages of a corpus table in order; a table with an ``html`` column is in HTML mode."""
    found = []
    for _, group in corpus.groupby("page", sort=False):
        source = group["html"].iloc[0] if "html" in group else None
        found.append(Page(group["text"].tolist(), source if isinstance(source, str) else None))  # NaN: a text page
    return found


def with_page_html(corpus: pd.DataFrame, root: Path) -> pd.DataFrame:
    """The corpus with the HTML of its annotated HTML pages (None for text pages), which the compared tools
    read as they read HTML, as the detector reads their markup: fed one ``<p>`` per paragraph, they lost
    every structure the page had (trafilatura's navigational leak 100 % against 40 % on the page itself)."""
    from detector.markup import decode_html

    if "block" not in corpus or not corpus["block"].notna().any():
        return corpus
    html = {
        page: decode_html((root / page if root.is_dir() else root).read_bytes())
        for page in corpus.loc[corpus["block"].notna(), "page"].unique()
    }
    return corpus.assign(html=[html.get(page) for page in corpus["page"]])


def predict_with_model(
    corpus: pd.DataFrame, model_path: Path | None = None, site_memory: bool = False
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels (balanced preset) and probabilities from the shipped (or given) model, page by page; HTML pages
    with their markup. With ``site_memory``, the pages of each folder are a batch, as ``clean-article`` runs
    one: the memory of the pages beside a page (its own folder, or the nearest folder above it named like a
    host, ``batch.host_folder``; not its site's first folder, which training groups by: a tree of
    ``site/2026/05/`` folders has one memory per month in ``clean-article``) goes with it."""
    scorer = load_model(model_path)
    labels, rows, told_rows = [], [], []
    memories: dict[str, SiteMemory] = {}

    def site(page: str) -> str:
        return host_folder(page, page) or os.path.dirname(page)

    if site_memory:
        for page, group in corpus.groupby("page", sort=False):
            memories.setdefault(site(str(page)), SiteMemory()).add(group["text"].tolist())
    for page, group in corpus.groupby("page", sort=False):
        blocks = group["block"].tolist() if "block" in group and group["block"].iloc[0] is not None else None
        texts = group["text"].tolist()
        memory = memories.get(site(str(page)))
        repeats = memory.shares(texts) if memory else None
        told_rows.extend(recurring(repeats) or [False] * len(texts))
        # window by window, as clean-article labels a page (a page of 6,432 paragraphs scored whole was 0.811
        # editorial F1 here and 0.744 as cleaned)
        for paragraph, _ in label_stream(texts, blocks, scorer, Decision("balanced"), memory=memory):
            labels.append(paragraph.label)
            rows.append([paragraph.probabilities[name] for name in CLASSES])
    return labels, np.asarray(rows).reshape(-1, len(CLASSES)), np.asarray(told_rows, dtype=bool)


def as_html(texts: list[str]) -> str:
    """A page as the minimal HTML the extractors read: one ``<p>`` per paragraph."""
    body = "\n".join(f"<p>{html.escape(t).replace(chr(10), '<br>')}</p>" for t in texts)
    return f'<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"></head><body>{body}</body></html>'


def _collapse(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


_LIST_OR_TABLE = re.compile(r"(?m)^\s*(?:[-*+•] |#{1,6} |\d+\. )|\|")


def _plain(text: str) -> str:
    """Text as an extractor may print it and a paragraph may hold it, compared alike: list and heading marks
    at line starts and table bars dropped (trafilatura prints ``- item`` and ``| a | b |``), soft hyphens
    dropped (trafilatura drops them: the paragraphs of a page that writes ``&shy;`` never counted as printed),
    space collapsed."""
    return _collapse(_LIST_OR_TABLE.sub(" ", text.replace("\u00ad", "")))


def _kept_by_lines(texts: list[str], output: str | None) -> list[str]:
    """Which of a page's paragraphs an extractor's output holds, each piece of the output crediting one
    paragraph (a page with eight "Anzeige" lines leaks one when one is printed): a paragraph is kept when it
    (or its first line) is what is left of a line of the output, or starts it (a heading glued to the next
    paragraph), or, longer than 40 characters, occurs in it, or is a run of whole lines (a byline whose
    ``<br>`` the extractor printed as a line break). The longest paragraphs claim their text first: a menu word
    that begins an article's line ("Stuttgart") took the credit of the line, and the line credited its own
    paragraph too."""
    left = [line for line in map(_plain, (output or "").splitlines()) if line]

    def claim(text: str) -> bool:
        for i, line in enumerate(left):
            if line == text or line.startswith(text + " ") or (len(text) > 40 and text in line):
                at = line.index(text) if line != text else 0
                left[i : i + 1] = [part for part in (line[:at].strip(), line[at + len(text) :].strip()) if part]
                return True
        for i in range(len(left)):  # a run of whole lines, joined
            joined = left[i]
            for j in range(i + 1, min(i + 8, len(left))):
                joined += " " + left[j]
                if joined == text:
                    del left[i : j + 1]
                    return True
                if not text.startswith(joined):
                    break
        return False

    kept = [False] * len(texts)
    for index in sorted(range(len(texts)), key=lambda k: -len(texts[k])):  # the longest first, in page order
        t = texts[index]
        kept[index] = any(claim(c) for c in dict.fromkeys([_plain(t), _plain(t.split("\n")[0])]) if c)
    return ["editorial" if k else "removed" for k in kept]


def _source(page: Page) -> str:
    return page.html if page.html is not None else as_html(page.texts)


def trafilatura_system(favor_precision: bool) -> Callable[[Page], list[str]]:
    import trafilatura

    def run(page: Page) -> list[str]:
        output = trafilatura.extract(
            _source(page),
            favor_precision=favor_precision,
            include_comments=False,
            include_tables=True,
            deduplicate=False,
            with_metadata=False,
        )
        return _kept_by_lines(page.texts, output)

    return run


def justext_system(page: Page) -> list[str]:
    import justext

    found = justext.justext(_source(page).encode("utf-8"), justext.get_stoplist("German"), encoding="utf-8")
    good = "\n".join(p.text for p in found if not p.is_boilerplate)
    return _kept_by_lines(page.texts, good)


def boilerpy3_system(page: Page) -> list[str]:
    from boilerpy3 import extractors

    try:
        output = extractors.ArticleExtractor(raise_on_failure=False).get_content(_source(page))
    except Exception:  # boilerpy3 raises on pages it cannot parse: then it keeps nothing
        output = ""
    return _kept_by_lines(page.texts, output)


def keep_all_system(page: Page) -> list[str]:
    return ["editorial"] * len(page.texts)


def keep_long_system(page: Page) -> list[str]:
    return ["editorial" if len(t.split()) >= LONG_WORDS else "removed" for t in page.texts]


def competitors() -> dict[str, Callable[[Page], list[str]]]:
    """The systems to compare with; the tools only when the ``compare`` extra is installed."""
    systems: dict[str, Callable[[Page], list[str]]] = {}
    try:
        systems["trafilatura (default)"] = trafilatura_system(False)
        systems["trafilatura (favor_precision)"] = trafilatura_system(True)
    except ImportError:
        pass
    try:
        import justext  # noqa: F401

        systems["jusText (German stop-list)"] = justext_system
    except ImportError:
        pass
    try:
        import boilerpy3  # noqa: F401

        systems["boilerpy3 (ArticleExtractor)"] = boilerpy3_system
    except ImportError:
        pass
    systems["keep all"] = keep_all_system
    systems[f"keep paragraphs of {LONG_WORDS}+ words"] = keep_long_system
    return systems


def evaluate_set(
    name: str,
    description: str,
    corpus: pd.DataFrame,
    model_labels: list[str],
    compare: bool = True,
    probabilities: np.ndarray | None = None,
    thresholds: dict[str, float] | None = None,
) -> SetReport:
    report = SetReport(name, description, corpus, {"detector": model_labels}, probabilities, thresholds)
    if compare:
        pages = pages_of(corpus)
        for system, run in competitors().items():
            report.predictions[system] = [label for page in pages for label in run(page)]
    return report


FULL_PAGES = "devset-full-pages"
HEAD = "-head"  # the name of a group's report on the first ~2,000 characters of its pages


def devset_groups(corpus: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The dev set's two groups, which are different tasks: article regions of one site (``finanzen-net/``)
    and full-page scrapes of other sites (every other folder)."""
    one_site = corpus["site"] == "finanzen-net"
    return {
        "devset-finanzen-net": corpus[one_site].reset_index(drop=True),
        FULL_PAGES: corpus[~one_site].reset_index(drop=True),
    }


def heads(corpus: pd.DataFrame) -> pd.DataFrame:
    """Every page cut to its first ~2,000 characters (the paragraphs that end within them, at least three), as
    pipelines that store the start of a page have it: the shape of the ``#head`` copies training adds."""
    from detector.workbench.train import head_length

    parts = [rows.iloc[: head_length(rows["text"])] for _, rows in corpus.groupby("page", sort=False)]
    return pd.concat(parts, ignore_index=True) if parts else corpus


DEVSET_DESCRIPTIONS = {
    "devset-finanzen-net": "real article regions of finanzen.net (../shared/devset/finanzen-net/), shipped model",
    FULL_PAGES: "real full-page scrapes of 20 other sites (../shared/devset/), text mode, shipped model",
    f"{FULL_PAGES}-html": "the same full pages read as HTML (23 files), every converted paragraph, shipped model",
    f"devset-finanzen-net{HEAD}": "the finanzen.net pages cut to their first ~2,000 characters, shipped model",
    f"{FULL_PAGES}{HEAD}": "the full pages as text cut to their first ~2,000 characters, shipped model",
}


def html_corpus(devset: Path) -> pd.DataFrame:
    """The dev set's HTML files as a corpus table in HTML mode: one row per converted paragraph with its gold
    label (navigational where the gold file shortened a run), its markup and the page's HTML."""
    rows = []
    for path in sorted(devset.rglob("*.html")):
        gold_file = path.with_suffix(".txt")
        if not gold_file.exists():
            continue
        source = markup.decode_html(path.read_bytes())
        found = markup.blocks(source)
        labels = align(found, parse_annotated(gold_file.read_text(encoding="utf-8")), path)
        relative = path.relative_to(devset)
        for index, (block, label) in enumerate(zip(found, labels)):
            rows.append((relative.parts[0], str(relative), index, label, block.text, block, source))
    return pd.DataFrame(rows, columns=["site", "page", "index", "label", "text", "block", "html"])


def align(found: list[markup.Block], gold: list, path: Path) -> list[str]:
    """The gold label of every converted paragraph: gold paragraphs are matched in order by their text."""
    labels = ["navigational"] * len(found)
    position = 0
    for paragraph in gold:
        while position < len(found) and found[position].text != paragraph.text:
            position += 1
        if position == len(found):
            raise ValueError(f"{path}: gold paragraph not found in the converted page: {paragraph.text[:60]!r}")
        labels[position] = paragraph.label
        position += 1
    return labels


def model_named(path: Path) -> str:
    """A model file as a report names it: its path and the start of its SHA-256, so that two models written
    to one path in turn are told apart."""
    import hashlib

    return f"model {path} (SHA-256 {hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]})"


def evaluate(
    paths: list[Path],
    training_data: Path,
    devset: Path,
    model_path: Path | None = None,
    compare: bool = True,
    folds: int = 5,
) -> list[SetReport]:
    """Score the given annotated sets; with none, ``training_data`` by grouped cross-validation and the dev
    set (when it exists, per group and in HTML mode) with the shipped model."""
    reports = []
    if paths:
        for path in paths:
            corpus = load_corpus(path)
            if corpus.empty:
                raise ValueError(f"{path}: no annotated page (.txt, .html or .htm with labels) in it")
            for empty in corpus.attrs.get("empty_pages", []):
                sys.stderr.write(f"note: {empty}: left out (a page without a paragraph)\n")
            for original in corpus.attrs.get("unannotated_pages", []):
                sys.stderr.write(
                    f"note: {original}: left out (no data-label holds a label: not an annotated page)\n"
                )
            if compare:
                corpus = with_page_html(corpus, path)
            labels, probabilities, _ = predict_with_model(corpus, model_path)
            thresholds = dict(load_model(model_path).thresholds)
            name = path.resolve().name or str(path)  # "." is named after the folder it means
            scored = f"{path}, " + (model_named(model_path) if model_path is not None else "shipped model")
            reports.append(evaluate_set(name, scored, corpus, labels, compare, probabilities, thresholds))
            reports.append(memory_report(name, scored, corpus, model_path))
        return reports
    from detector.workbench.train import fit_model, memory_decide

    corpus = load_corpus(training_data)
    detector, cv = fit_model(corpus, folds)
    if cv is None:
        raise ValueError("grouped cross-validation needs at least two site folders")
    labels = cv.labels.tolist()
    description = f"{training_data.name}/, {folds}-fold cross-validation grouped by site folder"
    reports.append(
        evaluate_set("training_data", description, corpus, labels, False, cv.probabilities, detector.thresholds)
    )
    if cv.in_batch is not None and cv.told is not None:
        told = np.asarray(cv.told, dtype=bool)
        memory = detector.site_memory_thresholds
        report = evaluate_set(
            f"training_data{MEMORY}",
            f"{description}, each site folder as a batch (site memory)",
            corpus,
            list(memory_decide(cv.in_batch, detector.classes_, detector.thresholds, memory, told)),
            False,
            cv.in_batch,
            memory,
        )
        report.told, report.plain_thresholds = told, detector.thresholds
        reports.append(report)
    is_html = corpus["block"].notna().to_numpy()
    if compare:
        corpus = with_page_html(corpus, training_data)
    for name, part in (("training_data-text-pages", ~is_html), ("training_data-html-pages", is_html)):
        kind = "text pages (article regions)" if name.endswith("text-pages") else "HTML pages (full pages)"
        reports.append(
            evaluate_set(
                name,
                f"{description}: its {kind}",
                corpus[part].reset_index(drop=True),
                [label for label, keep in zip(labels, part) if keep],
                compare,
                cv.probabilities[part],
                detector.thresholds,
            )
        )
    reports.extend(evaluate_devset(devset, model_path, compare))
    return reports


def evaluate_devset(devset: Path, model_path: Path | None = None, compare: bool = True) -> list[SetReport]:
    """The dev set's groups scored with the shipped (or given) model, its HTML files in HTML mode, and its
    text groups cut to the start of their pages; nothing when the dev set is absent."""
    if not devset.exists():
        return []
    thresholds = dict(load_model(model_path).thresholds)
    reports = []
    groups = devset_groups(load_corpus(devset, suffixes=(".txt",)))
    html = html_corpus(devset)
    if not html.empty:
        groups[f"{FULL_PAGES}-html"] = html
    groups |= {name + HEAD: heads(groups[name]) for name in ("devset-finanzen-net", FULL_PAGES)}
    for name, corpus in groups.items():
        labels, probabilities, _ = predict_with_model(corpus, model_path)
        described = DEVSET_DESCRIPTIONS[name]
        if model_path is not None:
            described = described.replace("shipped model", model_named(model_path))
        reports.append(evaluate_set(name, described, corpus, labels, compare, probabilities, thresholds))
        reports.append(memory_report(name, described, corpus, model_path))
    return reports


def memory_report(name: str, described: str, corpus: pd.DataFrame, model_path: Path | None) -> SetReport:
    """A set scored as ``clean-article`` cleans a folder: with the memory of the pages beside each page, and
    each paragraph decided by the presets for what the memory tells something of, or by those of a page on
    its own (its presets table too: it showed the memory's thresholds applied to every paragraph)."""
    labels, probabilities, told = predict_with_model(corpus, model_path, site_memory=True)
    scorer = load_model(model_path)
    description = f"{described}, each site folder as a batch (site memory)"
    report = evaluate_set(
        f"{name}{MEMORY}", description, corpus, labels, False, probabilities, dict(scorer.site_memory_thresholds)
    )
    report.told, report.plain_thresholds = told, dict(scorer.thresholds)
    return report


MEMORY = "-site-memory"  # the name of a set's report with site memory


# ---------------------------------------------------------------------------------------------------------
# The knob, calibration and page flags

CURVE = [round(float(t), 2) for t in np.arange(0.05, 0.96, 0.05)]


def curve_rows(report: SetReport) -> list[dict]:
    """Editorial precision and recall and both leaks when paragraphs are kept at each threshold of their
    editorial probability (``CURVE`` and the presets)."""
    from detector.workbench.train import threshold_scores

    assert report.probabilities is not None
    truth = report.corpus["label"].to_numpy()
    classes = np.asarray(CLASSES)
    points = sorted(set(CURVE) | set((report.thresholds or {}).values()))
    return [threshold_scores(report.probabilities, truth, classes, t) for t in points]


def preset_rows(report: SetReport) -> list[list[str]]:
    """Per preset, what keeping at its threshold gives; "–" where the gold has no paragraph of the label. With
    site memory, each paragraph is kept at the threshold it is decided by (the memory's where the memory
    tells something of it, else that of a page on its own), as ``clean-article`` keeps it."""
    from detector.workbench.train import threshold_scores

    rows = []
    curve = {row["threshold"]: row for row in curve_rows(report)}
    gold = set(report.corpus["label"])
    for preset, t in sorted((report.thresholds or {}).items(), key=lambda item: item[1]):
        row, shown = curve[t], f"{t:.2f}"
        if report.told is not None and report.plain_thresholds is not None:
            plain = report.plain_thresholds[preset]
            assert report.probabilities is not None
            per_row = np.where(report.told, t, plain)
            truth = report.corpus["label"].to_numpy()
            row = threshold_scores(report.probabilities, truth, np.asarray(CLASSES), per_row)  # type: ignore[arg-type]
            shown = f"{t:.2f} / {plain:.2f}"
        editorial = "editorial" in gold
        rows.append(
            [
                preset,
                shown,
                # nothing kept: 0 where the gold has article, as the headline and the per-label table show it
                f"{row['editorial_precision']:.3f}" if row.get("kept", 1) else ("0.000" if editorial else "–"),
                f"{row['editorial_recall']:.3f}" if editorial else "–",
                _pct(row["editorial_lost"]) if editorial else "–",
                _pct(row["promotional_leak"]) if "promotional" in gold else "–",
                _pct(row["navigational_leak"]) if "navigational" in gold else "–",
            ]
        )
    return rows


PRESET_HEADER = ["preset", "threshold", "editorial P", "editorial R", "lost", "promo leak", "nav leak"]


def calibration(report: SetReport, bins: int = 10) -> tuple[float, list[list[str]]]:
    """Expected calibration error of the probability of the most likely label (``bins`` equal-width bins,
    weighted by their size), and the reliability table behind it."""
    assert report.probabilities is not None
    confidence = report.probabilities.max(axis=1)
    predicted = np.asarray(CLASSES)[report.probabilities.argmax(axis=1)]
    correct = predicted == report.corpus["label"].to_numpy()
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    rows = []
    for lo, hi in itertools.pairwise(edges):
        members = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence <= hi)
        if not members.any():
            continue
        mean_confidence, accuracy = float(confidence[members].mean()), float(correct[members].mean())
        error += members.sum() / len(confidence) * abs(mean_confidence - accuracy)
        rows.append([f"{lo:.1f}–{hi:.1f}", str(int(members.sum())), f"{mean_confidence:.3f}", f"{accuracy:.3f}"])
    return error, rows


def _paragraphs(texts: list[str], labels: list[str], probabilities: np.ndarray) -> list:
    from detector.api import Paragraph

    return [
        Paragraph(i, text, label, dict(zip(CLASSES, map(float, probs))))
        for i, (text, label, probs) in enumerate(zip(texts, labels, probabilities))
    ]


def flag_rows(report: SetReport) -> list[list[str]]:
    """Precision and recall of each page flag. The truth is the page's kind where its file name says it in
    training_data (``advertorial-…``, ``stub-…``, ``overview-…``: pages written for the flags), else the flags
    that the gold labels give; the prediction is the flags that the predicted labels give."""
    from detector.api import FLAGS, verdict

    kinds = {"advertorial": "advertorial", "stub": "teaser_only", "overview": "no_article"}
    assert report.probabilities is not None
    frame = report.corpus.assign(predicted=report.predictions["detector"])
    counts = {flag: [0, 0, 0] for flag in FLAGS}  # true positives, predicted, true
    offset = 0
    for page, group in frame.groupby("page", sort=False):
        probabilities = report.probabilities[offset : offset + len(group)]
        offset += len(group)
        texts = group["text"].tolist()
        gold = _paragraphs(texts, group["label"].tolist(), probabilities)
        predicted = _paragraphs(texts, group["predicted"].tolist(), probabilities)
        # the team's corpus names its pages written for the flags by their kind; a user's folder whose name
        # begins alike (training_data_mine/) is judged by its labels
        team = report.name.removesuffix(MEMORY) in (
            "training_data",
            "training_data-text-pages",
            "training_data-html-pages",
        )
        stem = Path(str(page)).name.split("-", 1)[0] if team else ""
        truth = {kinds[stem]} if stem in kinds else set(verdict(gold)["flags"])
        found = set(verdict(predicted)["flags"])
        for flag in FLAGS:
            counts[flag][0] += flag in truth and flag in found
            counts[flag][1] += flag in found
            counts[flag][2] += flag in truth
    rows = []
    for flag, (hits, flagged, true) in counts.items():
        precision = f"{hits / flagged:.3f}" if flagged else "–"
        recall = f"{hits / true:.3f}" if true else "–"
        rows.append([flag, str(true), str(flagged), precision, recall])
    return rows


# ---------------------------------------------------------------------------------------------------------
# Rendering


def _pct(value: float | None) -> str:
    """A share as a percentage; '–' where the paragraphs cannot give it (None, or NaN in a table)."""
    return "–" if value is None or value != value else f"{value:.1%}"


def _num(value: float | None) -> str:
    """A score with three decimals; '–' where the paragraphs cannot give it."""
    return "–" if value is None or value != value else f"{value:.3f}"


def headline_rows(report: SetReport) -> list[list[str]]:
    rows = []
    for system in report.predictions:
        s = report.scores(system)
        e = s["editorial"]
        macro = _num(s["macro_f1"]) if system == "detector" else "–"
        rows.append(
            [
                system,
                _num(e["precision"]),
                _num(e["recall"]),
                _num(e["f1"]),
                _pct(s["promotional_leak"]),
                _pct(s["navigational_leak"]),
                macro,
            ]
        )
    return rows


HEADLINE = [
    "system",
    "editorial P",
    "editorial R",
    "editorial F1",
    "promotional leak",
    "navigational leak",
    "macro-F1",
]


def label_rows(report: SetReport) -> list[list[str]]:
    s = report.scores("detector")
    return [
        [
            label,
            _num(s[label]["precision"]),
            _num(s[label]["recall"]),
            _num(s[label]["f1"]),
            str(s[label]["support"]),
        ]
        for label in LABELS
    ]


def confusion_rows(report: SetReport) -> list[list[str]]:
    s = report.scores("detector")
    return [[f"true {a}"] + [str(v) for v in row] for a, row in zip(LABELS, s["confusion"])]


GROUP_ROWS = 15  # the per-site (or per-page) table's rows, worst first


def group_rows(report: SetReport, column: str, limit: int) -> list[list[str]]:
    table = report.per_group(column).head(limit)
    return [
        [
            str(r[column]),
            str(r["paragraphs"]),
            _pct(r["errors"]),
            _num(r["editorial_f1"]),
            _pct(r["promotional_leak"]),
            _pct(r["navigational_leak"]),
            _pct(r["uncertain"]) if r["uncertain"] == r["uncertain"] else "",
        ]
        for _, r in table.iterrows()
    ]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded by characters, names composed first (a name written decomposed, as macOS writes them,
    counted its umlaut twice and shifted its row)."""
    header, rows = _composed(header), [_composed(row) for row in rows]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _composed(cells: list[str]) -> list[str]:
    import unicodedata

    return [unicodedata.normalize("NFC", str(cell)) for cell in cells]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    cell = lambda value: str(value).replace("|", "\\|")  # noqa: E731  # a site named "a|b" keeps its row
    out = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(out)


def _sections(report: SetReport) -> list[tuple[str, list[str], list[list[str]]]]:
    pages = report.corpus["page"].nunique()
    sites = report.corpus["site"].nunique()
    group = "site" if sites > 1 else "page"
    sections = [
        (
            f"{report.name}: {report.description} ({pages} page{'s' if pages != 1 else ''}, "
            f"{len(report.corpus)} paragraph{'s' if len(report.corpus) != 1 else ''})",
            HEADLINE,
            headline_rows(report),
        ),
        ("detector per label", ["label", "precision", "recall", "F1", "support"], label_rows(report)),
        ("detector confusion matrix (rows true, columns predicted)", ["", *LABELS], confusion_rows(report)),
        (
            f"detector per {group}, worst first"
            + (
                f" ({GROUP_ROWS} of {count} shown)"
                if (count := report.corpus[group].nunique()) > GROUP_ROWS
                else ""
            ),
            [group, "paragraphs", "errors", "editorial F1", "promo leak", "nav leak", f"p < {UNCERTAIN}"],
            group_rows(report, group, GROUP_ROWS),
        ),
    ]
    if report.probabilities is not None:
        ece, reliability = calibration(report)
        sections += [
            (
                "detector presets (keep a paragraph when its editorial probability reaches the threshold"
                + (
                    ": the first where the site memory tells something of the paragraph, the second elsewhere)"
                    if report.told is not None
                    else ")"
                ),
                PRESET_HEADER,
                preset_rows(report),
            ),
            (
                f"detector calibration: expected calibration error {ece:.3f} (most likely label, 10 bins)",
                ["confidence", "paragraphs", "mean confidence", "accuracy"],
                reliability,
            ),
            (
                "detector page flags",
                ["flag", "true pages", "flagged pages", "precision", "recall"],
                flag_rows(report),
            ),
        ]
    return sections


def render_text(reports: list[SetReport]) -> str:
    return "\n\n".join(f"{title}\n{text_table(h, rows)}" for r in reports for title, h, rows in _shown(r))


def _shown(report: SetReport) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's sections with page and folder names printable on one line (``\\xNN`` for bytes that are not
    UTF-8 and for control characters, as the command line shows them)."""
    return [
        (display(title), header, [[display(cell) for cell in row] for row in rows])
        for title, header, rows in _sections(report)
    ]


REPORT_SIGNATURE = "# Evaluation\n\nWritten by `detector evaluate`."  # how a report of ours begins


def earlier_report_problem(out_dir: Path) -> str | None:
    """Why ``out_dir`` cannot take a report (its ``evaluation.md`` is not one of ours: writing would replace
    the user's file and delete the pictures it links), or None."""
    path = out_dir / "evaluation.md"
    if not path.exists() and not path.is_symlink():
        return None
    try:
        with open(path, "rb") as earlier:
            start = earlier.read(len(REPORT_SIGNATURE.encode()))
    except OSError as exc:
        return f"cannot read {path}: {(exc.strerror or str(exc)).lower()}"
    if path.is_symlink() or not path.is_file() or start != REPORT_SIGNATURE.encode():
        return f"{path} was not written by detector evaluate: give the report a folder of its own"
    return None


def write_markdown(reports: list[SetReport], out_dir: Path) -> Path:
    """Write ``evaluation.md`` and its pictures (when matplotlib is installed) into ``out_dir``; the pictures
    of an earlier report there that the new one does not draw again are deleted once the new one stands."""
    out_dir.mkdir(parents=True, exist_ok=True)
    earlier = _earlier_pictures(out_dir / "evaluation.md")
    parts = [
        "# Evaluation",
        "",
        "Written by `detector evaluate`. Leak: share of the paragraphs of that label "
        "that end up in the cleaned article. In text mode the competitors read each page as minimal HTML "
        "(one `<p>` per paragraph); in HTML mode they read the original HTML file.",
        "",
    ]
    stems: set[str] = set()
    # The pictures are drawn into a folder of their own and put in place once the report stands: a run that
    # failed half-way left the old report beside new pictures of another set
    staging = out_dir / f".pictures.tmp{os.getpid()}"
    staging.mkdir(exist_ok=True)
    path = out_dir / "evaluation.md"
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        for report in reports:
            for level, (title, header, rows) in enumerate(_shown(report)):
                parts += [f"{'##' if level == 0 else '###'} {title}", "", markdown_table(header, rows), ""]
            # the pictures' names: short, of letters, digits, "." and "-" (a link with a space or a parenthesis
            # did not show), one per set (a stem made unique by a number could be another set's)
            base = re.sub(r"[^\w.-]+", "-", _printable(display(report.name)))[:80].strip("-.") or "set"
            stem, number = base, 1
            while stem in stems:
                number += 1
                stem = f"{base}-{number}"
            stems.add(stem)
            for picture in (_plot(report, staging, stem), _plot_knob(report, staging, stem)):
                if picture:
                    parts += [f"![{picture.stem}]({picture.name})", ""]
                    earlier.discard(picture.name)
        temporary.write_text(_printable("\n".join(parts)), encoding="utf-8")
        for picture in staging.iterdir():  # a picture that cannot be put in place fails the run before the report
            if (out_dir / picture.name).is_dir():
                raise IsADirectoryError(errno.EISDIR, "a folder where a picture goes", str(out_dir / picture.name))
        os.replace(temporary, path)
        for picture in staging.iterdir():
            os.replace(picture, out_dir / picture.name)
    finally:
        temporary.unlink(missing_ok=True)
        for left in staging.iterdir():
            left.unlink()
        staging.rmdir()
    for name in earlier:  # beside the new report they would pass for current ones
        (out_dir / name).unlink(missing_ok=True)
    return path


def _earlier_pictures(report: Path) -> set[str]:
    """The pictures an earlier ``evaluation.md`` of ours in the folder links (only those, by name)."""
    try:
        earlier = report.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    if not earlier.startswith(REPORT_SIGNATURE):
        return set()
    return set(re.findall(r"!\[[^\]\n]*\]\(([^()/\\\n]+\.png)\)", earlier))


def _drawn(text: str) -> str:
    """A name as matplotlib draws it: printable, and a "$" a dollar sign, not the start of a formula (a page
    named ``preis-$^$-x`` failed the report)."""
    return _printable(text).replace("$", r"\$")


def _printable(text: str) -> str:
    """Bytes of a file name that are not UTF-8 (surrogates in a str) as ``\\xNN``, as the command line shows
    them: they cannot be written as UTF-8, nor drawn."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _plot(report: SetReport, out_dir: Path, stem: str) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    s = report.scores("detector")
    group = "site" if report.corpus["site"].nunique() > 1 else "page"
    table = report.per_group(group).head(20)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1, 1.6]})
    matrix = s["confusion"]
    left.imshow(matrix, cmap="Blues")
    left.set_xticks(range(3), LABELS, rotation=20)
    left.set_yticks(range(3), LABELS)
    left.set_xlabel("predicted")
    left.set_ylabel("true")
    for i in range(3):
        for j in range(3):
            left.text(j, i, str(matrix[i][j]), ha="center", va="center")
    left.set_title(f"{_drawn(report.name)}: confusion matrix")
    names = [_drawn(Path(str(n)).stem[:45]) for n in table[group]][::-1]
    right.barh(range(len(names)), list(table["errors"])[::-1], color="tab:red")
    right.set_yticks(range(len(names)), names)
    right.set_xlabel("share of paragraphs labelled wrongly")
    right.set_title(f"worst {len(table)} by {group}")
    right.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    path = out_dir / f"evaluation-{stem}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _plot_knob(report: SetReport, out_dir: Path, stem: str) -> Path | None:
    """The precision/recall curve of "kept as article" against the threshold, with the presets marked, and
    the reliability diagram of the probabilities."""
    if report.probabilities is None:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = curve_rows(report)
    t = [r["threshold"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    left.plot(t, [r["editorial_precision"] for r in rows], label="editorial precision")
    left.plot(t, [r["editorial_recall"] for r in rows], label="editorial recall")
    left.plot(t, [r["promotional_leak"] for r in rows], label="promotional leak")
    left.plot(t, [r["navigational_leak"] for r in rows], label="navigational leak")
    for preset, value in (report.thresholds or {}).items():
        left.axvline(value, color="grey", linestyle=":")
        left.text(value, 0.3, f" {preset}", rotation=90, color="grey")
    left.set_xlabel("editorial probability needed to keep a paragraph")
    left.set_title(f"{_drawn(report.name)}: kept as article")
    left.legend(loc="center right")
    ece, reliability = calibration(report)
    confidence = [float(r[2]) for r in reliability]
    accuracy = [float(r[3]) for r in reliability]
    right.plot([0, 1], [0, 1], color="grey", linestyle=":")
    right.plot(confidence, accuracy, marker="o")
    right.set_xlabel("mean probability of the most likely label (10 bins)")
    right.set_ylabel("share correct")
    right.set_title(f"reliability, expected calibration error {ece:.3f}")
    fig.tight_layout()
    path = out_dir / f"knob-{stem}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
