"""Batch cleaning: folders, mirrored outputs, bad files, resuming, JSON Lines, links, and the Dask engine."""

from __future__ import annotations

import json
import os

import pytest

from detector import clean
from detector.batch import TEMP_SUFFIX, RunConfig, Task, clean_file
from tests.conftest import run

ARTICLE = "Siemens hebt Prognose an\n\nDer Konzern rechnet nun mit einem Umsatzplus von acht Prozent.\n"


@pytest.fixture
def tree(tmp_path):
    """A nested input folder with good and bad files."""
    src = tmp_path / "in"
    (src / "a" / "b").mkdir(parents=True)
    (src / "top.txt").write_text(ARTICLE, encoding="utf-8")
    (src / "a" / "one.txt").write_text(ARTICLE.replace("Siemens", "BASF"), encoding="utf-8")
    (src / "a" / "b" / "latin.txt").write_bytes("Börse München: Kurs fällt um 3 Prozent.\n".encode("cp1252") * 5)
    (src / "a" / "b" / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (src / "a" / "b" / "empty.txt").write_bytes(b"")
    (src / "a" / "ignored.doc").write_text("not matched by the glob", encoding="utf-8")
    return src


def outputs(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_folder_is_mirrored_and_bad_files_do_not_stop_the_batch(tree, tmp_path):
    out = tmp_path / "out"
    errors = tmp_path / "errors.jsonl"
    result = run("clean-article", tree, "-o", out, "--errors", errors, "--jobs", "1")
    assert result.returncode == 1
    assert outputs(out) == ["a/b/empty.txt", "a/b/latin.txt", "a/one.txt", "top.txt"]
    assert (out / "top.txt").read_text(encoding="utf-8") == clean(ARTICLE) + "\n"
    assert (out / "a" / "b" / "empty.txt").read_bytes() == b""
    assert [json.loads(line) for line in errors.read_text().splitlines()] == [
        {"file": str(tree / "a/b/binary.txt"), "error": f"{tree / 'a/b/binary.txt'}: not a text file (PNG image)"}
    ]
    stderr = result.stderr.decode()
    assert f"error: {tree / 'a/b/binary.txt'}: not a text file (PNG image)" in stderr
    assert stderr.strip().splitlines()[-1].startswith("4 files cleaned, 1 failed, 0 skipped;")


def test_parallel_run_gives_the_same_files(tree, tmp_path):
    run("clean-article", tree, "-o", tmp_path / "one", "--jobs", "1")
    many = tree / "many"
    many.mkdir()
    for i in range(80):
        (many / f"p{i:03}.txt").write_text(ARTICLE.replace("acht", str(i)), encoding="utf-8")
    run("clean-article", tree, "-o", tmp_path / "one", "--jobs", "1")
    result = run("clean-article", tree, "-o", tmp_path / "two", "--jobs", "2")
    assert result.returncode == 1
    assert outputs(tmp_path / "one") == outputs(tmp_path / "two")
    for name in outputs(tmp_path / "one"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_skip_existing_resumes(tree, tmp_path):
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "one.txt").write_text("done before\n")
    result = run("clean-article", tree, "-o", out, "--skip-existing", "--jobs", "1")
    assert (out / "a" / "one.txt").read_text() == "done before\n"
    assert (out / "top.txt").exists()
    assert ", 1 skipped;" in result.stderr.decode()


def test_formats_in_batch(tree, tmp_path):
    run("clean-article", tree, "-o", tmp_path / "json", "--format", "json", "--jobs", "1")
    assert "top.json" in outputs(tmp_path / "json")
    record = json.loads((tmp_path / "json" / "top.json").read_text(encoding="utf-8"))
    assert record["paragraphs"][0]["text"] == "Siemens hebt Prognose an"


def test_refuses_to_write_into_the_input_folder(tree):
    result = run("clean-article", tree, "-o", tree / "out")
    assert result.returncode == 2
    assert (
        result.stderr.decode() == f"error: the output folder {tree / 'out'} lies inside the input folder {tree}\n"
    )
    assert not (tree / "out").exists()


def test_refuses_to_overwrite_an_input_file(tree):
    result = run("clean-article", tree / "top.txt", "-o", tree)
    assert result.returncode == 2
    assert "would overwrite an input file" in result.stderr.decode()


def test_unreadable_file_fails_alone(tree, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    (tree / "top.txt").chmod(0)
    result = run("clean-article", tree, "-o", tmp_path / "out", "--jobs", "1")
    assert f"error: {tree / 'top.txt'}: permission denied" in result.stderr.decode()


def test_unwritable_output_leaves_no_partial_file(tree, tmp_path):
    out = tmp_path / "out"
    (out / "top.txt").mkdir(parents=True)  # a folder where the output file should go
    result = clean_file(Task(str(tree / "top.txt"), "text", str(out / "top.txt")), RunConfig())
    assert result.status == "failed"
    assert result.reason.startswith(f"{tree / 'top.txt'}")
    assert not list(out.rglob(f"*{TEMP_SUFFIX}"))


def test_symlinks_are_not_followed_unless_asked_and_loops_end(tree, tmp_path):
    (tree / "a" / "loop").symlink_to(tree, target_is_directory=True)
    (tree / "link.txt").symlink_to(tree / "top.txt")
    result = run("clean-article", tree, "-o", tmp_path / "out", "--jobs", "1")
    assert "link.txt" not in outputs(tmp_path / "out")
    assert "symbolic link (use --follow-links)" in result.stderr.decode()
    result = run("clean-article", tree, "-o", tmp_path / "followed", "--follow-links", "--jobs", "1")
    followed = outputs(tmp_path / "followed")
    assert "top.txt" in followed and "link.txt" not in followed  # the page is the real file's, the link noted
    assert (
        f"{tree / 'link.txt'}: a link to {tree / 'top.txt'}, which is cleaned under its own name"
        in result.stderr.decode()
    )
    assert "link loop" in result.stderr.decode()


def test_a_linked_folder_is_reported_and_walked_only_when_asked(tree, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "one.txt").write_text(ARTICLE, encoding="utf-8")
    (tree / "linked").symlink_to(elsewhere, target_is_directory=True)
    result = run("clean-article", tree, "-o", tmp_path / "out", "--jobs", "1")
    assert f"{tree / 'linked'}: symbolic link (use --follow-links)" in result.stderr.decode()
    assert not any(name.startswith("linked/") for name in outputs(tmp_path / "out"))
    run("clean-article", tree, "-o", tmp_path / "followed", "--follow-links", "--jobs", "1")
    assert "linked/one.txt" in outputs(tmp_path / "followed")


def test_jsonl_in_and_out(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    records = [{"id": 1, "url": "https://example.org/a", "text": ARTICLE}, {"id": 2, "text": ""}]
    lines = [json.dumps(r, ensure_ascii=False) for r in records] + ["{broken", json.dumps({"id": 3})]
    (src / "crawl.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run("clean-article", src, "-o", out, "--input-format", "jsonl", "--jobs", "1")
    assert result.returncode == 1
    written = [json.loads(line) for line in (out / "crawl.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in written] == [1, 2]
    assert written[0]["url"] == "https://example.org/a"
    assert written[0]["cleaned_text"] == clean(ARTICLE)
    assert len(written[0]["paragraph_labels"]) == 2
    assert written[1]["cleaned_text"] == "" and written[1]["paragraph_labels"] == []
    stderr = result.stderr.decode()
    assert f"error: {src / 'crawl.jsonl'}:3: invalid JSON" in stderr
    assert f"error: {src / 'crawl.jsonl'}:4: no text field 'text'" in stderr


def test_jsonl_from_stdin_to_stdout():
    line = json.dumps({"id": 7, "body": ARTICLE}) + "\n"
    result = run("clean-article", "--input-format", "jsonl", "--text-field", "body", stdin=line.encode())
    assert result.returncode == 0
    record = json.loads(result.stdout)
    assert record["id"] == 7 and record["cleaned_text"] == clean(ARTICLE)


def test_dask_engine_matches_the_local_engine(tree, tmp_path):
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    run("clean-article", tree, "-o", tmp_path / "local", "--jobs", "1")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        result = run(
            "clean-article",
            tree,
            "-o",
            tmp_path / "dask",
            "--engine",
            "dask",
            "--scheduler",
            cluster.scheduler_address,
        )
    assert result.returncode == 1  # the binary file fails on the cluster too
    assert outputs(tmp_path / "local") == outputs(tmp_path / "dask")
    for name in outputs(tmp_path / "local"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_cleanly_and_leaves_only_whole_files(tmp_path, jobs):
    import signal
    import subprocess
    import time

    from tests.conftest import BIN, default_signals

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3000):
        (src / f"p{i:04}.txt").write_text(ARTICLE * 20, encoding="utf-8")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [str(BIN / "clean-article"), str(src), "-o", str(out), "--jobs", jobs],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_signals,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("*.txt"))) < 20:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.decode().splitlines()[-1].startswith("interrupted: ")
    assert not list(out.rglob(f"*{TEMP_SUFFIX}"))
    expected = clean(ARTICLE * 20) + "\n"
    written = list(out.glob("*.txt"))
    assert 20 <= len(written) < 3000
    assert all(p.read_text(encoding="utf-8") == expected for p in written)


# Site memory: a first pass over the batch notes which paragraphs recur across a site's pages.

SITE_CHROME = [
    "Startseite | Nachrichten | Aktien | Fonds | Zertifikate",
    "Die Inhalte dieser Seite dienen nur der Information und sind keine Aufforderung zum Kauf oder Verkauf.",
    "Jetzt den kostenlosen Börsenbrief abonnieren und keine Chance mehr verpassen.",
]
SITE_ARTICLES = [
    (
        "Siemens hebt die Prognose an",
        "Der Konzern rechnet nun mit einem Umsatzplus, weil die Industrie wieder mehr bestellt.",
    ),
    (
        "Allianz kauft Versicherer",
        "Der Versicherer übernimmt einen Wettbewerber in Spanien und zahlt dafür in bar.",
    ),
    ("BASF senkt die Kosten", "Der Chemiekonzern streicht Stellen in Ludwigshafen, um die Marge zu verbessern."),
    ("Zalando wächst kräftig", "Der Onlinehändler meldet ein starkes Weihnachtsgeschäft und mehr aktive Kunden."),
    ("Symrise bestätigt Ziele", "Der Duftstoffhersteller bleibt trotz schwacher Nachfrage bei seinen Zielen."),
]


def site_page(headline: str, body: str) -> str:
    return "\n\n".join([SITE_CHROME[0], headline, body, *SITE_CHROME[1:]]) + "\n"


@pytest.fixture
def site(tmp_path):
    """A folder of five pages of one site (the same chrome around different articles) and a folder of two."""
    folder = tmp_path / "in" / "beispielportal"
    folder.mkdir(parents=True)
    for i, (headline, body) in enumerate(SITE_ARTICLES):
        (folder / f"p{i}.txt").write_text(site_page(headline, body), encoding="utf-8")
    small = tmp_path / "in" / "kleinportal"
    small.mkdir()
    for i, (headline, body) in enumerate(SITE_ARTICLES[:2]):
        (small / f"p{i}.txt").write_text(site_page(headline, body), encoding="utf-8")
    return tmp_path / "in"


def editorial_probabilities(path) -> list[float]:
    return [p["probabilities"]["editorial"] for p in json.loads(path.read_text(encoding="utf-8"))["paragraphs"]]


def test_site_memory_weighs_what_recurs_on_a_sites_pages_the_same_with_any_number_of_workers(site, tmp_path):
    one = run("clean-article", site, "-o", tmp_path / "one", "-f", "json", "--jobs", "1")
    two = run("clean-article", site, "-o", tmp_path / "two", "-f", "json", "--jobs", "2")
    off = run("clean-article", site, "-o", tmp_path / "off", "-f", "json", "--no-site-memory")
    assert one.returncode == two.returncode == off.returncode == 0
    assert "note: site memory of 1 site(s), 5 pages" in one.stderr.decode()
    assert "site memory" not in off.stderr.decode()
    for path in sorted((tmp_path / "one").rglob("*.json")):
        relative = path.relative_to(tmp_path / "one")
        assert path.read_bytes() == (tmp_path / "two" / relative).read_bytes()
        with_memory, alone = editorial_probabilities(path), editorial_probabilities(tmp_path / "off" / relative)
        if relative.parts[0] == "kleinportal":  # two pages say nothing about the site
            assert with_memory == alone
            continue
        chrome = [0, 3, 4]  # the paragraphs every page of the site holds
        assert all(with_memory[i] < alone[i] for i in chrome), (relative, with_memory, alone)


def test_a_folder_of_pages_of_different_sites_is_cleaned_as_without_memory(tmp_path):
    """Nothing recurs across them: every paragraph reads, and is decided, as without site memory."""
    folder = tmp_path / "in"
    folder.mkdir()
    portals = ["Nordkurier", "Alpenblatt", "Hafenbote", "Rheinpost", "Spreekurier"]
    for portal, (headline, body) in zip(portals, SITE_ARTICLES):
        page = f"Startseite {portal}\n\n{headline}\n\n{body}\n\nImpressum des {portal}\n"
        (folder / f"{portal}.txt").write_text(page, encoding="utf-8")
    memory = run("clean-article", folder, "-o", tmp_path / "memory", "-f", "json", "--jobs", "1")
    off = run("clean-article", folder, "-o", tmp_path / "off", "-f", "json", "--no-site-memory")
    assert memory.returncode == off.returncode == 0
    assert "note: site memory of 1 site(s), 5 pages" in memory.stderr.decode()
    assert len(outputs(tmp_path / "off")) == 5
    for name in outputs(tmp_path / "off"):
        assert (tmp_path / "memory" / name).read_bytes() == (tmp_path / "off" / name).read_bytes()


def test_site_memory_on_dask_gives_what_local_workers_give(site, tmp_path):
    pytest.importorskip("dask.distributed")
    local = run("clean-article", site, "-o", tmp_path / "local", "-f", "json", "--jobs", "1")
    dask = run("clean-article", site, "-o", tmp_path / "dask", "-f", "json", "--engine", "dask", "--jobs", "2")
    assert local.returncode == dask.returncode == 0, dask.stderr
    assert "note: site memory of 1 site(s), 5 pages" in dask.stderr.decode()
    assert outputs(tmp_path / "local") == outputs(tmp_path / "dask")
    for name in outputs(tmp_path / "local"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes()


def test_the_library_gives_what_the_batch_gives_with_the_memory_of_the_same_pages(site, tmp_path):
    from detector import classify, site_memory

    run("clean-article", site, "-o", tmp_path / "out", "-f", "json", "--jobs", "1")
    pages = sorted((site / "beispielportal").glob("*.txt"))
    memory = site_memory(p.read_text(encoding="utf-8") for p in pages)
    for page in pages:
        expected = editorial_probabilities(tmp_path / "out" / "beispielportal" / page.with_suffix(".json").name)
        found = [p.probabilities["editorial"] for p in classify(page.read_text(encoding="utf-8"), memory=memory)]
        assert found == pytest.approx(expected, abs=1e-6)
    assert classify(
        site_page(*SITE_ARTICLES[0]), memory=site_memory([site_page(*SITE_ARTICLES[0])] * 5)
    ) == classify(site_page(*SITE_ARTICLES[0]))  # one page five times is one page: no memory


def test_site_memory_decodes_text_pages_given_as_bytes_as_clean_article_does():
    """Bytes were decoded as UTF-8 alone: UTF-16 or Windows-1252 pages gave a memory that matched nothing."""
    from detector import classify, site_memory

    pages = [site_page(*article) for article in SITE_ARTICLES]
    expected = classify(pages[0], memory=site_memory(pages))
    assert expected != classify(pages[0])  # the memory tells something
    for codec in ("utf-8", "utf-16", "cp1252"):
        assert classify(pages[0], memory=site_memory([p.encode(codec) for p in pages])) == expected, codec


def test_json_lines_records_share_the_memory_of_their_host(tmp_path):
    records = [
        {"url": f"https://www.beispielportal.de/a/{i}", "text": site_page(*a)} for i, a in enumerate(SITE_ARTICLES)
    ]
    records.append({"url": "https://anderes-portal.de/x", "text": site_page(*SITE_ARTICLES[0])})
    records.append({"text": site_page(*SITE_ARTICLES[1])})  # no url: no site
    source = tmp_path / "pages.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    outputs_by_mode = {}
    for mode in ("memory", "off"):
        extra = ("--no-site-memory",) if mode == "off" else ()
        result = run("clean-article", source, "-f", "json", *extra)
        assert result.returncode == 0
        outputs_by_mode[mode] = [json.loads(line) for line in result.stdout.decode().splitlines()]
    memory, off = outputs_by_mode["memory"], outputs_by_mode["off"]
    assert [r["url"] for r in memory[:5]] == [r["url"] for r in records[:5]]
    for i in range(5):
        assert memory[i]["paragraphs"][0]["probabilities"] != off[i]["paragraphs"][0]["probabilities"]
    assert memory[5:] == off[5:]  # a host with one page, a record without a url: each on its own


def test_a_url_crawled_twice_in_one_file_is_one_page_of_its_sites_memory(tmp_path):
    """A recrawl of a page whose copies differ by a line (a new teaser, an updated headline) counted as two
    pages: its article recurred on "another" page of the site and looked like chrome."""
    records = [
        {"url": f"https://www.beispielportal.de/a/{i}", "text": site_page(*a)} for i, a in enumerate(SITE_ARTICLES)
    ]
    headline, body = SITE_ARTICLES[0]
    again = {
        "url": "http://beispielportal.de/a/0#kommentare",
        "text": site_page(headline + " (aktualisiert)", body),
    }
    found = {}
    for name, lines in (("once", records), ("twice", [*records, again])):
        source = tmp_path / f"{name}.jsonl"
        source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
        result = run("clean-article", source, "-f", "json")
        assert result.returncode == 0, result.stderr
        found[name] = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert found["twice"][:5] == found["once"]
    assert found["twice"][5]["cleaned_text"] == found["once"][0]["cleaned_text"].replace(
        headline, headline + " (aktualisiert)"
    )


def test_one_gzipped_json_lines_file_is_read_and_its_bad_records_reach_the_errors_file(tmp_path):
    """A ``.jsonl.gz`` named alone was read as compressed bytes; ``--errors`` without ``-o`` was ignored; a
    field that is there but not a string was "no text field"; JSON's own message ended in "at"."""
    import gzip

    lines = [
        json.dumps({"id": 1, "text": ARTICLE}),
        '{"id": 2, "text": "a\x01b"}',
        json.dumps({"id": 3, "text": 42}),
        json.dumps({"id": 4, "text": None}),
        json.dumps([1, 2]),
        json.dumps({"id": 6}),
    ]
    source = tmp_path / "crawl.jsonl.gz"
    source.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    errors = tmp_path / "errors.jsonl"
    result = run("clean-article", source, "--errors", errors)
    assert result.returncode == 1
    assert [json.loads(line)["id"] for line in result.stdout.decode().splitlines()] == [1]
    expected = [
        (2, "invalid JSON (Invalid control character at column 21)"),
        (3, "the text field 'text' is a number, not a string"),
        (4, "the text field 'text' is null, not a string"),
        (5, "not a JSON object but an array"),
        (6, "no text field 'text'"),
    ]
    assert result.stderr.decode().splitlines() == [f"error: {source}:{n}: {reason}" for n, reason in expected]
    records = [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]
    assert records == [{"file": str(source), "line": n, "error": reason} for n, reason in expected]


def test_a_failed_page_without_o_reaches_the_errors_file(tmp_path):
    source = tmp_path / "page.html"
    source.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    errors = tmp_path / "errors.jsonl"
    result = run("clean-article", source, "--errors", errors)
    assert (result.returncode, result.stdout) == (1, b"")
    reason = f"{source}: not a text file (PNG image)"
    assert result.stderr.decode() == f"error: {reason}\n"
    assert [json.loads(line) for line in errors.read_text().splitlines()] == [
        {"file": str(source), "error": reason}
    ]
    fine = tmp_path / "fine.txt"
    fine.write_text(ARTICLE, encoding="utf-8")
    assert run("clean-article", fine, "--errors", errors).returncode == 0
    assert errors.read_bytes() == b""  # the file of this run: no error


def test_the_errors_file_through_a_link_or_on_a_device_is_written_not_replaced(tmp_path):
    """``--errors`` was written beside its path and renamed over it: a symbolic link became a file (its target
    never written) and, as root, ``--errors /dev/null`` replaced the machine's /dev/null by a file."""
    import stat

    src = tmp_path / "src"
    src.mkdir()
    (src / "bad.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    link = tmp_path / "errors-link.jsonl"
    link.symlink_to(tmp_path / "errors-target.jsonl")
    result = run("clean-article", src, "-o", tmp_path / "out", "--errors", link, "--jobs", "1")
    assert result.returncode == 1
    assert link.is_symlink() and "not a text file" in (tmp_path / "errors-target.jsonl").read_text()
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of the test's own
    except (PermissionError, OSError):
        pytest.skip("making a device node needs root")
    for output in (["-o", tmp_path / "out2", "--jobs", "1"], []):
        result = run("clean-article", src if output else src / "bad.txt", *output, "--errors", device)
        assert result.returncode == 1
        assert stat.S_ISCHR(device.lstat().st_mode), "the device was replaced by a file"


def test_an_errors_pipe_that_nobody_reads_is_an_error_not_a_hang(tmp_path):
    """Opened after the batch with its signals ignored, a FIFO without a reader blocked for ever."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text(ARTICLE, encoding="utf-8")
    fifo = tmp_path / "errors.fifo"
    os.mkfifo(fifo)
    result = run("clean-article", tmp_path / "src", "-o", tmp_path / "out", "--errors", fifo)
    assert result.returncode == 1
    assert f"error: {fifo}: a pipe that nobody reads" in result.stderr.decode()
    assert (tmp_path / "out" / "a.txt").read_text(encoding="utf-8") == clean(ARTICLE) + "\n"


def test_a_cut_or_damaged_gzipped_json_lines_file_keeps_its_whole_records(tmp_path):
    """In a batch a cut .jsonl.gz lost every record ("cannot be cleaned (EOFError ...)"), and bytes after its
    last member failed it whole."""
    import gzip

    lines = "".join(json.dumps({"id": i, "text": ARTICLE}) + "\n" for i in range(10)).encode()
    src = tmp_path / "src"
    src.mkdir()
    (src / "cut.jsonl.gz").write_bytes(gzip.compress(lines)[:-30])
    (src / "junk.jsonl.gz").write_bytes(gzip.compress(lines) + b"JUNK")
    (src / "padded.jsonl.gz").write_bytes(gzip.compress(lines) + bytes(100))
    out = tmp_path / "out"
    result = run("clean-article", src, "-o", out, "--jobs", "1")
    assert result.returncode == 1
    kept = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in out.iterdir()}
    assert kept["junk.jsonl"] == kept["padded.jsonl"] == 10 and 1 <= kept["cut.jsonl"] <= 9
    stderr = result.stderr.decode()
    assert (
        f"{src / 'cut.jsonl.gz'}:{kept['cut.jsonl'] + 1}: truncated gzip data: the file ends inside this line"
        in stderr
    )
    assert f"{src / 'junk.jsonl.gz'}:11: damaged gzip data, the rest is not read" in stderr
    assert "padded" not in stderr


def test_a_resumed_run_keeps_the_bad_records_of_the_files_it_skips(tmp_path):
    """``--skip-existing`` skipped a file whose output had been written without its bad records, and the
    rewritten errors file (and the exit code) forgot them."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jsonl").write_text(json.dumps({"text": ARTICLE}) + "\n{broken\n", encoding="utf-8")
    (src / "b.txt").write_text(ARTICLE, encoding="utf-8")
    errors = tmp_path / "errors.jsonl"
    first = run("clean-article", src, "-o", tmp_path / "out", "--errors", errors, "--jobs", "1")
    assert first.returncode == 1
    before = errors.read_text(encoding="utf-8")
    again = run("clean-article", src, "-o", tmp_path / "out", "--errors", errors, "--skip-existing", "--jobs", "1")
    assert again.returncode == 1
    assert errors.read_text(encoding="utf-8") == before != ""


@pytest.mark.parametrize("chunk", [1, 2, 7, 65536])
@pytest.mark.parametrize("padding", [b"", b"\0", b"\0" * 70000])
def test_gunzipped_reads_every_member_whatever_the_reads_of_its_source(chunk, padding):
    """Members (one empty), zero padding and the two bytes of a member's magic split over two reads."""
    import gzip
    import io
    import random
    import zlib

    from detector.batch import Gunzipped

    rng = random.Random(1)
    parts = [bytes(rng.getrandbits(8) for _ in range(n)) for n in (1000, 0, 70000, 5)]
    data = b"".join(gzip.compress(p) for p in parts)

    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data, self.at = data, 0

        def read(self, size: int = -1) -> bytes:
            out = self.data[self.at : self.at + min(size if size > 0 else chunk, chunk)]
            self.at += len(out)
            return out

    def everything(reader: Gunzipped) -> bytes:
        return b"".join(iter(lambda: reader.read(4096), b""))

    assert everything(Gunzipped(Trickle(data + padding))) == b"".join(parts)
    with pytest.raises(zlib.error, match="after a gzip member are not gzip data"):
        everything(Gunzipped(Trickle(data + padding + b"\x1f")))
    cut = Gunzipped(Trickle(data[:-3]))
    with pytest.raises(EOFError):
        everything(cut)
    assert cut.cut


def test_a_page_a_rerun_drops_loses_its_earlier_output_and_says_so_once(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    body = " ".join(
        ["Der Konzern rechnet für das laufende Geschäftsjahr nun mit einem Umsatzplus von acht Prozent."] * 5
    )
    (src / "a.txt").write_text(ARTICLE + "\n" + "\n\n".join([body] * 3) + "\n", encoding="utf-8")
    (src / "menu.txt").write_text("Startseite\n\nImpressum\n\nKontakt\n", encoding="utf-8")
    out = tmp_path / "out"
    assert run("clean-article", src, "-o", out, "--jobs", "1").returncode == 0
    assert (out / "menu.txt").exists()
    again = run("clean-article", src, "-o", out, "--drop-pages", "no_article", "--jobs", "1")
    assert again.returncode == 0
    assert not (out / "menu.txt").exists() and (out / "a.txt").exists()
    notes = [line for line in again.stderr.decode().splitlines() if "menu.txt" in line]
    assert notes == [f"note: {src / 'menu.txt'}: page dropped (no_article)"]


def test_records_dropped_on_standard_output_are_counted_in_a_note(tmp_path):
    source = tmp_path / "crawl.jsonl"
    source.write_text(json.dumps({"text": "Startseite\n\nImpressum"}) + "\n", encoding="utf-8")
    result = run("clean-article", source, "--drop-pages", "no_article")
    assert (result.returncode, result.stdout) == (0, b"")
    assert result.stderr.decode() == f"note: {source}: 1 record(s) dropped (no_article 1)\n"


def test_folders_are_walked_for_page_names_in_any_case(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "A.TXT").write_text(ARTICLE, encoding="utf-8")
    (src / "b.Html").write_text("<p>" + ARTICLE.replace("\n\n", "</p><p>") + "</p>", encoding="utf-8")
    result = run("clean-article", src, "-o", tmp_path / "out", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["A.TXT", "b.txt"]


def test_forced_encoding_reads_json_lines_too(tmp_path):
    source = tmp_path / "latin.jsonl"
    source.write_bytes('{"text": "Die Aktie von Müller stieg am Montag um drei Prozent."}\n'.encode("latin-1"))
    result = run("clean-article", source, "--encoding", "latin-1", "-k", "editorial,promotional,navigational")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cleaned_text"] == "Die Aktie von Müller stieg am Montag um drei Prozent."


# --- a time limit per page (--timeout) --------------------------------------------------------------------------

_STUCK_RUN = """
import os, signal, sys
from detector import batch, cli

pages, labels = batch.page_paragraphs, batch.label_page


def stuck(content):
    if "ENDLOS" in content:  # a page that loops in Python
        while True:
            pass
    if "STARR" in content:  # a page stuck outside Python: the alarm cannot stop it
        os.kill(os.getpid(), signal.SIGSTOP)


def page_paragraphs(data, *args, **kwargs):
    stuck(data.decode("utf-8", "replace"))
    return pages(data, *args, **kwargs)


def label_page(content, *args, **kwargs):
    stuck(content)
    return labels(content, *args, **kwargs)


batch.page_paragraphs, batch.label_page, batch.HARD_GRACE = page_paragraphs, label_page, 1.0
sys.exit(cli.clean_main(sys.argv[1:]))
"""


def _run_stuck(tmp_path, *args):
    import subprocess
    import sys

    script = tmp_path / "stuck.py"
    script.write_text(_STUCK_RUN, encoding="utf-8")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, script, *map(str, args)], capture_output=True, timeout=120, cwd=root)


def _pages(folder, stuck: dict[str, str], count: int = 6) -> list[str]:
    folder.mkdir()
    names = [f"seite{i}.txt" for i in range(count)]
    for name in names:
        text = ARTICLE.replace("acht", stuck[name]) if name in stuck else ARTICLE
        (folder / name).write_text(text, encoding="utf-8")
    return names


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_page_that_loops_fails_on_its_time_and_the_batch_goes_on(tmp_path, jobs):
    """A page that never ends (a loop in a parser on input no one foresaw) held the batch for ever: with
    --timeout it fails with its reason, every other page is written, and no part of a file is left."""
    names = _pages(tmp_path / "in", {"seite2.txt": "ENDLOS"})
    result = _run_stuck(tmp_path, tmp_path / "in", "-o", tmp_path / "out", "--timeout", "1", "--jobs", jobs)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "seite2.txt: took longer than --timeout (1 s); not cleaned" in stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [n for n in names if n != "seite2.txt"]
    assert all((tmp_path / "out" / n).read_text(encoding="utf-8") == ARTICLE for n in written)


def test_a_worker_stuck_outside_python_is_ended_and_only_its_page_fails(tmp_path):
    """A page stuck where no alarm reaches (a system call that never returns, a stopped worker) hung the batch:
    its worker is ended once the page is over its time and a grace, its page fails, the others of its chunk
    are cleaned by a new worker."""
    names = _pages(tmp_path / "in", {"seite1.txt": "STARR"}, count=9)
    args = ("--timeout", "1", "--jobs", "2", "--no-site-memory")  # (the first pass would find it: see below)
    result = _run_stuck(tmp_path, tmp_path / "in", "-o", tmp_path / "out", *args)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "seite1.txt: took longer than --timeout (1 s): its worker did not stop and was ended" in stderr
    assert "worker process died" not in stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [n for n in names if n != "seite1.txt"]
    assert "8 files cleaned, 1 failed" in stderr.splitlines()[-1], stderr.splitlines()[-1]


def test_a_record_over_its_time_fails_alone(tmp_path):
    """In a file of records the time limit is each record's: the record that does not end is a bad record
    with its reason, the records after it are cleaned (to a file and to standard output)."""
    records = [
        {"id": i, "text": ARTICLE.replace("acht", word)} for i, word in enumerate(["neun", "ENDLOS", "zehn"])
    ]
    source = tmp_path / "in" / "seiten.jsonl"
    source.parent.mkdir()
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    errors = tmp_path / "errors.jsonl"
    result = _run_stuck(tmp_path, source.parent, "-o", tmp_path / "out", "--timeout", "1", "--errors", errors)
    assert result.returncode == 1, result.stderr.decode()
    written = [json.loads(line) for line in (tmp_path / "out" / "seiten.jsonl").read_text().splitlines()]
    assert [r["id"] for r in written] == [0, 2]
    assert [json.loads(line) for line in errors.read_text().splitlines()] == [
        {"file": str(source), "line": 2, "error": "took longer than --timeout (1 s); not cleaned"}
    ]
    result = _run_stuck(tmp_path, source, "--timeout", "1")
    assert [json.loads(line)["id"] for line in result.stdout.decode().splitlines()] == [0, 2]
    assert "seiten.jsonl:2: took longer than --timeout (1 s); not cleaned" in result.stderr.decode()
    if not _marks_work(tmp_path):
        return
    # --skip-existing kept the output without the record as finished (the record was never tried again)
    again = run("clean-article", source.parent, "-o", tmp_path / "out", "--skip-existing", "--errors", errors)
    assert again.returncode == 0, again.stderr.decode()
    assert (
        again.stderr.decode()
        .splitlines()[-1]
        .startswith(
            "1 file cleaned, 0 failed, 0 skipped, 1 cleaned again (their outputs were missing records that failed "
            "for their time or a dead worker)"
        )
    )
    written = [json.loads(line) for line in (tmp_path / "out" / "seiten.jsonl").read_text().splitlines()]
    assert [r["id"] for r in written] == [0, 1, 2] and errors.read_text() == ""
    again = run("clean-article", source.parent, "-o", tmp_path / "out", "--skip-existing")
    assert again.stderr.decode().splitlines()[-1].startswith("0 files cleaned, 0 failed, 1 skipped;")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "--timeout must be 0 (no limit) or a number of seconds"),
        ("nan", "--timeout must be 0 (no limit) or a number of seconds"),
    ],
)
def test_a_time_limit_out_of_range_is_a_usage_error(tmp_path, value, message):
    (tmp_path / "seite.txt").write_text(ARTICLE, encoding="utf-8")
    result = run("clean-article", tmp_path / "seite.txt", "--timeout", value)
    assert (result.returncode, result.stdout) == (2, b""), result.stderr
    assert message in result.stderr.decode()
    result = run("clean-article", tmp_path / "seite.txt", "--timeout", "5", "--engine", "dask")
    assert result.returncode == 2 and b"--timeout is for the local engine" in result.stderr


def test_a_warc_record_over_its_time_fails_alone_with_its_url(tmp_path):
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    source = tmp_path / "crawl.warc"
    with open(source, "wb") as handle:
        writer = WARCWriter(handle, gzip=False)
        for i, word in enumerate(["neun", "ENDLOS", "zehn"]):
            body = f"<html><body><h1>Siemens hebt Prognose an</h1><p>Plus von {word} Prozent.</p></body></html>"
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            record = writer.create_warc_record(
                f"https://ex.de/{i}", "response", payload=io.BytesIO(body.encode()), http_headers=headers
            )
            writer.write_record(record)
    result = _run_stuck(tmp_path, source, "--timeout", "1", "--no-site-memory")
    assert result.returncode == 1, result.stderr.decode()
    assert [json.loads(line)["url"] for line in result.stdout.decode().splitlines()] == [
        "https://ex.de/0",
        "https://ex.de/2",
    ]
    assert "crawl.warc record 2: took longer than --timeout (1 s); not cleaned" in result.stderr.decode()


def test_a_stop_while_an_input_is_opened_stops_the_batch(tmp_path, monkeypatch):
    """SIGTERM that came while a page's file object was being made (``os.fdopen``, which closes the descriptor
    when it is interrupted) had the descriptor closed a second time: the OSError of that close replaced the stop,
    the page failed with "bad file descriptor" and the batch went on to its end (exit 1, not 143)."""
    from detector import batch

    page = tmp_path / "seite.txt"
    page.write_text(ARTICLE, encoding="utf-8")

    class Stop(BaseException):
        pass

    def interrupted_fdopen(descriptor, *args):
        os.close(descriptor)  # as io.open closes the raw file it made when the stop comes after it
        raise Stop

    monkeypatch.setattr(os, "fdopen", interrupted_fdopen)
    with pytest.raises(Stop):
        batch.open_input(str(page), "seite.txt", walked=True)


def test_an_input_swapped_for_a_link_after_planning_is_not_followed(tmp_path):
    """An input file replaced by a symbolic link while the batch ran was followed: whatever it pointed to (a
    file outside the input folder) was cleaned and written into the output. Links that were there when the
    batch was planned are followed as before when named or asked for."""
    from pathlib import Path

    from detector import batch

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text(ARTICLE, encoding="utf-8")
    secret = tmp_path / "geheim.txt"
    secret.write_text(
        "Das Passwort des Depots lautet Sonnenblume und gilt bis Ende des Monats.\n", encoding="utf-8"
    )
    (tmp_path / "other.txt").write_text(ARTICLE, encoding="utf-8")
    named = tmp_path / "named.txt"
    named.symlink_to(tmp_path / "other.txt")
    config = batch.RunConfig(run_id="test", output_root=str(out))
    out.mkdir()
    planned = batch.plan([str(folder), str(named)], out, config).tasks
    (folder / "b.txt").unlink()
    (folder / "b.txt").symlink_to(secret)  # swapped after the plan
    results = {Path(r.source).name: r for r in batch.run(planned, config)}
    assert results["b.txt"].status == "failed"
    assert results["b.txt"].reason.endswith(
        "b.txt: became a symbolic link after the batch was planned: not followed"
    )
    assert not (out / "b.txt").exists()
    assert results["a.txt"].status == results["named.txt"].status == "cleaned"
    assert (out / "named.txt").read_text(encoding="utf-8") == ARTICLE


def test_one_page_to_standard_output_has_the_time_limit_too(tmp_path):
    """`clean-article page.txt` (and a page on standard input) ran for ever on a page that does not end: the
    time limit applied to batches and records only. The page fails with its reason and writes nothing."""
    page = tmp_path / "seite.txt"
    page.write_text(ARTICLE.replace("acht", "ENDLOS"), encoding="utf-8")
    result = _run_stuck(tmp_path, page, "--timeout", "1")
    assert (result.returncode, result.stdout) == (1, b""), result.stderr.decode()
    assert result.stderr.decode() == f"error: {page}: took longer than --timeout (1 s); not cleaned\n"
    (tmp_path / "gut.txt").write_text(ARTICLE, encoding="utf-8")
    result = _run_stuck(tmp_path, tmp_path / "gut.txt", "--timeout", "1")
    assert (result.returncode, result.stdout.decode()) == (0, ARTICLE), result.stderr.decode()


def test_a_slow_reader_does_not_count_against_the_time_limit(tmp_path):
    """The time limit is the cleaning's: a page whose reader waits (`| less`) is not failed while its output
    waits in the pipe."""
    import subprocess
    import time

    from tests.conftest import BIN

    paragraph = "Der Konzern rechnet nun mit einem Umsatzplus von acht Prozent im laufenden Geschäftsjahr."
    text = "\n\n".join(f"{paragraph} Absatz {i}." for i in range(4000)) + "\n"
    page = tmp_path / "lang.txt"
    page.write_text(text, encoding="utf-8")
    process = subprocess.Popen(
        [str(BIN / "clean-article"), str(page), "--timeout", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # The pipe is full long before: the writer waits longer than the limit. The limit leaves the cleaning itself
    # room on a loaded machine (1 s failed now and then beside a second test process).
    time.sleep(5)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    assert len(out) > 1 << 17 and out.decode().startswith(paragraph)


def test_one_file_of_records_with_more_jobs_has_a_worker_that_can_be_ended(tmp_path):
    """One file of records (a big crawl) with --jobs 2 or more was cleaned in the main process, where a page
    stuck outside Python is never ended, and a record stuck in a worker lost its whole file."""
    source = tmp_path / "recs" / "seiten.jsonl"
    source.parent.mkdir()
    words = ["neun", "STARR", "zehn", "elf"]
    source.write_text(
        "".join(json.dumps({"id": i, "text": ARTICLE.replace("acht", w)}) + "\n" for i, w in enumerate(words)),
        encoding="utf-8",
    )
    errors = tmp_path / "errors.jsonl"
    result = _run_stuck(
        tmp_path, source.parent, "-o", tmp_path / "out2", "--timeout", "1", "--jobs", "2", "--errors", errors
    )
    assert result.returncode == 1, result.stderr.decode()
    written = (tmp_path / "out2" / "seiten.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in written] == [0, 2, 3]
    assert [json.loads(line) for line in errors.read_text().splitlines()] == [
        {
            "file": str(source),
            "line": 2,
            "error": "took longer than --timeout (1 s): its worker did not stop and was ended; not cleaned",
        }
    ]


def test_an_ended_worker_costs_no_count_and_no_minute(tmp_path):
    """After a worker was ended, the files of its share it had written were cleaned again and, with
    --skip-existing, counted as skipped ("14 cleaned, 1 skipped" for 15 written into an empty folder); a second
    page stuck at the same time waited a minute and then ran its whole time again."""
    import time

    names = _pages(tmp_path / "in", {"seite1.txt": "STARR", "seite9.txt": "STARR"}, count=16)
    begun = time.monotonic()
    args = ("--timeout", "1", "--jobs", "2", "--skip-existing", "--no-site-memory")
    result = _run_stuck(tmp_path, tmp_path / "in", "-o", tmp_path / "out", *args)
    stderr = result.stderr.decode()
    assert result.returncode == 1 and time.monotonic() - begun < 40, stderr
    assert stderr.splitlines()[-1].startswith("14 files cleaned, 2 failed, 0 skipped"), stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        n for n in sorted(names) if n not in ("seite1.txt", "seite9.txt")
    ]


def test_a_page_over_its_time_in_site_memorys_first_pass_is_not_run_again(tmp_path):
    """A folder of three or more pages: the page that went over its time in the first pass ran its whole time
    again in the second."""
    import time

    _pages(tmp_path / "in", {"seite1.txt": "ENDLOS"}, count=3)
    begun = time.monotonic()
    result = _run_stuck(tmp_path, tmp_path / "in", "-o", tmp_path / "out", "--timeout", "2", "--jobs", "1")
    stderr = result.stderr.decode()
    assert result.returncode == 1 and time.monotonic() - begun < 3.9, stderr
    assert "seite1.txt: took longer than --timeout (2 s); not cleaned (in site memory's first pass)" in stderr


def test_a_record_over_its_time_in_the_first_pass_leaves_the_others_counted(tmp_path, monkeypatch):
    """A JSON Lines record over its time in site memory's first pass ended the count of the file: no record
    after it was remembered, and their labels changed without a word."""
    from detector import batch

    source = tmp_path / "seiten.jsonl"
    texts = [ARTICLE.replace("acht", word) for word in ("acht", "ENDLOS", "neun", "zehn")]
    source.write_text(
        "".join(json.dumps({"url": f"https://ex.de/{i}", "text": t}) + "\n" for i, t in enumerate(texts)),
        encoding="utf-8",
    )
    paragraphs = batch.iter_paragraphs

    def looping(text):
        while "ENDLOS" in text:
            pass
        return paragraphs(text)

    monkeypatch.setattr(batch, "iter_paragraphs", looping)
    config = RunConfig(timeout=0.5)
    alarm = batch.arm_page_alarm(config)
    try:
        [(_, found)] = batch.remember_chunk([Task(str(source), "jsonl", "")], config)
    finally:
        batch.disarm_page_alarm(alarm)
    assert [(site, memory.pages) for site, memory in found] == [("host:ex.de", 3)]


def test_a_tiny_time_limit_fails_pages_and_never_the_batch(tmp_path):
    """`--timeout 1e-6`: the alarm came before a page's first step and ended the batch ("unexpected failure:
    PageTimeout()", no summary, no errors file)."""
    _pages(tmp_path / "in", {}, count=3)
    errors = tmp_path / "errors.jsonl"
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = run(
            "clean-article", tmp_path / "in", "-o", out, "--timeout", "1e-6", "-j", jobs, "--errors", errors
        )
        stderr = result.stderr.decode()
        assert result.returncode in (0, 1) and "unexpected" not in stderr and "Traceback" not in stderr, stderr
        assert stderr.splitlines()[-1].startswith(f"{len(list(out.iterdir()))} files cleaned"), stderr


def test_the_time_limit_holds_for_a_batch_run_from_another_thread(tmp_path, monkeypatch):
    """The library's batch.run(…, RunConfig(timeout=…, jobs=1)) from a thread other than the main one had no
    limit (only the main thread gets signals): it runs in a worker process then."""
    import threading

    from detector import batch

    names = _pages(tmp_path / "in", {"seite1.txt": "ENDLOS"}, count=3)
    pages = batch.page_paragraphs

    def looping(data, *args, **kwargs):
        while b"ENDLOS" in data:
            pass
        return pages(data, *args, **kwargs)

    monkeypatch.setattr(batch, "page_paragraphs", looping)
    out = tmp_path / "out"
    out.mkdir()
    config = RunConfig(timeout=1, jobs=1, run_id="thread", output_root=str(out))
    tasks = [Task(str(tmp_path / "in" / n), "text", str(out / n)) for n in names]
    results: list = []
    thread = threading.Thread(target=lambda: results.extend(batch.run(tasks, config)), daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert sorted((os.path.basename(r.source), r.status) for r in results) == [
        ("seite0.txt", "cleaned"),
        ("seite1.txt", "failed"),
        ("seite2.txt", "cleaned"),
    ]


_HANDED_ON = """
import sys, time
from detector import batch

def work(tasks, config):
    time.sleep(0.05)
    return [tasks[0].source]

chunks = [[batch.Task(f"{c}{i}", "text", "") for i in range(5)] for c in "ab"]
stream = batch._run_forked(chunks, batch.RunConfig(jobs=2), work)
got = [next(stream)]
try:
    got.append(stream.throw(KeyboardInterrupt()))  # a Ctrl-C while the caller took the first result
    got.extend(stream)
except KeyboardInterrupt:
    print(got[0][0], sorted(got), flush=True)
"""


def test_a_stop_while_a_result_is_taken_still_hands_on_the_rest_of_its_answer(tmp_path):
    """A Ctrl-C that came while the caller took one result of a worker's answer lost the rest of that answer:
    the summary of an interrupted batch missed up to a chunk of files it had written (128 told, 158 written)."""
    import subprocess
    import sys

    script = tmp_path / "handed.py"
    script.write_text(_HANDED_ON, encoding="utf-8")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, script], capture_output=True, timeout=60, cwd=root)
    first, got = result.stdout.decode().split(" ", 1)
    assert all(f"'{first}{i}'" in got for i in range(5)), (got, result.stderr.decode()[-500:])


def test_a_stop_never_comes_inside_the_pools_wait_for_an_answer():
    """A Ctrl-C raised inside the pool's iterator while it held its lock left the lock taken: the wait for the
    workers' last answers then hung for ever (1 interrupted batch in about 30). The stop is held while the
    iterator waits and raised as the wait returns, with its answer kept for the last answers."""
    import signal
    import threading
    import time

    from detector import batch

    inside, sent = threading.Event(), threading.Event()

    class Iterator:
        def __init__(self) -> None:
            self.lock = threading.Lock()

        def next(self, timeout: float) -> tuple:
            with self.lock:
                inside.set()
                sent.wait(10)  # the stop comes here
                time.sleep(0.05)  # (time for it to be raised, where it is not held)
                return (0, 1, ["result"])

    def stop() -> None:  # to the main thread: the pool's own threads never take a stop (``_new_pool``)
        inside.wait(10)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        sent.set()

    answers = Iterator()
    box: list = []
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # (a background job ignores Ctrl-C)
    try:
        threading.Thread(target=stop).start()
        with pytest.raises(KeyboardInterrupt):
            batch._next_answer(answers, 1.0, box)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert box == [(0, 1, ["result"])] and not answers.lock.locked()


_FORKS_LIMITED = """
import os, sys

fork, children = os.fork, []


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def limited():  # as ulimit -u: at most LIMIT children at a time
    children[:] = [pid for pid in children if alive(pid)]
    if len(children) >= int(os.environ["LIMIT"]):
        raise BlockingIOError(11, "Resource temporarily unavailable")
    pid = fork()
    if pid:
        children.append(pid)
    return pid


os.fork = limited
from detector import cli

sys.exit(cli.clean_main(sys.argv[1:]))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="counts live children in /proc")
@pytest.mark.parametrize(("limit", "note"), [(0, "no worker process could be started"), (1, "1 of 4 worker")])
def test_workers_that_cannot_be_forked_are_done_without(tree, tmp_path, limit, note):
    """A fork refused (ulimit -u, no memory) failed a whole batch of files with --jobs 4 ("unexpected failure:
    BlockingIOError") where --jobs 1 cleaned it: the files go to the workers that could be started, or are
    cleaned in this process, with a note saying so."""
    import subprocess
    import sys

    for i in range(12):
        (tree / f"more{i}.txt").write_text(ARTICLE.replace("Siemens", f"Firma {i}"), encoding="utf-8")
    one = run("clean-article", tree, "-o", tmp_path / "one", "--jobs", "1")
    limited = subprocess.run(
        [sys.executable, "-c", _FORKS_LIMITED, str(tree), "-o", str(tmp_path / "four"), "--jobs", "4"],
        capture_output=True,
        env={**os.environ, "LIMIT": str(limit)},
        timeout=120,
    )
    told = limited.stderr.decode().splitlines()
    assert limited.returncode == one.returncode == 1, told
    assert [line for line in told if line.startswith("note: ") and "worker process" in line] == [
        f"note: {note}"
        + (
            " (resource temporarily unavailable): the files are cleaned in this process"
            if limit == 0
            else " processes could be started (resource temporarily unavailable): the batch goes on"
        )
    ]
    assert told[-1].split(";")[0] == one.stderr.decode().splitlines()[-1].split(";")[0]
    assert outputs(tmp_path / "four") == outputs(tmp_path / "one")
    for name in outputs(tmp_path / "one"):
        assert (tmp_path / "four" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def test_files_from_a_list_are_mirrored_as_the_list_writes_them(tree, tmp_path):
    """--files-from: the paths of a list (find's output, one per line or NUL-separated) are cleaned into the
    output folder, each mirrored by its path as written, so that two files of one name in different folders
    (index.html of every site) stay apart where two named on the command line would clash; a folder in the
    list is walked; a missing entry fails alone; a name with a line break needs the NUL form."""
    (tree / "c").mkdir()
    (tree / "c" / "one.txt").write_text(ARTICLE.replace("Siemens", "Bayer"), encoding="utf-8")
    (tree / "c" / "zwei\nzeilen.txt").write_text(ARTICLE.replace("Siemens", "Merck"), encoding="utf-8")
    entries = ["in/a/one.txt", "./in/c/one.txt", "in/a/b", "in/fehlt.txt", "in/c/zwei\nzeilen.txt"]
    (tmp_path / "list0").write_bytes(b"\0".join(e.encode() for e in entries) + b"\0")
    result = run("clean-article", "--files-from", "list0", "-o", "out", "--jobs", "1", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines()[:1] == ["error: in/fehlt.txt: no such file or folder"]
    assert outputs(tmp_path / "out") == [
        "in/a/b/empty.txt",
        "in/a/b/latin.txt",
        "in/a/one.txt",
        "in/c/one.txt",
        "in/c/zwei\nzeilen.txt",
    ]
    for name in ("in/a/one.txt", "in/c/one.txt"):
        alone = run("clean-article", tmp_path / name)
        assert (tmp_path / "out" / name).read_bytes() == alone.stdout
    lines = b"in/a/one.txt\r\n\nin/c/one.txt\n"  # one per line, from standard input; Windows line ends too
    result = run("clean-article", "--files-from", "-", "-o", "out2", "-q", cwd=tmp_path, stdin=lines)
    assert (result.returncode, outputs(tmp_path / "out2")) == (0, ["in/a/one.txt", "in/c/one.txt"])
    named = run("clean-article", "in/a/one.txt", "in/c/one.txt", "-o", "out3", cwd=tmp_path)
    assert named.returncode == 2 and "would both be written to" in named.stderr.decode()
    assert "or name files of one name in a --files-from list" in named.stderr.decode()
    (tmp_path / "first").write_text("in/a/one.txt\n", encoding="utf-8")  # given twice: both lists (attack round
    (tmp_path / "second").write_text("in/c/one.txt\n", encoding="utf-8")  # 54: the second replaced the first)
    both = run("clean-article", "--files-from", "first", "--files-from", "second", "-o", "out4", cwd=tmp_path)
    assert (both.returncode, outputs(tmp_path / "out4")) == (0, ["in/a/one.txt", "in/c/one.txt"])
    twice = run("clean-article", "--files-from", "-", "--files-from", "-", "-o", "out5", cwd=tmp_path)
    assert (twice.returncode, twice.stderr.decode()) == (
        2,
        "error: standard input can be one --files-from list, not two\n",
    )


_STDIN_TWICE = "error: standard input cannot be both a page and the --files-from list"
_ERRORS_OVER_LIST = "error: the errors file list is the --files-from list"


@pytest.mark.parametrize(
    ("args", "code", "told"),
    [
        (["--files-from", "list"], 2, "error: --files-from needs an output folder: -o OUTDIR"),
        (["--files-from", "nolist", "-o", "out"], 2, "error: --files-from nolist: no such file or directory"),
        (["--files-from", "list", "-o", "out", "--errors", "list"], 2, _ERRORS_OVER_LIST),
        (["-", "--files-from", "-", "-o", "out"], 2, _STDIN_TWICE),
        (["--files-from", "empty", "-o", "out"], 0, "note: --files-from empty names no file"),
    ],
)  # fmt: skip
def test_files_from_refuses_what_it_cannot_do(tmp_path, args, code, told):
    (tmp_path / "page.txt").write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "list").write_text("page.txt\n", encoding="utf-8")
    (tmp_path / "empty").write_bytes(b"")
    result = run("clean-article", *args, cwd=tmp_path)
    assert (result.returncode, result.stderr.decode().splitlines()[0]) == (code, told)
    assert (tmp_path / "list").read_text(encoding="utf-8") == "page.txt\n"


def _marks_work(folder) -> bool:
    probe = folder / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except (AttributeError, OSError):
        return False
    finally:
        probe.unlink()


def test_skip_existing_keeps_only_outputs_made_with_the_same_settings(tree, tmp_path):
    """--skip-existing compared outputs by name only: after a run with another -f (text, annotated and explain
    all write .txt), -k, --favor or --rules it kept the old outputs without a word. Each output is marked with
    the settings it was made with (an extended attribute); one of other settings is cleaned again and
    counted, one without a mark (an older run, a copy) is kept as before."""
    if not _marks_work(tmp_path):
        pytest.skip("no extended attributes on this file system")
    out = tmp_path / "out"
    page = out / "a" / "one.txt"
    run("clean-article", tree, "-o", out, "-q")
    text = page.read_bytes()
    again = run("clean-article", tree, "-o", out, "--skip-existing")
    assert again.stderr.decode().splitlines()[-1].startswith("0 files cleaned, 1 failed, 4 skipped;")
    annotated = run("clean-article", tree, "-o", out, "--skip-existing", "-f", "annotated")
    summary = annotated.stderr.decode().splitlines()[-1]
    assert summary.startswith("4 files cleaned, 1 failed, 0 skipped, 4 cleaned again (their outputs were made")
    assert page.read_bytes().startswith(b"[editorial] ") and page.read_bytes() != text
    os.removexattr(page, "user.clean-article.settings")
    favor = run("clean-article", tree, "-o", out, "--skip-existing", "-f", "annotated", "--favor", "recall")
    assert favor.stderr.decode().splitlines()[-1].startswith("3 files cleaned, 1 failed, 1 skipped, 3 cleaned")
    assert page.read_bytes().startswith(b"[editorial] ")  # unmarked: kept
    run("clean-article", tree, "-o", out, "--skip-existing", "-q")
    assert page.read_bytes().startswith(b"[editorial] ")
    run("clean-article", tree, "-o", out, "-q")  # without --skip-existing every output is made again, marked
    assert page.read_bytes() == text
    # an input changed since its output was made (a page a scraper wrote anew, a crawl file that was still
    # being copied) was kept by --skip-existing as if it were the same
    source = tree / "a" / "one.txt"
    source.write_text(source.read_text(encoding="utf-8").replace("BASF", "Bayer"), encoding="utf-8")
    changed = run("clean-article", tree, "-o", out, "--skip-existing")
    assert (
        changed.stderr.decode()
        .splitlines()[-1]
        .startswith(
            "1 file cleaned, 1 failed, 3 skipped, 1 cleaned again (their outputs were made of an earlier state of "
            "their inputs)"
        )
    )
    assert page.read_bytes() == run("clean-article", source).stdout != text


def test_a_pool_thread_that_cannot_fork_a_worker_ends_without_a_traceback():
    """A worker that died while forks were refused: the pool's own thread, which replaces it, failed to fork
    and printed 25 lines of "Exception in thread … (_handle_workers) … BlockingIOError" (the batch, which
    watches its workers, went on without it). Other threads' exceptions are still told."""
    import threading

    from detector.batch import _quiet_pool_threads

    def refused():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    before, told = threading.excepthook, []
    threading.excepthook = lambda args: told.append(args.thread.name)
    try:
        _quiet_pool_threads()
        for name in ("Thread-7 (_handle_workers)", "Thread-8 (other)"):
            thread = threading.Thread(target=refused, name=name)
            thread.start()
            thread.join()
    finally:
        threading.excepthook = before
    assert told == ["Thread-8 (other)"]


def test_the_summary_tells_each_reason_an_output_was_made_again():
    from detector import batch

    results = [batch.Result(f"p{i}.txt", "cleaned") for i in range(3)]
    results[0].redone, results[1].redone, results[2].redone = "input", "partial", "partial"
    assert batch.summary(results, 1.0).startswith(
        "3 files cleaned, 0 failed, 0 skipped, 3 cleaned again (their outputs were: 1 made of an earlier state of "
        "their inputs; 2 missing records that failed for their time or a dead worker);"
    )  # (round 69: "were : 1 made …")
