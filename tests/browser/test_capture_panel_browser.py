"""The capture panel in a real browser: it draws the virtual board live, and its
buttons record a labelled take into the dataset on disk (JupyterLab and Voila)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser


def write_notebook(path: Path, dataset: Path, flash: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "from workbench.ui import CapturePanel\n"
        f"panel = CapturePanel({str(dataset)!r}, 'sim://nano33ble?flash={flash}')\n"
        "panel")]
    nbformat.write(nb, path)
    return path


FRAMES = "Number(document.querySelector('.wb-liveplot')?.dataset.frames || 0)"


def wait_new_frames(page, n: int = 2) -> None:
    """Wait until the live plot has drawn ``n`` more frames (it reports its count periodically)."""
    now = page.evaluate(f"() => {FRAMES}")
    page.wait_for_function(f"() => {FRAMES} >= {now + n}", timeout=60_000)


def shown_take_samples(page) -> int | None:
    """The sample count the panel shows for its last take, or None if it shows none."""
    m = re.search(r"last take:\s*([\d,]+) samples", page.locator("body").inner_text())
    return int(m.group(1).replace(",", "")) if m else None


def check_live_and_record(page, dataset: Path, shot: Path) -> None:
    plot = page.locator(".wb-liveplot").first
    plot.locator("canvas").wait_for(timeout=90_000)
    page.wait_for_function(f"() => {FRAMES} > 10", timeout=60_000)
    canvas = plot.locator("canvas")
    before = canvas.screenshot()
    wait_new_frames(page)
    assert canvas.screenshot() != before, "the live plot is not moving"
    # what a person does: type a label, press Record, wait, press Stop
    page.get_by_placeholder("e.g. wave").fill("tap")
    page.get_by_role("button", name="Record").click()
    page.get_by_role("button", name="Stop").wait_for(timeout=10_000)
    wait_new_frames(page, 5)  # the board keeps streaming while it records
    page.get_by_role("button", name="Stop").click()
    page.get_by_role("button", name="Record").wait_for(timeout=10_000)
    page.wait_for_function("() => document.body.innerText.includes('last take')",
                           timeout=10_000)
    page.screenshot(path=str(shot))
    metas = [(p.parent, json.loads(p.read_text())) for p in dataset.glob("recordings/*/meta.json")]
    assert len(metas) == 1
    folder, meta = metas[0]
    assert meta["label"] == "tap" and meta["complete"] and meta["lost"] == 0
    # the take holds what was recorded: its sample count is what samples.bin holds, and
    # what the panel shows
    assert meta["samples"] > 0
    row_bytes = len(meta["channels"]) * np.dtype(meta["dtype"]).itemsize
    assert (folder / "samples.bin").stat().st_size == meta["samples"] * row_bytes
    page.wait_for_function(  # the panel's counters refresh periodically
        f"() => /last take:\\s*{meta['samples']:,} samples/.test(document.body.innerText)",
        timeout=10_000)
    assert shown_take_samples(page) == meta["samples"]


def test_capture_panel_in_jupyterlab(lab_server, page, shots, tmp_path):
    dataset = tmp_path / "ds"
    write_notebook(lab_server.root / "capture.ipynb", dataset, tmp_path / "board.flash")
    lab_server.open_and_run(page, "capture.ipynb")
    check_live_and_record(page, dataset, shots / "capture-lab.png")


def test_capture_panel_in_voila(voila_server, page, shots, tmp_path):
    dataset = tmp_path / "ds"
    url = voila_server(write_notebook(tmp_path / "capture.ipynb", dataset,
                                      tmp_path / "board.flash"))
    page.goto(url, timeout=90_000)
    check_live_and_record(page, dataset, shots / "capture-voila.png")
