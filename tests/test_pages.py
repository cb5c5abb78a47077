"""The annotated page format: reading, writing, and loading a corpus folder."""

from __future__ import annotations

import pytest

from detector.pages import (
    AnnotationError,
    LabelledParagraph,
    corpus_files,
    format_annotated,
    load_corpus,
    parse_annotated,
)
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
    ("page", "message"),
    [
        ("[editorial] Gut\n\nohne Label\n", "paragraph 1 (line 3) has no [label] prefix: 'ohne Label'"),
        (
            "[navigational] Menü\n\n" * 40 + "\n\n[editoral] Text",
            "paragraph 40 (line 83) has the label [editoral]",
        ),
        (
            "[werbung] Falsches Label\n",
            "paragraph 0 (line 1) has the label [werbung], which is not one of editorial, promotional, "
            "navigational: "
            "'[werbung] Falsches Label'",
        ),
        (
            "[Editorial] Gross geschrieben\n",
            "paragraph 0 (line 1) has the label [Editorial], which is not one of editorial, promotional, "
            "navigational: "
            "'[Editorial] Gross geschrieben'",
        ),
        ("[editorial]ohne Leerzeichen\n", "paragraph 0 (line 1) needs one space between its label and its text"),
        ("[editorial]\tTab\n", "paragraph 0 (line 1) needs one space between its label and its text"),
        ("[editorial] Gut\n\n[navigational]\n", "paragraph 1 (line 3) has a label and no text: '[navigational]'"),
        (
            "[editorial] Der DAX stieg.\n[promotional] Jetzt Depot eröffnen!\n",
            "paragraph 0 (line 1) has a line that starts with a label (its line 2): a blank line missing "
            "before it? "
            "'[promotional] Jetzt Depot",
        ),
    ],
)
def test_a_paragraph_without_a_known_label_is_an_error_that_says_what_is_wrong_and_where(page, message):
    with pytest.raises(AnnotationError) as caught:
        parse_annotated(page)
    assert str(caught.value).startswith(message)


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


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "p.txt",
            "[editorial] Der Absatz stieg \xe4.\n".encode("latin-1"),
            "p.txt: not UTF-8 (byte 0xe4 at offset 29); annotated pages are UTF-8",
        ),
        (
            "p.html",
            b'<p data-label="Editorial">Die Aktie steigt.</p>',
            "p.html: paragraph 0 (line 1) has data-label='Editorial', which is not one of editorial, promotional, "
            "navig",
        ),
        (
            "p.html",
            b'<div data-label="editorial"><p>Die Aktie <b data-label="promotional">jetzt</b> steigt.</p></div>',
            "p.html: paragraph 0 (line 1) has text under two data-labels",
        ),
        (
            "p.html",
            b'<p data-label="editorial">Mit Label.</p><p>Ohne Label.</p>',
            "p.html: paragraph 1 (line 1) has no data-label",
        ),
        (
            "p.html",
            b'<p data-label="editorial">' + b"<span>" * 2100 + b"tief",
            "p.html: its elements are nested deeper than 2,048 levels",
        ),
    ],
)
def test_a_bad_page_in_a_corpus_is_named_with_what_is_wrong(tmp_path, name, data, message):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / name).write_bytes(data)
    with pytest.raises(AnnotationError) as caught:
        load_corpus(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'site'}/{message}")


def test_a_byte_order_mark_and_upper_case_suffixes_are_read(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "A.TXT").write_bytes("\ufeff[editorial] Eins.\n".encode())
    (tmp_path / "site" / "b.Html").write_bytes(b'<p data-label="navigational">Zwei</p>')
    (tmp_path / "site" / "c.md").write_text("[editorial] Drei.\n", encoding="utf-8")
    assert [p.name for p in corpus_files(tmp_path)] == ["A.TXT", "b.Html"]
    corpus = load_corpus(tmp_path)
    assert corpus[["page", "label", "text"]].values.tolist() == [
        ["site/A.TXT", "editorial", "Eins."],
        ["site/b.Html", "navigational", "Zwei"],
    ]
    assert corpus["block"].isna().tolist() == [True, False]


