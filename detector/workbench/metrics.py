"""Scores of predicted labels against true ones, as a user of the cleaned text cares about them.

Beyond precision, recall and F1 per label: the share of editorial paragraphs lost, and the share of
promotional and of navigational paragraphs that leak into the cleaned article.
"""

from __future__ import annotations

from collections.abc import Sequence

from detector.pages import LABELS


def scores(truth: Sequence[str], predicted: Sequence[str]) -> dict:
    """Per-label precision/recall/F1/support, macro-F1, editorial loss, leaks and the confusion matrix.

    A score that the paragraphs cannot give is None, not 0: the recall and the leak of a label no paragraph
    has, the precision of a label absent on both sides, and its F1. Macro-F1 averages the labels present on
    either side."""
    pairs = list(zip(truth, predicted))
    result: dict = {"paragraphs": len(pairs)}
    for label in LABELS:
        tp = sum(t == label and p == label for t, p in pairs)
        fp = sum(t != label and p == label for t, p in pairs)
        fn = sum(t == label and p != label for t, p in pairs)
        precision = tp / (tp + fp) if tp + fp else (0.0 if tp + fn else None)
        recall = tp / (tp + fn) if tp + fn else None
        f1 = None if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
        result[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    present = [result[label]["f1"] for label in LABELS if result[label]["f1"] is not None]
    result["macro_f1"] = sum(present) / len(present) if present else None
    recall = result["editorial"]["recall"]
    result["editorial_lost"] = None if recall is None else 1.0 - recall
    for label in LABELS[1:]:
        kept = [p == "editorial" for t, p in pairs if t == label]
        result[f"{label}_leak"] = sum(kept) / len(kept) if kept else None
    result["confusion"] = [[sum(t == a and p == b for t, p in pairs) for b in LABELS] for a in LABELS]
    return result


def rounded(result: dict, digits: int = 4) -> dict:
    """The same scores with floats rounded, for JSON metadata."""
    if isinstance(result, dict):
        return {k: rounded(v, digits) for k, v in result.items()}
    if isinstance(result, list):
        return [rounded(v, digits) for v in result]
    return round(result, digits) if isinstance(result, float) else result


UNCERTAIN = 0.8  # a paragraph whose chosen label has a lower probability than this is uncertain: worth a look
