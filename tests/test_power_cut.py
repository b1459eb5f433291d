"""Power cuts at every flash write of an update, as MCUboot's simulator does.

A clean update (MODEL_BEGIN -> chunks -> MODEL_END -> test switch -> MODEL_CONFIRM) is
run once on the virtual board's firmware (fed frames, real flash file, real TFLite Micro)
to count its flash writes W. Then, for every k in 0..W, a fresh copy of the flash as it was
before the update gets the same update with the power cut at write k (optionally tearing
that write: only its first half lands). A new Flash and VirtualFirmware on the same file
(what a new process does) boot, and the test checks byte for byte which model runs, that
the trailers agree with each other, and that the update then succeeds when retried.
The same for a revert (test switch, no confirm, reset).
"""

from __future__ import annotations

import hashlib

import pytest
from test_firmware import Host  # tests/ is on sys.path

from workbench.boards import get_board
from workbench.protocol import messages as m
from workbench.sim.firmware import VirtualFirmware
from workbench.sim.flash import (
    BOOTED,
    CONFIRMED,
    PROGRESS_UNIT,
    REVERTED,
    SWITCH,
    TEST,
    Flash,
    PowerCut,
)

BOARD = get_board("nano33ble")
CHUNK = 1000


@pytest.fixture(scope="module")
def models(sine_model) -> tuple[bytes, bytes]:
    """Two different valid models: sine, and sine with another description string."""
    new = sine_model.replace(b"MLIR Converted.", b"MLIR Converted!")
    assert new != sine_model
    return sine_model, new


class Board(Host):
    """A virtual board process: a Flash and a VirtualFirmware on ``path``, fed frames
    (test_firmware's Host, with the flash kept and a power cut armed)."""

    def __init__(self, path, *, cut_at: int | None = None, tear: float = 0.0):
        self.flash = Flash(path, BOARD.model_slots.count, BOARD.model_slots.slot_bytes)
        self.flash.arm_power_cut(cut_at, tear=tear)
        super().__init__(lambda send: VirtualFirmware(BOARD, self.flash, send))  # boots

    def close(self) -> None:
        self.flash.close()

    def ok(self, ftype, payload=b"") -> bytes:
        frame = self.one(ftype, payload)
        assert frame.type == m.response_type(ftype), m.Error.decode(frame.payload)
        return frame.payload

    def running(self) -> bytes | None:
        """The image of the active slot, read back from flash."""
        active = self.flash.table.active
        return None if active is None else self.flash.read(active)

    def begin(self, model: bytes) -> m.ModelBegun:
        return m.ModelBegun.decode(self.ok(m.Msg.MODEL_BEGIN, m.ModelBegin(
            m.NO_SLOT, len(model), hashlib.sha256(model).digest(), "new",
            m.BeginFlag.REPLACE_FALLBACK).encode()))

    def send(self, model: bytes, begun: m.ModelBegun) -> None:
        for off in range(begun.resume_offset, len(model), CHUNK):
            self.ok(m.Msg.MODEL_CHUNK, m.Chunk(begun.slot, off, model[off:off + CHUNK]).encode())
        self.ok(m.Msg.MODEL_END)

    def commit(self, slot: int, test: bool = False) -> None:
        flags = m.CommitFlag.TEST if test else m.CommitFlag(0)
        self.ok(m.Msg.MODEL_COMMIT, m.ModelCommit(slot, flags).encode())

    def update(self, model: bytes, steps: list | None = None) -> m.ModelBegun:
        """The whole update; ``steps`` collects (name, flash writes after it)."""
        def mark(name):
            if steps is not None:
                steps.append((name, self.flash.writes))
        mark("boot")
        begun = self.begin(model)
        mark("begin")
        self.send(model, begun)
        mark("end")
        self.commit(begun.slot, test=True)
        mark("test switch")
        self.ok(m.Msg.MODEL_CONFIRM)
        mark("confirm")
        return begun