def test_two_roots_with_the_same_relative_page_give_two_pages(tmp_path):
    for root, text in (("a", "Eins."), ("b", "Zwei.")):
        (tmp_path / root / "site").mkdir(parents=True)
        (tmp_path / root / "site" / "p.txt").write_text(f"[editorial] {text}\n", encoding="utf-8")
    corpus = load_corpus(tmp_path / "a", tmp_path / "b")
    assert corpus["page"].tolist() == ["a/site/p.txt", "b/site/p.txt"]
    assert corpus["site"].tolist() == ["site", "site"]


def test_page_names_and_sites_do_not_depend_on_how_the_roots_are_typed(tmp_path, monkeypatch):
    """With two --data folders, page names held the roots as typed: `r1 r2` and their absolute paths trained
    two models (macro-F1 0.678 and 0.627) with one fingerprint; a page directly in its root took the root's
    name as typed as its site (`.` had the site "")."""
    from pathlib import Path

    from detector.workbench.train import fingerprint

    for root in ("data", "other/data"):
        (tmp_path / root / "site").mkdir(parents=True)
        (tmp_path / root / "site" / "p.txt").write_text("[editorial] Eins.\n", encoding="utf-8")
        (tmp_path / root / "lose.txt").write_text("[navigational] Menü\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    typed = [
        ("data", "other/data"),
        (tmp_path / "data", tmp_path / "other" / "data"),
        ("./data", "other/../other/data"),
    ]
    corpora = [load_corpus(*roots) for roots in typed]
    for corpus in corpora:
        assert corpus[["site", "page"]].values.tolist() == [
            ["data", "data/lose.txt"],
            ["site", "data/site/p.txt"],
            ["data", "data~2/lose.txt"],
            ["site", "data~2/site/p.txt"],
        ]
    assert len({fingerprint(*map(Path, roots)) for roots in typed}) == 1
    monkeypatch.chdir(tmp_path / "data")
    assert load_corpus(".")["site"].tolist() == load_corpus(tmp_path / "data")["site"].tolist() == ["data", "site"]
    assert (
        fingerprint(Path("."))
        == fingerprint(tmp_path / "data")
        != fingerprint(tmp_path / "other" / "data", tmp_path / "data")
    )


def test_a_corpus_with_several_bad_pages_names_each_of_them_in_one_run(tmp_path):
    """One run named one mistake: a user with ten bad drafts trained ten times to learn of them."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.txt").write_text("[editorial] Gut.\n\n[editorail] Tippfehler.\n", encoding="utf-8")
    (tmp_path / "site" / "b.html").write_text('<p data-label="editorial">Gut.</p><p>Ohne.</p>', encoding="utf-8")
    (tmp_path / "site" / "c.txt").write_text("[navigational] Menü\n", encoding="utf-8")
    with pytest.raises(AnnotationError) as caught:
        load_corpus(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'site' / 'a.txt'}: paragraph 1 (line 3) ")
    assert f"; {tmp_path / 'site' / 'b.html'}: paragraph 1 (line 1) has no data-label: 'Ohne.'" in message
    assert message.endswith(" (2 pages with a mistake)") and "c.txt" not in message and "\n" not in message


def test_every_mistake_of_a_page_is_named_at_once():
    """A page's second mistake was named only once its first was put right: a draft with three slips took
    three runs. The first five are named with their lines, then their number; an HTML page likewise."""
    from detector.pages import parse_annotated_html

    page = (
        "[editorial] Gut\n\nohne Label\n\n[nav] Menü\n\n[editorial]\n\n"
        + "kein Label\n\n" * 4
        + "[editorial] Ende\n"
    )
    with pytest.raises(AnnotationError) as raised:
        parse_annotated(page)
    assert str(raised.value) == (
        "paragraph 1 (line 3) has no [label] prefix: 'ohne Label'; paragraph 2 (line 5) has the label [nav], "
        "which is not one of editorial, promotional, navigational: '[nav] Menü'; paragraph 3 (line 7) has a "
        "label and no text: '[editorial]'; paragraph 4 (line 9) has no [label] prefix: 'kein Label'; "
        "paragraph 5 (line 11) has no [label] prefix: 'kein Label'; and 2 more on this page"
    )
    html = '<p data-label="editorial">Gut</p>\n<div>\n<p>Ohne</p>\n</div>\n<p data-label="werbung">X</p>'
    with pytest.raises(
        AnnotationError, match=r"^paragraph 1 \(line 3\) has no data-label: 'Ohne'; paragraph 2 \(line 5"
    ):
        parse_annotated_html(html)  # (by line too: it was named by its paragraph and first words alone)
