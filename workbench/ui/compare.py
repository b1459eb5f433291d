"""The comparison widget: the variants of a model side by side, on a board you choose.

``CompareTable`` shows a :class:`~workbench.optimize.table.ComparisonTable` and drives it;
it holds no logic of its own::

    from workbench.optimize.table import ComparisonTable
    from workbench.ui import CompareTable

    table = ComparisonTable(measurements, "pico", reference="float")
    CompareTable(table, folder="reports")     # or CompareTable(measurements, "pico")

* the table (an anywidget showing :meth:`ComparisonTable.html_table`): click a header to
  sort (again to reverse); Pareto-optimal rows are highlighted with a ★, rows that do not
  fit the board are greyed with the reason under their name. It fits a notebook's width:
  the secondary columns (:attr:`~workbench.optimize.table.Column.secondary`: kind,
  agreement, model, params, MACs) are folded away behind a button above the table
  (``widget.view.all_columns = True`` shows them from code);
* a board menu (every catalog board): choosing one sets ``table.board``, which
  re-evaluates fits, latency and energy, and everything is redrawn;
* an axis menu (flash, arena, latency): the ``x`` of the chart and of the Pareto front;
* the chart, :meth:`ComparisonTable.figure` drawn in an Output widget as plotly's own
  mimetype (so it shows in JupyterLab and in Voila, which renders widget state);
* Export CSV / Export HTML: :meth:`ComparisonTable.to_csv` / ``to_html`` into ``folder``,
  with a status line saying where (or what went wrong);
* with ``on_deploy=``, a Deploy button in every row that calls ``on_deploy(row_name)``
  (:meth:`CompareTable.deploy` does the same from code), for example to gate and flash that
  row with a :class:`~workbench.ui.FlashPanel`::

      panel = FlashPanel(table, variants=variants)
      CompareTable(table, on_deploy=panel.deploy)          # the row, gated and flashed

Changes made through the Python API (``table.board = ...``, ``table.sort(...)``,
``table.add(...)``) show in the widget too: it observes the table.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import anywidget
import ipywidgets as w
import traitlets as t

from workbench.boards.catalog import Board
from workbench.optimize.records import Measurement
from workbench.optimize.table import TABLE_CSS, ComparisonTable

from .figures import show_figure

__all__ = ["CompareTable", "AXES"]

#: The chart axes offered in the widget: (label, row key).
AXES = (("flash", "flash_bytes"), ("arena", "arena_bytes"), ("latency", "latency_ms"))
#: Board used when the widget is given bare measurements and no board.
DEFAULT_BOARD = "nano33ble"

_VIEW_CSS = TABLE_CSS + """
.wb-compare-view { overflow-x: auto; max-width: 100%; }
.wb-compare-view.wb-compact .wb-secondary { display: none; }
.wb-compare-view th.wb-sortable:hover { background: rgba(128, 128, 128, 0.15); }
.wb-compare-view button.wb-row-action { cursor: pointer; padding: 1px 8px; }
.wb-compare-view .wb-columns { display: flex; justify-content: flex-end; }
.wb-compare-view button.wb-columns-toggle { cursor: pointer; font-size: 11px; padding: 1px 6px;
  border: 1px solid rgba(128, 128, 128, 0.5); border-radius: 3px; background: transparent;
  color: inherit; opacity: 0.85; }
