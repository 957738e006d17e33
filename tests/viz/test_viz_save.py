"""gc.viz.save: the format follows the file's extension."""
import json
import xml.etree.ElementTree as ET

import pytest

import graphc as gc


def test_each_extension_writes_its_format(tmp_path):
    x = gc.placeholder((2,), name="x")
    y = gc.exp(x)
    for name in ("g.dot", "g.svg", "g.html", "g.mmd", "g.json"):
        path = gc.viz.save(y, tmp_path / name)
        assert path.exists()
    assert (tmp_path / "g.dot").read_text().startswith('digraph "autodiff" {')
    ET.fromstring((tmp_path / "g.svg").read_text())
    assert (tmp_path / "g.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "g.mmd").read_text().startswith("flowchart TD")
    assert json.loads((tmp_path / "g.json").read_text())["stage"] == "autodiff"


def test_save_creates_folders_and_takes_a_stage(tmp_path, w1):
    path = gc.viz.save(w1.step, tmp_path / "deep" / "mem.svg", stage="memory")
    assert "memory plan" in path.read_text()


def test_unknown_extension_is_an_error(tmp_path):
    x = gc.placeholder((2,), name="x")
    with pytest.raises(gc.GraphcError, match="cannot tell the format of 'g.png'"):
        gc.viz.save(x, tmp_path / "g.png")


def test_a_path_that_cannot_be_written_is_a_graphc_error_at_the_users_line(tmp_path):
    """A raw FileExistsError or FileNotFoundError before (found by probing)."""
    x = gc.placeholder((2,), name="x")
    blocker = tmp_path / "afile"
    blocker.write_text("")
    with pytest.raises(gc.GraphcError, match=r"viz: cannot write .*afile/g\.svg") as error:
        gc.viz.save(gc.exp(x), blocker / "g.svg")
    assert error.value.loc.file == __file__
