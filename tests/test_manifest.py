"""The update manifest: made from a real model by real TFLite Micro, read back strictly,
and self-tested against real runners (in-process TFLM and a virtual board)."""

from __future__ import annotations

import json

import flatbuffers
import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from workbench.deploy import ManifestError, UpdateManifest, make_manifest
from workbench.tflite import TflmRunner, min_arena


@pytest.fixture(scope="module")
def manifest(sine_model) -> UpdateManifest:
    return make_manifest(sine_model, name="sine", version=3)


@pytest.fixture(scope="module")
def runner(sine_model) -> TflmRunner:
    fit = min_arena(sine_model, 100_000)
    return TflmRunner(sine_model, fit.needed_bytes, probed=fit.probe)


def _other_sine(sine_model: bytes) -> bytes:
    """sine_float with 1.0 added to the bias of its last operator (a FULLY_CONNECTED)."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(sine_model, 0))
    graph = model.subgraphs[0]
    bias = graph.tensors[graph.operators[-1].inputs[2]]
    buf = model.buffers[bias.buffer]
    values = np.frombuffer(bytes(bytearray(buf.data)), dtype="<f4") + np.float32(1.0)
    buf.data = np.frombuffer(values.astype("<f4").tobytes(), dtype=np.uint8)
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_manifest_describes_the_model(manifest, sine_model):
    assert manifest.name == "sine" and manifest.version == 3
    assert manifest.size == len(sine_model)
    manifest.check(sine_model)
    assert manifest.arena_bytes == min_arena(sine_model, 100_000).needed_bytes
    assert [s.dtype for s in manifest.inputs] == ["float32"]
    assert len(manifest.golden) == 4
    inputs = [manifest.golden_inputs(i)[0].item() for i in range(4)]
    assert len(set(inputs)) == 4  # drawn, not constant
    # deterministic: the same seed gives the same manifest, another seed other inputs
    again = make_manifest(sine_model, name="sine", version=3)
    assert again.to_json() == manifest.to_json()
    other = make_manifest(sine_model, name="sine", version=3, n_golden=2, seed=1)
    assert other.golden_inputs(0)[0].item() not in inputs


def test_json_round_trip_is_equal_and_canonical(manifest):
    raw = manifest.to_json()
    assert b" " not in raw
    doc = json.loads(raw)
    assert list(doc) == sorted(doc)
    assert doc["format"] == "workbench-update-manifest" and doc["format_version"] == 1
    back = UpdateManifest.from_json(raw)
    assert back == manifest
    assert back.to_json() == raw


def test_golden_outputs_equal_a_fresh_runner(manifest, runner):
    for i in range(len(manifest.golden)):
        got = runner.invoke(manifest.golden_inputs(i))
        want = manifest.golden_outputs(i)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.tobytes() == w.tobytes()


def test_self_test_passes_with_a_real_runner(manifest, runner):
    result = manifest.self_test(runner.invoke)
    assert result.ok, result.summary()
    assert [p.index for p in result.pairs] == [0, 1, 2, 3]


def test_self_test_fails_when_an_output_is_altered(manifest, runner):
    calls = []

    def altered(xs):
        ys = runner.invoke(xs)
        calls.append(1)
        if len(calls) == 3:  # pair 2 only
            ys[0] = np.nextafter(ys[0], np.float32(np.inf))
        return ys

    result = manifest.self_test(altered)
    assert not result.ok
    assert [p.index for p in result.failures] == [2]
    assert "pair 2" in result.summary() and "output 0" in result.failures[0].detail


def test_self_test_fails_when_another_model_runs(manifest, sine_model):
    other = _other_sine(sine_model)
    fit = min_arena(other, 100_000)
    result = manifest.self_test(TflmRunner(other, fit.needed_bytes, probed=fit.probe).invoke)
    assert not result.ok
    assert {p.index for p in result.failures} == {0, 1, 2, 3}


def test_self_test_fails_a_pair_whose_runner_refuses_it(manifest):
    def refuses(xs):
        raise ValueError("input 0 expects shape (1, 2)")

    result = manifest.self_test(refuses)
    assert not result.ok and "input 0 expects shape" in result.failures[0].detail


def test_check_refuses_a_flipped_byte_and_a_truncation(manifest, sine_model):
    flipped = bytearray(sine_model)
    flipped[len(flipped) // 2] ^= 0x01
    with pytest.raises(ManifestError, match="SHA-256"):
        manifest.check(bytes(flipped))
    with pytest.raises(ManifestError, match="bytes"):
        manifest.check(sine_model[:-1])


def _edited(manifest, edit) -> bytes:
    doc = json.loads(manifest.to_json())
    edit(doc)
    return json.dumps(doc).encode()


def _set(path, value):
    def edit(doc):
        *parents, last = path
        for p in parents:
            doc = doc[p]
        doc[last] = value
    return edit


def _delete(key):
    def edit(doc):
        del doc[key]
    return edit


@pytest.mark.parametrize("edit, needle", [
    (_set(["format"], "something-else"), "not an update manifest"),
    (_set(["format_version"], 2), "format_version 2 is not supported"),
    (_delete("sha256"), r"lacks the field\(s\) sha256"),
    (_delete("golden"), r"lacks the field\(s\) golden"),
    (_set(["extra"], 1), r"unknown field\(s\) extra"),
    (_set(["version"], "3"), "version must be an integer"),
    (_set(["size"], -5), "size must be an integer >= 1"),
    (_set(["sha256"], "ab" * 10), "sha256 must be 64"),
    (_set(["inputs", 0, "dtype"], "complex-ish"), r"inputs\[0\].dtype"),
    (_set(["inputs", 0, "shape"], [1, "x"]), r"inputs\[0\].shape\[1\]"),
    (_set(["golden", 1, "inputs", 0], "zz00"), r"golden\[1\].inputs\[0\] is not hex"),
    (_set(["golden", 0, "outputs", 0], "00"), r"golden\[0\].outputs\[0\] holds 1 bytes"),
    (_set(["golden", 0, "inputs"], []), r"golden\[0\].inputs must be a list of 1"),
    (_set(["inputs", 0, "shape"], [1, 2]), r"golden\[0\].inputs\[0\] holds 4 bytes.*8 bytes"),
])
def test_from_json_refuses_a_malformed_manifest(manifest, edit, needle):
    with pytest.raises(ManifestError, match=needle):
        UpdateManifest.from_json(_edited(manifest, edit))


@pytest.mark.parametrize("raw, needle", [
    (b"{not json", "not JSON"), (b"[1, 2]", "must be a JSON object"), (b"\xff\xfe", "not JSON"),
])
def test_from_json_refuses_what_is_not_a_manifest(raw, needle):
    with pytest.raises(ManifestError, match=needle):
        UpdateManifest.from_json(raw)


def test_manifest_error_keeps_value_error():
    from workbench.errors import WorkbenchError

    assert issubclass(ManifestError, WorkbenchError) and issubclass(ManifestError, ValueError)


@pytest.mark.parametrize("kwargs, needle", [
    ({"name": "", "version": 1}, "needs name="), ({"name": "s", "version": 0}, "version must"),
    ({"name": "s", "version": 1, "n_golden": 0}, "n_golden must"),
])
def test_make_manifest_refuses_bad_arguments(sine_model, kwargs, needle):
    with pytest.raises(ManifestError, match=needle):
        make_manifest(sine_model, **kwargs)


def test_self_test_passes_on_a_virtual_board(manifest, sine_model, sim_url):
    from workbench.link import open_device

    with open_device(sim_url("nano33ble")) as dev:
        dev.upload_model(sine_model, name="sine")
        result = manifest.self_test(lambda xs: dev.infer(*xs).outputs)
    assert result.ok, result.summary()
