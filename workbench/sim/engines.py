"""The firmware's inference engine, chosen by the board's catalog ``runtime``.

:class:`~workbench.sim.firmware.VirtualFirmware` keeps model slots, updates and the protocol;
what runs a model is an engine behind two calls:

- :meth:`Engine.check` (at MODEL_END): does this image run here? A successful
  :class:`~workbench.tflite.ProbeResult` (its ``arena_limit`` is the arena the model needs,
  0 when the runtime has no arena), else ``(ErrorCode, message)`` naming the real reason;
- :meth:`Engine.load` (at boot, commit, rollback): a runner with ``input_details``,
  ``output_details``, ``invoke(arrays)``, ``last_latency_us`` and ``arena_bytes_used``.

Engines: :class:`TflmEngine` (``runtime: tflite-micro``, the virtual microcontroller: TFLite
Micro in the board's arena, probed in child processes) and :class:`LiteRtEngine`
(``runtime: litert``, Linux boards: LiteRT, checked in a child process, then run in this
process). :func:`engine_for` picks one for a board.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..boards import Board
from ..protocol import messages as m
from ..tflite import (
    HYBRID_MESSAGE,
    ModelError,
    ProbeError,
    ProbeFailure,
    ProbeResult,
    Spawn,
    TflmRunner,
    hybrid_ops,
    inspect_model,
    min_arena,
)

__all__ = ["Engine", "LiteRtEngine", "TflmEngine", "engine_for"]

class Engine(Protocol):
    """What the firmware needs from an interpreter (see the module docstring)."""

    runtime: str
    """The catalog's runtime name."""
    firmware: str
    """What INFO's ``firmware`` field says."""
    simulated: bool
    """True for an interpreter standing in for a board's (HELLO's SIMULATED capability and
    latencies flagged as estimated); False when the model runs as it would on the board."""

    def check(self, image: bytes) -> ProbeResult | tuple[m.ErrorCode, str]: ...

    def load(self, image: bytes, verified: ProbeResult | None) -> Any: ...


class TflmEngine:
    """TensorFlow Lite Micro in the board's tensor arena (the virtual microcontroller)."""

    runtime = "tflite-micro"
    firmware = "workbench-sim 1.0"
    simulated = True

    def __init__(self, board: Board, spawn: Spawn | None = None) -> None:
        self.board = board
        self.spawn = spawn

    def check(self, image: bytes) -> ProbeResult | tuple[m.ErrorCode, str]:
        """The successful probe at the smallest arena the model runs in (within the
        board's), else the error code and message. A hybrid (dynamic-range) model is
        refused by name before TFLM runs: TFLM would only say "failed to prepare"."""
        limit = self.board.model_slots.arena_bytes
        try:
            hybrid = hybrid_ops(inspect_model(image))
        except ModelError as e:
            return m.ErrorCode.MODEL_INVALID, str(e)
        if hybrid:
            return m.ErrorCode.UNSUPPORTED_OP, f"{HYBRID_MESSAGE} ({', '.join(hybrid)})"
        try:
            return min_arena(image, limit, spawn=self.spawn).probe
        except ProbeError as e:
            result = e.result
        except ModelError as e:  # malformed, or the arena search gave up
            return m.ErrorCode.MODEL_INVALID, str(e)
        if result.failure is ProbeFailure.UNSUPPORTED_OP:
            return (m.ErrorCode.UNSUPPORTED_OP,
                    f"TFLite Micro on this firmware lacks: {', '.join(result.unsupported_ops)}")
        if result.failure in (ProbeFailure.ARENA_TOO_SMALL, ProbeFailure.CRASH):
            return (m.ErrorCode.ARENA_TOO_SMALL,
                    f"the model does not run in the {limit:,}-byte tensor arena of "
                    f"{self.board.name}: {result.error or 'the interpreter ran out of memory'}")
        return m.ErrorCode.MODEL_INVALID, f"the model does not run: {result.error}"

    def load(self, image: bytes, verified: ProbeResult | None) -> TflmRunner:
        """A runner for an image; probed once in a child first unless ``verified``
        (its successful probe from :meth:`check` this session). ModelError/ProbeError."""
        return TflmRunner(image, self.board.model_slots.arena_bytes, probed=verified,
                          spawn=self.spawn)


class LiteRtEngine:
    """LiteRT (``ai-edge-litert``), as a Linux board runs models: no tensor arena to size,
    hybrid models allowed, XNNPACK kernels. Each new image is loaded and invoked once in a
    child process (:func:`workbench.tflite.litert.check_litert`) before this process loads
    it, so a model that crashes LiteRT is refused instead of taking the runner down."""

    runtime = "litert"
    simulated = False

    def __init__(self, board: Board, spawn: Spawn | None = None) -> None:
        from ..tflite.litert import litert_version

        self.board = board
        self.spawn = spawn
        self.firmware = f"workbench-litert 1.0 (LiteRT {litert_version()})"

    def check(self, image: bytes) -> ProbeResult | tuple[m.ErrorCode, str]:
        from ..tflite.litert import check_litert

        try:
            result = check_litert(image, spawn=self.spawn)
        except ModelError as e:
            return m.ErrorCode.MODEL_INVALID, str(e)
        if result.ok:
            return result
        if result.failure is ProbeFailure.UNSUPPORTED_OP:
            return m.ErrorCode.UNSUPPORTED_OP, f"{result.error} (LiteRT {_version()})"
        return m.ErrorCode.MODEL_INVALID, f"the model does not run in LiteRT: {result.error}"

    def load(self, image: bytes, verified: ProbeResult | None) -> Any:
        """A :class:`~workbench.tflite.litert.LiteRtRunner`; without ``verified`` (boot) the
        image is checked in a child first. ModelError when it does not run."""
        from ..tflite.litert import LiteRtRunner

        if verified is None:
            checked = self.check(image)
            if not isinstance(checked, ProbeResult):
                raise ModelError(checked[1])
        return LiteRtRunner(image)


def _version() -> str:
    from ..tflite.litert import litert_version

    return litert_version()


_ENGINES = {"tflite-micro": TflmEngine, "litert": LiteRtEngine}


def engine_for(board: Board, spawn: Spawn | None = None) -> Engine:
    """The engine for ``board.runtime``. ValueError for a runtime no engine runs."""
    try:
        cls = _ENGINES[board.runtime]
    except KeyError:
        raise ValueError(f"{board.name} runs {board.runtime!r}; the workbench's firmware runs "
                         + " or ".join(_ENGINES)) from None
    return cls(board, spawn)
