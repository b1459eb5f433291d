"""What :func:`~workbench.optimize.importers.load_model` returns and how it fails:
:class:`ImportedModel`, :class:`ModelImportError`, :class:`UntrustedModelError`, and the
helpers that shorten TensorFlow's and onnx2tf's error text for those messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import WorkbenchError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


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
