"""deploy_model on a real virtual board: gates, upload, commit, and the registry's record."""

from __future__ import annotations

import pytest

from workbench.deploy import GateFailed, ModelRegistry, deploy_model
from workbench.link import open_device


def test_a_passing_model_is_uploaded_committed_and_recorded(sim_url, sine_model, tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    seen = []
    with open_device(sim_url("nano33ble")) as dev:
        res = deploy_model(sine_model, dev, registry=reg, name="sine",
                           progress=lambda sent, total: seen.append((sent, total)))
        table = dev.slots()
    assert res.gates.passed and not res.forced
    active = table.slots[table.active]
    assert active.sha256.hex() == res.version.sha256 == res.slot.sha256.hex()
    assert seen and seen[-1] == (len(sine_model), len(sine_model))
    [dep] = reg.deployments("sine")
    assert dep.result["ok"] is True and dep.result["slot"] == table.active
    assert dep.forced is False and dep.device.startswith("sim://nano33ble")
    assert dep.gates["passed"] is True


def test_a_failed_gate_sends_nothing_unless_forced(sim_url, sine_model, tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    with open_device(sim_url("nano33ble")) as dev:
        before = dev.slots()
        with pytest.raises(GateFailed, match="latency"):
            deploy_model(sine_model, dev, registry=reg, name="sine", latency_budget_ms=1e-9)
        assert dev.slots() == before                 # not a byte reached the board
        assert reg.deployments("sine") == []         # nothing deployed, nothing recorded
        res = deploy_model(sine_model, dev, registry=reg, name="sine", latency_budget_ms=1e-9,
                           force=True)
        after = dev.slots()
    assert res.forced and after.slots[after.active].sha256.hex() == res.version.sha256
    [dep] = reg.deployments("sine")
    assert dep.forced is True and dep.gates["forced"] is True and dep.result["ok"] is True


def test_a_failed_upload_is_recorded_and_raised(sim_url, sine_model, tmp_path):
    from workbench.link import LinkError

    reg = ModelRegistry(tmp_path / "registry")
    with open_device(sim_url("nano33ble")) as dev:
        report = deploy_model(sine_model, dev, registry=reg, name="sine").gates
        dev.close()                                  # the link goes away before the next one
        with pytest.raises(LinkError):
            deploy_model(sine_model, dev, registry=reg, name="sine", gates=report)
    deps = reg.deployments("sine")
    assert [d.result["ok"] for d in deps] == [True, False]
    assert deps[1].result["error"]
