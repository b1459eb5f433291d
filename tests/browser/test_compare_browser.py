"""The comparison widget in a real JupyterLab and in Voila: a header click sorts, the board
menu re-evaluates which rows fit, the plotly chart is drawn, and a row's Deploy button hands
that row to the kernel."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.browser

if importlib.util.find_spec("plotly") is None:
    pytest.skip("needs plotly", allow_module_level=True)

TIMEOUT_MS = 60_000

CODE = """\
from workbench.optimize.records import Measurement
from workbench.optimize.table import ComparisonTable
from workbench.ui import CompareTable

def m(name, accuracy, model_kib, arena_kib, kind="int8"):
    return Measurement(name=name, kind=kind, model_bytes=model_kib * 1024, sha256="0" * 64,
                       runtime="tflite-micro", params=1000, macs=50_000, input_dtype="int8",
                       accuracy=accuracy, arena_bytes=arena_kib * 1024)

table = ComparisonTable([m("float", 0.95, 40, 30, "float"), m("int8 PTQ", 0.925, 12, 10),
                         m("pruned", 0.90, 8, 10, "pruned"), m("big", 0.975, 60, 250, "float")],
                        "pico", reference="float")
from pathlib import Path

def deploy(name):   # what a FlashPanel's deploy would be handed
    Path({folder!r}, "deployed.txt").write_text(name)

CompareTable(table, folder={folder!r}, on_deploy=deploy)
"""


def names(page) -> list[str]:
    return page.evaluate(
        "() => [...document.querySelectorAll('.wb-compare tbody tr')].map(r => r.dataset.name)")


def write_notebook(path, folder) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(CODE.replace("{folder!r}", repr(str(folder))))]
    nbformat.write(nb, path)


def test_compare_table_in_voila(voila_server, page, shots, tmp_path):
    """A dashboard: the widget renders after the notebook ran, and still drives Python."""
    write_notebook(tmp_path / "compare.ipynb", tmp_path)
    page.goto(voila_server(tmp_path / "compare.ipynb"), timeout=120_000)
    try:
        page.locator(".wb-compare tbody tr").first.wait_for(timeout=TIMEOUT_MS)
        assert "wb-nofit" in page.locator('.wb-compare tr[data-name="big"]').get_attribute("class")
        page.locator(".wb-compare-widget .js-plotly-plot").first.wait_for(timeout=TIMEOUT_MS)
        page.locator(".wb-compare-widget select").first.select_option(label="ESP-EYE (esp-eye)")
        page.wait_for_function(
            "() => { const r = document.querySelector('.wb-compare tr[data-name=\"big\"]');"
            " return r && !r.classList.contains('wb-nofit'); }", timeout=TIMEOUT_MS)
        page.locator('.wb-compare th[data-key="accuracy"]').click()
        page.wait_for_function(
            "() => document.querySelector('.wb-compare tbody tr')?.dataset.name === 'big'",
            timeout=TIMEOUT_MS)
        page.get_by_role("button", name="Export CSV").click()
        page.wait_for_function("() => document.body.innerText.includes('comparison.csv')",
                               timeout=TIMEOUT_MS)
        assert (tmp_path / "comparison.csv").read_text().startswith("name,kind,")
    finally:
        page.screenshot(path=str(shots / "compare-voila.png"), full_page=True)


def test_compare_table_in_jupyterlab(lab_server, page, shots, tmp_path):
    write_notebook(lab_server.root / "compare.ipynb", tmp_path)
    lab_server.open_and_run(page, "compare.ipynb")
    try:
        page.locator(".wb-compare tbody tr").first.wait_for(timeout=TIMEOUT_MS)
        assert names(page) == ["float", "int8 PTQ", "pruned", "big"]     # the order added
        big = page.locator('.wb-compare tr[data-name="big"]')
        assert "wb-nofit" in big.get_attribute("class")                # 250 KiB arena > 192 KiB
        assert "RAM left for the arena" in big.inner_text()
        assert "wb-pareto" in page.locator('.wb-compare tr[data-name="pruned"]').get_attribute(
            "class")

        # a click on the "accuracy" header: most accurate first
        page.locator('.wb-compare th[data-key="accuracy"]').click()
        page.wait_for_function(
            "() => document.querySelector('.wb-compare tbody tr')?.dataset.name === 'big'",
            timeout=TIMEOUT_MS)
        assert names(page) == ["big", "float", "int8 PTQ", "pruned"]
        # again: the other way round
        page.locator('.wb-compare th[data-key="accuracy"]').click()
        page.wait_for_function(
            "() => document.querySelector('.wb-compare tbody tr')?.dataset.name === 'pruned'",
            timeout=TIMEOUT_MS)
        assert names(page) == ["pruned", "int8 PTQ", "float", "big"]

        # the chart
        page.locator(".wb-compare-widget .js-plotly-plot").first.wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function(
            "() => document.querySelector('.wb-compare-widget .js-plotly-plot .gtitle')"
            "?.textContent.includes('Raspberry Pi Pico')", timeout=TIMEOUT_MS)
        traces = page.locator(".wb-compare-widget .js-plotly-plot .scatterlayer .trace")
        assert traces.count() >= 3

        # a board with the RAM for it: "big" is no longer greyed, and the chart follows
        board_menu = page.locator(".wb-compare-widget select").first
        board_menu.select_option(label="ESP-EYE (esp-eye)")
        page.wait_for_function(
            "() => { const r = document.querySelector('.wb-compare tr[data-name=\"big\"]');"
            " return r && !r.classList.contains('wb-nofit'); }", timeout=TIMEOUT_MS)
        fits = page.locator('.wb-compare tr[data-name="big"] td:not(.wb-action)').last
        assert "yes" in fits.inner_text()
        page.wait_for_function(
            "() => document.querySelector('.wb-compare-widget .js-plotly-plot .gtitle')"
            "?.textContent.includes('ESP-EYE')", timeout=TIMEOUT_MS)
        # and back: greyed again
        board_menu.select_option(label="Raspberry Pi Pico (pico)")
        page.wait_for_function(
            "() => document.querySelector('.wb-compare tr[data-name=\"big\"]')"
            "?.classList.contains('wb-nofit')", timeout=TIMEOUT_MS)

        # export
        page.get_by_role("button", name="Export HTML").click()
        page.wait_for_function("() => document.body.innerText.includes('comparison.html')",
                               timeout=TIMEOUT_MS)
        assert "wb-nofit" in (tmp_path / "comparison.html").read_text()

        # a row's Deploy button: the kernel gets that row's name
        page.locator('.wb-compare tr[data-name="pruned"] button.wb-row-action').click()
        page.wait_for_function(
            "() => document.body.innerText.includes('pruned handed to on_deploy')",
            timeout=TIMEOUT_MS)
        assert (tmp_path / "deployed.txt").read_text() == "pruned"
        assert page.locator(".wb-compare button.wb-row-action").count() == 4
    finally:
        page.screenshot(path=str(shots / "compare-lab.png"), full_page=True)


# ------------------------------------------------------------ lesson 04's table, as it looks
LESSON_CODE = """\
import dataclasses
from importlib import resources
from workbench.optimize import analyze
from workbench.optimize.records import Measurement
from workbench.optimize.table import ComparisonTable
from workbench.ui import CompareTable

