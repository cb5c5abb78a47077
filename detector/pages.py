"""The annotated page format of LABELS.md, read and written, and a corpus folder loaded as a table.

An annotated page is a page whose paragraphs each begin with ``[label] ``; dropping the prefixes gives the
plain page back. Training data, the dev set and ``clean-article --format annotated`` all use it.
"""

from __future__ import annotations

import os
import re
from collections import namedtuple

from detector.segment import is_blank, normalise_newlines, split_blocks

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at run time (see _named_tuple)
if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from detector.markup import Block

LABELS: tuple[str, ...] = ("editorial", "promotional", "navigational")
# Patterns as strings, compiled on first use (re's cache): cleaning a page never reads an annotated one.
_PREFIX = r"\[([a-z]+)\] "
_LOOSE_PREFIX = r"\[([^\]\n]{1,40})\]"  # what a mistyped prefix looks like, to name the mistake


class AnnotationError(ValueError):
    """An annotated page breaks the format: a paragraph without a known label."""


class LabelledParagraph(namedtuple("LabelledParagraph", "label text")):
    """One paragraph of an annotated page (a named tuple: cheap to import and to create)."""

    __slots__ = ()


def parse_annotated(text: str) -> list[LabelledParagraph]:
    """Read an annotated page (LF line endings); raises AnnotationError naming the bad paragraphs (counted
    from 0, as ``detector review`` numbers them; the first ``PAGE_MISTAKES_SHOWN``, then their number)
    and their lines in the file: a page's second mistake was named only once its first was put right."""
    blocks = split_blocks(text)
    paragraphs = []
    mistakes: list[str] = []
    for index, block in enumerate(blocks):
        match = re.match(_PREFIX, block)
        problem = ""
        if match is None or match.group(1) not in LABELS:
            problem = f"{_prefix_problem(block)}: {block[:50]!r}"
        elif is_blank(content := block[match.end() :]):  # "[editorial] " left when a draft's paragraph was deleted
            problem = f"has a label and no text: {block[:50]!r}"
        elif is_blank(content.partition("\n")[0]):  # dropping the prefix would leave a blank line: a break
            problem = f"has its text on the line after its label: {block[:50]!r}"
        elif (second := re.match(_PREFIX, content)) is not None and second.group(1) in LABELS:
            problem = f"has two labels (a new one typed before the old?): {block[:50]!r}"
        else:
            for number, line in enumerate(content.split("\n")[1:], 2):
                inner = re.match(_PREFIX, line)
                if inner is not None and inner.group(1) in LABELS:
                    problem = f"has a line that starts with a label (its line {number}): a blank line missing "
                    problem += f"before it? {line[:50]!r}"
                    break
        if problem or match is None:
            starts = _first_line(text, blocks, index) if len(mistakes) < PAGE_MISTAKES_SHOWN else 0
            mistakes.append(f"paragraph {index} (line {starts}) {problem}")
            continue
        paragraphs.append(LabelledParagraph(match.group(1), content))
    if mistakes:
        raise AnnotationError(_listed(mistakes))
    return paragraphs


PAGE_MISTAKES_SHOWN = 5  # the bad paragraphs of one page named one by one


def _listed(mistakes: list[str], shown: int = PAGE_MISTAKES_SHOWN, rest: str = "on this page") -> str:
    """The first ``shown`` mistakes (of a page, or the bad pages of a corpus), then how many more there are."""
    more = len(mistakes) - shown
    return "; ".join(mistakes[:shown]) + (f"; and {more} more {rest}" if more > 0 else "")


def _first_line(text: str, blocks: list[str], index: int) -> int:
    """The line of the file where paragraph ``index`` starts: worked out only for a message, as the blocks are
    slices of the text in order."""
    position = 0
    for block in blocks[:index]:
        position = text.find(block, position) + len(block)
    return text.count("\n", 0, text.find(blocks[index], position)) + 1


def _prefix_problem(block: str) -> str:
    """What is wrong with a paragraph's label prefix, in the words of the format."""
    loose = re.match(_LOOSE_PREFIX, block)
    if loose is None:
        return "has no [label] prefix"
    if loose.group(1) not in LABELS:
        return f"has the label [{loose.group(1)}], which is not one of {', '.join(LABELS)}"
    if not block[loose.end() :].strip():
        return "has a label and no text"
    return "needs one space between its label and its text"


