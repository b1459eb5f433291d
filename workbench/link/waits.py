"""The link's blocking waits, with a cooperative hook for a kernel that must keep listening.

Every wait of the link that may run on a notebook cell's thread (a request's answer, a
stream's next block, a model chunk's acknowledgement, a capture's end) goes through
:func:`wait`, :func:`get` or :func:`sleep`; a lock that another thread may hold while it
waits for the board is taken with :func:`hold`. Without a pump they are plain
``Event.wait`` / ``Queue.get`` / ``time.sleep``.

Why a pump: a board reached through the browser (``webserial://``, see :mod:`.webserial`)
delivers its bytes as widget messages, and a Jupyter kernel without subshells handles
those on its main thread only between cells. A cell blocked in a wait would starve the
very bytes it waits for. The layer that knows the kernel (``workbench.ui.webserial``)
installs a pump with :func:`set_pump`; a wait on the main thread then processes the
kernel's pending UI messages every :data:`PUMP_SLICE` seconds while it waits. Waits on
any other thread (the reader thread, a recorder's thread) never pump.

The pump is a callable that returns a context manager yielding ``poll()`` (handle the
pending messages, return at once), or None when it has nothing to do now (no browser
port in use, messages already arrive on a subshell, not inside a cell). A wait entered
while a pump is polling (a message handler that waits) does not pump again.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager, nullcontext

PUMP_SLICE = 0.005
"""Seconds between two polls of the pump while a wait pumps."""

Pump = Callable[[], "AbstractContextManager[Callable[[], None]] | None"]

_pump: Pump | None = None
_state = threading.local()
_polling = 0  # polls in progress (a pump may handle messages on a thread of its own)


def set_pump(pump: Pump | None) -> Pump | None:
    """Install ``pump`` (None removes it); returns the one it replaces."""
    global _pump
    old, _pump = _pump, pump
    return old


def get_pump() -> Pump | None:
    """The installed pump, or None."""
    return _pump


def _session() -> AbstractContextManager[Callable[[], None]] | None:
    """The pump's polling context if this wait should pump, else None."""
    pump = _pump
    if (pump is None or threading.current_thread() is not threading.main_thread()
            or getattr(_state, "pumping", False)):
        return None
    return pump()


def until(predicate: Callable[[], object], timeout: float | None = None,
          period: float = 0.01) -> bool:
    """Wait until ``predicate()`` is true, checking it every ``period`` seconds (every
    :data:`PUMP_SLICE` while pumping); False after ``timeout`` seconds (None: no limit)."""
    session = _session()
    deadline = None if timeout is None else time.monotonic() + timeout
    with session if session is not None else nullcontext() as poll:
        while True:
            if poll is not None:
                _poll(poll)
            if predicate():
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            step = PUMP_SLICE if poll is not None else period
            time.sleep(step if left is None else min(step, left))


def wait(event: threading.Event, timeout: float | None = None) -> bool:
    """``event.wait(timeout)``, pumping the kernel's messages while it waits (see above)."""
    session = _session()
    if session is None:
        return event.wait(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    with session as poll:
        while True:
            _poll(poll)
            if event.is_set():
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            if event.wait(PUMP_SLICE if left is None else min(PUMP_SLICE, left)):
                return True


def get(q: queue.Queue, timeout: float | None = None):
    """``q.get(timeout=timeout)`` (raises ``queue.Empty`` after it), pumping while it waits."""
    session = _session()
    if session is None:
        return q.get(timeout=timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    with session as poll:
        while True:
            _poll(poll)
            left = None if deadline is None else deadline - time.monotonic()
            try:
                return q.get(timeout=PUMP_SLICE if left is None else max(0.0, min(PUMP_SLICE,
                                                                                     left)))
            except queue.Empty:
                if left is not None and left <= 0:
                    raise


@contextmanager
def hold(lock):
    """``with lock:``, pumping while it waits for the lock (a cell must not block the page's
    messages that the lock's holder, on another thread, may be waiting for). Re-entrant for
    an RLock the thread holds already."""
    if not lock.acquire(blocking=False):
        if _session() is None:
            lock.acquire()
        else:
            until(lambda: lock.acquire(blocking=False))
    try:
        yield
    finally:
        lock.release()


def sleep(seconds: float) -> None:
    """``time.sleep(seconds)``, pumping while it sleeps."""
    if seconds > 0:
        wait(threading.Event(), seconds)


def polling() -> bool:
    """True while a pump is polling: the messages handled now were pumped by a wait (on
    whichever thread the pump uses), not delivered by the kernel on its own."""
    return _polling > 0


def _poll(poll: Callable[[], None]) -> None:
    global _polling
    _state.pumping = True
    _polling += 1
    try:
        poll()
    finally:
        _polling -= 1
        _state.pumping = False
