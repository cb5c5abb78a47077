"""``detector evaluate``: the shipped model's scores on annotated pages, side by side with the tools people
use today (trafilatura, jusText) and trivial baselines, on the same pages in the same run.

Each competitor gets the page as minimal HTML, one ``<p>`` per paragraph, and its output is mapped back to
paragraphs: a paragraph counts as kept when its text comes out again.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from detector.api import load_model
from detector.pages import LABELS, load_corpus
from detector.workbench.metrics import scores

_SPACE = re.compile(r"\s+")
LONG_WORDS = 12


@dataclass
class SetReport:
    """The scores of every system on one set of annotated pages."""

    name: str
    description: str
    corpus: pd.DataFrame
    predictions: dict[str, list[str]] = field(default_factory=dict)

    def scores(self, system: str) -> dict:
        return scores(self.corpus["label"].tolist(), self.predictions[system])

    def per_group(self, column: str, system: str = "detector") -> pd.DataFrame:
        """Scores per site (or per page), worst first."""
        frame = self.corpus.assign(predicted=self.predictions[system])
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
                }
            )
        return pd.DataFrame(rows).sort_values(["errors", column], ascending=[False, True]).reset_index(drop=True)


def _pages(corpus: pd.DataFrame) -> list[list[str]]:
    return [group["text"].tolist() for _, group in corpus.groupby("page", sort=False)]


def predict_with_model(corpus: pd.DataFrame, model_path: Path | None = None) -> list[str]:
    """Labels from the shipped (or given) model, page by page."""
    scorer = load_model(model_path)
    labels = []
    for texts in _pages(corpus):
        for probs in scorer.probabilities(texts):
            labels.append(scorer.classes[max(range(len(probs)), key=probs.__getitem__)])
    return labels


def as_html(texts: list[str]) -> str:
    """A page as the minimal HTML the extractors read: one ``<p>`` per paragraph."""
    body = "\n".join(f"<p>{html.escape(t).replace(chr(10), '<br>')}</p>" for t in texts)
    return f'<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"></head><body>{body}</body></html>'


def _collapse(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _kept_by_lines(texts: list[str], output: str | None) -> list[str]:
    lines = {_collapse(line) for line in (output or "").splitlines()}
    whole = _collapse(output or "")
    labels = []
    for t in texts:
        collapsed = _collapse(t)
        first = _collapse(t.split("\n")[0])
        kept = collapsed in lines or first in lines or (len(collapsed) > 40 and collapsed in whole)
        labels.append("editorial" if kept and collapsed else "removed")
    return labels


def trafilatura_system(favor_precision: bool) -> Callable[[list[str]], list[str]]:
    import trafilatura

    def run(texts: list[str]) -> list[str]:
        output = trafilatura.extract(
            as_html(texts),
            favor_precision=favor_precision,
            include_comments=False,
            include_tables=True,
            deduplicate=False,
            with_metadata=False,
        )
        return _kept_by_lines(texts, output)

    return run


def justext_system(texts: list[str]) -> list[str]:
    import justext

    found = justext.justext(as_html(texts).encode("utf-8"), justext.get_stoplist("German"), encoding="utf-8")
    good = "\n".join(p.text for p in found if not p.is_boilerplate)
    return _kept_by_lines(texts, good)


def keep_all_system(texts: list[str]) -> list[str]:
    return ["editorial"] * len(texts)


def keep_long_system(texts: list[str]) -> list[str]:
    return ["editorial" if len(t.split()) >= LONG_WORDS else "removed" for t in texts]


def competitors() -> dict[str, Callable[[list[str]], list[str]]]:
    """The systems to compare with; trafilatura and jusText only when the ``compare`` extra is installed."""
    systems: dict[str, Callable[[list[str]], list[str]]] = {}
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
    systems["keep all"] = keep_all_system
    systems[f"keep paragraphs of {LONG_WORDS}+ words"] = keep_long_system
    return systems


def evaluate_set(
    name: str, description: str, corpus: pd.DataFrame, model_labels: list[str], compare: bool = True
) -> SetReport:
    report = SetReport(name, description, corpus, {"detector": model_labels})
    if compare:
        pages = _pages(corpus)
        for system, run in competitors().items():
            report.predictions[system] = [label for texts in pages for label in run(texts)]
    return report


def devset_groups(corpus: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The dev set's two groups, which are different tasks: article regions of one site (``finanzen-net/``)
    and full-page scrapes of other sites (every other folder)."""
    one_site = corpus["site"] == "finanzen-net"
    return {
        "devset-finanzen-net": corpus[one_site].reset_index(drop=True),
        "devset-full-pages": corpus[~one_site].reset_index(drop=True),
    }


DEVSET_DESCRIPTIONS = {
    "devset-finanzen-net": "real article regions of finanzen.net (../shared/devset/finanzen-net/), shipped model",
    "devset-full-pages": "real full-page scrapes of 20 other sites (../shared/devset/), shipped model",
}


