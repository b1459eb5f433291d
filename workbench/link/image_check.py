"""The host's check of a model image before its first byte goes to a board.

A board verifies an image only at MODEL_END, after every byte is in its flash,
and with two slots the bytes may overwrite the fallback model. So the host asks
the same questions first, in the device's order (docs/protocol.md 5.8, 5.10),
and raises the error the device would, with the real reason and the numbers:

1. the image fits a model slot (:class:`ModelTooLarge`, detail = slot bytes);
   an update image (MCUboot's format, docs/protocol.md 7.6) is then opened: its
   structure and SHA-256 TLV (:class:`ModelInvalid`, :class:`SignatureInvalid`),
   and on a board with the SIGNED_ONLY capability a raw model or an image without
   a signature is :class:`ImageUnsigned`, the fix in the message (the host cannot
   check the signature itself: it does not know the board's keys). The checks
   below run on the image's payload, the model;
2. it is a valid ``.tflite`` (:func:`workbench.tflite.inspect_model`;
   :class:`ModelInvalid`);
3. it is not a dynamic-range ("hybrid") model (:func:`workbench.tflite.hybrid_ops`;
   :class:`UnsupportedOp` naming it hybrid: TFLite Micro has no hybrid kernels);
4. it runs in TFLite Micro in the board's tensor arena (a board whose catalog runtime is
   LiteRT, a Linux board's runner: it loads and runs in LiteRT instead, hybrid models
   allowed, no arena)
   (:func:`workbench.tflite.min_arena`, in a child process): :class:`UnsupportedOp`
   with the missing kernels by name, :class:`ArenaTooSmall` with the arena the
   model needs and the one the board has, else :class:`ModelInvalid`.

Call order: ``check_image(model, dev.info)`` (or a catalog ``Board``) before
:func:`~.transfer.upload_model`, which calls it itself unless ``check=False``.
The kernels are those of the TFLite Micro the workbench runs (the virtual
board's firmware); a board whose firmware registers fewer ops is not modelled
here, its own MODEL_END still refuses such a model.

Side effects: starts TFLite Micro child processes (the smallest-arena search,
usually one child; one more search when the arena is too small, to say how
much is needed). Sends nothing, opens no port.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..boards import Board
from ..protocol import messages as m
from ..protocol.image import ImageError, McubootImage, open_image
from ..tflite import (
    HYBRID_MESSAGE,
    ModelError,
    ModelInfo,
    ProbeError,
    ProbeFailure,
    ProbeResult,
    Spawn,
    hybrid_ops,
    inspect_model,
    min_arena,
)
from .errors import (
    ArenaTooSmall,
    ImageUnsigned,
    ModelInvalid,
    ModelTooLarge,
    SignatureInvalid,
    UnsupportedOp,
)

__all__ = ["ImageCheck", "NEED_SEARCH_BYTES", "check_image"]

NEED_SEARCH_BYTES = 16 * 1024 * 1024
"""Largest arena tried to tell how much a model that does not fit the board needs."""


@dataclass(frozen=True)
class ImageCheck:
    """An image that passed :func:`check_image` for one board.

    ``arena_bytes`` is the smallest tensor arena it runs in (what the board will
    report at MODEL_END); ``probe`` the successful TFLite Micro run at that size.
    ``size_bytes`` and ``sha256`` are of the bytes sent; for an update image,
    ``image`` is it parsed and ``model`` describes its payload.
    """

    size_bytes: int
    sha256: bytes
    arena_bytes: int
    slot_bytes: int
    board_arena_bytes: int
    model: ModelInfo
    probe: ProbeResult
    image: McubootImage | None = None


def _target(target: m.Info | Board) -> tuple[int, int, str, bool]:
    """(slot bytes, arena bytes, board name, signed only)."""
    if isinstance(target, Board):
        return target.model_slots.slot_bytes, target.model_slots.arena_bytes, target.name, False
    keyed = bool(int(target.capabilities) & m.Capability.SIGNED_ONLY)
    return target.slot_bytes, target.arena_bytes, target.board_name, keyed


_SIGN_HINT = ("sign it with workbench.deploy.signing: make_update_image(model, "
              "key=load_key('key.pem')), or deploy_model(model, dev, key='key.pem'), with a "
              "key whose public half the board was provisioned with")


def _open(data: bytes, board: str, keyed: bool) -> tuple[bytes, McubootImage | None]:
    """The model inside ``data`` (the bytes themselves for a raw model), or the error
    the board would answer."""
    try:
        opened = open_image(data)
    except ImageError as e:
        cls = SignatureInvalid if e.code == m.ErrorCode.SIGNATURE_INVALID else ModelInvalid
        raise cls(f"update image: {e}") from None
    if keyed and not opened.signed:
        what = ("an update image without a signature" if opened.image is not None
                else "a raw model, not a signed update image")
        raise ImageUnsigned(f"{board} accepts only models signed by a key it was provisioned "
                            f"with (SIGNED_ONLY) and this is {what}: {_SIGN_HINT}")
    return opened.model, opened.image


def _runs_litert(target: m.Info | Board) -> bool:
    """A board whose catalog runtime is LiteRT (a Linux board's runner, docs/deploy.md)."""
    if isinstance(target, Board):
        return target.runtime == "litert"
    from ..boards import load_catalog

    board = load_catalog().get(target.board_id)
    return board is not None and board.runtime == "litert"


def check_image(model: bytes, target: m.Info | Board, *,
                spawn: Spawn | None = None) -> ImageCheck:
    """Check that ``model`` will be accepted and run by the board ``target`` describes.

    Args:
        model: the bytes to upload: a ``.tflite`` model, or an update image
            (docs/protocol.md 7.6) whose payload is one.
        target: the board's HELLO answer (``Device.info``: ``slot_bytes``,
            ``arena_bytes``) or its catalog entry (:class:`workbench.boards.Board`).
        spawn: starts the TFLite Micro children (default :class:`subprocess.Popen`).

    Returns:
        An :class:`ImageCheck` with the arena the model needs.

    Raises:
        ModelTooLarge: larger than a slot (``detail`` = slot bytes).
        ModelInvalid: not a valid ``.tflite``, or TFLite Micro refuses it for a
            reason other than kernels or memory; a malformed update image (the
            field and its offset named).
        ImageUnsigned: the board is SIGNED_ONLY and this is a raw model or an
            unsigned image (the message says how to sign it).
        SignatureInvalid: an update image whose SHA-256 TLV does not match it.
        UnsupportedOp: a kernel TFLite Micro lacks (named), or a hybrid model.
        ArenaTooSmall: needs more tensor arena than the board has (both figures).
        TypeError: ``model`` is not bytes-like.
    """
    if not isinstance(model, (bytes, bytearray, memoryview)):
        raise TypeError(f"check_image() needs the model's bytes, not {type(model).__name__}")
    sent = bytes(model)
    slot_bytes, arena, board, keyed = _target(target)
    if len(sent) > slot_bytes:
        raise ModelTooLarge(f"model is {len(sent):,} bytes but a model slot on {board} holds "
                            f"{slot_bytes:,}; quantize it to int8 or make it smaller",
                            detail=slot_bytes)
    model, image = _open(sent, board, keyed)
    try:
        info = inspect_model(model)
    except ModelError as e:
        raise ModelInvalid(str(e)) from None
    if _runs_litert(target):
        return _check_litert(sent, model, image, info, slot_bytes, arena, board, spawn)
    hybrid = hybrid_ops(info)
    if hybrid:
        raise UnsupportedOp(f"{HYBRID_MESSAGE} ({', '.join(hybrid)})")
    try:
        fit = min_arena(model, arena, spawn=spawn)
    except ProbeError as e:
        raise _refusal(model, e.result, arena, board, spawn) from None
    except ModelError as e:  # the arena search gave up
        raise ModelInvalid(str(e)) from None
    return ImageCheck(len(sent), hashlib.sha256(sent).digest(), fit.needed_bytes, slot_bytes,
                      arena, info, fit.probe, image)


def _check_litert(sent: bytes, model: bytes, image: McubootImage | None, info: ModelInfo,
                  slot_bytes: int, arena: int, board: str, spawn: Spawn | None) -> ImageCheck:
    """A LiteRT board's check: the model loads and runs once in LiteRT (a child process);
    hybrid models are fine there, and LiteRT has no arena to fit (``arena_bytes`` 0)."""
    from ..tflite.litert import check_litert

    result = check_litert(model, spawn=spawn)
    if result.failure is ProbeFailure.UNSUPPORTED_OP:
        raise UnsupportedOp(f"{result.error}: {board} runs LiteRT, which cannot run this model")
    if not result.ok:
        raise ModelInvalid(f"the model does not run in LiteRT, the runtime of {board}: "
                           f"{result.error}")
    return ImageCheck(len(sent), hashlib.sha256(sent).digest(), 0, slot_bytes, arena, info,
                      result, image)


def _refusal(model: bytes, result: ProbeResult, arena: int, board: str,
             spawn: Spawn | None) -> Exception:
    if result.failure is ProbeFailure.UNSUPPORTED_OP:
        return UnsupportedOp(f"TFLite Micro on {board} lacks: {', '.join(result.unsupported_ops)}. "
                             "Replace these ops or use a firmware that registers them")
    if result.failure in (ProbeFailure.ARENA_TOO_SMALL, ProbeFailure.CRASH):
        return ArenaTooSmall(f"the model does not run in the {arena:,}-byte tensor arena of "
                             f"{board}: {_needed(model, arena, spawn)}. Make the model smaller "
                             "(int8, fewer or narrower layers) or choose a board with more RAM")
    return ModelInvalid(f"the model does not run in TFLite Micro: {result.error}")


def _needed(model: bytes, arena: int, spawn: Spawn | None) -> str:
    """What the model needs, found with a larger arena (or why that is unknown)."""
    if arena >= NEED_SEARCH_BYTES:
        return "it needs more"
    try:
        need = min_arena(model, NEED_SEARCH_BYTES, spawn=spawn).needed_bytes
    except (ProbeError, ModelError):
        return f"it does not run even in {NEED_SEARCH_BYTES:,} bytes"
    return f"it needs {need:,} bytes"
