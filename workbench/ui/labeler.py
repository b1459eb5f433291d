"""Label recordings by hand: a timeline you drag on, label buttons and shortcut keys.

``Labeler`` is a view of :class:`workbench.data.labeling.LabelEditor`: every
action (a drag, a key, a button) is a message that Python turns into an editor
call, which writes the dataset at once; the widget then shows the new state.
Nothing is decided in the browser, so everything it can do, the editor does
headless (and :meth:`Labeler.handle` takes the browser's messages in tests).

Usage::

    from workbench.data import Dataset
    from workbench.ui.labeler import Labeler   # (workbench.ui.Labeler once ui/__init__ lists it)

    lab = Labeler(Dataset("data/gestures"))
    lab                                  # drag on the timeline, press 1..9, ctrl+z
    lab.editor.regions                   # what is stored, as the widget shows it

Keys (with the widget focused: click the timeline): ``1``..``9`` label the
selection with the i-th label, Backspace/Delete remove the regions under it,
Escape clears it, ctrl/cmd+z undoes, ctrl/cmd+shift+z (or ctrl+y) redoes.

Messages (browser -> kernel, ``type`` first; see :data:`FRONT_MESSAGES`) and
kernel -> browser (:class:`TraceMessage`, :class:`EnergyMessage`): the recording is
min/max-decimated by Python to the canvas width and sent as one float32 buffer
``(n, channels)``; point ``i`` is at sample ``x0 + i * dx``. The energy curve of
the proposals comes the same way, one value per point.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, TypedDict

import anywidget
import numpy as np
import traitlets as t

from workbench.data.labeling import LabelEditor, LabelingError
from workbench.data.store import Dataset

__all__ = ["Labeler", "envelope", "label_colors", "LABEL_PALETTE", "TraceMessage",
           "EnergyMessage", "FRONT_MESSAGES"]

#: Colours of labels, in the order of ``Labeler.labels`` (Tableau 10).
LABEL_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#edc948", "#76b7b2",
                 "#ff9da7", "#9c755f", "#bab0ac")
#: Canvas width assumed until the browser reports its own, in CSS pixels.
DEFAULT_WIDTH_PX = 1000
#: Bounds on the width the browser may ask the recording to be decimated to.
MIN_WIDTH_PX, MAX_WIDTH_PX = 100, 8000

#: Browser -> kernel messages and the keys they carry (besides ``type``).
FRONT_MESSAGES: dict[str, tuple[str, ...]] = {
    "hello": ("width",),              # a view appeared (or resized): send the trace
    "open": ("rec_id",),              # the recording picker
    "select": ("start", "end"),       # a drag, in samples
    "click": ("sample",),             # a click: select the region there, or nothing
    "clear_selection": (),
    "label": ("label",),              # a label button
    "shortcut": ("key",),             # "1".."9"
    "add_label": ("label",),          # the text box: labels the selection if there is one
    "label_recording": ("label",),    # the whole-recording label (None/"" removes it)
    "delete": (),                     # Backspace/Delete: regions under the selection
    "undo": (),
    "redo": (),
    "propose": ("threshold",),        # the slider / Propose button (None: automatic)
    "accept": ("label",),
    "clear_proposals": (),
}


class TraceMessage(TypedDict):
    """The recording, decimated; one float32 buffer of ``n * channels`` values."""

    type: Literal["trace"]
    seq: int
    rec_id: str
    n: int          # points
    channels: int
    x0: float       # sample index of point 0
    dx: float       # samples between points
    bucket: int     # samples per min/max pair (1: every sample sent)
    samples: int    # samples in the recording
    lo: float       # smallest value (0 if empty)
    hi: float       # largest value


class EnergyMessage(TypedDict):
    """The proposals' energy curve (``n == 0``: none); one float32 buffer of ``n`` values."""

    type: Literal["energy"]
    seq: int
    rec_id: str
    n: int
    x0: float       # sample index of point 0 (a frame centre)
    dx: float       # samples between points


