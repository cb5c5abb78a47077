"""The clean-article command on single pages: formats, --keep, stdin, notes, errors and exit codes."""

from __future__ import annotations

import json
import subprocess

import pytest

from detector.segment import split_paragraphs
from tests.conftest import BIN, EXAMPLE, EXAMPLE_ANNOTATED, ROOT, needs_example, run

PAGE = "Siemens hebt Prognose an\n\nDer Konzern rechnet nun mit einem Umsatzplus von acht Prozent.\n"


@needs_example
def test_example_page_prints_its_16_editorial_paragraphs():
    result = run("clean-article", EXAMPLE)
    assert result.returncode == 0, result.stderr
    page = EXAMPLE.read_text(encoding="utf-8")
    assert result.stdout.decode() == "\n\n".join(split_paragraphs(page)[:16]) + "\n"


@needs_example
def test_example_page_annotated_reproduces_the_labels():
    result = run("clean-article", "--format", "annotated", EXAMPLE)
    assert result.stdout.decode() == EXAMPLE_ANNOTATED.read_text(encoding="utf-8")


@needs_example
def test_stdin_and_dash_read_standard_input():
    data = EXAMPLE.read_bytes()
    from_file = run("clean-article", EXAMPLE).stdout
    assert run("clean-article", stdin=data).stdout == from_file
    assert run("clean-article", "-", stdin=data).stdout == from_file
    assert run("clean-article", stdin=data.replace(b"\n", b"\r\n")).stdout == from_file


@needs_example
def test_keep_adds_labels_in_page_order():
    result = run("clean-article", "--keep", "editorial,navigational", EXAMPLE)
    paragraphs = split_paragraphs(EXAMPLE.read_text(encoding="utf-8"))
    assert result.stdout.decode() == "\n\n".join(paragraphs[:16] + paragraphs[19:]) + "\n"
    repeated = run("clean-article", "--keep", "editorial", "--keep", "navigational", EXAMPLE)
    assert repeated.stdout == result.stdout  # a repeated --keep adds its labels: it replaced them


def test_json_format():
    result = run("clean-article", "-f", "json", stdin=PAGE.encode())
    record = json.loads(result.stdout)
    assert [p["text"] for p in record["paragraphs"]] == split_paragraphs(PAGE)
    assert {"index", "label", "probabilities", "decided_by", "text"} == set(record["paragraphs"][0])
    assert set(record["verdict"]) == {"shares", "confidence", "editorial_confidence", "flags"}


def test_unknown_label_in_keep_is_a_usage_error():
    result = run("clean-article", "--keep", "werbung", stdin=PAGE.encode())
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode() == (
        "error: --keep: unknown label 'werbung'; choose from editorial, promotional, navigational\n"
    )


def test_missing_file_is_a_one_line_error(tmp_path):
    result = run("clean-article", tmp_path / "nope.txt")
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode() == f"error: {tmp_path / 'nope.txt'}: no such file or directory\n"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4\n...", "PDF document"),
        (b"\x7fELF" + bytes(100), "ELF executable"),
        # attack round 75: a static library's symbol table (big-endian numbers) was read as UTF-16, CJK text out
        (
            b"!<arch>\n/               0           0     0     0       8         `\n" + b"\x00\x00\x01\x2a" * 600,
            "ar archive",
        ),
        (b"GOBJ\nMETADATA\r\n\x1a" + bytes(100), "GObject typelib"),
    ],
)
def test_binary_file_is_refused(tmp_path, data, reason):
    path = tmp_path / "page.txt"
    path.write_bytes(data)
    result = run("clean-article", path)
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode() == f"error: {path}: not a text file ({reason})\n"


def test_gzip_data_under_a_text_name_is_read_as_gzip(tmp_path):
    """By its content, as standard input is (it was refused as "not a text file (gzip data)")."""
    import gzip

    path = tmp_path / "page.txt"
    path.write_bytes(gzip.compress(b"Die Aktie stieg am Montag.\n\nMehr dazu.\n", mtime=0))
    assert run("clean-article", path).stdout == run("clean-article", stdin=path.read_bytes()).stdout != b""
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(100))
    result = run("clean-article", path)
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode().startswith(f"error: {path}: damaged gzip data (")


