"""Attack round 24: ``detector review``'s near-duplicates, its output folder, a crawl of unknown names and the
training instruction in REVIEW.md."""

from __future__ import annotations

import gzip
import itertools
import re
import shutil
from pathlib import Path

import pytest

from detector.workbench.review import review
from tests.conftest import DEVSET, ROOT, needs_devset, run

SHORT = (
    "Startseite > Börse > Aktien\n\n"
    "Siemens-Aktie legt nach Zahlen deutlich zu\n\n"
    "München (dpa-AFX) - Die Aktie von Siemens ist am Donnerstag nach überraschend starken Quartalszahlen um mehr "
    "als fünf Prozent gestiegen. Der Konzern hob zudem die Prognose für das Gesamtjahr an.\n\n"
    "Analysten lobten vor allem die Entwicklung im Geschäft mit der Industrieautomatisierung, das zuletzt "
    "geschwächelt hatte.\n\n"
    "Siemens-Aktie: Kaufen oder verkaufen?! Neue Siemens-Analyse vom 12. Mai liefert die Antwort.\n\n"
    "Weitere Artikel zu Siemens\n\n"
    "Impressum | Datenschutz | AGB\n"
)


def lines(result) -> list[str]:
    return result.stderr.decode().splitlines()


def long_page_holding(text: str) -> str:
    """A long page of its own words that also holds every word of ``text`` (as a long page holds the
    function words of a short one)."""
    syllables = ("ka", "lo", "mi", "ne", "ru", "ta", "be", "so")
    words = ["".join(parts).capitalize() for parts in itertools.product(syllables, repeat=3)]
    paragraphs = [" ".join(words[i : i + 12]) + "." for i in range(0, len(words), 12)]
    paragraphs.insert(3, " ".join(sorted(set(re.findall(r"\w+", text)))) + ".")
    return "\n\n".join(paragraphs) + "\n"


def drafts_and_notes(result, out: Path) -> tuple[list[str], list[str]]:
    assert result.returncode == 0, result.stderr.decode()
    drafts = sorted(p.name for p in out.iterdir() if p.name != "REVIEW.md")
    return drafts, [line for line in lines(result) if "nearly the text of" in line]


def test_a_short_page_is_no_near_duplicate_of_a_long_page_holding_its_words(tmp_path):
    """Overlap over the smaller page's words made a short page "nearly the text of" any long page holding its
    (function) words; its own copies (gzipped, one paragraph changed) must still be found, and named."""
    crawl = tmp_path / "crawl"
    (crawl / "siteA").mkdir(parents=True)
    (crawl / "siteB").mkdir()
    (crawl / "siteA" / "long.txt").write_text(long_page_holding(SHORT), encoding="utf-8")
    (crawl / "siteB" / "short.txt").write_text(SHORT, encoding="utf-8")
    (crawl / "siteB" / "copy.txt.gz").write_bytes(gzip.compress(SHORT.encode()))
    edited = SHORT.replace("Weitere Artikel zu Siemens", "Mehr zum Thema: Siemens Energy und die Bahnsparte")
    (crawl / "siteB" / "edited.txt").write_text(edited, encoding="utf-8")
    out = tmp_path / "drafts"
    drafts, notes = drafts_and_notes(run("detector", "review", crawl, "-o", out, "--budget", "20"), out)
    assert (
        len(drafts) == 2
        and drafts[0].startswith("001-")
        and {d.split("-")[1] for d in drafts}
        == {
            "siteA",
            "siteB",
        }
    )
    assert len(notes) == 2, notes
    for note in notes:  # each short copy is named a near-duplicate of another short copy, not of the long page
        left, twin = re.fullmatch(r"note: (.+): left out \(nearly the text of (.+)\)", note).groups()
        assert Path(left).parent == Path(twin).parent == crawl / "siteB" and left != twin


@needs_devset
def test_a_short_news_item_is_drafted_beside_an_unrelated_full_page(tmp_path):
    """The attacker's case: a Siemens item was left out as "nearly the text of" a Börsen-Zeitung DAX page."""
    crawl = tmp_path / "crawl"
    (crawl / "siteA").mkdir(parents=True)
    (crawl / "siteB").mkdir()
    shutil.copy(DEVSET / "boersen-zeitung-de" / "steigende-us-zinsen-setzen-dax-zu.html", crawl / "siteA")
    (crawl / "siteB" / "siemens.txt").write_text(SHORT, encoding="utf-8")
    out = tmp_path / "drafts"
    drafts, notes = drafts_and_notes(run("detector", "review", crawl, "-o", out, "--budget", "20"), out)
    assert len(drafts) == 2 and notes == []


def test_review_into_a_folder_holding_an_earlier_review_is_a_usage_error(tmp_path):
    """It exited 1 ("the work failed") where every other bad -o is a usage error (exit 2)."""
    (tmp_path / "crawl" / "s").mkdir(parents=True)
    (tmp_path / "crawl" / "s" / "a.txt").write_text(SHORT, encoding="utf-8")
    out = tmp_path / "drafts"
    assert run("detector", "review", tmp_path / "crawl", "-o", out).returncode == 0
    again = run("detector", "review", tmp_path / "crawl", "-o", out, "--model", tmp_path / "no-model.bin")
    assert (again.returncode, lines(again)) == (
        2,
        [f"error: -o {out} holds an earlier review (001-s-a.txt): give an empty or new folder"],
    )
    with pytest.raises(ValueError, match="holds an earlier review"):  # the library refuses it too
        review([tmp_path / "crawl"], out)


