"""Which source feeds a virtual-board sensor: synthetic signals or recorded ones.

:func:`make_source` is the one place that knows both kinds, so :mod:`workbench.sim.sensors`
(synthetic) and :mod:`workbench.sim.replay` (recorded) never import each other.
"""
from __future__ import annotations

from .replay import ReplaySource
from .scenarios import Scenario
from .sensor_base import SensorLike
from .sensors import SensorSource

__all__ = ["make_source", "REPLAYS"]

REPLAYS = ("basicmotions",)
"""Recorded data sets a sensor can replay."""


def make_source(sensor: SensorLike, rate_hz: float | None = None,
                scenario: str | Scenario = "idle", seed: int = 0,
                replay: str | None = None) -> SensorSource | ReplaySource:
    """A source for ``sensor``: synthetic (:class:`SensorSource`) by default, or a replay of
    recorded data with ``replay="basicmotions"`` (:class:`ReplaySource`, accelerometers and
    gyroscopes only; needs aeon: :class:`workbench.refdata.DataUnavailable` otherwise).
    Raises ValueError for an unknown replay, scenario or sensor kind."""
    if replay is None:
        return SensorSource(sensor, rate_hz=rate_hz, scenario=scenario, seed=seed)
    if str(replay).lower() == "basicmotions":
        return ReplaySource(sensor, rate_hz=rate_hz, scenario=scenario, seed=seed)
    raise ValueError(f"unknown replay {replay!r}; available: {', '.join(REPLAYS)}")