def test_html_on_standard_input_is_read_as_html():
    result = run("clean-article", "-f", "annotated", stdin=b"<html><body><p>Text</p><p>mehr</p></body></html>")
    assert result.returncode == 0
    assert [line.split("] ", 1)[1] for line in result.stdout.decode().strip().split("\n\n")] == ["Text", "mehr"]


def test_empty_input_is_empty_output_with_a_note():
    result = run("clean-article", stdin=b" \n\n\t\n")
    assert (result.returncode, result.stdout) == (0, b"")
    assert result.stderr.decode() == "note: <stdin>: empty input, nothing to clean\n"


def test_page_without_editorial_text_gives_a_note():
    result = run("clean-article", "--keep", "promotional", stdin=b"Impressum\n\nDatenschutz\n")
    if result.stdout == b"":
        assert result.stderr.decode() == "note: <stdin>: no promotional paragraph found, the output is empty\n"
    assert result.returncode == 0


def test_max_bytes_refuses_larger_input():
    result = run("clean-article", "--max-bytes", "10", stdin=PAGE.encode())
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode() == "error: <stdin>: larger than --max-bytes (10 bytes)\n"


def test_folder_without_output_is_a_usage_error(tmp_path):
    result = run("clean-article", tmp_path)
    assert result.returncode == 2
    assert result.stderr.decode() == "error: several inputs or a folder need an output folder: -o OUTDIR\n"


def test_broken_model_is_one_clear_error(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"garbage")
    result = run("clean-article", "--model", bad, stdin=PAGE.encode())
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode() == (
        f"error: {bad} is not a detector model file; give the path of a model file written by `detector train`, "
        "or none for the shipped one\n"
    )


def test_closed_pipe_ends_quietly(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text(("Der Umsatz stieg im Quartal um vier Prozent auf 2,1 Milliarden Euro.\n\n") * 20000)
    pipeline = subprocess.run(
        f"'{BIN / 'clean-article'}' -k editorial,promotional,navigational '{big}' | head -c 100 >/dev/null;"
        " echo ${PIPESTATUS[0]}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        timeout=300,
    )
    assert pipeline.stderr == b""
    assert pipeline.stdout.strip() == b"0"


def test_control_characters_and_invisible_lines_are_handled():
    page = "Titel\x00 der Meldung\n\u200b\n\x07Der Umsatz stieg um vier Prozent.\x1b\n \u00a0\t\nImpressum\n"
    result = run("clean-article", "-f", "annotated", stdin=page.encode())
    assert result.returncode == 0
    texts = [line.split("] ", 1)[1] for line in result.stdout.decode().split("\n\n") if line]
    assert [t.rstrip("\n") for t in texts] == split_paragraphs(page)


def test_full_disk_on_stdout_is_a_clear_error():
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [str(BIN / "clean-article"), "-k", "editorial,promotional,navigational"],
            input=PAGE.encode(),
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.decode() == "error: <stdout>: no space left on device\n"


def test_one_enormous_paragraph_is_cleaned(tmp_path):
    big = tmp_path / "line.txt"
    big.write_text("Der Umsatz stieg um vier Prozent. " * 200_000, encoding="utf-8")  # 6.8 MB, one line
    result = run("clean-article", "-k", "editorial,promotional,navigational", big)
    assert result.returncode == 0
    assert result.stdout == big.read_bytes() + b"\n"


MARKDOWN_PAGE = ROOT / "tests" / "fixtures" / "markdown" / "kupferpreis.md"
MARKDOWN_ARTICLE = [5, 6, 7, 9, 10, 11, 12, 13, 16, 17]  # the headline to the last body paragraph, no ad, no image


def test_a_markdown_page_is_cleaned_to_its_article_with_its_markdown_kept(tmp_path):
    """A page as markdownify writes it (menus as link lists, an image line, a bold ad, a newsletter pitch):
    the article's paragraphs come out byte for byte, their ``#`` headings and inline links kept."""
    paragraphs = split_paragraphs(MARKDOWN_PAGE.read_text(encoding="utf-8"))
    expected = "\n\n".join(paragraphs[i] for i in MARKDOWN_ARTICLE) + "\n"
    result = run("clean-article", MARKDOWN_PAGE)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode("utf-8") == expected
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "kupfer.md").write_bytes(MARKDOWN_PAGE.read_bytes())
    result = run("clean-article", folder, "-o", tmp_path / "out", "--no-site-memory")
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "out" / "kupfer.md").read_text(encoding="utf-8") == expected
