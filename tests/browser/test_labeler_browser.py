"""Labeler in a real browser: a drag and a key press label the recording on disk.

In JupyterLab (where the notebook's own shortcuts must not steal the keys: "1"
would turn the cell into a heading, ctrl+z would undo a cell operation) and in
Voila. The dataset is written by the test, the notebook opens it, and the test
reads ``meta.json`` back from disk to check what the widget did.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

N = 2000
RATE_HZ = 100.0
TIMEOUT_MS = 60_000
#: Fractions of the plot width dragged over.
DRAG = (0.25, 0.5)
#: Mirrors MARGIN in labeler.js (the plot's inset in the canvas), in CSS px.
MARGIN_LEFT, MARGIN_RIGHT = 60, 14


def make_dataset(root: Path) -> tuple[Path, str]:
    """Two recordings: an unlabelled one with two bursts (the one opened) and one
    labelled "wave" (so key 1 means "wave")."""
    from workbench.data import Dataset

    rng = np.random.default_rng(0)
    x = 0.02 * rng.standard_normal((N, 3))
    t = np.arange(N) / RATE_HZ
    for a, b in ((400, 700), (1300, 1600)):
        x[a:b] += np.sin(2 * np.pi * 3 * t[a:b])[:, None] * np.array([1.0, 0.6, 0.3])
    x[:, 2] += 1.0  # gravity on z
    ds = Dataset(root)
    first = ds.add_recording(x.astype(np.float32), sensor="accel", channels=("ax", "ay", "az"),
                             units="g", rate_hz=RATE_HZ, started="2024-01-01T00:00:00")
    ds.add_recording(x[:500].astype(np.float32), sensor="accel", channels=("ax", "ay", "az"),
                     units="g", rate_hz=RATE_HZ, label="wave", started="2024-01-02T00:00:00")
    return root, first.id


def write_notebook(path: Path, dataset: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "from workbench.data import Dataset\n"
        "from workbench.ui.labeler import Labeler\n"
        "from workbench.ui.overview import DatasetOverview\n\n"
        f"ds = Dataset({str(dataset)!r})\n"
        "lab = Labeler(ds)\n"
        "display(lab, DatasetOverview(ds, labeler=lab))")]
    nbformat.write(nb, path)
    return path


def run_in_lab(lab_server, page, notebook: str) -> None:
    """The harness's Run All Cells; on a loaded machine the menu click is sometimes lost
    (the cell stays unrun, prompt ``[ ]:``), so then the cell is run with Shift+Enter."""
    lab_server.open_and_run(page, notebook)
    for _ in range(3):
        try:
            page.locator(".wb-labeler").first.wait_for(timeout=20_000)
            return
        except Exception:  # playwright's TimeoutError
            prompt = page.locator(".jp-CodeCell .jp-InputArea-prompt").first.inner_text()
            if prompt.strip() == "[ ]:":
                page.locator(".jp-Notebook .jp-CodeCell").first.click()
                page.keyboard.press("Shift+Enter")


def regions_on_disk(dataset: Path, rec_id: str) -> list[tuple[int, int, str]]:
    meta = json.loads((dataset / "recordings" / rec_id / "meta.json").read_text())
    return [(r["start"], r["end"], r["label"]) for r in meta["regions"]]


def wait_regions(page, count: int) -> None:
    page.wait_for_function(
        f"() => document.querySelector('.wb-labeler')?.dataset.regions === '{count}'",
        timeout=15_000)


def wait_ready(page, shot: Path) -> None:
    """Wait for the widget to show its recording (a screenshot is kept if it never does)."""
    try:
        page.locator(".wb-labeler canvas").first.wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function("() => !!document.querySelector('.wb-labeler')?.dataset.traceRec",
                               timeout=TIMEOUT_MS)
    except Exception:
        page.screenshot(path=str(shot), full_page=True)
        raise
    time.sleep(0.3)  # the canvas's final width is reported and the trace re-sent


def drag(page, a: float, b: float) -> tuple[float, float]:
    """Drag across fractions ``a``..``b`` of the plot; returns the expected samples."""
    box = page.locator(".wb-labeler canvas").first.bounding_box()
    plot_w = box["width"] - MARGIN_LEFT - MARGIN_RIGHT
    y = box["y"] + 100
    x0, x1 = box["x"] + MARGIN_LEFT + a * plot_w, box["x"] + MARGIN_LEFT + b * plot_w
    page.mouse.move(x0, y)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(x0 + (x1 - x0) * k / 10, y)
    page.mouse.up()
    return a * N, b * N


def check_drag_and_key(page, dataset: Path, rec_id: str, shot: Path) -> None:
    start, end = drag(page, *DRAG)
    page.wait_for_function("() => !!document.querySelector('.wb-labeler')?.dataset.selection",
                           timeout=15_000)
    page.keyboard.press("1")
    wait_regions(page, 1)
    (a, b, label), = regions_on_disk(dataset, rec_id)
    tolerance = 2 * N / 1000 + 2  # a pixel or two
    assert label == "wave" and abs(a - start) <= tolerance and abs(b - end) <= tolerance, (a, b)
    page.screenshot(path=str(shot))

    page.keyboard.press("Control+z")
    wait_regions(page, 0)
    assert regions_on_disk(dataset, rec_id) == []
    page.keyboard.press("Control+Shift+z")
    wait_regions(page, 1)
    assert regions_on_disk(dataset, rec_id) == [(a, b, "wave")]


def test_drag_and_key_label_the_recording_in_jupyterlab(lab_server, page, shots, tmp_path):
    dataset, rec_id = make_dataset(lab_server.root / "labeler-ds")
    write_notebook(lab_server.root / "labeler.ipynb", dataset)
    run_in_lab(lab_server, page, "labeler.ipynb")
    wait_ready(page, shots / "not-ready.png")
    cells = page.locator(".jp-Notebook .jp-CodeCell").count()
    check_drag_and_key(page, dataset, rec_id, shots / "labeler-jupyterlab.png")
    # the keys went to the widget, not to the notebook (1 would make a markdown heading)
    assert page.locator(".jp-Notebook .jp-CodeCell").count() == cells
    assert page.locator(".jp-Notebook .jp-MarkdownCell").count() == 0


def test_label_propose_and_accept_in_voila(voila_server, page, shots, tmp_path):
    dataset, rec_id = make_dataset(tmp_path / "ds")
    (tmp_path / "voila0").mkdir(exist_ok=True)  # where the harness puts the server's log
    page.goto(voila_server(write_notebook(tmp_path / "labeler.ipynb", dataset)), timeout=TIMEOUT_MS)
    wait_ready(page, shots / "not-ready.png")
    check_drag_and_key(page, dataset, rec_id, shots / "labeler-voila.png")

    # a new label from the text box, applied to the current selection
    page.locator(".wb-labeler-newlabel").first.fill("tap")
    page.locator(".wb-labeler-newlabel").first.press("Enter")
    page.wait_for_function("() => [...document.querySelectorAll('.wb-labeler button.wb-label')]"
                           ".some(b => b.dataset.label === 'tap')", timeout=15_000)
    wait_regions(page, 1)
    assert [r[2] for r in regions_on_disk(dataset, rec_id)] == ["tap"]

    # proposals: shown, not stored, then accepted as "wave"
    page.locator(".wb-labeler-propose").first.click()
    page.wait_for_function("() => /Accept 2 proposals/.test(document.querySelector("
                           "'.wb-labeler-accept')?.textContent)", timeout=15_000)
    page.screenshot(path=str(shots / "labeler-voila-proposals.png"))
    assert len(regions_on_disk(dataset, rec_id)) == 1
    page.locator(".wb-labeler-accept-label").first.select_option("wave")
    page.locator(".wb-labeler-accept").first.click()
    page.wait_for_function(
        "() => Number(document.querySelector('.wb-labeler')?.dataset.regions) >= 2",
        timeout=15_000)
    on_disk = regions_on_disk(dataset, rec_id)
    assert "wave" in {r[2] for r in on_disk}
    for (a, _, _), (_, b, _) in zip(on_disk[1:], on_disk):  # still sorted, never overlapping
        assert a >= b
    time.sleep(0.3)
    page.screenshot(path=str(shots / "labeler-voila-accepted.png"), full_page=True)
