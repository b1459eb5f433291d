"""The packaged lessons are found and named by their first heading."""

from __future__ import annotations

import json

from workbench.lab import lessons as lessons_mod


def test_every_lesson_is_listed_in_order_with_its_heading():
    found = lessons_mod.lessons()
    names = sorted(p.name for p in lessons_mod.lesson_dir().glob(lessons_mod.LESSON_GLOB))
    assert [lesson.name for lesson in found] == names
    assert [lesson.number for lesson in found] == sorted(lesson.number for lesson in found)
    for lesson in found:
        cells = json.loads(lesson.path.read_text())["cells"]
        first_md = next(c for c in cells if c["cell_type"] == "markdown")
        assert lesson.title in "".join(first_md["source"])
        assert not lesson.title.startswith("#")


def test_an_unreadable_notebook_is_listed_by_its_file_name(tmp_path, monkeypatch):
    (tmp_path / "lessons").mkdir()
    (tmp_path / "lessons" / "07_broken.ipynb").write_text("{not json")
    monkeypatch.setattr(lessons_mod, "_PACKAGE", tmp_path)
    (only,) = lessons_mod.lessons()
    assert (only.number, only.title) == (7, "07_broken")