sine = (resources.files("tflite_micro.python.tflite_micro") / "sine_float.tflite").read_bytes()
graph = analyze(sine)          # a real op-by-op analysis: latency and energy get estimates
hybrid = dataclasses.replace(graph, ops=(dataclasses.replace(graph.ops[0], compute_dtype="hybrid"),
                                         *graph.ops[1:]))

def m(name, kind, accuracy, model_kib, arena_kib, params=13_988, macs=698_112, g=graph):
    errors = round((1 - accuracy) * 40)
    return Measurement(name=name, kind=kind, model_bytes=int(model_kib * 1024), sha256="0" * 64,
                       runtime="tflite-micro", params=params, macs=macs, input_dtype="int8",
                       accuracy=accuracy, errors=errors, n_test=40, agreement=accuracy,
                       arena_bytes=None if arena_kib is None else int(arena_kib * 1024),
                       code_bytes=31_744, host_latency_ms=0.0841, graph=g,
                       confusion=[[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]])

measured = [m("float32", "float", 1.0, 58.6, 9.8), m("dynamic-range", "dynamic", 1.0, 18.9, None, g=hybrid),
            m("int8 PTQ", "int8", 1.0, 18.4, 4.1), m("int16x8 PTQ", "int16x8", 1.0, 19.3, 7.2),
            m("QAT int8", "qat", 1.0, 18.4, 4.1), m("pruned int8", "pruned", 0.975, 18.4, 4.1),
            m("clustered int8", "clustered", 1.0, 18.4, 4.1),
            m("distilled int8", "distilled", 0.925, 4.2, 2.3, params=1_044, macs=51_200)]
