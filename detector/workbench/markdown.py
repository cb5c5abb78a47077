"""An annotated HTML page of the corpus written out as Markdown, as html2text, markdownify and the crawlers built
on them store pages: the shape of page that the text features otherwise never see.

The page is rendered from its paragraphs (``detector.markup.Block``: tag, heading level, link characters, box),
so every Markdown paragraph keeps its label by construction. What converters add is what is written: ``#``
headings, list items as ``*``/``-`` lines (a list one paragraph, or, as html2text writes nested lists, one
paragraph per item), links as ``[text](url)`` with a path made from their words where the corpus has ``#``,
image lines before captions and a logo at the top, ``**bold**`` short lines, ``>`` quotes. Where the corpus does
not say where a paragraph's links sit (only how many of its characters are link text), the link covers the
parts between separators (``|``, ``»``, ``·``) or a run of words of that length. Which page gets which style is
decided by a hash of its name, so training stays reproducible.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable

from detector.markup import Block

IMAGE_LINE = "navigational"  # an image line is no text of the article (LABELS.md: credits standing alone)
_SEPARATOR = re.compile(r"\s+[|·•»›/]\s+|^[»›•·]\s*")
_TO_ESCAPE = str.maketrans({"[": "\\[", "]": "\\]", "*": "\\*", "_": "\\_"})


def slug(words: str) -> str:
    """A url path segment from link words, as sites make them: lower case, umlauts spelt out, dashes."""
    text = words.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join(re.findall(r"[a-z0-9]+", text)[:6]) or "seite"


class _Style:
    """The Markdown dialect of one page, drawn from a hash of its name."""

    def __init__(self, page: str, site: str) -> None:
        draw = zlib.crc32(page.encode("utf-8", "surrogateescape"))
        self.bullet = "*-+"[draw % 3] if draw % 5 else "1."
        self.item_paragraphs = bool((draw >> 3) % 2)  # html2text: a blank line after every list item
        self.padded_links = (draw >> 4) % 4 == 0  # html2text: "[ text ](url)"
        self.bold_short = (draw >> 6) % 3 == 0
        self.escape = bool((draw >> 8) % 2)
        self.images = (draw >> 9) % 3 != 0
        host = slug(site.replace("-", " "))
        self.url = ("/{}/", "https://www." + host + ".de/{}/", "/{}-{}.html", "/artikel/{}")[(draw >> 11) % 4]
        self.draw = draw

    def href(self, words: str, n: int) -> str:
        return self.url.format(slug(words), 100000 + (self.draw + 7919 * n) % 900000)

    def link(self, words: str, n: int) -> str:
        shown = f" {words} " if self.padded_links else words
        return f"[{shown}]({self.href(words, n)})"


def _linked(text: str, link_chars: int, style: _Style, n: int) -> str:
    """The paragraph with its link text marked up: all of it, each part between separators, or one run of
    words about ``link_chars`` long at a position the hash picks."""
    if style.escape:
        text = text.translate(_TO_ESCAPE)
    if link_chars <= 0:
        return text
    if link_chars >= len(text) - 2:
        return style.link(text, n)
    parts = _SEPARATOR.split(text)
    seps = _SEPARATOR.findall(text)
    if len(parts) > 2 and abs(sum(map(len, parts)) - link_chars) <= 0.25 * link_chars:
        out = [style.link(p, n + i) if p else p for i, p in enumerate(parts)]
        return "".join(a + b for a, b in zip(out, [*seps, ""]))
    words = text.split(" ")
    start = (style.draw + n) % len(words)
    end = start
    length = 0
    while end < len(words) and length < link_chars:
        length += len(words[end]) + 1
        end += 1
    while start > 0 and length < link_chars:
        start -= 1
        length += len(words[start]) + 1
    run = " ".join(words[start:end])
    return " ".join([*words[:start], style.link(run, n), *words[end:]])


def markdown_page(page: str, site: str, rows: Iterable[tuple[str, str, Block]]) -> list[tuple[str, str]]:
    """The labelled paragraphs of one annotated HTML page (label, text, block) as a Markdown page's."""
    style = _Style(page, site)
    out: list[tuple[str, str]] = []
    items: list[str] = []
    item_key: tuple[int, str] | None = None

    def flush() -> None:
        nonlocal item_key
        if items:
            out.append((item_key[1] if item_key else "navigational", "\n".join(items)))
            items.clear()
        item_key = None

    for n, (label, text, block) in enumerate(rows):
        if n == 0 and style.images:
            out.append((IMAGE_LINE, f"[![{slug(site).replace('-', ' ').title()}](/img/logo.svg)](/)"))
        md = _linked(text, block.link_chars, style, n)
        if block.heading:
            md = "#" * block.heading + " " + md
        elif style.bold_short and len(text.split()) <= 8 and not block.link_chars and (style.draw + n) % 3 == 0:
            md = f"**{md}**"
        if block.tag == "li":
            line = f"{style.bullet} {md}"
            if style.item_paragraphs:
                flush()
                out.append((label, line))
                continue
            if item_key != (block.group, label):
                flush()
                item_key = (block.group, label)
            items.append(line)
            continue
        flush()
        if block.tag == "figcaption" and style.images:
            alt = text.split(" - ")[0][:60] if (style.draw + n) % 2 else ""
            out.append((IMAGE_LINE, f"![{alt}](/img/{slug(text)}-{100 + n}.jpg)"))
        if block.tag == "blockquote":
            md = "> " + md
        out.append((label, md))
    flush()
    return out
