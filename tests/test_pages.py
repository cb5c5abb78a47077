"""The annotated page format: reading, writing, and loading a corpus folder."""

from __future__ import annotations

import pytest

from detector.pages import AnnotationError, LabelledParagraph, format_annotated, load_corpus, parse_annotated
from tests.conftest import EXAMPLE, EXAMPLE_ANNOTATED, FIXTURE_CORPUS, needs_example

PAGE = "[editorial] Titel\n\n[editorial] Kurz:\n  • eins\n  • zwei\n\n[promotional] Jetzt kaufen!\n"


def test_parse_keeps_multi_line_paragraphs():
    assert parse_annotated(PAGE) == [
        LabelledParagraph("editorial", "Titel"),
        LabelledParagraph("editorial", "Kurz:\n  • eins\n  • zwei"),
        LabelledParagraph("promotional", "Jetzt kaufen!"),
    ]


def test_format_round_trips():
    assert format_annotated(parse_annotated(PAGE)) == PAGE
    assert format_annotated([]) == ""


def test_single_multi_line_paragraph_is_not_split_into_lines():
    assert parse_annotated("[navigational] Aktien\nFonds\nETFs\n") == [
        LabelledParagraph("navigational", "Aktien\nFonds\nETFs")
    ]


@pytest.mark.parametrize(
    "page", ["[editorial] Gut\n\nohne Label\n", "[werbung] Falsches Label\n", "[editorial]ohne Leerzeichen\n"]
)
def test_paragraph_without_known_label_is_an_error(page):
    with pytest.raises(AnnotationError, match="has no \\[label\\] prefix"):
        parse_annotated(page)


@needs_example
def test_example_annotation_strips_back_to_the_page():
    from detector.segment import split_paragraphs

    labelled = parse_annotated(EXAMPLE_ANNOTATED.read_text(encoding="utf-8"))
    assert [p.text for p in labelled] == split_paragraphs(EXAMPLE.read_text(encoding="utf-8"))
    assert [p.label for p in labelled] == ["editorial"] * 16 + ["promotional"] * 3 + ["navigational"] * 4


def test_load_corpus_has_one_row_per_paragraph_grouped_by_site():
    corpus = load_corpus(FIXTURE_CORPUS)
    assert list(corpus.columns) == ["site", "page", "index", "label", "text", "block"]
    assert sorted(corpus["site"].unique()) == ["site-a", "site-b", "site-c", "site-d"]
    assert corpus["page"].nunique() == 8
    html = corpus[corpus["page"] == "site-c/stahl.html"]
    assert html["block"].notna().all() and corpus[corpus["page"] != "site-c/stahl.html"]["block"].isna().all()
    assert html["text"].iloc[0] == "Zum Inhalt springen" and html["block"].iloc[0].tag == "div"
    first = corpus.iloc[0]
    assert (first["site"], first["page"], first["index"], first["label"]) == (
        "site-a",
        "site-a/eon.txt",
        0,
        "navigational",
    )


def test_load_corpus_names_the_bad_file(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "bad.txt").write_text("[editorial] ok\n\nkaputt\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"bad\.txt: paragraph 1"):
        load_corpus(tmp_path)
