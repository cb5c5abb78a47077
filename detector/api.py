"""The public API: label the paragraphs of a page, keep the article, render the result.

``classify``, ``clean`` and their HTML twins ``classify_html``, ``clean_html`` are what other Python code calls
(``from detector import clean``); the CLI is a thin layer over them and over ``render``.
"""

from __future__ import annotations

import html as html_escape
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from detector import markup
from detector import model as model_file
from detector.pages import LABELS, LabelledParagraph, format_annotated
from detector.segment import normalise_newlines, split_paragraphs

FORMATS = ("text", "annotated", "json", "html", "explain")
_loaded: dict[str, model_file.Scorer] = {}


class Paragraph(NamedTuple):
    """A paragraph of a page with its predicted label and the probability of each label."""

    index: int  # type: ignore[assignment]  # (shadows tuple.index, as the namedtuple before it did)
    text: str
    label: str
    probabilities: dict[str, float]
    tag: str = ""  # for HTML input: the block element that held the paragraph ("p", "h2", "li" ...)
    decided_by: str = "model"  # or "rule:<name>" when one of the user's rules decided it


def load_model(path: Path | str | None = None) -> model_file.Scorer:
    """The model at ``path``, or the shipped model; each file is loaded once per process, not once per page."""
    key = str(path) if path is not None else ""
    if key not in _loaded:
        _loaded[key] = model_file.load(path)
    return _loaded[key]


class Decision(NamedTuple):
    """How a paragraph is labelled: by a preset (``favor``: precision, balanced or recall, whose thresholds
    grouped cross-validation chose and the model file holds) or by a threshold of one's own
    (``min_editorial``: a paragraph is editorial when its editorial probability is at least this)."""

    favor: str = "balanced"
    min_editorial: float | None = None


def classify(
    text: str, model: model_file.Scorer | None = None, favor: str = "balanced", min_editorial: float | None = None
) -> list[Paragraph]:
    """Split a page (str, any line endings) into paragraphs and label each one."""
    return _label(split_paragraphs(normalise_newlines(text)), (), model, Decision(favor, min_editorial))


def classify_html(
    html: str | bytes,
    model: model_file.Scorer | None = None,
    favor: str = "balanced",
    min_editorial: float | None = None,
) -> list[Paragraph]:
    """Turn an HTML page (str, or bytes in any declared or detectable encoding) into paragraphs by the rule of
    ``detector.markup`` and label each one."""
    text = markup.decode_html(html) if isinstance(html, bytes) else html
    blocks = markup.blocks(text)
    return _label([b.text for b in blocks], blocks, model, Decision(favor, min_editorial))


def _label(
    texts: list[str], blocks: Sequence[markup.Block], model: model_file.Scorer | None, decision: Decision
) -> list[Paragraph]:
    if not texts:
        return []
    scorer = model or load_model()
    threshold = scorer.threshold(decision.favor, decision.min_editorial)
    classes = scorer.classes
    result = []
    for index, probs in enumerate(scorer.probabilities(texts, blocks or None)):
        result.append(
            Paragraph(
                index,
                texts[index],
                scorer.decide(probs, threshold),
                {c: probs[i] for i, c in enumerate(classes)},
                blocks[index].tag if blocks else "",
            )
        )
    return result


def clean(
    text: str,
    keep: str | Iterable[str] = ("editorial",),
    model: model_file.Scorer | None = None,
    favor: str = "balanced",
    min_editorial: float | None = None,
) -> str:
    """The cleaned article: the kept paragraphs (``keep``: labels, or one comma-separated string), unchanged
    and in order, joined by one blank line. ``favor`` and ``min_editorial``: see ``Decision``."""
    return render(classify(text, model, favor, min_editorial), "text", keep)


def clean_html(
    html: str | bytes,
    keep: str | Iterable[str] = ("editorial",),
    model: model_file.Scorer | None = None,
    favor: str = "balanced",
    min_editorial: float | None = None,
) -> str:
    """The cleaned article of an HTML page, as text: the kept paragraphs joined by one blank line."""
    return render(classify_html(html, model, favor, min_editorial), "text", keep)


