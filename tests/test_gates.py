"""Deployment gates, on real models and real measurements.

The fit, contract, budget and data gates run on TFLite Micro's own ``sine_float.tflite``
(cheap: one probe per model); accuracy and agreement run on one tiny model trained once
on BasicMotions (marked slow), measured in TFLite Micro.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from test_tflite import _edit_sine, _with_op, schema  # tests/ is on sys.path

from workbench import WorkbenchError
from workbench.boards import get_board
from workbench.data import Dataset, snapshot
from workbench.deploy import GateFailed, GateReport, run_gates
from workbench.tflite import inspect_model


@pytest.fixture(scope="module")
def sine_report(sine_model) -> GateReport:
    return run_gates(sine_model, "nano33ble")


def _with_input_quantization(scale: float, zero_point: int) -> bytes:
    """sine_float with an int8 input of the given quantization (only its declaration)."""
    def edit(model):
        t = model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]]
        t.type = schema.TensorType.INT8
        q = schema.QuantizationParametersT()
        q.scale = [scale]
        q.zeroPoint = [zero_point]
        t.quantization = q

    return _edit_sine(edit)


def _tamper(dataset: Dataset, rec_id: str) -> None:
    """Flip one byte of a recording's samples, as a disk error or an edit would."""
    path = dataset.root / "recordings" / rec_id / "samples.bin"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


# ------------------------------------------------------------------ fits the board
def test_a_model_that_fits_passes_with_its_numbers(sine_report, sine_model):
    fit = sine_report["fits the board"]
    slots = get_board("nano33ble").model_slots
    assert fit.passed is True
    assert fit.measured == len(sine_model) and fit.threshold == slots.slot_bytes
    assert fit.unit == "bytes"
    assert 0 < fit.details["arena_bytes"] <= slots.arena_bytes
    assert "slot" in fit.explanation and "arena" in fit.explanation
    # the gates without their inputs are skipped, and say what to pass
    for name, hint in (("accuracy", "data="), ("agreement", "reference="),
                       ("input/output contract", "expected_input="),
                       ("latency", "latency_budget_ms="), ("energy", "energy_budget_mj="),
                       ("data", "dataset=")):
        r = sine_report[name]
        assert r.passed is None and hint in r.explanation, (name, r.explanation)
    assert sine_report.passed and not sine_report.failed
    assert sine_report.require() is sine_report and not sine_report.forced


def test_an_op_without_a_kernel_fails_the_fit_gate_by_name():
    report = run_gates(_with_op(schema.BuiltinOperator.LSH_PROJECTION), "nano33ble")
    fit = report["fits the board"]
    assert fit.passed is False
    assert "LSH_PROJECTION" in fit.explanation and "no kernel" in fit.explanation
    assert fit.details["unsupported_ops"] == ["LSH_PROJECTION"]
    assert not report.passed and report.failed == [fit]


def test_a_given_measurement_is_used_not_measured_again(sine_model):
    from workbench.optimize import measure

    m = measure(sine_model)
    budget = get_board("nano33ble").model_slots.arena_bytes
    # the same bytes with an arena larger than the board has: only the given
    # measurement says so, a new measurement would find the real (small) arena
    big = dataclasses.replace(m, arena_bytes=budget + 1024)
    fit = run_gates(sine_model, "nano33ble", measurement=big)["fits the board"]
    assert fit.passed is False
    assert "arena" in fit.explanation and fit.details["arena_bytes"] == budget + 1024
    with pytest.raises(ValueError, match="another model"):
        run_gates(_with_op(schema.BuiltinOperator.LSH_PROJECTION), "nano33ble",
                  measurement=m)


# ------------------------------------------------------------------ contract
def test_the_same_tensors_pass_the_contract(sine_model):
    info = inspect_model(sine_model)
    r = run_gates(sine_model, "nano33ble", expected_input=info.inputs,
                  expected_output=info.outputs[0])["input/output contract"]
    assert r.passed is True and r.measured == 0
    assert "float32[1, 1]" in r.explanation


