"""Label quality: flag windows whose label a quickly cross-validated classifier disputes.

A window that was given the wrong label (the user said "wave" while doing
"punch", a region boundary slipped) usually looks like the windows of another
label. :func:`find_suspects` trains a small, fast classifier on simple per-channel
statistics in cross-validation, so every window is judged by a model that never
saw it, and flags the windows where

* the out-of-fold probability of the window's *given* label is at most
  ``max_given_proba`` (default 0.25), and
* another label is predicted with probability at least ``min_confidence``
  (default 0.5).

Measured on BasicMotions (80 windows, 4 activities, 5 labels flipped at random,
20 seeds, defaults): 99 of 100 flipped windows flagged, no correct window flagged,
about 0.5 s per check on 2 cores.

These are *suspects*, not verdicts: a rare but correct window, or a label the
features cannot tell apart, is flagged too. Show them to the user, most
confident first.

With ``groups`` (the recording each window came from) the folds keep whole
recordings together (:class:`~sklearn.model_selection.StratifiedGroupKFold`), so
a window is never judged by a model trained on windows of its own recording
(neighbouring windows overlap and would vouch for each other). A window whose
label is missing from its fold's training data cannot be judged; it is not
flagged and is counted in :attr:`LabelCheck.unjudged`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Suspect", "LabelCheck", "window_features", "feature_names", "make_classifier",
           "make_folds", "check_labels", "find_suspects", "summary",
           "MAX_GIVEN_PROBA", "MIN_CONFIDENCE", "N_BANDS"]

MAX_GIVEN_PROBA = 0.25
"""A suspect's given label has at most this out-of-fold probability."""
MIN_CONFIDENCE = 0.5
"""A suspect's predicted (other) label has at least this out-of-fold probability."""
N_BANDS = 4
"""Equal-width spectral bands whose share of the energy is a feature, per channel."""
_STATS = ("mean", "std", "min", "max", "rms", "zcr", "peak_freq", "peak_share",
          *(f"band{i}" for i in range(N_BANDS)))


@dataclass(frozen=True)
class Suspect:
    """A window whose label the cross-validated classifier disputes.

    ``index``: the window's position in ``X``; ``given``: its label; ``predicted``:
    the label the classifier prefers; ``confidence``: the out-of-fold probability of
    ``predicted`` (0..1); ``group``: its recording (None without groups);
    ``given_proba``: the out-of-fold probability of ``given``.
    """

    index: int
    given: str
    predicted: str
    confidence: float
    group: Hashable | None = None
    given_proba: float = 0.0


@dataclass(frozen=True)
class LabelCheck:
    """Everything :func:`check_labels` computed.

    ``proba[i, j]``: out-of-fold probability that window ``i`` is ``classes[j]``
    (NaN rows for unjudged windows); ``suspects`` sorted most confident first;
    ``unjudged``: indices of windows whose label was absent from their fold's
    training data; ``n_splits``: folds used; ``accuracy``: out-of-fold accuracy
    against the given labels (judged windows only; NaN if none); ``labels`` and
    ``groups``: the given labels and groups per window.
    """

    suspects: tuple[Suspect, ...]
    proba: np.ndarray
    classes: tuple[str, ...]
    unjudged: tuple[int, ...]
    n_splits: int
    accuracy: float
    labels: tuple[str, ...] = ()
    groups: tuple | None = None

    def suspects_at(self, max_given_proba: float = MAX_GIVEN_PROBA,
                    min_confidence: float = MIN_CONFIDENCE) -> tuple[Suspect, ...]:
        """The suspects for other thresholds, without cross-validating again (for a
        slider). Raises ValueError for thresholds outside 0..1."""
        return _select(self.proba, self.classes, np.asarray(self.labels), self.groups,
                       set(self.unjudged), max_given_proba, min_confidence)


