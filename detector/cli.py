"""``clean-article``: argument parsing and error reporting only; ``detector.batch`` and ``detector.clean``
do the work. Exit codes: 0 success, 1 a file or the model failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from detector import batch
from detector.api import FORMATS, parse_keep
from detector.model import ModelError


def _error(message: str, code: int = 1) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code


class _PipeClosed(Exception):
    """The reader of stdout went away (``| head``): stop quietly."""


def _write_stdout(text: str) -> None:
    """Write to stdout as UTF-8; a write error becomes ``OSError`` with ``<stdout>`` as its file name."""
    try:
        sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise _PipeClosed from None
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, "<stdout>") from None


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see clean-article --help)\n")
        raise SystemExit(2)


def clean_parser() -> argparse.ArgumentParser:
    """The options of clean-article. Plain argparse: typer would triple the command's start-up time."""
    parser = _Parser(
        prog="clean-article",
        description="Print the article of a scraped German finance page: its editorial paragraphs, unchanged "
        "and in order. With -o, clean files and folders into an output folder.",
    )
    add = parser.add_argument
    add("inputs", nargs="*", default=["-"], help="text files or folders; none or '-' reads standard input")
    add("-o", "--output", type=Path, help="output folder; needed for folders and several files")
    add(
        "-f",
        "--format",
        dest="fmt",
        choices=FORMATS,
        default="text",
        help="text: the article; annotated: every paragraph with its label (LABELS.md format); "
        "json: labels and probabilities (default: text)",
    )
    add("-k", "--keep", default="editorial", help="labels to keep, comma-separated (default: editorial)")
    add("--input-format", choices=("text", "jsonl"), default="text", help="jsonl: JSON Lines documents")
    add("--text-field", default="text", help="the field holding a JSON Lines document's page (default: text)")
    add("--glob", help="file pattern when walking folders (default: *.txt, or *.jsonl for jsonl)")
    add("-j", "--jobs", type=int, default=0, help="parallel workers; 0 means all cores (default)")
    add("--skip-existing", action="store_true", help="leave existing outputs alone (resume a run)")
    add("--errors", type=Path, help="write one JSON line per failed file or record to this file")
    add("--encoding", help="force the input encoding instead of detecting it")
    add("--fix-mojibake", action="store_true", help="repair text that was decoded wrongly before (FÃ¼r → Für)")
    add(
        "--max-bytes",
        type=int,
        default=batch.DEFAULT_MAX_BYTES,
        help=f"refuse inputs larger than this (default: {batch.DEFAULT_MAX_BYTES})",
    )
    add("--follow-links", action="store_true", help="follow symbolic links when walking folders")
    add(
        "--engine",
        choices=("local", "dask"),
        default="local",
        help="local: worker processes here; dask: a Dask cluster",
    )
    add("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (default: a local cluster)")
    add("--model", type=Path, help="use this trained model file instead of the shipped one")
    return parser


def clean_main(argv: list[str] | None = None) -> int:
    """Entry point of clean-article; returns the exit code."""
    args = clean_parser().parse_args(argv)
    try:
        labels = parse_keep(args.keep)
    except ValueError as exc:
        return _error(f"--keep: {exc}", 2)
    options = batch.RunConfig(
        fmt=args.fmt,
        keep=labels,
        encoding=args.encoding,
        fix_mojibake=args.fix_mojibake,
        max_bytes=args.max_bytes,
        model=str(args.model) if args.model else None,
        input_format=args.input_format,
        text_field=args.text_field,
        glob=args.glob,
        jobs=args.jobs or os.cpu_count() or 1,
        skip_existing=args.skip_existing,
        errors=args.errors,
        follow_links=args.follow_links,
        engine=args.engine,
        scheduler=args.scheduler,
    )
    inputs = args.inputs or ["-"]
    try:
        if args.output is None:
            if len(inputs) > 1 or Path(inputs[0]).is_dir():
                return _error("several inputs or a folder need an output folder: -o OUTDIR", 2)
            return _clean_one(inputs[0], options)
        if "-" in inputs:
            return _error("standard input cannot be combined with -o; redirect stdout instead", 2)
        return _clean_many(inputs, args.output, options)
    except ModelError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        if args.output is not None:
            batch.remove_partial_files(args.output)
        sys.stderr.write("interrupted\n")
        return 130


def _clean_one(source: str, options: batch.RunConfig) -> int:
    name = "<stdin>" if source == "-" else source
    try:
        if options.input_format == "jsonl":
            handle = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
            result = batch.Result(name, "cleaned")
            with handle:
                for line in batch.clean_jsonl(handle, name, options, result):
                    _write_stdout(line)
            for record in result.document_errors:
                sys.stderr.write(f"error: {record['file']}:{record['line']}: {record['error']}\n")
            return 1 if result.document_errors else 0
        if source == "-":
            data = batch.read_limited(sys.stdin.buffer, options.max_bytes, name)
        else:
            with open(source, "rb") as handle:
                data = batch.read_limited(handle, options.max_bytes, name)
        rendered, _, notes = batch.clean_document(data, name, options)
        for note in notes:
            sys.stderr.write(f"note: {note}\n")
        _write_stdout(batch.output_text(rendered))
    except batch.InputError as exc:
        return _error(str(exc))
    except _PipeClosed:
        return 0
    except OSError as exc:
        where = exc.filename if exc.filename == "<stdout>" else name
        return _error(f"{where}: {(exc.strerror or str(exc)).lower()}")
    return 0


def _clean_many(inputs: list[str], output: Path, options: batch.RunConfig) -> int:
    jsonl = options.input_format == "jsonl"
    pattern = options.glob or ("*.jsonl" if jsonl else "*.txt")
    suffix = ".jsonl" if jsonl else (".json" if options.fmt == "json" else None)
    try:
        tasks, results = batch.plan([Path(i) for i in inputs], output, pattern, suffix, options.follow_links)
    except batch.UsageError as exc:
        return _error(str(exc), 2)
    start = time.monotonic()
    progress = batch.Progress(len(tasks))
    for result in results:
        sys.stderr.write(f"{'error' if result.status == 'failed' else 'note'}: {result.reason}\n")
    for result in batch.run(tasks, options):
        results.append(result)
        progress.update()
        if result.status == "failed":
            sys.stderr.write(f"\rerror: {result.reason}\n")
        for record in result.document_errors:
            sys.stderr.write(f"\rerror: {record['file']}:{record['line']}: {record['error']}\n")
    progress.close()
    if options.errors is not None:
        import json

        batch.write_atomic(
            options.errors, (json.dumps(r, ensure_ascii=False) + "\n" for r in batch.error_records(results))
        )
    sys.stderr.write(batch.summary(results, time.monotonic() - start) + "\n")
    return 1 if any(r.status == "failed" or r.document_errors for r in results) else 0


def main() -> None:
    """Console-script entry point. An unexpected failure is one line on stderr, not a traceback, unless
    DETECTOR_DEBUG is set."""
    try:
        code = clean_main()
    except Exception as exc:
        if os.environ.get("DETECTOR_DEBUG"):
            raise
        code = _error(f"unexpected failure: {exc!r} (set DETECTOR_DEBUG=1 for the traceback)")
    sys.exit(code)
