"""One crawl file, every core: the records of one JSON Lines or WARC file are read by the main process and
cleaned by --jobs workers (``detector.workers``), and the output is the same, byte for byte, as with one."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from detector import workers
from tests.conftest import ROOT

PAGE = ROOT / "tests" / "fixtures" / "html" / "quartalszahlen.html"
DEEP = "<div>" * 3000 + "Zu tief" + "</div>" * 3000


_OTHERS: set[int] = set()  # children of this test process that other tests left running (a pool, a Popen)


def _children() -> set[int]:
    """This process's child processes, apart from those it had before the test."""
    path = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    with open(path, encoding="ascii") as handle:
        return {int(pid) for pid in handle.read().split()} - _OTHERS


@pytest.fixture(autouse=True)
def _others():
    _OTHERS.clear()
    _OTHERS.update(_children())


def _square(n: int) -> int:
    if n == 3:
        raise ValueError("drei")
    time.sleep(0.01 * (n % 4))  # (later items finish first now and then: handed on in order all the same)
    return n * n


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_outcomes_come_in_the_items_order_with_the_exceptions_raised():
    items = [((n,), f"tag{n}") if n != 5 else (None, "tag5") for n in range(12)]
    outcomes = list(workers.in_order(_square, items, 3))
    assert [tag for tag, _ in outcomes] == [f"tag{n}" for n in range(12)]
    values = [o if not isinstance(o, BaseException) else repr(o) for _, o in outcomes]
    assert values == [0, 1, 4, "ValueError('drei')", 16, None, 36, 49, 64, 81, 100, 121]
    assert not _children()


def _stuck_or_dead(n: int) -> int:
    if n == 2:
        os.kill(os.getpid(), signal.SIGSTOP)  # stuck where no alarm reaches it
    if n == 4:
        os._exit(3)  # killed (the out-of-memory killer)
    return n


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_a_stuck_worker_is_ended_and_a_dead_one_told_and_only_their_items_fail(monkeypatch):
    monkeypatch.setattr(workers, "WATCH_EVERY", 0.2)
    start = time.monotonic()
    outcomes = [o for _, o in workers.in_order(_stuck_or_dead, [((n,), n) for n in range(7)], 2, hard_limit=1.0)]
    assert time.monotonic() - start < 30
    assert [type(o).__name__ for o in outcomes] == ["int", "int", "Ended", "int", "Died", "int", "int"]
    assert [o for o in outcomes if isinstance(o, int)] == [0, 1, 3, 5, 6]
    assert not _children()  # the ended and the dead reaped, the others ended with the stream


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_a_stream_given_up_half_way_ends_its_workers_at_once():
    def slow(n: int) -> int:
        time.sleep(0.05 if n < 2 else 60)
        return n

    stream = workers.in_order(slow, [((n,), n) for n in range(6)], 2)
    assert next(stream) == (0, 0)
    assert _children()
    start = time.monotonic()
    stream.close()  # (a reader gone, Ctrl-C): the worker a minute into its item is killed, not waited for
    assert time.monotonic() - start < 5
    assert not _children()


def _crawl(folder):
    """A WARC and a JSON Lines file of 150 pages of three hosts (site memory counts them), with the bad records
    a crawl has: a JSON response, a page nested too deep, Latin-1, blank and broken lines."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    page = PAGE.read_text(encoding="utf-8")
    pages = []
    for i in range(150):
        body = page.replace("Maschinenbauer", f"Maschinenbauer Nummer {i}")
        pages.append((f"https://host{i % 3}.example/seite-{i}", body))
    pages[17] = (pages[17][0], DEEP)
    (folder / "warc").mkdir(parents=True)
    (folder / "jsonl").mkdir()
    with open(folder / "warc" / "crawl.warc.gz", "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for i, (url, body) in enumerate(pages):
            kind, data = "text/html; charset=utf-8", body.encode("utf-8")
            if i == 40:
                kind, data = "text/html; charset=iso-8859-1", body.encode("latin-1", "replace")
            if i == 60:
                kind, data = "application/json", b'{"kurs": 12.5}'
            headers = StatusAndHeaders("200 OK", [("Content-Type", kind)], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", io.BytesIO(data), http_headers=headers))
    lines = [json.dumps({"url": url, "html": body, "n": i}) for i, (url, body) in enumerate(pages)]
    lines[30] = '{"url": "https://host0.example/kaputt", "html": '
    lines[31] = ""
    lines[90] = json.dumps({"url": "https://host1.example/ohne"})
    (folder / "jsonl" / "crawl.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


_COUNTED = """
import sys
from detector import cli, workers

