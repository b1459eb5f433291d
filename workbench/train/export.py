"""Keras model -> .tflite bytes for microcontrollers, and running them on the host.

:func:`to_tflite` converts with the batch dimension fixed (to 1 by default: a
dynamic batch adds shape ops that TFLite Micro does not need and may not have),
as float, full-integer int8 (int8 input and output, the usual format for TFLM) or
dynamic-range ("hybrid") quantization. Quantization-aware-trained models (from
``tfmot.quantization.keras.quantize_model``) convert to int8 from their learned
ranges, with no representative data needed.

:func:`predict_tflite` runs every sample through a real interpreter, TFLite Micro
(through :class:`workbench.tflite.TflmRunner`, crash-safe) or LiteRT, quantizing
inputs and dequantizing outputs, so the accuracy of an int8 model is measured on
the arithmetic that will run on the device.

Usage::

    from workbench.train.export import to_tflite, predict_tflite
    blob = to_tflite(model, quantize="int8", representative=X_train)
    probs = predict_tflite(blob, X_test, runtime="tflite-micro")      # float, (n, n_classes)
    accuracy = (probs.argmax(1) == y_test).mean()

Importing this module imports neither TensorFlow nor any interpreter.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np

from ..tflite import ProbeResult, Spawn, TensorInfo, inspect_model

__all__ = [
    "to_tflite",
    "quantize_input",
    "dequantize_output",
    "predict_tflite",
    "host_runner",
    "check_runtime",
    "is_qat_model",
    "MAX_REPRESENTATIVE",
    "DEFAULT_ARENA_BYTES",
]

#: At most this many representative samples are used for int8 calibration
#: (evenly spaced over the array given, so sorted data still covers every class).
MAX_REPRESENTATIVE = 200
#: The tensor arena :func:`predict_tflite` gives TFLM when none is named; the
#: host has memory to spare (whether a *board* can hold the model is the virtual
#: board's question, not this one's).
DEFAULT_ARENA_BYTES = 1 << 20

_QUANTIZE_MODES = ("float", "int8", "int16x8", "dynamic")
_QAT_LAYER_TYPES = {"QuantizeLayer", "QuantizeWrapper", "QuantizeWrapperV2"}


def is_qat_model(model) -> bool:
    """True if ``model`` was prepared by ``tfmot.quantization.keras.quantize_model``."""
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        if type(layer).__name__ in _QAT_LAYER_TYPES:
            return True
        stack.extend(getattr(layer, "layers", []))
    return False


def _representative(model, data, input_shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == len(input_shape):  # a single sample
        arr = arr[None]
    if arr.shape[1:] != input_shape or arr.shape[0] == 0:
        raise ValueError(
            f"representative data for {model.name!r} must have shape (n, "
            f"{', '.join(map(str, input_shape))}) with n >= 1, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("representative data contains NaN or infinite values")
    if len(arr) > MAX_REPRESENTATIVE:
        idx = np.linspace(0, len(arr) - 1, MAX_REPRESENTATIVE).round().astype(int)
        arr = arr[idx]
    return arr


def to_tflite(model, *, quantize: Literal["float", "int8", "int16x8", "dynamic"] = "float",
              representative: np.ndarray | None = None, batch_size: int = 1) -> bytes:
    """Convert a single-input ``tf_keras`` model to .tflite bytes with a fixed batch.

    The model is traced as a ``tf.function`` whose input signature is
    ``(batch_size, *input_shape)``, so no tensor in the flatbuffer has a dynamic
    (-1) dimension. The model itself is not changed.

    Args:
        model: a ``tf_keras`` model (from :mod:`workbench.train.zoo`, or any), plain
            or quantization-aware (``tfmot...quantize_model``).
        quantize: ``"float"``: float32 everything. ``"int8"``: full-integer int8,
            int8 input and output tensors, only int8 builtin ops (what TFLM runs
            best); needs ``representative`` unless the model is QAT.
            ``"int16x8"``: int16 activations and I/O with int8 weights (TFLite's
            16x8 mode: more precise than int8 where activations need range, twice
            the activation memory; needs ``representative``; TFLM has 16x8
            kernels for the common ops only).
            ``"dynamic"``: int8 weights with float activations and float I/O
            (hybrid kernels: LiteRT runs them, TFLite Micro does not).
        representative: calibration inputs, shape ``(n, *input_shape)``; at most
            :data:`MAX_REPRESENTATIVE` evenly spaced samples are used. Only for
            ``"int8"`` and ``"int16x8"`` (also accepted, and used, for QAT models).
        batch_size: the fixed batch dimension (1 for microcontrollers).

    Returns:
        The .tflite flatbuffer.

    Raises:
        ValueError: a Keras 3 model (use :func:`workbench.optimize.load_model`);
            unknown ``quantize``; ``"int8"`` without representative data
            for a non-QAT model; representative data of the wrong shape; a model
            with more than one input; a bad ``batch_size``; an ``"int8"`` result
            that still has float ops or I/O (a QAT model with unquantized layers:
            pass representative data).
    """
    if quantize not in _QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {', '.join(map(repr, _QUANTIZE_MODES))}, "
                         f"got {quantize!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
            batch_size < 1):
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if type(model).__module__.split(".")[0] == "keras":
        # Keras 3: tracing it here would leave its variables unfrozen (the .tflite reads
        # uninitialised resources: NaN in TFLM, a crash in LiteRT).
        raise ValueError(
            "to_tflite converts tf_keras (Keras 2) models; this is a Keras 3 model. Import it "
            "with workbench.optimize.load_model(model), which converts Keras 3 models through "
            "their exported SavedModel")
    if len(model.inputs) != 1:
        raise ValueError(f"to_tflite converts single-input models; {model.name!r} has "
                         f"{len(model.inputs)} inputs")
    qat = is_qat_model(model)
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    rep = None
    if quantize == "int16x8":
        if representative is None:
            raise ValueError("quantize='int16x8' needs representative data to calibrate "
                             "activation ranges: pass representative=X_train")
        rep = _representative(model, representative, input_shape)
    elif quantize == "int8":
        if representative is not None:
            rep = _representative(model, representative, input_shape)
        elif not qat:
            raise ValueError(
                "quantize='int8' needs representative data to calibrate activation ranges: "
                "pass representative=X_train (a few hundred typical inputs; "
                f"at most {MAX_REPRESENTATIVE} are used), or train with QAT first")
    elif representative is not None:
        raise ValueError(f"representative data is only used with quantize='int8' or "
                         f"'int16x8', not {quantize!r}")

    from .tf_runtime import tf as _tf

    tf = _tf()
    spec = tf.TensorSpec((int(batch_size), *input_shape), tf.float32,
                         name=model.inputs[0].name.split(":")[0])

    @tf.function(input_signature=[spec])
    def serve(x):
        return model(x, training=False)

    concrete = serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if quantize in ("int8", "int16x8", "dynamic") or qat:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if rep is not None:
        def samples():
            for i in range(len(rep)):
                yield [np.repeat(rep[i: i + 1], batch_size, axis=0)]

        converter.representative_dataset = samples
    if quantize == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_input_type = tf.int16
        converter.inference_output_type = tf.int16
    if quantize == "int8":
        if rep is not None:
            # (Without calibration data TF's converter rejects this setting even for QAT
            # models, whose ranges are in the graph; QAT conversion needs no such hint.)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    from .tf_runtime import native_stderr_kept

    with native_stderr_kept(f"convert {model.name} ({quantize})"):
        blob = bytes(converter.convert())
    if quantize == "int8":
        info = inspect_model(blob)
        floats = [t.dtype for t in (*info.inputs, *info.outputs) if t.dtype != "int8"]
        if floats or "DEQUANTIZE" in info.ops:
            raise ValueError(
                f"{model.name!r} did not convert to full int8 (ops {', '.join(info.ops)}; "
                f"I/O types {[t.dtype for t in (*info.inputs, *info.outputs)]}): some layers "
                "have no quantization ranges. Pass representative=... to calibrate them.")
    return blob


# --------------------------------------------------------------------------------------
# Running .tflite models
# --------------------------------------------------------------------------------------


def quantize_input(x, tensor_info: TensorInfo) -> np.ndarray:
    """Float values -> the input tensor's dtype: ``round(x / scale) + zero_point``, clipped.

    For an unquantized tensor (no scale) the values are only cast to its dtype.
    ``tensor_info`` is e.g. ``inspect_model(blob).inputs[0]``.
    """
    dtype = np.dtype(tensor_info.dtype)
    x = np.asarray(x)
    if tensor_info.scale is None or dtype.kind == "f":
        return x.astype(dtype)
    q = np.round(x.astype(np.float64) / tensor_info.scale) + (tensor_info.zero_point or 0)
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_output(y, tensor_info: TensorInfo) -> np.ndarray:
    """An output tensor's values -> float32: ``(y - zero_point) * scale`` if quantized."""
    y = np.asarray(y)
    if tensor_info.scale is None or np.dtype(tensor_info.dtype).kind == "f":
        return y.astype(np.float32)
    return ((y.astype(np.float32) - (tensor_info.zero_point or 0))
            * np.float32(tensor_info.scale)).astype(np.float32)


