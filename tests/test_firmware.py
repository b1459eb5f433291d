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
    where = host.fw.flash.area(second) + 100
    host.fw.flash.close()
    with open(path, "r+b") as f:  # a bit rots in the active image
        f.seek(where)
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


# ------------------------------------------------------------------ limits (docs/protocol.md 5.21)

def error_of(frame: Frame) -> m.Error:
    assert frame.type == m.Msg.ERROR, f"expected an ERROR, got type 0x{frame.type:02x}"
    return m.Error.decode(frame.payload)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clocked(tmp_path):
    """A host on a firmware with a hand-moved clock and a settable TX backlog."""
    board = get_board("nano33ble")
    flash = Flash(tmp_path / "f.flash", 2, board.model_slots.slot_bytes)
    clock, backlog = Clock(), [0]
    host = Host(lambda send: VirtualFirmware(board, flash, send, clock=clock,
                                             tx_backlog=lambda: backlog[0]))
    return host, clock, backlog


@pytest.mark.parametrize("rate", [1e9, -1.0, 0.001, float("nan"), float("inf")])
def test_line_mode_rate_out_of_range_is_refused_and_nothing_changes(clocked, rate):
    """SET_MODE(LINE) at 1e9 Hz made the board generate gigabytes of samples."""
    host = clocked[0]
    err = error_of(host.one(m.Msg.SET_MODE, m.SetMode(m.Mode.LINE, 0, rate).encode()))
    assert err.code == m.ErrorCode.BAD_ARGUMENT and "cannot sample at" in err.message
    assert "9520 Hz" in err.message  # says what is allowed: 10 x 952 Hz for the accelerometer
    assert host.fw.mode == m.Mode.FRAMED and host.fw.line is None
    assert m.Info.decode(host.one(m.Msg.HELLO, m.Hello().encode()).payload).board_id


def test_line_mode_at_the_highest_rate_is_accepted(clocked):
    host = clocked[0]
    reply = host.one(m.Msg.SET_MODE, m.SetMode(m.Mode.LINE, 0, 9520.0).encode())
    assert reply.type == m.Msg.SET_MODE | 0x80 and host.fw.mode == m.Mode.LINE


@pytest.mark.parametrize("rate", [float("nan"), -0.5, 0.005, 9520.5])
def test_stream_rate_out_of_range_is_refused(host, rate):
    err = error_of(host.one(m.Msg.STREAM_START, m.StreamStart(0, rate).encode()))
    assert err.code == m.ErrorCode.BAD_ARGUMENT and not host.fw.streams


def test_samples_per_frame_beyond_one_frame_is_refused(host):
    # accelerometer: 3 x int16 = 6 bytes per sample; (1024 - 13) // 6 = 168
    ok = host.one(m.Msg.STREAM_START, m.StreamStart(0, 0, 168).encode())
    assert m.StreamStarted.decode(ok.payload).samples_per_frame == 168
    err = error_of(host.one(m.Msg.STREAM_START, m.StreamStart(0, 0, 169).encode()))
    assert err.code == m.ErrorCode.BAD_ARGUMENT and "at most 168" in err.message


@pytest.mark.parametrize("period", [1, 99])
def test_telemetry_period_below_the_minimum_is_refused(clocked, period):
    """TELEMETRY_CONFIG with a 1 ms period wedged the board."""
    host = clocked[0]
    err = error_of(host.one(m.Msg.TELEMETRY_CONFIG, m.TelemetryConfig(period).encode()))
    assert err.code == m.ErrorCode.BAD_ARGUMENT and "at least 100 ms" in err.message
    assert host.fw.telemetry_period == 0


def test_telemetry_waits_while_the_send_buffer_is_full(clocked):
    host, clock, backlog = clocked
    assert host.one(m.Msg.TELEMETRY_CONFIG, m.TelemetryConfig(100).encode()).type == 0xA3

    def telemetry_after_tick() -> int:
        host.out.clear()
        host.fw.tick()
        return sum(f.type == m.Msg.TELEMETRY for f in host.parser.feed(bytes(host.out)))

    assert telemetry_after_tick() == 1  # the first one at once
    backlog[0] = 4097  # more than TX_BUFFER_BYTES waits to be sent
    for _ in range(5):
        clock.t += 0.1
        assert telemetry_after_tick() == 0
    backlog[0] = 0
    clock.t += 0.1
    assert telemetry_after_tick() == 1


