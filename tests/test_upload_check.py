"""Nothing reaches a slot that will not run: the host checks an image before its first
byte, and the board never gives up its fallback to an upload it was not told may take it.

Against the real virtual board (a process behind a pty, TFLite Micro for real); the
flash file is read directly to show the fallback image is intact byte for byte.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from test_tflite import _edit_sine, _with_op, schema  # tests/ is on sys.path

from workbench.boards import get_board
from workbench.link import (
    ArenaTooSmall,
    ModelInvalid,
    ModelTooLarge,
    SlotFallback,
    UnsupportedOp,
    check_image,
    open_device,
)
from workbench.protocol import messages as m
from workbench.tflite import HYBRID_MESSAGE, hybrid_ops, inspect_model, min_arena

HYBRID_TEXT = ("hybrid (dynamic-range) model: TFLite Micro has no hybrid kernels; "
               "convert with full int8 quantization")


@pytest.fixture(scope="module")
def other_model() -> bytes:
    """sine_float with another description: a second valid image with other bytes."""

    def edit(model):
        model.description = b"the second image"

    return _edit_sine(edit)


def with_fallback(dev, first: bytes, second: bytes) -> tuple[int, int]:
    """Upload ``first`` then ``second``: second active, first the fallback."""
    a = dev.upload_model(first, name="first").index
    b = dev.upload_model(second, name="second").index
    table = dev.slots()
    assert table.active == b and table.slots[a].state == m.SlotState.FALLBACK
    return a, b


def slot_image(flash: Path, slot_bytes: int, index: int, size: int) -> bytes:
    with open(flash, "rb") as f:
        f.seek(index * slot_bytes)
        return f.read(size)


BAD_IMAGES = {
    "garbage": (lambda info: b"not a model at all" * 20, ModelInvalid, "TFL3"),
    "too large": (lambda info: bytes(info.slot_bytes + 1), ModelTooLarge, "quantize"),
    "missing kernel": (lambda info: _with_op(schema.BuiltinOperator.LSH_PROJECTION),
                       UnsupportedOp, "LSH_PROJECTION"),
}


@pytest.mark.parametrize("kind", BAD_IMAGES)
def test_a_bad_image_sends_no_byte_and_the_fallback_survives(kind, sim_url, tmp_path,
                                                             sine_model, other_model):
    make, error, says = BAD_IMAGES[kind]
    with open_device(sim_url()) as dev:
        fallback, active = with_fallback(dev, sine_model, other_model)
        before = dev.slots()
        sent = dev.session.stats.bytes_tx
        with pytest.raises(error, match=says):
            dev.upload_model(make(dev.info), name="bad")
        assert dev.session.stats.bytes_tx == sent  # refused on the host: not one byte went
        assert dev.slots() == before
        flash = tmp_path / "nano33ble.flash"
        assert slot_image(flash, dev.info.slot_bytes, fallback, len(sine_model)) == sine_model
        assert dev.rollback() == fallback  # the rollback target is still there
        assert dev.infer(np.array([[1.0]], np.float32)).outputs[0][0, 0] == pytest.approx(
            np.sin(1.0), abs=0.05)


def test_the_too_large_refusal_carries_the_slot_size(sim_url):
    with open_device(sim_url()) as dev:
        with pytest.raises(ModelTooLarge) as err:
            dev.upload_model(bytes(dev.info.slot_bytes + 1))
        assert err.value.detail == dev.info.slot_bytes
        assert f"{dev.info.slot_bytes:,}" in str(err.value)
        assert f"{dev.info.slot_bytes + 1:,} bytes" in str(err.value)


def test_unchecked_uploads_cannot_take_the_fallback(sim_url, tmp_path, sine_model,
                                                    other_model):
    with open_device(sim_url()) as dev:
        fallback, active = with_fallback(dev, sine_model, other_model)
        before = dev.slots()
        for image in (b"not a model at all" * 20, sine_model):  # bad or good: no consent
            with pytest.raises(SlotFallback, match="fallback") as err:
                dev.upload_model(image, check=False)
            assert err.value.detail == fallback
            assert dev.slots() == before
        assert slot_image(tmp_path / "nano33ble.flash", dev.info.slot_bytes, fallback,
                          len(sine_model)) == sine_model
        # a checked image may replace it: the old active model becomes the new fallback
        slot = dev.upload_model(sine_model, name="third")
        assert slot.index == fallback and slot.state == m.SlotState.ACTIVE
        assert dev.slots().slots[active].state == m.SlotState.FALLBACK


def test_the_board_still_verifies_an_unchecked_image(sim_url, sine_model):
    with open_device(sim_url()) as dev:
        running = dev.upload_model(sine_model).index
        with pytest.raises(ModelInvalid, match="TFL3"):
            dev.upload_model(b"not a model at all" * 20, check=False)
        table = dev.slots()
        assert table.active == running
        spare = 1 - running
        assert table.slots[spare].state == m.SlotState.INVALID


def test_a_checked_image_needs_the_arena_the_board_reports(sim_url, sine_model):
    with open_device(sim_url()) as dev:
        checked = check_image(sine_model, dev.info)
        assert checked.sha256 == hashlib.sha256(sine_model).digest()
        assert checked.size_bytes == len(sine_model)
        assert checked.slot_bytes == dev.info.slot_bytes
        slot = dev.upload_model(sine_model)
        assert slot.arena_bytes == checked.arena_bytes
    board = get_board("nano33ble")  # the catalog entry answers the same
    assert check_image(sine_model, board).arena_bytes == checked.arena_bytes


def test_a_litert_board_is_not_judged_by_tflite_micro(sine_model):
    """A Linux board runs LiteRT: the check loads the model there; no TFLite Micro arena."""
    checked = check_image(sine_model, get_board("rpi4"))
    assert checked.arena_bytes == 0 and checked.probe.ok and checked.probe.arena_limit == 0
    with pytest.raises(ModelInvalid):
        check_image(b"TFL3 not a model", get_board("rpi4"))
    with pytest.raises(UnsupportedOp, match="LiteRT has no kernel for: CUSTOM:MyFancyOp: "
                       "Raspberry Pi 4 Model B runs LiteRT"):
        check_image(_with_op(schema.BuiltinOperator.CUSTOM, b"MyFancyOp"), get_board("rpi4"))


def test_a_litert_runner_refuses_what_litert_cannot_run(sim_url, sine_model):
    """The device side: sim://rpi4 checks each image in LiteRT at MODEL_END and keeps its
    model when one does not run there."""
    with open_device(sim_url("rpi4")) as dev:
        dev.upload_model(sine_model)
        with pytest.raises(UnsupportedOp, match="CUSTOM:MyFancyOp"):
            dev.upload_model(_with_op(schema.BuiltinOperator.CUSTOM, b"MyFancyOp"), check=False)
        table = dev.slots()
        assert table.active == 0 and table.slots[1].state == m.SlotState.INVALID
        assert dev.infer(np.array([[0.5]], np.float32)).outputs[0].shape == (1, 1)


def test_too_small_an_arena_is_named_with_both_figures(sine_model):
    board = get_board("nano33ble")
    tiny = dataclasses.replace(board, model_slots=dataclasses.replace(
        board.model_slots, arena_bytes=1024))
    need = min_arena(sine_model, 65536).needed_bytes
    with pytest.raises(ArenaTooSmall) as err:
        check_image(sine_model, tiny)
    assert "1,024-byte tensor arena" in str(err.value)
    assert f"needs {need:,} bytes" in str(err.value)


# ---------------------------------------------------------------- dynamic-range models


@pytest.fixture(scope="module")
def variants() -> dict[str, bytes]:
    """One small dense model as a dynamic-range (hybrid) and a full-int8 .tflite.

    The first layer has 64 x 32 weights: the converter quantizes weights of at least
    1024 elements, so that layer's FULLY_CONNECTED becomes hybrid.
    """
    keras = pytest.importorskip("tf_keras")
    from workbench.train.export import to_tflite

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((64,)),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(4)])
    rep = np.random.default_rng(0).normal(size=(32, 64)).astype(np.float32)
    return {"dynamic": to_tflite(model, quantize="dynamic"),
            "int8": to_tflite(model, quantize="int8", representative=rep)}


@pytest.mark.slow
def test_hybrid_ops_are_found_in_the_graph(variants, sine_model):
    from workbench.optimize.graph import analyze

    hybrid = hybrid_ops(inspect_model(variants["dynamic"]))
    assert hybrid and all(op.startswith("FULLY_CONNECTED (op ") for op in hybrid)
    assert analyze(variants["dynamic"]).is_hybrid  # the graph analysis uses the same rule
    assert hybrid_ops(inspect_model(variants["int8"])) == []
    assert hybrid_ops(inspect_model(sine_model)) == []
    assert HYBRID_MESSAGE == HYBRID_TEXT


@pytest.mark.slow
def test_a_hybrid_model_is_refused_for_what_it_is_on_both_sides(variants, sim_url):
    dynamic = variants["dynamic"]
    with open_device(sim_url()) as dev:
        sent = dev.session.stats.bytes_tx
        with pytest.raises(UnsupportedOp, match=HYBRID_TEXT.replace("(", r"\(")
                           .replace(")", r"\)")):
            dev.upload_model(dynamic)
        assert dev.session.stats.bytes_tx == sent
        assert dev.slots().active == m.NO_SLOT
        # the board, sent it unchecked, names the same reason (not the arena)
        with pytest.raises(UnsupportedOp) as err:
            dev.upload_model(dynamic, check=False)
        assert HYBRID_TEXT in str(err.value) and "arena" not in str(err.value)
        assert err.value.code == m.ErrorCode.UNSUPPORTED_OP
        # the same network fully quantized runs: it was never about size or memory
        slot = dev.upload_model(variants["int8"])
        assert slot.state == m.SlotState.ACTIVE and 0 < slot.arena_bytes < 4096
