"""Variants, their measurement through the real interpreters, board verdicts and the report.

Everything runs for real: TensorFlow converts, TFLite Micro and LiteRT run the test
windows, the arena search probes TFLM in child processes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tf_keras")

from test_tflite import _with_op, schema  # noqa: E402  (tests/ is on sys.path)

from workbench.boards import get_board  # noqa: E402
from workbench.optimize import (  # noqa: E402
    ComparisonTable,
    board_verdict,
    make_variants,
    measure,
    measure_all,
    report,
    variant_from_tflite,
)
from workbench.tflite import ModelError, inspect_model, min_arena, probe  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data():
    from workbench.train.features import Normalizer
    from workbench.train.fit import TrainingData

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 32, 3)).astype(np.float32)
    y = (X[:, :, 0].mean(axis=1) > 0).astype(np.int64) + 2 * (X[:, :, 1].mean(axis=1) > 0)
    X += (y[:, None, None] - 1.5) * 0.8      # make the classes easy to separate
    return TrainingData(X[:72], y[:72], X[72:90], y[72:90], X[90:], y[90:],
                        ["a", "b", "c", "d"], Normalizer().fit(X[:72]), "synthetic")


@pytest.fixture(scope="module")
def model(data):
    from workbench.train.fit import TrainConfig, train
    from workbench.train.zoo import imu_cnn

    return train(lambda: imu_cnn(data.input_shape, 4, "s"), data,
                 TrainConfig(epochs=25, patience=25, seed=0)).model


@pytest.fixture(scope="module")
def variants(model, data):
    return make_variants(model, data, techniques=("float", "dynamic", "int8", "int16x8"))


@pytest.fixture(scope="module")
def measured(variants, data):
    return measure_all(variants, data)


def test_variants_are_converted_with_batch_one_and_the_right_types(variants):
    kinds = [v.kind for v in variants]
    assert kinds == ["float", "dynamic", "int8", "int16x8"]
    io = {}
    for v in variants:
        info = inspect_model(v.tflite)
        assert info.inputs[0].shape[0] == 1 and not info.has_dynamic_batch
        io[v.kind] = (info.inputs[0].dtype, info.outputs[0].dtype)
    assert io == {"float": ("float32", "float32"), "dynamic": ("float32", "float32"),
                  "int8": ("int8", "int8"), "int16x8": ("int16", "int16")}
    from workbench.optimize import analyze

    weights = {v.kind: analyze(v.tflite).weight_bytes for v in variants}
    assert weights["int8"] < weights["float"] / 2.5   # int8 weights: about 4x smaller
    assert len(variants[2].tflite) < len(variants[0].tflite)
    assert all(v.notes for v in variants)


def test_unknown_technique_is_refused_with_the_list(model, data):
    with pytest.raises(ValueError, match="choose from float, dynamic"):
        make_variants(model, data, techniques=("float", "int4"))


def test_measurements_run_in_tflm_and_agree_with_the_float_model(measured, data):
    by = {m.kind: m for m in measured}
    flt, q8 = by["float"], by["int8"]
    assert flt.agreement == 1.0 and flt.runtime == "tflite-micro"
    assert q8.runtime == "tflite-micro" and q8.n_test == len(data.X_test)
    # accuracy recomputed from the per-class recalls matches the overall figure
    hits = sum(v["recall"] * v["support"] for v in q8.per_class.values() if v["recall"] is not None)
    assert hits == pytest.approx(q8.accuracy * q8.n_test)
    assert q8.accuracy > 0.5 and q8.agreement >= 0.8
    assert sum(map(sum, q8.confusion)) == len(data.X_test)
    assert q8.host_latency_ms is not None and q8.host_latency_ms > 0
    assert q8.macs == flt.macs > 0 and q8.params > 0


def test_arena_is_the_smallest_that_works(measured, variants):
    q8 = next(m for m in measured if m.kind == "int8")
    blob = next(v for v in variants if v.kind == "int8").tflite
    assert q8.arena_bytes == min_arena(blob, 1 << 20).needed_bytes
    assert probe(blob, q8.arena_bytes).ok
    assert not probe(blob, q8.arena_bytes - 16).ok


def test_dynamic_range_model_is_measured_in_litert_and_refused_by_tflm_boards(measured):
    dyn = next(m for m in measured if m.kind == "dynamic")
    assert dyn.graph.is_hybrid
    assert dyn.runtime == "litert" and dyn.accuracy is not None
    assert any("hybrid" in w for w in dyn.warnings)
    verdict = board_verdict(dyn, get_board("nano33ble"))
    assert not verdict.fits and any("hybrid" in r or "no kernel" in r for r in verdict.reasons)
    # a Linux board runs it with LiteRT
    assert board_verdict(dyn, get_board("rpi4")).fits


def test_board_verdicts_follow_the_board(measured):
    q8 = next(m for m in measured if m.kind == "int8")
    nano, pico = board_verdict(q8, get_board("nano33ble")), board_verdict(q8, get_board("pico"))
    assert nano.fits and pico.fits
    assert nano.latency_source == "estimate" and "latency-model.md" in nano.basis
    # same model, same MACs: the M0+ without DSP is slower per cycle than the M4F
    assert pico.latency_ms * 133 > nano.latency_ms * 64


def test_a_reported_latency_replaces_the_estimate_only_when_measured_on_silicon(measured):
    import copy

    q8 = copy.copy(next(m for m in measured if m.kind == "int8"))
    q8.device_latency = {"nano33ble": {"latency_ms": 0.05, "estimated": True, "device": "sim"}}
    board = get_board("nano33ble")
    assert board_verdict(q8, board).latency_source == "estimate"
    q8.device_latency = {"nano33ble": {"latency_ms": 7.5, "estimated": False,
                                       "device": "/dev/ttyACM0"}}
    v = board_verdict(q8, board)
    assert v.latency_source == "measured" and v.latency_ms == 7.5
    assert "/dev/ttyACM0" in v.basis


def test_unsupported_op_is_named(tmp_path):
    blob = _with_op(schema.BuiltinOperator.LSH_PROJECTION)
    m = measure(variant_from_tflite("odd", blob))
    assert m.unsupported_ops == ["LSH_PROJECTION"]
    assert m.arena_bytes is None
    verdict = board_verdict(m, get_board("nano33ble"))
    assert not verdict.fits
    assert verdict.reasons == ["TFLite Micro has no kernel for LSH_PROJECTION"]


def test_malformed_model_gets_a_clear_error():
    with pytest.raises(ModelError):
        measure(b"this is not a model at all, just some bytes....")


def test_model_too_large_for_the_board_is_greyed_with_the_reason(measured):
    import copy

    q8 = copy.copy(next(m for m in measured if m.kind == "int8"))
    board = get_board("pico")
    q8.model_bytes = board.model_slots.slot_bytes + 1
    verdict = board_verdict(q8, board)
    assert not verdict.fits and "model slot" in verdict.reasons[0]


def test_report_explains_the_int8_model(measured, tmp_path):
    q8 = next(m for m in measured if m.kind == "int8")
    r = report(q8, "nano33ble")
    d = r.to_dict()
    assert d["fits"]["fits"] is True
    assert d["proxy"]["macs"] == q8.macs == sum(op["macs"] for op in d["ops"])
    assert d["perceptible"]["arena_bytes"] == q8.arena_bytes
    assert sum(op["est_cycles"] for op in d["ops"]) > 0
    assert d["memory"]["peak_bytes"] <= q8.arena_bytes
    assert d["accuracy"]["runtime"] == "tflite-micro"
    for text in ("Op by op", "Memory layout", "CONV_2D", "FULLY_CONNECTED", "<svg",
                 "proxy metrics", "perceptible metrics", "Basis of the latency"):
        assert text in r.html
    path = r.save(tmp_path / "int8.html")
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert json.loads((tmp_path / "int8.json").read_text())["model"]["sha256"] == q8.sha256


def test_report_warns_about_hybrid_and_float_ops(measured, variants, data):
    dyn = next(m for m in measured if m.kind == "dynamic")
    r = report(dyn, "nano33ble")
    assert any(w["level"] == "error" and "Hybrid" in w["text"] for w in r.data["warnings"])
    flt = next(v for v in variants if v.kind == "float")
    r2 = report(flt.tflite, "pico", data=data)   # measured here, from bytes
    assert any("no floating-point unit" in w["text"] for w in r2.data["warnings"])
    assert r2.data["accuracy"]["accuracy"] is not None


def test_report_from_a_keras_model_and_a_bad_board(model):
    r = report(model, "nano33ble")
    assert r.data["model"]["kind"] == "keras"
    from workbench.boards.catalog import UnknownBoardError

    with pytest.raises(UnknownBoardError):
        report(model, "no-such-board")


def test_table_over_real_measurements(measured):
    table = ComparisonTable(measured, "nano33ble", reference="float32")
    rows = {r["name"]: r for r in table.rows()}
    assert rows["dynamic-range"]["fits"] is False
    assert rows["int8 PTQ"]["fits"] is True
    assert table.pareto(x="flash_bytes")  # at least one Pareto-optimal variant


def test_measure_on_the_virtual_board_records_its_latency_and_refusals(sim_url, sine_model):
    import workbench
    from workbench.optimize import measure_on_device
    from workbench.optimize.anchors import ad_autoencoder_tflite

    small = variant_from_tflite("sine", sine_model)
    big = variant_from_tflite("autoencoder", ad_autoencoder_tflite())   # 310 KiB > 256 KiB slot
    ms = [measure(small), measure(big)]
    with workbench.open_device(sim_url("nano33ble")) as dev:
        outcome = measure_on_device(ms, [small, big], dev, runs=3)
        assert dev.slots().slots[dev.slots().active].sha256.hex() == small.sha256
    assert outcome["sine"] == "ok"
    assert "autoencoder" in outcome and outcome["autoencoder"] != "ok"
    rep = ms[0].device_latency["nano33ble"]
    assert rep["estimated"] is True and rep["latency_ms"] > 0
    assert rep["arena_bytes"] == ms[0].arena_bytes  # the board and the measurement agree
    assert ms[1].device_latency == {}
    # the virtual board's host time does not replace the estimate for the microcontroller
    verdict = board_verdict(ms[0], get_board("nano33ble"))
    assert verdict.latency_source == "estimate"
    assert "virtual board" in report(ms[0], "nano33ble").html


def test_every_variant_on_every_microcontroller(measured):
    from workbench.boards import load_catalog

    table = ComparisonTable(measured, "nano33ble")
    grid = table.across_boards()
    mcus = [b.id for b in load_catalog().values() if b.kind == "mcu"]
    assert set(grid) == {m.name for m in measured}
    for verdicts in grid.values():
        assert list(verdicts) == mcus
        assert all(v.latency_ms and v.latency_ms > 0 for v in verdicts.values())
    assert not any(v.fits for v in grid["dynamic-range"].values())   # hybrid: no TFLM board
    html_text = table.across_boards_html()
    assert html_text.count("<tr>") == len(measured) + 1
    assert 'class="wb-nofit"' in html_text and "hybrid" in html_text
    assert table.board.id == "nano33ble"


def test_table_refresh_picks_up_a_board_measurement(measured):
    import copy

    q8 = copy.copy(next(m for m in measured if m.kind == "int8"))
    q8.device_latency = {}
    table = ComparisonTable([q8], "nano33ble")
    seen = []
    table.observe(seen.append)
    assert table.row(q8.name)["latency_source"] == "estimate"
    q8.device_latency["nano33ble"] = {"latency_ms": 12.5, "estimated": False, "device": "usb"}
    assert table.refresh() is table and seen == ["rows"]
    assert table.row(q8.name)["latency_ms"] == 12.5
    assert table.row(q8.name)["latency_source"] == "measured"


def test_measure_on_device_wants_one_measurement_per_variant(measured, variants):
    from workbench.optimize import measure_on_device

    with pytest.raises(ValueError, match="one measurement per variant"):
        measure_on_device(measured[:1], variants[:2], device=None)


def test_default_board_follows_the_default_device(monkeypatch):
    import workbench

    monkeypatch.setenv("WORKBENCH_DEVICE", "sim://pico?baud=921600")
    assert workbench.default_board().id == "pico"
    monkeypatch.delenv("WORKBENCH_DEVICE")
    assert workbench.default_board().id == "nano33ble"


def test_report_displays_in_a_frame(measured):
    r = report(next(m for m in measured if m.kind == "int8"), "nano33ble")
    frame = r._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and "<style>" not in frame
    assert "&lt;style&gt;" in frame
