"""Cleaning many documents: folders walked safely, outputs mirrored and written atomically, files cleaned in
parallel (forked worker processes locally, Dask on a cluster), and JSON Lines streamed record by record.

Every file ends as one ``Result``: cleaned, failed (with its reason) or skipped; a bad file never stops a batch.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO, TextIO

from detector.api import as_record, classify, load_model, render
from detector.model import ModelError
from detector.pages import LABELS
from detector.segment import NotTextError, page_text

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
PART_SUFFIX = ".detector-part"
CHUNK_FILES = 32


class UsageError(ValueError):
    """A batch that must not start: it would write into its own input, or has nothing to read."""


@dataclass(frozen=True)
class RunConfig:
    """Everything a run of ``clean-article`` was asked for, in one object shared by the standard-output, file
    and JSON Lines paths and sent to every worker: how each document is read, what is written for it, and how
    the batch runs."""

    fmt: str = "text"
    keep: tuple[str, ...] = ("editorial",)
    encoding: str | None = None
    fix_mojibake: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES
    model: str | None = None
    input_format: str = "text"
    text_field: str = "text"
    glob: str | None = None
    jobs: int = 1
    skip_existing: bool = False
    errors: Path | None = None
    follow_links: bool = False
    engine: str = "local"
    scheduler: str | None = None


class Result:
    """What became of one input file: ``status`` is "cleaned", "failed" or "skipped"."""

    def __init__(self, source: str, status: str, reason: str = "", notes: list[str] | None = None) -> None:
        self.source = source
        self.status = status
        self.reason = reason
        self.pages = 0
        self.labels: dict[str, int] = {}
        self.notes = notes or []
        self.document_errors: list[dict] = []


class InputError(Exception):
    """One document that cannot be cleaned; the message is the reason shown to the user."""


def read_limited(stream: BinaryIO, max_bytes: int, name: str) -> bytes:
    """Read a whole input, refusing one larger than ``max_bytes`` before it fills the memory."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{name}: larger than --max-bytes ({max_bytes} bytes)")
    return data


def clean_document(data: bytes, name: str, options: RunConfig) -> tuple[str, list, list[str]]:
    """One page's bytes to its rendered output, its labelled paragraphs and notes for the user."""
    try:
        text = page_text(data, options.encoding, options.fix_mojibake)
    except NotTextError as exc:
        raise InputError(f"{name}: {exc}") from None
    paragraphs = classify(text, load_model(options.model))
    notes = []
    if not paragraphs:
        notes.append(f"{name}: empty input, nothing to clean")
    elif not any(p.label in options.keep for p in paragraphs):
        notes.append(f"{name}: no {'/'.join(options.keep)} paragraph found, the output is empty")
    return render(paragraphs, options.fmt, options.keep), paragraphs, notes


def output_text(rendered: str) -> str:
    """A rendered page as file content: ending with one newline unless empty."""
    return rendered if not rendered or rendered.endswith("\n") else rendered + "\n"


