"""Delta patches on the host: the new image as a detools patch from the board's active image.

:func:`make_patch` builds the patch of :mod:`workbench.protocol.delta` (detools, sequential,
heatshrink) and checks it by applying it back; :func:`upload_model`
(:mod:`.transfer`) decides whether to send it instead of the full image. detools comes
with the ``deploy`` extra; without it :class:`DeltaUnavailable` says so.
"""

from __future__ import annotations

import io

from ..protocol import delta as fmt
from .errors import LinkError

INSTALL_HINT = "install it with: pip install 'tinyml-workbench[deploy]'"


class DeltaUnavailable(LinkError, ImportError):
    """A delta update was asked for, but detools (the ``deploy`` extra) is not installed."""


class DeltaError(LinkError, ValueError):
    """A delta patch could not be made, or does not rebuild the new image."""


def _detools():
    try:
        import detools
    except ImportError:
        raise DeltaUnavailable(f"delta updates need the detools package; {INSTALL_HINT}") \
            from None
    return detools


def detools_available() -> bool:
    """True if :func:`make_patch` can run (detools imports)."""
    try:
        _detools()
    except DeltaUnavailable:
        return False
    return True


def make_patch(base: bytes, new: bytes) -> bytes:
    """The delta patch from ``base`` to ``new`` (detools sequential, heatshrink 8/7).

    The patch is applied back on the host and must give ``new`` byte for byte.
    Raises :class:`DeltaUnavailable` without detools, :class:`DeltaError` if either
    image is empty or the patch does not rebuild ``new``.
    """
    if not base or not new:
        raise DeltaError("a delta needs a non-empty base image and a non-empty new image")
    detools = _detools()
    out = io.BytesIO()
    detools.create_patch(io.BytesIO(base), io.BytesIO(new), out, compression=fmt.COMPRESSION,
                         patch_type=fmt.PATCH_TYPE,
                         heatshrink_window_sz2=fmt.HEATSHRINK_WINDOW_SZ2,
                         heatshrink_lookahead_sz2=fmt.HEATSHRINK_LOOKAHEAD_SZ2)
    patch = out.getvalue()
    back = io.BytesIO()
    try:
        detools.apply_patch(io.BytesIO(base), io.BytesIO(patch), back)
    except Exception as e:  # noqa: BLE001 - detools raises its own Error and others
        raise DeltaError(f"detools made a patch that does not apply: {e}") from e
    if back.getvalue() != new:
        raise DeltaError("detools made a patch that does not rebuild the new image")
    return patch


__all__ = ["DeltaError", "DeltaUnavailable", "detools_available", "make_patch"]
