"""HTML and WARC in, article out: files, standard input, folders, JSON Lines, WARC, the API, -f html, and bad
HTML treated like bad text."""

from __future__ import annotations

import gzip
import io
import json
import re

import pytest

from detector import classify_html, clean_html
from detector.markup import blocks, decode_html, paid_link
from tests.conftest import ROOT, run

PAGE = ROOT / "tests" / "fixtures" / "html" / "quartalszahlen.html"
ARTICLE = [
    "Maschinenbauer übertrifft die Erwartungen im dritten Quartal",
    "Ein starkes Geschäft mit Ersatzteilen und Wartung hat dem Maschinenbauer ein unerwartet gutes drittes "
    "Quartal beschert. Der Vorstand hebt die Prognose für das Gesamtjahr an.",
    "Der Umsatz stieg im Vergleich zum Vorjahreszeitraum um neun Prozent auf 1,84 Milliarden Euro, wie das "
    "Unternehmen am Donnerstag in Stuttgart mitteilte. Analysten hatten im Schnitt mit 1,76 Milliarden Euro "
    "gerechnet. Das bereinigte Ergebnis vor Zinsen und Steuern legte sogar um vierzehn Prozent zu.",
    "Besonders gefragt waren Wartungsverträge und Ersatzteile für bereits installierte Anlagen. Dieses Geschäft "
    "ist weniger abhängig von der Konjunktur und bringt deutlich höhere Margen als der Verkauf neuer Maschinen, "
    "erklärte die Finanzchefin in einer Telefonkonferenz mit Analysten.",
    "Prognose angehoben",
    "Für das Gesamtjahr erwartet der Vorstand nun einen Umsatz zwischen 7,2 und 7,4 Milliarden Euro. "
    "Bisher hatte er höchstens 7,1 Milliarden Euro in Aussicht gestellt. Die Marge soll ebenfalls am oberen "
    "Ende der bisherigen Spanne liegen, weil die Kosten für Material und Energie zuletzt gesunken sind.",
    "An der Börse kamen die Zahlen gut an. Die Aktie gewann im frühen Handel mehr als sechs Prozent und war damit "
    "einer der größten Gewinner im Nebenwerteindex. Seit Jahresbeginn hat das Papier damit rund ein Viertel an "
    "Wert gewonnen.",
]
EXPECTED = "\n\n".join(ARTICLE) + "\n"


def test_the_page_is_cut_into_paragraphs_by_the_dev_set_rule():
    texts = [b.text for b in blocks(PAGE.read_text(encoding="utf-8"))]
    assert texts[:7] == [
        "Zum Inhalt springen",
        "Startseite",
        "Märkte",
        "Unternehmen",
        "Geldanlage",
        "Podcast",
        ARTICLE[0],
    ]
    assert texts[7:13] == ARTICLE[1:]
    assert texts[13:] == [
        "Anzeige",
        "Jetzt Depot eröffnen und ein Jahr lang ohne Ordergebühren handeln – nur für kurze Zeit!",
        "Impressum",
        "Datenschutz",
        "Kontakt",
        "© 2026 Beispielportal GmbH. Alle Rechte vorbehalten.",
    ]


@pytest.mark.parametrize(
    ("rel", "href", "paid"),
    [
        ("nofollow sponsored", "https://shop.example/kopfhoerer", True),
        (None, "https://www.amazon.de/dp/B0ABC12345?tag=geldseite-21", True),
        (None, "https://amzn.to/3xYzAbc", True),
        (None, "https://www.awin1.com/cread.php?awinmid=1234&awinaffid=5678", True),
        (None, "/go/depot-broker/", True),
        (None, "https://www.example.de/out/4711/", True),
        (None, "https://www.amazon.de/dp/B0ABC12345", False),  # a shop link without a partner id
        (None, "/suche?tag=dividende", False),
        (None, "/ratgeber/gold-kaufen/", False),
        (None, None, False),
    ],
)
def test_paid_links_are_told_from_other_links(rel, href, paid):
    assert paid_link(rel, href) is paid


def test_a_paragraph_counts_the_characters_of_its_paid_links():
    html = (
        "<p>Die Kopfhörer gibt es bei <a href='https://amzn.to/3xYzAbc'>Kaufhaus</a> für 89 Euro, "
        "<a href='/test/'>unser Test</a> lobt sie.</p>"
        "<p><a rel='sponsored' href='https://x.example/'>Zum Angebot</a></p>"
    )
    first, second = blocks(html)
    assert (first.paid_chars, first.link_chars) == (len("Kaufhaus"), len("Kaufhaus") + len("unser Test"))
    assert second.paid_chars == len("Zum Angebot") == len(second.text)