def test_review_refuses_drafts_inside_an_input_folder_and_still_leaves_out_earlier_ones(tmp_path):
    """-o crawl/drafts was accepted, and README's next step (clean-article crawl/ -o cleaned/) then cleaned the
    drafts and REVIEW.md as crawled pages. Drafts an earlier version wrote into the crawl are still left out."""
    crawl = tmp_path / "crawl"
    (crawl / "s").mkdir(parents=True)
    (crawl / "s" / "a.txt").write_text(SHORT, encoding="utf-8")
    for out in (crawl / "drafts", crawl / "s" / "deeper" / "drafts"):
        result = run("detector", "review", crawl, "-o", out)
        assert (result.returncode, lines(result)) == (
            2,
            [
                f"error: -o {out} lies inside the input folder {crawl}: clean-article and later reviews would "
                "read the drafts and REVIEW.md as pages of the crawl; give a folder beside it "
                f"(e.g. {crawl}-drafts)"
            ],
        )
        assert not out.exists()
    with pytest.raises(ValueError, match="lies inside the input folder"):
        review([crawl], crawl / "drafts")
    earlier = tmp_path / "earlier"
    assert run("detector", "review", crawl, "-o", earlier).returncode == 0
    shutil.move(earlier, crawl / "drafts1")  # as a review before this round wrote it
    second = run("detector", "review", crawl, "-o", tmp_path / "drafts2")
    assert second.returncode == 0, second.stderr.decode()
    assert f"note: {crawl / 'drafts1'}: left out (the drafts of an earlier review)" in lines(second)
    assert "1 of 1 pages" in (tmp_path / "drafts2" / "REVIEW.md").read_text(encoding="utf-8")


def test_review_of_files_without_a_page_name_says_they_were_passed_over_for_their_names(tmp_path):
    """A wget crawl (index.php, artikel.html?id=5) had "no readable text or HTML page", as if reading failed;
    the same files named one by one are drafted."""
    news = tmp_path / "crawl" / "example.org" / "news"
    news.mkdir(parents=True)
    page = (
        "<html><body><h1>Siemens hebt Prognose an</h1><p>"
        + SHORT.replace("\n\n", "</p><p>")
        + "</p></body></html>"
    )
    (news / "index.php").write_text(page, encoding="utf-8")
    (news / "artikel.html?id=5").write_text(page.replace("Siemens", "Bayer"), encoding="utf-8")
    result = run("detector", "review", tmp_path / "crawl", "-o", tmp_path / "drafts")
    assert (result.returncode, lines(result)) == (
        1,
        [
            "error: no page among the inputs: 2 file(s) passed over for their names (review reads *.txt, "
            "*.txt.gz, *.md, *.md.gz, *.markdown, *.markdown.gz, *.html, *.htm, *.xhtml, *.shtml, *.html.gz, "
            "*.htm.gz, *.xhtml.gz, *.shtml.gz; name them one by one to read them anyway)"
        ],
    )
    one_by_one = run("detector", "review", *sorted(news.iterdir()), "-o", tmp_path / "drafts")
    assert one_by_one.returncode == 0, one_by_one.stderr.decode()
    assert " of 2 pages" in (tmp_path / "drafts" / "REVIEW.md").read_text(encoding="utf-8")  # both were read
    (tmp_path / "empty").mkdir()
    empty = run("detector", "review", tmp_path / "empty", "-o", tmp_path / "drafts3")
    assert (empty.returncode, lines(empty)) == (
        1,
        [
            "error: no page among the inputs (review reads *.txt, *.txt.gz, *.md, *.md.gz, *.markdown, "
            "*.markdown.gz, *.html, *.htm, *.xhtml, *.shtml, *.html.gz, *.htm.gz, *.xhtml.gz, *.shtml.gz)"
        ],
    )


def test_review_md_tells_to_train_one_folder_per_site_as_readme_does(tmp_path):
    """REVIEW.md said "train with --data <your folder>": the drafts of all sites lie in one folder, which
    training then counted as one site."""
    for site, text in (("alpha", SHORT), ("beta", long_page_holding(""))):
        (tmp_path / "crawl" / site).mkdir(parents=True)
        (tmp_path / "crawl" / site / "p.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "drafts"
    result = run("detector", "review", tmp_path / "crawl", "-o", out)
    assert result.returncode == 0, result.stderr.decode()
    report = (out / "REVIEW.md").read_text(encoding="utf-8")
    assert "<your folder>" not in report
    assert "move each corrected draft into `mysites/<site>/`, one folder per site" in report
    command = "detector train --data training_data --data mysites"
    assert f"`{command}`" in report and command in (ROOT / "README.md").read_text(encoding="utf-8")
    assert {p.name[4:] for p in out.glob("0*.txt")} == {"alpha-p.txt", "beta-p.txt"}  # rank, site, page