def parse_keep(value: str | Iterable[str]) -> tuple[str, ...]:
    """``"editorial,navigational"`` (or an iterable of labels) to a tuple of labels; raises ValueError on an
    unknown label, and on a string that names none."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    labels = []
    for part in parts:
        label = part.strip() if isinstance(part, str) else part
        if label == "":
            continue
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r}; choose from {', '.join(LABELS)}")
        labels.append(label)
    if not labels and isinstance(value, str):
        raise ValueError("no label given")
    return tuple(labels)


def render(paragraphs: list[Paragraph], fmt: str = "text", keep: str | Iterable[str] = ("editorial",)) -> str:
    """One page in an output format: ``text`` (the kept paragraphs, no final newline), ``annotated`` (every
    paragraph with its label, LABELS.md format), ``json`` (every paragraph with its probabilities) or ``html``
    (the kept paragraphs as minimal HTML: headings, paragraphs and lists)."""
    kept = parse_keep(keep)
    if fmt == "text":
        return "\n\n".join(p.text for p in paragraphs if p.label in kept)
    if fmt == "annotated":
        return format_annotated([LabelledParagraph(p.label, p.text) for p in paragraphs])
    if fmt == "json":
        return json.dumps(as_record(paragraphs, kept), ensure_ascii=False)
    if fmt == "html":
        return as_html([p for p in paragraphs if p.label in kept])
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def as_record(paragraphs: list[Paragraph], keep: str | Iterable[str] = ("editorial",)) -> dict:
    """A page as plain data: the cleaned text, the page's verdict and, per paragraph, index, label,
    probabilities, what decided the label, and text."""
    return {
        "text": render(paragraphs, "text", keep),
        "verdict": verdict(paragraphs),
        "paragraphs": [
            {
                "index": p.index,
                "label": p.label,
                "probabilities": {k: round(v, 6) for k, v in p.probabilities.items()},
                "decided_by": p.decided_by,
                "text": p.text,
                **({"tag": p.tag} if p.tag else {}),
            }
            for p in paragraphs
        ],
    }


# Page flags (README.md, "Page verdicts"): measured by `detector evaluate` on pages written for them.
NO_ARTICLE_CHARS = 300  # less editorial text than this: the page has no article
TEASER_CHARS = 1200  # less than this, with a sales box right after it: a paywall or teaser stub
ADVERTORIAL_CHARS = 600  # at least this much promotional running text, more than editorial: an advertorial
FLAGS = ("advertorial", "teaser_only", "no_article")
_RUNNING_TEXT = 25  # words: a paragraph this long is running text


def verdict(paragraphs: list[Paragraph]) -> dict:
    """What the page is as a whole: the shares of its text (by characters) per label, how confident the
    labelling is (the mean probability of the chosen labels, and of editorial among the editorial paragraphs,
    both by characters), and its flags: ``no_article`` (almost no editorial text), ``teaser_only`` (a short
    article cut off by a sales box: a paywall or teaser stub) and ``advertorial`` (the running text itself
    sells: more promotional than editorial running text)."""
    chars = {label: 0 for label in LABELS}
    running = {label: 0 for label in LABELS}
    confidence = editorial_confidence = 0.0
    last_editorial = -1
    for i, p in enumerate(paragraphs):
        size = len(p.text)
        chars[p.label] += size
        confidence += size * p.probabilities[p.label]
        if p.label == "editorial":
            editorial_confidence += size * p.probabilities["editorial"]
            last_editorial = i
        if len(p.text.split()) >= _RUNNING_TEXT:
            running[p.label] += size
    total = sum(chars.values())
    flags = []
    if running["promotional"] >= max(ADVERTORIAL_CHARS, running["editorial"] + 1):
        flags.append("advertorial")
    after = paragraphs[last_editorial + 1 : last_editorial + 4] if last_editorial >= 0 else []
    if NO_ARTICLE_CHARS <= chars["editorial"] < TEASER_CHARS and any(p.label == "promotional" for p in after):
        flags.append("teaser_only")
    if chars["editorial"] < NO_ARTICLE_CHARS:
        flags.append("no_article")
    return {
        "shares": {label: round(chars[label] / total, 4) if total else 0.0 for label in LABELS},
        "confidence": round(confidence / total, 4) if total else 0.0,
        "editorial_confidence": round(editorial_confidence / chars["editorial"], 4) if chars["editorial"] else 0.0,
        "flags": flags,
    }


def explain(text: str, model: model_file.Scorer | None = None, top: int = 5) -> list[dict]:
    """Why each paragraph of a text page got its label: ``detector.model.Scorer.explain``."""
    scorer = model or load_model()
    return scorer.explain(split_paragraphs(normalise_newlines(text)), None, top)


def explain_html(html: str | bytes, model: model_file.Scorer | None = None, top: int = 5) -> list[dict]:
    """Why each paragraph of an HTML page got its label."""
    scorer = model or load_model()
    blocks = markup.blocks(markup.decode_html(html) if isinstance(html, bytes) else html)
    return scorer.explain([b.text for b in blocks], blocks, top)


def render_explanations(paragraphs: list[Paragraph], explanations: list[dict]) -> str:
    """The ``explain`` format: per paragraph its label, probability and what decided it, the text, and the
    strongest features for the most likely label and against it (against the runner-up)."""
    parts = []
    for p, e in zip(paragraphs, explanations):
        lines = [
            f"[{p.label}] p={p.probabilities[p.label]:.3f} decided by {p.decided_by}; most likely {e['label']} "
            f"over {e['runner_up']} ({e['expert']} expert, weight {e['expert_weight']:.2f})",
            p.text,
            "  for:     " + ", ".join(f"{name} {value:+.2f}" for name, value in e["for"]),
            "  against: " + ", ".join(f"{name} {value:+.2f}" for name, value in e["against"]),
        ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def as_html(paragraphs: list[Paragraph]) -> str:
    """The paragraphs as a minimal HTML document: headings stay headings, list items are gathered into lists,
    everything else is a ``<p>`` (line breaks inside a text paragraph become ``<br>``)."""
    body: list[str] = []
    in_list = False
    for p in paragraphs:
        text = html_escape.escape(p.text).replace("\n", "<br>\n")
        is_item = p.tag in ("li", "dt", "dd")
        if is_item != in_list:
            body.append("<ul>" if is_item else "</ul>")
            in_list = is_item
        if p.tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            body.append(f"<{p.tag}>{text}</{p.tag}>")
        elif is_item:
            body.append(f"<li>{text}</li>")
        else:
            body.append(f"<p>{text}</p>")
    if in_list:
        body.append("</ul>")
    return (
        '<!DOCTYPE html>\n<html lang="de">\n<head><meta charset="utf-8"></head>\n<body>\n'
        + "\n".join(body)
        + "\n</body>\n</html>"
    )
