"""A dataset's takes: listed newest first with thumbnails; relabel, delete and undo keep
every sample on disk (also when the process editing is killed); the recorder's countdown."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from workbench.capture import Recorder
from workbench.data import Dataset, DatasetError
from workbench.data.takes import TakeEdits, newest_first, sparkline


def make_dataset(root: Path, labels=("wave", None, "tap")) -> Dataset:
    ds = Dataset(root)
    rng = np.random.default_rng(0)
    for i, label in enumerate(labels):
        ds.add_recording(rng.normal(size=(200 + 50 * i, 3)).astype(np.float32), sensor="accel",
                         channels=("x", "y", "z"), units="g", rate_hz=100.0, label=label,
                         started=f"2026-01-01T12:00:0{i}.000+00:00")
    return ds


def disk_state(root: Path) -> dict[str, tuple[str, str | None, str]]:
    """Every take on disk: id -> (where: recordings|trash, label, sha256 of samples.bin)."""
    out = {}
    for where in ("recordings", "trash"):
        for d in sorted((root / where).glob("*")) if (root / where).exists() else ():
            meta = json.loads((d / "meta.json").read_text())
            digest = hashlib.sha256((d / "samples.bin").read_bytes()).hexdigest()
            assert d.name not in out, f"{d.name} is in recordings/ and trash/ at once"
            out[d.name] = (where, meta["label"], digest)
    return out


def test_newest_first_and_thumbnails(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    metas = newest_first(ds)
    assert [m.label for m in metas] == ["tap", None, "wave"]
    assert [m.id for m in newest_first(ds, limit=2)] == [m.id for m in metas[:2]]
    # a thumbnail keeps a one-sample spike, per channel, and stays small
    values = np.zeros((10_000, 2), np.float32)
    values[4321, 1] = 7.5
    values[17, 0] = -3.0
    thumb = sparkline(values, points=40)
    assert thumb.shape == (80, 2)
    assert thumb[:, 1].max() == 7.5 and thumb[:, 0].min() == -3.0
    assert np.array_equal(sparkline(values[:50], points=40), values[:50])  # short: as it is
    gaps = sparkline(np.full((500, 1), np.nan), points=10)
    assert np.isnan(gaps).all()
    with pytest.raises(ValueError, match="points"):
        sparkline(values, points=0)


def test_relabel_delete_and_undo_keep_every_sample(tmp_path):
    root = tmp_path / "ds"
    ds = make_dataset(root)
    wave, unlabeled, tap = (m.id for m in ds.recordings())
    before = disk_state(root)
    edits = TakeEdits(ds)
    assert not edits.can_undo

    edits.relabel(unlabeled, "  circle ")
    assert Dataset(root).meta(unlabeled).label == "circle"     # on disk at once
    edits.delete(tap)
    after = disk_state(root)
    assert after[tap] == ("trash", "tap", before[tap][2])       # moved whole, not erased
    assert tap not in Dataset(root)
    assert edits.last.kind == "delete" and "tap" not in Dataset(root).labels

    assert edits.undo().kind == "delete"
    assert disk_state(root)[tap] == before[tap]
    assert edits.undo().kind == "relabel"
    assert disk_state(root) == before                          # byte for byte as it was
    assert not edits.can_undo
    with pytest.raises(DatasetError, match="nothing to undo"):
        edits.undo()
    fresh = Dataset(root)
    assert fresh.problems == [] and len(fresh) == 3

    # bad input says what is wrong and writes nothing
    with pytest.raises(KeyError, match="no recording"):
        edits.delete("nope-20260101T000000-000000")
    with pytest.raises(ValueError, match="control characters"):
        edits.relabel(wave, "a\nb")
    assert disk_state(root) == before and not edits.can_undo
    edits.relabel(wave, None)                                   # removes the label
    assert Dataset(root).meta(wave).label is None
    edits.relabel(wave, "")                                     # no change: nothing to undo
    assert len(edits.history) == 1


def test_undo_of_a_relabel_changed_elsewhere_is_refused(tmp_path):
    root = tmp_path / "ds"
    ds = make_dataset(root)
    rec = ds.recordings()[0].id
    edits = TakeEdits(ds)
    edits.relabel(rec, "circle")
    Dataset(root).set_label(rec, "punch")      # another notebook on the same dataset
    with pytest.raises(DatasetError, match="changed since"):
        edits.undo()
    assert Dataset(root).meta(rec).label == "punch" and edits.can_undo


EDITOR = textwrap.dedent("""
    import sys, itertools
    from workbench.data import Dataset
    from workbench.data.takes import TakeEdits
    ds = Dataset(sys.argv[1])
    edits = TakeEdits(ds)
    ids = [m.id for m in ds.recordings()]
    print("ready", flush=True)
    for i in itertools.count():
        rec = ids[i % len(ids)]
        edits.relabel(rec, f"label{i % 7}")
        edits.delete(rec)
        edits.undo()
        if i % 3 == 0:
            edits.delete(ids[(i + 1) % len(ids)])
            edits.undo()
