"""What the model sees of a paragraph's form and place, and the article-region copies training adds."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from detector.features import (
    DENSE_NAMES,
    FORM_NAMES,
    MARKUP_NAMES,
    article_run,
    form_features,
    markup_features,
    page_features,
)
from detector.markup import blocks
from detector.pages import load_corpus
from detector.workbench.train import with_training_copies
from tests.conftest import FIXTURE_CORPUS

DIGEST = [
    "Was Anleger heute wissen müssen",
    "2. Ölpreis gibt nach: Ein Barrel Brent verbilligte sich im asiatischen Handel um 0,7 Prozent.",
    "Zur Meldung",
    "Die fünf meistgelesenen Artikel der Woche im Überblick",
    "Zur Meldung",
    "Sind Sie bereit für die nächste große Rally an den Märkten?",
    "Mehr",
]


def column(name: str, paragraphs: list[str]) -> list[float]:
    return [row[DENSE_NAMES.index(name)] for row in page_features(paragraphs)]


def test_a_full_sentence_between_link_lines_is_a_statement_among_short_lines():
    assert column("statement", DIGEST) == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert column("statement_among_short", DIGEST) == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_a_statement_between_long_paragraphs_is_not_among_short_lines():
    body = ["Der Dax schloss am Abend mit einem Plus von 0,4 Prozent bei 19.250 Punkten im Handel."] * 3
    assert column("statement", body) == [1.0, 1.0, 1.0]
    assert column("statement_among_short", body) == [0.0, 0.0, 0.0]


def test_a_short_line_with_a_link_word_is_a_pointer_wherever_it_stands():
    lines = [
        "Den kompletten Wochenkalender finden Sie hier.",
        "Zum Liveticker: hier klicken",
        "Hierzulande sinken die Bauzinsen.",
        "Hier zeigt sich, wie stark die Abhängigkeit vom chinesischen Markt inzwischen geworden ist, "
        "sagen Analysten der Landesbank.",
    ]
    assert [form_features(line)[FORM_NAMES.index("short_link_word")] for line in lines] == [1.0, 1.0, 0.0, 0.0]


def page_table(labels: list[str], page: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"site": "s", "page": page, "index": range(len(labels)), "label": labels, "text": labels, "block": None}
    )


def test_article_region_copies_start_at_the_article_and_end_at_it_or_just_after():
    labels = ["navigational"] * 2 + ["editorial"] * 4 + ["promotional"] + ["editorial"] + ["navigational"] * 5
    pages = [page_table(labels, f"s/page-{i}.txt") for i in range(40)]
    corpus = pd.concat(pages, ignore_index=True)
    copies = with_training_copies(corpus).iloc[len(corpus) :]
    crops = copies[copies["page"].str.endswith("#body")]
    tails = []
    for _page, rows in crops.groupby("page", sort=False):
        assert rows["index"].iloc[0] == 2
        assert rows["index"].tolist() == list(range(2, rows["index"].iloc[-1] + 1))
        tails.append(rows["index"].iloc[-1] - 7)
    assert len(tails) == 40
    assert set(tails) == {0, 1, 2}
    assert 10 <= tails.count(0) <= 30
    assert with_training_copies(corpus).equals(with_training_copies(corpus))


def test_a_page_that_is_all_article_gets_no_copy():
    corpus = page_table(["editorial"] * 5, "s/all.txt")
    assert len(with_training_copies(corpus)) == 5


def test_html_pages_get_a_text_copy_and_long_pages_a_head_copy():
    corpus = load_corpus(FIXTURE_CORPUS)
    copies = with_training_copies(corpus)
    text_copy = copies[copies["page"] == "site-c/stahl.html#text"]
    original = corpus[corpus["page"] == "site-c/stahl.html"]
    assert text_copy["text"].tolist() == original["text"].tolist()
    assert text_copy["block"].isna().all() and original["block"].notna().all()
    labels = ["navigational"] * 5 + ["editorial"] * 30 + ["navigational"] * 5
    long_page = page_table(labels, "s/long.txt").assign(text=[f"{i:03} " + "x" * 96 for i in range(40)])
    head = with_training_copies(long_page).query("page == 's/long.txt#head'")
    assert head["index"].tolist() == list(range(19))  # 19 paragraphs of 100 characters and a blank line each


def test_repeated_paragraphs_and_runs_of_short_lines_are_seen():
    page = [
        "Start",
        "Börse",
        "Geld",
        "Der Dax stieg am Mittag um ein Prozent auf 19.500 Punkte.",
        "Start",
        "Börse",
    ]
    assert column("repeats_on_page", page) == pytest.approx([math.log(2)] * 2 + [0.0, 0.0] + [math.log(2)] * 2)
    assert column("seen_before", page) == [0, 0, 0, 0, 1, 1]
    assert column("short_run", page) == pytest.approx([math.log1p(3)] * 3 + [0.0] + [math.log1p(2)] * 2)


def test_the_article_run_is_the_densest_run_of_editorial_scores():
    assert article_run([0.1, 0.9, 0.8, 0.2, 0.9, 0.95, 0.1, 0.1]) == (1, 6)
    assert article_run([0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.8, 0.9, 0.9]) == (6, 9)
    assert article_run([0.1, 0.2]) == (1, 2)


def test_markup_features_are_zero_for_text_and_tell_the_tag_and_links_for_html():
    (block,) = [b for b in blocks('<nav><ul><li><a href="/">Startseite</a></li></ul></nav>')]
    values = dict(zip(MARKUP_NAMES, markup_features(block)))
    assert values["html"] == 1.0 and values["link_share"] == 1.0 and values["tag_li"] == 1.0
    assert values["in_nav"] == 1.0 and values["in_li"] == 1.0 and values["in_footer"] == 0.0
    assert markup_features(None) == [0.0] * len(MARKUP_NAMES)
