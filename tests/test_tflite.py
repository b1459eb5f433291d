"""Tests for workbench.tflite: reading models and running them in the real TFLite Micro
interpreter.

These run the real interpreter (in child processes and in-process); nothing is mocked.
Child processes are started through a ``spawn`` passed in (:class:`Spawner` below wraps
the real ``subprocess.Popen`` and counts), never by patching globals.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import os
import random
import subprocess
import sys
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from workbench.tflite import (
    ModelError,
    ProbeError,
    ProbeFailure,
    ProbeResult,
    ProbeSession,
    TflmRunner,
    inspect_model,
    min_arena,
    probe,
)

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


class Spawner:
    """Starts real child processes with ``subprocess.Popen`` and remembers each command;
    ``replace`` runs another command instead (a child that hangs, say)."""

    def __init__(self, replace: list[str] | None = None):
        self.commands: list[list[str]] = []
        self.replace = replace

    def __call__(self, cmd, **kwargs):
        self.commands.append(list(cmd))
        return subprocess.Popen(self.replace or cmd, **kwargs)

    @property
    def count(self) -> int:
        return len(self.commands)


@pytest.fixture(scope="module")
def sine_probe() -> ProbeResult:
    return probe(SINE, BIG_ARENA)


@pytest.fixture(scope="module")
def sine_fit():
    spawn = Spawner()
    fit = min_arena(SINE, BIG_ARENA, spawn=spawn)
    return fit, spawn.count


@pytest.fixture(scope="module")
def sine_min_arena(sine_fit) -> int:
    return sine_fit[0].needed_bytes


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
    with pytest.raises(dataclasses.FrozenInstanceError):
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
    assert r.failure is None
    # Measured 1536 bytes on x86-64; allow for other builds and alignment.
    assert r.arena_bytes_used is not None and 1024 <= r.arena_bytes_used <= 4096
    assert "Arena allocation total" in r.raw_log
    assert "@@workbench" not in r.raw_log  # the child's own protocol lines are not TFLM's log
    assert r.arena_limit == BIG_ARENA
    assert r.sha256 == hashlib.sha256(SINE).hexdigest()


def test_probe_with_100_bytes_does_not_hurt_the_caller():
    # In-process this segfaults (measured); the child absorbs it.
    r = probe(SINE, 100)
    assert not r.ok
    assert r.crashed or r.error
    assert r.error and "100 bytes were available" in r.error and "needs more" in r.error
    assert r.failure is ProbeFailure.ARENA_TOO_SMALL
    assert r.arena_bytes_used is None
    assert os.getpid()  # still here


def test_probe_with_too_small_arena_reports_clean_error():
    r = probe(SINE, 1000)
    assert not r.ok and not r.crashed
    assert r.failure is ProbeFailure.ARENA_TOO_SMALL
    assert "1000 bytes were available" in r.error
    assert "needs more" in r.error
    assert "Failed to allocate" in r.raw_log


def test_probe_never_starts_a_child_for_garbage():
    spawn = Spawner()
    for bad in (b"", b"garbage" * 50, SINE[:200]):
        with pytest.raises(ModelError):
            probe(bad, BIG_ARENA, spawn=spawn)
        with pytest.raises(ModelError):
            min_arena(bad, BIG_ARENA, spawn=spawn)
        with pytest.raises(ModelError):
            TflmRunner(bad, BIG_ARENA, spawn=spawn)
    assert spawn.count == 0


def test_probe_rejects_nonsense_arena():
    with pytest.raises(ValueError):
        probe(SINE, 0)
    with pytest.raises(ValueError):
        probe(SINE, "1000")


def test_probe_timeout_kills_the_child():
    # A child that never answers stands in for a hung interpreter.
    hang = Spawner(replace=[sys.executable, "-c", "import time; time.sleep(60)"])
    r = probe(SINE, BIG_ARENA, timeout=1.0, spawn=hang)
    assert not r.ok and r.timed_out
    assert r.failure is ProbeFailure.TIMEOUT
    assert "did not finish within 1 s" in r.error
    assert hang.count == 1


def test_probe_names_an_unsupported_builtin_op():
    # LSH_PROJECTION is a TFLite builtin with no TFLM kernel.
    r = probe(_with_op(schema.BuiltinOperator.LSH_PROJECTION), BIG_ARENA)
    assert not r.ok
    assert r.unsupported_ops == ["LSH_PROJECTION"]
    assert r.failure is ProbeFailure.UNSUPPORTED_OP
    assert "Didn't find op for builtin opcode 'LSH_PROJECTION'" in r.raw_log
    assert "no kernel for: LSH_PROJECTION" in r.error


def test_probe_names_an_unsupported_custom_op():
    r = probe(_with_op(schema.BuiltinOperator.CUSTOM, b"MyFancyOp"), BIG_ARENA)
    assert not r.ok
    # TFLM only says "Failed to get registration from op code CUSTOM"; the name
    # comes from the model.
    assert "Failed to get registration from op code CUSTOM" in r.raw_log
    assert r.unsupported_ops == ["CUSTOM:MyFancyOp"]
    assert r.failure is ProbeFailure.UNSUPPORTED_OP
    assert "CUSTOM:MyFancyOp" in r.error


# --------------------------------------------------------------------------- min_arena


def test_min_arena_is_tight(sine_fit, sine_probe):
    fit, _ = sine_fit
    v = fit.needed_bytes
    assert v % 16 == 0
    assert v >= sine_probe.arena_bytes_used  # it needs at least what it reports using
    # The search tried every size in one child; fresh children, one per size, agree.
    assert probe(SINE, v).ok
    below = probe(SINE, v - 16)
    assert not below.ok and "needs more" in below.error
    assert below.failure is ProbeFailure.ARENA_TOO_SMALL


def test_min_arena_returns_its_probe_at_the_smallest_arena(sine_fit, sine_probe):
    fit, _ = sine_fit
    assert fit.probe.ok and fit.probe.arena_limit == fit.needed_bytes
    assert fit.probe.sha256 == hashlib.sha256(SINE).hexdigest()
    # "used" (what TFLM holds once allocated) is what the big-arena probe measured;
    # "needed" is more, for the planner's temporary memory while allocating.
    assert fit.used_bytes == sine_probe.arena_bytes_used
    assert fit.needed_bytes > fit.used_bytes


def test_min_arena_tries_every_size_in_one_child(sine_fit):
    fit, children = sine_fit
    assert fit.attempts >= 3  # it did search ...
    assert children == 1  # ... in a single child process


def test_min_arena_uses_few_probes():
    spawn = Spawner()
    fit = min_arena(SINE, 4001, spawn=spawn)  # not a multiple of 16 on purpose
    assert fit.needed_bytes % 16 == 0 and fit.needed_bytes <= 4016
    assert fit.attempts <= 10
    assert spawn.count == 1


def test_min_arena_raises_a_typed_error_when_upper_is_too_small():
    with pytest.raises(ProbeError, match="does not run even with an arena of 500 bytes") as exc:
        min_arena(SINE, 500)
    assert exc.value.result.failure is ProbeFailure.ARENA_TOO_SMALL
    assert isinstance(exc.value, ModelError) and isinstance(exc.value, ValueError)


def test_min_arena_names_an_unsupported_op_by_kind():
    with pytest.raises(ProbeError) as exc:
        min_arena(_with_op(schema.BuiltinOperator.LSH_PROJECTION), BIG_ARENA)
    assert exc.value.result.failure is ProbeFailure.UNSUPPORTED_OP
    assert exc.value.result.unsupported_ops == ["LSH_PROJECTION"]


def test_a_session_replaces_a_child_that_crashed():
    # 100 bytes segfaults TFLM (measured); the next size runs in a fresh child.
    spawn = Spawner()
    with ProbeSession(SINE, spawn=spawn) as session:
        first = session.probe(100)
        ok = session.probe(BIG_ARENA)
        again = session.probe(BIG_ARENA)
    assert not first.ok and first.failure is ProbeFailure.ARENA_TOO_SMALL
    assert ok.ok and again.ok and ok.arena_bytes_used == again.arena_bytes_used
    assert spawn.count == (2 if first.crashed else 1)


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
    assert runner.arena_bytes_used == sine_probe.arena_bytes_used


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
    with pytest.raises(ProbeError, match="100 bytes were available") as exc:
        TflmRunner(SINE, 100)
    assert exc.value.result.failure is ProbeFailure.ARENA_TOO_SMALL


def test_runner_refuses_unsupported_ops():
    with pytest.raises(ProbeError, match="LSH_PROJECTION") as exc:
        TflmRunner(_with_op(schema.BuiltinOperator.LSH_PROJECTION), BIG_ARENA)
    assert exc.value.result.failure is ProbeFailure.UNSUPPORTED_OP


def test_runner_with_given_probe_result_starts_no_child(sine_probe, sine_fit):
    spawn = Spawner()
    r = TflmRunner(SINE, BIG_ARENA, probed=sine_probe, spawn=spawn)
    assert r.arena_bytes_used == sine_probe.arena_bytes_used
    assert abs(float(r.invoke(np.float32(1.0))[0][0, 0]) - np.sin(1.0)) < 0.05
    # A result from a smaller arena serves a larger one (success is monotonic).
    fit, _ = sine_fit
    TflmRunner(SINE, fit.needed_bytes + 1024, probed=fit.probe, spawn=spawn)
    assert spawn.count == 0
    failed = ProbeResult(
        ok=False, arena_bytes_used=None, error="nope", unsupported_ops=[], crashed=True,
        raw_log="", failure=ProbeFailure.CRASH,
    )
    with pytest.raises(ProbeError, match="nope"):
        TflmRunner(SINE, 100, probed=failed)


def test_runner_refuses_a_probe_result_that_does_not_vouch_for_it(sine_probe, sine_fit):
    other = _with_op(schema.BuiltinOperator.LSH_PROJECTION)
    with pytest.raises(ModelError, match="another model"):
        TflmRunner(other, BIG_ARENA, probed=sine_probe)
    fit, _ = sine_fit
    with pytest.raises(ModelError, match=f"ran the model in {fit.needed_bytes} bytes"):
        TflmRunner(SINE, fit.needed_bytes - 16, probed=fit.probe)


def test_inspect_loads_no_tflm_and_no_tensorflow(tmp_path):
    """inspect_model is pure Python: no native TFLM library, no TensorFlow."""
    import subprocess

    model = tmp_path / "sine.tflite"
    model.write_bytes(SINE)
    code = (
        "import sys; from pathlib import Path\n"
        "from workbench.tflite import inspect_model\n"
        f"info = inspect_model(Path({str(model)!r}).read_bytes())\n"
        "assert info.ops == ['FULLY_CONNECTED'], info.ops\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tflite_micro', 'tensorflow')]\n"
        "assert not bad, bad\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------- parsed graph


def test_inspect_parses_subgraph_zero_op_by_op():
    from workbench.tflite.schema import enum_names
    from workbench.tflite.schema import schema as fb

    info = inspect_model(SINE)
    g = info.graph
    assert [op.opcode for op in g.operators] == ["FULLY_CONNECTED"] * 3
    assert [t.index for t in info.inputs] == list(g.inputs)
    assert [t.index for t in info.outputs] == list(g.outputs)
    # Each op reads the previous op's output; weights and biases are stored constants.
    ops = g.operators
    assert ops[1].inputs[0] == ops[0].outputs[0] and ops[2].inputs[0] == ops[1].outputs[0]
    weights = g.tensors[ops[0].inputs[1]]
    assert g.constant_bytes(weights) == weights.size * 4  # float32
    assert g.constant_bytes(g.tensors[g.inputs[0]]) == 0
    relu = enum_names(fb().ActivationFunctionType)[ops[0].options.fusedActivationFunction]
    assert relu == "RELU"


def test_custom_op_names_agree_between_inspect_and_graph():
    info = inspect_model(_with_op(schema.BuiltinOperator.CUSTOM, b"MyFancyOp"))
    assert info.graph.operators[0].opcode == "CUSTOM:MyFancyOp" == info.ops[0]


def test_a_prewarmed_child_serves_the_next_probe():
    """prewarm() starts a child that loads TFLite Micro before any model is known; the next
    probe (default spawn) uses it, and it ends with that probe's session."""
    from workbench.tflite import prewarm, probing

    prewarm()
    spare = probing._spare
    assert spare is not None and spare.poll() is None
    prewarm()                                   # one spare at a time
    assert probing._spare is spare
    r = probe(SINE, BIG_ARENA)
    assert r.ok and r.arena_bytes_used
    assert probing._spare is None               # taken by that probe
    assert spare.wait(timeout=10) == 0          # and ended with its session


def test_a_successful_search_is_remembered_for_the_same_bytes():
    first = min_arena(SINE, BIG_ARENA)
    assert min_arena(SINE, first.needed_bytes) is first   # no second search
    assert min_arena(SINE, BIG_ARENA * 2) is first
    with pytest.raises(ProbeError):             # a smaller limit than it needs: searched again
        min_arena(SINE, first.needed_bytes - 16)
    spawn = Spawner()
    again = min_arena(SINE, BIG_ARENA, spawn=spawn)       # a spawn passed in: searched
    assert spawn.count >= 1 and again.needed_bytes == first.needed_bytes