def test_line_output_never_overfills_the_send_buffer(clocked):
    host, clock, backlog = clocked
    host.one(m.Msg.SET_MODE, m.SetMode(m.Mode.LINE, 0, 9520.0).encode())
    backlog[0] = 3000
    host.out.clear()
    clock.t += 1.0  # 9520 lines are due at once
    host.fw.tick()
    assert 0 < len(host.out) <= 4096 - 3000
    line = host.fw.line
    assert line.produced + line.dropped == 9520 and line.dropped > 9000


@pytest.mark.parametrize("drop, flip", [(1.0, 0.0), (0.0, 0.5), (float("nan"), 0.0),
                                        (-0.1, 0.0), (0.0, float("inf"))])
def test_fault_rates_out_of_range_are_refused_and_nothing_changes(host, drop, flip):
    """A drop rate of 1.0 left the board deaf for good."""
    before = host.fw.faults
    err = error_of(host.one(m.Msg.SIM_FAULTS, m.Faults(drop, flip, 100).encode()))
    assert err.code == m.ErrorCode.BAD_ARGUMENT and "0 to 0.05" in err.message
    assert host.fw.faults is before and host.fw.power_cut_budget is None


def test_fault_rates_at_the_limit_are_accepted(host):
    assert host.one(m.Msg.SIM_FAULTS, m.Faults(0.05, 0.05).encode()).type == 0xB1
    assert (host.fw.faults.drop_rate, host.fw.faults.flip_rate) == pytest.approx((0.05, 0.05))


def test_a_chunk_longer_than_chunk_max_is_refused(host, sine_model):
    begun = m.ModelBegun.decode(host.one(m.Msg.MODEL_BEGIN, m.ModelBegin(
        m.NO_SLOT, len(sine_model), hashlib.sha256(sine_model).digest()).encode()).payload)
    too_long = sine_model[:begun.chunk_max + 1]
    err = error_of(host.one(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, 0, too_long).encode()))
    assert err.code == m.ErrorCode.BAD_ARGUMENT and "chunk_max" in err.message
    assert host.fw.flash.slot(begun.slot).written == 0
    ok = host.one(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, 0, too_long[:-1]).encode())
    assert m.Offset.decode(ok.payload).offset == begun.chunk_max


def test_start_options_out_of_range_are_refused(tmp_path):
    board = get_board("nano33ble")
    flash = Flash(tmp_path / "f.flash", 2, board.model_slots.slot_bytes)
    with pytest.raises(ValueError, match="cannot sample at 1e\\+09 Hz"):
        VirtualFirmware(board, flash, lambda b: None, mode="line", line_rate_hz=1e9)
    with pytest.raises(ValueError, match="unknown scenario 'flying'.*walking"):
        VirtualFirmware(board, flash, lambda b: None, scenario="flying")


def _begin(host, model, slot=m.NO_SLOT, flags=0) -> Frame:
    return host.one(m.Msg.MODEL_BEGIN, m.ModelBegin(
        slot, len(model), hashlib.sha256(model).digest(), "next", flags).encode())


def test_the_fallback_slot_is_written_only_with_replace_fallback(host, sine_model):
    first = host.upload(sine_model)
    second = host.upload(sine_model)  # first is now the fallback, the only other slot
    table = host.fw.flash.table
    assert (table.active, table.fallback) == (second, first)
    for slot in (m.NO_SLOT, first):  # chosen by the board, or named
        err = m.Error.decode(_begin(host, sine_model, slot).payload)
        assert err.code == m.ErrorCode.SLOT_FALLBACK and err.detail == first
        assert "fallback" in err.message and "REPLACE_FALLBACK" in err.message
        assert host.fw.flash.table.fallback == first
        assert host.fw.flash.slot(first).state_enum == m.SlotState.FALLBACK
    assert host.fw.transfer is None  # nothing was opened
    assert m.Msg(host.one(m.Msg.MODEL_ROLLBACK).type & 0x7F) == m.Msg.MODEL_ROLLBACK


