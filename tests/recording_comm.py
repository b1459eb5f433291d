"""A comm that records what a widget publishes, so widgets are tested without a kernel.

ipywidgets takes ``comm=`` like any trait; with this one, everything a widget would send
to the browser is kept in ``published``, and ``from_front`` delivers what a browser would.
"""

from __future__ import annotations

from comm.base_comm import BaseComm


class RecordingComm(BaseComm):
    """A comm that keeps what the widget publishes instead of sending it to a kernel."""

    def __init__(self, **kwargs):
        self.published: list[tuple[str, dict, list]] = []
        super().__init__(target_name="jupyter.widget", **kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        self.published.append((msg_type, data or {}, list(buffers or [])))

    def custom(self, kind: str | None = None) -> list[tuple[dict, list[bytes]]]:
        """The widget's custom messages as (content, buffers), optionally of one ``type``."""
        out = [(d["content"], [bytes(b) for b in bufs]) for k, d, bufs in self.published
               if k == "comm_msg" and d.get("method") == "custom"]
        return [m for m in out if kind is None or m[0].get("type") == kind]

    def state(self) -> dict:
        """Every trait value sent so far, latest wins."""
        out: dict = {}
        for k, d, _ in self.published:
            if k in ("comm_open", "comm_msg") and "state" in d:
                out.update(d["state"])
        return out

    def from_front(self, data: dict, buffers=()) -> None:
        """Deliver a comm message (a state update or a custom message) as the browser would."""
        self.handle_msg({"content": {"comm_id": self.comm_id, "data": data},
                         "buffers": list(buffers)})

    def send_custom(self, content: dict) -> None:
        """Deliver ``model.send(content)`` from the browser."""
        self.from_front({"method": "custom", "content": content})
