"""LiteRT (``ai-edge-litert``): the interpreter of Linux boards, beside TensorFlow Lite Micro.

A Raspberry Pi or a Jetson runs ``.tflite`` models in LiteRT (TensorFlow Lite), not TFLite
Micro: no tensor arena to size, XNNPACK kernels, hybrid (dynamic-range) models allowed.

Call order: :func:`check_litert` (a child process: validates with
:func:`~.model.inspect_model`, then loads, allocates and invokes the model once with zero
inputs, so an interpreter crash cannot hurt the caller) → :class:`LiteRtRunner` (in this
process, the interface of :class:`~.runner.TflmRunner`: ``input_details``,
``output_details``, :meth:`~LiteRtRunner.invoke`, ``last_latency_us``). ``ai_edge_litert``
is imported only by the runner and the child, never at import of this module.

``python -m workbench.tflite.litert`` is the child: it reads the model's bytes on stdin and
prints one JSON line (``ok``, ``stage``, ``error``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .model import ModelError, ModelInfo, inspect_model
from .probing import ProbeFailure, ProbeResult, Spawn
from .runner import ModelTensors, _check_input

__all__ = ["LITERT_CHECK_TIMEOUT_S", "LiteRtRunner", "check_litert", "litert_version"]

#: Wall-clock limit for :func:`check_litert`'s child (importing LiteRT on a Pi takes seconds).
LITERT_CHECK_TIMEOUT_S = 60.0

_RE_NO_BUILTIN = re.compile(r"Didn't find op for builtin opcode '([^']+)'")
_RE_NO_CUSTOM = re.compile(r"unresolved custom op: ([\w\-]+)")


def litert_version() -> str:
    """The installed ``ai-edge-litert`` version, or ``"not installed"``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "not installed"


def _interpreter(data: bytes, num_threads: int | None):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise ModelError("LiteRT is not installed: pip install ai-edge-litert (it runs models "
                         f"on Linux boards) [{e}]") from None
    return Interpreter(model_content=data, num_threads=num_threads)


class LiteRtRunner(ModelTensors):
    """A LiteRT interpreter in this process, for a model :func:`check_litert` accepted.

    Side effects: imports ``ai_edge_litert``; allocates the model's tensors.

    Args:
        data: the .tflite bytes (validated with :func:`~.model.inspect_model` first).
        num_threads: LiteRT's CPU threads (None: its default).

    Raises:
        ModelError: malformed model, LiteRT missing, or LiteRT refused to load or allocate
            it (the message is LiteRT's).
    """

    def __init__(self, data: bytes, *, num_threads: int | None = None):
        self._data = bytes(data)
        self._info = inspect_model(self._data)
        try:
            self._interp = _interpreter(self._data, num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"LiteRT cannot load the model: {e}") from None
        self._inputs = [d["index"] for d in self._interp.get_input_details()]
        self._outputs = [d["index"] for d in self._interp.get_output_details()]
        self._lock = threading.Lock()
        self._latency_us: float | None = None

    @property
    def arena_bytes_used(self) -> None:
        """LiteRT has no fixed tensor arena: always None."""
        return None

    @property
    def last_latency_us(self) -> float | None:
        """Wall time of the last ``invoke()`` inside LiteRT, in microseconds."""
        return self._latency_us

    def invoke(self, inputs: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """Run one inference: one array per input (as :meth:`TflmRunner.invoke` takes them);
        returns copies of all outputs. ValueError for a wrong count, shape or dtype;
        RuntimeError when LiteRT fails."""
        specs = self._info.inputs
        arrays: list[Any] = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(arrays) != len(specs):
            raise ValueError(f"the model has {len(specs)} input(s), got {len(arrays)}")
        checked = [_check_input(a, s, i) for i, (a, s) in enumerate(zip(arrays, specs))]
        with self._lock:
            for index, a in zip(self._inputs, checked):
                self._interp.set_tensor(index, a)
            t0 = time.perf_counter_ns()
            self._interp.invoke()
            self._latency_us = (time.perf_counter_ns() - t0) / 1000.0
            return [np.array(self._interp.get_tensor(i), copy=True) for i in self._outputs]


def check_litert(data: bytes, *, timeout: float = LITERT_CHECK_TIMEOUT_S,
                 spawn: Spawn | None = None) -> ProbeResult:
    """Load, allocate and invoke ``data`` once (zero inputs) in LiteRT, in a child process.

    Returns a :class:`ProbeResult` (``arena_limit`` 0: LiteRT has no arena): ``ok``, or the
    failure (UNSUPPORTED_OP with the ops named, INVALID_MODEL with LiteRT's message, CRASH,
    TIMEOUT). Raises :class:`ModelError` for bytes that are not a valid ``.tflite`` (checked
    here, before any child starts).
    """
    info = inspect_model(bytes(data))
    cmd = [sys.executable, "-m", "workbench.tflite.litert"]
    start = spawn or subprocess.Popen
    proc = start(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(bytes(data), timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return _result(info, False, f"LiteRT did not finish within {timeout:g} s", "",
                       ProbeFailure.TIMEOUT, timed_out=True)
    text = out.decode("utf-8", "replace")
    answer = None
    for line in text.splitlines():
        if line.startswith("LITERT "):
            answer = json.loads(line[7:])
    if answer is None:
        why = (f"died by signal {-proc.returncode}" if proc.returncode and proc.returncode < 0
               else f"exited with status {proc.returncode}")
        return _result(info, False, f"LiteRT {why} while loading the model", text,
                       ProbeFailure.CRASH, crashed=True, returncode=proc.returncode)
    if answer["ok"]:
        return _result(info, True, None, text, None, stage=answer["stage"])
    error = answer["error"]
    ops = [*dict.fromkeys(m.group(1) for m in _RE_NO_BUILTIN.finditer(error))]
    ops += [f"CUSTOM:{c}" for c in dict.fromkeys(m.group(1) for m in _RE_NO_CUSTOM.finditer(error))]
    if ops:
        return _result(info, False, f"LiteRT has no kernel for: {', '.join(ops)}", text,
                       ProbeFailure.UNSUPPORTED_OP, unsupported=ops, stage=answer["stage"])
    return _result(info, False, error, text, ProbeFailure.INVALID_MODEL, stage=answer["stage"])


def _result(info: ModelInfo, ok: bool, error: str | None, log: str,
            failure: ProbeFailure | None, *, unsupported: list[str] | None = None,
            stage: str = "", crashed: bool = False, timed_out: bool = False,
            returncode: int | None = None) -> ProbeResult:
    return ProbeResult(ok=ok, arena_bytes_used=None, error=error,
                       unsupported_ops=unsupported or [], crashed=crashed, raw_log=log,
                       arena_limit=0, timed_out=timed_out, stage=stage, returncode=returncode,
                       failure=failure, sha256=info.sha256)


def _child() -> int:
    """The child of :func:`check_litert`: model bytes on stdin, one ``LITERT {json}`` line."""
    data = sys.stdin.buffer.read()
    stage = "import"
    try:
        from ai_edge_litert.interpreter import Interpreter

        stage = "load"
        interp = Interpreter(model_content=data)
        stage = "allocate"
        interp.allocate_tensors()
        stage = "invoke"
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
        interp.invoke()
        answer = {"ok": True, "stage": stage}
    except Exception as e:  # noqa: BLE001 - reported to the parent, which classifies it
        answer = {"ok": False, "stage": stage, "error": f"{type(e).__name__}: {e}"}
    sys.stdout.flush()
    print("LITERT " + json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child())
