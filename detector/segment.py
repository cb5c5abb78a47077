"""Bytes to text, text to paragraphs: the paragraph rule of LABELS.md and nothing else.

A paragraph is a block of lines separated from the next by one or more blank lines; when a page has no blank
line between two non-blank lines at all, every non-blank line is a paragraph. A line counts as blank when it
holds nothing but white space (spaces, tabs, no-break spaces), invisible characters (zero-width spaces, BOMs)
or control characters, because scrapers leave all of those on "empty" lines. Paragraph text is kept exactly
as it stood, apart from line endings, which are normalised to LF.
"""

from __future__ import annotations

import codecs
import re

_NEWLINES = re.compile(r"\r\n?")
_BLANK_LINE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff\x00-\x1f\x7f]*")

# Magic numbers of the binary formats most often mistaken for text in scraping pipelines.
_MAGIC = (
    (b"%PDF", "PDF document"),
    (b"\x1f\x8b", "gzip data"),
    (b"PK\x03\x04", "zip archive"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"BZh", "bzip2 data"),
    (b"\xfd7zXZ", "xz data"),
    (b"\x28\xb5\x2f\xfd", "zstd data"),
    (b"\x7fELF", "ELF executable"),
    (b"RIFF", "RIFF media file"),
    (b"\xd0\xcf\x11\xe0", "MS Office document"),
    (b"SQLite format 3", "SQLite database"),
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class NotTextError(ValueError):
    """The input is not a text page (a binary format, HTML, or bytes no text encoding explains); the message
    is the reason shown to the user."""


def _binary(kind: str) -> NotTextError:
    return NotTextError(f"not a text file ({kind})")


def decode(data: bytes, encoding: str | None = None) -> str:
    """Decode a page's bytes: the forced encoding, else a BOM, else UTF-8, else the best guess of
    charset-normalizer (Windows-1252 and ISO-8859-1 pages are common on German sites)."""
    if encoding:
        try:
            return normalise_newlines(data.decode(encoding))
        except LookupError:
            raise NotTextError(f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            raise NotTextError(f"cannot be decoded as {encoding} (byte {exc.start})") from None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return normalise_newlines(data.decode(codec))
            except UnicodeDecodeError as exc:
                raise NotTextError(f"cannot be decoded as {codec} (byte {exc.start})") from None
    head = data[:4096]
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise _binary(kind)
    if head.count(0) > max(1, len(head) // 1000):  # a stray NUL is scraper noise, many mean binary data
        raise _binary("binary data: NUL bytes")
    try:
        return normalise_newlines(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:1_000_000]).best()
    if best is None or best.encoding is None:
        raise _binary("no text encoding fits its bytes")
    try:
        return normalise_newlines(data.decode(best.encoding))
    except UnicodeDecodeError:
        raise _binary("no text encoding fits its bytes") from None


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR become LF; a leading BOM character is dropped."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return _NEWLINES.sub("\n", text) if "\r" in text else text


def is_blank(line: str) -> bool:
    """True for a line that a reader sees as empty."""
    return _BLANK_LINE.fullmatch(line) is not None


def split_paragraphs(text: str) -> list[str]:
    """Split a page into its paragraphs by the LABELS.md rule (the text must have LF line endings)."""
    blocks = split_blocks(text)
    if len(blocks) == 1 and "\n" in blocks[0]:
        return blocks[0].split("\n")
    return blocks


def split_blocks(text: str) -> list[str]:
    """The blank-line separated blocks of a text, without the rule for pages that have no blank line."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        if is_blank(line):
            if current:
                blocks.append("\n".join(current))
                current = []
        else:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


_HTML = re.compile(r"<(?:!doctype\s+html|html|head|body|div|p|br|span|a\s+href|script|table)\b", re.I)


def page_text(data: bytes, encoding: str | None = None, fix_mojibake: bool = False) -> str:
    """A page's bytes as text with LF line endings, refusing what is not a text page.

    ``fix_mojibake`` repairs text that was decoded with the wrong encoding before it reached us
    ("FÃ¼r" → "Für") with ftfy.
    """
    text = decode(data, encoding)
    if len(_HTML.findall(text[:20000])) >= 3:
        raise NotTextError(
            "looks like HTML, not text: extract its text first (e.g. with html2text or trafilatura)"
        )
    if fix_mojibake:
        import ftfy

        text = normalise_newlines(ftfy.fix_encoding(text))
    return text
