"""Put one model on one device: gates, upload, record. The headless verb behind the flash button.

Call order inside :func:`deploy_model`: the model is registered (when a registry is given and
it is not a registry version already), the deployment gates run for the device's board
(:func:`workbench.deploy.run_gates`; a report passed in is used as it is), a failed gate stops
here unless ``force=True`` (nothing has been sent), the model goes to the device's inactive
slot and is verified and committed (:meth:`workbench.link.Device.upload_model`; with
``delta="auto"``, the default, as a detools patch from the board's active image when the
registry holds that image and the patch is smaller), and the deployment is appended to the
registry with the gate report, what the device said and how the model travelled, also when
the upload failed. With ``key=`` what is sent is the model's signed update image
(:mod:`workbench.deploy.signing`; a registry version's stored one, signed and stored first if
it has none by this key), which a board provisioned with the key's public half accepts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..boards import get_board
from ..errors import WorkbenchError
from ..link import Device, LinkError, UploadPlan
from .gates import GateReport, run_gates
from .registry import Deployment, ModelRegistry, ModelVersion
from .sources import model_bytes

__all__ = ["deploy_model", "DeployResult"]


@dataclass
class DeployResult:
    """What :func:`deploy_model` did: the gate report, the slot the model now runs from
    (its state, size, SHA-256 and arena as the device reports them), the registry version
    and deployment record (None without a registry), and the seconds the upload took."""

    gates: GateReport
    slot: Any
    version: ModelVersion | None
    deployment: Deployment | None
    upload_seconds: float
    upload: UploadPlan | None = None
    """How the model was sent: the full image or a delta patch, and the bytes sent."""

    @property
    def forced(self) -> bool:
        return self.gates.forced


def _device_name(device: Device) -> str:
    info = device.info
    serial = getattr(info, "serial_number", "") if info is not None else ""
    return f"{device.url}#{serial}" if serial else device.url


def _signed(blob: bytes, version: ModelVersion | None, reg: ModelRegistry | None,
            signer: Any, name: str) -> bytes:
    """The signed update image to send: the registry's (stored on first use), else made."""
    if version is not None and reg is not None:
        return reg.sign(version, signer).read_signed_image()
    from .signing import make_update_image

    return make_update_image(version if version is not None else blob, key=signer,
                             name=version.name if version is not None else name)


