"""A keyed virtual board refuses unsigned and tampered models; an unkeyed one takes both forms.

Against the real virtual board (a process behind a pty, provisioned with ``--key``), real
imgtool images and real Ed25519 signatures. Each refusal leaves the running model running.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from test_signing import TAMPERED  # tests/ is on sys.path
from test_upload_check import other_model  # noqa: F401  (a fixture)

from workbench.deploy import ModelRegistry, deploy_model, make_manifest
from workbench.deploy.signing import generate_key, make_update_image, read_update_image
from workbench.link import ImageUnsigned, SignatureInvalid, open_device
from workbench.protocol import messages as m
from workbench.protocol.image import UnsignedImage
from workbench.sim.server import SimOptionError, SimOptions


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("keys")
    a, b = generate_key(d / "a.pem"), generate_key(d / "b.pem")
    return {"a": a.path, "b": b.path, "a_pub": str(a.save_public(d / "a.pub.pem")),
            "b_pub": str(b.save_public(d / "b.pub.pem"))}


@pytest.fixture(scope="module")
def signed(sine_model, keys) -> bytes:
    return make_update_image(sine_model, key=keys["a"],
                             manifest=make_manifest(sine_model, name="sine", version=1))


def runs_sine(dev) -> bool:
    y = dev.infer(np.array([[1.0]], np.float32)).outputs[0][0, 0]
    return abs(float(y) - np.sin(1.0)) < 0.05


def test_a_keyed_board_runs_a_signed_image(sim_url, signed, keys):
    with open_device(sim_url(key=keys["a_pub"])) as dev:
        assert dev.info.capabilities & m.Capability.SIGNED_ONLY
        slot = dev.upload_model(signed, name="sine")
        assert slot.state == m.SlotState.ACTIVE
        assert slot.sha256 == hashlib.sha256(signed).digest()  # of what was sent
        assert slot.size == len(signed)
        assert runs_sine(dev)
        manifest = read_update_image(signed).manifest  # the payload reproduces its goldens
        assert manifest.self_test(lambda xs: dev.infer(*xs).outputs).ok


def test_an_unkeyed_board_has_no_signed_only_bit(sim_url):
    with open_device(sim_url()) as dev:
        assert not dev.info.capabilities & m.Capability.SIGNED_ONLY


def test_unsigned_models_are_refused_on_the_host_before_any_byte(sim_url, signed, sine_model,
                                                                 keys):
    unsigned_image = make_update_image(sine_model, manifest=read_update_image(signed).manifest)
    with open_device(sim_url(key=keys["a_pub"])) as dev:
        dev.upload_model(signed, name="sine")
        before, sent = dev.slots(), dev.session.stats.bytes_tx
        for model, what in ((sine_model, "a raw model"), (unsigned_image, "without a signature")):
            with pytest.raises(ImageUnsigned, match=what) as err:
                dev.upload_model(model)
            assert "workbench.deploy.signing" in str(err.value)  # the fix, in the message
            assert dev.session.stats.bytes_tx == sent
        assert dev.slots() == before


def test_unsigned_models_are_refused_by_the_board_itself(sim_url, signed, sine_model, keys):
    with open_device(sim_url(key=keys["a_pub"])) as dev:
        running = dev.upload_model(signed, name="sine").index
        with pytest.raises(ImageUnsigned, match="raw 3,164-byte model") as err:
            dev.upload_model(sine_model, check=False)
        assert err.value.code == m.ErrorCode.IMAGE_UNSIGNED == 20
        table = dev.slots()
        assert table.active == running and table.slots[1 - running].state == m.SlotState.INVALID
        assert runs_sine(dev)


def test_every_tampering_is_refused_by_the_board_which_keeps_its_model(sim_url, signed, keys):
    with open_device(sim_url(key=keys["a_pub"])) as dev:
        running = dev.upload_model(signed, name="sine").index
        good = dev.slots().slots[running]
        for what, (change, error, says) in TAMPERED.items():
            expected = ImageUnsigned if error is UnsignedImage else SignatureInvalid
            with pytest.raises(expected, match=says) as err:
                dev.upload_model(change(signed, keys), name="bad", check=False)
            assert err.value.code in (20, 21), what
            table = dev.slots()
            assert table.active == running and table.slots[running] == good, what
            assert table.slots[1 - running].state == m.SlotState.INVALID, what
        assert runs_sine(dev)


def test_the_host_refuses_a_hash_mismatch_and_the_fallback_survives(sim_url, signed, keys,
                                                                    other_model):  # noqa: F811
    other = make_update_image(other_model, key=keys["a"],
                              manifest=make_manifest(other_model, name="other", version=2))
    change, _, _ = TAMPERED["payload"]
    with open_device(sim_url(key=keys["a_pub"])) as dev:
        dev.upload_model(signed, name="sine")
        dev.upload_model(other, name="other")
        before, sent = dev.slots(), dev.session.stats.bytes_tx
        assert before.slots[1 - before.active].state == m.SlotState.FALLBACK
        with pytest.raises(SignatureInvalid, match="changed after it was made"):
            dev.upload_model(change(signed, keys))
        assert dev.session.stats.bytes_tx == sent and dev.slots() == before
        dev.rollback()
        assert runs_sine(dev)


def test_any_provisioned_key_is_accepted_and_others_are_not(sim_url, sine_model, keys,
                                                            tmp_path):
    by_b = make_update_image(sine_model, key=keys["b"],
                             manifest=make_manifest(sine_model, name="sine", version=1))
    stranger = generate_key(tmp_path / "stranger.pem")
    by_stranger = make_update_image(sine_model, key=stranger,
                                    manifest=read_update_image(by_b).manifest)
    url = sim_url(key=keys["a_pub"]) + "&key=" + keys["b_pub"]
    with open_device(url) as dev:
        assert dev.upload_model(by_b).state == m.SlotState.ACTIVE
        with pytest.raises(SignatureInvalid, match="does not trust"):
            dev.upload_model(by_stranger)  # passes the host check; the board knows better
        assert runs_sine(dev)


def test_an_unkeyed_board_takes_raw_models_and_images(sim_url, signed, sine_model):
    unsigned_image = make_update_image(sine_model, manifest=read_update_image(signed).manifest)
    change, _, _ = TAMPERED["payload"]
    with open_device(sim_url()) as dev:
        dev.upload_model(sine_model)
        with pytest.raises(SignatureInvalid, match="SHA-256 TLV"):  # its hash is still checked
            dev.upload_model(change(signed, None), check=False)
        for model in (sine_model, signed, unsigned_image):
            slot = dev.upload_model(model)
            assert slot.state == m.SlotState.ACTIVE
            assert slot.sha256 == hashlib.sha256(model).digest()
            assert runs_sine(dev)


def test_a_keyed_board_rechecks_the_signature_when_it_loads(sim_url, signed, sine_model, keys,
                                                            tmp_path):
    """A model installed while the board had no keys does not run once it has them."""
    flash = str(tmp_path / "board.flash")
    with open_device(sim_url(flash=flash)) as dev:
        dev.upload_model(sine_model)
    with open_device(sim_url(flash=flash, key=keys["a_pub"])) as dev:
        assert dev.slots().active != m.NO_SLOT
        assert any("active model failed to load" in e.message and "raw" in e.message
                   for e in dev.logs)
        dev.upload_model(signed)
        assert runs_sine(dev)


def test_deploy_model_signs_and_records_who_signed(sim_url, sine_model, keys, tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    with open_device(sim_url(key=keys["a_pub"])) as dev:
        sent = dev.session.stats.bytes_tx
        with pytest.raises(ImageUnsigned):
            deploy_model(sine_model, dev, registry=reg, name="sine")
        assert dev.session.stats.bytes_tx == sent
        res = deploy_model(sine_model, dev, registry=reg, name="sine", key=keys["a"])
        assert runs_sine(dev)
    v = reg.get("sine", 1)
    image = v.read_signed_image()
    assert (v.path / "model.signed.bin").read_bytes() == image
    assert res.slot.sha256 == hashlib.sha256(image).digest()
    assert v.signed_by == read_update_image(image, keys=[keys["a_pub"]]).verified_by
    assert v.signed_image["image_version"] == "0.0.1+0" and v.signature is not None
    failed, ok = reg.deployments("sine")
    assert failed.result["ok"] is False and "ImageUnsigned" in failed.result["error"]
    assert ok.result["ok"] is True and ok.result["signed_by"] == v.signed_by
    # signing again with the same key is a no-op; the stored image is reused
    assert reg.sign(v, keys["a"]).signed_image == v.signed_image


def test_a_bad_key_option_is_named(tmp_path):
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(SimOptionError) as err:
        SimOptions(keys=(str(tmp_path / "missing.pem"), str(tmp_path / "junk.pem"))).check()
    assert "missing.pem: cannot read it" in str(err.value)
    assert "junk.pem: not a PEM key" in str(err.value)