def test_an_html_file_gives_its_article():
    result = run("clean-article", PAGE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == EXPECTED


def test_html_on_standard_input_and_gzipped_html():
    assert run("clean-article", stdin=PAGE.read_bytes()).stdout.decode() == EXPECTED
    assert run("clean-article", stdin=gzip.compress(PAGE.read_bytes())).stdout.decode() == EXPECTED


def test_the_api_reads_html_as_text_or_bytes():
    assert clean_html(PAGE.read_text(encoding="utf-8")) + "\n" == EXPECTED
    assert clean_html(PAGE.read_bytes()) + "\n" == EXPECTED
    paragraphs = classify_html(PAGE.read_bytes())
    assert [p.tag for p in paragraphs][6:8] == ["h1", "p"]


def test_html_output_keeps_headings_paragraphs_and_lists():
    result = run("clean-article", "-f", "html", PAGE)
    out = result.stdout.decode()
    assert "<h1>Maschinenbauer übertrifft die Erwartungen im dritten Quartal</h1>" in out
    assert "<h2>Prognose angehoben</h2>" in out
    assert out.count("<p>") == 5 and "<ul>" not in out
    listing = run("clean-article", "-f", "html", "-k", "editorial,navigational", PAGE).stdout.decode()
    assert "<ul>\n<li>Startseite</li>" in listing


def test_a_folder_of_html_pages_gives_text_files(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.html").write_bytes(PAGE.read_bytes())
    (src / "b.htm").write_bytes(PAGE.read_bytes())
    (src / "c.html.gz").write_bytes(gzip.compress(PAGE.read_bytes()))
    (src / "d.xhtml").write_bytes(PAGE.read_bytes())  # (XHTML templates and server-side includes were passed
    (src / "e.shtml").write_bytes(PAGE.read_bytes())  # over unseen)
    result = run("clean-article", src, "-o", tmp_path / "out", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    for name in ("a.txt", "b.txt", "c.txt", "d.txt", "e.txt"):
        assert (tmp_path / "out" / name).read_text(encoding="utf-8") == EXPECTED


def test_json_lines_with_an_html_field(tmp_path):
    records = [{"id": 1, "html": PAGE.read_text(encoding="utf-8")}, {"id": 2, "html": None}]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    result = run("clean-article", "--input-format", "jsonl", "--html-field", "html", stdin=data)
    assert result.returncode == 1
    (record,) = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert record["cleaned_text"] + "\n" == EXPECTED
    assert "error: <stdin>:2: the html field 'html' is null, not a string" in result.stderr.decode()


def warc_file(path, compressed=True):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=compressed)

        def response(url, body, content_type):
            headers = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
            record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers)
            writer.write_record(record)

        writer.write_record(writer.create_warcinfo_record("crawl.warc.gz", {"software": "test"}))
        response("https://example.org/a", PAGE.read_bytes(), "text/html; charset=utf-8")
        response("https://example.org/data.json", b'{"kurs": 12.5}', "application/json")
        latin = PAGE.read_text(encoding="utf-8").replace('charset="utf-8"', 'charset="iso-8859-1"')
        response("https://example.org/b", latin.encode("latin-1", "replace"), "text/html; charset=iso-8859-1")


def test_a_warc_file_gives_one_json_line_per_html_response(tmp_path):
    warc = tmp_path / "crawl.warc.gz"
    warc_file(warc)
    result = run("clean-article", warc)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["url"] for r in records] == ["https://example.org/a", "https://example.org/b"]
    assert records[0]["cleaned_text"] + "\n" == EXPECTED
    assert records[1]["cleaned_text"].startswith("Maschinenbauer übertrifft")
    assert all(r["record_id"].startswith("<urn:uuid:") for r in records)
    batch = run("clean-article", tmp_path, "-o", tmp_path.parent / "out", "--jobs", "1")
    assert "1 record skipped (not an HTML response)" in batch.stderr.decode()
    assert len((tmp_path.parent / "out" / "crawl.jsonl").read_text(encoding="utf-8").splitlines()) == 2


DEEP = "its elements are nested deeper than 2,048 levels: the text below cannot be read"