forks = []
fork = workers._fork
workers._fork = lambda *args: forks.append(1) or fork(*args)
code = cli.clean_main(sys.argv[1:])
sys.stderr.write(f"forks {len(forks)}\\n")
sys.exit(code)
"""


def _clean(*args):
    return subprocess.run([sys.executable, "-c", _COUNTED, *map(str, args)], capture_output=True, timeout=300)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
@pytest.mark.parametrize("name", ["crawl.warc.gz", "crawl.jsonl"])
def test_one_crawl_file_is_cleaned_by_every_worker_and_written_the_same(tmp_path, name):
    """One big crawl file with --jobs 2 was cleaned by one worker while the other had nothing to do (1.00×
    of --jobs 1): its records are shared out now, and what is written, to standard output or into a folder,
    and what is told (the bad records in order, the notes, the summary's counts) are as with --jobs 1."""
    _crawl(tmp_path / "in")
    source = tmp_path / "in" / name.split(".")[1] / name
    field = ["--html-field", "html"] if name.endswith("jsonl") else []
    one = _clean(source, "--jobs", "1", *field)
    two = _clean(source, "--jobs", "2", *field)
    assert one.returncode == two.returncode == 1, two.stderr.decode()
    assert one.stdout == two.stdout
    assert len(one.stdout.splitlines()) == (148 if name.endswith("warc.gz") else 146)
    told_one, told_two = one.stderr.decode().splitlines(), two.stderr.decode().splitlines()
    assert told_one[:-1] == told_two[:-1] and told_one[-1] == "forks 0"
    assert int(told_two[-1].split()[1]) >= 2, told_two[-1]  # its workers did clean records
    assert any("elements are nested deeper than" in line for line in told_one)
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        _clean(source.parent, "-o", out, "--jobs", jobs, "--errors", out / "errors.jsonl", "-q", *field)
    assert (tmp_path / "out1" / "crawl.jsonl").read_bytes() == (tmp_path / "out2" / "crawl.jsonl").read_bytes()
    errors = (tmp_path / "out1" / "errors.jsonl").read_bytes()
    assert errors == (tmp_path / "out2" / "errors.jsonl").read_bytes()
    assert errors.count(b"\n") == (1 if name.endswith("warc.gz") else 3)


def test_items_worked_on_here_for_their_time_start_no_worker(monkeypatch):
    """Records to standard output are cleaned in the main process for their first tenth of a second: a file of a
    few records costs no fork."""
    monkeypatch.setattr(workers, "_fork", lambda *args: pytest.fail("a worker was started"))
    items = [((n,), n) for n in range(8) if n != 3]
    assert [o for _, o in workers.in_order(_square, items, 2, here=60.0)] == [0, 1, 4, 16, 25, 36, 49]


def _depth(value: object) -> int:
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_an_item_that_cannot_be_pickled_is_worked_on_here():
    """A JSON record nested a few hundred levels deep (json reads it; pickle needs twice the depth) ended the
    whole file with --jobs 2 ("RecursionError ... while pickling an object"): it is cleaned here, as with one."""
    deep: list = []
    for _ in range(900):
        deep = [deep]
    items = [((n,), n) for n in ([1], [[2]], deep, [3])]
    assert [o for _, o in workers.in_order(_depth, items, 2)] == [1, 2, 900, 1]
    assert not _children()


_SWALLOWED = """
import os, signal, sys
import warcio.statusandheaders as headers
from detector import cli

native = headers.to_native_str
sent = []


def to_native_str(*args, **kwargs):  # as warcio calls it, inside a bare "except:"
    if not sent and os.environ.get("STOP_AT") == str(len(calls)):
        sent.append(1)
        os.kill(os.getpid(), signal.SIGTERM)
    return native(*args, **kwargs)


calls = []
parse = headers.StatusAndHeadersParser.parse
headers.StatusAndHeadersParser.parse = lambda *a, **k: calls.append(1) or parse(*a, **k)
headers.to_native_str = to_native_str
sys.exit(cli.clean_main(sys.argv[1:]))
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_stop_that_warcio_swallows_still_stops_the_batch(tmp_path, jobs):
    """warcio decodes each header line inside a bare ``except:``: a SIGTERM or Ctrl-C that came there was lost,
    and the batch ran to its end with exit 0 (1 stop in 10 while a WARC of many headers was read)."""
    from tests.test_html import warc_file

    (tmp_path / "in").mkdir()
    warc_file(tmp_path / "in" / "crawl.warc.gz")
    command = [sys.executable, "-c", _SWALLOWED, tmp_path / "in", "-o", tmp_path / "out", "--jobs", jobs]
    result = subprocess.run(command, capture_output=True, timeout=120, env={**os.environ, "STOP_AT": "3"})
    assert result.returncode == 143, result.stderr.decode()
    assert result.stderr.decode().splitlines()[-1].startswith("interrupted: 0 files cleaned")
    assert not (tmp_path / "out" / "crawl.jsonl").exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_a_dead_workers_item_is_worked_on_again_here_when_asked():
    """Site memory's first pass: a record whose worker was killed was left out of its host's memory without a
    word, and other records of that host came out otherwise than in an undisturbed run."""
    parent = os.getpid()

    def dies_in_a_worker(n: int) -> int:
        if n == 2 and os.getpid() != parent:
            os._exit(3)
        return n

    items = [((n,), n) for n in range(5)]
    assert [o for _, o in workers.in_order(dies_in_a_worker, items, 2, again=True)] == [0, 1, 2, 3, 4]
    assert [type(o).__name__ for _, o in workers.in_order(dies_in_a_worker, items, 2)][2] == "Died"
    assert not _children()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
@pytest.mark.parametrize("started", [0, 1])
def test_workers_that_cannot_be_started_are_done_without(monkeypatch, started):
    """Too many open files or processes (ulimit -n, -u) failed the whole crawl file ("FILE: too many open
    files") where --jobs 1 cleaned it: the items go to the workers there are, or are worked on here."""
    fork = workers._fork
    forks = []

    def limited(*args):
        if len(forks) >= started:
            raise OSError(24, "Too many open files")
        forks.append(1)
        return fork(*args)

    monkeypatch.setattr(workers, "_fork", limited)
    items = [((n,), n) for n in range(8) if n != 3]
    told: list[str] = []
    assert [o for _, o in workers.in_order(_square, items, 2, told=told)] == [0, 1, 4, 16, 25, 36, 49]
    assert len(forks) == started and not _children()
    assert told == [  # (said without a word before)
        "1 of 2 worker processes could be started (too many open files): the records go on"
        if started
        else "no worker process could be started (too many open files): the records are cleaned in this process"
    ]


def test_a_slow_producers_records_come_out_as_they_are_cleaned(tmp_path):
    """Records on standard input from a producer that goes quiet: with --jobs 2 the last ones cleaned waited
    in the main process for the next record to arrive (a live feed lagged by --jobs records, and a stop lost
    them); they come out as they are cleaned, as with --jobs 1."""
    import queue
    import threading

    from tests.conftest import BIN

    page = PAGE.read_text(encoding="utf-8")
    records = "".join(json.dumps({"url": f"https://ex{i % 3}.de/{i}", "html": page}) + "\n" for i in range(80))
    process = subprocess.Popen(
        [str(BIN / "clean-article"), "-", "--jobs", "2", "--input-format", "jsonl", "--html-field", "html"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        process.stdin.write(records.encode("utf-8"))
        process.stdin.flush()  # and the producer goes quiet, its pipe open
        got = [lines.get(timeout=60) for _ in range(80)]  # (the last ones never came while the input was quiet)
        process.stdin.close()
        assert process.wait(timeout=60) == 0, process.stderr.read().decode()
        assert len(got) == 80 and lines.empty()
    finally:
        process.kill()


def test_a_stop_of_an_earlier_run_does_not_end_the_next(tmp_path, capsys):
    """``clean_main`` called again in one process after a run that a stop ended: the stop noted for warcio's
    sake ended the new run at its first WARC record."""
    from detector import batch, cli
    from tests.test_html import warc_file

    warc_file(tmp_path / "crawl.warc.gz")
    batch.stop_raised(KeyboardInterrupt)  # as the handler notes it when a run is stopped
    try:
        assert cli.clean_main([str(tmp_path / "crawl.warc.gz"), "--jobs", "1"]) == 0
    finally:
        batch.forget_stops()
    assert len(capsys.readouterr().out.splitlines()) == 2
