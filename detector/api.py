"""The public API: label the paragraphs of a page, keep the article, render the result.

``classify``, ``clean`` and their HTML twins ``classify_html``, ``clean_html`` are what other Python code calls
(``from detector import clean``); the CLI is a thin layer over them and over ``PageWriter``.

Pages are labelled as a stream (``label_stream``): paragraphs are scored in windows of ``WINDOW`` paragraphs
with ``CONTEXT`` paragraphs of context on each side, and ``PageWriter`` renders them as they come, so memory is
bounded by the page's text and one window, whatever the number of its paragraphs. A page of up to ``WINDOW``
paragraphs (every real page) is one window; on longer pages, the features that describe the whole page (its
length, its share of long paragraphs, the article run, the gate) describe the window.
"""

from __future__ import annotations

import _thread
import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping

from detector import model as model_file
from detector.features import SiteMemory, recurring
from detector.pages import LABELS
from detector.pages import shown as display_name
from detector.segment import HTML_SNIFF_BYTES, decode, iter_paragraphs, looks_like_html, normalise_newlines

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at run time (see _named_tuple)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import NamedTuple

    from detector import markup
else:
    from detector._named_tuple import NamedTuple

FORMATS = ("text", "annotated", "json", "html", "explain")
WINDOW = 4000
CONTEXT = 32
_loaded: dict[tuple[str, bool], tuple[tuple[int, ...], model_file.Scorer]] = {}  # by (absolute path, mapped)
CACHED_MODELS = 4  # model files held by load_model's cache (each about 10 MB; the oldest goes first)
_SHIPPED = ""  # the shipped model's path, once found
_LOADING = _thread.allocate_lock()  # one thread loads a file while the others wait for it


def _new_lock_after_fork() -> None:
    global _LOADING
    _LOADING = _thread.allocate_lock()  # a thread that held it before the fork is not in the child


os.register_at_fork(after_in_child=_new_lock_after_fork)


class Paragraph(NamedTuple):
    """A paragraph of a page with its predicted label and the probability of each label."""

    index: int  # type: ignore[assignment]  # (shadows tuple.index, as the namedtuple before it did)
    text: str
    label: str
    probabilities: dict[str, float]
    tag: str = ""  # for HTML input: the block element that held the paragraph ("p", "h2", "li" ...)
    decided_by: str = "model"  # or "rule:<name>" when one of the user's rules decided it
    list_tag: str = ""  # for HTML input: the list it stands in ("ul", "ol", "dl", "menu"), "" outside lists
    list_id: int = 0  # for HTML input: which list of the page (the items of one list share it)
    item_id: int = 0  # for HTML input: which item of its list (the paragraphs of one <li> share it)
    item_tag: str = ""  # for HTML input: the item element ("li", "dt", "dd"), "" outside items


def load_model(
    path: Path | str | None = None, mapped: bool = False, verify_later: bool = False
) -> model_file.Scorer:
    """The model at ``path``, or the shipped model; each file is loaded once per process, not once per page.
    ``mapped``: map the file instead of reading it, for a run of seconds; ``verify_later``: take its checksum
    while the caller goes on, who must call the model's ``verify()`` before trusting a result
    (``detector.model.load``).
    The cache is keyed by the file's absolute path, identity (device, inode, size, modification time) and
    ``mapped``: the same name in another working folder, or a model trained anew over the old one (the shipped
    one too: ``make train`` writes it), is loaded afresh, and a read model is never a mapped one. A cached
    model loaded with ``verify_later`` is verified before it is handed out without it: a damaged file is
    refused every time it is asked for. A call for a loaded model costs one ``stat``. Threads that ask for a
    file at once wait for one load; the cache holds the last ``CACHED_MODELS`` files (a model still in use
    stays alive with its user)."""
    global _SHIPPED
    identity: tuple[int, ...] = ()
    if path is None:
        key = _SHIPPED = _SHIPPED or model_file.shipped_model()
    else:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"model path must be a str or os.PathLike, not {type(path).__name__}")
        if not os.fspath(path):
            raise ValueError("model path is empty: give a model file, or None for the shipped model")
        if b"\0" in os.fsencode(path):
            raise ValueError("model path holds a NUL character")
        key = os.path.abspath(os.fsdecode(path))
    try:
        info = os.stat(key)
        identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    except OSError:
        pass  # model_file.load names the problem
    with _LOADING:
        cached = _loaded.pop((key, mapped), None)
        if cached is None or cached[0] != identity or not identity:
            # the file of the key, named as given: another thread's chdir since the key was made had a model
            # of another folder cached under this one's path
            shown = None if path is None else display_name(path)  # a newline in a name makes no second line
            # the shipped model asked for as None: its CRC is its check (a path, even the shipped file's own,
            # gets the full check of another's file, a fifth of a cold start)
            read = None if path is None else key
            cached = (identity, model_file.load(read, mapped, verify_later, shown))
        elif not verify_later:
            cached[1].verify()  # loaded with verify_later, its checksum not yet known (or known to be wrong)
        _loaded[key, mapped] = cached  # last: the most recently used
        while len(_loaded) > CACHED_MODELS:
            del _loaded[next(iter(_loaded))]
    return cached[1]


PRESETS = ("precision", "balanced", "recall")  # the thresholds every model file holds


class Decision(NamedTuple):
    """How a paragraph is labelled: by a preset (``favor``: precision, balanced or recall, whose thresholds
    grouped cross-validation chose and the model file holds) or by a threshold of one's own
    (``min_editorial``: a paragraph is editorial when its editorial probability is at least this)."""

    favor: str = "balanced"
    min_editorial: float | None = None


def check_arguments(
    page: object,
    html: bool = False,
    model: object = None,
    min_editorial: object = None,
    memory: object = None,
    favor: object = "balanced",
) -> float | None:
    """Clear TypeErrors and ValueErrors for arguments of the wrong kind, before they fail deep inside (an
    AttributeError of a str method on None, a model path where a loaded model belongs); returns
    ``min_editorial`` as a float (numpy's numbers, Decimal and Fraction are numbers too)."""
    if not isinstance(page, (str, bytes, bytearray, memoryview) if html else str):
        want = "str or bytes" if html else "str (decode bytes first; classify_html and clean_html take bytes)"
        raise TypeError(f"the page must be {want}, not {type(page).__name__}")
    if model is not None and not isinstance(model, model_file.Scorer):
        raise TypeError(f"model must be a loaded model (detector.load_model(path)), not {type(model).__name__}")
    if memory is not None and not isinstance(memory, SiteMemory):
        raise TypeError(f"memory must be a SiteMemory (detector.site_memory(pages)), not {type(memory).__name__}")
    if not isinstance(favor, str):
        raise TypeError(f"favor must be a str (precision, balanced or recall), not {type(favor).__name__}")
    if favor not in PRESETS:
        raise ValueError(f"favor must be one of {', '.join(PRESETS)}, not {favor!r}")
    if min_editorial is None:
        return None
    value = _as_number(min_editorial)
    if value is None:
        raise TypeError(f"min_editorial must be a number, not {type(min_editorial).__name__}")
    if not 0.0 <= value <= 1.0:  # NaN too
        raise ValueError(f"min_editorial must be a probability between 0 and 1, not {value!r}")
    return value


