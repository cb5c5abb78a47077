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
from collections.abc import Iterator

_NEWLINES = r"\r\n?"  # compiled on first use (re's cache): most pages have no CR
# What a reader sees as nothing: white space (\s covers the Unicode spaces), control characters, and the
# invisible format characters scrapers leave on "empty" lines: zero-width spaces and joiners, bidi marks and
# overrides, soft hyphens, word joiners, BOMs, variation selectors and the tags emoji flags leave behind, and the
# characters that draw nothing (combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Braille blank,
# musical format controls).
_INVISIBLE = (
    "\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff"
)
_BLANK_LINE = re.compile(f"[\\s{_INVISIBLE}]*")

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
    (b"!<arch>\n", "ar archive"),  # (static libraries: NULs of big-endian numbers on one side, read as UTF-16)
    (b"GOBJ\nMETADATA", "GObject typelib"),
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Characters that Windows-1252 text of German and other Western European pages is made of above ASCII:
# letters with diacritics, typographic quotes and dashes, the euro and other currency signs, degrees,
# no-break space, the section and paragraph signs.
_WESTERN = frozenset(
    "ÄÖÜäöüßÀÁÂÃÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕØÙÚÛÝàáâãåæçèéêëìíîïñòóôõøùúûýÿŒœŠšŽžŸÐðÞþ"  # (Ð ð Þ þ: Icelandic)
    "„“”‚‘’«»‹›–—…•€£¥¢°±²³µ·×÷§¶©®™‰†\u00a0\u00ad´¹¼½¾¿¡ª º"  # (soft hyphen; ´ as an apostrophe: "gibt´s")
)
_TEXT_BYTES = bytes(b for b in range(256) if b >= 0x20 or b in b"\t\n\r\x0b\x0c\x1b")  # deleted: controls
_BLANK_BYTES = bytes(range(0x21)) + b"\x7f"  # deleted: what text a reader sees is made of


class NotTextError(ValueError):
    """The input is not a text page (a binary format, or bytes no text encoding explains); the message is the
    reason shown to the user."""


def _binary(kind: str) -> NotTextError:
    return NotTextError(f"not a text file ({kind})")


NUL_BYTES = "binary data: NUL bytes"