""")


@pytest.mark.parametrize("after_s", [0.3, 0.7, 1.1])
def test_a_process_killed_while_editing_leaves_every_take_whole(tmp_path, after_s):
    root = tmp_path / "ds"
    make_dataset(root)
    before = disk_state(root)
    proc = subprocess.Popen([sys.executable, "-c", EDITOR, str(root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(after_s)
        proc.send_signal(signal.SIGKILL)   # no clean-up of any kind, mid-edit
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
    after = disk_state(root)
    assert set(after) == set(before)                           # no take lost or doubled
    for rec, (_where, _label, digest) in after.items():
        assert digest == before[rec][2]                        # samples untouched
    ds = Dataset(root)                                         # opens clean
    assert ds.problems == []
    for rec, (where, label, _) in after.items():
        if where == "trash":                                   # killed between delete and undo
            ds.restore(rec)
        assert ds.load(rec).meta.label == label
    assert len(Dataset(root)) == len(before)


def test_recorder_takes_follow_relabel_delete_and_undo(sim_url, tmp_path):
    rec = Recorder(tmp_path / "ds")
    rec.connect(sim_url())
    try:
        first = rec.record("accel", "wave", seconds=0.3)
        second = rec.record("accel", None, seconds=0.3)
        assert second.id.startswith("unlabeled-")
        assert [m.id for m in rec.recent()] == [second.id, first.id]
        rev = rec.revision
        rec.relabel(second.id, "tap")
        assert rec.takes[-1].label == "tap" and rec.revision > rev
        assert rec.status().takes == 2 and "relabelled" in rec.status().message
        rec.delete(first.id)
        assert [m.id for m in rec.takes] == [second.id] and rec.status().takes == 1
        assert [m.id for m in rec.recent()] == [second.id]
        assert rec.undo().kind == "delete"
        assert [m.id for m in rec.takes] == [first.id, second.id]
        assert rec.undo().kind == "relabel" and rec.takes[-1].label is None
        assert "undone" in rec.status().message and rec.status().takes == 2
        # deleting the take being recorded is refused, with what to do
        rec.start("accel", "live")
        live = rec.session.recording_id
        with pytest.raises(DatasetError, match="stop the capture"):
            rec.delete(live)
        rec.stop()
        rec.delete(live)                     # the last take, stored, can go
        assert rec.status().takes == 2       # and status() does not bring it back
        assert live not in {m.id for m in rec.takes}
    finally:
        rec.disconnect()


def test_recorder_countdown(sim_url, tmp_path):
    rec = Recorder(tmp_path / "ds")
    rec.connect(sim_url())
    try:
        rec.start_preview("accel")
        rec.start_after(0.8, "accel", "wave", seconds=0.3)
        st = rec.status()
        assert st.state == "countdown" and 0 < st.countdown_s <= 0.8 and st.label == "wave"
        assert rec.previewing                               # the user watches meanwhile
        with pytest.raises(RuntimeError, match="countdown is already running"):
            rec.start_after(1, "accel")
        deadline = time.monotonic() + 5
        states = set()
        while len(rec.takes) < 1 and time.monotonic() < deadline:
            states.add(rec.status().state)
            time.sleep(0.02)
        assert "recording" in states and rec.takes[0].label == "wave"
        assert rec.status().state == "ready"
        # a countdown called off records nothing
        rec.start_after(0.5, "accel", "tap")
        assert rec.cancel_countdown() and rec.status().state == "ready"
        time.sleep(0.8)
        assert len(Dataset(tmp_path / "ds")) == 1 and not rec.counting_down
        with pytest.raises(ValueError, match="countdown_s"):
            rec.start_after(-1, "accel")
        # a take that cannot start after its countdown says why, without a caller to raise to
        rec.start_after(0.2, "nosuchsensor", "x")
        deadline = time.monotonic() + 5
        while not rec.status().error and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "did not start" in rec.status().error and rec.status().state == "ready"
    finally:
        rec.disconnect()
