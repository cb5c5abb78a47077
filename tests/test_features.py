"""What the model sees of a paragraph's form and place, and the article-region copies training adds."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from detector.features import (
    DENSE_NAMES,
    FORM_NAMES,
    LENGTH_CAP,
    MARKUP_NAMES,
    SITE_MIN_PAGES,
    STAGE2_NAMES,
    SiteMemory,
    article_run,
    form_features,
    markup_features,
    neighbour_features,
    page_features,
    page_keys,
    recurring,
    repeat_key,
    text_run,
    topic_words,
)
from detector.markup import LANDMARKS, Block, blocks
from detector.pages import load_corpus
from detector.workbench.markdown import IMAGE_LINE, markdown_page
from detector.workbench.train import shortened, with_training_copies
from tests.conftest import FIXTURE_CORPUS

DIGEST = [
    "Was Anleger heute wissen müssen",
    "2. Ölpreis gibt nach: Ein Barrel Brent verbilligte sich im asiatischen Handel um 0,7 Prozent.",
    "Zur Meldung",
    "Die fünf meistgelesenen Artikel der Woche im Überblick",
    "Zur Meldung",
    "Sind Sie bereit für die nächste große Rally an den Märkten?",
    "Mehr",
]


def column(name: str, paragraphs: list[str]) -> list[float]:
    return [row[DENSE_NAMES.index(name)] for row in page_features(paragraphs)]


def test_a_full_sentence_between_link_lines_is_a_statement_among_short_lines():
    assert column("statement", DIGEST) == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert column("statement_among_short", DIGEST) == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_a_statement_between_long_paragraphs_is_not_among_short_lines():
    body = ["Der Dax schloss am Abend mit einem Plus von 0,4 Prozent bei 19.250 Punkten im Handel."] * 3
    assert column("statement", body) == [1.0, 1.0, 1.0]
    assert column("statement_among_short", body) == [0.0, 0.0, 0.0]


def test_a_short_line_with_a_link_word_is_a_pointer_wherever_it_stands():
    lines = [
        "Den kompletten Wochenkalender finden Sie hier.",
        "Zum Liveticker: hier klicken",
        "Hierzulande sinken die Bauzinsen.",
        "Hier zeigt sich, wie stark die Abhängigkeit vom chinesischen Markt inzwischen geworden ist, "
        "sagen Analysten der Landesbank.",
    ]
    assert [form_features(line)[FORM_NAMES.index("short_link_word")] for line in lines] == [1.0, 1.0, 0.0, 0.0]


def page_table(labels: list[str], page: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"site": "s", "page": page, "index": range(len(labels)), "label": labels, "text": labels, "block": None}
    )


def test_article_region_copies_start_at_the_article_and_end_at_it_or_just_after():
    labels = ["navigational"] * 2 + ["editorial"] * 4 + ["promotional"] + ["editorial"] + ["navigational"] * 5
    pages = [page_table(labels, f"s/page-{i}.txt") for i in range(40)]
    corpus = pd.concat(pages, ignore_index=True)
    copies = with_training_copies(corpus).iloc[len(corpus) :]
    crops = copies[copies["page"].str.endswith("#body")]
    tails = []
    for _page, rows in crops.groupby("page", sort=False):
        assert rows["index"].iloc[0] == 2
        assert rows["index"].tolist() == list(range(2, rows["index"].iloc[-1] + 1))
        tails.append(rows["index"].iloc[-1] - 7)
    assert len(tails) == 40
    assert set(tails) == {0, 1, 2}
    assert 10 <= tails.count(0) <= 30
    assert with_training_copies(corpus).equals(with_training_copies(corpus))


def test_a_third_of_the_pages_that_start_with_chrome_get_a_copy_of_their_chrome_alone():
    labels = ["navigational"] * 6 + ["promotional"] * 2 + ["navigational"] * 6 + ["editorial"] * 5
    pages = [page_table(labels, f"s/page-{i}.txt") for i in range(60)]
    pages.append(page_table(["navigational"] * 2 + ["editorial"] * 5, "s/short-head.txt"))
    copies = with_training_copies(pd.concat(pages, ignore_index=True))
    menus = copies[copies["page"].str.endswith("#menu")]
    sizes = [rows["index"].tolist() for _, rows in menus.groupby("page", sort=False)]
    assert 10 <= len(sizes) <= 30 and "s/short-head.txt#menu" not in set(menus["page"])
    assert all(indices == list(range(len(indices))) and 3 <= len(indices) <= 12 for indices in sizes)
    assert len({len(indices) for indices in sizes}) >= 5 and "editorial" not in set(menus["label"])


def test_a_page_that_is_all_article_gets_no_copy():
    corpus = page_table(["editorial"] * 5, "s/all.txt")
    assert len(with_training_copies(corpus)) == 5


def test_html_pages_get_a_text_copy_and_long_pages_a_head_copy():
    corpus = load_corpus(FIXTURE_CORPUS)
    copies = with_training_copies(corpus)
    text_copy = copies[copies["page"] == "site-c/stahl.html#text"]
    original = corpus[corpus["page"] == "site-c/stahl.html"]
    assert text_copy["text"].tolist() == original["text"].tolist()
    assert text_copy["block"].isna().all() and original["block"].notna().all()
    labels = ["navigational"] * 5 + ["editorial"] * 30 + ["navigational"] * 5
    long_page = page_table(labels, "s/long.txt").assign(text=[f"{i:03} " + "x" * 96 for i in range(40)])
    head = with_training_copies(long_page).query("page == 's/long.txt#head'")
    assert head["index"].tolist() == list(range(19))  # 19 paragraphs of 100 characters and a blank line each


def test_shortening_keeps_article_and_pitches_and_cuts_every_menu_run_alike():
    labels = ["navigational"] * 10 + ["editorial"] * 3 + ["promotional"] + ["navigational"] * 20
    keep = shortened(labels, budget=12)
    assert keep == [0, 1, 8, 9, 10, 11, 12, 13, 14, 15, 32, 33]  # first two and last two of each run: cap 2
    assert shortened(labels, budget=100) == list(range(len(labels)))
    assert len(shortened(["navigational"] * 300)) == 120


def test_long_html_pages_get_a_shortened_text_copy():
    labels = ["navigational"] * 100 + ["editorial"] * 10 + ["navigational"] * 100
    page = page_table(labels, "s/big.html").assign(block=[Block(t, "p", 0, 0, (), 1, None, 0) for t in labels])
    copies = with_training_copies(page)
    short = copies[copies["page"] == "s/big.html#short"]
    assert short["block"].isna().all()
    # 10 editorial and two runs of 53 + 2: the largest cap within 120 paragraphs
    assert short["index"].tolist() == list(range(53)) + list(range(98, 163)) + [208, 209]


MENU = ["Märkte", "Fonds", "Anleihen"]
MARKDOWN_SOURCE = [  # label, text, tag, heading, link characters, group
    *[("navigational", word, "li", 0, len(word), 5) for word in MENU],
    ("navigational", "Startseite | Märkte | Fonds", "p", 0, 22, 6),
    ("editorial", "Zinsen steigen wieder", "h1", 1, 0, 7),
    ("editorial", "Die Notenbank hob den Leitzins am Donnerstag um einen Viertelpunkt an.", "p", 0, 9, 7),
    ("editorial", "Die Präsidentin vor der Presse in Frankfurt", "figcaption", 0, 0, 8),
    *[("promotional", f"Depot {n} eröffnen und Prämie sichern", "li", 0, 0, 9) for n in (1, 2)],
    ("editorial", "Ein Lob der Geduld", "blockquote", 0, 0, 10),
]


def markdown_plain(paragraph: str) -> list[str]:
    """The text of a Markdown paragraph's lines, its link targets and syntax removed."""
    lines = []
    for line in paragraph.split("\n"):
        line = re.sub(r"\[ ?(.*?) ?\]\([^)]*\)", r"\1", line)
        line = re.sub(r"^(?:#+ |> |[*+-] |1\. )", "", line).replace("**", "").replace("\\", "")
        lines.append(line)
    return lines


