"""The probe: run a model in TensorFlow Lite Micro in a child process, where a crash cannot hurt.

TFLM is not defensive: on this machine it raises ``RuntimeError("TFLM failed to
allocate tensors")`` for some too-small arenas but *segfaults the process* for others
(e.g. 100 bytes for ``sine_float``), and it segfaults on garbage bytes. It prints its
diagnostics to the C-level stderr (file descriptor 2), not to Python's
``sys.stderr``, and has no Python API for the arena bytes it used. So every first
run of a model happens here, in a child process (``sys.executable -I -c ...``):

- the model is validated in this process first (:func:`~.model.inspect_model`), so
  garbage never reaches the interpreter;
- the child builds an interpreter with the given arena, invokes once with
  zero-filled inputs, and prints its allocations; its fd-2 text is parsed for the
  arena total, unsupported ops and allocation failures;
- the outcome is a :class:`ProbeResult` whose :class:`ProbeFailure` says what kind
  of failure it was, so callers never match message text.

:class:`ProbeSession` keeps one child alive to try several arena sizes of one model
(the smallest-arena search); a child that crashes or hangs is replaced by a fresh
one on the next try. :func:`probe` is one try in one child. Both take ``spawn``,
the function that starts child processes (default :class:`subprocess.Popen`), so a
caller can count or redirect them without patching globals.
"""

from __future__ import annotations

import atexit
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from .model import ModelError, ModelInfo, inspect_model

__all__ = [
    "DEFAULT_PROBE_TIMEOUT_S",
    "ProbeError",
    "ProbeFailure",
    "ProbeResult",
    "ProbeSession",
    "Spawn",
    "probe",
]

#: Default wall-clock limit for one probe (one arena size tried), in seconds.
DEFAULT_PROBE_TIMEOUT_S = 30.0

#: Starts a child process: called as ``spawn(cmd, stdin=PIPE, stdout=PIPE,
#: stderr=STDOUT)`` and returns a :class:`subprocess.Popen` (or an object with its
#: ``stdin``, ``stdout``, ``poll``, ``wait`` and ``kill``).
Spawn = Callable[..., "subprocess.Popen[bytes]"]


class ProbeFailure(Enum):
    """Why a probe failed (:attr:`ProbeResult.failure`)."""

    ARENA_TOO_SMALL = "arena_too_small"
    """TFLM could not fit the model in the arena (it said so, or it crashed while
    allocating): a larger arena may work."""
    UNSUPPORTED_OP = "unsupported_op"
    """TFLM has no kernel for an op (named in :attr:`ProbeResult.unsupported_ops`)."""
    INVALID_MODEL = "invalid_model"
    """TFLM refused or failed on the model for another reason it stated."""
    CRASH = "crash"
    """The interpreter died by a signal after allocating (e.g. SIGSEGV in a kernel)."""
    TIMEOUT = "timeout"
    """The child did not answer within the time limit and was killed."""


@dataclass(frozen=True)
class ProbeResult:
    """What one run of the model in TFLM, in a child process, showed.

    Attributes:
        ok: the interpreter allocated, invoked once with zero inputs, and reported.
        arena_bytes_used: "Arena allocation total" printed by TFLM's recording
            allocator after the invoke: the bytes the model occupies once allocated
            (persistent + planned; None if not reached). TFLM needs *more* than
            this to start, for the memory planner's temporary memory: the smallest
            arena that works is :func:`~.arena.min_arena`'s ``needed_bytes``.
        error: a clean human message when not ok, else None.
        unsupported_ops: ops TFLM has no kernel for (``"LSH_PROJECTION"``,
            ``"CUSTOM:<name>"``), parsed from its log.
        crashed: the child died by a signal (e.g. SIGSEGV).
        raw_log: TFLM's own messages (the child's fd-2 text) for this run.
        arena_limit: the arena size the child was given, bytes.
        timed_out: the child was killed after the timeout.
        stage: the last stage the child reached ("allocate", "invoke", ...).
        returncode: the child's exit status if it ended during this run (negative:
            killed by that signal), else None.
        failure: the kind of failure when not ok, else None.
        sha256: SHA-256 of the model probed (hex), so the result can travel with it.
        missing_bytes: bytes TFLM said it lacked (``missing: N``), if it said.
    """

    ok: bool
    arena_bytes_used: int | None
    error: str | None
    unsupported_ops: list[str]
    crashed: bool
    raw_log: str
    arena_limit: int = 0
    timed_out: bool = False
    stage: str = ""
    returncode: int | None = None
    failure: ProbeFailure | None = None
    sha256: str = ""
    missing_bytes: int | None = field(default=None, repr=False)


