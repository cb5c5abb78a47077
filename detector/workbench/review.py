"""``detector review``: which of a user's unlabelled pages are worth labelling first.

The model labels every page; a page is worth a correction in proportion to the errors it probably holds (the
sum over its paragraphs of one minus the probability of the chosen label) and to how unlike the training
corpus its words are (the share of its words the model has no weight for). Pages are then picked greedily for
a diverse set: a page whose text is nearly that of a page already picked is passed over, and every page
picked from a folder (a site) halves the worth of the next ones from it. Each picked page is written as an
annotated draft (LABELS.md format) with the model's labels, and REVIEW.md lists them in order with the
paragraphs to look at first, and per site the share of uncertain paragraphs (where the model drifts).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from detector import markup
from detector.api import Paragraph, classify_as_text, classify_html, load_model
from detector.batch import (
    DEFAULT_GLOBS,
    DEFAULT_MAX_BYTES,
    GZIP_MAGIC,
    TEMP_SUFFIX,
    InputError,
    display,
    folder_name,
    gunzip_limited,
    host_folder,
    named_host_folder,
    read_limited,
    sniff_kind,
    walked_path,
)
from detector.features import tokens, unigram_id
from detector.model import Scorer
from detector.pages import AnnotationError, LabelledParagraph, format_annotated, parse_annotated, strip_labels
from detector.segment import decode, normalise_newlines, split_blocks
from detector.workbench.metrics import UNCERTAIN

# Near-duplicates: pages whose distinct words overlap by this Jaccard share (shared words over all words of the
# two). At 0.5 at least half of EACH page's words are shared, so a short page whose function words all occur in a
# long page is not one; on the dev set unrelated pages (of one site too) stay below 0.3, while a page with its
# longest paragraph replaced keeps 0.6 or more and a gzipped or HTML copy about 1.
SIMILAR = 0.5


@dataclass
class Candidate:
    """An unlabelled page with what the model makes of it and what a correction of it is worth."""

    path: Path
    site: str
    paragraphs: list[Paragraph]
    expected_errors: float
    novelty: float
    words: frozenset[str] = field(repr=False)

    @property
    def worth(self) -> float:
        return self.expected_errors * (0.5 + self.novelty)

    def uncertain(self) -> list[Paragraph]:
        return sorted(
            (p for p in self.paragraphs if p.probabilities[p.label] < UNCERTAIN),
            key=lambda p: p.probabilities[p.label],
        )


# What clean-article reads in folders as pages, gzipped or not; JSON Lines and WARC files hold records.
PAGE_GLOBS = DEFAULT_GLOBS["text"] + DEFAULT_GLOBS["html"]
PAGE_SUFFIXES = tuple(glob.removeprefix("*") for glob in PAGE_GLOBS)
RECORD_SUFFIXES = tuple(glob.removeprefix("*") for glob in DEFAULT_GLOBS["jsonl"] + DEFAULT_GLOBS["warc"])


def page_files(inputs: list[Path]) -> tuple[dict[Path, str], int]:
    """The text, Markdown and HTML pages under the inputs (files or folders, walked recursively, any case of
    suffix, gzipped or not), sorted, each once however often it is named, with their site: the first folder
    below the input, as ``detector train`` counts sites (a page named itself: its folder); and how many files
    in the folders were passed over for their names, so that a crawl of ``index.php`` pages is told why it has
    no page. Not walked: an earlier review's drafts (a folder with ``REVIEW.md``) and folders behind symbolic
    links (each with a note)."""
    found: dict[str, tuple[Path, str]] = {}
    passed_over = 0
    for root in inputs:
        if root.is_dir():
            for folder, subfolders, names in os.walk(root):
                kept = []
                for name in sorted(subfolders):
                    inner = Path(folder) / name
                    if inner.is_symlink():
                        sys.stderr.write(f"note: {display(inner)}: left out (a symbolic link to a folder)\n")
                    elif (inner / "REVIEW.md").is_file():
                        sys.stderr.write(f"note: {display(inner)}: left out (the drafts of an earlier review)\n")
                    else:
                        kept.append(name)
                subfolders[:] = kept
                for name in names:
                    if name.lower().endswith(RECORD_SUFFIXES):
                        sys.stderr.write(
                            f"note: {display(Path(folder) / name)}: left out (records are not pages)\n"
                        )
                    elif not name.lower().endswith(PAGE_SUFFIXES) and not name.endswith(TEMP_SUFFIX):
                        passed_over += 1
                    if name.lower().endswith(PAGE_SUFFIXES) and not name.endswith(TEMP_SUFFIX):
                        path = Path(folder) / name
                        if path.is_file():  # not a FIFO (review waited for ever), a device or a link to one
                            parts = path.relative_to(root).parts
                            site = parts[0] if len(parts) > 1 else root.resolve().name
                            written = os.path.join(folder, name)  # (a Path drops "./": "." was no host)
                            below = walked_path(str(root), written, len(os.path.join(root, "")))
                            host = host_folder(written, below, str(root))
                            found.setdefault(os.path.realpath(path), (path, _named(path, host) or site))
                        else:
                            sys.stderr.write(f"note: {display(path)}: left out (not a regular file)\n")
        elif root.is_file() and root.name.lower().endswith(RECORD_SUFFIXES):  # named or walked: no page
            sys.stderr.write(f"note: {display(root)}: left out (records are not pages)\n")
        elif root.is_file():
            host = named_host_folder(str(root))
            found.setdefault(os.path.realpath(root), (root, _named(root, host) or root.resolve().parent.name))
        elif root.exists():
            sys.stderr.write(f"note: {display(root)}: left out (not a regular file)\n")
    return dict(sorted(found.values())), passed_over


def _named(path: Path, host: str) -> str:
    """The name of the host folder a page file lies in, as ``clean-article`` finds its site
    (``batch.host_folder``), else "": a mirror's section (``crawl/www.example.org/news/slug/index.html``) was
    a site per page, its drafts meant for one training folder each (attack round 76)."""
    return folder_name(str(path), host) if host else ""


def no_page_message(passed_over: int) -> str:
    """Why review has nothing to read when no file of the inputs had a page's name: the files named one by one
    are read whatever their names (a wget crawl's ``index.php``), so say which names count and how to do that."""
    names = f"review reads {', '.join(PAGE_GLOBS)}"
    if not passed_over:
        return f"no page among the inputs ({names})"
    return (
        f"no page among the inputs: {passed_over} file(s) passed over for their names ({names}; name them one "
        "by one to read them anyway)"
    )


def first_page(folder: Path) -> Path | None:
    """A page (by its suffix) anywhere under ``folder``, or None: drafts written among a user's own pages
    would be trained on as labels, and a later review would leave the folder out."""
    for parent, _, names in os.walk(folder):
        for name in sorted(names):
            if name.lower().endswith(PAGE_SUFFIXES):
                return Path(parent) / name
    return None


def output_problem(inputs: list[Path], out: Path) -> str:
    """Why the drafts must not be written to ``out`` ('' when they may), said of ``out`` ("is a file, ..."),
    for ``detector review`` to refuse before any work and for :func:`review` called as a library."""
    if out.is_symlink() and not out.exists():
        return f"is a symbolic link to {os.readlink(out)}, which does not exist"
    if out.exists() and not out.is_dir():
        return "is a file, not a folder"
    target = out.resolve()
    folders = [page.resolve() for page in inputs if page.is_dir()]
    if target in folders:
        return "is an input folder: give the drafts a folder of their own"
    if found := earlier_review(out):
        return f"holds an earlier review ({display(found)}): give an empty or new folder"
    if out.is_dir() and (own := first_page(out)):
        return (
            f"holds pages ({own}): give the drafts a folder of their own (training on the folder would take the "
            "uncorrected drafts for labels, and a review would leave its pages out)"
        )
    for page, folder in zip([page for page in inputs if page.is_dir()], folders):
        if folder in target.parents:
            return (
                f"lies inside the input folder {page}: clean-article and later reviews would read the drafts and "
                f"REVIEW.md as pages of the crawl; give a folder beside it{_beside(page)}"
            )
    return ""


def _beside(folder: Path) -> str:
    """An example of a drafts folder beside an input folder (`` (e.g. crawl-drafts)``), as the user named the
    input where that has a name ('' for the root folder)."""
    given = Path(os.path.normpath(folder))
    named = given if given.name not in ("", "..") else folder.resolve()
    return f" (e.g. {named.with_name(named.name + '-drafts')})" if named.name else ""


def earlier_review(out: Path) -> str:
    """The name of a file of an earlier review in ``out`` ('' when there is none): a rerun would overwrite
    drafts someone may have corrected, or leave old drafts beside new ones."""
    if not out.is_dir():
        return ""
    for path in sorted(out.iterdir()):
        draft = path.name[:3].isdigit() and path.name[3:4] == "-" and path.suffix == ".txt"
        if draft or path.name == "REVIEW.md":
            return path.name
    return ""


# What a paragraph's label prefix looks like, typed right or not ("[Editorial]", "[promo]", "[nav ]"); not a
# Markdown link ("[Startseite](/)"), nor a marker a page prints in brackets ("[Anzeige]", "[Video]", "[Home]").
_LABEL_LIKE = re.compile(r"\[\s*(?i:edit|promo|nav)[^\]\n]{0,30}\](?!\()")


def candidate(path: Path, scorer: Scorer, site: str = "") -> Candidate | str:
    """The model's reading of one page, or why the page is left out (it cannot be read, or has no paragraph).
    A page that is already annotated is read without its labels. How a page that is not plain UTF-8 was read
    is noted, as clean-article notes it: a guessed encoding's misreadings would go into training unseen."""
    notes: list[str] = []
    try:
        with open(path, "rb") as handle:
            data = read_limited(handle, DEFAULT_MAX_BYTES, "the page")
        if data[:2] == GZIP_MAGIC:  # by the content, as clean-article reads it
            data = gunzip_limited(data, DEFAULT_MAX_BYTES, "the page")
        if sniff_kind(data[:4096], path.name) == "html":
            paragraphs = classify_html(markup.decode_html(data, notes=notes), scorer)
        else:
            text = decode(data, notes=notes)
            try:
                text = strip_labels(text)
            except AnnotationError as exc:  # not annotated: the page as it is; but half annotated is a mistake
                blocks = split_blocks(normalise_newlines(text))
                if sum(bool(_LABEL_LIKE.match(block)) for block in blocks) * 2 >= len(blocks) > 0:
                    return f"an annotated page with a mistake ({exc}): correct it to draft it"
            paragraphs = classify_as_text(text, scorer)
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    except (ValueError, InputError) as exc:
        return str(exc)
    for note in notes:
        sys.stderr.write(f"note: {display(path)}: {note}\n")
    if not paragraphs:
        return "no paragraph"
    expected = sum(1.0 - p.probabilities[p.label] for p in paragraphs)
    all_tokens = [t for p in paragraphs for t in tokens(p.text) if t[0].isalnum()]
    w1, w2 = scorer.experts[0].w1, scorer.experts[0].w2
    unknown = sum(1 for t in all_tokens if not (w1[unigram_id(t)] or w2[unigram_id(t)]))
    novelty = unknown / len(all_tokens) if all_tokens else 0.0
    return Candidate(path, site or path.parent.name, paragraphs, expected, novelty, frozenset(all_tokens))


def pick(candidates: list[Candidate], budget: int) -> list[Candidate]:
    """Up to ``budget`` pages, most worth first, diverse: near-duplicates of a picked page are passed over,
    and each page picked from a site halves the worth of that site's other pages."""
    picked: list[Candidate] = []
    per_site: dict[str, int] = {}
    pool = list(candidates)
    while pool and len(picked) < budget:
        best = max(pool, key=lambda c: c.worth / (2 ** per_site.get(c.site, 0)))
        pool.remove(best)
        twin = max(picked, key=lambda other: _overlap(best.words, other.words), default=None)
        if twin is not None and _overlap(best.words, twin.words) >= SIMILAR:
            sys.stderr.write(f"note: {display(best.path)}: left out (nearly the text of {display(twin.path)})\n")
            continue
        picked.append(best)
        per_site[best.site] = per_site.get(best.site, 0) + 1
    return picked


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """The Jaccard share of two pages' distinct words: high only when most of BOTH pages is shared (over the
    smaller page, a short page whose function words all occur in a long one counted as its duplicate)."""
    return len(a & b) / max(1, len(a | b))


def review(inputs: list[Path], out: Path, budget: int = 20, model: Path | None = None) -> Path:
    """Pick the pages most worth labelling, write them as annotated drafts into ``out`` and the report
    ``REVIEW.md`` beside them; returns the report's path."""
    if problem := output_problem(inputs, out):
        raise ValueError(f"{display(out)} {problem}")
    paths, passed_over = page_files(inputs)
    if not paths:
        raise ValueError(no_page_message(passed_over))
    scorer = load_model(model)
    candidates = []
    for path, site in paths.items():
        read = candidate(path, scorer, site)
        if isinstance(read, str):
            sys.stderr.write(f"note: {display(path)}: left out ({read})\n")
        else:
            candidates.append(read)
    if not candidates:
        raise ValueError("no readable text or HTML page among the inputs")
    chosen = pick(candidates, budget)
    files: dict[str, str] = {}
    lines = [
        "# Pages to label first",
        "",
        f"{len(chosen)} of {len(candidates)} pages, most worth a correction first. Each draft holds the model's "
        "labels in the annotated format of LABELS.md: correct them, move each corrected draft into "
        "`mysites/<site>/`, one folder per site (a draft's name is its rank, its site and its page: "
        "`001-<site>-<page>.txt`; training counts each folder as a site, and the drafts of all sites lie in one), "
        "then train with `detector train --data training_data --data mysites`. Expected errors: the sum over a "
        "page's paragraphs of one minus the probability of the chosen label; new words: the share the model has "
        f"no weight for; paragraphs below {UNCERTAIN:.0%} are listed to look at first.",
        "",
        "| # | draft | source | expected errors | new words | uncertain paragraphs |",
        "|---|---|---|---|---|---|",
    ]
    for rank, page in enumerate(chosen, 1):
        name = draft_name(rank, page)
        files[name] = format_annotated([LabelledParagraph(p.label, p.text) for p in page.paragraphs])
        try:
            parse_annotated(files[name])
        except AnnotationError as exc:  # the page had a line that begins with a label: the format cannot hold it
            sys.stderr.write(f"note: {name}: {exc}; correct it before training\n")
        lines.append(
            f"| {rank} | {_code(name)} | {_code(display(page.path))} | {page.expected_errors:.1f} | "
            f"{page.novelty:.0%} | {len(page.uncertain())} |"
        )
    lines += ["", "## Paragraphs to look at first", ""]
    for rank, page in enumerate(chosen, 1):
        lines.append(f"**{rank}. {display(page.path)}**")
        lines.append("")
        for p in page.uncertain()[:8]:
            lines.append(f"- paragraph {p.index}: `{p.label}` at {p.probabilities[p.label]:.2f}: {p.text[:100]!r}")
        lines.append("")
    lines += ["## Drift per site", "", "| site | pages | paragraphs | uncertain |", "|---|---|---|---|"]
    sites: dict[str, list[Candidate]] = {}
    for c in candidates:
        sites.setdefault(c.site, []).append(c)
    for site, pages in sorted(sites.items(), key=lambda item: -_uncertain_share(item[1])):
        count = sum(len(c.paragraphs) for c in pages)
        cell = display(site).replace("|", "\\|").replace("`", "\\`")
        lines.append(f"| {cell} | {len(pages)} | {count} | {_uncertain_share(pages):.1%} |")
    files["REVIEW.md"] = "\n".join(lines) + "\n"
    _write_all(out, files)
    return out / "REVIEW.md"


def _code(name: str) -> str:
    """A file or site name as a code span in a table cell: a ``|`` in it would start a new column and a
    backtick would end the span (a longer fence holds it)."""
    fence = "``" if "`" in name else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{name.replace('|', chr(92) + '|')}{pad}{fence}"


def draft_name(rank: int, page: Candidate) -> str:
    """A draft's file name: rank, site and page name, printable (``\\xNN`` for bytes that are not UTF-8), and
    at most 200 bytes, within the 255 a file system allows."""
    name = display(f"{rank:03}-{page.site}-{page.path.stem}")
    while len(name.encode("utf-8")) > 200:
        name = name[:-1]
    return name + ".txt"


def _write_all(out: Path, files: dict[str, str]) -> None:
    """Write the review's files, all or none: a failure removes what was written, so a rerun is not refused."""
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for name, text in files.items():
            # the name's UTF-8 bytes, as REVIEW.md (UTF-8) names the file, whatever the locale's encoding
            path = out / os.fsdecode(name.encode("utf-8"))
            written.append(path)
            path.write_text(text, encoding="utf-8")
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        if made:
            out.rmdir()
        raise


def _uncertain_share(pages: list[Candidate]) -> float:
    total = sum(len(c.paragraphs) for c in pages)
    return sum(len(c.uncertain()) for c in pages) / total if total else 0.0
