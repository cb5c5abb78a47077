"""``detector bench``: cold start, warm throughput (text and HTML, first pass and warm), batch throughput, memory
per page shape, WARC streaming and model loading, side by side with trafilatura, boilerpy3 and jusText on the
same pages in the same run, printed as one table.

Measurements alternate between the systems compared, so that a slow moment of a shared machine hits all of
them; ratios are medians of paired runs. Timing belongs here and never in the test suite. Progress goes to
stderr, one line per step.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from detector import markup
from detector.api import classify, classify_html, load_model
from detector.model import load as load_model_file
from detector.model import shipped_model
from detector.pages import load_corpus
from detector.segment import split_paragraphs
from detector.workbench.evaluate import as_html

BIN = Path(sys.executable).parent
WARM_ROUNDS = 5
FOLDER_RUNS = 3


def say(message: str) -> None:
    sys.stderr.write(f"bench: {message}\n")
    sys.stderr.flush()


def run_measured(command: list[str], stdin: Path | None = None) -> float:
    """Wall time (s) of one whole process, which must succeed: a tool that fails at once (a traceback is exit
    1 too) was timed as the fastest start of all."""
    start = time.perf_counter()
    with open(stdin or os.devnull, "rb") as source:
        result = subprocess.run(command, stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(
            f"{Path(command[0]).name} failed (exit {result.returncode}): {_last_line(result.stderr)}"
        )
    return elapsed


def _last_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:200] if lines else "no message"


_RSS_PROBE = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_mb(command: list[str]) -> float:
    """Peak RSS of one whole process, measured from a small probe process: a child forked from this
    benchmark (numpy, pandas and the compared tools loaded) would count this process's memory before its exec.
    The probe and the process run in a session of their own, ended with the benchmark (a SIGTERM to it left
    the measured process running, writing into a folder the benchmark had removed)."""
    probe = subprocess.Popen(
        [sys.executable, "-c", _RSS_PROBE, *command], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, _ = probe.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(probe.pid, signal.SIGKILL)
        probe.wait()
        raise
    code, peak = out.split()
    if probe.returncode != 0 or code != "0":
        raise RuntimeError(f"{Path(command[0]).name} failed (exit {code}) while its peak RSS was measured")
    return int(peak) / 1024


def median_spread(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[0], ordered[-1]


def items_per_second(work: Callable[[str], object], items: list[str]) -> float:
    """Throughput of one in-process pass of ``work`` over ``items``."""
    start = time.perf_counter()
    for item in items:
        work(item)
    return len(items) / (time.perf_counter() - start)


def _competitors() -> dict[str, Callable[[str], object]]:
    """The compared tools' in-process extraction from HTML, those that are installed (each one that is not is
    said once: its row is missing from the table)."""
    tools: dict[str, Callable[[str], object]] = {}
    missing = []
    try:
        import trafilatura

        tools["trafilatura"] = trafilatura.extract
    except ImportError:
        missing.append("trafilatura")
    try:
        from boilerpy3 import extractors

        extractor = extractors.ArticleExtractor(raise_on_failure=False)
        tools["boilerpy3"] = extractor.get_content
    except ImportError:
        missing.append("boilerpy3")
    try:
        import justext

        stoplist = justext.get_stoplist("German")
        tools["jusText"] = lambda page: justext.justext(page.encode("utf-8"), stoplist, encoding="utf-8")
    except ImportError:
        missing.append("jusText")
    if missing and not _SAID:
        say(f"note: {', '.join(missing)} not installed, left out of the table (make install installs them)")
        _SAID.add("missing tools")
    return tools


_SAID: set[str] = set()  # notes said once a run


def _fresh_caches() -> None:
    """Empty the word caches, as a fresh worker has them (the model stays loaded)."""
    from detector.features import char_ngram_ids, class_word_ids, unigram_id
    from detector.markup import _class_words

    for cache in (unigram_id, char_ngram_ids, class_word_ids, _class_words):
        cache.cache_clear()
    scorer = load_model()
    for words in scorer._token_caches:
        words.clear()
    scorer._class_cache.clear()


def warm_rows(texts: list[str], htmls: list[str], html_label: str) -> list[tuple[str, str, str, str]]:
    """Warm in-process throughput on text pages and on HTML pages, with the first pass (empty word caches)
    and the compared tools on the same HTML, alternating round by round."""
    rows = []
    tools = _competitors()
    text_mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    html_mb = sum(len(h.encode("utf-8")) for h in htmls) / 1e6
    rounds: list[dict[str, float]] = []
    for number in range(WARM_ROUNDS):
        say(f"warm round {number + 1}/{WARM_ROUNDS}")
        rates = {}
        for kind, work, pages in (("text", classify, texts), ("html", classify_html, htmls)):
            _fresh_caches()  # each round's first pass beside its warm pass: the ratio is paired, as the others
            rates[f"first {kind}"] = items_per_second(work, pages)
            rates[kind] = items_per_second(work, pages)
        for name, tool in tools.items():
            rates[name] = items_per_second(tool, htmls)
        rounds.append(rates)
    text_rate = statistics.median(r["text"] for r in rounds)
    html_rate = statistics.median(r["html"] for r in rounds)
    first_text = statistics.median(r["first text"] for r in rounds)
    first_html = statistics.median(r["first html"] for r in rounds)
    first_text_ratio = statistics.median(r["first text"] / r["text"] for r in rounds)
    first_html_ratio = statistics.median(r["first html"] / r["html"] for r in rounds)
    rows.append(
        (
            f"warm, text pages in-process ({len(texts)} pages, {text_mb:.1f} MB)",
            f"{text_rate:,.0f} pages/s, {text_rate * text_mb / len(texts):.2f} MB/s",
            "",
            f"first pass {first_text:,.0f} pages/s = {first_text_ratio:.2f}× warm",
        )
    )
    rows.append(
        (
            f"warm, HTML pages in-process ({len(htmls)} {html_label}, {html_mb:.1f} MB)",
            f"{html_rate:,.0f} pages/s, {html_rate * html_mb / len(htmls):.2f} MB/s",
            "",
            f"first pass {first_html:,.0f} pages/s = {first_html_ratio:.2f}× warm",
        )
    )
    for name in tools:
        rate = statistics.median(r[name] for r in rounds)
        ratio = statistics.median(r["html"] / r[name] for r in rounds)
        rows.append(
            (
                f"  {name} on the same HTML pages",
                "",
                f"{rate:,.0f} pages/s, {rate * html_mb / len(htmls):.2f} MB/s",
                f"detector HTML {ratio:.2f}× {name}",
            )
        )
    return rows


def _new_words(size: int) -> str:
    """A page of about ``size`` bytes of made-up words of six to ten letters, forty to a paragraph, nearly all
    different (a seeded generator: the same page every run)."""
    import random

    generator = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    paragraphs: list[str] = []
    length = 0
    while length < size:
        words = ("".join(generator.choices(letters, k=generator.randint(6, 10))) for _ in range(40))
        paragraphs.append(" ".join(words))
        length += len(paragraphs[-1]) + 2
    return "\n\n".join(paragraphs)


def memory_rows(work: Path, max_bytes: int) -> list[tuple[str, str, str, str]]:
    """Peak RSS of clean-article on pages of four shapes, the first three close to a size a user may hand
    it, the last (every word new) at the size where the bound is tightest for it, against the bound of ten
    times the page's bytes plus 40 MB."""
    paragraph = (
        "Der Umsatz stieg im dritten Quartal um vier Prozent auf 2,1 Milliarden Euro, teilte der Konzern mit."
    )
    size = min(max_bytes, 8_000_000)
    shapes = {
        "ordinary text": (paragraph + "\n\n") * (size // (len(paragraph) + 2)),
        "one huge line": (paragraph + " ") * (size // (len(paragraph) + 1)),
        "200,000 tiny paragraphs": "".join(f"Kurs {i % 97}\n\n" for i in range(200_000)),
        "new words throughout": _new_words(1_000_000),  # every word unseen: the word caches fill
    }
    rows: list[tuple[str, str, str, str]] = []
    for name, text in shapes.items():
        say(f"memory: {name}")
        page = work / f"memory-{len(rows)}.txt"
        page.write_text(text, encoding="utf-8")
        megabytes = page.stat().st_size / 1e6
        rss = peak_rss_mb([str(BIN / "clean-article"), str(page)])
        bound = 10 * megabytes + 40
        rows.append(
            (
                f"peak RSS, {name} ({megabytes:.1f} MB page)",
                f"{rss:.0f} MB",
                "",
                f"bound 10× + 40 MB = {bound:.0f} MB: {'within' if rss <= bound else 'OVER'}",
            )
        )
    return rows


def warc_rows(work: Path, html: str) -> list[tuple[str, str, str, str]]:
    """Peak RSS and time of clean-article streaming WARC files of 1,000 and 10,000 HTML responses."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    rows = []
    measured = {}
    for records in (1_000, 10_000):
        say(f"WARC of {records:,} records")
        path = work / f"crawl-{records}.warc.gz"
        with open(path, "wb") as handle:
            writer = WARCWriter(handle, gzip=True)
            body = html.encode("utf-8")
            for i in range(records):
                headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], "HTTP/1.1")
                record = writer.create_warc_record(
                    f"https://example.org/{i}", "response", payload=io.BytesIO(body), http_headers=headers
                )
                writer.write_record(record)
        start = time.perf_counter()
        rss = peak_rss_mb([str(BIN / "clean-article"), str(path)])
        measured[records] = (rss, time.perf_counter() - start)
    for records, (rss, seconds) in measured.items():
        rows.append(
            (
                f"WARC of {records:,} HTML responses, streamed ({records / seconds:,.0f} records/s)",
                f"peak RSS {rss:.0f} MB",
                "",
                "flat" if records == 10_000 and rss <= measured[1_000][0] * 1.2 else "",
            )
        )
    # One crawl file's records shared out among the workers (``detector.workers``): --jobs 2 against 1,
    # alternating, to standard output as a pipeline has it.
    timings: dict[int, list[float]] = {1: [], 2: []}
    for run in range(FOLDER_RUNS):
        for jobs in (1, 2):
            say(f"WARC of 1,000 records, run {run + 1}/{FOLDER_RUNS}, --jobs {jobs}")
            command = [str(BIN / "clean-article"), str(work / "crawl-1000.warc.gz"), "--jobs", str(jobs)]
            timings[jobs].append(run_measured(command))
    speedups = [one / two for one, two in zip(timings[1], timings[2])]
    rows.append(
        (
            "one WARC of 1,000 HTML responses, --jobs 2",
            f"{1_000 / statistics.median(timings[2]):,.0f} records/s",
            f"--jobs 1: {1_000 / statistics.median(timings[1]):,.0f} records/s",
            f"{statistics.median(speedups):.2f}× of --jobs 1 ({min(speedups):.2f}–{max(speedups):.2f})",
        )
    )
    return rows


def site_memory_rows(work: Path, folder: Path, files: int) -> list[tuple[str, str, str, str]]:
    """What the first pass of site memory costs on a folder of ``files`` pages in sites of 100 pages: the
    time of the whole batch (--jobs 1) and the peak RSS, with it and without it (paired runs)."""
    timings: dict[bool, list[float]] = {True: [], False: []}
    rss: dict[bool, float] = {}
    for run in range(FOLDER_RUNS + 1):  # the first for the peak RSS, the others timed
        for memory in (True, False):
            which = "the peak RSS run" if run == 0 else f"run {run}/{FOLDER_RUNS}"
            say(f"folder of {files:,} pages, {which}, site memory {'on' if memory else 'off'}")
            command = [str(BIN / "clean-article"), str(folder), "-o", str(work / f"mem-{memory}-{run}"), "-q"]
            command += ["--jobs", "1"] + ([] if memory else ["--no-site-memory"])
            if run == 0:
                rss[memory] = peak_rss_mb(command)
            else:
                timings[memory].append(run_measured(command))
    ratios = [on / off for on, off in zip(timings[True], timings[False])]
    return [
        (
            f"site memory: folder of {files:,} pages in sites of {min(files, 100)}, --jobs 1",
            f"{statistics.median(timings[True]):.1f} s, peak RSS {rss[True]:.0f} MB",
            f"without: {statistics.median(timings[False]):.1f} s, {rss[False]:.0f} MB",
            f"{statistics.median(ratios):.2f}× the time",
        )
    ]


def _pages(example: Path, pages_root: Path, prefer_pages: bool) -> tuple[list[str], list[str], str]:
    """The text pages and the HTML pages to time, and what they are."""
    devset = example.parent.parent / "devset"
    html_files = sorted(devset.rglob("*.html")) if devset.exists() and not prefer_pages else []
    if html_files:
        htmls = [markup.decode_html(p.read_bytes()) for p in html_files]
        texts = ["\n\n".join(g["text"]) for _, g in load_corpus(devset, suffixes=(".txt",)).groupby("page")]
        label = "real pages of the dev set"
    else:
        corpus = load_corpus(pages_root)
        pages = [g["text"].tolist() for _, g in corpus.groupby("page", sort=False)]
        texts = ["\n\n".join(p) for p in pages]
        htmls = [as_html(p) for p in pages]
        label = f"annotated pages of {pages_root} as minimal HTML"
    if not texts or not htmls:
        where = devset if html_files else pages_root
        raise ValueError(f"{where}: no annotated text page to time (bench times annotated .txt pages and HTML)")
    return texts, htmls, label


def stale_bytecode() -> list[str]:
    """The package's modules whose cached bytecode is missing or older than their source. Where bytecode is not
    written (``PYTHONDONTWRITEBYTECODE``), every start compiles them again, and a cold start would time the
    compiler: a module edited since ``make install`` costs 10 to 25 ms of each start."""
    from importlib.util import cache_from_source

    package = Path(__file__).resolve().parent.parent
    stale = []
    for source in sorted(package.rglob("*.py")):
        cached = Path(cache_from_source(str(source)))
        if not cached.exists() or not _bytecode_matches(cached.read_bytes()[:16], source.stat()):
            stale.append(str(source.relative_to(package.parent)))
    return stale


def _bytecode_matches(header: bytes, info: os.stat_result) -> bool:
    """Whether a .pyc header records the source's modification time and size, as the importer checks them: a
    source edited within the second its bytecode was written keeps the time but not the size, and
    ``compileall`` (which compares the time alone) leaves that bytecode stale."""
    if len(header) < 16 or int.from_bytes(header[4:8], "little") != 0:  # not a timestamp-based .pyc
        return True
    mtime, size = int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little")
    return mtime == int(info.st_mtime) & 0xFFFFFFFF and size == info.st_size & 0xFFFFFFFF


def bench(
    example: Path,
    pages_root: Path,
    runs: int = 15,
    files: int = 10_000,
    train: bool = False,
    prefer_pages: bool = False,
) -> str:
    """The table. Pages: the dev set beside the example (its 23 HTML files and its text pages), else the
    annotated pages of ``pages_root``; those with ``prefer_pages`` (``--pages`` given)."""
    texts, htmls, label = _pages(example, pages_root, prefer_pages)  # first: a folder without pages fails at once
    rows: list[tuple[str, str, str, str]] = []
    work = Path(tempfile.mkdtemp(prefix="detector-bench-"))
    try:
        html_page = work / "page.html"
        html_page.write_text(as_html(split_paragraphs(example.read_text(encoding="utf-8"))), encoding="utf-8")
        clean_cmd = [str(BIN / "clean-article"), str(example)]
        trafilatura = shutil.which("trafilatura", path=str(BIN)) or shutil.which("trafilatura")
        systems: list[Callable[[], float]] = [lambda: run_measured(clean_cmd)]
        if trafilatura:
            cli: str = trafilatura
            systems.append(lambda: run_measured([cli], stdin=html_page))
        systems[0]()  # warm the file cache
        if trafilatura:
            try:
                systems[1]()
            except RuntimeError as exc:
                say(f"note: trafilatura's CLI is left out of the cold start: {exc}")
                trafilatura, systems = None, systems[:1]
        stale = stale_bytecode()
        if stale:
            say(f"warning: no current bytecode for {', '.join(stale)}: each start compiles them (make install)")
        say(f"cold start, {runs} paired runs")
        cold = [[measure() for measure in systems] for _ in range(runs)]
        rss = max(peak_rss_mb(clean_cmd) for _ in range(3))
        m, lo, hi = median_spread([c[0] for c in cold])
        their = ""
        ratio = ""
        if trafilatura:
            tm, tlo, thi = median_spread([c[1] for c in cold])
            their = f"{tm * 1e3:.0f} ({tlo * 1e3:.0f}–{thi * 1e3:.0f})"
            ratio = f"{statistics.median(c[0] / c[1] for c in cold):.2f}× of trafilatura's CLI"
        rows.append(("cold start, one page (ms)", f"{m * 1e3:.0f} ({lo * 1e3:.0f}–{hi * 1e3:.0f})", their, ratio))
        rows.append(("peak RSS of that process (MB)", f"{rss:.0f}", "", ""))
        if stale:
            rows.append(
                ("modules compiled on every start (stale bytecode)", str(len(stale)), "", "run make install")
            )

        rows += warm_rows(texts, htmls, label)

        rows += memory_rows(work, 32 * 1024 * 1024)
        small = min(htmls, key=len) if len(min(htmls, key=len)) < 20_000 else as_html(split_paragraphs(texts[0]))
        rows += warc_rows(work, small)

        folder = work / "in"
        for i in range(files):  # in folders of 100 pages, as crawls store sites; every page distinct
            site = folder / f"site-{i // 100:03}"
            site.mkdir(parents=True, exist_ok=True)
            tag = "".join(chr(ord("a") + int(d)) for d in f"{i:05}")
            (site / f"page-{i:05}.txt").write_text(f"{texts[i % len(texts)]}\n\nKennung {tag}\n", encoding="utf-8")
        timings: dict[int, list[float]] = {1: [], 2: []}
        # Alternating, so that a busy moment of the machine hits both settings. Every run writes a new folder
        # and none is deleted before the end: right after thousands of files are deleted, creating files is
        # slow on some file systems (ext4 without a journal skips recently freed inodes one by one), and the
        # table would measure that instead of the cleaner.
        for run in range(FOLDER_RUNS):
            for jobs in (1, 2):
                say(f"folder of {files:,} pages, run {run + 1}/{FOLDER_RUNS}, --jobs {jobs}")
                out = work / f"out-{jobs}-{run}"
                command = [str(BIN / "clean-article"), str(folder), "-o", str(out), "--jobs", str(jobs), "-q"]
                timings[jobs].append(run_measured(command))
        folder_rates = {jobs: files / statistics.median(values) for jobs, values in timings.items()}
        speedups = [one / two for one, two in zip(timings[1], timings[2])]
        rows.append((f"folder of {files:,} pages, --jobs 1", f"{folder_rates[1]:,.0f} files/s", "", ""))
        rows.append(
            (
                f"folder of {files:,} pages, --jobs 2",
                f"{folder_rates[2]:,.0f} files/s",
                "",
                f"{statistics.median(speedups):.2f}× of --jobs 1 ({min(speedups):.2f}–{max(speedups):.2f})",
            )
        )

        rows += site_memory_rows(work, folder, files)

        say("model loading")
        loads: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(runs):
            for how in loads:  # read (the library, batches) and mapped (one page), alternating
                start = time.perf_counter()
                load_model_file(mapped=how)
                loads[how].append(time.perf_counter() - start)
        read, mapped = (statistics.median(loads[how]) * 1e3 for how in (False, True))
        rows.append(
            (
                "model file size (MB), load time (ms)",
                f"{os.path.getsize(shipped_model()) / 1e6:.1f} MB, read {read:.1f}, mapped {mapped:.1f} ms",
                "",
                "",
            )
        )
        if train:
            say("training on the full corpus")
            command = [str(BIN / "detector"), "train", "--output", str(work / "m.bin")]
            start = time.perf_counter()
            rss = peak_rss_mb(command)  # one training run gives both figures
            elapsed = time.perf_counter() - start
            rows.append(
                ("detector train, full corpus with 5-fold CV", f"{elapsed:.0f} s, peak RSS {rss:.0f} MB", "", "")
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = ("measure", "detector", "compared tool", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [
        f"| {' | '.join(c.ljust(w) for c, w in zip(header, widths))} |",
        f"|{'|'.join('-' * (w + 2) for w in widths)}|",
    ]
    lines += [f"| {' | '.join(c.ljust(w) for c, w in zip(r, widths))} |" for r in rows]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    method = f"cold start and model load: medians of {runs} runs (min–max); warm: {WARM_ROUNDS} rounds; folders:"
    method += (
        f" {FOLDER_RUNS} runs; ratios: medians of the paired runs' ratios, not quotients of the medians shown"
    )
    return f"{time.strftime('%Y-%m-%d')}, {machine}; {method}\n\n" + "\n".join(lines)
