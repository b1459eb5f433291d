"""A dataset's takes as a capture screen lists them, and undoable edits of whole takes.

A take is one recording. :func:`newest_first` lists them newest first, :func:`sparkline`
reduces one to a thumbnail, and :class:`TakeEdits` relabels and deletes whole takes with
an undo history::

    edits = TakeEdits(ds)
    edits.relabel("unlabeled-20260101T120000-a1b2c3", "wave")   # written at once
    edits.delete("wave-20260101T120005-d4e5f6")                 # moved to trash/
    edits.undo()          # the delete: the take is back, byte for byte
    edits.undo()          # the relabel: the label it had (here none) is back

Nothing here is a second store: a delete is :meth:`Dataset.drop` (the recording's folder
moves whole into ``<dataset>/trash/``; nothing is ever erased), its undo
:meth:`Dataset.restore`; a relabel is one atomic rewrite of ``meta.json`` under the dataset
lock (:meth:`Dataset.set_label`), its undo another. So a crash at any moment leaves every
take either in ``recordings/`` or in ``trash/``, whole, with a valid ``meta.json``. The
history lives in this object (a kernel restart forgets it); what it would undo stays on
disk: a dropped take can always be brought back with ``Dataset.restore(rec_id)``.

A relabel changes the ``label`` field only: the recording's id (its folder name, which
snapshots refer to) keeps the label it was recorded with, e.g. ``unlabeled-...``.

Errors: an unknown recording raises KeyError; a label that is not a sensible string,
ValueError; deleting a take that is still being recorded, or undoing a relabel that was
changed since by someone else, :class:`~workbench.data.DatasetError`. Nothing is written
when an error is raised, and a failed undo stays in the history.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from .labeling import clean_label
from .store import Dataset, DatasetError, RecordingMeta

__all__ = ["TakeEdit", "TakeEdits", "newest_first", "sparkline", "MAX_UNDO", "UNLABELED"]

MAX_UNDO = 50
"""Edits remembered for undo (older ones are forgotten; their data stays where it is)."""
UNLABELED = "unlabeled"
"""How a take without a label is named (its id starts with it)."""


def newest_first(dataset: Dataset, limit: int | None = None) -> list[RecordingMeta]:
    """The dataset's recordings, the newest start first (at most ``limit``)."""
    metas = dataset.recordings()[::-1]
    return metas if limit is None else metas[:max(0, int(limit))]


def sparkline(values: np.ndarray, points: int = 48) -> np.ndarray:
    """A thumbnail of a recording: ``(m, channels)`` float32 with ``m <= 2 * points``.

    Each of ``points`` buckets gives its minimum and maximum in the order they occur, so a
    spike survives; a recording shorter than ``2 * points`` samples is returned as it is.
    Non-finite values become NaN (a gap in the line)."""
    if points < 1:
        raise ValueError(f"points must be >= 1, got {points}")
    a = np.asarray(values, dtype=np.float32)
    if a.ndim == 1:
        a = a[:, None]
    a = np.where(np.isfinite(a), a, np.nan).astype(np.float32)
    n = len(a)
    if n <= 2 * points:
        return a
    edges = np.linspace(0, n, points + 1).astype(int)
    out = np.empty((2 * points, a.shape[1]), np.float32)
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        b = a[lo:hi]
        with np.errstate(all="ignore"):
            finite = ~np.isnan(b).all(axis=0)
            imin = np.where(finite, np.nanargmin(np.where(np.isnan(b), np.inf, b), axis=0), 0)
            imax = np.where(finite, np.nanargmax(np.where(np.isnan(b), -np.inf, b), axis=0), 0)
        cols = np.arange(b.shape[1])
        first = np.where(imin <= imax, imin, imax)
        second = np.where(imin <= imax, imax, imin)
        out[2 * i] = np.where(finite, b[first, cols], np.nan)
        out[2 * i + 1] = np.where(finite, b[second, cols], np.nan)
    return out


@dataclass(frozen=True)
class TakeEdit:
    """One undoable edit of a whole take."""

    kind: Literal["relabel", "delete"]
    rec_id: str
    before: str | None
    """The label before the edit."""
    after: str | None
    """The label after it (a delete: the label the take had)."""

    @property
    def description(self) -> str:
        if self.kind == "delete":
            return f"delete {self.rec_id}"
        return f"relabel {self.rec_id}: {self.before or UNLABELED} -> {self.after or UNLABELED}"


class TakeEdits:
    """Relabel and delete whole takes of ``dataset``, and undo them, newest edit first.

    Call order: any number of :meth:`relabel` and :meth:`delete`; :meth:`undo` reverts the
    latest edit not yet undone (``can_undo`` says whether there is one). Each call writes
    the dataset at once (see the module docstring for what is written where)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.history: list[TakeEdit] = []
        """Edits that can be undone, oldest first."""

    @property
    def can_undo(self) -> bool:
        return bool(self.history)

    @property
    def last(self) -> TakeEdit | None:
        """The edit :meth:`undo` would revert."""
        return self.history[-1] if self.history else None

    def _remember(self, edit: TakeEdit) -> None:
        self.history.append(edit)
        del self.history[:-MAX_UNDO]

    def relabel(self, rec_id: str, label: str | None) -> RecordingMeta:
        """Give take ``rec_id`` the whole-recording label ``label`` (None or "" removes it).

        Its labelled regions are kept as they are. Raises KeyError for an unknown take,
        ValueError for a label that is not a sensible string."""
        blank = label is None or (isinstance(label, str) and not label.strip())
        new = None if blank else clean_label(label)
        before = self.dataset.meta(rec_id).label
        meta = self.dataset.set_label(rec_id, new)
        if before != new:
            self._remember(TakeEdit("relabel", rec_id, before, new))
        return meta

    def delete(self, rec_id: str) -> Path:
        """Move take ``rec_id`` to the dataset's ``trash/`` (nothing is erased); returns
        where it went. Raises KeyError for an unknown take, DatasetError while it is being
        recorded."""
        label = self.dataset.meta(rec_id).label
        dest = self.dataset.drop(rec_id)
        self._remember(TakeEdit("delete", rec_id, label, label))
        return dest

    def undo(self) -> TakeEdit:
        """Revert the latest edit and return it. A delete comes back from ``trash/``; a
        relabel gets its old label back, if the label is still the one it set.

        Raises DatasetError if there is nothing to undo, if the label was changed since by
        someone else (the edit then stays in the history: relabel by hand), or if the take
        cannot come back (a take of that id is in the dataset again)."""
        edit = self.last
        if edit is None:
            raise DatasetError("nothing to undo: no take was relabelled or deleted here")
        if edit.kind == "delete":
            try:
                self.dataset.restore(edit.rec_id)
            except KeyError:
                raise DatasetError(f"cannot undo the delete of {edit.rec_id}: it is no longer "
                                   f"in {self.dataset.root / 'trash'}") from None
        else:
            def back(meta: RecordingMeta) -> RecordingMeta:
                if meta.label != edit.after:
                    raise DatasetError(
                        f"cannot undo the relabel of {edit.rec_id}: its label is now "
                        f"{meta.label or UNLABELED!r}, changed since; set the label by hand")
                return replace(meta, label=edit.before)

            self.dataset.meta(edit.rec_id)
            self.dataset._modify(edit.rec_id, back)
        self.history.pop()
        return edit
