"""HTML to paragraphs, with what the markup tells about each one.

The rule is the one the dev set was made with (``../shared/devset/README.md``): drop what a browser does not
show (scripts, styles, forms' inputs, hidden elements), let every block element end the paragraph before it
and start a new one, keep inline elements inside their paragraph, turn ``br``, ``td`` and ``th`` into spaces and
collapse white space. Beside its text, each paragraph keeps the markup around it: its block tag, how much of it
is link text and how much paid-link text (``paid_link``), the landmarks it sits in (``nav``, ``footer``, ``aside``,
``form`` ...), the words of the class and id attributes above it, its depth, and the ``data-label`` of an annotated
training page.

Parsing is lxml's HTML parser (libxml2: fast, forgiving with broken markup); the walk is iterative, so any
nesting depth is safe.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from itertools import islice

from detector.segment import is_blank, page_codec

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at run time (see _named_tuple)
if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from detector._named_tuple import NamedTuple

# Dropped with everything inside them: not shown as text by a browser.
DROPPED = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "title",  # not "head": libxml2 leaves a page's first elements there when it has no <body> tag
        "select",
        "datalist",
        "iframe",
        "object",
        "embed",
        "canvas",
        "input",
        "video",  # their text is the fallback for browsers without video or audio
        "audio",
        "rp",  # the fallback parentheses of ruby text
        "noembed",
        "noframes",  # raw text to libxml2; a browser that shows the frames does not show it
        "progress",  # their text is the fallback for browsers that draw no bar or gauge
        "meter",
    ]
)
# Empty elements that libxml2 reads as containers of what follows them: dropping or hiding one drops only itself.
VOID_TO_BROWSERS = frozenset(["embed", "source", "track", "wbr"])
# svg and math are foreign content: their own text is not the page's, but an HTML element such as <p> or <div>
# inside one that was never closed is shown by a browser after it (the HTML5 "breakout"): read those.
FOREIGN = frozenset(["svg", "math"])
BREAKOUT = frozenset(
    """b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 hr i img li listing menu
    meta nobr ol p pre ruby s small span strike strong sub sup table tt u ul var""".split()  # noqa: SIM905
)
# Inside these, HTML is the foreign element's own content (a diagram's labels, a formula's letters), not a
# breakout: a browser keeps it in the svg or math, and their text with it.
INTEGRATION_POINTS = frozenset(
    "foreignObject foreignobject desc title mi mo mn ms mtext annotation-xml".split()  # noqa: SIM905
)
# Each of these ends the paragraph before it and starts a new one.
BLOCKS = frozenset(
    [
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "main",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "li",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "table",
        "tr",
        "thead",
        "tbody",
        "tfoot",
        "caption",
        "blockquote",
        "figure",
        "figcaption",
        "pre",
        "form",
        "fieldset",
        "legend",
        "details",
        "summary",
        "address",
        "hr",
        "body",
        "html",
        "center",
        "dialog",
        "menu",
        "hgroup",
        "option",
        "optgroup",
        "frameset",
        "dir",
        "search",
    ]
)
SPACES = frozenset(("br", "td", "th"))  # not wbr: a break opportunity inside a word ("Rechen<wbr>zentrum")
LANDMARKS = (
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "main",
    "article",
    "figure",
    "table",
    "li",
    "blockquote",
    "dialog",  # consent banners, newsletter pop-ups, paywall and image overlays: never the article
)
_LANDMARK_BIT = {tag: 1 << i for i, tag in enumerate(LANDMARKS)}
_ROLES = {
    "navigation": "nav",
    "banner": "header",
    "contentinfo": "footer",
    "complementary": "aside",
    "form": "form",
    "search": "form",
    "main": "main",
    "article": "article",
    "dialog": "dialog",
    "alertdialog": "dialog",
}
LABEL_ATTRIBUTE = "data-label"
# The label of a paragraph whose text sits under two different data-labels begins so; the two follow, each after
# a NUL (which no attribute holds)
CONFLICT = "<two labels>"
_HIDDEN_STYLE = re.compile(r"(?<![\w-])(?:display\s*:\s*none|visibility\s*:\s*hidden)", re.I)  # not --x-display
_NO_BOX_STYLE = re.compile(r"(?<![\w-])display\s*:\s*none", re.I)
_SPACE = re.compile(r"\s+")
_CLASS_WORD = re.compile(r"[a-z]+|[A-Z][a-z]+|[A-Z]+(?![a-z])")
MAX_CLASS_WORDS = 24  # per paragraph: the nearest ancestors' words are the telling ones


class Block(NamedTuple):
    """One paragraph of an HTML page and the markup around it."""

    text: str
    tag: str  # the innermost block element holding the paragraph ("p", "h2", "li", "div" ...)
    link_chars: int  # characters of the text that sit inside links
    landmarks: int  # bit set of LANDMARKS among the ancestors (and ARIA roles that mean the same)
    class_words: tuple[str, ...]  # lower-cased words of the class and id attributes, nearest first
    depth: int  # element depth of the block
    label: str | None  # data-label of the nearest labelled ancestor (annotated pages), else None
    heading: int  # 1-6 inside h1-h6, else 0
    group: int = 0  # the box it sits in: the nearest element with a class, an id, or a list or landmark tag
    boxes: tuple[int, ...] = ()  # the group and the boxes around it, nearest first (at most BOX_LEVELS)
    paid_chars: int = 0  # characters of the text that sit inside paid links (``paid_link``)
    list_tag: str = ""  # the list it stands in ("ul", "ol", "dl", "menu"; the nearest), for -f html alone
    list_id: int = 0  # which list of the page (items of one list share it), 0 outside lists
    item_id: int = 0  # which item of its list (the paragraphs of one <li> share it), 0 outside items
    item_tag: str = ""  # the item element ("li", "dt", "dd"), for -f html: a <dt> holding a <p> is a term
    line: int = 0  # the line of the page where its text begins (of the element it begins in), for messages


class _Frame(NamedTuple):
    tag: str
    is_block: bool
    landmarks: int
    words: tuple[str, ...]
    label: str | None
    link: bool
    heading: int
    depth: int
    group: int
    boxes: tuple[int, ...]
    paid: bool
    in_list: tuple[str, int, int, str] = ("", 0, 0, "")  # the nearest list element around it, its serial, the
    # item's serial and tag


_SKIPPED = _Frame("#skipped", False, 0, (), None, False, 0, 0, 0, (), False)
_SKIPPED_BOX = _Frame(
    "#skipped-box", True, 0, (), None, False, 0, 0, 0, (), False
)  # hidden, its box still laid out
_FOREIGN = _Frame("#foreign", False, 0, (), None, False, 0, 0, 0, (), False)  # inside svg or math: no text
BOX_LEVELS = 3  # boxes kept per paragraph: its own, the one around it, and that one's
_BOXES = frozenset(
    [
        "ul",
        "ol",
        "dl",
        "table",
        "section",
        "aside",
        "nav",
        "header",
        "footer",
        "form",
        "article",
        "main",
        "figure",
        "menu",
    ]
)


_LISTS = frozenset(["ul", "ol", "dl", "menu"])


def class_words(value: str) -> list[str]:
    """``"article-teaser__adSlot js2"`` → ``["article", "teaser", "ad", "slot", "js"]``, the first
    ``MAX_CLASS_WORDS`` of them (as many as a paragraph keeps: all the words of an 8 MB class took 80 times its
    size in memory); a word longer than ``MAX_CLASS_WORD_CHARS`` is cut there (no site's class word is that
    long: kept whole, a 64 KB class name was held by the scorer's cache long after its page)."""
    found = (m.group().lower()[:MAX_CLASS_WORD_CHARS] for m in _CLASS_WORD.finditer(value))
    return list(islice((w for w in found if len(w) > 1 or w in "ax"), MAX_CLASS_WORDS))


MAX_CLASS_WORD_CHARS = 64
CACHED_CLASS_CHARS = 256  # class and id values longer than this are read every time, not kept in the cache


@lru_cache(maxsize=1 << 14)
def _class_words(value: str) -> tuple[str, ...]:
    """``class_words`` as a tuple, cached: a page repeats its class names hundreds of times; no more of them
    than a paragraph keeps."""
    return tuple(class_words(value))[:MAX_CLASS_WORDS]


# Links that earn the site money per click or sale: marked so (rel="sponsored", as search engines ask), through an
# affiliate network, an ad server or a shop's partner programme, or through the site's own click-out redirect.
# Read with a few string operations, not a regular expression: a page has hundreds of links.
_PAID_DOMAINS = frozenset(
    """awin1.com webmasterplan.com financeads.net tradedoubler.com skimresources.com digidip.net viglink.com
    linksynergy.com shareasale.com anrdoezrs.net jdoqocy.com tkqlhce.com dpbolvw.net kqzyfj.com prf.hn
    webgains.com affili.net doubleclick.net adition.com smartadserver.com adform.net criteo.com amzn.to""".split()  # noqa: SIM905
)
_PAID_NETWORKS = frozenset(["zanox", "adcell", "belboon", "tradetracker", "daisycon"])  # under many countries
_PAID_PATHS = ("go/", "goto/", "out/", "outgoing/", "partnerlink/", "partner-link/")
_PAID_PARAMETERS = frozenset(["affid", "aff_id", "affiliate_id", "affiliate", "partner_id"])


def paid_link(rel: str | None, href: str | None) -> bool:
    """Whether a link is a paid one: ``rel="sponsored"``, or an ``href`` through an affiliate network or an ad
    server (its domain), an Amazon partner tag, an affiliate parameter, or a click-out redirect (``/go/``,
    ``/out/`` ...). LABELS.md: affiliate links are promotional, but a paragraph of an article that names a shop
    through one is still the article: the model weighs this beside the rest."""
    if rel and "sponsored" in rel.lower():
        return True
    if not href:
        return False
    href = href.strip().lower()
    host = ""
    if href.startswith(("http://", "https://", "//")):
        host, _, href = href.partition("//")[2].partition("/")
        labels = host.split(":")[0].split(".")
        if len(labels) >= 2 and (
            ".".join(labels[-2:]) in _PAID_DOMAINS
            or labels[-2] in _PAID_NETWORKS
            or (labels[-2] == "ebay" and labels[0] == "rover")
        ):
            return True
    else:
        href = href.lstrip("/")
    path, _, query = href.partition("?")
    if path.startswith(_PAID_PATHS) or "/relocator/" in f"/{path}" or href.startswith("aclk?"):
        return True
    if not query:
        return False
    keys = {item.partition("=")[0] for item in query.split("&")}
    return bool(keys & _PAID_PARAMETERS) or ("tag" in keys and "amazon." in host)


def _hidden(element) -> bool:
    hidden = element.get("hidden")
    if hidden is not None:  # (until-found: an accordion's answer, which page search opens, as a <details>)
        return hidden.strip().lower() != "until-found"
    style = element.get("style")
    return bool(style) and _HIDDEN_STYLE.search(style) is not None


def _keeps_box(element) -> bool:
    """Whether a hidden element still takes its place on the page (``visibility: hidden``), so that a hidden
    block element parts the text around it as a visible one would."""
    return element.get("hidden") is None and _NO_BOX_STYLE.search(element.get("style") or "") is None


class TooDeepError(ValueError):
    """The page nests its elements deeper than the parser reads (``MAX_DEPTH``): the text below would be lost."""


MAX_DEPTH = 2048  # libxml2's bound with its "huge" option (256 without it, which real pages of unclosed tags pass)
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse(html: str):
    """The document tree of an HTML string (lxml, recovering from broken markup), or None when empty.

    A lone surrogate (possible in a str from JSON) becomes U+FFFD: libxml2 would end the document there. A page
    nested deeper than ``MAX_DEPTH`` raises ``TooDeepError`` instead of losing the text below that depth."""
    from lxml import etree

    if html.lstrip().startswith("<?xml"):  # lxml refuses a str that declares an encoding: the declaration goes
        start = html.index("<?xml")
        end, following = html.find("?>", start), html.find("<", start + 1)
        if end == -1 or -1 < following < end:  # not closed: it ends where the next tag begins
            html = html[following:] if following != -1 else ""
        else:
            html = html[end + 2 :]
    try:
        html.encode("utf-8")
    except UnicodeEncodeError:
        html = _SURROGATE.sub("\ufffd", html)
    root = _parsed(html, comments=False)
    if root is not None and _segments(root):  # React's streamed server rendering: read again with the comments
        root = _parsed(html, comments=True)  # that end its boundaries (only such pages are parsed twice)
        if root is not None:
            _fill_streamed(root)
            etree.strip_tags(root, etree.Comment)
    return root


def _parsed(html: str, comments: bool):
    """libxml2's tree of the page, what follows its ``</html>`` put in its body; None when empty."""
    from lxml import etree

    # etree's parser, not lxml.html's: the same libxml2 parse without a Python call per element for its classes
    parser = etree.HTMLParser(
        remove_comments=not comments, remove_pis=True, no_network=True, recover=True, huge_tree=True
    )
    try:
        root = etree.fromstring(html, parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    if any(e.type_name == "ERR_RESOURCE_LIMIT" and "depth" in e.message for e in parser.error_log):
        raise TooDeepError(
            f"its elements are nested deeper than {MAX_DEPTH:,} levels: the text below cannot be read"
        )
    if root is not None:
        after = list(root.itersiblings())  # what follows </html>: libxml2 makes it a second document element
        if after:
            body = root.find("body")
            (root if body is None else body).extend(after)
    return root


def _segments(root: Any) -> list[Any]:
    """React 18's streamed content: elements ``hidden`` with an id ``S:…`` (<div hidden id="S:0">)."""
    return root.xpath("//*[@hidden][starts-with(@id, 'S:')]")


_STREAMED_DEPTH = 64  # React appends its segments to the body, and its boundaries sit in the page's layout


def _fill_streamed(root: Any) -> None:
    """Put the content React streamed into hidden ``<div hidden id="S:n">`` elements where its script puts it
    (``$RC``: in place of the fallback after ``<template id="B:n">`` up to the boundary's ``<!--/$-->``;
    ``$RS``: in place of ``<template id="P:n">``), as a browser shows the page: read as hidden, the whole article
    of a Next.js page was lost and its "Artikel wird geladen …" kept. Content without its template is read
    where it stands; a fallback whose end is not within ``_FALLBACK_SIBLINGS`` siblings is left (a page cut,
    its comments stripped). Linear in the page: each boundary looks at its fallback alone."""
    templates: dict[str, Any] = {}
    for template in root.iter("template"):
        templates.setdefault(template.get("id") or "", template)
    # any element: React wraps a segment as its context needs (<table hidden id="S:0"> for rows)
    streamed = _segments(root)
    for segment in streamed:
        del segment.attrib["hidden"]
    done: set[str] = set()
    for segment in streamed:
        key = segment.get("id")[2:]
        if key in done:  # (a second segment of one id: read where it stands)
            continue
        done.add(key)
        boundary, placeholder = templates.get(f"B:{key}"), templates.get(f"P:{key}")
        target = boundary if boundary is not None else placeholder
        if target is None or target.getparent() is None:
            continue
        around = _ancestors(segment)
        inside = _ancestors(target)
        if around is None or inside is None or segment in inside:  # too deep to be React's, or its own template
            continue
        if boundary is not None:
            fallback = _fallback(boundary, segment, around)
            if fallback is None:
                continue
            boundary.tail = None
            for sibling in fallback:
                sibling.getparent().remove(sibling)  # (with its tail: text of the fallback)
        _remove_keeping_tail(segment)
        target.tail = (segment.text or "") + (target.tail or "")
        for child in reversed(list(segment)):
            target.addnext(child)  # (addnext moves the child's tail with it)


def _ancestors(element: Any) -> set[Any] | None:
    """An element's ancestors, or None when it is deeper than ``_STREAMED_DEPTH`` (looked at so far only)."""
    found = set(islice(element.iterancestors(), _STREAMED_DEPTH + 1))
    return None if len(found) > _STREAMED_DEPTH else found


_FALLBACK_SIBLINGS = 256  # a boundary's fallback (a skeleton, a spinner) is a few elements


def _fallback(boundary: Any, segment: Any, around: set[Any]) -> list[Any] | None:
    """The nodes of a boundary's fallback: the siblings after its template up to its ``<!--/$-->`` (nested
    boundaries counted), or None when that end is not found soon, or the streamed content itself stands among
    them."""
    nodes: list[Any] = []
    nested = 0
    for sibling in boundary.itersiblings():
        if len(nodes) >= _FALLBACK_SIBLINGS or sibling is segment or sibling in around:
            return None
        if not isinstance(sibling.tag, str):
            if sibling.text in ("$", "$?", "$!"):
                nested += 1
            elif sibling.text == "/$":
                if not nested:
                    return nodes  # (the end itself stays: its tail is the page after the boundary)
                nested -= 1
        nodes.append(sibling)
    return None


def _remove_keeping_tail(element: Any) -> None:
    """Take an element out of the tree, its tail text left where it stood."""
    parent = element.getparent()
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def blocks(html: str) -> list[Block]:
    """The paragraphs of an HTML page in document order."""
    root = parse(html)
    return [] if root is None else list(_walk(root))


def _walk(root) -> Iterator[Block]:
    from lxml import etree

    stack: list[_Frame] = []
    parts: list[str] = []
    link_parts = paid_parts = 0
    owner: _Frame | None = None
    began: Any = None  # the element the paragraph's text begins in (its line names the paragraph in messages)

    def flush() -> Block | None:
        nonlocal parts, link_parts, paid_parts, owner
        if owner is None:  # nothing but white space since the last boundary (most boundaries)
            parts, link_parts, paid_parts = [], 0, 0
            return None
        text = _SPACE.sub(" ", "".join(parts)).strip()
        block = None
        if text and not is_blank(text):  # a paragraph of zero-width spaces or soft hyphens is empty, as in text
            link_share = min(link_parts, len(text))
            block = Block(
                text,
                owner.tag,
                link_share,
                owner.landmarks,
                owner.words[:MAX_CLASS_WORDS],
                owner.depth,
                owner.label,
                owner.heading,
                owner.group,
                owner.boxes,
                min(paid_parts, len(text)),
                *owner.in_list,
                (began.sourceline or 0) if began is not None else 0,
            )
        parts, link_parts, paid_parts, owner = [], 0, 0, None
        return block

    def add(text: str | None, frame: _Frame, element: Any) -> None:
        nonlocal link_parts, paid_parts, owner, began
        if not text:
            return
        if owner is None:
            if not text.strip():
                return
            owner, began = frame, element
        elif frame.label != owner.label and not is_blank(text) and not str(owner.label).startswith(CONFLICT):
            # a slot of zero-width spaces labelled apart is no text under a second label (is_blank)
            owner = owner._replace(label=f"{CONFLICT}\0{owner.label}\0{frame.label}")
        parts.append(text)
        if frame.link:
            chars = len(_SPACE.sub(" ", text).strip()) + (1 if text[:1].isspace() else 0)
            link_parts += chars
            if frame.paid:
                paid_parts += chars

    base = _Frame("#root", True, 0, (), None, False, 0, 0, 0, (), False)
    walker = etree.iterwalk(root, events=("start", "end"))
    serial = 0
    breakout = None  # inside foreign content: the HTML element where the page leaves it (see FOREIGN)
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        tag = tag.lower()
        parent = stack[-1] if stack else base
        if parent is _FOREIGN:  # after a breakout: the page goes on in the element around the svg or math
            parent = next((f for f in reversed(stack) if f is not _FOREIGN), base)
        if event == "start":
            if breakout is not None:
                if element is not breakout:
                    stack.append(_FOREIGN)
                    continue
                breakout = None
            if not tag or tag in DROPPED or _hidden(element):
                if tag in VOID_TO_BROWSERS:  # what libxml2 put inside is what follows it: read on
                    frame = parent._replace(is_block=False) if parent.is_block else parent
                    stack.append(frame)
                    add(element.text, frame, element)
                    continue
                walker.skip_subtree()  # lxml still sends its "end" event, where its tail is read
                if tag in BLOCKS and tag not in DROPPED and _keeps_box(element):
                    block = flush()
                    if block:
                        yield block
                    stack.append(_SKIPPED_BOX)
                else:
                    stack.append(_SKIPPED)
                continue
            if tag in FOREIGN:
                breakout = _breakout(element)
                if breakout is None:  # an icon or a formula, closed: nothing of it is text
                    walker.skip_subtree()
                    stack.append(_SKIPPED)
                else:
                    stack.append(_FOREIGN)
                continue
            is_block = tag in BLOCKS
            get = element.get
            words = parent.words
            own = " ".join(filter(None, (get("id"), get("class"))))
            if own:  # the nearest words first, as many as a paragraph keeps (all of them grew with the depth)
                mine = _class_words(own) if len(own) <= CACHED_CLASS_CHARS else _class_words.__wrapped__(own)
                words = (mine + words)[:MAX_CLASS_WORDS]
            landmarks = parent.landmarks
            if tag in _LANDMARK_BIT:
                landmarks |= _LANDMARK_BIT[tag]
            role = get("role")
            if role in _ROLES:
                landmarks |= _LANDMARK_BIT[_ROLES[role]]
            heading = int(tag[1]) if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456" else parent.heading
            serial += 1
            boxed = bool(own) or tag in _BOXES
            frame = _Frame(
                tag if is_block else parent.tag,
                is_block,
                landmarks,
                words,
                parent.label if (own_label := get(LABEL_ATTRIBUTE)) is None else own_label,
                parent.link or tag == "a",
                heading,
                parent.depth + 1,
                serial if boxed else parent.group,
                (serial, *parent.boxes[: BOX_LEVELS - 1]) if boxed else parent.boxes,
                parent.paid or (tag == "a" and paid_link(get("rel"), get("href"))),
                (tag, serial, 0, "")
                if tag in _LISTS
                else (*parent.in_list[:2], serial, tag)
                if tag in ("li", "dt", "dd")
                else parent.in_list,
            )
            stack.append(frame)
        else:
            frame = stack.pop()
            parent = stack[-1] if stack else base
            if parent is _FOREIGN:
                parent = next((f for f in reversed(stack) if f is not _FOREIGN), base)
            if frame is _SKIPPED_BOX:
                block = flush()
                if block:
                    yield block
            if frame is _SKIPPED or frame is _FOREIGN or frame is _SKIPPED_BOX:
                if element.tail and breakout is None:
                    add(element.tail, parent, element)
                continue
        # Where an element starts or ends: a block element closes the paragraph before it, a br, td or th is a
        # space; then comes the element's text (at its start) or its tail (at its end).
        if is_block if event == "start" else frame.is_block:
            block = flush()
            if block:
                yield block
        elif tag in SPACES:
            parts.append(" ")
        text = element.text if event == "start" else element.tail
        if text:
            add(text, frame if event == "start" else parent, element)
    block = flush()
    if block:
        yield block


_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)
_XML_ENCODING = re.compile(rb"""\s*<\?xml\s[^>]{0,200}?encoding\s*=\s*["']\s*([A-Za-z0-9_.:-]{1,40})""")


_HEAD_END = re.compile(rb"</head\b|<body\b", re.I)
_HEAD_LIMIT = 1 << 16  # bytes: how far a <meta charset> is looked for in a head of long inline styles or scripts


def declared_charset(data: bytes) -> str | None:
    """The charset a page declares in a ``<meta>`` tag (``charset=`` or the ``http-equiv`` form), when Python
    knows it: in its first 4 KB, else anywhere in its head (as a browser that meets it late reads the page
    again with it), up to 64 KB; without one, in the XML declaration it begins with (XHTML of older CMSs, as
    Blink and WebKit read it: ``<?xml version="1.0" encoding="iso-8859-2"?>`` was read as Windows-1252)."""
    match = _META_CHARSET.search(data[:4096])
    if match is None and len(data) > 4096:
        end = _HEAD_END.search(data, 0, _HEAD_LIMIT)
        match = _META_CHARSET.search(data[: end.start() if end else _HEAD_LIMIT])
    if match is None:
        match = _XML_ENCODING.match(data, 0, 1024)
    return None if match is None else declarable(match.group(1).decode("ascii"))


def declarable(charset: str) -> str | None:
    """The canonical name of a charset a page or an HTTP header declares, when it is one pages are written in
    (``segment.page_codec``) and browsers read (``_BROWSER_READS``: not UTF-7, which the Encoding Standard
    dropped as pages smuggled scripts past filters with it, nor EBCDIC or DOS code pages). None: the
    declaration is ignored, as a browser ignores it (a page that declared ``rot13`` failed a whole WARC file)."""
    codec = page_codec(_BROWSER_LABELS.get(charset.strip().lower(), charset))
    return codec if codec in _BROWSER_READS else None


# Labels of the Encoding Standard that Python does not know by that name (x-mac-roman was read as Windows-1252,
# windows-874 guessed as cp932, attack round 81).
_BROWSER_LABELS = {
    "x-mac-roman": "mac-roman",
    "mac": "mac-roman",
    "x-mac-cyrillic": "mac-cyrillic",
    "x-mac-ukrainian": "mac-cyrillic",
    "windows-874": "cp874",
    "dos-874": "cp874",
    "iso-8859-11": "cp874",
    "iso8859-11": "cp874",
    "iso-8859-8-i": "iso8859-8",
    "csiso88598i": "iso8859-8",
    "logical": "iso8859-8",
    "x-sjis": "shift_jis",
    "ms932": "cp932",
    "windows-31j": "cp932",
    "windows-949": "cp949",
    "ks_c_5601-1989": "cp949",
    "iso-ir-149": "cp949",
    "x-gbk": "gbk",
    "cn-big5": "big5",
    "x-x-big5": "big5",
    "x-euc-jp": "euc_jp",
    "unicode-1-1-utf-8": "utf-8",
    "unicode11utf8": "utf-8",
    "unicode20utf8": "utf-8",
    "x-unicode20utf8": "utf-8",
    **{f"x-cp{n}": f"cp{n}" for n in range(1250, 1259)},
}


# The charsets browsers read (the Encoding Standard's, by Python's names, and the labels they read as another,
# _BROWSER_CHARSETS): a Windows-1252 page declaring EBCDIC cp500 came out as "ÇÈ_%ÇÁ/À…", one declaring the DOS
# code page ibm850 as "B÷rse", exit 0 without a note (attack rounds 79, 80).
_BROWSER_READS = frozenset(
    ["utf-8", "utf-16", "utf-16-le", "utf-16-be", "cp866", "koi8-r", "koi8-u", "mac-roman", "mac-cyrillic"]
    + [f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)]
    + [f"cp{n}" for n in (874, 932, 949, *range(1250, 1259))]
    + ["ascii", "tis-620", "gbk", "gb2312", "gb18030", "big5", "big5hkscs", "euc_jp", "iso2022_jp", "shift_jis"]
    + ["euc_kr"]
)


