"""A dataset at a glance: seconds and recordings per label, losses, a thumbnail per recording.

``DatasetOverview`` composes ipywidgets (HTML with inline SVG, made by the pure
functions :func:`thumbnail_svg` and :func:`label_bars_svg`), so it renders the
same in JupyterLab and Voila and needs no front-end code of its own::

    from workbench.ui.overview import DatasetOverview
    from workbench.ui.labeler import Labeler

    lab = Labeler(ds)
    DatasetOverview(ds, labeler=lab)   # each thumbnail's "Label" button opens it in ``lab``

It reads the :class:`~workbench.data.store.Dataset` object it is given: call
:meth:`DatasetOverview.refresh` after recording or labelling through it (a linked
Labeler refreshes it by itself).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import ipywidgets as widgets
import numpy as np

from workbench.data.store import Dataset, Region
from workbench.data.versioning import Summary, summarize

from .labeler import LABEL_PALETTE, envelope, label_colors

if TYPE_CHECKING:  # pragma: no cover
    from .labeler import Labeler

__all__ = ["DatasetOverview", "thumbnail_svg", "label_bars_svg", "summary_html"]

#: Colours of the channel polylines in thumbnails (matplotlib's tab10).
CHANNEL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                  "#7f7f7f", "#bcbd22", "#17becf")
#: Thumbnails drawn at most (the rest are counted); each reads its recording's samples once.
MAX_THUMBNAILS = 120
THUMB_W, THUMB_H = 200, 64


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def thumbnail_svg(values: np.ndarray, *, title: str = "", subtitle: str = "",
                  regions: Sequence[Region] = (), samples: int | None = None,
                  colors: Mapping[str, str] | None = None, width: int = THUMB_W,
                  height: int = THUMB_H) -> str:
    """A small SVG of ``values`` ``(samples, channels)``: one ``<polyline>`` per channel
    (min/max-decimated to ``width``, one scale for all channels), labelled regions as
    tinted bands, ``title`` and ``subtitle`` as text above. Text is XML-escaped.

    ``samples``: the length the regions' indices refer to, when ``values`` is an
    already reduced copy of the recording (default: ``len(values)``)."""
    x = np.asarray(values, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"values must be (samples, channels), got shape {x.shape}")
    head = 30 if subtitle else 16
    plot_h = height
    total_h = head + plot_h
    colors = colors or {}
    n = len(x)
    span_n = samples if samples else n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" '
             f'viewBox="0 0 {width} {total_h}" class="wb-thumb" role="img" '
             f'aria-label="{_esc(title)}">']
    parts.append(f'<text x="2" y="12" font-size="11" font-weight="600" '
                 f'font-family="sans-serif" fill="currentColor">{_esc(title)}</text>')
    if subtitle:
        parts.append(f'<text x="2" y="25" font-size="10" font-family="sans-serif" '
                     f'fill="currentColor" opacity="0.75">{_esc(subtitle)}</text>')
    parts.append(f'<rect x="0.5" y="{head + 0.5}" width="{width - 1}" height="{plot_h - 1}" '
                 'fill="none" stroke="#bbb"/>')
    for r in regions:
        if span_n:
            a, b = r.start / span_n * width, min(r.end, span_n) / span_n * width
            c = colors.get(r.label, "#888")
            parts.append(f'<rect x="{a:.1f}" y="{head}" width="{max(b - a, 0.5):.1f}" '
                         f'height="{plot_h}" fill="{c}" fill-opacity="0.25">'
                         f'<title>{_esc(r.label)}</title></rect>')
    points, bucket = envelope(x, width) if n else (np.zeros((0, x.shape[1]), np.float32), 1)
    finite = points[np.isfinite(points)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = (hi - lo) or 1.0
    at = np.arange(len(points)) * (bucket / 2 if bucket > 1 else 1.0)  # sample index
    xs = at / max(n - 1, 1) * (width - 2) + 1
    for c in range(x.shape[1]):
        ys = head + plot_h - 3 - (points[:, c] - lo) / span * (plot_h - 6)
        ok = np.isfinite(ys)
        coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs[ok], ys[ok]))
        parts.append(f'<polyline points="{coords}" fill="none" stroke-width="1" '
                     f'stroke="{CHANNEL_COLORS[c % len(CHANNEL_COLORS)]}"/>')
    parts.append("</svg>")
    return "".join(parts)


def label_bars_svg(per_label: Mapping[str, Mapping], colors: Mapping[str, str] | None = None,
                   *, width: int = 520, row_h: int = 20) -> str:
    """A horizontal bar chart of seconds per label (``Summary.per_label``), annotated
    with the recordings and share of each. Text is XML-escaped."""
    colors = colors or {}
    labels = list(per_label)
    if not labels:
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="220" height="20" class="wb-bars">'
                '<text x="0" y="14" font-size="12" font-family="sans-serif" '
                'fill="currentColor">no labels yet</text></svg>')
    name_w, note_w = 120, 170
    bar_w = max(40, width - name_w - note_w)
    top = max(float(per_label[lab]["seconds"]) for lab in labels) or 1.0
    h = row_h * len(labels) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
             f'class="wb-bars" font-family="sans-serif" font-size="12">']
    for i, lab in enumerate(labels):
        row = per_label[lab]
        y = 2 + i * row_h
        w = float(row["seconds"]) / top * bar_w
        c = colors.get(lab, LABEL_PALETTE[i % len(LABEL_PALETTE)])
        parts.append(f'<text x="{name_w - 6}" y="{y + row_h * 0.7:.1f}" text-anchor="end" '
                     f'fill="currentColor">{_esc(lab)}</text>')
        parts.append(f'<rect x="{name_w}" y="{y + 3}" width="{max(w, 1):.1f}" '
                     f'height="{row_h - 6}" fill="{c}"><title>{_esc(lab)}</title></rect>')
        note = (f'{float(row["seconds"]):.1f} s · {int(row["recordings"])} rec · '
                f'{float(row["share"]):.0%}')
        parts.append(f'<text x="{name_w + w + 6:.1f}" y="{y + row_h * 0.7:.1f}" '
                     f'fill="currentColor">{_esc(note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def summary_html(summary: Summary, colors: Mapping[str, str] | None = None) -> str:
    """The overview's header: totals, losses and the bar chart (an HTML fragment)."""
    warn = "color:var(--jp-warn-color1,#b26a00);font-weight:600"
    losses = (f'<span style="{warn if summary.interrupted else ""}">'
              f'{summary.interrupted} interrupted</span> · '
              f'<span style="{warn if summary.lost_samples else ""}">'
              f'{summary.lost_samples} samples lost</span>')
    return (f'<div class="wb-overview-summary" style="font-family:var(--jp-ui-font-family,'
            f'sans-serif)"><b>{summary.recordings} recordings</b> · '
            f'{summary.duration_s:.1f} s in total · {summary.unlabelled} unlabelled · {losses}'
            f'<div style="margin-top:6px">{label_bars_svg(summary.per_label, colors)}</div></div>')


