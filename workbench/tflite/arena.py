"""The smallest tensor arena a model runs in, found by probing TFLite Micro.

Two figures describe a model's arena, and they differ:

- **needed** (:attr:`ArenaFit.needed_bytes`): the smallest ``arena_size`` in which
  TFLM allocates and runs the model. This is what a board must provide (its
  ``kTensorArenaSize``), what the virtual board reports when it verifies a model,
  and what ``workbench report`` shows as the arena.
- **used** (:attr:`ArenaFit.used_bytes`, :attr:`~.probe.ProbeResult.arena_bytes_used`):
  what TFLM's allocator holds once allocation is done (persistent data plus the
  planned activations), as ``MicroInterpreter::arena_used_bytes()`` reports on a
  board. It is smaller than *needed*, because while allocating, TFLM's memory
  planner borrows temporary memory from the arena and gives it back (for
  ``sine_float`` 1536 bytes used, 1936 needed: the 1920-byte arena fails with "Too
  many buffers").

:func:`min_arena` finds both in one :class:`~.probe.ProbeSession`, usually one child
process.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .model import ModelError
from .probing import DEFAULT_PROBE_TIMEOUT_S, ProbeError, ProbeResult, ProbeSession, Spawn

__all__ = ["ARENA_ALIGNMENT", "MIN_ARENA_MAX_PROBES", "ArenaFit", "min_arena"]

#: Arena sizes found by :func:`min_arena` are multiples of this (TFLM aligns arena
#: allocations to 16 bytes).
ARENA_ALIGNMENT = 16
#: Hard cap on arena sizes one :func:`min_arena` call may try.
MIN_ARENA_MAX_PROBES = 14


@dataclass(frozen=True)
class ArenaFit:
    """The smallest arena a model runs in, and the probe that showed it.

    ``probe`` is the successful :class:`~.probe.ProbeResult` at that arena: pass it
    on (``TflmRunner(data, arena, probed=fit.probe)``) and nothing probes the model
    again. ``attempts`` is the number of arena sizes tried.
    """

    probe: ProbeResult
    attempts: int

    @property
    def needed_bytes(self) -> int:
        """The smallest arena (a multiple of 16 bytes) in which the model allocates and runs."""
        return self.probe.arena_limit

    @property
    def used_bytes(self) -> int | None:
        """What TFLM's allocator holds after allocating in that arena (smaller than
        :attr:`needed_bytes`; see the module docstring)."""
        return self.probe.arena_bytes_used


def _ceil16(n: int) -> int:
    return -(-int(n) // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


def min_arena(data: bytes, upper: int, timeout: float = DEFAULT_PROBE_TIMEOUT_S, *,
              spawn: Spawn | None = None) -> ArenaFit:
    """The smallest arena (a multiple of 16 bytes) in which the model allocates and runs.

    Call order: :func:`~.model.inspect_model` (raises :class:`ModelError`), then a
    probe at ``upper`` that must succeed; its measured "Arena allocation total"
    ``T`` is a lower bound (TFLM needs the persistent and planned bytes at once, plus
    temporary planning memory during allocation, which is why the answer is usually
    somewhat above ``T``). It then verifies ``ceil16(T)``, gallops upward in steps of
    ``max(256, T/4)`` (doubling) until a size succeeds, and bisects in 16-byte steps.
    Failures that print ``missing: N`` raise the lower bound to ``size + N`` at once.
    Success is assumed monotonic in the arena size.

    Side effects: every size is tried in one :class:`~.probe.ProbeSession`: one child
    process, plus one more after each size that crashed or hung TFLM. Typically 6-9
    sizes are tried, never more than :data:`MIN_ARENA_MAX_PROBES`. With the default
    ``spawn``, a model whose search already succeeded in this process with a result
    within ``upper`` is answered from memory, without a child (the answer depends only
    on the bytes); a ``spawn`` passed in always searches.

    Args:
        data: the .tflite bytes.
        upper: an arena size in bytes expected to be enough (e.g. the board's RAM).
        timeout: limit for each size tried, seconds.
        spawn: starts the child processes (default :class:`subprocess.Popen`).

    Returns:
        An :class:`ArenaFit`: ``needed_bytes`` is ``v`` such that the model runs in
        ``v`` bytes and not in ``v - 16`` (``v`` may exceed ``upper`` by up to 15 bytes
        when ``upper`` is not a multiple of 16 and nothing smaller works).

    Raises:
        ProbeError: the model fails even at ``upper``; ``exc.result`` is that probe
            (its ``failure`` says why: arena too small, unsupported op, ...).
        ModelError: the data is malformed, or the search ran out of attempts.
        ValueError: ``upper`` is not a positive int.
    """
    key = hashlib.sha256(bytes(data)).hexdigest() if spawn is None else None
    known = _FITS.get(key) if key is not None else None
    if known is not None and known.needed_bytes <= upper:
        return known
    with ProbeSession(data, timeout, spawn=spawn) as session:
        fit = _search(session, upper)
    if key is not None:
        _FITS[key] = fit
        while len(_FITS) > _FITS_KEPT:
            _FITS.pop(next(iter(_FITS)))
    return fit


_FITS: dict[str, ArenaFit] = {}
"""Model SHA-256 -> the smallest arena found in this process (default ``spawn`` only): the
answer depends on the bytes alone (and this TFLite Micro), so the gates' measurement, the
image check before an upload and the update manifest of the same model share one search."""
_FITS_KEPT = 64


def _search(session: ProbeSession, upper: int) -> ArenaFit:
    attempts = 0

    def run(n: int) -> ProbeResult:
        nonlocal attempts
        if attempts >= MIN_ARENA_MAX_PROBES:
            raise ModelError(
                f"min_arena gave up after {MIN_ARENA_MAX_PROBES} probes; the model's arena "
                "needs do not behave monotonically. Pick an arena by hand with probe()."
            )
        attempts += 1
        return session.probe(n)

    first = run(upper)
    if not first.ok:
        raise ProbeError(
            f"the model does not run even with an arena of {upper} bytes: {first.error}", first)
    hi, best = int(upper), first  # smallest size known to work, and its probe
    total = first.arena_bytes_used or ARENA_ALIGNMENT
    lo = _ceil16(total) - ARENA_ALIGNMENT  # largest size known (or assumed) to fail

    def worked(n: int, r: ProbeResult) -> None:
        nonlocal hi, best
        hi, best = n, r

    def failed_at(n: int, r: ProbeResult) -> None:
        nonlocal lo
        lo = max(lo, n)
        if r.missing_bytes:
            lo = max(lo, _ceil16(n + r.missing_bytes) - ARENA_ALIGNMENT)

    # 1. Verify the measured total.
    c = lo + ARENA_ALIGNMENT
    if c < hi:
        r = run(c)
        if r.ok:
            worked(c, r)
            # Confirm the assumed lower bound once; if it holds we are done.
            below = c - ARENA_ALIGNMENT
            if below > 0:
                r2 = run(below)
                if r2.ok:
                    worked(below, r2)
                    lo = 0
                else:
                    failed_at(below, r2)
        else:
            failed_at(c, r)
    # 2. Gallop upward until something works.
    step = max(256, _ceil16(total // 4))
    while hi - lo > ARENA_ALIGNMENT:
        c = _ceil16(lo + step)
        if c >= hi:
            break
        r = run(c)
        if r.ok:
            worked(c, r)
            break
        failed_at(c, r)
        step *= 2
    # 3. Bisect on multiples of 16 in (lo, hi].
    while hi - lo > ARENA_ALIGNMENT:
        mid = _ceil16(lo + (hi - lo) // 2)
        if mid >= hi:
            mid = hi - ARENA_ALIGNMENT if hi % ARENA_ALIGNMENT == 0 else hi - hi % ARENA_ALIGNMENT
        if mid <= lo:
            break
        r = run(mid)
        if r.ok:
            worked(mid, r)
        else:
            failed_at(mid, r)
    if hi % ARENA_ALIGNMENT:
        # Only `upper` itself (not a multiple of 16) was shown to work.
        v = _ceil16(hi)
        r = run(v)
        if not r.ok:
            raise ProbeError(f"an arena of {v} bytes unexpectedly failed: {r.error}", r)
        best = r
    return ArenaFit(probe=best, attempts=attempts)
