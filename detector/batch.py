"""Cleaning many documents: every input read within its size limit, the whole batch planned before anything
is written, outputs mirrored and written atomically, files cleaned in parallel (forked worker processes
locally, Dask on a cluster), and JSON Lines and WARC files streamed record by record (the records of a single
such file cleaned by the workers, ``detector.workers``).

The guarantees are structural: every output path is known before the first file is cleaned, so collisions
are refused up front; every file and every record ends as its own result, whatever goes wrong with it; a
temporary file carries the name of the run that writes it, and a run removes only its own.
"""

from __future__ import annotations

import codecs
import errno
import fnmatch
import functools
import io
import json
import math
import os
import re
import signal
import stat
import sys
import time
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence

from detector.api import (
    Decision,
    PageWriter,
    Paragraph,
    as_record,
    classify_as_text,
    classify_html,
    html_blocks,
    label_stream,
    load_model,
    render,
    verdict,
)
from detector.features import SITE_MIN_PAGES, SiteMemory, page_keys
from detector.model import ModelError, Scorer
from detector.pages import LABELS, shown
from detector.rules import Rule, active_rules, apply_rules, decide, site_name
from detector.segment import (
    HTML_SNIFF_BYTES,
    NotTextError,
    iter_paragraphs,
    looks_like_html,
    normalise_newlines,
    page_text,
    repair_mojibake,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at run time (see _named_tuple)
if TYPE_CHECKING:  # detector.markup is imported where HTML is read: text pages start without it
    from pathlib import Path
    from typing import IO, Any, BinaryIO, NamedTuple, TextIO

    from detector import markup
else:
    from detector._named_tuple import NamedTuple

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
READ_STEP = 64 * 1024 * 1024  # ``read_limited`` reads larger inputs in steps of this
TEMP_SUFFIX = ".detector-part"
INPUT_FORMATS = ("auto", "text", "html", "jsonl", "warc")
DEFAULT_GLOBS = {
    "auto": (
        *("*.txt", "*.txt.gz", "*.md", "*.md.gz", "*.markdown", "*.markdown.gz"),
        *("*.html", "*.htm", "*.xhtml", "*.shtml", "*.html.gz", "*.htm.gz", "*.xhtml.gz", "*.shtml.gz"),
        *("*.jsonl", "*.jsonl.gz", "*.warc", "*.warc.gz", "*.arc", "*.arc.gz"),
    ),
    "text": (
        "*.txt",
        "*.txt.gz",
        "*.md",
        "*.md.gz",
        "*.markdown",
        "*.markdown.gz",
    ),  # Markdown is text: html2text's and markdownify's pages
    "html": ("*.html", "*.htm", "*.xhtml", "*.shtml", "*.html.gz", "*.htm.gz", "*.xhtml.gz", "*.shtml.gz"),
    "jsonl": ("*.jsonl", "*.jsonl.gz"),
    "warc": ("*.warc", "*.warc.gz", "*.arc", "*.arc.gz"),  # ARC, WARC's forerunner: read as WARC
}


def _host() -> str:
    """Where a run's process ids mean something, as 8 hex digits: the host's name and, on Linux, its PID
    namespace (containers of one host name, as with ``--network host``, number their processes apart: a run in
    one took the other's live run for a killed one and removed its temporary files)."""
    where = os.uname().nodename.encode() if hasattr(os, "uname") else b""
    try:  # noqa: SIM105 - contextlib is not imported for this
        where += b"/%d" % os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # not Linux, or no /proc
        pass
    return f"{zlib.crc32(where):08x}"


def new_run_id() -> str:
    """A name for one run, unique across concurrent runs on any host: its temporary files carry it."""
    return f"{_host()}-{os.getpid()}-{os.urandom(4).hex()}"


# Plain tuples and classes rather than dataclasses: importing dataclasses (and inspect with it) cost a tenth of
# the cold start of one page.
class RunConfig(NamedTuple):
    """Everything a run of ``clean-article`` was asked for, in one object shared by the standard-output, file
    and record paths and sent to every worker: how each document is read, what is written for it, and how
    the batch runs."""

    fmt: str = "text"
    keep: tuple[str, ...] = ("editorial",)
    encoding: str | None = None
    fix_mojibake: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES
    model: str | None = None
    input_format: str = "auto"
    text_field: str = "text"
    html_field: str | None = None
    globs: tuple[str, ...] = ()
    jobs: int = 1
    skip_existing: bool = False
    errors: Path | None = None
    follow_links: bool = False
    engine: str = "local"
    scheduler: str | None = None
    dask_timeout: float = 60.0
    quiet: bool = False
    favor: str = "balanced"
    min_editorial: float | None = None
    rules: tuple[Rule, ...] = ()
    drop_pages: tuple[str, ...] = ()
    site_memory: bool = True
    memories: dict[str, SiteMemory] | None = None  # filled by ``with_site_memory``
    memory_hosts: frozenset[str] | None = None  # its first pass: the record sites with enough pages to count
    run_id: str = ""  # the mark of the run's temporary files: ``new_run_id()`` for each run
    output_root: str = ""  # the output folder's real path, which every output must stay inside (``inside``)
    timeout: float = 0.0  # seconds one page (a file, or a record of one) may take; 0: no limit (``start_page``)
    over_time: frozenset[str] = frozenset()  # inputs whose page went over it in site memory's first pass
    memory_missed: int = 0  # inputs site memory's first pass did not count: their worker died (a note tells)
    record_jobs: int = 1  # worker processes that clean the records of one crawl file (``detector.workers``)
    records_here: float = 0.0  # seconds of its records cleaned in this process before those workers start
    settings_mark: str = ""  # what the outputs are marked with (``settings_mark``; "" : not marked)
    # --skip-existing with an errors file: the files whose bad records it lists (``listed_files``); None: no
    # errors file is read, and a file of records skipped with bad records is told (``had_bad_records``)
    listed: frozenset[bytes] | None = None

    def patterns(self) -> tuple[str, ...]:
        return self.globs or DEFAULT_GLOBS[self.input_format]


class UsageError(ValueError):
    """A batch that must not start (exit 2): it would write over its own inputs or outputs, or was asked for
    something impossible."""


class InputError(Exception):
    """One document that cannot be cleaned; the message is the reason shown to the user."""


class PageTimeout(Exception):
    """A page took longer than ``--timeout``: raised by the alarm of the process that cleans it."""


DEFAULT_TIMEOUT = 300.0  # seconds a page may take (``--timeout``): 30 times what the largest page takes here
HARD_GRACE = 10.0  # seconds past --timeout after which the worker of a page that did not stop is ended
_PAGE_CLOCK: dict[str, Any] = {"alarm": False, "running": False}  # see ``start_page``


def start_page(config: RunConfig, record: int = 0) -> None:
    """Start (again) the time one page may take (``--timeout``), at each file and at each record of a file of
    records. Where this process runs the work in its main thread, an alarm stops a page that loops in Python:
    the file or the record fails and the batch goes on. In a forked worker the page's start is also noted
    for the main process, which ends a worker whose page did not stop (stuck outside Python: in a system call,
    in a C library, or stopped) ``HARD_GRACE`` seconds later; ``record``: the number of the record, so that
    the file can be cleaned again without it."""
    if not config.timeout:
        return
    if _PAGE_CLOCK["alarm"]:
        _PAGE_CLOCK["running"] = True
        signal.setitimer(signal.ITIMER_REAL, config.timeout)
    if (started := _PAGE_CLOCK.get("started")) is not None:
        slot = _PAGE_CLOCK["slot"]
        _PAGE_CLOCK["records"][slot] = record
        started[slot] = time.monotonic()


def stop_page(config: RunConfig) -> None:
    """The page is done: no alarm for it (one that comes while this runs is ignored, ``_page_overdue``), and no
    page for the main process to watch until the next starts (reading the next record is not timed)."""
    if not config.timeout:
        return
    if _PAGE_CLOCK["alarm"]:
        _PAGE_CLOCK["running"] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
    if (started := _PAGE_CLOCK.get("started")) is not None:
        started[_PAGE_CLOCK["slot"]] = 0.0


def pause_page(config: RunConfig) -> float:
    """Hold the page's time while the process waits for others (writing to a reader that is slow, ``less``);
    returns the time left, for ``resume_page``."""
    if not (config.timeout and _PAGE_CLOCK["alarm"] and _PAGE_CLOCK["running"]):
        return 0.0
    _PAGE_CLOCK["running"] = False
    return signal.setitimer(signal.ITIMER_REAL, 0)[0]


def resume_page(left: float) -> None:
    if left:
        _PAGE_CLOCK["running"] = True
        signal.setitimer(signal.ITIMER_REAL, left)


def _page_overdue(signum: int, frame: object) -> None:
    """SIGALRM: the page being cleaned is over its time."""
    if _PAGE_CLOCK["running"]:
        _PAGE_CLOCK["running"] = False
        raise PageTimeout


def arm_page_alarm(config: RunConfig) -> Any:
    """Let ``start_page`` set alarms in this process, where it can (a time limit is asked for, and this is the
    main thread, which alone gets signals); returns what ``disarm_page_alarm`` restores."""
    if not config.timeout or not hasattr(signal, "setitimer"):
        return None
    try:
        previous = signal.signal(signal.SIGALRM, _page_overdue)
    except ValueError:  # not the main thread (told so without importing threading: a one-page start)
        return None
    _PAGE_CLOCK["alarm"] = True
    return previous


def disarm_page_alarm(previous: Any) -> None:
    if previous is not None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _PAGE_CLOCK.update(alarm=previous is _page_overdue, running=False)  # armed twice: still armed
        signal.signal(signal.SIGALRM, previous)


_STOP_RAISED: list[type[BaseException]] = []  # see ``stop_raised``


def stop_raised(stop: type[BaseException]) -> None:
    """Told by the CLI's signal handlers as they raise a stop (Ctrl-C, SIGTERM): where a library swallows it,
    ``raise_swallowed_stop`` raises it again. (warcio decodes each header line inside a bare ``except:``: a
    stop that came there was lost, and the batch ran to its end, exit 0, for 1 stop in 10 while a WARC of
    many headers was read.)"""
    _STOP_RAISED.append(stop)


def raise_swallowed_stop() -> None:
    if _STOP_RAISED:
        raise _STOP_RAISED[0]()


def forget_stops() -> None:
    """A new run starts without the stops of an earlier one in this process (``clean_main`` called again by a
    program: the stop that ended the first run ended the second at its first WARC record)."""
    _STOP_RAISED.clear()


def over_time(config: RunConfig, ended: bool = False) -> str:
    """Why a page failed its time limit."""
    how = ": its worker did not stop and was ended" if ended else ""
    return f"took longer than --timeout ({config.timeout:g} s){how}; not cleaned"


class Result:
    """What became of one input: ``status`` is "cleaned", "failed" or "skipped"; a file of records also
    lists the records that failed."""

    __slots__ = (
        "dropped",
        "labels",
        "notes",
        "pages",
        "reason",
        "record_errors",
        "redone",
        "skipped_records",
        "source",
        "status",
    )

    def __init__(self, source: str, status: str, reason: str = "") -> None:
        self.source = source
        self.status = status
        self.reason = reason
        self.notes: list[str] = []
        self.pages = 0
        self.labels: dict[str, int] = {}
        self.record_errors: list[dict] = []
        self.skipped_records = 0
        self.dropped: dict[str, int] = {}  # pages left out by --drop-pages, per flag
        self.redone = ""  # why its output, which was there, was made again (``REDONE``); "" when it was not

    def __repr__(self) -> str:
        return f"Result({self.source!r}, {self.status!r}, {self.reason!r})"

    def drop(self, flags: list[str]) -> None:
        for flag in flags:
            self.dropped[flag] = self.dropped.get(flag, 0) + 1
        self.dropped["pages"] = self.dropped.get("pages", 0) + 1

    def add_page(self, labels: dict[str, int]) -> None:
        """One more page cleaned, with its paragraphs' labels counted."""
        self.pages += 1
        for label, count in labels.items():
            self.labels[label] = self.labels.get(label, 0) + count


class Task(NamedTuple):
    """One input file, its kind (text, html, jsonl, warc) and its output path; ``name``: the file as the user
    gave it, for messages, where ``source`` was made absolute (Dask's workers run in other folders)."""

    source: str
    kind: str
    target: str
    name: str = ""
    link: bool = False  # the input was a symbolic link when the batch was planned (followed: named, or asked)
    skip: tuple[int, ...] = ()  # records whose worker was ended over their time: failed, not cleaned again
    redo_after: float = 0.0  # cleaned again after its worker was ended: an output this new is this run's own
    site: str = ""  # a page file's site when a folder named like a host holds its folder (``host_folder``)

    @property
    def shown(self) -> str:
        return display(self.name or self.source)


# ---------------------------------------------------------------------------------------------------------
# Reading


display = shown  # a path as printable text on one line (``detector.pages.shown``)


def extra_hint(extra: str) -> str:
    """How to install one of the package's extras, for an installed wheel as for a checkout."""
    return (
        f"pip install '.[{extra}]' in the checkout, or 'WHEEL[{extra}]' with the wheel it was installed from "
        "(never by name: detector on PyPI is another project)"
    )


def gzipped(handle: BinaryIO) -> bool:
    """Whether an input holds gzip data, whatever its name: no page or record starts with the gzip magic (a
    ``crawl.jsonl`` holding gzip data gave an "invalid JSON" error per line of compressed bytes)."""
    return hasattr(handle, "peek") and handle.peek(2)[:2] == GZIP_MAGIC


GZIP_MAGIC = b"\x1f\x8b"


def read_limited(stream: BinaryIO, max_bytes: int, name: str) -> bytes:
    """Read a whole input, refusing one larger than ``max_bytes`` before it fills the memory. Read in steps of
    at most ``READ_STEP``: one read of ``max_bytes`` allocates that much at once (a limit of 100 GB failed every
    page with MemoryError)."""
    step = min(max_bytes, READ_STEP) + 1
    data = stream.read(step)
    if len(data) == step and step <= max_bytes:  # more than a step, within the limit so far
        parts, size = [data], len(data)
        while size <= max_bytes and (part := stream.read(min(max_bytes + 1 - size, READ_STEP))):
            parts.append(part)
            size += len(part)
        data = b"".join(parts)
    if len(data) > max_bytes:
        raise InputError(f"{name}: larger than --max-bytes ({max_bytes} bytes)")
    return data


def open_input(path: str, name: str, walked: bool = False, link: bool = True) -> BinaryIO:
    """Open an input file for reading. A folder, a device or a socket is refused; so is a FIFO found by
    walking a folder (it would block the batch); named on the command line, a pipe is read
    (``<(zcat page.txt.gz)``). An input of a batch that was no link when the batch was planned (``link``
    false) is not followed if it became one since (it would clean, and write out, whatever it points to)."""
    flags = os.O_RDONLY | (getattr(os, "O_NONBLOCK", 0) if walked else 0)
    if walked and not link:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and walked and not link and os.path.islink(path):
            raise InputError(f"{name}: became a symbolic link after the batch was planned: not followed") from None
        raise
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"{name}: is a folder")
        if walked and not stat.S_ISREG(mode):
            raise InputError(f"{name}: not a regular file (a FIFO, socket or device)")
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise InputError(f"{name}: not a regular file or pipe (a device or socket)")
        if walked:
            os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    # outside the try: a stop (SIGTERM, Ctrl-C) that came once the file object owned the descriptor closed it
    # twice, the second time as another file's, whose read then failed ("bad file descriptor")
    return os.fdopen(descriptor, "rb")


def gunzip_limited(data: bytes, max_bytes: int, name: str) -> bytes:
    """Decompress gzip data, refusing output larger than ``max_bytes`` (a gzip bomb stops there). Every member
    of a multi-member file is read (as ``zcat`` does); a stream cut before its end is an error, not a page
    without its end."""
    reader = Gunzipped(io.BytesIO(data))
    out: list[bytes] = []
    size = 0
    try:
        while part := reader.read(1 << 20):
            size += len(part)
            if size > max_bytes:
                raise InputError(f"{name}: larger than --max-bytes ({max_bytes} bytes) once decompressed")
            out.append(part)
    except zlib.error as exc:
        raise InputError(f"{name}: damaged gzip data ({exc})") from None
    except EOFError:
        raise InputError(f"{name}: truncated gzip data (it ends before the end of its stream)") from None
    return b"".join(out)


class Gunzipped(io.RawIOBase):
    """A gzip file's content (every member, zero bytes between or after them skipped as padding), read as it
    is asked for. Unlike ``gzip.GzipFile``, a read hands out whatever it has before telling of a cut: an
    EOFError comes only when nothing is left, so every whole record before a cut is read (GzipFile's buffered
    read dropped the last ones with its error). Other bytes after a member are damage (``zlib.error``), not an
    end: what follows them would be lost unseen."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.pending = b""  # compressed bytes not yet decompressed
        self.in_member = False
        self.cut = False  # the file ended inside a member (a reader that takes EOFError for the end can ask)
        self.ahead = b""  # content read ahead (``peek``, ``unread``), handed out first

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def peek(self, size: int = 1) -> bytes:
        """At least ``size`` bytes of what comes next, unless the content ends (or is cut or damaged: the
        next read tells) before."""
        while len(self.ahead) < size:
            try:
                more = self._read(size)
            except (EOFError, zlib.error):
                break
            if not more:
                break
            self.ahead += more
        return self.ahead

    def unread(self, data: bytes) -> None:
        self.ahead = data + self.ahead

    def read(self, size: int | None = -1) -> bytes:
        if size == 0:
            return b""
        if self.ahead:
            size = size if size is not None and size > 0 else len(self.ahead)
            out, self.ahead = self.ahead[:size], self.ahead[size:]
            return out
        return self._read(size)

    def _raw_read(self, size: int) -> bytes:
        """What has arrived of the compressed input, up to ``size`` bytes: a BufferedReader's read waits for all
        of them (a gzipped stream's records were written only once 64 KB more had come, or at its end)."""
        return getattr(self.raw, "read1", self.raw.read)(size)

    def _read(self, size: int | None = -1) -> bytes:
        size = size if size and size > 0 else 1 << 16
        while True:
            if not self.pending or (not self.in_member and self.pending == b"\x1f"):  # (half a gzip magic)
                more = self._raw_read(1 << 16)
                if not more and self.in_member:
                    self.cut = True
                    raise EOFError("compressed file ended before the end of its stream")
                if not more:
                    if self.pending:
                        raise zlib.error(f"{len(self.pending)} byte(s) after a gzip member are not gzip data")
                    return b""
                self.pending += more
                continue
            if not self.in_member:  # between members: padding, the next member, or damage
                self.pending = self.pending.lstrip(b"\0")
                if not self.pending or self.pending == b"\x1f":
                    continue
                if self.pending[:2] != b"\x1f\x8b":
                    raise zlib.error("bytes after a gzip member are not gzip data")
                self.in_member = True
            out = self.decompressor.decompress(self.pending, size)
            if self.decompressor.eof:  # a member ends; what follows it may be the next one
                self.pending = self.decompressor.unused_data
                self.decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self.in_member = False
            else:
                self.pending = self.decompressor.unconsumed_tail
            if out:
                return out


def standard_input() -> BinaryIO:
    """Standard input as bytes. A parent may hand it over non-blocking (node's and libuv's pipes): a read
    that finds the pipe empty for a moment returns nothing, which every reader takes for the end (half a page
    cleaned, exit 0). Such a descriptor is read by one that waits for data; its flag is left as it is (the
    parent shares it)."""
    try:
        descriptor = sys.stdin.fileno()
        if os.get_blocking(descriptor):
            return sys.stdin.buffer
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):  # closed, replaced, or no such call
        return sys.stdin.buffer
    return io.BufferedReader(_Waiting(descriptor))


