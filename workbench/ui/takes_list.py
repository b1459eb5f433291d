"""The takes of a dataset, newest first: thumbnail, label, length, sensor, time; play back,
relabel, delete, undo.

``TakesList`` is a view of a :class:`workbench.capture.Recorder`: every button is a message
that Python turns into a recorder call (:meth:`~workbench.capture.Recorder.relabel`,
:meth:`~workbench.capture.Recorder.delete`, :meth:`~workbench.capture.Recorder.undo`),
which writes the dataset at once; the list then shows the dataset as it is. A delete moves
the take to the dataset's ``trash/`` (nothing is erased) and Undo brings it back::

    takes = TakesList(recorder)        # the capture panel makes one: panel.takes
    takes                              # click a row's play, pencil or bin; Undo
    takes.handle({"type": "relabel", "rec_id": rid, "label": "wave"})   # what a click sends

Play back draws the whole take in a small player above the list and sweeps a playhead
across it in real time (the live plot keeps showing the board).

Messages, browser -> kernel (``type`` first; see :data:`FRONT_MESSAGES`); kernel -> browser
:class:`TakeMessage` (the take to play, min/max-decimated to at most
:data:`PLAY_POINTS` points, one float32 buffer ``(n, channels)``). The list itself is the
synced ``takes`` trait: one :class:`TakeItem` per take.

Call order: make it with a recorder; :meth:`refresh` after the dataset changed elsewhere
(the capture panel calls it when ``recorder.revision`` moves); :meth:`handle` takes the
browser's messages. Errors of an action are shown in ``error`` until the next action.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypedDict

import anywidget
import numpy as np
import traitlets as t

from ..capture import Recorder
from ..data import DatasetError
from ..data.takes import sparkline
from .liveplot import minmax_decimate

__all__ = ["TakesList", "TakeItem", "TakeMessage", "FRONT_MESSAGES", "THUMB_POINTS",
           "PLAY_POINTS", "DEFAULT_LIMIT"]

#: Buckets of a thumbnail (each gives a min and a max).
THUMB_POINTS = 40
#: Most points per channel sent to the player.
PLAY_POINTS = 1200
#: Takes listed (the newest).
DEFAULT_LIMIT = 50

#: Browser -> kernel messages and the keys they carry (besides ``type``).
FRONT_MESSAGES: dict[str, tuple[str, ...]] = {
    "play": ("rec_id",),
    "relabel": ("rec_id", "label"),
    "delete": ("rec_id",),
    "undo": (),
}


class TakeItem(TypedDict):
    """One row of the list."""

    id: str
    label: str | None
    sensor: str
    channels: list[str]
    units: str
    seconds: float
    samples: int
    lost: int
    started: str             # ISO-8601 UTC
    time: str                # started, local, "HH:MM:SS" (the browser may reformat)
    interrupted: bool
    thumb: list[list[float | None]]   # per channel, up to 2 * THUMB_POINTS values


class TakeMessage(TypedDict):
    """The take to play; one float32 buffer of ``n * channels`` values."""

    type: Literal["take"]
    rec_id: str
    label: str | None
    n: int
    channels: int
    names: list[str]
    units: str
    seconds: float
    rate_hz: float


def _round(v: float) -> float | None:
    return None if not math.isfinite(v) else float(f"{v:.4g}")


def _local_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%H:%M:%S")
    except (TypeError, ValueError):
        return ""


class TakesList(anywidget.AnyWidget):
    """The recorder's dataset, newest take first, with play back, relabel, delete, undo."""

    _esm = Path(__file__).with_name("takes_list.js")

    takes = t.List(help="The takes, newest first: one TakeItem each.").tag(sync=True)
    labels = t.List(t.Unicode(), help="Labels in use (offered when relabelling).").tag(sync=True)
    total = t.Int(0, help="Takes in the dataset (the list shows at most `limit`).").tag(sync=True)
    can_undo = t.Bool(False, help="There is a relabel or delete to undo.").tag(sync=True)
    undo_text = t.Unicode("", help="What Undo would revert.").tag(sync=True)
    message = t.Unicode("", help="What the last action did.").tag(sync=True)
    error = t.Unicode("", help="Why the last action failed; kept until the next.").tag(sync=True)
    playing = t.Unicode("", help="Id of the take in the player ('' : none).").tag(sync=True)

    def __init__(self, recorder: Recorder, *, limit: int = DEFAULT_LIMIT, **kwargs) -> None:
        self.recorder = recorder
        self.limit = int(limit)
        self.revision = -1
        """The recorder revision the list shows."""
        self._thumbs: dict[tuple[str, int], list[list[float | None]]] = {}
        self._refreshing = threading.Lock()
        super().__init__(**kwargs)
        self.on_msg(self._on_front_msg)
        self.refresh()

    # ------------------------------------------------------------ the list
    def _thumb(self, meta) -> list[list[float | None]]:
        key = (meta.id, meta.samples)
        if key not in self._thumbs:
            try:
                values = self.recorder.dataset.load(meta.id).values
            except (OSError, DatasetError):
                values = np.zeros((0, len(meta.channels)), np.float32)
            pts = sparkline(values, THUMB_POINTS) if len(values) else values
            self._thumbs[key] = [[_round(v) for v in col] for col in np.asarray(pts).T]
        return self._thumbs[key]

    def _item(self, meta) -> TakeItem:
        return TakeItem(id=meta.id, label=meta.label, sensor=meta.sensor,
                        channels=list(meta.channels), units=meta.units,
                        seconds=round(meta.duration_s, 3), samples=meta.samples,
                        lost=meta.lost, started=meta.started, time=_local_time(meta.started),
                        interrupted=meta.interrupted, thumb=self._thumb(meta))

    def refresh(self) -> None:
        """Show the dataset as the recorder has it now (takes being recorded are left out:
        they join the list when they are stored)."""
        rec = self.recorder
        with self._refreshing:   # the panel's ticker and the widget's messages both refresh
            revision = rec.revision
            live = rec.session.recording_id if rec.session is not None and rec.session.running \
                else None
            metas = [m for m in rec.recent() if m.id != live]
            shown = metas[:self.limit]
            keep = {(m.id, m.samples) for m in shown}
            self._thumbs = {k: v for k, v in self._thumbs.items() if k in keep}
            last = rec.edits.last
            with self.hold_sync():
                self.takes = [self._item(m) for m in shown]
                self.total = len(metas)
                self.labels = list(rec.dataset.labels)
                self.can_undo = last is not None
                self.undo_text = last.description if last else ""
            self.revision = revision

    # ------------------------------------------------------------ actions
    def play(self, rec_id: str) -> TakeMessage:
        """Send take ``rec_id`` to the player (decimated to PLAY_POINTS); returns the message."""
        recording = self.recorder.dataset.load(rec_id)
        values = recording.values
        bucket = max(1, math.ceil(len(values) / (PLAY_POINTS // 2))) if len(values) > PLAY_POINTS \
            else 1
        points = minmax_decimate(values, bucket) if len(values) else values
        meta = recording.meta
        msg = TakeMessage(type="take", rec_id=meta.id, label=meta.label, n=len(points),
                          channels=len(meta.channels), names=list(meta.channels),
                          units=meta.units, seconds=meta.duration_s, rate_hz=meta.rate_hz)
        self.send(msg, buffers=[np.ascontiguousarray(points, np.float32).tobytes()])
        self.playing = meta.id
        self.message = f"playing {meta.id} ({meta.duration_s:.1f} s)"
        return msg

    def handle(self, content: dict[str, Any]) -> None:
        """Do what a message from the browser asks (see FRONT_MESSAGES). An error is shown
        in ``error``, not raised; an unknown message is ignored."""
        kind = content.get("type") if isinstance(content, dict) else None
        if kind not in FRONT_MESSAGES:
            return
        self.error = ""
        rec = self.recorder
        try:
            if kind == "play":
                self.play(content["rec_id"])
                return
            if kind == "relabel":
                meta = rec.relabel(content["rec_id"], content.get("label"))
                self.message = f"{meta.id} is now labelled {meta.label or 'unlabeled'}"
            elif kind == "delete":
                rec.delete(content["rec_id"])
                self.message = f"deleted {content['rec_id']} (moved to trash/)"
                if self.playing == content["rec_id"]:
                    self.playing = ""
            else:
                edit = rec.undo()
                self.message = f"undone: {edit.description}"
        except (KeyError, ValueError, DatasetError, OSError) as e:
            self.error = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        self.refresh()

    def _on_front_msg(self, _widget, content, _buffers) -> None:
        self.handle(content)