@pytest.mark.parametrize(
    ("data", "kept", "error"),
    [
        (PAGE.read_bytes()[:1500], b"", ""),  # truncated in the middle of the article
        (b"<div>" * 300 + b"<p>Tief verschachtelt, aber lesbar.</p>" + b"</div>" * 300, b"Tief verschachtelt", ""),
        (b"<div><span>" * 200 + b"<p>Hinter 400 offenen Tags.</p>", b"Hinter 400 offenen Tags.", ""),
        (b"<div>" * 20000 + b"<p>Tief verschachtelt, aber lesbar.</p>" + b"</div>" * 20000, b"", DEEP),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), b"", "not a text file (PNG image)"),
    ],
    ids=["truncated", "nested-300", "unclosed-400", "nested-20000", "binary"],
)
def test_bad_html_gets_a_result_or_a_clear_error(tmp_path, data, kept, error):
    """Every paragraph up to libxml2's depth bound is read (its default bound of 256 levels silently dropped
    the rest of a page); past it, a clear error rather than a page without its text."""
    path = tmp_path / "page.html"
    path.write_bytes(data)
    result = run("clean-article", "-k", "editorial,promotional,navigational", path)
    assert b"Traceback" not in result.stderr
    if error:
        assert (result.returncode, result.stderr.decode(), result.stdout) == (1, f"error: {path}: {error}\n", b"")
    else:
        assert result.returncode == 0, result.stderr
        assert kept in result.stdout


def test_a_lone_surrogate_in_html_from_json_does_not_end_the_page():
    """libxml2 ends a document at a lone surrogate (possible in a str read from JSON): it becomes U+FFFD."""
    html = "<p>Die \ud800 Aktie stieg um drei Prozent.</p><p>Der zweite Absatz folgt hier.</p>"
    assert [p.text for p in classify_html(html)] == [
        "Die \ufffd Aktie stieg um drei Prozent.",
        "Der zweite Absatz folgt hier.",
    ]


@pytest.mark.parametrize(
    ("name", "cut", "error", "kept"),
    [
        ("crawl.warc", 300, "record 4: cut short: the file ends 296 bytes before the record's end", 1),  # + CRLFs
        ("crawl.warc.gz", 20, "record 4: truncated gzip data: the file ends inside this record", 1),
        ("crawl.warc.gz", 4, "record 4: truncated gzip data after this record: whatever followed it is lost", 2),
        ("crawl.warc.gz", 2000, "record 2: truncated gzip data: the file ends inside this record", 0),
        ("crawl.warc.gz", -1, "", 2),  # one gzip stream for the whole file, which warcio refuses
    ],
    ids=["plain", "gzip-record", "gzip-trailer", "gzip-all-but-the-start", "gzip-whole-file"],
)
def test_a_warc_cut_short_is_an_error_not_a_shorter_crawl(tmp_path, name, cut, error, kept):
    """warcio reads a record whose file ends early as if whole, and stops without a word inside a gzip
    member: both once gave exit 0 and fewer pages. A WARC gzipped as one stream is read whole."""
    warc = tmp_path / name
    warc_file(warc, compressed=name.endswith(".gz") and cut > 0)
    if cut > 0:
        warc.write_bytes(warc.read_bytes()[:-cut])
    else:
        warc.write_bytes(gzip.compress(warc.read_bytes()))
    result = run("clean-article", warc)
    skipped = f"note: {warc}: 1 record skipped (not an HTML response)\n" if kept else ""  # the image, read
    assert (result.returncode, result.stderr.decode()) == (
        (1, f"error: {warc} {error}\n{skipped}")
        if error
        else (0, skipped)  # errors as they come, notes at the end
    )
    urls = [json.loads(line)["url"] for line in result.stdout.decode().splitlines()]
    assert urls == ["https://example.org/a", "https://example.org/b"][:kept]


def test_a_warc_cut_between_records_says_after_which(tmp_path):
    """A cut that leaves only the start of the last record's gzip member: warcio takes the error it gets
    between records for the end of the file; the cut is told all the same."""
    import zlib

    warc = tmp_path / "crawl.warc.gz"
    warc_file(warc)
    data = warc.read_bytes()
    starts, rest = [0], data
    while rest:
        member = zlib.decompressobj(31)
        member.decompress(rest)
        rest = member.unused_data
        starts.append(len(data) - len(rest))
    warc.write_bytes(data[: starts[-2] + 12])  # the last member's header and two bytes of it
    result = run("clean-article", warc)
    message = f"error: {warc} record 3: truncated gzip data after this record: whatever followed it is lost\n"
    skipped = f"note: {warc}: 1 record skipped (not an HTML response)\n"
    assert (result.returncode, result.stderr.decode()) == (1, message + skipped)
    assert [json.loads(line)["url"] for line in result.stdout.decode().splitlines()] == ["https://example.org/a"]


