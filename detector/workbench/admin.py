"""``detector``: the workbench commands (train, evaluate, review, bench).

Plain argparse, as ``clean-article``: its help shows what to type (``[PAGES ...]``, ``N``), not Python types.
Each command imports its module when it runs, so ``detector --help`` stays quick. Paths default to the folders of
a checkout, relative to the working directory (``make`` runs there).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from detector import __version__
from detector.cli import Parser, Terminated, interrupted, terminate
from detector.model import ModelError

DEVSET = Path("..") / "shared" / "devset"
EXAMPLE = Path("..") / "shared" / "examples" / "microsoft-ki-poker.txt"
_CHECKOUT = Path(__file__).resolve().parents[2]  # the repository root, in a checkout


class _Failed(Exception):
    """A command that cannot do its work: one line on stderr, exit 1."""


class _Usage(Exception):
    """Arguments that cannot work together: one line on stderr, exit 2, before any work."""


def _path(value: str) -> Path:
    """A path argument; an empty one is refused (``Path("")`` would be the current folder)."""
    if not value:
        raise argparse.ArgumentTypeError("an empty path is not a path")
    return Path(value)


def _file_path(value: str) -> Path:
    """A file to write: a name ending in a slash means a folder (``Path`` drops the slash, and a file of the
    folder's name was written)."""
    if value.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{value} names a folder: give the file, e.g. {value}model.bin")
    return _path(value)


def admin_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="detector", description="Train, evaluate, review and benchmark the paragraph classifier.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    train = commands.add_parser("train", help="rebuild the model from annotated pages (same data, same bytes)")
    train.add_argument(
        "--data",
        action="append",
        type=_path,
        metavar="DIR",
        help="folder of annotated pages; repeat to add your own (default: training_data)",
    )
    train.add_argument(
        "--output",
        "--out",
        type=_file_path,
        default=Path("models") / "model.bin",
        metavar="FILE",
        help="model file to write, metadata beside it (default: models/model.bin)",
    )
    train.add_argument(
        "--folds", type=int, default=5, metavar="N", help="grouped cross-validation folds (default: 5)"
    )
    train.add_argument(
        "--jobs", type=int, default=2, metavar="N", help="folds fitted at once; the model is the same (default: 2)"
    )

    evaluate = commands.add_parser("evaluate", help="score the model per label and against other tools")
    evaluate.add_argument(
        "paths",
        nargs="*",
        type=_path,
        metavar="PAGES",
        help="annotated pages or folders; none: training_data/ by grouped cross-validation and ../shared/devset/",
    )
    evaluate.add_argument(
        "--model", type=_path, metavar="FILE", help="model file to score instead of the shipped one"
    )
    evaluate.add_argument(
        "--no-compare", dest="compare", action="store_false", help="leave out trafilatura, jusText, boilerpy3"
    )
    evaluate.add_argument(
        "--folds",
        type=int,
        default=None,
        metavar="N",
        help="folds of the cross-validation of training_data (default: 5; PAGES are scored with the model)",
    )
    evaluate.add_argument(
        "--devset",
        action="store_true",
        help="only ../shared/devset/, per group, without the cross-validation: seconds, to try a --model",
    )
    evaluate.add_argument(
        "--report", type=_path, metavar="DIR", help="also write evaluation.md and its pictures here"
    )

    review = commands.add_parser("review", help="pick the pages most worth labelling and write them as drafts")
    review.add_argument(
        "pages", nargs="+", type=_path, metavar="PAGES", help="unlabelled text or HTML pages or folders"
    )
    review.add_argument("-o", "--output", type=_path, required=True, metavar="DIR", help="folder for the drafts")
    review.add_argument("--budget", type=int, default=20, metavar="N", help="how many pages to pick (default: 20)")
    review.add_argument("--model", type=_path, metavar="FILE", help="model file instead of the shipped one")

    bench = commands.add_parser("bench", help="print the speed and memory table")
    bench.add_argument("--runs", type=int, default=15, metavar="N", help="runs per cold-start measurement")
    bench.add_argument("--files", type=int, default=10_000, metavar="N", help="pages in the batch folder")
    bench.add_argument(
        "--pages",
        type=_path,
        metavar="DIR",
        help="annotated pages to time instead of the dev set's (default: the dev set, else training_data)",
    )
    bench.add_argument("--train", action="store_true", help="also time `detector train` on the full corpus")
    return parser


def admin_main(argv: list[str] | None = None) -> int:
    """Entry point of ``detector``; returns the exit code."""
    parser = admin_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, terminate)
    if args.command is None:  # a usage error as any other, on stderr (the whole help went to stdout, exit 2)
        sys.stderr.write(parser.format_usage())
        sys.stderr.write("error: give a command: train, evaluate, review or bench (detector --help says more)\n")
        return 2
    try:
        {"train": _train, "evaluate": _evaluate, "review": _review, "bench": _bench}[args.command](args)
    except _Usage as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except (_Failed, ModelError, ValueError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except (KeyboardInterrupt, Terminated) as exc:
        return interrupted(exc)
    return 0


def _train(args: argparse.Namespace) -> None:
    from detector.workbench.train import train

    folders = args.data or [Path("training_data")]
    output = args.output.resolve()
    if not args.output.name:
        raise _Usage(f"--output {args.output}: give the model file's name")
    if output.with_suffix(".json") == output:
        raise _Usage(
            f"--output {args.output}: the metadata is written beside it as .json; give the model another suffix"
        )
    for target in (output, output.with_suffix(".json")):
        if target.is_dir():
            raise _Usage(f"--output {args.output}: {target} is a folder; the model and its metadata are files")
    if len({folder.resolve() for folder in folders}) < len(folders):
        raise _Usage("--data names the same folder twice")
    for inner in folders:
        for outer in folders:
            if inner is not outer and inner.resolve().is_relative_to(outer.resolve()):
                raise _Usage(f"--data {inner} lies inside --data {outer}: its pages would be read twice")
    for folder in folders:
        if output.is_relative_to(folder.resolve()):
            raise _Usage(
                f"--output {args.output} lies inside the training data {folder}: it would be read as a page"
            )
    if problem := _not_ours(output):
        raise _Usage(f"--output {args.output}: {problem}: give the model a new name or remove the file first")
    if args.folds < 1:
        raise _Usage("--folds must be 1 (no cross-validation) or more")
    if args.jobs < 1:
        raise _Usage("--jobs must be 1 or more")
    missing = [folder for folder in folders if not folder.exists()]
    if missing:
        raise _Failed(f"{missing[0]}: no such folder")
    for folder in folders:
        if not folder.is_dir():  # one page named by a slip trained a model of one page
            raise _Usage(f"--data {folder}: not a folder; --data takes a folder of annotated pages")
    _check_folder_place(output.parent, "--output", args.output)
    _note_links(folders)
    start = time.monotonic()
    metadata = train(folders, args.output, args.folds, args.jobs)
    cv = metadata["grouped_cross_validation"]["scores"]
    counts = metadata["training_data"]["paragraphs"]
    if metadata.get("fallback"):
        sys.stderr.write(f"note: {metadata['fallback']}\n")
    elif cv is not None and (used := metadata["grouped_cross_validation"]["folds"]) < args.folds:
        sys.stderr.write(f"note: {used} site folders, so {used} folds of cross-validation, not {args.folds}\n")
    if cv is None:  # the presets are chosen on out-of-fold scores: without folds there are none to choose from
        sys.stderr.write(
            "note: no cross-validation, so the presets were not chosen: all three keep at 0.5 (--favor changes "
            "nothing; --min-editorial does)\n"
        )
    for key, what in (
        ("empty_pages", "pages without a paragraph"),
        ("unannotated_pages", "HTML in which no data-label holds a label"),
    ):
        files = metadata["training_data"].get(key, [])
        if files:
            more = f" and {len(files) - 1} more" if len(files) > 1 else ""
            sys.stderr.write(f"note: {what} left out: {files[0]}{more}\n")
    sys.stderr.write(
        f"trained on {metadata['training_data']['pages']} pages "
        f"({', '.join(f'{label} {count:,}' for label, count in counts.items())} paragraphs) in "
        f"{time.monotonic() - start:.1f} s; wrote {args.output}\n"
    )
    if cv:
        sys.stderr.write(
            f"grouped cross-validation macro-F1 {cv['macro_f1']:.3f}, "
            f"promotional leak {cv['promotional_leak']:.1%}, "
            f"navigational leak {cv['navigational_leak']:.1%}\n"
        )


def _check_folder_place(folder: Path, option: str, given: Path) -> None:
    """Refuse, before hours of work, a folder to write into that cannot be made (a file is in its way) or
    written (permissions, a read-only or immutable folder: a file is made there and removed to know)."""
    import tempfile

    existing = next(place for place in (folder.resolve(), *folder.resolve().parents) if place.exists())
    if not existing.is_dir():
        raise _Usage(f"{option} {given}: {existing} is a file, not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".detector-probe-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise _Failed(f"{option} {given}: cannot write to {existing}: {why}") from None


def _not_ours(model: Path) -> str | None:
    """Why training must not write over the files at ``model`` and its ``.json`` (they exist and are not a
    model and its metadata: a settings.json beside ``--output settings.bin`` was replaced), or None."""
    import json

    from detector.model import MAGIC

    metadata = model.with_suffix(".json")
    try:
        if model.exists():
            with open(model, "rb") as existing:
                if existing.read(len(MAGIC)) != MAGIC:
                    return f"{model} exists and is not a model file"
        if metadata.exists():
            with open(metadata, "rb") as existing:
                data = json.loads(existing.read(1 << 22) or b"null")
            if not (isinstance(data, dict) and {"model_file", "training_data"} <= data.keys()):
                return f"{metadata} exists and is not a model's metadata"
            if data["model_file"] != model.name:  # sites-1.0 and sites-1.1 both have sites-1.json
                return f"{metadata} is the metadata of another model, {data['model_file']!r}"
    except ValueError:
        return f"{metadata} exists and is not a model's metadata"
    except OSError as exc:
        return f"cannot read {exc.filename}: {(exc.strerror or str(exc)).lower()}"
    return None


def _show(text: str) -> None:
    """A command's table on standard output; a reader that went away (``| head``) ends the printing quietly,
    as clean-article's, and the command goes on (``--report`` is still written)."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _note_links(folders: list[Path]) -> None:
    """A note for the symbolic links under each folder, which training and evaluation leave out
    (``detector.pages.symbolic_links``), as clean-article notes them."""
    from detector.pages import shown, symbolic_links

    for folder in folders:
        links = symbolic_links(folder)
        if links:
            more = f" and {len(links) - 1} more" if len(links) > 1 else ""
            sys.stderr.write(
                f"note: {shown(folder)}: symbolic links left out ({shown(links[0])}{more}): a linked page would "
                "count twice, a linked folder can loop; copy what they point to into the folder\n"
            )


def _evaluate(args: argparse.Namespace) -> None:
    from detector.workbench import evaluate as evaluation

    if args.report is not None:
        _check_folder_place(args.report, "--report", args.report)
        if problem := evaluation.earlier_report_problem(args.report):
            raise _Usage(f"--report {args.report}: {problem}")
    if args.compare:
        from importlib.util import find_spec

        missing = [
            name for name in ("trafilatura", "justext", "boilerpy3", "matplotlib") if find_spec(name) is None
        ]
        if missing:
            from detector.batch import extra_hint

            sys.stderr.write(
                f"note: {', '.join(missing)} not installed: left out of the comparison and the pictures "
                f"({extra_hint('compare')})\n"
            )

    if args.devset and args.folds is not None:
        raise _Usage("--folds is for the cross-validation of training_data: --devset scores the model alone")
    if args.devset:
        if args.paths:
            raise _Usage("--devset scores the dev set: give no PAGES with it")
        if not DEVSET.is_dir():
            raise _Failed(f"no dev set at {DEVSET} (run from a checkout with ../shared beside it)")
        reports = evaluation.evaluate_devset(DEVSET, args.model, args.compare)
    else:
        missing = [path for path in args.paths if not path.exists()]
        if missing:
            raise _Failed(f"{missing[0]}: no such file or folder")
        corpus = Path("training_data")
        if args.paths and args.folds is not None:
            raise _Usage("--folds is for the cross-validation of training_data: PAGES are scored with the model")
        folds = 5 if args.folds is None else args.folds
        if not args.paths and folds < 2:  # before a model is trained for nothing
            raise _Usage("--folds must be 2 or more to cross-validate training_data")
        if not args.paths and not corpus.is_dir():
            raise _Failed("no training_data folder here: give PAGES, --devset, or run in a checkout")
        _note_links(args.paths)
        reports = evaluation.evaluate(args.paths, corpus, DEVSET, args.model, args.compare, folds)
    _show(evaluation.render_text(reports))
    if args.report is not None:
        try:
            written = evaluation.write_markdown(reports, args.report)
        except OSError as exc:  # the earlier report's pictures are deleted only once the new one stands
            where = f": {exc.filename}" if exc.filename else ""
            why = exc.strerror or str(exc)
            raise _Failed(f"--report {args.report}: cannot write the report{where}: {why}") from None
        sys.stderr.write(f"wrote {written}\n")


def _review(args: argparse.Namespace) -> None:
    from detector.workbench.review import output_problem, review

    if args.budget < 1:
        raise _Usage("--budget must be 1 or more")
    missing = [page for page in args.pages if not page.exists()]
    if missing:
        raise _Failed(f"{missing[0]}: no such file or folder")
    if problem := output_problem(args.pages, args.output):
        raise _Usage(f"-o {args.output} {problem}")
    _check_folder_place(args.output, "-o", args.output)
    sys.stderr.write(f"wrote {review(args.pages, args.output, args.budget, args.model)}\n")


def _bench(args: argparse.Namespace) -> None:
    from detector.workbench.bench import bench

    if args.runs < 1 or args.files < 1:
        raise _Usage(f"--{'runs' if args.runs < 1 else 'files'} must be 1 or more")
    if args.pages is not None and not args.pages.is_dir():
        raise _Usage(f"--pages {args.pages}: no such folder")
    # ../shared beside the working folder, as every command finds it, else beside this checkout
    checkout = (_CHECKOUT / "pyproject.toml").is_file()  # not the site-packages of an installed wheel
    places = (EXAMPLE, _CHECKOUT / EXAMPLE) if checkout else (EXAMPLE,)
    example = next((path for path in places if path.exists()), None)
    if example is None:
        beside = f"and beside the checkout {_CHECKOUT}" if checkout else "(an installed package has no checkout)"
        raise _Failed(
            f"{EXAMPLE} is needed for the cold-start measurement (looked for beside the working folder {beside})"
        )
    pages = args.pages if args.pages is not None else Path("training_data")
    _show(bench(example, pages, args.runs, args.files, args.train, prefer_pages=args.pages is not None))