def test_replace_fallback_gives_up_the_fallback_at_model_begin(host, sine_model, tmp_path):
    first = host.upload(sine_model)
    second = host.upload(sine_model)
    begun = m.ModelBegun.decode(_begin(host, sine_model,
                                       flags=m.BeginFlag.REPLACE_FALLBACK).payload)
    assert begun.slot == first and begun.resume_offset == 0
    # the role is gone, on flash, before a single image byte was written
    reread = Flash(tmp_path / "f.flash", 2, host.fw.flash.slot_bytes).table
    assert reread.fallback is None and reread.active == second
    assert reread.slots[first].state == m.SlotState.RECEIVING.name
    err = m.Error.decode(host.one(m.Msg.MODEL_ROLLBACK).payload)
    assert err.code == m.ErrorCode.NO_FALLBACK
    host.one(m.Msg.MODEL_CHUNK, m.Chunk(first, 0, sine_model[:1000]).encode())
    # resuming the same image needs no consent: the slot is no longer the fallback
    again = m.ModelBegun.decode(_begin(host, sine_model).payload)
    assert (again.slot, again.resume_offset) == (first, 1000)


# ------------------------------------------------------------------ commit flags and self-test

def test_the_one_byte_commit_of_older_hosts_is_permanent(host, sine_model):
    host.upload(sine_model)  # Host.upload sends the 1-byte MODEL_COMMIT payload
    second = host.upload(sine_model.replace(b"MLIR Converted.", b"MLIR Converted!"))
    assert host.fw.flash.slot(second).state_enum == m.SlotState.ACTIVE
    host.one(m.Msg.RESET)
    assert host.fw.flash.table.active == second
    bad = host.one(m.Msg.MODEL_COMMIT, bytes([second, 1, 0]))
    assert m.Error.decode(bad.payload).code == m.ErrorCode.MALFORMED


class SelfTesting(VirtualFirmware):
    """A firmware whose self-test gives a fixed verdict on the model it just switched to."""

    verdict: bool | None = None

    def self_test(self, slot):
        assert self.runner is not None and self.flash.table.testing == slot
        return self.verdict


@pytest.mark.parametrize("verdict", [True, False])
def test_the_self_test_decides_a_test_switch(tmp_path, sine_model, verdict):
    board = get_board("nano33ble")
    flash = Flash(tmp_path / "f.flash", 2, board.model_slots.slot_bytes)
    host = Host(lambda send: SelfTesting(board, flash, send))
    first = host.upload(sine_model)
    new = sine_model.replace(b"MLIR Converted.", b"MLIR Converted!")
    begun = m.ModelBegun.decode(host.one(m.Msg.MODEL_BEGIN, m.ModelBegin(
        m.NO_SLOT, len(new), hashlib.sha256(new).digest()).encode()).payload)
    for off in range(0, len(new), 1000):
        host.one(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, off, new[off:off + 1000]).encode())
    host.one(m.Msg.MODEL_END)
    host.fw.verdict = verdict
    reply = host.one(m.Msg.MODEL_COMMIT, m.ModelCommit(begun.slot, m.CommitFlag.TEST).encode())
    if verdict:
        assert m.SlotRef.decode(reply.payload).slot == begun.slot
        assert host.fw.flash.slot(begun.slot).state_enum == m.SlotState.ACTIVE  # confirmed
    else:
        err = m.Error.decode(reply.payload)
        assert err.code == m.ErrorCode.SELF_TEST_FAILED and err.detail == first
        assert host.fw.flash.table.active == first and host.fw.runner is not None
    host.one(m.Msg.RESET)
    assert host.fw.flash.table.active == (begun.slot if verdict else first)
