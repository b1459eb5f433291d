"""ONNX sources: converted to a TensorFlow SavedModel by ``onnx2tf`` (the ``onnx`` extra) in
a child process, then to .tflite from its serving signature (:mod:`.keras_import`). onnx2tf
seeds every random generator, silences all warnings and switches TensorFlow to
deterministic ops when imported; running it in a child keeps all of that out of this
process. ONNX loads only when :func:`_from_onnx` runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .imported_model import _ANSI, ImportedModel, ModelImportError, _last_line, _last_nonempty
from .keras_import import _convert_signature

#: What to run when the ONNX converter is missing.
ONNX_INSTALL_HINT = "pip install 'tinyml-workbench[onnx]'"
_ONNX_MODULES = ("onnx", "onnx2tf", "onnx_graphsurgeon", "sng4onnx")

# Runs in a child process: onnx2tf changes global state when imported (seeds every RNG,
# ignores all warnings, enables deterministic ops, sets TensorFlow's log levels), prints
# freely, and calls sys.exit() on errors.
_ONNX_CHILD = r"""
import contextlib, io, json, sys, traceback
onnx_path, out_dir, result_path, batch = sys.argv[1:5]
log = io.StringIO()
result = {"ok": False}
try:
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        import onnx2tf
        result["version"] = onnx2tf.__version__
        import tensorflow as tf
        kwargs = dict(input_onnx_file_path=onnx_path, output_folder_path=out_dir + "/onnx2tf",
                      non_verbose=True, not_use_onnxsim=True, disable_model_save=True)
        if batch:
            kwargs["batch_size"] = int(batch)
        model = onnx2tf.convert(**kwargs)
        shape = lambda t: [None if d is None else int(d) for d in t.shape]
        result["inputs"] = [shape(t) for t in model.inputs]
        result["outputs"] = [shape(t) for t in model.outputs]
        tf.saved_model.save(model, out_dir + "/saved_model")
        result["ok"] = True
except BaseException as exc:  # onnx2tf prints its error, then calls sys.exit(1)
    result["error"] = f"{type(exc).__name__}: {exc}"
    result["traceback"] = traceback.format_exc()[-4000:]
result["log"] = log.getvalue()[-20000:]
with open(result_path, "w") as fh:
    json.dump(result, fh)