def parse_annotated_html(html: str) -> list[LabelledParagraph]:
    """Read an annotated HTML page: every paragraph (``detector.markup``'s rule) takes the ``data-label`` of
    its nearest labelled ancestor; raises AnnotationError naming the paragraphs without one, or with text
    under two different labels (the first ``PAGE_MISTAKES_SHOWN``)."""
    from detector.markup import blocks

    found = blocks(html)
    _check_labels(found)
    return [LabelledParagraph(b.label, b.text) for b in found]


def _check_labels(found: list[Block]) -> None:
    from detector.markup import CONFLICT

    mistakes: list[str] = []
    for index, block in enumerate(found):
        if block.label not in LABELS:
            first, second = str(block.label).split("\0")[1:] if str(block.label).startswith(CONFLICT) else ("", "")
            odd = [label for label in (first, second) if label not in LABELS]
            if first and not odd:
                problem = f"has text under two data-labels ({first} and {second})"
            elif first:  # data-label="" or "promo" on an element inside the paragraph: the slip, not the conflict
                problem = (
                    f"has text under data-label={odd[0]!r}, which is not one of {', '.join(LABELS)} (a slip, or "
                    "the site's own data-label: take it out of the annotated page)"
                )
            elif block.label is not None:  # data-label="" too: a label not filled in, not the ancestor's
                problem = (
                    f"has data-label={block.label!r}, which is not one of {', '.join(LABELS)} (a slip, or the "
                    "site's own data-label: take it out of the annotated page)"
                )
            else:
                problem = "has no data-label"
            where = f" (line {block.line})" if block.line else ""
            mistakes.append(f"paragraph {index}{where} {problem}: {block.text[:50]!r}")
    if mistakes:
        raise AnnotationError(_listed(mistakes))


def format_annotated(paragraphs: list[LabelledParagraph]) -> str:
    """Write paragraphs in the annotated format, one blank line between them, ending with a newline."""
    return "".join(f"[{p.label}] {p.text}\n\n" for p in paragraphs)[:-1] if paragraphs else ""


def strip_labels(text: str) -> str:
    """The plain page behind an annotated page."""
    return "\n\n".join(p.text for p in parse_annotated(text)) + "\n"


PAGE_SUFFIXES = (".txt", ".html", ".htm")
HTML_SUFFIXES = (".html", ".htm")


def corpus_files(root: Path, suffixes: tuple[str, ...] = PAGE_SUFFIXES) -> list[Path]:
    """The annotated pages under a folder (``*.txt``, ``*.html`` and ``*.htm`` in any case, recursively),
    sorted; a file is itself. Symbolic links are left out (``symbolic_links``)."""
    if root.is_file():
        return [root]
    return sorted(
        p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file() and not p.is_symlink()
    )


def symbolic_links(root: Path) -> list[Path]:
    """The symbolic links under a folder, which ``corpus_files`` does not read: a linked page would count twice,
    as a page of two sites (in the training and the test folds of one cross-validation), and a linked folder
    can lead back into its own tree."""
    return [] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_symlink())


def is_html_page(path: Path) -> bool:
    return path.suffix.lower() in HTML_SUFFIXES


def read_page(path: Path) -> list[LabelledParagraph]:
    """One annotated page, text or HTML by its suffix; errors name the file."""
    found = _labelled_blocks(path)
    if found is None:
        raise AnnotationError(f"{shown(path)}: not an annotated page (no data-label holds a label in it)")
    return [LabelledParagraph(label, text) for label, text, _ in found]


_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}


def shown(name: str | os.PathLike) -> str:
    """A path as printable text on one line: bytes that are not UTF-8 and control characters (a newline, an
    escape sequence: a file name could forge an ``error:`` line or recolour the terminal) as ``\\xNN``; a
    backslash that the name itself holds before such a ``xNN`` is doubled (the byte 0xFC and the four
    characters ``\\xfc`` were one name in messages and in the errors file)."""
    encoded = os.fsencode(name)
    if b"\\x" in encoded:
        encoded = re.sub(_LITERAL_ESCAPE, rb"\\\\", encoded)
    return encoded.decode("utf-8", "backslashreplace").translate(_CONTROL_ESCAPES)


_LITERAL_ESCAPE = rb"\\(?=x[0-9a-fA-F]{2})"  # compiled on first use: names rarely hold it


