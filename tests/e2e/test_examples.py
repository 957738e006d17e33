"""The examples run and reach what they promise."""
import os
import runpy
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "examples")


@pytest.fixture()
def classic():
    return runpy.run_path(os.path.join(EXAMPLES, "classic_network.py"))


def test_classic_network_hand_gradients_match_gc_grad(classic):
    result = classic["main"](steps=1, verbose=False)
    assert result["gradient_gap"] < 1e-6


def test_classic_network_learns_the_separable_problem(classic):
    result = classic["main"](steps=300, verbose=False)
    assert result["accuracy"] >= 0.99
    assert result["loss"] < 0.05


def test_classic_network_runs_as_a_script():
    script = os.path.join(EXAMPLES, "classic_network.py")
    done = subprocess.run([sys.executable, script, "--steps", "50"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "max difference" in done.stdout and "final: loss" in done.stdout