def test_a_changed_input_quantization_fails_the_contract():
    running = inspect_model(_with_input_quantization(0.025, -128))
    candidate = _with_input_quantization(0.05, -128)
    report = run_gates(candidate, "nano33ble", expected_input=running.inputs)
    r = report["input/output contract"]
    assert r.passed is False and r.measured == 1
    assert "input 0 scale 0.05" in r.explanation and "0.025" in r.explanation
    assert "wrongly scaled" in r.explanation
    # a dict checks only the keys it has: the zero point is the same
    ok = run_gates(candidate, "nano33ble",
                   expected_input={"zero_point": -128, "dtype": "int8"})
    assert ok["input/output contract"].passed is True


def test_a_changed_shape_or_dtype_fails_the_contract(sine_model):
    r = run_gates(sine_model, "nano33ble", expected_input={"shape": (1, 2)},
                  expected_output={"dtype": "int8"})["input/output contract"]
    assert r.passed is False and r.measured == 2
    assert "input 0 shape (1, 1) ≠ (1, 2)" in r.explanation
    assert "output 0 dtype float32 ≠ int8" in r.explanation


# ------------------------------------------------------------------ budgets
def test_latency_and_energy_budgets(sine_model, sine_report):
    from workbench.optimize import board_verdict, measure

    v = board_verdict(measure(sine_model), get_board("nano33ble"))
    assert v.latency_ms and v.energy_mj
    ok = run_gates(sine_model, "nano33ble", latency_budget_ms=v.latency_ms * 2,
                   energy_budget_mj=v.energy_mj * 2)
    assert ok["latency"].passed is True and ok["energy"].passed is True
    assert ok["latency"].measured == pytest.approx(v.latency_ms)
    tight = run_gates(sine_model, "nano33ble", latency_budget_ms=v.latency_ms / 2,
                      energy_budget_mj=v.energy_mj / 2)
    lat, en = tight["latency"], tight["energy"]
    assert lat.passed is False and en.passed is False
    assert f"{v.latency_ms:.3g} ms" in lat.explanation and "estimated" in lat.explanation
    assert f"{v.latency_ms / 2:g} ms budget" in lat.explanation
    assert f"{v.energy_mj:.3g} mJ" in en.explanation


# ------------------------------------------------------------------ require, force, records
def test_require_raises_naming_every_failed_gate_unless_forced(sine_model):
    report = run_gates(sine_model, "nano33ble", latency_budget_ms=1e-6,
                       expected_output={"dtype": "int8"})
    with pytest.raises(GateFailed) as err:
        report.require()
    assert isinstance(err.value, WorkbenchError) and isinstance(err.value, ValueError)
    msg = str(err.value)
    assert "2 deployment gates failed" in msg and "force=True" in msg
    assert "latency:" in msg and "1e-06 ms budget" in msg
    assert "input/output contract: output 0 dtype float32 ≠ int8" in msg
    assert err.value.report is report and not report.forced
    assert report.require(force=True) is report and report.forced
    assert "FORCED" in report.table()
    record = json.loads(json.dumps(report.to_dict()))
    assert record["forced"] is True and record["passed"] is False
    assert record["sha256"] == inspect_model(sine_model).sha256
    assert [g["status"] for g in record["gates"]].count("FAIL") == 2


def test_table_and_html_show_every_gate(sine_report):
    text = sine_report.table()
    html = sine_report._repr_html_()
    for r in sine_report.results:
        assert r.name in text
        assert r.name in html
    assert "<table>" in html and "all gates passed" in text
    with pytest.raises(KeyError, match="the gates are"):
        sine_report["speed"]


def test_bad_thresholds_and_models_are_refused(sine_model, tmp_path):
    with pytest.raises(ValueError, match="min_accuracy is a fraction"):
        run_gates(sine_model, "nano33ble", min_accuracy=80)
    with pytest.raises(ValueError, match="latency_budget_ms must be a positive"):
        run_gates(sine_model, "nano33ble", latency_budget_ms=0)
    with pytest.raises(ValueError, match="no .tflite file"):
        run_gates(tmp_path / "missing.tflite", "nano33ble")
    with pytest.raises(TypeError, match="cannot gate a dict"):
        run_gates({}, "nano33ble")
    with pytest.raises(KeyError):
        run_gates(sine_model, "no-such-board")


