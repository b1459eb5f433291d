"""Label quality: likely mislabeled windows flagged by a cross-validated classifier."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from workbench.data.quality import (
    LabelCheck,
    Suspect,
    check_labels,
    feature_names,
    find_suspects,
    make_folds,
    summary,
    window_features,
)
from workbench.refdata import DataUnavailable, load_basicmotions


@pytest.fixture(scope="module")
def basicmotions():
    """BasicMotions, real smartwatch windows; read from aeon's files without importing aeon."""
    try:
        X, labels = load_basicmotions("all")
    except DataUnavailable as e:
        pytest.skip(str(e))
    return np.transpose(X, (0, 2, 1)).copy(), np.array(labels)  # (80, 100, 6)


def mislabel(y: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), count, replace=False)
    y2 = y.copy()
    classes = sorted(set(y))
    for i in idx:
        y2[i] = rng.choice([c for c in classes if c != y[i]])
    return y2, idx


@pytest.mark.parametrize("seed", [0, 1])
def test_mislabeled_windows_are_found(basicmotions, seed):
    X, y = basicmotions
    assert X.shape == (80, 100, 6)
    y_bad, wrong = mislabel(y, 5, seed)
    suspects = find_suspects(X, y_bad, seed=seed)
    flagged = {s.index for s in suspects}
    hits = flagged & set(wrong.tolist())
    false = flagged - set(wrong.tolist())
    assert len(hits) >= 4, (sorted(wrong), suspects)
    assert len(false) <= 5, suspects
    for s in suspects:
        assert isinstance(s, Suspect)
        assert s.given == y_bad[s.index] != s.predicted
        assert s.group is None
        assert s.confidence >= 0.5 and s.given_proba <= 0.25
    # mostly, the classifier also names the true activity
    assert sum(s.predicted == y[s.index] for s in suspects if s.index in hits) >= 3
    confidences = [s.confidence for s in suspects]
    assert confidences == sorted(confidences, reverse=True)


def test_clean_labels_give_few_suspects(basicmotions):
    X, y = basicmotions
    check = check_labels(X, y, seed=0)
    assert isinstance(check, LabelCheck)
    assert check.accuracy > 0.85
    assert len(check.suspects) <= 4
    assert check.proba.shape == (80, 4) and np.allclose(check.proba.sum(axis=1), 1)
    assert check.classes == tuple(sorted(set(y)))
    assert check.unjudged == () and check.n_splits == 5


def test_thresholds_trade_recall_for_precision(basicmotions):
    X, y = basicmotions
    y_bad, _ = mislabel(y, 5, 3)
    check = check_labels(X, y_bad, seed=3)
    assert check.suspects_at() == check.suspects  # the defaults
    strict = check.suspects_at(max_given_proba=0.05, min_confidence=0.9)
    loose = check.suspects_at(max_given_proba=0.5, min_confidence=0.3)
    assert {s.index for s in strict} <= {s.index for s in check.suspects} <= {
        s.index for s in loose}
    assert len(strict) < len(loose)
    assert find_suspects(X, y_bad, seed=3, max_given_proba=0.5, min_confidence=0.3) == list(loose)
    with pytest.raises(ValueError, match="min_confidence"):
        check.suspects_at(min_confidence=1.5)


def test_with_groups_and_summary(basicmotions):
    X, y = basicmotions
    # pretend every 4 windows of one activity came from one recording (20 recordings)
    order = np.argsort(y, kind="stable")
    groups = np.empty(len(y), dtype=object)
    groups[order] = [f"rec{k // 4}" for k in range(len(y))]
    y_bad, wrong = mislabel(y, 5, 0)
    check = check_labels(X, y_bad, groups, seed=0, classifier="logistic")
    flagged = {s.index for s in check.suspects}
    assert len(flagged & set(wrong.tolist())) >= 4
    assert all(s.group == groups[s.index] for s in check.suspects)
    table = summary(check.suspects, y_bad)
    assert set(table) == set(y_bad)
    assert sum(row["suspects"] for row in table.values()) == len(check.suspects)
    for label, row in table.items():
        assert row["windows"] == int(np.sum(y_bad == label))
        assert row["fraction"] == pytest.approx(row["suspects"] / row["windows"])
        assert sum(row["predicted"].values()) == row["suspects"]
    counts = [row["suspects"] for row in table.values()]
    assert counts == sorted(counts, reverse=True)
    assert "windows" not in next(iter(summary(check.suspects).values()), {})


