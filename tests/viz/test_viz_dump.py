"""GRAPHC_DUMP=DIR: each compile writes every stage, the fusion report, the
memory plan, the generated source and an index whose links all resolve."""
import logging
import re
from pathlib import Path

import numpy as np

import graphc as gc
from graphc.viz import dump
from viz_graphs import small_cnn

STAGES = ["built", "autodiff", "simplify", "cse", "fold", "dce", "lower", "fuse", "memplan",
          "fused"]


def links(index):
    return re.findall(r'href="([^"]+)"', index.read_text())


def test_cnn_compile_writes_every_listed_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    step, feeds = small_cnn()
    step(*feeds)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    names = {p.name for p in folder.iterdir()}
    for number, stage in enumerate(STAGES):
        assert {f"{number:02d}_{stage}.dot", f"{number:02d}_{stage}.svg"} <= names
    assert {"fusion_report.txt", "memory_plan.txt", "memory.svg", "generated_source.py",
            "summary.txt", "fused.html", "index.html"} <= names
    assert (folder / "fusion_report.txt").read_text() == step.program.fusion.describe()
    assert (folder / "memory_plan.txt").read_text() == step.program.memory.describe()
    source = (folder / "generated_source.py").read_text()
    assert "@loop_kernel(" in source and "# the step: each kernel call" in source


def test_index_links_all_resolve(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    step, feeds = small_cnn()
    step(*feeds)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    targets = links(folder / "index.html")
    assert len(targets) == len([p for p in folder.iterdir() if p.name != "index.html"])
    assert all((folder / t).is_file() for t in targets)
    top = links(tmp_path / "index.html")
    assert top == [f"{folder.name}/index.html"]
    assert all((tmp_path / t).is_file() for t in top)


def test_one_folder_per_executable_and_signature(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    x = gc.placeholder((None, 3), name="x")
    first = gc.compile(gc.exp(x), device="reference")
    second = gc.compile(gc.sum(x), device="reference")
    first(np.ones((2, 3), np.float32))
    first(np.ones((2, 3), np.float32))          # same signature: no new dump
    first(np.ones((5, 3), np.float32))
    second(np.ones((2, 3), np.float32))
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert folders == ["000_exp", "001_exp", "002_sum"]
    # the reference device runs no passes: the graph as built and after autodiff only
    assert sorted(p.name for p in (tmp_path / "000_exp").glob("*.dot")) == \
        ["00_built.dot", "01_autodiff.dot"]


def test_stage_filter(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    monkeypatch.setenv("GRAPHC_DUMP_STAGES", "fused,memory")
    step, feeds = small_cnn()
    step(*feeds)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.glob("*.svg")) == ["09_fused.svg", "memory.svg"]


def test_no_dump_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("GRAPHC_DUMP", raising=False)
    monkeypatch.chdir(tmp_path)
    x = gc.placeholder((3,), name="x")
    gc.compile(gc.exp(x), device="reference")(np.ones(3, np.float32))
    assert list(tmp_path.iterdir()) == []


def test_a_failing_dump_never_breaks_the_compile(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))

    def broken(*args):
        raise OSError("disk full")
    monkeypatch.setattr(dump, "dump_executable", broken)
    x = gc.placeholder((3,), name="x")
    with caplog.at_level(logging.WARNING, logger="graphc"):
        value = gc.compile(gc.exp(x), device="reference")(np.zeros(3, np.float32))
    assert np.allclose(value, 1.0)
    assert "GRAPHC_DUMP: could not write the dump" in caplog.text
    assert "disk full" in caplog.text and "Traceback" not in caplog.text   # one line


def test_dumps_land_where_the_variable_says(tmp_path, monkeypatch):
    target = tmp_path / "nested" / "dumps"
    monkeypatch.setenv("GRAPHC_DUMP", str(target))
    x = gc.placeholder((3,), name="x")
    gc.compile(gc.exp(x), device="reference")(np.ones(3, np.float32))
    assert (target / "index.html").is_file() and Path(target / "000_exp").is_dir()
