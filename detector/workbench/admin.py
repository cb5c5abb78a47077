"""``detector``: the admin commands (train, evaluate, bench) as a typer app.

Each command imports its module when it runs, so ``detector --help`` stays quick. Paths default to the
folders of a checkout, relative to the working directory (``make`` runs there).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from detector.model import ModelError

DEVSET = Path("..") / "shared" / "devset"
EXAMPLE = Path("..") / "shared" / "examples" / "microsoft-ki-poker.txt"


def _fail(message: str, code: int = 1) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)


admin_app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Train, evaluate and benchmark the paragraph classifier.",
)


@admin_app.callback()
def admin() -> None:
    """Train, evaluate and benchmark the paragraph classifier."""


@admin_app.command()
def train(
    data: list[Path] = typer.Option(
        [Path("training_data")], metavar="DIR", help="Folder of annotated pages; repeat to add your own."
    ),
    out: Path = typer.Option(
        Path("models") / "model.bin",
        "--output",
        "--out",
        metavar="FILE",
        help="Model file to write (metadata beside it).",
    ),
    folds: int = typer.Option(5, help="Grouped cross-validation folds (the second stage learns from them)."),
    jobs: int = typer.Option(2, help="Folds fitted at once, each in its own process (the model is the same)."),
) -> None:
    """Rebuild the model from the annotated pages (reproducible: same data and versions, same bytes)."""
    from detector.workbench.train import train as run_training

    start = time.monotonic()
    try:
        metadata = run_training(data, out, folds, max(1, jobs))
    except (ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    cv = metadata["grouped_cross_validation"]["scores"]
    counts = metadata["training_data"]["paragraphs"]
    sys.stderr.write(
        f"trained on {metadata['training_data']['pages']} pages ({counts}) in "
        f"{time.monotonic() - start:.1f} s; wrote {out}\n"
    )
    if cv:
        sys.stderr.write(
            f"grouped cross-validation macro-F1 {cv['macro_f1']:.3f}, "
            f"promotional leak {cv['promotional_leak']:.1%}, "
            f"navigational leak {cv['navigational_leak']:.1%}\n"
        )


def admin_main() -> None:
    admin_app(prog_name="detector")


@admin_app.command()
def evaluate(
    paths: list[Path] = typer.Argument(
        None,
        metavar="[PAGES]...",
        show_default=False,
        help="Annotated pages or folders; none: training_data/ by grouped cross-validation and "
        "../shared/devset/ when present.",
    ),
    model: Path = typer.Option(None, metavar="FILE", help="Model file to score instead of the shipped one."),
    compare: bool = typer.Option(True, help="Also run trafilatura, jusText and the baselines."),
    folds: int = typer.Option(5, help="Folds of the grouped cross-validation on training_data/."),
    report: Path = typer.Option(
        None, metavar="DIR", help="Also write evaluation.md and its pictures into this folder."
    ),
) -> None:
    """Score the model per label, with leaks, confusion matrix and per-site table, against other tools."""
    from detector.workbench import evaluate as evaluation

    try:
        reports = evaluation.evaluate(paths or [], Path("training_data"), DEVSET, model, compare, folds)
    except ModelError as exc:
        raise _fail(str(exc)) from None
    print(evaluation.render_text(reports))
    if report is not None:
        written = evaluation.write_markdown(reports, report)
        sys.stderr.write(f"wrote {written}\n")


@admin_app.command()
def bench(
    runs: int = typer.Option(15, help="Runs per cold-start measurement."),
    files: int = typer.Option(10_000, help="Pages in the batch-throughput folder."),
    pages: Path = typer.Option(
        Path("training_data"), metavar="DIR", help="Annotated pages for the throughput runs."
    ),
    train: bool = typer.Option(False, help="Also time `detector train` on the full corpus."),
) -> None:
    """Print the speed and memory table (cold start, warm and batch throughput, RSS, model loading)."""
    from detector.workbench.bench import bench as run_bench

    if not EXAMPLE.exists():
        raise _fail(f"{EXAMPLE} is needed for the cold-start measurement")
    print(run_bench(EXAMPLE, pages, runs, files, train))


@admin_app.command()
def review(
    pages: list[Path] = typer.Argument(..., metavar="PAGES...", help="Unlabelled text or HTML pages or folders."),
    output: Path = typer.Option(..., "--output", "-o", metavar="DIR", help="Folder for the drafts and REVIEW.md."),
    budget: int = typer.Option(20, help="How many pages to pick."),
    model: Path = typer.Option(None, metavar="FILE", help="Model file instead of the shipped one."),
) -> None:
    """Pick the pages most worth labelling and write them as annotated drafts with the model's labels."""
    from detector.workbench.review import review as run_review

    try:
        report = run_review(pages, output, max(1, budget), model)
    except (ValueError, ModelError) as exc:
        raise _fail(str(exc)) from None
    sys.stderr.write(f"wrote {report}\n")
