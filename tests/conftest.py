"""Shared paths and helpers for the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
EXAMPLE = SHARED / "examples" / "microsoft-ki-poker.txt"
EXAMPLE_ANNOTATED = SHARED / "examples" / "microsoft-ki-poker.annotated.txt"
DEVSET = SHARED / "devset"
FIXTURE_CORPUS = ROOT / "tests" / "fixtures" / "corpus"
BIN = Path(sys.executable).parent

needs_example = pytest.mark.skipif(not EXAMPLE.exists(), reason="../shared/examples is not present")
needs_devset = pytest.mark.skipif(not DEVSET.exists(), reason="../shared/devset is not present")


def missing_shared_note() -> str:
    """The note on the example page and the dev set when they are missing ('' when they are there)."""
    missing = [str(path) for path in (EXAMPLE, DEVSET) if not path.exists()]
    if not missing:
        return ""
    return f"note: {', '.join(missing)} not found: the tests that need them are skipped (pytest -rs lists them)"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Say at the top of every run when the tests of the example page and the dev set will be skipped: a
    clone without ../shared beside it passes them silently otherwise. Written by the terminal reporter, as a
    report header is not shown under -q (the project's addopts)."""
    note = missing_shared_note()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if note and reporter is not None:
        reporter.write_line(note, yellow=True)


def default_signals() -> None:
    """For a child that tests signals: the default dispositions, whatever the test runner inherited (a shell
    script started in the background without job control ignores SIGINT, and its children would too)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # nohup's ignored hangup stays ignored in clean-article


def run(command: str, *args: str | Path, stdin: bytes | None = None, cwd: Path | None = None):
    """Run one of the installed console scripts; returns the CompletedProcess (bytes)."""
    return subprocess.run(
        [str(BIN / command), *map(str, args)], input=stdin, capture_output=True, cwd=cwd, timeout=300
    )
