"""Virtual board controls: SIM_SCENARIO and SIM_FAULTS (docs/protocol.md 10.1, 10.2).
Real firmware answers these types UNKNOWN_TYPE."""

from __future__ import annotations

from dataclasses import dataclass, field

from .wire import Declared, Field


@dataclass(frozen=True)
class Text(Declared):
    """A single string (SIM_SCENARIO request)."""

    text: str

    WHAT = "text"
    LAYOUT = (Field("text", "str", doc="name"),)


@dataclass(frozen=True)
class ScenarioState(Declared):
    """SIM_SCENARIO reply: the scenario now running and all that are available."""

    current: str
    available: tuple[str, ...] = field(default_factory=tuple)

    WHAT = "SIM_SCENARIO response"
    LAYOUT = (Field("current", "str"), Field("available", "list", item="str"))


@dataclass(frozen=True)
class Faults(Declared):
    """SIM_FAULTS: fault injection on a virtual board (rates are per byte sent)."""

    drop_rate: float = 0.0
    flip_rate: float = 0.0
    power_cut_after: int = 0
    """Cut power after this many more model-update bytes are received (0 = never)."""
    disconnect: bool = False

    WHAT = "SIM_FAULTS"
    LAYOUT = (Field("drop_rate", "f32"), Field("flip_rate", "f32"),
              Field("power_cut_after", "u32"), Field("disconnect", "bool"))
