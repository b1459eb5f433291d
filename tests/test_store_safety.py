"""The dataset store against bad input and a second process: wrong metadata, paths that lead
outside the dataset, and two processes (a capture and a labeling notebook) on one folder.

The processes here are real (multiprocessing, spawned), synchronised with events so that each
test asserts what ends up on disk, never how fast anything ran."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest

from workbench.data import Dataset, DatasetError, DatasetWarning, Region, load_manifest, snapshot

CTX = mp.get_context("spawn")
TIMEOUT = 60


def add(ds, label, n=50, seed=0):
    values = np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)
    return ds.add_recording(values, sensor="accel", channels=("x", "y", "z"), units="g",
                            rate_hz=100.0, label=label)


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------- wrong metadata values
@pytest.mark.parametrize("field, value", [
    ("dtype", "object"),        # once truncated samples.bin to nothing
    ("channels", []),           # once a ZeroDivisionError that blocked the whole dataset
    ("dtype", "foo"),           # once a TypeError that blocked the whole dataset
    ("dtype", "U8"),
    ("channels", "xyz"),
    ("rate_hz", "fast"),
    ("rate_hz", -5),
    ("samples", -1),
    ("gaps", [[3]]),
    ("regions", [{"start": 9, "end": 2, "label": "x"}]),
    ("label", 7),
])
def test_wrong_metadata_is_skipped_reported_and_left_untouched(tmp_path, field, value):
    ds = Dataset(tmp_path / "ds")
    good = add(ds, "good")
    bad = add(ds, "bad", seed=1)
    folder = tmp_path / "ds/recordings" / bad.id
    meta = json.loads((folder / "meta.json").read_text())
    meta[field] = value
    meta["complete"] = False          # so that opening would try to repair it
    (folder / "meta.json").write_text(json.dumps(meta))
    with open(folder / "samples.bin", "ab") as f:
        f.write(b"\x01\x02")          # and a partial row it would cut off
    before = digest(folder)
    with pytest.warns(DatasetWarning, match=bad.id):
        again = Dataset(tmp_path / "ds")
    assert [m.id for m in again] == [good.id]        # the rest of the dataset opens
    (problem,) = again.problems
    assert bad.id in problem and repr(field) in problem and "untouched" in problem
    assert digest(folder) == before                  # byte for byte
    with pytest.raises(KeyError):
        again.load(bad.id)


def test_new_recordings_refuse_values_that_could_not_be_read_back(tmp_path):
    ds = Dataset(tmp_path / "ds")
    with pytest.raises(ValueError, match="numeric"):
        ds.new_recording(sensor="s", channels=("a",), units="", rate_hz=1, dtype="object")
    with pytest.raises(ValueError, match="rate_hz"):
        ds.new_recording(sensor="s", channels=("a",), units="", rate_hz=float("nan"))
    assert len(ds) == 0 and not any((tmp_path / "ds/recordings").iterdir())


# --------------------------------------------------------------------- paths stay inside
@pytest.mark.parametrize("name", ["../../d", "../recordings", "/tmp", "a/b", "..", ".", "",
                                  "x\x00y"])
def test_names_from_callers_never_lead_outside_the_dataset(tmp_path, name):
    other = add(Dataset(tmp_path / "other"), "theirs")
    outside = tmp_path / "d"           # trash/../../d from the dataset: a recording of theirs,
    (tmp_path / "other/recordings" / other.id).rename(outside)    # that a repair would rewrite
    meta = json.loads((outside / "meta.json").read_text())
    (outside / "meta.json").write_text(json.dumps({**meta, "complete": False}))
    with open(outside / "samples.bin", "ab") as f:
        f.write(b"\x01")
    ds = Dataset(tmp_path / "ds")
    rec = add(ds, "x")
    ds.drop(rec.id)
    snapshot(ds)
    before = digest(tmp_path)
    with pytest.raises((DatasetError, KeyError)):
        ds.restore(name)
    with pytest.raises((DatasetError, KeyError)):
        ds.drop(name)
    with pytest.raises((DatasetError, KeyError)):
        ds.set_label(name, "y")
    with pytest.raises((DatasetError, KeyError)):
        ds.load(name)
    with pytest.raises(DatasetError):
        load_manifest(ds, name)
    assert digest(tmp_path) == before


def test_restore_by_absolute_path_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "meta.json").write_text("{}")
    ds = Dataset(tmp_path / "ds")
    with pytest.raises(DatasetError, match="not a valid recording id"):
        ds.restore(str(victim))
    assert (victim / "meta.json").read_text() == "{}" and victim.is_dir()


def test_a_recording_folder_that_links_outside_is_skipped(tmp_path):
    """A symbolic link in recordings/ (or trash/) to a folder elsewhere is not followed:
    its files are neither repaired nor moved."""
    elsewhere = tmp_path / "elsewhere"
    ds = Dataset(tmp_path / "ds")
    rec = add(ds, "x")
    (tmp_path / "ds/recordings" / rec.id).rename(elsewhere)
    meta = json.loads((elsewhere / "meta.json").read_text())
    (elsewhere / "meta.json").write_text(json.dumps({**meta, "complete": False}))
    with open(elsewhere / "samples.bin", "ab") as f:
        f.write(b"\x01")
    (tmp_path / "ds/recordings/link").symlink_to(elsewhere)
    (tmp_path / "ds/trash").mkdir()
    (tmp_path / "ds/trash/link2").symlink_to(elsewhere)
    before = digest(elsewhere)
    with pytest.warns(DatasetWarning):
        again = Dataset(tmp_path / "ds")
    assert len(again) == 0 and any("outside" in p for p in again.problems)
    with pytest.raises(DatasetError, match="outside"):
        again.restore("link2")
    assert digest(elsewhere) == before


def test_restore_never_overwrites_a_present_recording(tmp_path):
    ds = Dataset(tmp_path / "ds")
    rec = add(ds, "x")
    ds.drop(rec.id)
    (tmp_path / "ds/recordings" / rec.id).mkdir()
    (tmp_path / "ds/recordings" / rec.id / "note").write_text("mine")
    with pytest.raises(DatasetError, match="already in the dataset"):
        ds.restore(rec.id)
    assert (tmp_path / "ds/trash" / rec.id / "samples.bin").is_file()
    assert (tmp_path / "ds/recordings" / rec.id / "note").read_text() == "mine"


# --------------------------------------------------------------------- two processes
def _run_capture(root, rows=10, flushes_after=3):
    started, go_on, done = CTX.Event(), CTX.Event(), CTX.Event()
    proc = CTX.Process(target=_capture_whole_rows, args=(str(root), started, go_on, done, rows,
                                                         flushes_after))
    proc.start()
    assert started.wait(TIMEOUT), "the capture process did not start"
    return proc, go_on, done


def _capture_whole_rows(root, started, go_on, done, rows_per_flush, flushes_after):
    """As a real capture: whole rows, some still in the writer's buffer at any time."""
    ds = Dataset(root)
    w = ds.new_recording(sensor="accel", channels=("x", "y", "z"), units="g", rate_hz=100,
                         dtype="int16", label="walk")
    w.append(np.ones((rows_per_flush, 3), np.int16))
    w.flush()
    w._file.write(np.full(3, 7, "<i2").tobytes()[:3])  # a row half handed to the OS
    w._file.flush()
    started.set()
    assert go_on.wait(TIMEOUT)
    w._file.write(np.full(3, 7, "<i2").tobytes()[3:])  # ... and its other half
    w._samples += 1
    for i in range(flushes_after):
        w.append(np.full((rows_per_flush, 3), i, np.int16))
        w.flush()
    w.close(ended="stopped")
    done.set()