def read_page_text(path: Path) -> str:
    """An annotated page's text: UTF-8, a byte-order mark dropped, CRLF and lone CR read as LF (as
    ``clean-article`` reads its input: a draft corrected in a Windows editor kept a CR in every paragraph); an
    error names the file and the place."""
    data = path.read_bytes()
    try:
        return normalise_newlines(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AnnotationError(
            f"{shown(path)}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "annotated pages are UTF-8"
        ) from None


def corpus_pages(*roots: Path | str, suffixes: tuple[str, ...] = PAGE_SUFFIXES) -> list[tuple[Path, str, str]]:
    """Every annotated page file under the roots with its site and its page name, which training sees (the
    unit of grouped cross-validation; the name draws its training copies), so neither may depend on how a
    root was typed: a page's name is its path below its root, after the root's own name where there are
    several roots (``training_data/site/p.txt``, and ``data~2/…`` for a second root called ``data``: they
    were the roots as typed, so ``r1`` and ``/abs/r1`` trained two models), its site the first folder below
    the root, or the root's own name (as resolved: ``.`` had the site ""), for a page directly in it."""
    from pathlib import Path  # here, not at the top: cleaning a page never needs it

    found = []
    labels: list[str] = []
    for root in map(Path, roots):
        own = root.resolve().name if root.is_dir() else root.resolve().parent.name
        label = own if own not in labels else f"{own}~{labels.count(own) + 1}"
        labels.append(own)
        for path in corpus_files(root, suffixes):
            relative = path.relative_to(root) if path != root else Path(path.name)
            site = relative.parts[0] if len(relative.parts) > 1 else own
            page = str(relative) if len(roots) == 1 else str(Path(label) / relative)
            found.append((path, site, page))
    return found


def load_corpus(*roots: Path | str, suffixes: tuple[str, ...] = PAGE_SUFFIXES) -> pd.DataFrame:
    """Every annotated page under the roots (``*.txt`` and ``*.html``, or the ``suffixes`` given) as one row
    per paragraph.

    Columns: ``site`` and ``page`` (``corpus_pages``), ``index``, ``label``, ``text``, and ``block``: the markup
    around the paragraph (``detector.markup.Block``) for HTML pages, None for text pages.
    """
    import pandas as pd

    rows = []
    empty, unannotated, mistakes = [], [], []
    for path, site, page in corpus_pages(*roots, suffixes=suffixes):
        try:
            found = _labelled_blocks(path)
        except AnnotationError as exc:  # every page is read: one run names the mistake of each bad page
            mistakes.append(str(exc))
            continue
        if found is None:
            unannotated.append(shown(path))
            continue
        if not found:
            empty.append(shown(path))
        for index, (label, text, block) in enumerate(found):
            rows.append((site, page, index, label, text, block))
    if mistakes:
        pages = f" ({len(mistakes)} pages with a mistake)" if len(mistakes) > 1 else ""
        raise AnnotationError(_listed(mistakes, MISTAKES_SHOWN, "pages") + pages)
    frame = pd.DataFrame(rows, columns=["site", "page", "index", "label", "text", "block"])
    frame.attrs["empty_pages"] = empty  # pages without a paragraph, which have no row: for the commands' notes
    frame.attrs["unannotated_pages"] = unannotated  # HTML where no data-label holds a label: an original
    return frame


MISTAKES_SHOWN = 20  # the bad pages a corpus's error names one by one (each by its first mistakes)
# An annotated HTML page has a data-label attribute (its name in any case, as HTML reads it) that holds one of the
# labels: sites use data-label for their own ends ("header", a table cell's "Kurs"), and such an original, kept
# beside its annotated text page as in ../shared/devset/, failed a whole training or evaluation as a page whose
# labels were wrong.
_ANNOTATION = (
    rb"""(?i)data-label\s*=\s*["']?\s*(?:editorial|promotional|navigational)\b"""  # ("Editorial": a slip)
)


def _labelled_blocks(path: Path) -> list[tuple[str, str, Block | None]] | None:
    """The paragraphs of one annotated page with their labels (and markup, for HTML); every error names the
    file. None for an HTML file without a ``data-label`` that holds a label (``_ANNOTATION``): not an annotated
    page but, most often, the original a text page was annotated from, kept beside it (as in
    ``../shared/devset/``)."""
    from detector.markup import TooDeepError, blocks

    if is_html_page(path) and not re.search(_ANNOTATION, path.read_bytes()):
        return None
    text = read_page_text(path)
    try:
        if not is_html_page(path):
            return [(p.label, p.text, None) for p in parse_annotated(text)]
        found = blocks(text)
        _check_labels(found)
    except (AnnotationError, TooDeepError) as exc:
        raise AnnotationError(f"{shown(path)}: {exc}") from None
    return [(b.label or "", b.text, b._replace(label=None)) for b in found]
