"""The model file (safe, checked loading) and the pure-Python scorer against the scikit-learn pipeline."""

from __future__ import annotations

import pickle
import struct
import zlib

import numpy as np
import pytest

from detector import model
from detector.pages import load_corpus
from detector.train import export, fit_model
from tests.conftest import FIXTURE_CORPUS, ROOT


@pytest.fixture(scope="module")
def fixture_model(tmp_path_factory):
    corpus = load_corpus(FIXTURE_CORPUS)
    detector, _ = fit_model(corpus, folds=2)
    assert detector.stage2 is not None
    path = tmp_path_factory.mktemp("model") / "model.bin"
    model.save(path, *export(detector))
    return corpus, detector, path


def scorer_probabilities(scorer: model.Scorer, corpus) -> np.ndarray:
    rows = []
    for _, page in corpus.groupby("page", sort=False):
        rows.extend(scorer.probabilities(page["text"].tolist()))
    return np.array(rows)


def test_scorer_equals_the_sklearn_pipeline(fixture_model):
    corpus, detector, path = fixture_model
    expected = detector.predict_proba(corpus)
    assert np.abs(scorer_probabilities(model.load(path), corpus) - expected).max() < 1e-6


def test_training_is_deterministic(fixture_model, tmp_path):
    corpus, _, path = fixture_model
    again = tmp_path / "again.bin"
    model.save(again, *export(fit_model(corpus, folds=2)[0]))
    assert again.read_bytes() == path.read_bytes()


def test_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(model.ModelError, match=r"not found; run `make train`"):
        model.load(tmp_path / "nope.bin")


def test_truncated_model_is_refused(fixture_model, tmp_path):
    broken = tmp_path / "truncated.bin"
    broken.write_bytes(fixture_model[2].read_bytes()[:-1000])
    with pytest.raises(model.ModelError, match="truncated or corrupted"):
        model.load(broken)


def test_corrupted_model_is_refused(fixture_model, tmp_path):
    data = bytearray(fixture_model[2].read_bytes())
    data[len(data) // 2] ^= 0xFF
    broken = tmp_path / "corrupted.bin"
    broken.write_bytes(bytes(data))
    with pytest.raises(model.ModelError, match="truncated or corrupted"):
        model.load(broken)


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
    assert model.DEFAULT_MODEL.stat().st_size < 10 * 1024 * 1024


@pytest.fixture(scope="module")
def corpus_model(tmp_path_factory):
    """The model retrained from training_data/ exactly as `make train` does."""
    corpus = load_corpus(ROOT / "training_data")
    detector, _ = fit_model(corpus, folds=5)
    path = tmp_path_factory.mktemp("corpus-model") / "model.bin"
    model.save(path, *export(detector))
    return corpus, detector, path


def test_scorer_equals_the_sklearn_model_on_the_whole_corpus(corpus_model):
    corpus, detector, path = corpus_model
    difference = np.abs(scorer_probabilities(model.load(path), corpus) - detector.predict_proba(corpus))
    assert difference.max() < 1e-6


def test_shipped_model_is_what_training_on_the_corpus_gives(corpus_model):
    corpus, _, path = corpus_model
    retrained = scorer_probabilities(model.load(path), corpus)
    shipped = scorer_probabilities(model.load(), corpus)
    assert np.abs(retrained - shipped).max() < 1e-4, "models/model.bin is stale: run `make train`"
