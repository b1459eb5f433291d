"""Where running virtual boards say they are, so ``workbench devices`` finds them.

A pseudo-terminal is not a USB port: the operating system's port list never
shows it. Each running virtual board (``workbench sim``, ``python -m
workbench.sim``) writes one small JSON file (board, URL, pid) into the registry
folder (``$WORKBENCH_SIM_DIR/running``, default ``~/.cache/workbench/sim/running``)
while it runs, and removes it on exit; readers (:mod:`.discovery`) skip and
delete entries whose process is gone (a killed board cannot clean up after itself).

It lives with the link because discovery reads it; the virtual board, a layer
above, imports it from here to register itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def registry_dir() -> Path:
    base = os.environ.get("WORKBENCH_SIM_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "workbench", "sim")
    return Path(base) / "running"


def register(board: str, url: str, pid: int | None = None) -> Path:
    """Record a running virtual board; returns the entry's path (remove it on exit)."""
    pid = pid or os.getpid()
    d = registry_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{pid}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"board": board, "url": url, "pid": pid}))
    os.replace(tmp, path)
    return path


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running() -> list[dict]:
    """Entries of virtual boards whose process is still alive (stale ones are removed)."""
    d = registry_dir()
    out = []
    for path in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            entry = json.loads(path.read_text())
            pid = int(entry["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if process_alive(pid):
            out.append(entry)
        else:
            path.unlink(missing_ok=True)
    return out