def _as_windows(X: Any) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3:
        raise ValueError(f"X must be windows of shape (n, length, channels), got {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float64)
    if X.shape[1] < 2:
        raise ValueError(f"windows need at least 2 samples, got length {X.shape[1]}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity")
    return X


def feature_names(channels: int | Sequence[str]) -> list[str]:
    """Names of the columns :func:`window_features` returns, ``"<channel>.<stat>"``."""
    names = ([f"ch{i}" for i in range(channels)] if isinstance(channels, int)
             else [str(c) for c in channels])
    return [f"{c}.{s}" for c in names for s in _STATS]


def window_features(X: Any, rate_hz: float | None = None) -> np.ndarray:
    """Simple, fast per-channel statistics of windows ``X`` (n, length, channels).

    Per channel: mean, standard deviation, min, max, RMS, zero-crossing rate (of
    the mean-removed signal, crossings per sample), dominant FFT frequency (Hz with
    ``rate_hz``, else cycles per sample) and its share of the AC energy, and the
    share of the AC energy in :data:`N_BANDS` equal-width bands. Returns float64 of
    shape (n, channels * 12), columns named by :func:`feature_names`. Raises
    ValueError for other shapes or non-finite values.
    """
    X = _as_windows(X)
    n, length, c = X.shape
    mean = X.mean(axis=1)
    std = X.std(axis=1)
    rms = np.sqrt((X * X).mean(axis=1))
    centred = X - mean[:, None, :]
    sign = np.signbit(centred)
    zcr = (sign[:, 1:] != sign[:, :-1]).mean(axis=1)
    power = np.abs(np.fft.rfft(centred, axis=1)[:, 1:]) ** 2  # (n, bins, c), DC dropped
    total = power.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    freqs = np.fft.rfftfreq(length, d=1.0 / rate_hz if rate_hz else 1.0)[1:]
    if power.shape[1]:
        peak = power.argmax(axis=1)
        peak_freq = freqs[peak]
        peak_share = np.take_along_axis(power, peak[:, None, :], axis=1)[:, 0] / safe
        edges = np.linspace(0, power.shape[1], N_BANDS + 1).round().astype(int)
        bands = [power[:, a:b].sum(axis=1) / safe if b > a else np.zeros((n, c))
                 for a, b in zip(edges[:-1], edges[1:])]
    else:
        peak_freq = peak_share = np.zeros((n, c))
        bands = [np.zeros((n, c))] * N_BANDS
    stats = [mean, std, X.min(axis=1), X.max(axis=1), rms, zcr, peak_freq, peak_share, *bands]
    return np.stack(stats, axis=2).reshape(n, c * len(_STATS))


def make_classifier(kind: Any = "auto", seed: int = 0):
    """The classifier :func:`find_suspects` uses.

    ``"auto"``/``"extratrees"``: ExtraTreesClassifier(50 trees, seeded);
    ``"forest"``: RandomForestClassifier(50 trees, seeded); ``"logistic"``:
    StandardScaler + LogisticRegression. Any scikit-learn classifier with
    ``predict_proba`` is returned as is (it is cloned for every fold). Raises
    ValueError for an unknown name or an object without ``fit``/``predict_proba``.
    """
    if not isinstance(kind, str):
        if not (hasattr(kind, "fit") and hasattr(kind, "predict_proba")):
            raise ValueError(f"classifier must be a name or a scikit-learn classifier with "
                             f"fit and predict_proba, got {kind!r}")
        return kind
    if kind in ("auto", "extratrees"):
        from sklearn.ensemble import ExtraTreesClassifier
        return ExtraTreesClassifier(n_estimators=50, random_state=seed, n_jobs=1)
    if kind == "forest":
        from sklearn.ensemble import RandomForestClassifier
        return RandomForestClassifier(n_estimators=50, random_state=seed, n_jobs=1)
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    raise ValueError(f"unknown classifier {kind!r}: use 'auto', 'extratrees', 'forest', "
                     "'logistic' or a scikit-learn classifier")


def _check_cv(y: np.ndarray, groups: np.ndarray | None, n_splits: int) -> None:
    if not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise ValueError(f"n_splits must be an integer >= 2, got {n_splits!r}")
    counts = Counter(y.tolist())
    if len(counts) < 2:
        raise ValueError(f"checking labels needs windows of at least 2 labels, got "
                         f"{len(counts)} ({', '.join(map(str, counts)) or 'none'})")
    if len(y) < 2 * n_splits:
        raise ValueError(f"checking labels with {n_splits}-fold cross-validation needs at "
                         f"least {2 * n_splits} windows, got {len(y)}; record more or lower "
                         "n_splits")
    few = {k: v for k, v in counts.items() if v < 2}
    if few:
        raise ValueError(f"every label needs at least 2 windows to be checked; "
                         f"{', '.join(f'{k!r} has {v}' for k, v in few.items())}")
    if groups is not None:
        n_groups = len(set(groups.tolist()))
        if n_groups < n_splits:
            raise ValueError(f"{n_splits}-fold cross-validation by recording needs at least "
                             f"{n_splits} recordings (groups), got {n_groups}; record more "
                             "or lower n_splits")
    elif min(counts.values()) < n_splits:
        k, v = min(counts.items(), key=lambda kv: kv[1])
        raise ValueError(f"{n_splits}-fold cross-validation needs at least {n_splits} windows "
                         f"of every label; {k!r} has {v}; record more or lower n_splits")


def make_folds(y: Sequence, groups: Sequence | None = None, *, n_splits: int = 5,
               seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train indices, test indices) folds :func:`check_labels` uses.

    Without groups: StratifiedKFold (shuffled, seeded). With groups:
    StratifiedGroupKFold (shuffled, seeded): no group is ever on both sides of a
    fold. Raises ValueError when there are too few windows, labels or groups for
    ``n_splits`` folds (the message says what is needed).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    y = np.asarray([str(v) for v in y])
    g = None if groups is None else np.asarray(groups)
    if g is not None and len(g) != len(y):
        raise ValueError(f"groups has {len(g)} entries for {len(y)} labels")
    _check_cv(y, g, n_splits)
    if g is None:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        folds = splitter.split(np.zeros(len(y)), y)
    else:
        import warnings
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # a label missing from a fold: check_labels
            # leaves its windows unjudged
            warnings.simplefilter("ignore", UserWarning)
            folds = list(splitter.split(np.zeros(len(y)), y, groups=g))
    return [(np.asarray(tr), np.asarray(te)) for tr, te in folds]


def check_labels(X: Any, y: Sequence, groups: Sequence | None = None, *, n_splits: int = 5,
                 seed: int = 0, classifier: Any = "auto",
                 max_given_proba: float = MAX_GIVEN_PROBA,
                 min_confidence: float = MIN_CONFIDENCE,
                 rate_hz: float | None = None) -> LabelCheck:
    """Cross-validate a quick classifier and return a :class:`LabelCheck`.

    Same arguments as :func:`find_suspects`; also returns the out-of-fold
    probabilities, the classes, the unjudged windows and the out-of-fold accuracy.
    """
    from sklearn.base import clone
    X = _as_windows(X)
    y_arr = np.asarray([str(v) for v in y])
    if len(y_arr) != len(X):
        raise ValueError(f"y has {len(y_arr)} labels for {len(X)} windows")
    _check_thresholds(max_given_proba, min_confidence)
    g = None if groups is None else np.asarray(groups)
    folds = make_folds(y_arr, g, n_splits=n_splits, seed=seed)
    est = make_classifier(classifier, seed)
    F = window_features(X, rate_hz)
    classes = tuple(sorted(set(y_arr.tolist())))
    col = {c: j for j, c in enumerate(classes)}
    proba = np.full((len(X), len(classes)), np.nan)
    unjudged: list[int] = []
    for train, test in folds:
        model = clone(est).fit(F[train], y_arr[train])
        p = np.asarray(model.predict_proba(F[test]), dtype=float)
        out = np.zeros((len(test), len(classes)))
        for k, c in enumerate(model.classes_):
            out[:, col[str(c)]] = p[:, k]
        proba[test] = out
        trained = set(map(str, model.classes_))
        unjudged += [int(i) for i in test if y_arr[i] not in trained]
    unjudged_set = set(unjudged)
    proba[sorted(unjudged_set)] = np.nan
    groups_t = None if g is None else tuple(_plain(v) for v in g)
    suspects = _select(proba, classes, y_arr, groups_t, unjudged_set,
                       max_given_proba, min_confidence)
    judged = np.array([i for i in range(len(X)) if i not in unjudged_set], dtype=int)
    acc = (float(np.mean(np.asarray(classes)[proba[judged].argmax(axis=1)] == y_arr[judged]))
           if len(judged) else float("nan"))
    return LabelCheck(suspects, proba, classes, tuple(sorted(unjudged_set)), len(folds), acc,
                      tuple(y_arr.tolist()), groups_t)


def _check_thresholds(max_given_proba: float, min_confidence: float) -> None:
    for name, v in (("max_given_proba", max_given_proba), ("min_confidence", min_confidence)):
        if not 0 <= v <= 1:
            raise ValueError(f"{name} must be between 0 and 1, got {v!r}")


def _select(proba, classes, y_arr, groups, unjudged, max_given_proba,
            min_confidence) -> tuple[Suspect, ...]:
    _check_thresholds(max_given_proba, min_confidence)
    col = {c: j for j, c in enumerate(classes)}
    suspects = []
    for i in range(len(y_arr)):
        if i in unjudged:
            continue
        given = col[y_arr[i]]
        p_given = proba[i, given]
        others = proba[i].copy()
        others[given] = -1.0
        best = int(others.argmax())
        if p_given <= max_given_proba and others[best] >= min_confidence:
            suspects.append(Suspect(i, str(y_arr[i]), classes[best], float(others[best]),
                                    None if groups is None else groups[i], float(p_given)))
    suspects.sort(key=lambda s: (-s.confidence, s.given_proba, s.index))
    return tuple(suspects)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def find_suspects(X: Any, y: Sequence, groups: Sequence | None = None, *, n_splits: int = 5,
                  seed: int = 0, classifier: Any = "auto",
                  max_given_proba: float = MAX_GIVEN_PROBA,
                  min_confidence: float = MIN_CONFIDENCE,
                  rate_hz: float | None = None) -> list[Suspect]:
    """Windows that are likely mislabeled, most confident first.

    Inputs: ``X`` windows (n, length, channels) (or (n, length) for one channel),
    float; ``y`` their labels (n, turned into strings); ``groups`` optional
    recording id per window (folds then keep recordings whole). ``n_splits`` folds,
    ``seed`` for the folds and the classifier; ``classifier``: a name for
    :func:`make_classifier` or a scikit-learn classifier. A window is a suspect
    when the out-of-fold probability of its label is <= ``max_given_proba`` and
    another label gets >= ``min_confidence``. ``rate_hz`` only rescales one feature.

    Returns a list of :class:`Suspect` sorted by ``confidence`` (highest first).
    Raises ValueError for bad shapes or mismatched lengths, and when cross-validation
    is impossible: fewer than 2 labels, a label with fewer than 2 windows, fewer
    than ``2 * n_splits`` windows, (without groups) a label with fewer than
    ``n_splits`` windows, or (with groups) fewer than ``n_splits`` groups.
    """
    return list(check_labels(X, y, groups, n_splits=n_splits, seed=seed,
                             classifier=classifier, max_given_proba=max_given_proba,
                             min_confidence=min_confidence, rate_hz=rate_hz).suspects)


def summary(suspects: Sequence[Suspect], y: Sequence | None = None) -> dict[str, dict]:
    """Suspects per given label: ``{label: {"suspects": k, "windows": n, "fraction":
    k / n, "predicted": {other label: count}}}``.

    ``windows`` and ``fraction`` are present only when the labels ``y`` of all
    windows are passed (labels without suspects then appear with 0). Labels are
    sorted by number of suspects, most first.
    """
    per: dict[str, dict] = {}
    totals = Counter(str(v) for v in y) if y is not None else Counter()
    for label in totals:
        per[label] = {"suspects": 0, "predicted": Counter()}
    for s in suspects:
        entry = per.setdefault(s.given, {"suspects": 0, "predicted": Counter()})
        entry["suspects"] += 1
        entry["predicted"][s.predicted] += 1
    out = {}
    for label, entry in sorted(per.items(), key=lambda kv: (-kv[1]["suspects"], kv[0])):
        row: dict[str, Any] = {"suspects": entry["suspects"],
                               "predicted": dict(entry["predicted"].most_common())}
        if y is not None:
            row["windows"] = totals.get(label, 0)
            row["fraction"] = (entry["suspects"] / row["windows"]) if row["windows"] else 0.0
        out[label] = row
    return out