# Labels a browser reads as another charset (the WHATWG Encoding Standard): pages that declare ISO-8859-1 or
# ASCII are written in Windows-1252 (its „ “ – € sit where ISO-8859-1 has control characters), and the old East
# Asian labels mean the larger sets that took their names (GB2312 pages hold GBK characters, EUC-KR windows-949).
_BROWSER_CHARSETS = {
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
}


def browser_codec(charset: str) -> str:
    """The codec a browser reads a declared charset with (``iso-8859-1`` → ``cp1252``); raises LookupError for
    a charset Python does not know."""
    import codecs

    name = codecs.lookup(charset).name
    return _BROWSER_CHARSETS.get(name, name)


_LETTER_BEYOND_LATIN = r"[^\W\d_\x00-\u024f]"
_BEYOND_LATIN = re.compile(_LETTER_BEYOND_LATIN)
_STUCK_IN_LATIN = re.compile(f"(?<=[A-Za-z]){_LETTER_BEYOND_LATIN}|{_LETTER_BEYOND_LATIN}(?=[A-Za-z])")


def _breakout(foreign: Any) -> Any:
    """The first HTML element by which a page leaves an ``svg`` or ``math`` element that was never closed (the
    HTML5 breakout), or None: one inside an integration point (``foreignObject``, ``desc``, ``mi`` ...) does not
    count, since there HTML is the foreign element's own content."""
    for candidate in foreign.iterdescendants(*BREAKOUT):
        inside = candidate.getparent()
        while inside is not None and inside is not foreign and inside.tag not in INTEGRATION_POINTS:
            inside = inside.getparent()
        if inside is foreign:
            return candidate
    return None


