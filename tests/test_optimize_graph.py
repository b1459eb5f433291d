"""Op-by-op graph analysis: MACs and parameters against hand-computed values on real
conversions, compute types (float, int8, int16x8, hybrid, float ops left behind by
PTQ), the memory plan against TFLite Micro's own planner, malformed input."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from workbench.optimize.graph import MEMORY_ALIGNMENT, Graph, analyze
from workbench.tflite import ModelError, probe

# The test model, layer by layer, with MACs and parameters computed by hand:
#   input 9x9x2
#   Conv2D 5 filters 3x3, stride 2, SAME, ReLU -> 5x5x5
#       MACs 5*5*5 * 3*3*2 = 2250        params 5*3*3*2 + 5 = 95
#   DepthwiseConv2D 3x3, multiplier 2, SAME   -> 5x5x10
#       MACs 5*5*10 * 3*3 = 2250         params 3*3*10 + 10 = 100
#   Conv2D 4 filters 3x3, VALID               -> 3x3x4
#       MACs 3*3*4 * 3*3*10 = 3240       params 4*3*3*10 + 4 = 364
#   Flatten (36), Dense 32                    -> 32
#       MACs 36*32 = 1152                params 36*32 + 32 = 1184
EXPECTED = [  # (op, macs, params, detail)
    ("CONV_2D", 2250, 95, "3x3 kernel, stride 2, SAME, ReLU"),
    ("DEPTHWISE_CONV_2D", 2250, 100, "3x3 depthwise, stride 1, multiplier 2, SAME"),
    ("CONV_2D", 3240, 364, "3x3 kernel, stride 1, VALID"),
    ("FULLY_CONNECTED", 1152, 1184, "36 -> 32"),
]
TOTAL_MACS = 2250 + 2250 + 3240 + 1152
TOTAL_PARAMS = 95 + 100 + 364 + 1184


def _seeded(model, seed=0):
    """Random non-zero weights (so no two biases are equal and none is dropped)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def _stack_model():
    from workbench.train.tf_runtime import keras

    k = keras()
    inp = k.Input(shape=(9, 9, 2), name="x")
    x = k.layers.Conv2D(5, 3, strides=2, padding="same", activation="relu", name="c1")(inp)
    x = k.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)
    x = k.layers.Conv2D(4, 3, padding="valid", name="c2")(x)
    x = k.layers.Flatten(name="flat")(x)
    out = k.layers.Dense(32, name="fc")(x)
    return _seeded(k.Model(inp, out, name="stack"))


@pytest.fixture(scope="module")
def stack():
    from workbench.train.export import to_tflite

    model = _stack_model()
    rep = np.random.default_rng(1).normal(size=(16, 9, 9, 2)).astype(np.float32)
    return {
        "float": to_tflite(model, quantize="float"),
        "int8": to_tflite(model, quantize="int8", representative=rep),
        "dynamic": to_tflite(model, quantize="dynamic"),
    }


def _convert_with_tf(model, rep, *, int16=False) -> bytes:
    """Convert directly with TF's converter (PTQ without to_tflite's int8-only check)."""
    from workbench.train.tf_runtime import tf as _tf

    tf = _tf()
    spec = tf.TensorSpec((1, *model.inputs[0].shape[1:]), tf.float32)
    concrete = tf.function(lambda x: model(x), input_signature=[spec]).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([r[None]] for r in rep)
    if int16:
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = tf.int16
        conv.inference_output_type = tf.int16
    return bytes(conv.convert())


def _mac_ops(g: Graph):
    return [op for op in g.ops if op.macs]


# --------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_macs_and_params_match_hand_counts(stack, kind):
    g = analyze(stack[kind])
    got = [(op.op, op.macs, op.params, op.detail) for op in _mac_ops(g)]
    assert got == EXPECTED, f"{kind} model ops:\n" + "\n".join(map(str, got))
    assert g.macs == TOTAL_MACS
    assert g.params == TOTAL_PARAMS
    assert g.op_counts["CONV_2D"] == 2 and g.op_counts["DEPTHWISE_CONV_2D"] == 1
    # Shape operands (e.g. a RESHAPE's new shape) are stored but are not parameters.
    for op in g.ops:
        if op.op in ("RESHAPE", "SQUEEZE"):
            assert op.params == 0


