"""The Voila dashboards that ship with the workbench, and how ``workbench dashboard`` serves them.

The workshop dashboard is ``dashboards/workshop.ipynb`` beside the lessons (the wheel's
``workbench/lessons/``, or the checkout's ``notebooks/``). It is served with the
workbench's Voila template (``jupyter_data/voila/templates/workbench``), which is Voila's
``lab`` template without its links to a CDN, so the page loads nothing from outside the
server and works offline. Nothing here has a side effect::

    cmd, env = voila_command(folder="~/workshop", extra=["--port=8866", "--no-browser"])
    subprocess.run(cmd, env=env, cwd=folder)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import WorkbenchError

_PACKAGE = Path(__file__).resolve().parents[1]
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter_data"
"""A Jupyter data folder (for ``JUPYTER_PATH``) holding the workbench's Voila template."""
TEMPLATE = "workbench"
"""The Voila template's name: Voila's ``lab`` template without CDN links."""
FOLDER_ENV = "WORKBENCH_WORKSHOP_DIR"
"""Where the dashboard's kernel keeps its files (read by ``workbench.ui.workshop``)."""


class DashboardMissing(WorkbenchError, FileNotFoundError):
    """The dashboard notebook is neither in the installed package nor in a checkout."""


def workshop_notebook() -> Path:
    """The workshop dashboard's notebook. Raises :class:`DashboardMissing` if absent."""
    for folder in (_PACKAGE / "lessons", _PACKAGE.parent / "notebooks"):
        path = folder / "dashboards" / "workshop.ipynb"
        if path.is_file():
            return path
    raise DashboardMissing(
        f"no dashboards/workshop.ipynb in {_PACKAGE / 'lessons'} or {_PACKAGE.parent / 'notebooks'}: "
        "reinstall tinyml-workbench (pip install --force-reinstall 'tinyml-workbench[lab]')")


def voila_env(folder: str | os.PathLike[str], device: str | None = None,
              base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with the template on ``JUPYTER_PATH`` (first), the
    workshop folder in ``$WORKBENCH_WORKSHOP_DIR`` and, if given, the device in
    ``$WORKBENCH_DEVICE``."""
    env = dict(os.environ if base is None else base)
    paths = [str(JUPYTER_DATA)] + [p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    env["JUPYTER_PATH"] = os.pathsep.join(paths)
    env[FOLDER_ENV] = str(Path(folder).expanduser().resolve())
    if device:
        env["WORKBENCH_DEVICE"] = device
    return env


def voila_command(notebook: str | os.PathLike[str] | None = None,
                  extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The command that serves ``notebook`` (default :func:`workshop_notebook`) with Voila
    and the workbench template; ``extra`` (``--port=8866``, ``--no-browser``, Voila's own
    options) goes last, so it can override anything before it."""
    path = Path(notebook) if notebook is not None else workshop_notebook()
    return [sys.executable, "-m", "voila", str(path), f"--template={TEMPLATE}", *extra]
