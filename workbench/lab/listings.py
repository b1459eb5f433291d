"""What the TinyML panel lists under the Jupyter server's root: lessons, datasets, models.

Every path handed out is relative to the server's root with ``/`` separators (what JupyterLab
opens). Nothing here writes, except :func:`open_lesson`, which copies a packaged lesson into
the root when it is not there yet.

Datasets and model registries are found by walking the root down to :data:`MAX_DEPTH` folders,
skipping hidden folders and ``node_modules``, and looking at no more than :data:`MAX_FOLDERS`
folders (a home directory as root stays quick): a dataset is a folder with a
``workbench-dataset`` ``dataset.json`` (:mod:`workbench.data`); a registry is a folder holding
``<model>/v<N>/version.json`` (:mod:`workbench.deploy.registry`).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

from ..errors import WorkbenchError

__all__ = ["LessonNotFound", "lessons", "open_lesson", "datasets", "registries",
           "MAX_DEPTH", "MAX_FOLDERS"]

MAX_DEPTH = 6
"""How many folders deep below the root datasets and registries are looked for."""
MAX_FOLDERS = 4000
"""At most this many folders are looked at per listing."""

_SKIP = {"node_modules", "__pycache__", "recordings", "snapshots", "trash", "site-packages"}


class LessonNotFound(WorkbenchError, KeyError):
    """No packaged lesson has that file name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def lessons(root: str | os.PathLike) -> list[dict]:
    """The packaged lessons (:func:`workbench.lab.lessons.lessons`) as ``{"number", "name",
    "title", "path"}``; ``path`` is where the lesson opens under ``root`` if it is already
    there (see :func:`open_lesson`), else None."""
    from .lessons import lessons as packaged

    root = Path(root)
    return [{"number": lesson.number, "name": lesson.name, "title": lesson.title,
             "path": _lesson_in_root(lesson, root)} for lesson in packaged()]


def _lesson_in_root(lesson, root: Path) -> str | None:
    if (root / lesson.name).is_file():
        return lesson.name
    return _relative(lesson.path, root)


def open_lesson(root: str | os.PathLike, name: str) -> dict:
    """Make the lesson ``name`` (e.g. ``00_hello_board.ipynb``) openable under ``root`` and
    return ``{"name", "title", "path", "copied"}``.

    A lesson already at ``root/<name>``, or whose packaged file lies inside ``root`` (a
    checkout served as the root), is used as it is; otherwise the packaged lesson is copied
    to ``root/<name>`` (``copied`` is then true); an existing file is never overwritten.
    Raises :class:`LessonNotFound` (a KeyError) naming the lessons for an unknown name.
    """
    from .lessons import lessons as packaged

    root = Path(root)
    found = {lesson.name: lesson for lesson in packaged()}
    lesson = found.get(name)
    if lesson is None:
        raise LessonNotFound(f"no lesson {name!r}; the lessons are: {', '.join(found)}")
    where = _lesson_in_root(lesson, root)
    if where is not None:
        return {"name": lesson.name, "title": lesson.title, "path": where, "copied": False}
    target = root / lesson.name
    tmp = target.with_name(f".{lesson.name}.copying")
    shutil.copyfile(lesson.path, tmp)
    try:
        os.link(tmp, target)  # fails if another request made it meanwhile: theirs stays
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return {"name": lesson.name, "title": lesson.title, "path": lesson.name, "copied": True}


def _walk(root: Path):
    """(folder, its file names) below ``root``, breadth first within the limits above."""
    seen = 0
    level = [root]
    for _depth in range(MAX_DEPTH + 1):
        below = []
        for folder in level:
            seen += 1
            if seen > MAX_FOLDERS:
                return
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            files = {e.name for e in entries if e.is_file()}
            yield folder, files
            if "dataset.json" in files:
                continue  # a dataset's insides hold no other dataset
            below += [Path(e.path) for e in sorted(entries, key=lambda e: e.name)
                      if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
                      and e.name not in _SKIP]
        level = below


def datasets(root: str | os.PathLike) -> list[dict]:
    """The workbench datasets under ``root``: ``{"path", "name", "recordings", "seconds",
    "labels": {label: recordings}, "unlabelled", "problems"}``, or ``{"path", "name",
    "error"}`` for one that does not open. Opening a dataset repairs what a crash left behind
    (:class:`workbench.data.Dataset`); a recording being written is left alone."""
    root = Path(root)
    out = []
    for folder, files in _walk(root):
        if "dataset.json" not in files:
            continue
        try:
            head = json.loads((folder / "dataset.json").read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(head, dict) or head.get("format") != "workbench-dataset":
            continue
        out.append(_dataset(folder, root, head))
    return out


def _dataset(folder: Path, root: Path, head: dict) -> dict:
    from ..data import Dataset, summarize

    row = {"path": _relative(folder, root), "name": str(head.get("name") or folder.name)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = Dataset(folder, create=False)
        summary = summarize(ds)
    except (WorkbenchError, OSError, ValueError) as e:
        return {**row, "error": str(e)}
    return {**row, "recordings": summary.recordings, "seconds": round(summary.duration_s, 3),
            "labels": {label: v["recordings"] for label, v in summary.per_label.items()},
            "unlabelled": summary.unlabelled, "problems": list(ds.problems)}


def registries(root: str | os.PathLike) -> list[dict]:
    """The model registries under ``root``: ``{"path", "models": [{"name", "versions":
    [{"version", "label", "sha256", "size", "created", "variant", "signed",
    "deployments"}]}], "problems"}``. Reading takes no lock and changes nothing."""
    from ..deploy.registry import ModelRegistry, RegistryWarning

    root = Path(root)
    found = []
    for folder, files in _walk(root):
        if "version.json" in files and folder.name[:1] == "v" and folder.name[1:].isdigit():
            reg_root = folder.parent.parent
            if reg_root not in found and reg_root != root.parent:
                found.append(reg_root)
    out = []
    for reg_root in found:
        reg = ModelRegistry(reg_root)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RegistryWarning)
            models = []
            for name in reg.models():
                try:
                    versions = reg.versions(name)
                except WorkbenchError:
                    continue
                models.append({"name": name, "versions": [{
                    "version": v.version, "label": v.label, "sha256": v.sha256, "size": v.size,
                    "created": v.created, "variant": v.variant,
                    "signed": v.signed_image is not None,
                    "deployments": len(reg.deployments(name, v.version)),
                } for v in versions]})
        if any(m["versions"] for m in models):
            out.append({"path": _relative(reg_root, root), "models": models,
                        "problems": {str(k): v for k, v in reg.problems().items()}})
    return out
