"""Keras and TensorFlow sources: Keras model objects (``tf_keras`` or Keras 3), ``.keras``
and ``.h5`` files (checked for code by :mod:`.model_trust` first unless trusted), and
SavedModel directories, converted to .tflite with
:func:`workbench.train.export.to_tflite`. A SavedModel not written by Keras, or a Keras 3
model, is converted from its serving signature, wrapped in a tf_keras model with the batch
fixed to 1. TensorFlow loads only when one of these functions runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

from .imported_model import ImportedModel, ModelImportError, UntrustedModelError, _last_line, _shape_str
from .model_trust import _HDF5_MAGIC, _TRUST_HINT, _refuse_code_in_hdf5


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
