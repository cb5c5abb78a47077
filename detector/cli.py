"""``clean-article``: argument parsing, error reporting and signals only; ``detector.batch`` and
``detector.api`` do the work.

Exit codes: 0 success, 1 a file, a record or the model failed, 2 usage error, 130 interrupted (Ctrl-C),
143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import time
import zlib
from collections.abc import Callable, Generator, Iterable

from detector import __version__, batch
from detector.api import FLAGS, FORMATS, load_model, parse_keep
from detector.features import SITE_MIN_PAGES
from detector.model import ModelError
from detector.segment import check_encoding

MAX_DASK_TIMEOUT = 1_000_000  # seconds (11 days); more overflows the clients' timers
# Records to standard output are cleaned in this process until they have taken this long, then by --jobs
# workers: a file of a few records costs no worker's start (two forks and an import, 23 ms on 38), and a
# crawl a tenth of a second of parallel work. (Into a folder, the workers clean from the first record: one
# stuck outside Python is ended, as a file's worker was.)
RECORDS_HERE = 0.1
MAX_JOBS_PER_CORE = 8  # --jobs above this many workers per core only adds processes and memory
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at run time (see _named_tuple)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, NoReturn


class Terminated(BaseException):
    """SIGTERM (or SIGHUP: the terminal closed) arrived: stop like Ctrl-C, clean up, exit 143."""


_STOPS = (signal.SIGTERM, signal.SIGHUP)


_MAIN = os.getpid()


def terminate(signum: int, frame: object) -> None:
    """The handler of SIGTERM and SIGHUP in the main process of clean-article and detector."""
    if os.getpid() != _MAIN:  # a worker forked with this handler, not yet started (its pool being torn down):
        signal.signal(signum, signal.SIG_DFL)  # it ends as SIGTERM ends a process (Terminated raised in an
        os.kill(os.getpid(), signum)  # after-fork hook was swallowed, and the worker waited for work for ever)
    if not _held_by_the_line(signum):
        batch.stop_raised(Terminated)
        raise Terminated


def _interrupt(signum: int, frame: object) -> None:
    """Ctrl-C: KeyboardInterrupt (while clean-article writes to standard output, once the line is written)."""
    if not _held_by_the_line(signum):
        batch.stop_raised(KeyboardInterrupt)
        raise KeyboardInterrupt


class _Line:
    """A line of standard output being written, the stop (a signal's number) that waits for its end, and the
    SIGALRM handler the wait replaced."""

    writing = False
    stop = 0
    alarm: Any = None


LINE_GRACE = 2.0  # seconds a stop waits for the line being written; then a reader that is stuck gets it cut


def _held_by_the_line(signum: int) -> bool:
    """Whether a stop waits for the end of the line being written: a line consumer (jq, a bulk loader) got half
    a JSON record when SIGTERM or Ctrl-C came in the middle of a line larger than the pipe. It waits
    ``LINE_GRACE`` seconds at most; a second stop does not wait."""
    if not _Line.writing or _Line.stop or not hasattr(signal, "setitimer"):
        return False
    _Line.stop = signum
    _Line.alarm = signal.signal(signal.SIGALRM, _give_up_the_line)
    signal.setitimer(signal.ITIMER_REAL, LINE_GRACE)
    return True


def _give_up_the_line(signum: int, frame: object) -> None:
    """SIGALRM: the line took longer than ``LINE_GRACE`` (a reader that is stuck), the stop it held, now."""
    _stop_held()


def _stop_held() -> None:
    """After a line, or when its wait is over: the stop it held back, now (nothing when none came)."""
    stop, _Line.stop = _Line.stop, 0
    if stop:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _restore_alarm()
        exception = KeyboardInterrupt if stop == signal.SIGINT else Terminated
        batch.stop_raised(exception)
        raise exception


def _restore_alarm() -> None:
    if _Line.alarm is not None:
        signal.signal(signal.SIGALRM, _Line.alarm)
        _Line.alarm = None


def interrupted(exc: BaseException) -> int:
    """One line on stderr for Ctrl-C (exit 130) or SIGTERM (143)."""
    if isinstance(exc, Terminated):
        sys.stderr.write("terminated\n")
        return 143
    sys.stderr.write("interrupted\n")
    return 130


def _error(message: str, code: int = 1) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code


def _wait_writable() -> None:
    """Wait until standard output (a non-blocking pipe) takes bytes again."""
    import select

    select.select([], [sys.stdout.fileno()], [])


class _PipeClosed(Exception):
    """The reader of stdout went away (``| head``): stop quietly."""


def _write_stdout(data: bytes) -> None:
    """Write bytes to stdout; a write error becomes ``OSError`` with ``<stdout>`` as its file name. A short
    write (a file-size limit reached: ``ulimit -f``) is followed by another for the rest, which fails and says
    why: the output was cut without a word, exit 0."""
    _Line.writing = True
    try:
        view = memoryview(data)
        while view:
            try:
                written = sys.stdout.buffer.write(view)
            except BlockingIOError as exc:  # a parent left the pipe non-blocking and it is full: wait for it
                view = view[exc.characters_written :]
                _wait_writable()
                continue
            if written is None:  # the same, from the unbuffered stream of python -u
                _wait_writable()
                continue
            if not written:
                raise OSError(errno.EIO, "the output could not be written")
            view = view[written:]
        while True:
            try:
                sys.stdout.flush()
                break
            except BlockingIOError:
                _wait_writable()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise _PipeClosed from None
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, "<stdout>") from None
    finally:
        _Line.writing = False
        _stop_held()  # a stop that waited for the line, now, whatever ended it (a reader gone: it said exit 0)


class _Once(argparse._StoreAction):
    """An option of one value given twice is a usage error: the second replaced the first without a word
    (``-o a -o b`` wrote to b alone; a script that builds its command line put its outputs elsewhere)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        given = namespace.__dict__.setdefault("_given", set())
        if self.dest in given:
            parser.error(f"{'/'.join(self.option_strings)} given twice; give it once")
        given.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2), without abbreviations of long options (``--html PAGE``
    was read as ``--html-field PAGE``, and a new option would change what an abbreviation in a script means),
    and options of one value refused when given twice (``_Once``): clean-article's and detector's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_argument(self, *names: Any, **settings: Any) -> Any:
        if names and str(names[0]).startswith("-") and "action" not in settings:
            settings["action"] = _Once
        return super().add_argument(*names, **settings)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)

    _width: int | None = None

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes a formatter for every add_argument, and its default one imports shutil (and with it
        # bz2 and lzma) for the terminal's width: a few milliseconds of every start, for a width only --help
        # needs. The same width, read as shutil reads it, once per parser.
        if self._width is None:
            self._width = _terminal_columns() - 2
        return self.formatter_class(prog=self.prog, width=self._width)  # type: ignore[call-arg]


def _path(value: str) -> Path:
    """An option's path; pathlib is imported only when one is given (a page to standard output never needs
    it, and its import was a twentieth of that cold start)."""
    from pathlib import Path

    if not value:  # Path("") is the current folder: -o "" would write there
        raise argparse.ArgumentTypeError("an empty path")
    return Path(value)


def _terminal_columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` tells it: $COLUMNS, the terminal's, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def clean_parser() -> argparse.ArgumentParser:
    """The options of clean-article. Plain argparse: typer would triple the command's start-up time."""
    parser = Parser(
        prog="clean-article",
        description="Print the article of a scraped German finance page (text, Markdown or HTML): its editorial "
        "paragraphs, unchanged and in order. With -o, clean files and folders into an output folder.",
    )

    add = parser.add_argument
    add("--version", action="version", version=f"%(prog)s {__version__}")
    add("inputs", nargs="*", default=[], help="files or folders; none or '-' reads standard input")
    add("-o", "--output", type=_path, help="output folder; needed for folders and several files")
    add(
        "-f",
        "--format",
        dest="fmt",
        choices=FORMATS,
        default="text",
        help="text: the article; annotated: every paragraph with its label (LABELS.md format); "
        "json: labels, probabilities and the page verdict; html: the article as minimal HTML; explain: "
        "per paragraph the features that decided it (default: text)",
    )
    add(
        "-k",
        "--keep",
        action="append",
        help="labels to keep in text, json and html output, comma-separated or the option repeated "
        "(default: editorial)",
    )
    add(
        "--favor",
        choices=("precision", "balanced", "recall"),
        default="balanced",
        help="precision: keep only what is surely article (fewer leaks); recall: lose less article; the "
        "thresholds were chosen by cross-validation and ship with the model (default: balanced)",
    )
    add(
        "--min-editorial",
        type=float,
        metavar="P",
        help="keep a paragraph as editorial when its editorial probability is at least P (0-1; overrides --favor)",
    )
    add(
        "--rules",
        type=_path,
        action="append",
        metavar="FILE",
        help="your own keep/drop rules (TOML), applied after the model; repeated: the first file's rules first",
    )
    add(
        "--drop-pages",
        action="append",
        metavar="FLAGS",
        help="leave out pages with these flags, comma-separated or the option repeated: advertorial, "
        "teaser_only, no_article",
    )
    add(
        "--input-format",
        choices=batch.INPUT_FORMATS,
        default="auto",
        help="auto (default): by the file name, else by the content; jsonl: JSON Lines documents; warc: "
        "crawl files (one JSON line per HTML response)",
    )
    add("--text-field", help="the field holding a JSON Lines document's text (default: text)")
    add("--html-field", help="read each JSON Lines document's HTML from this field instead of a text field")
    add(
        "--glob",
        action="append",
        help=f"file pattern when walking folders, repeatable (default: {', '.join(batch.DEFAULT_GLOBS['auto'])}; "
        "with --input-format, the patterns of that format)",
    )
    add(
        "--files-from",
        metavar="LIST",
        action="append",
        help="also clean the files and folders named in LIST, one per line or NUL-separated (find -print0); "
        "'-' reads the list from standard input; outputs mirror each path as the list writes it (needs -o); "
        "repeatable",
    )
    add("-j", "--jobs", type=int, default=0, help="parallel workers; 0 means all cores (default)")
    add(
        "--skip-existing",
        action="store_true",
        help="leave existing outputs alone (resume a run); one made with other settings, of an input "
        "changed since or missing records that failed for their time is cleaned again",
    )
    add(
        "--errors",
        type=_errors_path,
        help="write one JSON line per failed file or record to this file ('-': standard output, with -o)",
    )
    add("--encoding", help="force the input encoding instead of detecting it")
    add("--fix-mojibake", action="store_true", help="repair text that was decoded wrongly before (FÃ¼r → Für)")
    add(
        "--max-bytes",
        type=int,
        default=batch.DEFAULT_MAX_BYTES,
        help=f"refuse inputs and JSON Lines or WARC records larger than this (default: {batch.DEFAULT_MAX_BYTES})",
    )
    add("--follow-links", action="store_true", help="follow symbolic links when walking folders")
    add(
        "--no-site-memory",
        dest="site_memory",
        action="store_false",
        help="label each page on its own; by default a first pass notes which paragraphs recur across the "
        f"pages of a site (a folder, or the host of a record's url) when it has {SITE_MIN_PAGES} or more",
    )
    add(
        "--engine",
        choices=("local", "dask"),
        default="local",
        help="local: worker processes here; dask: a Dask cluster",
    )
    add("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (default: a local cluster)")
    add(
        "--dask-timeout",
        type=float,
        default=None,
        help="seconds to wait for an unresponsive scheduler or for workers to come back (default: 60)",
    )
    add(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="the longest one page may take to clean (a file, or a record of JSON Lines or WARC); a page over it "
        f"fails and a batch goes on; 0: no limit (default: {batch.DEFAULT_TIMEOUT:g}; local engine only)",
    )
    add("--model", type=_path, help="use this trained model file instead of the shipped one")
    add("-q", "--quiet", action="store_true", help="no notes and no progress; errors and the summary stay")
    return parser


def build_config(args: argparse.Namespace) -> batch.RunConfig:
    """The run's configuration from the parsed arguments; raises UsageError for combinations that cannot
    work, before anything is read."""
    try:
        labels = parse_keep(",".join(args.keep) if args.keep else "editorial")
    except ValueError as exc:
        raise batch.UsageError(f"--keep: {exc}") from None
    if args.jobs < 0:
        raise batch.UsageError("--jobs must be 0 (all cores) or a positive number of workers")
    cores = os.cpu_count() or 1
    if args.jobs > MAX_JOBS_PER_CORE * cores:
        most = MAX_JOBS_PER_CORE * cores
        raise batch.UsageError(
            f"--jobs {args.jobs}: at most {most} workers on {cores} core(s); more only add memory"
        )
    if args.max_bytes <= 0:
        raise batch.UsageError("--max-bytes must be a positive number of bytes")
    if args.encoding:
        try:
            check_encoding(args.encoding)  # refuses codecs that are no text encodings (rot13, base64, punycode)
        except LookupError:
            import codecs

            try:
                codecs.lookup(args.encoding)
            except LookupError:
                raise batch.UsageError(f"--encoding: unknown text encoding {args.encoding!r}") from None
            raise batch.UsageError(f"--encoding: {args.encoding!r} is no encoding of text pages") from None
    if args.scheduler and args.engine != "dask":
        raise batch.UsageError("--scheduler needs --engine dask")
    if args.scheduler and (problem := _scheduler_problem(args.scheduler)):
        raise batch.UsageError(f"--scheduler {args.scheduler}: {problem}")
    if args.dask_timeout is not None and args.engine != "dask":  # as --scheduler: it said nothing, and did nothing
        raise batch.UsageError("--dask-timeout needs --engine dask")
    if args.dask_timeout is None:
        args.dask_timeout = batch.RunConfig._field_defaults["dask_timeout"]
    if not 0 < args.dask_timeout <= MAX_DASK_TIMEOUT:  # NaN too
        raise batch.UsageError(f"--dask-timeout must be a positive number of seconds, at most {MAX_DASK_TIMEOUT}")
    timeout = batch.DEFAULT_TIMEOUT if args.engine == "local" else 0.0
    if args.timeout is not None:
        if not 0 <= args.timeout <= MAX_DASK_TIMEOUT:  # NaN too
            most = MAX_DASK_TIMEOUT
            raise batch.UsageError(f"--timeout must be 0 (no limit) or a number of seconds, at most {most}")
        if args.timeout and args.engine == "dask":
            raise batch.UsageError("--timeout is for the local engine: Dask's workers clean pages in threads")
        timeout = args.timeout
    for option, value in (
        ("--html-field", args.html_field),
        ("--text-field", args.text_field),
        ("--scheduler", args.scheduler),
        ("--encoding", args.encoding),
        *(("--glob", g) for g in args.glob or ()),
        *(("--keep", k) for k in args.keep or ()),
    ):
        if value is not None and not value.strip():
            raise batch.UsageError(f"{option}: an empty value")
    for option, value in (("--html-field", args.html_field), ("--text-field", args.text_field)):
        if value and args.input_format not in ("auto", "jsonl"):
            raise batch.UsageError(f"{option} is for JSON Lines input")
        if value in batch.RECORD_FIELDS:
            raise batch.UsageError(
                f"{option} {value}: clean-article writes this field, so the page in it would be overwritten; "
                "copy the page to a field of another name first"
            )
    if args.html_field and args.text_field:
        raise batch.UsageError("--text-field and --html-field: a record is read from one field, give one")
    for pattern in args.glob or ():
        if "/" in pattern or os.sep in pattern:
            raise batch.UsageError(f"--glob {pattern}: patterns match file names, not paths (folders are walked)")
    if args.min_editorial is not None and not 0.0 <= args.min_editorial <= 1.0:
        raise batch.UsageError("--min-editorial must be a probability between 0 and 1")
    given = args.drop_pages or []
    drop_pages = tuple(dict.fromkeys(flag.strip() for value in given for flag in value.split(",") if flag.strip()))
    if any(not value.replace(",", "").strip() for value in given):
        raise batch.UsageError("--drop-pages: no flag given")
    unknown = [flag for flag in drop_pages if flag not in FLAGS]
    if unknown:
        raise batch.UsageError(f"--drop-pages: unknown flag {unknown[0]!r}; choose from {', '.join(FLAGS)}")
    rules: tuple = ()
    if args.rules:
        from detector.rules import RulesError, load_rules

        try:
            rules = load_rules(*args.rules)
        except RulesError as exc:
            raise batch.UsageError(f"--rules: {exc}") from None
    return batch.RunConfig(
        fmt=args.fmt,
        keep=labels,
        encoding=args.encoding,
        fix_mojibake=args.fix_mojibake,
        max_bytes=args.max_bytes,
        # on Dask by its absolute path, as the inputs: a worker in another working folder found no such file
        model=(os.path.abspath(args.model) if args.engine == "dask" else str(args.model)) if args.model else None,
        input_format=args.input_format,
        text_field=args.text_field or "text",
        html_field=args.html_field,
        globs=tuple(args.glob or ()),
        jobs=args.jobs or os.cpu_count() or 1,
        skip_existing=args.skip_existing,
        errors=args.errors,
        follow_links=args.follow_links,
        engine=args.engine,
        scheduler=args.scheduler,
        dask_timeout=args.dask_timeout,
        quiet=args.quiet,
        favor=args.favor,
        min_editorial=args.min_editorial,
        rules=rules,
        drop_pages=drop_pages,
        site_memory=args.site_memory,
        run_id=batch.new_run_id(),
        timeout=timeout,
    )


def clean_main(argv: list[str] | None = None) -> int:
    """Entry point of clean-article; returns the exit code."""
    args = clean_parser().parse_args(argv)
    inputs = args.inputs or ([] if args.files_from is not None else ["-"])
    listed: list[str] = []
    try:
        config = build_config(args)
        for listing in args.files_from or ():
            if args.output is None:
                raise batch.UsageError("--files-from needs an output folder: -o OUTDIR")
            if listing == "":
                raise batch.UsageError("--files-from: an empty path")
            if listing == "-" and "-" in inputs:
                raise batch.UsageError("standard input cannot be both a page and the --files-from list")
            if listing == "-" and args.files_from.count("-") > 1:
                raise batch.UsageError("standard input can be one --files-from list, not two")
            entries = batch.read_list(listing)
            if not entries and not args.quiet:  # (an empty list from a find that matched nothing: not an error)
                sys.stderr.write(f"note: --files-from {batch.display(listing)} names no file\n")
            listed += entries
        if args.output is None and (len(inputs) > 1 or (inputs[0] != "-" and os.path.isdir(inputs[0]))):
            raise batch.UsageError("several inputs or a folder need an output folder: -o OUTDIR")
        if args.output is None and args.skip_existing:
            raise batch.UsageError("--skip-existing needs an output folder (-o): without one nothing is written")
        if args.output is not None and "-" in inputs:
            raise batch.UsageError("standard input cannot be combined with -o; redirect stdout instead")
        if args.errors == "-":  # (it wrote a file named "-"; ./- is that file)
            if args.output is None:
                raise batch.UsageError("--errors -: standard output holds the article; name a file")
            try:
                os.fstat(1)
            except OSError:
                return _error("--errors -: standard output is closed")
            config = config._replace(errors=_path("/dev/stdout"))
        elif args.output is None and args.errors is not None and _is_standard_output(args.errors):
            raise batch.UsageError(
                f"the errors file {batch.display(args.errors)} is standard output, which holds the article"
            )
        if inputs[:1] == [""]:
            raise batch.UsageError("an empty path is not an input")
        read = _files_read(args, inputs if args.output is None else [])
        if config.errors is not None and (what := read.get(os.path.realpath(config.errors))):
            raise batch.UsageError(f"the errors file {batch.display(config.errors)} is {what}")
        if config.errors is not None and inputs == ["-"] and _is_standard_stream(config.errors):
            raise batch.UsageError(f"the errors file {batch.display(config.errors)} is standard input")
    except batch.UsageError as exc:
        return _error(str(exc), 2)
    if args.keep and args.fmt in ("annotated", "explain") and not args.quiet:  # said, not ignored
        sys.stderr.write(
            f"note: --keep not used for pages: -f {args.fmt} shows every paragraph with its label (the "
            "cleaned_text of JSON Lines and WARC records keeps those labels)\n"
        )
    # a stop the parent set to be ignored (nohup, trap '' INT) stays ignored: it ended the run with 143
    handlers = {number: terminate for number in _STOPS} | {signal.SIGINT: _interrupt}
    batch.forget_stops()
    previous = {n: signal.signal(n, h) for n, h in handlers.items() if signal.getsignal(n) is not signal.SIG_IGN}
    try:
        if args.output is None:
            return _clean_one_with_errors(inputs[0], config)
        return _clean_many(inputs, args.output, config, read, listed)
    except ModelError as exc:
        return _error(str(exc))
    except (KeyboardInterrupt, Terminated) as exc:
        return interrupted(exc)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def each_result(stream: Generator[batch.Result, None, None], take: Callable[[batch.Result], None]) -> None:
    """Every result of a batch to ``take``. An interruption (Ctrl-C, SIGTERM) while one is taken is passed to
    the batch, as one while it waits for its workers is: it stops them after their file and still gives what
    they finished, then raises it (the files finished in the workers were written but not counted)."""
    stop: BaseException | None = None
    while True:
        try:
            result = next(stream) if stop is None else stream.throw(stop)
        except StopIteration:
            return
        stop = None
        try:
            take(result)
        except (KeyboardInterrupt, Terminated) as exc:
            stop = exc


def _files_read(args: argparse.Namespace, inputs: list[str]) -> dict[str, str]:
    """The files a run reads that it must never write over (with ``--errors`` or an output), by real path:
    the ``--model`` and ``--rules`` files and the ``inputs`` (standard input: ``_is_standard_stream``)."""
    read: dict[str, str] = {}
    named = [(args.model, "the --model file"), *((r, "a --rules file") for r in args.rules or ())]
    named += [(listing, "the --files-from list") for listing in args.files_from or () if listing not in ("", "-")]
    for path, what in named:
        if path is not None:
            read[os.path.realpath(path)] = what
    for source in inputs:
        if source != "-":
            read[os.path.realpath(source)] = "an input file"
    return read


def _is_standard_stream(path: str | Path, descriptor: int = 0) -> bool:
    """Whether a path is the file standard input reads (``clean-article --errors page.txt < page.txt``), or the
    one of another descriptor (1: standard output)."""
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except (OSError, ValueError):  # no such file, or no standard input
        return False


def _is_standard_output(path: Path) -> bool:
    """Whether a path is where standard output goes, a file or a pipe (at a terminal the two may share it)."""
    return not sys.stdout.isatty() and _is_standard_stream(path, 1)


def _errors_path(value: str) -> Path | str:
    """``--errors``: a path, or "-" (standard output) as given."""
    return value if value == "-" else _path(value)


def _clean_one_with_errors(source: str, config: batch.RunConfig) -> int:
    """One input to standard output, and with ``--errors`` its failure or bad records in that file, as a batch
    writes them."""
    failures: list[batch.Result] = []
    folder = batch.errors_target(config.errors).parent if config.errors is not None else None
    if folder is not None and not folder.is_dir():
        return _error(f"cannot write to {batch.display(folder)}: no such file or directory")
    if config.errors is not None and os.path.isdir(config.errors):  # refused before the work, as in a batch
        return _error(f"the errors file {batch.display(config.errors)} is a folder", 2)
    code = 1
    try:
        code = _clean_one(source, config, failures)
    finally:  # also when a signal ends a stream, as it ends most that run for hours: what failed so far
        if config.errors is not None:
            try:
                batch.write_errors(config.errors, failures, config.run_id)
            except OSError as exc:  # said also when the page failed: its failure is not in the file
                code = _error(batch.errors_failure(config.errors, exc))
    return code


def _on_terminal(stream: object) -> bool:
    """Whether a standard stream is a terminal (not when it is closed or replaced)."""
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


def _clean_one(source: str, config: batch.RunConfig, failures: list[batch.Result]) -> int:
    """One input (a file or standard input) to standard output; what failed is added to ``failures``."""
    name = "<stdin>" if source == "-" else batch.display(source)

    def failed(reason: str) -> int:
        failures.append(batch.Result(name, "failed", reason))
        return _error(reason)

    try:
        if source == "-" and not config.quiet and _on_terminal(sys.stdin) and _on_terminal(sys.stderr):
            sys.stderr.write("note: reading a page typed here: end it with Ctrl-D on a line of its own\n")
        handle = batch.standard_input() if source == "-" else batch.open_input(source, name)
        with handle:
            kind = config.input_format
            # the kind told by the first 20 KB, or given: then only gzip's two bytes are awaited (a stream of
            # records from a slow producer is cleaned as they come, not once 20 KB have arrived)
            head, stream = batch.read_ahead(handle, batch.SNIFF_BYTES if kind == "auto" else len(batch.GZIP_MAGIC))
            if kind == "auto":
                kind = batch.sniff_kind(head, "" if source == "-" else source)
            if head[:2] == batch.GZIP_MAGIC and kind != "warc":  # by the content, whatever the name
                if config.input_format == "auto":  # the kind from the start of what the gzip data holds
                    kind = batch.sniff_kind(batch.gunzip_head(head), source)
                if kind != "warc":  # decompressed as it is read (a WARC decompresses its own)
                    stream = batch.gunzip_stream(stream)
            if kind in ("jsonl", "warc"):
                # read in this process, cleaned here for RECORDS_HERE seconds, then by --jobs workers
                config = config._replace(record_jobs=config.jobs, records_here=RECORDS_HERE)
                if source != "-" and os.path.isfile(source):  # a file can be read twice: site memory, whose
                    # first pass runs so too (a pool of file workers would cost its start for one file)
                    # named: a link is followed, as for cleaning; by its absolute path, as a Dask worker in
                    # another folder needs it (it found no file there, and the memory was empty without a word)
                    named = batch.Task(os.path.abspath(source), kind, "", source, link=True)
                    memory = batch.with_site_memory([named], config._replace(jobs=1))
                    config = memory._replace(jobs=config.jobs)
                alarm = batch.arm_page_alarm(config)  # each record's time (--timeout)
                try:
                    return _records_to_stdout(stream, name, kind, config, failures)
                finally:
                    batch.disarm_page_alarm(alarm)
            data = batch.read_limited(stream, config.max_bytes, name)
        site = None if source == "-" else batch.folder_name(source, batch.named_host_folder(source))
        # One page, a short run: the model mapped, not read, and its checksum taken while the page is read and
        # scored; nothing is written before it is known good (model.load).
        scorer = load_model(config.model, mapped=True, verify_later=True)
        alarm = batch.arm_page_alarm(config)  # the page's time (--timeout), from when it has been read
        try:
            batch.start_page(config)
            page = batch.clean_page(data, name, kind, config, site, scorer=scorer)
            del data
            _write_page(page, name, config, scorer.verify)
        except batch.PageTimeout:
            return failed(f"{name}: {batch.over_time(config)}")
        except Exception:
            scorer.verify()  # a damaged model file can show itself as any error: it is told as damaged
            raise
        finally:
            batch.stop_page(config)
            batch.disarm_page_alarm(alarm)
        if not config.quiet:
            for note in page.notes:
                sys.stderr.write(f"note: {note}\n")
    except batch.InputError as exc:
        return failed(str(exc))
    except _PipeClosed:  # the reader went away (| head): quietly, but records that failed before still count
        return 1 if any(result.record_errors for result in failures) else 0
    except batch.DaskError as exc:  # the records' workers: as a batch tells it, and in the errors file
        return failed(f"{name}: {exc}")
    except EOFError:  # a gzipped input that ends inside its stream
        return failed(f"{name}: truncated gzip data (it ends before the end of its stream)")
    except zlib.error as exc:
        return failed(f"{name}: damaged gzip data ({exc})")
    except OSError as exc:
        if exc.filename == "<stdout>":
            return _error(f"<stdout>: {(exc.strerror or str(exc)).lower()}")
        return failed(f"{name}: {(exc.strerror or str(exc)).lower()}")
    return 0


def _write_page(page: batch.Page, name: str, config: batch.RunConfig, verify: Callable[[], None]) -> None:
    """A cleaned page to standard output in blocks of 64 KB (a page of many paragraphs is many chunks), the
    model verified before the first; with ``--drop-pages`` held until the page's verdict is known."""
    if config.drop_pages:
        held = list(page.chunks)
        flags = batch.dropped_by(page.writer.verdict(), config)
        if flags:
            held = []
            page.notes[:] = [f"{name}: page dropped ({', '.join(flags)})"]
        chunks: Iterable[bytes] = held
    else:
        chunks = page.chunks
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= 1 << 16:
            verify()
            left = batch.pause_page(config)  # the time limit is the cleaning's, not the reader's
            _write_stdout(b"".join(pending))
            batch.resume_page(left)
            pending, size = [], 0
    verify()
    batch.stop_page(config)
    if pending:
        _write_stdout(b"".join(pending))


def _records_to_stdout(
    handle: object, name: str, kind: str, config: batch.RunConfig, failures: list[batch.Result]
) -> int:
    result = batch.Result(name, "cleaned")
    result.record_errors = _ToldAtOnce(keep=config.errors is not None)
    clean = batch.clean_records if kind == "jsonl" else batch.clean_warc
    try:
        for line in clean(handle, name, config, result):  # type: ignore[arg-type]
            _write_stdout(line)
    finally:
        if result.record_errors:
            failures.append(result)
    if not config.quiet:
        for note in result.notes:
            sys.stderr.write(f"note: {note}\n")
        if result.dropped:
            flags = ", ".join(f"{flag} {n}" for flag, n in sorted(result.dropped.items()) if flag != "pages")
            sys.stderr.write(f"note: {name}: {result.dropped['pages']} record(s) dropped ({flags})\n")
        if result.skipped_records:  # revisits, resources, non-HTML responses: counted as a batch counts them
            sys.stderr.write(f"note: {name}: {batch.skipped_text(result.skipped_records)}\n")
    return 1 if result.record_errors else 0


class _ToldAtOnce(list):
    """The bad records of a stream to standard output, each told on stderr as it fails (a pipeline that runs for
    hours told none until its input ended), and kept only for an ``--errors`` file (each cost 300 bytes until
    the end: 145 MB for 400,000). True when any record failed."""

    def __init__(self, keep: bool) -> None:
        super().__init__()
        self.keep, self.told = keep, 0

    def append(self, record: dict) -> None:
        sys.stderr.write(f"error: {_where(record)}: {record['error']}\n")
        self.told += 1
        if self.keep:
            super().append(record)

    def __bool__(self) -> bool:
        return self.told > 0


def _where(record: dict) -> str:
    if "line" in record:
        return f"{record['file']}:{record['line']}"
    if "record" in record:
        return f"{record['file']} record {record['record']}"
    return str(record["file"])  # the file as a whole (``batch.had_bad_records``)


def _clean_many(
    inputs: list[str], output: Path, config: batch.RunConfig, read: dict[str, str], listed: list[str]
) -> int:
    """Files and folders into an output folder, with those of a ``--files-from`` list (``listed``): plan
    everything, refuse collisions and outputs over the files in ``read`` (``_files_read``), clean, and always
    end with the errors file and the summary, also when interrupted."""
    try:
        plan = batch.plan(inputs, output, config, listed)
        for task in plan.tasks:
            if what := read.get(os.path.realpath(task.target)):
                raise batch.UsageError(f"the output {batch.display(task.target)} would overwrite {what}")
    except batch.UsageError as exc:
        return _error(str(exc), 2)
    try:
        batch.check_writable(output, config.errors, config.run_id)
    except OSError as exc:
        where = batch.display(exc.filename) if exc.filename else str(output)
        return _error(f"cannot write to {where}: {(exc.strerror or str(exc)).lower()}")
    config = config._replace(output_root=os.path.realpath(output), settings_mark=batch.settings_mark(config))
    if config.skip_existing and config.errors is not None:  # outputs with bad records it does not list: redone
        config = config._replace(listed=batch.listed_files(config.errors))
    start = time.monotonic()
    progress = batch.Progress(len(plan.tasks), enabled=False if config.quiet else None)
    if config.skip_existing:
        removed = batch.remove_stale_temp_files(output)
        if removed and not config.quiet:
            progress.line(f"note: removed {removed} temporary file(s) of killed runs")
    results = list(plan.skipped)
    for result in results:
        _report(result, progress, config)
    code = 0

    def take(result: batch.Result) -> None:
        results.append(result)
        progress.update()
        _report(result, progress, config)

    try:
        config = _with_site_memory(plan.tasks, config, progress)
        each_result(batch.run(plan.tasks, config), take)
    except KeyboardInterrupt:
        code = 130
    except Terminated:
        code = 143
    except batch.DaskError as exc:
        progress.line(f"error: {exc}")
        code = 1
    except batch.UsageError as exc:
        return _error(str(exc), 2)
    # From here on a second Ctrl-C or SIGTERM must not lose the errors file or the summary.
    for number in (signal.SIGINT, *_STOPS):
        signal.signal(number, signal.SIG_IGN)
    progress.close()
    if code in (130, 143) or config.engine == "dask":  # a Dask worker that died left its temporary file
        batch.remove_temp_files(output, config.run_id)
    if config.errors is not None:
        try:
            if config.skip_existing:
                batch.carry_errors(config.errors, results)
            batch.write_errors(config.errors, results, config.run_id)
        except OSError as exc:
            sys.stderr.write(f"error: {batch.errors_failure(config.errors, exc)}\n")
            code = code or 1
    sys.stderr.write(batch.summary(results, time.monotonic() - start, interrupted=code in (130, 143)) + "\n")
    if code:
        return code
    return 1 if any(r.status == "failed" or r.record_errors for r in results) else 0


def _with_site_memory(
    tasks: list[batch.Task], config: batch.RunConfig, progress: batch.Progress
) -> batch.RunConfig:
    """The first pass of site memory, with a note of what it found."""
    start = time.monotonic()
    config = batch.with_site_memory(tasks, config)
    if config.quiet:
        return config
    if config.memories:
        sites = len(config.memories)
        pages = sum(m.pages for m in config.memories.values())
        seconds = time.monotonic() - start
        crowded = [m for m in config.memories.values() if m.thinned or m.full]
        over = (
            f"; {len(crowded)} site(s) with more than {crowded[0].cap:,} distinct paragraphs: those seen on one "
            f"page only were let go{', then new ones counted as unique' if any(m.full for m in crowded) else ''}"
            if crowded
            else ""
        )
        progress.line(f"note: site memory of {sites} site(s), {pages} pages (first pass {seconds:.1f} s){over}")
    elif config.site_memory and (files := sum(task.kind in ("text", "html") for task in tasks)) >= SITE_MIN_PAGES:
        # said: a layout of one page per folder lost the memory without a word
        progress.line(
            f"note: no site memory: no site has {SITE_MIN_PAGES} or more distinct pages among the {files} "
            "page files (a page file's site is its folder, or the nearest folder above it named like a host, "
            "www.example.org)"
        )
    if config.memory_missed:  # the memory of their sites is smaller than it would be, without a word
        progress.line(
            f"note: site memory's first pass did not count {config.memory_missed} input(s): their worker died "
            "(out of memory? killed?); their sites' memory holds fewer pages"
        )
    return config


def _report(result: batch.Result, progress: batch.Progress, config: batch.RunConfig) -> None:
    if result.status == "failed":
        progress.line(f"error: {result.reason}")
    elif result.status in ("skipped", "dropped") and result.reason != "output exists" and not config.quiet:
        progress.line(f"note: {result.reason}")
    for record in result.record_errors:
        progress.line(f"error: {_where(record)}: {record['error']}")
    if not config.quiet:
        for note in result.notes:
            progress.line(f"note: {note}")


class _ClosedStream:
    """Stands for a standard stream its caller closed (``>&-``, ``2>&-``, ``<&-``: Python makes it None):
    reading or writing fails as the system would fail it, with the stream's name, so that a run without its
    stdout is one error, and one without its stderr runs silently, instead of failing on None."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.buffer = self

    def _fail(self, *_: object) -> bytes:
        raise OSError(errno.EBADF, "bad file descriptor", self.name)

    write = read = peek = readline = fileno = _fail

    def flush(self) -> None:
        pass

    def close(self) -> None:  # a forked worker closes its stdin first thing: a failure here killed every one
        pass

    def isatty(self) -> bool:
        return False

    def __enter__(self) -> _ClosedStream:
        return self

    def __exit__(self, *_: object) -> None:
        pass


class _Diagnostics:
    """Standard error as the run's notes, errors and summary: a write that fails (the reader of a pipe gone, a
    full disk, a descriptor opened read-only) silences it instead of stopping the batch, whose outputs, exit
    code and ``--errors`` file still tell what happened (the first failed write ended a batch partway)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.silent = False

    def write(self, text: str) -> int:
        if not self.silent:
            try:
                self._stream.write(text)
            except (OSError, ValueError):
                self.silent = True
        return len(text)

    def flush(self) -> None:
        if not self.silent:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.silent = True

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding ...
        return getattr(self._stream, name)


# Dask's protocols a scheduler of other processes can have (inproc is one inside the process that made it)
_DASK_PROTOCOLS = ("tcp", "tls", "ucx", "ws", "wss")


def _scheduler_problem(address: str) -> str:
    """What is wrong with a Dask scheduler address ('' when nothing): ``[protocol://]host:port`` with one of
    Dask's protocols and a port from 1 to 65535 (``foo://`` failed inside Dask, port 99999 waited out the
    whole timeout, and an address without a port was told as a service that does not speak Dask)."""
    protocol, _, rest = address.rpartition("://")
    if protocol and protocol not in _DASK_PROTOCOLS:
        return f"unknown protocol {protocol!r}; Dask speaks {', '.join(_DASK_PROTOCOLS)} (tcp://host:8786)"
    host, colon, port = rest.rpartition(":")
    if not colon or not host or (not host.endswith("]") and "]" in port):  # "[::1]" is an IPv6 host alone
        return f"the address needs a host and a port ({protocol or 'tcp'}://host:8786)"
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        return f"an IPv6 host is written in brackets ({protocol or 'tcp'}://[::1]:8786)"
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return f"the port must be a number from 1 to 65535, not {port!r}"
    return ""


def main() -> None:
    """Console-script entry point. An unexpected failure is one line on stderr, not a traceback, unless
    DETECTOR_DEBUG is set."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process
    sys.stderr = _Diagnostics(sys.stderr)
    for name in ("stdout", "stdin"):
        if getattr(sys, name) is None:
            setattr(sys, name, _ClosedStream(f"<{name}>"))
    try:
        code = clean_main()
    except KeyboardInterrupt as exc:  # before the run's own handlers: reading a --files-from list or --rules
        code = interrupted(exc)
    except MemoryError:
        code = _error("out of memory")
    except Exception as exc:
        if os.environ.get("DETECTOR_DEBUG"):
            raise
        if isinstance(exc, OSError) and exc.errno == errno.EMFILE:  # the workers' pipes could not be opened
            code = _error("too many open files: raise the limit (ulimit -n) or give fewer --jobs")
        elif isinstance(exc, ModuleNotFoundError) and exc.name:  # imported where an input needs it (lxml: HTML)
            code = _error(
                f"{exc.name.split('.')[0]} is not installed, though detector depends on it: reinstall detector "
                "from the checkout or the wheel it came from (pip install --force-reinstall PATH)"
            )
        elif isinstance(exc, FileNotFoundError) and not _working_folder_exists():  # a relative path's real path
            code = _error("the working folder no longer exists: cd into one that does, or give absolute paths")
        else:
            code = _error(f"unexpected failure: {exc!r} (set DETECTOR_DEBUG=1 for the traceback)")
    _exit(code)


def _working_folder_exists() -> bool:
    try:
        os.getcwd()
    except OSError:
        return False
    return True


def _exit(code: int) -> NoReturn:
    """Exit without the interpreter's teardown when nothing is left to do: freeing the model, the word caches
    and the modules object by object took about a fifth of a one-page run. By now every output file is written
    and closed and the workers are joined (or, after an interruption, killed); the standard streams are flushed
    here. Where another thread still runs (Dask's) in a run that was not interrupted, or a flush fails, the
    ordinary exit does its work and reports."""
    threading = sys.modules.get("threading")
    if code in (130, 143):  # interrupted: every whole line is written; what the buffer may hold is a cut one,
        try:  # noqa: SIM105 - dropped, not flushed: a flush to a reader that stalls kept the process for ever
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(code)
    if threading is None or threading.active_count() == 1:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # python -m detector.cli
    main()
