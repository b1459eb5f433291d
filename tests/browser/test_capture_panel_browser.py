"""The capture panel in a real browser: it draws the virtual board live, and its
buttons record a labelled take into the dataset on disk after a countdown, with a REC
marker (JupyterLab, Voila and Notebook 7); in JupyterLab, its takes list plays back,
relabels, deletes and undoes, and an unlabelled take is asked about first."""

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


def disk_takes(dataset: Path, where: str = "recordings") -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text())
            for p in dataset.glob(f"{where}/*/meta.json")}


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
    # the countdown first, big, with Cancel; then the take, with its REC marker
    page.locator(".wb-capture-countdown").wait_for(timeout=10_000)
    page.get_by_role("button", name="Cancel").wait_for(timeout=10_000)
    assert page.locator(".wb-capture-countdown-n").inner_text().strip() in ("1", "2", "3")
    page.screenshot(path=str(shot.with_name(shot.stem + "-countdown.png")))
    assert not disk_takes(dataset), "recording started before the countdown ended"
    page.get_by_role("button", name="Stop").wait_for(timeout=15_000)
    rec = page.locator(".wb-capture-rec")
    rec.wait_for(timeout=10_000)
    page.wait_for_function("() => /REC 00:0[1-9]\\.\\d/.test(document.querySelector("
                           "'.wb-capture-rec')?.textContent || '')", timeout=15_000)
    assert "tap" in page.locator(".wb-capture-rec").locator("..").inner_text()
    wait_new_frames(page, 5)  # the board keeps streaming while it records
    page.screenshot(path=str(shot.with_name(shot.stem + "-rec.png")))
    page.get_by_role("button", name="Stop").click()
    page.get_by_role("button", name="Record").wait_for(timeout=10_000)
    page.wait_for_function("() => document.body.innerText.includes('last take')",
                           timeout=10_000)
    page.locator(".wb-capture-rec").wait_for(state="detached", timeout=10_000)
    page.wait_for_timeout(600)   # a few refreshes later the button still reads Record
    assert page.get_by_role("button", name="Record").is_visible()
    assert page.get_by_role("button", name="Stop").count() == 0
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
    # the takes list shows it: thumbnail, label, length, sensor, time
    row = page.locator(".wb-takes-row").first
    row.wait_for(timeout=10_000)
    assert row.get_attribute("data-id") == folder.name
    assert row.locator(".wb-takes-label").inner_text() == "tap"
    assert row.locator(".wb-takes-sensor").inner_text() == "accel"
    assert row.locator(".wb-takes-length").inner_text() == f"{meta['samples'] / meta['rate_hz']:.1f} s"
    assert row.locator(".wb-takes-time").inner_text().strip()
    assert row.locator("svg.wb-takes-thumb path").count() == len(meta["channels"])
    assert len(row.locator("svg.wb-takes-thumb path").first.get_attribute("d")) > 100


