"""The comparison table: every variant of a model side by side, on one board.

:class:`ComparisonTable` holds the board-independent :class:`~.records.Measurement` of
each variant and the chosen board's :class:`~.records.BoardVerdict` of each (re-evaluated
whenever the board changes; evaluation is cheap and pure). Everything the comparison
widget (:class:`workbench.ui.compare.CompareTable`) shows or does is here, headless::

    table = ComparisonTable(measurements, "pico", reference="float")
    table.sort("accuracy", descending=True)
    table.rows()                      # one dict per variant, in the sort order
    table.pareto("arena_bytes")       # names on the accuracy/arena front, among those that fit
    table.board = "esp32-devkitc"     # re-evaluates fits, latency and energy
    table.to_csv("variants.csv"); table.to_html("variants.html")
    table.figure(x="latency_ms")      # plotly: accuracy against latency

**Pareto front.** ``x`` is minimised (bytes, milliseconds, ...) and ``y`` maximised
(accuracy, agreement). Only rows that fit the board and have both values are candidates, and
never a classifier at chance (accuracy at or below 1 / its classes): a model that guesses is
not a trade-off, however small it is.
Row *a* dominates row *b* when ``a.x <= b.x`` and ``a.y >= b.y`` with at least one strict.
So of two rows with equal ``x`` only the more accurate is on the front; two rows with the
*same* ``(x, y)`` do not dominate each other and are both on it.

**Sorting.** :meth:`ComparisonTable.sort` is stable (rows that compare equal keep the
order they were added in) and unknown values (None) always come last, ascending or not.

Light to import: the standard library and the board catalog; plotly is imported by
:meth:`~ComparisonTable.figure`, pandas by :meth:`~ComparisonTable.to_dataframe`.
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..boards.catalog import Board, get_board, load_catalog
from .boardfit import board_verdict, fmt_bytes
from .records import BoardVerdict, Measurement

__all__ = ["ComparisonTable", "Column", "COLUMNS", "CSV_FIELDS", "SORT_KEYS", "PARETO_X",
           "PARETO_Y", "format_value"]

#: Row keys that are better small: allowed as the ``x`` of a Pareto front or a chart.
PARETO_X = ("flash_bytes", "arena_bytes", "latency_ms", "model_bytes", "energy_mj", "macs",
            "params", "host_latency_ms")
#: Row keys that are better large: allowed as the ``y`` of a Pareto front or a chart.
PARETO_Y = ("accuracy", "agreement")
#: Row keys :meth:`ComparisonTable.sort` accepts.
SORT_KEYS = ("name", "kind", "accuracy", "accuracy_delta", "errors", "agreement", "model_bytes",
             "code_bytes", "flash_bytes", "arena_bytes", "params", "macs", "host_latency_ms",
             "latency_ms", "energy_mj", "size_ratio", "fits", "pareto")
#: The columns of :meth:`ComparisonTable.to_csv`, in order (the keys of each row).
CSV_FIELDS = ("name", "kind", "reference", "accuracy", "accuracy_delta", "errors", "n_test",
              "agreement", "model_bytes", "code_bytes", "flash_bytes", "arena_bytes",
              "size_ratio", "params", "macs", "host_latency_ms", "board", "latency_ms",
              "latency_source", "latency_basis", "energy_mj", "fits", "reasons", "pareto")

#: Axis titles of the chart, and the scale from row units to plotted units.
_AXES = {
    "flash_bytes": ("flash (KiB)", 1 / 1024), "arena_bytes": ("arena (KiB)", 1 / 1024),
    "model_bytes": ("model (KiB)", 1 / 1024), "latency_ms": ("latency (ms)", 1.0),
    "host_latency_ms": ("host latency (ms)", 1.0), "energy_mj": ("energy (mJ)", 1.0),
    "macs": ("MACs", 1.0), "params": ("parameters", 1.0),
    "accuracy": ("accuracy (%)", 100.0), "agreement": ("agreement with reference (%)", 100.0),
}


@dataclass(frozen=True)
class Column:
    """One displayed column: the row key it shows and sorts by, and its header."""

    key: str
    label: str
    #: what a first click on the header does: True sorts best-first for better-large values
    descending_first: bool = False
    #: shown only when the table has a reference
    needs_reference: bool = False
    #: a detail column: its cells carry the class ``wb-secondary``, which the widget folds
    #: away until asked (the exported page shows every column)
    secondary: bool = False
    #: the header's tooltip (default: the label)
    title: str = ""


#: The columns of the HTML table (and the widget), in order. The primary ones fit a
#: notebook's width; the secondary ones (the proxies and the details) are one click away.
COLUMNS = (
    Column("name", "variant"),
    Column("kind", "kind", secondary=True),
    Column("accuracy", "accuracy", descending_first=True, title="test accuracy"),
    Column("accuracy_delta", "Δ vs ref", descending_first=True, needs_reference=True,
           title="accuracy minus the reference's, in percentage points"),
    Column("agreement", "agreement", descending_first=True, secondary=True,
           title="agreement with the reference model's predictions"),
    Column("errors", "errors", title="wrong test windows / test windows"),
    Column("model_bytes", "model", secondary=True, title="the .tflite file"),
    Column("flash_bytes", "flash", title="model + the kernel code it needs"),
    Column("arena_bytes", "arena", title="the smallest tensor arena TFLite Micro ran it in"),
    Column("params", "params", secondary=True, title="parameters (weights and biases)"),
    Column("macs", "MACs", secondary=True, title="multiply-accumulates per inference"),
    Column("latency_ms", "latency", title="on the board; ~ marks an estimate"),
    Column("energy_mj", "energy", title="per inference, on the board; an estimate"),
    Column("fits", "fits", descending_first=True, title="fits the board"),
)

#: The stylesheet of the HTML table (export and widget); readable on light and dark themes.
TABLE_CSS = """
.wb-compare { border-collapse: collapse; font-family: var(--jp-ui-font-family, sans-serif);
  font-size: 13px; color: inherit; }
