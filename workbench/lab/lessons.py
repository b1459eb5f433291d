"""The lessons that ship with the workbench: where they are and what each is called.

In an installed wheel the lessons live in ``workbench/lessons/`` (the wheel's build copies
them from the checkout's ``notebooks/``, see ``pyproject.toml``); in a checkout they are read
from ``notebooks/`` directly. Reading them has no side effect::

    for lesson in lessons():
        print(lesson.number, lesson.title, lesson.path)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import WorkbenchError

_PACKAGE = Path(__file__).resolve().parents[1]
LESSON_GLOB = "[0-9][0-9]_*.ipynb"
"""A lesson is a notebook named ``NN_words.ipynb``."""


class LessonsMissing(WorkbenchError, FileNotFoundError):
    """Neither the installed lessons nor a checkout's ``notebooks/`` folder exists."""


@dataclass(frozen=True)
class Lesson:
    number: int
    name: str
    """The file name, e.g. ``01_connect_and_capture.ipynb``."""
    title: str
    """The notebook's first heading without its ``#``, e.g. ``Lesson 1 · Connect and capture``."""
    path: Path


def lesson_dir() -> Path:
    """The folder the lessons are read from: the wheel's ``workbench/lessons/``, else the
    checkout's ``notebooks/``. Raises :class:`LessonsMissing` if there is neither."""
    for folder in (_PACKAGE / "lessons", _PACKAGE.parent / "notebooks"):
        if any(folder.glob(LESSON_GLOB)):
            return folder
    raise LessonsMissing(f"no lessons found in {_PACKAGE / 'lessons'} or {_PACKAGE.parent / 'notebooks'}: "
                         "reinstall tinyml-workbench (pip install --force-reinstall tinyml-workbench)")


def lessons() -> list[Lesson]:
    """Every lesson, in order. A notebook that cannot be read is listed under its file name."""
    found = []
    for path in sorted(lesson_dir().glob(LESSON_GLOB)):
        found.append(Lesson(int(path.name[:2]), path.name, _title(path), path))
    return found


def _title(path: Path) -> str:
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return path.stem
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        m = re.search(r"^#+\s+(.+?)\s*$", text, flags=re.M)
        if m:
            return m.group(1)
    return path.stem
