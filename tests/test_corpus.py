"""The training corpus: every file valid, the counts the corpus issue asks for, and no borrowed text."""

from __future__ import annotations

import re

import pytest

from detector.features import LENGTH_CAP
from detector.pages import LABELS, corpus_files, load_corpus, read_page
from tests.conftest import DEVSET, EXAMPLE, ROOT, needs_devset, needs_example

TRAINING_DATA = ROOT / "training_data"
# The corpus issue asks for at least these counts ...
TARGET = {"pages": 300, "sites": 30, "editorial": 4000, "promotional": 1500, "navigational": 2500}
# ... and this is what the corpus has reached (training_data/README.md): it must never shrink below it.
FLOOR = {"pages": 1360, "sites": 256, "editorial": 36394, "promotional": 30796, "navigational": 109894}


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(TRAINING_DATA)


def test_every_file_is_a_valid_annotated_page():
    files = corpus_files(TRAINING_DATA)
    assert files
    for path in files:
        assert b"\r" not in path.read_bytes(), f"{path}: CR line endings"
        paragraphs = read_page(path)
        assert len(paragraphs) >= 3, f"{path}: fewer than 3 paragraphs"
        assert any(p.label == "editorial" for p in paragraphs), f"{path}: no editorial paragraph"
        assert all(p.text.strip() for p in paragraphs), f"{path}: an empty paragraph"
        assert path.parent.parent == TRAINING_DATA, f"{path}: pages live one folder (the site style) deep"


def test_corpus_has_not_shrunk_and_reports_its_size(corpus, record_property):
    counts = {
        "pages": corpus["page"].nunique(),
        "sites": corpus["site"].nunique(),
        **{label: int((corpus["label"] == label).sum()) for label in LABELS},
    }
    record_property("corpus_counts", counts)
    gap = {k: TARGET[k] - v for k, v in counts.items() if v < TARGET[k]}
    print(f"\ntraining_data: {counts}; still short of the corpus issue's target by {gap or 'nothing'}")
    short = {k: (v, FLOOR[k]) for k, v in counts.items() if v < FLOOR[k]}
    assert not short, f"the corpus shrank (have, had): {short}"


def test_every_site_has_all_three_labels(corpus):
    per_site = corpus.groupby("site")["label"].nunique()
    assert per_site.min() == 3, per_site[per_site < 3].to_dict()


def test_the_length_cap_lies_inside_the_corpus_full_pages_lengths(corpus):
    """``features.LENGTH_CAP`` stands where the corpus's full pages thin out (between their 90th percentile and
    their longest): below, it would blind the model to lengths it has seen; above, it would let it
    extrapolate to lengths it has not. A corpus round that moves the pages' lengths must move the cap."""
    lengths = sorted(corpus[corpus["block"].notna()].groupby("page").size())
    assert lengths, "no HTML pages in the corpus"
    p90 = lengths[int(0.9 * (len(lengths) - 1))]
    assert p90 <= LENGTH_CAP <= lengths[-1], (p90, LENGTH_CAP, lengths[-1])


def _sentences(text: str) -> set[str]:
    return {s.strip() for s in re.split(r"(?<=[.!?:])\s+|\n", text) if len(s.strip()) >= 40}


@pytest.fixture(scope="module")
def corpus_sentences(corpus):
    return {sentence for text in corpus["text"] for sentence in _sentences(text)}


@needs_example
def test_no_sentence_of_the_example_page_is_in_the_corpus(corpus_sentences):
    assert not _sentences(EXAMPLE.read_text(encoding="utf-8")) & corpus_sentences


@needs_devset
def test_no_sentence_of_the_dev_set_is_in_the_corpus(corpus_sentences):
    dev = load_corpus(DEVSET, suffixes=(".txt",))
    borrowed = sorted({s for text in dev["text"] for s in _sentences(text)} & corpus_sentences)
    assert not borrowed[:5]
