"""A fleet update against real virtual boards: gates once per board type, every device
updated in parallel, one already up to date left alone, a failing device not stopping the
others; and the fleet panel driving the same without a kernel."""

from __future__ import annotations

import hashlib

import pytest

from workbench.deploy import ModelRegistry, update_fleet
from workbench.link import open_device
from workbench.optimize import variant_from_tflite

WAIT_S = 180


@pytest.fixture
def sine(sine_model):
    return variant_from_tflite("sine", sine_model, kind="float")


def active_sha(dev) -> str:
    table = dev.slots()
    return table.slots[table.active].sha256.hex() if table.active < len(table.slots) else ""


def test_a_fleet_update_reaches_every_device_and_leaves_the_current_one_alone(
        sim_url, sine, tmp_path):
    urls = [sim_url("nano33ble", flash=str(tmp_path / f"{n}.flash")) for n in "abc"] \
        + [sim_url("pico", flash=str(tmp_path / "pico.flash"))]
    devices = [open_device(u) for u in urls]
    try:
        devices[1].upload_model(sine.tflite, name="sine")          # b runs it already
        before = devices[1].slots()
        seen: list[tuple[int, str]] = []
        reg = ModelRegistry(tmp_path / "registry")
        rows = update_fleet(sine, devices, registry=reg,
                            on_change=lambda i, row: seen.append((i, row.state)))
        digest = hashlib.sha256(sine.tflite).hexdigest()
        assert [r.state for r in rows] == ["done", "up to date", "done", "done"]
        assert all(r.ok and r.final for r in rows)
        assert [r.board for r in rows] == ["nano33ble"] * 3 + ["pico"]
        assert all(active_sha(d) == digest for d in devices)
        assert devices[1].slots() == before                          # nothing sent to it
        assert rows[0].sent == rows[0].total == len(sine.tflite)
        # the gates ran once per board type, and each device reported its way through
        assert rows[0].gates is rows[2].gates and rows[3].gates is not rows[0].gates
        for i in (0, 2, 3):
            states = [s for j, s in seen if j == i]
            assert states[0] == "checking" and "sending" in states and states[-1] == "done"
        # every deployment is in the registry, against the one version registered
        assert len(reg.versions("sine")) == 1
        # each device by its URL and serial number
        assert sorted(d.device.split("#")[0] for d in reg.deployments("sine")) == \
            sorted(devices[i].url for i in (0, 2, 3))
    finally:
        for d in devices:
            d.close()


def test_one_device_failing_does_not_stop_the_others(sim_url, sine, tmp_path):
    good = open_device(sim_url("nano33ble", flash=str(tmp_path / "good.flash")))
    doomed = open_device(sim_url("nano33ble", flash=str(tmp_path / "doomed.flash")))
    try:
        doomed.close()                                   # unplugged before the update
        rows = update_fleet(sine, [good, doomed])
        assert rows[0].state == "done" and active_sha(good) == sine.sha256
        assert rows[1].state == "failed" and rows[1].message
        with pytest.raises(ValueError, match="twice"):
            update_fleet(sine, [good, good])
        with pytest.raises(ValueError, match="no devices"):
            update_fleet(sine, [])
    finally:
        good.close()


def test_a_failed_gate_refuses_the_boards_devices_without_sending(sim_url, sine, tmp_path):
    dev = open_device(sim_url("nano33ble", flash=str(tmp_path / "n.flash")))
    try:
        before = dev.slots()
        # a latency budget nothing meets: the gate fails, nothing is sent
        rows = update_fleet(sine, [dev], latency_budget_ms=1e-9)
        assert rows[0].state == "refused" and "latency" in rows[0].message
        assert dev.slots() == before
        forced = update_fleet(sine, [dev], latency_budget_ms=1e-9, force=True)
        assert forced[0].state == "done" and "FORCED" in forced[0].message
    finally:
        dev.close()


def test_the_fleet_panel_connects_updates_and_shows_each_device(sim_url, sine, tmp_path):
    pytest.importorskip("ipywidgets")
    from workbench.ui import FleetPanel

    urls = [sim_url("nano33ble", flash=str(tmp_path / f"{n}.flash")) for n in "ab"]
    panel = FleetPanel([sine], urls=urls + ["/dev/ttyNOPE9"], connect=False)
    try:
        assert panel.update_button.disabled                   # nothing connected yet
        panel.connect_button._click_handlers(panel.connect_button)
        assert panel.wait(WAIT_S)
        assert "connected to 2 of 3" in panel.status.value
        assert [r.state for r in panel.updates] == ["waiting", "waiting", "failed"]
        assert "cannot connect" in panel.updates[2].message
        assert not panel.update_button.disabled

        disabled: list[bool] = []
        panel.update_button.observe(lambda ch: disabled.append(ch["new"]), names="disabled")
        panel.update_button._click_handlers(panel.update_button)
        assert panel.wait(WAIT_S)
        assert disabled == [True, False]                      # disabled while it ran
        assert [r.state for r in panel.updates] == ["done", "done"], panel.status.value
        assert "2 done" in panel.status.value
        for url in urls:
            assert f"data-url='{url}' data-state='done'" in panel.table.value
        assert all(active_sha(d) == sine.sha256 for d in panel.devices)

        panel.update_button._click_handlers(panel.update_button)   # again: nothing to send
        assert panel.wait(WAIT_S)
        assert [r.state for r in panel.updates] == ["up to date", "up to date"]
    finally:
        panel.close()
