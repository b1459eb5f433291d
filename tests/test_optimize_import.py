"""Importing existing models: .tflite, Keras (object, .keras, .h5), SavedModel, ONNX.

Every conversion is real and every converted model runs in the real TFLite Micro
interpreter, compared with a reference on fresh random inputs: the Keras model's own
output, or for ONNX a numpy computation of the same graph from its known weights.
The ONNX converter (onnx2tf) is never imported in this process: load_model runs it in
a child process, and these tests check that it stays there.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from workbench.optimize.importers import ACCEPTED, ImportedModel, ModelImportError, load_model
from workbench.tflite import inspect_model
from workbench.train.export import predict_tflite
from workbench.train.tf_runtime import keras, tf

SINE = (resources.files("tflite_micro.python.tflite_micro") / "sine_float.tflite").read_bytes()
N_IN, N_OUT = 8, 3
HAVE_ONNX2TF = all(importlib.util.find_spec(m) is not None
                   for m in ("onnx", "onnx2tf", "onnx_graphsurgeon", "sng4onnx"))
needs_onnx2tf = pytest.mark.skipif(not HAVE_ONNX2TF,
                                   reason="onnx2tf not installed (pip install '.[onnx]')")


def _fresh(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _batch_is_one(blob: bytes) -> None:
    info = inspect_model(blob)
    assert info.inputs[0].shape[0] == 1, info.inputs[0]
    assert info.inputs[0].shape_signature[0] == 1, info.inputs[0]
    assert not info.has_dynamic_batch


def _assert_close(got, want, atol, what):
    err = np.abs(np.asarray(got) - np.asarray(want)).max()
    assert err <= atol, f"{what}: max |tflite - reference| = {err:.3g} > {atol}"


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kmodel():
    """A small tf_keras MLP with fixed random weights (not trained: nothing to learn)."""
    k = keras()
    k.utils.set_random_seed(3)
    return k.Sequential([k.Input((N_IN,), name="features"),
                         k.layers.Dense(16, activation="relu"),
                         k.layers.Dense(N_OUT)], name="mlp")


@pytest.fixture(scope="module")
def X():
    return _fresh((64, N_IN), seed=11)


@pytest.fixture(scope="module")
def saved(kmodel, tmp_path_factory):
    """The model saved every way a user might have it."""
    d = tmp_path_factory.mktemp("saved")
    kmodel.save(d / "model.keras")
    kmodel.save(d / "model.h5")
    kmodel.save(d / "keras_savedmodel")                      # tf_keras SavedModel
    tf().saved_model.save(kmodel, str(d / "tf_savedmodel"))   # plain SavedModel
    return d


# --------------------------------------------------------------------------------------
# .tflite
# --------------------------------------------------------------------------------------


def test_import_does_not_load_tensorflow_or_onnx():
    code = ("import sys, workbench.optimize.importers; "
            "print([m for m in ('tensorflow', 'tf_keras', 'keras', 'onnx', 'onnx2tf') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("wrap", [bytes, bytearray])
def test_tflite_bytes_pass_through_unchanged(wrap):
    imp = load_model(wrap(SINE))
    assert isinstance(imp, ImportedModel)
    assert imp.tflite == SINE and type(imp.tflite) is bytes
    assert (imp.kind, imp.source, imp.keras_model) == ("tflite", "<bytes>", None)
    assert inspect_model(imp.tflite).ops == inspect_model(SINE).ops
    assert any("validated" in n for n in imp.notes)


def test_tflite_file_round_trip(tmp_path):
    path = tmp_path / "sine.tflite"
    path.write_bytes(SINE)
    for src in (path, str(path)):
        imp = load_model(src)
        assert imp.tflite == SINE
        assert (imp.kind, imp.source) == ("tflite", str(path))
    x = np.linspace(0, 6, 7, dtype=np.float32).reshape(-1, 1)
    y = predict_tflite(imp.tflite, x, runtime="tflite-micro")
    _assert_close(y[:, 0], np.sin(x[:, 0]), 0.1, "sine model")


def test_tflite_recognised_by_content_whatever_its_name(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(SINE)
    imp = load_model(path)
    assert imp.tflite == SINE and imp.kind == "tflite"
    assert any("by its content" in n for n in imp.notes)


# --------------------------------------------------------------------------------------
# Keras
# --------------------------------------------------------------------------------------


def test_keras_object_float_runs_in_tflm(kmodel, X):
    imp = load_model(kmodel)
    assert (imp.kind, imp.source, imp.keras_model) == ("keras", "<keras model>", kmodel)
    assert "batch fixed to 1" in imp.notes
    _batch_is_one(imp.tflite)
    _assert_close(predict_tflite(imp.tflite, X, runtime="tflite-micro"), kmodel.predict(X, verbose=0),
                  1e-5, "float")


def test_keras_object_int8_runs_in_tflm(kmodel, X):
    imp = load_model(kmodel, quantize="int8", representative=_fresh((200, N_IN), seed=5))
    info = inspect_model(imp.tflite)
    assert info.inputs[0].dtype == "int8" and info.outputs[0].dtype == "int8"
    _batch_is_one(imp.tflite)
    ref = kmodel.predict(X, verbose=0)
    got = predict_tflite(imp.tflite, X, runtime="tflite-micro")
    agree = (got.argmax(1) == ref.argmax(1)).mean()
    assert agree >= 0.9, f"int8 argmax agrees with Keras on {agree:.0%} of inputs"
    _assert_close(got, ref, 0.1 * np.abs(ref).max(), "int8")


@pytest.mark.parametrize("name", ["model.keras", "model.h5"])
def test_keras_files(saved, kmodel, X, name):
    imp = load_model(saved / name)
    assert (imp.kind, imp.source) == ("keras", str(saved / name))
    assert imp.keras_model is not None and imp.keras_model is not kmodel
    assert any("tf_keras" in n for n in imp.notes)
    _batch_is_one(imp.tflite)
    _assert_close(predict_tflite(imp.tflite, X, runtime="tflite-micro"), kmodel.predict(X, verbose=0),
                  1e-5, name)


def test_keras_savedmodel_loads_as_keras(saved, kmodel, X):
    imp = load_model(saved / "keras_savedmodel")
    assert imp.kind == "savedmodel" and imp.keras_model is not None
    _batch_is_one(imp.tflite)
    _assert_close(predict_tflite(imp.tflite, X, runtime="tflite-micro"), kmodel.predict(X, verbose=0),
                  1e-5, "tf_keras SavedModel")


def test_plain_savedmodel_with_dynamic_batch_signature(saved, kmodel, X):
    d = saved / "tf_savedmodel"
    sig = tf().saved_model.load(str(d)).signatures["serving_default"]
    assert sig.structured_input_signature[1]["features"].shape[0] is None  # dynamic batch
    for src in (d, d / "saved_model.pb"):
        imp = load_model(src)
        assert (imp.kind, imp.source, imp.keras_model) == ("savedmodel", str(d), None)
        assert any("serving_default" in n for n in imp.notes)
        _batch_is_one(imp.tflite)
        _assert_close(predict_tflite(imp.tflite, X, runtime="tflite-micro"),
                      kmodel.predict(X, verbose=0), 1e-5, "SavedModel")


def test_plain_savedmodel_int8(saved, kmodel, X):
    imp = load_model(saved / "tf_savedmodel", quantize="int8",
                     representative=_fresh((200, N_IN), seed=5))
    assert inspect_model(imp.tflite).inputs[0].dtype == "int8"
    _batch_is_one(imp.tflite)
    ref = kmodel.predict(X, verbose=0)
    agree = (predict_tflite(imp.tflite, X, runtime="tflite-micro").argmax(1) == ref.argmax(1)).mean()
    assert agree >= 0.9, f"int8 argmax agrees with Keras on {agree:.0%} of inputs"


def _keras3():
    if importlib.util.find_spec("keras") is None:
        pytest.skip("Keras 3 is not installed")
    tf()
    import keras as k3

    if not k3.__version__.startswith("3"):
        pytest.skip(f"keras {k3.__version__} is not Keras 3")
    return k3


def test_keras3_model_and_file(tmp_path, X):
    """Keras 3 models convert through their exported SavedModel (direct tracing would
    leave their variables unfrozen: the .tflite would not run)."""
    k3 = _keras3()
    k3.utils.set_random_seed(4)
    model = k3.Sequential([k3.Input((N_IN,)), k3.layers.Dense(12, activation="relu"),
                           k3.layers.Dense(N_OUT)])
    model.save(tmp_path / "k3.keras")
    ref = np.asarray(model.predict(X, verbose=0))
    for src in (model, tmp_path / "k3.keras"):
        imp = load_model(src)
        _batch_is_one(imp.tflite)
        _assert_close(predict_tflite(imp.tflite, X, runtime="tflite-micro"), ref, 1e-5, "Keras 3")
        assert imp.kind == "keras" and imp.keras_model is not None
        assert any("Keras 3" in n for n in imp.notes)


def test_to_tflite_refuses_keras3_and_points_to_load_model():
    k3 = _keras3()
    from workbench.train.export import to_tflite

    model = k3.Sequential([k3.Input((N_IN,)), k3.layers.Dense(N_OUT)])
    with pytest.raises(ValueError, match="load_model"):
        to_tflite(model)


# --------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------


def _onnx_mlp(path: Path, batch="N"):
    """Gemm -> Relu -> Gemm with known weights; returns the numpy reference function."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(21)
    w1, b1, w2, b2 = (rng.normal(size=s).astype(np.float32)
                      for s in ((N_IN, 16), (16,), (16, N_OUT), (N_OUT,)))
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
         helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("Gemm", ["r", "w2", "b2"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, N_IN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, N_OUT])],
        [numpy_helper.from_array(a, n)
         for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return lambda x: np.maximum(x @ w1 + b1, 0) @ w2 + b2


C_IN, C_OUT, HW = 2, 4, 6


def _onnx_conv(path: Path):
    """NCHW Conv 3x3 (pad 1) -> Relu with known weights; returns the numpy reference."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(22)
    w = rng.normal(size=(C_OUT, C_IN, 3, 3)).astype(np.float32)
    b = rng.normal(size=C_OUT).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", C_IN, HW, HW])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", C_OUT, HW, HW])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))

    def reference(x):  # x: (n, C_IN, H, W) -> (n, C_OUT, H, W), cross-correlation as ONNX
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.zeros((len(x), C_OUT, HW, HW), np.float32)
        for i in range(3):
            for j in range(3):
                out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + HW, j:j + HW], w[:, :, i, j])
        return np.maximum(out + b[None, :, None, None], 0)

    return reference


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    pytest.importorskip("onnx")
    return tmp_path_factory.mktemp("onnx")


@pytest.mark.slow
@needs_onnx2tf
def test_onnx_gemm_float_matches_numpy(onnx_dir, X, monkeypatch, tmp_path):
    path = onnx_dir / "mlp.onnx"
    reference = _onnx_mlp(path)
    before = path.read_bytes()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # to see what is left behind
    imp = load_model(path)
    ours = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("workbench-"))
    assert ours == [], "temporary directories were left behind"  # (TF's autograph leaves its own)
    assert path.read_bytes() == before, "the user's .onnx file was modified"
    assert (imp.kind, imp.source, imp.keras_model) == ("onnx", str(path), None)
    assert any(n.startswith("converted from ONNX with onnx2tf 1.") for n in imp.notes)
    assert "ONNX batch dimension fixed to 1" in imp.notes
    _batch_is_one(imp.tflite)
    assert "onnx2tf" not in sys.modules
    for runtime in ("tflite-micro", "litert"):
        _assert_close(predict_tflite(imp.tflite, X, runtime=runtime), reference(X), 1e-4,
                      f"ONNX MLP on {runtime}")


@pytest.mark.slow
@needs_onnx2tf
def test_onnx_gemm_int8(onnx_dir, X):
    path = onnx_dir / "mlp8.onnx"
    reference = _onnx_mlp(path)
    imp = load_model(path, quantize="int8", representative=_fresh((200, N_IN), seed=5))
    assert inspect_model(imp.tflite).inputs[0].dtype == "int8"
    _batch_is_one(imp.tflite)
    ref = reference(X)
    got = predict_tflite(imp.tflite, X, runtime="tflite-micro")
    agree = (got.argmax(1) == ref.argmax(1)).mean()
    assert agree >= 0.9, f"int8 argmax agrees with numpy on {agree:.0%} of inputs"
    _assert_close(got, ref, 0.1 * np.abs(ref).max(), "ONNX int8")


@pytest.mark.slow
@needs_onnx2tf
def test_onnx_conv_nchw_becomes_nhwc(onnx_dir):
    path = onnx_dir / "conv.onnx"
    reference = _onnx_conv(path)
    x_nchw = _fresh((10, C_IN, HW, HW), seed=12)
    imp = load_model(path, quantize="int8", representative=_fresh((100, C_IN, HW, HW), seed=6))
    info = inspect_model(imp.tflite)
    assert info.inputs[0].shape == (1, HW, HW, C_IN)     # channels-last, batch 1
    assert info.outputs[0].shape == (1, HW, HW, C_OUT)
    assert any("channels-last" in n for n in imp.notes)
    assert any("representative data transposed" in n for n in imp.notes)
    got = predict_tflite(imp.tflite, np.transpose(x_nchw, (0, 2, 3, 1)), runtime="tflite-micro")
    ref = np.transpose(reference(x_nchw), (0, 2, 3, 1))
    _assert_close(got, ref, 0.05 * np.abs(ref).max(), "ONNX Conv int8")

    imp = load_model(path)
    got = predict_tflite(imp.tflite, np.transpose(x_nchw, (0, 2, 3, 1)), runtime="tflite-micro")
    _assert_close(got, ref, 1e-4, "ONNX Conv float")


@pytest.mark.slow
@needs_onnx2tf
def test_onnx_unsupported_op_reports_the_converters_error(onnx_dir):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("FancyOp", ["x"], ["y"], domain="com.example")], "fancy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("com.example", 1)])
    model.ir_version = 8
    path = onnx_dir / "fancy.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelImportError) as err:
        load_model(path)
    msg = str(err.value)
    assert "could not convert" in msg and "onnx2tf 1." in msg
    assert "FancyOp OP is not yet implemented" in msg     # onnx2tf's own last error line
    assert "onnxsim" in msg and "opset" in msg             # what to try


def test_onnx_without_converter_says_what_to_install(tmp_path):
    """In a child interpreter where onnx2tf cannot be imported (sys.modules[...] = None)."""
    path = tmp_path / "m.onnx"
    path.write_bytes(b"not even read")
    code = ("import sys; sys.modules['onnx2tf'] = None\n"
            "from workbench.optimize.importers import load_model, ModelImportError\n"
            "try:\n    load_model(sys.argv[1])\n"
            "except ModelImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True).stdout
    assert "needs onnx2tf" in out and "onnx2tf" in out.split("missing:")[1]
    assert "pip install 'tinyml-workbench[onnx]'" in out


@needs_onnx2tf
def test_onnx_bad_inputs_are_refused_before_converting(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07garbage, not protobuf \xff\xff\xff")
    with pytest.raises(ModelImportError, match=r"not a valid ONNX model.*Export it again"):
        load_model(garbage)

    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "seq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "T", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "seq.onnx"))
    with pytest.raises(ModelImportError) as err:
        load_model(tmp_path / "seq.onnx")
    msg = str(err.value)
    assert "('N', 'T', 3)" in msg and "unknown dimensions besides the batch" in msg
    assert "fixed input shape" in msg and "dynamic_axes" in msg


# --------------------------------------------------------------------------------------
# errors: each names the problem and the fix
# --------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ModelImportError) as err:
        load_model(tmp_path / "nope.tflite")
    assert "no such file or directory" in str(err.value) and "nope.tflite" in str(err.value)
    assert "Check the path" in str(err.value)
    with pytest.raises(ModelImportError, match="relative paths start from"):
        load_model("surely/not/here.keras")


def test_directory_that_is_not_a_saved_model(tmp_path):
    (tmp_path / "kws.tflite").write_bytes(SINE)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelImportError) as err:
        load_model(tmp_path)
    msg = str(err.value)
    assert "not a SavedModel" in msg and "saved_model.pb" in msg
    assert "kws.tflite" in msg and "notes.txt" not in msg and "pass one of those" in msg


def test_invalid_tflite(tmp_path):
    with pytest.raises(ModelImportError) as err:
        load_model(b"\x00" * 4 + b"XXXX" + b"\x00" * 40)
    assert "not a valid .tflite flatbuffer" in str(err.value)
    assert "Pass the bytes of a TensorFlow Lite model" in str(err.value)
    with pytest.raises(ModelImportError, match="<bytes>: .*empty"):
        load_model(b"")
    # a Keras file given a .tflite name: the hint says what it is and what to do
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(ModelImportError, match=r"model\.tflite: .*Keras HDF5.*convert"):
        load_model(path)


@pytest.mark.parametrize("name, expect", [
    ("model.txt", "don't know how to import model.txt"),
    ("weights.pt", "torch.onnx.export"),
    ("graph.pb", "tf.saved_model.save"),
])
def test_unknown_file_type_lists_what_is_accepted(tmp_path, name, expect):
    (tmp_path / name).write_text("something")
    with pytest.raises(ModelImportError) as err:
        load_model(tmp_path / name)
    assert expect in str(err.value)
    assert ACCEPTED in str(err.value)
    for accepted in (".tflite", ".keras", ".h5", ".onnx", "SavedModel directory"):
        assert accepted in ACCEPTED


def test_keras_file_that_does_not_load_names_the_reader_and_the_fix(tmp_path):
    k = keras()

    class Scale(k.layers.Layer):  # a custom layer, unknown when the file is read back
        def call(self, x):
            return 2.0 * x

        def get_config(self):
            return super().get_config()

    model = k.Sequential([k.Input((4,)), Scale(), k.layers.Dense(2)])
    model.save(tmp_path / "custom.keras")
    with pytest.raises(ModelImportError) as err:
        load_model(tmp_path / "custom.keras")
    msg = str(err.value)
    assert "could not load" in msg and "custom.keras" in msg and "Scale" in msg
    assert "written by Keras 2." in msg and "tf_keras 2.x" in msg
    assert "custom_objects" in msg and "pass the model object" in msg

    # what the message suggests works: load it yourself, pass the object
    loaded = k.models.load_model(tmp_path / "custom.keras", custom_objects={"Scale": Scale},
                                 compile=False)
    x = _fresh((5, 4), seed=1)
    imp = load_model(loaded)
    _assert_close(predict_tflite(imp.tflite, x, runtime="tflite-micro"), loaded.predict(x, verbose=0),
                  1e-5, "custom layer")


def test_savedmodel_without_signatures(tmp_path):
    t = tf()
    module = t.Module()
    module.v = t.Variable(1.0)
    t.saved_model.save(module, str(tmp_path / "sm"))
    with pytest.raises(ModelImportError, match=r"no signatures.*signatures="):
        load_model(tmp_path / "sm")


def test_bad_arguments(kmodel, tmp_path):
    with pytest.raises(ModelImportError, match="quantize must be one of 'float', 'int8'"):
        load_model(kmodel, quantize="int4")
    with pytest.raises(ModelImportError, match=r"<keras model>: .*representative=X_train"):
        load_model(kmodel, quantize="int8")
    with pytest.raises(ModelImportError, match=r"already a \.tflite model.*original"):
        load_model(SINE, quantize="int8")
    with pytest.raises(ModelImportError, match=r"representative data for .* must have shape"):
        load_model(kmodel, quantize="int8", representative=np.zeros((4, 5), np.float32))
    for thing in (42, {"model": "x"}, None):
        with pytest.raises(ModelImportError) as err:
            load_model(thing)
        assert "cannot import" in str(err.value) and ACCEPTED in str(err.value)


def test_error_messages_are_single_plain_paragraphs(tmp_path):
    """Messages end up in widgets and CLI output: one line, no ANSI colour codes."""
    msgs = []
    for src in (tmp_path / "nope.onnx", b"", tmp_path):
        try:
            load_model(src)
        except ModelImportError as exc:
            msgs.append(str(exc))
    assert len(msgs) == 3
    for m in msgs:
        assert "\x1b[" not in m and "\n" not in m
