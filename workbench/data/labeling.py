"""Label one recording, headless: select, label, remove, undo, propose.

A :class:`LabelEditor` edits the labels of one recording of a
:class:`~workbench.data.store.Dataset`. Every action is written to the dataset at
once (``meta.json`` is replaced atomically), so nothing is lost if the kernel
dies, and every action can be undone and redone (history per editor)::

    ed = LabelEditor(ds, rec_id)
    ed.select(120, 480)              # sample indices; clipped to the recording, ordered
    ed.label_selection("wave")       # -> Region(120, 480, "wave"), saved
    ed.undo(); ed.redo()
    ed.propose(threshold="3x")       # energy-based proposals, NOT saved
    ed.accept_proposals("wave")      # saved now, as one undoable step

Overlaps: the newest region wins. Labelling a stretch that overlaps existing
regions trims them (a region covering both ends of the new one is split in two,
one covered entirely disappears). An overlapping region with the *same* label is
merged into the new one instead, so dragging across the end of a region extends it.
Accepting proposals follows the same rule, proposal by proposal.

Errors (bad sample indices, empty labels, nothing selected, an undo after the
recording was changed elsewhere) raise before anything is written.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import WorkbenchError
from .store import Dataset, Recording, RecordingMeta, Region

if TYPE_CHECKING:  # pragma: no cover
    from .segment import SegmentResult

__all__ = ["LabelEditor", "LabelingError", "Action", "apply_region", "clean_label"]

#: Keys that pick labels: "1" is the first label of :attr:`LabelEditor.labels`.
SHORTCUT_KEYS = tuple("123456789")
#: Longest label accepted (labels become file names and legend entries).
MAX_LABEL_CHARS = 64
#: segment_energy keywords that change the energy curve (the rest only re-cut it).
_ENERGY_KEYS = frozenset({"window_s", "baseline", "channels"})


class LabelingError(WorkbenchError):
    """An editing action that cannot be done (the message says why); nothing was written."""


@dataclass(frozen=True)
class Action:
    """One step of the history: the recording's labels before and after it."""

    description: str
    before: tuple[str | None, tuple[Region, ...]]
    after: tuple[str | None, tuple[Region, ...]]


def clean_label(label: Any) -> str:
    """``label`` stripped; ValueError if it is not a non-empty string of sensible length."""
    if not isinstance(label, str):
        raise ValueError(f"a label must be a string, got {type(label).__name__} {label!r}")
    text = label.strip()
    if not text:
        raise ValueError("a label must not be empty")
    if len(text) > MAX_LABEL_CHARS:
        raise ValueError(f"a label has at most {MAX_LABEL_CHARS} characters, got {len(text)}")
    if any(ord(c) < 32 for c in text):
        raise ValueError(f"a label must not contain control characters: {text!r}")
    return text