def write_atomic(path: Path, chunks: Iterable[str]) -> None:
    """Write to a temporary file beside ``path`` and rename it, so no reader ever sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{PART_SUFFIX}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            for chunk in chunks:
                handle.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def clean_jsonl(lines: Iterable[bytes], name: str, options: RunConfig, result: Result) -> Iterator[str]:
    """Stream JSON Lines: each record keeps its fields and gains ``cleaned_text`` and ``paragraph_labels``
    (and ``paragraphs`` with ``--format json``). Bad records are left out and listed in ``result``."""
    import json

    scorer = load_model(options.model)
    errors = result.document_errors
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            errors.append({"file": name, "line": number, "error": f"invalid JSON ({reason})"})
            continue
        value = record.get(options.text_field) if isinstance(record, dict) else None
        if not isinstance(value, str):
            errors.append({"file": name, "line": number, "error": f"no text field {options.text_field!r}"})
            continue
        text = value
        if options.fix_mojibake:
            import ftfy

            text = ftfy.fix_encoding(text)
        paragraphs = classify(text, scorer)
        record["cleaned_text"] = render(paragraphs, "text", options.keep)
        record["paragraph_labels"] = [p.label for p in paragraphs]
        result.pages += 1
        for p in paragraphs:
            result.labels[p.label] = result.labels.get(p.label, 0) + 1
        if options.fmt == "json":
            record["paragraphs"] = as_record(paragraphs, options.keep)["paragraphs"]
        yield json.dumps(record, ensure_ascii=False) + "\n"


def clean_file(source: Path, target: Path, options: RunConfig) -> Result:
    """Clean one file into ``target``; never raises for a bad input, and never leaves a partial file."""
    name = str(source)
    if options.skip_existing and target.exists():
        return Result(name, "skipped", "output exists")
    try:
        if options.input_format == "jsonl":
            result = Result(name, "cleaned")
            with open(source, "rb") as handle:
                write_atomic(target, clean_jsonl(handle, name, options, result))
            return result
        with open(source, "rb") as handle:
            data = read_limited(handle, options.max_bytes, name)
        rendered, paragraphs, notes = clean_document(data, name, options)
        write_atomic(target, [output_text(rendered)])
        result = Result(name, "cleaned", notes=notes)
        result.pages = 1
        result.labels = {label: sum(p.label == label for p in paragraphs) for label in LABELS}
        return result
    except InputError as exc:
        return Result(name, "failed", str(exc))
    except ModelError:
        raise
    except UnicodeDecodeError:
        return Result(name, "failed", f"{name}: not valid UTF-8 JSON Lines")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = name if exc.filename in (None, str(source)) else f"{name} -> {exc.filename}"
        return Result(name, "failed", f"{where}: {reason.lower() if reason else 'input/output error'}")


def clean_chunk(tasks: list[tuple[str, str]], options: RunConfig) -> list[Result]:
    """A worker's unit of work: several files, so the model is loaded once per worker and IPC stays small."""
    return [clean_file(Path(s), Path(t), options) for s, t in tasks]


def plan(
    inputs: list[Path], outdir: Path, pattern: str, suffix: str | None, follow_links: bool
) -> tuple[list[tuple[str, str]], list[Result]]:
    """The (input, output) pairs of a batch, and the inputs skipped while walking.

    Folders are walked recursively; outputs mirror each file's path below its input folder. Symbolic links
    are followed only when asked, and a folder reached twice (a link loop) is walked once. Paths are resolved
    once per folder, not once per file: planning is the serial part of a parallel batch.
    """
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"the output folder {outdir} is a file")
    out_root = outdir.resolve()
    resolved_folders: dict[str, str] = {}

    def resolve(path: str, is_link: bool) -> str:
        """``os.path.realpath`` of a file, with its folder's resolution cached (a link is resolved whole)."""
        if is_link:
            return os.path.realpath(path)
        folder, name = os.path.split(path)
        if folder not in resolved_folders:
            resolved_folders[folder] = os.path.realpath(folder or ".")
        return os.path.join(resolved_folders[folder], name)

    tasks: list[tuple[str, str]] = []
    skipped: list[Result] = []
    sources: set[str] = set()
    out_prefix = os.path.join(str(out_root), "")
    for root in inputs:
        if not root.exists():
            skipped.append(Result(str(root), "failed", f"{root}: no such file or folder"))
            continue
        if root.is_dir():
            resolved = root.resolve()
            if out_root == resolved or resolved in out_root.parents:
                raise UsageError(f"the output folder {outdir} lies inside the input folder {root}")
            prefix = len(os.path.join(str(root), ""))
            pairs = [
                (path, is_link, path[prefix:])
                for path, is_link in _walk(str(root), pattern, follow_links, skipped)
            ]
        else:
            pairs = [(str(root), root.is_symlink(), root.name)]
        for path, is_link, relative in pairs:
            if suffix:
                relative = os.path.splitext(relative)[0] + suffix
            target = os.path.join(str(out_root), relative)
            if not resolve(target, False).startswith(out_prefix):
                skipped.append(Result(path, "failed", f"{path}: output would leave the output folder"))
                continue
            sources.add(resolve(path, is_link))
            tasks.append((path, target))
    for _, target in tasks:
        if resolve(target, False) in sources:
            raise UsageError(f"the output {target} would overwrite an input file")
    return tasks, skipped


