"""Putting a plotly figure into an ipywidgets ``Output``, safely for Voila and nbclient.

:func:`show_figure` sets the Output's ``outputs`` in one widget-state update, as plotly's
own mimetype. It never captures (``with out:``, ``out.clear_output()``): a capture makes
an nbclient-based executor (Voila, nbmake) send each captured output back to the kernel on
the shell channel, a synchronous send on the socket it is awaiting the cell's
``execute_reply`` on. That send can swallow the reply's wake-up (pyzmq's edge-triggered FD),
and the executor then waits forever: Voila never finishes rendering the page.
"""

from __future__ import annotations

import json


def show_figure(out, fig) -> None:
    """Make the plotly figure ``fig`` the only output of the Output widget ``out``."""
    import plotly.io as pio

    bundle = json.loads(pio.to_json(fig, validate=False))
    bundle["config"] = {"displaylogo": False, "responsive": True}
    out.outputs = ({"output_type": "display_data", "metadata": {},
                    "data": {"application/vnd.plotly.v1+json": bundle,
                             "text/plain": "<plotly figure>"}},)
