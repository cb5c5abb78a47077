"""What the model sees of a paragraph's form and place, and the article-region copies training adds."""

from __future__ import annotations

import pandas as pd

from detector.features import DENSE_NAMES, FORM_NAMES, form_features, page_features
from detector.workbench.train import with_article_crops

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
    rows = page_features([form_features(p) for p in paragraphs])
    return [row[DENSE_NAMES.index(name)] for row in rows]


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
    return pd.DataFrame({"site": "s", "page": page, "index": range(len(labels)), "label": labels, "text": labels})


def test_article_region_copies_start_at_the_article_and_end_at_it_or_just_after():
    labels = ["navigational"] * 2 + ["editorial"] * 4 + ["promotional"] + ["editorial"] + ["navigational"] * 5
    pages = [page_table(labels, f"s/page-{i}.txt") for i in range(40)]
    corpus = pd.concat(pages, ignore_index=True)
    crops = with_article_crops(corpus).iloc[len(corpus) :]
    tails = []
    for page, rows in crops.groupby("page", sort=False):
        assert page.endswith("#body")
        assert rows["index"].iloc[0] == 2
        assert rows["index"].tolist() == list(range(2, rows["index"].iloc[-1] + 1))
        tails.append(rows["index"].iloc[-1] - 7)
    assert len(tails) == 40
    assert set(tails) == {0, 1, 2}
    assert 10 <= tails.count(0) <= 30
    assert with_article_crops(corpus).equals(with_article_crops(corpus))


def test_a_page_that_is_all_article_gets_no_copy():
    corpus = page_table(["editorial"] * 5, "s/all.txt")
    assert len(with_article_crops(corpus)) == 5
