"""detector evaluate: the metrics, the competitors' mapping, the report, and a quality floor on real pages."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from detector.pages import load_corpus
from detector.workbench.evaluate import (
    MEMORY,
    Page,
    SetReport,
    _kept_by_lines,
    evaluate_devset,
    evaluate_set,
    headline_rows,
    heads,
    keep_long_system,
    label_rows,
    render_text,
    write_markdown,
)
from detector.workbench.metrics import scores
from tests.conftest import DEVSET, FIXTURE_CORPUS, needs_devset

# One floor per dev-set group, a little under the scores of README.md (finanzen.net: macro-F1 0.942, editorial
# F1 0.979, leaks 0.0 % and 0.0 %, with site memory 0.952 and 0.984; full pages as text: 0.839, 0.887, 4.4 %,
# 5.2 %; as HTML: 0.859, 0.912, 3.5 %, 0.8 %; with site memory within 0.001 of these): a change that makes the
# model worse on real pages fails here.
# Leaks are ceilings. The same floors hold with site memory, which must not lose article. Floors move with
# models chosen by grouped cross-validation, never by these pages; every move is said in history.md. (History:
# finanzen.net's macro-F1 floor 0.93 -> 0.92 -> 0.91 and editorial F1 0.975 as corpus rounds 13-18 moved digest
# items and bylines at p = 0.5; text full pages' leak ceilings 3 % -> 5 % / 7 % -> 8 % -> 5.5 % / 7 % and
# editorial F1 0.82 -> 0.83 as thresholds moved; HTML editorial F1 0.90 -> 0.89. With the gate trained to pick
# the expert that reads a page better (cross-validation editorial F1, macro-F1 and both leaks better; threshold
# 0.52 -> 0.57) the text full pages keep more article (editorial F1 floor 0.83 -> 0.85, macro-F1 0.76 -> 0.78)
# and more chrome (navigational-leak ceiling 7 % -> 9 %), and finanzen.net loses five digest items (editorial F1
# floor 0.975 -> 0.965, macro-F1 0.91 -> 0.89). Corpus round 19 raised every group: finanzen.net's floors
# back to 0.97 / 0.91, text full pages' macro-F1 0.78 -> 0.80 and navigational-leak ceiling 9 % -> 8.5 %, HTML
# macro-F1 0.82 -> 0.835. The place features capped at 213 paragraphs kept more article on long HTML pages:
# HTML editorial F1 0.89 -> 0.90. Corpus round 22 (long full pages; threshold 0.51 -> 0.56) raised the text full
# pages (macro-F1 floor 0.80 -> 0.81, navigational-leak ceiling 8.5 % -> 8 %) and HTML macro-F1 (0.835 -> 0.84),
# and lost seven digest items and bylines on finanzen.net (macro-F1 floor 0.91 -> 0.90) and eleven paragraphs of
# article on the HTML pages (editorial F1 floor 0.90 -> 0.89). The topic features (how much of a paragraph's
# vocabulary the article run holds) raised the full pages (text editorial F1 floor 0.85 -> 0.86,
# navigational-leak ceiling 8 % -> 7.5 %; HTML editorial F1 0.89 -> 0.895) and lost three digest items of
# finanzen.net's morning briefings (editorial F1 floor 0.97 -> 0.96). Corpus round 24 (credits standing alone
# against captions, pointers to other stories) cut leaks in every group (HTML promotional-leak ceiling 4 % ->
# 3.5 %) and at the top of the full pages called 23 more sales lines navigational (their macro-F1 floor 0.78 ->
# 0.76). The text run and the outer box in the second stage with corpus round 25 (header zones) raised the text
# groups: finanzen.net's floors 0.90 -> 0.91 and 0.96 -> 0.97 (its crops 0.89 -> 0.90, 0.955 -> 0.96), the text
# full pages' 0.81 -> 0.815 and 0.86 -> 0.87 with the navigational-leak ceiling 7.5 % -> 7 %, their crops' 0.76 ->
# 0.80 and 0.77 -> 0.80 with ceilings 3 % -> 2 % and 6 % -> 5 %; HTML unchanged. Corpus round 26 (the article's
# edges) with sales markers read in their inflected forms raised every group but the crops of the full pages:
# finanzen.net 0.91 -> 0.92 and 0.97 -> 0.975 (crops 0.90 -> 0.92, 0.96 -> 0.97), text full pages 0.815 -> 0.83
# and 0.87 -> 0.875 with the navigational-leak ceiling 7 % -> 6.5 %, HTML 0.84 -> 0.85 and 0.895 -> 0.905, and
# kept one more sales line on the HTML pages: their promotional-leak ceiling 3.5 % -> 4 %. Corpus round 28
# (short episode pages, glued briefing items) raised finanzen.net's macro-F1 0.930 -> 0.944 (floor 0.92 -> 0.93,
# crops 0.92 -> 0.93), the text full pages' editorial F1 0.882 -> 0.887 (floor 0.875 -> 0.88) and HTML's 0.913 ->
# 0.917 (floor 0.905 -> 0.91). The menu-only training copies (history (25)) cost finanzen.net's crops a headline:
# editorial F1 0.974 -> 0.970 (floor 0.97 -> 0.965).)
DEVSET_FLOOR = {
    "devset-finanzen-net": {
        "macro_f1": 0.93,
        "editorial_f1": 0.975,
        "promotional_leak": 0.01,
        "navigational_leak": 0.02,
    },
    "devset-full-pages": {
        "macro_f1": 0.83,
        "editorial_f1": 0.88,
        "promotional_leak": 0.055,
        "navigational_leak": 0.065,
    },
    "devset-full-pages-html": {
        "macro_f1": 0.85,
        "editorial_f1": 0.91,
        "promotional_leak": 0.04,
        "navigational_leak": 0.015,
    },
    # The same text pages cut to their first ~2,000 characters (finanzen.net: 0.934, 0.970, 0.0 %, 0.0 %; full
    # pages: 0.824, 0.832, 1.1 %, 2.9 %, where the crop holds mostly chrome and the article's first lines).
    "devset-finanzen-net-head": {
        "macro_f1": 0.93,
        "editorial_f1": 0.965,
        "promotional_leak": 0.01,
        "navigational_leak": 0.02,
    },
    "devset-full-pages-head": {
        "macro_f1": 0.80,
        "editorial_f1": 0.80,
        "promotional_leak": 0.02,
        "navigational_leak": 0.05,
    },
}


def test_scores_of_a_known_confusion():
    truth = ["editorial", "editorial", "promotional", "navigational", "navigational"]
    predicted = ["editorial", "promotional", "editorial", "navigational", "editorial"]
    s = scores(truth, predicted)
    assert s["editorial"]["precision"] == pytest.approx(1 / 3)
    assert s["editorial"]["recall"] == pytest.approx(1 / 2)
    assert s["promotional_leak"] == 1.0
    assert s["navigational_leak"] == 0.5
    assert s["confusion"] == [[1, 1, 0], [1, 0, 0], [1, 0, 1]]


def test_scores_a_page_cannot_give_are_none_and_shown_as_a_dash():
    """A set without promotional paragraphs has no promotional recall, F1 or leak: None, not 0.000 (which
    read as a total failure), and macro-F1 averages the two labels present."""
    truth = ["editorial", "navigational", "navigational"]
    s = scores(truth, ["editorial", "navigational", "editorial"])
    assert s["promotional"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert s["promotional_leak"] is None and s["navigational_leak"] == 0.5
    assert s["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    wrongly = scores(truth, ["promotional", "navigational", "navigational"])["promotional"]
    assert wrongly == {"precision": 0.0, "recall": None, "f1": 0.0, "support": 0}
    report = SetReport("s", "s", pd.DataFrame({"label": truth, "page": "p", "site": "s"}), {"detector": truth})
    assert label_rows(report)[1] == ["promotional", "–", "–", "–", "0"]
    assert headline_rows(report)[0][4:] == ["–", "0.0%", "1.000"]


def test_keep_long_baseline():
    assert keep_long_system(Page(["kurz", "ein " * 12], None)) == ["removed", "editorial"]


def test_heads_keep_the_paragraphs_that_end_within_2000_characters_and_at_least_three():
    long, short = "L" * 900, "s" * 98
    corpus = pd.DataFrame(
        {
            "page": ["a"] * 5 + ["b"] * 25,
            "text": [long] * 5 + [short] * 25,
            "label": ["editorial"] * 30,
        }
    )
    cut = heads(corpus)
    assert cut["page"].tolist() == ["a"] * 3 + ["b"] * 20  # 900 + 2 twice ends at 1,804; 20 × (98 + 2) = 2,000
    assert cut["text"].tolist() == [long] * 3 + [short] * 20


def test_report_compares_all_systems(tmp_path):
    corpus = load_corpus(FIXTURE_CORPUS)
    report = evaluate_set("fixture", "fixture pages", corpus, corpus["label"].tolist(), compare=True)
    systems = set(report.predictions)
    assert {"detector", "keep all", "keep paragraphs of 12+ words"} <= systems
    pytest.importorskip("trafilatura")
    pytest.importorskip("justext")
    assert {"trafilatura (default)", "trafilatura (favor_precision)", "jusText (German stop-list)"} <= systems
    assert report.scores("keep all")["editorial"]["recall"] == 1.0
    assert report.scores("detector")["macro_f1"] == 1.0
    text = render_text([report])
    assert "trafilatura (default)" in text and "worst first" in text
    markdown = write_markdown([report], tmp_path).read_text(encoding="utf-8")
    assert "| detector | 1.000 | 1.000 | 1.000 | 0.0% | 0.0% | 1.000 |" in markdown


@needs_devset
def test_devset_quality_does_not_fall_below_the_floor_of_each_group_with_or_without_site_memory():
    reports = {report.name: report for report in evaluate_devset(DEVSET, compare=False)}
    assert set(reports) == set(DEVSET_FLOOR) | {name + MEMORY for name in DEVSET_FLOOR}
    for name, floor in [*DEVSET_FLOOR.items(), *((name + MEMORY, f) for name, f in DEVSET_FLOOR.items())]:
        s = reports[name].scores("detector")
        found = {
            "macro_f1": s["macro_f1"],
            "editorial_f1": s["editorial"]["f1"],
            "promotional_leak": s["promotional_leak"],
            "navigational_leak": s["navigational_leak"],
        }
        assert found["macro_f1"] >= floor["macro_f1"], (name, found)
        assert found["editorial_f1"] >= floor["editorial_f1"], (name, found)
        assert found["promotional_leak"] <= floor["promotional_leak"], (name, found)
        assert found["navigational_leak"] <= floor["navigational_leak"], (name, found)
    for name in DEVSET_FLOOR:  # site memory keeps the article: at most one paragraph in a hundred lost to it
        alone = reports[name].scores("detector")["editorial"]["recall"]
        assert reports[name + MEMORY].scores("detector")["editorial"]["recall"] >= alone - 0.01, name


def test_an_extractor_gets_credit_for_what_it_printed_once_per_printed_copy():
    """trafilatura prints list items as ``- item``, table rows as ``| a | b |`` and may glue a heading to the
    next paragraph: the text is there and counts; one printed "Anzeige" is one leaked paragraph, not eight."""
    long = "Der Umsatz stieg im dritten Quartal um neun Prozent auf 1,84 Milliarden Euro."
    texts = ["Anzeige", "Anzeige", "Prognose angehoben", long, "Punkt eins", "Kurs 12,40 Euro", long, "Fehlt"]
    output = f"Anzeige\nPrognose angehoben {long}\n- Punkt eins\n| Kurs | 12,40 Euro |"
    assert _kept_by_lines(texts, output) == [
        *["editorial", "removed"],
        *["editorial", "editorial", "editorial", "editorial"],
        *["removed", "removed"],  # the long paragraph's second copy was not printed
    ]
    assert _kept_by_lines(texts, None) == ["removed"] * len(texts)


def test_evaluate_of_attack_round_61(tmp_path, monkeypatch):
    """A menu word that began an article's line took the line's credit while the line credited its paragraph
    too; a byline printed over two lines, and a paragraph with soft hyphens (trafilatura drops them), never
    counted; a stem made unique by a number could be another set's, a "$…$" in a name failed the report, and a
    name with a space or a parenthesis made a link that did not show; a report that failed half-way left new
    pictures beside the old tables; a user folder named training_data_… was judged by its file names."""
    from detector.workbench import evaluate as evaluation
    from detector.workbench.evaluate import flag_rows, preset_rows, text_table

    long = "Stuttgart – Der Sportwagenbauer senkt seine Prognose erneut, teilte er am Montag mit."
    texts = [
        "Stuttgart",
        "Porsche kappt Prognose",
        long,
        "Von Max Muster Stuttgart, 12. Mai",
        "Wei\u00adche Tren\u00adner im Text, ein Absatz von mehr als vierzig Zeichen.",
    ]
    soft = "Weiche Trenner im Text, ein Absatz von mehr als vierzig Zeichen."
    output = f"{long}\nVon Max Muster\nStuttgart, 12. Mai\n{soft}"
    assert _kept_by_lines(texts, output) == ["removed", "removed", "editorial", "editorial", "editorial"]
    glued = _kept_by_lines(["Porsche kappt Prognose", long], f"Porsche kappt Prognose {long}")
    assert glued == ["editorial", "editorial"]

    def report(name: str, labels: list[str]) -> SetReport:
        frame = pd.DataFrame({"label": labels, "page": "seite.txt", "site": "s", "text": ["Text"] * len(labels)})
        probabilities = np.asarray([[0.1, 0.8, 0.1]] * len(labels))
        return SetReport(
            name, name, frame, {"detector": ["navigational"] * len(labels)}, probabilities, {"balanced": 0.6}
        )

    pytest.importorskip("matplotlib")
    sets = [
        report("x", ["editorial"]),
        report("x-2", ["editorial"]),
        report("x", ["editorial"]),
        report("a (2) $^$", ["editorial"]),
    ]
    markdown = write_markdown(sets, tmp_path).read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)]*)\)", markdown)
    assert len(links) == len(set(links)) == 8 and all(re.fullmatch(r"[\w.-]+\.png", link) for link in links)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["evaluation.md", *links])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(evaluation, "_plot_knob", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_markdown([report("y", ["editorial"])], tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the old report stands whole
    monkeypatch.undo()
    (tmp_path / "knob-y.png").mkdir()  # a picture that cannot be put in place: named, and nothing replaced
    with pytest.raises(IsADirectoryError, match=re.escape(str(tmp_path / "knob-y.png"))):
        write_markdown([report("y", ["editorial"])], tmp_path)
    (tmp_path / "knob-y.png").rmdir()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

    flagged = report("training_data_mine", ["navigational"] * 3)
    flagged.corpus["page"] = "overview-eins.txt"
    assert flag_rows(flagged)[2][:3] == ["no_article", "1", "1"]  # by its labels, not its file's name
    assert preset_rows(report("z", ["editorial"]))[0][2] == "0.000"  # nothing kept, as the headline shows it
    decomposed = text_table(["Seite", "n"], [["bo\u0308rse.txt", "1"], ["boerse.txt", "2"]]).splitlines()
    assert decomposed[2].index("1") == decomposed[3].index("2")