# ------------------------------------------------------------------ data
@pytest.fixture
def small_dataset(tmp_path) -> Dataset:
    ds = Dataset(tmp_path / "ds")
    rng = np.random.default_rng(0)
    for label in ("up", "down"):
        ds.add_recording(rng.normal(size=(50, 3)).astype(np.float32), sensor="imu",
                         channels=["x", "y", "z"], units="g", rate_hz=50.0, label=label)
    return ds


def test_the_data_gate_verifies_the_snapshot_and_catches_a_changed_byte(sine_model,
                                                                        small_dataset):
    snap = snapshot(small_dataset)
    ok = run_gates(sine_model, "nano33ble", snapshot=snap, dataset=small_dataset)["data"]
    assert ok.passed is True and snap.short in ok.explanation
    rec = sorted(m.id for m in small_dataset.recordings())[0]
    _tamper(small_dataset, rec)
    bad = run_gates(sine_model, "nano33ble", snapshot=snap.id,
                    dataset=str(small_dataset.root))["data"]
    assert bad.passed is False and bad.measured == 1
    assert f"{rec}: samples_sha256 changed" in bad.explanation
    unknown = run_gates(sine_model, "nano33ble", snapshot="ab" * 32,
                        dataset=small_dataset)["data"]
    assert unknown.passed is False and "no snapshot matches" in unknown.explanation
    nowhere = small_dataset.root.parent / "nothing"
    elsewhere = run_gates(sine_model, "nano33ble", snapshot=snap, dataset=nowhere)["data"]
    assert elsewhere.passed is False and "no dataset at" in elsewhere.explanation
    assert not nowhere.exists()   # a folder is opened, never created
    with pytest.raises(ValueError, match="pass snapshot="):
        run_gates(sine_model, "nano33ble", dataset=small_dataset)


# ------------------------------------------------------------------ accuracy and agreement
@pytest.fixture(scope="module")
def motions(tmp_path_factory):
    pytest.importorskip("tf_keras")
    pytest.importorskip("aeon")
    from workbench.data.formats import example_dataset

    return example_dataset("basicmotions", tmp_path_factory.mktemp("bm") / "ds")


@pytest.fixture(scope="module")
def trained(motions):
    """(data, float Keras model, float variant, int8 variant, their measurements)."""
    from test_fit import small_model  # the same tiny IMU network test_fit trains

    from workbench.optimize import make_variants, measure_all
    from workbench.train.fit import TrainConfig, TrainingData, train

    data = TrainingData.from_dataset(motions, length=100, predefined="split", val=0.2, seed=0)
    model = train(lambda: small_model(data), data,
                  TrainConfig(epochs=40, patience=10, seed=1)).model
    flt, q8 = make_variants(model, data, techniques=("float", "int8"))
    m_flt, m_q8 = measure_all([flt, q8], data)
    return data, model, flt, q8, m_flt, m_q8


@pytest.mark.slow
def test_accuracy_gate_uses_the_tflm_measurement(trained):
    data, _model, _flt, q8, _m_flt, m_q8 = trained
    assert m_q8.runtime == "tflite-micro" and m_q8.accuracy > 0.25   # chance: 4 classes
    acc = m_q8.accuracy
    ok = run_gates(q8, "nano33ble", data, measurement=m_q8, min_accuracy=acc)["accuracy"]
    assert ok.passed is True and ok.measured == acc and ok.threshold == acc
    assert f"of {len(data.X_test)} held-out windows right in TFLite Micro" in ok.explanation
    report = run_gates(q8, "nano33ble", data, measurement=m_q8,
                       min_accuracy=min(1.0, acc + 0.01))
    bad = report["accuracy"]
    assert bad.passed is False and f"{100 * acc:.1f}%" in bad.explanation
    with pytest.raises(GateFailed, match="accuracy"):
        report.require()