def _as_number(value: object) -> float | None:
    """A number as a float: an int or float, numpy's, Decimal and Fraction too; None for what is no number (a
    str, a bool, numpy's bool). An int beyond a double is infinite."""
    if isinstance(value, (str, bytes, bytearray)) or type(value).__name__ in ("bool", "bool_"):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except ValueError:  # a Decimal's signalling NaN is a number, not a probability
        return math.nan if type(value).__name__ == "Decimal" else None
    except TypeError:
        return None
    except OverflowError:
        return float("inf")


def label_stream(
    texts: Iterable[str],
    blocks: Iterable[markup.Block] | None = None,
    model: model_file.Scorer | None = None,
    decision: Decision = Decision(),
    explain: bool = False,
    memory: SiteMemory | None = None,
    top: int = 5,
) -> Iterator[tuple[Paragraph, dict | None]]:
    """Label a page's paragraphs as they come (with the markup of HTML input): each paragraph with its
    explanation when ``explain`` is asked for (``detector.model.Scorer.explain``), else None. ``memory``: what
    a first pass over a batch of the page's site saw (``site_memory``), the page included. The arguments are
    checked when it is called, before the first paragraph is asked for; ``blocks`` must be as many as
    ``texts``."""
    if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"texts must be the page's paragraphs (an iterable of str), not {type(texts).__name__}")
    if blocks is not None and (isinstance(blocks, (str, bytes)) or not isinstance(blocks, Iterable)):
        raise TypeError(
            f"blocks must be the paragraphs' markup (an iterable of Block), not {type(blocks).__name__}"
        )
    if not isinstance(decision, Decision):
        raise TypeError(f"decision must be a Decision (favor, min_editorial), not {type(decision).__name__}")
    min_editorial = check_arguments("", False, model, decision.min_editorial, memory, decision.favor)
    return _labelled(
        texts, blocks, model, Decision(decision.favor, min_editorial), explain, memory, _check_top(top)
    )


def _labelled(
    texts: Iterable[str],
    blocks: Iterable[markup.Block] | None,
    model: model_file.Scorer | None,
    decision: Decision,
    explain: bool,
    memory: SiteMemory | None,
    top: int,
) -> Iterator[tuple[Paragraph, dict | None]]:
    scorer = model or load_model()
    threshold = scorer.threshold(decision.favor, decision.min_editorial)
    memory_threshold = scorer.threshold(decision.favor, decision.min_editorial, site_memory=True)
    classes = scorer.classes
    items: Iterable[tuple[str, markup.Block | None]] = (
        _paired(texts, blocks) if blocks is not None else ((t, None) for t in map(_paragraph_text, texts))
    )
    index = 0
    for window, start, stop in _windows(items, WINDOW, CONTEXT):
        window_texts = [text for text, _ in window]
        window_blocks = [block for _, block in window] if blocks is not None else None
        repeats = memory.shares(window_texts) if memory is not None else None
        told = recurring(repeats)  # paragraphs the memory tells something of: its presets decide them
        probabilities = scorer.probabilities(window_texts, window_blocks, repeats)
        labels = [
            scorer.decide(probs, memory_threshold if told and told[k] else threshold)
            for k, probs in enumerate(probabilities)
        ]
        why = scorer.explain(window_texts, window_blocks, top, repeats, labels) if explain else None
        for k in range(start, stop):
            probs = dict(zip(classes, probabilities[k]))
            if window_blocks:
                b = window_blocks[k]
                paragraph = Paragraph(
                    index,
                    window_texts[k],
                    labels[k],
                    probs,
                    b.tag,
                    list_tag=b.list_tag,
                    list_id=b.list_id,
                    item_id=b.item_id,
                    item_tag=b.item_tag,
                )
            else:
                paragraph = Paragraph(index, window_texts[k], labels[k], probs)
            yield paragraph, {**why[k], "index": index} if why else None  # the page's index, not the window's
            index += 1


def _paired(texts: Iterable[str], blocks: Iterable[markup.Block]) -> Iterator[tuple[str, markup.Block]]:
    """Each text with its block; blocks fewer or more than the texts are an error (zip cut the page short), and
    so is a block that is none (it failed deep inside, an AttributeError of the features)."""
    from detector.markup import Block  # loaded already where there are blocks: text pages need no lxml

    def checked(block: object) -> Block:
        if not isinstance(block, Block):
            raise TypeError(f"blocks must be Block (one per paragraph: html_blocks), not {type(block).__name__}")
        return block

    try:
        yield from zip(map(_paragraph_text, texts), map(checked, blocks), strict=True)
    except ValueError as exc:
        if "zip()" not in str(exc):
            raise
        raise ValueError("blocks must be as many as texts: one Block per paragraph") from None


def _paragraph_text(text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"texts must be str (one paragraph each), not {type(text).__name__}")
    return _plain(text)


def _plain(text: str) -> str:
    """A str subclass's text as a plain str: markupsafe's ``Markup`` (a Flask or Jinja service's text) escapes
    what is joined to it or replaced in it, and its paragraphs came out of ``as_html`` escaped twice."""
    return text if type(text) is str else str.__str__(text)


def _windows(items: Iterable, size: int, context: int) -> Iterator[tuple[list, int, int]]:
    """Windows over a stream: each window is the list of items from ``context`` before the items it stands for
    to ``context`` after them, with the range ``[start, stop)`` of those items in it. The list is reused: it
    is valid until the next window is asked for."""
    source = iter(items)
    buffer: list = []
    offset = 0  # stream position of buffer[0]
    emitted = 0  # stream position of the next item to stand for
    exhausted = False
    while True:
        while not exhausted and offset + len(buffer) < emitted + size + context:
            try:
                buffer.append(next(source))
            except StopIteration:
                exhausted = True
        end = offset + len(buffer)
        if emitted >= end:
            return
        stop = min(emitted + size, end)
        yield buffer, emitted - offset, stop - offset
        emitted = stop
        drop = max(0, emitted - context - offset)
        del buffer[:drop]
        offset += drop


def classify(
    text: str,
    model: model_file.Scorer | None = None,
    favor: str = "balanced",
    min_editorial: float | None = None,
    memory: SiteMemory | None = None,
) -> list[Paragraph]:
    """Split a page (str, any line endings) into paragraphs and label each one; ``memory``: see
    ``site_memory``. A page that looks like an HTML document is read as text all the same, tags and all, with
    a warning: ``classify_html`` reads its markup."""
    _warn_if_markup(text, "classify")
    return classify_as_text(text, model, favor, min_editorial, memory)


