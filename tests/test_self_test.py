"""The device's self-test after a test switch, on a real virtual board: the golden pairs of
the image's manifest run through the new model; matching outputs confirm it, a mismatch
reverts to the previous model; without a manifest the switch stays on trial for the host."""

from __future__ import annotations

import dataclasses

import pytest

from workbench.deploy import ModelRegistry, deploy_model, make_manifest, make_update_image
from workbench.link import SelfTestFailed, open_device
from workbench.protocol.codes import SlotState


@pytest.fixture(scope="module")
def images(sine_model):
    manifest = make_manifest(sine_model, name="sine", version=2)
    good = make_update_image(sine_model, manifest=manifest)
    pair = manifest.golden[0]
    flipped = pair.outputs[0][:-2] + ("00" if pair.outputs[0][-2:] != "00" else "01")
    wrong = dataclasses.replace(manifest, golden=(dataclasses.replace(pair, outputs=(flipped,)),))
    return good, make_update_image(sine_model, manifest=wrong)


def state(dev, slot):
    return dev.slots().slots[slot].state


def test_golden_pairs_that_match_confirm_the_test_switch(sim_url, sine_model, images):
    good, _ = images
    with open_device(sim_url("nano33ble")) as dev:
        first = dev.upload_model(sine_model, name="v1")                     # permanent
        slot = dev.upload_model(good, name="v2", test=True)
        assert slot.index != first.index and slot.state == SlotState.ACTIVE  # confirmed
        dev.reset()
        table = dev.slots()
        assert table.active == slot.index and state(dev, slot.index) == SlotState.ACTIVE
        assert any("self-test passed" in log.message for log in dev.logs)


def test_a_golden_pair_that_does_not_match_reverts_to_the_previous_model(
        sim_url, sine_model, images):
    _, wrong = images
    with open_device(sim_url("nano33ble")) as dev:
        first = dev.upload_model(sine_model, name="v1")
        with pytest.raises(SelfTestFailed, match="self-test") as err:
            dev.upload_model(wrong, name="v2", test=True)
        assert err.value.detail == first.index                   # the slot now active
        table = dev.slots()
        assert table.active == first.index
        assert table.slots[first.index].sha256 == first.sha256
        dev.reset()
        assert dev.slots().active == first.index                 # and it stays so


def test_without_a_manifest_the_switch_waits_for_the_host(sim_url, sine_model):
    with open_device(sim_url("nano33ble")) as dev:
        dev.upload_model(sine_model, name="v1")
        slot = dev.upload_model(sine_model, name="v1 again", test=True)
        assert slot.state == SlotState.TESTING
        dev.confirm_model()
        assert state(dev, slot.index) == SlotState.ACTIVE


def test_deploy_model_with_a_test_switch_is_confirmed_by_the_board(
        sim_url, sine_model, tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    with open_device(sim_url("nano33ble")) as dev:
        result = deploy_model(sine_model, dev, registry=reg, name="sine", test=True)
        assert result.slot.state == SlotState.ACTIVE
        (deployment,) = reg.deployments("sine")
        assert deployment.result["switch"] == "test" and deployment.result["ok"]
