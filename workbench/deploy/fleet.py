"""Update a fleet: one model onto several devices, each device's state reported as it changes.

Call order inside :func:`update_fleet`: every device says HELLO (when it has not yet) and
its slot table is read, so each one's board and running model are known; a device already
running the model (same SHA-256 in its active slot) is left alone (``up to date``); the
deployment gates run **once per board type** (:func:`workbench.deploy.run_gates`), and the
devices of a board whose gates failed are refused without a byte sent (unless ``force``);
then the others are updated in parallel, each through :func:`workbench.deploy.deploy_model`
with its board's gate report, so every deployment is recorded in the registry as a single
one would be. A device that fails (a lost link, a refusal) does not stop the others: its
row says why.

``on_change(index, update)`` is called from the worker threads after every change of a
device's :class:`DeviceUpdate` (state, bytes sent); it must be quick and thread-safe (the
fleet panel only stores and redraws).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..link import Device, LinkError
from .flashing import DeployResult, deploy_model
from .gates import GateReport, run_gates
from .registry import ModelRegistry, ModelVersion
from .sources import model_bytes

__all__ = ["DeviceUpdate", "update_fleet", "FLEET_STATES"]

#: Every state a :class:`DeviceUpdate` goes through, in order (the last four are final).
FLEET_STATES = ("waiting", "checking", "sending", "done", "up to date", "refused", "failed")


@dataclass
class DeviceUpdate:
    """One device's part of a fleet update.

    ``state``: one of :data:`FLEET_STATES`. ``board``: the catalog id it reported (None
    before HELLO or for a device that did not answer). ``running``: what its active slot
    held before the update (``"name (sha256 prefix)"``, or ``"no model"``). ``sent`` and
    ``total``: bytes acknowledged of the upload. ``result``: the :class:`DeployResult` when
    done; ``message``: why it was refused or failed, or what it runs now.
    """

    url: str
    state: str = "waiting"
    board: str | None = None
    running: str = ""
    sent: int = 0
    total: int = 0
    result: DeployResult | None = None
    message: str = ""
    gates: GateReport | None = field(default=None, repr=False)

    @property
    def final(self) -> bool:
        return self.state in ("done", "up to date", "refused", "failed")

    @property
    def ok(self) -> bool:
        """True when the device now runs the model (updated, or it already did)."""
        return self.state in ("done", "up to date")


def _running(device: Device) -> tuple[str, str]:
    """(label, SHA-256 hex) of the device's active slot; ("no model", "") when none."""
    table = device.slots()
    if table.active >= len(table.slots):
        return "no model", ""
    slot = table.slots[table.active]
    return f"{slot.name or 'a model'} ({slot.sha256.hex()[:12]})", slot.sha256.hex()


def update_fleet(model: Any, devices: Sequence[Device], *,
                 registry: ModelRegistry | str | None = None, force: bool = False,
                 workers: int | None = None,
                 on_change: Callable[[int, DeviceUpdate], None] | None = None,
                 **gate_options: Any) -> list[DeviceUpdate]:
    """Gate ``model`` once per board type and deploy it to every device that needs it.

    Args:
        model: what :func:`deploy_model` takes (a registry :class:`ModelVersion`, a
            Variant, ``.tflite`` bytes or a path).
        devices: open framed :class:`workbench.link.Device` objects (one per board; the
            same device twice is refused with ValueError).
        registry: where the model is registered (once) and every deployment recorded.
        force: deploy although a gate failed (each deployment is recorded as forced).
        workers: uploads at a time (default: all devices at once; each has its own link).
        on_change: ``on_change(index, update)`` after each change (see the module docstring).
        gate_options: passed to :func:`run_gates` (``data=``, ``measurement=``, ...).

    Returns one :class:`DeviceUpdate` per device, in order, all in a final state.
    Side effects: writes the model into each updated device's inactive slot and commits it;
    appends deployments to the registry. Raises only for bad arguments (ValueError for no
    devices or a repeated one, the model readers' errors for an unreadable model): a
    device's failure is its row's ``failed`` state.
    """
    if not devices:
        raise ValueError("no devices to update")
    if len({id(d) for d in devices}) != len(devices):
        raise ValueError("the same device is listed twice")
    reg = registry if registry is None or isinstance(registry, ModelRegistry) \
        else ModelRegistry(registry)
    if reg is not None and not isinstance(model, ModelVersion):
        model = reg.register(model, measurement=gate_options.get("measurement"))
    blob = model_bytes(model, verb="update a fleet with")[0]
    digest = hashlib.sha256(blob).hexdigest()
    updates = [DeviceUpdate(url=d.url, total=len(blob)) for d in devices]
    lock = threading.Lock()

    def change(i: int, **fields: Any) -> None:
        with lock:
            for k, v in fields.items():
                setattr(updates[i], k, v)
        if on_change is not None:
            on_change(i, updates[i])

    # who is who, and who needs the model
    todo: list[int] = []
    for i, dev in enumerate(devices):
        change(i, state="checking")
        try:
            if dev.info is None:
                dev.hello()
            label, sha = _running(dev)
        except LinkError as exc:
            change(i, state="failed", message=f"{type(exc).__name__}: {exc}")
            continue
        change(i, board=dev.info.board_id, running=label)
        if sha == digest:
            change(i, state="up to date", sent=0, message=f"already runs {label}")
        else:
            todo.append(i)

    # the gates, once per board type
    reports: dict[str, GateReport] = {}
    for board in sorted({updates[i].board for i in todo}):
        try:
            reports[board] = run_gates(
                blob if isinstance(model, ModelVersion) else model, board, **gate_options)
        except Exception as exc:  # noqa: BLE001 - the board's devices say why
            for i in todo:
                if updates[i].board == board:
                    change(i, state="failed", message=f"the gates could not run: {exc}")
    ready = []
    for i in todo:
        report = reports.get(updates[i].board)
        if report is None:
            continue
        if report.failed and not force:
            names = ", ".join(g.name for g in report.failed)
            change(i, state="refused", gates=report,
                   message=f"not sent: gate(s) failed for {updates[i].board}: {names}")
        else:
            change(i, gates=report)
            ready.append(i)

    def one(i: int) -> None:
        change(i, state="sending", sent=0)

        def progress(sent: int, total: int) -> None:
            change(i, sent=sent, total=total)

        try:
            result = deploy_model(model, devices[i], registry=reg, gates=updates[i].gates,
                                  force=force, progress=progress)
        except Exception as exc:  # noqa: BLE001 - one device's failure is its row's
            change(i, state="failed", message=f"{type(exc).__name__}: {exc}")
            return
        slot = result.slot
        change(i, state="done", result=result, sent=updates[i].total,
               message=f"runs it from slot {'AB'[slot.index] if slot.index < 2 else slot.index}"
                       f" ({slot.state.name.lower()}), {result.upload_seconds:.1f} s"
                       + (" (FORCED past a failed gate)" if result.forced else ""))

    if ready:
        with ThreadPoolExecutor(max_workers=workers or len(ready),
                                thread_name_prefix="fleet update") as pool:
            list(pool.map(one, ready))
    return updates