def check_consistent(board: Board) -> None:
    flash = board.flash
    assert flash.audit() == []
    table = flash.table
    runs = [i for i, s in enumerate(table.slots)
            if s.state_enum in (m.SlotState.ACTIVE, m.SlotState.TESTING)]
    assert runs == ([] if table.active is None else [table.active])
    for i, s in enumerate(table.slots):
        t = flash.trailer(i)
        if s.state_enum in (m.SlotState.ACTIVE, m.SlotState.TESTING, m.SlotState.FALLBACK):
            assert hashlib.sha256(flash.read(i)).hexdigest() == s.sha256 == t.begin[1]
            assert t.verdict is not None and t.latest_switch() is not None
        if s.state_enum == m.SlotState.RECEIVING:
            assert s.written % PROGRESS_UNIT == 0 or s.written == s.size


@pytest.fixture(scope="module")
def before(tmp_path_factory, models) -> bytes:
    """The flash bytes of a board running the old model permanently."""
    path = tmp_path_factory.mktemp("before") / "board.flash"
    board = Board(path)
    begun = board.begin(models[0])
    board.send(models[0], begun)
    board.commit(begun.slot)
    board.close()
    return path.read_bytes()


@pytest.fixture(scope="module")
def clean(tmp_path_factory, before, models) -> list[tuple[str, int]]:
    """The clean update's flash writes after each step."""
    path = tmp_path_factory.mktemp("clean") / "board.flash"
    path.write_bytes(before)
    board = Board(path)
    steps: list[tuple[str, int]] = []
    board.update(models[1], steps)
    assert board.running() == models[1]
    board.close()
    reboot = Board(path)  # a new process: the confirmed model stays
    assert reboot.running() == models[1] and reboot.flash.writes == 0
    reboot.close()
    return steps


