"""The training widget in a real browser: curves grow epoch by epoch, the bar completes,
and the confusion matrix appears when training ends.

JupyterLab runs it live; Voila renders it after the notebook ran. (The widget once hung
Voila: see workbench/ui/figures.py.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

if importlib.util.find_spec("tf_keras") is None or importlib.util.find_spec("plotly") is None:
    pytest.skip("needs tf_keras and plotly", allow_module_level=True)

CODE = """\
import numpy as np
from workbench.train.features import Normalizer
from workbench.train.fit import TrainConfig, TrainingData, train
from workbench.train.zoo import imu_cnn
from workbench.ui import TrainingMonitor

rng = np.random.default_rng(0)
X = rng.normal(size=(64, 32, 3)).astype(np.float32)
y = (X[:, :, 0].mean(axis=1) > 0).astype(np.int64)
X[y == 1, :, 1] += 1.0
data = TrainingData(X[:40], y[:40], X[40:52], y[40:52], X[52:], y[52:], ["low", "high"],
                    Normalizer().fit(X[:40]), "synthetic")
monitor = TrainingMonitor(classes=data.classes, epochs=6, title="tiny model")
display(monitor)
result = train(lambda: imu_cnn(data.input_shape, 2, "xs"), data,
               TrainConfig(epochs=6, patience=10), callbacks=[monitor.callback()])
monitor.show_result(result.record)
"""


def write_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(CODE)]
    nbformat.write(nb, path)
    return path


def check_curves(page) -> None:
    """One point per epoch on the loss trace, and the confusion-matrix heatmap."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .scatterlayer .trace')].length >= 4",
        timeout=30_000)
    points = page.evaluate(
        "() => document.querySelectorAll('.js-plotly-plot .scatterlayer .trace')[0]"
        ".querySelectorAll('.point').length")
    assert points == 6
    assert page.locator(".js-plotly-plot .heatmaplayer, .js-plotly-plot .hm").count() >= 1


def test_training_monitor_in_jupyterlab(lab_server, page, shots, tmp_path):
    write_notebook(lab_server.root / "train.ipynb")
    lab_server.open_and_run(page, "train.ipynb")
    try:
        # live: the status line reports epochs while the cell is still running
        page.wait_for_function("() => /epoch [1-6]:/.test(document.body?.innerText || '')",
                               timeout=180_000)
        page.wait_for_function("() => document.body?.innerText.includes('done after')",
                               timeout=180_000)
    finally:
        page.screenshot(path=str(shots / "training-lab.png"), full_page=True)
    text = page.locator(".jp-Notebook").inner_text()
    assert "done after 6 epochs" in text and "test accuracy" in text
    check_curves(page)


def test_training_monitor_in_voila(voila_server, page, shots, tmp_path):
    path = write_notebook(tmp_path / "train.ipynb")
    page.goto(voila_server(path), timeout=300_000, wait_until="commit")
    try:
        page.wait_for_function("() => document.body?.innerText.includes('done after')",
                               timeout=180_000)
    finally:
        page.screenshot(path=str(shots / "training-voila.png"), full_page=True)
    text = page.locator("body").inner_text()
    assert "done after 6 epochs" in text and "test accuracy" in text
    check_curves(page)
