"""TFLite models: reading and verifying ``.tflite`` files, probing them in TFLite Micro
in a child process, the smallest-arena search and the in-process runner.

Call order: :func:`inspect_model` (pure Python, one bounds-checked parse; refuses
malformed bytes) → :func:`probe` / :func:`min_arena` (child processes; a crash cannot
hurt the caller; a failure carries its :class:`ProbeFailure`) → :class:`TflmRunner`
(in-process, only for a model that probed well: pass it the probe's result and the
model is not probed again). No TensorFlow is imported; ``tflite_micro`` loads only in
the runner and the probe's child.

Modules: :mod:`.schema` (the flatbuffer schema, enum and dtype names), :mod:`.model`
(:func:`inspect_model`), :mod:`.hybrid` (:func:`hybrid_ops`: dynamic-range ops TFLM has
no kernels for), :mod:`.probing`, :mod:`.arena` (:func:`min_arena`; *needed*
versus *used* arena), :mod:`.runner`.
"""

from __future__ import annotations

from .arena import ARENA_ALIGNMENT, ArenaFit, min_arena
from .hybrid import HYBRID_MESSAGE, hybrid_ops
from .model import ModelError, ModelGraph, ModelInfo, OperatorInfo, TensorInfo, inspect_model
from .probing import (
    DEFAULT_PROBE_TIMEOUT_S,
    ProbeError,
    ProbeFailure,
    ProbeResult,
    ProbeSession,
    Spawn,
    prewarm,
    probe,
)
from .runner import TflmRunner

__all__ = [
    "ARENA_ALIGNMENT",
    "DEFAULT_PROBE_TIMEOUT_S",
    "HYBRID_MESSAGE",
    "ArenaFit",
    "ModelError",
    "ModelGraph",
    "ModelInfo",
    "OperatorInfo",
    "ProbeError",
    "ProbeFailure",
    "ProbeResult",
    "ProbeSession",
    "Spawn",
    "TensorInfo",
    "TflmRunner",
    "hybrid_ops",
    "inspect_model",
    "prewarm",
    "min_arena",
    "probe",
]
