"""LabelEditor, headless: every action reaches the disk at once and can be undone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.data import Dataset, Region
from workbench.data.labeling import LabelEditor, LabelingError, apply_region

RATE = 100.0


def bursts(n=1000, at=((200, 300), (600, 700)), seed=0):
    """Quiet noise with loud bursts at the given sample ranges (3 channels)."""
    rng = np.random.default_rng(seed)
    x = 0.01 * rng.standard_normal((n, 3))
    for a, b in at:
        x[a:b] += np.sin(np.arange(b - a) * 0.9)[:, None] * np.array([1.0, 0.7, 0.4])
    return x.astype(np.float32)


@pytest.fixture
def ds(tmp_path):
    ds = Dataset(tmp_path / "ds")
    ds.add_recording(bursts(), sensor="accel", channels=("x", "y", "z"), units="g",
                     rate_hz=RATE, started="2024-01-01T00:00:00")
    ds.add_recording(bursts(seed=1), sensor="accel", channels=("x", "y", "z"), units="g",
                     rate_hz=RATE, label="idle", started="2024-01-02T00:00:00")
    return ds


def rec_id(ds, i=0):
    return ds.recordings()[i].id


def on_disk(ds, rid) -> dict:
    return json.loads((ds.root / "recordings" / rid / "meta.json").read_text())


def regions_on_disk(ds, rid):
    fresh = Dataset(ds.root)  # a new process would see this
    return [(r.start, r.end, r.label) for r in fresh.meta(rid).regions]


def test_select_clips_and_orders(ds):
    ed = LabelEditor(ds, rec_id(ds))
    assert ed.select(500, 100) == (100, 500)
    assert ed.select(-50, 20.6) == (0, 21)
    assert ed.select(900, 5000) == (900, 1000)
    assert ed.select(1200, 1500) is None and ed.selection is None  # entirely outside: empty
    assert ed.select(40, 40) is None
    with pytest.raises(ValueError, match="start must be a sample index"):
        ed.select("a", 3)
    with pytest.raises(ValueError, match="finite"):
        ed.select(float("nan"), 3)


def test_label_selection_is_saved_at_once(ds):
    rid = rec_id(ds)
    ed = LabelEditor(ds, rid)
    ed.select(100, 300)
    region = ed.label_selection(" wave ")
    assert region == Region(100, 300, "wave")
    assert regions_on_disk(ds, rid) == [(100, 300, "wave")]
    assert on_disk(ds, rid)["regions"] == [{"start": 100, "end": 300, "label": "wave"}]
    assert "wave" in ed.labels


def test_newest_region_wins_trimming_and_splitting(ds):
    rid = rec_id(ds)
    ed = LabelEditor(ds, rid)
    ed.select(100, 500)
    ed.label_selection("walk")
    ed.select(200, 300)  # inside: splits
    ed.label_selection("tap")
    assert regions_on_disk(ds, rid) == [(100, 200, "walk"), (200, 300, "tap"), (300, 500, "walk")]
    ed.select(250, 450)  # trims tap and the right walk
    ed.label_selection("wave")
    assert regions_on_disk(ds, rid) == [(100, 200, "walk"), (200, 250, "tap"),
                                        (250, 450, "wave"), (450, 500, "walk")]
    ed.select(0, 1000)  # covers everything: the others disappear
    ed.label_selection("noise")
    assert regions_on_disk(ds, rid) == [(0, 1000, "noise")]


def test_same_label_overlap_merges():
    regions = (Region(100, 200, "a"), Region(300, 400, "b"))
    assert apply_region(regions, Region(150, 350, "a")) == (Region(100, 350, "a"),
                                                            Region(350, 400, "b"))
    # touching is not overlapping: kept apart
    assert apply_region(regions, Region(200, 250, "a")) == (Region(100, 200, "a"),
                                                            Region(200, 250, "a"),
                                                            Region(300, 400, "b"))


def test_every_action_undoes_and_redoes_on_disk(ds):
    rid = rec_id(ds)
    ed = LabelEditor(ds, rid)
    ed.select(100, 300)
    ed.label_selection("wave")
    ed.select(200, 400)
    ed.label_selection("tap")
    ed.label_recording("session")
    ed.remove_region_at(150)
    region = ed.regions[0]
    ed.relabel_region(region, "knock")
    states = [(100, 300, "wave")], [(100, 200, "wave"), (200, 400, "tap")]
    assert regions_on_disk(ds, rid) == [(200, 400, "knock")]
    assert len(ed.history) == 5 and ed.can_undo and not ed.can_redo

    assert "relabel" in ed.undo()
    assert regions_on_disk(ds, rid) == [(200, 400, "tap")]
    ed.undo()  # the removal
    assert regions_on_disk(ds, rid) == states[1]
    ed.undo()  # the recording label
    assert Dataset(ds.root).meta(rid).label is None
    ed.undo()
    assert regions_on_disk(ds, rid) == states[0]
    ed.undo()
    assert regions_on_disk(ds, rid) == []
    with pytest.raises(LabelingError, match="nothing to undo"):
        ed.undo()
    for _ in range(5):
        ed.redo()
    assert regions_on_disk(ds, rid) == [(200, 400, "knock")]
    assert Dataset(ds.root).meta(rid).label == "session"
    with pytest.raises(LabelingError, match="nothing to redo"):
        ed.redo()


def test_a_new_action_drops_the_redo_history(ds):
    ed = LabelEditor(ds, rec_id(ds))
    ed.select(0, 10)
    ed.label_selection("a")
    ed.undo()
    ed.select(20, 30)
    ed.label_selection("b")
    assert not ed.can_redo


def test_undo_refuses_to_overwrite_changes_made_elsewhere(ds):
    rid = rec_id(ds)
    ed = LabelEditor(ds, rid)
    ed.select(0, 100)
    ed.label_selection("a")
    ds.add_region(rid, 500, 600, "other")  # someone else's change
    with pytest.raises(LabelingError, match="changed outside this editor"):
        ed.undo()
    assert regions_on_disk(ds, rid) == [(0, 100, "a"), (500, 600, "other")]


def test_bad_input_is_refused_and_loses_nothing(ds):
    rid = rec_id(ds)
    ed = LabelEditor(ds, rid)
    ed.select(0, 100)
    ed.label_selection("a")
    before = on_disk(ds, rid)
    with pytest.raises(ValueError, match="empty"):
        ed.label_selection("   ")
    with pytest.raises(ValueError, match="string"):
        ed.label_selection(3)
    ed.clear_selection()
    with pytest.raises(LabelingError, match="select a stretch"):
        ed.label_selection("b")
    with pytest.raises(LabelingError, match="no region at sample 500"):
        ed.remove_region_at(500)
    with pytest.raises(LabelingError, match="no region"):
        ed.relabel_region(Region(1, 2, "zzz"), "b")
    with pytest.raises(LabelingError, match="nothing selected"):
        ed.remove_selected()
    assert on_disk(ds, rid) == before
    assert ed.history == ["label 0..100 as 'a'"]
    with pytest.raises(KeyError, match="no recording"):
        LabelEditor(ds, "nope")


def test_select_at_and_remove_selected(ds):
    rid = rec_id(ds)
    ed = LabelEditor(ds, rid)
    for a, b, lab in ((0, 100, "a"), (200, 300, "b"), (400, 500, "c")):
        ed.select(a, b)
        ed.label_selection(lab)
    assert ed.select_at(250) == (200, 300)
    assert ed.select_at(350) is None
    ed.select(50, 250)
    assert [r.label for r in ed.remove_selected()] == ["a", "b"]
    assert regions_on_disk(ds, rid) == [(400, 500, "c")]
    ed.undo()
    assert len(regions_on_disk(ds, rid)) == 3


def test_labels_and_shortcuts(ds):
    ed = LabelEditor(ds, rec_id(ds), labels=["walk"])
    assert ed.labels == ["walk", "idle"]
    ed.add_label("tap")
    ed.select(0, 10)
    ed.label_selection("zz")
    assert ed.labels == ["walk", "idle", "tap", "zz"]
    assert ed.shortcuts == {"1": "walk", "2": "idle", "3": "tap", "4": "zz"}
    for i in range(10):
        ed.add_label(f"l{i}")
    assert list(ed.shortcuts) == list("123456789")


def test_propose_is_not_saved_until_accepted(ds):
    pytest.importorskip("scipy")
    rid = rec_id(ds)
    ed = LabelEditor(ds, rid)
    ed.select(0, 150)
    ed.label_selection("quiet")
    result = ed.propose()
    assert len(ed.proposals) == 2
    for p, (a, b) in zip(ed.proposals, ((200, 300), (600, 700))):
        assert abs(p.start - a) <= 15 and abs(p.end - b) <= 15
    assert result.energy.size and result.threshold > 0
    assert regions_on_disk(ds, rid) == [(0, 150, "quiet")]  # not stored yet

    # moving the threshold re-cuts the same energy curve
    high = ed.propose(threshold=float(result.energy.max()) * 2)
    assert high.energy is result.energy and ed.proposals == ()
    ed.propose()
    added = ed.accept_proposals("wave")
    assert len(added) == 2 and ed.proposals == ()
    on = regions_on_disk(ds, rid)
    assert [lab for _, _, lab in on] == ["quiet", "wave", "wave"]
    ed.undo()  # one step
    assert regions_on_disk(ds, rid) == [(0, 150, "quiet")]
    with pytest.raises(LabelingError, match="no proposals"):
        ed.accept_proposals("wave")
    with pytest.raises(TypeError):
        ed.propose(bogus=1)