def test_opening_during_a_capture_leaves_the_live_recording_alone(tmp_path):
    root = tmp_path / "ds"
    Dataset(root)
    proc, go_on, done = _run_capture(root)
    try:
        ds = Dataset(root)                      # a notebook opens the folder mid-capture
        (meta,) = ds.recordings()
        assert not meta.interrupted and not meta.complete and ds.problems == []
        assert ds.is_live(meta.id)
        size = (root / "recordings" / meta.id / "samples.bin").stat().st_size
        assert size == 10 * 6 + 3               # the half row was not cut off
        with pytest.raises(DatasetError, match="being recorded"):
            ds.drop(meta.id)
        go_on.set()
        assert done.wait(TIMEOUT)
    finally:
        go_on.set()
        proc.join(TIMEOUT)
    assert proc.exitcode == 0
    ds.refresh()
    (meta,) = ds.recordings()
    assert meta.complete and not meta.interrupted and meta.samples == 10 + 1 + 30
    assert ds.problems == [] and not ds.is_live(meta.id)
    raw = ds.load(meta.id).raw
    assert (raw[10] == 7).all() and (raw[-10:] == 2).all()


def test_a_label_set_during_a_capture_survives_its_flushes(tmp_path):
    root = tmp_path / "ds"
    Dataset(root)
    proc, go_on, done = _run_capture(root)
    try:
        ds = Dataset(root)
        (meta,) = ds.recordings()
        ds.set_label(meta.id, "run")
        ds.add_region(meta.id, 0, 5, "start")
        go_on.set()
        assert done.wait(TIMEOUT)
    finally:
        go_on.set()
        proc.join(TIMEOUT)
    assert proc.exitcode == 0
    again = Dataset(root)
    (meta,) = again.recordings()
    assert meta.label == "run" and meta.regions == (Region(0, 5, "start"),)
    assert meta.complete and meta.samples == 41 and meta.extra["ended"] == "stopped"


def _add_regions(root, rec_id, offset, count, barrier):
    ds = Dataset(root)
    barrier.wait(TIMEOUT)
    for i in range(count):
        ds.add_region(rec_id, offset + 2 * i, offset + 2 * i + 1, f"p{offset}")


def test_two_processes_labeling_one_recording_lose_nothing(tmp_path):
    root = tmp_path / "ds"
    rec = add(Dataset(root), "x", n=400)
    barrier = CTX.Barrier(2)
    procs = [CTX.Process(target=_add_regions, args=(str(root), rec.id, off, 25, barrier))
             for off in (0, 200)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT)
    assert [p.exitcode for p in procs] == [0, 0]
    regions = Dataset(root).meta(rec.id).regions
    assert len(regions) == 50
    assert {r.label for r in regions} == {"p0", "p200"}


def _create_and_add(root, barrier, index):
    barrier.wait(TIMEOUT)
    ds = Dataset(root)
    add(ds, f"p{index}", n=5, seed=index)


def test_many_processes_creating_one_new_dataset_all_succeed(tmp_path):
    n = 6
    for attempt in range(4):
        root = tmp_path / f"ds{attempt}"
        barrier = CTX.Barrier(n)
        procs = [CTX.Process(target=_create_and_add, args=(str(root), barrier, i))
                 for i in range(n)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(TIMEOUT)
        assert [p.exitcode for p in procs] == [0] * n
        ds = Dataset(root)
        assert sorted(m.label for m in ds) == sorted(f"p{i}" for i in range(n))
        assert ds.problems == []
        assert not [p for p in root.rglob("*.tmp")]


def test_a_dataset_is_not_created_inside_a_file_or_a_full_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        Dataset(tmp_path / "f")
    (tmp_path / "full").mkdir()
    (tmp_path / "full/notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        Dataset(tmp_path / "full")
    assert os.listdir(tmp_path / "full") == ["notes.txt"]