def test_markdown_copies_keep_every_paragraph_its_label_and_its_order_in_every_style():
    rows = [
        (label, text, Block(text, tag, links, 0, (), 3, None, heading, group, (group,)))
        for label, text, tag, heading, links, group in MARKDOWN_SOURCE
    ]
    shapes = set()
    for number in range(60):
        written = markdown_page(f"s/page-{number}.html#markdown", "finanz-seite", rows)
        assert written == markdown_page(f"s/page-{number}.html#markdown", "finanz-seite", rows)
        images = [md.lstrip("[").startswith("![") for _, md in written]
        texts = [(label, markdown_plain(md)) for (label, md), image in zip(written, images) if not image]
        assert [line for _, lines in texts for line in lines] == [text for _, text, *_ in MARKDOWN_SOURCE]
        assert [label for label, lines in texts for _ in lines] == [label for label, *_ in MARKDOWN_SOURCE]
        assert all(label == IMAGE_LINE for (label, _), image in zip(written, images) if image)
        first = next(md for _, md in written if "Märkte" in md)
        assert re.match(r"(?:[*+-]|1\.) \[ ?Märkte ?\]\((?:/|https://)", first)  # a fully linked item is one link
        menu = next(md for _, md in written if "Startseite" in md)
        assert menu.count("](") == 3  # each part between separators is one link
        shapes.add("one list paragraph" if "\n" in first else "a paragraph per item")
        shapes.add("image" if any(md.startswith("![") for _, md in written) else "no image")
    assert shapes == {"one list paragraph", "a paragraph per item", "image", "no image"}


