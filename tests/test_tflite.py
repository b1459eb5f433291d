"""Tests for workbench.tflite.tflm: running models in the real TFLite Micro interpreter.

These run the real interpreter (in child processes and in-process); nothing is mocked
except where a test proves that *no* child is started.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

import flatbuffers
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from workbench.tflite import tflm
from workbench.tflite.tflm import ModelError, ProbeResult, TflmRunner, inspect_model, min_arena, probe

SINE = (
    importlib.resources.files("tflite_micro.python.tflite_micro") / "sine_float.tflite"
).read_bytes()
BIG_ARENA = 100_000


def _edit_sine(edit) -> bytes:
    """Unpack sine_float with the schema's object API, apply ``edit``, repack."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(SINE, 0))
    edit(model)
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _with_op(code: int, custom: bytes | None = None) -> bytes:
    def edit(model):
        oc = model.operatorCodes[0]
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.customCode = custom

    return _edit_sine(edit)


@pytest.fixture(scope="module")
def sine_probe() -> ProbeResult:
    return probe(SINE, BIG_ARENA)


@pytest.fixture(scope="module")
def sine_min_arena() -> int:
    return min_arena(SINE, BIG_ARENA)


# ----------------------------------------------------------------------------- inspect


def test_inspect_sine_float():
    info = inspect_model(SINE)
    assert info.ops == ["FULLY_CONNECTED"]
    assert info.size_bytes == len(SINE)
    assert info.sha256 == hashlib.sha256(SINE).hexdigest()
    assert info.schema_version == 3
    assert info.subgraph_count == 1
    assert len(info.inputs) == 1 and len(info.outputs) == 1
    (inp,), (out,) = info.inputs, info.outputs
    assert inp.shape == (1, 1) and inp.dtype == "float32"
    assert out.shape == (1, 1) and out.dtype == "float32"
    assert inp.scale is None and inp.zero_point is None  # float model
    # The converter stored a dynamic batch dimension: shape_signature (-1, 1).
    assert inp.shape_signature == (-1, 1)
    assert info.has_dynamic_batch is True
    with pytest.raises(Exception):
        info.size_bytes = 0  # frozen


def test_inspect_accepts_bytearray_and_memoryview():
    assert inspect_model(bytearray(SINE)).sha256 == inspect_model(memoryview(SINE)).sha256


def test_inspect_rejects_a_path_string_with_a_hint():
    with pytest.raises(TypeError, match="read_bytes"):
        inspect_model("sine_float.tflite")


def test_inspect_reports_quantization_and_dtypes():
    def edit(model):
        t = model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]]
        t.type = schema.TensorType.INT8
        q = schema.QuantizationParametersT()
        q.scale = [0.025]
        q.zeroPoint = [-128]
        t.quantization = q

    info = inspect_model(_edit_sine(edit))
    inp = info.inputs[0]
    assert inp.dtype == "int8"
    assert inp.scale == pytest.approx(0.025)
    assert inp.zero_point == -128


def test_inspect_names_custom_and_unknown_ops():
    info = inspect_model(_with_op(schema.BuiltinOperator.CUSTOM, b"MyFancyOp"))
    assert info.ops == ["CUSTOM:MyFancyOp"]
    info = inspect_model(_with_op(schema.BuiltinOperator.LSH_PROJECTION))
    assert info.ops == ["LSH_PROJECTION"]


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"", "empty"),
        (b"\x00" * 10, "too short"),
        (bytes(random.Random(0).randrange(256) for _ in range(4096)), "file identifier"),
        (b"hello world, this is certainly not a model", "looks like text"),
        (b"\x89HDF\r\n\x1a\n" + b"\x00" * 200, "HDF5"),
        (b"PK\x03\x04" + b"\x00" * 200, "zip"),
        (b"\x00\x00\x00\x00TFL3" + b"\xff" * 200, "not a valid .tflite flatbuffer"),
        (b"\xff\xff\x00\x00TFL3" + b"\x00" * 200, "not a valid .tflite flatbuffer"),
        (SINE[: len(SINE) // 2], "not a valid .tflite flatbuffer"),
        (SINE[:100], "not a valid .tflite flatbuffer"),
        (SINE[:-1], "not a valid .tflite flatbuffer"),
    ],
    ids=[
        "empty",
        "zeros",
        "random",
        "text",
        "hdf5",
        "zip",
        "ident-then-ff",
        "root-out-of-range",
        "half",
        "first-100",
        "minus-one-byte",
    ],
)
def test_inspect_rejects_garbage(data, needle):
    with pytest.raises(ModelError, match="not a valid .tflite flatbuffer") as exc:
        inspect_model(data)
    assert needle in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_every_truncation_of_sine_is_rejected():
    for n in range(len(SINE)):
        with pytest.raises(ModelError):
            inspect_model(SINE[:n])


