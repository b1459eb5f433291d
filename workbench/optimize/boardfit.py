"""Does a measured variant fit a board, and how fast will it run there?

:func:`board_verdict` turns one :class:`~workbench.optimize.records.Measurement` (board
independent) and one catalog board into a :class:`~workbench.optimize.records.BoardVerdict`:

* **fits**: the model must fit one model slot of the board's flash, its smallest working
  TFLite Micro arena must fit the RAM the firmware leaves for the arena, and every op must
  have a kernel in the board's runtime (TFLite Micro has none for hybrid, dynamic-range ops).
  ``reasons`` says, in words, each thing that does not fit and by how much.
* **latency**: a latency reported by a real board (its LATENCY_ESTIMATED flag clear) is used
  as measured; otherwise the cost model of :mod:`workbench.optimize.latency` estimates it
  from the op-by-op analysis, and ``basis`` says what the estimate rests on. The virtual
  board's reported latency is wall time on the host running it, so it never stands in for
  the board's silicon; it is kept in ``Measurement.device_latency`` and shown beside.

No I/O, no interpreter: evaluation is cheap enough to redo live when a widget's board changes.
"""

from __future__ import annotations

from ..boards.catalog import Board
from .records import BoardVerdict, Measurement

__all__ = ["board_verdict", "fmt_bytes"]


def fmt_bytes(n: int | float | None) -> str:
    """``1536 -> "1.5 KiB"``; bytes below 1 KiB stay bytes."""
    if n is None:
        return "?"
    n = float(n)
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _reasons(m: Measurement, board: Board) -> list[str]:
    slots = board.model_slots
    reasons: list[str] = []
    if board.runtime == "tflite-micro":
        if m.unsupported_ops:
            reasons.append("TFLite Micro has no kernel for " + ", ".join(m.unsupported_ops))
        graph = m.graph
        if graph is not None and getattr(graph, "is_hybrid", False) and not m.unsupported_ops:
            reasons.append("hybrid (dynamic-range) model: TFLite Micro runs only fully "
                           "quantized or float models")
        if m.model_bytes > slots.slot_bytes:
            reasons.append(f"model {fmt_bytes(m.model_bytes)} > model slot "
                           f"{fmt_bytes(slots.slot_bytes)}")
        if m.arena_bytes is None:
            if not m.unsupported_ops:
                reasons.append("TFLite Micro could not run it, so its arena is unknown")
        elif m.arena_bytes > slots.arena_bytes:
            reasons.append(f"arena {fmt_bytes(m.arena_bytes)} > "
                           f"{fmt_bytes(slots.arena_bytes)} of RAM left for the arena")
    else:  # Linux boards: LiteRT runs every builtin op; memory is the OS's
        if m.model_bytes > slots.slot_bytes:
            reasons.append(f"model {fmt_bytes(m.model_bytes)} > {fmt_bytes(slots.slot_bytes)} "
                           "allowed for a model")
        if any(op.startswith("CUSTOM:") for op in m.unsupported_ops):
            reasons.append("custom ops need their kernels registered: "
                           + ", ".join(op for op in m.unsupported_ops if op.startswith("CUSTOM:")))
    return reasons


def board_verdict(m: Measurement, board: Board) -> BoardVerdict:
    """The verdict of ``board`` on ``m``: fits (with reasons) and latency/energy.

    Pure: reads ``m`` and the board, returns a new record. When ``m.graph`` is None
    (no op analysis) the latency and energy are None and ``basis`` says so.
    """
    reasons = _reasons(m, board)
    reported = m.device_latency.get(board.id)
    latency = energy = None
    source, basis = "estimate", "no op-by-op analysis of this model, so no estimate"
    est = None
    if m.graph is not None:
        from .latency import estimate

        est = estimate(m.graph, board)
        latency, energy, basis = est.latency_ms, est.energy_mj, est.basis
    if reported and not reported.get("estimated", True):
        latency = float(reported["latency_ms"])
        source = "measured"
        basis = f"measured on {reported.get('device', 'the board')}"
        if est is not None and est.latency_ms > 0:
            energy = est.energy_mj * latency / est.latency_ms
    return BoardVerdict(board_id=board.id, fits=not reasons, reasons=reasons,
                        latency_ms=latency, energy_mj=energy, latency_source=source,
                        basis=basis)