table = ComparisonTable(measured, "nano33ble", reference="float32")
CompareTable(table, folder={folder!r})
"""

#: Text in the chart that must never cover other text: the point labels, the legend, the
#: title and the axis titles.
CHART_TEXT = (".wb-compare-widget .js-plotly-plot .annotation-text-g, "
              ".wb-compare-widget .js-plotly-plot .legendtext, "
              ".wb-compare-widget .js-plotly-plot .gtitle, "
              ".wb-compare-widget .js-plotly-plot .xtitle, "
              ".wb-compare-widget .js-plotly-plot .ytitle")


def text_boxes(page) -> list[dict]:
    return page.evaluate("""(sel) => [...document.querySelectorAll(sel)].map((e) => {
        const r = e.getBoundingClientRect();
        return {text: e.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
      }).filter((b) => b.text.trim() && b.right > b.left)""", CHART_TEXT)


def overlapping(boxes: list[dict], slack: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of boxes whose interiors intersect (touching edges do not count)."""
    pairs = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if (a["left"] < b["right"] - slack and b["left"] < a["right"] - slack
                    and a["top"] < b["bottom"] - slack and b["top"] < a["bottom"] - slack):
                pairs.append((a["text"], b["text"]))
    return pairs


def test_lesson_table_fits_the_notebook_and_chart_labels_stay_apart(lab_server, page, shots,
                                                                     tmp_path):
    """Lesson 04's eight variants at JupyterLab's default layout (1280 px wide, file browser
    open): the table needs no horizontal scrolling, and no text in the chart covers another."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(LESSON_CODE.replace("{folder!r}", repr(str(tmp_path))))]
    nbformat.write(nb, lab_server.root / "lesson_table.ipynb")
    # "?reset": a fresh workspace, or a notebook another test left open would be restored
    # beside this one (and take the clicks meant for it)
    lab_server.open_and_run(page, "lesson_table.ipynb?reset")
    try:
        page.locator('.wb-compare tr[data-name="distilled int8"]').wait_for(timeout=TIMEOUT_MS)
        page.locator(".wb-compare-widget .js-plotly-plot .annotation-text-g").first.wait_for(
            timeout=TIMEOUT_MS)
        page.wait_for_timeout(500)    # plotly's responsive relayout settles
        view = page.evaluate("""() => { const v = document.querySelector('.wb-compare-view');
            const t = v.querySelector('table.wb-compare');
            const out = v.closest('.jp-OutputArea-output') || v.parentElement;
            return {scroll: v.scrollWidth, client: v.clientWidth, table: t.offsetWidth,
                    output: out.clientWidth}; }""")
        assert view["client"] > 500, view          # the notebook's real width, not a sliver
        assert view["scroll"] <= view["client"], f"the table scrolls sideways: {view}"
        assert view["table"] <= view["output"], view
        # the reason a row does not fit is still in sight, under its name
        assert "hybrid" in page.locator('.wb-compare tr[data-name="dynamic-range"]').inner_text()

        boxes = text_boxes(page)
        labels = [b["text"] for b in boxes]
        for name in ("float32", "int8 PTQ", "QAT int8", "pruned int8", "clustered int8",
                     "distilled int8", "int16x8 PTQ"):
            assert any(name in text for text in labels), (name, labels)
        assert not overlapping(boxes), overlapping(boxes)
        svg = page.locator(".wb-compare-widget .js-plotly-plot .main-svg").first.bounding_box()
        for b in boxes:       # every label drawn inside the chart, none cut off at its edge
            assert svg["x"] - 1 <= b["left"] and b["right"] <= svg["x"] + svg["width"] + 1, b
            assert svg["y"] - 1 <= b["top"] and b["bottom"] <= svg["y"] + svg["height"] + 1, b
        page.locator(".wb-compare-widget").first.screenshot(path=str(shots / "lesson-table.png"))

        # the secondary columns are one click away, and fold away again
        assert page.locator('.wb-compare th[data-key="macs"]').is_hidden()
        page.locator(".wb-compare-view .wb-columns-toggle").click()
        page.locator('.wb-compare th[data-key="macs"]').wait_for(state="visible",
                                                               timeout=TIMEOUT_MS)
        page.locator(".wb-compare-widget").first.screenshot(
            path=str(shots / "lesson-table-all-columns.png"))
        page.locator(".wb-compare-view .wb-columns-toggle").click()
        page.locator('.wb-compare th[data-key="macs"]').wait_for(state="hidden",
                                                               timeout=TIMEOUT_MS)
    finally:
        page.screenshot(path=str(shots / "lesson-table-page.png"), full_page=True)