class ProbeError(ModelError):
    """A probe showed that the model cannot run; :attr:`result` says why.

    Raised by :func:`~.arena.min_arena` and :class:`~.runner.TflmRunner`; branch on
    ``exc.result.failure`` (a :class:`ProbeFailure`), not on the message.
    """

    def __init__(self, message: str, result: ProbeResult):
        super().__init__(message)
        self.result = result


# The child serves one model: it loads tflite_micro first (so a child started ahead of
# time, a spare, is ready when the model comes), then reads the model's input specs (a
# JSON line), a decimal length line and the model bytes on stdin, then one arena size per
# line, and answers each with "STAGE <json>" lines
# and one "RESULT <json>" line on stdout, flushed at once, so the parent knows where
# a crash happened. fd 2 is made a copy of fd 1 first, so TFLM's own messages (and
# print_allocations) arrive in the same stream, in order, between our lines. Our
# lines start with a newline and a marker, so they never run into TFLM's text.
_MARK = "@@workbench-probe "
_CHILD_CODE = r"""
import json, os, sys
os.dup2(1, 2)
def emit(kind, payload):
    sys.stdout.write("\n@@workbench-probe " + kind + " " + json.dumps(payload) + "\n")
    sys.stdout.flush()
stage = "import"
try:
    emit("STAGE", stage)
    import numpy as np
    from tflite_micro import runtime
    stage = "start"
    specs = json.loads(sys.stdin.buffer.readline())
    size = int(sys.stdin.buffer.readline())
    data = sys.stdin.buffer.read(size)
except BaseException as exc:
    try:
        emit("RESULT", {"ok": False, "stage": stage, "exception": type(exc).__name__ + ": " + str(exc)})
    except BaseException:
        pass
    sys.exit(3)
for line in sys.stdin.buffer:
    stage = "start"
    it = None
    try:
        arena = int(line)
        stage = "allocate"; emit("STAGE", stage)
        it = runtime.Interpreter.from_bytes(data, arena_size=arena)
        stage = "set_input"; emit("STAGE", stage)
        for i, (shape, dtype) in enumerate(specs["inputs"]):
            it.set_input(np.zeros(shape, dtype=dtype), i)
        stage = "invoke"; emit("STAGE", stage)
        it.invoke()
        stage = "get_output"; emit("STAGE", stage)
        shapes = [list(np.asarray(it.get_output(i)).shape) for i in range(specs["n_outputs"])]
        stage = "print_allocations"; emit("STAGE", stage)
        sys.stderr.flush()
        it.print_allocations()
        emit("RESULT", {"ok": True, "stage": stage, "output_shapes": shapes})
    except Exception as exc:
        emit("RESULT", {"ok": False, "stage": stage,
                        "exception": type(exc).__name__ + ": " + str(exc)})
    del it
"""

_RE_TOTAL = re.compile(r"\[RecordingMicroAllocator\] Arena allocation total (\d+) bytes")
_RE_NO_BUILTIN = re.compile(r"Didn't find op for builtin opcode '([^']+)'")
_RE_NO_REGISTRATION = re.compile(r"Failed to get registration from op code (\S+)")
_RE_OUT_OF_RANGE = re.compile(r"Op builtin_code out of range: (-?\d+)")
_RE_MISSING = re.compile(r"Requested: (\d+), available (\d+), missing: (\d+)")
_RE_ARENA_HINT = re.compile(
    r"Failed to allocate|Failed to resize buffer|Too many buffers|Arena size is too small|arena|"
    r"Failed starting model allocation",
    re.IGNORECASE,
)


