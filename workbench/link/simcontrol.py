"""The virtual board's controls: what it is doing (scenario) and faults to inject.

Only a board whose HELLO reports :attr:`Capability.SIMULATED
<workbench.protocol.messages.Capability.SIMULATED>` has them (docs/protocol.md,
SIM_SCENARIO and SIM_FAULTS). On any other board every control raises
:class:`NotSupported` before anything is sent, saying what to do instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol import messages as m
from .errors import NotSupported

if TYPE_CHECKING:
    from .session import Session


class SimControls:
    """Controls of a virtual board, reached as ``dev.sim``.

    ``dev.sim.available`` says whether the board has them; ``dev.sim.scenario("walking")``
    and ``dev.sim.inject_faults(m.Faults(...))`` raise :class:`NotSupported` on a
    real board and :class:`NotFramed` on a line-mode sketch.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def available(self) -> bool:
        """True when the board reported SIMULATED in its HELLO answer."""
        info = self._session.info
        return (self._session.mode == "framed" and info is not None
                and bool(info.capabilities & m.Capability.SIMULATED))

    def _require(self, what: str) -> None:
        self._session.require_framed(what)
        if not self.available:
            info = self._session.info
            who = f"{info.board_name} (firmware {info.firmware})" if info else "this board"
            raise NotSupported(f"{what} exist only on a virtual board (a sim:// URL); "
                               f"{self._session.url} is {who}, a real board. Make it do the "
                               "thing for real (move it, make the sound) instead.")

    def scenario(self, name: str = "") -> m.ScenarioState:
        """Set what the board is 'doing' (``walking``, ``wave``...); an empty name only asks.

        Returns the current scenario and the ones available. Raises
        :class:`BadArgument` (listing them) for an unknown name.
        """
        self._require("scenarios")
        return m.ScenarioState.decode(self._session.request(m.Msg.SIM_SCENARIO,
                                                       m.Text(name).encode()).payload)

    def inject_faults(self, faults: m.Faults) -> None:
        """Drop or flip bytes, cut power after N bytes of an update, or disconnect.

        With ``disconnect`` the board goes away instead of answering: the request
        is sent and not awaited, and the next operation raises :class:`ConnectionLost`.
        """
        self._require("fault injections")
        if faults.disconnect:
            self._session.finish(self._session.begin(m.Msg.SIM_FAULTS, faults.encode()))
            return
        self._session.request(m.Msg.SIM_FAULTS, faults.encode())

    def __repr__(self) -> str:
        return f"<SimControls {'available' if self.available else 'not available'}>"
