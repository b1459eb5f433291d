"""The student's workspace: lessons copied on first use, untouched copies kept up to date, edited
copies never overwritten (a newer lesson is offered beside them), and `workbench lab --dir`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.lab import lessons as lessons_mod
from workbench.lab.workspace import (
    MANIFEST,
    WorkspaceError,
    default_root,
    prepare,
)


def notebook(title: str, code: str = "print(1)") -> str:
    return json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": [f"# {title}"]},
                                 {"cell_type": "code", "metadata": {}, "execution_count": None,
                                  "outputs": [], "source": [code]}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)


@pytest.fixture
def package(tmp_path):
    """A stand-in for the packaged lessons folder: two real notebooks, rewritable by the test."""
    folder = tmp_path / "package"
    folder.mkdir()
    (folder / "00_hello.ipynb").write_text(notebook("Lesson 0 · Hello"))
    (folder / "01_capture.ipynb").write_text(notebook("Lesson 1 · Capture"))

    def listing():
        return [lessons_mod.Lesson(int(p.name[:2]), p.name, p.stem, p)
                for p in sorted(folder.glob(lessons_mod.LESSON_GLOB))]

    listing.folder = folder
    return listing


def test_first_use_copies_every_lesson_and_says_where_to_start(package, tmp_path):
    root = tmp_path / "home" / "ws"
    ws = prepare(root, packaged=package())
    assert ws.created and ws.root == root.resolve()
    assert ws.copied == ["00_hello.ipynb", "01_capture.ipynb"] and not ws.updated and not ws.offered
    for lesson in package():
        assert (root / lesson.name).read_bytes() == lesson.path.read_bytes()
    assert ws.start_here == root.resolve() / "00_hello.ipynb"
    assert "Start with 00_hello.ipynb" in ws.summary() and str(ws.root) in ws.summary()
    assert "00_hello.ipynb" in (root / "README.md").read_text()
    assert set(json.loads((root / MANIFEST).read_text())) == {"00_hello.ipynb", "01_capture.ipynb"}
    assert not list(root.glob(".*.tmp"))


def test_a_second_start_with_nothing_new_changes_nothing(package, tmp_path):
    prepare(tmp_path / "ws", packaged=package())
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "ws").iterdir()
              if p.name != MANIFEST}
    ws = prepare(tmp_path / "ws", packaged=package())
    assert not (ws.created or ws.copied or ws.updated or ws.offered)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "ws").iterdir()
             if p.name != MANIFEST}
    assert after == before


def test_an_edited_copy_is_never_overwritten_and_a_newer_lesson_is_offered_beside_it(package, tmp_path):
    root = tmp_path / "ws"
    prepare(root, packaged=package())
    mine = root / "01_capture.ipynb"
    mine.write_text(notebook("Lesson 1 · Capture", "print('my own experiment')"))
    edited = mine.read_bytes()

    ws = prepare(root, packaged=package())  # nothing new in the package: nothing offered
    assert not ws.offered and mine.read_bytes() == edited

    (package.folder / "01_capture.ipynb").write_text(notebook("Lesson 1 · Capture", "print(2)"))
    ws = prepare(root, packaged=package())
    assert mine.read_bytes() == edited
    assert ws.offered == ["01_capture.new.ipynb"] and not ws.updated
    assert (root / "01_capture.new.ipynb").read_bytes() == (package.folder / "01_capture.ipynb").read_bytes()
    assert "01_capture.new.ipynb" in ws.summary()

    ws = prepare(root, packaged=package())  # offered once per packaged version
    assert not ws.offered and mine.read_bytes() == edited


def test_an_untouched_copy_follows_the_package(package, tmp_path):
    root = tmp_path / "ws"
    prepare(root, packaged=package())
    (package.folder / "00_hello.ipynb").write_text(notebook("Lesson 0 · Hello", "print('v2')"))
    ws = prepare(root, packaged=package())
    assert ws.updated == ["00_hello.ipynb"] and not ws.offered
    assert "v2" in (root / "00_hello.ipynb").read_text()
    assert not (root / "00_hello.new.ipynb").exists()


def test_a_deleted_copy_comes_back_fresh(package, tmp_path):
    root = tmp_path / "ws"
    prepare(root, packaged=package())
    (root / "00_hello.ipynb").unlink()
    ws = prepare(root, packaged=package())
    assert ws.copied == ["00_hello.ipynb"]
    assert (root / "00_hello.ipynb").read_bytes() == (package.folder / "00_hello.ipynb").read_bytes()


def test_a_workspace_without_a_record_offers_instead_of_overwriting(package, tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "00_hello.ipynb").write_text("my notes, not JSON")
    (root / MANIFEST).write_text("{broken")  # an unreadable record counts as none
    (root / "README.md").write_text("mine")
    ws = prepare(root, packaged=package())
    assert (root / "00_hello.ipynb").read_text() == "my notes, not JSON"
    assert ws.offered == ["00_hello.new.ipynb"] and ws.copied == ["01_capture.ipynb"]
    assert (root / "README.md").read_text() == "mine"


def test_a_file_in_the_way_is_a_clear_error_and_nothing_is_written(package, tmp_path):
    in_the_way = tmp_path / "ws"
    in_the_way.write_text("not a folder")
    with pytest.raises(WorkspaceError, match="is a file, not a folder.*--dir") as e:
        prepare(in_the_way, packaged=package())
    assert isinstance(e.value, WorkbenchError) and isinstance(e.value, NotADirectoryError)
    assert in_the_way.read_text() == "not a folder"


def test_default_root_is_workbench_home_else_in_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "course"))
    assert default_root() == tmp_path / "course"
    monkeypatch.delenv("WORKBENCH_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_root() == tmp_path / "tinyml-workbench"


def test_the_lessons_find_their_data_beside_themselves():
    """A workspace copy works only if a lesson names its folders relative to itself."""
    for lesson in lessons_mod.lessons():
        cells = json.loads(lesson.path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert not re.search(r"\.\./|notebooks/|__file__", code), lesson.name


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_workbench_lab_prepare_only_makes_the_workspace(tmp_path):
    root = tmp_path / "my course"
    out = run_cli("lab", "--dir", str(root), "--prepare-only")
    assert out.returncode == 0, out.stderr
    names = sorted(p.name for p in lessons_mod.lessons())
    assert sorted(p.name for p in root.glob("*.ipynb")) == names
    assert f"Start with {names[0]}" in out.stdout and str(root.resolve()) in out.stdout
    again = run_cli("lab", "--dir", str(root), "--prepare-only")
    assert again.returncode == 0 and "copied" not in again.stdout


def test_workbench_lab_uses_workbench_home(tmp_path):
    env = dict(os.environ, WORKBENCH_HOME=str(tmp_path / "from-env"))
    out = run_cli("lab", "--prepare-only", env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "from-env" / "00_hello_board.ipynb").is_file()


def test_workbench_lab_on_a_file_says_so_in_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    out = run_cli("lab", "--dir", str(tmp_path / "f"), "--prepare-only")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "is a file, not a folder" in out.stderr
    assert Path(tmp_path / "f").read_text() == "x"