def decode_html(
    data: bytes, encoding: str | None = None, notes: list[str] | None = None, transport: str | None = None
) -> str:
    """An HTML page's bytes as text: the forced encoding, else a BOM, else UTF-8 when the bytes are UTF-8, else
    the charset declared (as a browser reads it) when its bytes fit it, else the detection of text pages
    (``detector.segment.decode``). Binary data is refused as for text pages. The declaration is the charset of
    the ``transport`` (an HTTP header) when Python knows it, else the page's own ``<meta>``; as in a browser, a
    BOM beats both. A declaration that lies loses against the bytes: they must decode, and the letters they
    give must not be of another script stuck inside Latin words ("BЖrse": Windows-1252 bytes declared as
    KOI8-R, which any byte fits)."""
    from detector.segment import binary_kind, decode

    if encoding or data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or binary_kind(data[:4096]):
        return decode(data, encoding, notes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = (transport and declarable(transport)) or declared_charset(data)
    if declared and _western_charset(declared) and (mixed := _utf8_and_western(data)):
        # a page that declares a Western one-byte charset and holds UTF-8 (a template around UTF-8 text, or
        # UTF-8 chrome around an article from an old database): read as the declaration, every umlaut of the
        # UTF-8 part came out as "Ã¶" without a word; read as UTF-8, those of the other part were lost
        if notes is not None:
            where, western = "HTTP header's" if transport else "page's", mixed[1]
            notes.append(
                f"the {where} declared charset {declared} does not fit all its bytes: read as UTF-8 where they "
                f"are, {western} byte{'' if western == 1 else 's'} as Windows-1252"
            )
        return mixed[0]
    if declared and declared != "utf-8" and not declared.startswith(("utf-16", "utf-32")):  # (a browser reads a
        # <meta> of UTF-16 as UTF-8, and wide text without a BOM is told by its NULs: utf-16le read markup as CJK)
        text = None
        for codec in dict.fromkeys((browser_codec(declared), declared)):
            try:
                text = data.decode(codec)
                break
            except UnicodeDecodeError:
                continue
        if text is not None and _fits(text):
            return text
        if notes is not None:
            where = "HTTP header's" if transport else "page's"
            notes.append(f"the {where} declared charset {declared} does not fit its bytes")
    return decode(data, None, notes)


def _western_charset(charset: str) -> bool:
    """Whether browsers read a declared charset as a Western one-byte one (ISO-8859-1, Windows-1252, Latin-9)."""
    try:
        return browser_codec(charset) in ("cp1252", "iso8859-15")
    except LookupError:
        return False


_HIGH_BYTES = bytes(range(0x80, 0x100))
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _utf8_and_western(data: bytes) -> tuple[str, int] | None:
    """A page that declares a Western one-byte charset yet holds UTF-8, read as UTF-8 where it is and as
    Windows-1252 where it is not, with how many bytes were read the second way; None when it holds fewer than
    two UTF-8 characters above ASCII. Where its UTF-8 characters outnumber the bytes that are not UTF-8, the
    page is UTF-8 with a few stray bytes (any script); else it is Windows-1252 text beside UTF-8 (chrome and
    an article from an old database): then only Western UTF-8 characters (Latin-1 letters, „ “ – €) are read as
    UTF-8 and only when nearly all of them are Western, for Windows-1252 letters can form other UTF-8 by
    chance ("ß" and a no-break space, "Ä“")."""
    found = [(m.start(), m.end(), m.group().decode("utf-8", "replace")) for m in _UTF8_SEQUENCE.finditer(data)]
    sequences = [(start, end, char) for start, end, char in found if len(char) == 1 and char != "\ufffd"]
    above = len(data) - len(data.translate(None, _HIGH_BYTES))
    stray = above - sum(end - start for start, end, _ in sequences)
    if len(sequences) < 2:
        return None
    if len(sequences) <= stray:
        sequences = [item for item in sequences if _western(item[2])]
        if len(sequences) < 2 or len(sequences) * 10 < 9 * len(found):
            return None
    parts: list[str] = []
    at = 0
    for start, end, char in sequences:
        parts += [_windows_1252(data[at:start]), char]
        at = end
    parts.append(_windows_1252(data[at:]))
    return "".join(parts), above - sum(end - start for start, end, _ in sequences)


def _western(char: str) -> bool:
    return "\xa0" <= char <= "\xff" or "\u2010" <= char <= "\u20ac"


def _windows_1252(data: bytes) -> str:
    """Bytes as Windows-1252, the five it leaves out as Latin-1 (as browsers read them)."""
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return "".join(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in data)


def _fits(text: str) -> bool:
    """False when most letters beyond the Latin script sit directly beside Latin letters (at least two): a
    wrong one-byte charset put them there, in the place of umlauts."""
    head = text[:100_000]
    stuck = len(_STUCK_IN_LATIN.findall(head))
    return stuck < 2 or stuck * 2 <= len(_BEYOND_LATIN.findall(head))
