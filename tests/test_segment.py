"""The paragraph rule of LABELS.md and the decoding of page bytes."""

from __future__ import annotations

import codecs

import pytest

from detector.segment import NotTextError, decode, page_text, split_paragraphs


def test_blank_lines_separate_paragraphs():
    assert split_paragraphs("Titel\n\nErster Absatz.\nZweite Zeile.\n\n\n\nDritter") == [
        "Titel",
        "Erster Absatz.\nZweite Zeile.",
        "Dritter",
    ]


def test_page_without_blank_lines_is_split_into_lines():
    assert split_paragraphs("Titel\nAbsatz eins.\nAbsatz zwei.\n") == ["Titel", "Absatz eins.", "Absatz zwei."]
    # blank lines before the first line or after the last separate nothing (README: the paragraph rule)
    assert split_paragraphs("\n\nTitel\nAbsatz eins.\n\n\n") == ["Titel", "Absatz eins."]


def test_bullet_list_without_blank_lines_stays_one_paragraph():
    page = "Kurz zusammengefasst:\n  • Umsatz steigt\n  • Marge sinkt\n\nText."
    assert split_paragraphs(page) == ["Kurz zusammengefasst:\n  • Umsatz steigt\n  • Marge sinkt", "Text."]


def test_whitespace_only_lines_count_as_blank():
    page = "Eins\n \t \nZwei\n\u00a0\u00a0\nDrei\n\u200b\nVier\n\x0c\nFünf"
    assert split_paragraphs(page) == ["Eins", "Zwei", "Drei", "Vier", "Fünf"]


def test_trailing_and_leading_whitespace_inside_a_paragraph_is_kept():
    assert split_paragraphs("  eingerückt  \nzweite  \n\nnächster\t") == ["  eingerückt  \nzweite  ", "nächster\t"]


def test_empty_and_blank_pages_have_no_paragraphs():
    assert split_paragraphs("") == []
    assert split_paragraphs("\n \n\t\n") == []


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_crlf_and_lone_cr_are_read_as_lf(newline):
    data = newline.join(["Titel", "", "Absatz", "zweite Zeile"]).encode()
    assert split_paragraphs(decode(data)) == ["Titel", "Absatz\nzweite Zeile"]


@pytest.mark.parametrize(
    "data",
    [
        "Für 12 € „gut“".encode(),
        codecs.BOM_UTF8 + "Für 12 € „gut“".encode(),
        "Für 12 € „gut“".encode("utf-16"),
        "Für 12 € „gut“".encode("utf-16-be"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-bom", "utf-16-be-no-bom-forced"],
)
def test_unicode_encodings(data):
    forced = None if not data.startswith(b"\x00") else "utf-16-be"
    assert decode(data, forced) == "Für 12 € „gut“"


def test_windows_1252_is_detected():
    text = "Die Aktie der Müller AG stieg um 3 Prozent auf 12,50 € – „überraschend“, sagte der Händler.\n" * 3
    assert decode(text.encode("cp1252")) == text


def test_latin_1_umlauts_are_detected():
    text = "Die Börse in Zürich schloss fester. Anleger kauften Aktien großer Versicherer.\n" * 3
    assert decode(text.encode("latin-1")) == text


def test_forced_encoding_that_does_not_fit_is_an_error():
    with pytest.raises(NotTextError, match=r"cannot be decoded as ascii \(byte 1\)"):
        decode("Bör".encode(), "ascii")
    with pytest.raises(NotTextError, match="unknown encoding"):
        decode(b"abc", "no-such-codec")


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF document"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "gzip data"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG image"),
        (bytes(range(256)) * 4, "control bytes"),
        (bytes(100) + b"text" * 10, "NUL bytes"),
    ],
)
def test_binary_input_is_refused(data, kind):
    with pytest.raises(NotTextError, match=kind):
        decode(data)


def test_mojibake_is_repaired_only_when_asked():
    broken = "FÃ¼r Anleger ist das â€žeine gute Nachrichtâ€œ.".encode()
    assert page_text(broken) == "FÃ¼r Anleger ist das â€žeine gute Nachrichtâ€œ."
    assert page_text(broken, fix_mojibake=True) == "Für Anleger ist das „eine gute Nachricht“."