.wb-compare caption { text-align: left; padding: 4px 0; font-size: 12px; opacity: 0.8; }
.wb-compare th, .wb-compare td { padding: 3px 6px; border-bottom: 1px solid rgba(128,128,128,0.3);
  text-align: right; white-space: nowrap; }
.wb-compare th { user-select: none; border-bottom: 2px solid rgba(128,128,128,0.6);
  white-space: normal; vertical-align: bottom; }
.wb-compare th.wb-sortable { cursor: pointer; }
.wb-compare th.wb-sorted { text-decoration: underline; }
.wb-compare td.wb-text, .wb-compare th.wb-text { text-align: left; }
.wb-compare tr.wb-pareto td { background: rgba(46, 160, 67, 0.18); font-weight: 600; }
.wb-compare tr.wb-nofit td, .wb-compare td.wb-nofit { color: #8a8a8a;
  background: rgba(128, 128, 128, 0.08); }
.wb-compare .wb-why { white-space: normal; min-width: 9em; max-width: 15em; font-size: 11px;
  font-weight: normal; font-style: italic; }
.wb-compare .wb-star { color: #2ea043; }
.wb-compare .wb-ref { font-size: 11px; border: 1px solid currentColor; border-radius: 3px;
  padding: 0 3px; margin-left: 4px; opacity: 0.7; }
"""


def _si(n: float | None) -> str:
    if n is None:
        return "–"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)}"


def _trim(number: str) -> str:
    """``"100.0" -> "100"``: a whole number loses its ``.0``."""
    return number[:-2] if number.endswith(".0") else number


def format_value(key: str, row: Mapping[str, Any]) -> str:
    """The text a cell shows for ``row[key]`` ("–" when unknown), compact so that the
    table fits a notebook: ``"97.5 %"``, ``"100 %"``, ``"−2.5 pt"``, ``"12.4 µJ"``."""
    v = row.get(key)
    if key == "fits":
        return "yes" if v else "no: " + "; ".join(row.get("reasons") or ["?"])
    if v is None:
        return "–"
    if key in ("accuracy", "agreement"):
        return _trim(f"{v * 100:.1f}") + " %"
    if key == "accuracy_delta":
        points = round(v * 100, 1)
        return "0 pt" if points == 0 else _trim(f"{points:+.1f}").replace("-", "−") + " pt"
    if key == "errors":
        n = row.get("n_test")
        return f"{v}/{n}" if n else str(v)
    if key.endswith("_bytes"):
        return fmt_bytes(v)
    if key in ("params", "macs"):
        return _si(v)
    if key in ("latency_ms", "host_latency_ms"):
        text = f"{v:.3g} ms" if v < 100 else f"{v:.0f} ms"
        return ("~" + text) if row.get("latency_source") == "estimate" and key == "latency_ms" \
            else text
    if key == "energy_mj":
        return f"{v:.3g} mJ" if v >= 1 or v == 0 else f"{v * 1000:.3g} µJ"
    if key == "size_ratio":
        return f"{v:.2f}×"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def _known(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _at_chance(m: Measurement) -> bool:
    """A classifier no better than guessing: accuracy at or below 1 / classes (the class
    count from its confusion matrix). It never belongs on a Pareto front, however small."""
    n = len(m.confusion)
    return m.accuracy is not None and n > 1 and m.accuracy <= 1.0 / n + 1e-9


def pareto_front(points: Iterable[tuple[str, float, float]]) -> list[str]:
    """Names of the non-dominated ``(name, x, y)`` points, x minimised and y maximised,
    ordered by x ascending (then y descending, then input order). Equal points are all kept."""
    pts = list(points)
    front = []
    for i, (name, x, y) in enumerate(pts):
        dominated = any(x2 <= x and y2 >= y and (x2 < x or y2 > y)
                        for j, (_, x2, y2) in enumerate(pts) if j != i)
        if not dominated:
            front.append((x, -y, i, name))
    return [name for *_, name in sorted(front)]


#: The chart's label column: font size, line step and the gap between plot and names (px).
_LABEL_FONT, _LABEL_STEP, _LABEL_GAP = 11, 15, 12
#: Pixels per character assumed for the label column's width (generous for sans-serif 11 px).
_LABEL_CHAR_PX = 7.0
#: Longest name written in full in the label column (longer ones end in "…"; hover has all).
_LABEL_CHARS = 28
#: The chart's frame: height of the plot area at least, and its margins (px).
_PLOT_MIN_HEIGHT, _MARGIN_T, _MARGIN_B, _MARGIN_L, _LEGEND_BELOW = 250, 50, 92, 60, 50


def _label_column(labels: list[tuple[float, float, str, str]]) -> dict[str, Any]:
    """Where each point's name goes: a column right of the plot, no two names closer than
    one line (``_LABEL_STEP`` px), each as near its point's height as the others allow.

    ``labels``: ``(x, y, text, colour)`` in plotted units (``x`` NaN: a name for a line,
    drawn without a leader line). Returns the figure's height and margins, the axis ranges
    (fixed, so that data and pixels map the same way everywhere), the annotations and the
    legend's ``y`` (paper units, under the x axis title). Pure arithmetic: the plot's
    *height* in pixels is fixed here, so the spacing holds at any width.
    """
    n = len(labels)
    plot_h = max(_PLOT_MIN_HEIGHT, (n + 1) * _LABEL_STEP)
    texts = [t if len(t) <= _LABEL_CHARS else t[:_LABEL_CHARS - 1] + "…" for *_, t, _c in labels]
    width = max((len(t) for t in texts), default=0)
    margin = {"l": _MARGIN_L, "r": int(_LABEL_GAP + width * _LABEL_CHAR_PX + 8) if n else 20,
              "t": _MARGIN_T, "b": _MARGIN_B}
    out = {"height": plot_h + _MARGIN_T + _MARGIN_B, "margin": margin, "annotations": [],
           "x_range": None, "y_range": None, "legend_y": -_LEGEND_BELOW / plot_h}
    xs = [lx for lx, *_ in labels if not math.isnan(lx)]
    ys = [ly for _lx, ly, *_ in labels]
    if not xs:
        return out
    x_lo, x_hi = min(xs), max(xs)
    x_pad = (x_hi - x_lo) * 0.06 or max(abs(x_hi) * 0.1, 1.0)
    y_lo, y_hi = min(ys), max(ys)
    y_pad = max((y_hi - y_lo) * 0.08, 1.0)
    x_range = [x_lo - x_pad, x_hi + x_pad]
    y_range = [y_lo - y_pad, y_hi + y_pad]
    per_px = (y_range[1] - y_range[0]) / plot_h

    # top to bottom by height (ties: the point furthest right first, its line the shortest);
    # each name at its point's height unless that is within a line of the name above it
    order = sorted(range(n), key=lambda i: (-ys[i], -(labels[i][0] if not math.isnan(
        labels[i][0]) else math.inf)))
    target = [(ys[i] - y_range[0]) / per_px for i in order]          # px from the bottom
    placed: list[float] = []
    for px in target:
        placed.append(min(px, placed[-1] - _LABEL_STEP) if placed else px)
    half = _LABEL_STEP / 2
    low = placed[-1] - half                    # below the plot: lift everything
    if low < 0:
        placed = [p - low for p in placed]
    high = placed[0] + half - plot_h           # above the plot: lower, the bottom stays in
    if high > 0:
        placed = [p - high for p in placed]
    for i, px in zip(order, placed):
        lx, ly, _text, colour = labels[i]
        at = y_range[0] + px * per_px
        note = {"text": texts[i], "font": {"size": _LABEL_FONT, "color": colour},
                "xanchor": "left", "yanchor": "middle"}
        if math.isnan(lx):   # a line's name: at the right edge, no leader line
            note.update(x=x_range[1], y=at, xref="x", yref="y", showarrow=False,
                        xshift=_LABEL_GAP)
        else:
            note.update(x=lx, y=ly, xref="x", yref="y", ax=x_range[1], ay=at, axref="x",
                        ayref="y", showarrow=True, arrowhead=0, arrowwidth=1,
                        arrowcolor="rgba(128, 128, 128, 0.55)", standoff=6)
        out["annotations"].append(note)
    out["x_range"], out["y_range"] = x_range, y_range
    return out


class ComparisonTable:
    """Variants side by side on one board: rows, sorting, Pareto front, exports, a chart.

    ``measurements``: :class:`~.records.Measurement` objects with distinct names.
    ``board``: a catalog board id or a :class:`~workbench.boards.catalog.Board`.
    ``reference``: the variant the others are compared with (usually the float model),
    by name or as a Measurement (one not among the rows is used for the comparison only);
    rows then carry ``accuracy_delta`` (accuracy minus the reference's, as a fraction)
    and ``size_ratio`` (model bytes over the reference's).
    ``axis``: the ``x`` of the Pareto front flagged in ``rows()[i]["pareto"]`` and of
    :meth:`figure` (one of :data:`PARETO_X`). ``catalog``: boards by id, for custom catalogs.

    Changes (board, axis, sort order, added rows) are announced to callbacks registered
    with :meth:`observe`; this is how a widget keeps up with the Python API.
    """

    def __init__(self, measurements: Iterable[Measurement], board: str | Board, *,
                 reference: str | Measurement | None = None, axis: str = "flash_bytes",
                 catalog: Mapping[str, Board] | None = None) -> None:
        self._catalog = catalog
        self._measurements: list[Measurement] = []
        self._verdicts: dict[str, BoardVerdict] = {}
        self._observers: list[Callable[[str], None]] = []
        self._sort_key: str | None = None
        self._descending = False
        self._axis = self._check_x(axis)
        self._board = self._resolve_board(board)
        for m in measurements:
            self._append(m)
        self._reference: Measurement | None = None
        self.reference = reference

    # ------------------------------------------------------------------ state
    @property
    def board(self) -> Board:
        """The board the verdicts are for; set it (id or Board) to re-evaluate every row."""
        return self._board

    @board.setter
    def board(self, board: str | Board) -> None:
        new = self._resolve_board(board)
        if new == self._board:
            return
        self._board = new
        self._verdicts = {m.name: board_verdict(m, new) for m in self._measurements}
        self._notify("board")

    @property
    def axis(self) -> str:
        """The ``x`` of the Pareto front in :meth:`rows` and of :meth:`figure`."""
        return self._axis

    @axis.setter
    def axis(self, axis: str) -> None:
        axis = self._check_x(axis)
        if axis != self._axis:
            self._axis = axis
            self._notify("axis")

    @property
    def reference(self) -> Measurement | None:
        """The variant compared against (None: no ``accuracy_delta``/``size_ratio``)."""
        return self._reference

    @reference.setter
    def reference(self, reference: str | Measurement | None) -> None:
        if isinstance(reference, str):
            reference = self.measurement(reference)
        elif reference is not None and not isinstance(reference, Measurement):
            raise TypeError(f"reference must be a variant name or a Measurement, "
                            f"not {type(reference).__name__}")
        self._reference = reference
        self._notify("reference")

    @property
    def catalog(self) -> dict[str, Board]:
        """The boards :attr:`board` may be set to by id (the packaged catalog by default)."""
        return load_catalog() if self._catalog is None else dict(self._catalog)

    @property
    def measurements(self) -> tuple[Measurement, ...]:
        """The variants, in the order they were added."""
        return tuple(self._measurements)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self._measurements]

    @property
    def verdicts(self) -> dict[str, BoardVerdict]:
        """The current board's verdict on each variant, by name (a copy)."""
        return dict(self._verdicts)

    @property
    def sort_key(self) -> str | None:
        """The key rows are sorted by (None: the order they were added)."""
        return self._sort_key

    @property
    def descending(self) -> bool:
        return self._descending

    def __len__(self) -> int:
        return len(self._measurements)

    def measurement(self, name: str) -> Measurement:
        """The variant with this name; KeyError listing the names if none."""
        for m in self._measurements:
            if m.name == name:
                return m
        raise KeyError(f"no variant named {name!r}; variants: "
                       f"{', '.join(map(repr, self.names)) or 'none'}")

    def add(self, measurement: Measurement) -> None:
        """Add one variant (its name must be new) and evaluate it on the board."""
        self._append(measurement)
        self._notify("rows")

    def observe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(what)`` after each change; ``what`` is "board", "axis",
        "sort", "rows" or "reference"."""
        if callback not in self._observers:
            self._observers.append(callback)

    def unobserve(self, callback: Callable[[str], None]) -> None:
        if callback in self._observers:
            self._observers.remove(callback)

    # ------------------------------------------------------------------ rows
    def rows(self, axis: str | None = None) -> list[dict[str, Any]]:
        """One dict per variant, in the sort order (keys: :data:`CSV_FIELDS`).

        ``pareto`` says whether the row is on the front of accuracy against ``axis``
        (default :attr:`axis`); ``reasons`` is a list of why it does not fit."""
        rows = self._unsorted_rows(axis)
        if self._sort_key is None:
            return rows
        key = self._sort_key
        known = [r for r in rows if _known(r[key])]
        unknown = [r for r in rows if not _known(r[key])]

        def value(r):
            v = r[key]
            return v.casefold() if isinstance(v, str) else v

        return sorted(known, key=value, reverse=self._descending) + unknown

    def row(self, name: str) -> dict[str, Any]:
        """The row of one variant."""
        for r in self._unsorted_rows(None):
            if r["name"] == name:
                return r
        self.measurement(name)  # raises with the list of names
        raise AssertionError("unreachable")

    def sort(self, key: str | None, descending: bool = False) -> ComparisonTable:
        """Sort :meth:`rows` by ``key`` (one of :data:`SORT_KEYS`; None: the order added).

        Stable; unknown values last in both directions. Returns the table, so
        ``table.sort("accuracy", descending=True).rows()`` reads naturally."""
        if key is not None and key not in SORT_KEYS:
            raise ValueError(f"cannot sort by {key!r}; valid keys: {', '.join(SORT_KEYS)}")
        descending = bool(descending)
        if (key, descending) != (self._sort_key, self._descending):
            self._sort_key, self._descending = key, descending
            self._notify("sort")
        return self

    def pareto(self, x: str | None = None, y: str = "accuracy") -> list[str]:
        """Names of the variants on the Pareto front of ``y`` (maximised) against ``x``
        (minimised; default :attr:`axis`), among those that fit the board and have both
        values; ordered by ``x``. See the module docstring for how ties are treated."""
        x = self._check_x(self._axis if x is None else x)
        if y not in PARETO_Y:
            raise ValueError(f"y must be one of {', '.join(PARETO_Y)} (higher is better), "
                             f"not {y!r}")
        return self._front(self._unsorted_rows(x, flag=False), x, y)

    # ------------------------------------------------------------------ exports
    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """The rows as CSV text (header :data:`CSV_FIELDS`; booleans ``true``/``false``,
        unknown values empty, ``reasons`` joined with "; "). Also written to ``path``
        (UTF-8) when given."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in self.rows():
            out = {}
            for k in CSV_FIELDS:
                v = r[k]
                if isinstance(v, bool):
                    v = "true" if v else "false"
                elif isinstance(v, list):
                    v = "; ".join(v)
                elif v is None:
                    v = ""
                out[k] = v
            writer.writerow(out)
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        return text

    def html_table(self, *, sortable: bool = False) -> str:
        """The table as an HTML ``<table class="wb-compare">`` fragment (no stylesheet;
        see :data:`TABLE_CSS`): Pareto rows have class ``wb-pareto`` and a ★, rows that do
        not fit have class ``wb-nofit`` and their reasons (``<div class="wb-why">``) under
        their name. Rows carry ``data-name``; headers carry
        ``data-key`` (and, when ``sortable``, the class ``wb-sortable``). The cells of the
        secondary columns (:attr:`Column.secondary`) have the class ``wb-secondary``; a
        page may hide them (the widget folds them away until asked)."""
        rows = self.rows()
        cols = [c for c in COLUMNS if not c.needs_reference or self._reference is not None]
        e = html.escape
        out = ['<table class="wb-compare">',
               f"<caption>{e(self._caption())}</caption>", "<thead><tr>"]
        for c in cols:
            classes = ["wb-sortable"] if sortable else []
            if c.key in ("name", "kind", "fits"):
                classes.append("wb-text")
            if c.secondary:
                classes.append("wb-secondary")
            aria = ""
            label = c.label
            if c.key == self._sort_key:
                classes.append("wb-sorted")
                aria = f' aria-sort="{"descending" if self._descending else "ascending"}"'
                label += " ▼" if self._descending else " ▲"
            out.append(f'<th class="{" ".join(classes)}" data-key="{c.key}" '
                       f'data-descending-first="{str(c.descending_first).lower()}"{aria} '
                       f'title="{e(c.title or c.label)}: click to sort">{e(label)}</th>')
        out.append("</tr></thead><tbody>")
        for r in rows:
            classes = []
            if r["pareto"]:
                classes.append("wb-pareto")
            if not r["fits"]:
                classes.append("wb-nofit")
            title = ("does not fit: " + "; ".join(r["reasons"])) if not r["fits"] else (
                "Pareto-optimal" if r["pareto"] else "")
            out.append(f'<tr class="{" ".join(classes)}" data-name="{e(r["name"])}" '
                       f'title="{e(title)}">')
            for c in cols:
                text = e(format_value(c.key, r))
                if c.key == "name":
                    star = '<span class="wb-star">★ </span>' if r["pareto"] else ""
                    ref = '<span class="wb-ref">ref</span>' if r["reference"] else ""
                    why = "".join(f'<div class="wb-why">{e(reason)}</div>'
                                  for reason in r["reasons"])
                    out.append(f'<td class="wb-text">{star}{text}{ref}{why}</td>')
                elif c.key == "kind":
                    out.append(f'<td class="wb-text wb-secondary">{text}</td>')
                elif c.secondary:
                    out.append(f'<td class="wb-secondary">{text}</td>')
                elif c.key == "fits":  # the reasons are under the name, in sight
                    out.append(f'<td class="wb-text">{"yes" if r["fits"] else "no"}</td>')
                elif c.key == "latency_ms" and r["latency_basis"]:
                    out.append(f'<td title="{e(r["latency_source"])}: '
                               f'{e(r["latency_basis"])}">{text}</td>')
                else:
                    out.append(f"<td>{text}</td>")
            out.append("</tr>")
        out.append("</tbody></table>")
        return "\n".join(out)

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """A self-contained HTML page (inline stylesheet, no scripts) with the table:
        Pareto rows highlighted with a ★, rows that do not fit greyed with the reason.
        Also written to ``path`` (UTF-8) when given."""
        e = html.escape
        b = self._board
        front = self.pareto()
        label = _AXES[self._axis][0].split(" (")[0]
        page = "\n".join([
            "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>Variants on {e(b.name)}</title>",
            f"<style>body {{ font-family: sans-serif; margin: 1.5em; }}{TABLE_CSS}</style>",
            "</head><body>",
            f"<h1>Variants on {e(b.name)}</h1>",
            f"<p>{e(b.summary())}</p>",
            f"<p>★ Pareto-optimal (accuracy against {e(label)}, among the variants that fit): "
            f"{e(', '.join(front) or 'none')}. Greyed rows do not fit the board; the reason "
            "is under the name. Latencies marked ~ are estimates.</p>",
            self.html_table(),
            "</body></html>", ""])
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(page)
        return page

    def refresh(self) -> ComparisonTable:
        """Re-evaluate every row on the current board, e.g. after
        :func:`~workbench.optimize.measuring.measure_on_device` added what a board reported
        (observers are told ``"rows"``)."""
        self._verdicts = {m.name: board_verdict(m, self._board) for m in self._measurements}
        self._notify("rows")
        return self

    def across_boards(self, kind: str | None = "mcu") -> dict[str, dict[str, BoardVerdict]]:
        """Every variant on every catalog board: ``{variant: {board id: BoardVerdict}}``.

        ``kind`` keeps the boards of that kind (``"mcu"``, ``"linux"``; None: all). The
        table's own board is unchanged; this is :func:`~.boardfit.board_verdict` for each pair.
        """
        boards = [b for b in self.catalog.values() if kind is None or b.kind == kind]
        return {m.name: {b.id: board_verdict(m, b) for b in boards} for m in self._measurements}

    def across_boards_html(self, kind: str | None = "mcu") -> str:
        """:meth:`across_boards` as an HTML table: estimated (~) or measured latency per
        variant and board; cells of boards the variant does not fit are greyed, with the
        reason in their tooltip."""
        e = html.escape
        grid = self.across_boards(kind)
        boards = [b for b in self.catalog.values() if kind is None or b.kind == kind]
        head = "".join(f'<th title="{e(b.name)}, {e(b.core)} at {b.clock_hz / 1e6:g} MHz">'
                       f"{e(b.id)}</th>" for b in boards)
        body = []
        for name, verdicts in grid.items():
            cells = []
            for b in boards:
                v = verdicts[b.id]
                text = "?" if v.latency_ms is None else (
                    f"{'' if v.latency_source == 'measured' else '~'}{v.latency_ms:.2f} ms")
                tip = "; ".join(v.reasons) if v.reasons else v.basis
                cls = "" if v.fits else ' class="wb-nofit"'
                cells.append(f'<td{cls} title="{e(tip)}">{e(text)}</td>')
            body.append(f'<tr><th class="wb-text">{e(name)}</th>{"".join(cells)}</tr>')
        return (f'<style>{TABLE_CSS}</style><table class="wb-compare">'
                f'<thead><tr><th>variant</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')

    def to_dataframe(self):
        """The rows as a pandas DataFrame (indexed by name); needs pandas."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is usually there
            raise ImportError("to_dataframe() needs pandas (pip install pandas); "
                              "to_csv() does not") from exc
        return pd.DataFrame(self.rows(), columns=list(CSV_FIELDS)).set_index("name")

    def figure(self, x: str | None = None, y: str = "accuracy"):
        """A plotly Figure of ``y`` against ``x`` (default :attr:`axis`): one point per
        variant with both values; Pareto-optimal points (green) joined by the front,
        others that fit (blue), those that do not fit (grey ×); hovering shows the name,
        the values and why a variant does not fit. Variants left out are counted in
        the title.

        Labels never cover each other, however close the points: each variant's name is
        written in a column right of the plot, at its point's height where there is room
        (moved up or down by whole lines where there is not; the figure grows taller when
        the names need it), with a thin line to its point. The legend sits under the x
        axis. The reference (a dashed line) is named in the same column."""
        import plotly.graph_objects as go

        x = self._check_x(self._axis if x is None else x)
        if y not in PARETO_Y:
            raise ValueError(f"y must be one of {', '.join(PARETO_Y)}, not {y!r}")
        rows = self._unsorted_rows(x)
        xt, xs = _AXES[x]
        yt, ys = _AXES[y]
        shown = [r for r in rows if _known(r[x]) and _known(r[y])]
        groups = (("Pareto-optimal", lambda r: r["fits"] and r["pareto"],
                   {"color": "#2ea043", "size": 13, "symbol": "star"}),
                  ("fits", lambda r: r["fits"] and not r["pareto"],
                   {"color": "#1f77b4", "size": 10, "symbol": "circle"}),
                  ("does not fit", lambda r: not r["fits"],
                   {"color": "#9e9e9e", "size": 10, "symbol": "x-thin-open",
                    "line": {"width": 2, "color": "#9e9e9e"}}))
        fig = go.Figure()
        front = [r for name in self._front(rows, x, y) for r in rows if r["name"] == name]
        if front:
            fig.add_trace(go.Scatter(
                x=[r[x] * xs for r in front], y=[r[y] * ys for r in front], mode="lines",
                line={"color": "#2ea043", "width": 1.5, "dash": "dot", "shape": "hv"},
                name="Pareto front", hoverinfo="skip"))
        labels: list[tuple[float, float, str, str]] = []   # (x, y, text, colour) per point
        for label, pick, marker in groups:
            pts = [r for r in shown if pick(r)]
            if not pts:
                continue
            fig.add_trace(go.Scatter(
                x=[r[x] * xs for r in pts], y=[r[y] * ys for r in pts], mode="markers",
                text=[r["name"] for r in pts], marker=marker, name=label, cliponaxis=False,
                hovertext=[self._hover(r, x, y) for r in pts],
                hovertemplate="%{hovertext}<extra></extra>"))
            labels += [(r[x] * xs, r[y] * ys, r["name"] + (" · reference" if r["reference"]
                                                            else ""), marker["color"])
                       for r in pts]
        ref = self._reference
        ref_y = getattr(ref, y, None) if ref is not None else None
        if _known(ref_y):
            fig.add_hline(y=ref_y * ys, line_dash="dash", line_color="#888", line_width=1)
            if not any(r["reference"] for r in shown):
                labels.append((math.nan, ref_y * ys, f"reference: {ref.name}", "#888888"))
        left_out = len(rows) - len(shown)
        title = f"{yt.split(' (')[0]} against {xt.split(' (')[0]} on {self._board.name}"
        if left_out:
            title += f" ({left_out} not shown: {xt.split(' (')[0]} or {y} unknown)"
        layout = _label_column(labels)
        fig.update_layout(title={"text": title, "font": {"size": 14}}, xaxis_title=xt,
                          yaxis_title=yt, height=layout["height"], hovermode="closest",
                          margin=layout["margin"], annotations=layout["annotations"],
                          legend={"orientation": "h", "x": 0, "xanchor": "left",
                                  "y": layout["legend_y"], "yanchor": "top"})
        if layout["x_range"]:
            fig.update_xaxes(range=layout["x_range"])
            fig.update_yaxes(range=layout["y_range"])
        return fig

    # ------------------------------------------------------------------ internals
    def _resolve_board(self, board: str | Board) -> Board:
        if isinstance(board, Board):
            return board
        if not isinstance(board, str):
            raise TypeError(f"board must be a catalog id or a Board, not {type(board).__name__}")
        return get_board(board, self._catalog)  # UnknownBoardError lists the valid ids

    @staticmethod
    def _check_x(x: str) -> str:
        if x not in PARETO_X:
            raise ValueError(f"x must be one of {', '.join(PARETO_X)} (lower is better), "
                             f"not {x!r}")
        return x

    def _append(self, m: Measurement) -> None:
        if not isinstance(m, Measurement):
            raise TypeError(f"expected a Measurement, got {type(m).__name__}")
        if any(m.name == other.name for other in self._measurements):
            raise ValueError(f"a variant named {m.name!r} is already in the table; "
                             "give each variant its own name")
        self._measurements.append(m)
        self._verdicts[m.name] = board_verdict(m, self._board)

    def _notify(self, what: str) -> None:
        for callback in list(self._observers):
            callback(what)

    def _unsorted_rows(self, axis: str | None, flag: bool = True) -> list[dict[str, Any]]:
        ref = self._reference
        rows = []
        for m in self._measurements:
            v = self._verdicts[m.name]
            delta = ratio = None
            if ref is not None:
                if m.accuracy is not None and ref.accuracy is not None:
                    delta = m.accuracy - ref.accuracy
                if ref.model_bytes:
                    ratio = m.model_bytes / ref.model_bytes
            rows.append({
                "name": m.name, "kind": m.kind, "reference": ref is not None and m is ref,
                "accuracy": m.accuracy, "accuracy_delta": delta, "errors": m.errors,
                "n_test": m.n_test, "agreement": m.agreement, "model_bytes": m.model_bytes,
                "code_bytes": m.code_bytes, "flash_bytes": m.flash_bytes,
                "arena_bytes": m.arena_bytes, "size_ratio": ratio, "params": m.params,
                "macs": m.macs, "host_latency_ms": m.host_latency_ms, "board": v.board_id,
                "latency_ms": v.latency_ms, "latency_source": v.latency_source,
                "latency_basis": v.basis, "energy_mj": v.energy_mj, "fits": v.fits,
                "reasons": list(v.reasons), "pareto": False})
        if flag:
            on = set(self._front(rows, self._axis if axis is None else axis, "accuracy"))
            for r in rows:
                r["pareto"] = r["name"] in on
        return rows

    def _front(self, rows: list[dict[str, Any]], x: str, y: str) -> list[str]:
        at_chance = {m.name for m in self._measurements if _at_chance(m)}
        return pareto_front((r["name"], r[x], r[y]) for r in rows
                            if r["fits"] and _known(r[x]) and _known(r[y])
                            and r["name"] not in at_chance)

    def _caption(self) -> str:
        b = self._board
        n_fit = sum(v.fits for v in self._verdicts.values())
        return (f"{len(self)} variants on {b.name} ({b.id}): {n_fit} fit; "
                f"★ Pareto-optimal in accuracy against "
                f"{_AXES[self._axis][0].split(' (')[0]}")

    def _hover(self, r: dict[str, Any], x: str, y: str) -> str:
        e = html.escape
        lines = [f"<b>{e(r['name'])}</b> ({e(r['kind'])})", f"{y}: {e(format_value(y, r))}",
                 f"{x.replace('_', ' ')}: {e(format_value(x, r))}"]
        if r["fits"]:
            front = " · Pareto-optimal" if r["pareto"] else ""
            lines.append(f"fits {e(self._board.id)}{front}")
        else:
            lines.append("does not fit " + e(self._board.id) + ":")
            lines.extend("  " + e(reason) for reason in r["reasons"])
        return "<br>".join(lines)

    def __repr__(self) -> str:
        return (f"<ComparisonTable {len(self)} variants on {self._board.id!r}, "
                f"{sum(v.fits for v in self._verdicts.values())} fit>")
