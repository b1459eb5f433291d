"""The device protocol end to end: pyserial over a real pty to the virtual board.

The tests in this file talk only through :func:`open_device`, so they run
unchanged against a real board with the workbench firmware:
``pytest tests/test_device.py --port /dev/ttyACM0``. Tests that need a
virtual board's extras (scenarios, fault injection, a flash file) skip then.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time

import numpy as np
import pytest

from workbench.boards import get_board
from workbench.link import ConnectionLost, open_device
from workbench.link import errors as E
from workbench.protocol import messages as m
from workbench.protocol.framing import Frame, FrameParser, encode_frame
from workbench.sim.firmware import VirtualFirmware
from workbench.sim.flash import Flash


@pytest.fixture
def url(request, sim_url):
    return request.config.getoption("--port") or sim_url("nano33ble")


@pytest.fixture
def virtual(request):
    if request.config.getoption("--port"):
        pytest.skip("needs a virtual board")


def test_hello_reports_the_catalog_entry(url):
    with open_device(url) as dev:
        assert dev.mode == "framed"
        info = dev.info
        board = get_board(info.board_id)
        assert info.board_name == board.name
        assert (info.clock_hz, info.flash_bytes, info.ram_bytes) == (
            board.clock_hz, board.flash_bytes, board.ram_bytes)
        assert info.slot_bytes == board.model_slots.slot_bytes
        assert info.arena_bytes == board.model_slots.arena_bytes
        assert [s.id for s in dev.sensors] == [s.id for s in board.sensors]
        accel = dev.sensor("accel")
        assert accel.channels == board.sensor("accel").channels
        assert accel.rate_hz == pytest.approx(board.sensor("accel").rate_hz)


@pytest.mark.parametrize("board_id", ["sparkfun-edge", "pico", "nucleo-l4r5zi", "esp-eye"])
def test_hello_for_other_boards(board_id, sim_url, virtual):
    board = get_board(board_id)
    with open_device(sim_url(board_id)) as dev:
        assert dev.info.board_id == board_id
        assert dev.info.core == board.core
        assert dev.info.mcu == board.mcu
        assert dev.info.sensor_count == len(board.sensors)
        assert tuple(s.id for s in dev.sensors) == tuple(s.id for s in board.sensors)
        assert dev.info.capabilities & m.Capability.SIMULATED


def test_accelerometer_stream_has_gravity_and_no_loss(url):
    with open_device(url) as dev:
        rec = dev.record("accel", seconds=2.0)
    assert rec.lost == 0
    assert rec.raw.shape == (round(2.0 * rec.rate_hz), 3)
    magnitude = np.linalg.norm(rec.values, axis=1)
    assert magnitude.mean() == pytest.approx(1.0, abs=0.1)  # at rest: 1 g


def test_stream_blocks_are_consecutive(url):
    with open_device(url) as dev, dev.stream("gyro") as s:
        blocks = [s.read(timeout=3) for _ in range(5)]
    firsts = [b.first for b in blocks]
    sizes = [len(b.raw) for b in blocks]
    assert all(firsts[i + 1] == firsts[i] + sizes[i] for i in range(4))
    assert s.stats.lost == 0 and s.stats.device_dropped == 0


@pytest.mark.slow
def test_scenario_changes_what_the_board_feels(sim_url, virtual):
    with open_device(sim_url()) as dev:
        idle = dev.record("accel", 2.0).values
        got = dev.scenario("shake")
        assert got.current == "shake" and "walking" in got.available
        shake = dev.record("accel", 2.0).values
        with pytest.raises(E.BadArgument, match="walking"):
            dev.scenario("juggling")
    assert np.linalg.norm(shake, axis=1).std() > 5 * np.linalg.norm(idle, axis=1).std()


def test_sine_model_runs_on_the_board(url, sine_model):
    with open_device(url) as dev:
        slot = dev.upload_model(sine_model, name="sine_float.tflite")
        assert slot.state == m.SlotState.ACTIVE
        assert slot.sha256 == hashlib.sha256(sine_model).digest()
        assert 1000 < slot.arena_bytes < 4000
        for x in (0.0, 0.5, 1.5, 3.0, 5.0):
            res = dev.infer(np.array([[x]], np.float32))
            assert res.outputs[0].shape == (1, 1)
            assert res.outputs[0][0, 0] == pytest.approx(np.sin(x), abs=0.05)
        assert res.arena_bytes == slot.arena_bytes


def test_model_too_large_is_refused_and_nothing_changes(url, sine_model):
    with open_device(url) as dev:
        dev.upload_model(sine_model)
        before = dev.slots()
        too_big = dev.info.slot_bytes + 1
        with pytest.raises(E.ModelTooLarge, match=r"quantize.*smaller") as err:
            dev.upload_model(bytes(too_big))
        assert f"{dev.info.slot_bytes:,}" in str(err.value)
        assert dev.slots() == before
        assert dev.infer(np.array([[1.0]], np.float32)).outputs[0][0, 0] == pytest.approx(
            np.sin(1.0), abs=0.05)


def test_garbage_is_refused_as_invalid_model(url, sine_model):
    with open_device(url) as dev:
        dev.upload_model(sine_model)
        with pytest.raises(E.ModelInvalid, match="TFL3"):
            dev.upload_model(b"not a model at all" * 20)
        assert dev.slots().active != m.NO_SLOT
        table = dev.slots()
        assert table.slots[table.active].sha256 == hashlib.sha256(sine_model).digest()


def test_model_needing_more_arena_than_the_board_has_is_refused(tmp_path, sine_model):
    # The firmware itself, fed frames directly: a board whose arena (1 KB) is smaller
    # than what sine_float needs (~1.9 KB, probed by the real TFLite Micro).
    board = get_board("nano33ble")
    tiny = dataclasses.replace(board, model_slots=dataclasses.replace(
        board.model_slots, arena_bytes=1024))
    out = bytearray()
    fw = VirtualFirmware(tiny, Flash(tmp_path / "f.flash", 2, tiny.model_slots.slot_bytes),
                         out.extend)
    parser = FrameParser()

    def ask(ftype, payload=b"", req=1):
        out.clear()
        fw.receive(encode_frame(Frame(ftype, req, req, payload)))
        (frame,) = parser.feed(bytes(out))
        return frame

    digest = hashlib.sha256(sine_model).digest()
    begun = m.ModelBegun.decode(ask(m.Msg.MODEL_BEGIN, m.ModelBegin(
        m.NO_SLOT, len(sine_model), digest).encode()).payload)
    for req, offset in enumerate(range(0, len(sine_model), 1000), start=2):
        piece = sine_model[offset:offset + 1000]
        ack = ask(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, offset, piece).encode(), req=req)
        assert m.Offset.decode(ack.payload).offset == offset + len(piece)
    reply = ask(m.Msg.MODEL_END, req=100)
    assert reply.type == m.Msg.ERROR
    err = m.Error.decode(reply.payload)
    assert err.code == m.ErrorCode.ARENA_TOO_SMALL
    assert "1,024-byte tensor arena" in err.message
    assert fw.flash.slot(begun.slot).state_enum == m.SlotState.INVALID
    assert fw.flash.table.active is None


def test_flash_survives_a_restart(sim_url, sine_model, virtual):
    url = sim_url()
    with open_device(url) as dev:
        dev.upload_model(sine_model, name="sine")
    with open_device(url) as dev:  # a new process, the same flash file
        table = dev.slots()
        assert table.active != m.NO_SLOT and table.slots[table.active].name == "sine"
        assert dev.infer(np.array([[2.0]], np.float32)).outputs[0][0, 0] == pytest.approx(
            np.sin(2.0), abs=0.05)


def test_commit_and_rollback_switch_models(sim_url, sine_model, virtual):
    with open_device(sim_url()) as dev:
        first = dev.upload_model(sine_model, name="one")
        second = dev.upload_model(sine_model, name="two")
        assert first.index != second.index
        assert dev.slots().active == second.index
        assert dev.rollback() == first.index
        table = dev.slots()
        assert table.slots[first.index].state == m.SlotState.ACTIVE
        assert table.slots[second.index].state == m.SlotState.FALLBACK
        with pytest.raises(E.SlotActive):
            dev.upload_model(sine_model, slot=first.index)


@pytest.mark.slow
def test_power_cut_mid_update_resumes_and_keeps_the_old_model(sim_url, sine_model, virtual):
    url = sim_url()
    with open_device(url) as dev:
        old = dev.upload_model(sine_model, name="old")
    new_model = sine_model  # same bytes, new name: a re-flash of the same image
    with open_device(url) as dev:
        dev.inject_faults(m.Faults(power_cut_after=2500))  # 2 chunks, then a torn one
        with pytest.raises(ConnectionLost, match="power cut"):
            dev.upload_model(new_model, name="new")
    with open_device(url) as dev:
        table = dev.slots()
        assert table.active == old.index  # the running model survived
        partial = [s for s in table.slots if s.state == m.SlotState.RECEIVING]
        assert len(partial) == 1 and 0 < partial[0].written <= 2500  # its last progress mark
        progress = []
        slot = dev.upload_model(new_model, name="new", progress=lambda a, t: progress.append(a))
        assert slot.state == m.SlotState.ACTIVE and slot.index == partial[0].index
        assert progress[0] > partial[0].written  # resumed, did not restart from zero
        assert dev.infer(np.array([[1.0]], np.float32)).outputs[0][0, 0] == pytest.approx(
            np.sin(1.0), abs=0.05)


def test_disconnect_is_reported_as_connection_lost(sim_url, virtual):
    with open_device(sim_url()) as dev:
        dev.inject_faults(m.Faults(disconnect=True))
        with pytest.raises(ConnectionLost, match="virtual board stopped"):
            for _ in range(50):
                dev.ping()


@pytest.mark.slow
def test_requests_survive_a_noisy_line(sim_url, virtual):
    # 1 bit in 1000 bytes flipped both ways: about one frame in eight is damaged
    with open_device(sim_url(baud=921600, flip=0.001, seed=3), baudrate=921600) as dev:
        for i in range(40):
            payload = bytes([i]) * 64
            dev.ping(payload)
        assert dev.stats.bad_frames_rx + dev.stats.retries > 0


@pytest.mark.slow
def test_upload_survives_a_noisy_line(sim_url, sine_model, virtual):
    with open_device(sim_url(baud=921600, flip=0.0005, seed=5), baudrate=921600) as dev:
        slot = dev.upload_model(sine_model)
        assert slot.sha256 == hashlib.sha256(sine_model).digest()
        assert dev.infer(np.array([[0.5]], np.float32)).outputs[0][0, 0] == pytest.approx(
            np.sin(0.5), abs=0.05)


@pytest.mark.slow
def test_loss_is_counted_exactly_under_dropped_bytes(sim_url, virtual):
    with open_device(sim_url(baud=921600, drop=0.0005, seed=7), baudrate=921600) as dev:
        with dev.stream("mic") as s:
            blocks = []
            while len(blocks) < 60:
                block = s.read(timeout=5)
                assert block is not None
                blocks.append(block)
        last = blocks[-1]
        # every sample up to the last block is either received or counted lost
        assert s.stats.samples + s.stats.lost == last.first + len(last.raw) - blocks[0].first
        assert s.stats.lost > 0
        assert sum(b.lost_before for b in blocks) == s.stats.lost
        assert dev.stats.bad_frames_rx > 0


@pytest.mark.slow
def test_device_drops_at_the_source_when_the_link_is_too_slow(sim_url, virtual):
    # 16 kHz int16 audio needs 32 kB/s; 115200 baud carries 11.5 kB/s
    with open_device(sim_url(baud=115200)) as dev:
        with dev.stream("mic") as s:
            got = 0
            while got < 16000:
                got += len(s.read(timeout=5).raw)
        assert s.stats.lost > 0
        assert s.stats.lost <= s.stats.device_dropped
        assert dev.stats.bad_frames_rx == 0


def test_infer_without_a_model_says_what_to_do(url, virtual):
    with open_device(url) as dev:
        with pytest.raises(E.NoModel, match="upload"):
            dev.infer(np.zeros((1, 1), np.float32))


def test_wrong_input_size_is_a_clear_error(url, sine_model):
    with open_device(url) as dev:
        dev.upload_model(sine_model)
        with pytest.raises(E.BadArgument, match="needs 4 bytes"):
            dev.infer(np.zeros((1, 3), np.float32))


def test_telemetry_and_reset(url, sine_model):
    with open_device(url) as dev:
        dev.upload_model(sine_model)
        dev.infer(np.array([[1.0]], np.float32))
        dev.set_telemetry(100)
        deadline = time.monotonic() + 3
        while dev.telemetry is None and time.monotonic() < deadline:
            time.sleep(0.05)
        t = dev.telemetry
        assert t is not None and t.inferences == 1 and t.free_ram > 0
        info = dev.reset()
        assert info.uptime_ms < t.uptime_ms  # the board restarted its clock
        assert info.active_slot == dev.slots().active != m.NO_SLOT


@pytest.mark.slow
def test_replayed_recordings_reach_the_host_unchanged(sim_url, virtual):
    """A virtual board replaying BasicMotions streams the real recording, resampled."""
    from workbench.sim.replay import load_basicmotions

    X, labels = load_basicmotions("all")
    walking = X[labels.index("Walking")]  # (6 channels, 100 samples at 10 Hz)
    with open_device(sim_url(replay="basicmotions", scenario="walking")) as dev:
        got = dev.scenario()
        assert got.current == "walking" and "badminton" in got.available
        rec = dev.record("gyro", seconds=5.0, rate_hz=10.0)
        assert rec.lost == 0
        with pytest.raises(E.NotSupported, match="BasicMotions|replay"):
            dev.record("mic", 0.1)
    # BasicMotions' gyroscope is in rad/s; the board reports degrees per second
    expected = np.degrees(walking[3:6, :50].T)
    assert np.allclose(rec.values, expected, atol=2 * get_board("nano33ble").sensor("gyro").scale
                       + 1e-3)


class PtyFirmware:
    """A board that speaks the framed protocol but is not simulated, on a real pty: it answers
    HELLO (without the SIMULATED capability) and SENSORS, and refuses every other request
    with UNKNOWN_TYPE, as firmware without the virtual board's extras would. ``requests``
    lists the request types it received."""

    def __init__(self):
        import os
        import threading
        import tty

        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)
        self.requests: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import os
        import select

        parser, seq = FrameParser(), 0
        info = m.Info(m.PROTOCOL_VERSION, 256, m.Capability.STREAM | m.Capability.INFER,
                      "nano33ble", "Arduino Nano 33 BLE Sense", "real-1.0", "nRF52840",
                      "cortex-m4f", 64_000_000, 1 << 20, 256 << 10, 2, m.NO_SLOT, 64 << 10,
                      32 << 10, 0, 1, "SERIAL1")
        while not self.stop.is_set():
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:  # no host has the port open
                self.stop.wait(0.02)
                continue
            for req in parser.feed(data):
                self.requests.append(req.type)
                if req.type == m.Msg.HELLO:
                    ftype, payload = m.response_type(req.type), info.encode()
                elif req.type == m.Msg.SENSORS:
                    ftype, payload = m.response_type(req.type), m.SensorList(()).encode()
                else:
                    ftype, payload = m.Msg.ERROR, m.Error(
                        m.ErrorCode.UNKNOWN_TYPE, 0, "unknown request").encode()
                os.write(self.master, encode_frame(Frame(ftype, seq, req.req_id, payload)))
                seq += 1

    def close(self):
        import os

        self.stop.set()
        self.thread.join(5)
        os.close(self.master)


def test_simulator_controls_exist_only_on_a_simulated_board(sim_url, virtual):
    with open_device(sim_url()) as dev:
        assert dev.sim.available
        assert dev.sim.scenario("walking").current == "walking"
        assert dev.scenario().current == "walking"  # the old name still works
    board = PtyFirmware()
    try:
        with open_device(board.path, mode="framed") as dev:
            assert dev.info.firmware == "real-1.0" and not dev.sim.available
            before = list(board.requests)
            with pytest.raises(E.NotSupported, match="only on a virtual board.*real board"):
                dev.sim.scenario("walking")
            with pytest.raises(E.NotSupported, match="virtual board"):
                dev.scenario()
            with pytest.raises(E.NotSupported, match="virtual board"):
                dev.inject_faults(m.Faults(disconnect=True))
            assert board.requests == before  # refused on the host: nothing was sent
    finally:
        board.close()
    assert m.Msg.SIM_SCENARIO not in board.requests and m.Msg.SIM_FAULTS not in board.requests


def test_a_record_cut_short_by_a_lost_board_keeps_what_arrived(sim_url, virtual):
    import threading

    with open_device(sim_url()) as dev:
        rate = dev.sensor("accel").rate_hz
        cut = threading.Timer(1.0, dev.sim.inject_faults, args=(m.Faults(disconnect=True),))
        cut.start()
        try:
            with pytest.raises(ConnectionLost, match="virtual board stopped") as err:
                dev.record("accel", seconds=30)
        finally:
            cut.cancel()
    rec = err.value.recording
    assert rec is not None and rec.channels == ("x", "y", "z") and rec.lost == 0
    assert 0.5 * rate < len(rec.raw) < 10 * rate  # about the second before the cut
    assert np.linalg.norm(rec.values, axis=1).mean() == pytest.approx(1.0, abs=0.1)


def test_a_stream_yields_every_block_before_reporting_the_lost_board(sim_url, virtual):
    with open_device(sim_url()) as dev, dev.stream("gyro") as s:
        blocks = [s.read(timeout=3) for _ in range(3)]
        time.sleep(0.5)  # blocks queue up unread while the board is still there
        dev.sim.inject_faults(m.Faults(disconnect=True))
        with pytest.raises(ConnectionLost):
            for block in s:
                blocks.append(block)
    assert len(blocks) > 3  # what was queued when the board went away was still delivered
    assert all(b.first == a.first + len(a.raw) for a, b in zip(blocks, blocks[1:]))
    assert s.stats.samples == sum(len(b.raw) for b in blocks) and s.stats.lost == 0


# ------------------------------------------------------------------ test switches (7.4)

def _variant(model: bytes) -> bytes:
    """Another valid model: the same network with another description string."""
    return model.replace(b"MLIR Converted.", b"MLIR Converted!")


def test_a_test_switch_reverts_at_reset_unless_confirmed(url, sine_model):
    new = _variant(sine_model)
    with open_device(url) as dev:
        old = dev.upload_model(sine_model, name="old")
        slot = dev.upload_model(new, name="new", test=True)
        assert slot.state == m.SlotState.TESTING and dev.slots().active == slot.index
        dev.reset()  # not confirmed: the old model is back
        table = dev.slots()
        assert table.active == old.index
        assert table.slots[slot.index].state == m.SlotState.VERIFIED
        with pytest.raises(E.NotPending, match="no test switch"):
            dev.confirm_model()
        assert dev.commit(slot.index, test=True) == slot.index  # again, and keep it
        assert dev.confirm_model() == slot.index
        dev.reset()
        table = dev.slots()
        assert table.active == slot.index
        assert table.slots[slot.index].state == m.SlotState.ACTIVE
        assert table.slots[old.index].state == m.SlotState.FALLBACK


def test_rollback_during_a_test_switch_reverts_it(url, sine_model):
    with open_device(url) as dev:
        old = dev.upload_model(sine_model, name="old")
        slot = dev.upload_model(_variant(sine_model), name="new", test=True)
        assert dev.rollback() == old.index
        table = dev.slots()
        assert table.slots[slot.index].state == m.SlotState.VERIFIED  # not a fallback
        with pytest.raises(E.NoFallback):
            dev.rollback()


def test_a_permanent_commit_survives_resets(url, sine_model):
    with open_device(url) as dev:
        dev.upload_model(sine_model, name="old")
        slot = dev.upload_model(_variant(sine_model), name="new")
        assert slot.state == m.SlotState.ACTIVE
        with pytest.raises(E.NotPending):
            dev.confirm_model()
        dev.reset()
        dev.reset()
        assert dev.slots().active == slot.index


def test_an_upload_resumes_after_a_reset_from_the_last_progress_mark(sim_url, sine_model,
                                                                    virtual):
    with open_device(sim_url()) as dev:
        digest = hashlib.sha256(sine_model).digest()
        begun = m.ModelBegun.decode(dev.request(m.Msg.MODEL_BEGIN, m.ModelBegin(
            m.NO_SLOT, len(sine_model), digest, "sine").encode()).payload)
        for off in (0, 1000, 2000):  # 3000 bytes stored: progress marks for 2048
            dev.request(m.Msg.MODEL_CHUNK,
                        m.Chunk(begun.slot, off, sine_model[off:off + 1000]).encode())
        assert dev.slots().slots[begun.slot].written == 3000  # exact, within this boot
        dev.reset()
        assert dev.slots().slots[begun.slot].written == 2048  # the last mark, after a reset
        with pytest.raises(E.NoTransfer):
            dev.request(m.Msg.MODEL_END)
        sent = []
        slot = dev.upload_model(sine_model, name="sine", progress=lambda a, t: sent.append(a))
        assert slot.index == begun.slot and slot.state == m.SlotState.ACTIVE
        # the first acknowledgement is one chunk past the mark: bytes 0..2047 were not re-sent
        assert 2048 < sent[0] <= 2048 + dev.max_payload - 8 and sent[-1] == len(sine_model)
