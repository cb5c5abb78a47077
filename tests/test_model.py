"""The model file (safe, checked loading) and the pure-Python scorer against the scikit-learn pipeline."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import pickle
import platform
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from detector import model
from detector.features import (
    HASH_BITS,
    SITE_MIN_PAGES,
    SiteMemory,
    char_ngram_count,
    char_ngram_ids,
    topic_words,
)
from detector.pages import load_corpus
from detector.workbench.train import code_fingerprint, export, fingerprint, fit_model, frequent_words
from tests.conftest import FIXTURE_CORPUS, ROOT, run

FIXTURE_MODEL_HASH = ROOT / "tests" / "fixtures" / "fixture-model.sha256"


@pytest.fixture(scope="module")
def fixture_model(tmp_path_factory):
    corpus = load_corpus(FIXTURE_CORPUS)
    detector, _ = fit_model(corpus, folds=3)
    assert len(detector.experts) == 2 and all(e.stage2 is not None for e in detector.experts)
    path = tmp_path_factory.mktemp("model") / "model.bin"
    model.save(path, *export(detector), frequent_words(corpus["text"]))
    return corpus, detector, path


def scorer_probabilities(scorer: model.Scorer, corpus) -> np.ndarray:
    rows = []
    for _, page in corpus.groupby("page", sort=False):
        blocks = page["block"].tolist()
        rows.extend(scorer.probabilities(page["text"].tolist(), blocks if blocks[0] is not None else None))
    return np.array(rows)


def test_the_fixture_corpus_has_html_and_text_pages():
    corpus = load_corpus(FIXTURE_CORPUS)
    assert corpus["block"].notna().any() and corpus["block"].isna().any()


@pytest.mark.parametrize("mapped", [False, True], ids=["read", "mapped"])
def test_scorer_equals_the_sklearn_pipeline(fixture_model, mapped):
    corpus, detector, path = fixture_model
    expected = detector.predict_proba(corpus)
    assert np.abs(scorer_probabilities(model.load(path, mapped), corpus) - expected).max() < 1e-6


def test_a_model_read_for_a_long_run_survives_its_file_written_over_in_place(fixture_model, tmp_path):
    corpus, _, path = fixture_model
    copy = tmp_path / "model.bin"
    copy.write_bytes(path.read_bytes())
    scorer = model.load(copy)  # not mapped: what the library and every batch do
    expected = scorer_probabilities(model.load(path), corpus)
    copy.write_bytes(b"")  # `cp` onto it truncates it first, in place
    assert np.array_equal(scorer_probabilities(scorer, corpus), expected)
    assert not isinstance(scorer._words.obj, mmap.mmap)


def test_the_scorer_reads_the_topic_words_training_reads_from_its_cached_tokens(fixture_model):
    corpus, _, path = fixture_model
    scorer = model.load(path)
    texts = corpus["text"].tolist()[:400] + [
        "",
        "12,5 %",
        "Zinsen, Zinsen und nochmals ZINSEN: die EZB-Präsidentin",
    ]
    for _ in range(2):  # the second time from the token cache
        topics: list[tuple[str, ...]] = []
        scorer.logits(texts, topics=topics)
        assert [frozenset(t) for t in topics] == [topic_words(text) for text in texts]
        assert all(len(set(t)) == len(t) for t in topics)  # each stem once, as in a set
    assert topics[-1] == ("zinsen", "nochma", "präsid")


def test_the_word_table_gives_exactly_the_sums_of_the_words_ngrams(fixture_model, tmp_path):
    """A word in the table scores as if its n-grams were hashed and summed; a model without a table (format 3
    and older files of this version) gives the same probabilities, and its table is empty."""
    corpus, detector, path = fixture_model
    with_table = model.load(path)
    words = model.word_list(with_table._words)
    assert len(words) > 100 and all(char_ngram_ids(w) for w in words)
    for word in words[:50] + words[-50:]:
        assert len(char_ngram_ids(word)) == char_ngram_count(word)
    without = tmp_path / "no-table.bin"
    model.save(without, *export(detector))
    plain = model.load(without)
    assert plain._words.nbytes == 0
    assert [with_table._token(w) for w in words[:200]] == [plain._token(w) for w in words[:200]]
    assert np.abs(scorer_probabilities(plain, corpus) - scorer_probabilities(with_table, corpus)).max() == 0.0


def test_a_page_scored_by_the_first_expert_alone_gets_the_same_scores_whichever_page_came_first(fixture_model):
    """HTML pages need the full-page expert only and cache shorter word entries; a text page after them (or
    before them) must score as on a fresh model, word in the table or not."""
    corpus, _, path = fixture_model
    texts = corpus["text"].tolist()[:300] + ["Quartalszahlenüberraschungsfeuerwerk der Zykloidgetriebe"]
    fresh = model.load(path)
    first_only, full = fresh.logits(texts, experts=1), fresh.logits(texts)
    assert fresh._token_caches[0] and fresh._token_caches[1]
    mixed = model.load(path)
    assert mixed.logits(texts, experts=1) == first_only and mixed.logits(texts) == full
    assert mixed.logits(texts, experts=1) == first_only  # now from the full entries
    words = ["Dividende", "Zykloidgetriebe", "und"]
    assert [model.load(path)._token(w, 1)[2] for w in words] == [mixed._token(w)[2][:4] for w in words]


@pytest.mark.parametrize("version", [3, 4])
def test_a_model_file_of_an_older_format_is_read(fixture_model, tmp_path, version):
    """Format 4 had the word table without its index (made when the file is read), format 3 no table."""
    data = fixture_model[2].read_bytes()
    start = len(model.MAGIC) + 4
    (size,) = struct.unpack("<I", data[len(model.MAGIC) : start])
    header = json.loads(data[start : start + size])
    table = header.pop("word_table")
    header["format"] = version
    n_sums = table["words"] * 2 * 2  # two experts, two classes with weights
    n_weights = 2 * 2 * (1 << HASH_BITS)
    body = data[start + size : -4]
    weights, sums = body[: 4 * n_weights], body[4 * n_weights : 4 * n_weights + 8 * n_sums]
    if version == 4:
        header["word_table"] = {"words": table["words"], "bytes": table["bytes"]}
        weights += sums + body[len(body) - table["bytes"] :]
    blob = json.dumps(header).encode()
    body = model.MAGIC + struct.pack("<I", len(blob)) + blob + weights
    old = tmp_path / f"format{version}.bin"
    old.write_bytes(body + struct.pack("<I", zlib.crc32(body)))
    corpus = fixture_model[0]
    expected = scorer_probabilities(model.load(fixture_model[2]), corpus)
    older = model.load(old)
    assert np.abs(scorer_probabilities(older, corpus) - expected).max() == 0.0
    assert len(model.word_list(older._words)) == (table["words"] if version == 4 else 0)


def test_the_word_index_finds_every_word_of_the_table_and_nothing_else(fixture_model):
    scorer = model.load(fixture_model[2])
    words = model.word_list(scorer._words)
    assert [scorer._word_row(w) for w in words] == list(range(len(words)))
    assert len(scorer._word_slots) >= 3 * len(words)
    for other in ("", "zzqxv", words[0] + "x", words[0][:-1], "ä" + words[1], words[2].upper()):
        assert other in words or scorer._word_row(other) is None


def test_a_word_index_that_points_outside_the_table_is_refused(fixture_model, tmp_path):
    data = bytearray(fixture_model[2].read_bytes()[:-4])
    start = len(model.MAGIC) + 4
    (size,) = struct.unpack("<I", data[len(model.MAGIC) : start])
    table = json.loads(data[start : start + size])["word_table"]
    slots_end = len(data) - table["bytes"]
    data[slots_end - 4 : slots_end] = struct.pack("<I", table["words"] + 7)  # the last slot: a row past the end
    broken = tmp_path / "bad-index.bin"
    broken.write_bytes(bytes(data) + struct.pack("<I", zlib.crc32(data)))
    with pytest.raises(model.ModelError, match=r"damaged word table \(index\)"):
        model.load(broken)


def test_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(
        model.ModelError, match=r"not found; give the path of a model file written by `detector train`"
    ):
        model.load(tmp_path / "nope.bin")


@pytest.mark.parametrize("mapped", [False, True], ids=["read", "mapped"])
def test_truncated_model_is_refused(fixture_model, tmp_path, mapped):
    broken = tmp_path / "truncated.bin"
    broken.write_bytes(fixture_model[2].read_bytes()[:-1000])
    with pytest.raises(model.ModelError, match="truncated or corrupted"):
        model.load(broken, mapped)


@pytest.mark.parametrize("mapped", [False, True], ids=["read", "mapped"])
def test_corrupted_model_is_refused(fixture_model, tmp_path, mapped):
    data = bytearray(fixture_model[2].read_bytes())
    data[len(data) // 2] ^= 0xFF
    broken = tmp_path / "corrupted.bin"
    broken.write_bytes(bytes(data))
    with pytest.raises(model.ModelError, match="truncated or corrupted"):
        model.load(broken, mapped)


def test_a_checksum_taken_later_refuses_a_damaged_file_when_verified(fixture_model, tmp_path):
    """A one-page run takes the checksum in a second thread while it scores; verify() waits for it. A damaged
    file is told as damaged, whether its header or only its checksum shows it."""
    good = model.load(fixture_model[2], mapped=True, verify_later=True)
    good.verify()
    data = bytearray(fixture_model[2].read_bytes())
    data[len(data) // 2] ^= 0xFF  # in the weights: the header is fine
    (tmp_path / "weights.bin").write_bytes(bytes(data))
    damaged = model.load(tmp_path / "weights.bin", mapped=True, verify_later=True)
    with pytest.raises(model.ModelError, match="truncated or corrupted"):
        damaged.verify()
    data = bytearray(fixture_model[2].read_bytes())
    data[len(model.MAGIC) + 6] ^= 0xFF  # in the header
    (tmp_path / "header.bin").write_bytes(bytes(data))
    with pytest.raises(model.ModelError, match="truncated or corrupted"):
        model.load(tmp_path / "header.bin", mapped=True, verify_later=True)


def test_a_checksum_taken_later_is_being_taken_when_load_returns(fixture_model, monkeypatch):
    """The thread that takes the checksum has reached zlib before load returns: a new thread needs the
    interpreter to start, and a caller that scores a page keeps it for the switch interval (5 ms), so the CRC
    began when the page was nearly done and a one-page run then waited 4 ms for it."""
    started = []
    crc32 = zlib.crc32

    def watched(data, *value):
        started.append(len(data))
        return crc32(data, *value)

    monkeypatch.setattr(model.zlib, "crc32", watched)
    scorer = model.load(fixture_model[2], mapped=True, verify_later=True)
    assert started == [fixture_model[2].stat().st_size - 4]  # no other work between: the load has returned
    scorer.verify()


def test_one_page_with_a_damaged_model_writes_nothing(fixture_model, tmp_path):
    data = bytearray(fixture_model[2].read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "damaged.bin").write_bytes(bytes(data))
    result = run("clean-article", "--model", tmp_path / "damaged.bin", stdin=b"Die Aktie stieg.\n")
    assert (result.returncode, result.stdout) == (1, b"")
    message = f"error: model file {tmp_path / 'damaged.bin'} is truncated or corrupted"
    assert result.stderr.decode().startswith(message)


def test_model_of_another_feature_version_is_refused(fixture_model, tmp_path):
    data = fixture_model[2].read_bytes()
    start = len(model.MAGIC) + 4
    (size,) = struct.unpack("<I", data[len(model.MAGIC) : start])
    header = data[start : start + size].replace(b'"hash_bits": 19', b'"hash_bits": 18')
    body = model.MAGIC + struct.pack("<I", len(header)) + header + data[start + size : -4]
    other = tmp_path / "other.bin"
    other.write_bytes(body + struct.pack("<I", zlib.crc32(body)))
    with pytest.raises(model.ModelError, match=r"incompatible version \(hash_bits differs\)"):
        model.load(other)


class _Exploit:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_model_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "model.bin"
    crafted.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(model.ModelError, match="is not a detector model file"):
        model.load(crafted)
    assert not marker.exists()
    pickle.loads(crafted.read_bytes())  # the file really is an exploit: unpickling it runs code
    assert marker.exists()


def test_shipped_model_loads_and_has_its_metadata():
    scorer = model.load()
    assert scorer.classes == ("editorial", "navigational", "promotional")
    assert (ROOT / "models" / "model.json").exists()
    assert os.path.getsize(model.shipped_model()) < 10 * 1024 * 1024


def test_shipped_model_is_what_its_provenance_says():
    """The committed model was trained on today's training_data/ by today's training code, and is the file
    that training wrote. Together with the reproducibility test below this stands in for retraining the whole
    corpus in the suite (minutes); `make reproduce` does that full retrain and compares the bytes."""
    metadata = json.loads((ROOT / "models" / "model.json").read_text(encoding="utf-8"))
    stale = "models/model.bin is stale: run `make train`"
    assert metadata["model_sha256"] == hashlib.sha256(Path(model.shipped_model()).read_bytes()).hexdigest(), stale
    assert metadata["training_data"]["fingerprint_sha256"] == fingerprint(ROOT / "training_data"), stale
    assert metadata["code_fingerprint_sha256"] == code_fingerprint(), stale


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="an x86-64 pin")
def test_the_workbench_switches_numpys_avx512_loops_off_by_names_numpy_accepts():
    """The pin only works if numpy knows the names: it ignores unknown ones with an ImportWarning, which this
    turns into an error (a numpy that renames its targets again fails here, not silently in training)."""
    code = "import os, detector.workbench, numpy; print(os.environ['NPY_DISABLE_CPU_FEATURES'])"
    result = subprocess.run(
        [sys.executable, "-W", "error::ImportWarning", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "AVX512" in result.stdout


def test_training_gives_the_same_bytes_on_any_machine_and_any_number_of_jobs(tmp_path):
    """`detector train` on the fixture corpus, in fresh processes with one and with two workers, gives the
    bytes recorded in tests/fixtures/fixture-model.sha256 on the machine that committed them."""
    expected = FIXTURE_MODEL_HASH.read_text(encoding="ascii").split()[0]
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs-{jobs}" / "model.bin"
        result = run(
            "detector", "train", "--data", FIXTURE_CORPUS, "--folds", "3", "--jobs", jobs, "--output", out
        )
        assert result.returncode == 0, result.stderr.decode()
        found = hashlib.sha256(out.read_bytes()).hexdigest()
        assert found == expected, (
            f"--jobs {jobs}: the fixture model differs from the committed one; if training changed on purpose, "
            f"write {found} into {FIXTURE_MODEL_HASH.relative_to(ROOT)}"
        )


def test_scorer_equals_the_sklearn_pipeline_with_site_memory(fixture_model):
    """The same to 1e-6 when every page is one of a batch of its site's pages (here: the whole fixture corpus
    as one site, so that it has enough pages for a memory)."""
    corpus, detector, path = fixture_model
    memory = SiteMemory()
    for _, page in corpus.groupby("page", sort=False):
        memory.add(page["text"].tolist())
    memory = memory.repeated()
    assert memory.pages >= SITE_MIN_PAGES and memory.counts
    expected = detector.predict_proba(corpus, {site: memory for site in corpus["site"].unique()})
    scorer = model.load(path)
    rows = []
    for _, page in corpus.groupby("page", sort=False):
        blocks = page["block"].tolist()
        texts = page["text"].tolist()
        rows.extend(scorer.probabilities(texts, blocks if blocks[0] is not None else None, memory.shares(texts)))
    assert np.abs(np.array(rows) - expected).max() < 1e-6
    assert np.abs(np.array(rows) - detector.predict_proba(corpus)).max() > 1e-6  # the memory was used


def test_rows_are_told_apart_by_their_page_names_suffix_not_by_anything_in_their_path():
    """ ".html" anywhere in a path made text pages HTML rows, and any "#" left a page out of its site's memory."""
    import pandas as pd

    from detector.workbench.train import COPY_SUFFIX, from_html_pages

    pages = ["s.html-archiv/a.txt", "s/x.html", "s/x.html#text#body", "s/y.HTML", "s/z.txt#body", "s/wero#2.txt"]
    pages += ["s/v.html#markdown", "s/w.txt#menu"]
    corpus = pd.DataFrame({"page": pages, "site": "s", "text": [f"Absatz {i}" for i in range(8)]})
    assert from_html_pages(corpus).tolist() == [False, True, True, True, False, False, True, False]
    copies = corpus["page"].str.contains(COPY_SUFFIX).tolist()  # left out of site memories: not wero#2
    assert copies == [False, False, True, False, True, False, True, True]


