#!/usr/bin/env bash
# Everything to run on a machine with an NVIDIA GPU, in one command from the
# repository root, when that machine already has Python, numba-cuda, NumPy,
# SciPy, networkx and tqdm (pip needs no network: graphc is installed without
# its dependencies):
#
#     bash benchmarks/gpu_session.sh OUTDIR
#
# OUTDIR gets env.txt (GPU, driver, package versions), gpu_check.md (the table
# for the README: W1-W4 checked at full size against device="reference", then
# timed against PyTorch CUDA; rewritten after each workload), gpu_check.log,
# and tests.log (tests/cuda, the simulator's tests, run unchanged on the GPU).
# gpu_check runs first: its table matters most when time is short. Budget: gpu_check about 2-3 minutes
# (most of it Numba compiling the kernels), the tests about 2; each is cut
# off by a timeout so that the command ends within 9 minutes.
set -u
out=${1:?usage: bash benchmarks/gpu_session.sh OUTDIR}
mkdir -p "$out"
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
export GRAPHC_CACHE_DIR="${TMPDIR:-/tmp}/graphc-gpu-cache"
started=$(date +%s)
elapsed() { echo "$(( $(date +%s) - started )) s"; }

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  "$python" --version
  "$python" -m pip list 2>/dev/null | grep -i -E "^(numba|numba-cuda|numpy|llvmlite|cuda-[a-z]+|networkx|scipy|tqdm|torch) "
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

# graphc importable: installed in place without its dependencies; where pip cannot
# (no setuptools there), the package as links on PYTHONPATH (graphc.passes and
# graphc.runtime live in passes/ and runtime/, pyproject.toml's package-dir)
if ! "$python" -c "import graphc" 2>/dev/null; then
  if ! "$python" -m pip install -q --no-deps --no-build-isolation --no-index -e . \
      > "$out/install.log" 2>&1; then
    links=${TMPDIR:-/tmp}/graphc-links
    rm -rf "$links" && mkdir -p "$links/graphc"
    for entry in "$PWD"/graphc/*; do ln -s "$entry" "$links/graphc/"; done
    ln -s "$PWD/passes" "$links/graphc/passes" && ln -s "$PWD/runtime" "$links/graphc/runtime"
    export PYTHONPATH="$links${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi
"$python" -c "import graphc, numba; print('graphc from', graphc.__file__)" \
  || { echo "graphc does not import:"; tail -20 "$out/install.log" 2>/dev/null; exit 2; }
echo "ready at $(elapsed)"

timeout 330 "$python" benchmarks/gpu_check.py --out "$out/gpu_check.md" > "$out/gpu_check.log" 2>&1
echo "gpu_check rc=$? at $(elapsed)"
cat "$out/gpu_check.md" 2>/dev/null || tail -40 "$out/gpu_check.log"

timeout 180 "$python" -m pytest -q -p no:cacheprovider tests/cuda > "$out/tests.log" 2>&1
echo "tests/cuda rc=$? at $(elapsed)"
tail -15 "$out/tests.log"
