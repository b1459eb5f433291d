"""Labeler and DatasetOverview on the Python side, without a kernel.

The widgets get a recording comm (ipywidgets takes ``comm=``), so what they would send
to the browser can be checked, and the browser's messages are delivered as it would.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("anywidget")

from recording_comm import RecordingComm  # noqa: E402

from workbench.data import Dataset, Region, summarize  # noqa: E402
from workbench.ui.labeler import FRONT_MESSAGES, Labeler, envelope  # noqa: E402
from workbench.ui.overview import DatasetOverview, label_bars_svg, summary_html, thumbnail_svg  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def burst_values(n=1000, at=((200, 300), (600, 700)), channels=3, seed=0):
    rng = np.random.default_rng(seed)
    x = 0.01 * rng.standard_normal((n, channels))
    for a, b in at:
        x[a:b] += np.sin(np.arange(b - a) * 0.9)[:, None]
    return x.astype(np.float32)


@pytest.fixture
def ds(tmp_path):
    ds = Dataset(tmp_path / "ds")
    ds.add_recording(burst_values(), sensor="accel", channels=("x", "y", "z"), units="g",
                     rate_hz=100.0, started="2024-01-01T00:00:00")
    ds.add_recording(burst_values(5000, at=((1000, 1500), (3000, 3500)), channels=2, seed=1),
                     sensor="mic", channels=("l", "r"),
                     units="", rate_hz=1000.0, label="noise", started="2024-01-02T00:00:00")
    return ds


def make(ds, **kw):
    comm = RecordingComm()
    lab = Labeler(ds, comm=comm, **kw)
    return lab, comm


def disk_regions(ds, rec_id):
    meta = json.loads((ds.root / "recordings" / rec_id / "meta.json").read_text())
    return [(r["start"], r["end"], r["label"]) for r in meta["regions"]]


def test_traits_are_synced_with_help_and_the_esm_is_the_sibling_file(ds):
    lab, _ = make(ds)
    for name in ("recordings", "rec_id", "info", "regions", "selection", "labels", "colors",
                 "shortcuts", "proposals", "threshold", "threshold_max", "can_undo", "can_redo",
                 "can_propose", "status", "width_px"):
        trait = lab.traits()[name]
        assert trait.metadata.get("sync"), name
        assert trait.help, name
    assert "export default" in lab._esm and "render" in lab._esm


def test_opens_the_first_recording_and_sends_its_trace(ds):
    lab, comm = make(ds)
    first = ds.recordings()[0]
    assert lab.rec_id == first.id
    assert [r["id"] for r in lab.recordings] == [m.id for m in ds.recordings()]
    assert lab.info["channels"] == ["x", "y", "z"] and lab.info["samples"] == 1000
    comm.published.clear()
    comm.send_custom({"type": "hello", "width": 300})
    (msg, bufs), = comm.custom("trace")
    assert lab.width_px == 300
    points = np.frombuffer(bufs[0], np.float32).reshape(msg["n"], msg["channels"])
    values = ds.load(first.id).values
    assert msg["samples"] == 1000 and msg["channels"] == 3
    assert msg["bucket"] == 4 and msg["dx"] == 2 and len(points) == 500  # 2 points per pixel
    assert points.max() == values.max() and points.min() == values.min()  # no spike lost
    assert msg["lo"] == pytest.approx(values.min()) and msg["hi"] == pytest.approx(values.max())


def test_drag_then_key_1_stores_the_region_and_resends_state(ds):
    lab, comm = make(ds)
    rid = lab.rec_id
    comm.send_custom({"type": "add_label", "label": "wave"})
    assert lab.labels == ["noise", "wave"]
    comm.published.clear()
    comm.send_custom({"type": "select", "start": 480.4, "end": 120})
    assert lab.selection == [120, 480]
    comm.send_custom({"type": "shortcut", "key": "2"})
    assert disk_regions(ds, rid) == [(120, 480, "wave")]
    assert lab.regions == [{"start": 120, "end": 480, "label": "wave"}]
    sent = comm.state()
    assert sent["regions"] == lab.regions and sent["can_undo"] is True
    assert lab.status["level"] == "info" and "wave" in lab.status["text"]


def test_every_message_type_is_handled(ds):
    lab, comm = make(ds)
    rid = lab.rec_id
    comm.send_custom({"type": "select", "start": 0, "end": 100})
    comm.send_custom({"type": "label", "label": "a"})
    comm.send_custom({"type": "click", "sample": 50})
    assert lab.selection == [0, 100]
    comm.send_custom({"type": "clear_selection"})
    assert lab.selection == []
    comm.send_custom({"type": "label_recording", "label": "session"})
    assert ds.meta(rid).label == "session"
    comm.send_custom({"type": "label_recording", "label": None})
    assert ds.meta(rid).label is None
    comm.send_custom({"type": "select", "start": 50, "end": 60})
    comm.send_custom({"type": "delete"})
    assert disk_regions(ds, rid) == []
    comm.send_custom({"type": "undo"})
    assert disk_regions(ds, rid) == [(0, 100, "a")]
    comm.send_custom({"type": "redo"})
    assert disk_regions(ds, rid) == [] and lab.can_undo and not lab.can_redo
    other = ds.recordings()[1].id
    comm.send_custom({"type": "open", "rec_id": other})
    assert lab.rec_id == other and lab.info["channels"] == ["l", "r"]
    if lab.can_propose:
        comm.send_custom({"type": "propose", "threshold": None})
        assert len(lab.proposals) == 2 and lab.threshold > 0
        comm.send_custom({"type": "clear_proposals"})
        assert lab.proposals == [] and lab.threshold is None
        comm.send_custom({"type": "propose"})
        comm.send_custom({"type": "accept", "label": "a"})
        assert [r[2] for r in disk_regions(ds, other)] == ["a", "a"]
    # the undo history of the first recording is kept while the widget lives
    comm.send_custom({"type": "open", "rec_id": rid})
    assert lab.can_undo
    assert lab.status["level"] == "info"


def test_bad_messages_become_errors_and_change_nothing(ds):
    lab, comm = make(ds)
    rid = lab.rec_id
    comm.send_custom({"type": "select", "start": 0, "end": 100})
    comm.send_custom({"type": "label", "label": "a"})
    before = (ds.root / "recordings" / rid / "meta.json").read_text()
    for msg, text in (({"type": "label", "label": ""}, "empty"),
                      ({"type": "shortcut", "key": "7"}, "no label on key"),
                      ({"type": "select", "start": "x", "end": 3}, "sample index"),
                      ({"type": "open", "rec_id": "nope"}, "no recording"),
                      ({"type": "bogus"}, "unknown message"),
                      ("not a dict", "unknown message"),
                      ({"type": "select", "start": 1}, "needs end"),
                      ({"type": "hello", "width": "wide"}, "width"),
                      ({"type": "accept", "label": "a"}, "no proposals")):
        seq = lab.status.get("seq", 0)
        comm.send_custom(msg)
        assert lab.status["level"] == "error" and text in lab.status["text"], (msg, lab.status)
        assert lab.status["seq"] > seq
    comm.send_custom({"type": "clear_selection"})
    comm.send_custom({"type": "label", "label": "b"})
    assert "select a stretch" in lab.status["text"]
    assert (ds.root / "recordings" / rid / "meta.json").read_text() == before
    assert lab.rec_id == rid


def test_python_api_drives_the_same_state(ds):
    lab, comm = make(ds)
    lab.select(10, 20)
    lab.label("tap")
    lab.undo()
    assert lab.regions == [] and lab.can_redo
    lab.redo()
    assert lab.editor.regions == (Region(10, 20, "tap"),)
    assert set(FRONT_MESSAGES) >= {"select", "label", "shortcut", "delete", "undo", "redo"}


def test_energy_message_follows_the_proposals(ds):
    lab, comm = make(ds)
    if not lab.can_propose:
        pytest.skip("workbench.data.segment or scipy missing")
    comm.published.clear()
    lab.propose()
    (msg, bufs), = comm.custom("energy")
    energy = np.frombuffer(bufs[0], np.float32)
    assert msg["n"] == len(energy) > 10 and msg["dx"] > 0
    assert energy.max() <= lab.threshold_max and lab.threshold > 0
    comm.published.clear()
    lab.clear_proposals()
    (msg, _), = comm.custom("energy")
    assert msg["n"] == 0


def test_an_empty_dataset_shows_nothing_and_refuses_actions(tmp_path):
    ds = Dataset(tmp_path / "empty")
    lab, comm = make(ds)
    assert lab.rec_id == "" and lab.recordings == []
    lab.handle({"type": "select", "start": 0, "end": 5})
    assert "no recordings yet" in lab.status["text"]
    ds.add_recording(np.zeros((10, 1), np.float32), sensor="s", channels=("a",), units="",
                     rate_hz=10.0)
    lab.refresh()
    assert lab.rec_id == ds.recordings()[0].id


def test_envelope_keeps_extremes():
    x = np.zeros((10_001, 2), np.float32)
    x[5003, 0] = 9
    x[17, 1] = -4
    pts, bucket = envelope(x, 100)
    assert bucket == 101 and pts[:, 0].max() == 9 and pts[:, 1].min() == -4
    small, b = envelope(x[:150], 100)
    assert b == 1 and len(small) == 150


# ------------------------------------------------------------------------ overview
def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises if it is not well-formed XML


def test_thumbnail_is_svg_with_one_polyline_per_channel():
    values = burst_values(5000, channels=3)
    svg = parse(thumbnail_svg(values, title="a<b>&c", subtitle="wave · 5.0 s",
                              regions=[Region(200, 300, "wave")], colors={"wave": "#f00"}))
    assert svg.tag == SVG + "svg"
    lines = svg.findall(f"{SVG}polyline")
    assert len(lines) == 3
    for line in lines:
        coords = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
        assert len(coords) > 100
        assert all(0 <= x <= 200 and 0 <= y <= 200 for x, y in coords)
    assert "a<b>&c" in "".join(svg.itertext())
    assert any(r.get("fill") == "#f00" for r in svg.findall(f"{SVG}rect"))
    assert len(parse(thumbnail_svg(np.zeros((0, 2)))).findall(f"{SVG}polyline")) == 2
    with pytest.raises(ValueError):
        thumbnail_svg(np.zeros((2, 2, 2)))


def test_bars_and_summary():
    per_label = {"walk": {"recordings": 3, "seconds": 30.0, "share": 0.75},
                 "<idle>": {"recordings": 1, "seconds": 10.0, "share": 0.25}}
    svg = parse(label_bars_svg(per_label))
    widths = [float(r.get("width")) for r in svg.findall(f"{SVG}rect")]
    assert widths[0] == pytest.approx(3 * widths[1], rel=0.01)
    assert "<idle>" in "".join(svg.itertext())
    parse(label_bars_svg({}))


def test_overview_counts_thumbnails_and_refresh(ds):
    ov = DatasetOverview(ds)
    assert len(ov.grid.children) == 2
    head = ov.header.value
    assert "2 recordings" in head and "0 interrupted" in head and "noise" in head
    parse(head[head.index("<svg"):head.index("</svg>") + 6])
    rid = ds.recordings()[0].id
    assert len(parse(ov.thumbnail(rid)).findall(f"{SVG}polyline")) == 3
    ds.add_region(rid, 0, 100, "tap")
    ov.refresh()
    assert "tap" in ov.header.value
    assert "1 region" in ov.grid.children[0].children[0].value
    with pytest.raises(RuntimeError, match="no Labeler"):
        ov.open_recording(rid)


def test_overview_linked_to_a_labeler(ds):
    lab, _ = make(ds)
    ov = DatasetOverview(ds, labeler=lab)
    other = ds.recordings()[1].id
    button = ov.grid.children[1].children[1]
    button.click()
    assert lab.rec_id == other
    lab.select(0, 500)
    lab.label("hum")
    assert "hum" in ov.header.value  # refreshed by itself
    assert f'fill="{lab.colors["hum"]}"' in ov.header.value  # in the labeler's colours
    assert summary_html(summarize(ds), lab.colors) == ov.header.value