class _Waiting(io.RawIOBase):
    """A non-blocking descriptor read as a blocking one: an empty moment waits for data (``select``)."""

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.descriptor

    def readinto(self, buffer: Any) -> int:
        import select

        while True:
            try:
                data = os.read(self.descriptor, len(buffer))
            except BlockingIOError:
                select.select([self.descriptor], [], [])
                continue
            buffer[: len(data)] = data
            return len(data)


class _Replayed(io.RawIOBase):
    """A stream whose first bytes were read ahead: those bytes, then the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head, self.rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            size = min(len(buffer), len(self.head))
            buffer[:size], self.head = self.head[:size], self.head[size:]
            return size
        read = getattr(self.rest, "read1", self.rest.read)
        data = read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


SNIFF_BYTES = HTML_SNIFF_BYTES  # an input's kind is told by this much of its start (a page's head of inline
# styles pushed the tags that tell HTML past the 4 KB looked at before: the page was read as text on standard
# input, its article lost)


def read_ahead(handle: BinaryIO, size: int) -> tuple[bytes, BinaryIO]:
    """An input's first ``size`` bytes (fewer only where it ends), to tell its kind by, and the input to read
    from its start. A peek gives what the buffer holds: on a pipe, what one read brought (a slow producer's
    first line, ``<!DOCTYPE html>`` alone, was taken for a text page and its markup printed as the article)."""
    peek = getattr(handle, "peek", None)
    head = peek(size)[:size] if peek is not None else b""
    if len(head) >= size:
        return head, handle
    if head or peek is None:  # an empty peek is the end already: no read after it
        head = handle.read(size)  # until ``size`` bytes or the end
    if len(head) < size:  # the whole input: no read after its end (on a terminal each waited for one more Ctrl-D)
        return head, io.BufferedReader(io.BytesIO(head))  # (with peek, as readers of records want it)
    return head, io.BufferedReader(_Replayed(head, handle))


def gunzip_head(head: bytes) -> bytes:
    """What the first bytes of gzip data start with (up to ``SNIFF_BYTES`` of it), to tell the kind of its
    content."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
    except zlib.error:
        return b""


def gunzip_stream(handle: BinaryIO) -> BinaryIO:
    """A gzipped input decompressed as it is read (JSON Lines), line by line (``Gunzipped``)."""
    return io.BufferedReader(Gunzipped(handle))


def sniff_kind(head: bytes, name: str = "") -> str:
    """The kind of an input from its name and first bytes: warc, jsonl, html or text. A ``.txt`` page is text
    or HTML, whatever its first line looks like (a JSON-LD block, a line that starts with ``WARC/``); a ``.md``
    page is text."""
    lower = name.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    if lower.endswith((".warc", ".arc")):
        return "warc"
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(_MARKUP_SUFFIXES):
        return "html"
    if lower.endswith((".md", ".markdown")):  # Markdown may hold HTML tags (<br> in tables): still Markdown
        return "text"
    page = lower.endswith(".txt")
    codec = records_codec(head)
    if codec and not page:  # JSON Lines in UTF-16 or UTF-32: looked at as UTF-8
        head = head.decode(codec, "ignore").encode("utf-8")
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith((b"WARC/", b"filedesc://")) and not page:  # an ARC file starts with its filedesc
        return "warc"
    if stripped.startswith(b"{") and not page and _json_lines(stripped):  # before HTML: records hold HTML
        return "jsonl"
    if not page and re.match(_JSON_ARRAY, stripped):  # records in one JSON array (Scrapy's items.json): told so
        return "jsonl"
    return "html" if looks_like_html(head) else "text"


def _json_lines(head: bytes) -> bool:
    """Whether the first bytes of an input are JSON Lines: the first whole line an object's line (it starts
    with ``{``), every other one too or another JSON value, and one of them (or the first, cut where the bytes
    end) read as a JSON object; a record that is broken, or a line that is not an object (``null``), fails
    alone, as in a file named ``.jsonl`` (one such line made the whole input a text page: its raw JSON was the
    article)."""
    *whole, rest = head.split(b"\n")
    lines = [line for line in whole if line.strip()]
    if not lines:
        return re.match(_OBJECT_START, rest) is not None  # one record longer than the bytes looked at
    objects = [line for line in lines if line.lstrip().startswith(b"{")]
    if not lines[0].lstrip().startswith(b"{") or not all(map(_json_value_line, lines)):
        return False  # a text page whose first line is a JSON-LD block: its other lines are prose
    for line in objects:  # a null line or a broken record among them fails alone, as in a file named .jsonl
        try:
            if isinstance(json.loads(line), dict):
                return True
        except (ValueError, RecursionError):
            continue
    return False


def _json_value_line(line: bytes) -> bool:
    """A line of JSON Lines: a record (whole or broken: it starts with ``{``) or another JSON value (``null``,
    an array), which fails as a record; prose is no JSON value."""
    if line.lstrip().startswith(b"{"):
        return True
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


# This module's patterns are strings, compiled on first use through re's cache: a one-page run needs none of
# them, and compiling every pattern of the package at import took a tenth of its start.
_OBJECT_START = rb'\{\s*"(?:[^"\\\n]|\\.){0,200}"\s*:'
_JSON_ARRAY = rb"\[\s*(?:\{\s*(?:\"|\}|$)|\]\s*$|$)"  # "[{"key"…", "[\n{", "[]", a line "[": not "[editorial] …"


# ---------------------------------------------------------------------------------------------------------
# One document


def label_page(
    content: str, kind: str, config: RunConfig, site: str | None = None, record: dict | None = None
) -> list[Paragraph]:
    """The labelled paragraphs of one record's page (text, or HTML when ``kind`` is html): the model at the
    chosen preset or threshold, with the memory of the record's host (``site``) when the batch has one, then
    the user's rules."""
    scorer = load_model(config.model)
    memory = (config.memories or {}).get(f"host:{site}") if site else None
    if kind == "html":
        paragraphs = classify_html(content, scorer, config.favor, config.min_editorial, memory)
    else:
        paragraphs = classify_as_text(content, scorer, config.favor, config.min_editorial, memory)
    return apply_rules(paragraphs, config.rules, site, record) if config.rules else paragraphs


def dropped_by(page_verdict: dict, config: RunConfig) -> list[str]:
    """The page flags for which ``--drop-pages`` leaves this page out."""
    return [flag for flag in page_verdict["flags"] if flag in config.drop_pages]


class Page(NamedTuple):
    """A page on its way out: the encoded output as it is produced (consume it once), the writer that counts
    what it saw (labels, verdict), and the notes for the user (complete once the output is consumed)."""

    chunks: Iterator[bytes]
    writer: PageWriter
    notes: list[str]


def page_paragraphs(
    data: bytes, name: str, kind: str, config: RunConfig, notes: list[str] | None = None
) -> tuple[Iterable[str], list[markup.Block] | None]:
    """One page's bytes (text or HTML) decoded and split into paragraphs (a stream for text), with the
    markup of each for HTML."""
    try:
        if data[:2] == GZIP_MAGIC:
            data = gunzip_limited(data, config.max_bytes, name)
        if kind == "html":
            from detector.markup import decode_html  # here, not at the top: text pages start without it

            content = repaired(decode_html(data, config.encoding, notes), config)
        else:
            content = page_text(data, config.encoding, config.fix_mojibake, notes)
    except NotTextError as exc:
        raise InputError(f"{name}: {exc}") from None
    del data
    if kind == "html":
        from detector.markup import TooDeepError

        try:
            blocks = html_blocks(content)
        except TooDeepError as exc:
            raise InputError(f"{name}: {exc}") from None
        return (b.text for b in blocks), blocks
    return iter_paragraphs(content), None  # page_text ends lines in LF (again: a U+FEFF after a BOM was lost)


def unused_options(kind: str, name: str, config: RunConfig, scorer: Scorer | None = None) -> list[str]:
    """Notes on what the options asked for that an input of this kind does not use, and on HTML given to a
    model that never saw any: said, not ignored."""
    notes = []
    if (kind in ("html", "warc") or (kind == "jsonl" and config.html_field)) and not (
        scorer or load_model(config.model)
    ).reads_markup:
        notes.append(
            f"{name}: the model was trained on no HTML page, so this HTML is read by its text alone (menus and "
            "footers that the markup gives away read much like article); train with HTML pages beside yours"
        )
    if kind in ("jsonl", "warc") and config.fmt in ("annotated", "html", "explain"):
        notes.append(f"{name}: records are written as JSON Lines (-f {config.fmt} shapes pages, not records)")
    field = "--html-field" if config.html_field else "--text-field" if config.text_field != "text" else ""
    if field and kind != "jsonl":
        notes.append(f"{name}: {field} not used: the input is not JSON Lines")
    return notes


def clean_page(
    data: bytes,
    name: str,
    kind: str,
    config: RunConfig,
    site: str | None = None,
    memory: SiteMemory | None = None,
    scorer: Scorer | None = None,
) -> Page:
    """One page's bytes (text or HTML) to its output, produced paragraph window by paragraph window, so that
    a page of many paragraphs never holds them all (see ``detector.api``). ``site`` selects the user's
    rules; ``memory`` is what the batch showed of the page's site; ``scorer``: the model the caller loaded
    (a one-page run maps it), else ``config.model`` read."""
    notes: list[str] = []
    texts, found = page_paragraphs(data, name, kind, config, notes)
    del data
    scorer = scorer or load_model(config.model)
    notes[:] = [*unused_options(kind, name, config, scorer), *(f"{name}: {note}" for note in notes)]
    writer = PageWriter(config.fmt, config.keep, final_newline=True)
    decision = Decision(config.favor, config.min_editorial)
    stream = label_stream(texts, found, scorer, decision, explain=config.fmt == "explain", memory=memory)
    active = active_rules(config.rules, site)

    def chunks() -> Iterator[bytes]:
        for paragraph, why in stream:
            out = writer.add(decide(paragraph, active) if active else paragraph, why)
            if out:
                yield encode_output(out)
        tail = writer.finish()
        if tail:
            yield encode_output(tail)
        if not writer.count:
            empty = "no visible text in the HTML" if kind == "html" else "empty input"
            notes.append(f"{name}: {empty}, nothing to clean")
        elif not writer.kept and not dropped_by(writer.verdict(), config):  # a dropped page says so itself
            empty = ", the output is empty" if config.fmt == "text" else ""  # other formats show every paragraph
            notes.append(f"{name}: no {'/'.join(config.keep)} paragraph found{empty}")
        if writer.unreadable is not None:
            notes.append(
                f"{name}: paragraph {writer.unreadable} has a line that begins with a label ([editorial] …); "
                "the annotated page will not read back until it is split there or the line changed"
            )

    return Page(chunks(), writer, notes)


def encode_output(text: str) -> bytes:
    """Output text as UTF-8; characters that cannot be (lone surrogates from a broken input) become U+FFFD (the
    codec's "replace" would write "?", which reads as a real question mark)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return re.sub(_LONE_SURROGATE, "\ufffd", text).encode("utf-8")


_LONE_SURROGATE = "[\ud800-\udfff]"


# ---------------------------------------------------------------------------------------------------------
# Records: JSON Lines and WARC


def _reject_constant(value: str) -> float:
    raise ValueError(f"{value} is not a JSON value")


def json_line(record: dict) -> bytes:
    """A record as one line of standard JSON, as UTF-8. Strings that are not valid Unicode (lone surrogates,
    which JSON can carry) are written escaped, so that the record round-trips."""
    text = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def records_codec(head: bytes) -> str | None:
    """The codec of JSON Lines in UTF-32 or UTF-16 (with a BOM, or without one: the NULs beside the first
    ``{``, or beside a first blank line or space) from their first four bytes; None for UTF-8."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    first = head[:4]
    if len(first) == 4 and first[1:] == b"\x00\x00\x00" and first[0] in _RECORD_START:
        return "utf-32-le"
    if len(first) == 4 and first[:3] == b"\x00\x00\x00" and first[3] in _RECORD_START:
        return "utf-32-be"
    if len(first) >= 2 and first[1] == 0 and first[0] in _RECORD_START:
        return "utf-16-le"
    if len(first) >= 2 and first[0] == 0 and first[1] in _RECORD_START:
        return "utf-16-be"
    return None


_RECORD_START = b"{ \t\r\n"  # what JSON Lines begin with: a record, or a blank line or space before it


class Unreadable(str):
    """A line of JSON Lines that could not be read as text, standing for why (``record_lines``)."""


_BAD_SEQUENCE = "\udfff"  # a lone surrogate: strict UTF-16 or UTF-32 decoding never gives one


def _marked_sequence(error: UnicodeError) -> tuple[str, int]:
    """A bad sequence of a UTF-16 or UTF-32 record stream, marked: its line fails alone. Decoded strictly, the
    error came up eight kilobytes ahead of the records handed on, and the good records around it were lost."""
    assert isinstance(error, UnicodeDecodeError)
    return _BAD_SEQUENCE, error.end


codecs.register_error("detector-marked-sequence", _marked_sequence)


def record_lines(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes | str | None]]:
    """The lines of a JSON Lines stream with their numbers; a line longer than ``max_bytes`` is skipped
    without being held in memory and yields None. UTF-16 and UTF-32 files (with a BOM, or UTF-16 without
    one) are read as text; a line with a bad sequence of theirs (a lone surrogate, a file cut inside a
    character) is ``Unreadable``."""
    codec = records_codec(stream.peek(4)[:4] if hasattr(stream, "peek") else b"")
    reader: IO[Any] = (
        io.TextIOWrapper(stream, encoding=codec, errors="detector-marked-sequence", newline="\n")
        if codec
        else stream
    )
    limit = max_bytes // (4 if codec.startswith("utf-32") else 2) if codec else max_bytes  # text: characters
    number = 0
    while True:
        line = reader.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith("\n" if codec else b"\n"):
            while line and not line.endswith("\n" if codec else b"\n"):
                line = reader.readline(1 << 20)
            yield number, None
            continue
        if codec and (bad := line.find(_BAD_SEQUENCE)) >= 0:
            yield number, Unreadable(f"not valid {codec.upper()} text (a bad sequence at column {bad + 1})")
            continue
        yield number, line


def clean_records(
    stream: BinaryIO, name: str, config: RunConfig, result: Result, skip: tuple[int, ...] = ()
) -> Iterator[bytes]:
    """Stream JSON Lines: each record keeps its fields and gains ``cleaned_text`` and ``paragraph_labels``
    (and ``paragraphs`` with ``--format json``). A bad record is left out and listed in ``result``; it never
    stops the file. Every record also gains its ``page_verdict``; with ``--drop-pages`` a flagged record is
    left out and counted. ``skip``: the lines of records whose worker was ended over their time. The records
    are read here and cleaned by ``config.record_jobs`` workers (``detector.workers``), written in order."""
    load_model(config.model)
    result.notes.extend(unused_options("jsonl", name, config))
    field_name = config.html_field or config.text_field
    kind = "html" if config.html_field else "text"
    nan_values = in_record = markup_texts = 0
    named = name.lower().removesuffix(".gz").endswith((".jsonl", ".ndjson"))  # a first line "[" is a bad record

    def constant(value: str) -> None:
        nonlocal in_record
        in_record += 1  # counted in the note once its record is written (a bad or dropped one writes none)
        return None

    def number_or_null(literal: str) -> float | None:
        """A JSON number as a float; one too large for a double (1e400) is an Infinity: null, as NaN is."""
        value = float(literal)
        if math.isfinite(value):
            return value
        constant(literal)
        return None

    def parsed(line: bytes | str | None) -> dict | str | None:
        """One line's record, or why it is bad, or None for a blank line."""
        if line is None:
            return f"record larger than --max-bytes ({config.max_bytes} bytes)"
        if isinstance(line, Unreadable):
            return str(line)
        if not line.strip():
            return None
        try:
            text = _forced_line(line, config.encoding)
            record = json.loads(text, parse_constant=constant, parse_float=number_or_null)
        except UnicodeDecodeError as exc:  # (json's own guess made binary bytes "utf-16-be")
            byte, codec = exc.object[exc.start], config.encoding or "UTF-8"
            return f"not {codec} text (byte 0x{byte:02x} at column {exc.start + 1})"
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, json.JSONDecodeError) and exc.pos >= len(exc.doc):  # a record cut short
                reason = f"{exc.msg.removesuffix(' at')} at the end of the line: the record is cut short"
            elif isinstance(exc, json.JSONDecodeError):  # its msg alone ends "... at": the place is the point
                reason = f"{exc.msg.removesuffix(' at')} at column {exc.colno}"
            else:
                reason = str(exc) or type(exc).__name__
            return f"invalid JSON ({reason})"
        if not isinstance(record, dict):
            return f"not a JSON object but {_json_kind(record)}"
        value = record.get(field_name)
        if not isinstance(value, str):
            if field_name in record:
                return f"the {kind} field {field_name!r} is {_json_kind(value)}, not a string"
            return f"no {kind} field {field_name!r}"
        if (
            kind == "text"
            and re.match(r"\s*<", value)
            and looks_like_html(value[:HTML_SNIFF_BYTES].encode("utf-8", "replace"))
        ):
            nonlocal markup_texts
            markup_texts += 1  # cleaned as asked, tags and all, and said once for the file
        return record

    def items() -> Iterator[tuple[tuple | None, tuple[int, str, int]]]:
        """Each line as (what its worker gets, or None; (its number, why it failed or "", its NaN values))."""
        nonlocal in_record
        number = 0
        first = True
        try:
            for number, line in record_lines(stream, config.max_bytes):
                if number in skip:
                    yield None, (number, over_time(config, ended=True), 0)
                    continue
                if first and line is not None and line.strip():
                    first = False
                    start = line if isinstance(line, bytes) else line.encode("utf-8", "replace")
                    if not named and re.match(_JSON_ARRAY, start.lstrip(b"\xef\xbb\xbf \t\r\n")):
                        import shlex  # (only here: a start of one page needs none)

                        given = "" if name == "<stdin>" else f" {shlex.quote(name)}"
                        raise InputError(
                            f"{name}: a JSON array of records, not JSON Lines (one record a line): convert it "
                            f"first (jq -c '.[]'{given} | clean-article …)"
                        )
                in_record = 0
                record = parsed(line)
                if isinstance(record, dict):
                    yield (number, record, field_name, kind), (number, "", in_record)
                elif record is not None:
                    yield None, (number, record, 0)
                del record, line
        except UnicodeDecodeError as exc:
            yield None, (number + 1, f"not valid {exc.encoding} text; the rest of the file is not read", 0)
        except EOFError:
            yield None, (number + 1, "truncated gzip data: the file ends inside this line", 0)
        except zlib.error as exc:
            yield None, (number + 1, f"damaged gzip data, the rest is not read ({exc})", 0)

    for (number, error, nans), outcome in _in_order(
        label_record, items(), config, stream=stream, told=result.notes
    ):
        error = error or _record_failure(outcome, config)
        if error:
            result.record_errors.append({"file": name, "line": number, "error": error})
        elif isinstance(outcome, Dropped):
            result.drop(outcome.flags)
        elif isinstance(outcome, Labelled):
            nan_values += nans
            result.add_page(outcome.labels)
            yield outcome.line
    if nan_values:
        result.notes.append(
            f"{name}: {nan_values} NaN, Infinity or too large value(s) written as null (they are not JSON numbers)"
        )
    if markup_texts:
        result.notes.append(
            f"{name}: {markup_texts} record(s) whose {field_name!r} field holds an HTML document, cleaned as "
            f"text, tags and all (--html-field {field_name} reads its markup)"
        )


