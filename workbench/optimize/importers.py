"""Import existing models: any .tflite, a Keras model or file, a SavedModel, an ONNX file.

:func:`load_model` takes what a user already has and returns an :class:`ImportedModel`
whose ``tflite`` bytes the optimize step can measure and the deploy step can ship:

- ``.tflite`` bytes or file: validated with :func:`workbench.tflite.inspect_model`
  and passed through unchanged.
- a Keras model object, or a ``.keras`` / ``.h5`` file: converted with
  :func:`workbench.train.export.to_tflite` (batch fixed to 1). Files are read with
  ``tf_keras`` (legacy Keras 2, the Keras this workbench trains with); a ``.keras``
  file written by Keras 3 is read with Keras 3 and converted through its exported
  SavedModel.
- a SavedModel directory (or its ``saved_model.pb``): a ``tf_keras`` SavedModel is
  loaded as a Keras model; any other is converted from its serving signature, traced
  with the batch dimension fixed to 1.
- an ``.onnx`` file: converted to TensorFlow by ``onnx2tf`` (the ``onnx`` extra),
  in a child process (onnx2tf seeds every random generator, silences all warnings
  and switches TensorFlow to deterministic ops when imported; none of that reaches
  this process), then converted like a SavedModel.

``quantize`` and ``representative`` apply wherever a conversion happens, exactly as
for :func:`~workbench.train.export.to_tflite`. Anything that cannot be imported
raises :class:`ModelImportError`, whose message says what is wrong and what to do.

Model files can carry code: a Keras ``Lambda`` layer stores its Python function, and
Keras runs it when it rebuilds the model. Keras refuses that in ``.keras`` files (safe
mode) but not in legacy ``.h5`` files, so :func:`load_model` reads an HDF5 file's model
configuration (JSON, with h5py, before Keras sees the file) and raises
:class:`UntrustedModelError` if it holds a ``Lambda`` layer, unless the caller says the
file is trusted (``trusted=True``; ``workbench report --trust-model``), which also lifts
Keras's safe mode for ``.keras`` files.

Usage::

    from workbench.optimize.importers import load_model
    imp = load_model("kws.onnx", quantize="int8", representative=X_train)
    imp.kind, imp.notes            # "onnx", ["converted from ONNX with onnx2tf 1.28.8", ...]
    predict_tflite(imp.tflite, X_test, runtime="tflite-micro")

Importing this module imports neither TensorFlow nor ONNX.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import WorkbenchError
from ..tflite import ModelError, inspect_model

__all__ = [
    "ModelImportError",
    "UntrustedModelError",
    "ImportedModel",
    "load_model",
    "ACCEPTED",
    "ONNX_CONVERT_TIMEOUT_S",
    "ONNX_INSTALL_HINT",
]

#: Wall-clock limit for the onnx2tf child process, in seconds.
ONNX_CONVERT_TIMEOUT_S = 600.0
#: What to run when the ONNX converter is missing.
ONNX_INSTALL_HINT = "pip install 'tinyml-workbench[onnx]'"
#: What :func:`load_model` accepts, for error messages.
ACCEPTED = ("the bytes of a .tflite model; a path to a .tflite, .keras, .h5 or .onnx file "
            "or to a SavedModel directory; or a Keras model object")

_QUANTIZE_MODES = ("float", "int8", "dynamic")
_KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_ONNX_MODULES = ("onnx", "onnx2tf", "onnx_graphsurgeon", "sng4onnx")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SUFFIX_HINTS = {
    ".pt": "a PyTorch file: export it with torch.onnx.export(model, example, 'model.onnx') "
           "and import the .onnx file",
    ".pth": "a PyTorch file: export it with torch.onnx.export(model, example, 'model.onnx') "
            "and import the .onnx file",
    ".pb": "a TensorFlow 1 frozen graph: load it in TensorFlow and save a SavedModel "
           "(tf.saved_model.save), then import that directory",
    ".zip": "a zip archive: extract it and import the model file inside",
    ".json": "a model architecture without weights: import the .keras or .h5 file instead",
}


class ModelImportError(WorkbenchError, ValueError):
    """A model cannot be imported; the message says what is wrong and what to do.

    A ``ValueError``, like :class:`workbench.tflite.ModelError`, so callers that
    already handle bad arguments handle it too.
    """


class UntrustedModelError(ModelImportError):
    """A model file that would run code of its own when loaded (a Keras ``Lambda`` layer
    in a legacy ``.h5`` file), refused because the caller did not say it is trusted.

    The message names the layers and says how to load the file if it is trusted.
    """


@dataclass
class ImportedModel:
    """A model brought into the workbench, as .tflite bytes.

    ``kind`` is what the source was: ``"tflite"``, ``"keras"``, ``"savedmodel"`` or
    ``"onnx"``. ``keras_model`` is the Keras model when one was loaded (a Keras
    object, file, or a SavedModel written by Keras), else None. ``notes`` say in
    plain words what was done (e.g. ``"batch fixed to 1"``).
    """

    tflite: bytes                 #: the model; batch fixed to 1 where we converted
    source: str                   #: the path, "<bytes>" or "<keras model>"
    kind: str                     #: "tflite" | "keras" | "savedmodel" | "onnx"
    keras_model: object | None = None
    notes: list[str] = field(default_factory=list)


def load_model(src, *, quantize: str = "float", representative=None,
               trusted: bool = False) -> ImportedModel:
    """Import a model from a .tflite, Keras, SavedModel or ONNX source.

    Args:
        src: ``bytes``/``bytearray`` of a .tflite model; a path (``str`` or
            ``Path``) to a ``.tflite``, ``.keras``, ``.h5`` or ``.onnx`` file or to a
            SavedModel directory (or its ``saved_model.pb``); or a Keras model
            (``tf_keras`` or Keras 3).
        quantize: for sources that are converted (everything but .tflite):
            ``"float"``, ``"int8"`` (needs ``representative`` unless the model is
            quantization-aware) or ``"dynamic"``, as in
            :func:`workbench.train.export.to_tflite`.
        representative: int8 calibration inputs, shape ``(n, *input_shape)``. For an
            ONNX model whose layout onnx2tf changed to channels-last, data in the
            ONNX (channels-first) layout is transposed for you.
        trusted: the file comes from someone whose code you would run. Only then are
            Keras files with ``Lambda`` layers loaded: their Python code runs when
            Keras rebuilds the model (``.h5``; ``.keras`` with Keras's safe mode off).

    Returns:
        An :class:`ImportedModel`. Converted models have a batch dimension of 1.

    Raises:
        UntrustedModelError: a ``.h5`` file holding ``Lambda`` layers, and ``trusted``
            is False. Nothing in the file was run.
        ModelImportError: missing file; unknown file type; a directory that is not a
            SavedModel; bytes that are not a valid .tflite; a Keras file that does not
            load; ONNX without its converter installed, or a conversion that fails;
            a model with several inputs or non-float inputs; bad ``quantize`` or
            ``representative``. The message says what to do.
    """
    if quantize not in _QUANTIZE_MODES:
        raise ModelImportError(f"quantize must be one of {', '.join(map(repr, _QUANTIZE_MODES))}, "
                               f"got {quantize!r}")
    if isinstance(src, (bytes, bytearray, memoryview)):
        return _from_tflite(bytes(src), "<bytes>", quantize, representative)
    if isinstance(src, (str, os.PathLike)):
        return _from_path(src, quantize, representative, trusted)
    flavour = _keras_flavour(src)
    if flavour is not None:
        return _from_keras_object(src, flavour, "<keras model>", "keras", quantize,
                                  representative, [])
    raise ModelImportError(f"cannot import a {type(src).__module__}.{type(src).__qualname__}: "
                           f"load_model accepts {ACCEPTED}.")


# --------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------


def _from_path(src, quantize, representative, trusted: bool) -> ImportedModel:
    path = Path(src).expanduser()
    if not path.exists():
        where = "" if path.is_absolute() else f" (relative paths start from {Path.cwd()})"
        raise ModelImportError(f"no such file or directory: {str(src)!r}{where}. Check the path.")
    if path.is_dir():
        if any((path / name).is_file() for name in _SAVED_MODEL_FILES):
            return _from_saved_model(path, str(path), quantize, representative, [], trusted)
        raise ModelImportError(_not_a_saved_model(path))
    if path.name in _SAVED_MODEL_FILES:
        return _from_saved_model(path.parent, str(path.parent), quantize, representative,
                                 [f"imported the SavedModel directory {path.parent}"], trusted)
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return _from_tflite(path.read_bytes(), str(path), quantize, representative)
    if suffix in _KERAS_SUFFIXES:
        return _from_keras_file(path, quantize, representative, [], trusted)
    if suffix == ".onnx":
        return _from_onnx(path, quantize, representative)
    # An unexpected name: recognise the content if we can.
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[4:8] == b"TFL3":
        return _from_tflite(path.read_bytes(), str(path), quantize, representative,
                            [f"recognised {path.name} as a .tflite model by its content"])
    if head[:8] == _HDF5_MAGIC:
        return _from_keras_file(path, quantize, representative,
                                [f"recognised {path.name} as a Keras HDF5 file by its content"],
                                trusted)
    if head[:4] == b"PK\x03\x04" and _keras_zip_version(path) is not None:
        return _from_keras_file(path, quantize, representative,
                                [f"recognised {path.name} as a .keras archive by its content"],
                                trusted)
    hint = _SUFFIX_HINTS.get(suffix)
    what = f"{path.name} looks like {hint}" if hint else (
        f"don't know how to import {path.name} (suffix {suffix or 'none'!r})")
    raise ModelImportError(f"{what}. load_model accepts {ACCEPTED}.")


def _not_a_saved_model(path: Path) -> str:
    found = sorted(p.name for p in path.iterdir()
                   if p.suffix.lower() in (".tflite", ".onnx", *_KERAS_SUFFIXES)
                   or (p.is_dir() and any((p / n).is_file() for n in _SAVED_MODEL_FILES)))
    inside = (f" It contains {', '.join(found[:8])}{', ...' if len(found) > 8 else ''}: "
              "pass one of those instead.") if found else ""
    return (f"{path} is a directory but not a SavedModel (it has no saved_model.pb).{inside} "
            f"load_model accepts {ACCEPTED}.")


def _from_tflite(data: bytes, source: str, quantize, representative,
                 notes: list[str] | None = None) -> ImportedModel:
    try:
        info = inspect_model(data)
    except ModelError as exc:
        raise ModelImportError(f"{source}: {exc}") from exc
    if quantize != "float" or representative is not None:
        raise ModelImportError(
            f"{source} is already a .tflite model, so it is not converted again and "
            f"quantize={quantize!r}/representative cannot apply. Leave them at their defaults, "
            "or import the original Keras, SavedModel or ONNX model to quantize it.")
    notes = list(notes or [])
    shapes = ", ".join(f"{t.shape} {t.dtype}" for t in info.inputs)
    notes.append(f"validated a {info.size_bytes}-byte .tflite model: input {shapes}; "
                 f"ops {', '.join(info.ops)}")
    if info.has_dynamic_batch:
        notes.append("the model declares a dynamic batch (-1); TFLite Micro runs it with the "
                     "static shape above")
    return ImportedModel(data, source, "tflite", None, notes)


def _from_keras_object(model, flavour: str, source: str, kind: str, quantize,
                       representative, notes: list[str]) -> ImportedModel:
    if flavour == "keras3":
        # Keras 3 variables are not frozen when a Keras 3 model is traced directly (the
        # .tflite would read uninitialized resource variables); its exported SavedModel
        # converts cleanly.
        with tempfile.TemporaryDirectory(prefix="workbench-keras3-") as tmp:
            with contextlib.redirect_stdout(io.StringIO()):  # "Saved artifact at ..."
                try:
                    model.export(tmp, format="tf_saved_model")
                except Exception as exc:
                    raise ModelImportError(
                        f"{source}: Keras 3 could not export the model as a SavedModel: "
                        f"{_last_line(exc)}. Check that the model has been built (called on "
                        "data or given an Input).") from exc
            blob, sig_notes = _convert_signature(tmp, source, quantize, representative)
        notes = [*notes, "Keras 3 model: exported as a SavedModel and converted from its "
                 "serving signature", *sig_notes]
        return ImportedModel(blob, source, kind, model, notes)
    blob = _convert_keras(model, source, quantize, representative)
    notes = [*notes, *_conversion_notes(quantize)]
    return ImportedModel(blob, source, kind, model, notes)


def _from_keras_file(path: Path, quantize, representative, notes: list[str],
                     trusted: bool) -> ImportedModel:
    source = str(path)
    if not trusted:
        _refuse_code_in_hdf5(path)
    writer = _keras_writer(path)
    errors = []
    loaders = [("tf_keras", _load_tf_keras)]
    if writer and writer.startswith("3"):
        loaders.insert(0, ("Keras 3", _load_keras3))
    for name, loader in loaders:
        try:
            model = loader(path, trusted)
        except Exception as exc:  # each loader fails its own way; report them all
            errors.append(f"{name}: {_last_line(exc)}")
            continue
        by = f" (written by Keras {writer})" if writer else ""
        notes = [*notes, f"loaded with {name}{by}"]
        return _from_keras_object(model, "keras3" if name == "Keras 3" else "tf_keras",
                                  source, "keras", quantize, representative, notes)
    if not trusted and any("safe_mode" in e for e in errors):
        raise UntrustedModelError(
            f"{path} holds a Lambda layer (Python code stored in the file), which Keras's safe "
            "mode refused to load. Replace the Lambda layers with ordinary layers and save "
            "the model again; or, " + _TRUST_HINT)
    by = f" The file was written by Keras {writer}." if writer else ""
    k3 = (" Keras 3 files need Keras 3 (pip install 'keras>=3') to load." if writer
          and writer.startswith("3") and importlib.util.find_spec("keras") is None else "")
    raise ModelImportError(
        f"could not load {path} as a Keras model ({'; '.join(errors)}).{by}{k3} This workbench "
        "reads Keras files with tf_keras 2.x (legacy Keras 2: .keras or .h5), and .keras files "
        "written by Keras 3 with Keras 3. If the model has custom layers, load it yourself "
        "with its custom_objects and pass the model object; or save it as a SavedModel "
        "(tf_keras: model.save(dir); Keras 3: model.export(dir)) and import that directory.")


def _from_saved_model(path: Path, source: str, quantize, representative,
                      notes: list[str], trusted: bool) -> ImportedModel:
    notes = list(notes)
    if (path / "keras_metadata.pb").is_file():  # written by tf_keras: load it as Keras
        try:
            model = _load_tf_keras(path, trusted)
        except Exception as exc:
            notes.append(f"could not load it as a tf_keras model ({_last_line(exc)}); "
                         "converted its serving signature instead")
        else:
            notes.append("loaded with tf_keras (a Keras SavedModel)")
            return _from_keras_object(model, "tf_keras", source, "savedmodel", quantize,
                                      representative, notes)
    blob, sig_notes = _convert_signature(path, source, quantize, representative)
    return ImportedModel(blob, source, "savedmodel", None, [*notes, *sig_notes])


# --------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------

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


def _from_onnx(path: Path, quantize, representative) -> ImportedModel:
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
                                  timeout=ONNX_CONVERT_TIMEOUT_S, cwd=tmp)
        except subprocess.TimeoutExpired as exc:
            raise ModelImportError(
                f"{source}: onnx2tf did not finish within {ONNX_CONVERT_TIMEOUT_S:.0f} s. "
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


# --------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------


def _conversion_notes(quantize: str) -> list[str]:
    what = {"float": "float32", "int8": "full int8 (int8 input and output)",
            "dynamic": "dynamic-range int8 weights"}[quantize]
    return [f"converted to .tflite as {what}", "batch fixed to 1"]


def _convert_keras(model, source: str, quantize, representative) -> bytes:
    from ..train.export import to_tflite

    try:
        return to_tflite(model, quantize=quantize, representative=representative)
    except ValueError as exc:  # to_tflite's own messages say what to do
        raise ModelImportError(f"{source}: {exc}") from exc
    except Exception as exc:
        raise ModelImportError(
            f"{source}: TensorFlow Lite could not convert the model: {_last_line(exc)}. "
            "Layers or ops with no TFLite builtin cannot run on a microcontroller; replace "
            "them, or convert with quantize='float' to see whether quantization is the "
            "problem.") from exc


def _convert_signature(path, source: str, quantize, representative):
    """A SavedModel's serving signature -> (.tflite bytes, notes), batch fixed to 1."""
    from ..train.tf_runtime import keras as _keras
    from ..train.tf_runtime import tf as _tf

    tf, keras = _tf(), _keras()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise ModelImportError(
            f"{source}: TensorFlow {tf.__version__} could not load the SavedModel: "
            f"{_last_line(exc)}. It may need a newer TensorFlow or custom ops; re-save it "
            "with this TensorFlow, or convert it to .tflite where it was made.") from exc
    signatures = dict(loaded.signatures)
    if not signatures:
        raise ModelImportError(
            f"{source}: the SavedModel has no signatures, so there is no function to convert. "
            "Save it with one: tf.saved_model.save(obj, dir, signatures="
            "obj.__call__.get_concrete_function(tf.TensorSpec([None, ...], tf.float32))).")
    if "serving_default" in signatures:
        sig_name = "serving_default"
    elif len(signatures) == 1:
        sig_name = next(iter(signatures))
    else:
        raise ModelImportError(
            f"{source}: the SavedModel has signatures {', '.join(sorted(signatures))} and "
            "none is 'serving_default'. Save it again with the one to deploy as "
            "signatures={'serving_default': ...}.")
    sig = signatures[sig_name]
    _, kwargs = sig.structured_input_signature
    if len(kwargs) != 1:
        raise ModelImportError(
            f"{source}: the workbench imports single-input models; signature {sig_name!r} "
            f"has {len(kwargs)} inputs ({', '.join(sorted(kwargs)) or 'none'}). Save a "
            "signature with one input tensor.")
    (in_name, spec), = kwargs.items()
    shape = spec.shape
    if shape.rank is None or shape.rank == 0 or any(d is None for d in shape[1:]):
        raise ModelImportError(
            f"{source}: input {in_name!r} of signature {sig_name!r} has shape "
            f"{_shape_str(shape)}; only the batch dimension may be unknown. Save the "
            "signature with a fixed input shape, e.g. tf.TensorSpec([None, 100, 6]).")
    if shape[0] not in (None, 1):
        raise ModelImportError(
            f"{source}: signature {sig_name!r} fixes the batch to {shape[0]}; microcontrollers "
            "run one sample at a time. Save it with batch None or 1.")
    if spec.dtype != tf.float32:
        raise ModelImportError(
            f"{source}: input {in_name!r} is {spec.dtype.name}; the workbench imports models "
            "with float32 inputs. Save a signature that takes float32 (quantization happens "
            "here, with quantize='int8').")
    out_keys = sorted(sig.structured_outputs)
    model = _signature_model(keras, sig, in_name, tuple(shape[1:]), out_keys)
    blob = _convert_keras(model, source, quantize, representative)
    notes = [f"converted the SavedModel signature {sig_name!r} (input {in_name!r} "
             f"{_shape_str(shape)}, outputs {', '.join(out_keys)})", *_conversion_notes(quantize)]
    return blob, notes


def _signature_model(keras, sig, in_name: str, sample_shape: tuple, out_keys: list[str]):
    """A tf_keras model that calls a restored signature, so to_tflite can convert it."""

    class SignatureLayer(keras.layers.Layer):
        def __init__(self):
            super().__init__(name="saved_model_signature", trainable=False)
            self.signature_variables = list(sig.variables)  # tracked, not trained

        def call(self, x):
            out = sig(**{in_name: x})
            return out[out_keys[0]] if len(out_keys) == 1 else [out[k] for k in out_keys]

    inp = keras.Input(shape=sample_shape, name=in_name)
    return keras.Model(inp, SignatureLayer()(inp), name="saved_model")


# --------------------------------------------------------------------------------------
# Keras helpers
# --------------------------------------------------------------------------------------


def _keras_flavour(obj) -> str | None:
    """"tf_keras" or "keras3" if ``obj`` is a Keras model, else None."""
    for cls in type(obj).__mro__:
        if cls.__name__ != "Model":
            continue
        module = cls.__module__ or ""
        if module.startswith("tf_keras") or module.startswith("tensorflow.python.keras"):
            return "tf_keras"
        if module.startswith("keras"):
            keras = sys.modules.get("keras")
            version = getattr(keras, "__version__", "3")
            return "keras3" if version.startswith("3") else "tf_keras"
    return None


@contextlib.contextmanager
def _tfmot_scopes():
    """Let tf_keras deserialize quantization-aware and pruned layers (tfmot's wrappers)."""
    with contextlib.ExitStack() as stack:
        if importlib.util.find_spec("tensorflow_model_optimization") is not None:
            from ..train.tf_runtime import tfmot

            mot = tfmot()
            stack.enter_context(mot.quantization.keras.quantize_scope())
            stack.enter_context(mot.sparsity.keras.prune_scope())
        yield


def _load_tf_keras(path: Path, trusted: bool):
    from ..train.tf_runtime import keras

    with _tfmot_scopes():
        return keras().models.load_model(str(path), compile=False, safe_mode=not trusted)


def _load_keras3(path: Path, trusted: bool):
    from ..train.tf_runtime import tf

    tf()  # legacy Keras for tf.keras first; Keras 3 is the separate ``keras`` package
    import keras

    if not keras.__version__.startswith("3"):
        raise ImportError(f"the installed keras is {keras.__version__}, not Keras 3")
    return keras.saving.load_model(str(path), compile=False, safe_mode=not trusted)


def _refuse_code_in_hdf5(path: Path) -> None:
    """Raise :class:`UntrustedModelError` if the HDF5 file ``path`` holds layers with code.

    Reads only the file's ``model_config`` attribute (JSON) with h5py; Keras never sees the
    file. A file that is not HDF5, or holds no model configuration (weights only), passes:
    Keras then fails on it without running anything.
    """
    with open(path, "rb") as fh:
        if fh.read(8) != _HDF5_MAGIC:
            return
    try:
        import h5py
    except ImportError as exc:  # h5py comes with TensorFlow; without it nothing can be checked
        raise UntrustedModelError(
            f"{path} is a Keras HDF5 file, which can carry code that runs when it loads, and "
            "h5py (needed to check it first) is not installed. Install h5py, or "
            + _TRUST_HINT) from exc
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError:
        return  # not readable as HDF5: the Keras loaders report it
    if raw is None:
        return
    try:
        config = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError as exc:
        raise UntrustedModelError(
            f"{path}: its model configuration is not valid JSON, so it cannot be checked for "
            f"code ({exc}). If " + _TRUST_HINT[3:]) from exc
    found = _layers_with_code(config)
    if found:
        names = ", ".join(repr(n) for n in found[:5]) + (", ..." if len(found) > 5 else "")
        raise UntrustedModelError(
            f"{path} holds {len(found)} Lambda layer(s) ({names}): Python code stored in the "
            "file, which Keras runs when it loads a legacy .h5 model (its safe mode covers "
            ".keras files only), so it was not loaded. Replace the Lambda layers with "
            "ordinary layers and save the model again; or, " + _TRUST_HINT)


_TRUST_HINT = ("if you trust whoever made the file as you would trust their code, load it "
               "with load_model(path, trusted=True) (workbench report --trust-model).")


def _layers_with_code(config) -> list[str]:
    """Names of the layers in a Keras model config that carry Python code (``Lambda``)."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            cls = str(node.get("class_name", ""))
            inner = node.get("config")
            if cls.split(">")[-1].split(".")[-1] == "Lambda" or (
                    isinstance(inner, dict) and inner.get("function_type") == "lambda"):
                name = inner.get("name") if isinstance(inner, dict) else None
                found.append(str(name or cls))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def _keras_zip_version(path: Path) -> str | None:
    """keras_version from a .keras archive's metadata.json, or None if not a Keras zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "config.json" not in names:
                return None
            if "metadata.json" not in names:
                return ""
            return str(json.loads(zf.read("metadata.json")).get("keras_version", ""))
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def _keras_writer(path: Path) -> str:
    """The Keras version that wrote a .keras or .h5 file, or "" if it cannot be told."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:4] == b"PK\x03\x04":
        return _keras_zip_version(path) or ""
    if head == _HDF5_MAGIC and importlib.util.find_spec("h5py") is not None:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                version = f.attrs.get("keras_version", "")
        except OSError:
            return ""
        return version.decode() if isinstance(version, bytes) else str(version)
    return ""


# --------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------


def _last_nonempty(text: str) -> str:
    lines = [ln.strip() for ln in _ANSI.sub("", text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _last_line(exc: BaseException) -> str:
    """The informative last line of an exception (TensorFlow's are pages long)."""
    text = _last_nonempty(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _shape_str(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
