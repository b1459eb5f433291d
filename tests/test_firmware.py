"""The virtual firmware fed frames directly (no process, no port): protocol rules."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from workbench.boards import get_board
from workbench.protocol import messages as m
from workbench.protocol.framing import FLAG_RETRY, Frame, FrameParser, encode_frame
from workbench.sim.firmware import VirtualFirmware
from workbench.sim.flash import Flash


class Host:
    """Just enough of a host to drive the firmware frame by frame."""

    def __init__(self, fw_factory):
        self.out = bytearray()
        self.fw = fw_factory(self.out.extend)
        self.parser = FrameParser()
        self.req = 0

    def ask(self, ftype, payload=b"", *, req=None, flags=0) -> list[Frame]:
        if req is None:
            self.req += 1
            req = self.req
        self.out.clear()
        self.fw.receive(encode_frame(Frame(ftype, req, req, payload, flags)))
        return self.parser.feed(bytes(self.out))

    def one(self, ftype, payload=b"", **kw) -> Frame:
        frames = [f for f in self.ask(ftype, payload, **kw) if not m.is_event(f.type)]
        assert len(frames) == 1
        return frames[0]

    def upload(self, model: bytes) -> int:
        begun = m.ModelBegun.decode(self.one(m.Msg.MODEL_BEGIN, m.ModelBegin(
            m.NO_SLOT, len(model), hashlib.sha256(model).digest()).encode()).payload)
        for off in range(0, len(model), 1000):
            self.one(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, off, model[off:off + 1000]).encode())
        assert self.one(m.Msg.MODEL_END).type == m.Msg.MODEL_END | 0x80
        self.one(m.Msg.MODEL_COMMIT, m.SlotRef(begun.slot).encode())
        return begun.slot


@pytest.fixture
def host(tmp_path):
    board = get_board("nano33ble")
    flash = Flash(tmp_path / "f.flash", 2, board.model_slots.slot_bytes)
    return Host(lambda send: VirtualFirmware(board, flash, send))


def test_a_retried_request_is_not_executed_twice(host, sine_model):
    host.upload(sine_model)
    x = np.array([[1.0]], np.float32).tobytes()
    first = host.one(m.Msg.INFER, m.Infer(((0, x),)).encode(), req=500)
    again = host.one(m.Msg.INFER, m.Infer(((0, x),)).encode(), req=500, flags=FLAG_RETRY)
    assert again.payload == first.payload and again.seq == first.seq + 1
    assert host.fw.inferences == 1  # answered from the cache
    host.one(m.Msg.INFER, m.Infer(((0, x),)).encode(), req=501)
    assert host.fw.inferences == 2


def test_requests_without_payload_reject_one(host):
    reply = host.one(m.Msg.SLOT_STATUS, b"\x01")
    assert reply.type == m.Msg.ERROR
    assert m.Error.decode(reply.payload).code == m.ErrorCode.MALFORMED


def test_chunks_out_of_order_name_the_expected_offset(host, sine_model):
    begun = m.ModelBegun.decode(host.one(m.Msg.MODEL_BEGIN, m.ModelBegin(
        m.NO_SLOT, len(sine_model), hashlib.sha256(sine_model).digest()).encode()).payload)
    host.one(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, 0, sine_model[:1000]).encode())
    skip = host.one(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, 2000, sine_model[2000:3000]).encode())
    err = m.Error.decode(skip.payload)
    assert err.code == m.ErrorCode.OUT_OF_ORDER and err.detail == 1000
    dup = host.one(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, 0, sine_model[:1000]).encode())
    assert m.Offset.decode(dup.payload).offset == 1000  # a duplicate is acknowledged


def test_corrupted_image_fails_verification(host, sine_model):
    wrong = hashlib.sha256(b"something else").digest()
    begun = m.ModelBegun.decode(host.one(m.Msg.MODEL_BEGIN, m.ModelBegin(
        m.NO_SLOT, len(sine_model), wrong).encode()).payload)
    for off in range(0, len(sine_model), 1000):
        host.one(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, off, sine_model[off:off + 1000]).encode())
    err = m.Error.decode(host.one(m.Msg.MODEL_END).payload)
    assert err.code == m.ErrorCode.VERIFY_FAILED and "SHA-256" in err.message
    assert host.fw.flash.slot(begun.slot).state_enum == m.SlotState.INVALID


def test_writing_the_running_slot_is_refused(host, sine_model):
    active = host.upload(sine_model)
    reply = host.one(m.Msg.MODEL_BEGIN, m.ModelBegin(
        active, len(sine_model), hashlib.sha256(sine_model).digest()).encode())
    assert m.Error.decode(reply.payload).code == m.ErrorCode.SLOT_ACTIVE
    reply = host.one(m.Msg.MODEL_BEGIN, m.ModelBegin(
        7, len(sine_model), hashlib.sha256(sine_model).digest()).encode())
    assert m.Error.decode(reply.payload).code == m.ErrorCode.NOT_FOUND


def test_a_corrupt_active_image_falls_back_at_boot(tmp_path, sine_model):
    board = get_board("nano33ble")
    path = tmp_path / "f.flash"
    host = Host(lambda send: VirtualFirmware(board, Flash(path, 2, board.model_slots.slot_bytes),
                                             send))
    first = host.upload(sine_model)
    second = host.upload(sine_model)
    host.fw.flash.close()
    with open(path, "r+b") as f:  # a bit rots in the active image
        f.seek(second * board.model_slots.slot_bytes + 100)
        f.write(b"\xff")
    host = Host(lambda send: VirtualFirmware(board, Flash(path, 2, board.model_slots.slot_bytes),
                                             send))
    assert host.fw.flash.table.active == first
    frames = host.ask(m.Msg.HELLO, m.Hello().encode())
    assert m.Info.decode(frames[0].payload).active_slot == first
    logs = [m.Log.decode(f.payload).message for f in frames if f.type == m.Msg.LOG]
    assert any("hash check" in t for t in logs) and any("fallback" in t for t in logs)


def test_outputs_too_large_for_one_frame_are_fetched_in_pieces(host):
    """GET_OUTPUT serves the last inference's outputs by offset."""
    host.fw.outputs = [np.arange(600, dtype=np.float32)]
    got = bytearray()
    while len(got) < 2400:
        chunk = m.Chunk.decode(host.one(m.Msg.GET_OUTPUT, m.GetOutput(0, len(got), 1000)
                                        .encode()).payload)
        assert chunk.offset == len(got)
        got += chunk.data
    assert np.array_equal(np.frombuffer(bytes(got), np.float32), np.arange(600))
