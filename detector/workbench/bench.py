"""``detector bench``: cold start, warm throughput, batch throughput, memory and model loading, measured
side by side with trafilatura on the same pages in the same run, printed as one table.

Timing belongs here and never in the test suite.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from detector.api import classify
from detector.model import load as load_model_file
from detector.model import shipped_model
from detector.pages import load_corpus
from detector.segment import split_paragraphs
from detector.workbench.evaluate import as_html

BIN = Path(sys.executable).parent
WARM_ROUNDS = 5
FOLDER_RUNS = 3


def run_measured(command: list[str], stdin: Path | None = None) -> float:
    """Wall time (s) of one whole process."""
    start = time.perf_counter()
    with open(stdin or os.devnull, "rb") as source:
        result = subprocess.run(command, stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{command[0]} exited with {result.returncode}")
    return elapsed


_RSS_PROBE = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_mb(command: list[str]) -> float:
    """Peak RSS of one whole process, measured from a small probe process: a child forked from this
    benchmark (numpy, pandas and trafilatura loaded) would count this process's memory before its exec."""
    probe = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, *command], capture_output=True, text=True, check=True
    )
    return int(probe.stdout) / 1024


def median_spread(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[0], ordered[-1]


def items_per_second(work: Callable[[str], object], items: list[str]) -> float:
    """Throughput of one in-process pass of ``work`` over ``items``."""
    start = time.perf_counter()
    for item in items:
        work(item)
    return len(items) / (time.perf_counter() - start)


def bench(example: Path, pages_root: Path, runs: int = 15, files: int = 10_000, train: bool = False) -> str:
    rows: list[tuple[str, str, str, str]] = []
    work = Path(tempfile.mkdtemp(prefix="detector-bench-"))
    try:
        html_page = work / "page.html"
        html_page.write_text(as_html(split_paragraphs(example.read_text(encoding="utf-8"))), encoding="utf-8")
        clean_cmd = [str(BIN / "clean-article"), str(example)]
        trafilatura = shutil.which("trafilatura", path=str(BIN)) or shutil.which("trafilatura")
        # Each measurement alternates between the two tools, so that a slow moment of a shared machine hits both.
        systems: list[Callable[[], float]] = [lambda: run_measured(clean_cmd)]
        if trafilatura:
            systems.append(lambda: run_measured([trafilatura], stdin=html_page))
        for measure in systems:
            measure()  # warm the file cache
        cold = [[measure() for measure in systems] for _ in range(runs)]
        rss = max(peak_rss_mb(clean_cmd) for _ in range(3))
        m, lo, hi = median_spread([c[0] for c in cold])
        if trafilatura:
            tm, tlo, thi = median_spread([c[1] for c in cold])
            rows.append(
                (
                    "cold start, one page (ms)",
                    f"{m * 1e3:.0f} ({lo * 1e3:.0f}–{hi * 1e3:.0f})",
                    f"{tm * 1e3:.0f} ({tlo * 1e3:.0f}–{thi * 1e3:.0f})",
                    f"{statistics.median(c[0] / c[1] for c in cold):.2f}× of trafilatura",
                )
            )
        else:
            rows.append(("cold start, one page (ms)", f"{m * 1e3:.0f} ({lo * 1e3:.0f}–{hi * 1e3:.0f})", "n/a", ""))
        rows.append(("peak RSS of that process (MB)", f"{rss:.0f}", "", ""))

        corpus = load_corpus(pages_root)
        pages = [group["text"].tolist() for _, group in corpus.groupby("page", sort=False)]
        texts = ["\n\n".join(p) for p in pages]
        n_paragraphs = sum(map(len, pages))
        traf: Any = None
        with contextlib.suppress(ImportError):
            import trafilatura as traf
        htmls = [as_html(p) for p in pages]
        classify(texts[0])
        rates: list[tuple[float, float]] = []
        for _ in range(WARM_ROUNDS):
            theirs = items_per_second(traf.extract, htmls) if traf is not None else float("nan")
            rates.append((items_per_second(classify, texts), theirs))
        ours_rate = statistics.median(r[0] for r in rates)
        warm = f"{ours_rate:,.0f} pages/s, {ours_rate * n_paragraphs / len(texts):,.0f} paragraphs/s"
        label = f"warm, in-process ({len(texts)} pages, median of {WARM_ROUNDS} alternating rounds)"
        if traf is not None:
            their_rate = statistics.median(r[1] for r in rates)
            ratio = statistics.median(r[0] / r[1] for r in rates)
            rows.append((label, warm, f"{their_rate:,.0f} pages/s", f"{ratio:.1f}× trafilatura"))
        else:
            rows.append((label, warm, "n/a", ""))

        folder = work / "in"
        folder.mkdir()
        for i in range(files):
            (folder / f"page-{i:05}.txt").write_text(texts[i % len(texts)], encoding="utf-8")
        timings: dict[int, list[float]] = {1: [], 2: []}
        # Alternating, so that a busy moment of the machine hits both settings. Every run writes a new folder
        # and none is deleted before the end: right after thousands of files are deleted, creating files is
        # slow on some file systems (ext4 without a journal skips recently freed inodes one by one), and the
        # table would measure that instead of the cleaner.
        for run in range(FOLDER_RUNS):
            for jobs in (1, 2):
                out = work / f"out-{jobs}-{run}"
                command = [str(BIN / "clean-article"), str(folder), "-o", str(out), "--jobs", str(jobs)]
                timings[jobs].append(run_measured(command))
        folder_rates = {jobs: files / statistics.median(values) for jobs, values in timings.items()}
        rows.append((f"folder of {files:,} pages, --jobs 1", f"{folder_rates[1]:,.0f} files/s", "", ""))
        rows.append(
            (
                f"folder of {files:,} pages, --jobs 2",
                f"{folder_rates[2]:,.0f} files/s",
                "",
                f"{statistics.median(one / two for one, two in zip(timings[1], timings[2])):.2f}× of --jobs 1",
            )
        )

        loads = []
        for _ in range(runs):
            start = time.perf_counter()
            load_model_file()
            loads.append(time.perf_counter() - start)
        rows.append(
            (
                "model file size (MB), load time (ms)",
                f"{shipped_model().stat().st_size / 1e6:.1f} MB, {statistics.median(loads) * 1e3:.1f} ms",
                "",
                "",
            )
        )
        if train:
            command = [str(BIN / "detector"), "train", "--out", str(work / "m.bin")]
            start = time.perf_counter()
            rss = peak_rss_mb(command)  # one training run gives both figures
            elapsed = time.perf_counter() - start
            rows.append(
                (
                    "detector train, full corpus with 5-fold CV",
                    f"{elapsed:.0f} s, peak RSS {rss:.0f} MB",
                    "",
                    "",
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = ("measure", "clean-article", "trafilatura", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [
        f"| {' | '.join(c.ljust(w) for c, w in zip(header, widths))} |",
        f"|{'|'.join('-' * (w + 2) for w in widths)}|",
    ]
    lines += [f"| {' | '.join(c.ljust(w) for c, w in zip(r, widths))} |" for r in rows]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    return f"{time.strftime('%Y-%m-%d')}, {machine}; medians of {runs} runs (min–max)\n\n" + "\n".join(lines)