def _litert_runner(model_bytes: bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Reference kernels: the arithmetic TFLM implements, bit for bit, for every op except
    # FULLY_CONNECTED, whose LiteRT reference kernel requantizes in floating point (TFLM:
    # fixed point), so Dense outputs can differ by one step (google-ai-edge/LiteRT#8567;
    # tests/test_interpreter_agreement.py).
    interp = Interpreter(model_content=model_bytes,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        interp.set_tensor(inp, x)
        interp.invoke()
        return np.array(interp.get_tensor(out), copy=True)

    return run


def _tflm_runner(model_bytes: bytes, arena_bytes: int, probed: ProbeResult | None = None,
                 spawn: Spawn | None = None):
    """A TFLM runner for ``model_bytes``: built on ``probed`` (a successful ProbeResult
    of this model at ``arena_bytes`` or less) without a child process, else after one
    probe (and one retry if TFLM says how many bytes are missing)."""
    from ..tflite import ProbeError, TflmRunner, probe

    if probed is None:
        probed = probe(model_bytes, arena_bytes, spawn=spawn)
        if not probed.ok and probed.missing_bytes:  # one retry with what TFLM asked for
            arena_bytes = arena_bytes + probed.missing_bytes + 1024
            probed = probe(model_bytes, arena_bytes, spawn=spawn)
    if not probed.ok:
        raise ProbeError(f"TFLite Micro cannot run this model: {probed.error}", probed)
    runner = TflmRunner(model_bytes, max(arena_bytes, probed.arena_limit), probed=probed)

    def run(x: np.ndarray) -> np.ndarray:
        return runner.invoke(x)[0]

    return run


def host_runner(model_bytes: bytes, runtime: Literal["tflite-micro", "litert"] = "tflite-micro",
                *, arena_bytes: int | None = None):
    """``run(x) -> output``: one single-input model's interpreter on this machine, built once
    (TFLite Micro is probed in a child process first, as :func:`predict_tflite` does) for
    repeated calls with one batch of *already quantized* input (``quantize_input``); the
    output is returned raw (``dequantize_output`` it). Errors as :func:`predict_tflite`'s."""
    check_runtime(runtime)
    model_bytes = bytes(model_bytes)
    if runtime == "litert":
        return _litert_runner(model_bytes)
    return _tflm_runner(model_bytes, int(arena_bytes or DEFAULT_ARENA_BYTES))


def check_runtime(runtime: str) -> str:
    """``runtime`` if it names an interpreter the workbench runs models in, else ValueError.

    The names are the board catalog's (:data:`workbench.boards.RUNTIMES`): ``"tflite-micro"``
    and ``"litert"``, so a board's ``runtime`` can be passed as it is.
    """
    from ..boards import RUNTIMES

    if runtime not in RUNTIMES:
        hint = " (TensorFlow Lite Micro is 'tflite-micro')" if runtime == "tflm" else ""
        raise ValueError(f"runtime must be one of {', '.join(map(repr, RUNTIMES))}, "
                         f"got {runtime!r}{hint}")
    return runtime


def predict_tflite(model_bytes: bytes, X, runtime: Literal["tflite-micro", "litert"] = "tflite-micro", *,
                   arena_bytes: int | None = None,
                   latencies_ms: list[float] | None = None,
                   probed: ProbeResult | None = None,
                   spawn: Spawn | None = None) -> np.ndarray:
    """Run every sample of ``X`` through a real interpreter; return float outputs.

    Inputs are quantized with the model's input scale and zero point (for int8
    models), fed one batch of the model's fixed batch size at a time (the last
    batch padded), and outputs dequantized to float32.

    Args:
        model_bytes: a single-input, single-output .tflite model.
        X: float inputs, shape ``(n, *input_shape)`` (the model's shape without
            its batch dimension).
        runtime: ``"tflite-micro"``: TensorFlow Lite Micro, the interpreter on the board
            (probed in a child process first, so a crash cannot take this process
            down). ``"litert"``: LiteRT (TFLite) with its reference kernels.
        arena_bytes: TFLM tensor arena; default :data:`DEFAULT_ARENA_BYTES`
            (raised once if TFLM says how many bytes are missing).
        latencies_ms: if given, the host wall time of each invoke (one per batch)
            is appended to it, in milliseconds.
        probed: for ``"tflite-micro"``, a successful :class:`workbench.tflite.ProbeResult` of
            this model at ``arena_bytes`` or less (e.g. ``min_arena(...).probe``):
            then the model is not probed again.
        spawn: starts the probe's child process (default :class:`subprocess.Popen`).

    Returns:
        float32 array of shape ``(n, *output_shape)``.

    Raises:
        ModelError: malformed model, or TFLM cannot run it (a
            :class:`workbench.tflite.ProbeError`; its ``result.failure`` says why).
        ValueError: bad runtime, a model with several inputs or outputs, or ``X``
            of the wrong shape.
    """
    check_runtime(runtime)
    info = inspect_model(model_bytes)
    if len(info.inputs) != 1 or len(info.outputs) != 1:
        raise ValueError(
            f"predict_tflite runs single-input, single-output models; this one has "
            f"{len(info.inputs)} input(s) and {len(info.outputs)} output(s)")
    tin, tout = info.inputs[0], info.outputs[0]
    batch, sample_shape = tin.shape[0], tuple(tin.shape[1:])
    X = np.asarray(X)
    if X.ndim == len(sample_shape):
        X = X[None]
    if X.shape[1:] != sample_shape:
        raise ValueError(f"X must have shape (n, {', '.join(map(str, sample_shape))}) for "
                         f"this model, got {X.shape}")
    model_bytes = bytes(model_bytes)
    if runtime == "litert":
        run = _litert_runner(model_bytes)
    else:
        run = _tflm_runner(model_bytes, int(arena_bytes or DEFAULT_ARENA_BYTES), probed, spawn)
    n = len(X)
    outs = []
    for start in range(0, n, batch):
        chunk = X[start: start + batch]
        if len(chunk) < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), 0)])
        q = quantize_input(chunk, tin).reshape(tin.shape)
        t0 = time.perf_counter()
        y = run(q)
        if latencies_ms is not None:
            latencies_ms.append((time.perf_counter() - t0) * 1e3)
        outs.append(dequantize_output(np.asarray(y).reshape(tout.shape), tout))
    if not outs:
        return np.zeros((0, *tout.shape[1:]), np.float32)
    return np.concatenate(outs)[:n]