def test_a_third_of_the_html_pages_get_a_markdown_copy_in_their_site():
    labels = ["navigational"] * 3 + ["editorial"] * 4 + ["navigational"] * 3
    pages = [
        page_table(labels, f"s/page-{i}.html").assign(block=[Block(t, "p", 0, 0, (), 1, None, 0) for t in labels])
        for i in range(30)
    ]
    copies = with_training_copies(pd.concat(pages, ignore_index=True))
    markdown = copies[copies["page"].str.endswith("#markdown")]
    assert 5 <= markdown["page"].nunique() <= 15
    assert markdown["block"].isna().all() and set(markdown["site"]) == {"s"}
    for _, rows in markdown.groupby("page"):
        assert [label for label, text in zip(rows["label"], rows["text"]) if not text.startswith("[![")] == labels


def test_repeated_paragraphs_and_runs_of_short_lines_are_seen():
    page = [
        "Start",
        "Börse",
        "Geld",
        "Der Dax stieg am Mittag um ein Prozent auf 19.500 Punkte.",
        "Start",
        "Börse",
    ]
    assert column("repeats_on_page", page) == pytest.approx([math.log(2)] * 2 + [0.0, 0.0] + [math.log(2)] * 2)
    assert column("seen_before", page) == [0, 0, 0, 0, 1, 1]
    assert column("short_run", page) == pytest.approx([math.log1p(3)] * 3 + [0.0] + [math.log1p(2)] * 2)


def test_page_length_and_distances_to_the_ends_count_up_to_the_cap():
    """A page twice the cap's length reads, at its head, like one of the cap's length plus one: the length
    and the distance to the end stop growing there, and so does the distance from the start further down."""
    filler = ["Der Dax stieg am Mittag um ein Prozent auf 19.500 Punkte."] * (2 * LENGTH_CAP)
    long_page, capped_page = ["Startseite", *filler], ["Startseite", *filler[:LENGTH_CAP]]
    for name in ("log_page_len", "log_pos_from_end"):
        assert column(name, long_page)[0] == column(name, capped_page)[0] == math.log1p(LENGTH_CAP)
    assert column("log_pos", long_page)[-1] == math.log1p(LENGTH_CAP)
    assert column("log_pos", long_page)[LENGTH_CAP - 1] == math.log1p(LENGTH_CAP - 1)


def test_the_text_run_weighs_paragraphs_by_length_so_a_share_bar_does_not_cut_off_the_headline():
    # headline, lead, three one-word share buttons, body; the article run stops at the buttons
    editorial = [0.1, 0.6, 0.9, 0.05, 0.05, 0.05, 0.95, 0.9, 0.1]
    lengths = [20, 60, 400, 6, 8, 7, 900, 700, 30]
    assert article_run(editorial) == (6, 8)
    assert text_run(editorial, lengths) == (1, 8)
    assert text_run(editorial, [100] * len(editorial)) == article_run(editorial)  # equal lengths: the same run
    run = [STAGE2_NAMES.index(n) for n in ("in_text_run", "log_before_text_run", "log_after_text_run")]
    logits = [[math.log(p), math.log((1 - p) / 2), math.log((1 - p) / 2)] for p in editorial]  # softmax: p
    rows = neighbour_features(logits, lengths=lengths)
    assert [row[run[0]] for row in rows] == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    assert rows[0][run[1]] == pytest.approx(math.log(2)) and rows[8][run[2]] == pytest.approx(math.log(2))
    assert all(row[i] == 0.0 for row in neighbour_features(logits) for i in run)  # lengths not given


