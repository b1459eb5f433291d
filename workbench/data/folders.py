"""File and folder helpers of the dataset store: whole-or-nothing JSON writes, names that
stay inside their folder, and exclusive folder locks shared across processes.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from .store_errors import DatasetError

try:  # POSIX; elsewhere datasets work but two processes must not share one
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def _write_json_atomic(path: Path, data: dict) -> None:
    """Write ``path`` whole or not at all (a temporary file of this process, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


_RESERVED = {"", ".", ".."}


def check_name(name, what: str = "recording id") -> str:
    """``name`` if it is one plain path component (no separator, not ``.``/``..``, no NUL),
    else ValueError: names taken from callers or files never reach outside their folder."""
    if not isinstance(name, str) or name in _RESERVED or "/" in name or "\\" in name \
            or "\x00" in name or (os.altsep and os.altsep in name):
        raise DatasetError(f"{name!r} is not a valid {what}: it must be a single folder name "
                           "inside the dataset (no '/', '..' or absolute path)")
    return name


def _inside(base: Path, name: str, what: str = "recording id") -> Path:
    """``base / name``, checked to be a direct child of ``base`` once symbolic links are
    resolved (DatasetError otherwise)."""
    path = base / check_name(name, what)
    real, parent = path.resolve(), base.resolve()
    if real.parent != parent:
        raise DatasetError(f"{path} leads outside {base} (to {real}); refusing to use it")
    return path


def _flock(path: Path, *, blocking: bool = True) -> int | None:
    """An exclusive lock on a folder (flock on its descriptor). Returns the descriptor to pass
    to :func:`_unlock`, or None if ``blocking`` is False and another holds the lock. Without
    fcntl (Windows) nothing is locked and a descriptor-less token is returned."""
    if fcntl is None:  # pragma: no cover
        return -1
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        os.close(fd)  # closing the descriptor releases its lock