class Labelled(NamedTuple):
    """A record's page cleaned, as a worker hands it back: its output line, its paragraphs' labels counted,
    and notes for the user."""

    line: bytes
    labels: dict[str, int]
    notes: list[str]


class Dropped(NamedTuple):
    """A record's page that ``--drop-pages`` leaves out, with the flags that did."""

    flags: list[str]


def label_record(number: int, record: dict, field_name: str, kind: str, config: RunConfig) -> Labelled | Dropped:
    """A JSON Lines record's page cleaned into the record (in a worker, or here with one job), in its time."""
    start_page(config, number)  # each record is a page with its own time (its line written after)
    try:
        content = repaired(record[field_name], config)
        paragraphs = label_page(content, kind, config, host_of(record.get("url")), record)
        return labelled(record, paragraphs, config)
    finally:
        stop_page(config)


def labelled(record: dict, paragraphs: list[Paragraph], config: RunConfig, notes: list[str] | None = None) -> Any:
    """A record with its cleaned page as its output line, or the flags for which ``--drop-pages`` drops it."""
    flags = dropped_by(verdict(paragraphs), config)
    if flags:
        return Dropped(flags)
    _annotate(record, paragraphs, config)
    labels: dict[str, int] = {}
    for p in paragraphs:
        labels[p.label] = labels.get(p.label, 0) + 1
    return Labelled(json_line(record), labels, notes or [])


def _in_order(
    work: Callable[..., Any],
    items: Iterable[tuple[tuple | None, Any]],
    config: RunConfig,
    again: bool = False,
    stream: object = None,
    told: list[str] | None = None,
) -> Iterator:
    """The records' outcomes in their order, from ``config.record_jobs`` worker processes (one: here). The
    items leave ``config`` out: the workers have it from their fork (sent with each record, a site memory of
    thousands of paragraphs was pickled again for every page). ``again``: see ``workers.in_order``; ``stream``:
    what the records are read from (a pipe is read only when it has bytes while the workers are busy);
    ``told``: where a note goes when fewer workers than asked for could be started."""
    from detector.workers import in_order

    hard_limit = config.timeout + HARD_GRACE if config.timeout else 0.0
    work = functools.partial(work, config=config)
    source = pipe_descriptor(stream) if config.record_jobs > 1 else None
    jobs, here = config.record_jobs, config.records_here
    return in_order(work, items, jobs, worker_start, hard_limit, _STOPS, here, again, source, told)


def pipe_descriptor(stream: object) -> int | None:
    """The descriptor of the pipe, socket or terminal that a stream of records is read from, through the
    readers around it (buffering, gzip, read-ahead); None for a regular file, which never keeps a read waiting."""
    for _ in range(8):
        try:
            descriptor = stream.fileno()  # type: ignore[attr-defined]
        except (AttributeError, OSError, ValueError):  # (io.UnsupportedOperation is an OSError)
            stream = getattr(stream, "raw", None) or getattr(stream, "rest", None)
            if stream is None:
                return None
            continue
        try:
            return None if stat.S_ISREG(os.fstat(descriptor).st_mode) else descriptor
        except OSError:
            return None
    return None


def _record_failure(outcome: object, config: RunConfig, prefix: str | None = None) -> str:
    """Why a record's cleaning failed, from its outcome ("" when it did not); an error that is no record's
    own (the model, memory) fails the file as before."""
    from detector.workers import Died, Ended

    if not isinstance(outcome, BaseException):
        return ""
    if isinstance(outcome, PageTimeout):
        return over_time(config)
    if isinstance(outcome, Ended):
        return over_time(config, ended=True)
    if isinstance(outcome, Died):
        return "not cleaned: its worker process died (out of memory? killed?)"
    if prefix is not None and isinstance(outcome, (InputError, NotTextError, ValueError, RecursionError)):
        return str(outcome).removeprefix(prefix)  # (a WARC record's errors are told as they were read)
    if isinstance(outcome, (ValueError, RecursionError)):
        return f"cannot be cleaned ({type(outcome).__name__}: {outcome})"
    raise outcome


def _forced_line(line: bytes | str, encoding: str | None) -> str:
    """A JSON Lines line as text: in the encoding ``--encoding`` forces, else UTF-8 (a UTF-16 or UTF-32 file
    comes as text already, ``record_lines``); a byte-order mark at its start dropped (the first line of a UTF-8
    file with one, the first of a second UTF-16 file joined by ``cat``: "Unexpected UTF-8 BOM"), and its
    newline."""
    if isinstance(line, bytes):
        line = line.decode(encoding or "utf-8")  # JSON's own rule: a line of bytes without a BOM is UTF-8
    return line.removeprefix("\ufeff").rstrip("\r\n")  # the newline off: an error's column is on this line


