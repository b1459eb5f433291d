"""The flash panel built and driven without a kernel, against a real virtual board."""

from __future__ import annotations

import dataclasses
import re

import pytest

pytest.importorskip("ipywidgets")

from workbench.deploy import ModelRegistry  # noqa: E402
from workbench.link import open_device  # noqa: E402
from workbench.optimize import variant_from_tflite  # noqa: E402
from workbench.ui import FlashPanel  # noqa: E402

WAIT_S = 120


@pytest.fixture
def sine(sine_model):
    return variant_from_tflite("sine", sine_model, kind="float")


def click(button) -> None:
    """What pressing the button in the browser does."""
    button._click_handlers(button)


def press_row(view, name):
    """What the browser sends when a row's button is clicked (compare.js), through the
    widget's own message handler."""
    view.view._handle_msg({"content": {"data": {"method": "custom", "content": {
        "event": "row_action", "name": name}}}, "buffers": []})


def finish(panel) -> None:
    assert panel.wait(WAIT_S), "the panel's job did not finish"


def test_gates_then_deploy_fills_the_bar_and_lands_in_the_slot(sim_url, sine, tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    # a slow line (19200 baud, about 1.5 s for the sine model) so the bar moves visibly
    panel = FlashPanel([sine], url=sim_url("nano33ble", baud=19200), registry=reg, connect=False)
    labels: list[str] = []
    panel.progress_label.observe(lambda ch: labels.append(ch["new"]), names="value")
    try:
        assert panel.deploy_button.disabled and panel.gates_button.disabled   # no device yet
        click(panel.connect_button)
        finish(panel)
        assert "connected to nano33ble" in panel.status.value
        assert not panel.deploy_button.disabled and not panel.gates_button.disabled
        assert panel.force.layout.display == "none"

        disabled: list[bool] = []
        for button in (panel.deploy_button, panel.gates_button):
            button.observe(lambda ch: disabled.append(ch["new"]), names="disabled")
        click(panel.gates_button)
        finish(panel)
        # both were disabled while the gates ran (however fast), and enabled again after
        assert disabled[:2] == [True, True] and disabled[-2:] == [False, False]
        assert panel.report is not None and panel.report.passed
        assert "Deployment gates" in panel.gates.value and "fits the board" in panel.gates.value
        assert "all passed" in panel.status.value
        assert panel.force.layout.display == "none"

        click(panel.deploy_button)
        assert panel.connect() is None and panel.check_gates() is None   # one job at a time
        click(panel.disconnect_button)                                   # ignored meanwhile
        assert panel.device is not None
        finish(panel)
        size = len(sine.tflite)
        assert panel.progress.value == panel.progress.max == size
        assert f"{size:,} / {size:,} bytes" in panel.progress_label.value
        assert "/s" in panel.progress_label.value
        moving = [label for label in labels if "s left" in label]
        assert moving and all(re.search(r"[\d.]+ (B|kB|MB)/s", label) for label in moving)
        sent = [int(label.split(" / ")[0].replace(",", "")) for label in labels if label]
        assert sent == sorted(sent) and sent[-1] == size
        res = panel.result
        assert res is not None and panel.error is None and res.gates is panel.report
        assert f"SHA-256 {res.slot.sha256.hex()[:12]}" in panel.status.value
        assert f"slot {'AB'[res.slot.index]}" in panel.status.value
        assert f"arena {res.slot.arena_bytes:,} bytes" in panel.status.value
        assert "Traceback" not in panel.status.value
        table = panel.device.slots()
        assert table.slots[table.active].sha256.hex() == res.version.sha256
        [dep] = reg.deployments("sine")
        assert dep.result["ok"] is True and dep.forced is False
        assert dep.result["slot"] == table.active
    finally:
        panel.close()
    assert panel.device is None


def test_a_failed_gate_blocks_deploy_until_forced(sim_url, sine, tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    panel = FlashPanel([sine], url=sim_url("nano33ble"), registry=reg, latency_budget_ms=1e-9)
    try:
        finish(panel)                                      # connect=True: it connected itself
        before = panel.device.slots()
        click(panel.deploy_button)                         # no gates checked: deploy runs them
        finish(panel)
        assert "not deployed, nothing was sent" in panel.status.value
        assert "latency" in panel.status.value and "Traceback" not in panel.status.value
        assert panel.report is not None and not panel.report.passed
        assert "FAIL" in panel.gates.value
        assert panel.force.layout.display == ""            # the force box appears
        assert panel.deploy_button.disabled                # and Deploy waits for it
        panel.deploy()                                     # called anyway, from Python
        finish(panel)
        assert "not deployed" in panel.status.value
        assert panel.device.slots() == before              # not a byte sent
        assert reg.deployments("sine") == []

        panel.force.value = True
        assert not panel.deploy_button.disabled
        click(panel.deploy_button)
        finish(panel)
        assert "FORCED" in panel.status.value and panel.result.forced
        after = panel.device.slots()
        assert after.slots[after.active].sha256.hex() == panel.result.version.sha256
        [dep] = reg.deployments("sine")
        assert dep.forced is True
    finally:
        panel.close()


def test_an_unreachable_device_is_a_clear_status(sine):
    panel = FlashPanel([sine], url="/dev/ttyNOPE9")
    try:
        finish(panel)
        assert "cannot connect to /dev/ttyNOPE9" in panel.status.value
        assert "Traceback" not in panel.status.value and panel.error is not None
        assert panel.device is None
        assert panel.deploy_button.disabled and panel.gates_button.disabled
        assert panel.check_gates() is None and "connect a device first" in panel.status.value
        assert panel.deploy() is None and "connect a device first" in panel.status.value
    finally:
        panel.close()


def test_a_device_passed_in_and_a_registry_as_the_menu(sim_url, sine, sine_model, tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    reg.register(sine, name="sine")
    reg.register(sine_model + b"", name="sine-copy")
    with open_device(sim_url("nano33ble")) as dev:
        panel = FlashPanel(reg, dev)
        try:
            labels = [label for label, _ in panel.model.options]
            assert any(label.startswith("sine v1") for label in labels)
            assert any(label.startswith("sine-copy v1") for label in labels)
            panel.select("sine-copy v1")
            assert panel.chosen.name == "sine-copy"
            assert not panel.deploy_button.disabled
            click(panel.deploy_button)
            finish(panel)
            assert "deployed sine-copy v1" in panel.status.value
            [dep] = reg.deployments("sine-copy")            # recorded in the menu's registry
            assert dep.result["ok"] is True
            with pytest.raises(KeyError, match="sine v1"):
                panel.select("nope")
        finally:
            panel.close()
        assert dev.slots()                                  # still open: it is the caller's


def test_bad_menus_are_refused(sine, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        FlashPanel([], connect=False)
    with pytest.raises(TypeError, match="ComparisonTable"):
        FlashPanel(sine, connect=False)
    with pytest.raises(ValueError, match="no model versions"):
        FlashPanel(ModelRegistry(tmp_path / "empty"), connect=False)


def test_a_comparison_table_offers_its_rows_and_deploys_one(sim_url, sine):
    pytest.importorskip("anywidget")
    pytest.importorskip("plotly")
    from workbench.optimize import ComparisonTable, measure
    from workbench.ui import CompareTable

    # a real measurement, marked (16 more arena bytes) so that its reuse is visible
    real = measure(sine)
    measured = dataclasses.replace(real, arena_bytes=real.arena_bytes + 16)
    other = variant_from_tflite("unmeasured", sine.tflite)
    table = ComparisonTable([measured], "nano33ble")
    panel = FlashPanel(table, variants=[sine, other], url=sim_url("nano33ble"))
    view = CompareTable(table, on_deploy=panel.deploy)
    try:
        assert [label.split(" (")[0] for label, _ in panel.model.options] == ["sine"]
        finish(panel)
        click(panel.gates_button)
        finish(panel)
        assert panel.report.passed
        # the table's row was reused by the gates, not measured again
        assert panel.report["fits the board"].details["arena_bytes"] == measured.arena_bytes

        assert view.view.row_action == "Deploy"          # every row gets a Deploy button
        press_row(view, "sine")                            # the row's Deploy, in the table
        finish(panel)
        assert "deployed sine" in panel.status.value
        active = panel.device.slots()
        assert active.slots[active.active].sha256.hex() == measured.sha256
    finally:
        view.close()
        panel.close()
    with pytest.raises(ValueError, match="variants="):
        FlashPanel(table, variants=[other], connect=False)


def test_the_table_shows_what_its_deploy_callback_raises():
    pytest.importorskip("anywidget")
    pytest.importorskip("plotly")
    from workbench.optimize import ComparisonTable
    from workbench.optimize.records import Measurement
    from workbench.ui import CompareTable

    row = Measurement(name="int8", kind="int8", model_bytes=1000, sha256="0" * 64,
                      runtime="tflite-micro", params=10, macs=10, input_dtype="int8")
    plain = CompareTable(ComparisonTable([row], "nano33ble"))
    assert plain.view.row_action == ""                     # no hook, no buttons
    plain.close()

    def refuse(name):
        raise KeyError(f"no model {name!r} in this panel")

    view = CompareTable(ComparisonTable([row], "nano33ble"), on_deploy=refuse)
    try:
        press_row(view, "int8")
        assert "could not deploy int8" in view.status.value and "no model" in view.status.value
        press_row(view, "gone")                            # a row the browser still showed
        assert "no row" in view.status.value
        with pytest.raises(KeyError, match="rows: int8"):
            view.deploy("gone")
    finally:
        view.close()


def test_after_a_deploy_the_panel_shows_the_boards_live_predictions(sim_url, sine):
    import time

    import numpy as np

    panel = FlashPanel([sine], url=sim_url("nano33ble"),
                       live=dict(sensors=["accel"], length=4, rate_hz=119,
                                 preprocess=lambda w: np.array([[w[-1, 2]]], np.float32)))
    try:
        finish(panel)
        assert panel.live is None and panel.live_box.children == ()
        click(panel.deploy_button)
        finish(panel)
        assert "deployed sine" in panel.status.value
        live = panel.live
        assert live is not None and live in panel.live_box.children
        deadline = time.monotonic() + WAIT_S
        while live.count < 3 and live.error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.error is None and live.count >= 3
        assert live.last.scores.shape == (1,)                 # the sine model's one output
        assert abs(live.last.window[-1, 2] - 1.0) < 0.1       # accelerometer z, in g
        click(live.stop_button)
        assert not live.running and "stopped after" in live.status.value
        click(live.start_button)
        assert live.running
        click(panel.deploy_button)                 # a new deploy stops the old predictions
        finish(panel)
        assert not live.running and panel.live is not live
    finally:
        panel.close()
    assert panel.live is None
