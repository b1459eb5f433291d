"""Model files that carry code: a Keras ``Lambda`` layer stores a Python function, which
Keras runs when it rebuilds the model, and its safe mode guards ``.keras`` files only. This
module reads a legacy ``.h5`` file's model configuration with h5py, before Keras sees the
file, and refuses one that holds such layers (:class:`UntrustedModelError`).
"""

from __future__ import annotations

import json
from pathlib import Path

from .imported_model import UntrustedModelError

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


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