class SpyClassifier(ClassifierMixin, BaseEstimator):
    """Predicts uniform probabilities; records the feature rows it is trained and tested on.

    Records go to a class attribute because every fold works on a clone."""

    log: list = []

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self._train = np.asarray(X).copy()
        return self

    def predict_proba(self, X):
        SpyClassifier.log.append((self._train, np.asarray(X).copy()))
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def test_no_window_is_judged_by_a_model_trained_on_its_recording():
    rng = np.random.default_rng(0)
    n_rec, per_rec, labels = 12, 6, ("a", "b", "c")
    X = rng.normal(size=(n_rec * per_rec, 20, 2))
    groups = np.repeat([f"rec{i}" for i in range(n_rec)], per_rec)
    y = np.repeat([labels[i % 3] for i in range(n_rec)], per_rec)
    F = window_features(X)
    row_of = {F[i].tobytes(): i for i in range(len(F))}
    assert len(row_of) == len(F)

    SpyClassifier.log = []
    find_suspects(X, y, groups, n_splits=4, classifier=SpyClassifier())
    assert len(SpyClassifier.log) == 4
    tested = []
    for train_rows, test_rows in SpyClassifier.log:
        train_groups = {groups[row_of[r.tobytes()]] for r in train_rows}
        test_idx = [row_of[r.tobytes()] for r in test_rows]
        tested += test_idx
        assert not train_groups & {groups[i] for i in test_idx}
    assert sorted(tested) == list(range(len(X)))  # every window judged exactly once

    # and the folds themselves
    for train, test in make_folds(y, groups, n_splits=4, seed=3):
        assert not set(groups[train]) & set(groups[test])


def test_a_label_absent_from_training_is_not_judged():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 16, 1))
    X[:20] += 3  # two clearly different labels...
    y = np.array(["up"] * 20 + ["down"] * 18 + ["rare"] * 2)
    groups = np.array([f"r{i // 4}" for i in range(40)])  # ..."rare" lives in one recording
    check = check_labels(X, y, groups, n_splits=5, seed=0)
    assert set(check.unjudged) == {38, 39}
    assert not {38, 39} & {s.index for s in check.suspects}
    assert np.isnan(check.proba[38]).all()


def test_too_little_data_is_refused_with_what_is_needed():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 10, 3))
    with pytest.raises(ValueError, match="at least 2 labels"):
        find_suspects(X, ["a"] * 20)
    with pytest.raises(ValueError, match="at least 10 windows"):
        find_suspects(X[:8], ["a", "b"] * 4)
    with pytest.raises(ValueError, match="'b' has 1"):
        find_suspects(X, ["a"] * 19 + ["b"])
    with pytest.raises(ValueError, match="at least 5 windows of every label"):
        find_suspects(X, ["a"] * 17 + ["b"] * 3)
    with pytest.raises(ValueError, match="at least 5 recordings"):
        find_suspects(X, ["a", "b"] * 10, groups=[i % 3 for i in range(20)])
    with pytest.raises(ValueError, match="n_splits"):
        find_suspects(X, ["a", "b"] * 10, n_splits=1)
    with pytest.raises(ValueError, match="labels for 20 windows"):
        find_suspects(X, ["a", "b"] * 5)
    with pytest.raises(ValueError, match="shape"):
        find_suspects(np.zeros((20, 3, 4, 5)), ["a", "b"] * 10)
    with pytest.raises(ValueError, match="classifier"):
        find_suspects(X, ["a", "b"] * 10, classifier="oracle")


def test_features_are_simple_statistics():
    t = np.arange(100) / 50.0
    X = np.stack([np.sin(2 * np.pi * 5 * t), np.ones(100)], axis=1)[None]  # 5 Hz sine, DC
    F = window_features(X, rate_hz=50.0)
    names = feature_names(["x", "z"])
    assert F.shape == (1, len(names)) and len(names) == 24
    f = dict(zip(names, F[0]))
    assert f["x.mean"] == pytest.approx(0, abs=1e-9)
    assert f["x.rms"] == pytest.approx(np.sqrt(0.5), rel=1e-3)
    assert f["x.peak_freq"] == pytest.approx(5.0)
    assert f["x.zcr"] == pytest.approx(0.2, abs=0.02)  # 10 crossings per second / 50 Hz
    assert f["z.std"] == 0 and f["z.min"] == f["z.max"] == 1
    assert np.all(np.isfinite(F))
