"""Model transfer: windowed, go-back-N, resumable uploads into a board's model slots.

Call order for :func:`upload_model`: the host's image check
(:mod:`.image_check`, unless ``check=False``), then on the wire MODEL_BEGIN (size, SHA-256)
-> MODEL_CHUNK x N (up to the device's window in flight) -> MODEL_END (the
device verifies the hash and that the model runs in its arena) ->
MODEL_COMMIT (permanent, or a test switch) -> MODEL_CONFIRM (:func:`confirm`, after a
test switch). With ``delta=`` the object sent may be a detools patch from the
board's active image instead (MODEL_BEGIN's DELTA flag, :mod:`.delta`).
:func:`send_chunks` is the windowed sender, shared with large inference inputs
(SET_INPUT).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..protocol import messages as m
from . import waits
from .delta import DeltaError, DeltaUnavailable, make_patch
from .errors import (
    ConnectionLost,
    DeltaBaseMismatch,
    InvalidSetting,
    LinkError,
    LinkTimeout,
    ModelTooLarge,
    NotSupported,
    OutOfOrder,
    VerifyFailed,
)
from .image_check import check_image

if TYPE_CHECKING:
    from .session import Pending, Session

CHUNK_HEADER = 8
"""Bytes of a chunk payload that are not data (index, offset): a chunk carries
``max_payload - CHUNK_HEADER`` bytes of the object."""
CHUNK_FRAME_OVERHEAD = 32
"""Bytes added to each chunk when estimating its wire time (frame header, CRC, stuffing)."""
REWIND_PAUSE_MAX = 0.5
"""Most seconds to wait, after a rewind, for answers to the abandoned chunks to drain."""


def send_chunks(session: Session, mtype: int, index: int, data: bytes, *, start: int = 0,
                chunk: int | None = None, window: int = 1,
                progress: Callable[[int, int], None] | None = None) -> None:
    """Send ``data[start:]`` as chunk requests with up to ``window`` in flight.

    Each chunk is acknowledged with the next offset the device expects; an
    OUT_OF_ORDER error or a time-out rewinds to the device's offset (go-back-N).
    ``progress(acked, total)`` is called after each acknowledgement. Raises
    :class:`LinkTimeout` after ``timeouts.chunk_retries`` re-sends of the same
    offset, :class:`ConnectionLost` if the port closes, and the device's own
    error for anything else it refuses.
    """
    chunk = chunk or (session.max_payload - CHUNK_HEADER)
    total = len(data)
    acked = start
    inflight: deque[Pending] = deque()
    sent = start
    attempts_at: dict[int, int] = {}
    wait = session.timeouts.request + session.wire_time(
        (chunk + CHUNK_FRAME_OVERHEAD) * (window + 1))
    try:
        while acked < total:
            while sent < total and len(inflight) < window:
                piece = data[sent : sent + chunk]
                inflight.append(session.begin(mtype, m.Chunk(index, sent, piece).encode()))
                sent += len(piece)
            p = inflight[0]
            ok = waits.wait(p.done, wait) and p.frame is not None
            if session.lost:
                raise ConnectionLost(session.lost)
            rewind_to = None
            if ok:
                try:
                    acked = max(acked, m.Offset.decode(session.result(p).payload).offset)
                    inflight.popleft()
                    session.finish(p)
                    if progress:
                        progress(acked, total)
                    continue
                except OutOfOrder as e:
                    rewind_to = e.detail
            else:
                session.stats.timeouts += 1
                rewind_to = acked
            # go back: forget everything in flight and resend from the device's offset
            for q in inflight:
                session.finish(q)
            inflight.clear()
            attempts_at[rewind_to] = attempts_at.get(rewind_to, 0) + 1
            if attempts_at[rewind_to] > session.timeouts.chunk_retries:
                raise LinkTimeout(f"{m.Msg(mtype).name} at offset {rewind_to} failed "
                                  f"{attempts_at[rewind_to]} times; the link is too noisy. "
                                  "Check the cable, or lower the baud rate.")
            if rewind_to > total:
                raise LinkError(f"{m.Msg(mtype).name}: the device expects offset {rewind_to} "
                                f"of a {total}-byte object")
            session.stats.retries += 1
            # let answers to the abandoned requests arrive (they are ignored), then resend
            waits.sleep(min(REWIND_PAUSE_MAX,
                           session.wire_time((chunk + CHUNK_FRAME_OVERHEAD) * window) + 0.05))
            acked = max(acked, rewind_to)
            sent = rewind_to
    finally:
        for q in inflight:
            session.finish(q)


@dataclass(frozen=True)
class UploadPlan:
    """How :func:`upload_model` sends a model: ``kind`` "full" (the image) or "delta" (a
    patch from the board's active image), the bytes of the image and of the object sent
    (before framing), and why this route was taken."""

    kind: str
    image_bytes: int
    sent_bytes: int
    reason: str
    base_sha256: str = ""
    """SHA-256 (hex) of the image a delta was made from; empty for a full upload."""


BaseSource = bytes | Callable[[str], bytes | None] | None
"""What ``base=`` takes: the active image's bytes, or a function from its SHA-256 (hex)
to its bytes (None: unknown), or None."""


def upload_model(session: Session, model: bytes, *, slot: int | None = None, name: str = "",
                 commit: bool = True, check: bool = True, test: bool = False,
                 progress: Callable[[int, int], None] | None = None,
                 delta: bool | str = False, base: BaseSource = None,
                 on_plan: Callable[[UploadPlan], None] | None = None) -> m.SlotInfo:
    """Check a model, send it to a model slot, verify it, and (by default) commit it.

    ``model`` is a ``.tflite`` model or an update image (MCUboot's format with the model
    as payload, :mod:`workbench.deploy.signing`; docs/protocol.md 7.6), sent as it is: the
    board stores the image, runs its payload, and reports the SHA-256 of what was sent.
    A board with the SIGNED_ONLY capability accepts only images signed by a key it was
    provisioned with; the host check refuses anything else before the first byte
    (:class:`ImageUnsigned`).

    Call order: with ``check=True`` (the default) the image is checked on the
    host first (:func:`.image_check.check_image` against the board's HELLO
    answer: valid, no hybrid ops, kernels, slot size, tensor arena), so a bad
    image raises before MODEL_BEGIN and nothing on the board changes. Only an
    image that passed is sent with REPLACE_FALLBACK, the consent to overwrite
    the fallback slot if the board has no other free slot (docs/protocol.md
    7.4). With ``check=False`` nothing is checked here and the flag is not
    set: the board verifies at MODEL_END as always, and refuses to write over
    its fallback (:class:`SlotFallback`).

    Delta updates (docs/protocol.md 7.5): with ``delta=True`` or ``"auto"``, after the
    image check, SLOT_STATUS gives the active image's SHA-256; ``base`` supplies that
    image (its bytes, or a function from the SHA-256 in hex to the bytes or None), and
    the host makes a detools patch (:func:`.delta.make_patch`) and sends it with
    MODEL_BEGIN's DELTA flag; the board rebuilds the new image from its active slot into
    the target slot and verifies it as a full upload. ``"auto"`` sends the full image
    instead when the board lacks the DELTA capability, no model is active, the base is
    unknown or not the active image, detools is missing, or the patch is not smaller than
    the image, and also when the board refuses the delta (DELTA_BASE_MISMATCH, a patch
    too large for its buffer, a rebuilt image that does not verify). ``True`` raises in
    those cases. ``on_plan(UploadPlan)`` is called before each route is sent.

    The running model stays active until the commit and is never overwritten.
    With ``test=True`` the commit is a test switch: the new model runs at once, and
    the board returns to the previous one at its next reset unless :func:`confirm`
    is called (docs/protocol.md 5.11, 7.4).

    An interrupted upload of the same image resumes where the device's flash
    says it stopped (its last progress mark: a multiple of 1024 bytes, so at
    most 1023 stored bytes and the chunks in flight are sent again; a delta
    patch: where the board's RAM says, if it was not reset). What a failed
    or interrupted upload costs: the target slot only (empty, a spare, or, with
    REPLACE_FALLBACK, the old fallback, which is no longer a rollback target from
    MODEL_BEGIN on).

    Raises :class:`ModelTooLarge`, :class:`ArenaTooSmall`, :class:`UnsupportedOp`,
    :class:`ModelInvalid`, :class:`ImageUnsigned`, :class:`SignatureInvalid` (from the
    host check, or the device's verdicts),
    :class:`VerifyFailed`, :class:`SlotActive`, :class:`SlotFallback`,
    :class:`NotFramed` on a line-mode sketch; with ``delta=True``
    :class:`DeltaBaseMismatch`, :class:`~.delta.DeltaError` (no delta possible: the
    message says why), :class:`~.delta.DeltaUnavailable` (detools missing).
    """
    session.require_framed("a model upload")
    if delta not in (False, True, "auto"):
        raise InvalidSetting(f"delta={delta!r}: use False, True or 'auto'")
    flags = m.BeginFlag(0)
    if check:
        if session.info is None:
            raise LinkError("the board's HELLO answer is unknown; cannot check the image")
        check_image(model, session.info)
        flags |= m.BeginFlag.REPLACE_FALLBACK
    digest = hashlib.sha256(model).digest()
    full = UploadPlan("full", len(model), len(model), "a full upload was asked for")
    if delta:
        plan, patch = _delta_plan(session, model, delta, base)
        if patch is None:
            full = plan
        else:
            if on_plan:
                on_plan(plan)
            try:
                return _send(session, patch, m.ModelBegin(
                    m.NO_SLOT if slot is None else slot, len(patch), digest, name,
                    flags | m.BeginFlag.DELTA, len(model), bytes.fromhex(plan.base_sha256)),
                    commit=commit, test=test, progress=progress)
            except (DeltaBaseMismatch, ModelTooLarge, NotSupported, VerifyFailed) as e:
                if delta is True:
                    raise
                full = UploadPlan("full", len(model), len(model),
                                  f"the board refused the delta ({type(e).__name__}: {e}); "
                                  "sent the full image")
    if on_plan:
        on_plan(full)
    return _send(session, model, m.ModelBegin(m.NO_SLOT if slot is None else slot, len(model),
                                              digest, name, flags),
                 commit=commit, test=test, progress=progress)


def _send(session: Session, data: bytes, begin: m.ModelBegin, *, commit: bool, test: bool,
          progress: Callable[[int, int], None] | None) -> m.SlotInfo:
    """MODEL_BEGIN, the chunks of ``data`` from the resume offset, MODEL_END, commit."""
    begun = m.ModelBegun.decode(session.request(m.Msg.MODEL_BEGIN, begin.encode()).payload)
    send_chunks(session, m.Msg.MODEL_CHUNK, begun.slot, data, start=begun.resume_offset,
                chunk=min(begun.chunk_max, session.max_payload - CHUNK_HEADER),
                window=max(1, begun.window), progress=progress)
    m.ModelVerified.decode(session.request(m.Msg.MODEL_END, timeout=session.timeouts.verify,
                                           retries=1).payload)
    if commit:
        commit_slot(session, begun.slot, test=test)
    return slot_table(session).slots[begun.slot]


def _delta_plan(session: Session, model: bytes, delta: bool | str,
                base: BaseSource) -> tuple[UploadPlan, bytes | None]:
    """The delta route and its patch, or (the full route and why, None). With
    ``delta=True`` every reason not to send a delta raises instead."""

    def no(reason: str, error: type[Exception] = DeltaError, **kw) -> tuple[UploadPlan, None]:
        if delta is True:
            raise error(f"no delta update: {reason}", **kw)
        return UploadPlan("full", len(model), len(model), reason), None

    info = session.info
    if info is None or not info.capabilities & m.Capability.DELTA:
        return no("the board does not apply delta patches (no DELTA capability in HELLO)")
    table = slot_table(session)
    if table.active == m.NO_SLOT:
        return no("no model is active on the board, so there is nothing to patch")
    active = table.slots[table.active]
    active_sha = active.sha256.hex()
    image = base(active_sha) if callable(base) else base
    if image is None:
        return no(f"the host does not have the board's active image {active.name!r} "
                  f"(SHA-256 {active_sha[:16]}...); pass it as base=")
    if hashlib.sha256(image).hexdigest() != active_sha:
        return no(f"base= is not the board's active image {active.name!r} "
                  f"(SHA-256 {active_sha[:16]}...)", DeltaBaseMismatch, detail=table.active)
    try:
        patch = make_patch(image, model)
    except DeltaUnavailable:
        if delta is True:
            raise
        return no("detools is not installed (pip install 'tinyml-workbench[deploy]')")
    if delta == "auto" and len(patch) >= len(model):
        return no(f"the patch ({len(patch):,} B) is not smaller than the image "
                  f"({len(model):,} B)")
    return UploadPlan("delta", len(model), len(patch),
                      f"a {len(patch):,}-byte patch from the active image {active.name!r} "
                      f"({len(patch) / len(model):.1%} of the image)", active_sha), patch


def commit_slot(session: Session, slot: int, test: bool = False) -> int:
    """Make a verified slot the active model; returns it.

    Permanent (default): the old model becomes the fallback and the switch never
    reverts by itself. ``test=True``: the model runs now and the board reverts to the
    previous one at its next reset unless :func:`confirm` is called first (slot
    state TESTING meanwhile). A permanent commit is sent without the flags byte, so
    firmware older than it accepts it. Raises :class:`BadArgument` for a slot that
    holds no verified image, :class:`SelfTestFailed` if the board's self-test
    rejected a test switch (it reverted already).
    """
    session.require_framed("commit")
    flags = m.CommitFlag.TEST if test else m.CommitFlag(0)
    return m.SlotRef.decode(session.request(
        m.Msg.MODEL_COMMIT, m.ModelCommit(slot, flags).encode(),
        timeout=session.timeouts.verify).payload).slot


def confirm(session: Session) -> int:
    """Keep the model running on a test switch (MODEL_CONFIRM): it no longer reverts at
    reset. Returns its slot. Raises :class:`NotPending` if no test switch is on trial
    (e.g. the board was reset in between and reverted it: check :func:`slot_table`)."""
    session.require_framed("confirm")
    return m.SlotRef.decode(session.request(m.Msg.MODEL_CONFIRM,
                                            timeout=session.timeouts.verify).payload).slot


def rollback(session: Session) -> int:
    """Return to the previous model: revert a test switch on trial, else switch to the
    fallback. Returns the slot now active. Raises :class:`NoFallback`."""
    session.require_framed("rollback")
    return m.SlotRef.decode(session.request(m.Msg.MODEL_ROLLBACK,
                                            timeout=session.timeouts.verify).payload).slot


def slot_table(session: Session) -> m.SlotTable:
    """State of every model slot (size, SHA-256, bytes written, arena needed)."""
    session.require_framed("slot status")
    return m.SlotTable.decode(session.request(m.Msg.SLOT_STATUS).payload)