def classify_as_text(
    text: str,
    model: model_file.Scorer | None = None,
    favor: str = "balanced",
    min_editorial: float | None = None,
    memory: SiteMemory | None = None,
) -> list[Paragraph]:
    """``classify`` for callers that decided the page is text whatever it holds (``clean-article
    --input-format text``, a ``.txt`` file): no warning for markup."""
    return list(_labelled_text(text, model, favor, min_editorial, memory))


_MARKUP_START = r"\s*<"  # compiled on first use (re's cache)


def _warn_if_markup(text: object, caller: str) -> None:
    """A UserWarning when a page given as text is an HTML document (``segment.looks_like_html``, as
    ``clean-article`` tells a file without a telling name), or the name of a file (``clean(sys.argv[1])``):
    either came back as an article of its own without a word. Only a page that starts with a tag is sniffed,
    and only one word is looked up as a file, so text pages cost two matches."""
    if isinstance(text, str) and len(text) < 4096 and not re.search(r"\s", text.strip()) and os.path.isfile(text):
        warnings.warn(
            f"the page is the name of a file: {caller}() cleans the text it is given; pass the file's content "
            "(open(path, encoding='utf-8').read())",
            UserWarning,
            stacklevel=3,
        )
    elif isinstance(text, str) and re.match(_MARKUP_START, text):
        head = text[:HTML_SNIFF_BYTES].encode("utf-8", "surrogatepass")
        if looks_like_html(head):
            warnings.warn(
                f"the page looks like an HTML document: {caller}() reads it as text, tags and all; "
                f"{caller}_html() reads its markup",
                UserWarning,
                stacklevel=3,
            )


def _labelled_text(
    text: str, model: model_file.Scorer | None, favor: str, min_editorial: float | None, memory: SiteMemory | None
) -> Iterator[Paragraph]:
    """A text page's paragraphs labelled one by one, its arguments checked before any work."""
    min_editorial = check_arguments(text, False, model, min_editorial, memory, favor)
    paragraphs = iter_paragraphs(normalise_newlines(_plain(text)))
    return (p for p, _ in label_stream(paragraphs, None, model, Decision(favor, min_editorial), memory=memory))


def classify_html(
    html: str | bytes | bytearray | memoryview,
    model: model_file.Scorer | None = None,
    favor: str = "balanced",
    min_editorial: float | None = None,
    memory: SiteMemory | None = None,
) -> list[Paragraph]:
    """Turn an HTML page (str, or bytes in any declared or detectable encoding) into paragraphs by the rule of
    ``detector.markup`` and label each one."""
    return list(_labelled_html(html, model, favor, min_editorial, memory))


def _labelled_html(
    html: str | bytes | bytearray | memoryview,
    model: model_file.Scorer | None,
    favor: str,
    min_editorial: float | None,
    memory: SiteMemory | None,
) -> Iterator[Paragraph]:
    """An HTML page's paragraphs labelled one by one, its arguments checked before any work."""
    min_editorial = check_arguments(html, True, model, min_editorial, memory, favor)
    blocks = html_blocks(html)
    stream = label_stream((b.text for b in blocks), blocks, model, Decision(favor, min_editorial), memory=memory)
    return (p for p, _ in stream)


def html_blocks(html: str | bytes | bytearray | memoryview) -> list[markup.Block]:
    """An HTML page's paragraphs with their markup (``detector.markup.blocks``), from str or from bytes."""
    from detector import markup  # here, not at the top: text pages never need lxml's side of the package

    if not isinstance(html, (str, bytes, bytearray, memoryview)):  # bytes(5) is five NULs, bytes(None) a TypeError
        raise TypeError(f"the page must be str or bytes, not {type(html).__name__}")
    return markup.blocks(_plain(html) if isinstance(html, str) else markup.decode_html(bytes(html)))


def site_memory(pages: Iterable[str | bytes], html: bool = False) -> SiteMemory:
    """What a batch of one site's pages shows (text pages, or HTML with ``html``): which paragraphs recur on
    many of them (menus, footers, disclaimers, ad slots). Pass it with ``memory=`` when labelling each of
    these pages: recurrence is evidence the model weighs (it learnt it from the corpus's site folders).
    Fewer than ``SITE_MIN_PAGES`` distinct pages say nothing, and the pages are labelled as on their own."""
    if isinstance(pages, (str, bytes, bytearray, memoryview, Mapping)) or not isinstance(pages, Iterable):
        hint = " (its values, the pages: pages.values())" if isinstance(pages, Mapping) else ""
        raise TypeError(f"pages must be an iterable of pages (a list of str), not {type(pages).__name__}{hint}")
    memory = SiteMemory()
    for page in pages:
        check_arguments(page, html=True)  # str or bytes, for text pages too
        if html:
            memory.add(b.text for b in html_blocks(page))
        else:
            text = _plain(page) if isinstance(page, str) else decode(bytes(page))  # as clean-article reads bytes
            memory.add(iter_paragraphs(normalise_newlines(text)))
    return memory.repeated()


def clean(
    text: str,
    keep: str | Iterable[str] = ("editorial",),
    model: model_file.Scorer | None = None,
    favor: str = "balanced",
    min_editorial: float | None = None,
    memory: SiteMemory | None = None,
) -> str:
    """The cleaned article: the kept paragraphs (``keep``: labels, or one comma-separated string), unchanged
    and in order, joined by one blank line. ``favor`` and ``min_editorial``: see ``Decision``; ``memory``: see
    ``site_memory``. The paragraphs are rendered as they are labelled: memory is bounded by the page and one
    window of paragraphs, as in ``clean-article`` (a list of 200,000 labelled paragraphs took 130 MB)."""
    keep = _checked_keep(keep)
    _warn_if_markup(text, "clean")
    return render(_labelled_text(text, model, favor, min_editorial, memory), "text", keep)


def clean_html(
    html: str | bytes | bytearray | memoryview,
    keep: str | Iterable[str] = ("editorial",),
    model: model_file.Scorer | None = None,
    favor: str = "balanced",
    min_editorial: float | None = None,
    memory: SiteMemory | None = None,
) -> str:
    """The cleaned article of an HTML page, as text: the kept paragraphs joined by one blank line (rendered as
    they are labelled, as ``clean``)."""
    keep = _checked_keep(keep)
    return render(_labelled_html(html, model, favor, min_editorial, memory), "text", keep)


def _checked_keep(keep: object) -> tuple[str, ...]:
    """``keep`` as labels, checked before any work (its ValueError names the argument)."""
    try:
        return parse_keep(keep)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"keep: {exc}") from None


def explain(
    text: str,
    model: model_file.Scorer | None = None,
    top: int = 5,
    favor: str = "balanced",
    min_editorial: float | None = None,
    memory: SiteMemory | None = None,
) -> list[dict]:
    """Why each paragraph of a text page got the label ``classify`` gives it with the same arguments:
    ``detector.model.Scorer.explain``, window by window as ``classify`` scores a long page."""
    min_editorial = check_arguments(text, False, model, min_editorial, memory, favor)
    top = _check_top(top)
    _warn_if_markup(text, "explain")
    paragraphs = iter_paragraphs(normalise_newlines(_plain(text)))
    explained = label_stream(paragraphs, None, model, Decision(favor, min_editorial), True, memory, top)
    return [why for _, why in explained if why is not None]


