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

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at run time (see _named_tuple)
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from detector._named_tuple import NamedTuple

# Dropped with everything inside them: not shown as text by a browser.
DROPPED = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "head",
        "svg",
        "select",
        "iframe",
        "object",
        "embed",
        "canvas",
        "math",
        "input",
    ]
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
        "noframes",
        "dir",
        "search",
    ]
)
SPACES = frozenset(("br", "td", "th", "wbr"))
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
CONFLICT = "<two labels>"  # the label of a paragraph whose text sits under two different data-labels
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
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


_SKIPPED = _Frame("#skipped", False, 0, (), None, False, 0, 0, 0, (), False)
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


def class_words(value: str) -> list[str]:
    """``"article-teaser__adSlot js2"`` → ``["article", "teaser", "ad", "slot", "js"]``."""
    return [w.lower() for w in _CLASS_WORD.findall(value) if len(w) > 1 or w.lower() in ("a", "x")]


@lru_cache(maxsize=1 << 14)
def _class_words(value: str) -> tuple[str, ...]:
    """``class_words`` as a tuple, cached: a page repeats its class names hundreds of times."""
    return tuple(class_words(value))


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
    if element.get("hidden") is not None:
        return True
    style = element.get("style")
    return bool(style) and _HIDDEN_STYLE.search(style) is not None


class TooDeepError(ValueError):
    """The page nests its elements deeper than the parser reads (``MAX_DEPTH``): the text below would be lost."""


MAX_DEPTH = 2048  # libxml2's bound with its "huge" option (256 without it, which real pages of unclosed tags pass)
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse(html: str):
    """The document tree of an HTML string (lxml, recovering from broken markup), or None when empty.

    A lone surrogate (possible in a str from JSON) becomes U+FFFD: libxml2 would end the document there. A page
    nested deeper than ``MAX_DEPTH`` raises ``TooDeepError`` instead of losing the text below that depth."""
    from lxml import etree

    if html.lstrip().startswith("<?xml"):
        html = html[html.index("?>") + 2 :] if "?>" in html else html
    try:
        html.encode("utf-8")
    except UnicodeEncodeError:
        html = _SURROGATE.sub("\ufffd", html)
    # etree's parser, not lxml.html's: the same libxml2 parse without a Python call per element for its classes
    parser = etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, recover=True, huge_tree=True)
    try:
        root = etree.fromstring(html, parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    if any(e.type_name == "ERR_RESOURCE_LIMIT" and "depth" in e.message for e in parser.error_log):
        raise TooDeepError(
            f"its elements are nested deeper than {MAX_DEPTH:,} levels: the text below cannot be read"
        )
    return root


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

    def flush() -> Block | None:
        nonlocal parts, link_parts, paid_parts, owner
        if owner is None:  # nothing but white space since the last boundary (most boundaries)
            parts, link_parts, paid_parts = [], 0, 0
            return None
        text = _SPACE.sub(" ", "".join(parts)).strip()
        block = None
        if text:
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
            )
        parts, link_parts, paid_parts, owner = [], 0, 0, None
        return block

    def add(text: str | None, frame: _Frame) -> None:
        nonlocal link_parts, paid_parts, owner
        if not text:
            return
        if owner is None:
            if not text.strip():
                return
            owner = frame
        elif frame.label != owner.label and text.strip():
            owner = owner._replace(label=CONFLICT)
        parts.append(text)
        if frame.link:
            chars = len(_SPACE.sub(" ", text).strip()) + (1 if text[:1].isspace() else 0)
            link_parts += chars
            if frame.paid:
                paid_parts += chars

    base = _Frame("#root", True, 0, (), None, False, 0, 0, 0, (), False)
    walker = etree.iterwalk(root, events=("start", "end"))
    serial = 0
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        tag = tag.lower()
        parent = stack[-1] if stack else base
        if event == "start":
            if not tag or tag in DROPPED or _hidden(element):
                walker.skip_subtree()  # lxml still sends its "end" event, where its tail is read
                stack.append(_SKIPPED)
                continue
            is_block = tag in BLOCKS
            get = element.get
            words = parent.words
            own = " ".join(filter(None, (get("id"), get("class"))))
            if own:
                words = _class_words(own) + words
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
                get(LABEL_ATTRIBUTE) or parent.label,
                parent.link or tag == "a",
                heading,
                parent.depth + 1,
                serial if boxed else parent.group,
                (serial, *parent.boxes[: BOX_LEVELS - 1]) if boxed else parent.boxes,
                parent.paid or (tag == "a" and paid_link(get("rel"), get("href"))),
            )
            stack.append(frame)
        else:
            frame = stack.pop()
            parent = stack[-1] if stack else base
            if frame is _SKIPPED:
                if element.tail:
                    add(element.tail, parent)
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
            add(text, frame if event == "start" else parent)
    block = flush()
    if block:
        yield block


_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)


def declared_charset(data: bytes) -> str | None:
    """The charset a page declares in a ``<meta>`` tag of its first 4 KB (``charset=`` or the ``http-equiv``
    form), when Python knows it."""
    import codecs

    match = _META_CHARSET.search(data[:4096])
    if match is None:
        return None
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None


def decode_html(data: bytes, encoding: str | None = None, notes: list[str] | None = None) -> str:
    """An HTML page's bytes as text: the forced encoding, else a BOM, else UTF-8 when the bytes are UTF-8, else
    the charset the page declares when its bytes fit it, else the detection of text pages
    (``detector.segment.decode``). A declaration that lies loses against the bytes."""
    from detector.segment import decode

    if encoding or data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return decode(data, encoding, notes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = declared_charset(data)
    if declared and declared not in ("utf-8", "utf-16", "utf-32"):
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            pass
    return decode(data, None, notes)
