"""What a user gets from `pip install`: a light runtime that finds its model, and the workbench as an extra."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import venv
import zipfile

import pytest

from tests.conftest import EXAMPLE, ROOT, needs_devset, needs_example, run

HEAVY = ("numpy", "scipy", "sklearn", "pandas")
# Modules a clean run does not use: gzip is imported where gzipped input is read, and argparse's help formatter,
# made for every option, would import shutil and with it bz2 and lzma for the terminal's width (the parser reads
# the width itself); typing is never imported at run time (detector._named_tuple), pathlib only for output
# folders and --rules. Each costs the cold start of every page.
UNUSED = ("shutil", "bz2", "lzma", "gzip", "typing")
UNUSED_FOR_ONE_PAGE = (*UNUSED, "pathlib", "threading")  # threading: 1 ms, to tell the main thread (--timeout)


@needs_example
@pytest.mark.parametrize(
    ("extra", "unused"),
    [([], UNUSED_FOR_ONE_PAGE), (["-f", "json"], UNUSED_FOR_ONE_PAGE), (["--jobs", "2", "-o", "{tmp}"], UNUSED)],
    ids=["text", "json", "batch"],
)
def test_cleaning_imports_no_training_library_nor_unused_module(tmp_path, extra, unused):
    arguments = [str(EXAMPLE), *(a.format(tmp=tmp_path / "out") for a in extra)]
    code = (  # the modules Python's start imported (an editable install's import hook among them) do not count
        "import sys\n"
        "before = set(sys.modules)\n"
        "from detector.cli import clean_main\n"
        f"status = clean_main({arguments!r})\n"
        f"heavy = sorted({{m.split('.')[0] for m in set(sys.modules) - before}} & set({(HEAVY + unused)!r}))\n"
        "print(status, heavy, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.stderr.decode().splitlines()[-1] == "0 []"


def test_records_to_standard_output_start_no_worker(tmp_path):
    """A file of records to standard output: site memory's first pass ran in a worker process (the time limit's
    route for files of records with --jobs 2+), which cost multiprocessing's import and a pool's start, 5 % of
    a 1,000-record WARC, for no time limit the stream itself has (its records are cleaned in this process)."""
    source = tmp_path / "seiten.jsonl"
    text = "Siemens hebt Prognose an\n\nDer Konzern rechnet nun mit einem Umsatzplus von acht Prozent."
    records = [json.dumps({"url": f"https://ex.de/{i}", "text": text}) for i in range(3)]
    source.write_text("\n".join(records) + "\n", encoding="utf-8")
    code = (
        "import sys\n"
        "from detector.cli import clean_main\n"
        f"status = clean_main([{str(source)!r}, '--jobs', '2'])\n"
        "print(status, 'multiprocessing' in sys.modules, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.stderr.decode().splitlines()[-1] == "0 False", result.stderr.decode()
    assert result.stdout.count(b"cleaned_text") == 3


@needs_example
def test_a_one_page_run_compiles_only_the_patterns_it_uses():
    """Every regular expression the package compiles when it is imported is used by a one-page run: the others
    (annotated pages, rules, JSON Lines, names that need escaping) are compiled on first use. Compiling them all
    took 2 ms of a 38 ms start."""
    code = (
        "import re, sys\n"
        "from detector.cli import clean_main\n"
        "used = set()\n"
        "class Watched:\n"
        "    def __init__(self, name, pattern): self.name, self.pattern = name, pattern\n"
        "    def __getattr__(self, attribute): used.add(self.name); return getattr(self.pattern, attribute)\n"
        "compiled = set()\n"
        "for module in [m for n, m in sys.modules.items() if n.split('.')[0] == 'detector']:\n"
        "    for name, value in list(vars(module).items()):\n"
        "        if isinstance(value, re.Pattern):\n"
        "            compiled.add(f'{module.__name__}.{name}')\n"
        "            setattr(module, name, Watched(f'{module.__name__}.{name}', value))\n"
        f"status = clean_main([{str(EXAMPLE)!r}])\n"
        "print(status, len(compiled) > 5, sorted(compiled - used), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.stderr.decode().splitlines()[-1] == "0 True []"


@pytest.mark.parametrize("columns", [60, 120])
def test_help_is_wrapped_to_the_terminal_width_in_columns(monkeypatch, columns):
    from detector.cli import clean_parser

    monkeypatch.setenv("COLUMNS", str(columns))
    # the lines of running help text (an option's own name and choices are never broken)
    lines = [line for line in clean_parser().format_help().splitlines() if line.startswith(" " * 24)]
    assert max(map(len, lines)) <= columns - 2
    assert max(map(len, lines)) > columns - 20  # wrapped to the width, not to a fixed one


@needs_example
def test_a_plain_pip_install_cleans_pages_from_any_folder(tmp_path):
    """The user's path: the wheel holds the model and the type marker and no training data; in a fresh
    virtual environment (not editable) clean-article works from an unrelated folder, the training libraries
    are not installed, and `detector` says how to get them. One test, because building twice at once in one
    checkout would collide."""
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools reuses build/lib: a deleted module shipped
    try:
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
            capture_output=True,
            timeout=600,
        )
    finally:
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    assert built.returncode == 0, built.stderr.decode()
    (wheel,) = tmp_path.glob("detector-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"detector/models/model.bin", "detector/models/model.json", "detector/py.typed"} <= names
    assert not any(name.startswith(("training_data/", "tests/", "models/")) for name in names)

    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = str(env / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    installed = subprocess.run([*pip, "install", "--quiet", str(wheel)], capture_output=True, timeout=900)
    assert installed.returncode == 0, installed.stderr.decode()
    shown = subprocess.run([*pip, "show", "-f", "detector"], capture_output=True, timeout=60).stdout.decode()
    assert "detector/models/model.bin" in shown
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cleaned = subprocess.run(
        [str(env / "bin" / "clean-article"), str(EXAMPLE)], capture_output=True, cwd=elsewhere, timeout=120
    )
    assert cleaned.returncode == 0, cleaned.stderr.decode()
    assert cleaned.stdout == run("clean-article", EXAMPLE).stdout
    assert subprocess.run([python, "-c", "import sklearn"], capture_output=True).returncode == 1
    admin = subprocess.run([str(env / "bin" / "detector"), "train"], capture_output=True, cwd=elsewhere)
    assert admin.returncode == 1
    assert admin.stderr.decode().endswith(
        "is not installed): pip install '.[train]' in the checkout, or 'WHEEL[train]' with the wheel it was "
        "installed from (never by name: detector on PyPI is another project)\n"
    )


def test_the_workbench_help_shows_plain_metavars():
    result = run("detector", "evaluate", "--help")
    assert result.returncode == 0
    assert b"list[" not in result.stdout and b"[PAGES ...]" in result.stdout


def test_evaluate_writes_a_report_only_where_asked(tmp_path):
    pages = ROOT / "tests" / "fixtures" / "corpus"
    result = run("detector", "evaluate", "--no-compare", pages, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
    written = run("detector", "evaluate", "--no-compare", "--report", tmp_path / "out", pages, cwd=tmp_path)
    assert written.returncode == 0 and (tmp_path / "out" / "evaluation.md").exists()


def test_the_first_progress_tick_shows_no_wild_estimate():
    import io

    from detector.batch import Progress

    stream = io.StringIO()
    progress = Progress(1000, stream, enabled=True)
    progress.update()
    assert stream.getvalue() == "\r1/1000 files  "


@needs_devset
def test_evaluate_devset_scores_each_group_of_the_dev_set_without_cross_validation():
    result = run("detector", "evaluate", "--devset", "--no-compare", "--model", "models/model.bin", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    titles = [
        line.split(":")[0] for line in result.stdout.decode().splitlines() if line.startswith(("devset", "train"))
    ]
    groups = ["devset-finanzen-net", "devset-full-pages", "devset-full-pages-html"]
    groups += ["devset-finanzen-net-head", "devset-full-pages-head"]
    assert titles == [name for group in groups for name in (group, group + "-site-memory")]
    sha = hashlib.sha256((ROOT / "models" / "model.bin").read_bytes()).hexdigest()[:12]
    assert f"model models/model.bin (SHA-256 {sha}) (23 pages, 4792 paragraphs)" in result.stdout.decode()


def test_evaluate_devset_says_in_one_line_what_is_missing(tmp_path):
    pages = ROOT / "tests" / "fixtures" / "corpus"
    with_pages = run("detector", "evaluate", "--devset", pages, cwd=ROOT)
    assert (with_pages.returncode, with_pages.stderr) == (
        2,
        b"error: --devset scores the dev set: give no PAGES with it\n",
    )
    nowhere = run("detector", "evaluate", "--devset", cwd=tmp_path)
    assert nowhere.returncode == 1
    assert (
        nowhere.stderr == b"error: no dev set at ../shared/devset (run from a checkout with ../shared beside it)\n"
    )


def test_named_tuples_made_without_typing_are_what_typing_makes():
    import pickle
    import typing

    from detector._named_tuple import NamedTuple
    from detector.batch import RunConfig

    class Ours(NamedTuple):
        """A record."""

        index: int  # type: ignore[assignment]
        text: str = "x"

        def twice(self) -> str:
            return self.text * 2

    class Theirs(typing.NamedTuple):
        index: int  # type: ignore[assignment]
        text: str = "x"

    ours = Ours(1)
    assert ours == Theirs(1) == (1, "x") and ours.index == 1 and ours.twice() == "xx"
    assert Ours._fields == Theirs._fields and Ours._field_defaults == Theirs._field_defaults
    assert Ours.__doc__ == "A record." and list(Ours.__annotations__) == list(Theirs.__annotations__)
    assert repr(ours._replace(text="y")) == "Ours(index=1, text='y')"
    config = RunConfig(jobs=2)  # sent to worker processes
    assert pickle.loads(pickle.dumps(config)) == config and config.patterns() == RunConfig().patterns()


@needs_example
@pytest.mark.parametrize(
    ("extra", "buffer"), [([], "mmap"), (["-f", "json"], "mmap"), (["-o", "{tmp}"], "bytes")], ids=str
)
def test_one_page_maps_the_model_and_a_batch_reads_it(tmp_path, extra, buffer):
    """A mapped model file written over in place would change or kill a run: only the short one maps it."""
    arguments = [str(EXAMPLE), *(a.format(tmp=tmp_path / "out") for a in extra)]
    code = (
        "import sys\n"
        "from detector import api\n"
        "from detector.cli import clean_main\n"
        f"status = clean_main({arguments!r})\n"
        "models = [model for _, model in api._loaded.values()]\n"
        "print(status, len(models), type(models[0]._words.obj).__name__, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.stderr.decode().splitlines()[-1] == f"0 1 {buffer}"  # loaded once (it was read a second time)


def test_bytecode_of_a_source_edited_in_the_same_second_counts_as_stale(tmp_path):
    """compileall compares the modification time alone: a module edited within the second of its bytecode kept
    stale bytecode, every start compiled it, and the cold start measured 4 ms slower."""
    import os
    import py_compile
    from importlib.util import cache_from_source

    from detector.workbench.bench import _bytecode_matches

    source = tmp_path / "m.py"
    source.write_text("x = 1\n")
    py_compile.compile(str(source))
    cached = cache_from_source(str(source))
    assert _bytecode_matches(open(cached, "rb").read(16), os.stat(source))  # noqa: SIM115
    stamp = os.stat(source).st_mtime_ns
    source.write_text("x = 12\n")  # one byte longer, the same modification time
    os.utime(source, ns=(stamp, stamp))
    assert not _bytecode_matches(open(cached, "rb").read(16), os.stat(source))  # noqa: SIM115


def test_the_version_is_the_package_metadatas():
    tomllib = pytest.importorskip("tomllib")
    from detector import __version__

    with open(ROOT / "pyproject.toml", "rb") as handle:
        assert tomllib.load(handle)["project"]["version"] == __version__


def test_python_m_detector_runs_clean_article():
    result = subprocess.run([sys.executable, "-m", "detector", "--version"], capture_output=True, timeout=60)
    assert result.returncode == 0 and result.stdout.decode().startswith("clean-article ")


def test_a_run_without_shared_says_so_at_its_top_also_under_q(tmp_path):
    """The note was a report header, which pytest does not show under -q (the project's addopts): a clone
    without ../shared skipped the tests of the example and the dev set without a word."""
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "conftest.py").write_text(
        "from pathlib import Path\n"
        "import tests.conftest as shared\n"
        "shared.EXAMPLE = shared.DEVSET = Path('/nonexistent/shared')\n"
        "from tests.conftest import pytest_sessionstart  # noqa: F401\n",
        encoding="utf-8",
    )
    (folder / "test_one.py").write_text("def test_one():\n    pass\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout.decode()
    assert result.stdout.decode().splitlines()[0] == (
        "note: /nonexistent/shared, /nonexistent/shared not found: the tests that need them are skipped "
        "(pytest -rs lists them)"
    )