def _json_kind(value: object) -> str:
    """What a JSON value is, in words, for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    kinds: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}
    return kinds.get(type(value), "a number")


RECORD_FIELDS = ("cleaned_text", "paragraph_labels", "page_verdict", "paragraphs")  # what _annotate writes


def _annotate(record: dict, paragraphs: list[Paragraph], config: RunConfig) -> None:
    """What a record gains: the cleaned text, the labels, the page verdict (and every paragraph with
    ``-f json``)."""
    record["cleaned_text"] = render(paragraphs, "text", config.keep)
    record["paragraph_labels"] = [p.label for p in paragraphs]
    record["page_verdict"] = verdict(paragraphs)
    if config.fmt == "json":
        record["paragraphs"] = as_record(paragraphs, config.keep)["paragraphs"]


_FILE_SUFFIXES = frozenset(["html", "htm", "php", "asp", "aspx", "jsp", "txt", "json", "xml", "pdf"])  # not hosts


def _host_and_port(url: str) -> bool:
    """Whether a url without a scheme starts with a host and a port (``example.org:8080/a``): by a few string
    operations, in linear time (a regular expression for it backtracked quadratically on ``a.a.a…``)."""
    first = url.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host, colon, port = first.rpartition(":")
    return (
        bool(colon)
        and port.isascii()
        and port.isdigit()
        and "." in host.strip(".")
        and not re.search(_NOT_IN_A_HOST, host)
    )


_NOT_IN_A_HOST = r"[:\s]"


def host_of(url: object) -> str | None:
    """The host of a URL as sites are compared (``rules.site_name``), for the rules' ``site`` and site memory;
    also of a url without its scheme (``example.org/a``), as scrapers store them."""
    if not isinstance(url, str):
        return None
    from urllib.parse import unquote, urlsplit

    url = _trimmed(url)
    if url[:8].lower().startswith(("http:", "https:")):
        url = url.replace("\\", "/")  # as browsers read http(s) urls: https://example.org\a is example.org
    elif _host_and_port(url):  # example.org:8080/a: urlsplit took "example.org" for the scheme
        url = "//" + url
    try:
        parts = urlsplit(url)
        host = parts.hostname
        if not host and parts.scheme.lower() in ("", "http", "https"):  # example.org/a, https:example.org/a
            first = parts.path.lstrip("/").split("/")[0]
            looks = "." in first.strip(".") and not any(c.isspace() for c in first)
            host = first if looks and first.rsplit(".", 1)[1].lower() not in _FILE_SUFFIXES else ""
    except ValueError:
        return None
    if host and "%" in host:  # percent-encoded, as browsers decode it (%66inanzen.net)
        host = unquote(host)
    if host and ":" in host:  # an IPv6 address, in one form ([0:0:0:0:0:0:0:1] is [::1])
        import ipaddress

        try:  # noqa: SIM105 - contextlib is not imported for this
            host = ipaddress.ip_address(host.partition("%")[0]).compressed
        except ValueError:  # not an address: as it is
            pass
    return site_name(host) or None


def _trimmed(url: str) -> str:
    """A url without the white space, and the zero-width space or BOM copied with it, around it."""
    return url.strip().strip("\u200b\u2060\ufeff").strip()


def page_address(url: str, host: str) -> str:
    """A record's page as site memory tells pages apart: its host (``host_of``), path and query, read as
    ``host_of`` reads the url, without the scheme and the fragment and with percent-escapes decoded, so that a
    url crawled twice (``http``/``https``, ``www.`` or not, another ``#anchor``, an empty ``?``, ``%7E`` or
    ``~``) is one page however its copies differ."""
    from urllib.parse import unquote

    rest = _trimmed(url).split("#", 1)[0]
    scheme = re.match(r"(?i)https?:[/\\]*", rest)  # https://x.de/a, https:x.de/a, https:\\x.de\\a, as browsers
    rest = rest[scheme.end() :].replace("\\", "/") if scheme else rest.removeprefix("//")
    cut = min((at for at in (rest.find("/"), rest.find("?")) if at != -1), default=len(rest))
    tail = rest[cut:].rstrip("?")
    if tail.startswith("?") or not tail:
        tail = "/" + tail
    return f"{host}{unquote(tail)}"


def repaired(text: str, config: RunConfig) -> str:
    """A page's text (or HTML) with ``--fix-mojibake``'s repair (``FÃ¼r`` → ``Für``), else as it is."""
    return repair_mojibake(text) if config.fix_mojibake else text


def clean_warc(
    stream: BinaryIO, name: str, config: RunConfig, result: Result, skip: tuple[int, ...] = ()
) -> Iterator[bytes]:
    """Stream a WARC file (plain or gzipped, record by record, never whole): every HTML response becomes one
    JSON line (url, record id, date, cleaned text, labels); other records are counted as skipped. A file that
    ends inside a record, or damaged data, is a bad record that says so (warcio alone reads a cut record as if
    whole). The records are read here and their pages cleaned by ``config.record_jobs`` workers."""
    from warcio.exceptions import ArchiveLoadFailed

    load_model(config.model)
    result.notes.extend(unused_options("warc", name, config))
    plain = plain_warc(stream)
    head = plain.peek(11)[:11] if hasattr(plain, "peek") else b""
    if head and not head.startswith((b"WARC/", b"filedesc://")):
        raise InputError(f"{name}: not a WARC file (it does not start with WARC/, nor as an ARC file)")
    arc = head.startswith(b"filedesc://")  # its records have no ids: warcio makes up a new one on every read
    records = archive_iterator()(plain, arc2warc=True)

    def items() -> Iterator[tuple[tuple | None, list]]:
        """Each record as (what its worker gets, or None; [its number, url, why it failed or "", notes,
        whether its Content-Length proved wrong, and its WARC-Record-ID]). Whether a record ended where its
        Content-Length said is told by warcio (err_count) only once the next record is read: the last tag
        learns it then."""
        number = 0
        reading = False  # a record's content, where an EOFError is a cut inside it
        wrong_lengths = 0
        last: list | None = None  # the tag of the record read last, if it was handed on to be cleaned

        def seal() -> None:
            nonlocal wrong_lengths, last
            if last is not None and records.err_count > wrong_lengths:
                last[4] = True
            wrong_lengths, last = records.err_count, None

        def failed(error: str, url: Any = NO_URL, at: int = 0) -> tuple[None, list]:
            return None, [at or number, url, error, [], False, record_id if url is not NO_URL else None]

        try:
            for record in records:
                raise_swallowed_stop()
                seal()
                reading = False
                url = record_id = None
                if record.rec_type is None or record.length is None:  # warcio would read the rest as its body
                    raise ValueError("a record without WARC-Type or Content-Length")  # (damaged data: the end)
                try:
                    number += 1
                    url = record.rec_headers.get_header("WARC-Target-URI")
                    record_id = None if arc else record.rec_headers.get_header("WARC-Record-ID")
                    if number in skip:
                        yield failed(over_time(config, ended=True), url)
                        continue
                    if record.rec_type == "response" and not (url or "").strip():
                        error = "a response without a WARC-Target-URI (or an empty one): its page could not be "
                        yield failed(error + "told by its url", url)
                        continue
                    headers = record.http_headers
                    content_type = (headers.get_header("Content-Type") or "") if headers else ""
                    if not _may_be_html(record, content_type):
                        result.skipped_records += record.rec_type not in ("warcinfo", "request", "metadata")
                        while record.raw_stream.read(1 << 16):  # read here, to tell a cut (warcio reads it short)
                            pass
                        if missing := getattr(record.raw_stream, "limit", 0):
                            yield failed(f"cut short: the file ends {missing:,} bytes before the record's end")
                        continue
                    reading = True
                    content = _content_stream(record)
                    payload = read_body(content, config.max_bytes, f"{name} record {number}")
                    reading = False
                    cut = cut_by_crawler(record) or chunks_cut(content)
                    if problem := _body_problem(record, content, cut):
                        raise InputError(problem)
                    if not _html_body(content_type, payload):
                        result.skipped_records += 1
                        continue
                    out = {
                        "url": url,
                        # ARC has no record ids; a crawl's redirects and error pages are cleaned too: filter them
                        "record_id": record_id,
                        "date": record.rec_headers.get_header("WARC-Date"),
                        "status": _status(record),
                    }
                    notes = []
                    if cut:
                        out["truncated"] = cut
                        notes.append(f"cut by the crawler ({cut}): cleaned as far as it goes")
                    last = [number, url, "", notes, False, record_id]
                    yield (number, payload, content_type, out), last
                    del payload
                except (InputError, NotTextError, ValueError, RecursionError) as exc:
                    yield failed(str(exc).removeprefix(f"{name} record {number}: "), url)
            seal()
            if getattr(plain, "cut", False):  # between records, where warcio takes the EOFError for the end
                raise EOFError
            if records.next_line or records.unread:
                yield failed("damaged WARC data after this record (a header cut short?): the rest is not read")
            elif not number and records.consumed:
                yield failed("no WARC record could be read (a header cut short, or not a WARC file)", at=1)
        except EOFError:  # gzip data that ends inside its stream
            seal()  # the record before the cut is whole
            if reading or not number:
                yield failed("truncated gzip data: the file ends inside this record", at=max(number, 1))
            else:
                yield failed("truncated gzip data after this record: whatever followed it is lost")
        except (ArchiveLoadFailed, zlib.error, *_WARCIO_ERRORS) as exc:
            seal()  # the record before the damage is whole
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]  # warcio's messages run over lines
            yield failed(f"damaged WARC data, the rest is not read ({reason})", at=number + 1)

    # A record's line is held until the next record is read (its tag sealed): a record cut short by a wrong
    # Content-Length must not pass.
    held: tuple[list, Labelled] | None = None

    def release() -> Iterator[bytes]:
        nonlocal held
        if held is not None:
            (number, url, _, notes, wrong, record_id), outcome = held
            held = None
            if wrong:
                error = "not followed by a blank line: its Content-Length is wrong, its content cut or run over"
                told = {"file": name, "record": number, "record_id": record_id, "url": url, "error": error}
                result.record_errors.append(told)
            else:
                result.notes.extend(f"{name} record {number}: {note}" for note in [*notes, *outcome.notes])
                result.add_page(outcome.labels)
                yield outcome.line

    for tag, outcome in _in_order(label_response, items(), config, stream=stream, told=result.notes):
        yield from release()
        number, url, error = tag[:3]
        error = error or _record_failure(outcome, config, f"{name} record {number}: ")
        if error:  # (record_id: as its output line has it, to join the two)
            told = {"file": name, "record": number, "record_id": tag[5], "url": url, "error": error}
            if url is NO_URL:  # an error of the file's data, not of a record of a page
                del told["url"], told["record_id"]
            result.record_errors.append(told)
        elif isinstance(outcome, Dropped):
            result.drop(outcome.flags)
        elif isinstance(outcome, Labelled):
            held = tag, outcome
    yield from release()


NO_URL = object()  # a WARC error told without a url: the data is damaged where a record was expected


def label_response(number: int, payload: bytes, content_type: str, out: dict, config: RunConfig) -> Any:
    """A WARC response's HTML cleaned into its output record (in a worker, or here with one job), in its
    time (from when it has been read: an alarm inside warcio's reads put the file out of step)."""
    start_page(config, number)
    try:
        notes: list[str] = []
        text = repaired(_decode_http(payload, _http_charset(content_type), config.encoding, notes), config)
        del payload
        paragraphs = label_page(text, "html", config, host_of(out["url"]))
        return labelled(out, paragraphs, config, notes)
    finally:
        stop_page(config)


def _status(record: Any) -> int | None:
    """A response's HTTP status code (None where its status line has none)."""
    code = record.http_headers.get_statuscode()
    return int(code) if code.isascii() and code.isdigit() and len(code) == 3 else None


def _content_stream(record: Any) -> Any:
    """A response's body, its transfer and content codings undone, last applied first: chunked framing by
    ``_Dechunked`` (warcio de-chunks only a header of exactly ``chunked``, with CRLF lines and no trailer
    fields: the chunk sizes of ``Chunked`` stood inside the article's words), then each coding of Transfer-Encoding
    before ``chunked`` and of Content-Encoding (``gzip, gzip`` is two) by warcio's decoders; ``x-gzip``, which
    HTTP reads as gzip, as gzip. Decoding stops at a coding warcio does not know (``br`` without brotli,
    ``zstd``): that body then fails as not text, or is read as it looks."""
    from warcio.bufferedreaders import BufferedReader

    headers = record.http_headers
    transfer = _codings(headers.get_header("Transfer-Encoding"))
    stream = record.raw_stream
    if transfer[-1:] == ["chunked"]:
        stream = _Dechunked(stream)
        transfer.pop()
    known = BufferedReader.get_supported_decompressors()
    for coding in reversed(_codings(headers.get_header("Content-Encoding")) + transfer):
        if coding not in known:
            if coding == "identity":
                continue
            break
        stream = BufferedReader(stream, decomp_type=coding)
    return stream


def read_body(content: Any, max_bytes: int, name: str) -> bytes:
    """A response's body, decoded (``_content_stream``). warcio's decoders print a damaged gzip or deflate
    stream's error on stderr (once per read after it, also with ``-q``) and end the body there: the message
    is caught here and makes it a bad record (it was told as a body that "ends inside" its coding)."""
    held, sys.stderr = sys.stderr, io.StringIO()
    try:
        payload = read_limited(content, max_bytes, name)
    finally:
        said, sys.stderr = sys.stderr.getvalue(), held
    if said.strip():
        raise InputError(f"its HTTP body's Content-Encoding is damaged ({said.strip().splitlines()[0]})")
    return payload


def _codings(value: str | None) -> list[str]:
    """The codings of a Transfer-Encoding or Content-Encoding header, in the order they were applied (names are
    read without case: RFC 9110 §8.4)."""
    codings = [c.strip().lower() for c in (value or "").split(",") if c.strip()]
    return ["gzip" if c == "x-gzip" else c for c in codings]


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_CHUNK_LINE = 4096  # bytes: a chunk-size line with its extensions, or a trailer field, is read this far at a time


class _Dechunked:
    """An HTTP body in chunked transfer coding (RFC 9112 §7.1), de-chunked as it is read: chunk-size lines end in
    CRLF or a bare LF, extensions after ``;`` are dropped, and so are the trailer fields after the last chunk
    (they are no part of the body: a CDN's ``Server-Timing`` trailer was the article's last paragraph). A body
    whose first line is no chunk size was de-chunked by the crawler, which kept the header: it is read as it
    stands, and so is the rest of one whose framing breaks later (as warcio does)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.left = 0  # bytes of the current chunk still to read
        self.framed = True  # False: the framing broke (or never was); ``kept`` holds what was read of it
        self.kept = b""
        self.done = False
        self.cut = False  # the body ended before its last chunk (inside a chunk, or between two)

    def read(self, size: int | None = -1) -> bytes:
        want = -1 if size is None or size < 0 else size  # -1: to the end
        out = bytearray()
        while (want < 0 or len(out) < want) and not self.done:
            room = -1 if want < 0 else want - len(out)
            if not self.framed:
                if self.kept:
                    piece, self.kept = (self.kept, b"") if room < 0 else (self.kept[:room], self.kept[room:])
                    out += piece
                    continue
                data = self.raw.read(None if room < 0 else room)  # (warcio's reader reads past its record on -1)
                self.done = not data
                out += data
            elif self.left:
                data = self.raw.read(self.left if room < 0 else min(self.left, room))
                if not data:  # the record ends inside a chunk: as far as it goes
                    self.done = self.cut = True
                    break
                out += data
                self.left -= len(data)
                if not self.left:
                    self._chunk_end()
            else:
                self._next_chunk()
        return bytes(out)

    def _next_chunk(self) -> None:
        line = self.raw.readline(_CHUNK_LINE)
        digits = line.split(b";")[0].strip()
        # a size of up to 8 hex digits after any leading zeros (RFC 9112 sets no length)
        size = 0 < len(digits) <= 32 and len(digits.lstrip(b"0")) <= 8 and _HEX_DIGITS.issuperset(digits)
        if line.endswith(b"\n") and size:
            self.left = int(digits, 16)
            if not self.left:  # the last chunk: then trailer fields, up to a blank line
                while (field := self.raw.readline(_CHUNK_LINE)) and field.strip(b"\r\n"):
                    pass
                self.done = True
        elif size and len(line) < _CHUNK_LINE:  # the body ends inside a chunk-size line: cut, but after "0"
            self.done, self.cut = True, int(digits, 16) != 0
        elif line:
            self.framed, self.kept = False, line
        else:  # the body ends where the next chunk should start
            self.done = self.cut = True

    def _chunk_end(self) -> None:
        end = self.raw.read(1)
        if end == b"\r":
            end += self.raw.read(1)
        if end not in (b"\r\n", b"\n", b""):
            self.framed, self.kept = False, end


def chunks_cut(content: Any) -> str:
    """Why a chunked body is not whole ('' when it is): it ends before its last chunk, as a body does that a
    crawler cut at its size or time limit without saying so (``cut_by_crawler`` tells the other ways)."""
    while content is not None:
        if isinstance(content, _Dechunked):
            return "its chunked body ends before its last chunk" if content.cut else ""
        content = getattr(content, "stream", None)  # warcio's decoders read from the stream below them
    return ""


def _body_problem(record: Any, content: Any, cut: str) -> str:
    """Why a response's body, read to its end, is not whole ('' when it is): the file ends before the record's
    Content-Length, or warcio read a body cut inside its gzip or deflate short, without a word (one the
    crawler cut, ``cut``, is cleaned as far as it goes, and a 204 or 304 has no body to be cut)."""
    if missing := getattr(record.raw_stream, "limit", 0):  # what its Content-Length promised, not there
        return f"cut short: the file ends {missing:,} bytes before the record's end"
    unfinished = getattr(getattr(content, "decompressor", None), "eof", True) is False
    if unfinished and not cut and record.length > record.http_headers.total_len:
        return "its HTTP body ends inside its gzip or deflate Content-Encoding"
    return ""


def _may_be_html(record: Any, content_type: str) -> bool:
    """Whether a WARC record is a response that may hold an HTML page: its HTTP Content-Type says HTML, or it
    has none (browsers then look at the bytes, and so does the caller)."""
    return (
        record.rec_type == "response"
        and record.http_headers is not None
        and ("html" in content_type.lower() or not content_type.strip())
    )


def _html_body(content_type: str, payload: bytes) -> bool:
    """Whether the body of a response that ``_may_be_html`` let through is HTML: by its type, or by its bytes
    when it has none."""
    return bool(content_type.strip()) or looks_like_html(payload)


def cut_by_crawler(record: Any) -> str:
    """Why a response's body is not the whole of what the server sent ('' when it is, as far as the record
    tells): the crawler's own ``WARC-Truncated`` header (a size or time limit), or a body shorter than its HTTP
    Content-Length."""
    if said := record.rec_headers.get_header("WARC-Truncated"):
        return f"WARC-Truncated: {said}"
    headers = record.http_headers
    length = (headers.get_header("Content-Length") or "").strip()
    chunked = "chunked" in (headers.get_header("Transfer-Encoding") or "").lower()
    if (
        length.isascii()
        and length.isdigit()
        and not chunked
        and (stored := record.length - headers.total_len) < int(length)
    ):
        return f"{stored:,} of the {int(length):,} bytes its HTTP Content-Length says"
    return ""


# What warcio raises on a malformed record (a missing WARC-Target-URI: AttributeError; a Content-Length of 30
# digits: OverflowError; ...): damaged data, told as such, never the end of a batch.
_WARCIO_ERRORS = (AttributeError, OverflowError, ValueError, KeyError, IndexError, TypeError)


@functools.cache
def archive_iterator() -> type:
    """warcio's record iterator, without its warning on stderr for a record whose Content-Length is wrong: it
    still counts them (``err_count``), and ``clean_warc`` reports them as a bad record."""
    from warcio.archiveiterator import ArchiveIterator

    class QuietArchiveIterator(ArchiveIterator):
        INC_RECORD = ""
        # What warcio takes for the end of the file: a record header cut short leaves its first line in
        # next_line; bytes it could not parse stay unread; a file of no record at all was still read.
        unread = b""
        consumed = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            loader = self.loader
            loader.load_http_headers = functools.partial(
                _http_headers, loader.load_http_headers, loader.http_parser
            )

        def close(self) -> None:
            try:  # (contextlib.suppress would be an import more in every start of one page)
                if self.reader is not None:
                    self.unread = self.reader.read(1 << 16).strip()
                self.consumed = self.fh.tell()
            except Exception:  # a cut (EOFError), which the stream itself tells, or what warcio raises here
                pass
            super().close()

    return QuietArchiveIterator


def _http_headers(load: Callable[..., Any], parser: Any, rec_type: str, uri: str | None, *rest: Any) -> Any:
    """warcio's reading of a record's HTTP headers, for a url whose scheme is written in capitals too
    (``HTTP://``, ``Https://``: schemes are read without case, RFC 3986 §3.1), which warcio took for a record
    without HTTP: its page was skipped as "not an HTML response". A response's interim header blocks
    (``100 Continue``, ``103 Early Hints``) are passed over to the final one: its status, type and codings are
    the response's (the 103's status was the record's, and the final status line stood in the article). A
    record without a WARC-Target-URI is read as one without HTTP (warcio raised on it, which ended the file:
    the records after it were lost; ``clean_warc`` fails such a response alone)."""
    scheme, colon, _ = (uri or "").partition(":")
    if colon and scheme.lower() in ("http", "https"):
        uri = f"{scheme.lower()}:"  # (warcio reads the scheme alone)
    uri = uri or ""
    headers = load(rec_type, uri, *rest)
    for _ in range(8):  # (a server sends a few at most)
        code = headers.get_statuscode() if rec_type == "response" and headers is not None else ""
        if not (len(code) == 3 and code.startswith("1") and code != "101" and code.isdigit()):
            break
        try:
            final = parser.parse(rest[0])
        except EOFError:  # no final response stored: the interim one is all there is
            break
        final.total_len += headers.total_len
        headers = final
    return headers


def plain_warc(stream: BinaryIO) -> Any:
    """A WARC's records as plain bytes: a gzipped file is decompressed here, whether each record is a gzip
    member (the standard) or the whole file is one (which warcio refuses after its first record), and an end
    inside a member is an EOFError (where warcio stops without a word)."""
    import logging

    logging.getLogger("warcio").setLevel(logging.ERROR)  # its warnings ("Replacing spaces in …") are not ours
    buffered: Any = stream if hasattr(stream, "peek") else io.BufferedReader(stream)
    if buffered.peek(2)[:2] == b"\x1f\x8b":  # blank lines before the first record skipped as in a plain file
        gunzipped = Gunzipped(buffered)
        while (head := gunzipped.peek(256)) and not head.lstrip():
            gunzipped.read(len(head))
        gunzipped.read(len(head) - len(head.lstrip()))
        return gunzipped
    while (head := buffered.peek(256)[:256]) and not head.lstrip():  # blank lines before the first record,
        buffered.read(len(head))  # which warcio reads as a record of no type that swallows the file
    buffered.read(len(head) - len(head.lstrip()))
    return _Prompt(buffered)


class _Prompt:
    """A buffered stream whose ``read(n)`` gives what has arrived (a byte at least, unless it ended), as a pipe
    does: warcio reads 16 KB at a time, and a BufferedReader waits for all of them (a stream's responses were
    written only once 16 KB more had come, or at its end)."""

    def __init__(self, buffered: Any) -> None:
        self.buffered = buffered

    def read(self, size: int | None = -1) -> bytes:
        return self.buffered.read1(size) if size is not None and size > 0 else self.buffered.read()

    def peek(self, size: int = 1) -> bytes:
        return self.buffered.peek(size)

    def readline(self, limit: int | None = -1) -> bytes:
        return self.buffered.readline(limit)


def _http_charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


def _decode_http(payload: bytes, charset: str | None, forced: str | None, notes: list[str] | None = None) -> str:
    """An HTTP body's text: the forced encoding, else the rules of HTML pages, where the charset of the HTTP
    header is the declaration (a BOM beats it, and bytes that do not fit it beat it, as for a ``<meta>``)."""
    from detector.markup import decode_html

    return decode_html(payload, forced, notes, charset)


# ---------------------------------------------------------------------------------------------------------
# One file


def temp_path(target: Path, run_id: str) -> Path:
    """The temporary file a run writes before renaming it to ``target``: short (a 255-byte file name still
    has room), hidden, and named after the run, so a run removes only its own."""
    return target.with_name(f".{run_id}-{zlib.crc32(os.fsencode(target.name)):08x}{TEMP_SUFFIX}")


_OUTPUT_FULL = (errno.EFBIG, errno.ENOSPC, errno.EDQUOT)  # a file-size limit, a full disk, a quota


class _Abandoned(BaseException):
    """A worker's output not written: its interrupted batch stopped waiting for it (``_run_forked``)."""


def write_atomic(
    path: Path,
    chunks: Iterable[bytes],
    run_id: str,
    commit: Callable[[], bool] | None = None,
    root: str = "",
    mark: str | Callable[[], str] = "",
) -> bool:
    """Write to a temporary file beside ``path`` and rename it, so no reader ever sees half a file; when
    ``commit`` says no once everything is written (a page dropped by its verdict), the file is discarded.
    ``root``: the output folder's real path, checked before the folders are made and before the rename
    (``inside``); ``mark``: the settings the output is made with (``settings_mark``). Returns whether the
    file was written."""
    inside(path, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, run_id)
    try:
        with open(tmp, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        if commit is not None and not commit():
            tmp.unlink()
            return False
        if callable(mark):  # (told once everything is written)
            mark = mark()
        if mark:  # (before the permissions below: a read-only file takes no mark)
            _set_mark(tmp, mark)
        # a file written anew keeps the permissions it had (one its owner made private stays private)
        try:  # noqa: SIM105 - contextlib is not imported for this
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except OSError:  # none yet (the common case), or none to be read
            pass
        inside(path, root)
        if (stop := _INHERITED.get("stop")) is not None and stop[1]:  # a forked worker whose batch was
            # interrupted and no longer waits for its answers: an output renamed now would be counted by no one
            raise _Abandoned
        if _HOLD_SIGNALS[0]:  # see ``_run_here``
            signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
        os.replace(tmp, path)
        return True
    except OSError as exc:
        try:  # noqa: SIM105 - contextlib is not imported for this
            tmp.unlink(missing_ok=True)
        except OSError:  # its folder was moved or replaced while the file was written
            pass
        if exc.filename is None and exc.errno in _OUTPUT_FULL:  # written or flushed at close: the output's
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        if exc.filename is None or os.fspath(exc.filename) not in (str(tmp), str(path)):
            raise
        if exc.errno == errno.EISDIR:  # named by the output, not by the temporary file it was written as
            raise OSError(exc.errno, "a folder is in the way of the output", str(path)) from None
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def inside(path: Path, root: str) -> None:
    """Raise OSError unless ``path``'s folder, as far as it exists, leads into the output folder whose real path
    is ``root`` (no check for ""), and that folder still exists. Checked when a file is written, not only when
    the batch was planned: a folder of the output replaced by a link during a run had 68 pages written outside
    it, over a file there, and an output folder moved or removed during a run was made anew, the outputs split
    between two folders."""
    if not root:
        return
    if not os.path.isdir(root):
        raise OSError(errno.ENOENT, "the output folder was moved or removed during the run", root)
    folder = path.parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    real = os.path.realpath(folder)
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        raise OSError(
            errno.EXDEV, "its folder in the output folder is a link that leads out of it: not written", str(path)
        )


def clean_file(task: Task, config: RunConfig) -> Result:
    """Clean one file into its target; never raises for anything about that file, never leaves a partial
    file, and reports every failure with its reason, a page over its time limit too (``start_page``; a file of
    records restarts it at each record)."""
    try:
        start_page(config)
        return _clean_file(task, config)
    except PageTimeout:
        return Result(task.shown, "failed", f"{task.shown}: {over_time(config)}")
    finally:
        stop_page(config)


def _clean_file(task: Task, config: RunConfig) -> Result:
    from pathlib import Path  # here, not at the top: a page to standard output never needs it

    name = task.shown
    target = Path(task.target)
    redo = ""
    mark = f"{config.settings_mark}.{_input_stamp(task.source)}" if config.settings_mark else ""
    if config.skip_existing and target.is_file() and not _written_since(target, task.redo_after):
        redo = _made_with(target, mark, name, config.listed)
        if not redo:
            skipped = Result(name, "skipped", "output exists")  # (a folder or FIFO in the way is no output: fails)
            if config.listed is None and task.kind in ("jsonl", "warc"):
                had_bad_records(skipped, task.target)
            return skipped
    if task.source in config.over_time:
        return Result(name, "failed", f"{name}: {over_time(config)} (in site memory's first pass)")
    result = Result(name, "cleaned")
    result.redone = redo
    try:
        with open_input(task.source, name, walked=True, link=task.link) as handle:
            if task.kind in ("jsonl", "warc"):
                stream: BinaryIO = handle
                if task.kind == "jsonl" and gzipped(handle):
                    stream = gunzip_stream(handle)
                clean = clean_records if task.kind == "jsonl" else clean_warc
                stop_page(config)  # each record is timed once it has been read, not the file
                lines = clean(stream, name, config, result, task.skip)
                write_atomic(
                    target, lines, config.run_id, root=config.output_root, mark=lambda: _whole(mark, result)
                )
                return result
            data = read_limited(handle, config.max_bytes, name)
        memory = (config.memories or {}).get(file_site(task.source, task.site))
        page = clean_page(data, name, task.kind, config, folder_name(task.source, task.site), memory)
        del data
        written = write_atomic(
            target,
            page.chunks,
            config.run_id,
            lambda: not dropped_by(page.writer.verdict(), config),
            config.output_root,
            mark,
        )
        result.notes = page.notes
        result.pages = 1
        result.labels = dict(page.writer.labels) if written else {}  # a dropped page's paragraphs are not output
        if not written:
            flags = dropped_by(page.writer.verdict(), config)
            target.unlink(missing_ok=True)  # an earlier run's output of this page: this run leaves it out
            result.status = "dropped"
            result.drop(flags)
            result.reason = f"{name}: page dropped ({', '.join(flags)})"
        return result
    except InputError as exc:
        return Result(name, "failed", str(exc))
    except ModelError:
        raise
    except OSError as exc:
        reason = (exc.strerror or str(exc) or "input/output error").lower()
        where = name if exc.filename in (None, task.source) else f"{name} -> {display(exc.filename)}"
        return Result(name, "failed", f"{where}: {reason}")
    except MemoryError:
        return Result(name, "failed", f"{name}: out of memory")
    except PageTimeout:
        raise
    except Exception as exc:  # a library's error on a malformed input must not end the batch
        return Result(name, "failed", f"{name}: cannot be cleaned ({type(exc).__name__}: {exc})")


MARK_ATTRIBUTE = "user.clean-article.settings"  # an extended attribute of each output (Linux)


def settings_mark(config: RunConfig) -> str:
    """What decides an output beside its input, as 16 hex digits: the format, the labels kept, the threshold,
    the rules by their content, the model by its file's CRC (a model trained anew at the same path is another),
    the page flags dropped, site memory, and how inputs are read (not ``--jobs``, ``--timeout`` or ``-q``).
    ``--skip-existing`` keeps an output only when its mark is this run's (a run with another ``-f``, ``-k``,
    ``--favor`` or ``--rules`` kept the old outputs without a word); one without a mark (an older run, a file
    system without extended attributes) is kept as before."""
    import hashlib

    settings = (
        config.fmt,
        sorted(config.keep),
        config.favor if config.min_editorial is None else config.min_editorial,
        [(*rule, rule.pattern and (rule.pattern.pattern, rule.pattern.flags)) for rule in config.rules],
        _model_checksum(config.model),
        sorted(config.drop_pages),
        config.site_memory,
        config.input_format,
        config.text_field,
        config.html_field,
        config.encoding,
        config.fix_mojibake,
    )
    return hashlib.blake2b(repr(settings).encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _model_checksum(path: str | None) -> str:
    """The CRC-32 a model file ends with (``detector.model``), as hex; "" when it cannot be read (the run
    fails on the model anyway)."""
    from detector.model import shipped_model

    try:
        with open(path or shipped_model(), "rb") as handle:
            handle.seek(-4, os.SEEK_END)
            return handle.read(4).hex()
    except (OSError, ModelError):
        return ""


def _input_stamp(source: str) -> str:
    """The input as its output's mark holds it: its size and modification time (in ns), so that
    ``--skip-existing`` makes again the output of an input changed since (a crawl file still being copied, a
    page a scraper wrote anew); "" when it cannot be read (it fails then)."""
    try:
        found = os.stat(source)
    except OSError:
        return ""
    return f"{found.st_size}.{found.st_mtime_ns}"


# Failures of a record that another run may not have: its output lacks them and is marked as incomplete, so
# that ``--skip-existing`` cleans its file again (with a longer --timeout, more memory).
_PASSING_FAILURES = ("took longer than --timeout", "not cleaned: its worker process died")
PARTIAL = ".partial"
BAD = ".bad"  # an output of records some of which were bad: ``--skip-existing`` needs them listed to skip it


def _whole(mark: str, result: Result) -> str:
    """The mark of a file of records once cleaned: ``mark``, or it as incomplete (``PARTIAL``) when a record
    failed for its time or its worker's death, or as holding bad records (``BAD``)."""
    if not mark or not result.record_errors:
        return mark
    passing = any(str(error.get("error", "")).startswith(_PASSING_FAILURES) for error in result.record_errors)
    return mark + (PARTIAL if passing else BAD)


def _set_mark(path: Path, mark: str) -> None:
    """Mark an output with the settings it was made with, where the system and file system can."""
    if hasattr(os, "setxattr"):
        try:  # noqa: SIM105 - contextlib is not imported for this
            os.setxattr(path, MARK_ATTRIBUTE, mark.encode("ascii"))
        except OSError:  # no extended attributes here (NFS, FAT, some container file systems)
            pass


# Why ``--skip-existing`` made an output again, as the summary tells it.
REDONE = {
    "settings": "made with other settings",
    "input": "made of an earlier state of their inputs",
    "partial": "missing records that failed for their time or a dead worker",
    "unlisted": "holding bad records the errors file did not list",
}


def _made_with(path: Path, mark: str, shown_source: str = "", listed: frozenset[bytes] | None = None) -> str:
    """Why an existing output must be made again (a key of ``REDONE``), "" when it need not: its mark tells
    other settings, another state of its input (``_input_stamp``), records missing (``PARTIAL``), or bad
    records (``BAD``) that the errors file being carried on (``listed``: the inputs it lists bad records of)
    does not list, as when the run that wrote the output ended before its answer came (Dask, a dead worker).
    An output without a mark, or with the settings alone (marked before inputs were), is kept as before."""
    found = _mark_of(path) if mark else ""
    if not found:
        return ""
    settings, _, stamp = mark.partition(".")
    found_settings, dot, found_stamp = found.partition(".")
    if found_settings != settings:
        return "settings"
    if found_stamp.endswith(PARTIAL[1:]):
        return "partial"
    if found_stamp.endswith(BAD) and listed is not None and _real_key(shown_source) not in listed:
        return "unlisted"
    return "input" if dot and found_stamp.removesuffix(BAD) != stamp else ""


def _mark_of(path: Path | str) -> str:
    """An output's mark ("" where it has none: an older run, an output copied without it, no extended
    attributes here)."""
    if not hasattr(os, "getxattr"):
        return ""
    try:
        return os.getxattr(path, MARK_ATTRIBUTE).decode("ascii", "replace")
    except OSError:
        return ""


def had_bad_records(result: Result, target: str) -> None:
    """A file of records skipped by ``--skip-existing`` without an errors file to carry on: its output's mark
    tells it held bad records, which still count in the exit code, as they would have in its first run."""
    if _mark_of(target).endswith(BAD):
        reason = "bad records when an earlier run cleaned it (that run's errors file lists them)"
        result.record_errors.append({"file": result.source, "error": reason})


def _written_since(path: Path, when: float) -> bool:
    """Whether the file was written at ``when`` or later (by this run, before its worker was ended)."""
    try:
        return bool(when) and path.stat().st_mtime >= when
    except OSError:
        return False


def clean_chunk(tasks: list[Task], config: RunConfig) -> list[Result]:
    """A worker's unit of work: several files, so the model is loaded once per worker and IPC stays small."""
    return [clean_file(task, config) for task in tasks]


# ---------------------------------------------------------------------------------------------------------
# Planning


class Plan(NamedTuple):
    """A batch before it runs: every task with its output path, and what was skipped while walking."""

    tasks: list[Task]
    skipped: list[Result]


OUTPUT_SUFFIXES = {"text": ".txt", "annotated": ".txt", "explain": ".txt", "json": ".json", "html": ".html"}
_MARKUP_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml")  # (.shtml: server-side includes, saved as HTML)


def output_name(relative: str, kind: str, fmt: str) -> str:
    """The output path of an input, relative to the output folder: the input's path with the suffix of what
    is written (``.txt``, ``.json``, ``.html``; ``.jsonl`` for records). A text page written as text keeps its
    name (without a ``.gz``, and ``.txt`` for one named as HTML); annotated and explained, it is a ``.txt``
    (``page.md`` as ``page.md`` was an annotated page that training, which reads ``.txt``, passed over)."""
    stem = relative[:-3] if relative.lower().endswith(".gz") else relative
    if kind in ("jsonl", "warc"):
        suffix = ".jsonl"
    else:
        suffix = OUTPUT_SUFFIXES[fmt]
        lower = stem.lower()
        if kind == "text" and suffix == ".txt" and not lower.endswith(_MARKUP_SUFFIXES):
            if fmt == "text" or lower.endswith(".txt"):
                return stem
            if lower.endswith((".md", ".markdown")):
                return os.path.splitext(stem)[0] + suffix
            return stem + suffix  # a name without a suffix, or with a dot of its own (report.2024)
    return os.path.splitext(stem)[0] + suffix


def plan(inputs: list[str], outdir: Path, config: RunConfig, listed: Sequence[str] = ()) -> Plan:
    """The tasks of a batch, and the inputs skipped while walking.

    Folders are walked recursively for the file patterns; outputs mirror each file's path below its input
    folder; a file given by name is written under its own name. The paths of a ``--files-from`` list
    (``listed``) are mirrored as they are written there (``mirrored``), so that files of the same name in
    different folders stay apart. Symbolic links are followed only when asked, and a folder reached twice (a
    link loop) is walked once. Raises UsageError when the batch would write into its own input folder, over an
    input file, two inputs into one output, or the errors file over an input or an output.
    """
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"the output folder {outdir} is a file")
    if outdir.is_symlink() and not outdir.exists():
        raise UsageError(
            f"the output folder {outdir} is a symbolic link to {os.readlink(outdir)}, which does not exist"
        )
    out_root = os.path.realpath(outdir)
    resolved_folders: dict[str, str] = {}

    def resolve(path: str) -> str:
        """``os.path.realpath`` of a file, with its folder's resolution cached."""
        folder, base = os.path.split(path)
        if folder not in resolved_folders:
            resolved_folders[folder] = os.path.realpath(folder or ".")
        return os.path.join(resolved_folders[folder], base)

    tasks: list[Task] = []
    skipped: list[Result] = []
    sources: dict[str, str] = {}
    candidates: list[tuple[str, str, str]] = []
    for root, from_list in [*((path, False) for path in inputs), *((path, True) for path in listed)]:
        if root == "":
            raise UsageError("an empty path is not an input")
        if not os.path.lexists(root):
            skipped.append(Result(display(root), "failed", f"{display(root)}: no such file or folder"))
            continue
        if os.path.isdir(root):
            resolved = os.path.realpath(root)
            if out_root == resolved or out_root.startswith(os.path.join(resolved, "")):
                inside = f"the output folder {display(outdir)} lies inside the input folder {display(root)}"
                raise UsageError(inside)
            prefix = len(os.path.join(root, ""))
            earlier = len(skipped)  # this folder's own skips are the ones after it
            below = mirrored(root) if from_list else ""
            found = [
                (
                    path,
                    os.path.join(below, path[prefix:]),
                    host_folder(path, walked_path(root, path, prefix), root),
                )
                for path in _walk(
                    root,
                    config.patterns(),
                    config.follow_links,
                    skipped,
                    fold_case=not config.globs,
                    avoid=out_root,
                )
            ]
            if not found and len(skipped) == earlier:
                patterns = ", ".join(config.patterns())
                skipped.append(Result(display(root), "failed", f"{display(root)}: no file matches {patterns}"))
        else:
            found = [(root, mirrored(root) if from_list else os.path.basename(root), named_host_folder(root))]
        candidates += found
    # A file reached twice is one page: the real file's, whichever comes first (a link to it reached before it
    # took its page, output and site, and the order of the command line decided), else the first named
    preferred: dict[str, str] = {}
    reals = [os.path.realpath(path) for path, _, _ in candidates]
    for (path, _, _), real in zip(candidates, reals):
        if real not in preferred or (os.path.islink(preferred[real]) and not os.path.islink(path)):
            preferred[real] = path
    for (path, relative, site), real in zip(candidates, reals):
        if real in sources or preferred[real] != path:  # the same file named twice, or reached twice
            if preferred[real] != path and os.path.islink(path):
                reason = f"a link to {display(preferred[real])}, which is cleaned under its own name"
                skipped.append(Result(display(path), "skipped", f"{display(path)}: {reason}"))
            continue
        kind = config.input_format if config.input_format != "auto" else _kind_of_file(path)
        target = os.path.join(out_root, output_name(relative, kind, config.fmt))
        folder = os.path.realpath(os.path.dirname(target))
        if folder != out_root and not folder.startswith(os.path.join(out_root, "")):
            skipped.append(
                Result(display(path), "failed", f"{display(path)}: output would leave the output folder")
            )
            continue
        sources[real] = path
        # on Dask, inputs by absolute path: a worker of another machine has another working folder
        dask = config.engine == "dask"
        link = os.path.islink(path)
        tasks.append(
            Task(os.path.abspath(path), kind, target, path, link, site=site and os.path.abspath(site))
            if dask
            else Task(path, kind, target, "", link, site=site)
        )
    targets: dict[str, str] = {}
    clashes: list[str] = []  # every pair told at once (a folder of page.txt beside page.html has many)
    for task in tasks:
        resolved = resolve(task.target)
        if resolved in sources:
            raise UsageError(f"the output {display(task.target)} would overwrite an input file")
        if resolved in targets:
            clashes.append(
                f"{display(targets[resolved])} and {task.shown} would both be written to {display(task.target)}"
            )
            continue
        targets[resolved] = task.name or task.source
    if clashes:
        more = f" (and {len(clashes) - 1} more such pairs)" if len(clashes) > 1 else ""
        raise UsageError(
            f"{clashes[0]}{more}; clean them into different output folders (--glob picks one kind of file per "
            "run: --glob '*.html' into one folder, --glob '*.txt' into another), or name files of one name in "
            "a --files-from list, whose outputs mirror their paths"
        )
    for target, source in targets.items():  # an output where another output needs a folder (a.txt, a.txt/b.txt)
        folder = os.path.dirname(target)
        while folder.startswith(os.path.join(out_root, "")):
            if folder in targets:
                raise UsageError(
                    f"{display(targets[folder])} would be written to {display(folder)}, the folder of the output "
                    f"of {display(source)}; clean them into different output folders"
                )
            folder = os.path.dirname(folder)
    if config.errors is not None:
        errors = os.path.realpath(config.errors)
        if errors in sources:
            raise UsageError(f"the errors file {display(config.errors)} is an input file")
        if errors in targets:
            raise UsageError(f"the errors file {display(config.errors)} is also an output")
        if errors.startswith(os.path.join(out_root, "")) and any(
            target.startswith(os.path.join(errors, "")) for target in targets
        ):
            raise UsageError(f"the errors file {display(config.errors)} is also an output folder")
        if os.path.isdir(errors):
            raise UsageError(f"the errors file {display(config.errors)} is a folder")
        if out_root == errors or out_root.startswith(os.path.join(errors, "")):  # a folder the batch makes
            raise UsageError(f"the errors file {display(config.errors)} is the output folder or holds it")
    return Plan(tasks, skipped)


def mirrored(path: str) -> str:
    """A path of a ``--files-from`` list as its output mirrors it below the output folder: as it is written,
    without a leading ``./`` or ``/``; one that climbs out of the working folder (``..``) by its absolute
    path (``../b/page.txt`` from ``/data/a`` is written as ``data/b/page.txt``)."""
    normal = os.path.normpath(path)
    if normal == os.pardir or normal.startswith(os.pardir + os.sep):
        normal = os.path.abspath(path)
    return normal.lstrip(os.sep) or "."


def read_list(path: str) -> list[str]:
    """The paths of a ``--files-from`` list (``-``: standard input): one per line, or separated by NUL bytes
    when the list holds one (``find -print0``, for names with line breaks); empty entries and the ``\\r`` of
    Windows line ends left out. Names are the file system's bytes (``os.fsdecode``): a list is not text in
    any one encoding. Raises UsageError for a list that cannot be read."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        raise UsageError(f"--files-from {display(path)}: {(exc.strerror or str(exc)).lower()}") from None
    if b"\0" in data:
        entries = data.split(b"\0")
    else:
        entries = [line[:-1] if line.endswith(b"\r") else line for line in data.split(b"\n")]
    return [os.fsdecode(entry) for entry in entries if entry]


def _kind_of_file(path: str) -> str:
    """The kind of a file by its name, else by its first bytes (read only from a regular file: opening a
    FIFO to look would block)."""
    head = b""
    if os.path.isfile(path):
        try:
            with open(path, "rb", buffering=0) as handle:
                head = handle.read(SNIFF_BYTES)
        except OSError:
            pass
    if head[:2] == GZIP_MAGIC:  # by what the gzip data holds, as a file cleaned alone
        return sniff_kind(gunzip_head(head), path)
    return sniff_kind(head, path)


def _noted(path: str, status: str, reason: str) -> Result:
    return Result(display(path), status, f"{display(path)}: {reason}")


def _walk(
    root: str,
    patterns: tuple[str, ...],
    follow_links: bool,
    skipped: list[Result],
    fold_case: bool = False,
    avoid: str = "",
) -> Iterator[str]:
    """Files under ``root`` matching one of ``patterns``, sorted; with ``fold_case`` (the default patterns) in
    any case of their names (``A.TXT``, ``b.Html``: skipped unseen before). A folder that cannot be read
    (permissions, a path too long) is reported and the walk goes on. A followed link to the folder ``avoid``
    (the output), or to a folder around it, is a UsageError: the batch would read what it writes."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    linked: list[str] = []  # followed links to folders: walked after every real folder, so a folder that a link
    while stack or linked:  # also reaches is walked (and named) as itself, and the link is the one left out
        folder = stack.pop() if stack else linked.pop(0)
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in seen:
                reason = "folder already visited (a link to a folder walked, or a link loop)"
                skipped.append(Result(display(folder), "skipped", f"{display(folder)}: {reason}"))
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            skipped.append(Result(display(folder), "failed", f"{display(folder)}: {reason}"))
            continue
        subfolders: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
                is_link = entry.is_symlink()
            except OSError:
                is_dir, is_link = False, False
            name = entry.name.lower() if fold_case else entry.name
            if not is_dir and not any(fnmatch.fnmatch(name, p) for p in patterns):
                continue
            if entry.name.endswith(TEMP_SUFFIX):
                continue
            if is_link and not follow_links:
                skipped.append(
                    Result(
                        display(entry.path),
                        "skipped",
                        f"{display(entry.path)}: symbolic link (use --follow-links)",
                    )
                )
            elif is_dir:
                if is_link and avoid:
                    target = os.path.realpath(entry.path)
                    if avoid == target or avoid.startswith(os.path.join(target, "")):
                        raise UsageError(
                            f"the output folder lies inside the input, through the link {display(entry.path)}"
                        )
                (linked if is_link else subfolders).append(entry.path)
            else:
                yield entry.path
        stack.extend(reversed(subfolders))


def check_writable(outdir: Path, errors: Path | None, run_id: str) -> None:
    """Create the output folder and probe that it, and the errors file's folder, take a file: an unwritable
    destination is one error before the batch, not one per file after it; nothing is created when the errors
    file's folder is missing. Raises OSError."""
    folders = [outdir]
    if errors is not None and not _written_in_place(errors_target(errors)):
        folder = errors_target(errors).parent
        if not folder.is_dir() and os.path.realpath(folder) != os.path.realpath(outdir):
            if folder.exists():
                raise OSError(errno.ENOTDIR, "Not a directory", str(folder))
            raise OSError(errno.ENOENT, "No such file or directory", str(folder))
        folders.append(folder)
    outdir.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        probe = temp_path(folder / "probe", run_id)
        try:
            with open(probe, "wb") as handle:
                handle.write(b"probe")
            probe.unlink()
        except OSError as exc:  # named by the folder, not by the probe's own temporary name
            raise OSError(exc.errno, exc.strerror, str(folder)) from None


# ---------------------------------------------------------------------------------------------------------
# Site memory: a first pass over the batch counts which paragraphs recur across each site's pages


def file_site(source: str, site: str = "") -> str:
    """The site of a page file for site memory: ``site`` (``host_folder``) when given, else its folder, the
    real one (pages of one site are usually stored together; a link to the folder is the same folder)."""
    return "folder:" + _real_folder(os.path.abspath(site) if site else os.path.dirname(os.path.abspath(source)))


def folder_name(source: str, site: str = "") -> str:
    """The name of a page file's site folder, which the user's rules match as the page's site: the host it is
    named like (``host_folder``, without a port, as a url's host), else the name of its real folder; its bytes
    read as UTF-8, as the rules file is, whatever the locale (``börse.de`` decoded as Latin-9 or EUC-JP, or held
    as surrogates in an ASCII locale, matched no rule: another article, exit 0)."""
    if site:  # by its own name, else by that of the folder it leads to (a link, "."), which is the host's
        name = os.path.basename(site)
        if not _host_named(name):
            name = os.path.basename(_real_folder(os.path.abspath(site)))
        name = re.sub(r":\d+$", "", name)
    else:
        name = os.path.basename(_real_folder(os.path.dirname(os.path.abspath(source))))
    return os.fsencode(name).decode("utf-8", "replace")


# A folder named as a host is named: labels of letters, digits and hyphens, then a top-level domain that sites of
# this kind use (or an internationalised one), and a port where wget writes one ("example.org:8080"). Any
# "name.letters" was a host: a batch walked from "seiten.neu" made all its sites one, and "index.php" (wget's
# folder for path-info urls) was a site of its own. Also localhost and an IPv4 address, as a url's host can be
_HOST_NAME = (  # (compiled on first use, by re's cache: a one-page run needs none)
    r"(?:(?:[^\W_](?:[\w-]*[^\W_])?\.)+(?:de|at|ch|li|lu|eu|com|net|org|info|biz|io|co|tv|me|ag|gmbh|berlin|"
    r"hamburg|bayern|koeln|wien|swiss|news|online|finance|money|bank|capital|fund|invest|markets|trading|"
    r"exchange|business|media|press|blog|app|dev|gov|edu|uk|us|fr|it|nl|be|es|pl|cz|dk|se|no|fi|ie|pt|"
    r"xn--[a-z0-9-]+)\.?|localhost|\d{1,3}(?:\.\d{1,3}){3})(?::\d{1,5})?"
)


def host_folder(path: str, below: str, root: str = "") -> str:
    """The nearest folder holding a page file that is named like a host (``crawl/www.example.org``), by the name
    it is written with or the real name of the folder it leads to (a link ``current``, ``.``), from the page's
    own folder up through the folders of ``below`` (``walked_path``, ``named_host_folder``), else "". wget and
    site mirrors store a site as ``host/section/slug/index.html``, one page per folder: each folder its own
    site, no site had the pages site memory needs, and menus and pitches stayed in every article. Folders
    above those written are never the site: a project folder named ``kunde.de`` (or a Go workspace's
    ``src/github.com``) joined every site under it, and site memory took an article two of its sites carry
    for chrome (attack round 79)."""
    folder = os.path.dirname(path)
    walked = root.rstrip(os.sep) or root
    for _ in range(below.count(os.sep) + 1):
        if _host_named(os.path.basename(folder)) or _host_named(_led_to(folder, folder == walked)):
            return folder
        folder = os.path.dirname(folder)
    return ""


@functools.lru_cache(maxsize=1 << 16)
def _led_to(folder: str, walked: bool) -> str:
    """The real name of the folder that ``.``, a link or the ``walked`` folder however written leads to, else
    "": not a ``..`` above the walked folder (``../crawl`` walked from ``kunde.de/crawl`` made the project
    folder the site, round 80; ``..`` walked from a host folder's section is the host, round 81)."""
    if walked or os.path.basename(folder) in ("", ".") or os.path.islink(folder):
        return os.path.basename(_real_folder(folder or "."))
    return ""


def walked_path(root: str, path: str, prefix: int) -> str:
    """What ``host_folder`` climbs through for a file a walk of ``root`` found: the folders of the path as
    written when ``root`` is relative (``in/www.example.org/news``, as a list of its files would have it),
    else the file's path below ``root`` and ``root`` itself."""
    return path if not os.path.isabs(root) else path[prefix:]


def named_host_folder(path: str) -> str:
    """``host_folder`` of a page file named by a list or the command line, through the folders its path
    writes when it is relative (``example.org/news/a/p.txt``, as ``find example.org`` lists it); of an
    absolute path only its own folder, as a walk's folders above it are never the site."""
    return host_folder(path, "" if os.path.isabs(path) else path)


def _host_named(name: str) -> bool:
    """Whether a folder is named like a host, also where its name's letters are decomposed (macOS, and rsync
    from it, write "bo\u0308rse.de": its umlaut's mark was no letter of a host, and its rules missed it)."""
    if not name.isascii():
        from unicodedata import normalize

        name = normalize("NFC", name)
    return re.fullmatch(_HOST_NAME, name, re.IGNORECASE) is not None


@functools.lru_cache(maxsize=1 << 16)
def _real_folder(folder: str) -> str:
    """A folder's real path, once per folder (a batch asks for each of its files several times)."""
    return os.path.realpath(folder)


def with_site_memory(tasks: list[Task], config: RunConfig) -> RunConfig:
    """The configuration with the memory of every site that has at least ``SITE_MIN_PAGES`` pages in the
    batch (folders of page files; hosts of the ``url`` of JSON Lines records and of WARC responses), from a
    first pass over those inputs, run as the batch runs (in parallel, on Dask). Unreadable inputs are left to
    the second pass to report. Unchanged when site memory is off or no site can have enough pages."""
    if not config.site_memory:
        return config
    per_folder: dict[str, int] = {}
    for task in tasks:
        if task.kind in ("text", "html"):
            site = file_site(task.source, task.site)
            per_folder[site] = per_folder.get(site, 0) + 1
    wanted = [
        t
        for t in tasks
        if t.kind in ("jsonl", "warc") or per_folder.get(file_site(t.source, t.site), 0) >= SITE_MIN_PAGES
    ]
    if not wanted:
        return config
    records = [t for t in wanted if t.kind in ("jsonl", "warc")]
    counting = config
    if records:  # which hosts have enough pages: a broad crawl's one-page hosts are never counted
        seen: dict[str, set[int]] = {}
        for site, pages in run(records, config, host_pages_chunk):
            known = seen.setdefault(site, set())
            if len(known) < SITE_MIN_PAGES:
                known |= pages
        counting = config._replace(
            memory_hosts=frozenset(site for site, pages in seen.items() if len(pages) >= SITE_MIN_PAGES)
        )
        del seen
    memories: dict[str, SiteMemory] = {}
    # Counted in the order of the inputs' real paths, not as the workers answer: a memory over its cap, or a
    # page held by two files, then counts the same whatever the order of the command line, of the workers' or
    # how a path was written ("x", "./x", absolute as Dask has them). An input that answers early waits for
    # those before it (few: the workers take them in order), rather than every input's keys being held until
    # the end.
    wanted.sort(key=lambda task: os.path.realpath(task.source))
    position = {task.source: i for i, task in enumerate(wanted)}
    early: dict[int, list[tuple[str, frozenset[int] | SiteMemory]]] = {}
    following = 0
    over: set[str] = set()  # page files over their time: the second pass fails them at once

    def count(found: list[tuple[str, frozenset[int] | SiteMemory]]) -> None:
        for site, seen_keys in found:
            memory = memories.setdefault(site, SiteMemory())
            if isinstance(seen_keys, SiteMemory):
                memory.merge(seen_keys)
            else:
                memory.add_keys(seen_keys)

    answered: set[str] = set()
    for source, found in run(wanted, counting, remember_chunk):
        answered.add(source)
        if found is None:
            over.add(source)
        early[position[source]] = found or []
        while following in early:
            count(early.pop(following))
            following += 1
    for index in sorted(early):  # after an input that never answered (its worker died)
        count(early[index])
    kept = {site: memory.repeated() for site, memory in memories.items() if memory.pages >= SITE_MIN_PAGES}
    missed = len(set(position) - answered)  # a chunk whose worker died twice (or on Dask, KilledWorker)
    return config._replace(memories=kept, over_time=frozenset(over), memory_missed=missed)


def remember_chunk(
    tasks: list[Task], config: RunConfig
) -> list[tuple[str, list[tuple[str, frozenset[int] | SiteMemory]]]]:
    """A worker's unit of the first pass, one answer per input: a page file as its site and the keys of its
    paragraphs (``features.page_keys``: a few hundred bytes a page, counted by the main process, so that a
    page seen twice anywhere counts once); a JSON Lines or WARC file, which may hold millions of pages, as
    the memories of its hosts, counted here (a page seen twice in one file counts once, and so does a url
    crawled twice in it: its first copy, as a recrawl's article would otherwise recur on "two" pages). A page
    file over its time (``--timeout``) answers None: the second pass fails it at once; a record over its time
    is left out."""
    answers: list[tuple[str, list[tuple[str, frozenset[int] | SiteMemory]] | None]] = []
    for task in tasks:
        found: list[tuple[str, frozenset[int] | SiteMemory]] = []
        memories: dict[str, SiteMemory] = {}
        addresses: set[str] = set()
        over = False
        try:
            if task.kind not in ("jsonl", "warc"):  # (each record is timed on its own)
                start_page(config)
            for site, keys, address in _site_pages(task, config):
                if task.kind not in ("jsonl", "warc"):
                    found.append((site, keys))
                elif address not in addresses:  # (a record over its time is left out: the next has its own)
                    addresses.add(address)
                    memories.setdefault(site, SiteMemory()).add_keys(keys)
        except PageTimeout:
            over = task.kind not in ("jsonl", "warc")
        except Exception:  # reported by the second pass, which cleans what it can
            pass
        finally:
            stop_page(config)
        found.extend(sorted(memories.items()))
        answers.append((task.source, None if over else found))
    return answers  # type: ignore[return-value]


def host_pages_chunk(tasks: list[Task], config: RunConfig) -> list[tuple[str, set[int]]]:
    """The first step of the first pass over files of records: per file, each host with a checksum of each of
    its pages' text or HTML (at most ``SITE_MIN_PAGES`` of them: enough to tell), read without parsing a
    page. A few hundred bytes per host, where counting every paragraph of a broad crawl's one-page hosts held
    8 KB per record, without a bound."""
    found: list[tuple[str, set[int]]] = []
    for task in tasks:
        hosts: dict[str, set[int]] = {}
        try:  # (files of records: each record is timed on its own)
            for site, page, _ in _site_pages(task, config, checksums=True):
                pages = hosts.setdefault(site, set())
                if len(pages) < SITE_MIN_PAGES:
                    pages.add(page)
        except Exception:  # reported by the second pass, which cleans what it can
            pass
        finally:
            stop_page(config)
        found.extend(hosts.items())
    return found


def _site_pages(task: Task, config: RunConfig, checksums: bool = False) -> Iterator[tuple[str, Any, str]]:
    """The pages of one input with their sites and addresses (``page_address``), each page as the keys of its
    paragraphs (``page_keys``) or, with ``checksums``, as the CRC-32 of its text or HTML: a page file is one
    page of its folder (its path the address); records without a URL belong to no site. Of records, only
    those of ``config.memory_hosts`` (when given), their keys found by ``config.record_jobs`` workers."""
    name = task.shown
    with open_input(task.source, name, walked=True, link=task.link) as handle:
        if task.kind == "jsonl":
            stream = gunzip_stream(handle) if gzipped(handle) else handle
            yield from _record_pages(stream, config, checksums, task.skip)
            return
        if task.kind == "warc":
            yield from _warc_pages(handle, config, checksums, task.skip)
            return
        data = read_limited(handle, config.max_bytes, name)
    yield (
        file_site(task.source, task.site),
        page_keys(page_paragraphs(data, name, task.kind, config)[0]),
        task.source,
    )


def _record_pages(
    stream: BinaryIO, config: RunConfig, checksums: bool = False, skip: tuple[int, ...] = ()
) -> Iterator[tuple[str, Any, str]]:
    """The first pass's view of a JSON Lines file: the host, keys (or a checksum) of each record the
    second pass cleans; one over its time, or that fails, is left out, and the file goes on."""
    if checksums:  # a checksum is quicker found than sent to a worker
        config = config._replace(record_jobs=1)
    lines = (
        ((number, line, checksums), None)
        for number, line in record_lines(stream, config.max_bytes)
        if number not in skip and line and line.strip() and not isinstance(line, Unreadable)
    )
    for _, page in _in_order(_record_page, lines, config, again=True):  # (a dead worker's record counted here)
        if page is not None and not isinstance(page, BaseException):
            yield page


def _record_page(
    number: int, line: bytes | str, checksums: bool, config: RunConfig
) -> tuple[str, Any, str] | None:
    start_page(config, number)  # a record's time, as in the second pass (not the reading of the next)
    try:
        try:
            record = json.loads(_forced_line(line, config.encoding))
        except (ValueError, RecursionError):
            return None
        del line
        hosts = config.memory_hosts
        host = host_of(record.get("url")) if isinstance(record, dict) else None
        value = (
            record.get(config.html_field or config.text_field)
            if host and (hosts is None or f"host:{host}" in hosts)
            else None
        )
        if not isinstance(value, str) or not host:
            return None
        address = page_address(record["url"], host)
        if checksums:
            return f"host:{host}", zlib.crc32(value.encode("utf-8", "surrogatepass")), address
        if config.html_field:  # as the second pass reads it (``clean_records``), repaired or not
            try:
                return f"host:{host}", page_keys([b.text for b in html_blocks(repaired(value, config))]), address
            except ValueError:  # a page nested too deep: reported by the second pass
                return None
        return f"host:{host}", page_keys(iter_paragraphs(normalise_newlines(repaired(value, config)))), address
    finally:
        stop_page(config)


def _warc_pages(
    stream: BinaryIO, config: RunConfig, checksums: bool = False, skip: tuple[int, ...] = ()
) -> Iterator[tuple[str, Any, str]]:
    """The first pass's view of a WARC file: the host and keys (or, with ``checksums``, a checksum) of every
    response that ``clean_warc`` writes, and of no other: a record cut short, one whose Content-Length is
    wrong, one whose body ends inside its gzip, or one that cannot be decoded is a bad record there, and
    counted here it would make memory of a page that is never written (or end the count of the file)."""
    from warcio.exceptions import ArchiveLoadFailed

    if checksums:  # a checksum is quicker found than sent to a worker
        config = config._replace(record_jobs=1)
    hosts = config.memory_hosts
    records = archive_iterator()(plain_warc(stream), arc2warc=True)

    def items() -> Iterator[tuple[tuple | None, list | None]]:
        """Each response to count as (what its worker gets; [whether its Content-Length proved wrong]), told
        once the next record is read; a None tag where the second pass stops (damaged data)."""
        wrong_lengths = number = 0
        last: list | None = None

        def seal() -> None:
            nonlocal wrong_lengths, last
            if last is not None and records.err_count > wrong_lengths:
                last[0] = True
            wrong_lengths, last = records.err_count, None

        try:
            for record in records:
                raise_swallowed_stop()
                seal()
                if record.rec_type is None or record.length is None:  # the second pass stops here: damaged data
                    yield None, None
                    return
                number += 1  # as the second pass counts them
                if number in skip:
                    continue
                found = _warc_payload(record, config, hosts)
                if found is not None:
                    last = [False]
                    yield (number, *found, checksums), last
        except (ArchiveLoadFailed, zlib.error, *_WARCIO_ERRORS):
            pass
        except EOFError:  # gzip data that ends inside its stream: the record before the cut is whole
            pass
        seal()

    held: tuple[list, tuple[str, Any, str]] | None = None  # until the next record tells if it ended as it said
    for tag, page in _in_order(_warc_page, items(), config, again=True):  # (a dead worker's record counted here)
        if held is not None and not held[0][0]:
            yield held[1]
        held = None
        if tag is None:
            return
        if page is not None and not isinstance(page, BaseException):
            held = tag, page
    if held is not None and not held[0][0]:
        yield held[1]


def _warc_payload(record: Any, config: RunConfig, hosts: frozenset[str] | None) -> tuple | None:
    """A WARC record's host, address (``page_address``), payload and Content-Type for the first pass; None for
    a record the second pass does not write."""
    content_type = (record.http_headers.get_header("Content-Type") or "") if record.http_headers else ""
    url = record.rec_headers.get_header("WARC-Target-URI")
    host = host_of(url)
    if not _may_be_html(record, content_type) or not host:
        return None
    if hosts is not None and f"host:{host}" not in hosts:
        return None
    try:
        content = _content_stream(record)
        payload = read_body(content, config.max_bytes, "")
        if _body_problem(record, content, cut_by_crawler(record) or chunks_cut(content)):
            return None  # a bad record of the second pass
    except (InputError, NotTextError, ValueError, RecursionError):  # a bad record, reported by the second pass
        return None
    if not _html_body(content_type, payload):
        return None
    return host, page_address(url, host), payload, content_type


def _warc_page(
    number: int, host: str, address: str, payload: bytes, content_type: str, checksums: bool, config: RunConfig
) -> tuple[str, Any, str] | None:
    """One WARC response's host and keys (or checksum) for the first pass, timed, as there, once its content
    has been read."""
    if checksums:
        return f"host:{host}", zlib.crc32(payload), address
    start_page(config, number)
    try:
        text = repaired(_decode_http(payload, _http_charset(content_type), config.encoding), config)
        del payload
        return f"host:{host}", page_keys([b.text for b in html_blocks(text)]), address
    except (InputError, NotTextError, ValueError, RecursionError):  # a bad record, reported by the second pass
        return None
    finally:
        stop_page(config)


# ---------------------------------------------------------------------------------------------------------
# Running


def run(
    tasks: list[Task], config: RunConfig, work: Callable[..., list] = clean_chunk
) -> Generator[Any, None, None]:
    """Clean every task, yielding results as they finish (in any order when parallel); ``work`` is what is
    done to each chunk of tasks (the first pass of site memory does its own)."""
    if _one_crawl(tasks, config):  # its records shared out among the workers
        load_model(config.model)
        yield from _run_here(tasks, config._replace(record_jobs=config.jobs), work)
        return
    chunks = chunked(tasks, config.jobs)
    here = config.jobs == 1 or len(chunks) <= 1
    records = config.jobs > 1 and any(task.kind in ("jsonl", "warc") for task in tasks)  # a crawl: hours of work
    if here and config.timeout and (records or not _main_thread()):
        here = False  # in a worker, which is ended when its page does not stop, and which has alarms
    if config.engine == "dask":
        yield from _run_dask(chunks, config, work)
    elif here:
        load_model(config.model)  # a broken model fails once, before any file
        yield from _run_here(tasks, config, work)
    else:
        notes: list[str] = []  # how many workers could be started, when fewer than asked for
        for result in _run_forked(chunks, config, work, notes=notes):
            if notes and isinstance(result, Result):
                result.notes[:0], notes[:] = notes, []
            yield result


def _one_crawl(tasks: list[Task], config: RunConfig) -> bool:
    """Whether the batch is one file of records for several local workers: this process reads it, and the
    workers clean its records (``detector.workers``; shared out by file, one worker had all the work)."""
    return (
        len(tasks) == 1
        and tasks[0].kind in ("jsonl", "warc")
        and config.jobs > 1
        and config.engine == "local"
        and hasattr(os, "fork")
        and _main_thread()  # (where the first record's alarm can be set)
    )


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _run_here(tasks: list[Task], config: RunConfig, work: Callable[..., list]) -> Iterator:
    """The files one by one in this process, so that an interrupted run has the result of every file it
    finished: Ctrl-C or SIGTERM that comes once a file's output is renamed into place is held until its result
    is handed on (it came between the two now and then, and the summary missed a file that was written)."""
    hold = hasattr(signal, "pthread_sigmask")
    _HOLD_SIGNALS[0] = hold
    alarm = arm_page_alarm(config)  # ``--timeout``: a page that loops in Python stops (one stuck in C does not)
    try:
        for task in tasks:
            yield from work([task], config)
            if hold:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    finally:
        disarm_page_alarm(alarm)
        _HOLD_SIGNALS[0] = False
        if hold:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))


