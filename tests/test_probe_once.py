"""A probe's result travels with the model: one measurement, one upload to the virtual
board, one prediction each start no more TFLite Micro child processes than needed, and
every place that shows a model's arena shows the same figure (the smallest that works).

Children are counted through the ``spawn`` dependency each layer passes down (a wrapper
around the real ``subprocess.Popen``); the interpreter runs for real.
"""

from __future__ import annotations

import hashlib
import subprocess

import numpy as np

from workbench.boards import get_board
from workbench.protocol import messages as m
from workbench.protocol.framing import Frame, FrameParser, encode_frame
from workbench.sim.firmware import VirtualFirmware
from workbench.sim.flash import Flash
from workbench.tflite import min_arena


class Spawner:
    """Starts real children with ``subprocess.Popen`` and counts them."""

    def __init__(self):
        self.count = 0

    def __call__(self, cmd, **kwargs):
        self.count += 1
        return subprocess.Popen(cmd, **kwargs)


class Board:
    """A virtual board's firmware fed frames directly, with counted probe children."""

    def __init__(self, tmp_path, arena_bytes: int | None = None):
        board = get_board("nano33ble")
        if arena_bytes is not None:
            import dataclasses

            board = dataclasses.replace(board, model_slots=dataclasses.replace(
                board.model_slots, arena_bytes=arena_bytes))
        self.spawn = Spawner()
        self.out = bytearray()
        self.fw = VirtualFirmware(board, Flash(tmp_path / "f.flash", 2,
                                               board.model_slots.slot_bytes),
                                  self.out.extend, spawn=self.spawn)
        self.parser = FrameParser()
        self.req = 0

    def one(self, ftype, payload=b"") -> Frame:
        self.req += 1
        self.out.clear()
        self.fw.receive(encode_frame(Frame(ftype, self.req, self.req, payload)))
        (frame,) = [f for f in self.parser.feed(bytes(self.out)) if not m.is_event(f.type)]
        return frame

    def send_model(self, model: bytes) -> tuple[int, Frame]:
        begun = m.ModelBegun.decode(self.one(m.Msg.MODEL_BEGIN, m.ModelBegin(
            m.NO_SLOT, len(model), hashlib.sha256(model).digest()).encode()).payload)
        for off in range(0, len(model), 1000):
            self.one(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, off, model[off:off + 1000]).encode())
        return begun.slot, self.one(m.Msg.MODEL_END)


def test_an_upload_probes_once_and_commit_reuses_it(tmp_path, sine_model):
    board = Board(tmp_path)
    slot, end = board.send_model(sine_model)
    assert end.type == m.Msg.MODEL_END | 0x80
    assert board.spawn.count == 1  # verification: the arena search, in one child
    board.one(m.Msg.MODEL_COMMIT, m.SlotRef(slot).encode())
    assert board.fw.runner is not None
    assert board.spawn.count == 1  # commit runs the model MODEL_END verified: no new child
    result = m.Result.decode(board.one(m.Msg.INFER, m.Infer(
        ((0, np.array([[1.0]], np.float32).tobytes()),)).encode()).payload)
    assert abs(np.frombuffer(result.outputs[0].data, np.float32)[0] - np.sin(1.0)) < 0.05
    assert board.spawn.count == 1


def test_the_board_and_the_report_show_the_same_arena(tmp_path, sine_model):
    """Lesson 00's board said 1536 bytes for sine_float (what TFLM holds once
    allocated), `workbench report` 1936 (the smallest arena that works). The board now
    reports the arena the model needs, everywhere it shows one."""
    board = Board(tmp_path)
    slot, end = board.send_model(sine_model)
    verified = m.ModelVerified.decode(end.payload)
    fit = min_arena(sine_model, 4 << 20)
    assert verified.arena_bytes == fit.needed_bytes
    board.one(m.Msg.MODEL_COMMIT, m.SlotRef(slot).encode())
    table = m.SlotTable.decode(board.one(m.Msg.SLOT_STATUS).payload)
    assert table.slots[slot].arena_bytes == fit.needed_bytes
    result = m.Result.decode(board.one(m.Msg.INFER, m.Infer(
        ((0, np.array([[1.0]], np.float32).tobytes()),)).encode()).payload)
    assert result.arena_bytes == fit.needed_bytes
    # The two figures really differ, so the test can tell them apart.
    assert fit.used_bytes < fit.needed_bytes


def test_a_board_one_arena_step_too_small_refuses_the_model(tmp_path, sine_model):
    needed = min_arena(sine_model, 1 << 20).needed_bytes
    board = Board(tmp_path, arena_bytes=needed - 16)
    _, end = board.send_model(sine_model)
    err = m.Error.decode(end.payload)
    assert err.code == m.ErrorCode.ARENA_TOO_SMALL
    (tmp_path / "exact").mkdir()
    _, end = Board(tmp_path / "exact", arena_bytes=needed).send_model(sine_model)
    assert m.ModelVerified.decode(end.payload).arena_bytes == needed


def test_an_unsupported_op_is_refused_by_kind(tmp_path):
    from test_tflite import _with_op, schema

    board = Board(tmp_path)
    _, end = board.send_model(_with_op(schema.BuiltinOperator.LSH_PROJECTION))
    err = m.Error.decode(end.payload)
    assert err.code == m.ErrorCode.UNSUPPORTED_OP and "LSH_PROJECTION" in err.message


def test_predict_with_the_search_probe_starts_no_child(sine_model):
    from workbench.train.export import predict_tflite

    spawn = Spawner()
    fit = min_arena(sine_model, 1 << 20, spawn=spawn)
    assert spawn.count == 1
    X = np.linspace(0, 3, 7, dtype=np.float32)[:, None]
    y = predict_tflite(sine_model, X, arena_bytes=fit.needed_bytes + 1024, probed=fit.probe,
                       spawn=spawn)
    assert spawn.count == 1
    np.testing.assert_allclose(y[:, 0], np.sin(X[:, 0]), atol=0.05)
    predict_tflite(sine_model, X, spawn=spawn)  # nothing to reuse: one probe of its own
    assert spawn.count == 2


def test_one_measurement_starts_one_child(sine_model):
    from workbench.optimize import measure, variant_from_tflite

    X = np.linspace(0, 6, 40, dtype=np.float32)[:, None]
    y = (np.sin(X[:, 0]) > 0).astype(int)
    spawn = Spawner()
    got = measure(variant_from_tflite("sine", sine_model), (X, y, ["neg", "pos"]),
                  spawn=spawn)
    assert got.arena_bytes == min_arena(sine_model, 1 << 20).needed_bytes
    assert got.n_test == 40 and got.runtime == "tflite-micro"
    assert spawn.count == 1  # the arena search; accuracy reuses its probe


def test_a_model_that_cannot_run_is_measured_after_one_child():
    from test_tflite import _with_op, schema

    from workbench.optimize import measure

    spawn = Spawner()
    got = measure(_with_op(schema.BuiltinOperator.LSH_PROJECTION), spawn=spawn)
    assert got.arena_bytes is None and got.unsupported_ops == ["LSH_PROJECTION"]
    assert spawn.count == 1
