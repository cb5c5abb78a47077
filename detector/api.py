"""The public API: label the paragraphs of a page, keep the article, render the result.

``classify`` and ``clean`` are what other Python code calls (``from detector import clean``); the CLI is a
thin layer over them and over ``render``.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Iterable
from pathlib import Path

from detector import model as model_file
from detector.pages import LABELS, LabelledParagraph, format_annotated
from detector.segment import normalise_newlines, split_paragraphs

FORMATS = ("text", "annotated", "json")
_loaded: dict[str, model_file.Scorer] = {}


class Paragraph(namedtuple("Paragraph", "index text label probabilities")):
    """A paragraph of a page (``index``, ``text``) with its predicted ``label`` and the ``probabilities``
    of each label (a dict)."""

    __slots__ = ()


def load_model(path: Path | str | None = None) -> model_file.Scorer:
    """The model at ``path``, or the shipped model; each file is loaded once per process, not once per page."""
    key = str(path) if path is not None else ""
    if key not in _loaded:
        _loaded[key] = model_file.load(path)
    return _loaded[key]


def classify(text: str, model: model_file.Scorer | None = None) -> list[Paragraph]:
    """Split a page (str, any line endings) into paragraphs and label each one."""
    scorer = model or load_model()
    paragraphs = split_paragraphs(normalise_newlines(text))
    if not paragraphs:
        return []
    classes = scorer.classes
    result = []
    for index, (text_, probs) in enumerate(zip(paragraphs, scorer.probabilities(paragraphs))):
        best = max(range(len(classes)), key=probs.__getitem__)
        result.append(Paragraph(index, text_, classes[best], {c: probs[i] for i, c in enumerate(classes)}))
    return result


def clean(text: str, keep: Iterable[str] = ("editorial",), model: model_file.Scorer | None = None) -> str:
    """The cleaned article: the kept paragraphs, unchanged and in order, joined by one blank line."""
    return render(classify(text, model), "text", keep)


def parse_keep(value: str) -> tuple[str, ...]:
    """``"editorial,navigational"`` to a tuple of labels; raises ValueError on an unknown label."""
    labels = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [label for label in labels if label not in LABELS]
    if unknown or not labels:
        raise ValueError(f"unknown label {unknown[0]!r}" if unknown else "no label given")
    return labels


def render(paragraphs: list[Paragraph], fmt: str = "text", keep: Iterable[str] = ("editorial",)) -> str:
    """One page in an output format: ``text`` (the kept paragraphs, no final newline), ``annotated`` (every
    paragraph with its label, LABELS.md format) or ``json`` (every paragraph with its probabilities)."""
    keep = tuple(keep)
    if fmt == "text":
        return "\n\n".join(p.text for p in paragraphs if p.label in keep)
    if fmt == "annotated":
        return format_annotated([LabelledParagraph(p.label, p.text) for p in paragraphs])
    if fmt == "json":
        return json.dumps(as_record(paragraphs, keep), ensure_ascii=False)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def as_record(paragraphs: list[Paragraph], keep: Iterable[str] = ("editorial",)) -> dict:
    """A page as plain data: the cleaned text and, per paragraph, index, label, probabilities and text."""
    return {
        "text": render(paragraphs, "text", keep),
        "paragraphs": [
            {
                "index": p.index,
                "label": p.label,
                "probabilities": {k: round(v, 6) for k, v in p.probabilities.items()},
                "text": p.text,
            }
            for p in paragraphs
        ],
    }