def _index(value: Any, name: str) -> int:
    """A sample index from an int or a finite float (rounded); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a sample index (a number), got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return int(round(value))


def apply_region(regions: Sequence[Region], new: Region) -> tuple[Region, ...]:
    """``regions`` with ``new`` added, newest wins (see the module docs); sorted.

    Returns the new tuple; the region actually added (possibly widened by merging
    same-label overlaps) is the one containing ``new.start``.
    """
    start, end = new.start, new.end
    for r in regions:  # same label and overlapping: merge into the new one
        if r.label == new.label and r.start < new.end and new.start < r.end:
            start, end = min(start, r.start), max(end, r.end)
    merged = Region(start, end, new.label)
    out = []
    for r in regions:
        if r.end <= start or r.start >= end:
            out.append(r)
            continue
        if r.label == new.label:
            continue  # absorbed above
        if r.start < start:
            out.append(Region(r.start, start, r.label))
        if r.end > end:
            out.append(Region(end, r.end, r.label))
    out.append(merged)
    return tuple(sorted(out, key=lambda r: (r.start, r.end)))


class LabelEditor:
    """Edits the labels of recording ``rec_id`` in ``dataset`` (see the module docs).

    ``labels``: labels to offer besides the dataset's own (e.g. those of a previous
    editor, so the shortcut keys stay the same when moving between recordings).
    Raises KeyError if the recording does not exist.
    """

    def __init__(self, dataset: Dataset, rec_id: str, *, labels: Sequence[str] = ()) -> None:
        self.dataset = dataset
        self.rec_id = rec_id
        dataset.meta(rec_id)  # KeyError now rather than at the first action
        self._labels: list[str] = []
        for lab in list(labels) + sorted(dataset.labels):
            self._remember(lab)
        self._selection: tuple[int, int] | None = None
        self._done: list[Action] = []
        self._undone: list[Action] = []
        self._recording: Recording | None = None
        self._segment: SegmentResult | None = None
        self._energy_kw: dict = {}

    # ------------------------------------------------------------------ state
    @property
    def meta(self) -> RecordingMeta:
        """The recording's metadata as the dataset holds it now."""
        return self.dataset.meta(self.rec_id)

    @property
    def samples(self) -> int:
        return self.meta.samples

    @property
    def regions(self) -> tuple[Region, ...]:
        return self.meta.regions

    @property
    def recording(self) -> Recording:
        """The recording with its samples (read once, on first use)."""
        if self._recording is None or len(self._recording) != self.samples:
            self._recording = self.dataset.load(self.rec_id)
        return self._recording

    @property
    def selection(self) -> tuple[int, int] | None:
        """The selected samples ``(start, end)`` (end exclusive), or None."""
        return self._selection

    @property
    def labels(self) -> list[str]:
        """Labels to offer: those given, the dataset's, then ones added here (first seen first)."""
        for lab in sorted(self.dataset.labels):
            self._remember(lab)
        return list(self._labels)

    @property
    def shortcuts(self) -> dict[str, str]:
        """Keys "1".."9" -> the first nine :attr:`labels`."""
        return dict(zip(SHORTCUT_KEYS, self.labels))

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def history(self) -> list[str]:
        """Descriptions of the actions that can be undone, oldest first."""
        return [a.description for a in self._done]

    @property
    def redo_history(self) -> list[str]:
        """Descriptions of the actions that can be redone, next first."""
        return [a.description for a in reversed(self._undone)]

    def region_at(self, sample: int) -> Region | None:
        """The region containing ``sample``, or None."""
        s = _index(sample, "sample")
        return next((r for r in self.regions if r.start <= s < r.end), None)

    def add_label(self, label: str) -> str:
        """Offer ``label`` (cleaned) from now on, without using it. Returns it."""
        label = clean_label(label)
        self._remember(label)
        return label

    def _remember(self, label: str) -> None:
        if label and label not in self._labels:
            self._labels.append(label)

    # -------------------------------------------------------------- selection
    def select(self, start: Any, end: Any) -> tuple[int, int] | None:
        """Select samples ``start``..``end`` (either order, clipped to the recording).

        Returns the selection; an empty one (both ends equal after clipping)
        clears it and returns None. ValueError for indices that are not numbers.
        """
        a, b = sorted((_index(start, "start"), _index(end, "end")))
        n = self.samples
        a, b = min(max(a, 0), n), min(max(b, 0), n)
        self._selection = (a, b) if b > a else None
        return self._selection

    def select_at(self, sample: Any) -> tuple[int, int] | None:
        """Select the region containing ``sample`` (a click), or clear the selection."""
        region = self.region_at(sample)
        self._selection = (region.start, region.end) if region else None
        return self._selection

    def clear_selection(self) -> None:
        self._selection = None

    # ---------------------------------------------------------------- actions
    def label_selection(self, label: str) -> Region:
        """Label the selection (newest wins over overlapping regions). Returns the region
        stored. LabelingError if nothing is selected."""
        label = clean_label(label)
        if self._selection is None:
            raise LabelingError("select a stretch of the recording first (drag on the timeline "
                                "or call select(start, end))")
        new = Region(*self._selection, label)
        regions = apply_region(self.regions, new)
        self._commit(f"label {new.start}..{new.end} as {label!r}", self.meta.label, regions)
        self._remember(label)
        return next(r for r in regions if r.start <= new.start < r.end)

    def label_recording(self, label: str | None) -> None:
        """Label the whole recording (None removes the whole-recording label)."""
        label = None if label is None else clean_label(label)
        self._commit(f"label recording as {label!r}" if label else "remove recording label",
                     label, self.regions)
        if label:
            self._remember(label)

    def remove_region_at(self, sample: Any) -> Region:
        """Remove the region containing ``sample``. LabelingError if there is none."""
        region = self.region_at(sample)
        if region is None:
            raise LabelingError(f"no region at sample {sample} of {self.rec_id}")
        self._commit(f"remove {region.start}..{region.end} ({region.label})", self.meta.label,
                     tuple(r for r in self.regions if r != region))
        return region

    def remove_selected(self) -> list[Region]:
        """Remove every region overlapping the selection, as one step. Returns them."""
        if self._selection is None:
            raise LabelingError("nothing selected: select the region to remove first")
        a, b = self._selection
        hit = [r for r in self.regions if r.start < b and a < r.end]
        if not hit:
            raise LabelingError(f"no region under the selection {a}..{b}")
        self._commit(f"remove {len(hit)} region(s) in {a}..{b}", self.meta.label,
                     tuple(r for r in self.regions if r not in hit))
        return hit

    def relabel_region(self, region: Region, label: str) -> Region:
        """Give ``region`` (one of :attr:`regions`) another label. Returns the new region."""
        label = clean_label(label)
        if region not in self.regions:
            raise LabelingError(f"{self.rec_id} has no region {region}")
        others = tuple(r for r in self.regions if r != region)
        regions = apply_region(others, Region(region.start, region.end, label))
        self._commit(f"relabel {region.start}..{region.end} {region.label!r} -> {label!r}",
                     self.meta.label, regions)
        self._remember(label)
        return next(r for r in regions if r.start <= region.start < r.end)

    # ---------------------------------------------------------------- history
    def undo(self) -> str:
        """Undo the last action; returns its description. LabelingError if there is none,
        or if the recording's labels were changed elsewhere since (nothing is overwritten)."""
        if not self._done:
            raise LabelingError("nothing to undo")
        action = self._done[-1]
        self._check_unchanged(action.after, "undo")
        self._write(*action.before)
        self._undone.append(self._done.pop())
        return action.description

    def redo(self) -> str:
        """Redo the last undone action; returns its description (errors as :meth:`undo`)."""
        if not self._undone:
            raise LabelingError("nothing to redo")
        action = self._undone[-1]
        self._check_unchanged(action.before, "redo")
        self._write(*action.after)
        self._done.append(self._undone.pop())
        return action.description

    def _state(self) -> tuple[str | None, tuple[Region, ...]]:
        meta = self.meta
        return meta.label, meta.regions

    def _check_unchanged(self, expected, verb: str) -> None:
        if self._state() != expected:
            raise LabelingError(f"cannot {verb}: the labels of {self.rec_id} were changed "
                                "outside this editor since; nothing was changed")

    def _commit(self, description: str, label: str | None, regions: tuple[Region, ...]) -> None:
        before = self._state()
        after = (label, tuple(sorted(regions, key=lambda r: (r.start, r.end))))
        if after == before:
            return
        self._write(*after)
        self._done.append(Action(description, before, after))
        self._undone.clear()

    def _write(self, label: str | None, regions: tuple[Region, ...]) -> None:
        meta = self.meta
        if regions != meta.regions:
            self.dataset.set_regions(self.rec_id, regions)  # validates before writing
        if label != meta.label:
            self.dataset.set_label(self.rec_id, label)

    # -------------------------------------------------------------- proposals
    @property
    def segment(self) -> SegmentResult | None:
        """The last :meth:`propose` result (energy curve, thresholds), or None."""
        return self._segment

    @property
    def proposals(self) -> tuple[Region, ...]:
        """Proposed regions not accepted yet (not stored in the dataset)."""
        return self._segment.regions if self._segment is not None else ()

    def propose(self, threshold: float | str | None = None, **kw: Any) -> SegmentResult:
        """Find events by energy (:func:`workbench.data.segment.segment_energy`, same
        keywords). Nothing is stored; :meth:`accept_proposals` stores them. Moving only
        the threshold (or clean-up settings) re-cuts the last energy curve cheaply."""
        from . import segment  # lazily: scipy is needed only here

        energy_kw = {k: kw[k] for k in _ENERGY_KEYS if k in kw}
        cut_kw = {k: v for k, v in kw.items() if k not in _ENERGY_KEYS}
        if self._segment is not None and energy_kw == self._energy_kw \
                and self._segment.n_samples == self.samples:
            self._segment = self._segment.with_threshold(threshold, **cut_kw)
        else:
            self._segment = segment.segment_energy(self.recording, threshold=threshold, **kw)
            self._energy_kw = energy_kw
        return self._segment

    def clear_proposals(self) -> None:
        self._segment = None
        self._energy_kw = {}

    def accept_proposals(self, label: str) -> tuple[Region, ...]:
        """Store the proposals as regions labelled ``label`` (newest wins), one undoable
        step; the proposals are then cleared. Returns the regions added."""
        label = clean_label(label)
        if not self.proposals:
            raise LabelingError("no proposals to accept: call propose() first")
        regions = self.regions
        added = tuple(Region(p.start, p.end, label) for p in self.proposals)
        for r in added:
            regions = apply_region(regions, r)
        self._commit(f"accept {len(added)} proposal(s) as {label!r}", self.meta.label, regions)
        self._remember(label)
        self.clear_proposals()
        return added

    def __repr__(self) -> str:
        return (f"LabelEditor({self.rec_id!r}, {len(self.regions)} regions, "
                f"selection={self._selection}, {len(self._done)} undoable)")