@pytest.mark.slow
def test_agreement_gate_against_every_kind_of_reference(trained):
    data, model, flt, q8, m_flt, m_q8 = trained
    expected = float(np.mean(m_flt.predictions == m_q8.predictions))
    for reference in (model, flt.tflite, flt, m_flt.predictions,
                      model.predict(data.X_test, verbose=0)):
        r = run_gates(q8, "nano33ble", data, measurement=m_q8, reference=reference,
                      min_agreement=expected)["agreement"]
        assert r.passed is True and r.measured == pytest.approx(expected), type(reference)
    # without a reference, the measurement's own agreement (measure_all's float variant)
    own = run_gates(q8, "nano33ble", data, measurement=m_q8, min_agreement=expected)
    assert own["agreement"].measured == pytest.approx(m_q8.agreement)
    # a reference that disagrees on most windows fails, with the count
    wrong = (m_q8.predictions + 1) % len(data.classes)
    bad = run_gates(q8, "nano33ble", data, measurement=m_q8, reference=wrong)["agreement"]
    assert bad.passed is False and bad.measured == 0.0
    assert f"({len(data.X_test)} differ)" in bad.explanation
    with pytest.raises(ValueError, match="same test split"):
        run_gates(q8, "nano33ble", data, measurement=m_q8, reference=wrong[:5])


@pytest.mark.slow
def test_gates_measure_the_model_when_no_measurement_is_given(trained, motions):
    data, model, _flt, q8, _m_flt, m_q8 = trained
    report = run_gates(q8, "nano33ble", data, reference=model, min_accuracy=0.0,
                       min_agreement=0.0, dataset=motions)
    assert report["accuracy"].measured == pytest.approx(m_q8.accuracy)
    assert report["fits the board"].passed is True
    assert report["data"].passed is True   # data.snapshot_id, verified in the dataset
    assert report.model == q8.name and report.passed


@pytest.mark.slow
def test_a_model_too_large_for_the_smallest_slot_fails_the_fit_gate(trained):
    from workbench.train.export import to_tflite
    from workbench.train.tf_runtime import keras

    data = trained[0]
    k = keras()
    inputs = k.Input(data.input_shape)
    x = k.layers.Dense(128, activation="relu")(k.layers.Flatten()(inputs))
    big = to_tflite(k.Model(inputs, k.layers.Dense(4, activation="softmax")(x)))
    nano, pico = get_board("nano33ble"), get_board("pico")
    assert nano.model_slots.slot_bytes < len(big) < pico.model_slots.slot_bytes
    fit = run_gates(big, nano)["fits the board"]
    assert fit.passed is False and fit.measured == len(big)
    assert "model slot" in fit.explanation and "256.0 KiB" in fit.explanation
    assert run_gates(big, pico)["fits the board"].passed is True


@pytest.mark.slow
def test_a_recalibrated_int8_model_fails_the_contract_of_the_running_one(trained):
    from workbench.optimize import make_variants

    data, model, _flt, q8, _m_flt, _m_q8 = trained
    # the normaliser changed: the same network calibrated on inputs twice as large
    wider = dataclasses.replace(data, X_train=data.X_train * 2)
    (q8_new,) = make_variants(model, wider, techniques=("int8",))
    running = inspect_model(q8.tflite)
    new_scale = inspect_model(q8_new.tflite).inputs[0].scale
    assert new_scale != pytest.approx(running.inputs[0].scale)
    r = run_gates(q8_new, "nano33ble", expected_input=running.inputs,
                  expected_output=running.outputs)["input/output contract"]
    assert r.passed is False and "input 0 scale" in r.explanation
    assert f"{running.inputs[0].scale}" in r.explanation


@pytest.mark.slow
def test_the_data_gate_fails_when_the_training_recordings_changed(trained, motions, tmp_path):
    data, _model, _flt, q8, _m_flt, m_q8 = trained
    copy = Dataset(shutil.copytree(motions.root, tmp_path / "ds"))
    rec = sorted(m.id for m in copy.recordings())[3]
    _tamper(copy, rec)
    r = run_gates(q8, "nano33ble", data, measurement=m_q8, dataset=copy)["data"]
    assert r.passed is False and f"{rec}: samples_sha256 changed" in r.explanation
    assert data.snapshot_id[:12] in r.explanation
