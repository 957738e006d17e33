"""The tutorial's examples run on a small budget and report plausible metrics.

Each example's main(argv) runs in-process on the CPU compiler with a budget
chosen so that every batch has one shape (each new shape is one more compile):
held-out metrics must beat chance. The full-budget accuracies are measured by
running the scripts themselves (see the README). Examples reading real data
skip, saying why, when ../shared/data is missing.
"""
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
DATA = os.path.normpath(os.path.join(ROOT, os.pardir, "shared", "data"))
needs_data = pytest.mark.skipif(not os.path.isdir(DATA),
                                reason=f"the shared data folder {DATA} is missing")


def example(name):
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    return importlib.import_module(name)


def run_example(name, capsys, *argv):
    """main(argv) of examples/<name>.py: its result and what it printed."""
    result = example(name).main(["--device", "cpu", "--seed", "0", *argv])
    return result, capsys.readouterr().out


def assert_reported(result, out, samples, epochs, better_than):
    """The Trainer's epoch lines and the final metrics, better than chance."""
    for epoch in range(1, epochs + 1):
        assert f"epoch {epoch}  train_loss" in out
    assert "held-out: accuracy" in out and "confusion matrix" in out
    assert result["samples"] == samples
    assert result["accuracy"] > better_than, result["accuracy"]
    for key in ("precision", "recall", "f1"):
        assert 0.0 < result[key] <= 1.0, (key, result[key])
    assert np.asarray(result["confusion_matrix"]).sum() == samples


@needs_data
def test_binary_simple_cnn_separates_zeros_from_ones(capsys):
    result, out = run_example("mnist_binary_cnn", capsys, "--epochs", "1", "--limit", "480",
                              "--batch-size", "32")
    assert "480 training images, 120 held out (0 vs 1)" in out
    # one epoch of 15 steps: the tutorial's model already gets nearly all right
    assert_reported(result, out, samples=120, epochs=1, better_than=0.9)


@needs_data
def test_mnist_cnn_learns_ten_digits_from_a_few_hundred_images(capsys):
    result, out = run_example("mnist_cnn", capsys, "--epochs", "2", "--limit", "512",
                              "--batch-size", "32", "--lr", "0.05")
    assert_reported(result, out, samples=128, epochs=2, better_than=0.3)   # chance: 0.1


# All 1,920 training sentences (epochs cost little here, compiles much), a quarter of
# the held-out part, and 16 steps instead of 24 (a smaller unrolled graph to compile).
SMALL_TEXT_RUN = ["--limit", "1920", "--epochs", "5", "--batch-size", "32", "--max-len", "16"]


@needs_data
@pytest.mark.parametrize("cell, better_than", [("rnn", 0.6), ("lstm", 0.65),
                                               ("gru", 0.65)])
def test_text_classifier_beats_chance_and_early_stopping_picks_an_epoch(capsys, cell,
                                                                        better_than):
    result, out = run_example("text_rnn", capsys, "--cell", cell, *SMALL_TEXT_RUN)
    assert "1920 training sentences, 480 for validation, 480 held out" in out
    assert "val_accuracy" in out and "early stopping kept epoch" in out
    assert 1 <= result["best_epoch"] <= 5
    assert_reported(result, out, samples=480, epochs=result["best_epoch"],
                    better_than=better_than)     # balanced classes: chance is 0.5


def test_mlp_learns_the_default_shapes(capsys):
    result, out = run_example("mlp_default", capsys, "--epochs", "2", "--limit", "1024",
                              "--batch-size", "32", "--lr", "0.002")
    assert "1024 training images, 256 held out" in out
    assert_reported(result, out, samples=256, epochs=2, better_than=0.2)   # chance: 0.1


@pytest.mark.parametrize("name", ["mnist_binary_cnn", "mnist_cnn", "text_rnn"])
def test_a_missing_data_folder_is_one_clear_error(name, tmp_path):
    missing = str(tmp_path / "no-such-folder")
    with pytest.raises(SystemExit) as exit:
        example(name).main(["--data", missing])
    message = str(exit.value.code)
    assert "not found" in message and missing in message and "\n" not in message


@pytest.mark.parametrize("argv", [["--limit", "0"], ["--epochs", "-1"], ["--device", "tpu"]])
def test_a_bad_argument_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit:
        example("mnist_cnn").main(argv)
    assert exit.value.code == 2
    assert "error: " in capsys.readouterr().err


def test_a_script_with_a_missing_data_folder_prints_one_line_and_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(EXAMPLES, "mnist_cnn.py"),
                           "--data", str(tmp_path / "nothing")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("mnist_cnn.py: error: data folder not found:")


@pytest.mark.parametrize("name", ["mnist_binary_cnn", "mnist_cnn", "text_rnn", "mlp_default"])
def test_every_example_documents_its_options(name, capsys):
    with pytest.raises(SystemExit) as exit:
        example(name).main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    for option in ("--epochs", "--batch-size", "--device", "--seed", "--data", "--limit"):
        assert option in out


@needs_data
def test_graphc_dump_of_the_tutorial_cnn_writes_every_stage_with_resolving_links(
        capsys, tmp_path, monkeypatch):
    """GRAPHC_DUMP on the tutorial's SimpleCNN: a folder per compiled executable
    (train and eval steps) holding each stage, the fusion report, the memory plan
    and picture and the generated source, and indexes whose every link resolves."""
    import re
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path))
    run_example("mnist_binary_cnn", capsys, "--epochs", "1", "--limit", "480",
                "--batch-size", "32")
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) >= 2                       # the train step and the eval step
    for folder in folders:
        names = {p.name for p in folder.iterdir()}
        assert {"fusion_report.txt", "memory_plan.txt", "memory.svg", "generated_source.py",
                "index.html"} <= names
        assert any(n.endswith("_fused.svg") for n in names) and any(
            n.endswith("_built.dot") for n in names)
        targets = re.findall(r'href="([^"]+)"', (folder / "index.html").read_text())
        assert targets and all((folder / t).is_file() for t in targets)
    top = re.findall(r'href="([^"]+)"', (tmp_path / "index.html").read_text())
    assert len(top) == len(folders) and all((tmp_path / t).is_file() for t in top)
