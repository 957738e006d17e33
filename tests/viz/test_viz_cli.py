"""`graphc viz SCRIPT.py [--stage ...] [-o OUT]`: runs the script with dumping on."""
import os

import pytest

from graphc.viz.cli import main

SCRIPT = """
import sys
import numpy as np
import graphc as gc
x = gc.placeholder((3,), name="x")
step = gc.compile(gc.exp(x) * float(sys.argv[1] if len(sys.argv) > 1 else 1), device="reference")
print("result", step(np.zeros(3, np.float32)))
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return path


def test_runs_the_script_with_dumping_on(tmp_path, script, capsys, monkeypatch):
    monkeypatch.delenv("GRAPHC_DUMP", raising=False)
    out = tmp_path / "out"
    assert main([str(script), "-o", str(out), "--", "3"]) == 0
    printed = capsys.readouterr().out
    assert "result [3. 3. 3.]" in printed
    assert f"open {out / 'index.html'}" in printed
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    assert (folder / "01_autodiff.svg").is_file()
    assert "GRAPHC_DUMP" not in os.environ       # restored afterwards


def test_stage_option_limits_the_stages(tmp_path, script):
    out = tmp_path / "out"
    assert main([str(script), "--stage", "built", "-o", str(out)]) == 0
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.glob("*.svg")) == ["00_built.svg"]


def test_a_script_that_compiles_nothing_fails(tmp_path, capsys):
    quiet = tmp_path / "quiet.py"
    quiet.write_text("print('nothing to compile')\n")
    assert main([str(quiet), "-o", str(tmp_path / "out")]) == 1
    assert "compiled nothing" in capsys.readouterr().err


def test_the_script_exit_status_is_returned(tmp_path, script):
    failing = tmp_path / "failing.py"
    failing.write_text(SCRIPT + "\nraise SystemExit(3)\n")
    assert main([str(failing), "-o", str(tmp_path / "out")]) == 3


def test_unknown_stage_is_a_usage_error(script):
    with pytest.raises(SystemExit) as exit_:
        main([str(script), "--stage", "optimised"])
    assert exit_.value.code == 2