def evaluate(
    paths: list[Path],
    training_data: Path,
    devset: Path,
    model_path: Path | None = None,
    compare: bool = True,
    folds: int = 5,
) -> list[SetReport]:
    """Score the given annotated sets; with none, ``training_data`` by grouped cross-validation and the dev
    set (when it exists, per group) with the shipped model."""
    reports = []
    if paths:
        for path in paths:
            corpus = load_corpus(path)
            reports.append(
                evaluate_set(path.name, f"{path}", corpus, predict_with_model(corpus, model_path), compare)
            )
        return reports
    from detector.workbench.train import cross_validate

    corpus = load_corpus(training_data)
    cv = cross_validate(corpus, folds).tolist()
    description = f"{training_data.name}/, {folds}-fold cross-validation grouped by site folder"
    reports.append(evaluate_set("training_data", description, corpus, cv, compare))
    reports.extend(evaluate_devset(devset, model_path, compare))
    return reports


def evaluate_devset(devset: Path, model_path: Path | None = None, compare: bool = True) -> list[SetReport]:
    """The dev set's groups scored with the shipped (or given) model; nothing when the dev set is absent."""
    if not devset.exists():
        return []
    reports = []
    for name, corpus in devset_groups(load_corpus(devset, suffixes=(".txt",))).items():
        labels = predict_with_model(corpus, model_path)
        reports.append(evaluate_set(name, DEVSET_DESCRIPTIONS[name], corpus, labels, compare))
    return reports


# ---------------------------------------------------------------------------------------------------------
# Rendering


def _pct(value: float) -> str:
    return f"{value:.1%}"


def headline_rows(report: SetReport) -> list[list[str]]:
    rows = []
    for system in report.predictions:
        s = report.scores(system)
        e = s["editorial"]
        macro = f"{s['macro_f1']:.3f}" if system == "detector" else "–"
        rows.append(
            [
                system,
                f"{e['precision']:.3f}",
                f"{e['recall']:.3f}",
                f"{e['f1']:.3f}",
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
            f"{s[label]['precision']:.3f}",
            f"{s[label]['recall']:.3f}",
            f"{s[label]['f1']:.3f}",
            str(s[label]["support"]),
        ]
        for label in LABELS
    ]


def confusion_rows(report: SetReport) -> list[list[str]]:
    s = report.scores("detector")
    return [[f"true {a}"] + [str(v) for v in row] for a, row in zip(LABELS, s["confusion"])]


def group_rows(report: SetReport, column: str, limit: int) -> list[list[str]]:
    table = report.per_group(column).head(limit)
    return [
        [
            str(r[column]),
            str(r["paragraphs"]),
            _pct(r["errors"]),
            f"{r['editorial_f1']:.3f}",
            _pct(r["promotional_leak"]),
            _pct(r["navigational_leak"]),
        ]
        for _, r in table.iterrows()
    ]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _sections(report: SetReport) -> list[tuple[str, list[str], list[list[str]]]]:
    pages = report.corpus["page"].nunique()
    sites = report.corpus["site"].nunique()
    group = "site" if sites > 1 else "page"
    return [
        (
            f"{report.name}: {report.description} ({pages} pages, {len(report.corpus)} paragraphs)",
            HEADLINE,
            headline_rows(report),
        ),
        ("detector per label", ["label", "precision", "recall", "F1", "support"], label_rows(report)),
        ("detector confusion matrix (rows true, columns predicted)", ["", *LABELS], confusion_rows(report)),
        (
            f"detector per {group}, worst first",
            [group, "paragraphs", "errors", "editorial F1", "promo leak", "nav leak"],
            group_rows(report, group, 15),
        ),
    ]


def render_text(reports: list[SetReport]) -> str:
    return "\n\n".join(f"{title}\n{text_table(h, rows)}" for r in reports for title, h, rows in _sections(r))


def write_markdown(reports: list[SetReport], out_dir: Path) -> Path:
    """Write ``evaluation.md`` and its pictures (when matplotlib is installed) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [
        "# Evaluation",
        "",
        "Written by `detector evaluate`. Leak: share of the paragraphs of that label "
        "that end up in the cleaned article. Competitors read each page as minimal HTML "
        "(one `<p>` per paragraph).",
        "",
    ]
    for report in reports:
        for level, (title, header, rows) in enumerate(_sections(report)):
            parts += [f"{'##' if level == 0 else '###'} {title}", "", markdown_table(header, rows), ""]
        picture = _plot(report, out_dir)
        if picture:
            parts += [f"![{report.name}]({picture.name})", ""]
    path = out_dir / "evaluation.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _plot(report: SetReport, out_dir: Path) -> Path | None:
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
    left.set_title(f"{report.name}: confusion matrix")
    names = [Path(str(n)).stem[:45] for n in table[group]][::-1]
    right.barh(range(len(names)), list(table["errors"])[::-1], color="tab:red")
    right.set_yticks(range(len(names)), names)
    right.set_xlabel("share of paragraphs labelled wrongly")
    right.set_title(f"worst {len(table)} by {group}")
    right.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    path = out_dir / f"evaluation-{report.name}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