"""


class _TableView(anywidget.AnyWidget):
    """The table itself: HTML from Python in; header clicks out (traits) and row-button
    clicks out (a custom message ``{"event": "row_action", "name": row}``)."""

    _esm = Path(__file__).with_name("compare.js")
    _css = _VIEW_CSS
    html = t.Unicode("", help="the table as HTML (ComparisonTable.html_table)").tag(sync=True)
    sort_key = t.Unicode("", help="the row key sorted by; empty: the order added").tag(sync=True)
    descending = t.Bool(False, help="sorted largest first").tag(sync=True)
    row_action = t.Unicode("", help="label of a button added to every row; empty: none") \
        .tag(sync=True)
    all_columns = t.Bool(False, help="show the secondary columns (kind, agreement, model, "
                         "params, MACs) too; False folds them away so the table fits a "
                         "notebook's width").tag(sync=True)


class CompareTable(w.VBox):
    """Sortable comparison table, board and axis menus, chart and exports over a
    :class:`~workbench.optimize.table.ComparisonTable`.

    ``table``: a ComparisonTable, or Measurements to build one from on ``board``
    (default ``DEFAULT_BOARD``). ``board`` given with a table sets the table's board.
    ``folder``: where the export buttons write ``<stem>.csv`` and ``<stem>.html``
    (created when needed; default the current folder).
    ``on_deploy``: called with a row's name when that row's Deploy button is pressed
    (None: no Deploy buttons); what it raises is shown in the status line. It runs in the
    kernel's message handler, so it should start long work in the background and return,
    as :meth:`FlashPanel.deploy <workbench.ui.FlashPanel.deploy>` does.
    """

    def __init__(self, table: ComparisonTable | Sequence[Measurement],
                 board: str | Board | None = None, *, folder: str | os.PathLike[str] = ".",
                 stem: str = "comparison",
                 on_deploy: Callable[[str], object] | None = None) -> None:
        if not isinstance(table, ComparisonTable):
            table = ComparisonTable(table, board or DEFAULT_BOARD)
        elif board is not None:
            table.board = board
        self.table = table
        self.folder = Path(folder)
        self.stem = stem
        self.figure = None
        """The chart as last drawn (a plotly Figure)."""
        self._syncing = False

        self._boards: dict[str, Board] = dict(table.catalog)
        self._boards.setdefault(table.board.id, table.board)
        self.board = w.Dropdown(
            options=[(f"{b.name} ({b.id})", b.id) for b in self._boards.values()],
            value=table.board.id, description="Board", layout=w.Layout(width="340px"))
        axes = list(AXES)
        if table.axis not in [key for _, key in axes]:
            axes.append((table.axis.replace("_", " "), table.axis))
        self.axis = w.Dropdown(options=axes, value=table.axis, description="Chart x",
                               layout=w.Layout(width="200px"))
        self.csv_button = w.Button(description="Export CSV", icon="download",
                                   tooltip=f"write {self.folder / (stem + '.csv')}")
        self.html_button = w.Button(description="Export HTML", icon="download",
                                    tooltip=f"write {self.folder / (stem + '.html')}")
        self.on_deploy = on_deploy
        self.summary = w.HTML()
        self.status = w.HTML()
        self.view = _TableView(row_action="Deploy" if on_deploy else "")
        self.chart = w.Output()

        self.board.observe(self._on_board, names="value")
        self.axis.observe(self._on_axis, names="value")
        self.view.observe(self._on_sort, names=["sort_key", "descending"])
        self.csv_button.on_click(lambda _: self.export_csv())
        self.html_button.on_click(lambda _: self.export_html())
        self.view.on_msg(self._on_view_message)
        table.observe(self._on_table)

        super().__init__([w.HBox([self.board, self.axis, self.csv_button, self.html_button]),
                          self.summary, self.view, self.chart, self.status])
        self.add_class("wb-compare-widget")
        self.refresh()

    # ------------------------------------------------------------ what the buttons do
    def export_csv(self) -> Path | None:
        """Write the table as CSV into ``folder``; the path, or None (the status says why)."""
        return self._export("csv", self.table.to_csv)

    def export_html(self) -> Path | None:
        """Write the table as a self-contained HTML page into ``folder``."""
        return self._export("html", self.table.to_html)

    def deploy(self, name: str) -> None:
        """Call ``on_deploy`` with the row ``name`` (what that row's Deploy button does).

        The status line says it was handed over, or what ``on_deploy`` raised. Raises
        KeyError for a name that is not a row; does nothing without ``on_deploy``.
        """
        if name not in self.table.names:
            raise KeyError(f"no row {name!r} in the table; rows: {', '.join(self.table.names)}")
        if self.on_deploy is None:
            return
        try:
            self.on_deploy(name)
        except Exception as exc:  # noqa: BLE001 - whatever the callback raises is shown
            self.status.value = (f"<span style='color:#c62828'>could not deploy "
                                 f"{html.escape(f'{name}: {exc}')}</span>")
            return
        self.status.value = f"{html.escape(name)} handed to on_deploy"

    def _export(self, ext: str, write) -> Path | None:
        path = self.folder / f"{self.stem}.{ext}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write(path)
        except OSError as exc:
            self.status.value = (f"<span style='color:#c62828'>could not write "
                                 f"{html.escape(f'{path}: {exc}')}</span>")
            return None
        self.status.value = (f"wrote <code>{html.escape(str(path.resolve()))}</code> "
                             f"({len(self.table)} variants on {self.table.board.id})")
        return path

    # ------------------------------------------------------------ drawing
    def refresh(self, chart: bool = True) -> None:
        """Redraw from the table (the chart too unless ``chart`` is False)."""
        table = self.table
        self._syncing = True
        try:
            with self.view.hold_sync():
                self.view.html = table.html_table(sortable=True)
                self.view.sort_key = table.sort_key or ""
                self.view.descending = table.descending
            if table.board.id not in self._boards:  # a board set by object, outside the catalog
                self._boards[table.board.id] = table.board
                self.board.options = [(f"{b.name} ({b.id})", b.id) for b in self._boards.values()]
            self.board.value = table.board.id
            if table.axis in [key for _, key in self.axis.options]:
                self.axis.value = table.axis
        finally:
            self._syncing = False
        verdicts = table.verdicts
        n_fit = sum(v.fits for v in verdicts.values())
        front = table.pareto()
        axis_label = dict((k, label) for label, k in self.axis.options).get(table.axis, table.axis)
        self.summary.value = html.escape(
            f"{table.board.name}: {n_fit} of {len(table)} variants fit. ★ Pareto-optimal "
            f"(accuracy against {axis_label}): {', '.join(front) or 'none'}")
        if chart:
            self._draw_chart()

    def _draw_chart(self) -> None:
        self.figure = self.table.figure()
        show_figure(self.chart, self.figure)

    # ------------------------------------------------------------ events
    def _on_board(self, change) -> None:
        if self._syncing:
            return
        self._drive(lambda: setattr(self.table, "board", self._boards[change["new"]]))

    def _on_axis(self, change) -> None:
        if self._syncing:
            return
        self._drive(lambda: setattr(self.table, "axis", change["new"]))

    def _on_sort(self, change) -> None:
        if self._syncing:
            return
        self._drive(lambda: self.table.sort(self.view.sort_key or None, self.view.descending))

    def _drive(self, action) -> None:
        try:
            action()
        except (ValueError, KeyError, TypeError) as exc:
            self.status.value = f"<span style='color:#c62828'>{html.escape(str(exc))}</span>"
            self.refresh(chart=False)

    def _on_view_message(self, _view, content, _buffers) -> None:
        """A row's button was clicked in the browser: ``{"event": "row_action", "name": row}``."""
        if not isinstance(content, dict) or content.get("event") != "row_action":
            return
        name = content.get("name")
        if name not in self.table.names:   # a row removed since the browser drew it
            self.status.value = (f"<span style='color:#c62828'>no row "
                                 f"{html.escape(repr(name))} any more</span>")
            return
        self.deploy(name)

    def _on_table(self, what: str) -> None:
        self.refresh(chart=what != "sort")

    def close(self) -> None:
        self.table.unobserve(self._on_table)
        for child in (self.board, self.axis, self.csv_button, self.html_button, self.summary,
                      self.status, self.view, self.chart):
            child.close()
        super().close()