def test_random_corruption_only_ever_raises_model_error():
    rng = random.Random(42)
    outcomes = {"ok": 0, "rejected": 0}
    for _ in range(500):
        b = bytearray(SINE)
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(8, len(b))] = rng.randrange(256)
        try:
            inspect_model(bytes(b))
            outcomes["ok"] += 1
        except ModelError:
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 0


def test_out_of_range_tensor_index_is_rejected():
    def edit(model):
        op = model.subgraphs[0].operators[0]
        op.inputs = [999] + [int(i) for i in op.inputs[1:]]

    with pytest.raises(ModelError, match="input 0 is 999, out of range"):
        inspect_model(_edit_sine(edit))


# ------------------------------------------------------------------------------- probe


def test_probe_sine_with_big_arena(sine_probe):
    r = sine_probe
    assert r.ok, r.error
    assert r.error is None and not r.crashed and not r.timed_out
    assert r.unsupported_ops == []
    # Measured 1536 bytes on x86-64; allow for other builds and alignment.
    assert r.arena_bytes is not None and 1024 <= r.arena_bytes <= 4096
    assert "Arena allocation total" in r.raw_log
    assert r.arena_limit == BIG_ARENA
    assert r.returncode == 0


def test_probe_with_100_bytes_does_not_hurt_the_caller():
    # In-process this segfaults (measured); the child absorbs it.
    r = probe(SINE, 100)
    assert not r.ok
    assert r.crashed or r.error
    assert r.error and "100 bytes were available" in r.error and "needs more" in r.error
    assert r.arena_bytes is None
    assert os.getpid()  # still here


def test_probe_with_too_small_arena_reports_clean_error():
    r = probe(SINE, 1000)
    assert not r.ok and not r.crashed
    assert "1000 bytes were available" in r.error
    assert "needs more" in r.error
    assert "Failed to allocate" in r.raw_log