def test_the_outer_box_speaks_for_items_that_each_sit_alone_in_a_wrapper_of_their_own():
    # three menu items, each in its own box (10, 11, 12) inside box 1; a paragraph alone in box 2 inside box 3
    boxes = [(10, 1, 0), (11, 1, 0), (12, 1, 0), (2, 3, 0)]
    logits = [[0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [0.0, 1.0, 1.0], [3.0, 0.0, 0.0]]
    own = [STAGE2_NAMES.index(n) for n in ("in_box", "log_box_size", "box_0", "box_1", "box_2")]
    outer = [STAGE2_NAMES.index(n) for n in ("in_outer_box", "log_outer_size", "outer_0", "outer_1", "outer_2")]
    rows = neighbour_features(logits, boxes)
    assert all(row[i] == 0.0 for row in rows for i in own)  # no own box holds a second paragraph
    first = [rows[0][i] for i in outer]
    probs = [[math.exp(v) / sum(math.exp(x) for x in row) for v in row] for row in logits]
    assert first[:2] == [1.0, pytest.approx(math.log(3))]  # box 1 holds two others; box 0 is further out
    assert first[2:] == pytest.approx([(probs[1][k] + probs[2][k]) / 2 for k in range(3)])
    assert [rows[3][i] for i in outer][:2] == [1.0, pytest.approx(math.log(4))]  # box 3 alone: box 0, all four
    shared = neighbour_features(logits, [(1, 0), (1, 0), (1, 0), (2, 0)])
    assert [shared[0][i] for i in own][:2] == [1.0, pytest.approx(math.log(3))]  # a shared own box, as before
    assert all(row[i] == 0.0 for row in neighbour_features(logits) for i in own + outer)  # text input


def test_the_article_run_is_the_densest_run_of_editorial_scores():
    assert article_run([0.1, 0.9, 0.8, 0.2, 0.9, 0.95, 0.1, 0.1]) == (1, 6)
    assert article_run([0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.8, 0.9, 0.9]) == (6, 9)
    assert article_run([0.1, 0.2]) == (1, 2)


def test_markup_features_are_zero_for_text_and_tell_the_tag_and_links_for_html():
    (block,) = [b for b in blocks('<nav><ul><li><a href="/">Startseite</a></li></ul></nav>')]
    values = dict(zip(MARKUP_NAMES, markup_features(block)))
    assert values["html"] == 1.0 and values["link_share"] == 1.0 and values["tag_li"] == 1.0
    assert values["in_nav"] == 1.0 and values["in_li"] == 1.0 and values["in_footer"] == 0.0
    assert markup_features(None) == [0.0] * len(MARKUP_NAMES)


def html_column(name: str, html: str) -> dict[str, float]:
    """One dense feature of every paragraph of an HTML page, by the paragraph's text."""
    page = blocks(html)
    index = DENSE_NAMES.index(name)
    return {b.text: row[index] for b, row in zip(page, page_features([b.text for b in page], page))}


def test_a_sales_marker_labels_the_short_lines_after_it_and_the_boxes_it_opens():
    page = [
        "Politik",
        "Anzeige",
        "Kreditvergleich",
        "Gutscheine",
        "Der Dax stieg am Mittag um ein Prozent.",
        "Mehr",
    ]
    assert column("sales_marker", page) == [0, 1, 0, 0, 0, 0]
    assert column("marker_in_short_run", page) == [0, 0, 1, 1, 0, 0]
    menu = (
        '<ul class="menu"><li class="sec">Politik<ul><li>Bund</li><li>Länder</li></ul></li>'
        '<li class="sec">Einkaufen <span>Anzeige</span>'
        "<ul><li>Kaufhaus Lindner</li><li>Bergwerk Outdoor</li></ul></li>"
        '<li class="sec">Sport</li></ul>'
        '<div class="slot"><div class="lbl">Werbung</div><p>Jetzt Depot eröffnen</p></div>'
        "<p>Der Dax stieg am Mittag um ein Prozent.</p>"
    )
    assert html_column("under_marker_box", menu) == {
        "Politik": 0,
        "Bund": 0,
        "Länder": 0,
        "Einkaufen Anzeige": 0,  # the marker opens its own box, and its entries stand under it
        "Kaufhaus Lindner": 1,
        "Bergwerk Outdoor": 1,
        "Sport": 0,  # the marker did not open the menu: the next section is not under it
        "Werbung": 0,
        "Jetzt Depot eröffnen": 1,  # the ad slot the label opens
        "Der Dax stieg am Mittag um ein Prozent.": 0,
    }


def test_sales_markers_are_read_in_their_inflected_forms_and_not_in_names():
    markers = ["Partnerangebote", "Partnerinhalte", "Angebote von unseren Partnern", "Anzeigen", "Werbung"]
    others = ["Partners Group", "Partnerschaft mit der Stadt", "Zeitungsanzeige"]
    assert column("sales_marker", markers + others) == [1, 1, 1, 1, 1, 0, 0, 0]


def test_every_landmark_of_the_markup_has_its_feature_in_the_same_bit_order():
    """features names the landmark bits of markup.Block without importing markup at run time (cold start)."""
    names = [name.removeprefix("in_") for name in MARKUP_NAMES if name.startswith("in_")]
    assert names == [{"blockquote": "quote"}.get(tag, tag) for tag in LANDMARKS]


def test_text_in_a_dialog_is_marked_as_such():
    html = '<div role="dialog"><p>Wir verwenden Cookies.</p></div><dialog><p>Newsletter</p></dialog><p>Text</p>'
    index = MARKUP_NAMES.index("in_dialog")
    assert [markup_features(b)[index] for b in blocks(html)] == [1.0, 1.0, 0.0]


CHROME = [
    "Startseite | Märkte | Aktien",
    "Keine Anlageberatung. Alle Angaben ohne Gewähr.",
    "© 2026 Beispielportal",
]


def site_pages(n: int) -> list[list[str]]:
    """n pages of one site (up to six): the same chrome around a different article on each."""
    topics = ["Siemens", "Allianz", "BASF", "Daimler Truck", "Zalando", "Symrise"]
    return [[CHROME[0], f"Ein Artikel über {topic}", *CHROME[1:]] for topic in topics[:n]]


def test_site_memory_gives_each_paragraph_the_share_of_the_other_pages_that_hold_it():
    memory = SiteMemory()
    for page in site_pages(5):
        memory.add(page)
    page = site_pages(5)[0]
    assert memory.pages == 5
    assert memory.shares(page) == [1.0, 0.0, 1.0, 1.0]
    assert memory.repeated().shares(page) == [1.0, 0.0, 1.0, 1.0]  # pruned: what the second pass needs
    assert len(memory.repeated().counts) == len(CHROME)
    assert memory.shares(["Eine Zeile, die es auf keiner Seite gibt"]) == [0.0]


def test_site_memory_folds_numbers_case_and_white_space():
    assert repeat_key("© 2026  Beispielportal\n") == repeat_key("© 2027 beispielportal")
    assert repeat_key("DAX 18.234 +0,5 %") == repeat_key("Dax 17.001 +1,25 %")
    assert repeat_key("Siemens hebt Prognose") != repeat_key("Siemens senkt Prognose")


def test_site_memory_says_nothing_below_the_minimum_and_counts_a_repeated_page_once():
    memory = SiteMemory()
    for page in site_pages(SITE_MIN_PAGES - 1):
        memory.add(page)
    memory.add(site_pages(1)[0])  # the first page again (a crawl that fetched it twice)
    assert memory.pages == SITE_MIN_PAGES - 1
    assert memory.shares(CHROME) is None


def test_site_memory_counts_pages_given_as_keys_and_stays_within_its_cap():
    by_text, by_keys = SiteMemory(), SiteMemory()
    for page in site_pages(6) + site_pages(2):  # two pages twice: a crawl that fetched them again
        by_text.add(page)
        by_keys.add_keys(page_keys(page))  # as the batch's workers send them
    assert by_text.pages == by_keys.pages == 6 and by_text.counts == by_keys.counts
    capped = SiteMemory(cap=2)
    for page in site_pages(6):
        capped.add(page)
        assert len(capped.counts) <= 2
    assert capped.thinned


def test_memories_of_two_files_of_one_host_add_up_and_the_same_file_twice_counts_once():
    first, second, whole = SiteMemory(), SiteMemory(), SiteMemory()
    for i, page in enumerate(site_pages(6)):
        (first if i < 3 else second).add(page)
        whole.add(page)
    merged = SiteMemory()
    for memory in (first, second, first):  # the first file given twice
        merged.merge(memory)
    assert merged.pages == whole.pages and merged.counts == whole.counts


def test_second_stage_site_features_are_neutral_without_memory_and_for_what_does_not_recur():
    logits = [[0.0, 1.0, -1.0], [0.0, -2.0, 0.5], [0.0, 0.3, 0.2]]
    site = [i for i, name in enumerate(STAGE2_NAMES) if name.startswith("site_")]
    assert STAGE2_NAMES[site[0]] == "site_repeat" and STAGE2_NAMES[site[-1]] == "site_repeat_near"
    alone = neighbour_features(logits)
    in_batch = neighbour_features(logits, repeats=[1.0, 0.0, 0.5])
    assert all(row[i] == 0.0 for row in alone for i in site)
    assert [[row[i] for i in site] for row in in_batch] == [
        [1.0, 1.0, 1.0, 0.25],
        [0.0, 0.0, 0.0, 0.75],
        [0.5, 1.0, 1.0, 0.5],
    ]
    assert [row[: site[0]] for row in alone] == [row[: site[0]] for row in in_batch]
    assert neighbour_features(logits, repeats=[0.0, 0.0, 0.0]) == alone  # nothing recurs: as without memory


def test_topic_words_are_stems_of_content_words_without_digits_or_function_words():
    assert topic_words("Die Zinsen steigen, sagte die EZB-Präsidentin am 12.03.2025 in Frankfurt.") == frozenset(
        {"zinsen", "steige", "präsid", "frankf"}
    )
    assert topic_words("Mehr dazu: 2025") == frozenset()


def test_second_stage_topic_features_say_how_much_of_a_paragraph_the_article_run_holds():
    texts = [
        "Startseite",  # before the run, too short to tell
        "Bayerwerk erhöht Dividende nach Rekordgewinn",
        "Der Chemiekonzern Bayerwerk hebt nach einem Rekordgewinn seine Dividende kräftig an.",
        "Vorstandschef Lindner nannte den Rekordgewinn einen Erfolg der gesamten Belegschaft.",
        "Reederei Nordhafen streicht Stellen: Frachtraten brechen im Herbst deutlich ein.",  # another story
    ]
    logits = [[-3.0, 0.0, 3.0], [3.0, 0.0, 0.0], [3.0, 0.0, 0.0], [3.0, 0.0, 0.0], [-1.0, 0.0, 1.0]]
    known, shared = STAGE2_NAMES.index("topic_known"), STAGE2_NAMES.index("topic_shared")
    rows = neighbour_features(logits, words=[topic_words(t) for t in texts])
    assert [row[known] for row in rows] == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert [round(row[shared], 3) for row in rows] == [0.0, 0.75, 0.6, 0.143, 0.0]  # the run: 1-3
    assert all(row[known] == row[shared] == 0.0 for row in neighbour_features(logits))  # text not given


def test_the_memory_tells_of_a_paragraph_when_it_or_a_near_neighbour_recurs():
    assert recurring(None) == []
    assert recurring([0.0] * 4) == [False] * 4
    assert recurring([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5]) == [False, False, False, False, True, True, True]


def test_a_site_memory_at_its_cap_lets_go_of_what_one_page_held_and_still_counts_the_chrome():
    """A page of more distinct paragraphs than the cap, counted first, filled it: the chrome of every page after
    it recurred nowhere (memory was off for the site, whatever the note said)."""
    from detector.features import SiteMemory

    memory = SiteMemory(cap=100)
    memory.add([f"Aktie Nummer {chr(0x4E00 + i)}" for i in range(150)])  # a list of 150 distinct lines
    chrome = ["Startseite", "Impressum", "Jetzt Depot eröffnen"]
    for article in ("Siemens hebt die Prognose.", "BASF senkt die Kosten.", "Zalando wächst kräftig."):
        memory.add([*chrome, article])
    assert memory.thinned and not memory.full
    assert memory.shares([*chrome, "Siemens hebt"]) == [2 / 3, 2 / 3, 2 / 3, 0.0]  # 2 other pages of 3
    # what it holds recurs: then a new paragraph counts as unique, and the memory says it is full
    crowded = SiteMemory(cap=8)
    for page in range(3):
        crowded.add([f"Menüpunkt {chr(0x4E00 + i)}" for i in range(7)] + [f"Artikel {chr(0x5E00 + page)}"])
    assert crowded.full and crowded.shares(["Menüpunkt 一", "Artikel 帀"]) == [1.0, 0.0]
    assert crowded.repeated().full and memory.repeated().thinned