def explain_html(
    html: str | bytes | bytearray | memoryview,
    model: model_file.Scorer | None = None,
    top: int = 5,
    favor: str = "balanced",
    min_editorial: float | None = None,
    memory: SiteMemory | None = None,
) -> list[dict]:
    """Why each paragraph of an HTML page got the label ``classify_html`` gives it."""
    min_editorial = check_arguments(html, True, model, min_editorial, memory, favor)
    top = _check_top(top)
    blocks = html_blocks(html)
    texts = [b.text for b in blocks]
    explained = label_stream(texts, blocks, model, Decision(favor, min_editorial), True, memory, top)
    return [why for _, why in explained if why is not None]


def _check_top(top: object) -> int:
    """``top``, the number of features shown per side, is a count: an int of at least 0."""
    if type(top).__name__ in ("bool", "bool_") or not hasattr(top, "__index__"):  # numpy's ints are ints too
        raise TypeError(f"top must be an int, not {type(top).__name__}")
    try:
        count = int(top.__index__())
    except TypeError:  # numpy's arrays have __index__ and refuse it unless they hold one int
        raise TypeError(f"top must be an int, not {type(top).__name__}") from None
    if count < 0:
        raise ValueError(f"top must be at least 0, not {count}")
    return count


def parse_keep(value: str | Iterable[str]) -> tuple[str, ...]:
    """``"editorial,navigational"`` (or an iterable of labels) to a tuple of labels; raises ValueError on an
    unknown label, and on a string that names none."""
    if isinstance(value, (bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(
            f"keep must be labels (a comma-separated str or a list of str), not {type(value).__name__}"
        )
    parts = value.split(",") if isinstance(value, str) else list(value)
    labels = []
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"keep must be labels (a list of str), not a list holding {type(part).__name__}")
        label = part.strip()
        if label == "":
            continue
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r}; choose from {', '.join(LABELS)}")
        if label not in labels:
            labels.append(label)
    if not labels and isinstance(value, str):  # "" is a slip (``--keep ""``); an empty list keeps nothing
        raise ValueError("no label given")
    return tuple(labels)


# ---------------------------------------------------------------------------------------------------------
# Page verdicts

# Page flags (README.md, "Page verdicts"): measured by `detector evaluate` on pages written for them.
NO_ARTICLE_CHARS = 300  # less editorial text than this: the page has no article
TEASER_CHARS = 1200  # less than this, with a sales box right after it: a paywall or teaser stub
ADVERTORIAL_CHARS = 600  # at least this much promotional running text, more than editorial: an advertorial
FLAGS = ("advertorial", "teaser_only", "no_article")
_RUNNING_TEXT = 25  # words: a paragraph this long is running text
_AFTER = 3  # paragraphs: a sales box this close after the last editorial paragraph cuts the article


class VerdictCounter:
    """What a page is as a whole, counted paragraph by paragraph (``verdict`` defines it)."""

    def __init__(self) -> None:
        self.chars = dict.fromkeys(LABELS, 0)
        self.running = dict.fromkeys(LABELS, 0)
        self.confidence = 0.0
        self.editorial_confidence = 0.0
        self.after_editorial: list[str] | None = None  # labels of the paragraphs after the last editorial one

    def add(self, p: Paragraph) -> None:
        size = len(p.text)
        self.chars[p.label] += size
        self.confidence += size * float(p.probabilities[p.label])  # numpy's float32 is no JSON number
        if p.label == "editorial":
            self.editorial_confidence += size * float(p.probabilities["editorial"])
            self.after_editorial = []
        elif self.after_editorial is not None and len(self.after_editorial) < _AFTER:
            self.after_editorial.append(p.label)
        if size >= _RUNNING_TEXT and len(p.text.split(None, _RUNNING_TEXT)) >= _RUNNING_TEXT:
            self.running[p.label] += size

    def result(self) -> dict:
        chars, running = self.chars, self.running
        total = sum(chars.values())
        flags = []
        if running["promotional"] >= max(ADVERTORIAL_CHARS, running["editorial"] + 1):
            flags.append("advertorial")
        cut = "promotional" in (self.after_editorial or [])
        if NO_ARTICLE_CHARS <= chars["editorial"] < TEASER_CHARS and cut:
            flags.append("teaser_only")
        if chars["editorial"] < NO_ARTICLE_CHARS:
            flags.append("no_article")
        return {
            "shares": {label: round(chars[label] / total, 4) if total else 0.0 for label in LABELS},
            "confidence": round(self.confidence / total, 4) if total else 0.0,
            "editorial_confidence": round(self.editorial_confidence / chars["editorial"], 4)
            if chars["editorial"]
            else 0.0,
            "flags": flags,
        }


def verdict(paragraphs: Iterable[Paragraph]) -> dict:
    """What the page is as a whole: the shares of its text (by characters) per label, how confident the
    labelling is (the mean probability of the chosen labels, and of editorial among the editorial paragraphs,
    both by characters), and its flags: ``no_article`` (almost no editorial text), ``teaser_only`` (a short
    article cut off by a sales box: a paywall or teaser stub) and ``advertorial`` (the running text itself
    sells: more promotional than editorial running text)."""
    counter = VerdictCounter()
    for p in _checked(paragraphs, "verdict"):
        counter.add(p)
    return counter.result()


def _checked(paragraphs: object, caller: str) -> Iterator[Paragraph]:
    """The paragraphs one by one, each checked to be a Paragraph with a known label, a text and a probability
    for every label: a clear TypeError or ValueError instead of an AttributeError or KeyError deep in a writer."""
    if isinstance(paragraphs, (str, bytes)) or not isinstance(paragraphs, Iterable):
        raise TypeError(f"{caller} takes the paragraphs classify or classify_html returns, not a page")
    for p in paragraphs:
        _check_paragraph(p, caller)
        if type(p.index) is not int:  # numpy's ints are not JSON, a bool is not an index
            raise TypeError(f"{caller}: a paragraph's index must be an int, not {type(p.index).__name__}")
        if not isinstance(p.text, str):
            raise TypeError(f"{caller}: paragraph {p.index} has a text of type {type(p.text).__name__}, not str")
        probabilities = p.probabilities
        if not isinstance(probabilities, dict) or set(probabilities) != set(LABELS):
            raise ValueError(
                f"{caller}: paragraph {p.index} needs its probabilities as a dict of one for each of "
                f"{', '.join(LABELS)}"
            )
        for label, value in probabilities.items():
            if not _is_probability(value):
                raise ValueError(
                    f"{caller}: paragraph {p.index} has the probability {value!r} for {label}: not a number "
                    "between 0 and 1"
                )
        yield p


