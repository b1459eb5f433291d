"""What the deploy verbs accept as a model, read once the same way.

:func:`model_bytes` turns a registry version, a :class:`workbench.optimize.Variant` (or
anything with ``.tflite`` bytes and a ``.name``), ``.tflite`` bytes or the path of a
``.tflite`` file into the bytes and a name. It reads a file; nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["model_bytes"]


def model_bytes(model: Any, *, verb: str,
                error: type[Exception] | None = None) -> tuple[bytes, str]:
    """``(bytes, name)`` of ``model``; ``verb`` says what the caller does ("gate", "package").

    Raises ``error`` (default ValueError) when a path names no file, and ``error`` (default
    TypeError) for a model of another type; both messages say what to pass instead.
    """
    if hasattr(model, "read_model") and hasattr(model, "label"):  # a registry ModelVersion
        return model.read_model(), str(model.label)
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "model"
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise (error or ValueError)(
                f"no .tflite file at {path}: pass the model's bytes, a Variant or the path of "
                "a .tflite file")
        return path.read_bytes(), path.stem
    blob = getattr(model, "tflite", None)
    if isinstance(blob, (bytes, bytearray)):
        return bytes(blob), str(getattr(model, "name", "model"))
    raise (error or TypeError)(
        f"cannot {verb} a {type(model).__name__}: pass a ModelVersion, a Variant (or anything "
        "with .tflite bytes), .tflite bytes, or the path of a .tflite file")