def _check_arena(arena_limit: Any) -> int:
    if isinstance(arena_limit, bool) or not isinstance(arena_limit, (int, np.integer)):
        raise ValueError(f"arena_limit must be an int number of bytes, got {arena_limit!r}")
    if int(arena_limit) <= 0:
        raise ValueError(f"arena_limit must be a positive number of bytes, got {arena_limit}")
    return int(arena_limit)


def _child_command() -> list[str]:
    return [sys.executable, "-I", "-c", _CHILD_CODE]


_spare_lock = threading.Lock()
_spare: Any = None


def prewarm() -> None:
    """Start a spare probe child now, so that the next probe in this process (with the
    default ``spawn``) finds the interpreter already loaded instead of paying for a Python
    start and the ``tflite_micro`` import (about 0.3 s). Returns at once; does nothing if
    a live spare exists. Side effect: one idle child process until it is used or this
    process exits (it then reads end-of-file and ends). The virtual board calls it when
    an upload begins, as firmware has its interpreter loaded when the last byte arrives."""
    global _spare
    with _spare_lock:
        if _spare is not None and _spare.poll() is None:
            return
        _spare = subprocess.Popen(_child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)


def _take_spare() -> Any:
    """The spare child if one is alive (it is then no longer the spare), else None."""
    global _spare
    with _spare_lock:
        proc, _spare = _spare, None
    if proc is not None and proc.poll() is not None:
        proc.wait()
        return None
    return proc


def _kill_spare() -> None:
    proc = _take_spare()
    if proc is not None:
        proc.kill()
        proc.wait()


atexit.register(_kill_spare)