def binary_kind(head: bytes) -> str:
    """What a page's first bytes show it to be when they are not text ('' when they are text): a known binary
    format, or bytes a text page does not have, NULs (unless it is UTF-16 without a byte-order mark) or
    control bytes. A few stray ones are scraper noise: NULs up to one byte in a hundred, and up to one in ten
    where they stand in words (``_nuls_in_words``: a scraper that wrote every umlaut as NUL), control bytes up
    to one in twenty."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    nuls = head.count(0)
    in_words = nuls > max(8, len(head) // 100) and nuls <= len(head) // 10 and _nuls_in_words(head)
    if (nuls > max(8, len(head) // 100) and not in_words) or (
        nuls and len(head) > 1 and not (head[1::2] if head[0] else head[::2]).strip(b"\0")
    ):
        return NUL_BYTES  # many NULs, or a short page with every other byte NUL (UTF-16)
    controls = len(head.translate(None, _TEXT_BYTES)) - (nuls if in_words else 0)
    if controls > max(8, len(head) // 20) or (controls and not head.translate(None, _BLANK_BYTES)):
        return "binary data: control bytes"  # many, or nothing else but blanks
    return ""


def _nuls_in_words(head: bytes) -> bool:
    """Whether nine in ten runs of NULs stand where letters were: one or two NULs (a character of one or two
    bytes) between letters, or between a letter and a space, as a scraper leaves a page whose umlauts it wrote
    as NUL. A binary format's NULs come in longer runs (numbers, padding) or beside other bytes: a TIFF, an
    icon, BSON or Python bytecode with one byte in twenty NUL was cleaned as text when any NUL in ten passed."""
    runs = words = 0
    for run in re.finditer(rb"\x00+", head):  # (re's own cache: no pattern compiled for every start)
        runs += 1
        start, end = run.span()
        before, after = head[start - 1 : start], head[end : end + 1]
        if end - start <= 2 and (
            (_letter(before) and (_letter(after) or after.isspace())) or (before.isspace() and _letter(after))
        ):
            words += 1
    return words >= 0.9 * runs


def _letter(byte: bytes) -> bool:
    """An ASCII letter, or a byte of a UTF-8 or Windows-1252 letter above ASCII."""
    return byte.isalpha() or (byte != b"" and byte[0] >= 0x80)


# What a one-byte page of another script or another Western code page looks like read as Windows-1252: a word
# of four or more letters above ASCII and none below (Cyrillic: "Àêöèè"), Mac Roman's ä, é and ü between letters
# ("stŠrkt", "fŸr"); Western text has few of them. (Not signs between letters: Western text has ’ – … ´ · ® and
# soft hyphens there, "gibt’s", "Apple®Watch"; nor its own capitals there, "BaFinÜberblick", "GEMÄß"; nor
# words of three such letters, "ÄÖÜ", "ÅÄÖ": attack rounds 79 to 81.)
_FOREIGN_WORD = r"(?<![^\W\d_])[^\W\d_\x00-\x7f]{4,}(?![^\W\d_])"  # compiled on first use (re's cache)
_ODD_INSIDE_WORD = r"(?<=[^\W\d_])[ŠŽŸ](?=[a-z])"


def western_text(data: bytes) -> tuple[str, str] | None:
    """The bytes as Western European text with the code page read (nearly every character above ASCII one that
    such text is made of, ``_WESTERN``, and few of ``_FOREIGN_WORD`` and ``_ODD_INSIDE_WORD``), else None:
    Windows-1252, or ISO-8859-15 for a page with its euro sign (0xA4) and no byte of Windows-1252's own
    (0x80-0x9F: quotes, dashes and its euro), which read as Windows-1252 had "¤" for every "€"."""
    latin9 = b"\xa4" in data and not re.search(b"[\x80-\x9f]", data)  # (a page of many "€": 0xA4 in every line)
    codec, name = ("iso8859-15", "ISO-8859-15") if latin9 else ("cp1252", "Windows-1252")
    try:
        western = data.decode(codec)
    except UnicodeDecodeError:
        return None
    high = [c for c in western if c > "\x7f"]
    if sum(c in _WESTERN for c in high) < 0.8 * len(high):
        return None
    odd = sum(len(word) for word in re.findall(_FOREIGN_WORD, western))
    odd += len(re.findall(_ODD_INSIDE_WORD, western))
    return None if odd > max(2, len(high) // 10) else (western, name)


# Codecs Python counts as text encodings that no page is written in: they turn text into other text (escapes,
# domain names) or refuse every byte; a page or a user naming one got "unexpected failure" (UnicodeError).
_NOT_PAGE_CODECS = frozenset({"undefined", "punycode", "idna", "unicode-escape", "raw-unicode-escape", "charmap"})


def page_codec(name: str) -> str | None:
    """The canonical name of a codec pages are written in, or None: unknown to Python, not a text encoding
    (``rot13``, ``base64``, ``zlib`` turn bytes into bytes), or a text codec of no page (``_NOT_PAGE_CODECS``)."""
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a name with a NUL
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_PAGE_CODECS:
        return None
    return info.name


def check_encoding(name: str) -> str:
    """The canonical name of a codec a user asked for; raises LookupError for one that is unknown or no
    encoding of pages (``page_codec``)."""
    codec = page_codec(name)
    if codec is None:
        raise LookupError(name)
    return codec


def decode(data: bytes, encoding: str | None = None, notes: list[str] | None = None) -> str:
    """Decode a page's bytes: the forced encoding, else a BOM, else UTF-8 (also when a few bytes are not
    UTF-8: they become U+FFFD), else UTF-16 without a BOM, else Windows-1252 when the bytes read as Western
    European text, else the best guess of charset-normalizer. What was not plain UTF-8 is told in ``notes``."""
    notes = notes if notes is not None else []
    if encoding:
        return normalise_newlines(_forced(data, encoding))
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return normalise_newlines(data.decode(codec), bom=False)  # the codec dropped it: the text's own
            except UnicodeDecodeError as exc:  # U+FEFF after it is kept
                # A page its BOM names, with a few bad bytes (a cut in the last character, a stray byte): as a
                # page without a BOM, they become U+FFFD with a note; more than a few and it is not that text.
                text = data.decode(codec, "replace")
                bad = text.count("\ufffd") - data.decode(codec, "ignore").count("\ufffd")
                if bad > max(3, len(text) // 100):
                    raise NotTextError(f"cannot be decoded as {codec} (byte {exc.start})") from None
                name = codec.removesuffix("-sig").upper()
                notes.append(f"{bad} bad {'sequence' if bad == 1 else 'sequences'} of {name}, replaced by U+FFFD")
                return normalise_newlines(text, bom=False)
    kind = binary_kind(data[:4096])
    if kind == NUL_BYTES:
        wide = _wide_without_bom(data)
        if wide is None:
            raise _binary(kind)
        text, name, bad = wide
        notes.append(f"no byte-order mark, read as {name}")
        if bad:
            notes.append(f"{bad} bad {'sequence' if bad == 1 else 'sequences'} of {name}, replaced by U+FFFD")
        return normalise_newlines(text)
    if kind:
        raise _binary(kind)
    try:
        return normalise_newlines(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", "replace")
    replaced = lenient.count("\ufffd") - data.count(b"\xef\xbf\xbd")
    non_ascii = sum(1 for c in lenient if c > "\x7f") - replaced
    # UTF-8 with damage when its valid characters above ASCII outnumber the bad bytes: text in a one-byte
    # encoding has almost none (an umlaut is one byte there, which UTF-8 never accepts before a letter)
    if non_ascii > 0 and (replaced <= 3 or replaced < non_ascii):
        notes.append(
            f"{replaced} byte{' that is' if replaced == 1 else 's that are'} not UTF-8, replaced by U+FFFD"
        )
        return normalise_newlines(lenient)
    western = western_text(data)
    if western is not None:
        notes.append(f"not UTF-8, read as {western[1]}")
        return normalise_newlines(western[0])
    from charset_normalizer import from_bytes

    best = from_bytes(data[:1_000_000]).best()
    if best is None or best.encoding is None:
        raise _binary("no text encoding fits its bytes")
    try:
        text = data.decode(best.encoding)
    except UnicodeDecodeError:
        raise _binary("no text encoding fits its bytes") from None
    notes.append(f"not UTF-8, read as {best.encoding} (a guess)")
    return normalise_newlines(text)


def _forced(data: bytes, encoding: str) -> str:
    """Decode with the encoding a user forced; refuse bytes it cannot explain. Text in UTF-16 or UTF-32 is
    mostly NUL bytes for Latin script: without them the encoding is wrong, although any even number of bytes
    decodes."""
    try:
        codec = check_encoding(encoding)
    except LookupError:
        raise NotTextError(f"unknown encoding {encoding!r}") from None
    if codec.startswith(("utf-16", "utf-32")) and data:
        width = 4 if codec.startswith("utf-32") else 2
        if data.count(0) < len(data) * (width - 1) / width * 0.5:
            raise NotTextError(f"does not look like {encoding} text (too few NUL bytes); is --encoding right?")
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise NotTextError(f"cannot be decoded as {encoding} (byte {exc.start})") from None


def _wide_without_bom(data: bytes) -> tuple[str, str, int] | None:
    """UTF-16 text of Latin script without a BOM has a NUL in every other byte: the side tells the order; UTF-32
    has three in every four (the two high bytes of every character, and the third of nearly every one). A few
    bad sequences (a page cut inside a character, half of an emoji's surrogate pair) become U+FFFD, as where a
    BOM names the codec: counted in the result's last item (the page was refused as "binary data: NUL bytes")."""
    head = data[:4096]
    quarter = [head[k::4].count(0) for k in range(4)]
    size, codec = len(head[3::4]), ""
    if size and min(quarter[2], quarter[3]) >= 0.95 * size and quarter[1] >= 0.5 * size > 4 * quarter[0]:
        codec = "utf-32-le"
    elif size and min(quarter[0], quarter[1]) >= 0.95 * size and quarter[2] >= 0.5 * size > 4 * quarter[3]:
        codec = "utf-32-be"
    else:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        codec = "utf-16-le" if odd > 4 * even else "utf-16-be" if even > 4 * odd else ""
        if not codec or max(even, odd) < len(head) // 4:
            return None
    if codec.startswith("utf-32"):  # numbers of four bytes (an array of small integers) have the same NULs
        start = head[: len(head) // 4 * 4].decode(codec, "replace")
        if len(start) - len(start.translate(_CONTROLS)) > len(start) // 100:
            return None
    try:
        return data.decode(codec), codec.upper(), 0
    except UnicodeDecodeError:
        text = data.decode(codec, "replace")
    bad = text.count("\ufffd") - data.decode(codec, "ignore").count("\ufffd")
    return (text, codec.upper(), bad) if bad <= max(3, len(text) // 100) else None


_CONTROLS = dict.fromkeys([*range(0x09), *range(0x0E, 0x20), *range(0x7F, 0xA0), 0xFFFD])  # no text's characters


def normalise_newlines(text: str, bom: bool = True) -> str:
    """CRLF and lone CR become LF; a leading BOM character is dropped (``bom``: not where a codec has dropped
    the byte-order mark already, which would drop a U+FEFF of the text after it)."""
    if bom and text.startswith("\ufeff"):
        text = text[1:]
    return re.sub(_NEWLINES, "\n", text) if "\r" in text else text


def is_blank(line: str) -> bool:
    """True for a line that a reader sees as empty."""
    return _BLANK_LINE.fullmatch(line) is not None


def split_paragraphs(text: str) -> list[str]:
    """Split a page into its paragraphs by the LABELS.md rule (the text must have LF line endings)."""
    return list(iter_paragraphs(text))


def iter_paragraphs(text: str) -> Iterator[str]:
    """The paragraphs of a page one by one, without holding its lines: a block of non-blank lines is a
    paragraph; a page that is one block of several lines (no blank line between two lines) has one paragraph
    per line."""
    blocks = iter_blocks(text)
    first = next(blocks, None)
    if first is None:
        return
    second = next(blocks, None)
    if second is None:
        yield from _lines(first)
        return
    yield first
    yield second
    yield from blocks


def split_blocks(text: str) -> list[str]:
    """The blank-line separated blocks of a text, without the rule for pages that have no blank line."""
    return list(iter_blocks(text))


def iter_blocks(text: str) -> Iterator[str]:
    """The blank-line separated blocks of a text, one by one, each a slice of the text."""
    blank = _BLANK_LINE.fullmatch
    start = -1  # where the current block starts, -1 between blocks
    end = 0  # where its last non-blank line ends
    position = 0
    while True:
        newline = text.find("\n", position)
        line_end = len(text) if newline < 0 else newline
        if blank(text, position, line_end):
            if start >= 0:
                yield text[start:end]
                start = -1
        else:
            if start < 0:
                start = position
            end = line_end
        if newline < 0:
            break
        position = newline + 1
    if start >= 0:
        yield text[start:end]


def _lines(block: str) -> Iterator[str]:
    position = 0
    while True:
        newline = block.find("\n", position)
        if newline < 0:
            yield block[position:]
            return
        yield block[position:newline]
        position = newline + 1


_HTML = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|div|p|br|span|a\s+href|script|table|h[1-6]|article|section|main|header"
    rb"|footer|nav|aside|ul|ol|li|meta|title|img|figure)\b",
    re.I,
)  # the common tags, those of a fragment too (an <article> with headings, paragraphs and lists)


def looks_like_html(data: bytes) -> bool:
    """True when a page is markup: it starts with a tag and holds three or more of the common ones in its first
    ``HTML_SNIFF_BYTES``, or holds ten or more of the block ones (a text page that mentions a few tags stays
    text, and so does Markdown with inline HTML: ``<br>`` in its table cells, a menu of ``<a href>`` links,
    ``<span>``, ``<img>``). NUL bytes are dropped first: UTF-16 or UTF-32 markup has them beside every ASCII
    letter."""
    head = data[:HTML_SNIFF_BYTES]
    if b"\x00" in head:
        head = head.replace(b"\x00", b"")
    tags = _HTML.findall(head)
    if head.lstrip(b"\xef\xbb\xbf\xff\xfe \t\r\n").startswith(b"<"):
        return len(tags) >= 3
    return sum(not tag.lower().startswith(_INLINE_TAGS) for tag in tags) >= 10


HTML_SNIFF_BYTES = 20_000  # what looks_like_html reads of a page: enough for a head of inline styles
_INLINE_TAGS = (b"<br", b"<a ", b"<a\t", b"<a\n", b"<a\r", b"<span", b"<img")  # those Markdown holds inline


def page_text(
    data: bytes, encoding: str | None = None, fix_mojibake: bool = False, notes: list[str] | None = None
) -> str:
    """A page's bytes as text with LF line endings, refusing what is not a text page.

    ``fix_mojibake`` repairs text that was decoded with the wrong encoding before it reached us
    ("FÃ¼r" → "Für") with ftfy.
    """
    text = decode(data, encoding, notes)
    return normalise_newlines(repair_mojibake(text), bom=False) if fix_mojibake else text


def repair_mojibake(text: str) -> str:
    """Text that was decoded with the wrong encoding before it reached us, repaired (``FÃ¼r`` → ``Für``)."""
    import ftfy

    return ftfy.fix_encoding(text)