def test_the_class_vocabulary_counts_site_folders_also_with_two_data_folders():
    """A page of a second --data folder is named by its root: the site was taken from the name, and every
    class word came from one "site", so none was kept."""
    import pandas as pd

    from detector.markup import blocks
    from detector.workbench.train import MIN_CLASS_WORD_SITES, class_vocabulary

    (block,) = blocks('<div class="teaser"><p>Mehr lesen</p></div>')
    sites = [f"site{i}" for i in range(MIN_CLASS_WORD_SITES)]
    pages = [f"/data/root{i}/{site}/p.html" for i, site in enumerate(sites)]
    frame = pd.DataFrame({"page": pages, "site": sites, "block": [block] * len(sites)})
    assert "teaser" in class_vocabulary(frame)


def test_train_where_one_expert_reads_every_page_better_keeps_both_and_a_gate_of_no_slope(tmp_path):
    """Two text sites and --folds 2: one expert read every page better, so the gate had one class to learn.
    First the model written was refused by its own loader ("damaged header (gate)"); then training fell back
    to one expert without cross-validation and blamed "too few sites or text pages" (attack round 9)."""
    import shutil

    for site in ("site-a", "site-b"):
        shutil.copytree(FIXTURE_CORPUS / site, tmp_path / "data" / site)
    result = run("detector", "train", "--data", tmp_path / "data", "--folds", "2", "--output", tmp_path / "m.bin")
    assert result.returncode == 0, result.stderr.decode()[-500:]
    assert "note:" not in result.stderr.decode(), result.stderr.decode()
    assert "Warning" not in result.stderr.decode() and "Traceback" not in result.stderr.decode()
    scorer = model.load(tmp_path / "m.bin")
    gate = scorer.header["gate"]
    assert len(scorer.experts) == 2 and set(gate["coef"]) == {0.0} and abs(gate["intercept"]) == 40.0
    assert scorer.gate(["Ein Absatz."]) in (1.0, pytest.approx(0.0, abs=1e-15))
    metadata = json.loads((tmp_path / "m.json").read_text())
    assert "fallback" not in metadata
    assert metadata["grouped_cross_validation"]["folds"] == 2