def test_gzip_pages_are_read_to_their_end_and_a_cut_one_is_refused(tmp_path):
    """Every member of a multi-member gzip file is read (zcat's rule); a file cut before its stream's end is
    an error, not a page without its end."""
    html = PAGE.read_bytes()
    middle = html.index(b"</p>", len(html) // 2) + 4
    (tmp_path / "whole.html.gz").write_bytes(gzip.compress(html[:middle]) + gzip.compress(html[middle:]))
    (tmp_path / "cut.html.gz").write_bytes(gzip.compress(html)[:-30])
    whole = run("clean-article", tmp_path / "whole.html.gz")
    assert (whole.returncode, whole.stdout.decode()) == (0, EXPECTED)
    cut = run("clean-article", tmp_path / "cut.html.gz")
    assert (cut.returncode, cut.stdout) == (1, b"")
    assert (
        cut.stderr.decode()
        == f"error: {tmp_path / 'cut.html.gz'}: truncated gzip data (it ends before the end of its stream)\n"
    )


def test_a_meta_charset_that_lies_loses_against_the_bytes():
    page = '<html><head><meta charset="iso-8859-1"></head><body><p>Börse für Anleger</p></body></html>'
    assert decode_html(page.encode("utf-8")) == page
    lying = page.replace("iso-8859-1", "utf-8").encode("cp1252")
    assert "Börse für Anleger" in decode_html(lying)


def test_an_html_page_larger_than_max_bytes_is_refused(tmp_path):
    path = tmp_path / "big.html"
    path.write_bytes(PAGE.read_bytes())
    result = run("clean-article", "--max-bytes", "1000", path)
    assert result.returncode == 1
    assert result.stderr.decode() == f"error: {path}: larger than --max-bytes (1000 bytes)\n"


def warc_bytes(tmp_path) -> bytes:
    """The WARC of ``warc_file``, uncompressed: warcinfo, an HTML page, a JSON response, an HTML page."""
    warc = tmp_path / "plain.warc"
    warc_file(warc, compressed=False)
    return warc.read_bytes()


@pytest.mark.parametrize(
    ("damage", "kept", "error"),
    [
        ("blank lines first", 2, ""),  # warcio read them as a record of no type that swallowed the file
        (
            "no Content-Length",
            0,
            "record 1: damaged WARC data, the rest is not read (ValueError: a record without",
        ),
        ("no WARC-Target-URI", 1, "record 2: a response without a WARC-Target-URI (or an empty one)"),
        ("header cut", 1, "record 3: damaged WARC data"),  # in its WARC headers: what warcio made of it varies
        ("gzip, then bytes", 1, "record 3: damaged WARC data, the rest is not read (error: bytes after a gzip"),
        ("gzip, zero padding", 2, ""),
    ],
)
def test_a_damaged_warc_is_told_and_never_ends_the_batch(tmp_path, damage, kept, error):
    """warcio took each of these for the end of the file (exit 0, records lost) or raised from deep inside
    (AttributeError, OverflowError), which ended the whole batch without its errors file or summary."""
    data = warc_bytes(tmp_path)
    second = data.index(b"WARC/1.0", 10)
    third = data.index(b"WARC/1.0", second + 10)
    if damage == "blank lines first":
        data = b"\r\n\r\n" + data
    elif damage == "no Content-Length":
        data = re.sub(rb"Content-Length: \d+\r\n", b"", data, count=1)
    elif damage == "no WARC-Target-URI":
        data = data[:second] + re.sub(rb"WARC-Target-URI: [^\r]*\r\n", b"", data[second:], count=1)
    elif damage == "header cut":
        data = data[: third + 40]
    else:
        members = [gzip.compress(data[:third]), gzip.compress(data[third:])]
        data = members[0] + (b"JUNK" if damage == "gzip, then bytes" else b"\0" * 64) + members[1]
    source = tmp_path / "src"
    source.mkdir()
    name = "crawl.warc.gz" if damage.startswith("gzip") else "crawl.warc"
    (source / name).write_bytes(data)
    (source / "page.html").write_bytes(PAGE.read_bytes())
    out = tmp_path / "out"
    result = run("clean-article", source, "-o", out, "--errors", tmp_path / "errors.jsonl", "--jobs", "1")
    stderr = result.stderr.decode()
    assert result.returncode == (1 if error else 0), stderr
    assert (error in stderr) if error else "error" not in stderr
    assert len((out / "crawl.jsonl").read_text(encoding="utf-8").splitlines()) == kept
    assert (out / "page.txt").read_text(encoding="utf-8") == EXPECTED  # the batch went on
    assert "files cleaned" in stderr.splitlines()[-1]
    assert len((tmp_path / "errors.jsonl").read_text().splitlines()) == (1 if error else 0)


def test_a_cut_gzipped_warc_on_standard_input_keeps_its_whole_records(tmp_path):
    """Standard input was read whole and gunzipped at once: a cut lost every record."""
    warc = tmp_path / "crawl.warc.gz"
    warc_file(warc)
    result = run("clean-article", stdin=warc.read_bytes()[:-20])
    assert (result.returncode, result.stderr.decode()) == (
        1,
        "error: <stdin> record 4: truncated gzip data: the file ends inside this record\n"
        "note: <stdin>: 1 record skipped (not an HTML response)\n",
    )
    assert [json.loads(line)["url"] for line in result.stdout.decode().splitlines()] == ["https://example.org/a"]


def test_a_warc_record_with_a_wrong_content_length_is_a_bad_record_not_a_shortened_page(tmp_path):
    """warcio reads a record by its Content-Length and only warns when no blank line follows: a record 250
    bytes too short was written out cut mid-word, and the warning was charged to the file's last record."""
    data = warc_bytes(tmp_path)
    second = data.index(b"WARC/1.0", 10)
    length = re.search(rb"Content-Length: (\d+)\r\n", data[second:])
    start, end = second + length.start(1), second + length.end(1)
    warc = tmp_path / "crawl.warc"
    warc.write_bytes(data[:start] + str(int(length.group(1)) - 250).encode() + data[end:])
    result = run("clean-article", warc)
    assert result.returncode == 1
    errors = result.stderr.decode().splitlines()
    wrong = "not followed by a blank line: its Content-Length is wrong, its content cut or run over"
    assert errors[0] == f"error: {warc} record 2: {wrong}"
    assert errors[1].startswith(f"error: {warc} record 3: damaged WARC data, the rest is not read")  # its tail
    assert result.stdout == b""  # not the page cut 250 bytes short


def test_an_http_body_cut_inside_its_gzip_content_encoding_is_a_bad_record(tmp_path):
    """warcio decodes a Content-Encoding: gzip body that ends early without a word: the page was cleaned cut."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    warc = tmp_path / "crawl.warc"
    with open(warc, "wb") as handle:
        writer = WARCWriter(handle, gzip=False)
        for url, body in (
            ("https://example.org/cut", gzip.compress(PAGE.read_bytes())[:-40]),
            ("https://example.org/whole", gzip.compress(PAGE.read_bytes())),
        ):
            headers = StatusAndHeaders(
                "200 OK",
                [("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", "gzip")],
                protocol="HTTP/1.1",
            )
            writer.write_record(
                writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers)
            )
    result = run("clean-article", warc)
    assert result.returncode == 1
    assert (
        result.stderr.decode()
        == f"error: {warc} record 1: its HTTP body ends inside its gzip or deflate Content-Encoding\n"
    )
    (record,) = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert record["url"] == "https://example.org/whole" and record["cleaned_text"] + "\n" == EXPECTED


# Fifth attack round: HTML read as a browser shows it.


@pytest.mark.parametrize(
    ("html", "texts"),
    [
        # paragraphs of nothing but zero-width spaces, soft hyphens or bidi marks are empty, as blank lines are
        ("<h1>T</h1><p>&#8203;</p><p>A</p><p>&shy;</p><p>&zwnj;&lrm;</p><p>B&#8203;</p>", ["T", "A", "B\u200b"]),
        # an svg or math never closed: a browser shows the HTML after it (the breakout), not its own text
        ("<h1>T</h1><p>A</p><svg><text>Logo</text><p>B</p><p>C</p>", ["T", "A", "B", "C"]),
        ("<math><mi>x</mi><div>D</div>", ["D"]),
        ("<p>A</p><svg><path d=x></svg><p>B</p>", ["A", "B"]),
        ("<p>A<svg><title>Icon</title></svg> weiter</p>", ["A weiter"]),
        # wbr is a break opportunity inside a word, not a space
        ("<p>Rechenzentrums<wbr>betreiber</p>", ["Rechenzentrumsbetreiber"]),
        # noframes is raw text to the parser and not shown where frames are
        ("<frameset><noframes><body><p>X</p></body></noframes></frameset>", []),
        # an XML declaration without its ?> ends where the next tag begins
        ('<?xml version="1.0" encoding="utf-8"<!DOCTYPE html><html><body><p>A</p></body></html>', ["A"]),
        ('<?xml version="1.0" encoding="utf-8"\n<p>C ?> D</p>', ["C ?> D"]),
    ],
)
def test_paragraphs_are_what_a_browser_shows(html, texts):
    assert [b.text for b in blocks(html)] == texts


def test_a_declared_iso_8859_1_is_read_as_windows_1252_as_browsers_do():
    page = '<meta charset="iso-8859-1"><p>„Die Aktie“ – 410 €</p>'.encode("cp1252")
    assert decode_html(page) == '<meta charset="iso-8859-1"><p>„Die Aktie“ – 410 €</p>'


def test_a_one_byte_charset_that_lies_loses_against_the_bytes_and_a_true_one_stays():
    lying = '<meta charset="koi8-r"><p>Börse: Über 17 Milliarden für Rechenzentren</p>'
    notes: list[str] = []
    assert decode_html(lying.encode("cp1252"), notes=notes) == lying
    assert notes == [
        "the page's declared charset koi8-r does not fit its bytes",
        "not UTF-8, read as Windows-1252",
    ]
    russian = '<meta charset="koi8-r"><p>Акции Газпрома выросли на три процента</p>'
    assert decode_html(russian.encode("koi8-r")) == russian


def test_an_html_file_of_nul_or_control_bytes_is_refused_as_a_text_file_is(tmp_path):
    for name, data in (("nul.html", b"<p>" + b"\0" * 5000), ("ctrl.html", b"<p>" + bytes(range(1, 9)) * 600)):
        (tmp_path / name).write_bytes(data)
        result = run("clean-article", tmp_path / name)
        assert result.returncode == 1 and result.stdout == b""
        assert result.stderr.decode().startswith(f"error: {tmp_path / name}: not a text file (binary data: ")


def test_utf16_html_is_html_on_standard_input_and_under_any_name(tmp_path):
    page = "<!DOCTYPE html><html><body><h1>Börse</h1><p>Die Aktie stieg um drei Prozent.</p></body></html>"
    for data in (page.encode("utf-16"), page.encode("utf-16-le")):
        (tmp_path / "page.dat").write_bytes(data)
        for result in (run("clean-article", stdin=data), run("clean-article", tmp_path / "page.dat")):
            assert result.stdout.decode() == "Börse\n\nDie Aktie stieg um drei Prozent.\n", result.stderr


def test_a_text_page_that_mentions_tags_stays_text(tmp_path):
    text = "Kurs steigt\n\nDie Entwickler entfernen Reste wie <br> und <span> sowie <div>.\n\nZweiter Absatz.\n"
    (tmp_path / "tags.txt").write_text(text, encoding="utf-8")
    as_is = run("clean-article", "-f", "annotated", tmp_path / "tags.txt")
    as_text = run("clean-article", "-f", "annotated", "--input-format", "text", tmp_path / "tags.txt")
    assert as_is.stdout == as_text.stdout and as_is.stdout.count(b"\n\n[") == 2


def test_html_without_visible_text_says_so(tmp_path):
    (tmp_path / "script.html").write_text("<html><body><script>var x = 1;</script></body></html>")
    result = run("clean-article", tmp_path / "script.html")
    assert (result.returncode, result.stdout) == (0, b"")
    assert (
        result.stderr.decode()
        == f"note: {tmp_path / 'script.html'}: no visible text in the HTML, nothing to clean\n"
    )


def test_a_warc_response_declared_iso_8859_1_by_its_http_header_is_read_as_windows_1252(tmp_path):
    """The HTTP header's charset was applied literally: „ “ – € became control characters."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    body = "<html><body><p>„Die Aktie stieg“ – der Kurs liegt bei 410 €.</p></body></html>".encode("cp1252")
    warc = tmp_path / "crawl.warc"
    with open(warc, "wb") as handle:
        writer = WARCWriter(handle, gzip=False)
        declared = [("Content-Type", "text/html; charset=ISO-8859-1")]
        headers = StatusAndHeaders("200 OK", declared, protocol="HTTP/1.1")
        payload = io.BytesIO(body)
        record = writer.create_warc_record("https://ex.de/a", "response", payload=payload, http_headers=headers)
        writer.write_record(record)
    result = run("clean-article", "--keep", "editorial,navigational,promotional", warc)
    assert json.loads(result.stdout)["cleaned_text"] == "„Die Aktie stieg“ – der Kurs liegt bei 410 €."


@pytest.mark.parametrize(
    ("html", "paragraphs"),
    [
        # no <body> tag and an HTML5 element first: libxml2 leaves it in <head>, whose text was all dropped
        ("<header><h1>Titel</h1></header><main><p>Der Dax stieg.</p></main>", ["Titel", "Der Dax stieg."]),
        ("<app-root><p>Eins</p></app-root><p>Zwei</p>", ["Eins", "Zwei"]),
        # an <embed> (empty to a browser) swallowed the rest of its parent; so did a hidden <source> or <wbr>
        (
            "<div><p>Eins</p><embed src=x><p>Zwei</p>lose <b>fett</b></div><p>Drei</p>",
            ["Eins", "Zwei", "lose fett", "Drei"],
        ),
        ("<p>Text <wbr hidden>weiter</p><p>Ende</p>", ["Text weiter", "Ende"]),
        ("<picture><source style='display:none' srcset=a.jpg><p>Bildtext</p></picture>", ["Bildtext"]),
        # what follows </html> is shown by a browser
        ("<html><body><p>Eins</p></body></html><p>Nach dem Ende</p>", ["Eins", "Nach dem Ende"]),
        # a custom property is not the display property
        ("<p style='--mobile-display:none'>Sichtbar</p><p style='DISPLAY: none'>weg</p>", ["Sichtbar"]),
        # the title is never shown in the page, also where libxml2 puts it in the body
        ("<img src=x><title>Seitentitel</title><p>Text</p>", ["Text"]),
        # fallback text browsers do not show
        ("<video>Ihr Browser kann kein Video</video><audio>kein Ton</audio><p>Text</p>", ["Text"]),
        ("<p>Kurs<datalist><option>Dax</option></datalist></p><noembed>alt</noembed>", ["Kurs"]),
        ("<p><ruby>株<rp>(</rp><rt>kabu</rt><rp>)</rp></ruby></p>", ["株kabu"]),
    ],
)
def test_html_is_read_as_a_browser_shows_it(html, paragraphs):
    assert [b.text for b in blocks(html)] == paragraphs


def test_fix_mojibake_repairs_html_pages_and_html_records(tmp_path):
    page = "<html><body><h1>Für Anleger</h1><p>Die Börse schloss höher, sagte ein Händler.</p></body></html>"
    moji = page.encode("utf-8").decode("cp1252").encode("utf-8")
    (tmp_path / "p.html").write_bytes(moji)
    every = ("-k", "editorial,promotional,navigational")
    result = run("clean-article", *every, "--fix-mojibake", tmp_path / "p.html")
    assert (
        result.returncode == 0
        and result.stdout.decode() == "Für Anleger\n\nDie Börse schloss höher, sagte ein Händler.\n"
    )
    record = json.dumps({"html": moji.decode("utf-8")}) + "\n"
    (tmp_path / "r.jsonl").write_text(record, encoding="utf-8")
    result = run("clean-article", *every, "--fix-mojibake", "--html-field", "html", tmp_path / "r.jsonl")
    assert (
        json.loads(result.stdout)["cleaned_text"] == "Für Anleger\n\nDie Börse schloss höher, sagte ein Händler."
    )


def _texts(html: str) -> list[str]:
    return [b.text for b in blocks(html)]


def test_content_react_streamed_into_hidden_divs_is_read_where_its_script_puts_it():
    """React 18's streamed server rendering (the Next.js App Router) sends the article in
    ``<div hidden id="S:0">`` and a script moves it in place of the boundary's fallback: read as hidden, the
    article was lost and "Artikel wird geladen …" kept."""
    page = (
        '<html><body><nav><a href="/">Start</a></nav><main><!--$?--><template id="B:0"></template>'
        "<div>Artikel wird geladen …</div> Bitte warten<!--/$--><p>Nach der Grenze</p></main>"
        "<footer>Impressum</footer>"
        '<div hidden id="S:0"><h1>Inflation sinkt</h1><p>Die Teuerung fiel auf 2,0 Prozent.</p></div>'
        '<template id="P:1"></template><div hidden id="S:1"><p>Ein Segment ohne Grenze.</p></div>'
        '<div hidden id="S:7"><p>Ohne Vorlage: wo es steht.</p></div>'
        '<script>$RC("B:0","S:0");$RS("S:1","P:1")</script></body></html>'
    )
    assert _texts(page) == [
        "Start",
        "Inflation sinkt",
        "Die Teuerung fiel auf 2,0 Prozent.",
        "Nach der Grenze",
        "Impressum",
        "Ein Segment ohne Grenze.",
        "Ohne Vorlage: wo es steht.",
    ]
    assert _texts(page.replace('id="S:', 'id="X:')) == [
        "Start",
        "Artikel wird geladen …",
        "Bitte warten",
        "Nach der Grenze",
        "Impressum",
    ]  # a hidden div of another id


def test_an_until_found_answer_is_read_as_a_closed_details_is():
    page = (
        "<html><body><h3>Wie sicher ist Tagesgeld?</h3>"
        '<div hidden="until-found">Bis 100.000 Euro sind Einlagen geschützt.</div>'
        "<div hidden>Versteckt.</div><details><summary>Frage</summary>Antwort.</details></body></html>"
    )
    assert _texts(page) == [
        "Wie sicher ist Tagesgeld?",
        "Bis 100.000 Euro sind Einlagen geschützt.",
        "Frage",
        "Antwort.",
    ]


def test_the_charset_of_an_xml_declaration_and_utf8_under_a_one_byte_declaration_are_read():
    """XHTML declaring its charset only in the XML declaration was read as Windows-1252 ("ÈEZ" for "ČEZ"); a
    page whose <meta> says ISO-8859-1 around UTF-8 text (its server's header said UTF-8) came out as "Ã¶"
    throughout, without a word."""
    body = "<html><body><p>Der Versorger ČEZ und Škoda legten zu, der Złoty gab nach.</p></body></html>"
    xhtml = b'<?xml version="1.0" encoding="iso-8859-2"?>\n' + body.encode("iso-8859-2")
    notes: list[str] = []
    assert decode_html(xhtml, notes=notes).endswith(body) and notes == []
    mixed = (
        '<html><head><meta charset="iso-8859-1"></head><body><p>Veröffentlicht: Die Europäische Zentralbank '
        "senkt die Zinsen.</p><p>"
    ).encode() + "© Verlag</p></body></html>".encode("latin-1")
    text = decode_html(mixed, notes=notes)
    assert "Veröffentlicht: Die Europäische Zentralbank" in text and "© Verlag" in text
    assert notes == [
        "the page's declared charset iso8859-1 does not fit all its bytes: read as UTF-8 where they are, "
        "1 byte as Windows-1252"
    ]
    # UTF-8 chrome around a Windows-1252 article from an old database: read as UTF-8, its umlauts were lost
    chrome = '<html><head><meta charset="iso-8859-1"></head><body><nav>Börse · Märkte · Über uns</nav><p>'
    old = chrome.encode() + "Die Kurse fielen, Anleger wären gern früher ausgestiegen.</p>".encode("cp1252")
    assert "<nav>Börse · Märkte · Über uns</nav><p>Die Kurse fielen, Anleger wären gern früher" in decode_html(old)
    latin = '<html><head><meta charset="iso-8859-1"></head><body><p>Börse: Kurse fallen, Anleger ©.</p>'
    assert decode_html(latin.encode("latin-1")) == latin  # a page of its declared charset stays as it is


def test_a_streamed_boundary_without_its_end_keeps_its_fallback_and_reads_the_content():
    """Round 67: a boundary whose <!--/$--> was stripped (a proxy, a cut page), its content right after the
    template, failed the page (AttributeError)."""
    page = (
        '<html><body><main><template id="B:0"></template><p>Lädt …</p>'
        '<div hidden id="S:0"><p>Der Dax stieg um zwei Prozent.</p></div><p>Danach</p></main></body></html>'
    )
    assert _texts(page) == ["Lädt …", "Der Dax stieg um zwei Prozent.", "Danach"]  # as it stands


def test_streamed_segments_of_any_element_and_attribute_form_are_filled_and_deep_ones_read_in_place():
    """Round 68: an id written `id=S:0` or `id='S:0'` was not looked for (the article lost, the fallback kept); a
    segment React wraps as a table for rows (`<table hidden id="S:0">`) was not filled; segments nested deep
    took time in proportion to boundaries times depth (an 812 KB page: 70 s)."""
    for quote in ("", "'"):
        page = (
            f'<html><body><template id="B:0"></template><p>Lädt …</p><!--/$--><div hidden id={quote}S:0{quote}>'
            "<p>Der Dax stieg.</p></div></body></html>"
        )
        assert _texts(page) == ["Der Dax stieg."], quote
    table = (
        '<html><body><table><tbody><template id="B:1"></template><tr><td>Kurse werden geladen …</td></tr><!--/$-->'
        '</tbody></table><table hidden id="S:1"><tbody><tr><td>Dax</td><td>18.000</td></tr></tbody></table>'
        "</body></html>"
    )
    assert _texts(table) == ["Dax 18.000"]
    deep = "<div>" * 80 + '<div hidden id="S:2"><p>Tief drinnen.</p></div>' + "</div>" * 80
    page = f'<html><body><template id="B:2"></template><p>Lädt …</p><!--/$-->{deep}</body></html>'
    assert _texts(page) == ["Lädt …", "Tief drinnen."]  # deeper than React puts them: read where it stands


def test_a_windows_1252_page_whose_letters_form_utf8_by_chance_is_read_as_declared():
    """Round 68: "ß" before a no-break space and "Ä“" are valid UTF-8 by chance; a page of no UTF-8 at all had
    them read so ("Groߠ", "„ē"), and a UTF-8 page of Greek words with one stray byte came out garbled."""
    latin = (
        '<html><head><meta charset="windows-1252"></head><body><p>Die Note „Ä“ ging an die Groß\xa0Bank; '
        "für Anleger wäre das schön.</p></body></html>"
    )
    notes: list[str] = []
    assert decode_html(latin.encode("cp1252"), notes=notes) == latin and notes == []
    greek = '<html><head><meta charset="iso-8859-1"></head><body><p>Die Εθνική Τράπεζα und Газпром melden'
    text = decode_html(greek.encode() + " höhere Gewinne ©.</p>".encode("cp1252"), notes=notes)
    assert text == greek + " höhere Gewinne ©.</p>" and len(notes) == 1
