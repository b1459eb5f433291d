"""Delta updates (docs/protocol.md 7.5): a detools patch from the active image, rebuilt by the
virtual board into the inactive slot and verified as a full upload.

Real detools on both sides; the virtual board for real, behind a pty (``sim://``) or fed
frames directly (power cuts at MODEL_END); the flash file is read to compare bytes. The
head-only retrain test trains a small zoo model for real (slow).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
from test_firmware import Host  # tests/ is on sys.path
from test_tflite import _edit_sine

from workbench.boards import get_board
from workbench.deploy import ModelRegistry, deploy_model
from workbench.link import (
    DeltaBaseMismatch,
    DeltaError,
    DeltaUnavailable,
    NotSupported,
    VerifyFailed,
    make_patch,
    open_device,
)
from workbench.protocol import messages as m
from workbench.protocol.delta import PatchHeaderError, read_patch_header
from workbench.protocol.framing import Frame, encode_frame
from workbench.sim.firmware import PowerCut, VirtualFirmware
from workbench.sim.flash import Flash, trailer_bytes

pytest.importorskip("detools")


def _described(text: bytes) -> bytes:
    def edit(model):
        model.description = text

    return _edit_sine(edit)


@pytest.fixture(scope="module")
def v2() -> bytes:
    """sine_float with another description: the "new" image, a few bytes away from sine."""
    return _described(b"sine, second version")


@pytest.fixture(scope="module")
def v3() -> bytes:
    return _described(b"sine, third version")


def slot_bytes(url_flash: Path, board: str, index: int, size: int) -> bytes:
    """The first ``size`` bytes of slot ``index`` in the flash file (each slot's area is its
    image then its trailer: docs/protocol.md 7.4)."""
    n = get_board(board).model_slots.slot_bytes
    with open(url_flash, "rb") as f:
        f.seek(index * (n + trailer_bytes(n)))
        return f.read(size)


def delta_begin(patch: bytes, new: bytes, base: bytes, flags=m.BeginFlag.REPLACE_FALLBACK,
                *, image_size: int | None = None, sha: bytes | None = None) -> m.ModelBegin:
    return m.ModelBegin(m.NO_SLOT, len(patch), sha or hashlib.sha256(new).digest(), "v2",
                        flags | m.BeginFlag.DELTA,
                        len(new) if image_size is None else image_size,
                        hashlib.sha256(base).digest())


# ------------------------------------------------------------------ format
def test_the_patch_is_a_sequential_heatshrink_detools_patch(sine_model, v2):
    patch = make_patch(sine_model, v2)
    header = read_patch_header(patch)
    assert (header.patch_type, header.compression, header.to_size) == \
        ("sequential", "heatshrink", len(v2))
    assert patch[header.length] == 0x44          # heatshrink window 2^8, lookahead 2^7
    assert len(patch) < len(v2) // 10
    with pytest.raises(PatchHeaderError, match="takes sequential patches compressed with "
                                               "heatshrink"):
        read_patch_header(bytes([0x01]) + patch[1:])     # the same patch claiming lzma
    with pytest.raises(DeltaError, match="non-empty"):
        make_patch(b"", v2)


# ------------------------------------------------------------------ over a real pty
def test_a_delta_update_lands_the_new_image_byte_for_byte(sim_url, tmp_path, sine_model, v2):
    seen, plans = [], []
    with open_device(sim_url("nano33ble")) as dev:
        assert dev.info.capabilities & m.Capability.DELTA
        old = dev.upload_model(sine_model, name="v1")
        sent = dev.session.stats.bytes_tx
        new = dev.upload_model(v2, name="v2", delta=True, base=sine_model, on_plan=plans.append,
                               progress=lambda a, t: seen.append((a, t)))
        sent = dev.session.stats.bytes_tx - sent
        table = dev.slots()
        out = dev.infer(np.array([[1.0]], np.float32)).outputs[0]
    [plan] = plans
    patch = make_patch(sine_model, v2)
    assert plan.kind == "delta" and plan.sent_bytes == len(patch) == seen[-1][1]
    assert plan.base_sha256 == hashlib.sha256(sine_model).hexdigest()
    assert sent < len(v2) // 2                         # the patch, not the image, went out
    assert table.active == new.index != old.index
    assert new.sha256 == hashlib.sha256(v2).digest() and new.size == len(v2)
    assert table.slots[old.index].state == m.SlotState.FALLBACK
    assert slot_bytes(tmp_path / "nano33ble.flash", "nano33ble", new.index, len(v2)) == v2
    assert np.allclose(out, np.sin(1.0), atol=0.2)    # the sine model runs


def test_a_patch_from_another_base_is_refused_and_the_board_keeps_its_models(
        sim_url, tmp_path, sine_model, v2, v3):
    flash = tmp_path / "nano33ble.flash"
    with open_device(sim_url("nano33ble")) as dev:
        fallback = dev.upload_model(v3, name="v3")
        active = dev.upload_model(sine_model, name="v1")
        before = dev.slots()
        fallback_bytes = slot_bytes(flash, "nano33ble", fallback.index, len(v3))
        # the host knows: base= is not the active image
        with pytest.raises(DeltaBaseMismatch, match="not the board's active image 'v1'"):
            dev.upload_model(v2, delta=True, base=v3)
        # the device knows too: a patch made from v3 (the fallback) is refused at MODEL_BEGIN
        patch = make_patch(v3, v2)
        with pytest.raises(DeltaBaseMismatch) as refused:
            dev.session.request(m.Msg.MODEL_BEGIN, delta_begin(patch, v2, v3).encode())
        assert refused.value.code == 24 and refused.value.detail == active.index
        assert "'v1'" in str(refused.value)
        assert hashlib.sha256(sine_model).hexdigest()[:16] in str(refused.value)
        assert dev.slots() == before                   # nothing changed, fallback included
        out = dev.infer(np.array([[1.0]], np.float32)).outputs[0]
    assert np.allclose(out, np.sin(1.0), atol=0.2)
    assert slot_bytes(flash, "nano33ble", fallback.index, len(v3)) == fallback_bytes


@pytest.mark.parametrize("damage, match", [
    ("truncated", "corrupt"),
    ("other size", "rebuilds 3"),
    ("lying base", "corrupt|SHA-256"),
    ("wrong hash", "SHA-256"),
])
def test_a_patch_that_does_not_rebuild_the_image_invalidates_only_the_target(
        damage, match, sim_url, sine_model, v2, v3):
    patch, image_size, sha = make_patch(sine_model, v2), None, None
    if damage == "truncated":
        patch = patch[: len(patch) // 2]
    elif damage == "other size":
        image_size = len(v2) + 1
    elif damage == "lying base":  # made from v3 but announced as made from the active image
        patch = make_patch(v3, v2)
    else:  # a sound patch, but the image it rebuilds is not the one announced
        sha = hashlib.sha256(v3).digest()
    with open_device(sim_url("nano33ble")) as dev:
        active = dev.upload_model(sine_model, name="v1")
        begin = delta_begin(patch, v2, sine_model, image_size=image_size, sha=sha)
        begun = m.ModelBegun.decode(dev.session.request(m.Msg.MODEL_BEGIN, begin.encode())
                                    .payload)
        for off in range(0, len(patch), begun.chunk_max):
            dev.session.request(m.Msg.MODEL_CHUNK,
                                m.Chunk(begun.slot, off, patch[off:off + begun.chunk_max])
                                .encode())
        with pytest.raises(VerifyFailed, match=match):
            dev.session.request(m.Msg.MODEL_END)
        table = dev.slots()
        assert table.active == active.index and table.slots[active.index] == active
        assert table.slots[begun.slot].state == m.SlotState.INVALID
        out = dev.infer(np.array([[1.0]], np.float32)).outputs[0]
    assert np.allclose(out, np.sin(1.0), atol=0.2)


def test_auto_sends_the_full_image_to_a_board_without_deltas(sim_url, sine_model, v2):
    with open_device(sim_url("nano33ble", delta="off")) as dev:
        assert not dev.info.capabilities & m.Capability.DELTA
        dev.upload_model(sine_model, name="v1")
        plans = []
        slot = dev.upload_model(v2, delta="auto", base=sine_model, on_plan=plans.append)
        assert [p.kind for p in plans] == ["full"] and plans[0].sent_bytes == len(v2)
        assert "no DELTA capability" in plans[0].reason
        assert slot.sha256 == hashlib.sha256(v2).digest() == dev.slots().slots[
            dev.slots().active].sha256
        with pytest.raises(DeltaError, match="no DELTA capability"):
            dev.upload_model(v3_like(v2), delta=True, base=v2)
        patch = make_patch(v2, sine_model)         # a board without it says so when asked
        with pytest.raises(NotSupported, match="--delta off"):
            dev.session.request(m.Msg.MODEL_BEGIN, delta_begin(patch, sine_model, v2).encode())


def v3_like(image: bytes) -> bytes:
    return _described(b"sine, yet another version")


def test_auto_names_why_it_sends_the_full_image(sim_url, sine_model, v2):
    with open_device(sim_url("nano33ble")) as dev:
        plans = []
        dev.upload_model(sine_model, name="v1", delta="auto", on_plan=plans.append)
        assert plans[-1].kind == "full" and "no model is active" in plans[-1].reason
        dev.upload_model(v2, name="v2", delta="auto", on_plan=plans.append)
        assert plans[-1].kind == "full" and "pass it as base=" in plans[-1].reason
        with pytest.raises(DeltaError, match="pass it as base="):
            dev.upload_model(sine_model, delta=True)


def test_deploy_finds_the_base_in_the_registry_and_records_the_route(sim_url, tmp_path,
                                                                     sine_model, v2):
    reg = ModelRegistry(tmp_path / "registry")
    with open_device(sim_url("nano33ble")) as dev:
        first = deploy_model(sine_model, dev, registry=reg, name="sine")
        second = deploy_model(v2, dev, registry=reg, name="sine")
        table = dev.slots()
    assert first.upload.kind == "full" and second.upload.kind == "delta"
    assert second.upload.sent_bytes < len(v2) // 10
    assert table.slots[table.active].sha256.hex() == second.version.sha256
    deps = reg.deployments("sine")
    assert [d.result["route"] for d in deps] == ["full", "delta"]
    assert deps[1].result["sent_bytes"] == second.upload.sent_bytes


def test_without_detools_on_the_host_auto_sends_the_full_image(sim_url, sine_model, v2,
                                                                monkeypatch):
    monkeypatch.setitem(sys.modules, "detools", None)   # the board (another process) has it
    with open_device(sim_url("nano33ble")) as dev:
        dev.upload_model(sine_model, name="v1")
        with pytest.raises(DeltaUnavailable, match=r"tinyml-workbench\[deploy\]"):
            dev.upload_model(v2, delta=True, base=sine_model)
        plans = []
        dev.upload_model(v2, delta="auto", base=sine_model, on_plan=plans.append)
    assert plans[-1].kind == "full" and "detools is not installed" in plans[-1].reason


# ------------------------------------------------------------------ the firmware, frame by frame
@pytest.fixture
def board_path(tmp_path):
    return get_board("nano33ble"), tmp_path / "f.flash"


def boot(board, path, **kw) -> Host:
    return Host(lambda send: VirtualFirmware(
        board, Flash(path, 2, board.model_slots.slot_bytes), send, **kw))


def send_patch(host: Host, begin: m.ModelBegin, patch: bytes, *, upto: int | None = None) -> int:
    begun = m.ModelBegun.decode(host.one(m.Msg.MODEL_BEGIN, begin.encode()).payload)
    for off in range(begun.resume_offset, len(patch) if upto is None else upto, 100):
        reply = host.one(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, off, patch[off:off + 100])
                         .encode())
        assert m.Offset.decode(reply.payload).offset == min(off + 100, len(patch))
    return begun.slot


def test_a_power_cut_while_the_patch_is_applied_keeps_the_old_model_and_resumes(
        board_path, sine_model, v2):
    board, path = board_path
    host = boot(board, path)
    old = host.upload(sine_model)
    patch = make_patch(sine_model, v2)
    begin = delta_begin(patch, v2, sine_model)
    slot = send_patch(host, begin, patch)
    host.fw.flash.arm_power_cut(image_bytes=2100)         # the 2101st rebuilt byte never lands
    with pytest.raises(PowerCut):
        host.fw.receive(encode_frame(Frame(m.Msg.MODEL_END, 99, 99, b"")))
    host.fw.flash.close()

    host = boot(board, path)                              # power back: the old model runs
    assert host.fw.flash.table.active == old and host.fw.runner is not None
    target = host.fw.flash.slot(slot)
    # the rebuild programs 4 KiB blocks and marks them after: the cut block is not vouched for
    assert target.state_enum == m.SlotState.RECEIVING and target.written == 0
    # the patch was in RAM: it is sent again from 0 and the image is rebuilt over the same bytes
    begun = m.ModelBegun.decode(host.one(m.Msg.MODEL_BEGIN, begin.encode()).payload)
    assert begun.slot == slot and begun.resume_offset == 0
    send_patch(host, begin, patch)
    verified = m.ModelVerified.decode(host.one(m.Msg.MODEL_END).payload)
    assert verified.sha256 == hashlib.sha256(v2).digest()
    assert host.fw.flash.read(slot) == v2


def test_an_interrupted_patch_resumes_from_what_ram_still_holds(board_path, sine_model, v2):
    board, path = board_path
    host = boot(board, path)
    host.upload(sine_model)
    patch = make_patch(sine_model, v2)
    assert len(patch) > 100
    begin = delta_begin(patch, v2, sine_model)
    send_patch(host, begin, patch, upto=100)               # then the link drops
    early = m.Error.decode(host.one(m.Msg.MODEL_END).payload)
    assert early.code == m.ErrorCode.VERIFY_FAILED and early.detail == 100
    begun = m.ModelBegun.decode(host.one(m.Msg.MODEL_BEGIN, begin.encode()).payload)
    assert begun.resume_offset == 100                      # same patch, no reset: resumed
    send_patch(host, begin, patch)
    assert host.one(m.Msg.MODEL_END).type == m.response_type(m.Msg.MODEL_END)
    # a reset loses the staged patch: the same transfer starts again at 0
    send_patch(host, begin, patch, upto=100)
    host.one(m.Msg.RESET)
    assert m.ModelBegun.decode(host.one(m.Msg.MODEL_BEGIN, begin.encode())
                               .payload).resume_offset == 0


def test_a_board_without_detools_says_so(board_path, sine_model, v2, monkeypatch):
    monkeypatch.setitem(sys.modules, "detools", None)
    board, path = board_path
    host = boot(board, path)
    info = m.Info.decode(host.ask(m.Msg.HELLO, m.Hello().encode())[0].payload)
    assert not info.capabilities & m.Capability.DELTA
    host.upload(sine_model)                                 # full uploads work as before
    err = m.Error.decode(host.one(m.Msg.MODEL_BEGIN, delta_begin(
        b"x" * 40, v2, sine_model).encode()).payload)
    assert err.code == m.ErrorCode.NOT_SUPPORTED
    assert "detools is not installed" in err.message and "[deploy]" in err.message


def test_a_patch_larger_than_the_buffer_is_refused_before_it_is_sent(board_path, sine_model,
                                                                      v2):
    from workbench.sim.delta import PATCH_BUFFER_BYTES

    board, path = board_path
    host = boot(board, path)
    host.upload(sine_model)
    big = m.ModelBegin(m.NO_SLOT, PATCH_BUFFER_BYTES + 1, hashlib.sha256(v2).digest(), "v2",
                       m.BeginFlag.DELTA, len(v2), hashlib.sha256(sine_model).digest())
    err = m.Error.decode(host.one(m.Msg.MODEL_BEGIN, big.encode()).payload)
    assert err.code == m.ErrorCode.MODEL_TOO_LARGE and err.detail == PATCH_BUFFER_BYTES
    assert "full image" in err.message


# ------------------------------------------------------------------ a real head-only retrain
@pytest.fixture(scope="module")
def retrained():
    """(v1, head-only v2) int8 images of the zoo's imu_cnn "s", trained on BasicMotions; v2
    retrains only the classifier head, exported with the same calibration windows."""
    pytest.importorskip("tf_keras")
    pytest.importorskip("aeon")
    import tempfile

    from workbench.data.formats import example_dataset
    from workbench.train.export import to_tflite
    from workbench.train.fit import TrainConfig, TrainingData, train
    from workbench.train.tf_runtime import keras
    from workbench.train.zoo import imu_cnn

    with tempfile.TemporaryDirectory() as tmp:
        ds = example_dataset("basicmotions", Path(tmp) / "bm")
        data = TrainingData.from_dataset(ds, length=100, predefined="split", val=0.2, seed=0)
    v1 = train(lambda: imu_cnn(data.input_shape, data.n_classes, "s"), data,
               TrainConfig(epochs=8, patience=8, seed=0)).model
    head = keras().models.clone_model(v1)
    head.set_weights(v1.get_weights())
    last = [layer for layer in head.layers if layer.weights][-1]   # Dense "head", not Softmax
    assert last.name == "head"
    for layer in head.layers:
        layer.trainable = layer is last
    head = train(head, data, TrainConfig(epochs=4, patience=4, seed=1, learning_rate=1e-2)).model
    calib = data.X_train
    return (to_tflite(v1, quantize="int8", representative=calib),
            to_tflite(head, quantize="int8", representative=calib), data)


@pytest.mark.slow
def test_a_head_only_retrain_ships_in_under_a_fifth_of_the_image(retrained, sim_url, tmp_path):
    """Issue 9's "done when": a head-only retrain ships in under 20 % of the full image's
    bytes (all bytes on the wire, framing and the other requests included); the board then
    runs the new model byte for byte and gives TFLite Micro's answer on the host."""
    from workbench.tflite import TflmRunner

    v1, v2, data = retrained
    assert v1 != v2
    arena = get_board("nano33ble").model_slots.arena_bytes
    host = TflmRunner(v2, arena)
    spec = host.input_details[0]
    x = data.X_test[:1].astype(np.float32)
    if np.dtype(spec.dtype).kind == "i":
        info = np.iinfo(spec.dtype)
        x = np.clip(np.round(x / spec.scale) + spec.zero_point, info.min, info.max)
    x = x.astype(spec.dtype).reshape(spec.shape)
    with open_device(sim_url("nano33ble")) as dev:
        dev.upload_model(v1, name="v1")
        sent = dev.session.stats.bytes_tx
        plans = []
        slot = dev.upload_model(v2, name="v2", delta="auto", base=v1, on_plan=plans.append)
        sent = dev.session.stats.bytes_tx - sent
        on_board = dev.infer(x).outputs[0]
    assert plans[-1].kind == "delta"
    assert sent < 0.2 * len(v2), f"{sent} bytes on the wire for a {len(v2)}-byte image"
    assert slot_bytes(tmp_path / "nano33ble.flash", "nano33ble", slot.index, len(v2)) == v2
    assert np.array_equal(on_board, host.invoke([x])[0])