_HOLD_SIGNALS = [False]  # set by ``_run_here``: ``write_atomic`` blocks Ctrl-C and SIGTERM before its rename


def chunked(tasks: list[Task], jobs: int) -> list[list[Task]]:
    """Tasks in chunks: up to 32 files each, so the results travel in few messages, but at least four per
    worker when there are enough files, so a small batch still uses every worker."""
    size = max(1, min(32, -(-len(tasks) // (max(1, jobs) * 4))))
    return [tasks[i : i + size] for i in range(0, len(tasks), size)]


def worker_start() -> None:
    """Worker processes leave Ctrl-C and SIGHUP to the main process (which ends them), die quietly on SIGTERM,
    and die with the main process if it is killed (Linux), instead of printing tracebacks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal: the main process ends them
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, _page_overdue)  # ``start_page`` sets it when a time limit is asked for
    _PAGE_CLOCK.update(alarm=True, running=False)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if hasattr(signal, "pthread_sigmask"):  # blocked while the pool forked it (``_new_pool``): now ignored
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)


_STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _quiet_pool_threads() -> None:
    """Leave out the traceback of a pool's own thread that could not fork a worker in place of one that died
    (forks refused: ``ulimit -u``, no memory): the thread ends, and the batch, which watches its workers, sees
    the dead one and goes on without it (it printed 25 lines of ``Exception in thread … BlockingIOError``)."""
    import threading

    previous = threading.excepthook
    if getattr(previous, "quiets_pools", False):
        return

    def hook(args: Any) -> None:
        if (
            issubclass(args.exc_type, OSError)
            and args.thread is not None
            and "_handle_workers" in args.thread.name
        ):
            return
        previous(args)

    hook.quiets_pools = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def _new_pool(context: Any, workers: int) -> Any:
    """A pool whose workers start with Ctrl-C, SIGTERM and SIGHUP blocked until ``worker_start`` has set them:
    a stop sent to the process group while a worker was being forked reached it before, and it printed a
    traceback (or its pool's set-up in this process was cut, "release unlocked lock"). The pool's own thread,
    which forks the workers that replace dead ones, keeps the mask it is started with: they start so too."""
    _quiet_pool_threads()
    if not hasattr(signal, "pthread_sigmask"):
        return context.Pool(workers, initializer=worker_start)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        return context.Pool(workers, initializer=worker_start)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a stop that came meanwhile is delivered here


STOP_WAIT = 3.0  # seconds an interrupted batch waits for each worker's last answer
LAST_WORD = 0.2  # seconds it then waits for the answer of an output renamed as it stopped waiting
_INHERITED: dict[str, Any] = {}  # what forked workers inherit instead of receiving it with every chunk


def _inherited_work(index: int) -> tuple[int, int, list]:
    """A chunk's results, file by file until the main process asks the workers to stop (it was interrupted,
    or a worker died): with the chunk's number and how many of its files were done. The chunk is marked as
    this worker's first, so that the chunk of a worker that dies is known."""
    work, config, stop = _INHERITED["work"], _INHERITED["config"], _INHERITED["stop"]
    _INHERITED["taken"][index] = os.getpid()
    started, at = _INHERITED["started"], _INHERITED["at"]
    _PAGE_CLOCK.update(started=started, slot=index, records=_INHERITED["records"])
    results: list = []
    done = 0
    for task in _INHERITED["chunks"][index]:
        if stop[0]:
            break
        at[index] = done  # (``start_page`` notes when its page, or each record, begins)
        _INHERITED["records"][index] = 0
        results += work([task], config)
        done += 1
    started[index] = 0.0
    return index, done, results


def _descriptor_room(workers: int) -> int:
    """How many of ``workers`` the open-files limit (``ulimit -n``) can hold: a pool that runs out of
    descriptors while it starts fails in its pipes, not at once. A pool takes 7 descriptors and 2 per worker;
    each worker then reads one file and writes one."""
    try:
        import resource
    except ImportError:  # no descriptor left to load its library with (ulimit -n 5)
        return 0
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        opened = len(os.listdir("/proc/self/fd")) - 1  # less the one listing them
    except OSError as exc:  # not Linux: the pool finds out itself
        return 0 if exc.errno == errno.EMFILE else workers
    if soft == resource.RLIM_INFINITY:
        return workers
    return max(0, min(workers, (soft - opened - 7 - 2) // 2))


def _started_pool(context: Any, wanted: int, room: int, notes: list[str]) -> Any:
    """A pool of as many of ``wanted`` workers as the machine lets start, with a note in ``notes`` when that
    is fewer; None when not even one can be (the files are then cleaned in this process). Fewer descriptors
    than the pool needs (``ulimit -n``) or a fork refused (``ulimit -u``, no memory) failed the whole batch
    ("unexpected failure: BlockingIOError") where ``--jobs 1`` cleaned it. A pool whose workers cannot all
    be started ends those it started (they start with stops blocked until they can die of them:
    ``_new_pool``), and one of half the size is tried. ``room``: the workers the open-files limit can hold
    (``_descriptor_room``)."""
    workers = room
    reason = "too many open files" if workers < wanted else ""
    while workers:
        try:
            pool = _new_pool(context, workers)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            workers //= 2
            continue
        if workers < wanted:
            notes.append(_fewer_workers(workers, wanted, reason))
        return pool
    notes.append(_fewer_workers(0, wanted, reason))
    return None


def _fewer_workers(started: int, wanted: int, reason: str) -> str:
    """The note of a batch that could start fewer workers than it was asked for."""
    if started:
        return f"{started} of {wanted} worker processes could be started ({reason}): the batch goes on"
    return f"no worker process could be started ({reason}): the files are cleaned in this process"


def _run_forked(
    chunks: list[list[Task]],
    config: RunConfig,
    work: Callable[..., list],
    retry_lost: bool = True,
    notes: list[str] | None = None,
) -> Iterator:
    """Worker processes forked from this one inherit the loaded model and the configuration with its site
    memories (no start-up per worker, nothing large sent with each chunk) and stream their results back as
    each chunk finishes, in any order.

    A worker that dies (the kernel's out-of-memory killer, ``kill -9``) would leave its chunk unanswered
    and the batch waiting for ever: the workers are watched, and when one is gone the others stop after
    their file, the pool is abandoned, the files of the dead worker's chunk fail (``lost``; not retried, as
    one of them may kill a worker again) and the rest go on in a new pool. The first pass of site memory
    takes the lost files once more in the new pool (``retry_lost``): it only counts, and a file left out
    made the memory smaller without a word (Dask retries a lost task too). ``notes`` gets a note when fewer
    workers than asked for could be started (``_started_pool``)."""
    import gc
    import multiprocessing

    load_model(config.model)
    n = len(chunks)
    workers = min(config.jobs, n)  # no idle worker: each costs a process and its memory
    room = _descriptor_room(workers)
    if room == 0:  # before the shared arrays below, which hold a descriptor (at ulimit -n 5, the last one)
        if notes is not None:
            notes.append(_fewer_workers(0, workers, "too many open files"))
        yield from _run_here([task for chunk in chunks for task in chunk], config, work)
        return
    context = multiprocessing.get_context("fork")
    # a byte in shared memory, not an Event: a worker killed (SIGTERM to the process group) while it read an
    # Event held its lock for ever, and the stop of an interrupted batch waited for it for ever
    stop = context.Array("b", 2, lock=False)  # [0]: stop after the file; [1]: no more outputs (write_atomic)
    taken = context.Array("i", n, lock=False)  # per chunk: the process id of the worker it went to
    started = context.Array("d", n, lock=False)  # per chunk: when its page began (0: not at work)
    at = context.Array("i", n, lock=False)  # per chunk: the file its worker cleans
    records = context.Array("i", n, lock=False)  # per chunk: the record of that file (0: a page file)
    clock = (started, taken, at, records)
    _INHERITED.update(work=work, config=config, stop=stop, chunks=chunks, taken=taken, started=started, at=at)
    _INHERITED["records"] = records
    gc.freeze()  # the workers' garbage collector leaves the inherited objects (and their pages) alone
    began = time.time()  # an output newer than this was written by this run
    pool = _started_pool(context, workers, room, [] if notes is None else notes)
    if pool is None:
        _INHERITED.clear()
        gc.unfreeze()
        yield from _run_here([task for chunk in chunks for task in chunk], config, work)
        return
    pending = set(range(n))
    rest: list[Task] = []  # after a worker died: the files to clean in a new pool
    lost: list[Task] = []  # the files of the chunks of workers that died
    died = False
    handing: list = []  # what is left of the answer being handed on, when a stop comes while one is taken
    caught: list = []  # the answer a stop came with (``_next_answer``)

    def hand_on(results: list) -> Iterator:
        """An answer's results one by one: a stop (Ctrl-C) thrown in while the caller takes one leaves the rest
        here, to be handed on with the last answers (the summary missed up to a chunk of written files)."""
        handing[:] = results
        while handing:
            yield handing.pop(0)

    def settle(over: dict[int, tuple[int, int]]) -> Iterator:
        """The chunks whose worker was ended over a page's time: that page fails (a record of it: the file is
        cleaned again without that record), the files before it are cleaned again (their answers went with the
        worker), those after it in a new pool."""
        for index, (file, record) in sorted(over.items()):
            pending.discard(index)
            chunk = chunks[index]
            task = chunk[file]
            lost.append(task)
            rest.extend(t._replace(redo_after=began) for t in chunk[:file])
            rest.extend(chunk[file + 1 :])
            if (
                record
                and task.kind in ("jsonl", "warc")
                and record not in task.skip
                and len(task.skip) < MAX_SKIPS
            ):
                rest.append(task._replace(skip=(*task.skip, record), redo_after=0.0))
            else:
                yield from _over_time(task, work, config)

    try:
        finished = pool.imap_unordered(_inherited_work, range(n))
        known = _worker_ids(pool)
        watched = time.monotonic()
        try:
            while pending:
                try:
                    index, done, results = _next_answer(finished, WATCH_EVERY, caught)
                except multiprocessing.TimeoutError:
                    pass
                else:
                    pending.discard(index)
                    yield from hand_on(results)
                    if not pending or time.monotonic() - watched < WATCH_EVERY:  # a look at least this often
                        continue
                watched = time.monotonic()
                over = _end_overdue(pending, config, *clock)
                alive = _worker_ids(pool)
                dead = known - alive
                known |= alive
                if not dead and not over:
                    continue
                died = True  # the files of the dead workers' chunks, then a new pool for what is left
                yield from settle(over)
                for index in sorted(i for i in pending if taken[i] in dead):
                    pending.discard(index)
                    if work is not clean_chunk and retry_lost:
                        rest += chunks[index]
                        continue
                    lost += chunks[index]
                    for task in chunks[index]:
                        yield from _lost(task, work)
                stop[0] = 1  # the others stop after their file; then a new pool takes what is left
                waited = time.monotonic()
                while pending and time.monotonic() - waited < DEATH_WAIT:  # each answer waited for so long
                    try:
                        index, done, results = _next_answer(finished, WATCH_EVERY, caught)
                    except multiprocessing.TimeoutError:
                        yield from settle(_end_overdue(pending, config, *clock))  # stuck as well
                        continue
                    waited = time.monotonic()
                    pending.discard(index)
                    rest += chunks[index][done:]
                    yield from hand_on(results)
                rest += [t._replace(redo_after=began) for i in sorted(pending) for t in chunks[i]]
                pending.clear()
                break
        except BaseException as exc:
            if isinstance(exc, (GeneratorExit, Exception)):  # not an interruption
                raise
            # Interrupted (Ctrl-C, SIGTERM): the workers stop after the file each is cleaning, and what they
            # finished is still told (the summary, the errors file) before the interruption goes on. A worker
            # the signal killed too (SIGTERM to the process group) never answers: each answer is waited for a
            # few seconds at most.
            stop[0] = 1
            held = _ignore_repeats()
            try:
                yield from hand_on(list(handing))
                for index, _, results in caught:
                    pending.discard(index)
                    yield from hand_on(results)
                for _, _, results in _last_answers(finished, pending, STOP_WAIT):
                    yield from hand_on(results)
                # the workers still at a file write no output from now on; one renamed just before is told by
                # its answer, which follows at once (the summary counted no file a worker finished after the
                # wait, before it was killed)
                stop[1] = 1
                for _, _, results in _last_answers(finished, pending, LAST_WORD):
                    yield from hand_on(results)
            finally:
                for number, handler in held:
                    signal.signal(number, handler)
            raise
    except BaseException:
        abandon_pool(pool)
        raise
    else:
        if died:  # the pool's own teardown could wait for ever for a lock the dead worker held
            abandon_pool(pool)
            from pathlib import Path

            for task in lost + rest:  # a worker killed in the middle of a file left its temporary file
                if task.target:
                    temp_path(Path(task.target), config.run_id).unlink(missing_ok=True)
        else:
            _end_pool(pool, known)
    finally:
        _INHERITED.clear()
    if rest:
        yield from _run_forked(chunked(rest, config.jobs), config, work, retry_lost=False, notes=notes)


WATCH_EVERY = 1.0  # seconds between looks at the workers (dead? stuck in a page?)


def _end_overdue(
    pending: set[int], config: RunConfig, started: Any, taken: Sequence[int], at: Sequence[int], records: Any
) -> dict[int, tuple[int, int]]:
    """Kill the workers whose page began more than ``--timeout`` and ``HARD_GRACE`` seconds ago (its alarm did
    not stop it: stuck outside Python, or the worker stopped); returns each such chunk with the file and the
    record it was at."""
    if not config.timeout:
        return {}
    now = time.monotonic()
    ended = {}
    for index in pending:
        began = started[index]
        if began and now - began > config.timeout + HARD_GRACE and taken[index]:
            ended[index] = (at[index], records[index])
            started[index] = 0.0
            try:  # noqa: SIM105 - contextlib is not imported for this
                os.kill(taken[index], signal.SIGKILL)
            except ProcessLookupError:
                pass
    return ended


MAX_SKIPS = 10  # records of one file whose workers were ended, before the file fails as a whole


def _over_time(task: Task, work: Callable[..., list], config: RunConfig) -> list:
    """What becomes of a page whose worker was ended over its time: it fails; site memory's first pass answers
    None for it (``remember_chunk``), so that the second fails it at once."""
    if work is clean_chunk:
        return [Result(task.shown, "failed", f"{task.shown}: {over_time(config, ended=True)}")]
    if work is remember_chunk and task.kind not in ("jsonl", "warc"):
        return [(task.source, None)]
    return []


DEATH_WAIT = 60.0  # seconds the batch waits for each other worker's file after one died


def _ignore_repeats() -> list[tuple[int, Any]]:
    """Ignore Ctrl-C, SIGTERM and SIGHUP while an interrupted batch waits for its workers' last answers (a
    few seconds at most), and return the handlers to restore: the same signal again (``timeout`` passes on
    the one it gets, a second Ctrl-C) ended the wait, and files the workers had finished were written but not
    counted. Only the main thread can set handlers; elsewhere nothing changes."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return []
    numbers = [signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    return [(number, signal.signal(number, signal.SIG_IGN)) for number in numbers]


def _next_answer(finished: Any, wait: float, box: list) -> tuple[int, int, list]:
    """The next answer of the pool (``multiprocessing.TimeoutError`` after ``wait`` seconds), with Ctrl-C,
    SIGTERM and SIGHUP held until the pool's iterator has let go of its lock: a stop raised inside it left the
    lock taken, and the next wait for an answer (the last answers of an interrupted batch) hung for ever. The
    stop is raised as this returns, a second at most later; the answer it came with is then in ``box``."""
    box.clear()
    if not hasattr(signal, "pthread_sigmask"):
        return finished.next(timeout=wait)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        box.append(finished.next(timeout=wait))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    return box.pop()


def _last_answers(finished: Any, pending: set[int], wait: float) -> Iterator[tuple[int, int, list]]:
    """The answers still to come once the workers were asked to stop, each waited for ``wait`` seconds at
    most (a worker killed too never answers)."""
    import multiprocessing

    while pending:
        try:
            index, done, results = _next_answer(finished, wait, [])
        except multiprocessing.TimeoutError:
            return
        pending.discard(index)
        yield index, done, results


def _end_pool(pool: Any, known: set[int]) -> None:
    """End a pool whose work is done. A worker killed while it waited for a task, after the last one was
    taken, holds the lock of the task queue for ever, and no answer waited for it: the pool's own teardown
    then hung the batch after its last file. So that teardown gets a few seconds, and the pool is abandoned
    where a worker is known dead or the teardown does not end."""
    import threading

    if not (known - _worker_ids(pool)) and all(process.is_alive() for process in pool._pool):
        ending = threading.Thread(target=pool.terminate, daemon=True, name="pool-teardown")
        ending.start()
        ending.join(TEARDOWN_WAIT)
        if not ending.is_alive():
            return
    abandon_pool(pool)


TEARDOWN_WAIT = 5.0  # seconds a finished pool's own teardown may take (a fraction of one, as a rule)


def _worker_ids(pool: Any) -> set[int]:
    """The process ids of a pool's workers now (it replaces a dead one with a new process)."""
    return {process.pid for process in pool._pool}


def _lost(task: Task, work: Callable[..., list], worker: str = "worker process") -> list:
    """What becomes of a file whose worker died: it fails (its output, if any, is whole: outputs are written
    atomically); for the first pass of site memory its pages are not counted."""
    return _not_cleaned(task, work, f"the {worker} died (out of memory? killed?)")


def _not_cleaned(task: Task, work: Callable[..., list], why: str) -> list:
    """A file of a batch that ended before it was cleaned, as a failure the summary and ``--errors`` count."""
    if work is not clean_chunk:
        return []
    return [Result(task.shown, "failed", f"{task.shown}: not cleaned: {why}; rerun with --skip-existing")]


def abandon_pool(pool: Any) -> None:
    """End a pool whose workers may have been killed by a signal: kill them all and leave out the pool's own
    teardown, which waits for a lock of its task queue that a worker killed while waiting for a task holds
    for ever (a SIGTERM to the process group hung the batch)."""
    from multiprocessing.pool import TERMINATE

    pool._worker_handler._state = TERMINATE  # no new workers in the place of the killed ones
    for process in pool._pool:  # at once: a worker left to run while the handler ends could finish a file
        process.kill()
    pool._worker_handler.join(1.0)
    for process in pool._pool:  # and one the handler started in the meantime
        process.kill()
    for process in pool._pool:
        process.join(1.0)
    pool._terminate.cancel()


def _run_dask(chunks: list[list[Task]], config: RunConfig, work: Callable[..., list]) -> Iterator:
    """The chunks on a Dask cluster: a scheduler that does not answer within ``dask_timeout`` seconds, or a
    cluster left without workers for that long, ends the batch with an error instead of a silent wait."""
    from asyncio import TimeoutError as AsyncTimeout
    from concurrent.futures import CancelledError
    from concurrent.futures import TimeoutError as FutureTimeout

    # Python 3.10 has three TimeoutErrors (3.11 made them one): Dask raises asyncio's or concurrent.futures'
    timeouts = (TimeoutError, AsyncTimeout, FutureTimeout)
    try:
        from dask.distributed import Client, LocalCluster, wait
    except ImportError:
        raise UsageError(f"--engine dask needs the dask extra: {extra_hint('dask')}") from None

    import logging

    load_model(config.model)  # a broken model fails once, before any work is sent (one log block per chunk)
    # Dask's logs stay quiet: a lost scheduler printed 35 lines of the client's tracebacks before our line (Dask
    # gives some of its loggers levels of their own, distributed.client among them)
    for name in [*logging.root.manager.loggerDict, "distributed"]:
        if name.split(".")[0] == "distributed":
            logging.getLogger(name).setLevel(logging.CRITICAL)
    cluster = None
    if not config.scheduler:
        # Our cluster's logs, here and in its worker processes, stay quiet: a worker that could not start
        # printed 150 lines of tracebacks, an interrupted batch the workers' warnings; what goes wrong is said
        # in one line of ours instead
        try:
            cluster = LocalCluster(
                n_workers=min(config.jobs, len(chunks)),
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.CRITICAL,
            )
        except Exception as exc:
            raise DaskError(f"cannot start a local Dask cluster: {exc}") from None
    try:
        client = _connect(Client, config.scheduler or cluster, config.dask_timeout)
    except (OSError, MemoryError, ValueError, TypeError, *timeouts) as exc:
        if cluster is not None:
            cluster.close()
        where = f"Dask scheduler {config.scheduler}" if config.scheduler else "local Dask cluster"
        if isinstance(exc, (MemoryError, ValueError)):  # a length of exbibytes: another service's greeting
            raise DaskError(f"cannot reach the {where}: what answers there does not speak Dask") from None
        if isinstance(exc, TypeError):  # tls:// without Dask's TLS settings, ucx:// without ucx-py
            needs = {"tls": "Dask's TLS settings (distributed.comm.tls in its configuration)", "ucx": "ucx-py"}
            protocol = str(config.scheduler).partition("://")[0]
            raise DaskError(f"cannot reach the {where}: {protocol} needs {needs.get(protocol, exc)}") from None
        raise DaskError(f"cannot reach the {where}: {exc}") from None
    pending: set[Any] = set()
    try:
        # The configuration (with the site memories) goes to the cluster once, as a task's result, not per
        # chunk; unlike scattered data, Dask computes it again when the worker that held it dies.
        shared = client.submit(_same, config, pure=False) if config.memories else config
        futures = client.map(work, chunks, config=shared, pure=False)
        chunk_of = dict(zip(futures, chunks))
        pending = set(futures)
        idle_since: float | None = None
        ended = ""  # why the cluster cannot go on: the files of the chunks not done then fail, one by one
        while pending and not ended:
            try:
                done, pending = wait(pending, timeout=2, return_when="FIRST_COMPLETED")
            except timeouts:
                done = set()
            except (OSError, CancelledError) as exc:  # the scheduler went away, and its futures with it
                done, ended = set(), f"lost the Dask scheduler ({type(exc).__name__})"
            for future in done:
                if ended:
                    pending.add(future)
                    continue
                try:
                    answers = future.result()
                except (OSError, *timeouts, CancelledError) as exc:
                    pending.add(future)
                    ended = f"lost the Dask scheduler ({type(exc).__name__})"
                    continue
                except Exception as exc:  # a worker that died again and again (KilledWorker), or the task failed
                    if type(exc).__name__ == "KilledWorker":
                        answers = [r for task in chunk_of[future] for r in _lost(task, work, "Dask worker")]
                    else:  # on the worker (a cluster of another version, a file name its locale cannot hold):
                        # its files fail, and the batch goes on to its summary and errors file (it ended there)
                        said = (str(exc).splitlines() or [""])[0][:200]
                        why = f"its Dask task failed ({type(exc).__name__}: {said})"
                        answers = [r for task in chunk_of[future] for r in _not_cleaned(task, work, why)]
                yield from answers
            if done or ended:
                idle_since = None
                continue
            if client.scheduler_info().get("workers"):
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > config.dask_timeout:
                ended = f"the Dask cluster has had no worker for {config.dask_timeout:.0f} s"
        if ended:
            for future in futures:  # in the order of the inputs
                if future in pending:
                    yield from (r for task in chunk_of[future] for r in _not_cleaned(task, work, ended))
            raise DaskError(ended)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # interrupted: no queued chunk starts, and Dask's own logs stay quiet
            import logging

            logging.getLogger("distributed").setLevel(logging.CRITICAL)
            client.cancel(list(pending))
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _same(value: Any) -> Any:
    """The value itself, as a Dask task: its result is data Dask can compute again (see ``_run_dask``)."""
    return value


def _connect(client_class: Any, address: Any, timeout: float) -> Any:
    """A Dask client, or TimeoutError after ``timeout`` seconds: a port that accepts and never answers
    makes the client wait for ever, whatever its own timeout says, so it connects in a daemon thread."""
    import threading

    box: list[Any] = []

    def connect() -> None:
        try:
            box.append(client_class(address, timeout=f"{timeout}s"))
        except BaseException as exc:  # handed to the caller
            box.append(exc)

    thread = threading.Thread(target=connect, daemon=True, name="dask-connect")
    thread.start()
    thread.join(timeout + 1)
    if not box:
        raise TimeoutError(f"no answer within {timeout:.0f} s")
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


class DaskError(Exception):
    """The Dask cluster cannot run the batch (unreachable scheduler, no workers)."""


def remove_temp_files(outdir: Path, run_id: str) -> None:
    """Delete the temporary files of this run that a stopped worker left behind."""
    if outdir.is_dir():
        for path in outdir.rglob(f".{run_id}-*{TEMP_SUFFIX}"):
            path.unlink(missing_ok=True)


def remove_stale_temp_files(outdir: Path) -> int:
    """Delete temporary files that runs on this host (and PID namespace: ``_host``) left when they were killed
    (their process is gone); the files of a run still going, here, in another container or on another host,
    stay. Returns how many were removed."""
    removed = 0
    if not outdir.is_dir():
        return removed
    for path in outdir.rglob(f".{_host()}-*{TEMP_SUFFIX}"):
        try:
            pid = int(path.name.split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
            removed += 1
        except (ValueError, IndexError, PermissionError):
            continue
    return removed


# ---------------------------------------------------------------------------------------------------------
# Reporting


class Progress:
    """A one-line progress display on stderr when it is a terminal; silent otherwise. The rate and the time
    left are shown once there is enough to estimate them from (two seconds, or a tenth of the files)."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        stream = stream or sys.stderr  # read now: the CLI replaces a closed stderr when it starts
        self.total, self.stream, self.done, self.start = total, stream, 0, time.monotonic()
        self.enabled = stream.isatty() if enabled is None else enabled
        self._last = 0.0
        self._shown = 0  # the length of the progress line on the screen
        self._dumb = os.environ.get("TERM") == "dumb"  # no escape sequences (Emacs' shell showed them raw)

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and self.done < self.total):
            return
        self._last = now
        elapsed = now - self.start
        line = f"\r{self.done}/{self.total} files"
        if elapsed >= 2 or self.done * 10 >= self.total:
            rate = self.done / max(elapsed, 1e-9)
            # a crawl file a minute was "0 files/s"
            shown = (
                f"{rate:,.0f} files/s"
                if rate >= 10
                else f"{rate:.1f} files/s"
                if rate >= 0.1
                else f"{rate * 60:.2g} files/min"
            )
            line += f"  {shown}  ETA {(self.total - self.done) / rate if rate else 0:,.0f} s"
        # cut to the terminal's width: a wrapped line left a row on the screen at every update (a narrow pane)
        line = line[: max(self._columns() - 3, 10)]
        self.stream.write(line + "  ")
        self.stream.flush()
        self._shown = len(line) + 1

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (OSError, ValueError, AttributeError):
            return 80

    def line(self, text: str) -> None:
        """Write a message line, clearing the progress line first when there is one."""
        clear = ("\r" + " " * self._shown + "\r" if self._dumb else "\r\x1b[K") if self.enabled else ""
        self.stream.write(clear + text + "\n")

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def skipped_text(count: int) -> str:
    """``3 records skipped (not HTML responses)``: a WARC's records that are not pages, in the summary and in a
    run to standard output alike."""
    what = "not an HTML response" if count == 1 else "not HTML responses"
    return f"{_plural(count, 'record')} skipped ({what})"


def _plural(count: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``: a count with its word."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def summary(results: list[Result], seconds: float, interrupted: bool = False) -> str:
    """The closing line of a batch: its files cleaned, failed, skipped and (``--drop-pages``) dropped add up
    to the files it was given."""
    count = {s: sum(r.status == s for r in results) for s in ("cleaned", "failed", "skipped", "dropped")}
    found = {label: sum(r.labels.get(label, 0) for r in results) for label in LABELS}
    records = sum(len(r.record_errors) for r in results)
    skipped_records = sum(r.skipped_records for r in results)
    extra = f", {_plural(records, 'bad record')}" if records else ""
    if skipped_records:  # revisits, resources, non-HTML responses
        extra += f", {skipped_text(skipped_records)}"
    dropped: dict[str, int] = {}
    for r in results:
        for flag, number in r.dropped.items():
            dropped[flag] = dropped.get(flag, 0) + number
    if dropped:
        details = ", ".join(f"{flag} {n}" for flag, n in sorted(dropped.items()) if flag != "pages")
        extra += f", {_plural(dropped['pages'], 'page')} dropped ({details})"
    redone = [r.redone for r in results if r.status == "cleaned" and r.redone]  # --skip-existing
    if redone:
        why = [(redone.count(key), REDONE[key]) for key in REDONE if key in redone]
        said = f" {why[0][1]}" if len(why) == 1 else ": " + "; ".join(f"{n} {text}" for n, text in why)
        extra += f", {len(redone)} cleaned again (their outputs were{said})"
    head = "interrupted: " if interrupted else ""
    dropped_files = f", {count['dropped']} dropped" if count["dropped"] else ""
    return (
        f"{head}{_plural(count['cleaned'], 'file')} cleaned, {count['failed']} failed, {count['skipped']} "
        f"skipped{dropped_files}{extra}; paragraphs labelled {found['editorial']} editorial, "
        f"{found['promotional']} promotional, {found['navigational']} navigational; {seconds:.1f} s"
    )


def error_records(results: Iterable[Result]) -> Iterator[dict]:
    """The JSON Lines of ``--errors``: one per failed file and per bad record, in the order of the files'
    names (workers answer in any order: the same batch gives the same file)."""
    for r in sorted(results, key=lambda r: r.source):
        if r.status == "failed":
            yield {"file": r.source, "error": r.reason}
        yield from r.record_errors


def carry_errors(path: Path, results: list[Result]) -> None:
    """For a run with ``--skip-existing``: the bad records the errors file lists for files this run skips
    because their output exists become theirs again, so that the rewritten file (and the exit code) still
    tell them; the run before wrote those outputs without them."""
    # By the real path: the earlier run may have named the input otherwise (d1, ./d1, /abs/d1).
    skipped = {_real_key(r.source): r for r in results if r.status == "skipped" and r.reason == "output exists"}
    for record in _bad_records(path) or ():
        owner = skipped.get(_real_key(record["file"]))
        if owner is not None:
            owner.record_errors.append(record)


def listed_files(path: Path) -> frozenset[bytes] | None:
    """The inputs (``_real_key``) whose bad records an earlier run's errors file lists, for ``_made_with``;
    None where it is a stream, not a file to read."""
    records = _bad_records(path)
    return None if records is None else frozenset(_real_key(record["file"]) for record in records)


def _bad_records(path: Path) -> list[dict] | None:
    """The bad records (not the failed files) an errors file lists; None where it is a stream or cannot be
    read; none where it is not there yet."""
    target = errors_target(path)
    if _written_in_place(target) or _standard_stream(target) is not None:
        return None  # a stream, not a file to read: reading /dev/stdout of a pipe waited for ever (signals held)
    try:
        # "\n" alone ends a line: a file name or url may hold U+2028, which splitlines() also splits at; a
        # line of bytes that are not UTF-8 (a note added by hand) is passed over, not the whole file
        lines = target.read_bytes().decode("utf-8", "surrogateescape").split("\n")
    except FileNotFoundError:
        return []
    except OSError:
        return None
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("file"), str) or "error" not in record:
            continue
        if "line" in record or "record" in record:  # a bad record, not a failed file
            found.append(record)
    return found


def _unescaped(found: re.Match) -> bytes:
    return b"\\x" + found[2] if found[1] else bytes([int(found[2], 16)])


def _real_key(name: str) -> bytes:
    """The real path of a file named as messages show it (``shown``: its bytes as UTF-8), as bytes: a str path
    is encoded in the locale's encoding, which cannot hold every name (a ``€`` in a Latin-1 locale failed the
    run)."""
    path = name.encode("utf-8", "surrogateescape")
    if b"\\" in path:  # the bytes ``shown`` wrote as \xNN (a name not UTF-8, a newline), and \\xNN as itself
        path = re.sub(rb"\\(\\?)x([0-9a-fA-F]{2})", _unescaped, path)
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):  # the working folder gone, a NUL
        return path


def write_errors(path: Path, results: list[Result], run_id: str) -> None:
    """The errors file, written atomically (also when there is no error: then it is empty). A symbolic link's
    target is written, not the link replaced; a device or pipe (``/dev/null``, ``/dev/stderr``) is written to,
    never replaced by a file."""
    lines = (json_line(record) for record in error_records(results))
    target = errors_target(path)
    descriptor = _standard_stream(target)
    if descriptor is not None:  # the file behind standard output or error (``>> log``): written where it stands,
        (sys.stdout if descriptor == 1 else sys.stderr).flush()  # never replaced (what it held was lost)
        with open(os.dup(descriptor), "wb") as handle:
            handle.writelines(lines)
        return
    if _written_in_place(target):
        # a pipe without a reader would block for ever (after the batch, with its signals ignored): refused
        try:
            descriptor = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise OSError(exc.errno, "a pipe that nobody reads", str(path)) from None
            raise
        os.set_blocking(descriptor, True)
        with open(descriptor, "wb") as handle:
            handle.writelines(lines)
        return
    write_atomic(target, lines, run_id)


def errors_failure(path: Path, exc: OSError) -> str:
    """The message of an errors file that could not be written (a full disk): also that the file there is an
    earlier run's, which a pipeline reading it would take for this run's failures."""
    message = f"{display(path)}: {(exc.strerror or str(exc)).lower()}"
    try:
        target = errors_target(path)
        earlier = target.is_file() and _standard_stream(target) is None
    except OSError:
        earlier = False
    return message + (" (the file there is still an earlier run's)" if earlier else "")


def _standard_stream(target: Path) -> int | None:
    """1 or 2 when a regular file is the one behind standard output or error, else None."""
    for descriptor in (1, 2):
        try:
            if target.is_file() and os.path.samestat(os.fstat(descriptor), os.stat(target)):
                return descriptor
        except OSError:  # a standard stream closed
            continue
    return None


def errors_target(path: Path) -> Path:
    """The file ``--errors`` writes: a symbolic link's target; a pipe or socket reached through a link
    (``/dev/stdout`` into ``| jq``), whose target names no file (``/proc/…/fd/pipe:[…]``), as named."""
    from pathlib import Path

    real = os.path.realpath(path)
    return Path(path if not os.path.exists(real) and os.path.exists(path) else real)


def _written_in_place(target: Path) -> bool:
    """A device or pipe: written to, never replaced by a renamed file."""
    return target.exists() and not target.is_file()