"""


def _from_onnx(path: Path, quantize, representative, timeout_s: float) -> ImportedModel:
    """Convert the ONNX file ``path`` (``timeout_s``: the child's wall-clock limit, which
    :func:`~workbench.optimize.importers.load_model` takes from
    :data:`~workbench.optimize.importers.ONNX_CONVERT_TIMEOUT_S` at each call)."""
    source = str(path)
    missing = [m for m in _ONNX_MODULES if not _importable(m)]
    if missing:
        raise ModelImportError(
            f"converting ONNX models needs onnx2tf, which is not installed here (missing: "
            f"{', '.join(missing)}). Install it with {ONNX_INSTALL_HINT}, then restart the "
            "kernel; or convert the model to .tflite elsewhere and import that file.")
    import onnx

    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ModelImportError(
            f"{source} is not a valid ONNX model: {_last_line(exc)}. Export it again "
            "(e.g. torch.onnx.export) and check that the file was copied completely.") from exc
    name, dims = _onnx_single_input(proto, source)
    onnx_in_shape = [1 if d is None else d for d in dims]
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                default="?")
    notes = [f"ONNX model (opset {opset}), input {name!r} "
             f"{tuple('?' if d is None else d for d in dims)}"]
    if dims[0] is None:
        notes.append("ONNX batch dimension fixed to 1")
    elif dims[0] != 1:
        raise ModelImportError(
            f"{source}: input {name!r} has a fixed batch of {dims[0]}; microcontrollers run "
            "one sample at a time. Export the model with batch 1 (or a dynamic batch).")

    with tempfile.TemporaryDirectory(prefix="workbench-onnx-") as tmp:
        tmp = Path(tmp)
        copy = tmp / "model.onnx"  # onnx2tf rewrites its input file in place
        onnx.save(proto, str(copy))
        result_path = tmp / "result.json"
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3",
                   CUDA_VISIBLE_DEVICES="-1")
        args = [sys.executable, "-c", _ONNX_CHILD, str(copy), str(tmp),
                str(result_path), "1" if dims[0] is None else ""]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, env=env,
                                  timeout=timeout_s, cwd=tmp)
        except subprocess.TimeoutExpired as exc:
            raise ModelImportError(
                f"{source}: onnx2tf did not finish within {timeout_s:.0f} s. "
                "Simplify the model first (pip install onnxsim; onnxsim in.onnx out.onnx) "
                "or raise importers.ONNX_CONVERT_TIMEOUT_S.") from exc
        if not result_path.is_file():
            raise ModelImportError(
                f"{source}: the onnx2tf process died (exit code {proc.returncode}) before "
                f"reporting: {_last_nonempty(proc.stderr) or 'no output'}. Check that "
                f"{ONNX_INSTALL_HINT} installed cleanly.")
        result = json.loads(result_path.read_text())
        version = result.get("version", "?")
        if not result.get("ok"):
            raise ModelImportError(
                f"{source}: onnx2tf {version} could not convert the model: "
                f"{_onnx_error_line(result)}. If an operator is not supported, export the "
                "model with another opset or without that operator, or simplify it first "
                "(pip install onnxsim; onnxsim in.onnx out.onnx); or convert it to .tflite "
                "elsewhere and import that file.")
        notes.append(f"converted from ONNX with onnx2tf {version}")
        tf_in, tf_out = result["inputs"][0], result["outputs"]
        if tf_in[1:] != onnx_in_shape[1:]:
            notes.append(f"onnx2tf changed the input layout from {tuple(onnx_in_shape)} "
                         f"(channels-first) to {tuple(tf_in)} (channels-last): feed "
                         "channels-last data")
        onnx_out = [_onnx_dims(o) for o in proto.graph.output]
        if any(list(o[1:]) != t[1:] for o, t in zip(onnx_out, tf_out)):
            notes.append(f"outputs are {', '.join(str(tuple(t)) for t in tf_out)} "
                         "(channels-last, as onnx2tf writes them)")
        if representative is not None:
            representative = _onnx_representative(representative, onnx_in_shape, tf_in, notes)
        blob, sig_notes = _convert_signature(tmp / "saved_model", source, quantize,
                                             representative)
    notes += [n for n in sig_notes if not n.startswith("converted the ")]
    return ImportedModel(blob, source, "onnx", None, notes)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # e.g. sys.modules[module] is None: blocked
        return False


def _onnx_dims(value_info) -> list:
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in tt.shape.dim]


def _onnx_single_input(proto, source: str):
    import onnx

    initializers = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelImportError(
            f"{source}: the workbench imports single-input models; this one has "
            f"{len(inputs)} inputs ({', '.join(i.name for i in inputs) or 'none'}). Export a "
            "model with one input tensor.")
    inp = inputs[0]
    elem = inp.type.tensor_type.elem_type
    if elem != onnx.TensorProto.FLOAT:
        raise ModelImportError(
            f"{source}: input {inp.name!r} is {onnx.TensorProto.DataType.Name(elem)}; the "
            "workbench imports models with float32 inputs. Export the model with a float "
            "input (quantization happens here, with quantize='int8').")
    dims = _onnx_dims(inp)
    if not dims:
        raise ModelImportError(
            f"{source}: input {inp.name!r} has no declared shape. Export the model with a "
            "fixed input shape (only the batch dimension may be dynamic).")
    if any(d is None for d in dims[1:]):
        shown = tuple(d.dim_value if d.dim_value > 0 else (d.dim_param or "?")
                      for d in inp.type.tensor_type.shape.dim)
        raise ModelImportError(
            f"{source}: input {inp.name!r} has shape {shown}, with unknown dimensions besides "
            "the batch; a microcontroller model needs fixed sizes. Export it with a fixed "
            "input shape (in torch.onnx.export, list only the batch in dynamic_axes).")
    return inp.name, dims


def _onnx_representative(data, onnx_shape, tf_shape, notes):
    arr = np.asarray(data, dtype=np.float32)
    sample_onnx, sample_tf = tuple(onnx_shape[1:]), tuple(tf_shape[1:])
    if (sample_onnx != sample_tf and arr.ndim == len(onnx_shape)
            and arr.shape[1:] == sample_onnx and len(sample_onnx) >= 2):
        moved = np.moveaxis(arr, 1, -1)
        if moved.shape[1:] == sample_tf:
            notes.append("representative data transposed from channels-first to channels-last")
            return moved
    return arr


def _onnx_error_line(result: dict) -> str:
    lines = [_ANSI.sub("", ln).strip() for ln in result.get("log", "").splitlines()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    if errors:
        return errors[-1].removeprefix("ERROR:").strip()
    return result.get("error") or _last_nonempty(result.get("traceback", "")) or "no error text"