def deploy_model(model: Any, device: Device, *, registry: ModelRegistry | str | Path | None = None,
                 name: str | None = None, gates: GateReport | None = None, force: bool = False,
                 progress: Callable[[int, int], None] | None = None,
                 key: Any = None, delta: bool | str = "auto", base: bytes | None = None,
                 test: bool = False, **gate_options: Any) -> DeployResult:
    """Gate ``model`` for ``device``'s board, upload it, commit it, and record the deployment.

    Args:
        model: a :class:`ModelVersion` of ``registry``, a :class:`workbench.optimize.Variant`,
            ``.tflite`` bytes or a path to a ``.tflite`` file.
        device: an open framed :class:`workbench.link.Device` (it must have answered HELLO:
            its board decides the gates).
        registry: where the model is registered and the deployment recorded (a
            :class:`ModelRegistry` or its folder); None records nothing.
        name: the model's name in the registry (default: the variant's name).
        gates: a :class:`GateReport` already run for this model and board; without it the
            gates run here with ``gate_options`` (``data=``, ``reference=``,
            ``measurement=``, ``min_accuracy=``, ``latency_budget_ms=``, ... as
            :func:`workbench.deploy.run_gates` takes them).
        force: deploy although a gate failed; the deployment is recorded as forced.
        progress: ``progress(sent_bytes, total_bytes)`` during the upload (``total_bytes``
            is the patch's size when a delta is sent).
        delta: ``"auto"`` (default): send a detools patch from the board's active image
            instead of the image when that is possible and smaller; the active image comes
            from ``base`` or, by its SHA-256 (SLOT_STATUS), from ``registry``. ``False``:
            always the full image; ``True``: a delta or an error
            (:meth:`workbench.link.Device.upload_model`, docs/protocol.md 7.5).
        base: the bytes of the model the board runs now, if the registry does not hold it.
        key: sign the model and send its update image (a
            :class:`~workbench.deploy.signing.SigningKey`, or a private key PEM path or
            bytes). Needed for a board with the SIGNED_ONLY capability; without it such a
            board refuses the model before any byte is sent (``ImageUnsigned``). The gates
            run on the model itself; the device reports the image's SHA-256.
        test: a test switch instead of a permanent one (MCUboot's semantics,
            docs/protocol.md 7.4): the model is sent as an update image carrying its
            manifest (signed with ``key`` if given, else unsigned), the board runs it at
            once and self-tests it on the manifest's golden pairs. When they match, the
            board confirms it (the slot is ACTIVE); when they do not, it reverts and
            ``SelfTestFailed`` is raised; a board without a self-test leaves it on trial
            (TESTING: ``device.confirm_model()`` keeps it, a reset reverts it).

    Side effects: writes the model into the device's inactive slot and makes it active (the
    previous model becomes the fallback); with a registry, may add a version and always
    appends one deployment line, also when the upload fails.

    Raises:
        GateFailed: a gate failed and ``force`` is False; nothing was sent.
        SigningError: ``key`` cannot sign (checked before the gates run).
        workbench.link.ImageUnsigned: the board accepts only signed images and no ``key``
            was given; nothing was sent (recorded as a failed deployment).
        workbench.link.SelfTestFailed: with ``test=True``, the board's self-test rejected the
            model and it runs the previous one again (recorded as a failed deployment).
        workbench.link.NotFramed: the device is a line-mode sketch (it cannot take models).
        workbench.link.LinkError: the upload failed (a device error such as
            ``ModelTooLarge``, or a lost link); the registry has the failed deployment.
    """
    if device.info is None:
        device.hello()
    board = get_board(device.info.board_id)
    reg = registry if isinstance(registry, ModelRegistry) or registry is None \
        else ModelRegistry(registry)
    signer = None
    if key is not None:
        from .signing import load_key

        signer = load_key(key)
    version = model if isinstance(model, ModelVersion) else None
    if version is None and reg is not None:
        version = reg.register(model, name=name, measurement=gate_options.get("measurement"))
    blob = model_bytes(version if version is not None else model, verb="deploy")[0]

    report = gates if gates is not None else run_gates(
        model if version is None else blob, board, **gate_options)
    report.require(force=force)

    label = version.label if version is not None else (name or getattr(model, "name", "") or "model")
    sent = blob
    if signer is not None:
        sent = _signed(blob, version, reg, signer, name or label)
    elif test:  # the manifest travels in an (unsigned) update image, for the self-test
        from .signing import make_update_image

        sent = make_update_image(version if version is not None else blob,
                                 name=version.name if version is not None else label)
    plans: list[UploadPlan] = []
    started = time.perf_counter()
    try:
        slot = device.upload_model(sent, name=label, progress=progress, delta=delta, test=test,
                                   base=base if base is not None else _registry_base(reg),
                                   on_plan=plans.append)
    except LinkError as exc:
        if version is not None:
            reg.record_deployment(version, device=_device_name(device), gates=report,
                                  forced=report.forced,
                                  result={"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        raise
    seconds = time.perf_counter() - started
    deployment = None
    if version is not None:
        deployment = reg.record_deployment(
            version, device=_device_name(device), gates=report, forced=report.forced,
            result={"ok": True, "slot": slot.index, "state": slot.state.name,
                    "arena_bytes": slot.arena_bytes, "sha256": slot.sha256.hex(),
                    "signed_by": signer.key_hash if signer is not None else None,
                    "switch": "test" if test else "permanent",
                    "upload_seconds": round(seconds, 3), "route": plans[-1].kind,
                    "sent_bytes": plans[-1].sent_bytes, "route_reason": plans[-1].reason})
    return DeployResult(gates=report, slot=slot, version=version, deployment=deployment,
                        upload_seconds=seconds, upload=plans[-1] if plans else None)


def _registry_base(reg: ModelRegistry | None) -> Callable[[str], bytes | None] | None:
    """The registry's model bytes, or a version's stored signed image, by SHA-256 (None
    when it holds no readable one)."""
    if reg is None:
        return None

    def lookup(sha256: str) -> bytes | None:
        try:
            version = reg.find(sha256)
            if version is not None:
                return version.read_model()
            for name in reg.models():        # the board may run a version's signed image
                for v in reg.versions(name):
                    if (v.signed_image or {}).get("sha256") == sha256:
                        return v.read_signed_image()
        except WorkbenchError:  # changed on disk: not a base to patch from
            return None
        return None

    return lookup
