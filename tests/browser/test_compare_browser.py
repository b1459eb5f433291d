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
