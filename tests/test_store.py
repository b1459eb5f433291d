"""The dataset store: a folder that survives crashes and names its versions."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from workbench.data import (
    Dataset,
    DatasetError,
    DatasetWarning,
    Region,
    snapshot,
    snapshots,
    split_recordings,
    summarize,
    verify_snapshot,
    windows,
)


def add(ds, label, n=200, seed=0, **kw):
    values = np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)
    return ds.add_recording(values, sensor="accel", channels=("x", "y", "z"), units="g",
                            rate_hz=100.0, label=label, **kw)


def test_a_recording_round_trips_in_raw_and_physical_units(tmp_path):
    ds = Dataset(tmp_path / "ds")
    raw = (np.arange(30).reshape(10, 3) * 100).astype(np.int16)
    meta = ds.add_recording(raw, sensor="accel", channels=("x", "y", "z"), units="g",
                            rate_hz=119.0, scale=1 / 4096, label="tap", device="sim://x")
    rec = Dataset(tmp_path / "ds").load(meta.id)  # a fresh open reads the same
    assert rec.raw.dtype == np.int16 and np.array_equal(rec.raw, raw)
    assert np.allclose(rec.values, raw / 4096)
    assert rec.meta.duration_s == pytest.approx(10 / 119)
    on_disk = json.loads((tmp_path / "ds/recordings" / meta.id / "meta.json").read_text())
    assert on_disk["label"] == "tap" and on_disk["channels"] == ["x", "y", "z"]


def test_a_crash_mid_recording_keeps_whole_rows(tmp_path):
    Dataset(tmp_path / "ds")
    code = ("import os, signal, numpy as np\n"
            "from workbench.data import Dataset\n"
            f"ds = Dataset({str(tmp_path / 'ds')!r})\n"
            "w = ds.new_recording(sensor='accel', channels=('x', 'y', 'z'), units='g',\n"
            "                     rate_hz=100, dtype='int16', label='walk')\n"
            "w.append(np.ones((100, 3), np.int16))\n"
            "w.flush()\n"
            "w._file.write(b'\\x01\\x02\\x03')  # half a row, as a kill in mid-write leaves it\n"
            "w._file.flush()\n"
            "os.kill(os.getpid(), signal.SIGKILL)  # close() is never called\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == -signal.SIGKILL, out.stderr
    again = Dataset(tmp_path / "ds")
    (meta,) = again.recordings()
    assert meta.interrupted and meta.samples == 100 and meta.complete
    assert any("interrupted" in p for p in again.problems)
    assert again.load(meta.id).raw.shape == (100, 3)
    assert Dataset(tmp_path / "ds").problems == []  # repaired once, for good


def test_a_damaged_recording_is_skipped_with_a_reason(tmp_path):
    ds = Dataset(tmp_path / "ds")
    good = add(ds, "a")
    bad = add(ds, "b", seed=1)
    (tmp_path / "ds/recordings" / bad.id / "meta.json").write_text("{not json")
    with pytest.warns(DatasetWarning, match=bad.id):
        again = Dataset(tmp_path / "ds")
    assert [m.id for m in again] == [good.id]
    assert any(bad.id in p and "damaged" in p for p in again.problems)


def test_folders_that_are_not_datasets_are_refused(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes/todo.txt").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        Dataset(tmp_path / "notes")
    with pytest.raises(DatasetError, match="no dataset"):
        Dataset(tmp_path / "absent", create=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other/dataset.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DatasetError, match="not a workbench dataset"):
        Dataset(tmp_path / "other")
    (tmp_path / "future").mkdir()
    (tmp_path / "future/dataset.json").write_text(json.dumps(
        {"format": "workbench-dataset", "version": 99}))
    with pytest.raises(DatasetError, match="newer"):
        Dataset(tmp_path / "future")


def test_regions_are_validated(tmp_path):
    ds = Dataset(tmp_path / "ds")
    meta = add(ds, None)
    ds.add_region(meta.id, 10, 50, "wave")
    ds.add_region(meta.id, 60, 90, "punch")
    with pytest.raises(ValueError, match="overlap"):
        ds.add_region(meta.id, 40, 70, "circle")
    with pytest.raises(ValueError, match="past the end"):
        ds.add_region(meta.id, 150, 250, "circle")
    with pytest.raises(ValueError):
        Region(5, 5, "x")
    assert [r.label for r in ds.meta(meta.id).regions] == ["wave", "punch"]
    ds.remove_region(meta.id, Region(10, 50, "wave"))
    assert Dataset(tmp_path / "ds").meta(meta.id).regions == (Region(60, 90, "punch"),)


def test_relabel_merge_drop_and_restore(tmp_path):
    ds = Dataset(tmp_path / "ds")
    a = add(ds, "wave")
    b = add(ds, "wave2", seed=1)
    c = add(ds, None, seed=2)
    ds.add_region(c.id, 0, 50, "wave2")
    assert ds.merge_labels(["wave2"], "wave") == 2
    assert ds.labels == ["wave"]
    ds.relabel("wave", "hello")
    assert Dataset(tmp_path / "ds").labels == ["hello"]
    ds.drop(a.id)
    assert a.id not in Dataset(tmp_path / "ds")
    assert (tmp_path / "ds/trash" / a.id / "samples.bin").exists()  # nothing deleted
    ds.restore(a.id)
    assert ds.load(a.id).raw.shape == (200, 3) and len(Dataset(tmp_path / "ds")) == 3
    assert b.id in ds


def test_windows_come_from_regions_or_whole_recordings(tmp_path):
    ds = Dataset(tmp_path / "ds")
    whole = add(ds, "idle")
    part = add(ds, None, seed=1)
    add(ds, None, seed=2)  # unlabelled: no windows
    ds.add_region(part.id, 20, 120, "wave")
    w = windows(ds, length=50, stride=25)
    assert w.X.shape[1:] == (50, 3)
    assert (w.groups == whole.id).sum() == 7 and (w.groups == part.id).sum() == 3
    assert set(w.y[w.groups == part.id]) == {"wave"}
    rec = ds.load(part.id).values
    i = int(np.flatnonzero(w.groups == part.id)[0])
    assert np.array_equal(w.X[i], rec[w.starts[i]:w.starts[i] + 50])
    with pytest.raises(ValueError, match="shorter than"):
        windows(ds, length=500)


def test_split_is_stratified_and_leakage_free(tmp_path):
    ds = Dataset(tmp_path / "ds")
    for i in range(30):
        add(ds, ["a", "b", "c"][i % 3], seed=i)
    split = split_recordings(ds, test=0.2, val=0.2, seed=1)
    split.check()
    assert (len(split.train), len(split.val), len(split.test)) == (18, 6, 6)
    for side in (split.val, split.test):
        labels = sorted(ds.meta(r).label for r in side)
        assert labels == ["a", "a", "b", "b", "c", "c"]
    w = windows(ds, 50)
    train, test = w.subset(split.train), w.subset(split.test)
    assert not set(train.groups) & set(test.groups)
    assert split_recordings(ds, test=0.2, val=0.2, seed=1) == split  # reproducible


def test_predefined_split_is_honoured(tmp_path):
    ds = Dataset(tmp_path / "ds")
    fixed = [add(ds, "a", seed=i, split="test" if i < 2 else "train") for i in range(6)]
    split = split_recordings(ds, test=0.5, predefined="split")
    assert set(split.test) == {fixed[0].id, fixed[1].id}


def test_snapshots_name_exact_contents(tmp_path):
    ds = Dataset(tmp_path / "ds")
    a = add(ds, "a")
    add(ds, "b", seed=1)
    first = snapshot(ds, "two recordings")
    assert snapshot(ds).id == first.id  # same contents, same name
    assert verify_snapshot(ds, first.short) == []
    ds.set_label(a.id, "c")
    changed = verify_snapshot(ds, first.id)
    assert changed == [f"{a.id}: label changed"]
    second = snapshot(ds)
    assert second.id != first.id and [s.id for s in snapshots(ds)] == [first.id, second.id]
    with open(tmp_path / "ds/recordings" / a.id / "samples.bin", "r+b") as f:
        f.write(b"\x00\x00\x00\x00")  # one sample altered on disk
    assert f"{a.id}: samples_sha256 changed" in verify_snapshot(ds, second.id)
    path = tmp_path / "ds/snapshots" / f"{first.id}.json"
    data = json.loads(path.read_text())
    data["manifest"]["recordings"][0]["label"] = "forged"
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="edited"):
        verify_snapshot(ds, first.id)


def test_summary_counts_seconds_per_label(tmp_path):
    ds = Dataset(tmp_path / "ds")
    add(ds, "a", n=300)
    add(ds, "b", n=100, seed=1)
    part = add(ds, None, n=200, seed=2)
    ds.add_region(part.id, 0, 50, "b")
    s = summarize(ds)
    assert s.per_label["a"]["seconds"] == pytest.approx(3.0)
    assert s.per_label["b"]["seconds"] == pytest.approx(1.5)
    assert s.per_label["b"]["recordings"] == 2
    assert s.imbalance() == pytest.approx(2.0)
    assert "a " in s.table() and s.unlabelled == 0