def test_weight_bytes_follow_the_type(stack):
    f, q = analyze(stack["float"]), analyze(stack["int8"])
    # Float: 4 bytes per parameter. Int8: 1 byte per weight, 4 per int32 bias.
    n_bias = 5 + 10 + 4 + 32
    assert f.weight_bytes >= 4 * TOTAL_PARAMS
    assert q.weight_bytes >= (TOTAL_PARAMS - n_bias) + 4 * n_bias
    assert q.weight_bytes < f.weight_bytes / 2


def test_sine_model_counts(sine_model):
    # tflite-micro's hello_world: Dense 16 ReLU -> Dense 16 ReLU -> Dense 1, float.
    g = analyze(sine_model)
    assert [op.op for op in g.ops] == ["FULLY_CONNECTED"] * 3
    assert [op.macs for op in g.ops] == [16, 16 * 16, 16]
    assert g.params == (16 + 16) + (16 * 16 + 16) + (16 + 1)
    assert [op.detail for op in g.ops] == ["1 -> 16, ReLU", "16 -> 16, ReLU", "16 -> 1"]
    assert g.inputs[0].dtype == "float32" and g.inputs[0].shape == (1, 1)


# --------------------------------------------------------------------------------------
# Compute types
# --------------------------------------------------------------------------------------


def test_compute_dtypes_float_and_int8(stack):
    f, q = analyze(stack["float"]), analyze(stack["int8"])
    assert {op.compute_dtype for op in f.ops} == {"float32"}
    assert {op.compute_dtype for op in q.ops} == {"int8"}
    for g in (f, q):
        assert not g.is_hybrid
        assert g.float_ops == ()  # all-float is not "float left behind"; clean int8 neither


def test_dynamic_range_model_is_hybrid(stack):
    g = analyze(stack["dynamic"])
    assert g.is_hybrid
    fc = [op for op in g.ops if op.op == "FULLY_CONNECTED"][0]
    # The Dense has 1152 >= 1024 weights, so the converter quantized it.
    assert fc.compute_dtype == "hybrid"
    assert "int8 weights, float activations" in fc.detail
    assert g.macs == TOTAL_MACS
    assert g.to_dict()["is_hybrid"] is True


def test_ptq_leaves_a_float_op_behind():
    from workbench.train.tf_runtime import keras
    from workbench.train.tf_runtime import tf as _tf

    k, tf = keras(), _tf()
    inp = k.Input(shape=(12,))
    x = k.layers.Dense(16)(inp)
    x = k.layers.Lambda(lambda t: tf.sin(t), name="sin")(x)  # SIN has no int8 kernel
    out = k.layers.Dense(4)(x)
    model = _seeded(k.Model(inp, out))
    blob = _convert_with_tf(model, np.random.default_rng(2).normal(size=(16, 12)).astype(
        np.float32))
    g = analyze(blob)
    assert [op.op for op in g.float_ops] == ["SIN"], [
        (op.op, op.compute_dtype) for op in g.ops]
    assert not g.is_hybrid
    # The QUANTIZE/DEQUANTIZE around it are conversions, reported by their integer side.
    assert {op.compute_dtype for op in g.ops if op.op in ("QUANTIZE", "DEQUANTIZE")} == {"int8"}
    assert g.to_dict()["float_ops"] == [op.index for op in g.float_ops]


def test_int16x8_model():
    from workbench.train.tf_runtime import keras

    k = keras()
    inp = k.Input(shape=(12,))
    out = k.layers.Dense(4)(k.layers.Dense(16, activation="relu")(inp))
    model = _seeded(k.Model(inp, out))
    g = analyze(_convert_with_tf(model, np.random.default_rng(3).normal(size=(16, 12)).astype(
        np.float32), int16=True))
    assert [op.compute_dtype for op in g.ops] == ["int16", "int16"]
    assert [op.macs for op in g.ops] == [12 * 16, 16 * 4]
    assert g.float_ops == () and not g.is_hybrid