class DatasetOverview(widgets.VBox):
    """Counts and seconds per label, losses, and a thumbnail per recording of ``dataset``.

    ``labeler``: a :class:`~workbench.ui.labeler.Labeler`; each thumbnail then gets a
    "Label" button that opens its recording there, and the overview refreshes when
    the labeler changes something.
    """

    def __init__(self, dataset: Dataset, labeler: "Labeler | None" = None, *,
                 max_thumbnails: int = MAX_THUMBNAILS, **kwargs) -> None:
        self.dataset = dataset
        self.labeler = labeler
        self.max_thumbnails = int(max_thumbnails)
        self._envelopes: dict[tuple[str, int], np.ndarray] = {}
        self._cards: dict[tuple, widgets.Widget] = {}
        self.header = widgets.HTML()
        self.grid = widgets.Box(layout=widgets.Layout(display="flex", flex_flow="row wrap"))
        self.more = widgets.HTML()
        super().__init__([self.header, self.grid, self.more], **kwargs)
        self.add_class("wb-overview")
        self._shown: tuple | None = None
        if labeler is not None:
            labeler.observe(lambda _change: self.refresh(force=False),
                            names=["recordings", "regions", "colors"])
        self.refresh()

    @property
    def colors(self) -> dict[str, str]:
        labels = self.labeler.labels if self.labeler is not None else sorted(self.dataset.labels)
        return label_colors(list(labels))

    def refresh(self, force: bool = True) -> None:
        """Re-read the dataset and redraw (thumbnails whose recording did not change are
        kept). ``force=False`` skips the redraw when nothing shown has changed."""
        colors = self.colors
        metas = self.dataset.recordings()
        shown = (tuple(metas), tuple(colors.items()))
        if not force and shown == self._shown:
            return
        self._shown = shown
        summary = summarize(self.dataset)
        shown = metas[: self.max_thumbnails]
        cards = {}
        for meta in shown:
            key = (meta.id, meta.samples, meta.label, meta.regions, meta.interrupted,
                   tuple(colors.get(r.label) for r in meta.regions))
            cards[key] = self._cards.get(key) or self._card(meta, colors)
        self._cards = cards
        live = {(m.id, m.samples) for m in shown}
        self._envelopes = {k: v for k, v in self._envelopes.items() if k in live}
        self.header.value = summary_html(summary, colors)
        self.grid.children = tuple(cards.values())
        rest = len(metas) - len(shown)
        self.more.value = f"<i>… and {rest} more recordings</i>" if rest > 0 else ""

    def thumbnail(self, rec_id: str) -> str:
        """The SVG of one recording's thumbnail, as shown."""
        meta = self.dataset.meta(rec_id)
        return self._svg(meta, self.colors)

    def open_recording(self, rec_id: str) -> None:
        """Open ``rec_id`` in the linked labeler (what a thumbnail's button does)."""
        if self.labeler is None:
            raise RuntimeError("no Labeler is linked: DatasetOverview(ds, labeler=Labeler(ds))")
        self.labeler.open_recording(rec_id)

    def _svg(self, meta, colors) -> str:
        key = (meta.id, meta.samples)
        if key not in self._envelopes:  # a reduced copy draws the same picture
            self._envelopes[key] = envelope(self.dataset.load(meta.id).values, THUMB_W)[0]
        label = meta.label or ", ".join(sorted({r.label for r in meta.regions})) or "no label"
        sub = f"{label} · {meta.duration_s:.1f} s"
        count = len(meta.regions)
        sub += f" · {count} region{'s' if count > 1 else ''}" if count else ""
        sub += " · interrupted" if meta.interrupted else ""
        sub += f" · {meta.lost} lost" if meta.lost else ""
        return thumbnail_svg(self._envelopes[key], title=meta.id, subtitle=sub,
                             regions=meta.regions, samples=meta.samples, colors=colors)

    def _card(self, meta, colors) -> widgets.Widget:
        svg = widgets.HTML(self._svg(meta, colors))
        layout = widgets.Layout(margin="0 10px 10px 0")
        if self.labeler is None:
            return widgets.VBox([svg], layout=layout)
        button = widgets.Button(description="Label", tooltip=f"open {meta.id} in the labeler",
                                icon="tag", layout=widgets.Layout(width="90px"))
        button.on_click(lambda _b, rec_id=meta.id: self.open_recording(rec_id))
        return widgets.VBox([svg, button], layout=layout)