def test_train_on_html_pages_alone_says_why_one_expert_and_that_the_presets_were_not_chosen(tmp_path):
    """A corpus of HTML pages only: the article-region expert (text pages alone) was fitted on no rows, which
    printed six numpy warnings, failed and trained again with one expert, blaming "too few sites or text
    pages"; and nothing said that --favor would change nothing."""
    import shutil

    for site in ("site-c", "site-e"):
        (tmp_path / "data" / site).mkdir(parents=True)
        shutil.copy(FIXTURE_CORPUS / "site-c" / "stahl.html", tmp_path / "data" / site / "stahl.html")
    result = run("detector", "train", "--data", tmp_path / "data", "--folds", "2", "--output", tmp_path / "m.bin")
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-500:]
    assert "Warning" not in stderr and "Traceback" not in stderr, stderr
    notes = [line for line in stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: no text pages, so no article-region expert: one expert, as --folds 1 trains it",
        "note: no cross-validation, so the presets were not chosen: all three keep at 0.5 (--favor changes "
        "nothing; --min-editorial does)",
    ]
    scorer = model.load(tmp_path / "m.bin")
    assert len(scorer.experts) == 1 and {scorer.threshold(p) for p in ("precision", "balanced", "recall")} == {0.5}


def test_a_model_and_its_metadata_are_put_in_place_together_or_not_at_all(tmp_path):
    """The model was renamed into place, then its model.json: when the second could not be (a folder in its
    way, an immutable file, Ctrl-C between the two), the new model stood beside the old metadata, which
    described another model."""
    old_model, old_json = b"old model", tmp_path / "m.json"
    (tmp_path / "m.bin").write_bytes(old_model)
    old_json.mkdir()
    (old_json / "in the way").write_text("x")
    with pytest.raises(OSError):
        model.write_atomically({tmp_path / "m.bin": b"new model", old_json: b"{}"})
    assert (tmp_path / "m.bin").read_bytes() == old_model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.json"]  # no .tmp, no .old left


def test_htm_pages_are_trained_as_the_html_pages_they_are_read_as():
    """`.htm` pages were read as HTML but trained as text pages: their markup went to the article-region
    expert, which learns from text pages alone, with text pages' weights."""
    import pandas as pd

    from detector.workbench.train import from_html_pages

    corpus = pd.DataFrame({"page": ["s/a.htm", "s/b.HTM#text", "s/c.html", "s/d.txt", "s/e.htmlx"]})
    assert from_html_pages(corpus).tolist() == [True, True, True, False, False]