# --------------------------------------------------------------------------------------
# Memory plan
# --------------------------------------------------------------------------------------


def _check_plan(g: Graph) -> None:
    layout = g.memory_layout
    assert layout
    for a, b in itertools.combinations(layout, 2):
        alive_together = a.first_op <= b.last_op and b.first_op <= a.last_op
        if not alive_together:
            continue
        a_end = a.offset + -(-a.nbytes // MEMORY_ALIGNMENT) * MEMORY_ALIGNMENT
        b_end = b.offset + -(-b.nbytes // MEMORY_ALIGNMENT) * MEMORY_ALIGNMENT
        assert a_end <= b.offset or b_end <= a.offset, f"{a} overlaps {b}"
    for buf in layout:
        assert buf.offset % MEMORY_ALIGNMENT == 0
        assert buf.offset + buf.nbytes <= g.activation_peak_bytes
    activations = [t.nbytes for op in g.ops for t in (*op.inputs, *op.outputs)
                   if not t.constant]
    assert g.activation_peak_bytes >= max(activations)
    # Every activation the ops touch is planned.
    assert len(layout) == len({t.index for op in g.ops for t in (*op.inputs, *op.outputs)
                               if not t.constant})


@pytest.mark.parametrize("kind", ["float", "int8", "dynamic"])
def test_memory_plan_never_overlaps_live_tensors(stack, kind):
    _check_plan(analyze(stack[kind]))


def test_memory_plan_of_sine(sine_model):
    g = analyze(sine_model)
    _check_plan(g)
    # Inputs live from op 0, outputs to the last op.
    by_name = {b.tensor: b for b in g.memory_layout}
    assert by_name[g.inputs[0].name].first_op == 0
    assert by_name[g.outputs[0].name].last_op == len(g.ops) - 1


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_memory_plan_matches_tflm(stack, kind):
    # TFLite Micro's recording allocator prints the size of the planned ("head")
    # area; a greedy plan like TFLM's should come to the same bytes.
    blob = stack[kind]
    result = probe(blob, 256 * 1024)
    assert result.ok, result.error
    m = re.search(r"Arena allocation head (\d+) bytes", result.raw_log)
    assert m, result.raw_log
    assert analyze(blob).activation_peak_bytes == int(m.group(1))


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"hello, this is not a model at all" * 4, "not a valid .tflite"),
    (b"\x89HDF\r\n\x1a\n" + bytes(64), "HDF5"),
])
def test_malformed_bytes_raise_model_error(data, words):
    with pytest.raises(ModelError, match=re.escape(words)):
        analyze(data)


def test_truncated_and_corrupted_models_raise_model_error(sine_model):
    with pytest.raises(ModelError, match="not a valid .tflite flatbuffer"):
        analyze(sine_model[: len(sine_model) // 3])
    broken = bytearray(sine_model)
    broken[0:4] = (len(broken) + 1000).to_bytes(4, "little")  # root offset past the end
    with pytest.raises(ModelError, match="not a valid .tflite flatbuffer"):
        analyze(bytes(broken))


def test_path_instead_of_bytes_is_a_type_error():
    with pytest.raises(TypeError, match="bytes"):
        analyze("model.tflite")


def test_to_dict_is_json_ready(stack):
    import json

    d = analyze(stack["int8"]).to_dict()
    again = json.loads(json.dumps(d))
    assert again["macs"] == TOTAL_MACS
    assert again["op_counts"]["CONV_2D"] == 2
    assert sum(again["op_counts"].values()) == len(again["ops"])
    assert again["memory_layout"][0].keys() >= {"tensor", "offset", "nbytes", "first_op",
                                                "last_op"}


def test_importing_graph_and_latency_loads_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, workbench.optimize.graph, workbench.optimize.latency, "
            "workbench.optimize.anchors; "
            "print(sorted(m for m in ('tensorflow', 'tf_keras', 'tflite_micro') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