def check_takes_list(page, dataset: Path, shots: Path) -> None:
    """Play back, relabel, delete and undo the take check_live_and_record stored."""
    (rid,) = disk_takes(dataset)
    row = page.locator(f".wb-takes-row[data-id='{rid}']")
    # play back: the whole take in the player, a playhead sweeping it in real time
    row.locator(".wb-takes-play").click()
    player = page.locator(".wb-takes-player")
    player.wait_for(timeout=10_000)
    assert player.get_attribute("data-id") == rid
    page.wait_for_function("() => Number(document.querySelector('.wb-takes-player')"
                           "?.dataset.progress || 0) > 0.2", timeout=10_000)
    page.screenshot(path=str(shots / "takes-playing.png"))
    progress = float(player.get_attribute("data-progress"))
    page.wait_for_function("() => Number(document.querySelector('.wb-takes-player')"
                           "?.dataset.progress || 0) >= 1", timeout=30_000)
    assert progress < 1 and "/ 00:0" in player.locator(".wb-takes-player-time").inner_text()
    # relabel: the pencil, a new label, Enter
    row.locator(".wb-takes-relabel").click()
    row.locator(".wb-takes-input").fill("knock")
    row.locator(".wb-takes-input").press("Enter")
    page.wait_for_function(f"() => document.querySelector(\"[data-id='{rid}'] .wb-takes-label\")"
                           "?.textContent === 'knock'", timeout=10_000)
    assert disk_takes(dataset)[rid]["label"] == "knock"
    # delete: gone from the list and the dataset, kept whole in trash/
    samples = (dataset / "recordings" / rid / "samples.bin").read_bytes()
    row.locator(".wb-takes-delete").click()
    page.locator(".wb-takes-empty").wait_for(timeout=10_000)
    assert not disk_takes(dataset) and rid in disk_takes(dataset, "trash")
    page.screenshot(path=str(shots / "takes-deleted.png"))
    # undo, twice: the take is back, then its label
    page.locator(".wb-takes-undo").click()
    row.wait_for(timeout=10_000)
    assert (dataset / "recordings" / rid / "samples.bin").read_bytes() == samples
    assert row.locator(".wb-takes-label").inner_text() == "knock"
    page.locator(".wb-takes-undo").click()
    page.wait_for_function(f"() => document.querySelector(\"[data-id='{rid}'] .wb-takes-label\")"
                           "?.textContent === 'tap'", timeout=10_000)
    assert disk_takes(dataset)[rid]["label"] == "tap"
    page.wait_for_function("() => document.querySelector('.wb-takes-undo').disabled",
                           timeout=10_000)
    page.screenshot(path=str(shots / "takes-undone.png"))


def check_unlabelled_warning(page, dataset: Path, shots: Path) -> None:
    """Record with an empty label asks first (cursor in the label box); pressed again, it
    records an unlabelled take, which the list marks."""
    label = page.get_by_placeholder("e.g. wave")
    label.fill("")
    page.locator(".wb-takes-row").first.click()   # focus elsewhere, as after any other click
    page.get_by_role("button", name="Record").click()
    page.get_by_text("would be saved as").wait_for(timeout=10_000)
    page.wait_for_function("() => document.activeElement?.placeholder === 'e.g. wave'",
                           timeout=10_000)
    page.screenshot(path=str(shots / "unlabelled-warning.png"))
    assert page.locator(".wb-capture-countdown").count() == 0 and len(disk_takes(dataset)) == 1
    page.get_by_role("button", name="Record").click()   # again: recorded unlabelled
    page.get_by_role("button", name="Stop").wait_for(timeout=15_000)
    assert "unlabeled-" in page.locator(".wb-capture-rec").locator("..").inner_text()
    page.get_by_role("button", name="Stop").click()
    page.locator(".wb-takes-row").nth(1).wait_for(timeout=10_000)
    newest = page.locator(".wb-takes-row").first
    assert newest.locator(".wb-takes-label").inner_text() == "unlabeled"
    assert newest.get_attribute("data-id").startswith("unlabeled-")
    assert disk_takes(dataset)[newest.get_attribute("data-id")]["label"] is None
    page.screenshot(path=str(shots / "unlabelled-take.png"))


def test_capture_panel_in_jupyterlab(lab_server, page, shots, tmp_path):
    dataset = tmp_path / "ds"
    write_notebook(lab_server.root / "capture.ipynb", dataset, tmp_path / "board.flash")
    lab_server.open_and_run(page, "capture.ipynb")
    check_live_and_record(page, dataset, shots / "capture-lab.png")
    check_takes_list(page, dataset, shots)
    check_unlabelled_warning(page, dataset, shots)


def test_capture_panel_in_voila(voila_server, page, shots, tmp_path):
    dataset = tmp_path / "ds"
    url = voila_server(write_notebook(tmp_path / "capture.ipynb", dataset,
                                      tmp_path / "board.flash"))
    page.goto(url, timeout=90_000)
    check_live_and_record(page, dataset, shots / "capture-voila.png")


def test_capture_panel_in_notebook7(notebook_server, page, shots, tmp_path):
    dataset = tmp_path / "ds"
    write_notebook(notebook_server.root / "capture.ipynb", dataset, tmp_path / "board.flash")
    notebook_server.open_and_run(page, "capture.ipynb")
    check_live_and_record(page, dataset, shots / "capture-notebook7.png")
