"""The in-process TFLite Micro interpreter, for a model already proven to run.

:class:`TflmRunner` builds TFLM's interpreter in this process (fast, repeated
inference) only after a probe in a child process (:mod:`.probing`) showed that the
same model runs in the same arena or a smaller one: in-process, a too-small arena
can segfault the caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .model import ModelError, ModelInfo, TensorInfo, inspect_model
from .probing import DEFAULT_PROBE_TIMEOUT_S, ProbeError, ProbeResult, Spawn, probe

__all__ = ["TflmRunner"]


def _check_input(arr: Any, spec: TensorInfo, position: int) -> np.ndarray:
    try:
        expected = np.dtype(spec.dtype)
    except TypeError:
        raise ValueError(
            f"input {position} ('{spec.name}') has type {spec.dtype}, "
            "which cannot be fed from numpy"
        ) from None
    a = np.asarray(arr)
    if a.dtype != expected:
        same_float = expected.kind == "f" and a.dtype.kind in "fiub"
        int_fits = (
            a.dtype.kind in "iu"
            and expected.kind in "iu"
            and (
                a.size == 0
                or (
                    a.min() >= np.iinfo(expected).min and a.max() <= np.iinfo(expected).max
                )
            )
        )
        if same_float or int_fits:
            a = a.astype(expected)
        else:
            hint = ""
            if expected.kind in "iu" and a.dtype.kind == "f" and spec.scale is not None:
                hint = (
                    f"; the model is quantized: feed round(x / {spec.scale:g}) + "
                    f"{spec.zero_point} as {expected.name}"
                )
            raise ValueError(
                f"input {position} ('{spec.name}') expects dtype {expected.name}, got "
                f"{a.dtype.name}{hint}"
            )
    if a.shape != spec.shape:
        if a.size != spec.size:
            raise ValueError(
                f"input {position} ('{spec.name}') expects shape {spec.shape} "
                f"({spec.size} values), got shape {a.shape} ({a.size} values)"
            )
        a = a.reshape(spec.shape)
    return np.ascontiguousarray(a)


class ModelTensors:
    """What every in-process runner tells of its model (:class:`TflmRunner`, and the LiteRT
    runner of :mod:`.litert`): the model as :func:`~.model.inspect_model` read it, and its
    inputs and outputs (subgraph 0, in order). Subclasses set ``self._info``."""

    _info: ModelInfo

    @property
    def info(self) -> ModelInfo:
        """The model as :func:`~.model.inspect_model` read it."""
        return self._info

    @property
    def input_details(self) -> list[TensorInfo]:
        """The model's inputs (subgraph 0), in order."""
        return list(self._info.inputs)

    @property
    def output_details(self) -> list[TensorInfo]:
        """The model's outputs (subgraph 0), in order."""
        return list(self._info.outputs)