def _check_paragraph(p: object, caller: str) -> None:
    """What every writer needs of a paragraph, cheap enough for each one: a Paragraph with a known label."""
    if not isinstance(p, Paragraph):
        raise TypeError(f"{caller} takes Paragraphs (from classify or classify_html), not {type(p).__name__}")
    if p.label not in LABELS:
        raise ValueError(
            f"{caller}: paragraph {p.index} has the label {p.label!r}, not one of {', '.join(LABELS)}"
        )


def _is_probability(value: object) -> bool:
    """A number from 0 to 1 (``_as_number``), not NaN or infinite (JSON has no NaN)."""
    number = _as_number(value)
    return number is not None and 0.0 <= number <= 1.0


# ---------------------------------------------------------------------------------------------------------
# Output formats


class PageWriter:
    """Renders a page in an output format as its labelled paragraphs come, and counts what it saw (labels,
    the verdict). ``text``: the kept paragraphs joined by a blank line; ``annotated``: every paragraph with its
    label (LABELS.md format); ``json``: every paragraph with its probabilities, what decided it, the cleaned
    text and the verdict; ``html``: the kept paragraphs as minimal HTML (headings, paragraphs, lists);
    ``explain``: every paragraph with the features that decided it. With ``final_newline`` the output ends
    with a newline (as files and standard output do) unless it is empty."""

    def __init__(self, fmt: str = "text", keep: str | Iterable[str] = ("editorial",), final_newline: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.fmt, self.keep, self.final_newline = fmt, parse_keep(keep), final_newline
        self.counter = VerdictCounter()
        self.labels = dict.fromkeys(LABELS, 0)
        self.count = 0
        self.kept = 0
        self._kept_texts: list[str] = []  # for json's "text"
        self._list: tuple[str, int] | None = None  # -f html: the list element open and which list of the page
        self._numbers: dict[int, tuple[int, int]] = {}  # -f html: per list of the page its last item and count
        self._number = 0  # -f html: the number of the last item written in the open list
        self._item: int | None = None  # -f html: the item element open (its item_id), its tag, its content
        self._item_tag = "li"
        self._item_empty = True
        self._term = False  # -f html: whether the open <dl> has had a term
        self._html_open = False  # the document's head is written with the first kept paragraph (its title)
        # annotated: the first paragraph with a line that begins with a label, which the format cannot tell
        # from a missing blank line (``detector.pages.parse_annotated`` refuses the page)
        self.unreadable: int | None = None
        self._last = ""

    def add(self, p: Paragraph, explanation: dict | None = None) -> str:
        """The output for one more paragraph (often empty): a Paragraph as ``label_stream`` makes it (``render``
        checks every field of paragraphs from elsewhere), with its explanation for ``explain``."""
        _check_paragraph(p, "PageWriter.add")
        if self.fmt == "explain" and explanation is not None and not explanation.keys() >= _EXPLANATION_KEYS:
            raise ValueError(
                f"PageWriter.add: an explanation needs {', '.join(sorted(_EXPLANATION_KEYS))} (from explain())"
            )
        self.counter.add(p)
        self.labels[p.label] += 1
        first = self.count == 0
        self.count += 1
        kept = p.label in self.keep
        if kept:
            self.kept += 1
        if self.fmt == "html" and p.list_id:
            self._count_item(p)
        out = self._render(p, explanation, first, kept)
        if out:
            self._last = out
        return out

    def _render(self, p: Paragraph, explanation: dict | None, first: bool, kept: bool) -> str:
        fmt = self.fmt
        if fmt == "text":
            return ("" if self.kept == 1 else "\n\n") + p.text if kept else ""
        if fmt == "annotated":
            if self.unreadable is None and "[" in p.text and re.search(_LABEL_LINE, p.text):
                self.unreadable = p.index
            return ("" if first else "\n") + f"[{p.label}] {p.text}\n"
        if fmt == "json":
            if kept:
                self._kept_texts.append(p.text)
            return ('{"paragraphs": [' if first else ", ") + json.dumps(_paragraph_record(p), ensure_ascii=False)
        if fmt == "html":
            return self._html(p) if kept else ""
        return ("" if first else "\n\n") + _explained(p, explanation)

    def _html(self, p: Paragraph) -> str:
        from html import escape  # here, not at the top: only -f html needs it

        out = ""
        if not self._html_open:  # the document's head, titled by its first kept paragraph (a rule has no title)
            title = p.text.split("\n", 1)[0] if p.tag else _markdown_plain(p.text)
            out, self._html_open = _html_head(title, "Artikel"), True
        if not p.tag:  # text input: Markdown's headings, lists, quotes and tables where it has them
            return out + self._close_list() + _markdown_html(p.text) + "\n"
        text = escape(p.text).translate(_NOT_IN_HTML).replace("\n", "<br>\n")
        heading = p.tag in ("h1", "h2", "h3", "h4", "h5", "h6")
        if not p.list_id and p.tag not in ("li", "dt", "dd"):
            return (
                out + self._close_list() + (f"<{p.tag}>{text}</{p.tag}>" if heading else f"<p>{text}</p>") + "\n"
            )
        # A list item, or a paragraph or heading inside one (<li><h3>…</h3><p>…</p></li>): one list element per
        # list of the page (two lists side by side stay two), one item element per item (its paragraphs in
        # it), and an <ol> numbered as the page numbers it where items were left out or a nested list
        # interrupted it
        # a <menu> is a list of bullets, as browsers show it; terms and descriptions outside a <dl> stay both
        orphan = "dl" if not p.list_id and p.tag in ("dt", "dd") else "ul"
        kind = {"ol": "ol", "dl": "dl"}.get(p.list_tag, orphan)
        number = self._numbers.get(p.list_id, (0, 1))[1]
        if self._list != (kind, p.list_id):
            out += self._close_list()
            out += f'<ol start="{number}">\n' if kind == "ol" and number != 1 else f"<{kind}>\n"
            self._list, self._term, self._number = (kind, p.list_id), False, number - 1
        if p.item_id == 0 or p.item_id != self._item:
            out += self._close_item()
            item = ("dt" if (p.item_tag or p.tag) == "dt" else "dd") if kind == "dl" else "li"
            if item == "dd" and not self._term:  # HTML5: a <dl>'s descriptions follow a term (one for all)
                out += "<dt></dt>\n"
            self._term = kind == "dl"
            value = f' value="{number}"' if kind == "ol" and number != self._number + 1 else ""
            out += f"<{item}{value}>"
            self._item, self._item_tag, self._number, self._item_empty = p.item_id, item, number, True
        in_term = self._item_tag == "dt"  # HTML5 allows no heading in a term: its text stands there as a paragraph
        if heading and not in_term:
            out += f"<{p.tag}>{text}</{p.tag}>"
        elif (p.tag in ("li", "dt", "dd") or heading) and self._item_empty:
            out += text
        else:
            out += f"<p>{text}</p>"
        self._item_empty = False
        return out

    def _count_item(self, p: Paragraph) -> None:
        """Number every item of every list, kept or not, as the page shows them (for -f html's <ol>)."""
        last, count = self._numbers.get(p.list_id, (-1, 0))
        if p.item_id == 0 or p.item_id != last:
            self._numbers[p.list_id] = (p.item_id, count + 1)

    def _close_item(self) -> str:
        closing = f"</{self._item_tag}>\n" if self._item is not None else ""
        self._item = None
        return closing

    def _close_list(self) -> str:
        closing = self._close_item() + (f"</{self._list[0]}>\n" if self._list else "")
        self._list = None
        return closing

    def finish(self) -> str:
        """The rest of the output once every paragraph was added."""
        fmt = self.fmt
        if fmt == "json":
            head = '{"paragraphs": [' if self.count == 0 else ""
            text = json.dumps("\n\n".join(self._kept_texts), ensure_ascii=False)
            verdict_json = json.dumps(self.counter.result(), ensure_ascii=False)
            out = f'{head}], "text": {text}, "verdict": {verdict_json}}}'
        elif fmt == "html":
            out = ("" if self._html_open else _html_head("")) + self._close_list() + _HTML_FOOT
        else:
            out = ""
        if self.final_newline and (out or self._last) and not (out or self._last).endswith("\n"):
            out += "\n"
        return out

    def verdict(self) -> dict:
        return self.counter.result()


# Characters HTML does not allow in text: controls (NUL, ESC …; tab, newline and form feed stay), the
# noncharacters (U+FDD0-U+FDEF, U+FFFE and U+FFFF of every plane) and lone surrogates (a str read with
# surrogateescape, half an emoji from JSON: the document could not be written as the UTF-8 it declares): U+FFFD
_NOT_IN_HTML = dict.fromkeys(
    [c for c in range(0x20) if c not in (0x09, 0x0A, 0x0C)]
    + list(range(0x7F, 0xA0))
    + list(range(0xD800, 0xE000))
    + list(range(0xFDD0, 0xFDF0))
    + [plane + last for plane in range(0, 0x110000, 0x10000) for last in (0xFFFE, 0xFFFF)],
    "\ufffd",
)

_LABEL_LINE = rf"(?:^|\n)\[(?:{'|'.join(LABELS)})\] "  # compiled on first use (re's cache): rarely needed


def _html_head(title: str, untitled: str = "Kein Artikel gefunden") -> str:
    """The document's start; its title (HTML5 requires one) is the first line of the first kept paragraph,
    mostly the headline; ``untitled`` where there is none."""
    from html import escape

    title = escape(" ".join(title.split())).translate(_NOT_IN_HTML) or untitled
    head = f'<head><meta charset="utf-8"><title>{title}</title></head>'
    return f'<!DOCTYPE html>\n<html lang="de">\n{head}\n<body>\n'


_HTML_FOOT = "</body>\n</html>"

# Markdown's block forms, matched per paragraph (compiled on first use, by re's cache: only -f html of text needs
# them). A list needs two items or a lead line that ends with ":" (plain text starts lines with "– ein Plus …" and
# footnotes with "* Nur für …"), numbered items need numbers that count up by one ("3. März", "17. März" and
# "1. FC Köln", "1. FC Nürnberg" are no lists: a browser would number them anew).
_MD_HEADING = r" {0,3}(#{1,6})[ \t]+(.*)"  # its closing marks are cut in Python (a regex took quadratic time)
_MD_SETEXT = r" {0,3}(=+|-+)[ \t]*"
_MD_RULE = r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*"
_MD_QUOTE = r" {0,3}>(?: (.*)|$)"  # "> " or a ">" alone: ">50 %" is "more than", ">> Mehr" a teaser's arrows
_MD_ITEM = r" {0,3}(?:[-*+•–]|(\d{1,9})[.)])[ \t]+(\S.*)"
_MD_DELIMITER = r" {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|?"  # of a line without its end's blanks
# Inline: an escaped character, a code span, an image (its alt text), a link (its text may hold one level of
# brackets and line breaks, its address one level of parentheses: "…/Siemens_(Unternehmen)"), an autolink, a <br>
# of a table cell. Every part stops at the next mark of its kind (no ".+?"), so that a paragraph is read in linear
# time: a line of 60 KB of "*a " took 22 s with spans that could reach to its end.
_MD_ADDRESS = r"\(((?:[^()\s]|\([^()\s]*\))*)(?:[ \t]+\"[^\"\n]*\")?\)"
_MD_ATOM = (
    r"\\([!-/:-@\[-`{-~])"
    r"|(?<!`)(`{1,8})([^`]+)\2(?!`)"
    rf"|!\[([^\[\]]*)\]{_MD_ADDRESS}"
    rf"|\[([^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*)\]{_MD_ADDRESS}"
    r"|<(https?://[^\s<>]+)>"
    r"|<br[ \t]*/?>"
)
_EMPHASIS = {1: ("<em>", "</em>"), 2: ("<strong>", "</strong>"), 3: ("<em><strong>", "</strong></em>")}
_OPENING, _CLOSING = "([{", ")]}.,;:!?"  # emphasis never closes after the first nor opens before the second
_SAFE_HREF = r"(?i)(?:https?:|mailto:|[/#?.]|[^:]*$)"  # no javascript: or data: in a link of the article


def _markdown_html(text: str, quotes: bool = True) -> str:
    """A paragraph of a text page as HTML, read as Markdown where it has Markdown's form (html2text, markdownify
    and the crawlers built on them write pages so; plain text rarely has these forms otherwise): an ATX or
    setext heading, a rule, a table, a quote, a list (after lead lines such as "Kurz zusammengefasst:", as
    plain text writes bullets too); emphasis, code, links and images (their alt text) inside. Anything else
    is a ``<p>`` with its line breaks kept. ``quotes``: False inside a quote (eight levels of quotes are
    read, the rest is text)."""
    text = text.translate(_NOT_IN_HTML)
    lines = text.split("\n")
    if len(lines) == 1 and (heading := _markdown_heading(text)):
        level, words = heading
        return f"<h{level}>{_markdown_inline(words)}</h{level}>"
    if len(lines) > 1 and (heading := _markdown_heading(lines[0])):  # a heading needs no blank line after it
        level, words = heading
        rest = _markdown_html("\n".join(lines[1:]), quotes)
        return f"<h{level}>{_markdown_inline(words)}</h{level}>\n{rest}"
    if len(lines) == 2 and lines[0].strip() and re.fullmatch(_MD_SETEXT, lines[1]):
        level = 1 if "=" in lines[1] else 2
        return f"<h{level}>{_markdown_inline(lines[0].strip())}</h{level}>"
    if len(lines) == 1 and re.fullmatch(_MD_RULE, text):
        return "<hr>"
    if len(lines) > 1 and "|" in lines[0] and re.fullmatch(_MD_DELIMITER, lines[1].rstrip(" \t")):
        rows = [_markdown_cells(line) for line in (lines[0], *lines[2:])]
        head = "".join(f"<th>{cell}</th>" for cell in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows[1:])
        return (
            f"<table>\n<thead><tr>{head}</tr></thead>\n"
            + (f"<tbody>\n{body}</tbody>\n" if body else "")
            + "</table>"
        )
    if quotes and all(re.match(_MD_QUOTE, line) for line in lines):
        depth = 0  # a quote in a quote …: up to eight deep, the rest is text (a line of "> > > …" was one
        while depth < 8 and all(re.match(_MD_QUOTE, line) for line in lines):  # level of recursion each)
            lines, depth = [re.sub(_MD_QUOTE, r"\1", line, count=1) for line in lines], depth + 1
        return "<blockquote>" * depth + _markdown_html("\n".join(lines), quotes=False) + "</blockquote>" * depth
    if listed := _markdown_list(lines):
        lead, tag, start, items = listed
        out = f"<p>{_markdown_lines(lead)}</p>\n" if lead else ""
        out += _list_start(tag, start)
        return out + "".join(f"\n<li>{_markdown_item(item)}</li>" for item in items) + f"\n</{tag}>"
    return f"<p>{_markdown_lines(lines)}</p>"


def _markdown_item(lines: list[str]) -> str:
    """A list item's lines as HTML: lines under it that are items themselves (a nested list, as html2text and
    markdownify indent one) are a list inside it, one level deep (its bullets were text: "<br>* mit …")."""
    nested = [re.fullmatch(_MD_ITEM, line) for line in lines[1:]]
    numbers = [int(item.group(1)) for item in nested if item and item.group(1)]
    if not nested or not all(nested) or (numbers and len(numbers) < len(nested)):
        return _markdown_lines(lines)
    if numbers and not _counting(numbers):
        return _markdown_lines(lines)  # "28. Januar", "30. April" under an item: dates, as in _markdown_list
    tag = "ol" if numbers else "ul"
    inner = "".join(f"\n<li>{_markdown_lines([item.group(2)])}</li>" for item in nested if item)
    return f"{_markdown_lines(lines[:1])}\n{_list_start(tag, numbers[0] if numbers else 1)}{inner}\n</{tag}>"


def _counting(numbers: list[int]) -> bool:
    """Whether the numbers of lines are a numbered list's: two or more, counting up by one (plain text starts
    lines with "3. März", "17. März" and "1. FC" too)."""
    return len(numbers) > 1 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def _list_start(tag: str, start: int) -> str:
    """A list's opening tag; an ordered one that does not start at 1 says where it starts."""
    return f'<ol start="{start}">' if tag == "ol" and start != 1 else f"<{tag}>"


def _markdown_list(lines: list[str]) -> tuple[list[str], str, int, list[list[str]]] | None:
    """A paragraph that ends in a list: its lead lines, "ul" or "ol", the first number, and each item's lines
    (a line indented under an item continues it); None for any other paragraph."""
    first = next((i for i, line in enumerate(lines) if re.fullmatch(_MD_ITEM, line)), None)
    if first is None:
        return None
    items: list[list[str]] = []
    numbers: list[int] = []
    content = 0  # where the text of the last item starts: a line indented to it is inside that item
    for line in lines[first:]:
        item = re.fullmatch(_MD_ITEM, line)
        if item and not (items and len(line) - len(line.lstrip(" ")) >= content):
            if items and (item.group(1) is None) != (not numbers):
                return None  # bullets and numbers mixed: not one list
            numbers += [int(item.group(1))] if item.group(1) else []
            items.append([item.group(2)])
            content = item.start(2)
        elif line[:1] in (" ", "\t") and line.strip():
            items[-1].append(line.strip())
        else:
            return None
    lead = lines[:first]
    if len(items) < 2 and not (lead and lead[-1].rstrip().endswith(":")):
        return None
    if numbers and not _counting(numbers):
        return None
    return lead, "ol" if numbers else "ul", numbers[0] if numbers else 1, items


def _markdown_cells(row: str) -> list[str]:
    """A table row's cells as HTML (a ``\\|`` stays in its cell)."""
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return [_markdown_inline(cell.strip()) for cell in re.split(r"(?<!\\)\|", row)]


def _markdown_lines(lines: list[str]) -> str:
    """Lines of one block as HTML, their line breaks kept: links and emphasis may span them."""
    return _markdown_inline("\n".join(lines)).replace("\n", "<br>\n")


def _markdown_inline(text: str, links: bool = True) -> str:
    """Markdown text as HTML: its atoms (``_MD_ATOM``) turned into elements, its emphasis (``_emphasis``)
    into ``<em>`` and ``<strong>``, the rest escaped. ``links``: False inside a link's text (HTML has no link
    in a link: the inner one is its text)."""
    from html import escape

    parts: list[tuple[bool, str]] = []  # (HTML, text) in order: the atoms' HTML and the text between them
    at = 0
    for atom in re.finditer(_MD_ATOM, text):
        if atom.start() > at:
            parts.append((False, text[at : atom.start()]))
        at = atom.end()
        escaped, _, code, alt, _, link, href, autolink = atom.groups()
        if escaped is not None:
            html = escape(escaped)
        elif code is not None:
            html = f"<code>{escape(code.strip() or code)}</code>"
        elif alt is not None:
            html = _markdown_inline(alt, links)
        elif link is not None:
            inner = _markdown_inline(link, links=False)
            safe = links and href and re.match(_SAFE_HREF, href)
            html = f'<a href="{escape(href)}">{inner}</a>' if safe else inner
        elif autolink is not None:
            html = f'<a href="{escape(autolink)}">{escape(autolink)}</a>' if links else escape(autolink)
        else:
            html = "<br>"
        parts.append((True, html))
    if at < len(text):
        parts.append((False, text[at:]))
    tags = _emphasis(parts)
    out = []
    for number, (is_html, part) in enumerate(parts):
        if is_html:
            out.append(part)
            continue
        at = 0
        for start, end, tag in tags.get(number, ()):
            out += [escape(part[at:start]), tag]
            at = end
        out.append(escape(part[at:]))
    return "".join(out)


def _emphasis(parts: list[tuple[bool, str]]) -> dict[int, list[tuple[int, int, str]]]:
    """The runs of ``*`` and ``_`` in the text parts that open or close emphasis, as (start, end, tag) per part:
    a run opens before a non-space and closes after one, never inside a word ("Anleger*innen", "kurs_ziel") and
    never around nothing but punctuation ("Preise (*) und Gebühren (*)");
    a closer takes the nearest opener of its kind and length (1: em, 2: strong, 3: both) among the last 16
    still open, and those above it stay text. Linear in the line, unlike a search for each span's end."""
    runs = []  # (part, start, end, mark, can open, can close)
    for number, (is_html, part) in enumerate(parts):
        if is_html:
            continue
        for run in re.finditer(r"\*+|_+", part):
            start, end = run.span()
            # an atom (a link, code, an image) beside a run lets it open or close as a word would, yet is no
            # letter: "**[Schlagzeile](url)**" (html2text's bold link) kept its marks, and in the title too
            before = part[start - 1] if start else ("" if number == 0 else "\x00")
            after = part[end] if end < len(part) else ("" if number == len(parts) - 1 else "\x00")
            opens = bool(after) and not after.isspace() and after not in _CLOSING and not before.isalnum()
            closes = bool(before) and not before.isspace() and before not in _OPENING and not after.isalnum()
            runs.append((number, start, end, run.group(), opens, closes))
    tags: dict[int, list[tuple[int, int, str]]] = {}
    openers: list[int] = []
    for index, (number, start, end, mark, opens, closes) in enumerate(runs):
        if closes and len(mark) in _EMPHASIS:
            nearest = range(len(openers) - 1, max(-1, len(openers) - 17), -1)
            found = next((k for k in nearest if runs[openers[k]][3] == mark), None)
            if found is not None:
                opener = runs[openers[found]]
                tags.setdefault(opener[0], []).append((opener[1], opener[2], _EMPHASIS[len(mark)][0]))
                tags.setdefault(number, []).append((start, end, _EMPHASIS[len(mark)][1]))
                del openers[found:]
                continue
        if opens and len(mark) in _EMPHASIS:
            openers.append(index)
    for marks in tags.values():
        marks.sort()
    return tags


def _markdown_heading(line: str) -> tuple[int, str] | None:
    """An ATX heading's level and words (its closing marks cut: "## Ausblick ##"), or None."""
    heading = re.fullmatch(_MD_HEADING, line)
    if heading is None:
        return None
    words = heading.group(2).rstrip(" \t")
    bare = words.rstrip("#")
    if bare != words and (not bare or bare[-1] in " \t"):
        words = bare.rstrip(" \t")
    return len(heading.group(1)), words


def _markdown_plain(text: str) -> str:
    """The first line of a paragraph of Markdown as the reader sees it (for the document's title): without
    quote, heading and bullet marks (a number stays: "24. Dezember"), a table's header as its cells, a rule
    as nothing; no markup, a ``<br>`` as a space."""
    from html import unescape

    lines = text.split("\n")
    line = lines[0]
    for _ in range(8):
        if (quoted := re.match(_MD_QUOTE, line)) is None:
            break
        line = quoted.group(1) or ""
    if re.fullmatch(_MD_RULE, line) or re.fullmatch(_MD_DELIMITER, line.rstrip(" \t")):
        return ""
    if len(lines) > 1 and "|" in line and re.fullmatch(_MD_DELIMITER, lines[1].rstrip(" \t")):
        html = " ".join(_markdown_cells(line))
    else:
        if heading := _markdown_heading(line):
            line = heading[1]
        elif (item := re.fullmatch(_MD_ITEM, line)) and item.group(1) is None:
            line = item.group(2)
        html = _markdown_inline("\n".join([line, *lines[1:]]))  # marks that span lines paired, then its first
    return unescape(re.sub(r"<[^>]*>", "", html.replace("<br>", " ")).split("\n", 1)[0])


def _paragraph_record(p: Paragraph) -> dict:
    return {
        "index": p.index,
        "label": p.label,
        "probabilities": {k: round(float(v), 6) for k, v in p.probabilities.items()},
        "decided_by": p.decided_by,
        "text": p.text,
        **({"tag": p.tag} if p.tag else {}),
        **({"list_tag": p.list_tag, "list_id": p.list_id, "item_id": p.item_id} if p.list_id else {}),
        **({"item_tag": p.item_tag} if p.item_tag else {}),
    }


_EXPLANATION_KEYS = frozenset(["label", "runner_up", "expert", "expert_weight", "for", "against"])


def _explained(p: Paragraph, e: dict | None) -> str:
    head = f"[{p.label}] p={p.probabilities[p.label]:.3f} decided by {p.decided_by}"
    if e is None:
        return f"{head}\n{p.text}"
    lines = [
        f"{head}; the model: {e['label']} over {e['runner_up']} ({e['expert']} expert, weight "
        f"{e['expert_weight']:.2f})",
        p.text,
        "  for:     " + ", ".join(f"{name} {value:+.2f}" for name, value in e["for"]),
        "  against: " + ", ".join(f"{name} {value:+.2f}" for name, value in e["against"]),
    ]
    return "\n".join(lines)


def render(paragraphs: Iterable[Paragraph], fmt: str = "text", keep: str | Iterable[str] = ("editorial",)) -> str:
    """One page in an output format (``PageWriter``), as one string without a final newline for text. Not
    ``explain``: a paragraph does not carry the features that decided it (``explain()`` gives them)."""
    return _render(paragraphs, fmt, keep, "render")


def _render(
    paragraphs: Iterable[Paragraph], fmt: str, keep: str | Iterable[str], caller: str, encodable: bool = True
) -> str:
    """``render`` for ``caller``; ``encodable``: JSON that can be written as UTF-8 (``_encodable``)."""
    if fmt == "explain":
        raise ValueError(
            "render() cannot explain: a paragraph does not carry its features; call detector.api.explain() (or "
            "explain_html()) for them"
        )
    writer = PageWriter(fmt, _checked_keep(keep))
    out = "".join(writer.add(p) for p in _checked(paragraphs, caller)) + writer.finish()
    if writer.unreadable is not None:  # as clean-article -f annotated notes it
        warnings.warn(
            f"paragraph {writer.unreadable} has a line that begins with a label ([editorial] …): the annotated "
            "page will not read back until it is split there or the line changed",
            UserWarning,
            stacklevel=3,
        )
    return _encodable(out) if fmt == "json" and encodable else out


def _encodable(out: str) -> str:
    """JSON that can be written as UTF-8: a lone surrogate of a paragraph (a str read with surrogateescape)
    becomes U+FFFD, as ``clean-article -f json`` writes it; text and annotated output keep the caller's own
    characters, as they are the caller's paragraphs."""
    try:
        out.encode("utf-8")
    except UnicodeEncodeError:
        return re.sub("[\ud800-\udfff]", "\ufffd", out)
    return out


def as_record(paragraphs: list[Paragraph], keep: str | Iterable[str] = ("editorial",)) -> dict:
    """A page as plain data: the cleaned text, the page's verdict and, per paragraph, index, label,
    probabilities, what decided the label, and text. The texts are the paragraphs' own, lone surrogates too
    (as ``render``'s text): a JSON Lines record's ``paragraphs`` then agree with its ``cleaned_text``."""
    result: dict = json.loads(_render(paragraphs, "json", keep, "as_record", encodable=False))
    return {"text": result["text"], "verdict": result["verdict"], "paragraphs": result["paragraphs"]}


def as_html(paragraphs: list[Paragraph], keep: str | Iterable[str] = ("editorial",)) -> str:
    """The kept paragraphs (the article by default, as ``clean-article -f html`` writes it) as a minimal HTML
    document: headings stay headings, list items are gathered into the lists they stood in (numbered ones
    numbered), a text paragraph is read as Markdown where it has Markdown's form (``_markdown_html``),
    everything else is a ``<p>`` (line breaks inside a text paragraph become ``<br>``)."""
    return _render(paragraphs, "html", keep, "as_html")