def test_a_clean_update_writes_a_known_sequence_of_records(clean, models):
    after = dict(clean)
    assert after["boot"] == 0  # booting a permanent model writes nothing
    # erase trailer, erase image sectors, BEGIN
    assert after["begin"] == 3
    chunks = -(-len(models[1]) // CHUNK)
    marks_ops = len({min(o + CHUNK, len(models[1])) // PROGRESS_UNIT
                     for o in range(0, len(models[1]), CHUNK)} - {0})
    assert after["end"] == 3 + chunks + marks_ops + 1  # data, marks, VERDICT
    assert after["test switch"] == after["end"] + 2  # SWITCH TEST, BOOTED
    assert after["confirm"] == after["test switch"] + 1  # CONFIRMED


def expected_after_cut(k: int, clean: list[tuple[str, int]]) -> tuple[str, str]:
    """(model at the first boot, model after one more reset) for a cut at write k."""
    after = dict(clean)
    switch, booted, confirmed = after["end"], after["end"] + 1, after["confirm"] - 1
    if k <= switch:
        return "old", "old"  # the SWITCH record did not land
    if k == booted:
        return "new", "old"  # a test switch not yet run: runs once at boot, then reverts
    if k == confirmed:
        return "old", "old"  # ran once, never confirmed: reverted
    return "new", "new"  # CONFIRMED landed


def trial(path, before, models, clean, k: int, tear: float) -> dict:
    old, new = models
    named = {"old": old, "new": new}
    total = dict(clean)["confirm"]
    path.write_bytes(before)
    board = Board(path, cut_at=k, tear=tear)
    if k < total:
        with pytest.raises(PowerCut):
            board.update(new)
    else:
        board.update(new)
    board.close()

    first, second = expected_after_cut(k, clean)
    board = Board(path)  # the next process: boot decision from the trailers alone
    assert board.running() == named[first], f"cut at write {k} (tear {tear})"
    check_consistent(board)
    board.ok(m.Msg.RESET)
    assert board.running() == named[second], f"cut at write {k}, second boot"
    check_consistent(board)
    state = {i: s.state_enum for i, s in enumerate(board.flash.table.slots)}

    begun = board.update(new)  # the retried update succeeds
    assert begun.resume_offset % PROGRESS_UNIT == 0 or begun.resume_offset == len(new)
    assert board.running() == new
    check_consistent(board)
    board.close()
    again = Board(path)
    assert again.running() == new
    again.close()
    return {"state": state, "resume": begun.resume_offset}


def test_a_power_cut_at_every_write_of_an_update_leaves_a_valid_model(tmp_path, before, models,
                                                                      clean):
    total = dict(clean)["confirm"]
    resumed = []
    for k in range(total + 1):
        resumed.append(trial(tmp_path / "board.flash", before, models, clean, k, 0.0)["resume"])
    # a cut during the chunks resumes the retried upload from the last progress mark
    assert any(0 < r < len(models[1]) for r in resumed)


def test_a_torn_write_at_every_step_of_an_update_leaves_a_valid_model(tmp_path, before, models,
                                                                      clean):
    total = dict(clean)["confirm"]
    resumed = [trial(tmp_path / "board.flash", before, models, clean, k, 0.5)["resume"]
               for k in range(total)]
    # a torn chunk write is not vouched for: the retry resumes from the last whole mark
    assert any(0 < r < len(models[1]) for r in resumed)


def test_a_torn_record_is_recognised_and_ignored(tmp_path, before, models, clean):
    after = dict(clean)
    path = tmp_path / "board.flash"
    path.write_bytes(before)
    board = Board(path, cut_at=after["confirm"] - 1, tear=0.5)  # CONFIRMED torn
    with pytest.raises(PowerCut):
        board.update(models[1])
    board.close()
    board = Board(path)
    logs = board.fw.logs
    assert any("torn or damaged" in t and "ignored" in t for t in logs), logs
    assert any("reverted the unconfirmed test switch" in t for t in logs), logs
    assert board.running() == models[0]
    board.close()


# ------------------------------------------------------------------ revert

@pytest.fixture(scope="module")
def verified(tmp_path_factory, before, models) -> tuple[bytes, int]:
    """Flash bytes with the old model running and the new one verified in the other slot."""
    path = tmp_path_factory.mktemp("verified") / "board.flash"
    path.write_bytes(before)
    board = Board(path)
    begun = board.begin(models[1])
    board.send(models[1], begun)
    board.close()
    return path.read_bytes(), begun.slot


def test_a_power_cut_at_every_write_of_a_revert_leaves_the_old_model(tmp_path, verified,
                                                                     models):
    """Test switch (SWITCH, BOOTED), then a reset that reverts it (REVERTED): cut at each."""
    image, slot = verified
    old, new = models
    path = tmp_path / "board.flash"
    path.write_bytes(image)
    board = Board(path)
    board.commit(slot, test=True)
    assert board.running() == new
    assert board.flash.table.testing == slot
    board.ok(m.Msg.RESET)
    total = board.flash.writes
    assert total == 3 and board.running() == old
    board.close()
    trials = 0
    for tear in (0.0, 0.5):
        for k in range(total + (tear == 0.0)):
            path.write_bytes(image)
            board = Board(path, cut_at=k, tear=tear)
            try:
                board.commit(slot, test=True)
                board.ok(m.Msg.RESET)
            except PowerCut:
                pass
            board.close()
            board = Board(path)
            first = new if k == 1 else old  # only SWITCH landed: the test runs once
            assert board.running() == first, f"cut at write {k} (tear {tear})"
            check_consistent(board)
            board.ok(m.Msg.RESET)
            assert board.running() == old
            check_consistent(board)
            t = board.flash.trailer(slot)
            switch = t.latest_switch()
            if k >= 1:
                assert switch.flags & TEST and t.has(BOOTED, switch.seq)
                assert t.has(REVERTED, switch.seq) and not t.has(CONFIRMED, switch.seq)
            board.commit(slot, test=True)  # the switch can be tried again, and kept
            board.ok(m.Msg.MODEL_CONFIRM)
            board.ok(m.Msg.RESET)
            assert board.running() == new
            check_consistent(board)
            board.close()
            trials += 1
    assert trials == 2 * total + 1


def test_a_permanent_switch_never_reverts(tmp_path, verified, models):
    image, slot = verified
    path = tmp_path / "board.flash"
    path.write_bytes(image)
    board = Board(path)
    board.commit(slot)
    for _ in range(3):
        board.ok(m.Msg.RESET)
        assert board.running() == models[1]
    t = board.flash.trailer(slot)
    assert [r.kind for r in t.log] == [SWITCH] and not t.log[0].flags & TEST
    board.close()