def test_probe_never_starts_a_child_for_garbage(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a child process was started for garbage")

    monkeypatch.setattr(tflm.subprocess, "run", boom)
    for bad in (b"", b"garbage" * 50, SINE[:200]):
        with pytest.raises(ModelError):
            probe(bad, BIG_ARENA)


def test_probe_rejects_nonsense_arena():
    with pytest.raises(ValueError):
        probe(SINE, 0)
    with pytest.raises(ValueError):
        probe(SINE, "1000")


def test_probe_timeout_kills_the_child(monkeypatch):
    monkeypatch.setattr(tflm, "_CHILD_CODE", "import time; time.sleep(60)")
    r = probe(SINE, BIG_ARENA, timeout=1.0)
    assert not r.ok and r.timed_out
    assert "did not finish within 1 s" in r.error


def test_probe_names_an_unsupported_builtin_op():
    # LSH_PROJECTION is a TFLite builtin with no TFLM kernel.
    r = probe(_with_op(schema.BuiltinOperator.LSH_PROJECTION), BIG_ARENA)
    assert not r.ok
    assert r.unsupported_ops == ["LSH_PROJECTION"]
    assert "Didn't find op for builtin opcode 'LSH_PROJECTION'" in r.raw_log
    assert "no kernel for: LSH_PROJECTION" in r.error


def test_probe_names_an_unsupported_custom_op():
    r = probe(_with_op(schema.BuiltinOperator.CUSTOM, b"MyFancyOp"), BIG_ARENA)
    assert not r.ok
    # TFLM only says "Failed to get registration from op code CUSTOM"; the name
    # comes from the model.
    assert "Failed to get registration from op code CUSTOM" in r.raw_log
    assert r.unsupported_ops == ["CUSTOM:MyFancyOp"]
    assert "CUSTOM:MyFancyOp" in r.error


# --------------------------------------------------------------------------- min_arena


def test_min_arena_is_tight(sine_min_arena, sine_probe):
    v = sine_min_arena
    assert v % 16 == 0
    assert v >= sine_probe.arena_bytes  # it needs at least what it reports using
    assert probe(SINE, v).ok
    below = probe(SINE, v - 64)
    assert not below.ok and "needs more" in below.error


def test_min_arena_uses_few_children(monkeypatch):
    calls = []
    real = tflm.probe

    def counting(data, n, timeout=tflm.DEFAULT_PROBE_TIMEOUT_S):
        calls.append(n)
        return real(data, n, timeout)

    monkeypatch.setattr(tflm, "probe", counting)
    v = min_arena(SINE, 4001)  # not a multiple of 16 on purpose
    assert v % 16 == 0 and v <= 4016
    assert len(calls) <= 10, calls


def test_min_arena_raises_when_upper_is_too_small():
    with pytest.raises(ModelError, match="does not run even with an arena of 500 bytes"):
        min_arena(SINE, 500)


# ------------------------------------------------------------------------------ runner


@pytest.fixture(scope="module")
def runner(sine_min_arena) -> TflmRunner:
    return TflmRunner(SINE, sine_min_arena)


def test_runner_computes_sine(runner):
    assert runner.last_latency_us is None
    xs = [0.0, 0.5, 1.0, 1.5707964, 2.0, 3.0, 4.5, 6.0]
    got = []
    for x in xs:
        (y,) = runner.invoke(np.array([[x]], dtype=np.float32))
        assert y.shape == (1, 1) and y.dtype == np.float32
        got.append(float(y[0, 0]))
    np.testing.assert_allclose(got, np.sin(xs), atol=0.05)
    assert runner.last_latency_us is not None and runner.last_latency_us > 0


def test_runner_details_and_arena(runner, sine_probe):
    assert runner.input_details[0].shape == (1, 1)
    assert runner.output_details[0].dtype == "float32"
    # From the constructor's own probe at the min arena: same measured total.
    assert runner.arena_bytes_used == sine_probe.arena_bytes


def test_runner_reshapes_casts_and_copies(runner):
    a = runner.invoke(np.float64(1.0))  # scalar, float64: reshaped and cast
    b = runner.invoke([np.array([1.0], dtype=np.float32)])  # list form, shape (1,)
    c = runner.invoke(np.array([[1]]))  # int -> float input
    assert a[0][0, 0] == b[0][0, 0] == c[0][0, 0]
    a[0][0, 0] = 123.0  # a copy: the next result is unaffected
    assert runner.invoke(np.float32(1.0))[0][0, 0] != 123.0


def test_runner_rejects_wrong_inputs(runner):
    with pytest.raises(ValueError, match=r"expects shape \(1, 1\)"):
        runner.invoke(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="1 input"):
        runner.invoke([np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32)])
    with pytest.raises(ValueError, match="expects dtype float32"):
        runner.invoke(np.array([["x"]]))


def test_runner_refuses_a_too_small_arena_without_crashing():
    # 100 bytes segfaults in-process; the constructor's probe catches it first.
    with pytest.raises(ModelError, match="100 bytes were available"):
        TflmRunner(SINE, 100)


def test_runner_refuses_unsupported_ops():
    with pytest.raises(ModelError, match="LSH_PROJECTION"):
        TflmRunner(_with_op(schema.BuiltinOperator.LSH_PROJECTION), BIG_ARENA)


def test_runner_with_given_probe_result_starts_no_child(monkeypatch, sine_probe):
    def boom(*a, **k):
        raise AssertionError("probe() should not run")

    monkeypatch.setattr(tflm, "probe", boom)
    r = TflmRunner(SINE, BIG_ARENA, probed=sine_probe)
    assert r.arena_bytes_used == sine_probe.arena_bytes
    assert abs(float(r.invoke(np.float32(1.0))[0][0, 0]) - np.sin(1.0)) < 0.05
    failed = ProbeResult(
        ok=False, arena_bytes=None, error="nope", unsupported_ops=[], crashed=True, raw_log=""
    )
    with pytest.raises(ModelError, match="nope"):
        TflmRunner(SINE, 100, probed=failed)


def test_inspect_loads_no_tflm_and_no_tensorflow(tmp_path):
    """inspect_model is pure Python: no native TFLM library, no TensorFlow."""
    import subprocess

    model = tmp_path / "sine.tflite"
    model.write_bytes(SINE)
    code = (
        "import sys; from pathlib import Path\n"
        "from workbench.tflite.tflm import inspect_model\n"
        f"info = inspect_model(Path({str(model)!r}).read_bytes())\n"
        "assert info.ops == ['FULLY_CONNECTED'], info.ops\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tflite_micro', 'tensorflow')]\n"
        "assert not bad, bad\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
