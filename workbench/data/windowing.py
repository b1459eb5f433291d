"""Windowing and leakage-free splits of a dataset.

``windows(dataset, length, stride)`` cuts labelled stretches into fixed-length
windows: inside each labelled region, or over a whole recording that carries a
label and has no regions. Every window remembers its recording, so
``split_recordings`` can keep all windows of one recording on the same side
(train, validation or test): no leakage, stratified by label.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from .store import Dataset, RecordingMeta


@dataclass(frozen=True)
class Windows:
    """Fixed-length windows: ``X`` (n, length, channels) float32 in physical units,
    ``y`` labels, ``groups`` the recording id of each window, ``starts`` its first sample."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    starts: np.ndarray
    channels: tuple[str, ...]
    rate_hz: float

    def __len__(self) -> int:
        return len(self.y)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.y.tolist()))

    def subset(self, recording_ids) -> "Windows":
        """The windows of these recordings only."""
        keep = np.isin(self.groups, list(recording_ids))
        return Windows(self.X[keep], self.y[keep], self.groups[keep], self.starts[keep],
                       self.channels, self.rate_hz)

    def encoded(self, classes: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
        """Integer labels (index into ``classes``, sorted labels by default)."""
        classes = classes or self.classes
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[c] for c in self.y], dtype=np.int64), classes


def _labelled_spans(meta: RecordingMeta) -> list[tuple[int, int, str]]:
    if meta.regions:
        return [(r.start, r.end, r.label) for r in meta.regions]
    if meta.label:
        return [(0, meta.samples, meta.label)]
    return []


def windows(dataset: Dataset, length: int, stride: int | None = None, *,
            recordings: list[str] | None = None, sensor: str | None = None) -> Windows:
    """Cut every labelled span of the chosen recordings into windows.

    ``length`` and ``stride`` are in samples (``stride`` defaults to ``length``:
    no overlap). A span shorter than ``length`` gives no window. All chosen
    recordings must share channels and rate (pick them with ``sensor`` or
    ``recordings``); raises ValueError otherwise, or if no window results.
    """
    if length < 1:
        raise ValueError("window length must be at least one sample")
    stride = stride or length
    metas = [dataset.meta(r) for r in recordings] if recordings else dataset.recordings()
    if sensor:
        metas = [m for m in metas if m.sensor == sensor]
    metas = [m for m in metas if _labelled_spans(m)]
    if not metas:
        raise ValueError("no labelled recordings to cut into windows; label some first")
    shapes = {(m.channels, m.rate_hz) for m in metas}
    if len(shapes) > 1:
        raise ValueError("recordings differ in channels or rate: "
                         + "; ".join(f"{c} at {r:g} Hz" for c, r in sorted(shapes))
                         + ". Choose one sensor with sensor=...")
    channels, rate = shapes.pop()
    xs, ys, gs, ss = [], [], [], []
    for meta in metas:
        values = dataset.load(meta.id).values
        for start, end, label in _labelled_spans(meta):
            for s in range(start, end - length + 1, stride):
                xs.append(values[s:s + length])
                ys.append(label)
                gs.append(meta.id)
                ss.append(s)
    if not xs:
        raise ValueError(f"every labelled span is shorter than {length} samples "
                         f"({length / rate:.2f} s); use shorter windows")
    return Windows(np.stack(xs).astype(np.float32), np.array(ys), np.array(gs),
                   np.array(ss, dtype=np.int64), channels, rate)


@dataclass(frozen=True)
class Split:
    """Recording ids on each side. No recording is on two sides."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def check(self) -> None:
        """Raise ValueError if any recording appears on two sides."""
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = set(getattr(self, a)) & set(getattr(self, b))
            if both:
                raise ValueError(f"leakage: {sorted(both)} in both {a} and {b}")


def _main_label(meta: RecordingMeta) -> str:
    spans = _labelled_spans(meta)
    weight: Counter = Counter()
    for start, end, label in spans:
        weight[label] += end - start
    return weight.most_common(1)[0][0]


def split_recordings(dataset: Dataset, *, test: float = 0.2, val: float = 0.0, seed: int = 0,
                     stratify: bool = True, predefined: str | None = None) -> Split:
    """Assign whole recordings to train/validation/test, stratified by label.

    Each label's recordings are shuffled (seeded) and dealt so that each side
    gets about its fraction of that label, at least one recording in test
    (and validation, if asked) when the label has enough recordings. With
    ``predefined="split"``, a recording whose ``extra["split"]`` says "train",
    "val" or "test" goes there (as the train/test split shipped with a
    published data set), and only the others are dealt.
    """
    if not 0 <= test < 1 or not 0 <= val < 1 or test + val >= 1:
        raise ValueError("test and val are fractions with test + val < 1")
    rng = random.Random(seed)
    sides: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    pool: dict[str, list[str]] = defaultdict(list)
    for meta in dataset.recordings():
        if not _labelled_spans(meta):
            continue
        fixed = meta.extra.get("split") if predefined else None
        if fixed in sides:
            sides[fixed].append(meta.id)
        else:
            pool[_main_label(meta) if stratify else ""].append(meta.id)
    for label in sorted(pool):
        ids = sorted(pool[label])
        rng.shuffle(ids)
        n = len(ids)
        n_test = round(n * test)
        n_val = round(n * val)
        if test and n >= 3:
            n_test = max(n_test, 1)
        if val and n >= 3:
            n_val = max(n_val, 1)
        n_test = min(n_test, n - 1) if n > 1 else 0
        n_val = min(n_val, n - 1 - n_test) if n > 1 else 0
        sides["test"] += ids[:n_test]
        sides["val"] += ids[n_test:n_test + n_val]
        sides["train"] += ids[n_test + n_val:]
    split = Split(*(tuple(sorted(sides[k])) for k in ("train", "val", "test")))
    split.check()
    return split
