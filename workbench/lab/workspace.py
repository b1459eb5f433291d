"""The student's own workspace: a folder holding copies of the lessons, with their data beside them.

``workbench lab`` runs JupyterLab here rather than on the package's lessons, so running a lesson
saves its outputs into the student's copy and its takes into the workspace's datasets, and the
packaged lessons (:mod:`.lessons`) stay pristine. Call order::

    ws = prepare()                 # or prepare(Path("~/course").expanduser())
    print(ws.summary())
    start = ws.start_here          # the first lesson's copy, e.g. .../00_hello_board.ipynb

Layout of a workspace (the lessons find their data by paths relative to themselves)::

    ~/tinyml-workbench/            $WORKBENCH_HOME, or `workbench lab --dir DIR`
      00_hello_board.ipynb ...     the student's copies: theirs to edit and run
      01_connect_and_capture.new.ipynb   a newer packaged version, offered beside an edited copy
      gestures/  basicmotions/  out/     datasets and outputs the lessons write
      README.md                    where to start (written once, never overwritten)
      .workbench-lessons.json      which packaged version of each lesson was copied or offered

Rules of :func:`prepare` (never loses a student's work):

- a lesson missing from the workspace is copied (first use, or the student deleted their copy to
  start it afresh);
- a copy still identical to what was copied is replaced by a newer packaged version in place;
- a copy the student changed (edited or ran: outputs count) is never written to; when the
  packaged lesson is newer than the version last copied or offered, it is offered beside it as
  ``NN_name.new.ipynb`` (a file the workbench owns and rewrites; rename it to keep it).

Errors: :class:`WorkspaceError` (a ``NotADirectoryError``) when the folder is a file;
``OSError`` from the file system (permissions, full disk) as raised; nothing is half-written
(files are written to a temporary name and renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import WorkbenchError
from .lessons import Lesson, lessons

HOME_ENV = "WORKBENCH_HOME"
DEFAULT_FOLDER = "tinyml-workbench"
"""The workspace's name in the home folder when ``$WORKBENCH_HOME`` is not set."""
MANIFEST = ".workbench-lessons.json"
NEW_SUFFIX = ".new.ipynb"

README = """\
# Your TinyML workbench

These are your own copies of the workbench's lessons: edit them, run them, keep your outputs.
The datasets and files the lessons write (`gestures/`, `basicmotions/`, `out/`) live here too.

**Start with `{start}`**, then follow the numbers.

- `workbench lab` opens this folder again (`workbench lab --dir OTHER` opens another).
- When the workbench brings a newer version of a lesson you have changed, it is put beside
  yours as `NN_name.new.ipynb`; your copy is never overwritten.
- To start a lesson afresh, delete (or rename) your copy and run `workbench lab` again.
- The lessons use the virtual board unless `WORKBENCH_DEVICE` names a board
  (`WORKBENCH_DEVICE=/dev/ttyACM0`, or `auto` to use the first board that answers).
"""


class WorkspaceError(WorkbenchError, NotADirectoryError):
    """The workspace path exists and is not a folder."""


@dataclass
class Workspace:
    """What :func:`prepare` found and did. Paths are absolute."""

    root: Path
    lessons: list[Path] = field(default_factory=list)
    """The student's copy of every packaged lesson, in order."""
    copied: list[str] = field(default_factory=list)
    """Lessons copied because the workspace had no copy."""
    updated: list[str] = field(default_factory=list)
    """Untouched copies replaced by a newer packaged version."""
    offered: list[str] = field(default_factory=list)
    """``NN_name.new.ipynb`` files written beside changed copies."""
    created: bool = False
    """The folder did not exist before."""

    @property
    def start_here(self) -> Path:
        """The first lesson's copy (lesson 00)."""
        return self.lessons[0]

    def summary(self) -> str:
        """A few lines for the terminal: where the workspace is, what changed, where to start."""
        lines = [f"Your workspace: {self.root}" + (" (new)" if self.created else "")]
        if self.copied:
            lines.append(f"  copied {len(self.copied)} lesson(s): {', '.join(self.copied)}")
        if self.updated:
            lines.append(f"  updated (you had not changed them): {', '.join(self.updated)}")
        if self.offered:
            lines.append("  newer versions beside your changed copies: " + ", ".join(self.offered))
        lines.append(f"Start with {self.start_here.name}, then follow the numbers.")
        return "\n".join(lines)


def default_root() -> Path:
    """``$WORKBENCH_HOME``, else ``~/tinyml-workbench``. Reads the environment; creates nothing."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / DEFAULT_FOLDER


def prepare(root: Path | str | None = None, *, packaged: list[Lesson] | None = None) -> Workspace:
    """Create or refresh the workspace at ``root`` (default :func:`default_root`).

    Creates the folder (and parents), copies or offers lessons by the rules in the module's
    docstring, writes ``README.md`` if missing and records what it copied in
    ``.workbench-lessons.json``. ``packaged`` defaults to :func:`.lessons.lessons`. Safe to
    call on every start; a second call with nothing new changes nothing.
    Raises :class:`WorkspaceError` if ``root`` is a file, :class:`.lessons.LessonsMissing` if
    the package has no lessons.
    """
    root = Path(root).expanduser() if root is not None else default_root()
    root = root.resolve()
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} is a file, not a folder: choose another workspace with "
                             f"--dir (or ${HOME_ENV})")
    packaged = lessons() if packaged is None else packaged
    ws = Workspace(root, created=not root.exists())
    root.mkdir(parents=True, exist_ok=True)
    seen = _read_manifest(root)
    for lesson in packaged:
        data = lesson.path.read_bytes()
        digest = _sha(data)
        mine = root / lesson.name
        ws.lessons.append(mine)
        if not mine.exists():
            _write(mine, data)
            ws.copied.append(lesson.name)
        else:
            current = _sha(mine.read_bytes())
            if current != digest and current == seen.get(lesson.name):
                _write(mine, data)  # untouched since we copied it
                ws.updated.append(lesson.name)
            elif current != digest and seen.get(lesson.name) != digest:
                offer = root / (lesson.name[: -len(".ipynb")] + NEW_SUFFIX)
                _write(offer, data)
                ws.offered.append(offer.name)
        seen[lesson.name] = digest
    readme = root / "README.md"
    if not readme.exists() and ws.lessons:
        _write(readme, README.format(start=ws.start_here.name).encode())
    _write(root / MANIFEST, (json.dumps(seen, indent=1, sort_keys=True) + "\n").encode())
    return ws


def _read_manifest(root: Path) -> dict[str, str]:
    """The recorded digests; an unreadable manifest counts as none (offers, never overwrites)."""
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
