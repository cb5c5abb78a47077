"""The two commands: ``clean-article`` (everyday cleaning) and ``detector`` (train, evaluate, bench).

Argument parsing and error reporting only; the work is done by ``detector.batch``, ``detector.clean`` and the
admin modules, which are imported when their command runs so that ``clean-article`` starts fast.
Exit codes: 0 success, 1 a file or the model failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import time
from enum import Enum
from pathlib import Path

import typer

from detector import batch
from detector.clean import FORMATS, parse_keep
from detector.model import ModelError

Format = Enum("Format", {name: name for name in FORMATS}, type=str)  # type: ignore[misc]


class InputFormat(str, Enum):
    text = "text"
    jsonl = "jsonl"


class Engine(str, Enum):
    local = "local"
    dask = "dask"


def _fail(message: str, code: int = 1) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)


def _write_stdout(text: str) -> None:
    """Write to stdout as UTF-8; a closed pipe (``| head``) ends the program quietly."""
    try:
        sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


clean_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


@clean_app.command(context_settings={"help_option_names": ["-h", "--help"]})
def clean_article(
    inputs: list[str] = typer.Argument(None, help="Text files or folders; none or '-' reads standard input."),
    output: Path = typer.Option(
        None, "-o", "--output", help="Output folder; needed for folders and several files."
    ),
    fmt: Format = typer.Option(
        "text",
        "-f",
        "--format",
        help="text: the article; annotated: every paragraph "
        "with its label (LABELS.md format); json: labels and probabilities.",
    ),
    keep: str = typer.Option("editorial", "-k", "--keep", help="Labels to keep, comma-separated."),
    input_format: InputFormat = typer.Option(InputFormat.text, help="jsonl: JSON Lines documents."),
    text_field: str = typer.Option("text", help="The field holding a JSON Lines document's page text."),
    glob: str = typer.Option(None, help="File pattern when walking folders [default: *.txt, *.jsonl for jsonl]."),
    jobs: int = typer.Option(0, "-j", "--jobs", help="Parallel workers; 0 means all cores."),
    skip_existing: bool = typer.Option(False, help="Leave outputs that exist alone (resume a run)."),
    errors: Path = typer.Option(None, help="Write one JSON line per failed file or record here."),
    encoding: str = typer.Option(None, help="Force the input encoding instead of detecting it."),
    fix_mojibake: bool = typer.Option(False, help="Repair text that was decoded wrongly before (FÃ¼r → Für)."),
    max_bytes: int = typer.Option(batch.DEFAULT_MAX_BYTES, help="Refuse inputs larger than this."),
    follow_links: bool = typer.Option(False, help="Follow symbolic links when walking folders."),
    engine: Engine = typer.Option(Engine.local, help="local: joblib on this machine; dask: a Dask cluster."),
    scheduler: str = typer.Option(None, help="Dask scheduler address, e.g. tcp://host:8786."),
    model: Path = typer.Option(None, help="Use this trained model file instead of the shipped one."),
) -> None:
    """Print the article of a scraped German finance page: its editorial paragraphs, unchanged and in order."""
    try:
        labels = parse_keep(keep)
    except ValueError as exc:
        raise _fail(f"--keep: {exc}", 2) from None
    options = batch.Options(
        fmt=fmt.value,
        keep=labels,
        encoding=encoding,
        fix_mojibake=fix_mojibake,
        max_bytes=max_bytes,
        model=str(model) if model else None,
        input_format=input_format.value,
        text_field=text_field,
    )
    inputs = inputs or ["-"]
    try:
        if output is None:
            if len(inputs) > 1 or Path(inputs[0]).is_dir():
                raise _fail("several inputs or a folder need an output folder: -o OUTDIR", 2)
            _clean_one(inputs[0], options)
        else:
            if "-" in inputs:
                raise _fail("standard input cannot be combined with -o; redirect stdout instead", 2)
            _clean_many(
                inputs,
                output,
                options,
                glob,
                jobs or os.cpu_count() or 1,
                skip_existing,
                errors,
                follow_links,
                engine.value,
                scheduler,
            )
    except ModelError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        if output is not None:
            batch.remove_partial_files(output)
        sys.stderr.write("interrupted\n")
        raise typer.Exit(130) from None


def _clean_one(source: str, options: batch.Options) -> None:
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
            if result.document_errors:
                raise typer.Exit(1)
            return
        if source == "-":
            data = batch.read_limited(sys.stdin.buffer, options.max_bytes, name)
        else:
            with open(source, "rb") as handle:
                data = batch.read_limited(handle, options.max_bytes, name)
        rendered, _, notes = batch.clean_document(data, name, options)
    except batch.InputError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{name}: {(exc.strerror or str(exc)).lower()}") from None
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    _write_stdout(batch.output_text(rendered))


def _clean_many(
    inputs: list[str],
    output: Path,
    options: batch.Options,
    glob: str | None,
    jobs: int,
    skip_existing: bool,
    errors: Path | None,
    follow_links: bool,
    engine: str,
    scheduler: str | None,
) -> None:
    jsonl = options.input_format == "jsonl"
    pattern = glob or ("*.jsonl" if jsonl else "*.txt")
    suffix = ".jsonl" if jsonl else (".json" if options.fmt == "json" else None)
    try:
        tasks, results = batch.plan([Path(i) for i in inputs], output, pattern, suffix, follow_links)
    except batch.UsageError as exc:
        raise _fail(str(exc), 2) from None
    start = time.monotonic()
    progress = batch.Progress(len(tasks))
    for result in results:
        sys.stderr.write(f"{'error' if result.status == 'failed' else 'note'}: {result.reason}\n")
    for result in batch.run(tasks, options, jobs, skip_existing, engine, scheduler):
        results.append(result)
        progress.update()
        if result.status == "failed":
            sys.stderr.write(f"\rerror: {result.reason}\n")
        for record in result.document_errors:
            sys.stderr.write(f"\rerror: {record['file']}:{record['line']}: {record['error']}\n")
    progress.close()
    if errors is not None:
        import json

        batch.write_atomic(
            errors, (json.dumps(r, ensure_ascii=False) + "\n" for r in batch.error_records(results))
        )
    sys.stderr.write(batch.summary(results, time.monotonic() - start) + "\n")
    if any(r.status == "failed" or r.document_errors for r in results):
        raise typer.Exit(1)


admin_app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Train, evaluate and benchmark the paragraph classifier.",
)
ROOT = Path(__file__).resolve().parent.parent


@admin_app.callback()
def admin() -> None:
    """Train, evaluate and benchmark the paragraph classifier."""


@admin_app.command()
def train(
    data: Path = typer.Option(ROOT / "training_data", help="Folder of annotated pages."),
    out: Path = typer.Option(ROOT / "models" / "model.bin", help="Model file to write (metadata beside it)."),
    folds: int = typer.Option(5, help="Grouped cross-validation folds for the metadata scores; 0 skips it."),
) -> None:
    """Rebuild the model from the annotated pages (deterministic: same data, same model)."""
    from detector.train import train as run_training

    start = time.monotonic()
    metadata = run_training(data, out, folds)
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


def clean_main() -> None:
    clean_app(prog_name="clean-article")


def admin_main() -> None:
    admin_app(prog_name="detector")


@admin_app.command()
def evaluate(
    paths: list[Path] = typer.Argument(
        None,
        help="Annotated pages or folders; none: training_data/ by grouped "
        "cross-validation and ../shared/devset/ when present.",
    ),
    model: Path = typer.Option(None, help="Model file to score instead of the shipped one."),
    compare: bool = typer.Option(True, help="Also run trafilatura, jusText and the baselines."),
    folds: int = typer.Option(5, help="Folds of the grouped cross-validation on training_data/."),
    report: Path = typer.Option(ROOT / "reports", help="Folder for evaluation.md and its pictures."),
) -> None:
    """Score the model per label, with leaks, confusion matrix and per-site table, against other tools."""
    from detector import evaluate as evaluation

    devset = ROOT.parent / "shared" / "devset"
    try:
        reports = evaluation.evaluate(paths or [], ROOT / "training_data", devset, model, compare, folds)
    except ModelError as exc:
        raise _fail(str(exc)) from None
    print(evaluation.render_text(reports))
    written = evaluation.write_markdown(reports, report)
    sys.stderr.write(f"wrote {written}\n")
