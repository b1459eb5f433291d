"""One click from the comparison table to a running model, in a real JupyterLab: a row's
Deploy button hands the row to the flash panel, whose gates, progress bar and result show
in the page, followed by the board's live predictions on its own sensor stream."""

from __future__ import annotations

import hashlib
import importlib.util
from importlib import resources

import pytest

pytestmark = pytest.mark.browser

if importlib.util.find_spec("plotly") is None:
    pytest.skip("needs plotly", allow_module_level=True)

TIMEOUT_MS = 120_000

CODE = """\
import numpy as np
from importlib import resources
from workbench.optimize import ComparisonTable, measure, variant_from_tflite
from workbench.ui import CompareTable, FlashPanel

sine = variant_from_tflite("sine", (resources.files("tflite_micro.python.tflite_micro")
                                    / "sine_float.tflite").read_bytes(), kind="float")
table = ComparisonTable([measure(sine)], "nano33ble")
panel = FlashPanel(table, variants=[sine], url="sim://nano33ble?baud=19200&flash={flash}",
                   live=dict(sensors=["accel"], length=4, rate_hz=119,
                             preprocess=lambda w: np.array([[w[-1, 2]]], np.float32)))
display(CompareTable(table, on_deploy=panel.deploy))
display(panel)
"""


def write_notebook(path, flash) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(CODE.replace("{flash}", str(flash)))]
    nbformat.write(nb, path)


def test_a_table_rows_deploy_button_flashes_it_with_a_visible_progress_bar(
        lab_server, page, shots, tmp_path):
    sine = (resources.files("tflite_micro.python.tflite_micro") / "sine_float.tflite").read_bytes()
    size, digest = len(sine), hashlib.sha256(sine).hexdigest()
    write_notebook(lab_server.root / "flash.ipynb", tmp_path / "board.flash")
    lab_server.run_until_shown(page, "flash.ipynb", ".wb-compare button.wb-row-action",
                               timeout_ms=TIMEOUT_MS)
    try:
        page.wait_for_function("() => document.body.innerText.includes('connected to nano33ble')",
                               timeout=TIMEOUT_MS)
        page.locator('.wb-compare tr[data-name="sine"] button.wb-row-action').click()
        # the bar moves: some width between empty and full is seen before the end
        page.wait_for_function(
            "() => { const b = document.querySelector('.widget-hprogress .progress-bar');"
            " const w = b ? parseFloat(b.style.width) : 0; return w > 0 && w < 100; }",
            timeout=TIMEOUT_MS)
        page.wait_for_function("() => document.body.innerText.includes('deployed sine')",
                               timeout=TIMEOUT_MS)
        text = page.locator("body").inner_text()
        assert f"{size:,} / {size:,} bytes" in text
        assert f"SHA-256 {digest[:12]}" in text
        assert "Deployment gates" in text and "fits the board" in text
        width = page.evaluate(
            "() => document.querySelector('.widget-hprogress .progress-bar').style.width")
        assert float(width.rstrip("%")) == 100
        # then the board's own answers to its accelerometer
        page.wait_for_function(
            "() => /\\d+ window\\(s\\) predicted on the board/.test(document.body.innerText)",
            timeout=TIMEOUT_MS)
        assert page.get_by_role("button", name="Stop").is_enabled()
    finally:
        page.screenshot(path=str(shots / "flash-lab.png"), full_page=True)
