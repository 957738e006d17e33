"""The `graphc` command, run as a user runs it: `python -m graphc ...` in a subprocess.

The training runs share the environment's compile cache and use the same
model and batch shapes (1x28x28 images, 10 classes, 256 training samples in
batches of 32, 64 test samples), so only the first one compiles; errors are checked for one line and no traceback.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
MNIST = os.path.join(REPO, os.pardir, "shared", "data", "mnist")
SENTIMENT = os.path.join(REPO, os.pardir, "shared", "data", "sentiment")
PICTURES = ("train_step_fused.svg", "train_step_fused.html", "train_step_memory.svg",
            "model_built.svg")
LIMIT = ["--limit", "320", "--epochs", "1", "--no-progress"]   # 256 train, 64 test


def run(*args, cwd, cache=None, timeout=300):
    """Run `python -m graphc ARGS` (this checkout's) in `cwd`; the CompletedProcess."""
    env = {k: v for k, v in os.environ.items()          # conftest's, tests/cuda's
           if k not in ("GRAPHC_DEVICE", "NUMBA_ENABLE_CUDASIM")}
    paths = [REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if cache is not None:
        env["GRAPHC_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, "-m", "graphc", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def graphc(tmp_path):
    """`graphc(*args, cache=None)`: run the command in the test's own folder."""
    return lambda *args, **options: run(*args, cwd=tmp_path, **options)


def assert_one_line_error(done, status, *words):
    lines = done.stderr.strip().splitlines()
    assert done.returncode == status, done.stderr
    assert len(lines) == 1 and lines[0].startswith("graphc: error: "), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0]


def test_info_prints_versions_threads_blas_cuda_and_cache(graphc, tmp_path):
    done = graphc("info", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(None, 1) for line in done.stdout.splitlines())
    assert set(fields) == {"graphc", "python", "numpy", "numba", "llvmlite", "threads", "blas",
                           "cuda", "cache"}
    import numba
    assert fields["numba"] == numba.__version__ and fields["numpy"] == np.__version__
    assert fields["blas"].split()[0] in ("MKL", "OpenBLAS")
    assert fields["cuda"].startswith(("available", "not available"))
    assert fields["cache"] == f"{tmp_path} (0 bytes, 0 compiled module(s))"


def test_cache_clear_empties_the_cache_folder(graphc, tmp_path):
    cache = tmp_path / "cache"
    (cache / "__pycache__").mkdir(parents=True)
    (cache / "graphc_step_0.py").write_text("x = 1\n")
    (cache / "__pycache__" / "graphc_step_0.nbi").write_bytes(b"\0" * 2048)
    assert graphc("cache", "path", cache=cache).stdout.strip() == str(cache)
    assert "1 compiled module(s)" in graphc("cache", "info", cache=cache).stdout
    done = graphc("cache", "clear", cache=cache)
    assert done.returncode == 0, done.stderr
    assert "2.0 KB removed" in done.stdout
    assert not cache.exists() or not any(cache.iterdir())


def test_cache_clear_removes_only_graphcs_entries(graphc, tmp_path):
    """GRAPHC_CACHE_DIR may name a folder of the user's (by mistake: `.`, $HOME):
    clear removes graphc's modules, their compiled code and the kernels folder,
    never the user's files (it removed the whole folder)."""
    cache = tmp_path / "mine"
    (cache / "sub").mkdir(parents=True)
    (cache / "notes.txt").write_text("important\n")
    (cache / "sub" / "data.csv").write_text("1,2\n")
    (cache / "__pycache__").mkdir()
    (cache / "__pycache__" / "mine.cpython-311.pyc").write_bytes(b"\0" * 100)
    (cache / "kernels").mkdir()
    (cache / "kernels" / "0123.irk").write_bytes(b"\0" * 1024)
    (cache / "graphc_step_0.py").write_text("x = 1\n")
    assert "0 bytes" not in graphc("cache", "info", cache=cache).stdout
    done = graphc("cache", "clear", cache=cache)
    assert done.returncode == 0, done.stderr
    assert "1.0 KB removed" in done.stdout
    assert sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*")) == [
        "__pycache__", "__pycache__/mine.cpython-311.pyc", "notes.txt", "sub", "sub/data.csv"]
    assert "(0 bytes, 0 compiled module(s))" in graphc("cache", "info", cache=cache).stdout


def test_train_on_the_generated_data_reports_metrics_and_writes_outputs(graphc, tmp_path):
    done = graphc("train", "--out", tmp_path, *LIMIT)
    assert done.returncode == 0, done.stderr
    assert "256 train, 64 test" in done.stdout
    for word in ("accuracy", "precision", "recall", "f1", "confusion matrix", "L-shape"):
        assert word in done.stdout
    for name in ("checkpoint.npz", "metrics.json") + PICTURES:
        assert name in done.stdout and (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["samples"] == 64 and 0.0 <= metrics["accuracy"] <= 1.0
    assert np.sum(metrics["confusion_matrix"]) == 64
    with np.load(tmp_path / "checkpoint.npz") as checkpoint:
        assert any("conv1.weight" in key for key in checkpoint.files)
    assert (tmp_path / "train_step_fused.svg").read_text().lstrip().startswith(("<svg", "<?xml"))


def test_train_on_the_reference_device(graphc, tmp_path):
    done = graphc("train", "--device", "reference", "--out", tmp_path, "--limit", "80",
                  "--epochs", "1", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "device reference" in done.stdout and "64 train, 16 test" in done.stdout
    assert json.loads((tmp_path / "metrics.json").read_text())["samples"] == 16


def test_train_on_cuda_trains_on_a_gpu_or_says_how_to_simulate_one(graphc, tmp_path):
    """No GPU (CI): one line saying so and naming the simulator (a simulated run of
    even this small CNN takes minutes); with a GPU: the same run as on the CPU."""
    done = graphc("train", "--device", "cuda", "--out", tmp_path, "--limit", "80",
                  "--epochs", "1", "--no-progress")
    if done.returncode != 0:
        assert_one_line_error(done, 1, 'device="cuda"', "NUMBA_ENABLE_CUDASIM=1")
        assert "device cuda" in done.stdout          # it got as far as compiling
    else:
        assert "device cuda" in done.stdout and "64 train, 16 test" in done.stdout
        assert json.loads((tmp_path / "metrics.json").read_text())["samples"] == 16


@pytest.mark.skipif(not os.path.isdir(MNIST), reason=f"no MNIST files at {MNIST}")
def test_train_on_the_mnist_files(graphc, tmp_path):
    done = graphc("train", "--data", MNIST, "--out", tmp_path, *LIMIT)
    assert done.returncode == 0, done.stderr
    assert "MNIST idx files" in done.stdout and "256 train, 64 test" in done.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["classes"] == [str(i) for i in range(10)] and metrics["samples"] == 64


@pytest.mark.skipif(not os.path.isdir(SENTIMENT), reason=f"no sentences at {SENTIMENT}")
def test_train_a_transformer_on_labelled_sentences(graphc, tmp_path):
    done = graphc("train", "--data", SENTIMENT, "--model", "transformer", "--device",
                  "reference", "--out", tmp_path, "--limit", "200", "--epochs", "2",
                  "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "model:  transformer" in done.stdout and "160 train, 40 test" in done.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["classes"] == ["0", "1"] and np.sum(metrics["confusion_matrix"]) == 40
    with np.load(tmp_path / "checkpoint.npz") as checkpoint:
        assert any("layers.1.self_attn.in_proj_weight" in key for key in checkpoint.files)

def test_a_missing_data_path_is_one_line(graphc, tmp_path):
    missing = tmp_path / "no-such-folder"
    assert_one_line_error(graphc("train", "--data", missing), 1, "not found", str(missing))


def test_an_unknown_model_is_one_line(graphc):
    assert_one_line_error(graphc("train", "--model", "resnet152"), 2, "invalid choice",
                          "resnet152")


def test_an_empty_data_file_is_one_line(graphc, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert_one_line_error(graphc("train", "--data", empty), 1, "empty", str(empty))


def test_a_file_in_the_wrong_format_is_one_line(graphc, tmp_path):
    wrong = tmp_path / "sentences.txt"
    wrong.write_text("a sentence without a label\n")
    assert_one_line_error(graphc("train", "--data", wrong), 1, "no tab", f"{wrong}:1")


@pytest.mark.parametrize("model", ["lstm", "gru", "transformer"])
def test_a_text_model_on_images_is_one_line(graphc, model):
    assert_one_line_error(graphc("train", "--model", model, "--limit", "20"), 1,
                          f"--model {model} reads sentences", "--model cnn")


def test_viz_is_graphc_viz_cli(graphc):
    done = graphc("viz", "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: graphc viz")


def test_a_bad_viz_argument_is_one_line(graphc):
    assert_one_line_error(graphc("viz", "--stage", "nosuch", "script.py"), 2, "invalid choice",
                          "graphc viz")


def test_a_viz_folder_or_an_unwritable_out_is_one_line_before_the_script_runs(graphc, tmp_path):
    """Found by probing: a folder given as the script, or an OUT that cannot be made,
    printed tracebacks (and then "compiled nothing")."""
    script = tmp_path / "run.py"
    script.write_text("print('ran')\n")
    assert_one_line_error(graphc("viz", tmp_path), 2, "is not a file")
    blocker = tmp_path / "afile"
    blocker.write_text("")
    done = graphc("viz", script, "-o", blocker / "sub")
    assert_one_line_error(done, 1, str(blocker))
    assert "ran" not in done.stdout


def test_an_unknown_option_is_named(graphc):
    assert_one_line_error(graphc("--bogus"), 2, "unrecognized option --bogus")


def test_an_output_folder_that_cannot_be_made_fails_before_training(graphc, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    done = graphc("train", "--out", blocker / "sub", "--limit", "20")
    assert_one_line_error(done, 1, str(blocker))
    assert "training" not in done.stdout


def test_a_graphc_error_in_a_viz_script_names_the_scripts_line(graphc, tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("import graphc as gc\n\n"
                      "x = gc.placeholder((2, 3))\n"
                      "y = x + gc.placeholder((4,))\n")
    assert_one_line_error(graphc("viz", script), 1, "add:", f"at {script}:4")
