"""The library API (classify, clean, render) on the example page and on arbitrary text."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import detector
from detector import classify, clean
from detector.api import parse_keep, render
from detector.pages import parse_annotated
from detector.segment import normalise_newlines, split_paragraphs
from tests.conftest import EXAMPLE, EXAMPLE_ANNOTATED, needs_example


@needs_example
def test_example_page_is_cleaned_to_its_16_editorial_paragraphs():
    page = EXAMPLE.read_text(encoding="utf-8")
    assert clean(page) == "\n\n".join(split_paragraphs(page)[:16])


@needs_example
def test_example_page_labels_match_the_annotation():
    page = EXAMPLE.read_text(encoding="utf-8")
    expected = parse_annotated(EXAMPLE_ANNOTATED.read_text(encoding="utf-8"))
    assert render(classify(page), "annotated") == EXAMPLE_ANNOTATED.read_text(encoding="utf-8")
    assert [p.label for p in classify(page)] == [p.label for p in expected]


def test_classify_gives_index_label_probabilities_and_text():
    paragraphs = classify("Titel der Meldung\r\n\r\nDer Umsatz stieg im dritten Quartal um vier Prozent.")
    assert [p.index for p in paragraphs] == [0, 1]
    assert paragraphs[1].text == "Der Umsatz stieg im dritten Quartal um vier Prozent."
    for p in paragraphs:
        assert set(p.probabilities) == {"editorial", "promotional", "navigational"}
        assert abs(sum(p.probabilities.values()) - 1) < 1e-9
        assert p.label == max(p.probabilities, key=p.probabilities.get)


def test_keep_selects_labels():
    page = (
        "Kurs steigt deutlich nach Zahlen\n\nDer Umsatz stieg um vier Prozent auf 2,1 Milliarden Euro.\n\n"
        "Impressum | Datenschutz | Kontakt"
    )
    paragraphs = classify(page)
    everything = clean(page, keep=("editorial", "promotional", "navigational"))
    assert everything == "\n\n".join(p.text for p in paragraphs)
    assert clean(page, keep=()) == ""


def test_json_rendering_holds_every_paragraph():
    paragraphs = classify("Eins\n\nZwei drei")
    record = json.loads(render(paragraphs, "json"))
    assert [p["index"] for p in record["paragraphs"]] == [0, 1]
    assert [p["text"] for p in record["paragraphs"]] == ["Eins", "Zwei drei"]
    assert record["text"] == render(paragraphs, "text")


def test_parse_keep_rejects_unknown_labels():
    assert parse_keep("editorial, navigational") == ("editorial", "navigational")
    for bad in ("werbung", ""):
        try:
            parse_keep(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_empty_page():
    assert classify("") == []
    assert clean(" \n\t\n") == ""


def _is_subsequence(part: list[str], whole: list[str]) -> bool:
    it = iter(whole)
    return all(any(p == w for w in it) for p in part)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
    | st.lists(
        st.sampled_from(["Aktie steigt", "", " ", "Jetzt kaufen!", "\r\n", "\n", "\u00a0", "Weitere News", "•"]),
        max_size=30,
    ).map("\n".join)
)
def test_cleaned_output_is_a_subsequence_of_the_input_paragraphs(page):
    paragraphs = split_paragraphs(normalise_newlines(page))
    cleaned = classify(page)
    assert [p.text for p in cleaned] == paragraphs
    kept = [p.text for p in cleaned if p.label == "editorial"]
    assert clean(page) == "\n\n".join(kept)
    assert _is_subsequence(kept, paragraphs)
    annotated = render(cleaned, "annotated")
    assert [p.text for p in parse_annotated(annotated)] == paragraphs if paragraphs else annotated == ""


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: detector.clean(None), TypeError, "the page must be str (decode bytes first; classify_html"),
        (lambda: detector.classify(b"Kurs"), TypeError, "the page must be str (decode bytes first"),
        (lambda: detector.clean_html(42), TypeError, "the page must be str or bytes, not int"),
        (lambda: detector.clean("Kurs", model="m.bin"), TypeError, "model must be a loaded model"),
        (lambda: detector.clean("Kurs", memory=5), TypeError, "memory must be a SiteMemory"),
        (lambda: detector.clean("Kurs", keep=None), TypeError, "keep must be labels"),
        (
            lambda: detector.clean("Kurs", min_editorial="0.5"),
            TypeError,
            "min_editorial must be a number, not str",
        ),
        (lambda: detector.clean("Kurs", min_editorial=2), ValueError, "min_editorial must be a probability"),
        (lambda: detector.clean("Kurs", min_editorial=float("nan")), ValueError, "between 0 and 1, not nan"),
        (
            lambda: detector.clean("Kurs", favor="x"),
            ValueError,
            "favor must be one of precision, balanced, recall, not 'x'",
        ),
    ],
)
def test_library_calls_with_arguments_of_the_wrong_kind_say_so(call, error, message):
    """Not an AttributeError from deep inside (``'NoneType' object has no attribute 'startswith'``)."""
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_html_as_bytes_like_objects_is_read():
    html = b"<p>Die Aktie stieg am Montag um drei Prozent.</p>"
    every = "editorial,promotional,navigational"
    for page in (html, bytearray(html), memoryview(html)):
        assert detector.clean_html(page, keep=every) == "Die Aktie stieg am Montag um drei Prozent."


def test_library_arguments_that_are_numbers_or_pages_of_other_kinds():
    """numpy's numbers, Decimal and Fraction are probabilities too; a preset must be a str; site_memory takes
    an iterable of pages, not one page read character by character."""
    from decimal import Decimal
    from fractions import Fraction

    import numpy as np

    page = "Die Aktie stieg am Montag um drei Prozent.\n\nMehr zum Thema"
    expected = detector.clean(page, min_editorial=0.5)
    for value in (np.float32(0.5), Decimal("0.5"), Fraction(1, 2)):
        assert detector.clean(page, min_editorial=value) == expected
    with pytest.raises(TypeError, match="favor must be a str"):
        detector.clean(page, favor=["balanced"])
    with pytest.raises(TypeError, match="pages must be an iterable of pages"):
        detector.site_memory("abc")
    with pytest.raises(TypeError, match="the page must be str or bytes, not NoneType"):
        detector.site_memory([None])
    with pytest.raises(TypeError, match="keep must be labels"):
        detector.clean(page, keep=b"editorial")


def test_load_model_is_keyed_by_the_file_not_by_the_name_given(tmp_path, monkeypatch):
    """The same relative name in another folder, or a model written anew over the old one, is another model;
    an empty path or a number is refused."""
    from detector.api import load_model
    from detector.model import shipped_model

    shipped = open(shipped_model(), "rb").read()  # noqa: SIM115
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "m.bin").write_bytes(shipped)
    monkeypatch.chdir(tmp_path / "a")
    first = load_model("m.bin")
    assert load_model("m.bin") is first and load_model(tmp_path / "a" / "m.bin") is first
    monkeypatch.chdir(tmp_path / "b")
    second = load_model("m.bin")
    assert second is not first
    (tmp_path / "b" / "m.bin").write_bytes(shipped + b"")  # written anew: another modification time
    import os

    os.utime(tmp_path / "b" / "m.bin", ns=(1, 1))
    assert load_model("m.bin") is not second
    with pytest.raises(ValueError, match="model path is empty"):
        load_model("")
    with pytest.raises(TypeError, match=r"model path must be a str or os\.PathLike, not int"):
        load_model(5)  # type: ignore[arg-type]


MARKDOWN_PAGE = [
    "# Siemens hebt **Prognose** an #",
    "Kurz zusammengefasst:\n  • Umsatz steigt\n  • Marge *stabil*",
    "24. Dezember: Die Börse bleibt geschlossen.",
    "1. FC Köln gewinnt",
    "Die Gründe:\n3. Zinsen\n4. Gewinne, siehe [Bericht](https://ex.de/a?b=1&c=2)\n   und mehr\n"
    "5. [Trick](javascript:x)",
    "| Kennzahl | 2025 |\n|---|---:|\n| Umsatz | 11,3<br>bereinigt |\n| Gewinn \\| EBIT | 1,5 |",
    "> Wir sind zufrieden.\n> Das Jahr war gut.",
    "Ausblick\n--------",
    "---",
    "Anleger*innen und kurs_ziel mit `KGV <12>` & \\*Sternchen\\* ![Bild: Chef](https://ex.de/c.jpg)",
    "- Punkt\n1. Nummer",
]


def test_a_text_pages_markdown_becomes_html_in_html_output():
    """-f html of a Markdown page wrote its marks as text ("<p># Siemens …</p>", the title too): its headings,
    lists, tables, quotes and inline marks are HTML now; a line that starts like a numbered item is one only
    beside a second, as plain text starts dates and club names so; links that run script are left text."""
    from detector.api import Paragraph, as_html

    certain = {"editorial": 1.0, "promotional": 0.0, "navigational": 0.0}
    page = [Paragraph(i, text, "editorial", certain) for i, text in enumerate(MARKDOWN_PAGE)]
    assert as_html(page).split("<body>\n", 1)[1] == (
        "<h1>Siemens hebt <strong>Prognose</strong> an</h1>\n"
        "<p>Kurz zusammengefasst:</p>\n<ul>\n<li>Umsatz steigt</li>\n<li>Marge <em>stabil</em></li>\n</ul>\n"
        "<p>24. Dezember: Die Börse bleibt geschlossen.</p>\n"
        "<p>1. FC Köln gewinnt</p>\n"
        '<p>Die Gründe:</p>\n<ol start="3">\n<li>Zinsen</li>\n'
        '<li>Gewinne, siehe <a href="https://ex.de/a?b=1&amp;c=2">Bericht</a><br>\nund mehr</li>\n'
        "<li>Trick</li>\n</ol>\n"
        "<table>\n<thead><tr><th>Kennzahl</th><th>2025</th></tr></thead>\n"
        "<tbody>\n<tr><td>Umsatz</td><td>11,3<br>bereinigt</td></tr>\n"
        "<tr><td>Gewinn | EBIT</td><td>1,5</td></tr>\n"
        "</tbody>\n</table>\n"
        "<blockquote><p>Wir sind zufrieden.<br>\nDas Jahr war gut.</p></blockquote>\n"
        "<h2>Ausblick</h2>\n"
        "<hr>\n"
        "<p>Anleger*innen und kurs_ziel mit <code>KGV &lt;12&gt;</code> &amp; *Sternchen* Bild: Chef</p>\n"
        "<p>- Punkt<br>\n1. Nummer</p>\n"
        "</body>\n</html>"
    )
    assert "<title>Siemens hebt Prognose an</title>" in as_html(page)


@pytest.mark.parametrize(
    "text",
    ["*a " * 40_000, "**a " * 30_000, "_a " * 40_000, "`" * 100_000, "![a" * 40_000, "# " + " " * 100_000 + "x"]
    + ["> " * 100_000 + "a", "*a " * 20_000 + "b_ " * 20_000, "Kurs | Wert\n|-|-" + " " * 100_000 + "x"],
)
def test_markdown_made_to_be_slow_renders_in_linear_time(text):
    """Spans that could reach to the end of their line ("*…*" as ".+?") took 22 s for 120 KB of "*a " and 124 s
    for 100,000 backticks, and a line of "> > > …" ended in a RecursionError: the marks are paired in one pass."""
    import time

    from detector.api import Paragraph, as_html

    certain = {"editorial": 1.0, "promotional": 0.0, "navigational": 0.0}
    start = time.perf_counter()
    out = as_html([Paragraph(0, text, "editorial", certain)])
    assert time.perf_counter() - start < 3.0 and out.endswith("</body>\n</html>")


@pytest.mark.parametrize(
    ("text", "html", "title"),
    [
        (
            "Die Termine:\n3. März: Bayer\n17. März: BASF",
            "<p>Die Termine:<br>\n3. März: Bayer<br>\n17. März: BASF</p>",
            "Die Termine:",
        ),
        ("1. FC Köln\n1. FC Nürnberg", "<p>1. FC Köln<br>\n1. FC Nürnberg</p>", "1. FC Köln"),
        (
            "Der Umsatz stieg\n– ein Plus von 7 %.",
            "<p>Der Umsatz stieg<br>\n– ein Plus von 7 %.</p>",
            "Der Umsatz stieg",
        ),
        ("Die Prämie.*\n* Nur für Aktionäre.", "<p>Die Prämie.*<br>\n* Nur für Aktionäre.</p>", "Die Prämie.*"),
        (
            "Preise (*) und Gebühren (*) gelten.",
            "<p>Preise (*) und Gebühren (*) gelten.</p>",
            "Preise (*) und Gebühren (*) gelten.",
        ),
        (
            "[Mehr zur [Aktie](https://b.de) hier](https://a.de)",
            '<p><a href="https://a.de">Mehr zur Aktie hier</a></p>',
            "Mehr zur Aktie hier",
        ),
        (
            "[Quelle <https://d.de> hier](https://e.de)",
            '<p><a href="https://e.de">Quelle https://d.de hier</a></p>',
            "Quelle https://d.de hier",
        ),
        (
            "[S](https://w.org/S_(U)) und **fünf\nProzent**",
            '<p><a href="https://w.org/S_(U)">S</a> und <strong>fünf<br>\nProzent</strong></p>',
            "S und fünf",
        ),
        ("> Zitat des Tages", "<blockquote><p>Zitat des Tages</p></blockquote>", "Zitat des Tages"),
        (
            "- Erster Punkt\n- Zweiter Punkt",
            "<ul>\n<li>Erster Punkt</li>\n<li>Zweiter Punkt</li>\n</ul>",
            "Erster Punkt",
        ),
        (
            "| Kurs | Wert |\n|---|---|",
            "<table>\n<thead><tr><th>Kurs</th><th>Wert</th></tr></thead>\n</table>",
            "Kurs Wert",
        ),
        ("Umsatz<br>2024 gestiegen", "<p>Umsatz<br>2024 gestiegen</p>", "Umsatz 2024 gestiegen"),
        ("*Eilmeldung: EZB\nsenkt*", "<p><em>Eilmeldung: EZB<br>\nsenkt</em></p>", "Eilmeldung: EZB"),
        ("---", "<hr>", "Artikel"),
        (
            "Mit `grep *Dax*\n--count` zählen.",
            "<p>Mit <code>grep *Dax*<br>\n--count</code> zählen.</p>",
            "Mit grep *Dax*",
        ),
        # round 78: a bold link (html2text's headline) kept its marks, in the title too; a heading followed by its
        # text in one block stayed "## …" text; a nested list's bullets were text inside its parent item
        (
            "**[Siemens hebt Prognose an](https://ex.de/a)**",
            '<p><strong><a href="https://ex.de/a">Siemens hebt Prognose an</a></strong></p>',
            "Siemens hebt Prognose an",
        ),
        (
            "Kurs **`SIE`** und *[Bericht](https://ex.de/b)*, **fett**[mehr](https://ex.de/c)",
            '<p>Kurs <strong><code>SIE</code></strong> und <em><a href="https://ex.de/b">Bericht</a></em>, '
            '<strong>fett</strong><a href="https://ex.de/c">mehr</a></p>',
            "Kurs SIE und Bericht, fettmehr",
        ),
        (
            "## Ausblick\nDer Konzern rechnet mit mehr.",
            "<h2>Ausblick</h2>\n<p>Der Konzern rechnet mit mehr.</p>",
            "Ausblick",
        ),
        (
            "Kurz:\n  * Umsatz steigt\n    * in Europa\n    * in Asien\n  * Marge stabil",
            "<p>Kurz:</p>\n<ul>\n<li>Umsatz steigt\n<ul>\n<li>in Europa</li>\n<li>in Asien</li>\n</ul></li>\n"
            "<li>Marge stabil</li>\n</ul>",
            "Kurz:",
        ),
        # round 79: nested at the item's text (CommonMark: two spaces under "- ", three under "1. "); numbers under
        # an item that do not count up by one are dates, not a list
        (
            "1. Quartal:\n   * Umsatz\n   * Gewinn\n2. Quartal:\n   - in Europa\n   - in Asien",
            "<ol>\n<li>Quartal:\n<ul>\n<li>Umsatz</li>\n<li>Gewinn</li>\n</ul></li>\n"
            "<li>Quartal:\n<ul>\n<li>in Europa</li>\n<li>in Asien</li>\n</ul></li>\n</ol>",
            "1. Quartal:",
        ),
        (
            "Termine:\n  * Zahlen am\n    28. Januar\n    30. April\n  * Hauptversammlung",
            "<p>Termine:</p>\n<ul>\n<li>Zahlen am<br>\n28. Januar<br>\n30. April</li>\n"
            "<li>Hauptversammlung</li>\n</ul>",
            "Termine:",
        ),
    ],
)
def test_markdown_keeps_what_plain_text_means(text, html, title):
    """Attack round 52: numbered lines whose numbers do not count up by one ("3. März", "17. März"; "1. FC
    Köln" twice) became a list the browser numbered anew; a wrapped sentence's "– ein Plus" or a footnote's
    "* Nur für" a bullet; "(*) … (*)" emphasis; a link in a link's text nested <a>; an address with
    parentheses and marks across a line break stayed marks; the title kept "> ", "- " and "|" and glued
    words at a <br>."""
    from detector.api import Paragraph, as_html

    certain = {"editorial": 1.0, "promotional": 0.0, "navigational": 0.0}
    out = as_html([Paragraph(0, text, "editorial", certain)])
    assert out.split("<body>\n", 1)[1] == html + "\n</body>\n</html>"
    assert f"<title>{title.replace('>', '&gt;')}</title>" in out


def test_rules_that_differ_past_200_characters_mark_outputs_apart():
    """Attack round 53: the settings' mark hashed the rules' repr, which cuts a pattern off at 200 characters:
    a long list of phrases with one more at its end kept the outputs of the old list."""
    import re as regex

    from detector.batch import RunConfig, settings_mark
    from detector.rules import Rule

    def config(last: str) -> RunConfig:
        return RunConfig(rules=(Rule("r", "drop", regex.compile("z" * 210 + "|" + last)),))

    assert settings_mark(config("Energiekonzern")) != settings_mark(config("QQQ"))
    assert settings_mark(config("QQQ")) == settings_mark(config("QQQ"))


def test_library_slips_of_attack_round_56_are_named(tmp_path):
    """Blocks that are not Blocks failed deep inside (AttributeError); a dict of pages made an empty memory; a
    keep list of None said "unknown label"; a Decimal signalling NaN was "not a number"; an HTML page or a
    file's name given to ``clean`` came back as an article of its own without a word; lone surrogates made
    ``-f html``/``json`` output that could not be written as UTF-8; an annotated page that will not read back
    was rendered without the note the CLI gives."""
    import warnings
    from decimal import Decimal

    from detector.api import as_html, label_stream, render

    with pytest.raises(TypeError, match=re.escape("blocks must be Block (one per paragraph: html_blocks)")):
        list(label_stream(["Der DAX stieg."], [None]))
    with pytest.raises(TypeError, match=re.escape("not dict (its values, the pages: pages.values())")):
        detector.site_memory({"a.html": "<p>x</p>"})
    with pytest.raises(TypeError, match="a list holding NoneType"):
        detector.clean("Kurs", keep=[None])
    with pytest.raises(ValueError, match="between 0 and 1, not nan"):
        detector.clean("Kurs", min_editorial=Decimal("sNaN"))
    html = "<html><head><title>t</title></head><body><p>Die Aktie stieg.</p><p>Mehr</p></body></html>"
    with pytest.warns(UserWarning, match=re.escape("clean() reads it as text, tags and all; clean_html()")):
        assert detector.clean(html, keep="editorial,promotional,navigational") == html
    page = tmp_path / "seite.txt"
    page.write_text("Die Aktie stieg am Montag um drei Prozent.\n")
    with pytest.warns(UserWarning, match="the page is the name of a file"):
        detector.classify(str(page))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detector.clean("Die Aktie stieg am Montag um drei Prozent.\n\nImpressum")  # text: no warning
        detector.clean("<b>Anzeige</b> Die Aktie stieg am Montag um drei Prozent.")
    paragraphs = detector.classify("Der DAX stieg heute \udcc3 auf ein Rekordhoch.\n\nZweiter Absatz.")
    for out in (as_html(paragraphs), render(paragraphs, "json")):
        assert "\udcc3" not in out and "\ufffd" in out
        out.encode("utf-8")
    unreadable = detector.classify(
        "Der DAX stieg kräftig und schloss auf einem Rekordhoch.\n[navigational] Weiter so\n\nZweiter Absatz."
    )
    with pytest.warns(UserWarning, match="paragraph 0 has a line that begins with a label"):
        render(unreadable, "annotated")