class TflmRunner(ModelTensors):
    """A TFLM interpreter in this process, for a model already proven to run.

    Call order: ``TflmRunner(data, arena_bytes)`` validates the model with
    :func:`~.model.inspect_model`, then runs :func:`~.probe.probe` with the same arena
    in a child process (skipped if ``probed`` is given), and only if that succeeded
    builds the interpreter here. Then call :meth:`invoke` as often as needed.

    Side effects: imports ``tflite_micro`` and allocates ``arena_bytes`` of native
    memory; the constructor starts one child process unless ``probed`` is given.

    Args:
        data: the .tflite bytes.
        arena_bytes: tensor arena size in bytes (e.g. ``min_arena(...).needed_bytes``).
        probed: a successful :class:`~.probe.ProbeResult` of this same model (its
            ``sha256``) at ``arena_bytes`` or a smaller arena (success is monotonic
            in the arena size), e.g. ``min_arena(...).probe``: then no child is
            started, and it supplies :attr:`arena_bytes_used`. ``True`` if the caller
            has proven it some other way (then the crash protection is theirs).
        timeout: timeout for the constructor's probe, seconds.
        spawn: starts the constructor's probe child (default :class:`subprocess.Popen`).

    Raises:
        ProbeError: the probe failed (``exc.result.failure`` says why: arena too
            small, unsupported ops, ...), or a given ProbeResult was not ok.
        ModelError: malformed model, or a given ProbeResult is for another model or a
            larger arena.
    """

    def __init__(
        self,
        data: bytes,
        arena_bytes: int,
        *,
        probed: bool | ProbeResult | None = False,
        timeout: float = DEFAULT_PROBE_TIMEOUT_S,
        spawn: Spawn | None = None,
    ):
        self._data = bytes(data)  # TFLM keeps pointers into the model: keep it alive
        self._info = inspect_model(self._data)
        self._arena = int(arena_bytes)
        if isinstance(probed, ProbeResult):
            result: ProbeResult | None = probed
            if not result.ok:
                raise ProbeError(f"cannot run the model: {result.error}", result)
            if result.sha256 and result.sha256 != self._info.sha256:
                raise ModelError(
                    "the probe result given is for another model (its SHA-256 differs); "
                    "probe this model, or pass its own result")
            if result.arena_limit > self._arena:
                raise ModelError(
                    f"the probe result given ran the model in {result.arena_limit} bytes, "
                    f"more than the {self._arena}-byte arena asked for; give at least "
                    f"{result.arena_limit} bytes, or let the runner probe this arena")
        elif probed:
            result = None
        else:
            result = probe(self._data, self._arena, timeout=timeout, spawn=spawn)
            if not result.ok:
                raise ProbeError(f"cannot run the model: {result.error}", result)
        self._probe = result
        from tflite_micro import runtime

        try:
            self._interp = runtime.Interpreter.from_bytes(self._data, arena_size=self._arena)
        except RuntimeError as exc:
            raise ModelError(
                f"TFLM could not allocate the model in {self._arena} bytes: {exc}. "
                "Give a larger arena (min_arena() finds the smallest that works)."
            ) from exc
        self._lock = threading.Lock()
        self._latency_us: float | None = None

    @property
    def arena_size(self) -> int:
        """The arena given to TFLM, in bytes."""
        return self._arena

    @property
    def arena_bytes_used(self) -> int | None:
        """What TFLM's allocator held after allocating in the probe (see
        :mod:`.arena` for *used* vs *needed*); None if no probe result is known."""
        return self._probe.arena_bytes_used if self._probe is not None else None

    @property
    def last_latency_us(self) -> float | None:
        """Host wall time of the last ``invoke()`` call inside TFLM, in microseconds."""
        return self._latency_us

    def invoke(self, inputs: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """Run one inference.

        Args:
            inputs: one array per model input, in order (a single array for a
                one-input model). Arrays are reshaped if their element count matches;
                floats are cast between float widths, ints between int widths when the
                values fit; ints and bools are cast to a float input.

        Returns:
            Copies of all outputs, in order.

        Raises:
            ValueError: wrong number of inputs, or a shape/dtype that does not match.
            RuntimeError: TFLM reported an invoke failure.
        """
        specs = self._info.inputs
        if isinstance(inputs, np.ndarray):
            arrays: list[Any] = [inputs]
        elif isinstance(inputs, (list, tuple)):
            arrays = list(inputs)
        else:
            arrays = [inputs]
        if len(arrays) != len(specs):
            raise ValueError(f"the model has {len(specs)} input(s), got {len(arrays)}")
        checked = [_check_input(a, s, i) for i, (a, s) in enumerate(zip(arrays, specs))]
        with self._lock:
            for i, a in enumerate(checked):
                self._interp.set_input(a, i)
            t0 = time.perf_counter_ns()
            self._interp.invoke()
            t1 = time.perf_counter_ns()
            self._latency_us = (t1 - t0) / 1000.0
            n_out = len(self._info.outputs)
            return [np.array(self._interp.get_output(i), copy=True) for i in range(n_out)]