def _walk(root: str, pattern: str, follow_links: bool, skipped: list[Result]) -> Iterator[tuple[str, bool]]:
    """Files under ``root`` matching ``pattern``, sorted, each with whether it is a symbolic link."""
    import fnmatch

    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in seen:
            skipped.append(Result(folder, "skipped", f"{folder}: folder already visited (link loop)"))
            continue
        seen.add((stat.st_dev, stat.st_ino))
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            skipped.append(Result(folder, "failed", f"{folder}: {(exc.strerror or str(exc)).lower()}"))
            continue
        subfolders = []
        for entry in entries:
            is_dir = entry.is_dir()
            if not is_dir and not fnmatch.fnmatch(entry.name, pattern):
                continue
            if entry.is_symlink() and not follow_links:
                skipped.append(Result(entry.path, "skipped", f"{entry.path}: symbolic link (use --follow-links)"))
            elif is_dir:
                subfolders.append(entry.path)
            else:
                yield entry.path, entry.is_symlink()
        stack.extend(reversed(subfolders))


def run(tasks: list[tuple[str, str]], options: RunConfig) -> Iterator[Result]:
    """Clean every task, yielding results as they finish (in any order when parallel)."""
    chunks = [tasks[i : i + CHUNK_FILES] for i in range(0, len(tasks), CHUNK_FILES)]
    if options.engine == "dask":
        yield from _run_dask(chunks, options)
    elif options.jobs == 1 or len(chunks) <= 1:
        load_model(options.model)  # a broken model fails once, before any file
        for chunk in chunks:
            yield from clean_chunk(chunk, options)
    else:
        yield from _run_forked(chunks, options)


def _run_forked(chunks: list[list[tuple[str, str]]], options: RunConfig) -> Iterator[Result]:
    """Worker processes forked from this one inherit the loaded model (no start-up per worker) and stream
    their results back as each chunk finishes, in any order."""
    import gc
    import multiprocessing

    load_model(options.model)
    gc.freeze()  # the workers' garbage collector leaves the inherited objects (and their pages) alone
    work = partial(clean_chunk, options=options)
    with multiprocessing.get_context("fork").Pool(options.jobs) as pool:
        for results in pool.imap_unordered(work, chunks):
            yield from results


def _run_dask(chunks: list[list[tuple[str, str]]], options: RunConfig) -> Iterator[Result]:
    from dask.distributed import Client, LocalCluster, as_completed

    scheduler = options.scheduler
    cluster = None if scheduler else LocalCluster(n_workers=options.jobs, threads_per_worker=1, processes=True)
    client = Client(scheduler or cluster)
    try:
        futures = client.map(clean_chunk, chunks, options=options, pure=False)
        for future in as_completed(futures):
            yield from future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def remove_partial_files(outdir: Path) -> None:
    """Delete temporary files a killed worker left behind, so an interrupted run leaves only whole files."""
    if outdir.is_dir():
        for path in outdir.rglob(f"*{PART_SUFFIX}"):
            path.unlink(missing_ok=True)


class Progress:
    """A one-line progress display on stderr when it is a terminal; silent otherwise."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, enabled: bool | None = None) -> None:
        self.total, self.stream, self.done, self.start = total, stream, 0, time.monotonic()
        self.enabled = stream.isatty() if enabled is None else enabled
        self._last = 0.0

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and self.done < self.total):
            return
        self._last = now
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate else 0.0
        self.stream.write(f"\r{self.done}/{self.total} files  {rate:,.0f} files/s  ETA {eta:,.0f} s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def summary(results: list[Result], seconds: float) -> str:
    """The closing line of a batch."""
    count = {s: sum(r.status == s for r in results) for s in ("cleaned", "failed", "skipped")}
    found = {label: sum(r.labels.get(label, 0) for r in results) for label in LABELS}
    docs = sum(len(r.document_errors) for r in results)
    extra = f", {docs} bad records" if docs else ""
    return (
        f"{count['cleaned']} files cleaned, {count['failed']} failed, {count['skipped']} skipped{extra}; "
        f"paragraphs labelled {found['editorial']} editorial, {found['promotional']} promotional, "
        f"{found['navigational']} navigational; {seconds:.1f} s"
    )


def error_records(results: Iterable[Result]) -> Iterator[dict]:
    """The JSON Lines of ``--errors``: one per failed file and per bad record."""
    for r in results:
        if r.status == "failed":
            yield {"file": r.source, "error": r.reason}
        yield from r.document_errors
