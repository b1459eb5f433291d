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

This module is the dispatch (:func:`load_model`, and .tflite sources); the rest lives beside
it and its public names are re-exported here: :mod:`.imported_model` (:class:`ImportedModel`
and the errors), :mod:`.keras_import` (Keras objects and files, SavedModels),
:mod:`.onnx_import` (ONNX through onnx2tf) and :mod:`.model_trust` (the ``Lambda`` check).

Importing this module imports neither TensorFlow nor ONNX.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..tflite import ModelError, inspect_model
from .imported_model import ImportedModel, ModelImportError, UntrustedModelError
from .keras_import import (
    _from_keras_file,
    _from_keras_object,
    _from_saved_model,
    _keras_flavour,
    _keras_zip_version,
)
from .model_trust import _HDF5_MAGIC
from .onnx_import import ONNX_INSTALL_HINT, _from_onnx

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
#: What :func:`load_model` accepts, for error messages.
ACCEPTED = ("the bytes of a .tflite model; a path to a .tflite, .keras, .h5 or .onnx file "
            "or to a SavedModel directory; or a Keras model object")

_QUANTIZE_MODES = ("float", "int8", "dynamic")
_KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
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
        return _from_onnx(path, quantize, representative, ONNX_CONVERT_TIMEOUT_S)
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
