"""TFLite models: reading and verifying ``.tflite`` files, probing them in TFLite Micro
in a child process, the smallest-arena search and the in-process runner.

Call order: :func:`inspect_model` (pure Python; refuses malformed bytes) →
:func:`probe` / :func:`min_arena` (a child process; a crash cannot hurt the caller) →
:class:`TflmRunner` (in-process, only for a model that probed well). No TensorFlow is
imported; ``tflite_micro`` loads only in the runner and the probe's child.
"""

from __future__ import annotations

from .tflm import (ARENA_ALIGNMENT, DEFAULT_PROBE_TIMEOUT_S, ModelError, ModelInfo, ProbeResult,
                   TensorInfo, TflmRunner, inspect_model, min_arena, probe)

__all__ = ["ModelError", "TensorInfo", "ModelInfo", "ProbeResult", "inspect_model", "probe",
           "min_arena", "TflmRunner", "ARENA_ALIGNMENT", "DEFAULT_PROBE_TIMEOUT_S"]