def envelope(values: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """``values`` (n, c) reduced for a ``width``-pixel plot: ``(points, bucket)``.

    Up to ``2 * width`` samples are returned as they are (``bucket == 1``); more are
    cut into buckets of ``bucket`` samples, each giving two points, its minimum and
    its maximum, so no spike is lost. Point ``i`` sits at sample ``i * bucket / 2``.
    """
    x = np.asarray(values, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"values must be (samples, channels), got shape {x.shape}")
    n = len(x)
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if n <= 2 * width:
        return np.ascontiguousarray(x), 1
    bucket = math.ceil(n / width)
    edges = np.arange(0, n, bucket)
    out = np.empty((2 * len(edges), x.shape[1]), np.float32)
    out[0::2] = np.minimum.reduceat(x, edges, axis=0)
    out[1::2] = np.maximum.reduceat(x, edges, axis=0)
    return out, bucket


def label_colors(labels: list[str]) -> dict[str, str]:
    """label -> colour, by position in ``labels`` (the palette repeats after ten)."""
    return {lab: LABEL_PALETTE[i % len(LABEL_PALETTE)] for i, lab in enumerate(labels)}


def _region_dicts(regions) -> list[dict]:
    return [{"start": r.start, "end": r.end, "label": r.label} for r in regions]


def _segment_available() -> bool:
    try:
        import scipy.ndimage  # noqa: F401

        from workbench.data import segment  # noqa: F401
    except ImportError:
        return False
    return True


class Labeler(anywidget.AnyWidget):
    """Label the recordings of ``dataset`` (see the module docs); opens ``rec_id`` or the
    first recording. Every change is written to the dataset at once."""

    _esm = Path(__file__).with_name("labeler.js")

    recordings = t.List(t.Dict(), help="The picker's entries: {id, label, seconds, regions} "
                        "per recording, in start order.").tag(sync=True)
    rec_id = t.Unicode("", help="The recording being labelled ('' when the dataset is empty)."
                       ).tag(sync=True)
    info = t.Dict(help="The open recording: {samples, rate_hz, channels, units, sensor, label, "
                  "duration_s}.").tag(sync=True)
    regions = t.List(t.Dict(), help="Stored regions of the open recording: {start, end, label}, "
                     "samples, end exclusive.").tag(sync=True)
    selection = t.List(t.Int(), help="[start, end] of the selection in samples, [] for none."
                       ).tag(sync=True)
    labels = t.List(t.Unicode(), help="Labels offered, in button (and shortcut) order."
                    ).tag(sync=True)
    colors = t.Dict(help="label -> CSS colour of its buttons and bands.").tag(sync=True)
    shortcuts = t.Dict(help="key ('1'..'9') -> the label it applies.").tag(sync=True)
    proposals = t.List(t.Dict(), help="Proposed regions not stored yet: {start, end}."
                       ).tag(sync=True)
    threshold = t.Float(None, allow_none=True, help="Energy threshold of the proposals "
                        "(None before proposing).").tag(sync=True)
    threshold_max = t.Float(1.0, help="Top of the threshold slider (above the loudest frame)."
                            ).tag(sync=True)
    can_undo = t.Bool(False, help="There is an action to undo.").tag(sync=True)
    can_redo = t.Bool(False, help="There is an action to redo.").tag(sync=True)
    can_propose = t.Bool(False, help="Automatic proposals are available "
                         "(workbench.data.segment and scipy import).").tag(sync=True)
    status = t.Dict(help="The last outcome shown to the user: {level: 'info'|'error', text, seq}."
                    ).tag(sync=True)
    width_px = t.Int(DEFAULT_WIDTH_PX, help="Canvas width (CSS px) the trace is decimated to."
                     ).tag(sync=True)

    def __init__(self, dataset: Dataset, rec_id: str | None = None, **kwargs: Any) -> None:
        self.dataset = dataset
        self._editors: dict[str, LabelEditor] = {}
        self._seq = 0
        self._status_seq = 0
        super().__init__(can_propose=_segment_available(), **kwargs)
        self.on_msg(self._on_front_msg)
        first = rec_id or next((m.id for m in dataset.recordings()), "")
        if first:
            self.open_recording(first)
        else:
            self._sync()

    # ------------------------------------------------------------------ state
    @property
    def editor(self) -> LabelEditor:
        """The :class:`LabelEditor` of the open recording (one per recording, kept with its
        undo history while the widget lives). LabelingError if the dataset is empty."""
        if not self.rec_id:
            raise LabelingError(f"the dataset at {self.dataset.root} has no recordings yet")
        return self._editors[self.rec_id]

    def open_recording(self, rec_id: str) -> LabelEditor:
        """Show recording ``rec_id`` (KeyError if the dataset has none of that id).
        Setting ``labeler.rec_id`` does the same."""
        if rec_id not in self.dataset:
            raise KeyError(f"no recording {rec_id!r} in {self.dataset.root}")
        if rec_id == self.rec_id:
            self._show()
        else:
            self.rec_id = rec_id  # _on_rec_id shows it
        return self._editors[rec_id]

    @t.validate("rec_id")
    def _check_rec_id(self, proposal):
        rec_id = proposal["value"]
        if rec_id and rec_id not in self.dataset:
            raise t.TraitError(f"no recording {rec_id!r} in {self.dataset.root}")
        return rec_id

    @t.observe("rec_id")
    def _on_rec_id(self, change) -> None:
        old, new = change["old"], change["new"]
        if new and new not in self._editors:
            labels = self._editors[old].labels if old in self._editors else ()
            self._editors[new] = LabelEditor(self.dataset, new, labels=labels)
        self._show()

    def _show(self) -> None:
        self._sync()
        self._send_trace()
        self._send_energy()

    def refresh(self) -> None:
        """Re-read the dataset (recordings added, dropped or relabelled through it) and
        re-send everything; a dropped open recording gives way to the first one."""
        if self.rec_id and self.rec_id not in self.dataset:
            self._editors.pop(self.rec_id, None)
            self.rec_id = next((m.id for m in self.dataset.recordings()), "")
        elif not self.rec_id and len(self.dataset):
            self.rec_id = self.dataset.recordings()[0].id
        else:
            self._show()

    # ---------------------------------------------------------------- actions
    # Each one calls the editor, then re-sends the state. Errors propagate here;
    # handle() turns them into the ``status`` shown in the widget.
    def select(self, start: float, end: float) -> tuple[int, int] | None:
        return self._do(self.editor.select, start, end)

    def click(self, sample: float) -> tuple[int, int] | None:
        return self._do(self.editor.select_at, sample)

    def clear_selection(self) -> None:
        return self._do(self.editor.clear_selection)

    def label(self, label: str) -> Any:
        """Label the selection (newest wins)."""
        region = self._do(self.editor.label_selection, label)
        self._info(f"labelled {region.start}..{region.end} as {region.label}")
        return region

    def shortcut(self, key: str) -> Any:
        """Apply the label of shortcut ``key`` ("1".."9") to the selection."""
        label = self.editor.shortcuts.get(str(key))
        if label is None:
            raise LabelingError(f"no label on key {key!r} (there are {len(self.labels)} labels)")
        return self.label(label)

    def add_label(self, label: str) -> str:
        """Offer a new label; if something is selected, label it with it too."""
        if self.editor.selection is not None:
            return self.label(label).label
        return self._do(self.editor.add_label, label)

    def label_recording(self, label: str | None) -> None:
        self._do(self.editor.label_recording, label or None)
        self._info(f"recording labelled {label}" if label else "recording label removed")

    def delete(self) -> list:
        """Remove the regions under the selection."""
        removed = self._do(self.editor.remove_selected)
        self._info(f"removed {len(removed)} region(s)")
        return removed

    def remove_region_at(self, sample: int) -> Any:
        return self._do(self.editor.remove_region_at, sample)

    def undo(self) -> str:
        text = self._do(self.editor.undo)
        self._info(f"undone: {text}")
        return text

    def redo(self) -> str:
        text = self._do(self.editor.redo)
        self._info(f"redone: {text}")
        return text

    def propose(self, threshold: float | str | None = None, **kw: Any) -> Any:
        """Energy-based proposals (shown dashed, not stored); see ``LabelEditor.propose``."""
        if not self.can_propose:
            raise LabelingError("proposals need workbench.data.segment and scipy")
        result = self._do(self.editor.propose, threshold, **kw)
        self._send_energy()
        self._info(f"{len(result.regions)} proposal(s) at threshold {result.threshold:.4g}")
        return result

    def accept_proposals(self, label: str) -> Any:
        added = self._do(self.editor.accept_proposals, label)
        self._send_energy()
        self._info(f"accepted {len(added)} proposal(s) as {label}")
        return added

    def clear_proposals(self) -> None:
        self._do(self.editor.clear_proposals)
        self._send_energy()

    def _do(self, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        finally:  # an error changed nothing, but the state is re-sent all the same
            self._sync()

    # ------------------------------------------------------------- messages
    def handle(self, msg: dict) -> None:
        """Act on one message from the browser (the same shapes as :data:`FRONT_MESSAGES`).

        Errors do not propagate: they become the ``status`` the widget shows (and
        nothing is changed). Tests call this to drive the widget without a browser.
        """
        try:
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind not in FRONT_MESSAGES:
                raise ValueError(f"unknown message {msg!r}; known types: "
                                 f"{', '.join(FRONT_MESSAGES)}")
            missing = [k for k in FRONT_MESSAGES[kind] if k not in msg and k != "threshold"]
            if missing:
                raise ValueError(f"message {kind!r} needs {', '.join(missing)}")
            self._dispatch(kind, msg)
        except (LabelingError, ValueError, KeyError, TypeError, t.TraitError) as e:
            self._error(e.args[0] if isinstance(e, KeyError) and e.args else str(e))

    def _dispatch(self, kind: str, msg: dict) -> None:
        if kind == "hello":
            width = msg["width"]
            if not isinstance(width, (int, float)) or not math.isfinite(width):
                raise ValueError(f"width must be a number of pixels, got {width!r}")
            self.width_px = int(min(max(width, MIN_WIDTH_PX), MAX_WIDTH_PX))
            self._show()
        elif kind == "open":
            self.open_recording(msg["rec_id"])
        elif kind == "select":
            self.select(msg["start"], msg["end"])
        elif kind == "click":
            self.click(msg["sample"])
        elif kind == "clear_selection":
            self.clear_selection()
        elif kind == "label":
            self.label(msg["label"])
        elif kind == "shortcut":
            self.shortcut(msg["key"])
        elif kind == "add_label":
            self.add_label(msg["label"])
        elif kind == "label_recording":
            self.label_recording(msg["label"])
        elif kind == "delete":
            self.delete()
        elif kind in ("undo", "redo", "clear_proposals"):
            getattr(self, kind)()
        elif kind == "propose":
            self.propose(msg.get("threshold"))
        elif kind == "accept":
            self.accept_proposals(msg["label"])

    def _on_front_msg(self, _widget, content, _buffers) -> None:
        self.handle(content)

    def _info(self, text: str) -> None:
        self._status_seq += 1
        self.status = {"level": "info", "text": text, "seq": self._status_seq}

    def _error(self, text: str) -> None:
        self._status_seq += 1
        self.status = {"level": "error", "text": text, "seq": self._status_seq}

    # ---------------------------------------------------------- sending state
    def _sync(self) -> None:
        """Copy the dataset's and the editor's state into the synced traits, at once."""
        recs = [{"id": m.id, "label": m.label, "seconds": round(m.duration_s, 3),
                 "regions": len(m.regions)} for m in self.dataset.recordings()]
        ed = self._editors.get(self.rec_id)
        with self.hold_sync():  # labels and colours first: observers of the rest see them
            self.labels = ed.labels if ed is not None else sorted(self.dataset.labels)
            self.colors = label_colors(self.labels)
            self.recordings = recs
            if ed is None:
                self.info, self.regions, self.selection, self.proposals = {}, [], [], []
                self.shortcuts, self.can_undo, self.can_redo = {}, False, False
                self.threshold = None
            else:
                m = ed.meta
                self.info = {"samples": m.samples, "rate_hz": m.rate_hz,
                             "channels": list(m.channels), "units": m.units, "sensor": m.sensor,
                             "label": m.label, "duration_s": m.duration_s}
                self.regions = _region_dicts(m.regions)
                self.selection = list(ed.selection) if ed.selection else []
                self.shortcuts = ed.shortcuts
                self.proposals = [{"start": r.start, "end": r.end} for r in ed.proposals]
                self.can_undo, self.can_redo = ed.can_undo, ed.can_redo
                seg = ed.segment
                self.threshold = None if seg is None else seg.threshold
                if seg is not None:
                    peak = float(seg.energy.max()) if seg.energy.size else 0.0
                    self.threshold_max = max(peak * 1.1, seg.threshold * 1.2, 1e-9)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq - 1

    def trace_message(self) -> tuple[TraceMessage, list[bytes]]:
        """The message (and buffers) that carries the open recording to the browser."""
        if not self.rec_id:
            values = np.zeros((0, 1), np.float32)
        else:
            values = self.editor.recording.values
        points, bucket = envelope(values, self.width_px)
        finite = points[np.isfinite(points)]
        msg: TraceMessage = {
            "type": "trace", "seq": self._next_seq(), "rec_id": self.rec_id, "n": len(points),
            "channels": points.shape[1], "x0": 0.0, "dx": 1.0 if bucket == 1 else bucket / 2,
            "bucket": bucket, "samples": len(values),
            "lo": float(finite.min()) if finite.size else 0.0,
            "hi": float(finite.max()) if finite.size else 0.0}
        return msg, [points.tobytes()]

    def energy_message(self) -> tuple[EnergyMessage, list[bytes]]:
        """The message (and buffer) with the proposals' energy curve (``n == 0``: none)."""
        seg = self._editors[self.rec_id].segment if self.rec_id in self._editors else None
        if seg is None or not seg.energy.size:
            msg: EnergyMessage = {"type": "energy", "seq": self._next_seq(),
                                  "rec_id": self.rec_id, "n": 0, "x0": 0.0, "dx": 1.0}
            return msg, [b""]
        energy = np.asarray(seg.energy, np.float32)
        step = max(1, math.ceil(len(energy) / self.width_px))
        if step > 1:  # the loudest frame of each bucket: what the threshold is compared with
            energy = np.maximum.reduceat(energy, np.arange(0, len(energy), step))
        x0 = float(seg.frame_starts[0] + seg.window / 2) if len(seg.frame_starts) else 0.0
        msg = {"type": "energy", "seq": self._next_seq(), "rec_id": self.rec_id,
               "n": len(energy), "x0": x0, "dx": float(seg.hop * step)}
        return msg, [energy.tobytes()]

    def _send_trace(self) -> None:
        msg, buffers = self.trace_message()
        self.send(msg, buffers=buffers)

    def _send_energy(self) -> None:
        msg, buffers = self.energy_message()
        self.send(msg, buffers=buffers)