class ProbeSession:
    """Probe one model at one or more arena sizes, each in a child process.

    Call order: ``ProbeSession(data)`` validates the model in this process
    (:func:`~.model.inspect_model`) and starts nothing; each :meth:`probe` sends one
    arena size to the session's child, starting one first if none is alive; use it
    as a context manager (or call :meth:`close`) to end the child. A child that
    crashes or times out is gone; the next :meth:`probe` starts a fresh one, so one
    bad arena size never spoils the next. One caller at a time: not thread-safe.

    Side effects: starts child processes through ``spawn`` (count them with
    :attr:`processes_started`); the child loads ``tflite_micro`` and is killed
    after ``timeout`` seconds without an answer.

    Args:
        data: the .tflite bytes.
        timeout: wall-clock limit for one :meth:`probe`, child start-up included.
        spawn: starts the child (default :class:`subprocess.Popen`); see :data:`Spawn`.

    Raises:
        ModelError: from :func:`~.model.inspect_model` (malformed data).
        TypeError: ``data`` is not bytes-like.
    """

    def __init__(self, data: bytes, timeout: float = DEFAULT_PROBE_TIMEOUT_S, *,
                 spawn: Spawn | None = None):
        self.info: ModelInfo = inspect_model(data)
        self._data = bytes(data)
        self.timeout = float(timeout)
        self._spawn = spawn or subprocess.Popen
        self._specs = json.dumps({
            "inputs": [[list(t.shape), t.dtype] for t in self.info.inputs],
            "n_outputs": len(self.info.outputs),
        })
        self._proc: Any = None
        self._writer: threading.Thread | None = None
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self.processes_started = 0
        """Child processes this session has started."""

    def __enter__(self) -> ProbeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        proc = _take_spare() if self._spawn is subprocess.Popen else None
        if proc is None:
            proc = self._spawn(_child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        self.processes_started += 1
        lines: queue.Queue[bytes | None] = queue.Queue()

        def read() -> None:  # until EOF: the child ended (or was killed)
            try:
                for line in iter(proc.stdout.readline, b""):
                    lines.put(line)
            except (OSError, ValueError):
                pass
            finally:
                lines.put(None)
                try:
                    proc.stdout.close()
                except (OSError, ValueError):
                    pass

        def write_model() -> None:  # a thread: a child that does not read cannot block us
            try:
                proc.stdin.write(self._specs.encode() + b"\n%d\n" % len(self._data)
                                 + self._data)
                proc.stdin.flush()
            except (OSError, ValueError):
                pass  # it died; the reader sees EOF

        threading.Thread(target=read, daemon=True, name="probe-reader").start()
        writer = threading.Thread(target=write_model, daemon=True, name="probe-writer")
        writer.start()
        self._proc, self._lines, self._writer = proc, lines, writer

    def _end(self, kill: bool) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if kill:
            proc.kill()
        try:
            proc.stdin.close()  # a live child reads EOF and exits
        except (OSError, ValueError):
            pass
        try:
            return proc.wait(timeout=None if kill else 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def close(self) -> None:
        """End the child, if one is running (idempotent)."""
        self._end(kill=False)

    def probe(self, arena_limit: int) -> ProbeResult:
        """Run the model once with an arena of ``arena_limit`` bytes; see :func:`probe`.

        Raises:
            ValueError: ``arena_limit`` is not a positive int.
        """
        arena_limit = _check_arena(arena_limit)
        if self._proc is None or self._proc.poll() is not None:
            self._end(kill=True)
            self._start()
        deadline = time.monotonic() + self.timeout
        log_lines: list[str] = []
        stage, result, rc, timed_out = "", None, None, False
        writer = self._writer
        try:
            if writer is not None:
                writer.join(max(0.0, deadline - time.monotonic()))
            if writer is None or not writer.is_alive():
                self._proc.stdin.write(b"%d\n" % arena_limit)
                self._proc.stdin.flush()
        except (OSError, ValueError):
            pass  # the child is gone: its end shows up as EOF below
        while result is None:
            try:
                raw = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                timed_out = True
                self._end(kill=True)
                break
            if raw is None:  # EOF: the child ended
                rc = self._end(kill=False)
                break
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith(_MARK):
                kind, _, payload = line[len(_MARK):].partition(" ")
                try:
                    value = json.loads(payload)
                except ValueError:
                    continue
                if kind == "STAGE":
                    stage = str(value)
                elif kind == "RESULT" and isinstance(value, dict):
                    result = value
                    stage = str(value.get("stage", stage))
            elif line.strip():
                log_lines.append(line)
        if (result is not None and not result.get("ok") and self._proc is not None
                and self._proc.poll() is not None):  # e.g. the import failed: it exits
            rc = self._end(kill=False)
        return _result(self.info, arena_limit, "\n".join(log_lines), stage, result, rc,
                       timed_out, self.timeout)


def probe(data: bytes, arena_limit: int, timeout: float = DEFAULT_PROBE_TIMEOUT_S, *,
          spawn: Spawn | None = None) -> ProbeResult:
    """Run the model once in TFLM in a child process and report what happened.

    Call order: validates with :func:`~.model.inspect_model` first (in this process;
    a :class:`ModelError` is raised before anything runs), then starts one child
    ``sys.executable -I -c <code>`` with the model on its stdin. The child builds an
    interpreter with ``arena_size=arena_limit``, invokes once with zero-filled
    inputs of the declared shapes and dtypes, and calls ``print_allocations()``.
    The parent reads TFLM's log and parses it.

    Side effects: starts one child process through ``spawn`` and waits for it
    (about 0.2 s); kills it after ``timeout`` seconds. Nothing in the calling process
    touches TFLM, so a segfault or hang in TFLM cannot hurt it.

    Args:
        data: the .tflite bytes.
        arena_limit: tensor arena size in bytes given to TFLM (> 0).
        timeout: wall-clock limit for the child, seconds.
        spawn: starts the child (default :class:`subprocess.Popen`).

    Returns:
        A :class:`ProbeResult`. Model problems (arena too small, unsupported ops,
        crashes, timeouts) are reported there, with their :class:`ProbeFailure`,
        never raised.

    Raises:
        ModelError: from :func:`~.model.inspect_model` (malformed data).
        ValueError: ``arena_limit`` is not a positive int.
    """
    arena_limit = _check_arena(arena_limit)
    with ProbeSession(data, timeout, spawn=spawn) as session:
        return session.probe(arena_limit)


def _result(info: ModelInfo, arena_limit: int, log: str, stage: str,
            result: dict[str, Any] | None, rc: int | None, timed_out: bool,
            timeout: float) -> ProbeResult:
    crashed = rc is not None and rc < 0
    unsupported = _unsupported_ops(log, info)
    m_total = _RE_TOTAL.search(log)
    m_missing = _RE_MISSING.search(log)
    missing = int(m_missing.group(3)) if m_missing else None
    ok = bool(result and result.get("ok")) and not timed_out and not crashed
    failure = error = None
    if not ok:
        failure, error = _classify(arena_limit=arena_limit, log=log, stage=stage,
                                   result=result, rc=rc, crashed=crashed,
                                   timed_out=timed_out, timeout=timeout,
                                   unsupported=unsupported, missing=missing)
    return ProbeResult(
        ok=ok,
        arena_bytes_used=int(m_total.group(1)) if (m_total and ok) else None,
        error=error,
        unsupported_ops=unsupported,
        crashed=crashed,
        raw_log=log,
        arena_limit=arena_limit,
        timed_out=timed_out,
        stage=stage,
        returncode=rc,
        failure=failure,
        sha256=info.sha256,
        missing_bytes=missing,
    )


def _unsupported_ops(log: str, info: ModelInfo) -> list[str]:
    found: list[str] = []

    def add(name: str) -> None:
        if name not in found:
            found.append(name)

    for m in _RE_NO_BUILTIN.finditer(log):
        add(m.group(1))
    for m in _RE_NO_REGISTRATION.finditer(log):
        if m.group(1) == "CUSTOM":
            # TFLM does not name the custom op; the model does.
            for op in info.ops:
                if op.startswith("CUSTOM:"):
                    add(op)
        else:
            add(m.group(1))
    for m in _RE_OUT_OF_RANGE.finditer(log):
        add(f"BUILTIN_{m.group(1)}")
    return found


def _first_line(log: str, pattern: re.Pattern) -> str | None:
    for line in log.splitlines():
        if pattern.search(line):
            return line.strip()
    return None


def _classify(
    *,
    arena_limit: int,
    log: str,
    stage: str,
    result: dict | None,
    rc: int | None,
    crashed: bool,
    timed_out: bool,
    timeout: float,
    unsupported: list[str],
    missing: int | None,
) -> tuple[ProbeFailure, str]:
    """The kind of a failed probe and a message that says what to do."""
    if timed_out:
        return ProbeFailure.TIMEOUT, (
            f"TFLM did not finish within {timeout:g} s (last stage: {stage or 'start'}); "
            "the child process was killed. The model may be too slow or stuck."
        )
    where = f" while in stage '{stage}'" if stage else ""
    if crashed:
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = f"signal {-rc}"
        how = f"the TFLM interpreter crashed ({sig}){where}"
    elif result is not None and result.get("exception"):
        how = f"TFLM raised {result['exception']}{where}"
    else:
        how = f"the TFLM child process exited with status {rc}{where}"
    if unsupported:
        return ProbeFailure.UNSUPPORTED_OP, (
            f"TFLM has no kernel for: {', '.join(unsupported)} ({how}). Replace these ops "
            "(e.g. re-convert using only builtins that TFLite Micro supports) or register "
            "a custom kernel on the device."
        )
    hint = _first_line(log, _RE_ARENA_HINT)
    if hint is not None and stage in ("allocate", "set_input", "invoke", ""):
        need = f" (at least {arena_limit + missing} bytes)" if missing else ""
        return ProbeFailure.ARENA_TOO_SMALL, (
            f"tensor arena too small: {arena_limit} bytes were available and the model "
            f"needs more{need}. TFLM said {hint!r}; {how}. Give a larger arena; "
            "min_arena() finds the smallest that works."
        )
    if crashed and stage == "allocate":
        return ProbeFailure.ARENA_TOO_SMALL, (
            f"{how} with an arena of {arena_limit} bytes and no message; the arena is "
            "probably far too small for the model, or the model is malformed. Try a larger "
            "arena (min_arena() finds the smallest that works)."
        )
    last = [ln.strip() for ln in log.splitlines() if ln.strip()]
    said = f" TFLM said {last[-1]!r}." if last else ""
    return (ProbeFailure.CRASH if crashed else ProbeFailure.INVALID_MODEL), f"{how}.{said}"
