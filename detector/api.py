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

FORMATS = ("text", "annotated", "json", "html")
_loaded: dict[str, model_file.Scorer] = {}


class Paragraph(NamedTuple):
    """A paragraph of a page with its predicted label and the probability of each label."""

    index: int  # type: ignore[assignment]  # (shadows tuple.index, as the namedtuple before it did)
    text: str
    label: str
    probabilities: dict[str, float]
    tag: str = ""  # for HTML input: the block element that held the paragraph ("p", "h2", "li" ...)


def load_model(path: Path | str | None = None) -> model_file.Scorer:
    """The model at ``path``, or the shipped model; each file is loaded once per process, not once per page."""
    key = str(path) if path is not None else ""
    if key not in _loaded:
        _loaded[key] = model_file.load(path)
    return _loaded[key]


def classify(text: str, model: model_file.Scorer | None = None) -> list[Paragraph]:
    """Split a page (str, any line endings) into paragraphs and label each one."""
    return _label(split_paragraphs(normalise_newlines(text)), (), model)


def classify_html(html: str | bytes, model: model_file.Scorer | None = None) -> list[Paragraph]:
    """Turn an HTML page (str, or bytes in any declared or detectable encoding) into paragraphs by the rule of
    ``detector.markup`` and label each one."""
    text = markup.decode_html(html) if isinstance(html, bytes) else html
    blocks = markup.blocks(text)
    return _label([b.text for b in blocks], [b.tag for b in blocks], model)


def _label(texts: list[str], tags: Sequence[str], model: model_file.Scorer | None) -> list[Paragraph]:
    if not texts:
        return []
    scorer = model or load_model()
    classes = scorer.classes
    result = []
    for index, probs in enumerate(scorer.probabilities(texts)):
        best = max(range(len(classes)), key=probs.__getitem__)
        result.append(
            Paragraph(
                index,
                texts[index],
                classes[best],
                {c: probs[i] for i, c in enumerate(classes)},
                tags[index] if tags else "",
            )
        )
    return result


def clean(text: str, keep: str | Iterable[str] = ("editorial",), model: model_file.Scorer | None = None) -> str:
    """The cleaned article: the kept paragraphs (``keep``: labels, or one comma-separated string), unchanged
    and in order, joined by one blank line."""
    return render(classify(text, model), "text", keep)


def clean_html(
    html: str | bytes, keep: str | Iterable[str] = ("editorial",), model: model_file.Scorer | None = None
) -> str:
    """The cleaned article of an HTML page, as text: the kept paragraphs joined by one blank line."""
    return render(classify_html(html, model), "text", keep)


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
    """A page as plain data: the cleaned text and, per paragraph, index, label, probabilities and text."""
    return {
        "text": render(paragraphs, "text", keep),
        "paragraphs": [
            {
                "index": p.index,
                "label": p.label,
                "probabilities": {k: round(v, 6) for k, v in p.probabilities.items()},
                "text": p.text,
                **({"tag": p.tag} if p.tag else {}),
            }
            for p in paragraphs
        ],
    }


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
